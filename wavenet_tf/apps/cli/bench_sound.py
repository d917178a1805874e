"""`wavenet bench-sound`: what a listener hears from each kind of model, beside its data."""

from __future__ import annotations

import argparse

from wavenet_tf.apps.cli.common import (Formatter, add_report_flags, check_report, emit_report, fail, quiet_tensorflow,
                                   setup_logging, text_log)

SUITES = ("melodies", "instruments", "vocoder")


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    sound = commands.add_parser(
        "bench-sound", help="the sound: pitch, voicing, level and F0 of generated audio beside the data's",
        formatter_class=Formatter,
        description="Train (or reuse) each suite's model, export it and generate from it for several seeds and "
                    "draws, started as `wavenet generate` starts by default and primed with held-out audio; report "
                    "level, periodicity, voiced frames, median F0 and its error in cents, spectral flatness and how "
                    "long a primed continuation stays voiced, beside the held-out audio's, with held-out "
                    "bits/sample. Suites: melodies (the built-in melodies, trained as `wavenet demo` trains them; "
                    "a --lever trains a changed recipe beside it, in a few minutes), instruments (bench-quality's "
                    "rendered instruments, `small` for --instrument-cpu-minutes) and vocoder (the mel-conditioned "
                    "`vocoder` on espeak-ng voices for --vocoder-cpu-minutes, vocoding held-out speech). The "
                    "instruments and vocoder need `make quality-deps`. Writes OUT/report.json, OUT/sound.md and "
                    "OUT/spectrograms.png. Instrument and vocoder runs already spent are measured again, not retrained; melody runs are always retrained (each is a few minutes).",
        epilog="examples:\n  wavenet bench-sound --suites melodies                       # a few minutes\n"
               "  wavenet bench-sound --suites melodies --lever clean:input_noise=0 --lever seed1:seed=1\n"
               "  wavenet bench-sound --suites melodies --draws 1.0,1.0/3,0.8/8 --seeds 6\n"
               "  wavenet bench-sound                                          # every suite, 30 CPU-minutes each",
    )
    sound.add_argument("--out", default="bench_out/sound", help="folder for data, runs, bundles, audio, report")
    sound.add_argument("--suites", default=",".join(SUITES), help=f"comma-separated, from {', '.join(SUITES)}")
    sound.add_argument("--lever", action="append", default=[], metavar="NAME:FIELD=VALUE,...",
                       help="a change of the demo's recipe (model, data or training fields) trained and measured "
                            "beside it on the melodies (repeatable)")
    sound.add_argument("--draws", default=None, metavar="T[/K],...",
                       help="temperatures, each with an optional top-k (default: 1.0/3 and 1.0 — the default draw "
                            "of a model trained with input jitter and of one trained without)")
    sound.add_argument("--seeds", type=int, default=6, help="seeds generated per draw and start")
    sound.add_argument("--seconds", type=float, default=2.0, help="seconds generated per seed")
    sound.add_argument("--instrument-cpu-minutes", type=float, default=30.0, help="CPU budget of the instrument run")
    sound.add_argument("--vocoder-cpu-minutes", type=float, default=30.0, help="CPU budget of the vocoder run")
    sound.add_argument("--melody-steps", type=int, default=None,
                       help="training steps of the melody runs (default: the demo's own)")
    sound.add_argument("--seed", type=int, default=0, help="seed of the data and the training windows")
    add_report_flags(sound)
    sound.set_defaults(func=run)
    return sound


def run(args: argparse.Namespace) -> int:
    setup_logging(False)
    from wavenet_tf.apps.bench_recipe import parse_lever
    from wavenet_tf.apps.bench_sound import parse_draw

    suites = [s for s in args.suites.split(",") if s]
    unknown = [s for s in suites if s not in SUITES]
    if unknown or not suites:
        return fail(f"--suites: {unknown[0] if unknown else 'nothing'!r} is not a suite; choose from {', '.join(SUITES)}.")
    if args.melody_steps is not None and args.melody_steps < 1:
        return fail("--melody-steps must be >= 1.")
    if args.seeds < 1 or args.seconds <= 0 or args.instrument_cpu_minutes <= 0 or args.vocoder_cpu_minutes <= 0:
        return fail("--seeds must be >= 1; --seconds and the CPU budgets must be > 0.")
    levers = dict(parse_lever(text) for text in args.lever)
    if levers and "melodies" not in suites:
        return fail("--lever changes the demo's recipe: add melodies to --suites.")
    draws = [parse_draw(text) for text in args.draws.split(",")] if args.draws else None
    check_report(args)
    if "instruments" in suites or "vocoder" in suites:
        from pathlib import Path

        from wavenet_tf.quality_data import QualityDataError, RenderSettings, render_quality_data

        try:  # before TensorFlow: a missing tool fails fast
            render_quality_data(Path(args.out) / "data" / "quality", RenderSettings(speech="vocoder" in suites))
        except QualityDataError as error:
            return fail(str(error))
    quiet_tensorflow()
    from wavenet_tf.apps.bench_sound import run_bench_sound

    report = run_bench_sound(args.out, suites, levers, draws, args.seeds, args.seconds, args.instrument_cpu_minutes,
                             args.vocoder_cpu_minutes, args.seed, args.melody_steps, log=text_log(args))
    emit_report(args, report)
    return 0
