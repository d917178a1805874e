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
