"""`wavenet export`: a run's best model to a bundle that serving reads without TensorFlow."""

from __future__ import annotations

import argparse

from wavenet_tf.apps.cli.common import Formatter, quiet_tensorflow, setup_logging


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    export = commands.add_parser(
        "export", help="run -> bundle: SavedModel, wavenet.onnx, step.onnx (+ cond.onnx), model card",
        formatter_class=Formatter,
        description="Export a run's best model to a bundle folder that serving reads without TensorFlow. "
                    "--verify checks Keras = SavedModel = ONNX and the step graph under teacher forcing "
                    "(max |Δ logits| <= 1e-4) and fails hard otherwise.",
        epilog="examples:\n  wavenet export runs/first --out bundles/first --verify\n"
               "  wavenet export runs/first --out bundles/first --opset 18",
    )
    export.add_argument("run", metavar="RUN", help="run directory")
    export.add_argument("--out", required=True, help="bundle folder (replaced if it exists)")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset")
    export.add_argument("--verify", action="store_true", help="check numerical parity of every graph")
    export.set_defaults(func=run)
    return export


def run(args: argparse.Namespace) -> int:
    setup_logging(False)
    quiet_tensorflow()
    from export.bundle import export_run

    export_run(args.run, args.out, opset=args.opset, verify=args.verify)
    return 0
