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
# # 4. Training on your data
#
# From a folder of audio to a trained WaveNet with `model.fit`: the run directory, the loss
# in **bits per sample** against the **unigram baseline**, held-out evaluation, TensorBoard,
# and how long real training takes. Swap the built-in melodies for your own folder — any
# WAV/FLAC/OGG/MP3, any rate and channel count; sub-folder names become labels.
#
# The shell equivalent of this notebook:
#
# ```
# wavenet data builtin melodies/ --sample-rate 8000
# wavenet train melodies/ --out runs/first --preset tiny --epochs 6 --steps-per-epoch 100
# wavenet evaluate runs/first
# tensorboard --logdir runs/first/logs
# ```

# %%
import csv
import os
import shutil
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.core.presets import get_preset

QUICK = os.environ.get("WAVENET_NOTEBOOK_QUICK") == "1"
WORK = Path(os.environ.get("WAVENET_NOTEBOOK_WORK", "_work")) / "04_training"
EPOCHS, STEPS = (2, 10) if QUICK else (8, 100)

# %% [markdown]
# ## The data
#
# Sixteen melodies (two instruments) at 8 kHz. `DataConfig` says how to cut them: windows
# predicting `target_length` samples each, `batch_size` windows per step, and a quarter of
# the *files* held out for validation.

# %%
folder = WORK / "melodies"
write_builtin_dataset(folder, num_files=8 if QUICK else 16, seconds=4.0, sample_rate=8000)
model_config = get_preset("tiny")
data_config = DataConfig(target_length=512, batch_size=16, val_split=0.25)
train_config = TrainConfig(epochs=EPOCHS, steps_per_epoch=STEPS, learning_rate=3e-3, validation_steps=8,
                           audio_every=EPOCHS, audio_seconds=0.5)
print(model_config.to_dict())

# %% [markdown]
# ## `model.fit` on the `tf.data` pipeline
#
# `wavenet_tf.train.train` builds the model, compiles it with sparse cross-entropy on the
# logits, and calls `model.fit` on the window stream from notebook 1. The run directory
# holds everything needed to resume after a crash (`--resume`): configuration, checkpoints
# written atomically with `state.json` as the commit point, `metrics.csv`, the best and
# last `.keras` models, and TensorBoard logs.

# %%
from wavenet_tf.train import train

run = WORK / "run"
shutil.rmtree(run, ignore_errors=True)
started = time.perf_counter()
state = train(folder, run, model_config, data_config, train_config, cache_dir=WORK / "cache", verbose=2)
seconds = time.perf_counter() - started
print(f"trained {state['step']} steps in {seconds:.0f} s; files in the run:")
print(sorted(p.name for p in run.iterdir()))

# %% [markdown]
# ## Loss in bits per sample
#
# The loss is cross-entropy in nats; divided by ln 2 it is **bits per sample** — how many
# bits an ideal coder would spend per sample using the model's predictions. Uniform
# guessing costs 8 bits; the unigram baseline (class frequencies only, no context) is the
# line a model must get under to have learnt anything about *time*.

# %%
from wavenet_tf.data import prepare
from wavenet_tf.core.bits import unigram_bits
from wavenet_tf.core.mu_law import mu_law_encode

rows = list(csv.DictReader(open(run / "metrics.csv")))
epochs = [int(r["epoch"]) for r in rows]
train_bits = [float(r["bits_per_sample"]) for r in rows]
val_bits = [float(r["val_bits_per_sample"]) for r in rows]
prepared = prepare(folder, model_config, data_config, cache_dir=WORK / "cache")
baseline = unigram_bits(np.concatenate([mu_law_encode(t.audio, 256) for t in prepared.val]))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(epochs, train_bits, "o-", label="training")
ax.plot(epochs, val_bits, "s-", label="validation (held-out files)")
ax.axhline(baseline, color="k", ls="--", lw=1, label=f"unigram baseline {baseline:.2f}")
ax.axhline(8, color="0.6", ls=":", lw=1, label="uniform (8 bits)")
ax.set(xlabel="epoch", ylabel="bits per sample", title="WaveNet `tiny` on the built-in melodies")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Held-out evaluation
#
# Validation during training uses random windows. `wavenet evaluate` (here its function)
# scores *every* sample of every held-out file that has a full receptive field, with the
# best checkpoint — the number to compare models by.

# %%
from serving.evaluate import evaluate_tracks, keras_logits_fn
from wavenet_tf.run_dir import load_run_model

model = load_run_model(run)
report = evaluate_tracks(keras_logits_fn(model), prepared.val, model.receptive_field, 256)
print(f"held-out: {report['bits_per_sample']:.3f} bits/sample over {report['num_samples']:,} samples "
      f"(unigram {report['unigram_bits']:.3f})")

# %% [markdown]
# ## TensorBoard
#
# `tensorboard --logdir <run>/logs` shows, per epoch: loss and bits/sample for training and
# validation, the learning rate, and a short generated clip every `audio_every` epochs
# (*Audio* tab) — the quickest way to *hear* whether training is going anywhere. The event
# files are here:

# %%
for path in sorted((run / "logs").rglob("events.out.tfevents.*")):
    print(path.relative_to(run), f"{path.stat().st_size:,} bytes")

# %% [markdown]
# ## How long does real training take?
#
# The number that matters is **timesteps per second** (predicted samples). Measured here,
# on this machine:

# %%
timesteps = state["step"] * data_config.batch_size * data_config.target_length
rate = timesteps / seconds
print(f"{timesteps:,} timesteps in {seconds:.0f} s = {rate:,.0f} timesteps/s (tiny, this machine, validation included)")
for hours in (1, 10):
    print(f"  {hours:>2} h would cover {rate * 3600 * hours / model_config.sample_rate / 3600:,.1f} h of 8 kHz audio, once")

# %% [markdown]
# Published WaveNets train for days on GPUs over tens of hours of audio (hundreds of
# thousands of steps). On a CPU, `tiny` learns the built-in melodies in minutes (the
# demo's `make bench-learn` reaches about 2.3 bits against a 6.5-bit baseline); a
# `small` model on an hour of your own recordings is an overnight job; larger models want a
# GPU (`--strategy mirrored`) or several machines (`--strategy multiworker`). `wavenet
# bench-train` measures your machine.
