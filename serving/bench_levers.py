"""`wavenet bench-levers` (NumPy and onnxruntime; no TensorFlow): A/B figures for the performance levers docs/performance.md discusses.

Each lever is measured against its baseline in the same process, alternating, best of
``repeats`` (the machines are shared and noisy):

- onnxruntime intra-op threads, 1 vs 2, for 1 and 32 streams;
- 32 streams as one session vs one session (and 16 streams) per core, in two threads
  (onnxruntime releases the GIL while it runs);
- where a step's time goes at 1 and 32 streams: ``run()`` alone vs sampling vs the rest;
- dynamic int8 quantization of ``step.onnx`` (onnxruntime.quantization): speed, and the
  change in bits/sample on held-out audio when a folder of it is given.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from serving.bench import conditioning_options
from serving.bundle import Bundle, load_bundle
from wavenet_tf.core.sampling import sample_classes
from serving.streaming_sampler import StreamingSampler


class _StepsSwapped(Bundle):
    """A bundle whose step graphs are other files with the same contracts (e.g. int8)."""

    def __init__(self, bundle: Bundle, steps: dict[str, Path]):
        super().__init__(bundle.path, bundle.card)
        self.steps = steps

    def file(self, name: str) -> Path:
        return self.steps.get(name) or super().file(name)


def _primed(bundle, streams: int, samples: int, threads: int = 1, seed: int = 0) -> StreamingSampler:
    """A primed sampler on the standard step graph (the levers here are its own), for ``streams``."""
    sampler = StreamingSampler(bundle, streams=streams, seed=seed, threads=threads, engine="graph",
                               **conditioning_options(bundle, streams, samples))
    sampler.prime()
    return sampler


def _rate(bundle, streams: int, samples: int, threads: int = 1) -> float:
    sampler = _primed(bundle, streams, samples, threads)
    started = time.perf_counter()
    sampler.generate_classes(samples)
    return samples * streams / (time.perf_counter() - started)


def _split_rate(bundle, streams: int, samples: int, parts: int) -> float:
    """Aggregate samples/s of ``streams`` split over ``parts`` samplers, each in its own thread."""
    samplers = [_primed(bundle, streams // parts, samples, seed=i) for i in range(parts)]
    threads = [threading.Thread(target=s.generate_classes, args=(samples,)) for s in samplers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples * streams / (time.perf_counter() - started)


def _best(fns: dict[str, Any], repeats: int) -> dict[str, float]:
    """Run each variant ``repeats`` times, alternating; keep each one's best."""
    best = {name: 0.0 for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            best[name] = max(best[name], fn())
    return best


def _breakdown(bundle, streams: int, samples: int) -> dict[str, float]:
    """Microseconds per step: the whole step, the graph's ``run()`` alone, NumPy sampling alone
    (0 when the graph draws the classes: up to `serving.workspace.GRAPH_SAMPLING_MAX_STREAMS` streams), the rest."""
    sampler = _primed(bundle, streams, samples)
    started = time.perf_counter()
    sampler.generate_classes(samples)
    whole = (time.perf_counter() - started) / samples
    model, workspace = sampler.model, sampler.model.workspace(streams)
    in_graph = workspace.sampler_binding is not None
    session, binding = ((model.sampler_session(), workspace.sampler_binding) if in_graph
                        else (model.session, workspace.binding))
    started = time.perf_counter()
    for _ in range(samples):
        session.run_with_iobinding(binding)
    run = (time.perf_counter() - started) / samples
    sampling = 0.0
    if not in_graph:
        uniforms = np.random.default_rng(0).random((samples, streams))
        started = time.perf_counter()
        for i in range(samples):
            sample_classes(workspace.logits, 1.0, uniforms[i])
        sampling = (time.perf_counter() - started) / samples
    return {"step_us": 1e6 * whole, "run_us": 1e6 * run, "sampling_us": 1e6 * sampling,
            "rest_us": 1e6 * (whole - run - sampling), "graph_samples": in_graph}


def _held_out_bits(bundle, folder: Path, seconds: float) -> float:
    """Bits/sample of ``bundle``'s step graph, teacher-forced over ``seconds`` of each file in ``folder``."""
    import soundfile

    from serving.generate import mel_frames
    from wavenet_tf.core.mu_law import mu_law_encode
    from serving.evaluate import step_logits_fn, track_bits

    logits_fn = step_logits_fn(bundle)
    rate = bundle.card.sample_rate
    bits = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".wav", ".flac")):
        audio, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
        if file_rate != rate:
            raise ValueError(f"{path}: {file_rate} Hz, the bundle is {rate} Hz; give audio at the bundle's rate.")
        audio = audio[: int(seconds * rate), 0]
        classes = mu_law_encode(audio, bundle.card.quantization_channels)
        bits.append(track_bits(
            logits_fn, classes, bundle.card.receptive_field, bundle.hop_length,
            # The same id for both graphs: the A/B compares them, not the labels.
            global_id=0 if bundle.global_conditioning else None,
            mel=mel_frames(bundle, audio) if bundle.local_conditioning else None))
    if not bits:
        raise ValueError(f"{folder}: no .wav or .flac files to measure bits/sample on.")
    return float(np.concatenate(bits).mean())


