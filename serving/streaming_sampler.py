"""Real-time generation: B streams, one ring buffer, ``step.onnx`` on onnxruntime, NumPy only."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import onnxruntime as ort

from serving.bundle import Bundle
from wavenet_tf.core.mu_law import mu_law_decode, mu_law_encode, silence_class
from serving.native import NativeEngine, NativeState, NativeUnavailable, open_native, resolve_engine
from serving.onnx_step import make_session
from wavenet_tf.core.ring_buffer import RingBuffer, shift_taps
from wavenet_tf.core.sampling import GREEDY_TEMPERATURE, effective_temperature, sample_classes, sample_rows


# Up to this many streams the graph's own sampler beats NumPy's (README, performance).
GRAPH_SAMPLING_MAX_STREAMS = 4
# The native engine generates at most this many samples per call (bounds the uniforms and
# conditioning arrays; a call of 4096 samples already makes the per-call cost negligible).
NATIVE_CHUNK = 4096
# With local conditioning a call also reads cond.onnx's terms (L·2G floats a sample: 12 KB for
# `vocoder`); 1024 samples of them (12 MB) stay in the CPU's cache between the two (measured:
# vocoder, one stream on 2 threads, 1024 -> 14.4k samples/s, 4096 -> 11.1k).
NATIVE_CHUNK_CONDITIONED = 1024


class StreamingSampler:
    """Generate audio from a bundle, sample by sample, for B independent streams at once.

    "Fast WaveNet": each layer's past taps are rows of one `RingBuffer` ``(N, L, B, R)``,
    found by index arithmetic, so a sample costs one ``step.onnx`` call (O(layers)) however
    long the receptive field. The loop around the call allocates nothing: inputs and
    outputs are preallocated arrays bound to the session once (IO binding), the taps are
    one ``np.take`` into the bound input, the new state is one row write.

    The model is the session (stateless); the stream is the state (ring buffer, last input
    classes, time, random numbers), cleared by `reset`.

    Args:
        bundle: a loaded bundle (`serving.bundle.load_bundle`).
        streams: B, the number of independent streams generated together.
        temperature: logits are divided by it before sampling; at or below
            `wavenet_tf.core.sampling.GREEDY_TEMPERATURE` (0 included) the most likely class is taken.
        seed: seed of the uniform random numbers (one per sample and stream).
        threads: onnxruntime intra-op threads (1 is fastest for one stream; see README).
        global_ids: each stream's global class id (globally conditioned bundles).
        mel: ``(B, frames, n_mels)`` log-mel frames (locally conditioned bundles); generation
            can run for at most ``frames · hop_length`` samples including the prime.
        engine: ``native`` (the bundle's ``step_native.onnx``: K samples per call), ``graph``
            (``step.onnx``: one call per sample) or ``auto`` (native when it loads, else the
            graph, with the reason in ``engine_note``). Both compute the same classes.

    Example:
    >>> sampler = StreamingSampler(load_bundle("bundles/first"), streams=2, seed=1)  # doctest: +SKIP
    >>> audio = sampler.generate(16000)                                            # doctest: +SKIP
    >>> audio.shape                                                                # doctest: +SKIP
    (2, 16000)
    """

    def __init__(self, bundle: Bundle, streams: int = 1, temperature: float = 1.0, seed: int = 0,
                 threads: int = 1, global_ids=None, mel: np.ndarray | None = None, engine: str | None = None):
        card = bundle.card
        self.bundle = bundle
        self.streams = streams
        self.temperature = effective_temperature(temperature)  # tiny T is argmax in every engine
        self.seed = seed
        self.sample_rate = card.sample_rate
        self.quantization_channels = q = card.quantization_channels
        self.receptive_field = card.receptive_field
        self.delays = np.asarray(card.step.delays, np.int64)
        self.offsets = np.asarray(card.step.residual_offsets, np.float32)
        num_layers, num_taps = self.delays.shape
        r, g = card.residual_channels, card.gate_channels
        self.session = make_session(str(bundle.file("step.onnx")), threads)
        self._full = None
        self._cond = None

        b = streams
        # Before the start every layer input is 0, which step.onnx stores as -offset.
        self.ring = RingBuffer(self.delays, b, r, padding=-self.offsets)
        self.input_taps = np.empty((b, card.initial_kernel_size), np.int64)
        self.past = np.empty((num_layers, 1, b, num_taps * r), np.float32)
        self.logits = np.empty((b, q), np.float32)
        self.layer_inputs = np.empty((num_layers * b, r), np.float32)
        # step_sampler.onnx draws the next class in the graph (few streams; see generate_classes).
        self.uniform = np.zeros((b, 1))
        self.temperatures = np.ones((b, 1))
        self.next_taps = np.empty_like(self.input_taps)
        self._threads = threads
        self._sampler = None
        self._past_rows = self.past.reshape(num_layers * num_taps, b * r) if num_taps == 1 else None
        self._tap_scratch = np.empty((num_layers * num_taps, b * r), np.float32)

        self.global_ids = None
        if bundle.global_conditioning:
            if global_ids is None:
                raise ValueError(f"{bundle.path} is globally conditioned: pass global_ids (one per stream).")
            self.global_ids = np.broadcast_to(np.asarray(global_ids, np.int64), (b,)).copy()
            classes = card.global_conditioning.classes
            if self.global_ids.min() < 0 or self.global_ids.max() >= classes:
                raise ValueError(f"global_ids must be in [0, {classes}), got {self.global_ids.tolist()}.")
        self.mel = None
        self._conditioning_given = False  # run_chunk's caller put this sample's terms in self.conditioning
        if bundle.local_conditioning:
            if mel is None:
                raise ValueError(f"{bundle.path} is locally conditioned: pass mel frames (B, frames, n_mels).")
            mel = np.asarray(mel, np.float32)
            if mel.ndim == 2:
                mel = np.broadcast_to(mel, (b,) + mel.shape)
            if not np.isfinite(mel).all():
                raise ValueError("mel frames contain NaN or Inf.")
            self.mel = np.ascontiguousarray(mel)
            self.hop = bundle.hop_length
            self.conditioning = np.empty((num_layers, 2, b, g), np.float32)
            self._cond_chunk = None
            self._cond_start = 0
        self.binding = self._bind(self.session)
        self.native: NativeEngine | None = None
        self.engine_note = self._open_engine(resolve_engine(engine), threads)
        self.engine = "native" if self.native is not None else "graph"
        self.reset()

    def _open_engine(self, engine: str, threads: int) -> str | None:
        """Open the native engine if asked and possible; returns why not, or None."""
        if engine == "graph":
            return "the standard step graph was asked for"
        try:
            state = NativeState(self.ring.buffer, self.input_taps, self.logits)
            self.native = open_native(self.bundle, state, threads)
        except NativeUnavailable as error:
            if engine == "native":
                raise
            return str(error)
        return None

    def _bind(self, session: ort.InferenceSession, sampler: bool = False) -> ort.IOBinding:
        """Bind this sampler's preallocated arrays to a step session's inputs and outputs, once."""
        binding = session.io_binding()
        arrays = {"input_taps": self.input_taps, "past": self.past}
        if self.global_ids is not None:
            arrays["global_id"] = self.global_ids
        if self.mel is not None:
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

    # -- state ------------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> None:
        """Forget everything generated: the ring holds causal padding, and the random stream restarts."""
        self.ring.reset()
        self.input_taps[:] = self.quantization_channels  # "before the start"
        self.t = 0
        self.rng = np.random.default_rng(self.seed if seed is None else seed)
        # Uniforms are drawn in blocks: the same numbers, in the same order, as one draw per step.
        self._uniforms = np.empty((0, self.streams))
        self._uniform_index = 0
        self.primed = False  # after a prime, self.logits holds every stream's next distribution
        self._drawn = None  # (classes, uniforms, temperature) of the next sample, drawn by the graph
        self._cond_chunk = None

    @property
    def max_samples(self) -> int | None:
        """Samples the mel frames cover (prime included), or None without local conditioning."""
        return None if self.mel is None else self.mel.shape[1] * self.hop

    def prime(self, audio: np.ndarray | None = None) -> None:
        """Fill the ring buffer from a waveform in one pass of the full-sequence graph.

        ``audio`` is float ``(B, P)`` or ``(P,)`` at the model's rate; None means a receptive
        field of digital silence (what naive generation starts from). Generation continues
        from the end of the prime.
        """
        q = self.quantization_channels
        start = 0
        if audio is None:
            classes = np.full((self.streams, self.receptive_field), silence_class(q), np.int32)
        else:
            audio = np.asarray(audio, np.float32)
            if not np.isfinite(audio).all():
                raise ValueError("the prime contains NaN or Inf.")
            # Only the last receptive field of the prime can influence what comes next: the
            # full-sequence pass over a 3-minute prime held every layer's inputs for every
            # sample (5 GB). With mel frames the cut falls on a frame boundary (each frame
            # conditions its own hop of samples only), and the frames before it are skipped.
            start = max(0, audio.shape[-1] - self.receptive_field)
            if self.mel is not None:
                start -= start % self.hop
            classes = np.broadcast_to(mu_law_encode(audio[..., start:], q),
                                      (self.streams, audio.shape[-1] - start)).astype(np.int32)
        self.reset()
        self.t = start + classes.shape[1]  # the time after the whole prime (mel frames are read at t // hop)
        mel = self.mel if self.mel is None or start == 0 else self.mel[:, start // self.hop:]
        self.prime_streams(classes, global_ids=self.global_ids, mel=mel)

    def prime_streams(self, classes: np.ndarray, streams: slice = slice(None), global_ids=None,
                      mel: np.ndarray | None = None) -> None:
        """Load a prime into ``streams``' state so that it ends at the current time ``t``.

        One pass of the full-sequence graph over ``classes`` ``(B_s, P)`` gives every layer's
        inputs, which go into the ring buffer at times ``t - P .. t - 1``; the last input
        classes become the taps, and the last logits the next distribution. `prime` uses it
        for all streams at t = P; the server's batcher for one slot that joins mid-stream.
        Mel frames, when given, are read from the start: the prime must begin at time 0.
        """
        self._drawn = None  # these streams' next distribution changes
        length = classes.shape[1]
        feeds = {"audio": classes}
        if global_ids is not None:
            feeds["global_id"] = np.asarray(global_ids, np.int32)
        if mel is not None:
            padded = -(-length // self.hop) * self.hop  # whole frames; the extra samples are in the future
            if padded > mel.shape[1] * self.hop:
                raise ValueError(f"the prime ({length} samples) is longer than the mel frames cover "
                                 f"({mel.shape[1] * self.hop}).")
            feeds["audio"] = np.pad(classes, ((0, 0), (0, padded - length)), constant_values=classes[0, -1])
            feeds["mel"] = mel[:, : padded // self.hop]
        logits, layer_inputs = self._full_session().run(["logits", "layer_inputs"], feeds)
        span = min(length, self.ring.size)
        history = layer_inputs[:, length - span : length].reshape(classes.shape[0], span, len(self.delays), -1)
        self.ring.reset(streams)
        self.ring.place(self.t, np.transpose(history, (1, 2, 0, 3)), streams)
        k0 = self.input_taps.shape[1]
        taps = self.input_taps[streams]  # a view: written in place
        taps[:] = self.quantization_channels
        last = classes[:, max(0, length - k0):]
        taps[:, k0 - last.shape[1]:] = last
        # The bound output buffer holds the next distribution; the next step overwrites it.
        self.logits[streams] = logits[:, length - 1]
        self.primed = True

    # -- generation -------------------------------------------------------------------------

    def _uniform_row(self) -> np.ndarray:
        """The next sample's uniform numbers ``(B,)``: one row per sample, whoever draws it."""
        if self._uniform_index == len(self._uniforms):
            self._uniforms = self.rng.random((4096, self.streams))
            self._uniform_index = 0
        self._uniform_index += 1
        return self._uniforms[self._uniform_index - 1]

    def _next_classes(self) -> np.ndarray:
        """Every stream's class for the current time, drawn from ``self.logits``."""
        if self._drawn is not None:  # the graph drew it already, with this sample's uniforms
            classes, uniforms, temperature = self._drawn
            self._drawn = None
            if temperature == self.temperature:
                return classes
            return sample_classes(self.logits, self.temperature, uniforms)
        return sample_classes(self.logits, self.temperature, self._uniform_row())

    def step(self) -> np.ndarray:
        """Advance every stream by one sample; returns the new classes ``(B,)``."""
        if not self.primed:
            self.prime()
        classes = self._next_classes()
        self.advance(classes)
        return classes

    def advance(self, classes: np.ndarray) -> None:
        """Feed each stream's class at time t: gather the taps, run the step, store the new state.

        Afterwards ``self.logits`` holds every stream's distribution for time t + 1.
        """
        self._drawn = None  # a class the graph drew is stale once the caller chose its own
        shift_taps(self.input_taps, classes)
        self._run(self.session, self.binding)

    def _run(self, session: ort.InferenceSession, binding: ort.IOBinding) -> None:
        """Step time t, whose input taps are in place: gather the past, run, store, t + 1."""
        t = self.t
        if self._past_rows is not None:
            self.ring.gather(t, self._past_rows)
        else:  # kernel > 2: taps side by side per layer, (L, B, (k-1)·R)
            self.ring.gather(t, self._tap_scratch)
            num_layers, num_taps = self.delays.shape
            gathered = self._tap_scratch.reshape(num_layers, num_taps, self.streams, -1)
            self.past.reshape(num_layers, self.streams, num_taps, -1)[:] = gathered.transpose(0, 2, 1, 3)
        if self.mel is not None and not self._conditioning_given:
            self._set_conditioning(t)
        session.run_with_iobinding(binding)
        self.ring.write(t, self.layer_inputs)
        self.t = t + 1

    def _set_conditioning(self, t: int) -> None:
        # cond.onnx runs once per chunk of frames, not per sample.
        if t >= self.max_samples:
            raise ValueError(f"the mel frames cover {self.max_samples} samples; generation reached the end.")
        chunk_frames = 64
        if self._cond_chunk is None or not (self._cond_start <= t < self._cond_start + self._cond_chunk.shape[0]):
            first = t // self.hop
            frames = self.mel[:, first : first + chunk_frames]
            out = self._cond_session().run(None, {"mel": frames})[0]  # (B, T, L, 2G)
            num_layers, _, b, g = self.conditioning.shape
            self._cond_chunk = np.ascontiguousarray(
                out.reshape(b, -1, num_layers, 2, g).transpose(1, 2, 3, 0, 4))  # (T, L, 2, B, G)
            self._cond_start = first * self.hop
        self.conditioning[:] = self._cond_chunk[t - self._cond_start]

    def generate_classes(self, num_samples: int) -> np.ndarray:
        """``num_samples`` classes per stream ``(B, num_samples)``: the same classes as `step` that many times.

        With at most `GRAPH_SAMPLING_MAX_STREAMS` streams and a temperature above 0,
        ``step_sampler.onnx`` draws each next class itself (``next_taps``), so a sample costs
        one call and four NumPy calls instead of a dozen; with more streams NumPy's
        vectorized sampling is faster than the graph's, and `step` does the work.
        """
        if self.native is not None:
            return self._generate_native(num_samples)
        out = np.empty((self.streams, num_samples), np.int32)
        in_graph = self.temperature > 0 and self.streams <= GRAPH_SAMPLING_MAX_STREAMS
        if not in_graph or num_samples == 0:
            for i in range(num_samples):
                out[:, i] = self.step()
            return out
        if not self.primed:
            self.prime()
        classes = self._next_classes()
        taps, next_taps, uniform = self.input_taps, self.next_taps, self.uniform
        shift_taps(taps, classes)
        out[:, 0] = classes
        self.temperatures[:] = self.temperature
        if self._sampler is None:
            session = make_session(str(self.bundle.file("step_sampler.onnx")), self._threads)
            self._sampler = (session, self._bind(session, sampler=True))
        for i in range(1, num_samples + 1):
            # Time t's taps are in place; the graph draws sample t+1 with sample t+1's uniforms.
            uniform[:, 0] = self._uniform_row()
            self._run(*self._sampler)
            if i < num_samples:
                taps[:] = next_taps
                out[:, i] = next_taps[:, -1]
        # The last call drew the class after this chunk: the next call starts from it.
        self._drawn = (next_taps[:, -1].astype(np.int32), uniform[:, 0].copy(), self.temperature)
        return out

    def _uniform_block(self, count: int) -> np.ndarray:
        """The next ``count`` samples' uniforms ``(B, count)``: the rows `_uniform_row` would give, in order."""
        rows = []
        while count:
            if self._uniform_index == len(self._uniforms):
                self._uniforms = self.rng.random((4096, self.streams))
                self._uniform_index = 0
            take = min(count, len(self._uniforms) - self._uniform_index)
            rows.append(self._uniforms[self._uniform_index : self._uniform_index + take])
            self._uniform_index += take
            count -= take
        return np.ascontiguousarray(np.concatenate(rows).T)

    def _generate_native(self, num_samples: int) -> np.ndarray:
        """`generate_classes` on the native engine: one operator call per `NATIVE_CHUNK` samples."""
        if not self.primed:
            self.prime()
        out = np.empty((self.streams, num_samples), np.int32)
        temperatures = np.full(self.streams, float(self.temperature))
        done = 0
        chunk = NATIVE_CHUNK if self.mel is None else NATIVE_CHUNK_CONDITIONED
        while done < num_samples:
            n = min(chunk, num_samples - done)
            uniforms = self._uniform_block(n)
            forced = None
            if self._drawn is not None:  # step_sampler.onnx drew this sample's class already
                classes, drawn_uniforms, temperature = self._drawn
                self._drawn = None
                if temperature != self.temperature:
                    classes = sample_classes(self.logits, self.temperature, drawn_uniforms)
                forced = np.full((self.streams, n), -1, np.int64)
                forced[:, 0] = classes
                uniforms = np.concatenate([drawn_uniforms[:, None], uniforms[:, :-1]], axis=1)
                self._uniform_index -= 1  # the block's last row was not used
            out[:, done : done + n] = self.run_chunk(uniforms, temperatures, forced=forced)
            done += n
        return out

    def run_chunk(self, uniforms: np.ndarray, temperatures: np.ndarray, active: np.ndarray | None = None,
                  forced: np.ndarray | None = None, conditioning: np.ndarray | None = None) -> np.ndarray:
        """Advance the streams by K samples, drawing each from the current logits; returns ``(B, K)`` classes.

        ``uniforms`` ``(B, K)`` and ``temperatures`` ``(B,)`` per stream. With ``active``
        (stream indices) the native engine advances only those streams (the others keep
        their state and get class -1); the standard graph advances every stream. ``forced``
        classes (-1: draw) are fed instead of drawn ones. ``conditioning`` ``(B, K, L, 2G)``
        (`conditioning_terms`) replaces the terms of the sampler's own mel frames: the
        server's batcher gives each stream the terms of its own request's frames and clock.
        """
        batch, samples = uniforms.shape
        temperatures = np.asarray(temperatures, np.float64)
        if np.isnan(temperatures).any():
            raise ValueError(f"temperature must be a finite number, got {temperatures.tolist()}.")
        # A denormal T would overflow logits / T in the native engine: argmax, as in NumPy.
        temperatures = np.where(temperatures <= GREEDY_TEMPERATURE, 0.0, temperatures)
        if self.native is not None:
            if conditioning is None and self.mel is not None:
                conditioning = self._native_conditioning(self.t, samples)
            classes, _ = self.native.run(self.t, uniforms, temperatures, active, self.global_ids, conditioning, forced)
            self.t += samples
            return classes
        out = np.empty((batch, samples), np.int64)
        try:
            for i in range(samples):
                classes = sample_rows(self.logits, temperatures, uniforms[:, i])
                if forced is not None:
                    classes = np.where(forced[:, i] >= 0, forced[:, i], classes)
                out[:, i] = classes
                if conditioning is not None:  # (B, L, 2G) -> the step graph's (L, 2, B, G)
                    num_layers, _, b, g = self.conditioning.shape
                    self.conditioning[:] = conditioning[:, i].reshape(b, num_layers, 2, g).transpose(1, 2, 0, 3)
                    self._conditioning_given = True
                self.advance(classes)
        finally:
            self._conditioning_given = False
        return out

    def _native_conditioning(self, t: int, samples: int) -> np.ndarray:
        """cond.onnx's per-layer terms for times ``t .. t + samples - 1``: ``(B, K, L, 2G)``."""
        if t + samples > self.max_samples:
            raise ValueError(f"the mel frames cover {self.max_samples} samples; generation reached the end.")
        return self.conditioning_terms(self.mel, t, samples)

    def conditioning_terms(self, mel: np.ndarray, t: int, samples: int) -> np.ndarray:
        """cond.onnx's per-layer terms of ``mel`` ``(b, frames, n_mels)`` for its times ``t .. t + samples - 1``.

        Returns ``(b, samples, L, 2G)``; the frames must cover those times.
        """
        first, last = t // self.hop, -(-(t + samples) // self.hop)
        out = self._cond_session().run(None, {"mel": np.ascontiguousarray(mel[:, first:last], np.float32)})[0]
        out = out.reshape(mel.shape[0], out.shape[1], len(self.delays), -1)  # (b, T, L, 2G)
        start = t - first * self.hop
        return np.ascontiguousarray(out[:, start : start + samples])

    def generate(self, num_samples: int) -> np.ndarray:
        """``num_samples`` float32 samples per stream, ``(B, num_samples)``."""
        return mu_law_decode(self.generate_classes(num_samples), self.quantization_channels)

    def stream(self, num_samples: int, chunk_size: int = 1024) -> Iterator[np.ndarray]:
        """Yield float32 chunks ``(B, ≤ chunk_size)`` until ``num_samples`` per stream are out.

        Chunking changes nothing but latency: the concatenated chunks equal `generate`.
        """
        done = 0
        while done < num_samples:
            n = min(chunk_size, num_samples - done)
            yield self.generate(n)
            done += n

    def _full_session(self) -> ort.InferenceSession:
        if self._full is None:
            self._full = make_session(str(self.bundle.file("wavenet.onnx")), threads=1)
        return self._full

    def _cond_session(self) -> ort.InferenceSession:
        if self._cond is None:
            # A batched GEMM per chunk: it uses the sampler's threads well (8.5 -> 5.7 µs a sample on 2 cores).
            self._cond = make_session(str(self.bundle.file("cond.onnx")), threads=self._threads, spinning=False)
        return self._cond
