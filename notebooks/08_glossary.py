# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 8. Glossary
#
# The words a newcomer to WaveNet trips over, each with a one-line definition, why it
# matters here, and where it appears in the compendium (the links lead there). A few come
# with a small cell you can run.

# %%
import numpy as np

from wavenet_tf.core.mu_law import mu_law_decode, mu_law_encode
from wavenet_tf.core.sampling import sample_classes

# %% [markdown]
# **Autoregressive** — a model of a sequence that predicts each element from the ones
# before it: `p(x) = Π_t p(x_t | x_<t)`. WaveNet is autoregressive over audio samples,
# which is why generation is a loop, one sample per step. WaveNet's step is one audio
# sample (**sample-level autoregression**): 16,000 predictions for a second of 16 kHz
# audio, where earlier speech synthesizers predicted a vocoder's parameters every 5 ms.
# *[Notebook 0](00_why_wavenet.ipynb#before-wavenet-glue-recordings-together-or-predict-a-vocoders-knobs)
# (sample-level autoregression), [notebook 5](05_generating.ipynb#naive-generation-vs-the-ring-buffer-sampler)
# (the generation loop), [notebook 1](01_audio_to_data.ipynb#4-audio-as-a-time-series) (`p(x_t | x_1, …, x_{t−1})`).*
#
# **Causal** — output `t` depends on inputs `≤ t` only. A causal convolution pads on the left,
# so no output can see the sample it is meant to predict.
# *[Notebook 2](02_causal_dilated_convolutions.ipynb#causal-padding-the-future-cannot-leak) (the leak test with `padding="same"`
# vs `"causal"`).*
#
# **Dilation** ("à trous", with holes) — spacing between a filter's taps. Doubling it layer
# by layer grows the receptive field exponentially with depth.
# *[Notebook 2](02_causal_dilated_convolutions.ipynb#dilation-holes-in-the-filter) (the diagram and
# [the parameter counts](02_causal_dilated_convolutions.ipynb#parameters-for-the-same-receptive-field)).*
#
# **Receptive field** — how many past input samples one output depends on:
# `(k − 1) · Σ dilations + initial_kernel_size`. It is the model's memory; nothing older
# can influence a prediction. *[Notebook 2](02_causal_dilated_convolutions.ipynb#a-convolution-a-filter-a-receptive-field),
# [3](03_the_model.ipynb#the-presets-parameters-and-receptive-fields) (the presets' table),
# [5](05_generating.ipynb#naive-generation-vs-the-ring-buffer-sampler) (naive cost grows with it),
# [7](07_recurrent_networks.ipynb#how-far-back-can-each-one-remember) (measured against a recurrent network's
# fading memory).*
#
# **Logits** — the network's raw outputs, one per class: unnormalized log-probabilities.
# A softmax turns them into probabilities; dividing them by a temperature first sharpens
# or flattens the distribution. *[Notebook 3](03_the_model.ipynb#logits-and-the-softmax-over-256-classes) (the
# softmax over 256 classes), [5](05_generating.ipynb#the-draw-temperature-and-top-k) (temperature).*

# %%
logits = np.array([[2.0, 1.0, 0.0, -1.0]])
for temperature in (0.5, 1.0, 2.0):
    p = np.exp(logits / temperature)
    p /= p.sum()
    print(f"T = {temperature}: softmax {np.round(p[0], 3)}")

# %% [markdown]
# **Stochastic** — involving chance. WaveNet's output is a *distribution*; generation draws
# from it, so two runs with different seeds give different audio, and the same seed gives
# the same audio. The library draws one uniform number per sample and stream (inverse-CDF
# sampling), so every generator given the same numbers produces the same samples.
# *[Notebook 5](05_generating.ipynb#naive-generation-vs-the-ring-buffer-sampler) (naive and ring-buffer
# generation agree exactly).*

# %%
uniforms = np.array([0.05, 0.5, 0.95])
print("the same distribution, three uniforms ->", [int(sample_classes(logits, 1.0, [u])[0]) for u in uniforms])

# %% [markdown]
# **Tractable** — computable exactly in reasonable time. WaveNet's likelihood is
# tractable: the probability of a whole recording is the product of per-sample softmax
# outputs, all computed in one parallel forward pass. That is why we can report an exact
# loss in bits per sample ([notebook 4](04_training.ipynb#loss-in-bits-per-sample)) — unlike models whose likelihood can only be
# bounded or estimated.
#
# **Latent** (variable) — a hidden quantity a model infers rather than observes (a VAE's
# code, a GAN's noise vector). WaveNet has *no* latent variables: everything it conditions
# on is observed — past samples, and optionally a speaker id or mel frames ([notebook 3](03_the_model.ipynb#global-conditioning-one-model-many-voices)).
# That is part of why its likelihood is tractable.
#
# **mu-law** — a companding curve `sign(x) · ln(1 + μ|x|) / ln(1 + μ)` (μ = 255) applied
# before quantizing to 256 levels: fine steps for quiet sounds, coarse steps for loud ones.
# It turns each sample into one of 256 classes for the softmax.
# *[Notebook 1](01_audio_to_data.ipynb#3-why-8-bit-mu-law-beats-8-bit-linear) (SNR against level, linear vs mu-law).*

