"""`wavenet bench`: how fast the streaming sampler generates, against naive generation, in one run."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from serving.bundle import load_bundle
from serving.native import fma_peak, multiply_adds_per_sample
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
        classes = bundle.card.global_conditioning.classes
        spread = np.arange(streams) * (classes - 1) // max(streams - 1, 1)
        options["global_ids"] = np.zeros(streams, np.int64) if rng is None else spread.astype(np.int64)
    if bundle.local_conditioning:
        local = bundle.card.local_conditioning
        shape = (streams, (samples + bundle.card.receptive_field) // local.hop_length + 2, local.n_mels)
        options["mel"] = np.full(shape, -5.0, np.float32) if rng is None else rng.normal(size=shape).astype(np.float32)
    return options


def _sampler_rate(bundle, streams: int, samples: int, threads: int, chunk: int = 256,
                  engine: str = "graph") -> dict[str, float]:
    sampler = StreamingSampler(bundle, streams=streams, seed=0, threads=threads, engine=engine,
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


def run_bench(path, seconds: float = 2.0, threads: int | None = None, naive_samples: int = 64, repeats: int = 3,
              log=print, engines: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Each figure is the best of ``repeats`` runs, the rounds alternating between the measurements
    (a shared machine's noise only ever slows a run down). Both engines are measured in the same
    run when the native one loads, so their ratio is fair; ``threads`` defaults to every core."""
    bundle = load_bundle(path)
    rate = bundle.card.sample_rate
    threads = threads or os.cpu_count() or 1
    one = int(seconds * rate)
    if engines is None:
        probe = StreamingSampler(bundle, **conditioning_options(bundle, 1, 256))
        engines = ("native", "graph") if probe.engine == "native" else ("graph",)
        if probe.engine != "native":
            log(f"native engine not measured: {probe.engine_note}")
    results: dict[tuple[str, int], dict[str, float]] = {}
    naive = 0.0
    # (streams, threads): one stream on one core, and (native) on every core, whose threads
    # split each layer between them; 8 and 32 streams split between the threads.
    shapes = {"native": [(1, 1)] + ([(1, threads)] if threads > 1 else []) + [(8, threads), (32, threads)],
              "graph": [(1, 1), (8, threads), (32, threads)]}
    for _ in range(repeats):
        for engine in engines:
            for n, t in shapes[engine]:
                samples = max(256, one // (1 if n == 1 else n // 2))
                if engine == "native":
                    samples *= 4  # it is fast: measure as long as the graph's runs take
                result = _sampler_rate(bundle, n, samples, t, engine=engine)
                key = (engine, n, t)
                if key not in results or result["samples_per_sec"] > results[key]["samples_per_sec"]:
                    results[key] = result
        naive = max(naive, _naive_rate(bundle, naive_samples))
    macs = multiply_adds_per_sample(bundle.card)
    peak = fma_peak()
    report = {
        "bundle": str(path), "sample_rate": rate, "receptive_field": bundle.card.receptive_field,
        "layers": bundle.card.num_layers, "threads": threads, "repeats": repeats,
        "naive_samples_per_sec": round(naive, 1), "step_nodes": optimized_node_count(bundle.file("step.onnx")),
        "multiply_adds_per_sample": macs, "fma_peak_per_core": None if peak is None else round(peak),
        "chunk_samples": 256,
    }
    for engine in engines:
        prefix = "" if engine == engines[0] else f"{engine}_"
        for n, t in shapes[engine]:
            suffix = f"_{t}_threads" if n == 1 and t > 1 else ""
            report[f"{prefix}samples_per_sec_{n}{suffix}"] = round(results[(engine, n, t)]["samples_per_sec"], 1)
        best = results[(engine, 1, 1)]
        report[f"{prefix}realtime_factor_1"] = round(best["samples_per_sec"] / rate, 3)
        report[f"{prefix}realtime_factor_32"] = round(results[(engine, 32, threads)]["samples_per_sec"] / rate, 3)
        report[f"{prefix}speedup_vs_naive"] = round(best["samples_per_sec"] / naive, 1)
        report[f"{prefix}chunk_latency_p50_ms"] = round(best["chunk_p50_ms"], 2)
        report[f"{prefix}chunk_latency_p99_ms"] = round(best["chunk_p99_ms"], 2)
        report[f"{prefix}time_to_first_audio_s"] = round(best["first_audio_s"], 4)
    report["engine"] = engines[0]
    log(f"{path}: {report['layers']} layers, receptive field {report['receptive_field']}, {rate} Hz, "
        f"{macs:,} multiply-adds per sample, step.onnx {report['step_nodes']} nodes after optimization; "
        f"best of {repeats}")
    log(f"  {'engine':<8}{'streams':>8}{'threads':>8}{'samples/s':>14}{'real-time':>11}{'GMAC/s':>9}{'x naive':>10}")
    for engine in engines:
        for n, t in shapes[engine]:
            speed = results[(engine, n, t)]["samples_per_sec"]
            log(f"  {engine:<8}{n:>8}{t:>8}{speed:>14,.0f}{speed / rate:>11.2f}{speed * macs / 1e9:>9.2f}"
                f"{speed / naive:>10,.0f}")
    log(f"  naive (1 stream)  {naive:>6,.0f} samples/s")
    if len(engines) == 2:
        log(f"  native / graph: {report['samples_per_sec_1'] / report['graph_samples_per_sec_1']:.1f}x at 1 stream, "
            f"{report['samples_per_sec_32'] / report['graph_samples_per_sec_32']:.1f}x at 32")
    if peak:
        used = report["samples_per_sec_1"] * macs / peak
        log(f"  this core's FMA loop: {peak / 1e9:.1f} G multiply-adds/s; one stream uses {100 * used:.0f}% of it")
    log(f"  chunks of 256 samples ({engines[0]}): p50 {report['chunk_latency_p50_ms']:.2f} ms, "
        f"p99 {report['chunk_latency_p99_ms']:.2f} ms; first audio after {1000 * report['time_to_first_audio_s']:.1f} ms")
    return report
