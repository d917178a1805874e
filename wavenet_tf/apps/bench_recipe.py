"""`wavenet bench-recipe`: the training recipe's levers, each measured on real audio against a baseline.

The levers are `TrainConfig` / `DataConfig` / `ModelConfig` fields (warm-up and decay,
gradient clipping, target length, batch size, input encoding, precision, ...). The sweep
trains one run per lever for the same budget of CPU time on `wavenet bench-quality`'s
real instrument audio and scores each with its held-out scorer
(`wavenet_tf.apps.bench_quality.held_out_bits`), against a baseline run of the defaults in the
same sweep.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from wavenet_tf.core.config import DataConfig, ModelConfig, TrainConfig


# Each lever: overrides of the defaults, by field name (routed to the config that owns it). Every
# lever names all the fields it is about, so a sweep `--base` on other defaults measures the same thing.
LEVERS: dict[str, dict[str, Any]] = {
    "baseline": {},
    # The recipe before the sweep chose the defaults: a constant 1e-3 (the "before" of every lever).
    "constant-1e-3": {"learning_rate": 1e-3, "warmup_steps": 0, "lr_schedule": "constant"},
    "warmup-cosine": {"learning_rate": 1e-3, "warmup_steps": 25, "lr_schedule": "cosine"},
    "lr-3e-3-warmup-cosine": {"learning_rate": 3e-3, "warmup_steps": 25, "lr_schedule": "cosine"},
    "lr-6e-3": {"learning_rate": 6e-3},
    "target-8192": {"target_length": 8192},
    "batch-2": {"batch_size": 2},
    "batch-4": {"batch_size": 4},
    "batch-16": {"batch_size": 16},
    "clip-1": {"clip_norm": 1.0},
    "embedding": {"input_encoding": "embedding"},
    "one-hot-amplitude": {"input_encoding": "one_hot_amplitude"},
    "bfloat16": {"precision": "mixed_bfloat16"},
}


def split_overrides(overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"field": value}`` → ``{"model": {...}, "data": {...}, "train": {...}}`` by the class that owns each field."""
    owners = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
    split: dict[str, dict[str, Any]] = {key: {} for key in owners}
    for name, value in overrides.items():
        key = next((k for k, cls in owners.items() if name in {f for f in cls.__dataclass_fields__}), None)
        if key is None:
            raise ValueError(f"lever field {name!r} is not a ModelConfig, DataConfig or TrainConfig field.")
        split[key][name] = value
    return split


