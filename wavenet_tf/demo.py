"""`wavenet demo` / `make demo`: the whole job on built-in audio, as a user would run it.

built-in melodies -> `train` (a run directory) -> `evaluate` on held-out melodies ->
`export --verify` (a bundle) -> generate with the serving runtime (onnxruntime, the
streaming ring-buffer sampler), checked against naive generation, -> a WAV file.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from export.bundle import export_run
from serving.bundle import load_bundle
from serving.generate import to_pcm16
from wavenet_tf.core.mu_law import mu_law_encode
from serving.naive import naive_generate_classes
from serving.streaming_sampler import StreamingSampler
from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.core.files import output_file
from wavenet_tf.data import prepare
from serving.evaluate import evaluate_tracks, keras_logits_fn
from wavenet_tf.core.presets import get_preset
from wavenet_tf.run_dir import load_run_model
from wavenet_tf.train import train


def loudest_start(audio: np.ndarray, length: int) -> int:
    """Where the ``length`` samples of ``audio`` that end at its loudest moment begin."""
    energy = np.convolve(audio.astype(np.float64) ** 2, np.ones(length), mode="valid")
    return int(np.argmax(energy))


def loudest_snippet(audio: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` samples of ``audio`` that end at its loudest moment (a lively prime)."""
    start = loudest_start(audio, length)
    return audio[start : start + length].astype(np.float32)


def shell_prime(path: str, trimmed_start: int, length: int, rate: int, data: DataConfig) -> str:
    """``--prime FILE --prime-start S --prime-seconds T`` naming the part that starts ``trimmed_start``
    samples into the file's cleaned, trimmed audio: `generate` counts on the file's own timeline."""
    from wavenet_tf.core.audio import load_audio, trim_silence

    whole, _ = load_audio(path, rate, trim_top_db=0, trim_frame_length=data.trim_frame_length,
                          remove_dc=data.remove_dc, normalize=data.normalize)
    lead, _ = trim_silence(whole, data.trim_top_db, data.trim_frame_length)
    return f"--prime {path} --prime-start {(lead + trimmed_start) / rate:.6f} --prime-seconds {length / rate:g}"


DEMO_MARKER = ".wavenet-demo"


def claim_folder(out: Path) -> None:
    """Make ``out`` the demo's own folder, or refuse: the demo replaces ``out/run`` and ``out/bundle``.

    A new or empty folder is marked as the demo's (``.wavenet-demo``); a marked folder is
    reused; any other folder with files in it is refused, so nothing the demo did not
    write is ever deleted.
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: a file is in the way; choose a folder.")
    if out.is_dir() and any(out.iterdir()) and not (out / DEMO_MARKER).is_file():
        raise ValueError(f"--out {out} holds files the demo did not write (it would replace {out / 'run'} and "
                         f"{out / 'bundle'}); choose a new or empty folder, e.g. --out {out / 'demo'}.")
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text("written by `wavenet demo`; a later demo may replace run/, bundle/ and data/\n")


def run_demo(out: str | Path, steps: int = 400, seconds: float = 2.0, seed: int = 0) -> Path:
    """Train `tiny` for ``steps`` steps, export it, and write ``out/generated.wav``."""
    out = Path(out)
    claim_folder(out)
    started = time.perf_counter()
    config = get_preset("tiny")
    rate = config.sample_rate
    write_builtin_dataset(out / "data", num_files=8, seconds=4.0, sample_rate=rate, seed=seed)
    # Hold out a quarter of the files (one per instrument): validation measures
    # generalization, not memory.
    data = DataConfig(target_length=512, batch_size=16, val_split=0.25, seed=seed)
    epochs = 4
    run, bundle_dir = out / "run", out / "bundle"
    if run.exists():
        shutil.rmtree(run)  # the demo always starts fresh (claim_folder checked that it wrote it)
    print(f"1/4 train `tiny` on built-in melodies -> {run}")
    train(out / "data", run, config, data,
          TrainConfig(epochs=epochs, steps_per_epoch=max(1, steps // epochs), learning_rate=3e-3,
                      validation_steps=8, audio_every=epochs, audio_seconds=1.0),
          cache_dir=out / "cache", verbose=2)
    model = load_run_model(run)
    held_out = prepare(out / "data", config, data, cache_dir=out / "cache").val
    report = evaluate_tracks(keras_logits_fn(model), held_out, config.receptive_field, config.quantization_channels)
    print(f"2/4 held-out melodies: {report['bits_per_sample']:.3f} bits/sample "
          f"(unigram baseline {report['unigram_bits']:.3f}, uniform 8.000) over {report['num_samples']:,} samples")

    print(f"3/4 export -> {bundle_dir}")
    export_run(run, bundle_dir, verify=True, log=lambda line: print("    " + line))

    bundle = load_bundle(bundle_dir)
    num_samples = int(seconds * rate)
    # Digital silence is a fixed point a trained model happily continues (the melodies end
    # in decaying tails), so start from 50 ms of a held-out melody ending at its loudest.
    length = int(0.05 * rate)
    prime_start = loudest_start(np.asarray(held_out[0].audio), length)
    prime = np.asarray(held_out[0].audio)[prime_start : prime_start + length].astype(np.float32)
    sampler = StreamingSampler(bundle, seed=seed)
    t0 = time.perf_counter()
    sampler.prime(prime)
    chunks = list(sampler.stream(num_samples, chunk_size=1024))
    fast = num_samples / (time.perf_counter() - t0)
    audio = np.concatenate(chunks, axis=1)
    # The streaming sampler must reproduce naive generation sample for sample.
    check = min(200, num_samples)
    uniforms = np.random.default_rng(seed).random((check, 1))
    t0 = time.perf_counter()
    naive_generate_classes(bundle, check, uniforms)
    naive = check / (time.perf_counter() - t0)
    fresh = StreamingSampler(bundle, seed=seed)
    fresh.prime(prime)
    reference = naive_generate_classes(bundle, check, uniforms,
                                       prime_classes=mu_law_encode(prime, config.quantization_channels)[None])
    if not np.array_equal(reference, fresh.generate_classes(check)):  # not an assert: python -O drops those
        raise RuntimeError("the streaming sampler diverged from naive generation; please report this as a bug")
    wav = out / "generated.wav"
    with output_file(wav) as tmp, sf.SoundFile(tmp, "w", samplerate=rate, channels=1, subtype="PCM_16",
                                               format="WAV") as f:  # complete or absent, even after Ctrl-C
        f.buffer_write(to_pcm16(audio), dtype="int16")
    print(f"4/4 generated {seconds:.1f} s with the streaming sampler (onnxruntime) at {fast:,.0f} samples/s vs "
          f"naive {naive:,.0f} samples/s, identical samples -> {wav}")
    print(f"    peak {np.abs(audio).max():.2f}, RMS {np.sqrt(np.mean(audio ** 2)):.3f}; primed with 50 ms of a held-out melody")
    print(f"    same from the shell: wavenet generate {bundle_dir} --seconds {seconds:g} --seed {seed} "
          f"{shell_prime(held_out[0].path, prime_start, length, rate, data)} --out {wav}")
    print(f"    TensorBoard: tensorboard --logdir {run / 'logs'}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return wav
