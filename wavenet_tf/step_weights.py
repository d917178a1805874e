"""Read a trained `WaveNet`'s layers into the arrays of the incremental ("Fast WaveNet") step.

There is one copy of the math: the Keras layers. This module reads their weights once and
rearranges them into the form a one-sample-at-a-time step needs (Paine et al., 2016,
"Fast Wavenet Generation Algorithm", https://arxiv.org/abs/1611.09482): the first causal
convolution becomes one lookup table per tap, every dilated kernel splits into its past
taps and its current tap, conditioning becomes a per-layer additive term, and the
residual biases are folded into the gate biases. The result, a
`wavenet_tf.core.step_arrays.StepArrays`, is what ``step.onnx``, the native operator and
the NumPy reference all compute with; this is the only place that does arithmetic on the
weights, so every engine stores the same thing in its ring buffer.
"""

from __future__ import annotations

import numpy as np

from wavenet_tf.core.step_arrays import StepArrays
from wavenet_tf.model import WaveNet


def _array(variable) -> np.ndarray:
    return np.asarray(variable.numpy(), dtype=np.float32)


def _bias(layer, size: int) -> np.ndarray:
    return _array(layer.bias) if layer.use_bias else np.zeros(size, np.float32)


def step_arrays(model: WaveNet) -> StepArrays:
    """The step's arrays, read from ``model``'s layers, offsets folded (`StepArrays` says how)."""
    c = model.model_config
    q, r, g, s = c.quantization_channels, c.residual_channels, c.gate_channels, c.skip_channels
    blocks = model.residual_blocks
    num_layers = len(blocks)
    initial = _array(model.initial_conv.kernel)  # (K0, in, R)
    if model.input_embedding is not None:
        embedding = _array(model.input_embedding.embeddings)  # (Q, R_in)
        tables = np.einsum("qi,kir->kqr", embedding, initial)
    else:
        tables = initial  # one-hot @ kernel is a row of the kernel
    tables = np.concatenate([tables, np.zeros((tables.shape[0], 1, r), np.float32)], axis=1)
    # The first conv's bias rides on the current tap's class rows (never on "before the start":
    # the current class is always known).
    tables[-1, :q] += _bias(model.initial_conv, r)

    kernels = np.stack([_array(b.dilated_conv.kernel) for b in blocks])  # (L, k, R, 2G)
    past, current = kernels[:, :-1], kernels[:, -1]
    residual_bias = np.stack([_bias(b.residual_conv, r) for b in blocks[:-1]]).reshape(-1, r)
    # c_l = Σ_{m<l} residual_bias_m: carried out of the state, into the gate bias through
    # every tap that reads the state (past and current).
    offsets = np.zeros((num_layers, r), np.float32)
    offsets[1:] = np.cumsum(residual_bias, axis=0)[: num_layers - 1]
    gate_bias = np.stack([_bias(b.dilated_conv, 2 * g) for b in blocks]) \
        + np.einsum("lr,lkrg->lg", offsets, past) + np.einsum("lr,lrg->lg", offsets, current)

    global_tables = local_kernels = None
    if model.global_embedding is not None:
        embedding = _array(model.global_embedding.embeddings)  # (C, Gc)
        global_tables = np.stack([embedding @ _array(b.global_projection.kernel) for b in blocks])
    if model.upsample_network is not None:
        local_kernels = np.stack([_array(b.local_projection.kernel)[0] for b in blocks])
    taps = np.arange(c.kernel_size - 1)
    f32 = lambda a: np.ascontiguousarray(a, np.float32)
    return StepArrays(
        tables=f32(tables),
        past_kernels=f32(past.reshape(num_layers, -1, 2 * g)),
        current_kernels=f32(current),
        gate_bias=f32(gate_bias),
        residual_kernels=f32(np.stack([_array(b.residual_conv.kernel)[0] for b in blocks[:-1]]).reshape(-1, g, r)),
        skip_kernels=f32(np.concatenate([_array(b.skip_conv.kernel)[0] for b in blocks])),
        skip_bias=f32(np.sum([_bias(b.skip_conv, s) for b in blocks], axis=0)),
        head_kernel=f32(_array(model.head_conv.kernel)[0]),
        head_bias=f32(_bias(model.head_conv, s)),
        logits_kernel=f32(_array(model.logits_conv.kernel)[0]),
        logits_bias=f32(_bias(model.logits_conv, q)),
        delays=np.array([[(c.kernel_size - 1 - j) * d for j in taps] for d in c.all_dilations], np.int64),
        residual_offsets=offsets,
        global_tables=None if global_tables is None else f32(global_tables),
        local_kernels=None if local_kernels is None else f32(local_kernels),
    )


def upsampled_features(model: WaveNet, mel: np.ndarray) -> np.ndarray:
    """Mel frames ``(batch, frames, n_mels)`` -> features at the sample rate, via the model's upsampler."""
    return np.asarray(model.upsample_network(np.asarray(mel, np.float32)), np.float32)
