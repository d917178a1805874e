"""`wavenet bench-recipe`: the training recipe's levers, each trained for the same CPU budget on bench-quality's audio."""

from __future__ import annotations

import argparse

from wavenet_tf.apps.cli.common import (Formatter, add_report_flags, check_report, emit_report, fail, quiet_tensorflow,
                                   setup_logging, text_log)
from wavenet_tf.core.presets import preset_names


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    recipe = commands.add_parser(
        "bench-recipe", help="training-recipe levers, each trained for the same CPU budget on bench-quality's audio",
        formatter_class=Formatter,
        description="Train the preset once per lever (learning rate, warm-up and cosine decay, target length, "
                    "batch size, gradient clipping, input encoding, bfloat16; see wavenet_tf/apps/bench_recipe.py) for "
                    "the same budget of CPU time, one after the other, on bench-quality's rendered instrument "
                    "audio, and score each on the held-out pieces with bench-quality's scorer, beside a "
                    "baseline run of the defaults. Prints a table; writes OUT/recipe.json and one run per "
                    "lever in OUT/runs/ (a run measured already with the same resolved settings is read back).",
        epilog="examples:\n  wavenet bench-recipe --cpu-minutes 5\n"
               "  wavenet bench-recipe --levers batch-4 --lever lr2:learning_rate=2e-3,warmup_steps=25\n"
               "  wavenet bench-recipe --base learning_rate=1e-3,warmup_steps=0,lr_schedule=constant,batch_size=8"
               "   # the levers against the recipe before",
    )
    recipe.add_argument("--out", default="bench_out/recipe", help="folder for data, runs and recipe.json")
    recipe.add_argument("--cpu-minutes", type=float, default=5.0, help="CPU-time budget of every run")
    recipe.add_argument("--preset", default="small", choices=preset_names(), help="model to train")
    recipe.add_argument("--levers", default=None, help="comma-separated built-in levers (default: all)")
    recipe.add_argument("--lever", action="append", default=[], metavar="NAME:FIELD=VALUE,...",
                        help="an extra lever: config fields to override (repeatable)")
    recipe.add_argument("--base", default=None, metavar="FIELD=VALUE,...",
                        help="config fields every run overrides, the baseline's included")
    recipe.add_argument("--data", default=None, metavar="DIR",
                        help="folder with train/ and heldout/ (default: render bench-quality's instruments)")
    recipe.add_argument("--steps-per-epoch", type=int, default=25, help="steps between validations and checkpoints")
    recipe.add_argument("--seed", type=int, default=0, help="seed of the training windows")
    add_report_flags(recipe)
    recipe.set_defaults(func=run)
    return recipe


def run(args: argparse.Namespace) -> int:
    setup_logging(False)
    from pathlib import Path

    from wavenet_tf.quality_data import QualityDataError

    if args.cpu_minutes <= 0 or args.steps_per_epoch < 1:
        return fail("--cpu-minutes must be > 0 and --steps-per-epoch >= 1.")
    if args.data is not None and not all((Path(args.data) / part).is_dir() for part in ("train", "heldout")):
        return fail(f"--data {args.data}: expected a folder with train/ and heldout/ sub-folders.")
    check_report(args)
    quiet_tensorflow()
    from wavenet_tf.apps.bench_recipe import LEVERS, parse_lever, run_recipe_sweep

    unknown = [name for name in (args.levers or "").split(",") if name and name not in LEVERS]
    if unknown:
        return fail(f"--levers: unknown lever {unknown[0]!r}; choose from {list(LEVERS)} or add one with --lever.")
    levers = {name: LEVERS[name] for name in args.levers.split(",") if name} if args.levers else dict(LEVERS)
    try:
        levers.update(parse_lever(text) for text in args.lever)
        base = parse_lever(f"base:{args.base}")[1] if args.base else None
    except ValueError as error:
        return fail(str(error))
    try:
        report = run_recipe_sweep(args.out, cpu_minutes=args.cpu_minutes, preset=args.preset, levers=levers,
                                  steps_per_epoch=args.steps_per_epoch, seed=args.seed, data=args.data, base=base,
                                  log=text_log(args))
    except QualityDataError as error:
        return fail(str(error))
    emit_report(args, report)
    return 0
