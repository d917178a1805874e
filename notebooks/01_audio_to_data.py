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
# # 1. Audio to data
#
# WaveNet models raw audio: a long list of numbers, one per *sample*. Before a network can
# learn from sound we have to understand what those numbers are, what is lost when we
# store them, and how `wavenet_tf` turns a folder of audio files into training batches.
#
# What you will see here, each with a measurement:
#
# 1. **Sampling rate** — how many numbers per second, Nyquist's limit, and aliasing.
# 2. **Bit depth** — quantization noise and the 6 dB-per-bit rule.
# 3. **mu-law** — why WaveNet's 8-bit mu-law beats 8-bit linear for quiet sounds.
# 4. **Audio as a time series** — the built-in melodies.
# 5. **The pipeline** — `wavenet_tf.data.prepare` and `window_dataset`: windows, classes,
#    and the class histogram that sets the baseline every model must beat.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from wavenet_tf.core.mu_law import mu_law_decode, mu_law_encode

QUICK = os.environ.get("WAVENET_NOTEBOOK_QUICK") == "1"  # the test suite runs every notebook small
WORK = Path(os.environ.get("WAVENET_NOTEBOOK_WORK", "_work")) / "01_audio_to_data"
WORK.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. Sampling rate, Nyquist and aliasing
#
# A sampled signal keeps the value of a continuous wave every `1 / rate` seconds. Any
# frequency above half the rate (the *Nyquist frequency*) cannot be told apart from a
# lower one: it *aliases*. Sample a 5 kHz tone at 8 kHz and its spectrum peaks at
# 8 − 5 = 3 kHz — a tone that was never played.

# %%
rate = 8000
t = np.arange(rate) / rate  # one second


def peak_frequency(signal: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / sample_rate)[spectrum.argmax()])


for tone in (1000, 3000, 5000, 7000):
    print(f"a {tone} Hz tone sampled at {rate} Hz peaks at {peak_frequency(np.sin(2 * np.pi * tone * t), rate):.0f} Hz")

fine = np.arange(0, 0.002, 1 / 400_000)  # a near-continuous time axis for drawing
fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(1000 * fine, np.sin(2 * np.pi * 5000 * fine), lw=0.8, label="5 kHz tone (continuous)")
ax.plot(1000 * fine, np.sin(2 * np.pi * -3000 * fine), lw=0.8, ls="--", label="−3 kHz alias")
samples = t[t < 0.002]
ax.plot(1000 * samples, np.sin(2 * np.pi * 5000 * samples), "ko", label="samples at 8 kHz")
ax.set(xlabel="ms", title="Both waves pass through every sample: at 8 kHz, 5 kHz is 3 kHz")
ax.legend(loc="upper right", fontsize=8)
plt.show()

# %% [markdown]
# The dots cannot say which wave they came from. That is why audio is low-pass filtered
# before it is sampled, and why `wavenet_tf` resamples with a proper anti-aliasing filter
# (soxr) instead of dropping samples. Speech models use 16 kHz (content up to 8 kHz); music
# often 22.05–44.1 kHz. WaveNet's cost per second grows with the rate: every sample is one
# network evaluation.
#
# ## 2. Bit depth and quantization noise
#
# Each sample is stored with a fixed number of bits. Rounding to the nearest of `2^bits`
# levels adds an error — *quantization noise* — and theory says a full-scale sine keeps a
# signal-to-noise ratio of about **6.02 · bits + 1.76 dB**. Let us measure it.

# %%
def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean**2) / np.sum((clean - noisy) ** 2)))


def linear_quantize(audio: np.ndarray, bits: int) -> np.ndarray:
    levels = 2 ** (bits - 1)
    return np.clip(np.round(audio * levels), -levels, levels - 1) / levels


sine = 0.999 * np.sin(2 * np.pi * 441.3 * np.arange(48000) / 48000)
bits = np.arange(4, 17)
measured = [snr_db(sine, linear_quantize(sine, b)) for b in bits]
for b, m in zip(bits, measured):
    print(f"{b:2d} bits: measured {m:5.1f} dB, theory {6.02 * b + 1.76:5.1f} dB")
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(bits, measured, "o", label="measured (full-scale sine)")
ax.plot(bits, 6.02 * bits + 1.76, label="6.02·bits + 1.76 dB")
ax.set(xlabel="bits per sample", ylabel="SNR (dB)", title="Each bit buys 6 dB")
ax.legend()
plt.show()

# %% [markdown]
# The rule holds from about 8 bits up. With very few bits the error is no longer a small,
# uniform, signal-independent noise (it follows the waveform), so the measurement falls a
# couple of dB short of the formula.
#
# ## 3. Why 8-bit mu-law beats 8-bit linear
#
# WaveNet predicts each sample as one of 256 classes — 8 bits. Linear 8-bit audio gives
# about 50 dB for a full-scale sine, and much less for quiet sounds, because the noise step
# is the same everywhere. **mu-law** (ITU-T G.711) compresses the amplitude with
# `sign(x) · ln(1 + μ|x|) / ln(1 + μ)` (μ = 255) before quantizing: the steps are fine
# near zero and coarse near full scale, so the SNR stays roughly constant over a wide
# range of levels. The library's `mu_law_encode`/`mu_law_decode` (NumPy, in
# `wavenet_tf.core.mu_law`, used by training and serving alike) do exactly this.

