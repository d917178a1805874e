"""`wavenet bench-quality`: what a listener gets from a fixed CPU budget, on real recordings.

1. Render the data (`wavenet_tf.quality_data`): music21 pieces played by sampled General-MIDI
   instruments through FluidSynth, some pieces held out, and espeak-ng voices.
2. Train a preset on the instrument audio until a budget of CPU time is spent, validating
   every epoch on the held-out pieces (the learning curve: bits/sample against CPU minutes).
3. Held-out bits/sample of the final model with `wavenet evaluate`'s code, beside the
   unigram baseline and the linear-prediction baseline (`wavenet_tf.quality.lpc_bits`)
   on the same targets, per instrument and overall.
4. Export, generate with the streaming sampler — unprimed (what `wavenet generate` does by
   default) and primed with the end of a held-out file — and compare the listener measures
   (`wavenet_tf.quality.listener_measures`) with the held-out audio's.
5. Optionally the same for a speaker-conditioned model on the voices: each held-out file's
   bits/sample with its own speaker and with the wrong ones.

Output folder: ``data/`` (rendered audio), ``runs/``, ``bundles/``, ``generated/*.wav``,
``report.json`` and ``learning_curve.png`` (or ``.svg`` without matplotlib).
A second call with the same budget finds the runs spent and only re-measures; a larger
budget continues them.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from wavenet_tf.core.mu_law import mu_law_encode
from wavenet_tf.core.sampling import DEFAULT_TEMPERATURE
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.quality import compare_to_source, listener_measures, lpc_bits
from wavenet_tf.quality_data import RenderSettings, render_quality_data, write_wav16

MEASURES = ("rms_dbfs", "near_silent_fraction", "periodicity", "voiced_fraction", "median_f0_hz", "spectral_flatness")


def _mean_measures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of each measure over files/streams (None where no row has a value)."""
    out: dict[str, Any] = {"count": len(rows)}
    for key in MEASURES:
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
    return out


def budgeted_configs(preset: str, cpu_minutes: float, steps_per_epoch: int, seed: int = 0,
                     overrides: dict[str, dict[str, Any]] | None = None):
    """The model, data and training configs of a budgeted run: the defaults, then ``overrides``."""
    from wavenet_tf.core.presets import get_preset

    overrides = overrides or {}
    return (get_preset(preset, **overrides.get("model", {})),
            DataConfig(val_split=0.0, seed=seed).replace(**overrides.get("data", {})),
            TrainConfig(epochs=100000, steps_per_epoch=steps_per_epoch, validation_steps=8, audio_every=0,
                        max_cpu_minutes=cpu_minutes).replace(**overrides.get("train", {})))


