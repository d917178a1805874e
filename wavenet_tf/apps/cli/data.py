"""`wavenet data inspect` and `wavenet data builtin`: what a folder of audio holds, and the built-in melodies."""

from __future__ import annotations

import argparse

from wavenet_tf.apps.cli.common import (Formatter, add_config_overrides, add_report_flags, check_report, config_overrides,
                                   emit_report, model_overrides, quiet_tensorflow, setup_logging)
from wavenet_tf.core.config import DataConfig, ModelConfig
from wavenet_tf.core.presets import get_preset, preset_names


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    data = commands.add_parser(
        "data", help="inspect a folder of audio", formatter_class=Formatter,
        description="Commands about training data.",
    )
    data_commands = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    inspect = data_commands.add_parser(
        "inspect", help="decode every file once and report what is usable",
        formatter_class=Formatter,
        description="Decode and clean every audio file under DATA (and fill the cache, so training "
                    "does not decode again); report formats, durations, sample rates, channels, "
                    "labels, and every skipped file with its reason.",
        epilog="examples:\n  wavenet data inspect ~/recordings\n  wavenet data inspect 'clips/**/*.flac' --json\n"
               "  wavenet data inspect manifest.csv --preset small --trim-top-db 0 --strict",
    )
    inspect.add_argument("data", metavar="DATA", help="folder, glob or CSV manifest (path,label)")
    inspect.add_argument("--preset", default="small", choices=preset_names(), help="model whose sample rate to decode at")
    add_report_flags(inspect)
    inspect.add_argument("--strict", action="store_true", help="any unusable file is an error")
    inspect.add_argument("--cache-dir", default=None, help="decoded-audio cache (default: $WAVENET_CACHE or ~/.cache/wavenet-tf)")
    inspect.add_argument("-v", "--verbose", action="store_true", help="also log what trimming did to each file")
    # Only the sample rate changes what decoding produces; the architecture flags would not.
    add_config_overrides(inspect, ModelConfig, "model field", only=("sample_rate",))
    add_config_overrides(inspect, DataConfig, "data fields")
    inspect.set_defaults(func=run_inspect)

    builtin = data_commands.add_parser(
        "builtin", help="write the built-in plucked-string melodies (labelled by instrument)",
        formatter_class=Formatter,
        description="Synthesize Karplus-Strong melodies into OUT/<instrument>/melody_NN.wav. "
                    "The same arguments always write the same bytes.",
        epilog="examples:\n  wavenet data builtin melodies/\n  wavenet data builtin melodies16k/ --sample-rate 16000 --files 32",
    )
    builtin.add_argument("out", metavar="OUT", help="folder to write")
    builtin.add_argument("--files", type=int, default=16, help="number of melodies")
    builtin.add_argument("--seconds", type=float, default=8.0, help="seconds per melody")
    builtin.add_argument("--sample-rate", type=int, default=16000, help="Hz")
    builtin.add_argument("--seed", type=int, default=0, help="melody seed")
    builtin.set_defaults(func=run_builtin)
    return data


def run_inspect(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    model = get_preset(args.preset, **model_overrides(args))
    data = DataConfig().replace(**config_overrides(args, DataConfig))
    check_report(args)
    quiet_tensorflow(optional=not model.local_conditioning_channels)
    from wavenet_tf.data import prepare

    summary = prepare(args.data, model, data, cache_dir=args.cache_dir, strict=args.strict).summary()
    emit_report(args, summary, lambda: _print_summary(args.data, summary, model.sample_rate))
    return 0


def _print_summary(data: str, summary: dict, sample_rate: int) -> None:
    join = lambda counts, unit="": ", ".join(f"{k}{unit} ×{v}" for k, v in counts.items()) or "-"
    print(f"{data}: {summary['num_files']} audio files ({join(summary['formats'])})")
    print(f"  usable        {summary['num_usable']} files, {summary['total_seconds']:.1f} s after cleaning "
          f"({summary['decoded_seconds']:.1f} s decoded, {summary['trimmed_seconds']:.1f} s of silence trimmed)")
    print(f"  encodings     {join(summary['encodings'])}")
    print(f"  sample rates  {join(summary['sample_rates'], ' Hz')}  (resampled to {sample_rate} Hz)")
    print(f"  channels      {join(summary['channels'])}  (mixed to mono)")
    print(f"  labels        {join({k or '(none)': v for k, v in summary['labels'].items()})}")
    print(f"  split         {summary['num_train']} train / {summary['num_val']} validation files")
    print(f"  skipped       {summary['num_skipped']}")
    for item in summary["skipped"]:
        print(f"    {item['path']}: {item['reason']}")


def run_builtin(args: argparse.Namespace) -> int:
    from wavenet_tf.builtin_data import write_builtin_dataset

    paths = write_builtin_dataset(args.out, num_files=args.files, seconds=args.seconds,
                                  sample_rate=args.sample_rate, seed=args.seed)
    print(f"wrote {len(paths)} melodies ({args.seconds:g} s at {args.sample_rate} Hz) to {args.out}")
    return 0
