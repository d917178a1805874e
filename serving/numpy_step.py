"""The incremental WaveNet step and a ring-buffer generator, in NumPy.

The reference implementation of the step that `export` turns into ``step.onnx``: same
arrays (see `wavenet_tf.step_weights`), same order of operations. It needs no
TensorFlow and no onnxruntime, so training uses it to write audio summaries, and tests
use it to pin down what the ONNX graph must compute.

Work per sample is O(layers), not O(receptive field): every layer's dilated taps are
rows of one ring buffer that holds the last ``N`` inputs of every layer.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from serving.mu_law import mu_law_decode, mu_law_encode
from serving.sampling import sample_classes


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # no overflow for large |x|


class NumpyStep:
    """``step(input_taps, past, conditioning) -> (logits, layer_inputs)`` for B streams.

    Args:
        weights: arrays from `wavenet_tf.step_weights.extract_step_weights`.

    Call arguments of `step`:
        input_taps: int ``(B, K0)`` classes at ``t - K0 + 1 .. t`` (``Q`` = before the start).
        past: float32 ``(L, k - 1, B, R)`` each layer's input at its past taps.
        conditioning: float32 ``(B, L, 2G)`` per-layer gate term, or None.

    Returns:
        ``(logits (B, Q), layer_inputs (L, B, R))``; ``layer_inputs`` is what the ring
        buffer must store for time ``t``.
    """

    def __init__(self, weights: Mapping[str, np.ndarray]):
        self.w = {k: np.asarray(v) for k, v in weights.items()}
        self.num_layers, self.num_past_taps = self.w["delays"].shape
        self.gate_channels = self.w["gate_bias"].shape[1] // 2
        self.residual_channels = self.w["input_bias"].shape[0]
        self.quantization_channels = self.w["logits_bias"].shape[0]
        self.input_taps = self.w["input_tables"].shape[0]
        self._skip_matrix = self.w["skip_kernels"].reshape(-1, self.w["skip_kernels"].shape[-1])

    def step(self, input_taps: np.ndarray, past: np.ndarray, conditioning: np.ndarray | None = None):
        w, g = self.w, self.gate_channels
        h = w["input_bias"] + sum(w["input_tables"][j][input_taps[:, j]] for j in range(self.input_taps))
        # Every layer's past-tap products at once: they are all known before the step starts.
        pre = np.einsum("lkbr,lkrg->blg", past, w["past_kernels"]) + w["gate_bias"]
        if conditioning is not None:
            pre = pre + conditioning
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

    def conditioning(self, global_ids: np.ndarray | None = None, local_features: np.ndarray | None = None):
        """Per-layer gate terms ``(B, [T,] L, 2G)`` from class ids and/or upsampled features."""
        term = None
        if global_ids is not None and "global_tables" in self.w:
            term = np.transpose(self.w["global_tables"][:, np.asarray(global_ids)], (1, 0, 2))  # (B, L, 2G)
        if local_features is not None and "local_kernels" in self.w:
            local = np.einsum("btc,lcg->btlg", local_features, self.w["local_kernels"])  # (B, T, L, 2G)
            term = local if term is None else local + term[:, None]
        return term


class RingBuffer:
    """The last ``size`` inputs of every layer for B streams, in one array.

    Row ``t % size`` holds time ``t``; layer ``l``'s tap ``j`` at time ``t`` is row
    ``(t - delays[l, j]) % size``. ``size`` is a power of two above the longest delay, so
    the modulo is a mask. Rows start at zero: the causal padding of the full forward pass.
    """

    def __init__(self, delays: np.ndarray, batch: int, channels: int):
        self.delays = np.asarray(delays, np.int64)
        self.size = 1 << int(self.delays.max(initial=0)).bit_length()
        num_layers = self.delays.shape[0]
        self.buffer = np.zeros((self.size, num_layers, batch, channels), np.float32)
        self._layer_index = np.arange(num_layers)[:, None]

    def reset(self) -> None:
        self.buffer[:] = 0.0

    def past(self, t: int) -> np.ndarray:
        """``(L, k - 1, B, R)``: every layer's inputs at its past taps for time ``t``."""
        rows = (t - self.delays) & (self.size - 1)
        return self.buffer[rows, self._layer_index]

    def write(self, t: int, layer_inputs: np.ndarray) -> None:
        self.buffer[t & (self.size - 1)] = layer_inputs


