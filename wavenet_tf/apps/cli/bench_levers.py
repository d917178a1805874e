"""`wavenet bench-levers`: A/B figures for the speed levers (no TensorFlow)."""

from __future__ import annotations

import argparse

from wavenet_tf.apps.cli.common import Formatter, add_report_flags, check_report, emit_report, text_log


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    levers = commands.add_parser(
        "bench-levers", help="A/B figures for the speed levers: threads, sessions per core, int8",
        formatter_class=Formatter,
        description="Measure each performance lever against its baseline in the same run, alternating, "
                    "best of N: onnxruntime threads 1 vs 2, one session vs a session per core for 32 "
                    "streams, where a step's time goes, and dynamic int8 quantization of step.onnx "
                    "(speed, and bits/sample on held-out audio with --audio).",
        epilog="examples:\n  wavenet bench-levers bundles/small\n"
               "  wavenet bench-levers bundles/small --audio held_out/ --report levers.json",
    )
    levers.add_argument("bundle", metavar="BUNDLE", help="bundle folder")
    levers.add_argument("--audio", default=None, metavar="FOLDER",
                        help="held-out .wav/.flac at the bundle's rate, for int8's bits/sample")
    levers.add_argument("--seconds", type=float, default=1.0, help="seconds generated per measurement (and per file)")
    levers.add_argument("--repeats", type=int, default=3, help="alternating rounds; each variant keeps its best")
    add_report_flags(levers)
    levers.set_defaults(func=run)
    return levers


def run(args: argparse.Namespace) -> int:
    from serving.limits import check_count, check_positive
    from serving.bench_levers import run_levers

    check_positive(args.seconds, "--seconds")
    check_count(args.repeats, "--repeats")
    check_report(args)
    emit_report(args, run_levers(args.bundle, audio=args.audio, seconds=args.seconds, repeats=args.repeats,
                                 log=text_log(args)))
    return 0
