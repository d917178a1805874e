"""`wavenet bench`: generation speed of a bundle (no TensorFlow)."""

from __future__ import annotations

import argparse

from wavenet_tf.apps.cli.common import Formatter, add_report_flags, check_report, emit_report, text_log


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    bench = commands.add_parser(
        "bench", help="generation speed: 1/8/32 streams, real-time factor, latency, vs naive",
        formatter_class=Formatter,
        description="Measure the streaming sampler on a bundle: samples/s for 1, 8 and 32 streams, the "
                    "real-time factor, per-chunk latency p50/p99, time to first audio, naive generation's "
                    "samples/s in the same run and the speed-up, and step.onnx's node count.",
        epilog="examples:\n  wavenet bench bundles/small\n  wavenet bench bundles/small --seconds 5 --report bench.json",
    )
    bench.add_argument("bundle", metavar="BUNDLE", help="bundle folder")
    bench.add_argument("--seconds", type=float, default=2.0, help="seconds of audio generated for one stream")
    bench.add_argument("--threads", type=int, default=None,
                       help="threads for 8 and 32 streams (one stream always uses one); default: every core")
    bench.add_argument("--repeats", type=int, default=3, help="alternating rounds; each figure is the best")
    add_report_flags(bench)
    bench.set_defaults(func=run)
    return bench


def run(args: argparse.Namespace) -> int:
    from serving.bench import run_bench
    from serving.limits import check_count, check_positive

    check_positive(args.seconds, "--seconds")
    check_count(args.repeats, "--repeats")
    if args.threads is not None:
        check_count(args.threads, "--threads")
    check_report(args)
    emit_report(args, run_bench(args.bundle, seconds=args.seconds, threads=args.threads, repeats=args.repeats,
                                log=text_log(args)))
    return 0
