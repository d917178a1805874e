"""`wavenet bench-quality`: real-audio quality against the LPC and unigram baselines."""

from __future__ import annotations

import argparse

from wavenet_tf.apps.cli.common import (Formatter, add_report_flags, check_report, emit_report, fail, quiet_tensorflow,
                                   setup_logging, text_log)
from wavenet_tf.core.presets import preset_names


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    quality = commands.add_parser(
        "bench-quality", help="real-audio quality: held-out bits/sample vs LPC and unigram, listener measures",
        formatter_class=Formatter,
        description="Render real instrument audio (music21 pieces through FluidSynth's General-MIDI soundfont; "
                    "some pieces held out) and, with --speaker-cpu-minutes, espeak-ng voices; train the preset "
                    "for a budget of CPU minutes, validating on the held-out pieces every epoch; report "
                    "held-out bits/sample beside the unigram and an order-32 linear-prediction baseline, and "
                    "level, voicing and flatness of generated audio beside the held-out audio's. Writes "
                    "OUT/report.json and a learning-curve plot. Needs `make quality-deps` (fluidsynth, "
                    "fluid-soundfont-gm, espeak-ng) and music21. Run again with the same budget to re-measure "
                    "only; with a larger one to continue training.",
        epilog="examples:\n  wavenet bench-quality                       # 30 CPU-minutes\n"
               "  wavenet bench-quality --cpu-minutes 1 --out /tmp/q --seconds 1\n"
               "  wavenet bench-quality --speaker-cpu-minutes 10 --report q.json",
    )
    quality.add_argument("--out", default="bench_out/quality", help="folder for data, runs, bundles, audio, report")
    quality.add_argument("--cpu-minutes", type=float, default=30.0, help="CPU-time budget of the instrument training")
    quality.add_argument("--speaker-cpu-minutes", type=float, default=0.0,
                         help="CPU-time budget of a speaker-conditioned run on espeak-ng voices (0: skip it)")
    quality.add_argument("--mel-cpu-minutes", type=float, default=0.0,
                         help="CPU-time budget of the mel-conditioned `vocoder` on the voices (0: skip it)")
    quality.add_argument("--preset", default="small", choices=preset_names(), help="model to train")
    quality.add_argument("--steps-per-epoch", type=int, default=25,
                         help="steps between validations (the learning curve's points) and checkpoints")
    quality.add_argument("--seconds", type=float, default=4.0, help="seconds generated per stream")
    quality.add_argument("--streams", type=int, default=4, help="generated streams (each primed from another file)")
    quality.add_argument("--seed", type=int, default=0, help="seed of training windows and sampling")
    add_report_flags(quality)
    quality.set_defaults(func=run)
    return quality


def run(args: argparse.Namespace) -> int:
    setup_logging(False)
    from pathlib import Path

    from wavenet_tf.quality_data import QualityDataError, RenderSettings, render_quality_data

    if args.cpu_minutes <= 0 or args.seconds <= 0 or args.streams < 1 or args.steps_per_epoch < 1:
        return fail("--cpu-minutes and --seconds must be > 0, --streams and --steps-per-epoch >= 1.")
    check_report(args)
    settings = RenderSettings(speech=args.speaker_cpu_minutes > 0 or args.mel_cpu_minutes > 0)
    try:
        render_quality_data(Path(args.out) / "data", settings)  # before TensorFlow: a missing tool fails fast
    except QualityDataError as error:
        return fail(str(error))
    quiet_tensorflow()
    from wavenet_tf.apps.bench_quality import run_bench_quality

    report = run_bench_quality(args.out, cpu_minutes=args.cpu_minutes, preset=args.preset,
                               steps_per_epoch=args.steps_per_epoch, seconds=args.seconds, streams=args.streams,
                               speaker_cpu_minutes=args.speaker_cpu_minutes, mel_cpu_minutes=args.mel_cpu_minutes,
                               settings=settings, seed=args.seed, log=text_log(args))
    emit_report(args, report)
    return 0
