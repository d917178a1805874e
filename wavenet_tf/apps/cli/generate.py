"""`wavenet generate`: audio from a bundle (onnxruntime and NumPy; no TensorFlow)."""

from __future__ import annotations

import argparse
import math
import os
import sys

from wavenet_tf.apps.cli.common import Formatter, fail
from wavenet_tf.core.sampling import DEFAULT_TEMPERATURE


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    generate = commands.add_parser(
        "generate", help="generate audio from a bundle (onnxruntime; no TensorFlow)",
        formatter_class=Formatter,
        description="Generate with the streaming ring-buffer sampler. Writes 16-bit PCM WAV at the "
                    "model's rate; with --streams N the N independent streams are the N channels of "
                    "one file. --out - writes raw interleaved s16le PCM to stdout as it is generated. "
                    "The same seed gives byte-identical output.",
        epilog="examples:\n  wavenet generate bundles/first --seconds 5 --out five.wav\n"
               "  wavenet generate bundles/first --seconds 30 --out - | aplay -f S16_LE -r 16000\n"
               "  wavenet generate bundles/gc --speaker harp --streams 4 --temperature 0.9 --seconds 3 --out four.wav\n"
               "  wavenet generate bundles/first --top-k 3 --seconds 3 --out narrow.wav\n"
               "  wavenet generate bundles/first --prime start.flac --prime-start 1.2 --prime-seconds 0.5 "
               "--seconds 3 --out more.wav\n"
               "  wavenet generate bundles/first --prime silence --seconds 3 --out quiet.wav\n"
               "  wavenet generate bundles/voc --mel-from speech.wav --seconds 2 --out vocoded.wav",
    )
    generate.add_argument("bundle", metavar="BUNDLE", help="bundle folder from `wavenet export`")
    generate.add_argument("--seconds", type=float, required=True, help="seconds of audio per stream")
    generate.add_argument("--out", required=True, help="WAV file, or - for raw s16le PCM on stdout")
    generate.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                          help="softmax temperature; 0 = most likely class")
    generate.add_argument("--top-k", type=int, default=None, metavar="K",
                          help="draw only from the K most likely of the model's classes (ties at the K-th all kept): "
                               "a draw from the unlikely tail is an error the model then builds on; 0 = every class "
                               "(default: the bundle's, 3 for a model trained with --input-noise, else 0)")
    generate.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    generate.add_argument("--prime", default=None, metavar="SOURCE",
                          help="what generation continues from: an audio FILE (its most active receptive field, "
                               "or the part --prime-start/--prime-seconds choose), `silence`, or `excerpt:N` "
                               "(one of the bundle's excerpts); default: one of the bundle's excerpts of the "
                               "training audio per stream (the speaker's; chosen by --seed)")
    generate.add_argument("--prime-start", type=float, default=None, metavar="SECONDS",
                          help="with --prime FILE: the part starts here, in seconds from the start of the file as "
                               "an editor shows it, leading silence included (default: the most active window)")
    generate.add_argument("--prime-seconds", type=float, default=None, metavar="SECONDS",
                          help="with --prime FILE: the part's length (default: one receptive field, or with "
                               "--prime-start to where the file's sound ends, trailing silence left out as training "
                               "leaves it out); generation continues from its end")
    generate.add_argument("--speaker", default=None, help="global class id or name (globally conditioned bundles)")
    generate.add_argument("--mel-from", default=None, help="audio file whose mel frames condition generation")
    generate.add_argument("--streams", type=int, default=1, help="independent streams (channels of the WAV)")
    generate.add_argument("--threads", type=int, default=1, help="threads (the native engine splits streams between them)")
    generate.add_argument("--engine", default=None, choices=["auto", "native", "graph"],
                          help="native: step_native.onnx, many samples per call; graph: the standard step.onnx; "
                               "auto (default, or $WAVENET_ENGINE): native when its library loads")
    generate.add_argument("--chunk-size", type=int, default=1024, help="samples per written chunk")
    generate.add_argument("--quiet", action="store_true", help="nothing on stderr but errors (no engine line, progress or notes)")
    generate.set_defaults(func=run)
    return generate


