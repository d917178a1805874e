"""`wavenet bench-train`: training timesteps/s by preset, XLA and precision."""

from __future__ import annotations

import argparse

from wavenet_tf.apps.cli.common import Formatter, add_report_flags, check_report, emit_report, text_log


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    bench_train = commands.add_parser(
        "bench-train", help="training timesteps/s by preset, XLA and precision",
        formatter_class=Formatter,
        description="Time training steps of each preset in float32, mixed_bfloat16 and mixed_float16, "
                    "with and without XLA (jit_compile), each in a fresh process.",
        epilog="examples:\n  wavenet bench-train\n  wavenet bench-train --presets small --json",
    )
    bench_train.add_argument("--presets", default="tiny,small", help="comma-separated presets")
    bench_train.add_argument("--batch-size", type=int, default=8, help="windows per step")
    bench_train.add_argument("--target-length", type=int, default=2048, help="predicted samples per window")
    bench_train.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    add_report_flags(bench_train)
    bench_train.set_defaults(func=run)
    return bench_train


def run(args: argparse.Namespace) -> int:
    check_report(args)
    from wavenet_tf.apps.bench_train import run_bench_train

    rows = run_bench_train(tuple(args.presets.split(",")), batch=args.batch_size, target=args.target_length,
                           steps=args.steps, log=text_log(args))
    emit_report(args, {"batch_size": args.batch_size, "target_length": args.target_length, "steps": args.steps,
                       "rows": rows})
    return 0
