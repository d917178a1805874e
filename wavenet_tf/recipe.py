"""The training recipe: learning-rate schedule, optimizer, and `wavenet bench-recipe`, which measures its levers.

The levers are `TrainConfig` / `DataConfig` / `ModelConfig` fields (warm-up and decay,
gradient clipping, target length, batch size, input encoding, precision, ...). The sweep
trains one run per lever for the same budget of CPU time on `wavenet bench-quality`'s
real instrument audio and scores each with its held-out scorer
(`wavenet_tf.bench_quality.held_out_bits`), against a baseline run of the defaults in the
same sweep.

A decay over a budget of CPU time needs a step count the budget does not give: a budgeted
run (`wavenet_tf.bench_quality.train_budgeted`) first trains ``PROBE_EPOCHS`` epochs, reads
its own CPU seconds per step from the second one (the first includes tracing), and sets
``decay_steps`` so that the decay ends with the budget (`budget_decay_steps`).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import keras

from wavenet_tf.core.config import DataConfig, ModelConfig, TrainConfig

# Epochs a budgeted run with a decaying schedule trains before it measures its CPU seconds per step.
PROBE_EPOCHS = 2
# decay_steps while the probe runs: far beyond any run, so the probe's rate is the peak rate.
PROBE_DECAY_STEPS = 10**9


@keras.saving.register_keras_serializable(package="wavenet_tf")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak``, then constant or cosine decay to ``peak * final_fraction``.

    At optimizer step ``s`` (0-based: the step being taken) the rate is
    ``peak * (s + 1) / warmup_steps`` while ``s < warmup_steps``; then, for ``cosine``,
    ``peak * (f + (1 - f) * (1 + cos(pi * p)) / 2)`` with ``p = (s - warmup) / (decay - warmup)``
    clipped to [0, 1], so it reaches ``peak * f`` at step ``decay_steps`` and stays there.
    The step is the optimizer's ``iterations``, which the run's checkpoint restores: a
    resumed run continues the schedule where it stopped.

    Example:
    >>> schedule = WarmupDecay(1e-3, warmup_steps=10, decay_steps=110, final_fraction=0.1, kind="cosine")
    >>> round(float(schedule(4)), 6), round(float(schedule(110)), 6)
    (0.0005, 0.0001)
    """

    def __init__(self, peak: float, warmup_steps: int = 0, decay_steps: int = 0, final_fraction: float = 0.1,
                 kind: str = "constant"):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        self.final_fraction = float(final_fraction)
        self.kind = kind

    def __call__(self, step):
        ops = keras.ops
        s = ops.cast(step, "float32")
        rate = ops.convert_to_tensor(self.peak, "float32")
        if self.kind == "cosine":
            span = float(max(1, self.decay_steps - self.warmup_steps))
            progress = ops.clip((s - self.warmup_steps) / span, 0.0, 1.0)
            f = self.final_fraction
            rate = rate * (f + (1.0 - f) * 0.5 * (1.0 + ops.cos(math.pi * progress)))
        if self.warmup_steps:
            rate = rate * ops.minimum(1.0, (s + 1.0) / self.warmup_steps)
        return rate

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "decay_steps": self.decay_steps,
                "final_fraction": self.final_fraction, "kind": self.kind}


def learning_rate(config: TrainConfig) -> float | WarmupDecay:
    """What Adam gets: the plain rate when nothing schedules it, else a `WarmupDecay`."""
    if config.lr_schedule == "constant" and not config.effective_warmup_steps:
        return config.learning_rate
    return WarmupDecay(config.learning_rate, config.effective_warmup_steps, config.schedule_steps,
                       config.final_lr_fraction, config.lr_schedule)


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam with the config's schedule and, when ``clip_norm`` is set, global-norm gradient clipping."""
    return keras.optimizers.Adam(learning_rate(config), global_clipnorm=config.clip_norm or None)


def budget_decay_steps(history: list[dict[str, Any]], cpu_minutes: float, steps_per_epoch: int,
                       warmup_steps: int = 0) -> int:
    """The step at which a decay should end so that it ends with a budget of ``cpu_minutes``.

    ``history`` is the run's state history (cumulative ``step`` and ``cpu_seconds`` per
    epoch). The rate is the last epoch's CPU seconds per step (the first epoch also pays
    for tracing); the answer is rounded up to whole epochs, since the budget stops a run at
    the end of the epoch that spends it. Never before the warm-up ends (a budget too short
    for its warm-up ends the run at the peak rate).
    """
    last = history[-1]
    before = history[-2] if len(history) > 1 else {"step": 0, "cpu_seconds": 0.0}
    per_step = (last["cpu_seconds"] - before["cpu_seconds"]) / max(1, last["step"] - before["step"])
    remaining = max(0.0, 60.0 * cpu_minutes - last["cpu_seconds"])
    epochs = math.ceil(remaining / max(per_step, 1e-9) / steps_per_epoch)
    return max(last["step"] + max(1, epochs) * steps_per_epoch, warmup_steps + 1)


# --- the sweep --------------------------------------------------------------------------------

# Each lever: overrides of the defaults, by field name (routed to the config that owns it). Every
# lever names all the fields it is about, so a sweep `--base` on other defaults measures the same thing.
LEVERS: dict[str, dict[str, Any]] = {
    "baseline": {},
    # The recipe before the sweep chose the defaults: a constant 1e-3 (the "before" of every lever).
    "constant-1e-3": {"learning_rate": 1e-3, "warmup_steps": 0, "lr_schedule": "constant"},
    "warmup-cosine": {"learning_rate": 1e-3, "warmup_steps": 25, "lr_schedule": "cosine"},
    "lr-3e-3-warmup-cosine": {"learning_rate": 3e-3, "warmup_steps": 25, "lr_schedule": "cosine"},
    "target-8192": {"target_length": 8192},
    "batch-4": {"batch_size": 4},
    "batch-16": {"batch_size": 16},
    "clip-1": {"clip_norm": 1.0},
    "embedding": {"input_encoding": "embedding"},
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
    from wavenet_tf.bench_quality import held_out_bits, train_budgeted

    spec = json.loads(sys.argv[1])
    state = train_budgeted(Path(spec["train"]), Path(spec["heldout"]), Path(spec["run"]), spec["preset"],
                           spec["cpu_minutes"], spec["steps_per_epoch"], Path(spec["cache"]), seed=spec["seed"],
                           overrides=split_overrides(spec["overrides"]))
    bits = held_out_bits(Path(spec["run"]), Path(spec["heldout"]), Path(spec["cache"]))
    from wavenet_tf.run_dir import load_run_config

    _, _, train_config, _ = load_run_config(spec["run"])
    print(json.dumps({"steps": state["step"], "cpu_minutes_used": round(state.get("cpu_seconds", 0.0) / 60.0, 2),
                      "decay_steps": train_config.decay_steps, "held_out": bits,
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
    from wavenet_tf.bench_quality import budgeted_configs
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
            child = subprocess.run([sys.executable, "-c", "from wavenet_tf.recipe import _child; _child()",
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
