"""The batch arrays an engine runs on, bound once; streams' engine states are seated in their rows."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnxruntime as ort

from serving.engine_state import EngineState
from serving.native import NativeEngine, NativeState
from wavenet_tf.core.ring_buffer import RingBuffer, shift_taps
from wavenet_tf.core.sampling import sample_classes, sample_rows

# Up to this many streams the graph's own sampler beats NumPy's
# (docs/generation-and-server.md#the-graph-draws-the-next-sample-for-few-streams).
GRAPH_SAMPLING_MAX_STREAMS = 4


class Workspace:
    """Preallocated batch arrays for B streams, bound once to the engine's inputs and outputs.

    Rows belong to the engine states seated in them (``owners``, `serving.engine_state`);
    ``clock`` is the ring buffer's time for all of them. ``model`` is the `StepModel` whose
    sessions, engine and sizes it uses (read, never imported: the model imports this module). The standard graph runs ``step.onnx`` (or ``step_sampler.onnx``,
    which also draws the next class) once a sample; the native engine K samples a call.
    """

    def __init__(self, model: Any, batch: int):
        self.model = model
        self.batch = b = batch
        num_layers, num_taps = model.delays.shape
        r, g, q = model.residual_channels, model.gate_channels, model.quantization_channels
        self.owners: list[EngineState | None] = [None] * b
        self.clock = 0
        # Before the start every layer input is 0, which step.onnx stores as -offset.
        self.ring = RingBuffer(model.delays, b, r, padding=-model.offsets)
        self.taps = np.full((b, model.input_taps), q, np.int64)
        self.logits = np.zeros((b, q), np.float32)
        self.global_ids = np.zeros(b, np.int64) if model.global_conditioning else None
        self.native: NativeEngine | None = None
        if model.engine == "native":
            self.native = NativeEngine(model.native, NativeState(self.ring.buffer, self.taps, self.logits),
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

    def seat(self, states: Sequence[EngineState], global_ids: Sequence[int | None]) -> None:
        """Put ``states[k]`` (global class ``global_ids[k]``) in row k; states already there stay put (no copy)."""
        for k, state in enumerate(states):
            if state.seat is not None and state.seat != (self, k):
                holder, row = state.seat
                holder.unseat(row)
        if all(owner is None for owner in self.owners):
            self.clock = states[0].clock  # an empty workspace takes the first state's clock: no rotation
        size = self.ring.size
        for k, state in enumerate(states):
            if state.seat == (self, k):
                continue
            if self.owners[k] is not None:
                self.unseat(k)
            shift = (self.clock - state.clock) % size
            rows = self.ring.buffer[:, :, k]
            rows[:] = state.ring if shift == 0 else np.roll(state.ring, shift, axis=0)
            self.taps[k] = state.taps
            self.logits[k] = state.logits
            if self.global_ids is not None:
                self.global_ids[k] = global_ids[k]
            state.ring = state.taps = state.logits = None  # the row is the state now
            state.seat = (self, k)
            self.owners[k] = state

    def unseat(self, row: int) -> None:
        """Copy ``row``'s occupant out into arrays of its own; the row is free."""
        state = self.owners[row]
        state.ring = self.ring.buffer[:, :, row].copy()
        state.taps = self.taps[row].copy()
        state.logits = self.logits[row].copy()
        state.clock = self.clock
        state.seat = None
        self.owners[row] = None

    def row_logits(self, row: int) -> np.ndarray:
        return self.logits[row].copy()

    def vacate(self, row: int) -> None:
        self.owners[row] = None

    def release(self) -> None:
        """Copy every seated state out (the workspace is about to be dropped)."""
        for row, state in enumerate(self.owners):
            if state is not None:
                self.unseat(row)

    # -- running ------------------------------------------------------------------------------

    def run(self, uniforms: np.ndarray, temperatures: np.ndarray, terms: np.ndarray | None,
            top_ks: np.ndarray | None = None) -> np.ndarray:
        """Advance every row by K samples; returns ``(B, K)`` classes.

        ``uniforms`` ``(B, K)``, ``temperatures`` ``(B,)`` (0: argmax), ``terms`` cond.onnx's
        ``(B, K, L, 2G)`` for each row's own times (locally conditioned bundles), ``top_ks``
        ``(B,)`` int64 (None: every row draws from every class).
        """
        samples = uniforms.shape[1]
        if self.native is not None:
            classes, _ = self.native.run(self.clock, uniforms, temperatures, None, self.global_ids, terms,
                                         top_k=top_ks)
        else:
            classes = self.run_graph(uniforms, temperatures, terms, top_ks)
        self.clock += samples
        return classes

    def run_graph(self, uniforms: np.ndarray, temperatures: np.ndarray, terms: np.ndarray | None,
                  top_ks: np.ndarray | None = None) -> np.ndarray:
        """`run` on ``step.onnx``: one call a sample (``step_sampler.onnx`` with few streams, T > 0, no top-k).

        The graph's sampler draws from every class; when a row truncates to its top k, NumPy
        (`sample_rows`) draws every row, with the same arithmetic the native engine uses.
        """
        b, samples = uniforms.shape
        out = np.empty((b, samples), np.int64)
        if terms is not None:  # (B, K, L, 2G) -> one (L, 2, B, G) block a sample, copied in per step
            num_layers, _, _, g = self.conditioning.shape
            terms = np.ascontiguousarray(terms.reshape(b, samples, num_layers, 2, g).transpose(1, 2, 3, 0, 4))
        one_temperature = float(temperatures[0]) if (temperatures == temperatures[0]).all() else None

        def feed(i: int) -> None:  # draw sample i from the current logits, shift it into the taps
            if top_ks is not None:
                classes = sample_rows(self.logits, temperatures, uniforms[:, i], top_ks)
            elif one_temperature is not None:
                classes = sample_classes(self.logits, one_temperature, uniforms[:, i])
            else:
                classes = sample_rows(self.logits, temperatures, uniforms[:, i])
            out[:, i] = classes
            shift_taps(self.taps, classes)

        if samples == 1 or b > GRAPH_SAMPLING_MAX_STREAMS or not (temperatures > 0).all() or top_ks is not None:
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