def parse_lever(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME:field=value,field=value`` (values as JSON where they parse, else strings) → (name, overrides)."""
    name, sep, body = text.partition(":")
    if not sep or not name or not body:
        raise ValueError(f"--lever {text!r}: expected NAME:field=value[,field=value...], e.g. "
                         "lr2:learning_rate=2e-3,warmup_steps=25.")
    overrides = {}
    for item in body.split(","):
        field, eq, value = item.partition("=")
        if not eq or not field:
            raise ValueError(f"--lever {text!r}: {item!r} is not field=value.")
        try:
            overrides[field.strip()] = json.loads(value)
        except ValueError:
            overrides[field.strip()] = value
    split_overrides(overrides)  # names every unknown field now, not after the first run
    return name, overrides


def _child() -> None:
    """One lever in its own process (the dtype policy is process-wide): train, score, print JSON."""
    import logging
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.WARNING)
    from wavenet_tf.apps.bench_quality import held_out_bits, train_budgeted

    spec = json.loads(sys.argv[1])
    state = train_budgeted(Path(spec["train"]), Path(spec["heldout"]), Path(spec["run"]), spec["preset"],
                           spec["cpu_minutes"], spec["steps_per_epoch"], Path(spec["cache"]), seed=spec["seed"],
                           overrides=split_overrides(spec["overrides"]))
    bits = held_out_bits(Path(spec["run"]), Path(spec["heldout"]), Path(spec["cache"]))
    from wavenet_tf.run_dir import load_run_config

    _, _, train_config, record = load_run_config(spec["run"])
    print(json.dumps({"steps": state["step"], "cpu_minutes_used": round(state.get("cpu_seconds", 0.0) / 60.0, 2),
                      "decay_steps": record.get("fitted_decay_steps") or train_config.decay_steps, "held_out": bits,
                      "val_bits_per_sample": state["history"][-1].get("val_bits_per_sample")}))


def run_recipe_sweep(out: str | Path = "bench_out/recipe", cpu_minutes: float = 5.0, preset: str = "small",
                     levers: dict[str, dict[str, Any]] | None = None, steps_per_epoch: int = 25, seed: int = 0,
                     data: str | Path | None = None, base: dict[str, Any] | None = None,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train and score each lever for ``cpu_minutes``, one after the other; table and JSON in ``out``.

    ``base`` overrides apply to every run, the baseline included (a lever's own win): to
    sweep around a candidate recipe, or to keep test runs small.
    ``data`` is a folder with ``train/`` and ``heldout/`` (default: `wavenet bench-quality`'s
    rendered instruments in ``out/data``). A lever already measured at this budget with the
    same overrides is read back, not retrained.
    """
    from wavenet_tf.apps.bench_quality import budgeted_configs
    from wavenet_tf.quality_data import render_quality_data

    out = Path(out)
    levers = dict(levers or LEVERS)
    if "baseline" not in levers:
        levers = {"baseline": {}, **levers}
    if data is None:
        render_quality_data(out / "data", log=log)
        data = out / "data" / "instruments"
    data = Path(data)
    results: dict[str, Any] = {}
    snapshot = lambda: {"preset": preset, "cpu_minutes": cpu_minutes, "steps_per_epoch": steps_per_epoch, "seed": seed,
                      "base": base or {}, "levers": results}
    for name, overrides in levers.items():
        run = out / "runs" / name
        saved = run / "result.json"
        spec = {"train": str(data / "train"), "heldout": str(data / "heldout"), "run": str(run), "preset": preset,
                "cpu_minutes": cpu_minutes, "steps_per_epoch": steps_per_epoch, "cache": str(out / "cache"),
                "seed": seed, "overrides": {**(base or {}), **overrides}}
        # The resolved fields too: after a change of the defaults, an old result is stale.
        configs = budgeted_configs(preset, cpu_minutes, steps_per_epoch, seed, split_overrides(spec["overrides"]))
        spec["resolved"] = {key: c.to_dict() for key, c in zip(("model", "data", "train"), configs)}
        # A run is what its resolved configs say, however they were spelled (a lever or --base).
        same = lambda other: {k: v for k, v in other.items() if k != "overrides"} == {
            k: v for k, v in spec.items() if k != "overrides"}
        if saved.is_file() and same(json.loads(saved.read_text()).get("spec", {})):
            results[name] = json.loads(saved.read_text())
            log(f"{name}: measured already ({saved})")
        else:
            # An interrupted sweep resumes its runs; a run of other settings is never overwritten.
            if run.exists() and (not (run / "spec.json").is_file()
                                 or not same(json.loads((run / "spec.json").read_text()))):
                raise ValueError(f"{run} holds a run of other settings; remove it or choose another --out.")
            run.mkdir(parents=True, exist_ok=True)
            (run / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")
            log(f"{name}: training `{preset}` for {cpu_minutes:g} CPU-minutes with {overrides or 'the defaults'}")
            started = time.perf_counter()
            child = subprocess.run([sys.executable, "-c", "from wavenet_tf.apps.bench_recipe import _child; _child()",
                                    json.dumps(spec)], capture_output=True, text=True)
            if child.returncode != 0:
                tail = child.stderr.strip().splitlines()[-1] if child.stderr.strip() else f"exit {child.returncode}"
                results[name] = {"spec": spec, "error": tail}
                log(f"{name}: failed: {tail}")
                continue
            results[name] = {"spec": spec, **json.loads(child.stdout.strip().splitlines()[-1]),
                             "wall_minutes": round((time.perf_counter() - started) / 60.0, 1)}
            saved.write_text(json.dumps(results[name], indent=2) + "\n")
        row = results[name]
        log(f"{name}: {row['held_out']['overall']['bits_per_sample']:.3f} bits/sample after {row['steps']} steps")
        # After every lever: a sweep stopped part-way keeps the figures it has.
        (out / "recipe.json").write_text(json.dumps(snapshot(), indent=2) + "\n")
    report = snapshot()
    print_sweep(report, log)
    log(f"\nreport: {out / 'recipe.json'}")
    return report


def print_sweep(report: dict[str, Any], log: Callable[[str], None] = print) -> None:
    levers = report["levers"]
    own = lambda row: {k: v for k, v in row["spec"]["overrides"].items() if report.get("base", {}).get(k) != v}
    base = levers.get("baseline", {}).get("held_out", {}).get("overall", {}).get("bits_per_sample")
    log(f"\nheld-out bits/sample after {report['cpu_minutes']:g} CPU-minutes of `{report['preset']}`, lever by lever"
        + (f" (every run also with {report['base']})" if report.get("base") else ""))
    log(f"  {'lever':<32}{'bits':>8}{'vs base':>9}{'steps':>7}{'CPU min':>9}{'LPC-32':>8}{'unigram':>9}  overrides")
    for name, row in levers.items():
        if "error" in row:
            log(f"  {name:<32}  failed: {row['error'][:70]}")
            continue
        overall = row["held_out"]["overall"]
        delta = "" if base is None else f"{overall['bits_per_sample'] - base:+.3f}"
        log(f"  {name:<32}{overall['bits_per_sample']:>8.3f}{delta:>9}{row['steps']:>7}{row['cpu_minutes_used']:>9.2f}"
            f"{overall['lpc_bits']:>8.3f}{overall['unigram_bits']:>9.3f}  {own(row) or '-'}")
