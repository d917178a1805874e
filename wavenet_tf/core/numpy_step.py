"""The incremental WaveNet step in NumPy: the reference that ``step.onnx`` must match.

Same arrays as `wavenet_tf.step_weights`, same order of operations as the exported graph,
and no TensorFlow or onnxruntime: training uses it for audio summaries, and tests use it
to pin down what the ONNX graph computes.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from wavenet_tf.core.mu_law import mu_law_decode, mu_law_encode
from wavenet_tf.core.step_generator import StepGenerator


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # no overflow for large |x|


class NumpyStep:
    """``step(input_taps, past, global_ids, local) -> (logits, layer_inputs)`` for B streams.

    Args:
        weights: arrays from `wavenet_tf.step_weights.extract_step_weights`.

    Call arguments of `step`:
        input_taps: int ``(B, K0)`` classes at ``t - K0 + 1 .. t`` (``Q`` = before the start).
        past: float32 ``(L, k - 1, B, R)`` each layer's input at its past taps.
        global_ids: int ``(B,)`` global class ids, or None.
        local: float32 ``(B, L, 2G)`` this step's per-layer local conditioning, or None.

    Returns:
        ``(logits (B, Q), layer_inputs (L, B, R))``; ``layer_inputs`` is what the ring
        buffer must store for time ``t``.
    """

    def __init__(self, weights: Mapping[str, np.ndarray]):
        self.w = {k: np.asarray(v) for k, v in weights.items()}
        self.delays = self.w["delays"]
        self.num_layers = self.delays.shape[0]
        self.gate_channels = self.w["gate_bias"].shape[1] // 2
        self.residual_channels = self.w["input_bias"].shape[0]
        self.quantization_channels = self.w["logits_bias"].shape[0]
        self.input_taps = self.w["input_tables"].shape[0]
        self._skip_matrix = self.w["skip_kernels"].reshape(-1, self.w["skip_kernels"].shape[-1])

    def step(self, input_taps, past, global_ids=None, local=None):
        w, g = self.w, self.gate_channels
        h = w["input_bias"] + sum(w["input_tables"][j][input_taps[:, j]] for j in range(self.input_taps))
        # Every layer's past-tap products at once: they are all known before the step starts.
        pre = np.einsum("lkbr,lkrg->blg", past, w["past_kernels"]) + w["gate_bias"]
        if global_ids is not None:
            pre = pre + np.transpose(w["global_tables"][:, np.asarray(global_ids)], (1, 0, 2))
        if local is not None:
            pre = pre + local
        layer_inputs = np.empty((self.num_layers, h.shape[0], h.shape[1]), np.float32)
        gates = []
        for layer in range(self.num_layers):
            layer_inputs[layer] = h
            a = pre[:, layer] + h @ w["current_kernels"][layer]
            z = np.tanh(a[:, :g]) * _sigmoid(a[:, g:])
            gates.append(z)
            if layer < self.num_layers - 1:
                h = h + z @ w["residual_kernels"][layer] + w["residual_bias"][layer]
        skip = np.concatenate(gates, axis=1) @ self._skip_matrix + w["skip_bias"]
        hidden = np.maximum(np.maximum(skip, 0.0) @ w["head_kernel"] + w["head_bias"], 0.0)
        return (hidden @ w["logits_kernel"] + w["logits_bias"]).astype(np.float32), layer_inputs

    def local_conditioning(self, features: np.ndarray) -> np.ndarray:
        """Upsampled features ``(B, T, Cl)`` -> per-layer terms ``(B, T, L, 2G)``."""
        return np.einsum("btc,lcg->btlg", features, self.w["local_kernels"]).astype(np.float32)


def generate_audio(
    weights: Mapping[str, np.ndarray], num_samples: int, seed: int = 0, temperature: float = 1.0,
    receptive_field: int | None = None, global_id: int | None = None,
) -> np.ndarray:
    """One stream of float32 audio, primed (like `naive_generate`) with a receptive field of silence."""
    step = NumpyStep(weights)
    q = step.quantization_channels
    prime = np.full((1, receptive_field or 1), mu_law_encode(np.zeros(1), q)[0], np.int64)
    generator = StepGenerator(step, 1, None if global_id is None else np.array([global_id]))
    uniforms = np.random.default_rng(seed).random((1, num_samples))
    return mu_law_decode(generator.generate(num_samples, uniforms, temperature, prime)[0], q)
