"""`wavenet evaluate`: bits per sample of a run or a bundle on audio, beside the unigram baseline."""

from __future__ import annotations

import argparse
import contextlib
import math
from pathlib import Path
from typing import Callable, Iterator

from wavenet_tf.apps.cli.common import (Formatter, add_report_flags, check_report, emit_report, quiet_tensorflow,
                                   setup_logging)
from wavenet_tf.core.config import DataConfig, ModelConfig


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    evaluate = commands.add_parser(
        "evaluate", help="bits per sample of a trained model on audio, beside the unigram baseline",
        formatter_class=Formatter,
        description="Average cross-entropy in bits per sample over every position of DATA that has a full "
                    "receptive field, and the entropy of DATA's mu-law class histogram (the unigram baseline).",
        epilog="examples:\n  wavenet evaluate runs/first            # its own validation files\n"
               "  wavenet evaluate runs/first held_out/ --json\n"
               "  wavenet evaluate bundles/first held_out/ --engine step   # no TensorFlow needed",
    )
    evaluate.add_argument("target", metavar="RUN_OR_BUNDLE", help="run directory (keras) or bundle (onnx, step)")
    evaluate.add_argument("data", metavar="DATA", nargs="?", default=None,
                          help="folder, glob or CSV manifest (default: the run's validation files)")
    evaluate.add_argument("--engine", default="keras", choices=["keras", "onnx", "step"],
                          help="keras: the run's model; onnx: the bundle's wavenet.onnx; step: step.onnx one sample at a time")
    evaluate.add_argument("--speaker", default=None,
                          help="globally conditioned models: score every file as this label name or class id "
                               "(needed for files without a label; labelled files otherwise map through the "
                               "model's own label table)")
    add_report_flags(evaluate)
    evaluate.add_argument("--strict", action="store_true", help="any unusable file is an error")
    evaluate.add_argument("--cache-dir", default=None, help="decoded-audio cache")
    evaluate.set_defaults(func=run)
    return evaluate


def run(args: argparse.Namespace) -> int:
    setup_logging(False)
    from serving import evaluate as ev
    from wavenet_tf.data import prepare

    target, is_bundle = _check_target(args)
    check_report(args)
    model_config, data_config, label_names, logits_fn = (_from_bundle if is_bundle else _from_run)(args, target)
    global_conditioning = bool(model_config.global_conditioning_classes)
    speaker = None
    if args.speaker is not None:
        if not global_conditioning:
            raise ValueError(f"--speaker: {target} is not globally conditioned.")
        speaker = ev.speaker_id(args.speaker, label_names, model_config.global_conditioning_classes)
    if model_config.local_conditioning_channels:
        quiet_tensorflow()  # mel frames are computed with tf.signal
    with _data_source(args.data, target, is_bundle) as data:
        # Labels map through the model's own table (an unknown one is an error naming the
        # known ones); --speaker scores every file as that class instead.
        prepared = prepare(data, model_config, data_config.replace(val_split=0.0), cache_dir=args.cache_dir,
                           strict=args.strict, split=False,
                           labels=label_names if global_conditioning and speaker is None else None)
    if speaker is not None:
        for track in prepared.tracks:
            track.label_id = speaker
    report = ev.evaluate_tracks(
        logits_fn, prepared.tracks, model_config.receptive_field, model_config.quantization_channels,
        hop_length=model_config.hop_length, global_conditioning=global_conditioning,
        local_conditioning=bool(model_config.local_conditioning_channels),
    )
    report["engine"] = args.engine
    emit_report(args, report, lambda: print(
        f"{report['bits_per_sample']:.4f} bits/sample over {report['num_samples']:,} samples "
        f"in {report['num_files']} files ({args.engine}); unigram baseline {report['unigram_bits']:.4f}, "
        f"uniform {math.log2(model_config.quantization_channels):.4f}"))
    return 0


def _check_target(args: argparse.Namespace) -> tuple[Path, bool]:
    """RUN_OR_BUNDLE, whether it is a bundle, and that --engine and DATA suit it."""
    target = Path(args.target)
    is_bundle = (target / "model.json").is_file()
    if not is_bundle and not (target / "config.json").is_file():
        raise ValueError(f"{target}: neither a run directory (config.json) nor a bundle (model.json).")
    if args.engine == "keras" and is_bundle:
        raise ValueError(f"{target} is a bundle: use --engine onnx or --engine step (keras needs the run directory).")
    if args.engine != "keras" and not is_bundle:
        raise ValueError(f"--engine {args.engine} reads a bundle; export the run first: "
                         f"wavenet export {target} --out {target.parent / (target.name + '-bundle')}")
    if is_bundle and args.data is None:
        raise ValueError("a bundle carries no data: pass DATA.")
    return target, is_bundle


def _from_bundle(args: argparse.Namespace, target: Path) -> tuple[ModelConfig, DataConfig, list[str], Callable]:
    """The onnx and step engines: onnxruntime and NumPy only, no TensorFlow."""
    from serving.bundle import load_bundle
    from serving.card_audio import cleaning_settings
    from serving import evaluate as ev

    bundle = load_bundle(target)
    model_config = bundle.card.model_config
    # Clean the files as the run cleaned its training audio (the card records how).
    data_config = DataConfig().replace(**cleaning_settings(bundle.card))
    if bundle.local_conditioning:
        local = bundle.card.local_conditioning
        data_config = data_config.replace(n_fft=local.n_fft, fmin=local.fmin, fmax=local.fmax)
    spec = bundle.card.global_conditioning
    label_names = list(spec.names) if spec else []
    logits_fn = ev.onnx_logits_fn(bundle) if args.engine == "onnx" else ev.step_logits_fn(bundle)
    return model_config, data_config, label_names, logits_fn


def _from_run(args: argparse.Namespace, target: Path) -> tuple[ModelConfig, DataConfig, list[str], Callable]:
    """The keras engine: the run's best model and the configuration it was trained with."""
    quiet_tensorflow()
    from serving import evaluate as ev
    from wavenet_tf.run_dir import load_run_config, load_run_model

    model_config, data_config, _, record = load_run_config(target)
    return model_config, data_config, list(record.get("labels") or []), ev.keras_logits_fn(load_run_model(target))


@contextlib.contextmanager
def _data_source(data: str | None, target: Path, is_bundle: bool) -> Iterator[str]:
    """DATA, or for a run without DATA a manifest of its validation files, removed on the way out."""
    if data is not None or is_bundle:
        yield data
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wavenet-evaluate-") as folder:
        yield str(_held_out_manifest(target, Path(folder)))


def _held_out_manifest(run: Path, folder: Path) -> Path:
    """A CSV manifest in ``folder`` of the run's validation files (its training files if it has none)."""
    import csv
    import json

    record = json.loads((run / "dataset.json").read_text())
    rows = record["val"] or record["train"]
    path = folder / f"{run.name}-validation.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([row["path"], row["label"]] for row in rows)
    return path
