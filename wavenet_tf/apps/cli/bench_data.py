"""`wavenet bench-data`: windows/s of the data pipeline beside what training consumes."""

from __future__ import annotations

import argparse

from wavenet_tf.apps.cli.common import (Formatter, add_config_overrides, add_report_flags, check_report, config_overrides,
                                   emit_report, quiet_tensorflow, setup_logging, text_log)
from wavenet_tf.core.config import DataConfig
from wavenet_tf.core.presets import preset_names


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    bench_data = commands.add_parser(
        "bench-data", help="windows/s the data pipeline delivers vs. what training consumes",
        formatter_class=Formatter,
        description="Measure the tf.data pipeline's windows per second and, beside it, the windows per "
                    "second that training the preset consumes on this machine. Without DATA it uses "
                    "built-in melodies at the preset's sample rate.",
        epilog="examples:\n  wavenet bench-data\n  wavenet bench-data ~/recordings --preset small --json",
    )
    bench_data.add_argument("data", metavar="DATA", nargs="?", default=None, help="folder, glob or manifest")
    bench_data.add_argument("--preset", default="small", choices=preset_names(), help="model to train")
    bench_data.add_argument("--batches", type=int, default=200, help="pipeline batches to time")
    bench_data.add_argument("--train-steps", type=int, default=5, help="training steps to time")
    bench_data.add_argument("--cache-dir", default=None, help="decoded-audio cache")
    add_report_flags(bench_data)
    add_config_overrides(bench_data, DataConfig, "data fields")
    bench_data.set_defaults(func=run)
    return bench_data


def run(args: argparse.Namespace) -> int:
    setup_logging(False)
    check_report(args)
    quiet_tensorflow()
    from wavenet_tf.apps.bench_data import run_bench_data

    data = DataConfig().replace(**config_overrides(args, DataConfig))
    report = run_bench_data(args.data, args.preset, data, batches=args.batches, train_steps=args.train_steps,
                            cache_dir=args.cache_dir, log=text_log(args))
    emit_report(args, report)
    return 0
