"""One generation's state, apart from the model that advances it (`serving.step_model`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: the model and its workspaces import this module
    from serving.step_model import StepModel
    from serving.workspace import Workspace


class Stream:
    """One generation's state: what `StepModel.advance` reads and moves forward.

    Made by `StepModel.open_streams` (which primes it); nothing here is shared with another
    stream. ``position`` is the time of the next sample (mel frames are read at
    ``position // hop``), ``rng`` draws one uniform per sample, ``temperature`` is the
    effective one (0 means argmax), ``top_k`` the number of most likely classes it draws
    from (0: every class; both may change between `StepModel.advance` calls). The engine state — ring rows, input taps, next
    logits — lives in the stream's own arrays or, while it is seated, in a workspace row.
    """

    def __init__(self, model: "StepModel", temperature: float, rng: np.random.Generator, global_id: int | None,
                 mel: np.ndarray | None, position: int, ring: np.ndarray, taps: np.ndarray, logits: np.ndarray,
                 top_k: int = 0):
        self.model = model
        self.temperature = temperature
        self.top_k = top_k
        self.rng = rng
        self.global_id = global_id
        self.mel = mel
        self.position = position
        self._ring, self._taps, self._logits, self._clock = ring, taps, logits, position
        self._seat: tuple[Workspace, int] | None = None
        self._terms: tuple[int, np.ndarray] | None = None  # (first time, cond.onnx terms (T, L, 2G))

    @property
    def max_samples(self) -> int | None:
        """Samples the mel frames cover (prime included), or None without local conditioning."""
        return None if self.mel is None else self.mel.shape[0] * self.model.hop

    @property
    def logits(self) -> np.ndarray:
        """A copy of the next sample's logits ``(Q,)``."""
        with self.model.lock:
            if self._seat is not None:
                workspace, row = self._seat
                return workspace.logits[row].copy()
            return self._logits.copy()

    def close(self) -> None:
        """Give up the stream: its workspace row is free for another without copying it out."""
        with self.model.lock:
            if self._seat is not None:
                workspace, row = self._seat
                workspace.owners[row] = None
                self._seat = None
            self._ring = self._taps = self._logits = None
            self._terms = None

    def _unseat(self) -> None:
        """Copy this stream's state out of its workspace row into its own arrays."""
        workspace, row = self._seat
        self._ring = workspace.ring.buffer[:, :, row].copy()
        self._taps = workspace.taps[row].copy()
        self._logits = workspace.logits[row].copy()
        self._clock = workspace.clock
        workspace.owners[row] = None
        self._seat = None
