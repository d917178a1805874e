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
# # 3. The WaveNet model
#
# Notebook 2 gave us causal dilated convolutions. WaveNet wraps each one in a **gated
# residual block**, sums every block's **skip** output, and ends in a **softmax over 256
# mu-law classes**. Conditioning — a speaker or instrument id (*global*) or mel frames
# (*local*) — is added inside every block. Everything below is the library's code:
# `wavenet_tf.model.ResidualBlock`, `UpsampleNetwork`, `WaveNet` and the presets.

# %%
import os

import keras
import matplotlib.pyplot as plt
import numpy as np

from wavenet_tf.model import ResidualBlock, UpsampleNetwork, WaveNet
from wavenet_tf.core.presets import get_preset, preset_names

QUICK = os.environ.get("WAVENET_NOTEBOOK_QUICK") == "1"
keras.utils.set_random_seed(0)

# %% [markdown]
# ## The gated activation unit
#
# Instead of a ReLU, each block computes
#
# `z = tanh(W_f ∗ x) ⊙ σ(W_g ∗ x)`
#
# — a *filter* in (−1, 1) times a *gate* in (0, 1) that decides, per channel and per time
# step, how much of the filter passes. (The same idea as an LSTM's gates; the paper found it
# models audio better than ReLU.) The library computes filter and gate with one convolution
# of `2 · gate_channels` outputs and splits it.

# %%
f = np.linspace(-4, 4, 201)
fig, ax = plt.subplots(figsize=(6, 3))
for gate in (-2.0, 0.0, 2.0):
    ax.plot(f, np.tanh(f) / (1 + np.exp(-gate)), label=f"gate pre-activation {gate:+.0f}")
