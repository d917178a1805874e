"""Models apart from streams: one stateless `StepModel` per bundle, one `Stream` per generation.

The model holds what every stream shares — the onnxruntime sessions, the engine choice
(``step_native.onnx`` or ``step.onnx``), the conditioning graph — and no stream's state. A
`Stream` holds only state: its ring buffer rows, input taps, next distribution, random
generator, temperature, conditioning and position. ``model.advance(streams, n)`` advances
any list of streams together in one batched engine call per chunk, so N streams cost
about one call, not N; a stream's classes depend only on its own state, never on which
other streams share the call (tested).

Speed: the engines want one contiguous batch ``(N, L, B, R)`` bound to their inputs once
(IO binding). The model keeps such a batch per stream count (a `Workspace`) and *seats*
streams in its rows: a stream advanced again with the same companions stays where it is
(nothing is copied); only a stream that changes rows or companions is copied in, and its
old row's occupant copied out. The ring buffer's clock is the workspace's: a stream
seated in a workspace at another clock is rotated once on the way in.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np
import onnxruntime as ort

from serving.bundle import Bundle
from serving.native import NativeEngine, NativeState, NativeUnavailable, open_native_session, resolve_engine
from serving.onnx_step import make_session
from wavenet_tf.core.mu_law import mu_law_encode, silence_class
from wavenet_tf.core.ring_buffer import RingBuffer, shift_taps
from wavenet_tf.core.sampling import effective_temperature, sample_classes, sample_rows, stream_generator

# Up to this many streams the graph's own sampler beats NumPy's (README, performance).
GRAPH_SAMPLING_MAX_STREAMS = 4
# The native engine generates at most this many samples per call (bounds the uniforms and
# conditioning arrays; a call of 4096 samples already makes the per-call cost negligible).
NATIVE_CHUNK = 4096
# With local conditioning a call also reads cond.onnx's terms (L·2G floats a sample: 12 KB for
# `vocoder`); 1024 samples of them (12 MB) stay in the CPU's cache between the two (measured:
# vocoder, one stream on 2 threads, 1024 -> 14.4k samples/s, 4096 -> 11.1k).
NATIVE_CHUNK_CONDITIONED = 1024
# Workspaces kept (one per stream count in use); a server's count moves between a few values.
MAX_WORKSPACES = 4
# cond.onnx runs over at least this many samples' frames at a time for a stream (a per-sample
# caller such as `StreamingSampler.step` would otherwise run it once a sample).
CONDITIONING_SAMPLES = 1024


class Stream:
    """One generation's state: what `StepModel.advance` reads and moves forward.

    Made by `StepModel.open_streams` (which primes it); nothing here is shared with another
    stream. ``position`` is the time of the next sample (mel frames are read at
    ``position // hop``), ``rng`` draws one uniform per sample, ``temperature`` is the
    effective one (0 means argmax). The engine state — ring rows, input taps, next
    logits — lives in the stream's own arrays or, while it is seated, in a workspace row.
    """

    def __init__(self, model: "StepModel", temperature: float, rng: np.random.Generator, global_id: int | None,
                 mel: np.ndarray | None, position: int, ring: np.ndarray, taps: np.ndarray, logits: np.ndarray):
        self.model = model
        self.temperature = temperature
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
        with self.model._lock:
            if self._seat is not None:
                workspace, row = self._seat
                return workspace.logits[row].copy()
            return self._logits.copy()

    def close(self) -> None:
        """Give up the stream: its workspace row is free for another without copying it out."""
        with self.model._lock:
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


class Workspace:
    """Preallocated batch arrays for B streams, bound once to the engine's inputs and outputs.

    Rows belong to the streams seated in them (``owners``); ``clock`` is the ring buffer's
    time for all of them. The standard graph runs ``step.onnx`` (or ``step_sampler.onnx``,
    which also draws the next class) once a sample; the native engine K samples a call.
    """

    def __init__(self, model: "StepModel", batch: int):
        self.model = model
        self.batch = b = batch
        num_layers, num_taps = model.delays.shape
        r, g, q = model.residual_channels, model.gate_channels, model.quantization_channels
        self.owners: list[Stream | None] = [None] * b
        self.clock = 0
        # Before the start every layer input is 0, which step.onnx stores as -offset.
        self.ring = RingBuffer(model.delays, b, r, padding=-model.offsets)
        self.taps = np.full((b, model.input_taps), q, np.int64)
        self.logits = np.zeros((b, q), np.float32)
        self.global_ids = np.zeros(b, np.int64) if model.global_conditioning else None
        self.native: NativeEngine | None = None
        if model.engine == "native":
            self.native = NativeEngine(model._native, NativeState(self.ring.buffer, self.taps, self.logits),
                                       model.threads)
            return
        self.past = np.empty((num_layers, 1, b, num_taps * r), np.float32)
        self.layer_inputs = np.empty((num_layers * b, r), np.float32)
        self.conditioning = np.empty((num_layers, 2, b, g), np.float32) if model.local_conditioning else None
        # step_sampler.onnx draws the next class in the graph (few streams; see `run_graph`).
        self.uniform = np.zeros((b, 1))
        self.temperatures = np.ones((b, 1))
        self.next_taps = np.empty_like(self.taps)
        self._past_rows = self.past.reshape(num_layers * num_taps, b * r) if num_taps == 1 else None
        self._tap_scratch = np.empty((num_layers * num_taps, b * r), np.float32)
        self.binding = self._bind(model.session)
        self.sampler_binding: ort.IOBinding | None = None

    def _bind(self, session: ort.InferenceSession, sampler: bool = False) -> ort.IOBinding:
        """Bind this workspace's arrays to a step session's inputs and outputs, once."""
        binding = session.io_binding()
        arrays = {"input_taps": self.taps, "past": self.past}
        if self.global_ids is not None:
            arrays["global_id"] = self.global_ids
        if self.conditioning is not None:
            arrays["conditioning"] = self.conditioning
        if sampler:
            arrays.update(uniform=self.uniform, temperature=self.temperatures)
        for name, array in arrays.items():
            binding.bind_cpu_input(name, array)
        outputs = {"logits": self.logits, "layer_inputs": self.layer_inputs}
        if sampler:
            outputs["next_taps"] = self.next_taps
        for name, array in outputs.items():
            binding.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(array))
        return binding

    # -- seating ------------------------------------------------------------------------------

    def seat(self, streams: Sequence[Stream]) -> None:
        """Put ``streams[k]`` in row k; streams already there stay put (no copy)."""
        for k, stream in enumerate(streams):
            if stream._seat is not None and stream._seat != (self, k):
                stream._unseat()
        if all(owner is None for owner in self.owners):
            self.clock = streams[0]._clock  # an empty workspace takes the first stream's clock: no rotation
        size = self.ring.size
        for k, stream in enumerate(streams):
            if stream._seat == (self, k):
                continue
            occupant = self.owners[k]
            if occupant is not None:
                occupant._unseat()
            shift = (self.clock - stream._clock) % size
            rows = self.ring.buffer[:, :, k]
            rows[:] = stream._ring if shift == 0 else np.roll(stream._ring, shift, axis=0)
            self.taps[k] = stream._taps
            self.logits[k] = stream._logits
            if self.global_ids is not None:
                self.global_ids[k] = stream.global_id
            stream._ring = stream._taps = stream._logits = None  # the row is the state now
            stream._seat = (self, k)
            self.owners[k] = stream

    def release(self) -> None:
        """Copy every seated stream out (the workspace is about to be dropped)."""
        for stream in self.owners:
            if stream is not None:
                stream._unseat()

    # -- running ------------------------------------------------------------------------------

    def run(self, uniforms: np.ndarray, temperatures: np.ndarray, terms: np.ndarray | None) -> np.ndarray:
        """Advance every row by K samples; returns ``(B, K)`` classes.

        ``uniforms`` ``(B, K)``, ``temperatures`` ``(B,)`` (0: argmax), ``terms`` cond.onnx's
        ``(B, K, L, 2G)`` for each row's own times (locally conditioned bundles).
        """
        samples = uniforms.shape[1]
        if self.native is not None:
            classes, _ = self.native.run(self.clock, uniforms, temperatures, None, self.global_ids, terms)
        else:
            classes = self.run_graph(uniforms, temperatures, terms)
        self.clock += samples
        return classes

    def run_graph(self, uniforms: np.ndarray, temperatures: np.ndarray, terms: np.ndarray | None) -> np.ndarray:
        """`run` on ``step.onnx``: one call a sample (``step_sampler.onnx`` with few streams, T > 0)."""
        b, samples = uniforms.shape
        out = np.empty((b, samples), np.int64)
        if terms is not None:  # (B, K, L, 2G) -> one (L, 2, B, G) block a sample, copied in per step
            num_layers, _, _, g = self.conditioning.shape
            terms = np.ascontiguousarray(terms.reshape(b, samples, num_layers, 2, g).transpose(1, 2, 3, 0, 4))
        one_temperature = float(temperatures[0]) if (temperatures == temperatures[0]).all() else None

        def feed(i: int) -> None:  # draw sample i from the current logits, shift it into the taps
            if one_temperature is not None:
                classes = sample_classes(self.logits, one_temperature, uniforms[:, i])
            else:
                classes = sample_rows(self.logits, temperatures, uniforms[:, i])
            out[:, i] = classes
            shift_taps(self.taps, classes)

        if samples == 1 or b > GRAPH_SAMPLING_MAX_STREAMS or not (temperatures > 0).all():
            for i in range(samples):
                feed(i)
                self._step(self.model.session, self.binding, self.clock + i, None if terms is None else terms[i])
            return out
        # step_sampler.onnx: the graph draws sample i+1 with sample i+1's uniforms, so a sample
        # costs one call and four NumPy calls instead of a dozen. The last call's draw (the
        # sample after this chunk) is dropped: the next chunk draws it in NumPy from the same
        # logits and its own uniform, the same class (verify checks the two samplers agree).
        if self.sampler_binding is None:
            self.sampler_binding = self._bind(self.model.sampler_session(), sampler=True)
        session = self.model.sampler_session()
        feed(0)
        self.temperatures[:, 0] = temperatures
        for i in range(1, samples + 1):
            self.uniform[:, 0] = uniforms[:, i] if i < samples else 0.5
            self._step(session, self.sampler_binding, self.clock + i - 1, None if terms is None else terms[i - 1])
            if i < samples:
                self.taps[:] = self.next_taps
                out[:, i] = self.next_taps[:, -1]
        return out

    def _step(self, session: ort.InferenceSession, binding: ort.IOBinding, t: int, terms: np.ndarray | None) -> None:
        """Step time t, whose input taps are in place: gather the past, run, store."""
        if self._past_rows is not None:
            self.ring.gather(t, self._past_rows)
        else:  # kernel > 2: taps side by side per layer, (L, B, (k-1)·R)
            self.ring.gather(t, self._tap_scratch)
            num_layers, num_taps = self.model.delays.shape
            gathered = self._tap_scratch.reshape(num_layers, num_taps, self.batch, -1)
            self.past.reshape(num_layers, self.batch, num_taps, -1)[:] = gathered.transpose(0, 2, 1, 3)
        if terms is not None:
            self.conditioning[:] = terms
        session.run_with_iobinding(binding)
        self.ring.write(t, self.layer_inputs)


class StepModel:
    """A bundle's step engine, loaded once and shared by any number of `Stream` objects.

    Args:
        bundle: a loaded bundle (`serving.bundle.load_bundle`).
        threads: threads the engine may use (onnxruntime intra-op threads for ``step.onnx``;
            the native operator's own threads).
        engine: ``native`` (the bundle's ``step_native.onnx``: K samples per call), ``graph``
            (``step.onnx``: one call per sample) or ``auto`` (native when it loads, else the
            graph, with the reason in ``engine_note``). Both compute the same classes.

    Example:
    >>> model = StepModel(load_bundle("bundles/first"))                  # doctest: +SKIP
    >>> a, b = model.open_streams(2, seed=1)                             # doctest: +SKIP
    >>> model.advance([a, b], 16000).shape                               # doctest: +SKIP
    (2, 16000)
    """

    def __init__(self, bundle: Bundle, threads: int = 1, engine: str | None = None):
        card = bundle.card
        self.bundle = bundle
        self.threads = threads
        self.sample_rate = card.sample_rate
        self.quantization_channels = card.quantization_channels
        self.receptive_field = card.receptive_field
        self.residual_channels, self.gate_channels = card.residual_channels, card.gate_channels
        self.input_taps = card.initial_kernel_size
        self.delays = np.asarray(card.step.delays, np.int64)
        self.offsets = np.asarray(card.step.residual_offsets, np.float32)
        self.global_conditioning = bundle.global_conditioning
        self.local_conditioning = bundle.local_conditioning
        self.global_classes = card.global_conditioning.classes if self.global_conditioning else None
        self.hop = bundle.hop_length
        self._lock = threading.RLock()
        self._workspaces: OrderedDict[int, Workspace] = OrderedDict()
        self._full = self._cond = self._sampler = None
        self._native: ort.InferenceSession | None = None
        self.session: ort.InferenceSession | None = None
        self.engine_note = self._open_engine(resolve_engine(engine))
        self.engine = "native" if self._native is not None else "graph"
        if self.engine == "graph":
            self.session = make_session(str(bundle.file("step.onnx")), threads)

    def _open_engine(self, engine: str) -> str | None:
        """Open the native engine if asked and possible; returns why not, or None."""
        if engine == "graph":
            return "the standard step graph was asked for"
        try:
            self._native = open_native_session(self.bundle)
        except NativeUnavailable as error:
            if engine == "native":
                raise
            return str(error)
        return None

    # -- streams ------------------------------------------------------------------------------

    def open_streams(self, count: int = 1, prime: np.ndarray | None = None, *, seed: int = 0,
                     temperature: float | Sequence[float] = 1.0, global_ids=None, mel: np.ndarray | None = None,
                     prime_classes: np.ndarray | None = None) -> list[Stream]:
        """``count`` streams, primed together in one pass of the full-sequence graph.

        Args:
            prime: float audio ``(count, P)`` or ``(P,)`` at the model's rate to continue
                from; None means a receptive field of digital silence (what naive generation
                starts from). Only its last receptive field reaches the model, so only that
                runs (with mel frames: from a frame boundary).
            seed: stream k draws its uniforms from ``stream_generator(seed, k)``; stream 0's
                generator is ``np.random.default_rng(seed)`` itself.
            temperature: one for all, or one per stream; at or below
                `wavenet_tf.core.sampling.GREEDY_TEMPERATURE` the most likely class is taken.
            global_ids: each stream's global class id (globally conditioned bundles).
            mel: ``(count, frames, n_mels)`` or ``(frames, n_mels)`` log-mel frames (locally
                conditioned bundles); a stream can reach ``frames · hop`` samples, prime included.
            prime_classes: ``(count, P)`` classes fed whole from time 0 instead of ``prime``.
        """
        temperatures = [effective_temperature(t) for t in np.broadcast_to(np.asarray(temperature, float), (count,))]
        ids = self._global_ids(count, global_ids)
        frames = self._mel(count, mel)
        classes, start = self._prime_classes(count, prime, prime_classes)
        rings, taps, logits = self._prime(classes, start, ids, frames)
        end = start + classes.shape[1]
        return [Stream(self, temperatures[k], stream_generator(seed, k), None if ids is None else int(ids[k]),
                       None if frames is None else frames[k], end, rings[k], taps[k], logits[k])
                for k in range(count)]

    def open_stream(self, prime: np.ndarray | None = None, *, seed: int = 0, temperature: float = 1.0,
                    global_id: int | None = None, mel: np.ndarray | None = None) -> Stream:
        """One stream (`open_streams` with one of each): e.g. a server request's."""
        return self.open_streams(1, prime, seed=seed, temperature=temperature,
                                 global_ids=None if global_id is None else [global_id],
                                 mel=None if mel is None else np.asarray(mel, np.float32)[None])[0]

    def _global_ids(self, count: int, global_ids) -> np.ndarray | None:
        if not self.global_conditioning:
            return None
        if global_ids is None:
            raise ValueError(f"{self.bundle.path} is globally conditioned: pass global_ids (one per stream).")
        ids = np.broadcast_to(np.asarray(global_ids, np.int64), (count,)).copy()
        if ids.min() < 0 or ids.max() >= self.global_classes:
            raise ValueError(f"global_ids must be in [0, {self.global_classes}), got {ids.tolist()}.")
        return ids

    def _mel(self, count: int, mel) -> np.ndarray | None:
        if not self.local_conditioning:
            return None
        if mel is None:
            raise ValueError(f"{self.bundle.path} is locally conditioned: pass mel frames (B, frames, n_mels).")
        mel = np.asarray(mel, np.float32)
        if mel.ndim == 2:
            mel = np.broadcast_to(mel, (count,) + mel.shape)
        if not np.isfinite(mel).all():
            raise ValueError("mel frames contain NaN or Inf.")
        return np.ascontiguousarray(mel)

    def _prime_classes(self, count: int, prime, prime_classes) -> tuple[np.ndarray, int]:
        """The classes the full-sequence pass runs over ``(count, P)``, and the time of the first."""
        q = self.quantization_channels
        if prime_classes is not None:
            return np.broadcast_to(np.asarray(prime_classes, np.int32), (count, np.shape(prime_classes)[-1])), 0
        if prime is None:
            return np.full((count, self.receptive_field), silence_class(q), np.int32), 0
        audio = np.asarray(prime, np.float32)
        if not np.isfinite(audio).all():
            raise ValueError("the prime contains NaN or Inf.")
        # Only the last receptive field of the prime can influence what comes next: the
        # full-sequence pass over a 3-minute prime held every layer's inputs for every
        # sample (5 GB). With mel frames the cut falls on a frame boundary (each frame
        # conditions its own hop of samples only), and the frames before it are skipped.
        start = max(0, audio.shape[-1] - self.receptive_field)
        if self.local_conditioning:
            start -= start % self.hop
        classes = mu_law_encode(audio[..., start:], q)
        return np.broadcast_to(classes, (count, audio.shape[-1] - start)).astype(np.int32), start

    def _prime(self, classes: np.ndarray, start: int, global_ids, mel) -> tuple[list, np.ndarray, np.ndarray]:
        """Each stream's ring rows, taps and next logits after ``classes`` at times ``start ..``.

        One pass of the full-sequence graph gives every layer's inputs, which go into the
        ring at their times; the last input classes become the taps, the last logits the
        next distribution.
        """
        count, length = classes.shape
        feeds = {"audio": classes}
        if global_ids is not None:
            feeds["global_id"] = global_ids.astype(np.int32)
        if mel is not None:
            mel = mel[:, start // self.hop:]
            padded = -(-length // self.hop) * self.hop  # whole frames; the extra samples are in the future
            if padded > mel.shape[1] * self.hop:
                raise ValueError(f"the prime ({length} samples) is longer than the mel frames cover "
                                 f"({mel.shape[1] * self.hop}).")
            feeds["audio"] = np.pad(classes, ((0, 0), (0, padded - length)), constant_values=classes[0, -1])
            feeds["mel"] = mel[:, : padded // self.hop]
        logits, layer_inputs = self.full_session().run(["logits", "layer_inputs"], feeds)
        num_layers = len(self.delays)
        size = 1 << int(self.delays.max(initial=0)).bit_length()  # `RingBuffer`'s size
        span = min(length, size)
        history = layer_inputs[:, length - span : length].reshape(count, span, num_layers, -1)
        times = np.arange(start + length - span, start + length) & (size - 1)
        rings = []
        for k in range(count):
            rows = np.empty((size, num_layers, self.residual_channels), np.float32)
            rows[:] = -self.offsets[None]
            rows[times] = history[k]
            rings.append(rows)
        k0 = self.input_taps
        taps = np.full((count, k0), self.quantization_channels, np.int64)
        last = classes[:, max(0, length - k0):]
        taps[:, k0 - last.shape[1]:] = last
        return rings, taps, np.ascontiguousarray(logits[:, length - 1], np.float32)

    # -- generation ---------------------------------------------------------------------------

    def advance(self, streams: Sequence[Stream], num_samples: int, uniforms: np.ndarray | None = None) -> np.ndarray:
        """Advance every stream by ``num_samples`` in batched engine calls; returns ``(B, num_samples)`` classes.

        Each stream draws from its own distribution with its own uniforms (``uniforms``
        ``(B, num_samples)`` overrides them, e.g. for a reference), its own temperature,
        global id and mel frames on its own clock: its classes are what it would get alone.
        """
        streams = list(streams)
        b = len(streams)
        if len({id(s) for s in streams}) != b:
            raise ValueError("a stream is listed twice in one advance call.")
        for stream in streams:
            if stream.model is not self:
                raise ValueError("a stream belongs to another StepModel: advance it with its own model.")
            if stream._ring is None and stream._seat is None:
                raise ValueError("a closed stream cannot be advanced.")
            if stream.mel is not None and stream.position + num_samples > stream.max_samples:
                raise ValueError(f"the mel frames cover {stream.max_samples} samples; generation reached the end.")
        out = np.empty((b, num_samples), np.int64)
        if b == 0 or num_samples == 0:
            return out
        temperatures = np.array([s.temperature for s in streams], np.float64)
        chunk = NATIVE_CHUNK if not self.local_conditioning else NATIVE_CHUNK_CONDITIONED
        with self._lock:
            workspace = self.workspace(b)
            workspace.seat(streams)
            done = 0
            while done < num_samples:
                n = min(chunk, num_samples - done)
                if uniforms is None:
                    chunk_uniforms = np.empty((b, n))
                    for k, stream in enumerate(streams):
                        chunk_uniforms[k] = stream.rng.random(n)
                else:
                    chunk_uniforms = np.ascontiguousarray(uniforms[:, done : done + n], np.float64)
                terms = self._terms(streams, n) if self.local_conditioning else None
                out[:, done : done + n] = workspace.run(chunk_uniforms, temperatures, terms)
                for stream in streams:
                    stream.position += n
                done += n
        return out

    def workspace(self, batch: int) -> Workspace:
        """The workspace for ``batch`` streams (made on first use; the least recently used goes)."""
        with self._lock:
            if batch in self._workspaces:
                self._workspaces.move_to_end(batch)
                return self._workspaces[batch]
            if len(self._workspaces) >= MAX_WORKSPACES:
                _, oldest = self._workspaces.popitem(last=False)
                oldest.release()
            workspace = self._workspaces[batch] = Workspace(self, batch)
            return workspace

    def _terms(self, streams: Sequence[Stream], samples: int) -> np.ndarray:
        """cond.onnx's terms for every stream's next ``samples`` ``(B, samples, L, 2G)``, from its cache."""
        blocks = []
        for stream in streams:
            t, cached = stream.position, stream._terms
            if cached is None or not (cached[0] <= t and t + samples <= cached[0] + cached[1].shape[0]):
                first = t // self.hop
                frames = min(-(-max(samples, CONDITIONING_SAMPLES) // self.hop) + 1, stream.mel.shape[0] - first)
                terms = self.conditioning_terms(stream.mel[None], first * self.hop, frames * self.hop)[0]
                cached = stream._terms = (first * self.hop, terms)
            blocks.append(cached[1][t - cached[0] : t - cached[0] + samples])
        return blocks[0][None] if len(blocks) == 1 else np.stack(blocks)

    def conditioning_terms(self, mel: np.ndarray, t: int, samples: int) -> np.ndarray:
        """cond.onnx's per-layer terms of ``mel`` ``(b, frames, n_mels)`` for its times ``t .. t + samples - 1``.

        Returns ``(b, samples, L, 2G)``; the frames must cover those times.
        """
        first, last = t // self.hop, -(-(t + samples) // self.hop)
        out = self.cond_session().run(None, {"mel": np.ascontiguousarray(mel[:, first:last], np.float32)})[0]
        out = out.reshape(mel.shape[0], out.shape[1], len(self.delays), -1)  # (b, T, L, 2G)
        start = t - first * self.hop
        return np.ascontiguousarray(out[:, start : start + samples])

    def native_engine(self, batch: int) -> NativeEngine:
        """A native engine over fresh state for ``batch`` streams (raw operator calls: checks, tests)."""
        if self._native is None:
            raise NativeUnavailable(f"the native engine is not in use: {self.engine_note}")
        ring = RingBuffer(self.delays, batch, self.residual_channels, padding=-self.offsets)
        state = NativeState(ring.buffer, np.full((batch, self.input_taps), self.quantization_channels, np.int64),
                            np.zeros((batch, self.quantization_channels), np.float32))
        return NativeEngine(self._native, state, self.threads)

    # -- sessions -----------------------------------------------------------------------------

    def full_session(self) -> ort.InferenceSession:
        """``wavenet.onnx`` (primes), opened on first use."""
        if self._full is None:
            self._full = make_session(str(self.bundle.file("wavenet.onnx")), threads=1)
        return self._full

    def sampler_session(self) -> ort.InferenceSession:
        """``step_sampler.onnx`` (the graph engine with few streams), opened on first use."""
        if self._sampler is None:
            self._sampler = make_session(str(self.bundle.file("step_sampler.onnx")), self.threads)
        return self._sampler

    def cond_session(self) -> ort.InferenceSession:
        """``cond.onnx`` (locally conditioned bundles), opened on first use."""
        if self._cond is None:
            # A batched GEMM per chunk: it uses the engine's threads well (8.5 -> 5.7 µs a sample on 2 cores).
            self._cond = make_session(str(self.bundle.file("cond.onnx")), threads=self.threads, spinning=False)
        return self._cond
