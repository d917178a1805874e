"""The native step engine: ``step_native.onnx`` on onnxruntime with the project's operator library.

``pip install .`` / ``make install`` compile ``serving/csrc`` into ``serving/_wavenet_steps*.so``
(see setup.py). onnxruntime loads it with ``SessionOptions.register_custom_ops_library``; one
call of its node generates K samples for B streams (`export.native_graph`). When anything
is missing — the library was not built, the bundle predates ``step_native.onnx``, the
installed onnxruntime refuses the library — `open_native_session` says why in one line and the
step model (`serving.step_model`) uses the standard ``step.onnx`` instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from serving.bundle import Bundle
from wavenet_tf.core.card import ModelCard

NATIVE_FILE = "step_native.onnx"
# `WAVENET_ENGINE=graph` forces the standard step graph (comparisons, debugging).
ENGINE_ENV = "WAVENET_ENGINE"
ENGINES = ("auto", "native", "graph")


def library_path() -> Path | None:
    """The compiled operator library next to this module, or None if the install did not build it."""
    here = Path(__file__).resolve().parent
    found = sorted(here.glob("_wavenet_steps*.so"))
    return found[0] if found else None


class NativeUnavailable(RuntimeError):
    """The native engine cannot run here; the message says why and what to do."""


def native_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """A session on ``step_native.onnx`` with the operator library registered, or `NativeUnavailable`."""
    library = library_path()
    if library is None:
        raise NativeUnavailable("the native engine library was not built at install time (is gcc installed? "
                                "reinstall with `make install` or `pip install .` to build it)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the operator runs its own threads, one per share of streams
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # the operator's refusals reach the caller as exceptions; no log lines too
    try:
        options.register_custom_ops_library(str(library))
    except Exception as error:  # onnxruntime's own exception types
        raise NativeUnavailable(f"onnxruntime {ort.__version__} refused {library.name} ({error}); "
                                "reinstall wavenet-tf to rebuild it against this onnxruntime") from None
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise NativeUnavailable(f"{path}: onnxruntime cannot load it with the native library ({error}); "
                                "re-export the bundle") from None


def resolve_engine(engine: str | None) -> str:
    """``engine``, or the ``WAVENET_ENGINE`` environment variable, or ``auto``; validated."""
    chosen = engine or os.environ.get(ENGINE_ENV) or "auto"
    if chosen not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {chosen!r} "
                         f"(from {'--engine' if engine else ENGINE_ENV}).")
    return chosen


@dataclass
class NativeState:
    """The arrays a stream set's state lives in, shared with the standard engine (updated in place)."""

    ring: np.ndarray     # float32 (N, L, B, R)
    taps: np.ndarray     # int64 (B, K0)
    logits: np.ndarray   # float32 (B, Q)


