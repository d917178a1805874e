"""Dynamic batching: requests join and leave one batched step call as they come and go."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from serving.bundle import Bundle
from wavenet_tf.core.mu_law import mu_law_decode, mu_law_encode, silence_class
from serving.streaming_sampler import StreamingSampler


@dataclass
class Request:
    """One generation request in a slot; ``deliver`` receives float32 chunks, then None.

    ``prime`` is the float audio the request continues from (None: a receptive field of silence).
    ``mel`` ``(frames, n_mels)``: the request's own log-mel frames (locally conditioned
    bundles): it starts from a receptive field of silence conditioned on its first frames,
    as `StreamingSampler.prime` does, and ``num_samples`` may reach ``frames · hop - receptive field``.
    """

    num_samples: int
    temperature: float
    seed: int
    global_id: int | None
    deliver: Callable[[np.ndarray | None], None]
    prime: np.ndarray | None = None
    mel: np.ndarray | None = None
    done: int = 0
    origin: int = 0  # the batcher's time at which this request's time 0 falls (its mel frames' clock)
    cancelled: bool = False
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)


class Batcher:
    """``capacity`` slots of one `StreamingSampler`, advanced together by a worker thread.

    Every step is one ``step.onnx`` call for all slots, so N concurrent requests cost
    about one batched call per sample instead of N calls (the per-node cost is shared). A
    request joins at the next chunk boundary: its slot is primed at the current time with
    one pass of the full-sequence graph, and it draws from its own random stream, so its
    audio is exactly what a `StreamingSampler` with the same seed produces alone. A
    request that finishes or is cancelled frees its slot at the next chunk boundary.

    Args:
        bundle: a bundle; with local conditioning every request brings its own mel frames
            (each slot reads its own frames on its own clock; streams of any lengths).
        capacity: slots (the most requests generated at once).
        chunk: samples generated per slot between admissions and deliveries.
        threads: threads the step engine may use.
        engine: the step engine (`serving.native.resolve_engine`); the native one advances
            only the slots that hold a request, so one request costs one stream, not ``capacity``.
    """

    def __init__(self, bundle: Bundle, capacity: int = 8, chunk: int = 512, threads: int = 1,
                 engine: str | None = None):
        self.bundle = bundle
        self.capacity = capacity
        self.chunk = chunk
        ids = np.zeros(capacity, np.int64) if bundle.global_conditioning else None
        mel = None
        if bundle.local_conditioning:
            # Placeholder frames for the empty slots' first prime only: a request's slot is
            # primed with its own frames, and every chunk gets each slot's own terms (_loop).
            rf, hop = bundle.card.receptive_field, bundle.hop_length
            mel = np.zeros((capacity, -(-rf // hop), bundle.card.local_conditioning.n_mels), np.float32)
        self.sampler = StreamingSampler(bundle, streams=capacity, threads=threads, global_ids=ids, mel=mel,
                                        engine=engine)
        self.sampler.prime()
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
        s = self.sampler
        if s.mel is not None:
            # Checked now: a failure inside the worker thread would stop every slot.
            if request.mel is None or request.prime is not None:
                raise ValueError("a locally conditioned bundle needs the request's mel frames, and no prime.")
            covered = np.shape(request.mel)[0] * s.hop
            if s.receptive_field + request.num_samples > covered:
                raise ValueError(f"{request.num_samples} samples after the receptive field ({s.receptive_field}) "
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
                self.slots[self.slots.index(request)] = None  # its column is reprimed when reused
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
                self._prime_slot(k, request)
                self.slots[k] = request

    def _prime_slot(self, k: int, request: Request) -> None:
        # The request's prime (a receptive field of silence without one), placed in this slot
        # so that it ends now. Only its last receptive field reaches the model, so only that
        # runs through the full-sequence graph: the same state as a lone sampler primed with all of it.
        s = self.sampler
        q = s.quantization_channels
        if request.prime is None:
            classes = np.full((1, s.receptive_field), silence_class(q), np.int32)
        else:
            classes = mu_law_encode(np.asarray(request.prime, np.float32)[-s.receptive_field:], q)[None].astype(np.int32)
        ids = None
        if s.global_ids is not None:
            s.global_ids[k] = request.global_id
            ids = [request.global_id]
        mel = None
        if s.mel is not None:
            # The prime is the request's times 0 .. P-1, read against its own first frames.
            request.origin = s.t - classes.shape[1]
            mel = np.asarray(request.mel, np.float32)[None]
        s.prime_streams(classes, slice(k, k + 1), global_ids=ids, mel=mel)

    def _conditioning(self, requests: list[Request | None], steps: int) -> np.ndarray:
        """Each slot's cond.onnx terms for the next ``steps`` samples ``(B, steps, L, 2G)``, on its own clock.

        A slot's request reads its frames at its own time (the batcher's time minus its
        origin); past its last sample, and in an empty slot, the terms are zeros: those
        samples are never delivered.
        """
        s = self.sampler
        num_layers, _, _, g = s.conditioning.shape
        out = np.zeros((self.capacity, steps, num_layers, 2 * g), np.float32)
        for k, r in enumerate(requests):
            if r is not None:
                n = min(steps, r.num_samples - r.done)
                out[k, :n] = s.conditioning_terms(np.asarray(r.mel, np.float32)[None], s.t - r.origin, n)[0]
        return out

    def _loop(self) -> None:
        s = self.sampler
        while True:
            with self.lock:
                self.slots = [None if (req is None or req.cancelled) else req for req in self.slots]
                self._admit()
                while self.running and not any(self.slots) and not self.pending:
                    self.lock.wait()
                if not self.running:
                    return
                if not any(self.slots):
                    continue
                requests = list(self.slots)
            self.max_active = max(self.max_active, sum(r is not None for r in requests))
            temperatures = np.array([r.temperature if r else 0.0 for r in requests])
            steps = min(self.chunk, max(r.num_samples - r.done for r in requests if r))
            # Each request draws its own uniforms, as many as it needs (a lone sampler's sequence).
            uniforms = np.zeros((self.capacity, steps))
            for k, r in enumerate(requests):
                if r is not None:
                    n = min(steps, r.num_samples - r.done)
                    uniforms[k, :n] = r.rng.random(n)
            # The native engine advances only the slots holding a request; an empty slot costs nothing.
            active = np.array([k for k, r in enumerate(requests) if r is not None], np.int64)
            conditioning = self._conditioning(requests, steps) if s.mel is not None else None
            produced = s.run_chunk(uniforms, temperatures, active=active, conditioning=conditioning)
            audio = mu_law_decode(np.maximum(produced, 0), s.quantization_channels)
            for k, request in enumerate(requests):
                if request is None or request.cancelled:
                    continue
                n = min(steps, request.num_samples - request.done)
                request.deliver(audio[k, :n])
                request.done += n
                if request.done >= request.num_samples:
                    request.deliver(None)
                    with self.lock:
                        self.slots[k] = None
