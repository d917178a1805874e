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
# # 5. Generating sounds
#
# A trained WaveNet generates audio **autoregressively**: predict a distribution for the
# next sample, draw a class from it, append it to the input, repeat — 8,000 times for one
# second at 8 kHz. This notebook compares the textbook way (re-run the whole network for
# every sample) with the library's ring-buffer sampler, then plays with the knobs:
# temperature, priming and conditioning. Listen to the results, and look at them.

# %%
import os
import shutil
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Audio, display

from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.config import DataConfig, TrainConfig
from wavenet_tf.presets import get_preset
from wavenet_tf.train import train

QUICK = os.environ.get("WAVENET_NOTEBOOK_QUICK") == "1"
WORK = Path(os.environ.get("WAVENET_NOTEBOOK_WORK", "_work")) / "05_generating"
EPOCHS, STEPS = (2, 10) if QUICK else (8, 100)
SECONDS = 0.25 if QUICK else 1.5

# %% [markdown]
# ## A model to generate from
#
# `tiny` trained on the built-in melodies, this time with **global conditioning** on the
# instrument (the sub-folder names `bass` and `harp` become ids 0 and 1), then exported to
# a bundle — the ONNX graphs the streaming sampler runs on (notebook 6 looks inside).

# %%
from export.bundle import export_run

folder, run, bundle_dir = WORK / "melodies", WORK / "run", WORK / "bundle"
write_builtin_dataset(folder, num_files=8 if QUICK else 16, seconds=4.0, sample_rate=8000)
shutil.rmtree(run, ignore_errors=True)
state = train(folder, run, get_preset("tiny"), DataConfig(target_length=512, batch_size=16, val_split=0.25),
              TrainConfig(epochs=EPOCHS, steps_per_epoch=STEPS, learning_rate=3e-3, validation_steps=4, audio_every=0),
              global_conditioning=True, cache_dir=WORK / "cache", verbose=0)
print(f"trained {state['step']} steps; best validation loss {state['best']}")
card = export_run(run, bundle_dir, log=print)

# %% [markdown]
# ## Naive generation vs the ring-buffer sampler
#
# **Naive:** every new sample runs the network over the last receptive field of samples —
# `receptive_field` positions of work to keep one. **Fast WaveNet** (Paine et al., 2016)
# notices that almost all of it was computed at the previous steps: each layer only needs
# its own input from `dilation` steps ago. Keeping those in a ring buffer makes a sample
# cost one evaluation of each layer at one time step (`step.onnx`). Same model, same random
# numbers — the samples must be identical; only the time differs.

# %%
from serving.bundle import load_bundle
from serving.naive import naive_generate_classes
from serving.streaming_sampler import StreamingSampler
from wavenet_tf.sampling import naive_generate
from wavenet_tf.train import load_run_model

bundle = load_bundle(bundle_dir)
model = load_run_model(run)
rate = bundle.card["sample_rate"]
lengths = [16, 32] if QUICK else [50, 100, 200]
timings = {"Keras, naive": [], "onnxruntime, naive": [], "ring-buffer sampler": []}
for n in lengths:
    uniforms = np.random.default_rng(0).random((n, 1))
    started = time.perf_counter()
    naive_generate(model, n, seed=0, global_id=0)
    timings["Keras, naive"].append(time.perf_counter() - started)
    started = time.perf_counter()
    naive = naive_generate_classes(bundle, n, uniforms, global_ids=np.array([0]))
    timings["onnxruntime, naive"].append(time.perf_counter() - started)
    sampler = StreamingSampler(bundle, seed=0, global_ids=[0])
    started = time.perf_counter()
    fast = sampler.generate_classes(n)
    timings["ring-buffer sampler"].append(time.perf_counter() - started)
    assert np.array_equal(naive, fast), "the sampler must reproduce naive generation exactly"
for name, seconds in timings.items():
    print(f"{name:22s} " + "  ".join(f"{n} samples {s:7.3f} s" for n, s in zip(lengths, seconds))
          + f"  -> {lengths[-1] / seconds[-1]:,.0f} samples/s")
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, seconds in timings.items():
    ax.plot(lengths, seconds, "o-", label=name)
