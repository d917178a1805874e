"""One stream's engine state and where it sits: what a `Stream` and a `Workspace` share.

The engines advance streams in the rows of a workspace's batch arrays (`serving.workspace`);
between calls a stream's state — ring rows, input taps, next logits and the ring's clock —
is either in arrays of its own or still in its workspace row. `EngineState` is that state
and its seat, nothing more: a stream holds one, a workspace moves it in and out of its
rows, and neither needs the other's module (nor the model's). Callers hold the model's
lock while state moves.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Holder(Protocol):
    """What a seated state asks of the workspace whose row it sits in."""

    def row_logits(self, row: int) -> np.ndarray:
        """A copy of the next logits in ``row``."""

    def vacate(self, row: int) -> None:
        """Forget ``row``'s occupant without copying its state out (the stream is done)."""


class EngineState:
    """Ring rows ``(size, L, R)``, input taps ``(k,)``, next logits ``(Q,)`` and the ring's clock.

    While ``seat`` is ``(holder, row)`` the arrays are None and the state lives in that
    row of the holder's batch arrays; a closed state has neither.
    """

    def __init__(self, ring: np.ndarray, taps: np.ndarray, logits: np.ndarray, clock: int):
        self.ring: np.ndarray | None = ring
        self.taps: np.ndarray | None = taps
        self.logits: np.ndarray | None = logits
        self.clock = clock
        self.seat: tuple[Holder, int] | None = None

    @property
    def closed(self) -> bool:
        return self.ring is None and self.seat is None

    def next_logits(self) -> np.ndarray:
        """A copy of the next sample's logits, wherever the state is."""
        if self.seat is not None:
            holder, row = self.seat
            return holder.row_logits(row)
        return self.logits.copy()

    def close(self) -> None:
        """Drop the state; a seated one frees its row without being copied out."""
        if self.seat is not None:
            holder, row = self.seat
            holder.vacate(row)
            self.seat = None
        self.ring = self.taps = self.logits = None
