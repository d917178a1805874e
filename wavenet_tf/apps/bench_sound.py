"""`wavenet bench-sound`: what a listener hears from each kind of model, measured beside its data.

Three suites, each trained (or its run reused), exported and generated from:

- ``melodies``: the built-in plucked-string melodies, trained exactly as `wavenet demo` trains
  them (`wavenet_tf.apps.demo.train_melodies`: its preset, budget and recipe). A lever (``--lever``)
  is a change of that recipe, trained and measured beside the demo's own, so one is judged in
  a few minutes.
- ``instruments``: `wavenet bench-quality`'s rendered instruments, `small` for a CPU budget.
- ``vocoder``: the mel-conditioned `vocoder` on espeak-ng voices, generated from the mel frames
  of held-out speech and compared frame by frame with that speech.

For every model: held-out bits/sample, then audio from several seeds × draws (temperature, and
the truncation of the tail), started the way `wavenet generate` starts by default (one of the
bundle's excerpts) and primed with held-out audio, measured as a listener would
(`wavenet_tf.quality`): level, periodicity, voiced fraction, F0 and its error in cents against
the data, spectral flatness, and how long a primed continuation stays voiced. The held-out
audio is measured the same way, beside it. Writes ``report.json``, ``sound.md`` (the tables),
``spectrograms.png`` (data and generated side by side) and the generated WAVs.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from wavenet_tf.quality import listener_measures, pitch_track, voiced_run_seconds

SUITES = ("melodies", "instruments", "vocoder")
# The measures a row reports, in the tables' order.
COLUMNS = ("rms_dbfs", "periodicity", "voiced_fraction", "median_f0_hz", "f0_error_cents", "spectral_flatness",
           "voiced_seconds")
# A continuation stays "voiced" while its frames are; this much audio before the prime point
# gives the pitch it should hold (two analysis frames at least).
REFERENCE_SECONDS = 0.25


@dataclass(frozen=True)
class Draw:
    """How a sample is drawn from the logits: a temperature, and the top-k truncation of the tail (0: none)."""

    temperature: float = 1.0
    top_k: int = 0

    @property
    def label(self) -> str:
        return f"T {self.temperature:g}" + (f", top-{self.top_k}" if self.top_k else "")

    @property
    def slug(self) -> str:
        return f"T{self.temperature:g}" + (f"-top{self.top_k}" if self.top_k else "")

    def sampler_kwargs(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_k": self.top_k}


def parse_draw(text: str) -> Draw:
    """``T`` or ``T/K`` (``0.9``, ``1.0/3``) -> `Draw`; a bad one is a ValueError naming it."""
    head, _, tail = text.partition("/")
    try:
        temperature, top_k = float(head), int(tail) if tail else 0
    except ValueError:
        raise ValueError(f"--draws {text!r}: expected TEMPERATURE or TEMPERATURE/TOP_K, e.g. 1.0/3.") from None
    if not math.isfinite(temperature) or temperature < 0 or top_k < 0:
        raise ValueError(f"--draws {text!r}: the temperature must be a number >= 0 and top-k a whole number >= 0.")
    return Draw(temperature, top_k)


# --- measures -------------------------------------------------------------------------------------

def median_f0(audio: np.ndarray, rate: int) -> float | None:
    """The median F0 of the voiced frames (None if none is voiced)."""
    return listener_measures(audio, rate)["median_f0_hz"]


def cents(f0: float | None, reference: float | None) -> float | None:
    """|1200 log2(f0 / reference)|: 100 cents is a semitone (None when either is unknown)."""
    if not f0 or not reference:
        return None
    return abs(1200.0 * math.log2(f0 / reference))


def sound_row(audio: np.ndarray, rate: int, reference_f0: float | None) -> dict[str, Any]:
    """Listener measures of ``audio``, its F0 error against ``reference_f0`` and how long it stays voiced."""
    row = listener_measures(audio, rate)
    row["f0_error_cents"] = cents(row["median_f0_hz"], reference_f0)
    row["voiced_seconds"] = voiced_run_seconds(audio, rate)
    return row


def mean_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each column's mean over the rows that have a value, and how many of them pass the pitch bar."""
    out: dict[str, Any] = {"count": len(rows)}
    for key in COLUMNS:
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
    return out