ax.set(xlabel="samples generated", ylabel="seconds", yscale="log",
       title=f"Same samples, different cost (receptive field {bundle.card['receptive_field']})")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The gap grows with the receptive field: naive work per sample is proportional to it, the
# sampler's is not. For the `small` preset (2,048 samples) the sampler is two orders of
# magnitude faster (notebook 6).
#
# ## Priming
#
# Generation needs a past. With none, the sampler starts from a receptive field of digital
# silence — and a model trained on melodies that decay into silence may well continue
# silence (the demo's model does; this one, conditioned on the instrument, need not).
# **Priming** runs the full network once over a real snippet, fills the ring buffer with
# every layer's state, and continues from there: the start of the generated audio then
# follows the snippet's pitch and level.

# %%
from wavenet_tf.demo import loudest_snippet

import soundfile

melody, _ = soundfile.read(sorted(folder.rglob("*.wav"))[1], dtype="float32")  # a harp melody
prime = loudest_snippet(melody, int(0.05 * rate))
num = int(SECONDS * rate)


def generate(temperature=1.0, prime_audio=prime, global_id=1, seed=0):
    sampler = StreamingSampler(bundle, temperature=temperature, seed=seed, global_ids=[global_id])
    sampler.prime(prime_audio)
    return sampler.generate(num)[0]


def rms_db(audio):
    return 20 * np.log10(np.sqrt(np.mean(audio**2)) + 1e-9)


from_silence, from_melody = generate(prime_audio=None), generate()
print(f"primed with silence: {rms_db(from_silence):6.1f} dBFS RMS;  primed with 50 ms of a melody: "
      f"{rms_db(from_melody):6.1f} dBFS RMS")
display(Audio(from_melody, rate=rate))

# %% [markdown]
# ## Temperature
#
# Sampling divides the logits by a temperature `T` before the softmax. `T < 1` sharpens the
# distribution towards its most likely class — cleaner, more repetitive, and at the limit
# `T → 0` (argmax) often stuck; `T > 1` flattens it — noisier. `T = 1` samples the model as
# trained.

# %%
temperatures = [0.0, 0.7, 1.0, 1.3]
clips = {t: generate(temperature=t) for t in temperatures}
fig, axes = plt.subplots(len(temperatures), 1, figsize=(9, 6), sharex=True)
for ax, (t, clip) in zip(axes, clips.items()):
    ax.plot(np.arange(len(clip)) / rate, clip, lw=0.4)
    ax.set(ylim=(-1, 1), ylabel=f"T={t}")
    power = np.abs(np.fft.rfft(clip)) ** 2 + 1e-12
    flatness = np.exp(np.mean(np.log(power))) / np.mean(power)  # 1 for a flat spectrum, near 0 for a tone
    print(f"T = {t}: RMS {rms_db(clip):6.1f} dBFS, spectral flatness {flatness:.2f} (white noise ≈ 0.56)")
axes[-1].set_xlabel("s")
plt.tight_layout()
plt.show()
display(Audio(clips[0.7], rate=rate))

# %% [markdown]
# ## Conditioning: choose the instrument
#
# The same model, primed the same way, asked for `bass` (id 0) or `harp` (id 1). Look at
# the spectrograms: the Karplus–Strong `bass` has a longer delay line — lower pitches.

# %%
labels = ["bass", "harp"]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for ax, label_id in zip(axes, (0, 1)):
    clip = generate(global_id=label_id)
    ax.specgram(clip, NFFT=256, Fs=rate, noverlap=192, cmap="magma")
    spectrum = np.abs(np.fft.rfft(clip))
    centroid = (np.fft.rfftfreq(len(clip), 1 / rate) * spectrum).sum() / spectrum.sum()
    ax.set(title=f"global id {label_id} ({labels[label_id]}): centroid {centroid:.0f} Hz", xlabel="s", ylabel="Hz")
    display(Audio(clip, rate=rate))
plt.tight_layout()
plt.show()

# %% [markdown]
# From the shell the same knobs are flags:
#
# ```
# wavenet generate BUNDLE --seconds 2 --temperature 0.8 --speaker harp --prime melody.wav --out out.wav
# ```
#
# and `wavenet serve BUNDLE` streams the same generation over HTTP to a browser.
