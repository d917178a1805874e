"""`wavenet` — the command line. Thin: parse arguments, call the library, print.

Each sub-command imports what it needs when it runs, so ``wavenet --help`` is instant and
the commands that do not need TensorFlow never import it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Sequence

from wavenet_tf.config import ModelConfig
from wavenet_tf.presets import get_preset, preset_names


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every flag's help, and examples kept as written."""


def _quiet_tensorflow() -> None:
    """Import TensorFlow without its C++ start-up chatter on stderr.

    On a CPU-only machine TF logs CUDA probing and oneDNN notices, some before absl is
    initialized, which no environment variable silences. We capture file descriptor 2
    during the import and replay it only if the import fails.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# --- preset fields as flags ----------------------------------------------------------------

def _parse_int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,4,8, got {text!r}")


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_model_overrides(parser: argparse.ArgumentParser) -> None:
    """One ``--field-name`` flag per `ModelConfig` field; unset flags keep the preset's value."""
    group = parser.add_argument_group("model fields (override the preset)")
    for f in dataclasses.fields(ModelConfig):
        default = getattr(ModelConfig(), f.name)
        if isinstance(default, tuple):
            kind, metavar = _parse_int_tuple, "N,N,..."
        elif isinstance(default, bool):
            kind, metavar = _parse_bool, "BOOL"
        else:
            kind, metavar = type(default), type(default).__name__.upper()
        group.add_argument(
            "--" + f.name.replace("_", "-"), dest=f"override_{f.name}", type=kind, metavar=metavar,
            default=None, help=argparse.SUPPRESS if f.name.startswith("_") else f"set {f.name}",
        )


def model_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        key[len("override_"):]: value
        for key, value in vars(args).items()
        if key.startswith("override_") and value is not None
    }


def _fail(message: str) -> int:
    print(f"wavenet: error: {message}", file=sys.stderr)
    return 2


# --- sub-commands ---------------------------------------------------------------------------

def cmd_info(args: argparse.Namespace) -> int:
    config = get_preset(args.preset, **model_overrides(args))
    _quiet_tensorflow()
    from wavenet_tf.model import WaveNet

    num_params = WaveNet.from_model_config(config).count_params()
    report = {
        "preset": args.preset,
        "config": config.to_dict(),
        "num_layers": config.num_layers,
        "receptive_field": config.receptive_field,
        "receptive_field_ms": round(config.receptive_field_ms, 3),
        "num_params": int(num_params),
    }
    if args.json:
        print(json.dumps(report))
        return 0
    width = max(len(k) for k in report["config"]) + 2
    print(f"preset {args.preset}")
    for key, value in report["config"].items():
        print(f"  {key:<{width}}{value}")
    print(f"  {'num_layers':<{width}}{config.num_layers}")
    print(f"  {'receptive_field':<{width}}{config.receptive_field} samples "
          f"({config.receptive_field_ms:.1f} ms at {config.sample_rate} Hz)")
    print(f"  {'num_params':<{width}}{num_params:,}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from wavenet_tf.demo import run_demo

    run_demo(args.out, steps=args.steps, seconds=args.seconds, seed=args.seed)
    return 0


# --- parser ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavenet",
        description="WaveNet toolkit: audio to data, training, export and real-time generation.",
        formatter_class=_Formatter,
        epilog="Run `wavenet COMMAND --help` for each command's flags and examples.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = commands.add_parser(
        "info", help="show a preset: configuration, receptive field, parameter count",
        formatter_class=_Formatter,
        description="Print a preset's resolved configuration, receptive field and parameter count.",
        epilog="examples:\n  wavenet info --preset small\n  wavenet info --preset ibab --json\n"
               "  wavenet info --preset small --residual-channels 64 --dilations 1,2,4,8",
    )
    info.add_argument("--preset", default="small", choices=preset_names(), help="named configuration")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_model_overrides(info)
    info.set_defaults(func=cmd_info)

    demo = commands.add_parser(
        "demo", help="end to end on built-in audio: data, a short training, a generated WAV",
        formatter_class=_Formatter,
        description="Write the built-in plucked-string melodies, train the `tiny` preset on them "
                    "briefly, and generate a WAV file. Needs no download.",
        epilog="examples:\n  wavenet demo\n  wavenet demo --out /tmp/demo --steps 600 --seconds 3",
    )
    demo.add_argument("--out", default="demo_out", help="folder for the data, the model and the WAV")
    demo.add_argument("--steps", type=int, default=400, help="training steps")
    demo.add_argument("--seconds", type=float, default=2.0, help="seconds of audio to generate")
    demo.add_argument("--seed", type=int, default=0, help="seed for data, training and sampling")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as error:
        # Argument and configuration errors already say what to change: no traceback
        # (set WAVENET_DEBUG=1 to see one).
        if os.environ.get("WAVENET_DEBUG"):
            raise
        return _fail(str(error))


if __name__ == "__main__":
    sys.exit(main())
