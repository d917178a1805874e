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
# # 0. Why is WaveNet so good?
#
# In September 2016 DeepMind published WaveNet (van den Oord et al.,
# [arXiv:1609.03499](https://arxiv.org/abs/1609.03499)), and listeners rated its synthetic
# speech closer to a human voice than anything before it. This notebook says what it
# changed — it models the waveform itself, one sample at a time — shows the listening
# results that made it famous, measures on this machine why a convolutional network can
# be trained on that much audio at all, and what the same design costs when it generates:
# the reason this project has a `serving/` package. The rest of the compendium
# (listed at the end) builds every piece.

# %%
import os
import time

import keras
import matplotlib.pyplot as plt
import numpy as np

from wavenet_tf.builtin_data import plucked_melody
from wavenet_tf.core.mu_law import mu_law_encode

QUICK = os.environ.get("WAVENET_NOTEBOOK_QUICK") == "1"
keras.utils.set_random_seed(0)


def load_average() -> str:
    """This machine's 1-minute load average: a speed figure means little without it."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


# %% [markdown]
# ## Before WaveNet: glue recordings together, or predict a vocoder's knobs
#
# Text-to-speech systems of 2016 came in two families.
#
# - **Concatenative** (unit selection): record many hours of one speaker, cut the
#   recordings into small units (parts of phones), and at synthesis time search for the
#   sequence of units that best fits the target sentence — the search guided by a
#   statistical model such as an HMM — then join them. Within a unit the sound is a real
#   recording; at the joins it can click or jump, and a new voice or speaking style needs a
#   new database.
# - **Statistical parametric**: a model (HMMs, later LSTM recurrent networks) predicts, for
#   every frame of about 5 ms, the parameters of a **vocoder** — spectral envelope,
#   fundamental frequency, aperiodicity — and the vocoder turns them into a waveform.
#   Flexible and smooth, but the vocoder's simplified model of the voice and the averaged
#   parameters make it sound buzzy or muffled.
#
# WaveNet drops both the units and the vocoder parameters. It is a probability model of
# the **waveform itself**, factored into one prediction per sample:
#
# `p(x) = Π_t p(x_t | x_1, …, x_{t−1})`
#
# — a softmax over the 256 mu-law classes of sample `t`, given every sample before it
# (and, for speech, linguistic features of the text). That is **sample-level
# autoregression**: 16,000 predictions for one second of 16 kHz speech, each one feeding
# the next. The picture: 20 ms of a melody at 8 kHz. A parametric system predicts one set
# of parameters per 5 ms frame (the grey lines); WaveNet predicts every dot.

# %%
rate = 8000
audio = plucked_melody(seconds=1.0, sample_rate=rate, seed=3, instrument="harp")
start = int(np.argmax(np.abs(audio) > 0.3))  # just after a note's attack
segment = audio[start:start + int(0.02 * rate)]
classes = mu_law_encode(segment, 256)
fig, axes = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True)
milliseconds = 1000 * np.arange(len(segment)) / rate
axes[0].plot(milliseconds, segment, "-o", ms=2.5, lw=0.6)
axes[0].set(ylabel="amplitude", title=f"20 ms at {rate} Hz: {len(segment)} samples, each one prediction")
axes[1].step(milliseconds, classes, where="mid", lw=0.8)
axes[1].set(xlabel="milliseconds", ylabel="mu-law class (0–255)")
for ax in axes:
    for frame in np.arange(0, 20.1, 5):
        ax.axvline(frame, color="0.7", lw=1, zorder=0)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What listeners said
#
# The paper's Table 1 reports **mean opinion scores** (MOS): listeners rate the
# naturalness of each sentence from 1 (bad) to 5 (excellent) in blind, crowdsourced tests
# on sentences held out from training, and the scores are averaged; the table gives each
# mean with a ± margin (the error bars below). Google's best parametric (LSTM-RNN)
# and concatenative (HMM-driven unit selection) systems, WaveNet conditioned on linguistic
# features and log F0 ("L+F"), and natural recordings of the same speakers — stored as
# 8-bit mu-law, WaveNet's own format, and as 16-bit linear PCM — for US English and
# Mandarin Chinese. These are the paper's figures, not measurements of this project:

# %%
# van den Oord et al. (2016), arXiv:1609.03499, Table 1: 5-scale MOS and the ± printed beside it.
MOS = {  # system: {language: (mean, ± margin)}
    "LSTM-RNN parametric": {"US English": (3.67, 0.098), "Mandarin": (3.79, 0.084)},
    "HMM-driven concatenative": {"US English": (3.86, 0.137), "Mandarin": (3.47, 0.108)},
    "WaveNet (L+F)": {"US English": (4.21, 0.081), "Mandarin": (4.08, 0.085)},
    "Natural (8-bit mu-law)": {"US English": (4.46, 0.067), "Mandarin": (4.25, 0.082)},
    "Natural (16-bit linear PCM)": {"US English": (4.55, 0.075), "Mandarin": (4.21, 0.071)},
}
languages = ("US English", "Mandarin")
fig, ax = plt.subplots(figsize=(9, 3.8))
width = 0.16
for i, (system, scores) in enumerate(MOS.items()):
    x = np.arange(len(languages)) + (i - 2) * width
    means, errors = zip(*(scores[language] for language in languages))
    ax.bar(x, means, width, yerr=errors, capsize=3, label=system,
           color=["C3", "C1", "C0", "0.55", "0.35"][i])
ax.set_xticks(range(len(languages)), languages)
ax.set(ylim=(3, 5), ylabel="mean opinion score (1–5)", title="arXiv:1609.03499, Table 1")
ax.legend(fontsize=8, ncol=2, loc="upper right")
plt.show()

natural = "Natural (16-bit linear PCM)"
for language in languages:
    best = max(("LSTM-RNN parametric", "HMM-driven concatenative"), key=lambda s: MOS[s][language][0])
    before = MOS[natural][language][0] - MOS[best][language][0]
    after = MOS[natural][language][0] - MOS["WaveNet (L+F)"][language][0]
    print(f"{language:10s}: gap to natural speech {before:.2f} (best baseline: {best}) -> {after:.2f} with WaveNet, "
          f"{1 - after / before:.0%} closed")

# %% [markdown]
# By these figures WaveNet closed about half of the distance between the best earlier
# system and a recording in English, and about two thirds in Mandarin (the lines above;
# DeepMind's announcement put it as "over 50%" for both), and in Mandarin its error bar
# touches that of the 16-bit recordings. Notice also the two natural rows: listeners rated
# 8-bit mu-law about as natural as 16-bit PCM (their error bars overlap in both
# languages), which is why a softmax over 256 mu-law classes costs little that a listener
# hears (notebook 1 measures the noise it adds).
#
# ## Why it could be trained at all: a convolution sees every position at once
#
# A model of 16,000 predictions a second has to learn from hours of audio: hundreds of
# millions of predictions. During training every sample is known, so each prediction's
# inputs are known too (**teacher forcing**), and WaveNet — a stack of causal
# convolutions — computes the predictions for a whole window in one pass: each layer is
# one convolution over all positions at once. A **recurrent** network (notebook 7)
# cannot: it reads a sequence one element at a time, and step `t` needs the state left by
# step `t − 1`, so a window of `N` samples is `N` small steps in a row, whatever the
# hardware.
#
# Measured here with two models of the same size (~31,000 weights, untrained: speed does
# not depend on the weights) scoring the same melody — all its next-sample predictions
# under teacher forcing — and the same WaveNet *generating* as many samples, where
# there is no way around one step per sample. Wall-clock times on a shared machine: read
# them beside the load average.

# %%
from wavenet_tf.core.numpy_step import NumpyStep
from wavenet_tf.core.step_generator import StepGenerator
from wavenet_tf.model import WaveNet
from wavenet_tf.step_weights import step_arrays

wavenet = WaveNet.from_preset("tiny")
audio_in = keras.Input((None,), dtype="int32", name="audio")
recurrent = keras.Model({"audio": audio_in}, keras.layers.Dense(256)(
    keras.layers.GRU(56, return_sequences=True)(keras.layers.Embedding(256, 16)(audio_in))))
print(f"WaveNet tiny {wavenet.count_params():,} weights, GRU {recurrent.count_params():,} weights")

lengths = [250, 500, 1000] if QUICK else [1000, 2000, 4000, 8000]
melody = mu_law_encode(plucked_melody(seconds=lengths[-1] / rate + 0.1, sample_rate=rate, seed=4), 256)


def seconds_for(function, repeats=3):
    function()  # untimed: the first call compiles
    best = float("inf")
    for _ in range(repeats):  # best of a few: other work on the machine only ever slows a run down
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


timings = {"WaveNet, scoring (one parallel pass)": [], "GRU, scoring (one step per sample)": [],
           "WaveNet, generating (one step per sample)": []}
for n in lengths:
    x = {"audio": melody[None, :n].astype(np.int32)}
    timings["WaveNet, scoring (one parallel pass)"].append(seconds_for(lambda: wavenet.predict_on_batch(x)))
    timings["GRU, scoring (one step per sample)"].append(seconds_for(lambda: recurrent.predict_on_batch(x)))
    generator = StepGenerator(NumpyStep(step_arrays(wavenet)), 1)
    uniforms = np.random.default_rng(0).random((1, n))
    timings["WaveNet, generating (one step per sample)"].append(
        seconds_for(lambda: generator.generate(n, uniforms), repeats=1))
for name, seconds in timings.items():
    print(f"{name:42s} " + "  ".join(f"{n:>5} samples {s * 1000:7.1f} ms" for n, s in zip(lengths, seconds))
          + f"  -> {lengths[-1] / seconds[-1]:>9,.0f} samples/s")
scoring, recurrent, generating = (seconds[-1] for seconds in timings.values())
print(f"{lengths[-1]} samples: WaveNet scores them {recurrent / scoring:.1f}x as fast as the GRU, "
      f"and {generating / scoring:.0f}x as fast as it generates as many; {load_average()}")
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for name, seconds in timings.items():
    ax.loglog(lengths, np.array(seconds) * 1000, "o-", label=name)
ax.set(xlabel="samples", ylabel="milliseconds (wall; scoring: best of 3)", title="Known samples vs samples to be generated")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Scoring known audio, the first two lines set one pass over all positions against a loop
# over them, and the line after them gives the factor. (Training narrows the gap on a
# CPU: it scores a batch of windows at once, which gives the recurrent network parallel
# work of its own, across the batch. Notebook 7 trains both on the same data for the same
# CPU budget and measures what is left, and what it buys.)
# Hardware with many parallel units, such as a GPU, is built for the convolution's kind of
# work and can only wait through the recurrent loop; these notebooks measure a 2-core CPU.
#
# ## What it costs: generation is one sample at a time
#
# The same WaveNet *generating* is the slowest line: the future is not known, so sample `t`
# must be drawn before sample `t + 1` can be predicted — the third line above, which is also
# WaveNet's step in plain NumPy, computed the cheap way. The textbook way is worse: run
# the whole network over the last receptive field for every new sample (notebook 5).
# That is what made the 2016 WaveNet too slow to deploy, what later work (Parallel
# WaveNet, WaveRNN and others) set out to fix, and what this project's `serving/`
# package is for: the ring buffer of Fast WaveNet (each layer keeps its recent inputs,
# so a sample costs one time step of each layer), a hand-written ONNX step graph, and a
# native step engine. The project measured `small` (20 layers, 16 kHz) on a 2-core CPU:
#
# | generating `small`, one stream | samples/s | real time at 16 kHz | source |
# |---|---|---|---|
# | naive: the whole network per sample | 47 | 0.003× | `make bench`, [performance.md](../docs/performance.md#the-standard-step-graph) |
# | ring buffer, ONNX step graph | 10,117 | 0.63× | `make bench`, [performance.md](../docs/performance.md#the-standard-step-graph) |
# | ring buffer, native step engine (idle machine) | 107,148 | 6.7× | `wavenet bench`, [native-engine.md](../docs/native-engine.md#how-fast) |
#
# Training is fast because it is parallel; generating takes engineering. Notebook 6
# exports a model and measures its real-time factor on this machine.
#
# ## The compendium
#
# 1. [Audio to data](01_audio_to_data.ipynb) — samples, bit depth, mu-law, the pipeline.
# 2. [Causal and dilated convolutions](02_causal_dilated_convolutions.ipynb) — filters,
#    feature maps, receptive fields.
# 3. [The WaveNet model](03_the_model.ipynb) — gates, residual and skip paths, what a
#    trained model's filters respond to, conditioning.
# 4. [Training on your data](04_training.ipynb) — `model.fit`, bits per sample.
# 5. [Generating sounds](05_generating.ipynb) — naive vs ring buffer, priming, temperature.
# 6. [Export and real time](06_export_and_real_time.ipynb) — ONNX, the step graph, the real-time factor.
# 7. [Recurrent networks](07_recurrent_networks.ipynb) — a GRU against WaveNet, measured.
# 8. [Glossary](08_glossary.ipynb) — the words, and where they appear.
