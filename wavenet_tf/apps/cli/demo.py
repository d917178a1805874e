"""`wavenet demo`: end to end on the built-in audio."""

from __future__ import annotations

import argparse

from wavenet_tf.apps.cli.common import Formatter, fail, quiet_tensorflow


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    demo = commands.add_parser(
        "demo", help="end to end on built-in audio: data, a short training, a generated WAV",
        formatter_class=Formatter,
        description="Write the built-in plucked-string melodies, train the `tiny` preset on them "
                    "briefly, and generate a WAV file. Needs no download.",
        epilog="examples:\n  wavenet demo\n  wavenet demo --out /tmp/demo --steps 600 --seconds 3",
    )
    demo.add_argument("--out", default="demo_out", help="folder for the data, the model and the WAV")
    demo.add_argument("--steps", type=int, default=None,
                      help="training steps (default: the demo's measured recipe, wavenet_tf.apps.demo.DEMO_STEPS = 1500)")
    demo.add_argument("--seconds", type=float, default=2.0, help="seconds of audio to generate")
    demo.add_argument("--seed", type=int, default=0, help="seed for data, training and sampling")
    demo.set_defaults(func=run)
    return demo


def run(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    from wavenet_tf.apps.demo import DEMO_STEPS, run_demo

    if args.steps is not None and args.steps < 1:
        return fail(f"--steps must be >= 1 (default {DEMO_STEPS}), got {args.steps}.")
    run_demo(args.out, steps=DEMO_STEPS if args.steps is None else args.steps, seconds=args.seconds, seed=args.seed)
    return 0
