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
# # 2. Causal and dilated convolutions
#
# WaveNet is a stack of one kind of layer: a **causal, dilated 1-D convolution**. This
# notebook builds the idea from a plain convolution, proves with the library's own
# `CausalConv1D` that the future cannot leak into the past, and shows why dilation lets a
# few layers see thousands of samples.

# %%
import os

import keras
import matplotlib.pyplot as plt
import numpy as np

from wavenet_tf.model import CausalConv1D

QUICK = os.environ.get("WAVENET_NOTEBOOK_QUICK") == "1"
keras.utils.set_random_seed(0)

# %% [markdown]
# ## A convolution, a filter, a receptive field
#
# A 1-D convolution slides a short *filter* (kernel) of `k` weights along the signal; each
# output is a weighted sum of `k` neighbouring inputs. The inputs one output depends on are
# its **receptive field** — here `k` samples. A moving average is the simplest filter:

# %%
x = np.zeros(16, np.float32)
x[5] = 1.0  # an impulse: the output shows which outputs an input reaches
kernel = np.array([0.5, 0.3, 0.2], np.float32)
print("impulse at 5  :", x.astype(int))
print("np.convolve   :", np.round(np.convolve(x, kernel)[:16], 2))

# %% [markdown]
# The impulse at position 5 shows up in outputs 5, 6 and 7 — each output looks at itself
# and the two samples before it. That is already *causal*: output `t` uses inputs `≤ t`.
#
# ## Feature maps: a filter slid over a whole signal
#
# Slide one filter along a whole signal and you get one output per position: its
# **feature map** (or activation map) — a trace of where the pattern the filter responds
# to occurs. A convolution *layer* has many filters, one per output channel, so it makes
# one feature map per channel, and the next layer reads those maps as its input. Two
# hand-made filters over a plucked melody: a difference `[1, −1]` responds to sudden
# change (the pluck of each note, and the high harmonics), a 40-tap average (5 ms at 8 kHz)
# to what changes slowly (the low notes' waveform). A trained network learns its filters
# instead; notebook 3 looks at the feature maps of a trained WaveNet.

# %%
from wavenet_tf.builtin_data import plucked_melody

melody = plucked_melody(seconds=0.6, sample_rate=8000, seed=2, instrument="bass")
filters = {"difference [1, −1]": np.array([1.0, -1.0]), "40-tap average": np.full(40, 1 / 40)}
fig, axes = plt.subplots(3, 1, figsize=(10, 5), sharex=True)
seconds = np.arange(len(melody)) / 8000
axes[0].plot(seconds, melody, lw=0.5)
axes[0].set(ylabel="input", title="A melody and two feature maps (np.convolve, causal: output t uses inputs ≤ t)")
for ax, (name, taps) in zip(axes[1:], filters.items()):
    ax.plot(seconds, np.convolve(melody, taps)[: len(melody)], lw=0.5, color="C1")
    ax.set(ylabel=name)
axes[-1].set(xlabel="seconds")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Causal padding: the future cannot leak
#
# A network that predicts sample `t + 1` must not see it. Keras' `padding="same"` centres
# the kernel, so output `t` would read input `t + 1`; `padding="causal"` pads only on the
# left by `(k − 1) · dilation` zeros. The test: change the *future* of a signal and check
# which outputs move.

# %%
signal = np.random.default_rng(0).normal(size=(1, 32, 1)).astype(np.float32)
changed = signal.copy()
changed[0, 20:] += 1.0  # alter everything from t = 20 on

causal = CausalConv1D(1, kernel_size=3)
same = keras.layers.Conv1D(1, kernel_size=3, padding="same")
for name, layer in (("causal", causal), ("same", same)):
    moved = np.nonzero(np.abs(np.asarray(layer(changed) - layer(signal)))[0, :, 0] > 1e-7)[0]
    print(f"padding={name!r:8}: outputs that changed start at t = {moved.min()}  (the change starts at 20)")

# %% [markdown]
# With causal padding nothing before `t = 20` moves; with `"same"` output 19 already knows
# about input 20 — a model trained that way would learn to copy the answer and be useless
# when generating. `CausalConv1D` refuses any other padding.
#
# ## Dilation: holes in the filter
#
# A *dilated* ("à trous", with holes) convolution spaces its taps `d` samples apart: with
# `k = 2` and `d = 4`, output `t` reads inputs `t` and `t − 4`. Stack layers with
# dilations 1, 2, 4, 8, … and each layer doubles what the stack sees:
# receptive field = `(k − 1) · Σ d + 1`.