# %%
audio = np.array([-1.0, -0.1, -0.01, 0.0, 0.01, 0.1, 1.0], np.float32)
classes = mu_law_encode(audio, 256)
print("audio  ", audio)
print("classes", classes)
print("decoded", np.round(mu_law_decode(classes, 256), 4))

# %% [markdown]
# **Teacher forcing** — feeding a sequence model the *true* previous values instead of its
# own predictions. Training uses it (all positions in parallel, since the targets are
# known); the export uses it to prove the one-step graph equals the full network.
# *[Notebook 4](04_training.ipynb#modelfit-on-the-tfdata-pipeline) (`model.fit`), [notebook 6](06_export_and_real_time.ipynb#the-step-graph) (step vs
# full forward pass),
# [notebook 0](00_why_wavenet.ipynb#why-it-could-be-trained-at-all-a-convolution-sees-every-position-at-once)
# and [7](07_recurrent_networks.ipynb#training-speed-sequential-steps-vs-one-parallel-convolution)
# (why it makes a convolutional network fast to train and a recurrent one not).*
#
# **Exposure bias** — a teacher-forced model only ever read true pasts; generating, it reads
# its own draws, and an unlikely one is a past it never saw, so its errors compound until a
# tone is noise. Jittering the training inputs (never the targets) and truncating the draw
# fight it. *[Notebook 5](05_generating.ipynb#the-draw-temperature-and-top-k) (measured).*
#
# **Top-k sampling** — drawing only from the `k` most likely classes, their probabilities
# renormalized; `k = 1` is argmax. The library draws from the top 3 by default.
# *[Notebook 5](05_generating.ipynb#the-draw-temperature-and-top-k).*
#
# **Bits per sample** — the cross-entropy loss in base 2: what an ideal coder using the
# model would spend per sample. 8 bits is a uniform guess over 256 classes; the *unigram
# baseline* is the entropy of the class histogram. *[Notebook 1](01_audio_to_data.ipynb#the-class-histogram-and-the-unigram-baseline)
# and [4](04_training.ipynb#loss-in-bits-per-sample); [7](07_recurrent_networks.ipynb#held-out-bits-per-sample) compares two models by it.*
#
# **Conditioning** — extra input that steers the model: *global* (one id per recording,
# e.g. speaker or instrument) or *local* (a time series such as mel frames, upsampled to
# the sample rate). *[Notebook 3](03_the_model.ipynb#global-conditioning-one-model-many-voices) (how, and
# [local](03_the_model.ipynb#local-conditioning-and-fractional-upsampling)), [notebook 5](05_generating.ipynb#conditioning-choose-the-instrument)
# (choosing the instrument).*
#
# **Gated activation unit** — `tanh(filter) · σ(gate)`: the gate in (0, 1) decides how much
# of the filter passes. *[Notebook 3](03_the_model.ipynb#the-gated-activation-unit) (the unit, and
# [what a trained model's gates open for](03_the_model.ipynb#filters-and-feature-maps-in-a-trained-model)).*
#
# **Residual / skip connection** — residual: a block adds its output to its input, so deep
# stacks train; skip: every block also sends an output straight to the head.
# *[Notebook 3](03_the_model.ipynb#residual-and-skip-connections).*
#
# **Ring buffer (Fast WaveNet queues)** — a fixed-size circular array holding each layer's
# recent inputs, indexed by time modulo its size; it makes a generated sample cost one step
# of each layer instead of a pass over the whole receptive field.
# *[Notebook 5](05_generating.ipynb#naive-generation-vs-the-ring-buffer-sampler) and [6](06_export_and_real_time.ipynb#the-step-graph);
# [notebook 0](00_why_wavenet.ipynb#what-it-costs-generation-is-one-sample-at-a-time) (why `serving/` exists).*
#
# **Real-time factor** — samples generated per second divided by the sample rate; ≥ 1 plays
# without gaps. *[Notebook 6](06_export_and_real_time.ipynb#the-real-time-factor).*
#
# ### From the introduction and the comparison with recurrent networks
#
# **Concatenative synthesis** (unit selection) — speech made by choosing short units of
# recorded speech from a large database and joining them; natural within a unit, audible
# at the joins, one voice per database. **Statistical parametric synthesis** — a model (HMMs,
# later LSTMs) predicts a **vocoder**'s parameters (spectral envelope, pitch, aperiodicity)
# every few milliseconds and the vocoder makes the waveform; flexible but buzzy. Listeners
# rated WaveNet above both. (This project's `vocoder` preset uses the word in its later
# sense: a WaveNet that turns mel frames into audio.)
# *[Notebook 0](00_why_wavenet.ipynb#before-wavenet-glue-recordings-together-or-predict-a-vocoders-knobs).*
#
# **Mean opinion score (MOS)** — listeners rate the naturalness of each sample from 1 (bad)
# to 5 (excellent) in a blind test; the mean, usually given with a ± margin, is the score.
# WaveNet's 4.21 for US English against 3.86 for the best earlier system and 4.55 for
# recorded speech (the paper's Table 1) is what made it famous.
# *[Notebook 0](00_why_wavenet.ipynb#what-listeners-said).*
#
# **Filter** — the weights a convolution slides along its input, one set per output channel
# (kernel is the same thing). **Feature map** (activation map) — the sequence of one
# filter's outputs along the whole input: where the pattern it responds to occurs. A layer
# with `C` output channels makes `C` feature maps.
# *[Notebook 2](02_causal_dilated_convolutions.ipynb#feature-maps-a-filter-slid-over-a-whole-signal)
# (hand-made filters), [notebook 3](03_the_model.ipynb#filters-and-feature-maps-in-a-trained-model)
# (a trained WaveNet's filters and gates over a melody and over speech).*
#
# **Recurrent neural network (RNN)** — a network that reads a sequence one element at a
# time and carries a fixed-size **hidden state** from step to step:
# `h_t = f(h_{t−1}, x_t)`. Karpathy's char-rnn is the famous example. Its state can in
# principle remember anything, but step `t` needs step `t − 1`, so it cannot be computed
# in parallel over time, not even in training.
# *[Notebook 7](07_recurrent_networks.ipynb#a-recurrent-network-in-one-line) (and
# [its state over a melody](07_recurrent_networks.ipynb#the-recurrent-state-over-a-melody)).*
#
# **LSTM, GRU** — recurrent cells with gates (long short-term memory; gated recurrent
# unit): sigmoids that decide per unit how much of the old state to keep and how much new
# input to let in, which lets them learn longer dependencies than a plain RNN.
# *[Notebook 7](07_recurrent_networks.ipynb#a-recurrent-network-in-one-line) (a GRU, in
# Keras and in ten lines of NumPy).*
#
# **Truncated backpropagation through time (BPTT)** — training a recurrent network on
# windows of a fixed length: gradients flow back through at most that many steps, so no
# dependency longer than the window is ever learned directly. It is to an RNN's memory what
# the receptive field is to WaveNet's.
# *[Notebook 7](07_recurrent_networks.ipynb#how-far-back-can-each-one-remember).*
#
# **Embedding** — a learned table with one vector per input class: class `c` in, row `c`
# out. It is what a one-hot input times a weight matrix computes, without the zeros; the
# GRU reads its input through one, and WaveNet's first convolution is the same idea.
# *[Notebook 7](07_recurrent_networks.ipynb#two-models-of-the-same-size).*
#
# **Learning curve** — a model's loss on held-out data (here in bits per sample) plotted
# against the training spent on it: steps, or CPU seconds. Two curves on one axis show which
# model learns more for the same computing. *[Notebook 4](04_training.ipynb#loss-in-bits-per-sample),
# [notebook 7](07_recurrent_networks.ipynb#learning-curves-on-one-axis).*
#
# **CPU-seconds, load average** — `time.process_time()` counts the seconds this process's
# threads ran on a CPU; on a shared machine it is a fairer budget than wall time, since
# waiting for other jobs does not count. The load average (`os.getloadavg()`) is how many
# jobs were running or waiting for a core, averaged over a minute: above the number of cores
# the machine was crowded, and every wall-clock speed beside it reads lower.
# *[Notebook 0](00_why_wavenet.ipynb#why-it-could-be-trained-at-all-a-convolution-sees-every-position-at-once),
# [notebook 7](07_recurrent_networks.ipynb#training-both-for-the-same-cpu-budget).*
#
# **Parallel WaveNet, WaveRNN** — later models made for fast generation: Parallel WaveNet
# distils a trained WaveNet into a network that produces all samples at once; WaveRNN is
# a single small recurrent layer whose step is cheap. This project keeps WaveNet and makes its
# step fast instead (ring buffer, step graph, native engine).
# *[Notebook 0](00_why_wavenet.ipynb#what-it-costs-generation-is-one-sample-at-a-time),
# [notebook 7](07_recurrent_networks.ipynb#what-the-numbers-say).*
