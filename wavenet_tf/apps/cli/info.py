"""`wavenet info`: a preset's configuration, receptive field and parameter count."""

from __future__ import annotations

import argparse

from wavenet_tf.apps.cli.common import (Formatter, add_model_overrides, add_report_flags, check_report, emit_report,
                                   model_overrides, quiet_tensorflow)
from wavenet_tf.core.presets import get_preset, preset_names


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    info = commands.add_parser(
        "info", help="show a preset: configuration, receptive field, parameter count",
        formatter_class=Formatter,
        description="Print a preset's resolved configuration, receptive field and parameter count.",
        epilog="examples:\n  wavenet info --preset small\n  wavenet info --preset ibab --json\n"
               "  wavenet info --preset small --residual-channels 64 --dilations 1,2,4,8",
    )
    info.add_argument("--preset", default="small", choices=preset_names(), help="named configuration")
    add_report_flags(info)
    add_model_overrides(info)
    info.set_defaults(func=run)
    return info


def run(args: argparse.Namespace) -> int:
    config = get_preset(args.preset, **model_overrides(args))
    check_report(args)
    quiet_tensorflow()
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
    emit_report(args, report, lambda: _print_table(report))
    return 0


def _print_table(report: dict) -> None:
    config = report["config"]
    width = max(len(k) for k in config) + 2
    print(f"preset {report['preset']}")
    for key, value in config.items():
        print(f"  {key:<{width}}{value}")
    print(f"  {'num_layers':<{width}}{report['num_layers']}")
    print(f"  {'receptive_field':<{width}}{report['receptive_field']} samples "
          f"({report['receptive_field_ms']:.1f} ms at {config['sample_rate']} Hz)")
    print(f"  {'num_params':<{width}}{report['num_params']:,}")
