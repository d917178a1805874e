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
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.core.presets import get_preset
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
from wavenet_tf.run_dir import load_run_model

bundle = load_bundle(bundle_dir)
model = load_run_model(run)
rate = bundle.card.sample_rate
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
       title=f"Same samples, different cost (receptive field {bundle.card.receptive_field})")
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
# silence, and a model trained on melodies that decay into silence may well continue
# silence. **Priming** runs the full network once over real audio, fills the ring buffer with
# every layer's state, and generation continues from the prime's end. Only the last
# receptive field of a prime reaches the model, so what matters is how the prime *ends*.
#
# `wavenet export` stores a few short, lively **excerpts** of the training audio in the
# bundle (per instrument for a conditioned model, listed in the card with checksums), and
# `wavenet generate` and the server prime from one of them unless told otherwise
# (`--prime silence`, `--prime excerpt:NAME`, or `--prime FILE` with `--prime-start` and
# `--prime-seconds` to choose the part). The figures below compare the level of the same
# model's output primed with silence and with one of its excerpts: RMS in dBFS, and the share
# of 20 ms frames quieter than −45 dBFS.

# %%
import soundfile

from serving.excerpts import excerpt_name, level
from serving.generate import resolve_prime

for entry in bundle.excerpts:
    print(f"excerpt {excerpt_name(entry):10s} label {entry.get('label')}  from {entry.get('source')}")
num = int(SECONDS * rate)


def generate(temperature=1.0, prime="excerpt", global_id=1, seed=0):
    audio, _ = resolve_prime(bundle, prime, streams=1, seed=seed, global_ids=[global_id])
    sampler = StreamingSampler(bundle, temperature=temperature, seed=seed, global_ids=[global_id])
    sampler.prime(None if audio is None else audio[0])
    return sampler.generate(num)[0]


def describe(audio):
    figures = level(audio, rate)
    return f"{figures['rms_dbfs']:6.1f} dBFS RMS, {100 * figures['near_silent_fraction']:3.0f}% near-silent frames"


from_silence, from_excerpt = generate(prime="silence"), generate()
print(f"primed with silence:         {describe(from_silence)}")
print(f"primed with a harp excerpt:  {describe(from_excerpt)}")
display(Audio(from_excerpt, rate=rate))

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
    print(f"T = {t}: {describe(clip)}, spectral flatness {flatness:.2f} (white noise ≈ 0.56)")
axes[-1].set_xlabel("s")
plt.tight_layout()
plt.show()
display(Audio(clips[0.7], rate=rate))

# %% [markdown]
# ## Conditioning: choose the instrument
#
# The same model asked for `bass` (id 0) or `harp` (id 1), each primed from one of its own
# excerpts as `wavenet generate` does. The built-in `bass` plays MIDI notes 36–55 (65–196 Hz)
# and the `harp` 60–84 (262–1,047 Hz). The pitch printed for each clip is the median F0 over
# its voiced 64 ms frames as the quality benchmark measures it (`wavenet_tf.quality`: a frame
# is voiced when it is not near-silent and its normalized autocorrelation peaks at 0.6 or more
# between 60 Hz and 1 kHz), beside the same measure on the training melodies: a model that
# has learned the conditioning puts each id near its own instrument. A few hundred training
# steps may not be enough: read the numbers, then listen.

# %%
from wavenet_tf.quality import listener_measures


def pitch(audio):
    measures = listener_measures(audio, rate)
    f0 = measures["median_f0_hz"] or float("nan")
    return f"median pitch {f0:6.0f} Hz, {100 * measures['voiced_fraction']:3.0f}% voiced frames"


labels = ["bass", "harp"]
for label in labels:
    melodies = [soundfile.read(p, dtype="float32")[0] for p in sorted((folder / label).glob("*.wav"))[:4]]
    print(f"training {label}: {pitch(np.concatenate(melodies))}")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for ax, label_id in zip(axes, (0, 1)):
    clip = generate(global_id=label_id)
    print(f"generated id {label_id} ({labels[label_id]}): {pitch(clip)}, {describe(clip)}")
    with np.errstate(divide="ignore"):  # log10 of the silent bins' zero power
        ax.specgram(clip, NFFT=256, Fs=rate, noverlap=192, cmap="magma")
    ax.set(title=f"global id {label_id} ({labels[label_id]})", xlabel="s", ylabel="Hz")
    display(Audio(clip, rate=rate))
plt.tight_layout()
plt.show()

# %% [markdown]
# From the shell the same knobs are flags:
#
# ```
# wavenet generate BUNDLE --seconds 2 --temperature 0.8 --speaker harp --out out.wav   # primed from an excerpt
# wavenet generate BUNDLE --seconds 2 --speaker harp --prime melody.wav --prime-start 1.5 --prime-seconds 0.2 --out out.wav
# ```
#
# and `wavenet serve BUNDLE` streams the same generation over HTTP to a browser.
