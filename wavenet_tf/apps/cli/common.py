"""What every `wavenet` command shares: the help formatter, configuration fields as flags,
quiet TensorFlow imports, logging, one-line errors, and the ``--json`` / ``--report`` convention.

Nothing here imports TensorFlow at module level: the commands that do not need it
(generate, serve, bench, evaluate --engine step) must run in a serving-only install.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from typing import Any, Callable, Sequence

from wavenet_tf.core.config import ModelConfig


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every flag's help (none where there is no default), and examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


def quiet_tensorflow(optional: bool = False) -> None:
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


# What each configuration field means, for --help (the dataclasses' comments, said for a user).
FIELD_HELP = {
    # ModelConfig
    "sample_rate": "Hz the model reads and writes; audio is resampled to it",
    "quantization_channels": "mu-law classes of input and output (256 = 8-bit mu-law)",
    "dilations": "dilation rates of one stack, in order",
    "num_stacks": "times the stack of dilations is repeated",
    "kernel_size": "taps of every dilated convolution (2 in the paper)",
    "initial_kernel_size": "taps of the first causal convolution",
    "residual_channels": "channels of the residual stream",
    "gate_channels": "channels of each half (filter, gate) of the gated unit",
    "skip_channels": "channels of the skip outputs and the output head",
    "input_encoding": "how input classes enter the network: one_hot, embedding or one_hot_amplitude (one-hot plus the class's level and amplitude)",
    "global_conditioning_classes": "global classes (speakers, instruments); 0 = off (set by --global-cond)",
    "global_conditioning_channels": "width of the global class embedding",
    "local_conditioning_channels": "mel bands of local conditioning; 0 = off (set by --local-cond)",
    "upsample_scales": "strides bringing mel frames to the sample rate; their product is the hop length",
    "use_bias": "convolutions carry a bias: true or false",
    # DataConfig
    "trim_top_db": "trim leading/trailing frames this many dB below the loudest; 0 = no trimming",
    "trim_frame_length": "samples per loudness frame for trimming",
    "remove_dc": "remove each file's DC offset: true or false",
    "normalize": "scale each file to a peak of 0.99: true or false",
    "n_fft": "FFT size of the log-mel analysis (local conditioning)",
    "fmin": "lowest mel filter frequency in Hz",
    "fmax": "highest mel filter frequency in Hz; 0 = Nyquist",
    "target_length": "predicted samples per training window",
    "batch_size": "windows per batch",
    "val_split": "fraction of files held out for validation, in [0, 1)",
    "seed": "seed of the split and the window positions",
    "max_seconds": "longest audio file accepted, in seconds (bounds decoding memory); longer files are skipped",
    "input_noise": "jitter the training inputs (never the targets) by rounded Gaussian noise whose σ, in classes, "
                   "each window draws uniformly up to this; teaches a model to recover from its own off draws "
                   "(`wavenet demo` trains with 6); 0 = clean inputs",
    "input_noise_fraction": "the share of input samples the jitter touches, in [0, 1]",
    # TrainConfig
    "epochs": "epochs in total (an epoch is the checkpoint interval)",
    "steps_per_epoch": "optimizer steps per epoch",
    "learning_rate": "Adam's peak learning rate (reached after the warm-up)",
    "validation_steps": "validation batches per epoch",
    "strategy": "default (one device), mirrored (all local devices) or multiworker (TF_CONFIG)",
    "precision": "float32, mixed_float16 or mixed_bfloat16",
    "jit_compile": "XLA-compile the training step: true or false",
    "audio_every": "epochs between generated-audio summaries; 0 = off",
    "audio_seconds": "seconds of audio each summary generates",
    "max_cpu_minutes": "stop at the end of the epoch that spends this many CPU-minutes; 0 = no limit",
    "warmup_steps": "steps of linear learning-rate warm-up; 0 = none",
    "lr_schedule": "learning rate after the warm-up: constant or cosine (decays to final_lr_fraction)",
    "decay_steps": "step at which a cosine decay ends; 0 = epochs * steps_per_epoch, or with --max-cpu-minutes "
                   "where the budget will end (measured over the first epochs)",
    "final_lr_fraction": "the decayed learning rate as a fraction of learning_rate, in [0, 1]",
    "clip_norm": "clip gradients to this global L2 norm; 0 = no clipping",
    "self_feed": "share of predicted inputs replaced by the model's own draws (parallel scheduled sampling), "
                 "in [0, 1]; 0 = teacher forcing only",
}


def add_config_overrides(parser: argparse.ArgumentParser, cls: type, title: str,
                         only: Sequence[str] | None = None) -> None:
    """One ``--field-name`` flag per field of dataclass ``cls``; unset flags keep the default/preset."""
    group = parser.add_argument_group(title)
    defaults = cls()
    for f in dataclasses.fields(cls):
        if only is not None and f.name not in only:
            continue
        default = getattr(defaults, f.name)
        if isinstance(default, tuple):
            kind, metavar = _parse_int_tuple, "N,N,..."
        elif isinstance(default, bool):
            kind, metavar = _parse_bool, "BOOL"
        elif isinstance(default, float):
            kind, metavar = _parse_finite, "FLOAT"
        else:
            kind, metavar = type(default), type(default).__name__.upper()
        shown = "the preset's" if cls is ModelConfig else (",".join(map(str, default)) if isinstance(default, tuple)
                                                          else str(default).lower() if isinstance(default, bool)
                                                          else f"{default:g}" if isinstance(default, float)
                                                          else str(default))
        # SUPPRESS: an unset flag is absent (keeps the preset/saved value) and argparse adds no
        # second "(default: None)" to the help.
        group.add_argument(
            "--" + f.name.replace("_", "-"), dest=f"{cls.__name__}.{f.name}", type=kind, metavar=metavar,
            default=argparse.SUPPRESS, help=f"{FIELD_HELP.get(f.name, f.name.replace('_', ' '))} (default: {shown})",
        )


def _parse_finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


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


def setup_logging(verbose: bool) -> None:
    import logging

    # Our own progress at INFO; other libraries only when something is wrong.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("wavenet_tf").setLevel(logging.DEBUG if verbose else logging.INFO)


def fail(message: str) -> int:
    print(f"wavenet: error: {message}", file=sys.stderr)
    return 2


# --- reports: one convention for every command that has one --------------------------------------

def add_report_flags(parser: argparse.ArgumentParser) -> None:
    """``--json``: the report as one JSON object on stdout, instead of the text; ``--report FILE``: also to FILE.

    With ``--json`` stdout carries nothing but that object (a pipe into ``jq`` works); the
    lines a command prints while it measures go to stderr instead.
    """
    parser.add_argument("--json", action="store_true",
                        help="print the report as one JSON object on stdout instead of the text "
                             "(progress lines go to stderr)")
    parser.add_argument("--report", default=None, metavar="FILE", help="also write the report to FILE as JSON")


def check_report(args: argparse.Namespace) -> None:
    """Refuse an unwritable ``--report FILE`` before the work, not after it."""
    if args.report is not None:
        from serving.limits import check_output_file

        check_output_file(args.report, "--report")


def text_log(args: argparse.Namespace) -> Callable[[str], None]:
    """Where a command's human-readable lines go: stdout, or stderr when stdout is for ``--json``."""
    if args.json:
        return lambda line="": print(line, file=sys.stderr, flush=True)
    return print


def emit_report(args: argparse.Namespace, report: Any, text: Callable[[], None] | None = None) -> None:
    """Write ``report`` to ``--report FILE``; print it (``--json``) or call ``text`` to print the text."""
    if args.report is not None:
        from wavenet_tf.core.files import output_file

        with output_file(args.report) as path:  # an interrupted write leaves the previous report whole
            path.write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report))
    elif text is not None:
        text()