# %%
levels_db = np.arange(-60, 1, 4)
linear_snr, mu_snr = [], []
for level in levels_db:
    x = (10 ** (level / 20)) * sine
    linear_snr.append(snr_db(x, linear_quantize(x, 8)))
    mu_snr.append(snr_db(x, mu_law_decode(mu_law_encode(x, 256), 256)))
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(levels_db, linear_snr, "o-", label="8-bit linear")
ax.plot(levels_db, mu_snr, "s-", label="8-bit mu-law")
ax.set(xlabel="sine level (dBFS)", ylabel="SNR (dB)", title="mu-law keeps quiet sounds clean")
ax.legend()
plt.show()
at = list(levels_db).index(-40)
print(f"a sine at -40 dBFS: 8-bit linear {linear_snr[at]:.1f} dB SNR, 8-bit mu-law {mu_snr[at]:.1f} dB")

# %% [markdown]
# mu-law gives up a little at full scale and wins by 20 dB and more on quiet passages —
# where most of natural audio lives. The classes also make prediction a *classification*
# problem: a softmax over 256 values can say "it is either here or there" (a bimodal
# guess), which a single regression output cannot.
#
# ## 4. Audio as a time series
#
# `wavenet_tf` ships its own data: plucked-string melodies synthesized with the
# Karplus–Strong algorithm (a delay line with a low-pass filter in its feedback loop), in
# two timbres, `harp` and `bass`. Nothing is downloaded; the same arguments always write
# the same bytes.

# %%
from wavenet_tf.builtin_data import write_builtin_dataset

rate = 8000
paths = write_builtin_dataset(WORK / "melodies", num_files=4 if QUICK else 8, seconds=2.0 if QUICK else 4.0,
                              sample_rate=rate)
print("\n".join(str(p) for p in paths))

# %%
import soundfile as sf

audio, file_rate = sf.read(paths[0], dtype="float32")
fig, axes = plt.subplots(2, 1, figsize=(9, 4))
axes[0].plot(np.arange(len(audio)) / file_rate, audio, lw=0.4)
axes[0].set(title=f"{paths[0].name}: {len(audio)} samples at {file_rate} Hz", xlabel="s")
zoom = slice(2000, 2200)
axes[1].plot(np.arange(len(audio))[zoom], audio[zoom], ".-", lw=0.6)
axes[1].set(title="200 samples: a waveform is a time series, one value per 1/8000 s", xlabel="sample index")
plt.tight_layout()
plt.show()

# %% [markdown]
# Zoomed in, the string's period is visible: the next value is very predictable from the
# last few hundred. That predictability is what WaveNet learns, one sample at a time:
# `p(x_t | x_1, …, x_{t−1})`.
#
# ## 5. The library's loader and `tf.data` pipeline
#
# `prepare` finds the files (a folder, a glob, or a CSV manifest), decodes each once into a
# cache (every format through soundfile, the same decoder serving uses), mixes to mono, removes DC, resamples to the model's rate with soxr, trims
# silence, and splits *by file* into training and validation sets, so validation measures
# generalization rather than memory. Sub-folder names become labels.
#
# (`tensorflow-io` used to be the way to decode audio in TensorFlow; it does not load with
# TensorFlow 2.18+ and is no longer maintained, so the library does not use it.)

# %%
from wavenet_tf.core.config import DataConfig
from wavenet_tf.data import prepare, window_dataset
from wavenet_tf.core.presets import get_preset

model_config = get_preset("tiny")
data = prepare(WORK / "melodies", model_config, DataConfig(val_split=0.25), cache_dir=WORK / "cache")
print(data.summary())
for track in data.train + data.val:
    print(f"{Path(track.path).name:14s} label {track.label:5s} {len(track.audio) / model_config.sample_rate:.2f} s")

# %% [markdown]
# `window_dataset` cuts random windows of `receptive_field + target_length` samples and
# quantizes them to mu-law classes inside the `tf.data` graph. The input is every class
# but the last; the target is the same sequence shifted by one, starting where the model
# first sees a full receptive field. Window `i` is a pure function of `(seed, i)`, which
# is what lets training resume exactly.

# %%
receptive_field = model_config.receptive_field
dataset = window_dataset(data.train, receptive_field, target_length=256, batch_size=8,
                         quantization_channels=model_config.quantization_channels, seed=0)
inputs, targets = next(iter(dataset))
print("inputs:", inputs["audio"].shape, inputs["audio"].dtype, " targets:", targets.shape, targets.dtype)
fig, axes = plt.subplots(2, 1, figsize=(9, 4), sharex=True)
for row in range(3):
    axes[0].plot(inputs["audio"][row].numpy(), lw=0.6)
axes[0].set(title=f"three windows as mu-law classes (receptive field {receptive_field} + 255 inputs)",
            ylabel="class")
axes[1].plot(np.arange(receptive_field, receptive_field + 256), targets[0].numpy(), lw=0.6, color="C0")
axes[1].axvline(receptive_field, color="k", lw=0.5)
axes[1].set(title="the first window's targets: the inputs shifted by one, from the receptive field on",
            xlabel="position in window", ylabel="class")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The class histogram and the unigram baseline
#
# If a model ignored all context and only learnt how often each class occurs, its loss
# would be the entropy of this histogram — the *unigram baseline*, in bits per sample. A
# uniform guess costs log2(256) = 8 bits. Every model in this compendium is judged against
# the unigram baseline: beating it means the network uses the past.

# %%
from wavenet_tf.core.bits import unigram_bits

all_classes = np.concatenate([mu_law_encode(t.audio, 256) for t in data.train])
print(f"unigram baseline: {unigram_bits(all_classes):.3f} bits/sample (uniform: 8.000)")
fig, ax = plt.subplots(figsize=(8, 3))
ax.bar(np.arange(256), np.bincount(all_classes, minlength=256), width=1.0)
ax.set(xlabel="mu-law class", ylabel="count", yscale="log",
       title="mu-law spreads quiet and loud samples over the classes; silence sits at 127/128")
plt.show()
