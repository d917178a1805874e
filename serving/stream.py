"""One generation's state, apart from the model that advances it (`serving.step_model`).

A stream receives what it needs — the model's lock and hop length, its engine state —
and imports neither the model's module nor the workspace's (`serving.engine_state`).
"""

from __future__ import annotations

import threading

import numpy as np

from serving.engine_state import EngineState


class Stream:
    """One generation's state: what `StepModel.advance` reads and moves forward.

    Made by `StepModel.open_streams` (which primes it); nothing here is shared with another
    stream. ``position`` is the time of the next sample (mel frames are read at
    ``position // hop``), ``rng`` draws one uniform per sample, ``temperature`` is the
    effective one (0 means argmax), ``top_k`` the number of most likely classes it draws
    from (0: every class; both may change between `StepModel.advance` calls). The engine
    state — ring rows, input taps, next logits — is ``state`` (`EngineState`): in the
    stream's own arrays or, while it is seated, in a workspace row. ``model`` is the model
    that made it (only compared: a stream is advanced by its own model); ``lock`` is that
    model's, held while state moves.
    """

    def __init__(self, model: object, lock: threading.RLock, hop: int, temperature: float, rng: np.random.Generator,
                 global_id: int | None, mel: np.ndarray | None, position: int, state: EngineState, top_k: int = 0):
        self.model = model
        self.lock = lock
        self.hop = hop
        self.temperature = temperature
        self.top_k = top_k
        self.rng = rng
        self.global_id = global_id
        self.mel = mel
        self.position = position
        self.state = state
        # The model's cache of cond.onnx terms for this stream: (first time, terms (T, L, 2G)).
        self.terms_cache: tuple[int, np.ndarray] | None = None

    @property
    def max_samples(self) -> int | None:
        """Samples the mel frames cover (prime included), or None without local conditioning."""
        return None if self.mel is None else self.mel.shape[0] * self.hop

    @property
    def closed(self) -> bool:
        return self.state.closed

    @property
    def logits(self) -> np.ndarray:
        """A copy of the next sample's logits ``(Q,)``."""
        with self.lock:
            return self.state.next_logits()

    def close(self) -> None:
        """Give up the stream: its workspace row is free for another without copying it out."""
        with self.lock:
            self.state.close()
            self.terms_cache = None
