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
# # 6. Export and real time
#
# Training needs TensorFlow; generating should not. `wavenet export` turns a run into a
# **bundle**: a SavedModel (for TensorFlow users) and ONNX graphs that onnxruntime runs on a
# plain CPU — the full-sequence network (`wavenet.onnx`) and the one-time-step graph
# (`step.onnx`) that the ring-buffer sampler calls once per sample. Each is checked against
# the Keras model before the bundle is written. Then we measure the real-time factor.

# %%
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from export.bundle import export_run
from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.core.presets import get_preset
from wavenet_tf.run_dir import load_run_model
from wavenet_tf.train import train

QUICK = os.environ.get("WAVENET_NOTEBOOK_QUICK") == "1"
WORK = Path(os.environ.get("WAVENET_NOTEBOOK_WORK", "_work")) / "06_export_and_real_time"
SECONDS = 0.1 if QUICK else 2.0

# %% [markdown]
# ## A run to export
#
# Two models: `tiny` trained briefly on 8 kHz melodies, and the `realtime` preset (16 kHz,
# 10 layers, 64 ms of context) trained for a few steps — its speed does not depend on how
# well it is trained.

# %%
def quick_run(name, preset, rate, epochs, steps):
    folder, run = WORK / f"melodies{rate}", WORK / name
    write_builtin_dataset(folder, num_files=4, seconds=2.0, sample_rate=rate)
    shutil.rmtree(run, ignore_errors=True)
    train(folder, run, get_preset(preset), DataConfig(target_length=512, batch_size=8, val_split=0.25),
          TrainConfig(epochs=epochs, steps_per_epoch=steps, learning_rate=3e-3, validation_steps=2, audio_every=0),
          cache_dir=WORK / "cache", verbose=0)
    return run


tiny_run = quick_run("tiny-run", "tiny", 8000, 2, 5 if QUICK else 100)
realtime_run = quick_run("realtime-run", "realtime", 16000, 1, 2)

# %% [markdown]
# ## Export with verification
#
# `export_run(..., verify=True)` (the CLI's `wavenet export RUN --out BUNDLE --verify`)
# compares, on random input, Keras against: the ONNX full graph, the SavedModel, the layer
# inputs used for priming, and `step.onnx` teacher-forced over more than two receptive
# fields. Any difference above 1e-4 fails the export.

# %%
tiny_bundle, realtime_bundle = WORK / "tiny-bundle", WORK / "realtime-bundle"
export_run(tiny_run, tiny_bundle, verify=True, log=print)
export_run(realtime_run, realtime_bundle, log=print)
print(sorted(p.name for p in tiny_bundle.iterdir()))

# %% [markdown]
# `model.json` is the bundle's *model card*: configuration, training summary, SHA-256 of
# every file (a truncated or altered file is refused at load), and the **contract** of each
# graph — its inputs and outputs with shapes and meaning:

# %%
from serving.bundle import load_bundle

bundle = load_bundle(tiny_bundle)
for graph, contract in bundle.card.graphs.items():
    print(graph)
    for kind in ("inputs", "outputs"):
        for tensor in getattr(contract, kind):
            print(f"  {kind[:-1]:6s} {tensor.name:13s} {tensor.dtype:7s} {str(list(tensor.shape)):24s} {tensor.meaning}")

# %% [markdown]
# ## Parity, by hand
#
# The same check the export ran, in a few lines: Keras and onnxruntime on the same input.

# %%
import onnxruntime as ort
import tensorflow as tf

model = load_run_model(tiny_run)
classes = np.random.default_rng(0).integers(0, 256, size=(2, 1000)).astype(np.int32)
keras_logits = np.asarray(model({"audio": classes}))
session = ort.InferenceSession(str(tiny_bundle / "wavenet.onnx"), providers=["CPUExecutionProvider"])
onnx_logits = session.run(["logits"], {"audio": classes})[0]
saved = tf.saved_model.load(str(tiny_bundle / "saved_model"))
saved_logits = saved.signatures["serve"](audio=tf.constant(classes))["logits"].numpy()
print(f"max |Keras − ONNX|       = {np.abs(keras_logits - onnx_logits).max():.2e}")
print(f"max |Keras − SavedModel| = {np.abs(keras_logits - saved_logits).max():.2e}")

