"""`wavenet train`: train on a folder of audio into a resumable run directory."""

from __future__ import annotations

import argparse
import sys

from wavenet_tf.apps.cli.common import (Formatter, add_config_overrides, add_model_overrides, config_overrides,
                                   model_overrides, quiet_tensorflow, setup_logging)
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.core.presets import get_preset, preset_names


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    train = commands.add_parser(
        "train", help="train on a folder of audio; resumable run directory",
        formatter_class=Formatter,
        description="Train a WaveNet with model.fit on the tf.data pipeline. Writes RUN/ with config.json, "
                    "checkpoints, model_best.keras / model_last.keras, metrics.csv and TensorBoard logs "
                    "(tensorboard --logdir RUN/logs). An epoch is the checkpoint interval; kill it at any "
                    "moment and continue with --resume.",
        epilog="examples:\n  wavenet train ~/recordings --out runs/first --preset small --epochs 50\n"
               "  wavenet train ~/recordings --out runs/first --resume --epochs 80\n"
               "  wavenet train speakers/ --out runs/gc --global-cond --residual-channels 64\n"
               "  wavenet train pieces/ --val-data held_out/ --out runs/q --max-cpu-minutes 30 --steps-per-epoch 25\n"
               "  TF_CONFIG='{...}' wavenet train data/ --out runs/mw --strategy multiworker",
    )
    train.add_argument("data", metavar="DATA", nargs="?", default=None,
                       help="folder, glob or CSV manifest (optional with --resume)")
    train.add_argument("--out", required=True, help="run directory")
    train.add_argument("--preset", default=None, choices=preset_names(), help="model preset (new runs: small)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--val-data", default=None, metavar="DIR",
                       help="validation audio (held-out recordings; same label sub-folders); all of DATA trains")
    train.add_argument("--mixed-precision", action="store_true",
                       help="compute in bfloat16 on CPU / float16 on GPU (sets --precision)")
    train.add_argument("--global-cond", action="store_true", help="condition on each file's label (speaker/instrument)")
    train.add_argument("--allow-one-label", action="store_true",
                       help="with --global-cond, accept data with a single label (a one-class model)")
    train.add_argument("--local-cond", action="store_true", help="condition on log-mel frames of the audio")
    train.add_argument("--strict", action="store_true", help="any unusable file is an error")
    train.add_argument("--cache-dir", default=None, help="decoded-audio cache")
    train.add_argument("-v", "--verbose", action="store_true", help="log per-file cleaning details")
    add_config_overrides(train, TrainConfig, "training fields")
    add_config_overrides(train, DataConfig, "data fields")
    add_model_overrides(train)
    train.set_defaults(func=run)
    return train


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    quiet_tensorflow()
    from pathlib import Path

    from wavenet_tf.run_dir import load_run_config
    from wavenet_tf.train import train

    model_flags = model_overrides(args)
    data_flags = config_overrides(args, DataConfig)
    train_flags = config_overrides(args, TrainConfig)
    if args.mixed_precision:
        train_flags["precision"] = "mixed_bfloat16" if not _has_gpu() else "mixed_float16"
    model = get_preset(args.preset or "small", **model_flags) if (args.preset or model_flags or not args.resume) else None
    data, train_config = DataConfig().replace(**data_flags), TrainConfig().replace(**train_flags)
    if args.resume and (Path(args.out) / "config.json").exists():
        saved_model, saved_data, saved_train, _ = load_run_config(args.out)
        data, train_config = saved_data.replace(**data_flags), saved_train.replace(**train_flags)
        if model_flags and not args.preset:
            # Flags on resume change the run's own model, not `small`'s: `--residual-channels 16` on a
            # `tiny` run was refused for every field where tiny and small differ.
            model = saved_model.replace(**model_flags)
    state = train(
        args.data, args.out, model, data, train_config, resume=args.resume,
        global_conditioning=args.global_cond, local_conditioning=args.local_cond,
        cache_dir=args.cache_dir, strict=args.strict, allow_one_label=args.allow_one_label, val_source=args.val_data,
        # A progress bar only on a terminal; a log file gets one plain line per epoch.
        verbose="auto" if sys.stdout.isatty() else "lines",
    )
    best = state.get("best") or {}
    print(f"{args.out}: epoch {state['epoch']}, step {state['step']}; best {best.get('metric')} "
          f"{best.get('value', float('nan')):.4f} at epoch {best.get('epoch')}")
    return 0


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))
