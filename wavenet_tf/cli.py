"""`wavenet` — the command line. Thin: parse arguments, call the library, print.

Each sub-command imports what it needs when it runs, so ``wavenet --help`` is instant and
the commands that do not need TensorFlow never import it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from typing import Any, Sequence

from wavenet_tf.core.config import DataConfig, ModelConfig, TrainConfig
from wavenet_tf.core.presets import get_preset, preset_names


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every flag's help (none where there is no default), and examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


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
    "input_encoding": "how input classes enter the network: one_hot or embedding",
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
    # TrainConfig
    "epochs": "epochs in total (an epoch is the checkpoint interval)",
    "steps_per_epoch": "optimizer steps per epoch",
    "learning_rate": "Adam's learning rate",
    "validation_steps": "validation batches per epoch",
    "strategy": "default (one device), mirrored (all local devices) or multiworker (TF_CONFIG)",
    "precision": "float32, mixed_float16 or mixed_bfloat16",
    "jit_compile": "XLA-compile the training step: true or false",
    "audio_every": "epochs between generated-audio summaries; 0 = off",
    "audio_seconds": "seconds of audio each summary generates",
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


def _setup_logging(verbose: bool) -> None:
    import logging

    # Our own progress at INFO; other libraries only when something is wrong.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("wavenet_tf").setLevel(logging.DEBUG if verbose else logging.INFO)


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


def cmd_data_builtin(args: argparse.Namespace) -> int:
    from wavenet_tf.builtin_data import write_builtin_dataset

    paths = write_builtin_dataset(args.out, num_files=args.files, seconds=args.seconds,
                                  sample_rate=args.sample_rate, seed=args.seed)
    print(f"wrote {len(paths)} melodies ({args.seconds:g} s at {args.sample_rate} Hz) to {args.out}")
    return 0


def cmd_bench_train(args: argparse.Namespace) -> int:
    from wavenet_tf.bench_train import run_bench_train

    rows = run_bench_train(tuple(args.presets.split(",")), batch=args.batch_size, target=args.target_length,
                           steps=args.steps)
    if args.json:
        print(json.dumps(rows))
    return 0


def cmd_bench_quality(args: argparse.Namespace) -> int:
    _setup_logging(False)
    from wavenet_tf.quality_data import QualityDataError, RenderSettings

    from pathlib import Path

    from wavenet_tf.quality_data import render_quality_data

    if args.cpu_minutes <= 0 or args.seconds <= 0 or args.streams < 1 or args.steps_per_epoch < 1:
        return _fail("--cpu-minutes and --seconds must be > 0, --streams and --steps-per-epoch >= 1.")
    settings = RenderSettings(speech=args.speaker_cpu_minutes > 0 or args.mel_cpu_minutes > 0)
    try:
        render_quality_data(Path(args.out) / "data", settings)  # before TensorFlow: a missing tool fails fast
    except QualityDataError as error:
        return _fail(str(error))
    _quiet_tensorflow()
    from wavenet_tf.bench_quality import run_bench_quality

    report = run_bench_quality(args.out, cpu_minutes=args.cpu_minutes, preset=args.preset,
                               steps_per_epoch=args.steps_per_epoch, seconds=args.seconds, streams=args.streams,
                               speaker_cpu_minutes=args.speaker_cpu_minutes, mel_cpu_minutes=args.mel_cpu_minutes,
                               settings=settings, seed=args.seed)
    _write_report(args.json, report)
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


def cmd_train(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose)
    _quiet_tensorflow()
    from pathlib import Path

    from wavenet_tf.train import load_run_config, train

    model_flags = model_overrides(args)
    data_flags = config_overrides(args, DataConfig)
    train_flags = config_overrides(args, TrainConfig)
    if args.mixed_precision:
        train_flags["precision"] = "mixed_bfloat16" if not _has_gpu() else "mixed_float16"
    model = get_preset(args.preset or "small", **model_flags) if (args.preset or model_flags or not args.resume) else None
    data, train_config = DataConfig().replace(**data_flags), TrainConfig().replace(**train_flags)
    if args.resume and (Path(args.out) / "config.json").exists():
        _, saved_data, saved_train, _ = load_run_config(args.out)
        data, train_config = saved_data.replace(**data_flags), saved_train.replace(**train_flags)
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    _setup_logging(False)
    from pathlib import Path

    target = Path(args.target)
    is_bundle = (target / "model.json").is_file()
    if not is_bundle and not (target / "config.json").is_file():
        return _fail(f"{target}: neither a run directory (config.json) nor a bundle (model.json).")
    if args.engine == "keras" and is_bundle:
        return _fail(f"{target} is a bundle: use --engine onnx or --engine step (keras needs the run directory).")
    if args.engine != "keras" and not is_bundle:
        return _fail(f"--engine {args.engine} reads a bundle; export the run first: "
                     f"wavenet export {target} --out {target.parent / (target.name + '-bundle')}")
    from wavenet_tf.core.config import ModelConfig
    from wavenet_tf.data import prepare
    from serving import evaluate as ev

    held_out = None
    if is_bundle:
        # onnx and step engines: onnxruntime and NumPy only, no TensorFlow.
        from serving.bundle import load_bundle
        from serving.card_audio import cleaning_settings

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
        if args.data is None:
            return _fail("a bundle carries no data: pass DATA.")
        data = args.data
    else:
        _quiet_tensorflow()
        from wavenet_tf.train import load_run_config, load_run_model

        model_config, data_config, _, record = load_run_config(target)
        label_names = list(record.get("labels") or [])
        logits_fn = ev.keras_logits_fn(load_run_model(target))
        data = args.data or (held_out := _held_out_manifest(target))
    global_conditioning = bool(model_config.global_conditioning_classes)
    speaker = None
    if args.speaker is not None:
        if not global_conditioning:
            return _fail(f"--speaker: {target} is not globally conditioned.")
        speaker = ev.speaker_id(args.speaker, label_names, model_config.global_conditioning_classes)
    if model_config.local_conditioning_channels:
        _quiet_tensorflow()  # mel frames are computed with tf.signal
    try:
        # Labels map through the model's own table (an unknown one is an error naming the
        # known ones); --speaker scores every file as that class instead.
        prepared = prepare(data, model_config, data_config.replace(val_split=0.0), cache_dir=args.cache_dir,
                           strict=args.strict, split=False,
                           labels=label_names if global_conditioning and speaker is None else None)
    finally:
        if held_out is not None:
            os.unlink(held_out)
    if speaker is not None:
        for track in prepared.tracks:
            track.label_id = speaker
    report = ev.evaluate_tracks(
        logits_fn, prepared.tracks, model_config.receptive_field, model_config.quantization_channels,
        hop_length=model_config.hop_length, global_conditioning=global_conditioning,
        local_conditioning=bool(model_config.local_conditioning_channels),
    )
    report["engine"] = args.engine
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['bits_per_sample']:.4f} bits/sample over {report['num_samples']:,} samples "
              f"in {report['num_files']} files ({args.engine}); unigram baseline {report['unigram_bits']:.4f}, "
              f"uniform {math.log2(model_config.quantization_channels):.4f}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    _setup_logging(False)
    _quiet_tensorflow()
    from export.bundle import export_run

    export_run(args.run, args.out, opset=args.opset, verify=args.verify)
    return 0


def _held_out_manifest(run) -> str:
    """A CSV manifest of the run's validation files (its training files if it has none)."""
    import csv
    import tempfile

    record = json.loads((run / "dataset.json").read_text())
    rows = record["val"] or record["train"]
    handle = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="")
    with handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([row["path"], row["label"]] for row in rows)
    return handle.name


