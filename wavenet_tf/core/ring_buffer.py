"""One ring buffer for every layer's past inputs: the state of incremental generation."""

from __future__ import annotations

import numpy as np


def shift_taps(taps: np.ndarray, classes: np.ndarray) -> None:
    """Move every stream's input taps ``(B, K0)`` on by one sample, in place: ``classes`` ``(B,)`` is the newest."""
    taps[:, :-1] = taps[:, 1:]
    taps[:, -1] = classes


class RingBuffer:
    """The last ``size`` inputs of every layer for B streams, in one array ``(size, L, B, R)``.

    Row ``t % size`` holds time ``t``; layer ``l``'s tap ``j`` at time ``t`` is row
    ``(t - delays[l, j]) % size`` — Fast WaveNet's queues as index arithmetic, O(layers)
    work per sample instead of O(receptive field). ``size`` is a power of two above the
    longest delay, so the modulo is a mask, and the flat rows of every tap are precomputed
    for each ``t % size``: a step's gather is one table lookup and one ``np.take``. Rows start
    at ``padding`` (zeros by default): the causal zero padding of the full forward pass,
    expressed in whatever the step stores (``step.onnx`` stores inputs minus a per-layer
    offset, so its padding is minus that offset).

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
        # Views for the two per-step operations: rows of (layer, time) and rows of time.
        self._layer_rows = self.buffer.reshape(self.size * num_layers, batch * channels)
        self._time_rows = self.buffer.reshape(self.size, -1)
        # Flat row (t - delay)·L + l of every layer's taps, for every t mod size: (size, L·(k-1)).
        times = np.arange(self.size)[:, None, None]
        self._tap_rows = (((times - self.delays[None]) & (self.size - 1)) * num_layers
                          + np.arange(num_layers)[None, :, None]).reshape(self.size, -1)
        self.reset()

    def reset(self, streams: slice = slice(None)) -> None:
        """Fill ``streams`` (all by default) with the padding: nothing generated yet."""
        self.buffer[:, :, streams] = self.padding[None, :, None, :]

    def gather(self, t: int, out: np.ndarray) -> np.ndarray:
        """Every layer's inputs at its past taps for computing time ``t``, into ``out`` ``(L·(k-1), B·R)``."""
        return np.take(self._layer_rows, self._tap_rows[t & (self.size - 1)], axis=0, out=out)

    def past(self, t: int) -> np.ndarray:
        """``(L, k - 1, B, R)``: every layer's inputs at its past taps, for computing time ``t``."""
        num_layers, num_taps = self.delays.shape
        out = np.empty((num_layers * num_taps, self._layer_rows.shape[1]), np.float32)
        return self.gather(t, out).reshape(num_layers, num_taps, self.buffer.shape[2], -1)

    def write(self, t: int, layer_inputs: np.ndarray) -> None:
        """Store the layer inputs of time ``t`` (any array of ``L·B·R`` values in (L, B, R) order)."""
        self._time_rows[t & (self.size - 1)] = layer_inputs.reshape(-1)

    def place(self, t_end: int, history: np.ndarray, streams: slice = slice(None)) -> None:
        """Store ``(T, L, B_s, R)`` layer inputs of times ``t_end - T .. t_end - 1`` for ``streams`` (a prime)."""
        span = min(history.shape[0], self.size)
        times = np.arange(t_end - span, t_end)
        self.buffer[:, :, streams][times & (self.size - 1)] = history[-span:]