ax.set(xlabel="filter pre-activation", ylabel="z", title="tanh(filter) · sigmoid(gate)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Residual and skip connections
#
# A block returns two things: `x + W_res · z` (the **residual** path, input to the next
# block — the identity shortcut lets gradients pass through dozens of blocks) and
# `W_skip · z` (the **skip** path, straight to the output). The head sums all skips and
# applies ReLU → 1×1 → ReLU → 1×1 → 256 logits.

# %%
block = ResidualBlock(residual_channels=16, gate_channels=16, skip_channels=32, dilation_rate=4, name="block")
x = np.random.default_rng(0).normal(size=(1, 100, 16)).astype(np.float32)
residual, skip = block(x)
print("input", x.shape, "-> residual", tuple(residual.shape), "+ skip", tuple(skip.shape))
for weight in block.weights:
    print(f"  {weight.path:40s} {tuple(weight.shape)}")

# %% [markdown]
# ## The presets: parameters and receptive fields
#
# A WaveNet is its `ModelConfig`: dilations, stacks and channel widths. The presets are
# starting points (`wavenet info --preset NAME` prints the same); the receptive field is
# `(k − 1) · Σ dilations + initial_kernel_size` samples.

# %%
print(f"{'preset':<10}{'layers':>7}{'receptive field':>17}{'ms':>8}{'parameters':>12}")
for name in preset_names():
    config = get_preset(name)
    model = WaveNet.from_model_config(config)
    print(f"{name:<10}{config.num_layers:>7}{config.receptive_field:>17}{config.receptive_field_ms:>8.1f}"
          f"{model.count_params():>12,}")

# %% [markdown]
# `tiny` trains in seconds (tests, the demo, these notebooks); `small` and `realtime` are
# the sizes that generate in real time on a CPU (notebook 6); `ibab` matches the classic
# tensorflow-wavenet defaults; `vocoder` is mel-conditioned.
#
# ## Logits and the softmax over 256 classes
#
# The model's output at time `t` is 256 *logits* — unnormalized log-probabilities of the
# class of sample `t + 1`. A softmax turns them into a distribution. An untrained model is
# close to uniform: about 8 bits of surprise per sample, the worst possible.

# %%
tiny = WaveNet.from_preset("tiny")
classes = np.random.default_rng(1).integers(0, 256, size=(1, 400)).astype(np.int32)
logits = np.asarray(tiny({"audio": classes}))
probabilities = np.exp(logits - logits.max(-1, keepdims=True))
probabilities /= probabilities.sum(-1, keepdims=True)
entropy = -(probabilities * np.log2(probabilities)).sum(-1)
print("logits", logits.shape, "| each row sums to", probabilities[0, -1].sum().round(6),
      f"| mean entropy {entropy.mean():.3f} bits (uniform: 8)")
fig, ax = plt.subplots(figsize=(7, 2.5))
ax.bar(np.arange(256), probabilities[0, -1], width=1.0)
ax.set(xlabel="class of the next sample", ylabel="p", title="an untrained model's next-sample distribution")
plt.show()

# %% [markdown]
# ## Filters and feature maps in a trained model
#
# Every convolution layer holds a set of **filters**, one per output channel: the weights
# of notebook 2's kernel, now with a weight per input channel too. Slid along the input,
# each filter gives one number per time step — its **feature map** (or activation map):
# a trace of where in the signal the pattern it looks for occurs. An untrained model's
# filters are random; to see what training makes of them we train `tiny` for a few hundred
# steps on two kinds of sound, the built-in melodies and speech, both at 8 kHz, and look
# inside.
#
# The speech comes from eSpeak NG, a formant speech synthesizer (`make quality-deps`
# installs it; `wavenet_tf.quality_data` renders the project's speech benchmark with it).
# Where it is not installed — a clean test machine — this cell prints a note and falls
# back to a **synthetic, speech-like signal** instead: vowels made the way a formant
# synthesizer or a parametric vocoder makes them (notebook 0), as pulses at a gliding
# pitch through three resonances, with bursts of noise for consonants. It has the source
# and filter of speech but no words; the figures below say which of the two they show.

# %%
import shutil
import tempfile
from pathlib import Path

import soundfile

from wavenet_tf.builtin_data import plucked_melody, write_builtin_dataset
from wavenet_tf.core.audio import resample
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.core.mu_law import mu_law_encode
from wavenet_tf.quality_data import TEXTS, speak
from wavenet_tf.run_dir import load_run_model
from wavenet_tf.train import train

WORK = Path(os.environ.get("WAVENET_NOTEBOOK_WORK", "_work")) / "03_the_model"
RATE = 8000
# Formants F1, F2, F3 (Hz) of five vowels of an adult male voice (Peterson and Barney, 1952).
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


def formant_filter(formants, rate, length=400, bandwidth=90.0):
    """Impulse response of two-pole resonators in cascade: y[n] = x[n] + 2r·cos θ·y[n−1] − r²·y[n−2]."""
    response = np.zeros(length)
    response[0] = 1.0
    for frequency in formants:
        r, theta = np.exp(-np.pi * bandwidth / rate), 2 * np.pi * frequency / rate
        y = np.zeros(length + 2)
        for n in range(length):
            y[n + 2] = response[n] + 2 * r * np.cos(theta) * y[n + 1] - r * r * y[n]
        response = y[2:]
    return response / np.abs(response).max()


def speech_like(seconds, rate, seed):
    """Deterministic stand-in for speech: voiced vowels (pulses through formants), noise bursts, pauses."""
    rng = np.random.default_rng(seed)
    pieces, total = [], int(seconds * rate)
    while sum(len(p) for p in pieces) < total:
        n = int(rng.uniform(0.12, 0.22) * rate)
        pitch = rng.uniform(95, 140) * np.linspace(1.0, rng.uniform(0.85, 1.15), n)  # intonation: a glide
        pulses = np.diff(np.floor(np.cumsum(pitch / rate)), prepend=0.0)  # one pulse per glottal period
        vowel = np.convolve(pulses, formant_filter(VOWELS[rng.integers(len(VOWELS))], rate))[:n]
        pieces.append(vowel / np.abs(vowel).max() * np.sqrt(np.hanning(n)) * rng.uniform(0.4, 0.8))
        if rng.random() < 0.4:  # a fricative: white noise, differenced to tilt it towards high frequencies
            m = int(rng.uniform(0.05, 0.1) * rate)
            pieces.append(np.diff(rng.normal(size=m + 1)) * 0.08 * np.hanning(m))
        if rng.random() < 0.15:  # a pause
            pieces.append(np.zeros(int(0.08 * rate)))
    return np.concatenate(pieces)[:total].astype(np.float32)


def speech(sentence: int, voice: str) -> np.ndarray:
    """English sentence ``sentence`` of `wavenet_tf.quality_data.TEXTS` spoken by eSpeak NG at 8 kHz, else speech-like."""
    if SPEECH == "espeak-ng":
        with tempfile.TemporaryDirectory() as tmp:
            audio = speak(TEXTS["en"][sentence], voice, Path(tmp))  # 16 kHz
        return resample(audio, 16000, RATE)
    return speech_like(3.0, RATE, seed=sentence * 10 + len(voice))


SPEECH = "espeak-ng" if shutil.which("espeak-ng") else "speech-like"
if SPEECH != "espeak-ng":
    print("Note: espeak-ng is not installed (`make quality-deps` installs it); the 'speech' below is the "
          "synthetic speech-like signal, not words.")
folder = WORK / "melodies_and_speech"
shutil.rmtree(folder, ignore_errors=True)
write_builtin_dataset(folder, num_files=4 if QUICK else 8, seconds=2.0 if QUICK else 4.0, sample_rate=RATE)
sentences = range(2 if QUICK else 5)  # the last English sentence (5) is kept for looking, never trained on
for voice in ("en-us+m3", "en-us+f2"):
    for i in sentences:
        (folder / "speech").mkdir(exist_ok=True)
        soundfile.write(folder / "speech" / f"{voice.replace('+', '_')}_{i}.wav", speech(i, voice), RATE)
run = WORK / "run"
shutil.rmtree(run, ignore_errors=True)
state = train(folder, run, get_preset("tiny"), DataConfig(target_length=512, batch_size=16, val_split=0.25),
              TrainConfig(epochs=1 if QUICK else 6, steps_per_epoch=5 if QUICK else 100, learning_rate=3e-3,
                          validation_steps=2 if QUICK else 4, audio_every=0), cache_dir=WORK / "cache", verbose=0)
trained = load_run_model(run)
print(f"speech: {SPEECH}; trained {state['step']} steps, validation "
      f"{state['history'][-1]['val_bits_per_sample']:.2f} bits/sample")

# %% [markdown]
# **The first layer's filters.** The input is a one-hot vector of 256 classes, so the
# first causal convolution's filter for a channel is simply a weight for every class at
# each of its two taps (the previous sample and the current one): a lookup table from
# amplitude to activation. The plot shows four channels' tables, ordered by mu-law class
# (quiet in the middle, loud at both ends).

# %%
kernel = np.asarray(trained.initial_conv.kernel)  # (taps, 256 classes, 16 channels)
fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), sharey=True)
for channel, ax in enumerate(axes):
    for tap, label in ((0, "sample t − 1"), (1, "sample t")):
        ax.plot(kernel[tap, :, channel], lw=0.8, label=label)
    ax.set(title=f"channel {channel}", xlabel="input class")