class NativeEngine:
    """Advance streams K samples per call through the native operator.

    The state arrays are bound as both the operator's inputs and its outputs, so the
    operator updates them in place: no copy of the ring buffer per call.

    Args:
        session: from `native_session`.
        state: the sampler's ring buffer, input taps and next-sample logits.
        threads: threads the operator splits the active streams between.
    """

    def __init__(self, session: ort.InferenceSession, state: NativeState, threads: int = 1):
        self.session = session
        self.state = state
        self.threads = np.array(max(1, int(threads)), np.int64)
        self.inputs = {i.name for i in session.get_inputs()}
        self.top_k = "top_k" in self.inputs  # graphs exported before top-k sampling lack it
        self.binding = session.io_binding()
        for name, output, array in (("ring", "ring_out", state.ring), ("taps", "taps_out", state.taps),
                                    ("logits", "logits_out", state.logits)):
            self.binding.bind_cpu_input(name, array)
            self.binding.bind_ortvalue_output(output, ort.OrtValue.ortvalue_from_numpy(array))

    def run(self, time: int, uniforms: np.ndarray, temperature: np.ndarray, active: np.ndarray | None = None,
            global_ids: np.ndarray | None = None, conditioning: np.ndarray | None = None,
            forced: np.ndarray | None = None, top_k: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """K samples for the active streams, starting at ``time``.

        Args:
            uniforms: float64 ``(B, K)`` one per sample and stream.
            temperature: float64 ``(B,)``.
            active: int64 indices of the streams to advance (default: all).
            global_ids: int64 ``(B,)`` (globally conditioned bundles).
            conditioning: float32 ``(B, K, L, 2G)`` (locally conditioned bundles).
            forced: int64 ``(B, K)`` classes to feed instead of drawing (-1: draw); the
                logits after every sample are then returned too.
            top_k: int64 ``(B,)`` (default: 0, every class); a graph without the input refuses
                anything but 0 (`supports_top_k`).

        Returns:
            ``(classes (B, K) int64, all_logits (B, K, Q) or None)``.
        """
        batch, samples = uniforms.shape
        feeds = {
            "time": np.array(time, np.int64),
            "uniforms": np.ascontiguousarray(uniforms, np.float64),
            "temperature": np.ascontiguousarray(temperature, np.float64),
            "forced": np.full((batch, 0), -1, np.int64) if forced is None else np.ascontiguousarray(forced, np.int64),
            "active": np.arange(batch, dtype=np.int64) if active is None else np.ascontiguousarray(active, np.int64),
            "threads": self.threads,
        }
        if "global_id" in self.inputs:
            feeds["global_id"] = np.ascontiguousarray(global_ids, np.int64)
        if "conditioning" in self.inputs:
            feeds["conditioning"] = np.ascontiguousarray(conditioning, np.float32)
        if self.top_k:
            feeds["top_k"] = np.zeros(batch, np.int64) if top_k is None else np.ascontiguousarray(top_k, np.int64)
        elif top_k is not None and np.any((top_k > 0) & (top_k < self.state.logits.shape[1])):
            raise NativeUnavailable(OLD_GRAPH_NOTE)
        for name, array in feeds.items():
            self.binding.bind_cpu_input(name, array)
        classes = np.empty((batch, samples), np.int64)
        self.binding.bind_ortvalue_output("classes", ort.OrtValue.ortvalue_from_numpy(classes))
        kept = None
        if forced is not None:
            kept = np.empty((batch, samples, self.state.logits.shape[1]), np.float32)
            self.binding.bind_ortvalue_output("all_logits", ort.OrtValue.ortvalue_from_numpy(kept))
        else:
            self.binding.bind_output("all_logits", "cpu")
        self.session.run_with_iobinding(self.binding)
        return classes, kept


# Why a stream that truncates to its top k runs on the standard graph with a bundle exported before top-k.
OLD_GRAPH_NOTE = (f"this bundle's {NATIVE_FILE} predates top-k sampling (it has no top_k input), so streams with "
                  "top_k > 0 run on the standard step graph; re-export the bundle to draw them natively")


def supports_top_k(session: ort.InferenceSession) -> bool:
    """Whether a ``step_native.onnx`` session takes per-stream ``top_k`` (bundles exported before it do not)."""
    return any(i.name == "top_k" for i in session.get_inputs())


def open_native_session(bundle: Bundle) -> ort.InferenceSession:
    """A session on ``bundle``'s ``step_native.onnx``, or `NativeUnavailable` saying why not."""
    if NATIVE_FILE not in (bundle.card.files or {}) or not bundle.file(NATIVE_FILE).is_file():
        raise NativeUnavailable(f"{bundle.path} has no {NATIVE_FILE} (exported by an older wavenet-tf); "
                                "re-export the run to get the native engine")
    return native_session(bundle.file(NATIVE_FILE))


def multiply_adds_per_sample(card: ModelCard) -> int:
    """Multiply-adds of one sample of one stream: the layers, the skip sum and the head.

    Local conditioning's projection runs in cond.onnx (batched per chunk) and is not counted.
    """
    k, layers = card.kernel_size, card.num_layers
    r, g, s, q = card.residual_channels, card.gate_channels, card.skip_channels, card.quantization_channels
    per_layer = k * r * 2 * g + g * s  # every tap of the gated conv, and the skip
    return layers * per_layer + (layers - 1) * g * r + s * s + s * q


def fma_peak(seconds: float = 0.3) -> float | None:
    """This core's multiply-adds per second in a loop of independent vector FMAs (the library's own), or None."""
    import ctypes
    import time

    library = library_path()
    if library is None:
        return None
    loop = ctypes.CDLL(str(library)).wavenet_fma_loop
    loop.argtypes, loop.restype = [ctypes.c_int64], ctypes.c_double
    iterations, best = 1 << 20, 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        loop(iterations)
        best = max(best, 64 * iterations / (time.perf_counter() - started))
    return best


def engine_line(model) -> str:
    """One line for the user: which engine ``model`` (a step model or sampler) generates with, and why not the native one."""
    if model.engine == "native":
        return f"engine: native ({NATIVE_FILE}, one onnxruntime call per chunk of samples)"
    return f"engine: standard step graph (step.onnx) — {model.engine_note}"
