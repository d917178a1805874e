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
# matters here, and where it appears in the compendium. A few come with a small cell you
# can run.

# %%
import numpy as np

from wavenet_tf.core.mu_law import mu_law_decode, mu_law_encode
from wavenet_tf.core.sampling import sample_classes

# %% [markdown]
# **Autoregressive** — a model of a sequence that predicts each element from the ones
# before it: `p(x) = Π_t p(x_t | x_<t)`. WaveNet is autoregressive over audio samples,
# which is why generation is a loop, one sample per step.
# *Notebook 5 (the generation loop), notebook 1 (`p(x_t | x_1, …, x_{t−1})`).*
#
# **Causal** — output `t` depends on inputs `≤ t` only. A causal convolution pads on the left,
# so no output can see the sample it is meant to predict.
# *Notebook 2 (the leak test with `padding="same"` vs `"causal"`).*
#
# **Dilation** ("à trous", with holes) — spacing between a filter's taps. Doubling it layer
# by layer grows the receptive field exponentially with depth.
# *Notebook 2 (the diagram and the parameter counts).*
#
# **Receptive field** — how many past input samples one output depends on:
# `(k − 1) · Σ dilations + initial_kernel_size`. It is the model's memory; nothing older
# can influence a prediction. *Notebooks 2 and 3 (the presets' table), 5 (naive cost grows
# with it).*
#
# **Logits** — the network's raw outputs, one per class: unnormalized log-probabilities.
# A softmax turns them into probabilities; dividing them by a temperature first sharpens
# or flattens the distribution. *Notebook 3 (the softmax over 256 classes), 5 (temperature).*

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
# *Notebook 5 (naive and ring-buffer generation agree exactly).*

# %%
uniforms = np.array([0.05, 0.5, 0.95])
print("the same distribution, three uniforms ->", [int(sample_classes(logits, 1.0, [u])[0]) for u in uniforms])

# %% [markdown]
# **Tractable** — computable exactly in reasonable time. WaveNet's likelihood is
# tractable: the probability of a whole recording is the product of per-sample softmax
# outputs, all computed in one parallel forward pass. That is why we can report an exact
# loss in bits per sample (notebook 4) — unlike models whose likelihood can only be
# bounded or estimated.
#
# **Latent** (variable) — a hidden quantity a model infers rather than observes (a VAE's
# code, a GAN's noise vector). WaveNet has *no* latent variables: everything it conditions
# on is observed — past samples, and optionally a speaker id or mel frames (notebook 3).
# That is part of why its likelihood is tractable.
#
# **mu-law** — a companding curve `sign(x) · ln(1 + μ|x|) / ln(1 + μ)` (μ = 255) applied
# before quantizing to 256 levels: fine steps for quiet sounds, coarse steps for loud ones.
# It turns each sample into one of 256 classes for the softmax.
# *Notebook 1 (SNR against level, linear vs mu-law).*

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
# *Notebook 4 (`model.fit`), notebook 6 (step vs full forward pass).*
#
# **Bits per sample** — the cross-entropy loss in base 2: what an ideal coder using the
# model would spend per sample. 8 bits is a uniform guess over 256 classes; the *unigram
# baseline* is the entropy of the class histogram. *Notebooks 1 and 4.*
#
# **Conditioning** — extra input that steers the model: *global* (one id per recording,
# e.g. speaker or instrument) or *local* (a time series such as mel frames, upsampled to
# the sample rate). *Notebook 3 (how), notebook 5 (choosing the instrument).*
#
# **Gated activation unit** — `tanh(filter) · σ(gate)`: the gate in (0, 1) decides how much
# of the filter passes. *Notebook 3.*
#
# **Residual / skip connection** — residual: a block adds its output to its input, so deep
# stacks train; skip: every block also sends an output straight to the head. *Notebook 3.*
#
# **Ring buffer (Fast WaveNet queues)** — a fixed-size circular array holding each layer's
# recent inputs, indexed by time modulo its size; it makes a generated sample cost one step
# of each layer instead of a pass over the whole receptive field. *Notebooks 5 and 6.*
#
# **Real-time factor** — samples generated per second divided by the sample rate; ≥ 1 plays
# without gaps. *Notebook 6.*