def pitched(row: dict[str, Any], data_dbfs: float) -> bool:
    """The bar a pitched generation must clear: periodicity >= 0.6, half its frames voiced,
    flatness <= 0.05 and a level within 6 dB of the data's (issue #21's demo target)."""
    return ((row["periodicity"] or 0.0) >= 0.6 and row["voiced_fraction"] >= 0.5
            and (row["spectral_flatness"] if row["spectral_flatness"] is not None else 1.0) <= 0.05
            and abs(row["rms_dbfs"] - data_dbfs) <= 6.0)


# --- generation -------------------------------------------------------------------------------------

@dataclass
class Prime:
    """Where a primed stream starts: the audio it continues, and the held-out audio that really came next."""

    audio: np.ndarray
    reference_f0: float | None
    continuation: np.ndarray
    name: str


def held_out_primes(held_out: Sequence[tuple[str, np.ndarray]], rate: int, receptive_field: int,
                    seconds: float) -> list[Prime]:
    """One prime per held-out file: the receptive field that ends at its middle (its end is a fade-out).

    The reference pitch is that of the ``REFERENCE_SECONDS`` before the prime point, and the
    continuation is what the file holds after it (the data a listener compares with).
    """
    primes = []
    total = int(round(seconds * rate))
    for name, audio in held_out:
        audio = np.asarray(audio, np.float64)
        end = max(receptive_field, len(audio) // 2)
        before = audio[max(0, end - max(receptive_field, int(REFERENCE_SECONDS * rate))):end]
        primes.append(Prime(audio[end - receptive_field:end], median_f0(before, rate), audio[end:end + total], name))
    return primes


def generate_grid(bundle_dir: Path, primes: Sequence[Prime], draws: Sequence[Draw], seeds: int, seconds: float,
                  data_f0: float | None, data_dbfs: float, out: Path | None = None) -> dict[str, Any]:
    """Audio for every draw × seed, started as `wavenet generate` starts ("default") and from held-out primes.

    Default starts use the bundle's excerpts, one per seed as the CLI chooses them; the F0
    error is against the held-out audio's median F0. Primed starts continue ``primes[i % n]``;
    their F0 error is against the pitch just before the prime point.
    """
    from serving.bundle import load_bundle
    from serving.generate import resolve_prime
    from serving.streaming_sampler import StreamingSampler

    bundle = load_bundle(bundle_dir)
    rate = bundle.card.sample_rate
    total = int(round(seconds * rate))
    result: dict[str, Any] = {}
    for draw in draws:
        modes: dict[str, Any] = {}
        for mode in ("default", "primed"):
            rows = []
            for seed in range(seeds):
                sampler = StreamingSampler(bundle, seed=seed, **draw.sampler_kwargs())
                if mode == "default":
                    prime, _ = resolve_prime(bundle, None, 1, seed)
                    reference = data_f0
                else:
                    chosen = primes[seed % len(primes)]
                    prime, reference = chosen.audio[None], chosen.reference_f0
                sampler.prime(prime)
                audio = sampler.generate(total)[0].astype(np.float64)
                if out is not None:
                    _write(out / f"{mode}-{draw.slug}-seed{seed}.wav", audio, rate)
                rows.append(sound_row(audio, rate, reference))
            modes[mode] = {"mean": mean_row(rows), "pitched": sum(pitched(r, data_dbfs) for r in rows),
                           "streams": rows}
        result[draw.label] = modes
    return result


def _write(path: Path, audio: np.ndarray, rate: int) -> None:
    from wavenet_tf.quality_data import write_wav16

    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav16(path, audio, rate)


def data_measures(held_out: Sequence[tuple[str, np.ndarray]], primes: Sequence[Prime], rate: int) -> dict[str, Any]:
    """The held-out audio as a listener hears it: whole files, and the continuations after the primes."""
    files = [sound_row(np.asarray(a, np.float64), rate, None) for _, a in held_out]
    continuations = [sound_row(p.continuation, rate, p.reference_f0) for p in primes if len(p.continuation)]
    whole = mean_row(files)
    levels = [f["rms_dbfs"] for f in files]
    # The level of the data as a whole (power mean): what "as loud as the data" compares with.
    whole["rms_dbfs"] = float(10.0 * np.log10(np.mean(10.0 ** (np.asarray(levels) / 10.0))))
    return {"files": whole, "continuations": mean_row(continuations),
            "median_f0_hz": _median_f0_of(held_out, rate)}


def _median_f0_of(held_out: Sequence[tuple[str, np.ndarray]], rate: int) -> float | None:
    f0s = []
    for _, audio in held_out:
        periodicity, f0 = pitch_track(np.asarray(audio, np.float64), rate)
        f0s.append(f0[periodicity >= 0.6])
    joined = np.concatenate(f0s) if f0s else np.zeros(0)
    joined = joined[joined > 0]
    return float(np.median(joined)) if joined.size else None


# --- suites ---------------------------------------------------------------------------------------------

def _held_out(run: Path, source: Path, cache: Path) -> list[tuple[str, np.ndarray]]:
    """The held-out files of ``source`` as the run's data settings clean them: (relative name, audio)."""
    from wavenet_tf.data import prepare
    from wavenet_tf.run_dir import load_run_config

    model_config, data_config, _, _ = load_run_config(run)
    tracks = prepare(source, model_config, data_config.replace(val_split=0.0), cache_dir=cache).tracks
    return [(str(Path(t.path).relative_to(source)) if Path(t.path).is_relative_to(source) else t.path,
             np.asarray(t.audio, np.float64)) for t in tracks]


def head_units(run: Path, held_out: Sequence[tuple[str, np.ndarray]], seconds: float = 10.0) -> dict[str, Any]:
    """How many of the output head's ReLU units ever fire on (up to ``seconds`` of) the held-out audio.

    The head holds what a trained model knows about the next sample; a unit that never fires
    on real audio is dead (it gets no gradient and never comes back).
    """
    import keras

    from wavenet_tf.core.mu_law import mu_law_encode
    from wavenet_tf.run_dir import load_run_config, load_run_model

    model = load_run_model(run, "last")
    config = load_run_config(run)[0]
    if config.global_conditioning_classes or config.local_conditioning_channels:
        return {}
    head = keras.Model(model.inputs, model.head_conv.output)
    budget = int(seconds * config.sample_rate)
    fired, rates = None, []
    for _, audio in held_out:
        classes = mu_law_encode(np.asarray(audio)[:budget], config.quantization_channels)[None].astype("int32")
        if budget <= 0 or classes.shape[1] <= config.receptive_field:
            continue
        active = np.asarray(head({"audio": classes}))[0, config.receptive_field:] > 0
        fired = active.any(axis=0) if fired is None else fired | active.any(axis=0)
        rates.append(active.mean(axis=0))
        budget -= classes.shape[1]
    if fired is None:
        return {}
    return {"units": int(fired.size), "dead": int((~fired).sum()), "firing": float(np.mean(rates))}


def measure_model(name: str, run: Path, bundle: Path, held_out: list[tuple[str, np.ndarray]], bits: dict[str, Any],
                  draws: Sequence[Draw], seeds: int, seconds: float, out: Path,
                  log: Callable[[str], None]) -> dict[str, Any]:
    """Generate from one exported model and measure it beside its held-out audio."""
    from serving.bundle import load_bundle

    card = load_bundle(bundle).card
    rate, receptive_field = card.sample_rate, card.receptive_field
    primes = held_out_primes(held_out, rate, receptive_field, seconds)
    data = data_measures(held_out, primes, rate)
    log(f"  {name}: generating {seeds} seeds × {len(draws)} draws × {seconds:g} s, default start and primed")
    generated = generate_grid(bundle, primes, draws, seeds, seconds, data["median_f0_hz"], data["files"]["rms_dbfs"],
                              out / "generated" / name)
    return {"run": str(run), "bundle": str(bundle), "held_out_bits": bits, "head": head_units(run, held_out),
            "data": data, "generated": generated,
            "seconds": seconds, "seeds": seeds, "spectrogram_audio": _spectrogram_pair(held_out, primes, bundle,
                                                                                       draws[0], seconds)}


def _spectrogram_pair(held_out, primes, bundle, draw: Draw, seconds: float) -> dict[str, Any]:
    """What the figure shows for a model: held-out audio after the first prime point, and seed 0's
    audio from the default start (as `wavenet generate` starts) and from that prime."""
    from serving.bundle import load_bundle
    from serving.generate import resolve_prime
    from serving.streaming_sampler import StreamingSampler

    b = load_bundle(bundle)
    total = int(round(seconds * b.card.sample_rate))
    generated = {}
    for start in ("default", "primed"):
        sampler = StreamingSampler(b, seed=0, **draw.sampler_kwargs())
        sampler.prime(resolve_prime(b, None, 1, 0)[0] if start == "default" else primes[0].audio[None])
        generated[start] = sampler.generate(total)[0]
    return {"rate": b.card.sample_rate, "data": primes[0].continuation, **generated,
            "label": draw.label, "prime": primes[0].name}


def run_melodies(out: Path, levers: dict[str, dict[str, Any]], draws: Sequence[Draw], seeds: int, seconds: float,
                 seed: int, log: Callable[[str], None], steps: int | None = None) -> dict[str, Any]:
    """The demo's recipe, and each lever's change of it, on the built-in melodies."""
    from export.bundle import export_run
    from wavenet_tf.apps.demo import DEMO_STEPS, train_melodies, write_melodies

    data = write_melodies(out / "data" / "melodies", seed)
    results = {}
    for name, overrides in {"demo": {}, **levers}.items():
        run, bundle = out / "runs" / f"melodies-{name}", out / "bundles" / f"melodies-{name}"
        log(f"melodies, {name}: trained as `wavenet demo` trains{', with ' + _overrides_text(overrides) if overrides else ''}")
        started, cpu = time.perf_counter(), time.process_time()
        trained = train_melodies(data, run, steps or DEMO_STEPS, seed=seed, overrides=overrides,
                                 cache_dir=out / "cache", verbose=0)
        export_run(run, bundle, log=lambda *_: None)
        results[name] = {"overrides": overrides,
                         "training": {"wall_s": round(time.perf_counter() - started, 1),
                                      "cpu_s": round(time.process_time() - cpu, 1), "steps": trained["steps"]},
                         **measure_model(f"melodies-{name}", run, bundle, trained["held_out"], trained["bits"], draws,
                                         seeds, seconds, out, log)}
    return results


def _overrides_text(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items())


def run_instruments(out: Path, cpu_minutes: float, draws: Sequence[Draw], seeds: int, seconds: float, seed: int,
                    log: Callable[[str], None], overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """`small` on bench-quality's instruments for a CPU budget (a run already spent is only re-measured)."""
    from export.bundle import export_run
    from wavenet_tf.apps.bench_quality import held_out_bits, train_budgeted
    from wavenet_tf.quality_data import RenderSettings, render_quality_data

    data = out / "data" / "quality"
    render_quality_data(data, RenderSettings(speech=False), log=log)
    run, bundle, cache = out / "runs" / "instruments", out / "bundles" / "instruments", out / "cache"
    log(f"instruments: `small` for {cpu_minutes:g} CPU-minutes (as `wavenet bench-quality` trains it)")
    state = train_budgeted(data / "instruments" / "train", data / "instruments" / "heldout", run, "small",
                           cpu_minutes, 25, cache, seed=seed, overrides=overrides)
    bits = held_out_bits(run, data / "instruments" / "heldout", cache)
    export_run(run, bundle, log=lambda *_: None)
    held_out = _held_out(run, data / "instruments" / "heldout", cache)
    return {"cpu_minutes_budget": cpu_minutes, "cpu_minutes_used": round(state.get("cpu_seconds", 0.0) / 60.0, 2),
            "steps": state["step"],
            **measure_model("instruments", run, bundle, held_out, bits["overall"], draws, seeds, seconds, out, log)}


def run_vocoder(out: Path, cpu_minutes: float, draws: Sequence[Draw], seconds: float, seed: int,
                log: Callable[[str], None], files: int = 4,
                overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The mel-conditioned `vocoder` on espeak-ng voices; each held-out file vocoded from its own mel frames."""
    from export.bundle import export_run
    from serving.bundle import load_bundle
    from wavenet_tf.apps.bench_quality import held_out_bits, train_budgeted, vocode_and_compare
    from wavenet_tf.quality_data import RenderSettings, render_quality_data

    data = out / "data" / "quality"
    render_quality_data(data, RenderSettings(speech=True), log=log)
    run, bundle, cache = out / "runs" / "vocoder", out / "bundles" / "vocoder", out / "cache"
    log(f"vocoder: mel-conditioned `vocoder` for {cpu_minutes:g} CPU-minutes on the voices")
    state = train_budgeted(data / "speech" / "train", data / "speech" / "heldout", run, "vocoder", cpu_minutes, 25,
                           cache, seed=seed, overrides=overrides)
    bits = held_out_bits(run, data / "speech" / "heldout", cache)
    export_run(run, bundle, log=lambda *_: None)
    speech = [audio for _, audio in _held_out(run, data / "speech" / "heldout", cache)][:files]
    rate = load_bundle(bundle).card.sample_rate
    by_draw = {}
    for draw in draws:
        log(f"  vocoder: {len(speech)} held-out files from their mel frames, {draw.label}")
        by_draw[draw.label] = vocode_and_compare(bundle, speech, seconds, out / "generated" / "vocoder" / draw.slug,
                                                 seed, **draw.sampler_kwargs())
    return {"cpu_minutes_budget": cpu_minutes, "cpu_minutes_used": round(state.get("cpu_seconds", 0.0) / 60.0, 2),
            "steps": state["step"], "held_out_bits": bits["overall"], "generated": by_draw,
            "data": {"files": mean_row([sound_row(a, rate, None) for a in speech])}}


# --- the report -----------------------------------------------------------------------------------------

def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _measure_cells(row: dict[str, Any]) -> list[str]:
    return [_fmt(row["rms_dbfs"], ".1f"), _fmt(row["periodicity"], ".2f"), _fmt(row["voiced_fraction"], ".2f"),
            _fmt(row["median_f0_hz"], ".0f"), _fmt(row["f0_error_cents"], ".0f"), _fmt(row["spectral_flatness"], ".3f"),
            _fmt(row["voiced_seconds"], ".2f")]


HEADER = ["", "bits", "level dBFS", "periodicity", "voiced", "F0 Hz", "F0 error ¢", "flatness", "voiced for s", "pitched"]


def model_rows(name: str, result: dict[str, Any]) -> list[list[str]]:
    """Table rows for one model: its held-out audio, then every draw × start."""
    data, bits = result["data"], result["held_out_bits"]["bits_per_sample"]
    rows = [[f"{name}: held-out audio", f"{bits:.3f}", *_measure_cells(data["files"]), ""]]
    if data.get("continuations", {}).get("count"):
        rows.append([f"{name}: held-out, after the prime point", "", *_measure_cells(data["continuations"]), ""])
    for label, modes in result["generated"].items():
        for mode, generated in modes.items():
            rows.append([f"{name}: {label}, {mode} start", "", *_measure_cells(generated["mean"]),
                         f"{generated['pitched']}/{generated['mean']['count']}"])
    return rows


def vocoder_rows(result: dict[str, Any]) -> list[list[str]]:
    bits = result["held_out_bits"]["bits_per_sample"]
    rows = [["vocoder: held-out speech", f"{bits:.3f}", *_measure_cells({**result["data"]["files"]}), ""]]
    for label, v in result["generated"].items():
        rows.append([f"vocoder: {label}, from the speech's mel frames", "", "", "",
                     f"{_fmt(v['voiced_fraction'], '.2f')} (source {_fmt(v['source_voiced_fraction'], '.2f')})", "",
                     _fmt(v["f0_error_cents"], ".0f"), "", "", f"envelope r {_fmt(v['envelope_correlation'], '.2f')}"])
    return rows


def report_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, result in report.get("melodies", {}).items():
        rows += model_rows(f"melodies ({name})", result)
    if "instruments" in report:
        rows += model_rows("instruments", report["instruments"])
    if "vocoder" in report:
        rows += vocoder_rows(report["vocoder"])
    return rows


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def print_report(report: dict[str, Any], log: Callable[[str], None] = print) -> None:
    rows = report_rows(report)
    widths = [max(len(str(r[i])) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    for row in [HEADER, *rows]:
        log("  ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                      for i, (cell, width) in enumerate(zip(row, widths))))


def plot_spectrograms(report: dict[str, Any], path: Path) -> Path | None:
    """Held-out audio beside generated audio (default start, primed start), one row per model
    (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    pairs = [(f"melodies ({name})", r["spectrogram_audio"]) for name, r in report.get("melodies", {}).items()]
    if "instruments" in report:
        pairs.append(("instruments", report["instruments"]["spectrogram_audio"]))
    if not pairs:
        return None
    fig, axes = plt.subplots(len(pairs), 3, figsize=(15, 2.6 * len(pairs)), squeeze=False)
    for (name, pair), row in zip(pairs, axes):
        rate = pair["rate"]
        panels = ((pair["data"], f"{name}: held-out {pair['prime']}, after the prime point"),
                  (pair["default"], f"generated, default start ({pair['label']}, seed 0)"),
                  (pair["primed"], f"generated, primed with {pair['prime']} ({pair['label']}, seed 0)"))
        for ax, (audio, title) in zip(row, panels):
            audio = np.asarray(audio, np.float64)
            if audio.size < 512 or not np.any(audio):
                ax.text(0.5, 0.5, "silent", ha="center", va="center", transform=ax.transAxes)
            else:
                ax.specgram(audio + 1e-9, NFFT=512, Fs=rate, noverlap=384, cmap="magma", vmin=-110)
            ax.set_ylim(0, min(4000, rate / 2))
            ax.set_title(title, fontsize=8)
            ax.set_xlabel("s", fontsize=7)
            ax.set_ylabel("Hz", fontsize=7)
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return path


def run_bench_sound(out: str | Path = "bench_out/sound", suites: Sequence[str] = SUITES,
                    levers: dict[str, dict[str, Any]] | None = None, draws: Sequence[Draw] | None = None,
                    seeds: int = 6, seconds: float = 2.0, instrument_cpu_minutes: float = 30.0,
                    vocoder_cpu_minutes: float = 30.0, seed: int = 0, melody_steps: int | None = None,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or reuse), export, generate and measure every suite; writes the report, table and figure."""
    from wavenet_tf.core.sampling import DEFAULT_TEMPERATURE, JITTER_TOP_K

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # The two default draws: a jitter-trained model's (the melodies') and a clean one's (every class).
    draws = list(draws or [Draw(DEFAULT_TEMPERATURE, JITTER_TOP_K), Draw(DEFAULT_TEMPERATURE, 0)])
    draws = list(dict.fromkeys(draws))  # each once
    started = time.perf_counter()
    report: dict[str, Any] = {"draws": [d.label for d in draws], "seeds": seeds, "seconds": seconds}
    if "melodies" in suites:
        report["melodies"] = run_melodies(out, levers or {}, draws, seeds, seconds, seed, log, melody_steps)
    if "instruments" in suites:
        report["instruments"] = run_instruments(out, instrument_cpu_minutes, draws, seeds, seconds, seed, log)
    if "vocoder" in suites:
        report["vocoder"] = run_vocoder(out, vocoder_cpu_minutes, draws, seconds, seed, log)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    figure = plot_spectrograms(report, out / "spectrograms.png")
    rows = report_rows(report)
    (out / "sound.md").write_text(markdown_table(rows))
    for result in [*report.get("melodies", {}).values(), report.get("instruments")]:
        if result:
            result.pop("spectrogram_audio", None)  # arrays: in the figure, not in the JSON
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print_report(report, log)
    log(f"\nreport: {out / 'report.json'}; table: {out / 'sound.md'}"
        + (f"; spectrograms: {figure}" if figure else "") + f"; generated audio: {out / 'generated'}")
    return report
