"""`wavenet bench`: how fast the streaming sampler generates, against naive generation, in one run."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from serving.bundle import load_bundle
from serving.naive import naive_generate_classes
from serving.onnx_step import optimized_node_count
from serving.streaming_sampler import StreamingSampler


def conditioning_options(bundle, streams: int, samples: int, rng: np.random.Generator | None = None) -> dict[str, Any]:
    """`StreamingSampler` conditioning for ``samples`` (prime included) per stream, whatever the bundle needs.

    Without ``rng``: global id 0 and constant mel frames (speed does not depend on them).
    With it: ids spread from 0 to the last class, and random mel frames (for checks).
    """
    options: dict[str, Any] = {}
    if bundle.global_conditioning:
        classes = bundle.card["conditioning"]["global"]["classes"]
        spread = np.arange(streams) * (classes - 1) // max(streams - 1, 1)
        options["global_ids"] = np.zeros(streams, np.int64) if rng is None else spread.astype(np.int64)
    if bundle.local_conditioning:
        local = bundle.card["conditioning"]["local"]
        shape = (streams, (samples + bundle.card["receptive_field"]) // local["hop_length"] + 2, local["n_mels"])
        options["mel"] = np.full(shape, -5.0, np.float32) if rng is None else rng.normal(size=shape).astype(np.float32)
    return options


def _sampler_rate(bundle, streams: int, samples: int, threads: int, chunk: int = 256) -> dict[str, float]:
    sampler = StreamingSampler(bundle, streams=streams, seed=0, threads=threads,
                               **conditioning_options(bundle, streams, samples))
    requested = time.perf_counter()
    sampler.prime()
    latencies = []
    first_audio = None
    started = previous = time.perf_counter()
    for _ in sampler.stream(samples, chunk):
        now = time.perf_counter()
        latencies.append(now - previous)  # how long this chunk took to produce
        previous = now
        if first_audio is None:
            first_audio = now - requested
    elapsed = time.perf_counter() - started
    return {"samples_per_sec": samples * streams / elapsed, "first_audio_s": first_audio,
            "chunk_p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "chunk_p99_ms": 1000 * float(np.percentile(latencies, 99))}


def _naive_rate(bundle, samples: int) -> float:
    uniforms = np.random.default_rng(0).random((samples, 1))
    options = conditioning_options(bundle, 1, samples)
    started = time.perf_counter()
    naive_generate_classes(bundle, samples, uniforms, **options)
    return samples / (time.perf_counter() - started)


def run_bench(path, seconds: float = 2.0, threads: int = 1, naive_samples: int = 64, repeats: int = 3,
              log=print) -> dict[str, Any]:
    """Each figure is the best of ``repeats`` runs, the rounds alternating between the measurements
    (a shared machine's noise only ever slows a run down)."""
    bundle = load_bundle(path)
    rate = bundle.card["sample_rate"]
    one = int(seconds * rate)
    results: dict[int, dict[str, float]] = {}
    naive = 0.0
    for _ in range(repeats):
        for n in (1, 8, 32):
            result = _sampler_rate(bundle, n, max(256, one // (1 if n == 1 else n // 2)), threads)
            if n not in results or result["samples_per_sec"] > results[n]["samples_per_sec"]:
                results[n] = result
        naive = max(naive, _naive_rate(bundle, naive_samples))
    report = {
        "bundle": str(path),
        "sample_rate": rate,
        "receptive_field": bundle.card["receptive_field"],
        "layers": len(bundle.card["dilations"]),
        "threads": threads,
        "repeats": repeats,
        "samples_per_sec_1": round(results[1]["samples_per_sec"], 1),
        "samples_per_sec_8": round(results[8]["samples_per_sec"], 1),
        "samples_per_sec_32": round(results[32]["samples_per_sec"], 1),
        "realtime_factor_1": round(results[1]["samples_per_sec"] / rate, 3),
        "realtime_factor_32": round(results[32]["samples_per_sec"] / rate, 3),
        "chunk_latency_p50_ms": round(results[1]["chunk_p50_ms"], 2),
        "chunk_latency_p99_ms": round(results[1]["chunk_p99_ms"], 2),
        "chunk_samples": 256,
        "time_to_first_audio_s": round(results[1]["first_audio_s"], 4),
        "naive_samples_per_sec": round(naive, 1),
        "speedup_vs_naive": round(results[1]["samples_per_sec"] / naive, 1),
        "step_nodes": optimized_node_count(bundle.file("step.onnx")),
    }
    log(f"{path}: {report['layers']} layers, receptive field {report['receptive_field']}, {rate} Hz, "
        f"{threads} onnxruntime thread(s), step.onnx {report['step_nodes']} nodes after optimization; "
        f"best of {repeats}")
    log(f"  {'streams':<10}{'samples/s':>14}{'real-time factor':>20}")
    for n in (1, 8, 32):
        speed = results[n]["samples_per_sec"]
        log(f"  {n:<10}{speed:>14,.0f}{speed / rate:>20.2f}")
    log(f"  naive (1 stream)  {naive:>6,.0f} samples/s   speed-up {report['speedup_vs_naive']:,.0f}x")
    log(f"  chunks of 256 samples: p50 {report['chunk_latency_p50_ms']:.2f} ms, p99 {report['chunk_latency_p99_ms']:.2f} ms;"
        f" first audio after {1000 * report['time_to_first_audio_s']:.1f} ms")
    return report
