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
# priming, the draw (temperature and top-k) and conditioning — and measures why a model
# that predicts well can still generate noise. Listen to the results, and look at them.

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
TRAIN_STEPS = 20 if QUICK else 1500
SECONDS = 0.25 if QUICK else 2.0

# %% [markdown]
# ## A model to generate from
#
# `tiny` trained on the built-in melodies with `wavenet demo`'s recipe (`demo_configs`: its
# preset, batch, learning rate, 1,500 steps and **jittered inputs**, explained under *The
# draw* below), this time with **global conditioning**
# on the instrument (the sub-folder names `bass` and `harp` become ids 0 and 1), then
# exported to a bundle — the ONNX graphs the streaming sampler runs on (notebook 6 looks
# inside).

# %%
from export.bundle import export_run
from wavenet_tf.apps.demo import demo_configs

folder, run, bundle_dir = WORK / "melodies", WORK / "run", WORK / "bundle"
write_builtin_dataset(folder, num_files=8 if QUICK else 16, seconds=4.0, sample_rate=8000)
shutil.rmtree(run, ignore_errors=True)
model_config, data_config, train_config = demo_configs(TRAIN_STEPS)
print(f"inputs jittered by a Gaussian of σ up to {data_config.input_noise:g} classes per window; "
      f"{train_config.epochs} × {train_config.steps_per_epoch} steps at learning rate {train_config.learning_rate:g}")
state = train(folder, run, model_config, data_config, train_config.replace(audio_every=0),
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
from wavenet_tf.core.sampling import DEFAULT_TEMPERATURE

for entry in bundle.excerpts:
    print(f"excerpt {excerpt_name(entry):10s} label {entry.get('label')}  from {entry.get('source')}")
num = int(SECONDS * rate)


def generate(temperature=DEFAULT_TEMPERATURE, top_k=None, prime="excerpt", global_id=1, seed=0):  # None: the card's
    audio, _ = resolve_prime(bundle, prime, streams=1, seed=seed, global_ids=[global_id])
    sampler = StreamingSampler(bundle, temperature=temperature, top_k=top_k, seed=seed, global_ids=[global_id])
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
# ## The draw: temperature and top-k
#
# Each sample is drawn from the predicted distribution over 256 classes. Two knobs shape
# the draw:
#
# - **temperature** `T` divides the logits before the softmax: `T < 1` leans towards the
#   most likely classes, `T > 1` spreads out, `T → 0` is argmax (often stuck);
# - **top-k** keeps only the `k` most likely classes and renormalizes among them.
#
# Why truncate a distribution the model learned? Because generation feeds the model its own
# draws. In training it only ever saw real pasts (teacher forcing); at generation a class
# from the unlikely tail — drawn now and then even when every step is 99% right — is a past
# it never saw, it predicts badly from there, and errors compound until a tone is noise
# (**exposure bias**). Two things fight it, and the model above has both: it was trained on
# *jittered* inputs (`DataConfig.input_noise`: each window's inputs, never its targets, moved
# by rounded Gaussian noise of its own σ up to 6 classes), so it has learned to pull an
# off-key past back to the tone; and its default draw (`card.default_top_k`, which export sets
# for a jitter-trained model) never takes a class
# from the tail. The table measures the same model, the same excerpt, four draws, three
# seeds each, as a listener would (`wavenet_tf.quality.listener_measures`): **periodicity**
# (normalized autocorrelation at the pitch lag: 1 for a steady tone, near 0 for noise),
# **voiced** frames (periodicity ≥ 0.6) and the level.

# %%
from wavenet_tf.quality import listener_measures

card_top_k = bundle.card.default_top_k
draws = {"T 1, every class": (1.0, 0), f"T 1, top-{card_top_k} (default)": (DEFAULT_TEMPERATURE, card_top_k),
         "T 0.7, every class": (0.7, 0), "T 0 (argmax)": (0.0, 0)}
heard = {}
for name, (temperature, top_k) in draws.items():
    clips = [generate(temperature=temperature, top_k=top_k, seed=seed) for seed in range(3)]
    rows = [listener_measures(clip, rate) for clip in clips]
    heard[name] = clips[0]
    print(f"{name:22s} periodicity {np.mean([r['periodicity'] or 0 for r in rows]):.2f}, "
          f"voiced {100 * np.mean([r['voiced_fraction'] for r in rows]):3.0f}%, "
          f"level {np.mean([r['rms_dbfs'] for r in rows]):6.1f} dBFS")
melodies = [soundfile.read(p, dtype="float32")[0] for p in sorted(folder.glob("*/*.wav"))]
data = [listener_measures(m, rate) for m in melodies]
print(f"{'the training melodies':22s} periodicity {np.mean([r['periodicity'] or 0 for r in data]):.2f}, "
      f"voiced {100 * np.mean([r['voiced_fraction'] for r in data]):3.0f}%, "
      f"level {np.mean([r['rms_dbfs'] for r in data]):6.1f} dBFS")
fig, axes = plt.subplots(len(heard), 1, figsize=(9, 7), sharex=True)
for ax, (name, clip) in zip(axes, heard.items()):
    with np.errstate(divide="ignore"):  # log10 of the silent bins' zero power
        ax.specgram(clip, NFFT=256, Fs=rate, noverlap=192, cmap="magma")
    ax.set(ylim=(0, 2000), ylabel="Hz")
    ax.set_title(name, fontsize=9)
axes[-1].set_xlabel("s")
plt.tight_layout()
plt.show()
display(Audio(heard[f"T 1, top-{card_top_k} (default)"], rate=rate))
display(Audio(heard["T 1, every class"], rate=rate))

# %% [markdown]
# A tone shows as horizontal lines (a fundamental and its harmonics), noise as a smear.
# Read the numbers above against the melodies' own: the full distribution at `T = 1` is the
# model as trained, and where it smears, the truncated draw is what keeps the tone; argmax
# tends to lock into one repeating cycle. Compare the levels too: a model that pulls an off
# past back toward a tone can also pull it toward silence — the harp's notes decay fast, and
# a continuation may fade the way they do. How far each of these lands from the data, and how
# much of it comes from the jittered training rather than the draw, is measured across seeds
# and trainings in [docs/sound.md](../docs/sound.md) (`wavenet bench-sound`). None of this
# changes the held-out bits/sample for the better — the jitter makes them worse — which is
# why a sound is judged by listening measures, not by the loss alone.

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
# wavenet generate BUNDLE --seconds 2 --speaker harp --out out.wav                       # primed from an excerpt
# wavenet generate BUNDLE --seconds 2 --speaker harp --top-k 0 --temperature 0.8 --out out.wav   # another draw
# wavenet generate BUNDLE --seconds 2 --speaker harp --prime melody.wav --prime-start 1.5 --prime-seconds 0.2 --out out.wav
# ```
#
# and `wavenet serve BUNDLE` streams the same generation over HTTP to a browser.
