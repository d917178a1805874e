"""`wavenet` — the command line. Thin: parse arguments, call the library, print.

One module per command, its flags (``add_parser``) beside its handler (``run``); what they
share is in `wavenet_tf.apps.cli.common`. Each handler imports what it needs when it runs, so
``wavenet --help`` is instant and the commands that do not need TensorFlow never import it.

Every command with a report takes ``--json`` (the report as one JSON object on stdout,
instead of the text) and ``--report FILE`` (the report written to FILE as well).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from wavenet_tf.apps.cli import (bench, bench_data, bench_levers, bench_quality, bench_recipe, bench_sound, bench_train, data,
                            demo, evaluate, export, generate, info, serve, train)
from wavenet_tf.apps.cli.common import Formatter, fail

# In the order `wavenet --help` lists them.
COMMANDS = (info, data, bench_train, bench_quality, bench_recipe, bench_sound, bench_data, train, evaluate, export,
            generate, serve, bench, bench_levers, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavenet",
        description="WaveNet toolkit: audio to data, training, export and real-time generation.",
        formatter_class=Formatter,
        epilog="Run `wavenet COMMAND --help` for each command's flags and examples.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        # Ctrl-C is the user's choice, not a crash: one line, the shell's exit status for SIGINT.
        # What the commands write is complete or absent (atomic renames), so there is nothing to add.
        if os.environ.get("WAVENET_DEBUG"):
            raise
        print(f"wavenet {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as error:
        # Argument and configuration errors already say what to change: no traceback
        # (set WAVENET_DEBUG=1 to see one).
        if os.environ.get("WAVENET_DEBUG"):
            raise
        return fail(str(error))
    except ImportError as error:
        # A serving-only install has no TensorFlow: name what is missing and how to add it.
        if os.environ.get("WAVENET_DEBUG"):
            raise
        name = getattr(error, "name", None)
        missing = f"cannot import {name}" if name else str(error).splitlines()[0]
        return fail(f"wavenet {args.command}: {missing}; this command needs the training "
                    "requirements: pip install -r requirements.txt (a serving install runs generate, serve, "
                    "evaluate --engine step and bench)")

