"""Drive any incremental step (NumPy or onnxruntime) over B streams: teacher forcing and sampling."""

from __future__ import annotations

import numpy as np

from wavenet_tf.core.mu_law import silence_class
from wavenet_tf.core.ring_buffer import RingBuffer, shift_taps
from wavenet_tf.core.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_K, sample_classes


class StepGenerator:
    """Streams of samples from a step object (`wavenet_tf.core.numpy_step.NumpyStep`, `serving.onnx_step.OnnxStep`).

    The step object provides ``step(input_taps, past, global_ids, conditioning) -> (logits,
    layer_inputs)`` in ``step.onnx``'s layouts (``past`` ``(L, 1, B, (k-1)·R)``,
    ``conditioning`` ``(L, 2, B, G)``, ``layer_inputs`` ``(L·B, R)``) and the attributes
    ``delays``, ``residual_channels``, ``gate_channels``, ``quantization_channels``,
    ``input_taps`` and ``padding`` (what its stored layer inputs are before the start).
    The generator owns the state: the ring buffer, the last input classes, and the time
    index; `reset` clears it.

    Args:
        step: the step object.
        batch: number of independent streams.
        global_ids: each stream's global class id, for globally conditioned models.
    """

    def __init__(self, step, batch: int = 1, global_ids: np.ndarray | None = None):
        self.step_fn = step
        self.batch = batch
        self.global_ids = None if global_ids is None else np.asarray(global_ids, np.int64).reshape(batch)
        self.ring = RingBuffer(step.delays, batch, step.residual_channels, step.padding)
        self.history = np.full((batch, step.input_taps), step.quantization_channels, np.int64)
        self.t = 0

    def reset(self) -> None:
        self.ring.reset()
        self.history[:] = self.step_fn.quantization_channels
        self.t = 0

    def advance(self, classes: np.ndarray, local: np.ndarray | None = None) -> np.ndarray:
        """Feed each stream's class at time t; return the logits ``(B, Q)`` for time t + 1.

        ``local`` is this step's per-layer local conditioning ``(B, L, 2G)`` (a time row of
        ``cond.onnx``'s output), if any.
        """
        shift_taps(self.history, classes)
        past = self.ring.past(self.t)  # (L, k-1, B, R) -> the graph's (L, 1, B, (k-1)·R)
        num_layers, num_taps, batch, r = past.shape
        past = np.ascontiguousarray(past.transpose(0, 2, 1, 3)).reshape(num_layers, 1, batch, num_taps * r)
        conditioning = None
        if local is not None:  # (B, L, 2G) -> (L, 2, B, G)
            g = self.step_fn.gate_channels
            conditioning = np.ascontiguousarray(
                np.asarray(local, np.float32).reshape(batch, num_layers, 2, g).transpose(1, 2, 0, 3))
        logits, layer_inputs = self.step_fn.step(self.history, past, self.global_ids, conditioning)
        self.ring.write(self.t, layer_inputs)
        self.t += 1
        return logits

    def teacher_forced_logits(self, classes: np.ndarray, local: np.ndarray | None = None) -> np.ndarray:
        """Logits ``(B, T, Q)`` for a whole class sequence ``(B, T)``, one step per sample."""
        out = [self.advance(classes[:, t], None if local is None else local[:, t]) for t in range(classes.shape[1])]
        return np.stack(out, axis=1)

    def generate(self, num_samples: int, uniforms: np.ndarray, temperature: float = DEFAULT_TEMPERATURE,
                 prime_classes: np.ndarray | None = None, local: np.ndarray | None = None,
                 top_k: int = DEFAULT_TOP_K) -> np.ndarray:
        """Sample ``(B, num_samples)`` classes after an optional prime, one uniform per sample.

        ``temperature`` and ``top_k`` (0: every class) as in `wavenet_tf.core.sampling.sample_classes`.

        The prime is fed step by step (teacher forcing); ``local`` covers prime and output,
        ``(B, P + num_samples, L, 2G)``.
        """
        q = self.step_fn.quantization_channels
        if prime_classes is None:
            prime_classes = np.full((self.batch, 1), silence_class(q))
        term = (lambda t: None) if local is None else (lambda t: local[:, t])
        for t in range(prime_classes.shape[1] - 1):
            self.advance(prime_classes[:, t], term(t))
        position = prime_classes.shape[1] - 1
        current = prime_classes[:, -1]
        out = np.empty((self.batch, num_samples), np.int32)
        for i in range(num_samples):
            logits = self.advance(current, term(position))
            current = sample_classes(logits, temperature, uniforms[:, i], top_k)
            out[:, i] = current
            position += 1
        return out