axes[0].set(ylabel="weight")
axes[0].legend(fontsize=7)
plt.suptitle("First-layer filters of the trained model: one weight per input class and tap", y=1.02)
plt.show()

# %% [markdown]
# Trained, the tables are no longer noise: neighbouring classes — similar amplitudes —
# get similar weights, although nothing told the network that class 101 lies next to
# class 102 (as one-hot vectors they are as different as 0 and 255). Curves that rise at
# both ends weigh loud samples of either sign alike, a detector of level; where the two
# taps' curves differ, the channel responds to the change from one sample to the next,
# like notebook 2's difference filter. The remaining jitter is on classes the short
# training saw rarely.
#
# **A dilated layer's filters.** Deeper in, a block's dilated convolution has, for each
# of its 2 × 16 outputs (16 filter and 16 gate channels), a 2-tap filter over the 16
# residual channels: `2 · 16` weights. Shown as images, one column per output channel:

# %%
block_index = 3
block = trained.residual_blocks[block_index]
weights = np.asarray(block.dilated_conv.kernel)  # (2 taps, 16 inputs, 32 outputs: 16 filter | 16 gate)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
limit = np.abs(weights).max()
for ax, half, name in ((axes[0], slice(0, 16), "filter (tanh)"), (axes[1], slice(16, 32), "gate (sigmoid)")):
    image = ax.imshow(weights[:, :, half].reshape(-1, 16), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set(title=f"{name} filters", xlabel="output channel", ylabel="tap · 16 + input channel")
fig.suptitle(f"Block {block_index} (dilation {block.dilation_rate}): the dilated convolution's weights", y=1.05)
fig.colorbar(image, ax=axes, shrink=0.8)
plt.show()

# %% [markdown]
# **Feature maps, and what the gates open for.** Now the model reads a held-out melody
# and a held-out sentence (or speech-like signal). For one block we take its input —
# `layer_inputs_model` returns every block's input — and apply the block's own dilated
# convolution to get the filter and gate pre-activations over time; the gate
# `σ(W_g ∗ x)` is the block's feature map of *how open* each channel is at each moment.
# A check first: the gated output computed this way must give the block's own skip
# output.

# %%
from keras import ops


def gate_maps(audio, index):
    """(gates, z) of block ``index`` over ``audio``: (time, 16) each, from the block's own layers."""
    classes = mu_law_encode(audio, 256)[None].astype(np.int32)
    block_input = trained.layer_inputs_model()({"audio": classes})[1 + index]
    layer = trained.residual_blocks[index]
    filter_part, gate_part = ops.split(layer.dilated_conv(block_input), 2, axis=-1)
    z = ops.tanh(filter_part) * ops.sigmoid(gate_part)
    difference = np.abs(np.asarray(layer.skip_conv(z)) - np.asarray(layer(block_input)[1])).max()
    assert difference < 1e-4, "the peek must reproduce the block's own output"
    return np.asarray(ops.sigmoid(gate_part))[0], np.asarray(z)[0]


sounds = {"melody (held out)": plucked_melody(1.0, RATE, seed=7000, instrument="bass"),
          f"{'speech' if SPEECH == 'espeak-ng' else 'speech-like'} (held out)": speech(5, "en-us+m3")[:RATE]}
maps = {name: gate_maps(audio, block_index)[0] for name, audio in sounds.items()}
fig, axes = plt.subplots(2, 2, figsize=(12, 5.5), sharex=True, gridspec_kw={"height_ratios": [1, 2.5]})
for column, (name, audio) in enumerate(sounds.items()):
    seconds = np.arange(len(audio)) / RATE
    axes[0, column].plot(seconds, audio, lw=0.4)
    axes[0, column].set(title=name, ylim=(-1, 1))
    axes[1, column].imshow(maps[name].T, aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="nearest",
                           extent=(0, seconds[-1], 15.5, -0.5))
    axes[1, column].set(xlabel="seconds", ylabel=f"block {block_index} gate channel")
plt.suptitle(f"Block {block_index}'s gates (0 closed, 1 open) over a melody and over speech", y=1.0)
plt.tight_layout()
plt.show()

mean_open = {name: gates.mean(0) for name, gates in maps.items()}
(melody_name, melody_gates), (speech_name, speech_gates) = mean_open.items()
fig, ax = plt.subplots(figsize=(8, 3))
channels = np.arange(16)
ax.bar(channels - 0.2, melody_gates, 0.4, label=melody_name)
ax.bar(channels + 0.2, speech_gates, 0.4, label=speech_name)
ax.set(xlabel="gate channel", ylabel="mean opening", title=f"Block {block_index}: which gates each sound opens")
ax.legend(fontsize=8)
plt.show()
for name, gates in maps.items():
    print(f"{name:24s} mean gate {gates.mean():.2f}; most open channels {np.argsort(-gates.mean(0))[:3].tolist()}")

# %% [markdown]
# What the maps show. While a note rings or a vowel is voiced the gates flicker once per
# pitch period: with dilation 8 this block compares samples 8 apart, and what it sees
# repeats with the waveform, so most of what the gates open for is *where in the cycle*
# the signal is. Where the speech pauses (the thin vertical stripes) every gate stops at
# a fixed opening of its own, set by its bias and the silent input. And averaged over
# each sound (the bars) most channels open about as much for the melody as for speech;
# a few differ — in the run saved here channel 4 opens more for speech. The model is
# unconditioned, nothing told it which sound it was hearing, and a 7-layer model after
# 600 steps has not divided its channels between the two: it models both with the same
# detectors of waveform shape.

# %% [markdown]
# ## Global conditioning: one model, many voices
#
# With `global_conditioning_classes = C`, each block adds `V_g · h` — a learned vector per
# class, the same at every time step — to the filter and gate. Same audio, different id,
# different prediction:

# %%
conditioned = WaveNet.from_preset("tiny", global_conditioning_classes=2)
outputs = [np.asarray(conditioned({"audio": classes, "global_id": np.array([i], np.int32)})) for i in (0, 1)]
print("inputs:", [i.name for i in conditioned.inputs])
print(f"mean |logits(id 0) − logits(id 1)| = {np.abs(outputs[0] - outputs[1]).mean():.4f}")

# %% [markdown]
# ## Local conditioning and fractional upsampling
#
# Local conditioning is a time series at a lower rate — e.g. 80 log-mel values every 256
# samples (16 ms at 16 kHz), which turns WaveNet into a *vocoder*. Each frame must become
# 256 per-sample vectors. The `UpsampleNetwork` does it with transposed convolutions whose
# kernel equals their stride: seen from the output, a convolution with *fractional* stride
# `1/s` — every frame writes exactly `s` outputs and no two frames overlap, so frame `k`
# conditions exactly samples `[k · hop, (k + 1) · hop)`. Three stages (4, 8, 8) make 256.

# %%
upsample = UpsampleNetwork((4, 8, 8), channels=3)
frames = np.zeros((1, 6, 3), np.float32)
frames[0, 2] = 1.0  # one frame on: which samples does it reach?
upsampled = np.asarray(upsample(frames))
reached = np.nonzero(np.abs(upsampled[0]).sum(-1) > 0)[0]
print(f"{frames.shape[1]} frames -> {upsampled.shape[1]} samples (hop {upsample.hop_length}); "
      f"frame 2 reaches samples {reached.min()} … {reached.max()}")
fig, axes = plt.subplots(2, 1, figsize=(9, 4))
axes[0].step(np.arange(6), frames[0, :, 0], where="post")
axes[0].set(title="6 conditioning frames (channel 0)", xlabel="frame")
axes[1].plot(upsampled[0, :, 0], lw=0.8)
axes[1].set(title="after UpsampleNetwork (untrained): frame 2 fills samples 512–767, a learned pattern",
            xlabel="sample")
plt.tight_layout()
plt.show()

# %% [markdown]
# The vocoder preset puts it all together: mel frames in, 256 logits per sample out.

# %%
vocoder = WaveNet.from_preset("vocoder", dilations=(1, 2, 4, 8), num_stacks=1) if QUICK else WaveNet.from_preset("vocoder")
hop = vocoder.model_config.hop_length
audio = np.zeros((1, 4 * hop), np.int32)
mel = np.zeros((1, 4, vocoder.model_config.local_conditioning_channels), np.float32)
print("audio", audio.shape, "+ mel", mel.shape, "->", tuple(vocoder({"audio": audio, "mel": mel}).shape),
      f"| {vocoder.count_params():,} parameters, receptive field {vocoder.receptive_field}")
