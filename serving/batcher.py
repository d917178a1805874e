"""Dynamic batching: requests join and leave one batched step call as they come and go."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from serving.bundle import Bundle
from serving.step_model import StepModel, Stream
from wavenet_tf.core.mu_law import mu_law_decode
from wavenet_tf.core.sampling import effective_temperature


@dataclass(eq=False)  # a request is itself: found in the slots by identity, never by its arrays
class Request:
    """One generation request; ``deliver`` receives float32 chunks, then None.

    ``prime`` is the float audio the request continues from (None: a receptive field of silence).
    ``mel`` ``(frames, n_mels)``: the request's own log-mel frames (locally conditioned
    bundles): it starts from a receptive field of silence conditioned on its first frames,
    as `StreamingSampler.prime` does, and ``num_samples`` may reach ``frames · hop - receptive field``.
    ``top_k``: draw only from the k most likely classes (0: every class).
    ``stream`` is its state once admitted (`serving.step_model.Stream`).
    """

    num_samples: int
    temperature: float
    seed: int
    global_id: int | None
    deliver: Callable[[np.ndarray | None], None]
    prime: np.ndarray | None = None
    mel: np.ndarray | None = None
    top_k: int | None = None  # None: the bundle's default
    done: int = 0
    cancelled: bool = False
    stream: Stream | None = None


class Batcher:
    """Up to ``capacity`` requests' streams, advanced together by a worker thread.

    Bookkeeping only: which request owns which `Stream`, who waits, how far each is. The
    generation is `StepModel.advance` over the live requests' streams: one batched engine
    call for all of them, so N concurrent requests cost about one call per sample instead
    of N (the per-node cost is shared). A request joins at the next chunk boundary with its
    own primed stream (its own random generator, clock and frames), so its audio is exactly
    what a `StreamingSampler` with the same seed produces alone; one that finishes or is
    cancelled leaves at the next chunk boundary.

    Args:
        bundle: a bundle; with local conditioning every request brings its own mel frames.
        capacity: the most requests generated at once (the others wait, in order).
        chunk: samples generated per request between admissions and deliveries.
        threads: threads the step engine may use.
        engine: the step engine (`serving.native.resolve_engine`).
    """

    def __init__(self, bundle: Bundle, capacity: int = 8, chunk: int = 512, threads: int = 1,
                 engine: str | None = None):
        self.bundle = bundle
        self.capacity = capacity
        self.chunk = chunk
        self.model = StepModel(bundle, threads=threads, engine=engine)
        self.slots: list[Request | None] = [None] * capacity
        self.pending: list[Request] = []
        self.lock = threading.Condition()
        self.running = True
        self.max_active = 0  # the most requests ever generated in one call (observability, tests)
        self.thread = threading.Thread(target=self._loop, name="wavenet-batcher", daemon=True)
        self.thread.start()

    @property
    def active(self) -> int:
        """Requests accepted and not finished: generating in a slot or about to be admitted."""
        with self.lock:
            in_slots = sum(slot is not None and not slot.cancelled for slot in self.slots)
            return in_slots + sum(not request.cancelled for request in self.pending)

    def submit(self, request: Request) -> None:
        """Queue ``request``; a request the bundle cannot generate is refused here, not in the worker."""
        # Checked now: a failure inside the worker thread would stop every request.
        model = self.model
        effective_temperature(request.temperature)  # NaN and infinity: ValueError, named
        # A bad k is a ValueError; a bundle whose native graph predates top-k moves to the graph
        # engine now (`StepModel.need_top_k`), not in the worker.
        model.top_ks(1, request.top_k)
        if model.global_conditioning and not (request.global_id is not None
                                              and 0 <= request.global_id < model.global_classes):
            raise ValueError(f"a globally conditioned bundle needs a global id in [0, {model.global_classes}), "
                             f"got {request.global_id}.")
        if model.local_conditioning:
            if request.mel is None or request.prime is not None:
                raise ValueError("a locally conditioned bundle needs the request's mel frames, and no prime.")
            covered = np.shape(request.mel)[0] * model.hop
            if model.receptive_field + request.num_samples > covered:
                raise ValueError(f"{request.num_samples} samples after the receptive field ({model.receptive_field}) "
                                 f"go past the {covered} samples the mel frames cover.")
        elif request.mel is not None:
            raise ValueError("mel frames given, but the bundle is not locally conditioned.")
        with self.lock:
            self.pending.append(request)
            self.lock.notify()

    def cancel(self, request: Request) -> None:
        with self.lock:
            request.cancelled = True
            self.pending = [r for r in self.pending if r is not request]
            if request in self.slots:
                self.slots[self.slots.index(request)] = None  # the worker closes its stream
            self.lock.notify()

    def close(self) -> None:
        with self.lock:
            self.running = False
            self.lock.notify()
        self.thread.join(timeout=5)

    def _admit(self) -> None:
        for k in range(self.capacity):
            if self.slots[k] is None and self.pending:
                request = self.pending.pop(0)
                if request.cancelled:
                    continue
                # Only the prime's last receptive field reaches the model, and only that runs
                # through the full-sequence graph (`StepModel.open_streams`).
                request.stream = self.model.open_stream(request.prime, seed=request.seed,
                                                        temperature=request.temperature, top_k=request.top_k,
                                                        global_id=request.global_id, mel=request.mel)
                self.slots[k] = request

    def _loop(self) -> None:
        live: list[Request] = []
        while True:
            with self.lock:
                for request in live:  # the streams of requests that left (finished or cancelled)
                    if request not in self.slots and request.stream is not None:
                        request.stream.close()
                self._admit()
                while self.running and not any(self.slots) and not self.pending:
                    self.lock.wait()
                if not self.running:
                    return
                live = [request for request in self.slots if request is not None]
                if not live:
                    continue
            self.max_active = max(self.max_active, len(live))
            # Every live request needs all of these samples: none generates past its end
            # (past its mel frames), and the next admission waits at most one chunk.
            steps = min(self.chunk, min(r.num_samples - r.done for r in live))
            produced = self.model.advance([r.stream for r in live], steps)
            audio = mu_law_decode(produced, self.model.quantization_channels)
            for k, request in enumerate(live):
                if request.cancelled:
                    continue
                request.deliver(audio[k])
                request.done += steps
                if request.done >= request.num_samples:
                    request.deliver(None)
                    with self.lock:
                        if request in self.slots:
                            self.slots[self.slots.index(request)] = None