def run_levers(path, audio: str | Path | None = None, seconds: float = 1.0, repeats: int = 3,
               log=print) -> dict[str, Any]:
    bundle = load_bundle(path)
    rate = bundle.card.sample_rate
    one = int(seconds * rate)
    if not one >= 64:  # 32 streams measure one // 8 samples each: a few samples are no measurement
        raise ValueError(f"seconds must give at least 64 samples at {rate} Hz (--seconds {64 / rate:g} or more), "
                         f"got {seconds}.")
    report: dict[str, Any] = {"bundle": str(path)}
    log(f"{path}: levers, best of {repeats}, alternating; samples/s unless marked")

    threads = _best({"1 thread, 1 stream": lambda: _rate(bundle, 1, one, 1),
                     "2 threads, 1 stream": lambda: _rate(bundle, 1, one, 2),
                     "1 thread, 32 streams": lambda: _rate(bundle, 32, one // 8, 1),
                     "2 threads, 32 streams": lambda: _rate(bundle, 32, one // 8, 2)}, repeats)
    sessions = _best({"32 streams, one session": lambda: _rate(bundle, 32, one // 8),
                      "2 x 16 streams, a session per core": lambda: _split_rate(bundle, 32, one // 8, 2)}, repeats)
    for name, value in {**threads, **sessions}.items():
        log(f"  {name:<40}{value:>12,.0f}")
    report["threads"], report["sessions"] = threads, sessions

    for streams in (1, 32):
        parts = _breakdown(bundle, streams, one // (1 if streams == 1 else 8))
        report[f"breakdown_{streams}"] = parts
        graph = "step_sampler.onnx" if parts["graph_samples"] else "step.onnx"
        sampling = "sampling in the graph" if parts["graph_samples"] else f"NumPy sampling {parts['sampling_us']:.1f}"
        log(f"  {streams:>2} stream(s), µs per sample step: whole {parts['step_us']:.1f} = {graph} run() "
            f"{parts['run_us']:.1f} + {sampling} + the rest of the loop {parts['rest_us']:.1f}")

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from serving.onnx_step import optimized_node_count

    with tempfile.TemporaryDirectory() as folder:
        steps = {}
        for name in ("step.onnx", "step_sampler.onnx"):  # one stream runs the sampler graph
            steps[name] = Path(folder) / f"int8_{name}"
            quantize_dynamic(str(bundle.file(name)), str(steps[name]), weight_type=QuantType.QInt8)
        quantized = steps["step.onnx"]
        int8 = _StepsSwapped(bundle, steps)
        speed = _best({"float32 step.onnx, 1 stream": lambda: _rate(bundle, 1, one),
                       "int8 step.onnx, 1 stream": lambda: _rate(int8, 1, one),
                       "float32 step.onnx, 32 streams": lambda: _rate(bundle, 32, one // 8),
                       "int8 step.onnx, 32 streams": lambda: _rate(int8, 32, one // 8)}, repeats)
        nodes = {"float32": optimized_node_count(bundle.file("step.onnx")), "int8": optimized_node_count(quantized)}
        for name, value in speed.items():
            log(f"  {name:<40}{value:>12,.0f}")
        log(f"  step.onnx nodes after optimization: float32 {nodes['float32']}, int8 {nodes['int8']}")
        report["int8"] = {"speed": speed, "nodes": nodes}
        if audio is not None:
            bits = {"float32": _held_out_bits(bundle, Path(audio), seconds),
                    "int8": _held_out_bits(int8, Path(audio), seconds)}
            log(f"  bits/sample on {audio} ({seconds:g} s per file): float32 {bits['float32']:.4f},"
                f" int8 {bits['int8']:.4f} ({bits['int8'] - bits['float32']:+.4f})")
            report["int8"]["bits_per_sample"] = bits
    return report
