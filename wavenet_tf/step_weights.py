"""Read a trained `WaveNet`'s layers into the arrays of the incremental ("Fast WaveNet") step.

There is one copy of the math: the Keras layers. This module only *reads* their weights
and rearranges them into the form a one-sample-at-a-time step needs (Paine et al., 2016,
"Fast Wavenet Generation Algorithm", https://arxiv.org/abs/1611.09482): the first causal
convolution becomes one lookup table per tap, every dilated kernel splits into its past
taps and its current tap, and conditioning becomes a per-layer additive term. The NumPy
step (`wavenet_tf.core.numpy_step`) and the exported ONNX step graph are built from these arrays,
and tests prove both equal the full forward pass.

Array names and shapes (L layers, k taps, K0 input taps, Q classes, R/G/S channels):

    input_tables      (K0, Q + 1, R)  row Q is "before the start" (zeros): causal padding
    input_bias        (R,)
    past_kernels      (L, k - 1, R, 2G)  tap j reads the layer input (k - 1 - j)·d_l ago
    current_kernels   (L, R, 2G)
    gate_bias         (L, 2G)
    global_tables     (L, C, 2G)       global class id -> each layer's gate bias (if any)
    local_kernels     (L, Cl, 2G)      upsampled features -> each layer's gate input (if any)
    residual_kernels  (L - 1, G, R)    the last layer has none (its residual is unused)
    residual_bias     (L - 1, R)
    skip_kernels      (L, G, S)
    skip_bias         (S,)             the sum of every layer's skip bias
    head_kernel (S, S), head_bias (S,), logits_kernel (S, Q), logits_bias (Q,)
    delays            (L, k - 1) int64  samples back for each past tap
"""

from __future__ import annotations

import numpy as np

from wavenet_tf.model import WaveNet


def _array(variable) -> np.ndarray:
    return np.asarray(variable.numpy(), dtype=np.float32)


def _bias(layer, size: int) -> np.ndarray:
    return _array(layer.bias) if layer.use_bias else np.zeros(size, np.float32)


def extract_step_weights(model: WaveNet) -> dict[str, np.ndarray]:
    """The step's arrays, read from ``model``'s layers (see the module docstring)."""
    c = model.model_config
    q, r, g, s = c.quantization_channels, c.residual_channels, c.gate_channels, c.skip_channels
    blocks = model.residual_blocks
    initial = _array(model.initial_conv.kernel)  # (K0, in, R)
    if model.input_embedding is not None:
        embedding = _array(model.input_embedding.embeddings)  # (Q, R_in)
        tables = np.einsum("qi,kir->kqr", embedding, initial)
    else:
        tables = initial  # one-hot @ kernel is a row of the kernel
    weights = {
        "input_tables": np.concatenate([tables, np.zeros((tables.shape[0], 1, r), np.float32)], axis=1),
        "input_bias": _bias(model.initial_conv, r),
    }
    kernels = np.stack([_array(b.dilated_conv.kernel) for b in blocks])  # (L, k, R, 2G)
    weights["past_kernels"] = np.ascontiguousarray(kernels[:, :-1])
    weights["current_kernels"] = np.ascontiguousarray(kernels[:, -1])
    weights["gate_bias"] = np.stack([_bias(b.dilated_conv, 2 * g) for b in blocks])
    if model.global_embedding is not None:
        embedding = _array(model.global_embedding.embeddings)  # (C, Gc)
        weights["global_tables"] = np.stack([embedding @ _array(b.global_projection.kernel) for b in blocks])
    if model.upsample_network is not None:
        weights["local_kernels"] = np.stack([_array(b.local_projection.kernel)[0] for b in blocks])
    weights["residual_kernels"] = np.stack([_array(b.residual_conv.kernel)[0] for b in blocks[:-1]]).reshape(-1, g, r)
    weights["residual_bias"] = np.stack([_bias(b.residual_conv, r) for b in blocks[:-1]]).reshape(-1, r)
    weights["skip_kernels"] = np.stack([_array(b.skip_conv.kernel)[0] for b in blocks])
    weights["skip_bias"] = np.sum([_bias(b.skip_conv, s) for b in blocks], axis=0).astype(np.float32)
    weights["head_kernel"] = _array(model.head_conv.kernel)[0]
    weights["head_bias"] = _bias(model.head_conv, s)
    weights["logits_kernel"] = _array(model.logits_conv.kernel)[0]
    weights["logits_bias"] = _bias(model.logits_conv, q)
    taps = np.arange(c.kernel_size - 1)
    weights["delays"] = np.array([[(c.kernel_size - 1 - j) * d for j in taps] for d in c.all_dilations], np.int64)
    return weights


def upsampled_features(model: WaveNet, mel: np.ndarray) -> np.ndarray:
    """Mel frames ``(batch, frames, n_mels)`` -> features at the sample rate, via the model's upsampler."""
    return np.asarray(model.upsample_network(np.asarray(mel, np.float32)), np.float32)