def cmd_generate(args: argparse.Namespace) -> int:
    """Generation needs onnxruntime and NumPy only: no TensorFlow is imported here."""
    from serving.bundle import load_bundle
    from serving.generate import Progress, mel_from_file, resolve_prime, resolve_speaker, to_pcm16
    from serving.native import engine_line
    from serving.streaming_sampler import StreamingSampler

    from serving.limits import check_count, check_output_file, check_positive, check_streams, check_temperature

    # Every number and the output path first: nothing is loaded or allocated for a bad value.
    check_positive(args.seconds, "--seconds")
    check_streams(args.streams)
    check_temperature(args.temperature)
    check_count(args.chunk_size, "--chunk-size")
    check_count(args.threads, "--threads")
    if args.prime_seconds is not None:
        check_positive(args.prime_seconds, "--prime-seconds")
    if args.prime_start is not None and not (math.isfinite(args.prime_start) and args.prime_start >= 0):
        raise ValueError(f"--prime-start must be a finite number of seconds >= 0, got {args.prime_start}.")
    if args.out != "-":
        check_output_file(args.out)
    bundle = load_bundle(args.bundle)
    rate = bundle.card.sample_rate
    try:
        speaker = resolve_speaker(bundle, args.speaker)
    except ValueError as error:
        return _fail(f"--speaker: {args.bundle}: {error}")
    mel = None
    if bundle.local_conditioning:
        if not args.mel_from:
            return _fail(f"{args.bundle} is locally conditioned: pass --mel-from AUDIO (its mel frames drive generation).")
        mel = mel_from_file(bundle, args.mel_from)
    elif args.mel_from:
        return _fail(f"--mel-from: {args.bundle} is not locally conditioned.")
    sampler = StreamingSampler(bundle, streams=args.streams, temperature=args.temperature, seed=args.seed,
                               threads=args.threads, global_ids=None if speaker is None else [speaker] * args.streams,
                               mel=mel, engine=args.engine)
    if not args.quiet:
        print(engine_line(sampler), file=sys.stderr)
    prime, note = resolve_prime(bundle, args.prime, args.streams, args.seed, sampler.global_ids,
                                args.prime_start, args.prime_seconds)
    if note and not args.quiet:
        print(note, file=sys.stderr)
    sampler.prime(prime)
    total = int(round(args.seconds * rate))
    if sampler.max_samples is not None and sampler.t + total > sampler.max_samples:
        left = f"{(sampler.max_samples - sampler.t) / rate:.2f} s left" + (" after the prime" if args.prime else "")
        return _fail(f"--seconds {args.seconds:g} goes past the end of --mel-from's frames ({left}).")
    progress = Progress(total, rate, enabled=not args.quiet)
    done = 0
    if args.out == "-":
        out = sys.stdout.buffer
        try:
            for chunk in sampler.stream(total, args.chunk_size):
                out.write(to_pcm16(chunk))
                out.flush()
                done += chunk.shape[1]
                progress.update(done)
        except BrokenPipeError:
            # The reader stopped (`| head -c 100`, a closed player). Point stdout at /dev/null
            # so the interpreter's final flush cannot fail again with a second message.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            progress.close()
            return _fail(f"--out -: the reader closed the pipe after {done / rate:.2f} s of "
                         f"{total / rate:.2f} s; generation stopped.")
    else:
        import soundfile as sf

        with sf.SoundFile(args.out, "w", samplerate=rate, channels=args.streams, subtype="PCM_16", format="WAV") as wav:
            for chunk in sampler.stream(total, args.chunk_size):
                wav.buffer_write(to_pcm16(chunk), dtype="int16")
                done += chunk.shape[1]
                progress.update(done)
    progress.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serving needs onnxruntime, NumPy, FastAPI and uvicorn: no TensorFlow."""
    from serving.bundle import load_bundle
    from serving.limits import check_api_key, check_count, check_port, check_positive, check_streams
    from serving.server import serve

    # Limits first, with the flags' names; then the bundle: a bad one stops here, before the port opens.
    check_port(args.port)
    check_streams(args.max_streams, "--max-streams")
    check_count(args.queue_limit, "--queue-limit", low=0)
    check_positive(args.max_seconds, "--max-seconds")
    check_positive(args.timeout, "--timeout")
    check_count(args.max_body_bytes, "--max-body-bytes")
    check_count(args.threads, "--threads")
    api_key = args.api_key or os.environ.get("WAVENET_API_KEY") or None
    if api_key is not None:
        check_api_key(api_key, "--api-key" if args.api_key else "WAVENET_API_KEY")
    bundle = load_bundle(args.bundle)
    if args.host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        print(f"warning: serving on {args.host} without an API key: anyone who can reach the port can generate "
              "(set --api-key or WAVENET_API_KEY)", file=sys.stderr)
    serve(bundle, host=args.host, port=args.port, max_streams=args.max_streams, queue_limit=args.queue_limit,
          max_seconds=args.max_seconds, threads=args.threads, max_body_bytes=args.max_body_bytes,
          step_engine=args.engine,
          timeout=args.timeout, api_key=api_key)
    return 0


def cmd_bench_levers(args: argparse.Namespace) -> int:
    from serving.limits import check_count, check_positive
    from serving.bench_levers import run_levers

    check_positive(args.seconds, "--seconds")
    check_count(args.repeats, "--repeats")
    _write_report(args.json, run_levers(args.bundle, audio=args.audio, seconds=args.seconds, repeats=args.repeats))
    return 0


def _write_report(path: str | None, report: dict[str, Any]) -> None:
    """``--json FILE``: the figures a bench printed, as JSON."""
    if path:
        from pathlib import Path

        Path(path).write_text(json.dumps(report, indent=2) + "\n")


def cmd_bench(args: argparse.Namespace) -> int:
    from serving.bench import run_bench
    from serving.limits import check_count, check_positive

    check_positive(args.seconds, "--seconds")
    check_count(args.repeats, "--repeats")
    if args.threads is not None:
        check_count(args.threads, "--threads")
    _write_report(args.json, run_bench(args.bundle, seconds=args.seconds, threads=args.threads, repeats=args.repeats))
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
    # Only the sample rate changes what decoding produces; the architecture flags would not.
    add_config_overrides(inspect, ModelConfig, "model field", only=("sample_rate",))
    add_config_overrides(inspect, DataConfig, "data fields")
    inspect.set_defaults(func=cmd_data_inspect)

    builtin = data_commands.add_parser(
        "builtin", help="write the built-in plucked-string melodies (labelled by instrument)",
        formatter_class=_Formatter,
        description="Synthesize Karplus-Strong melodies into OUT/<instrument>/melody_NN.wav. "
                    "The same arguments always write the same bytes.",
        epilog="examples:\n  wavenet data builtin melodies/\n  wavenet data builtin melodies16k/ --sample-rate 16000 --files 32",
    )
    builtin.add_argument("out", metavar="OUT", help="folder to write")
    builtin.add_argument("--files", type=int, default=16, help="number of melodies")
    builtin.add_argument("--seconds", type=float, default=8.0, help="seconds per melody")
    builtin.add_argument("--sample-rate", type=int, default=16000, help="Hz")
    builtin.add_argument("--seed", type=int, default=0, help="melody seed")
    builtin.set_defaults(func=cmd_data_builtin)

    bench_train = commands.add_parser(
        "bench-train", help="training timesteps/s by preset, XLA and precision",
        formatter_class=_Formatter,
        description="Time training steps of each preset in float32, mixed_bfloat16 and mixed_float16, "
                    "with and without XLA (jit_compile), each in a fresh process.",
        epilog="examples:\n  wavenet bench-train\n  wavenet bench-train --presets small --json",
    )
    bench_train.add_argument("--presets", default="tiny,small", help="comma-separated presets")
    bench_train.add_argument("--batch-size", type=int, default=8, help="windows per step")
    bench_train.add_argument("--target-length", type=int, default=2048, help="predicted samples per window")
    bench_train.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    bench_train.add_argument("--json", action="store_true", help="also print the rows as JSON")
    bench_train.set_defaults(func=cmd_bench_train)

    quality = commands.add_parser(
        "bench-quality", help="real-audio quality: held-out bits/sample vs LPC and unigram, listener measures",
        formatter_class=_Formatter,
        description="Render real instrument audio (music21 pieces through FluidSynth's General-MIDI soundfont; "
                    "some pieces held out) and, with --speaker-cpu-minutes, espeak-ng voices; train the preset "
                    "for a budget of CPU minutes, validating on the held-out pieces every epoch; report "
                    "held-out bits/sample beside the unigram and an order-32 linear-prediction baseline, and "
                    "level, voicing and flatness of generated audio beside the held-out audio's. Writes "
                    "OUT/report.json and a learning-curve plot. Needs `make quality-deps` (fluidsynth, "
                    "fluid-soundfont-gm, espeak-ng) and music21. Run again with the same budget to re-measure "
                    "only; with a larger one to continue training.",
        epilog="examples:\n  wavenet bench-quality                       # 30 CPU-minutes\n"
               "  wavenet bench-quality --cpu-minutes 1 --out /tmp/q --seconds 1\n"
               "  wavenet bench-quality --speaker-cpu-minutes 10 --json q.json",
    )
    quality.add_argument("--out", default="bench_out/quality", help="folder for data, runs, bundles, audio, report")
    quality.add_argument("--cpu-minutes", type=float, default=30.0, help="CPU-time budget of the instrument training")
    quality.add_argument("--speaker-cpu-minutes", type=float, default=0.0,
                         help="CPU-time budget of a speaker-conditioned run on espeak-ng voices (0: skip it)")
    quality.add_argument("--mel-cpu-minutes", type=float, default=0.0,
                         help="CPU-time budget of the mel-conditioned `vocoder` on the voices (0: skip it)")
    quality.add_argument("--preset", default="small", choices=preset_names(), help="model to train")
    quality.add_argument("--steps-per-epoch", type=int, default=25,
                         help="steps between validations (the learning curve's points) and checkpoints")
    quality.add_argument("--seconds", type=float, default=4.0, help="seconds generated per stream")
    quality.add_argument("--streams", type=int, default=4, help="generated streams (each primed from another file)")
    quality.add_argument("--seed", type=int, default=0, help="seed of training windows and sampling")
    quality.add_argument("--json", default=None, metavar="FILE", help="also write the report to FILE")
    quality.set_defaults(func=cmd_bench_quality)

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

    train = commands.add_parser(
        "train", help="train on a folder of audio; resumable run directory",
        formatter_class=_Formatter,
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
    train.set_defaults(func=cmd_train)

    evaluate = commands.add_parser(
        "evaluate", help="bits per sample of a trained model on audio, beside the unigram baseline",
        formatter_class=_Formatter,
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
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--strict", action="store_true", help="any unusable file is an error")
    evaluate.add_argument("--cache-dir", default=None, help="decoded-audio cache")
    evaluate.set_defaults(func=cmd_evaluate)

    export = commands.add_parser(
        "export", help="run -> bundle: SavedModel, wavenet.onnx, step.onnx (+ cond.onnx), model card",
        formatter_class=_Formatter,
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
    export.set_defaults(func=cmd_export)

    generate = commands.add_parser(
        "generate", help="generate audio from a bundle (onnxruntime; no TensorFlow)",
        formatter_class=_Formatter,
        description="Generate with the streaming ring-buffer sampler. Writes 16-bit PCM WAV at the "
                    "model's rate; with --streams N the N independent streams are the N channels of "
                    "one file. --out - writes raw interleaved s16le PCM to stdout as it is generated. "
                    "The same seed gives byte-identical output.",
        epilog="examples:\n  wavenet generate bundles/first --seconds 5 --out five.wav\n"
               "  wavenet generate bundles/first --seconds 30 --out - | aplay -f S16_LE -r 16000\n"
               "  wavenet generate bundles/gc --speaker harp --streams 4 --temperature 0.9 --out four.wav\n"
               "  wavenet generate bundles/first --prime start.flac --prime-start 1.2 --prime-seconds 0.5 "
               "--seconds 3 --out more.wav\n"
               "  wavenet generate bundles/first --prime silence --seconds 3 --out quiet.wav\n"
               "  wavenet generate bundles/voc --mel-from speech.wav --seconds 2 --out vocoded.wav",
    )
    generate.add_argument("bundle", metavar="BUNDLE", help="bundle folder from `wavenet export`")
    generate.add_argument("--seconds", type=float, required=True, help="seconds of audio per stream")
    generate.add_argument("--out", required=True, help="WAV file, or - for raw s16le PCM on stdout")
    generate.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 = most likely class")
    generate.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    generate.add_argument("--prime", default=None, metavar="SOURCE",
                          help="what generation continues from: an audio FILE (its most active receptive field, "
                               "or the part --prime-start/--prime-seconds choose), `silence`, or `excerpt:N` "
                               "(one of the bundle's excerpts); default: one of the bundle's excerpts of the "
                               "training audio per stream (the speaker's; chosen by --seed)")
    generate.add_argument("--prime-start", type=float, default=None, metavar="SECONDS",
                          help="with --prime FILE: the part starts here (default: the most active window)")
    generate.add_argument("--prime-seconds", type=float, default=None, metavar="SECONDS",
                          help="with --prime FILE: the part's length (default: one receptive field, or to the "
                               "end of the file with --prime-start); generation continues from its end")
    generate.add_argument("--speaker", default=None, help="global class id or name (globally conditioned bundles)")
    generate.add_argument("--mel-from", default=None, help="audio file whose mel frames condition generation")
    generate.add_argument("--streams", type=int, default=1, help="independent streams (channels of the WAV)")
    generate.add_argument("--threads", type=int, default=1, help="threads (the native engine splits streams between them)")
    generate.add_argument("--engine", default=None, choices=["auto", "native", "graph"],
                          help="native: step_native.onnx, many samples per call; graph: the standard step.onnx; "
                               "auto (default, or $WAVENET_ENGINE): native when its library loads")
    generate.add_argument("--chunk-size", type=int, default=1024, help="samples per written chunk")
    generate.add_argument("--quiet", action="store_true", help="nothing on stderr but errors (no engine line, progress or notes)")
    generate.set_defaults(func=cmd_generate)

    serve_parser = commands.add_parser(
        "serve", help="HTTP streaming server with a web page (onnxruntime; no TensorFlow)",
        formatter_class=_Formatter,
        description="Serve a bundle: POST /v1/generate streams a WAV as it is generated; concurrent "
                    "requests are generated together in one batched step call; GET / is a web page "
                    "that plays the stream and draws the waveform; GET /docs describes the API (offline).",
        epilog="examples:\n  wavenet serve bundles/first\n  wavenet serve bundles/first --port 9000 --max-streams 16\n"
               "  curl -X POST localhost:8000/v1/generate -H 'Content-Type: application/json' "
               "-d '{\"seconds\": 3}' -o three.wav",
    )
    serve_parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder")
    serve_parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback unless told otherwise)")
    serve_parser.add_argument("--port", type=int, default=8000, help="TCP port")
    serve_parser.add_argument("--max-streams", type=int, default=8, help="requests generated together")
    serve_parser.add_argument("--queue-limit", type=int, default=16, help="requests waiting for a stream; more get 429")
    serve_parser.add_argument("--max-seconds", type=float, default=30.0, help="longest audio one request may ask for")
    serve_parser.add_argument("--threads", type=int, default=1, help="threads (the native engine splits streams between them)")
    serve_parser.add_argument("--engine", default=None, choices=["auto", "native", "graph"],
                              help="step engine, as for generate (default auto: native when its library loads)")
    serve_parser.add_argument("--max-body-bytes", type=int, default=262144,
                              help="largest request body (an uploaded prime_audio clip counts); more gets 413")
    serve_parser.add_argument("--timeout", type=float, default=300.0,
                              help="wall seconds one request may take, queueing included; the stream ends there")
    serve_parser.add_argument("--api-key", default=None,
                              help="require this key (Authorization: Bearer KEY or X-API-Key) for /v1/*; "
                                   "default: the WAVENET_API_KEY environment variable, else none")
    serve_parser.set_defaults(func=cmd_serve)

    bench = commands.add_parser(
        "bench", help="generation speed: 1/8/32 streams, real-time factor, latency, vs naive",
        formatter_class=_Formatter,
        description="Measure the streaming sampler on a bundle: samples/s for 1, 8 and 32 streams, the "
                    "real-time factor, per-chunk latency p50/p99, time to first audio, naive generation's "
                    "samples/s in the same run and the speed-up, and step.onnx's node count.",
        epilog="examples:\n  wavenet bench bundles/small\n  wavenet bench bundles/small --seconds 5 --json bench.json",
    )
    bench.add_argument("bundle", metavar="BUNDLE", help="bundle folder")
    bench.add_argument("--seconds", type=float, default=2.0, help="seconds of audio generated for one stream")
    bench.add_argument("--threads", type=int, default=None,
                       help="threads for 8 and 32 streams (one stream always uses one); default: every core")
    bench.add_argument("--repeats", type=int, default=3, help="alternating rounds; each figure is the best")
    bench.add_argument("--json", default=None, metavar="FILE", help="also write the figures to FILE")
    bench.set_defaults(func=cmd_bench)

    levers = commands.add_parser(
        "bench-levers", help="A/B figures for the speed levers: threads, sessions per core, int8",
        formatter_class=_Formatter,
        description="Measure each performance lever against its baseline in the same run, alternating, "
                    "best of N: onnxruntime threads 1 vs 2, one session vs a session per core for 32 "
                    "streams, where a step's time goes, and dynamic int8 quantization of step.onnx "
                    "(speed, and bits/sample on held-out audio with --audio).",
        epilog="examples:\n  wavenet bench-levers bundles/small\n"
               "  wavenet bench-levers bundles/small --audio held_out/ --json levers.json",
    )
    levers.add_argument("bundle", metavar="BUNDLE", help="bundle folder")
    levers.add_argument("--audio", default=None, metavar="FOLDER",
                        help="held-out .wav/.flac at the bundle's rate, for int8's bits/sample")
    levers.add_argument("--seconds", type=float, default=1.0, help="seconds generated per measurement (and per file)")
    levers.add_argument("--repeats", type=int, default=3, help="alternating rounds; each variant keeps its best")
    levers.add_argument("--json", default=None, metavar="FILE", help="also write the figures to FILE")
    levers.set_defaults(func=cmd_bench_levers)

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
