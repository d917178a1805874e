"""One ring buffer for every layer's past inputs: the state of incremental generation."""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """The last ``size`` inputs of every layer for B streams, in one array ``(size, L, B, R)``.

    Row ``t % size`` holds time ``t``; layer ``l``'s tap ``j`` at time ``t`` is row
    ``(t - delays[l, j]) % size`` — Fast WaveNet's queues as index arithmetic, O(layers)
    work per sample instead of O(receptive field). ``size`` is a power of two above the
    longest delay, so the modulo is a mask. Rows start at ``padding`` (zeros by default):
    the causal zero padding of the full forward pass, expressed in whatever the step
    stores (``step.onnx`` stores inputs minus a per-layer offset, so its padding is
    minus that offset).

    Example:
    >>> ring = RingBuffer(np.array([[1], [2]]), batch=1, channels=1)
    >>> ring.size
    4
    """

    def __init__(self, delays: np.ndarray, batch: int, channels: int, padding: np.ndarray | None = None):
        self.delays = np.asarray(delays, np.int64)
        self.size = 1 << int(self.delays.max(initial=0)).bit_length()
        num_layers = self.delays.shape[0]
        self.padding = np.zeros((num_layers, channels), np.float32) if padding is None else np.asarray(padding, np.float32)
        self.buffer = np.empty((self.size, num_layers, batch, channels), np.float32)
        self._layer_index = np.arange(num_layers)[:, None]
        self.reset()

    def reset(self) -> None:
        self.buffer[:] = self.padding[None, :, None, :]

    def past(self, t: int) -> np.ndarray:
        """``(L, k - 1, B, R)``: every layer's inputs at its past taps, for computing time ``t``."""
        rows = (t - self.delays) & (self.size - 1)
        return self.buffer[rows, self._layer_index]

    def write(self, t: int, layer_inputs: np.ndarray) -> None:
        """Store ``(L, B, R)`` layer inputs of time ``t``."""
        self.buffer[t & (self.size - 1)] = layer_inputs

    def fill(self, t_end: int, history: np.ndarray) -> None:
        """Store ``(L, B, T, R)`` layer inputs of times ``t_end - T .. t_end - 1`` at once (priming)."""
        span = min(history.shape[2], self.size)
        times = np.arange(t_end - span, t_end)
        self.buffer[times & (self.size - 1)] = np.transpose(history[:, :, -span:], (2, 0, 1, 3))