class NumpyGenerator:
    """Streams of samples from a `NumpyStep`: teacher forcing and sampling, B at a time."""

    def __init__(self, step: NumpyStep, batch: int = 1):
        self.step_fn = step
        self.batch = batch
        self.ring = RingBuffer(step.w["delays"], batch, step.residual_channels)
        self.history = np.full((batch, step.input_taps), step.quantization_channels, np.int64)
        self.t = 0

    def reset(self) -> None:
        self.ring.reset()
        self.history[:] = self.step_fn.quantization_channels
        self.t = 0

    def advance(self, classes: np.ndarray, conditioning: np.ndarray | None = None) -> np.ndarray:
        """Feed each stream's class at time t; return the logits for time t + 1 ``(B, Q)``."""
        self.history = np.roll(self.history, -1, axis=1)
        self.history[:, -1] = classes
        logits, layer_inputs = self.step_fn.step(self.history, self.ring.past(self.t), conditioning)
        self.ring.write(self.t, layer_inputs)
        self.t += 1
        return logits

    def teacher_forced_logits(self, classes: np.ndarray, conditioning: np.ndarray | None = None) -> np.ndarray:
        """Logits ``(B, T, Q)`` for a whole class sequence ``(B, T)``, one step per sample."""
        out = [self.advance(classes[:, t], None if conditioning is None else conditioning[:, t])
               for t in range(classes.shape[1])]
        return np.stack(out, axis=1)

    def generate(
        self, num_samples: int, uniforms: np.ndarray, temperature: float = 1.0, prime_classes: np.ndarray | None = None,
        conditioning: np.ndarray | None = None,
    ) -> np.ndarray:
        """Sample ``num_samples`` classes per stream ``(B, num_samples)``, after an optional prime.

        ``uniforms`` ``(B, num_samples)`` are the random numbers, one per sample;
        ``conditioning`` is ``(B, L, 2G)`` (constant) or ``(B, P + num_samples, L, 2G)``.
        """
        def term(t):
            if conditioning is None or conditioning.ndim == 3:
                return conditioning
            return conditioning[:, t]

        q = self.step_fn.quantization_channels
        prime = np.full((self.batch, 1), mu_law_encode(np.zeros(1), q)[0]) if prime_classes is None else prime_classes
        for t in range(prime.shape[1] - 1):
            self.advance(prime[:, t], term(t))
        position = prime.shape[1] - 1
        current = prime[:, -1]
        out = np.empty((self.batch, num_samples), np.int32)
        for i in range(num_samples):
            logits = self.advance(current, term(position))
            current = sample_classes(logits, temperature, uniforms[:, i])
            out[:, i] = current
            position += 1
        return out


def generate_audio(
    weights: Mapping[str, np.ndarray], num_samples: int, seed: int = 0, temperature: float = 1.0,
    receptive_field: int | None = None, global_id: int | None = None,
) -> np.ndarray:
    """One stream of float32 audio, primed (like `naive_generate`) with a receptive field of silence."""
    step = NumpyStep(weights)
    q = step.quantization_channels
    silence = mu_law_encode(np.zeros(1), q)[0]
    prime = np.full((1, receptive_field or 1), silence, np.int64)
    conditioning = step.conditioning(np.array([global_id])) if global_id is not None else None
    uniforms = np.random.default_rng(seed).random((1, num_samples))
    classes = NumpyGenerator(step).generate(num_samples, uniforms, temperature, prime, conditioning)
    return mu_law_decode(classes[0], q)
