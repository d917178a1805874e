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

from wavenet_tf.config import DataConfig, ModelConfig
from wavenet_tf.presets import get_preset, preset_names


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every flag's help, and examples kept as written."""


def _quiet_tensorflow(optional: bool = False) -> None:
    """Import TensorFlow without its C++ start-up chatter on stderr.

    On a CPU-only machine TF logs CUDA probing and oneDNN notices, some before absl is
    initialized, which no environment variable silences. We capture file descriptor 2
    during the import and replay it only if the import fails. With ``optional``, a
    missing TensorFlow is not an error (callers fall back to TF-free code).
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
        except ImportError:
            os.dup2(saved, 2)
            if not optional:
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
                raise
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


def add_config_overrides(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    """One ``--field-name`` flag per field of dataclass ``cls``; unset flags keep the default/preset."""
    group = parser.add_argument_group(title)
    defaults = cls()
    for f in dataclasses.fields(cls):
        default = getattr(defaults, f.name)
        if isinstance(default, tuple):
            kind, metavar = _parse_int_tuple, "N,N,..."
        elif isinstance(default, bool):
            kind, metavar = _parse_bool, "BOOL"
        else:
            kind, metavar = type(default), type(default).__name__.upper()
        group.add_argument(
            "--" + f.name.replace("_", "-"), dest=f"{cls.__name__}.{f.name}", type=kind, metavar=metavar,
            default=None, help=f"{f.name} (default: {'the preset' if cls is ModelConfig else repr(default)})",
        )


def config_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    prefix = cls.__name__ + "."
    return {
        key[len(prefix):]: value
        for key, value in vars(args).items()
        if key.startswith(prefix) and value is not None
    }


def add_model_overrides(parser: argparse.ArgumentParser) -> None:
    add_config_overrides(parser, ModelConfig, "model fields (override the preset)")


def model_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return config_overrides(args, ModelConfig)


def _setup_logging(verbose: bool) -> None:
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", stream=sys.stderr)


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


def cmd_data_inspect(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose)
    model = get_preset(args.preset, **model_overrides(args))
    data = DataConfig().replace(**config_overrides(args, DataConfig))
    # 16-bit WAV decodes through tf.audio.decode_wav when TensorFlow is installed.
    _quiet_tensorflow(optional=not model.local_conditioning_channels)
    from wavenet_tf.data import prepare

    summary = prepare(args.data, model, data, cache_dir=args.cache_dir, strict=args.strict).summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    join = lambda counts, unit="": ", ".join(f"{k}{unit} ×{v}" for k, v in counts.items()) or "-"
    print(f"{args.data}: {summary['num_files']} audio files ({join(summary['formats'])})")
    print(f"  usable        {summary['num_usable']} files, {summary['total_seconds']:.1f} s after cleaning "
          f"({summary['decoded_seconds']:.1f} s decoded, {summary['trimmed_seconds']:.1f} s of silence trimmed)")
    print(f"  encodings     {join(summary['encodings'])}")
    print(f"  sample rates  {join(summary['sample_rates'], ' Hz')}  (resampled to {model.sample_rate} Hz)")
    print(f"  channels      {join(summary['channels'])}  (mixed to mono)")
    print(f"  labels        {join({k or '(none)': v for k, v in summary['labels'].items()})}")
    print(f"  split         {summary['num_train']} train / {summary['num_val']} validation files")
    print(f"  skipped       {summary['num_skipped']}")
    for item in summary["skipped"]:
        print(f"    {item['path']}: {item['reason']}")
    return 0


def cmd_bench_data(args: argparse.Namespace) -> int:
    _setup_logging(False)
    _quiet_tensorflow()
    from wavenet_tf.bench_data import run_bench_data

    data = DataConfig().replace(**config_overrides(args, DataConfig))
    report = run_bench_data(args.data, args.preset, data, batches=args.batches, train_steps=args.train_steps,
                            cache_dir=args.cache_dir)
    if args.json:
        print(json.dumps(report))
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

    data = commands.add_parser(
        "data", help="inspect a folder of audio", formatter_class=_Formatter,
        description="Commands about training data.",
    )
    data_commands = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    inspect = data_commands.add_parser(
        "inspect", help="decode every file once and report what is usable",
        formatter_class=_Formatter,
        description="Decode and clean every audio file under DATA (and fill the cache, so training "
                    "does not decode again); report formats, durations, sample rates, channels, "
                    "labels, and every skipped file with its reason.",
        epilog="examples:\n  wavenet data inspect ~/recordings\n  wavenet data inspect 'clips/**/*.flac' --json\n"
               "  wavenet data inspect manifest.csv --preset small --trim-top-db 0 --strict",
    )
    inspect.add_argument("data", metavar="DATA", help="folder, glob or CSV manifest (path,label)")
    inspect.add_argument("--preset", default="small", choices=preset_names(), help="model whose sample rate to decode at")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument("--strict", action="store_true", help="any unusable file is an error")
    inspect.add_argument("--cache-dir", default=None, help="decoded-audio cache (default: $WAVENET_CACHE or ~/.cache/wavenet-tf)")
    inspect.add_argument("-v", "--verbose", action="store_true", help="also log what trimming did to each file")
    add_model_overrides(inspect)
    add_config_overrides(inspect, DataConfig, "data fields")
    inspect.set_defaults(func=cmd_data_inspect)

    bench_data = commands.add_parser(
        "bench-data", help="windows/s the data pipeline delivers vs. what training consumes",
        formatter_class=_Formatter,
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
    bench_data.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    add_config_overrides(bench_data, DataConfig, "data fields")
    bench_data.set_defaults(func=cmd_bench_data)

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
    except (ValueError, OSError) as error:
        # Argument and configuration errors already say what to change: no traceback
        # (set WAVENET_DEBUG=1 to see one).
        if os.environ.get("WAVENET_DEBUG"):
            raise
        return _fail(str(error))


if __name__ == "__main__":
    sys.exit(main())
