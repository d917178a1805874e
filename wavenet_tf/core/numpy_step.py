"""The incremental WaveNet step in NumPy: exactly what ``step.onnx`` computes.

The same arrays in the same layouts (`wavenet_tf.core.step_arrays.step_graph_arrays`, the
graph's initializers), the same inputs and outputs, the same state convention (the ring
buffer stores each layer's input minus its residual offset) and the same order of
operations as `export.step_graph`, node for node; no TensorFlow or onnxruntime. Training
uses it for audio summaries, and tests use it to pin down what the ONNX graph computes.
"""

from __future__ import annotations

import numpy as np

from wavenet_tf.core.mu_law import mu_law_decode, silence_class
from wavenet_tf.core.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_K
from wavenet_tf.core.step_arrays import StepArrays, step_graph_arrays
from wavenet_tf.core.step_generator import StepGenerator


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # no overflow for large |x|


class NumpyStep:
    """``step(input_taps, past, global_ids, conditioning) -> (logits, layer_inputs)`` for B streams.

    Args:
        arrays: the model's step arrays (`wavenet_tf.step_weights.step_arrays`).

    Call arguments of `step` (``step.onnx``'s inputs):
        input_taps: int ``(B, K0)`` classes at ``t - K0 + 1 .. t`` (``Q`` = before the start).
        past: float32 ``(L, 1, B, (k-1)·R)`` each layer's stored inputs at its past taps,
            tap j at ``[..., j·R:(j+1)·R]``.
        global_ids: int ``(B,)`` global class ids, or None.
        conditioning: float32 ``(L, 2, B, G)`` this step's filter/gate terms, or None.

    Returns:
        ``(logits (B, Q), layer_inputs (L·B, R))``; ``layer_inputs`` is what the ring buffer
        stores for time ``t`` (offset: `StepArrays`), ``padding`` what it holds before the start.
    """

    def __init__(self, arrays: StepArrays):
        self.arrays = a = arrays
        self.w = step_graph_arrays(arrays)
        self.delays = a.delays
        self.num_layers = a.num_layers
        self.gate_channels = a.gate_channels
        self.residual_channels = a.residual_channels
        self.quantization_channels = a.quantization_channels
        self.input_taps = a.input_taps
        self.padding = a.padding

    def step(self, input_taps, past, global_ids=None, conditioning=None):
        w, a = self.w, self.arrays
        h = w["input_tables"][np.asarray(input_taps) + w["tap_offsets"]].sum(axis=1)
        # Every layer's past-tap products at once: they are all known before the step starts.
        pre = np.matmul(past, w["past_kernels"]) + w["gate_bias"]  # (L, 2, B, G)
        if global_ids is not None and "global_tables" in w:
            pre = pre + w["global_tables"][:, :, np.asarray(global_ids)]
        if conditioning is not None:
            pre = pre + conditioning
        stored, gates = [], []
        for layer in range(self.num_layers):
            stored.append(h)
            f = np.tanh(h @ w["filter_kernels"][layer] + pre[layer, 0])
            s = _sigmoid(h @ w["gate_kernels"][layer] + pre[layer, 1])
            z = f * s
            gates.append(z)
            if layer < self.num_layers - 1:
                h = z @ a.residual_kernels[layer] + h  # no bias: folded into the next gate bias
        skip = np.concatenate(gates, axis=1) @ a.skip_kernels + a.skip_bias
        hidden = np.maximum(np.maximum(skip, 0.0) @ a.head_kernel + a.head_bias, 0.0)
        logits = hidden @ a.logits_kernel + a.logits_bias
        return logits.astype(np.float32), np.concatenate(stored, axis=0).astype(np.float32)

    def local_conditioning(self, features: np.ndarray) -> np.ndarray:
        """Upsampled features ``(B, T, Cl)`` -> per-layer terms ``(B, T, L, 2G)`` (``cond.onnx``'s output)."""
        return np.einsum("btc,lcg->btlg", features, self.arrays.local_kernels).astype(np.float32)


def generate_audio(
    arrays: StepArrays, num_samples: int, seed: int = 0, temperature: float = DEFAULT_TEMPERATURE,
    receptive_field: int | None = None, global_id: int | None = None, top_k: int = DEFAULT_TOP_K,
) -> np.ndarray:
    """One stream of float32 audio, primed (like `naive_generate`) with a receptive field of silence."""
    step = NumpyStep(arrays)
    q = step.quantization_channels
    prime = np.full((1, receptive_field or 1), silence_class(q), np.int64)
    generator = StepGenerator(step, 1, None if global_id is None else np.array([global_id]))
    uniforms = np.random.default_rng(seed).random((1, num_samples))
    return mu_law_decode(generator.generate(num_samples, uniforms, temperature, prime, top_k=top_k)[0], q)