# %%
def draw_stack(ax, dilations, kernel_size=2, width=32):
    """Dots for every layer's outputs; lines from the last output back through its taps."""
    layers = len(dilations)
    for level in range(layers + 1):
        ax.plot(np.arange(width), np.full(width, level), "o", color="0.8", ms=3)
    frontier = {width - 1}
    for level in range(layers, 0, -1):
        d = dilations[level - 1]
        below = set()
        for t in frontier:
            for j in range(kernel_size):
                s = t - j * d
                if s >= 0:
                    ax.plot([t, s], [level, level - 1], color="C0", lw=0.8)
                    below.add(s)
        frontier = below
    ax.plot(sorted(frontier), np.zeros(len(frontier)), "o", color="C0", ms=4)
    ax.set(yticks=range(layers + 1), yticklabels=["input"] + [f"d={d}" for d in dilations], xticks=[])
    return len(frontier)


fig, axes = plt.subplots(1, 2, figsize=(11, 3))
seen = draw_stack(axes[0], [1, 1, 1, 1])
axes[0].set_title(f"4 plain causal layers (k=2): the last output sees {seen} inputs")
seen = draw_stack(axes[1], [1, 2, 4, 8])
axes[1].set_title(f"dilations 1, 2, 4, 8: the last output sees {seen} inputs")
plt.tight_layout()
plt.show()

# %% [markdown]
# The library computes the same number from the layers. Each `CausalConv1D` reports its
# own receptive field, and a stack's is one plus the sum of each layer's extra samples:

# %%
for dilations in ([1, 1, 1, 1], [1, 2, 4, 8], [2**i for i in range(10)]):
    layers = [CausalConv1D(1, 2, dilation_rate=d) for d in dilations]
    field = 1 + sum(layer.receptive_field - 1 for layer in layers)
    print(f"{len(dilations):2d} layers, dilations {dilations if len(dilations) < 5 else '1 … 512'}: "
          f"receptive field {field}")

# %% [markdown]
# ## Proof by perturbation
#
# The formula can be checked on a real stack: poke one input and see which outputs of the
# last layer change. With dilations 1…8 (receptive field 16) an input influences exactly
# the 16 outputs from itself on — never one before it.

# %%
stack = keras.Sequential([keras.Input((64, 1))] + [CausalConv1D(1, 2, dilation_rate=d, activation="tanh")
                                                   for d in (1, 2, 4, 8)])
base = np.zeros((1, 64, 1), np.float32)
poked = base.copy()
poked[0, 30] = 1.0
changed = np.nonzero(np.abs(np.asarray(stack(poked) - stack(base)))[0, :, 0] > 1e-7)[0]
print(f"poking input 30 changes outputs {changed.min()} … {changed.max()} ({len(changed)} outputs)")

# %% [markdown]
# ## Parameters for the same receptive field
#
# To see 1,024 samples with kernel-2 convolutions, a plain causal stack needs 1,023
# layers; a dilated stack needs 10. With `C` channels every layer costs `k · C · C + C`
# weights, so the difference is a factor of a hundred — and, as important, 100× fewer
# sequential operations per output.

# %%
channels = 16 if QUICK else 32
rows = []
for field in (16, 64, 256, 1024, 4096):
    dilated_layers = int(np.log2(field))
    plain_layers = field - 1
    per_layer = CausalConv1D(channels, 2)
    per_layer.build((None, None, channels))
    weights = per_layer.count_params()
    rows.append((field, plain_layers, plain_layers * weights, dilated_layers, dilated_layers * weights))
    print(f"receptive field {field:5d}: plain {plain_layers:5d} layers {plain_layers * weights:>10,} weights | "
          f"dilated {dilated_layers:2d} layers {dilated_layers * weights:>7,} weights")
rows = np.array(rows)
fig, ax = plt.subplots(figsize=(6, 3))
ax.loglog(rows[:, 0], rows[:, 2], "o-", label="plain causal stack")
ax.loglog(rows[:, 0], rows[:, 4], "s-", label="dilated stack (1, 2, 4, …)")
ax.set(xlabel="receptive field (samples)", ylabel=f"weights ({channels} channels)",
       title="Linear vs logarithmic growth")
ax.legend()
plt.show()

# %% [markdown]
# WaveNet repeats the doubling stack a few times (1…512, 1…512, …): each repetition adds
# 1,023 samples of context and more non-linear depth. The `small` preset has two stacks of
# ten layers — 2,048 samples, 128 ms at 16 kHz. Notebook 3 puts these layers inside gated
# residual blocks.