def run(args: argparse.Namespace) -> int:
    """Generation needs onnxruntime and NumPy only: no TensorFlow is imported here."""
    from serving.bundle import load_bundle
    from serving.generate import Progress

    _check_flags(args)
    bundle = load_bundle(args.bundle)
    rate = bundle.card.sample_rate
    sampler = _primed_sampler(args, bundle)
    total = int(round(args.seconds * rate))
    if sampler.max_samples is not None and sampler.t + total > sampler.max_samples:
        left = f"{(sampler.max_samples - sampler.t) / rate:.2f} s left" + (" after the prime" if args.prime else "")
        return fail(f"--seconds {args.seconds:g} goes past the end of --mel-from's frames ({left}).")
    progress = Progress(total, rate, enabled=not args.quiet)
    existed = args.out != "-" and os.path.exists(args.out)
    try:
        if args.out == "-":
            return _write_stdout(args, sampler, total, rate, progress)
        _write_wav(args, sampler, total, rate, progress)
    except KeyboardInterrupt:
        # Ctrl-C: one line, not a traceback. The WAV was written under a temporary name, now
        # removed, so an interrupted run leaves no file that looks complete but is not.
        if progress.live and progress.enabled:
            sys.stderr.write("\n")
        where = ("stdout" if args.out == "-" else
                 f"{args.out} left as it was" if existed else f"{args.out} not written")
        print(f"wavenet generate: interrupted after {progress.done / rate:.2f} of {total / rate:.2f} s; {where}",
              file=sys.stderr)
        return 130
    return 0


def _check_flags(args: argparse.Namespace) -> None:
    """Every number and the output path first: nothing is loaded or allocated for a bad value."""
    from serving.limits import (check_count, check_output_file, check_positive, check_streams, check_temperature,
                                check_top_k)

    check_positive(args.seconds, "--seconds")
    check_streams(args.streams)
    check_temperature(args.temperature)
    if args.top_k is not None:
        check_top_k(args.top_k)
    check_count(args.chunk_size, "--chunk-size")
    check_count(args.threads, "--threads")
    if args.prime_seconds is not None:
        check_positive(args.prime_seconds, "--prime-seconds")
    if args.prime_start is not None and not (math.isfinite(args.prime_start) and args.prime_start >= 0):
        raise ValueError(f"--prime-start must be a finite number of seconds >= 0, got {args.prime_start}.")
    if args.out != "-":
        check_output_file(args.out)


def _primed_sampler(args: argparse.Namespace, bundle):
    """The bundle's sampler with the speaker, mel frames and prime the flags ask for (a bad one is a ValueError)."""
    from serving.generate import mel_from_file, resolve_prime, resolve_speaker
    from serving.limits import check_top_k
    from serving.native import NativeUnavailable, engine_line
    from serving.streaming_sampler import StreamingSampler

    try:
        speaker = resolve_speaker(bundle, args.speaker)
    except ValueError as error:
        raise ValueError(f"--speaker: {args.bundle}: {error}") from None
    mel = None
    if bundle.local_conditioning:
        if not args.mel_from:
            raise ValueError(f"{args.bundle} is locally conditioned: pass --mel-from AUDIO (its mel frames drive "
                             "generation).")
        mel = mel_from_file(bundle, args.mel_from)
    elif args.mel_from:
        raise ValueError(f"--mel-from: {args.bundle} is not locally conditioned.")
    if args.top_k is not None:
        check_top_k(args.top_k, bundle.card.quantization_channels)  # its upper bound is the bundle's
    try:
        sampler = StreamingSampler(bundle, streams=args.streams, temperature=args.temperature, seed=args.seed,
                                   threads=args.threads, global_ids=None if speaker is None else [speaker] * args.streams,
                                   mel=mel, engine=args.engine, top_k=args.top_k)
    except NativeUnavailable as error:  # --engine native with a bundle it cannot run (as asked)
        raise ValueError(f"--engine native: {error}") from None
    if not args.quiet:
        print(engine_line(sampler), file=sys.stderr)
    prime, note = resolve_prime(bundle, args.prime, args.streams, args.seed, sampler.global_ids,
                                args.prime_start, args.prime_seconds)
    if note and not args.quiet:
        print(note, file=sys.stderr)
    sampler.prime(prime)
    return sampler


def _write_stdout(args: argparse.Namespace, sampler, total: int, rate: int, progress) -> int:
    """``--out -``: raw interleaved s16le PCM on stdout, flushed chunk by chunk."""
    from serving.generate import to_pcm16

    out, done = sys.stdout.buffer, 0
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
        return fail(f"--out -: the reader closed the pipe after {done / rate:.2f} s of "
                    f"{total / rate:.2f} s; generation stopped.")
    progress.close()
    return 0


def _write_wav(args: argparse.Namespace, sampler, total: int, rate: int, progress) -> None:
    """A 16-bit PCM WAV whose channels are the streams."""
    import soundfile as sf

    from serving.generate import to_pcm16

    from wavenet_tf.core.files import output_file

    done = 0
    # Complete or not at all: an interrupted 300 s request used to replace an existing file
    # with a shorter WAV whose header was correct, so nothing showed it was incomplete.
    with output_file(args.out) as path, sf.SoundFile(path, "w", samplerate=rate, channels=args.streams,
                                                     subtype="PCM_16", format="WAV") as wav:
        for chunk in sampler.stream(total, args.chunk_size):
            wav.buffer_write(to_pcm16(chunk), dtype="int16")
            done += chunk.shape[1]
            progress.update(done)
    progress.close()