# %% [markdown]
# ## The step graph
#
# `step.onnx` computes one time step for B streams. It is written node by node from the
# Keras weights, shaped for onnxruntime: on tensors this small the cost is per node, not per
# multiply, so all layers' past-tap products are **one** batched MatMul at the start, all
# skip products **one** Gemm at the end, and each layer is about four nodes (two Gemms with
# fused tanh/sigmoid, a Mul, the residual Gemm). Node types before optimization:

# %%
import onnx

from serving.onnx_step import optimized_node_count

for path in (tiny_bundle, realtime_bundle):
    graph = onnx.load(str(path / "step.onnx")).graph
    layers = load_bundle(path).card.num_layers
    print(f"{path.name}: {layers} layers, {len(graph.node)} nodes written, "
          f"{optimized_node_count(path / 'step.onnx')} after onnxruntime's optimization")
    print("   ", dict(Counter(node.op_type for node in graph.node).most_common()))

# %% [markdown]
# Teacher forcing proves the step graph *is* the network: feed the true classes one step at
# a time and the logits equal the full forward pass's at every position.

# %%
from serving.evaluate import onnx_logits_fn, step_logits_fn

sequence = classes[:1, :300]
full = onnx_logits_fn(bundle)(sequence, None, None)
stepped = step_logits_fn(bundle)(sequence, None, None)
print(f"300 steps: max |full − step| = {np.abs(full - stepped).max():.2e}")

# %% [markdown]
# ## Generation without TensorFlow
#
# `serving/` imports NumPy, onnxruntime and small I/O libraries only, so a deployment needs
# `requirements-serving.txt`, not TensorFlow. A fresh interpreter proves it:

# %%
check = f"""
import sys
from serving.bundle import load_bundle
from serving.streaming_sampler import StreamingSampler
audio = StreamingSampler(load_bundle({str(tiny_bundle)!r}), seed=0).generate(800)
print("generated", audio.shape, "| tensorflow imported:", "tensorflow" in sys.modules)
"""
print(subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True,
                     cwd=Path.cwd().parent).stdout)

# %% [markdown]
# ## The real-time factor
#
# `wavenet bench BUNDLE` measures the sampler for 1, 8 and 32 streams (one onnxruntime
# thread), chunk latency, time to first audio, and naive generation of the same model in
# the same run. The **real-time factor** is samples generated per second divided by the
# sample rate: ≥ 1 means a stream plays without gaps.

# %%
from serving.bench import run_bench

reports = {path.name: run_bench(path, seconds=SECONDS, naive_samples=8 if QUICK else 64)
           for path in (tiny_bundle, realtime_bundle)}

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, report in reports.items():
    factors = [report[f"samples_per_sec_{n}"] / report["sample_rate"] for n in (1, 8, 32)]
    ax.plot([1, 8, 32], factors, "o-", label=f"{name} ({report['sample_rate'] // 1000} kHz, "
                                              f"{report['layers']} layers)")
ax.axhline(1, color="k", ls="--", lw=1, label="real time")
ax.set(xscale="log", yscale="log", xlabel="streams generated together", ylabel="real-time factor (per stream × streams)",
       title="Streaming sampler on onnxruntime, 1 thread")
ax.set_xticks([1, 8, 32], ["1", "8", "32"])
ax.legend(fontsize=8)
plt.show()
for name, report in reports.items():
    print(f"{name}: one stream {report['samples_per_sec_1']:,.0f} samples/s (RTF {report['realtime_factor_1']}), "
          f"naive {report['naive_samples_per_sec']:,.0f} samples/s -> {report['speedup_vs_naive']:,.0f}x")

# %% [markdown]
# Batching streams shares each node's fixed cost, so aggregate throughput rises with the
# number of streams; `wavenet serve` batches concurrent requests this way.
# [docs/performance.md](../docs/performance.md) has the figures for `small` and `realtime`
# from `make bench` and what each speed lever was worth, and
# [docs/native-engine.md](../docs/native-engine.md) the native engine's.