def train_budgeted(data: Path, val: Path, run: Path, preset: str, cpu_minutes: float, steps_per_epoch: int,
                   cache: Path, global_conditioning: bool = False, seed: int = 0,
                   overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train ``preset`` on ``data`` until ``cpu_minutes`` of CPU are spent (resuming a run already there).

    ``overrides`` ({"model": {...}, "data": {...}, "train": {...}}) change fields of the
    defaults (`wavenet bench-recipe`'s levers). A decaying learning rate without
    ``decay_steps`` is fitted to the budget by `wavenet_tf.train.train` itself.
    """
    from wavenet_tf.train import train

    overrides = overrides or {}
    resume = (run / "config.json").is_file()
    state_file = run / "state.json"
    state = json.loads(state_file.read_text()) if resume and state_file.is_file() else None
    if state and state.get("cpu_seconds", 0.0) >= 60.0 * cpu_minutes:
        return state  # spent already: nothing to restore, nothing to train
    model, data_config, config = budgeted_configs(preset, cpu_minutes, steps_per_epoch, seed, overrides)
    return train(data, run, model, data_config, config, resume=resume, global_conditioning=global_conditioning,
                 cache_dir=cache, val_source=val, verbose=0)


def held_out_bits(run: Path, source: Path, cache: Path, global_conditioning: bool = False) -> dict[str, Any]:
    """The run's last model on ``source``: bits/sample, unigram and LPC, overall and per label."""
    from serving import evaluate as ev
    from wavenet_tf.data import prepare
    from wavenet_tf.run_dir import load_run_config, load_run_model

    model_config, data_config, _, record = load_run_config(run)
    # The last model, not the best: the best is chosen on these same held-out files.
    logits_fn = ev.keras_logits_fn(load_run_model(run, "last"))
    prepared = prepare(source, model_config, data_config.replace(val_split=0.0), cache_dir=cache)
    r, q, hop = model_config.receptive_field, model_config.quantization_channels, model_config.hop_length
    local = bool(model_config.local_conditioning_channels)
    ids = {name: i for i, name in enumerate(record["labels"])}
    per_label: dict[str, dict[str, list[np.ndarray]]] = {}
    for track in prepared.tracks:
        classes = mu_law_encode(np.asarray(track.audio), q)
        if local:  # the model predicts only the samples its mel frames cover
            classes = classes[: len(classes) // hop * hop]
        global_id = ids[track.label] if global_conditioning else None
        rows = per_label.setdefault(track.label, {"model": [], "lpc": [], "classes": []})
        rows["model"].append(ev.track_bits(logits_fn, classes, r, hop, global_id=global_id,
                                           mel=np.asarray(track.mel) if local else None))
        rows["lpc"].append(lpc_bits(classes, q, start=r))
        rows["classes"].append(classes[r:])
    summary = lambda rows: {
        "bits_per_sample": float(np.concatenate(rows["model"]).mean()),
        "lpc_bits": float(np.concatenate(rows["lpc"]).mean()),
        "unigram_bits": ev.unigram_bits(np.concatenate(rows["classes"]), q),
        "num_samples": int(sum(len(b) for b in rows["model"])),
    }
    every = {k: [x for rows in per_label.values() for x in rows[k]] for k in ("model", "lpc", "classes")}
    return {"overall": summary(every), "per_label": {label: summary(rows) for label, rows in sorted(per_label.items())},
            "num_files": len(prepared.tracks), "receptive_field": r}


def speaker_bits(run: Path, source: Path, cache: Path) -> dict[str, Any]:
    """Each held-out file's bits/sample with its own speaker id and with every other one."""
    from serving import evaluate as ev
    from wavenet_tf.data import prepare
    from wavenet_tf.run_dir import load_run_config, load_run_model

    model_config, data_config, _, record = load_run_config(run)
    logits_fn = ev.keras_logits_fn(load_run_model(run, "last"))
    prepared = prepare(source, model_config, data_config.replace(val_split=0.0), cache_dir=cache)
    ids = {name: i for i, name in enumerate(record["labels"])}
    right, wrong, files = [], [], []
    for track in prepared.tracks:
        classes = mu_law_encode(np.asarray(track.audio), model_config.quantization_channels)
        bits = {name: float(ev.track_bits(logits_fn, classes, model_config.receptive_field, global_id=i).mean())
                for name, i in ids.items()}
        others = [b for name, b in bits.items() if name != track.label]
        right.append(bits[track.label])
        wrong.append(float(np.mean(others)))
        files.append({"path": track.path, "speaker": track.label, "bits": bits,
                      "own_is_best": bits[track.label] == min(bits.values())})
    return {"right_speaker_bits": float(np.mean(right)), "wrong_speaker_bits": float(np.mean(wrong)),
            "own_is_best_fraction": float(np.mean([f["own_is_best"] for f in files])), "files": files}


def _middle(audio: np.ndarray, length: int) -> np.ndarray:
    """``length`` samples ending at the middle of ``audio`` (zero-padded in front if it is short)."""
    end = max(length, len(audio) // 2)
    piece = audio[max(0, end - length):end]
    return np.concatenate([np.zeros(length - len(piece)), piece])


def generate_and_measure(bundle_dir: Path, held_out_audio: list[np.ndarray], seconds: float, streams: int,
                         out: Path, seed: int = 0, global_ids: list[int] | None = None,
                         temperature: float = DEFAULT_TEMPERATURE, top_k: int | None = None) -> dict[str, Any]:
    """Generate unprimed and primed audio from a bundle (the generators' default draw unless told);
    listener measures of each, WAVs in ``out``; the report records the draw."""
    from serving.bundle import load_bundle
    from serving.streaming_sampler import StreamingSampler

    bundle = load_bundle(bundle_dir)
    rate = bundle.card.sample_rate
    r = bundle.card.receptive_field
    total = int(round(seconds * rate))
    top_k = bundle.card.default_top_k if top_k is None else top_k  # the bundle's own default draw
    results: dict[str, Any] = {"draw": {"temperature": temperature, "top_k": top_k}}
    ids = None if global_ids is None else [global_ids[i % len(global_ids)] for i in range(streams)]
    for mode in ("unprimed", "primed"):
        sampler = StreamingSampler(bundle, streams=streams, temperature=temperature, top_k=top_k, seed=seed,
                                   global_ids=ids)
        if mode == "primed":
            # Each stream continues a receptive field from the middle of a different held-out
            # file (a file's end is its fade-out: near-silence would prime near-silence).
            primes = np.stack([_middle(held_out_audio[i % len(held_out_audio)], r) for i in range(streams)])
            sampler.prime(primes)
            results["prime_rms_dbfs"] = [listener_measures(p, rate)["rms_dbfs"] for p in primes]
        else:
            sampler.prime(None)
        audio = sampler.generate(total)
        rows = []
        for i, stream in enumerate(audio):
            write_wav16(out / f"{mode}-{i}.wav", stream, rate)
            rows.append(listener_measures(stream, rate))
        results[mode] = {"streams": rows, "mean": _mean_measures(rows), "engine": sampler.engine}
    return results


def vocode_and_compare(bundle_dir: Path, sources: list[np.ndarray], seconds: float, out: Path,
                       seed: int = 0, temperature: float = DEFAULT_TEMPERATURE,
                       top_k: int | None = None) -> dict[str, Any]:
    """Vocode each source from its own mel frames; compare with it and, as a control, with the next source."""
    from serving.bundle import load_bundle
    from serving.generate import mel_frames
    from serving.streaming_sampler import StreamingSampler

    bundle = load_bundle(bundle_dir)
    top_k = bundle.card.default_top_k if top_k is None else top_k  # the bundle's own default draw
    rate, r = bundle.card.sample_rate, bundle.card.receptive_field
    rows = []
    for i, source in enumerate(sources):
        sampler = StreamingSampler(bundle, streams=1, temperature=temperature, top_k=top_k, seed=seed,
                                   mel=mel_frames(bundle, source))
        sampler.prime(None)  # generation starts at sample r of the source's frames
        total = min(int(round(seconds * rate)), sampler.max_samples - sampler.t)
        if total <= 0:
            continue
        audio = sampler.generate(total)[0].astype(np.float64)
        write_wav16(out / f"vocoded-{i}.wav", audio, rate)
        target = source[r:r + total]
        other = sources[(i + 1) % len(sources)]
        rows.append({"own": compare_to_source(audio, target, rate),
                     "control": compare_to_source(audio, other[r:r + total], rate) if len(sources) > 1 else None,
                     "generated": listener_measures(audio, rate), "source": listener_measures(target, rate)})
    mean = lambda values: float(np.mean(values)) if values else None
    pick = lambda key, which="own": [row[which][key] for row in rows if row[which] and row[which][key] is not None]
    return {
        "files": rows,
        "envelope_correlation": mean(pick("envelope_correlation")),
        "control_envelope_correlation": mean(pick("envelope_correlation", "control")),
        "voiced_fraction": mean(pick("voiced_fraction")),
        "source_voiced_fraction": mean(pick("source_voiced_fraction")),
        "f0_error_cents": mean(pick("f0_error_cents")),
        "engine": "streaming sampler",
        "draw": {"temperature": temperature, "top_k": top_k},
    }


def learning_curve(run: Path) -> list[dict[str, float]]:
    """(CPU minutes, train and held-out bits/sample) after every epoch, from the run's state."""
    state = json.loads((run / "state.json").read_text())
    return [{"cpu_minutes": round(row.get("cpu_seconds", 0.0) / 60.0, 3), "step": row["step"],
             "bits_per_sample": row.get("bits_per_sample"), "val_bits_per_sample": row.get("val_bits_per_sample")}
            for row in state["history"]]


def plot_learning_curve(curve: list[dict[str, float]], baselines: dict[str, float], out: Path) -> Path:
    """A PNG with matplotlib when it is installed, else a hand-written SVG; returns the path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _svg_curve(curve, baselines, out.with_suffix(".svg"))
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    x = [p["cpu_minutes"] for p in curve]
    ax.plot(x, [p["val_bits_per_sample"] for p in curve], "o-", label="model, held-out windows")
    ax.plot(x, [p["bits_per_sample"] for p in curve], ".:", color="grey", label="model, training batches")
    for (name, value), style in zip(baselines.items(), ("--", "-.", ":")):
        ax.axhline(value, linestyle=style, color="black", linewidth=1, label=f"{name} {value:.2f}")
    ax.set_xlim(left=0)
    ax.set_xlabel("CPU minutes")
    ax.set_ylabel("bits/sample")
    ax.set_title("Learning curve on held-out instrument audio")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out.with_suffix(".png")
    fig.savefig(path)
    plt.close(fig)
    return path


def _svg_curve(curve: list[dict[str, float]], baselines: dict[str, float], path: Path) -> Path:
    width, height, pad = 640, 400, 50
    xs = [p["cpu_minutes"] for p in curve] or [0.0]
    ys = [p["val_bits_per_sample"] for p in curve if p["val_bits_per_sample"] is not None] + list(baselines.values())
    x_max, y_min, y_max = max(xs) or 1.0, math.floor(min(ys or [0.0])), math.ceil(max(ys or [8.0]))
    y_max = y_max if y_max > y_min else y_min + 1
    sx = lambda x: pad + (width - 2 * pad) * x / x_max
    sy = lambda y: height - pad - (height - 2 * pad) * (y - y_min) / (y_max - y_min)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">CPU minutes (0 to {x_max:.1f})</text>',
             f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" text-anchor="middle">'
             f'bits/sample ({y_min} to {y_max})</text>']
    points = " ".join(f"{sx(p['cpu_minutes']):.1f},{sy(p['val_bits_per_sample']):.1f}" for p in curve
                      if p["val_bits_per_sample"] is not None)
    parts.append(f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for name, value in baselines.items():
        parts.append(f'<line x1="{pad}" y1="{sy(value):.1f}" x2="{width - pad}" y2="{sy(value):.1f}" '
                     f'stroke="black" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{width - pad}" y="{sy(value) - 4:.1f}" text-anchor="end">{name} {value:.2f}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")
    return path


@contextlib.contextmanager
def _phase(name: str, timings: dict[str, dict[str, float]], log: Callable[[str], None]):
    """Log and record the wall and CPU seconds of one step of the benchmark."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    timings[name] = {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1)}
    log(f"  {name}: {timings[name]['wall_s']:.0f} s wall, {timings[name]['cpu_s']:.0f} s CPU")


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(report: dict[str, Any], log: Callable[[str], None] = print) -> None:
    inst = report["instruments"]
    bits = inst["held_out"]
    log(f"\nheld-out bits/sample after {inst['cpu_minutes_used']:.1f} CPU-minutes of `{inst['preset']}` "
        f"({inst['steps']} steps; {bits['num_files']} files of held-out pieces)")
    log(f"  {'':<10}{'model':>8}{'LPC-32':>8}{'unigram':>9}{'samples':>10}")
    for label, row in [*bits["per_label"].items(), ("all", bits["overall"])]:
        log(f"  {label:<10}{row['bits_per_sample']:>8.3f}{row['lpc_bits']:>8.3f}{row['unigram_bits']:>9.3f}"
            f"{row['num_samples']:>10,}")
    log("\nlistener measures (means over files / streams)")
    log(f"  {'':<26}{'RMS dBFS':>9}{'silent':>8}{'period.':>8}{'voiced':>8}{'F0 Hz':>8}{'flatness':>9}")
    rows = [("held-out audio", inst["listener"]["held_out"])]
    rows += [(f"generated, {mode}", inst["listener"]["generated"][mode]["mean"]) for mode in ("unprimed", "primed")]
    for name, m in rows:
        log(f"  {name:<26}{_fmt(m['rms_dbfs'], 1):>9}{_fmt(m['near_silent_fraction']):>8}{_fmt(m['periodicity']):>8}"
            f"{_fmt(m['voiced_fraction']):>8}{_fmt(m['median_f0_hz'], 0):>8}{_fmt(m['spectral_flatness'], 3):>9}")
    vocoder = report.get("vocoder")
    if vocoder:
        log(f"\nmel-conditioned `{vocoder['preset']}` after {vocoder['cpu_minutes_used']:.1f} CPU-minutes: held-out "
            f"bits/sample {vocoder['held_out']['overall']['bits_per_sample']:.3f} (LPC-32 "
            f"{vocoder['held_out']['overall']['lpc_bits']:.3f}, unigram {vocoder['held_out']['overall']['unigram_bits']:.3f}); "
            f"vocoded vs source: envelope r {_fmt(vocoder['envelope_correlation'])} (vs another file "
            f"{_fmt(vocoder['control_envelope_correlation'])}), voiced {_fmt(vocoder['voiced_fraction'])} vs "
            f"{_fmt(vocoder['source_voiced_fraction'])}, F0 error {_fmt(vocoder['f0_error_cents'], 0)} cents")
    speakers = report.get("speakers")
    if speakers:
        log(f"\nspeaker-conditioned `{speakers['preset']}` after {speakers['cpu_minutes_used']:.1f} CPU-minutes: "
            f"held-out bits/sample {speakers['right_speaker_bits']:.3f} with the right speaker, "
            f"{speakers['wrong_speaker_bits']:.3f} with a wrong one; own speaker best for "
            f"{100 * speakers['own_is_best_fraction']:.0f}% of files")


def run_bench_quality(
    out: str | Path = "bench_out/quality", cpu_minutes: float = 30.0, preset: str = "small",
    steps_per_epoch: int = 25, seconds: float = 4.0, streams: int = 4, speaker_cpu_minutes: float = 0.0,
    mel_cpu_minutes: float = 0.0, mel_preset: str = "vocoder", settings: RenderSettings | None = None, seed: int = 0, log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Render, train on a CPU budget, evaluate, export, generate and measure; returns the report."""
    from export.bundle import export_run

    out = Path(out)
    settings = settings or RenderSettings(speech=speaker_cpu_minutes > 0 or mel_cpu_minutes > 0)
    data = out / "data"
    cache = out / "cache"
    timings: dict[str, dict[str, float]] = {}
    with _phase("render", timings, log):
        render_quality_data(data, settings, log=log)

    run = out / "runs" / "instruments"
    log(f"training `{preset}` on {data / 'instruments' / 'train'} for {cpu_minutes:g} CPU-minutes")
    with _phase("train", timings, log):
        state = train_budgeted(data / "instruments" / "train", data / "instruments" / "heldout", run, preset,
                               cpu_minutes, steps_per_epoch, cache, seed=seed)
    log("evaluating the held-out pieces (model, LPC-32, unigram)")
    with _phase("evaluate", timings, log):
        bits = held_out_bits(run, data / "instruments" / "heldout", cache)
    bundle = out / "bundles" / "instruments"
    with _phase("export", timings, log):
        export_run(run, bundle, log=lambda *_: None)

    from wavenet_tf.data import prepare
    from wavenet_tf.run_dir import load_run_config

    model_config, data_config, _, _ = load_run_config(run)
    held_out = prepare(data / "instruments" / "heldout", model_config, data_config.replace(val_split=0.0),
                       cache_dir=cache).tracks
    held_out_audio = [np.asarray(t.audio, np.float64) for t in held_out]
    log(f"generating {streams} × {seconds:g} s, unprimed and primed")
    with _phase("generate", timings, log):
        generated = generate_and_measure(bundle, held_out_audio, seconds, streams, out / "generated" / "instruments",
                                         seed)
    curve = learning_curve(run)
    plot = plot_learning_curve(curve, {"LPC-32": bits["overall"]["lpc_bits"],
                                       "unigram": bits["overall"]["unigram_bits"]}, out / "learning_curve")
    report: dict[str, Any] = {
        "instruments": {
            "preset": preset, "cpu_minutes_budget": cpu_minutes,
            "cpu_minutes_used": round(state.get("cpu_seconds", 0.0) / 60.0, 2), "steps": state["step"],
            "held_out": bits,
            "listener": {"held_out": _mean_measures([listener_measures(a, model_config.sample_rate)
                                                     for a in held_out_audio]),
                         "generated": generated},
            "learning_curve": curve, "plot": str(plot),
        },
        "render_settings": json.loads((data / "manifest.json").read_text())["settings"],
        "timings": timings,
    }
    if speaker_cpu_minutes > 0:
        speech_run = out / "runs" / "speakers"
        log(f"training speaker-conditioned `{preset}` on the voices for {speaker_cpu_minutes:g} CPU-minutes")
        with _phase("train speakers", timings, log):
            speech_state = train_budgeted(data / "speech" / "train", data / "speech" / "heldout", speech_run, preset,
                                          speaker_cpu_minutes, steps_per_epoch, cache, global_conditioning=True,
                                          seed=seed)
        with _phase("evaluate speakers", timings, log):
            speakers = speaker_bits(speech_run, data / "speech" / "heldout", cache)
        report["speakers"] = {"preset": preset, "cpu_minutes_budget": speaker_cpu_minutes,
                              "cpu_minutes_used": round(speech_state.get("cpu_seconds", 0.0) / 60.0, 2),
                              "steps": speech_state["step"],
                              **speakers,
                              "learning_curve": learning_curve(speech_run)}
    if mel_cpu_minutes > 0:
        mel_run = out / "runs" / "vocoder"
        log(f"training mel-conditioned `{mel_preset}` on the voices for {mel_cpu_minutes:g} CPU-minutes")
        with _phase("train vocoder", timings, log):
            mel_state = train_budgeted(data / "speech" / "train", data / "speech" / "heldout", mel_run, mel_preset,
                                       mel_cpu_minutes, steps_per_epoch, cache, seed=seed)
        with _phase("evaluate vocoder", timings, log):
            mel_bits = held_out_bits(mel_run, data / "speech" / "heldout", cache)
            mel_bundle = out / "bundles" / "vocoder"
            export_run(mel_run, mel_bundle, log=lambda *_: None)
            mel_config, mel_data, _, _ = load_run_config(mel_run)
            speech = prepare(data / "speech" / "heldout", mel_config, mel_data.replace(val_split=0.0),
                             cache_dir=cache).tracks
            vocoded = vocode_and_compare(mel_bundle, [np.asarray(t.audio, np.float64) for t in speech][:streams],
                                         seconds, out / "generated" / "vocoder", seed)
        report["vocoder"] = {"preset": mel_preset, "cpu_minutes_budget": mel_cpu_minutes,
                             "cpu_minutes_used": round(mel_state.get("cpu_seconds", 0.0) / 60.0, 2),
                             "steps": mel_state["step"], "held_out": mel_bits, **vocoded,
                             "learning_curve": learning_curve(mel_run)}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print_report(report, log)
    log(f"\nreport: {out / 'report.json'}; learning curve: {plot}; generated audio: {out / 'generated'}")
    return report
