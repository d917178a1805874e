"""`wavenet demo` / `make demo`: the whole job on built-in audio, as a user would run it.

built-in melodies -> `train` (a run directory) -> `evaluate` on held-out melodies ->
`export --verify` (a bundle) -> generate with the serving runtime (onnxruntime, the
streaming ring-buffer sampler), checked against naive generation, -> a WAV file.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from export.bundle import export_run
from serving.bundle import load_bundle
from serving.generate import resolve_prime, to_pcm16
from wavenet_tf.core.mu_law import mu_law_encode
from serving.naive import naive_generate_classes
from serving.streaming_sampler import StreamingSampler
from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.core.files import output_file
from wavenet_tf.data import prepare
from serving.evaluate import evaluate_tracks, keras_logits_fn
from wavenet_tf.core.presets import get_preset
from wavenet_tf.quality import listener_measures
from wavenet_tf.run_dir import load_run_model
from wavenet_tf.train import train


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


# The demo's recipe, measured with `wavenet bench-sound` (docs/sound.md). Every field
# here is what makes its audio pitched within a few CPU-minutes; `bench-sound --lever` measures a change.
DEMO_PRESET = "tiny"
DEMO_STEPS = 1500
DEMO_FILES, DEMO_FILE_SECONDS = 8, 4.0


def demo_configs(steps: int = DEMO_STEPS, seed: int = 0, overrides: dict[str, Any] | None = None):
    """The model, data and training configurations `wavenet demo` trains with, then ``overrides`` (by field name)."""
    from wavenet_tf.apps.bench_recipe import split_overrides

    split = split_overrides(overrides or {})
    model = get_preset(DEMO_PRESET).replace(**split["model"])
    # Hold out a quarter of the files (one per instrument): validation measures generalization,
    # not memory. Jittered inputs (each window its own σ up to 6 classes) teach the model that
    # its own draws may be off: it keeps a tone where a clean-trained one amplifies its errors
    # into noise.
    data = DataConfig(target_length=512, batch_size=16, val_split=0.25, seed=seed, input_noise=6.0,
                      input_noise_fraction=1.0).replace(**split["data"])
    epochs = 4
    train_config = TrainConfig(epochs=epochs, steps_per_epoch=max(1, steps // epochs), learning_rate=3e-3,
                               validation_steps=8, audio_every=epochs, audio_seconds=1.0).replace(**split["train"])
    return model, data, train_config


def write_melodies(folder: str | Path, seed: int = 0) -> Path:
    """The demo's built-in melodies in ``folder`` (the same bytes for the same seed)."""
    folder = Path(folder)
    write_builtin_dataset(folder, num_files=DEMO_FILES, seconds=DEMO_FILE_SECONDS,
                          sample_rate=get_preset(DEMO_PRESET).sample_rate, seed=seed)
    return folder


def train_melodies(data: str | Path, run: str | Path, steps: int = DEMO_STEPS, seed: int = 0,
                   overrides: dict[str, Any] | None = None, cache_dir: str | Path | None = None,
                   verbose: str | int = 2) -> dict[str, Any]:
    """Train the demo's recipe on ``data`` into a fresh ``run``; held-out bits/sample and the held-out audio.

    Returns ``{"bits": evaluate's report, "held_out": [(relative path, audio)], "steps": steps run}``.
    """
    run = Path(run)
    if run.exists():
        # A fresh run every time, replacing only a run directory (one `train` wrote: config.json),
        # never a folder of something else that happens to have the name.
        if not (run / "config.json").is_file():
            raise ValueError(f"{run} exists and is not a run directory; choose another --out, or move it away.")
        shutil.rmtree(run)
    model, data_config, train_config = demo_configs(steps, seed, overrides)
    state = train(data, run, model, data_config, train_config, cache_dir=cache_dir, verbose=verbose)
    held_out = prepare(data, model, data_config, cache_dir=cache_dir).val
    report = evaluate_tracks(keras_logits_fn(load_run_model(run)), held_out, model.receptive_field,
                             model.quantization_channels)
    return {"bits": report, "steps": state["step"],
            "held_out": [(Path(t.path).relative_to(Path(data).resolve()).as_posix()
                          if Path(t.path).is_relative_to(Path(data).resolve()) else t.path,
                          np.asarray(t.audio, np.float64)) for t in held_out]}


def run_demo(out: str | Path, steps: int = DEMO_STEPS, seconds: float = 2.0, seed: int = 0) -> Path:
    """Train the demo's recipe for ``steps`` steps, export it, and write ``out/generated.wav``."""
    out = Path(out)
    claim_folder(out)
    started = time.perf_counter()
    rate = get_preset(DEMO_PRESET).sample_rate
    data = write_melodies(out / "data", seed)
    run, bundle_dir = out / "run", out / "bundle"
    print(f"1/4 train `{DEMO_PRESET}` on built-in melodies -> {run}")
    trained = train_melodies(data, run, steps, seed, cache_dir=out / "cache")
    report = trained["bits"]
    print(f"2/4 held-out melodies: {report['bits_per_sample']:.3f} bits/sample "
          f"(unigram baseline {report['unigram_bits']:.3f}, uniform 8.000) over {report['num_samples']:,} samples")

    print(f"3/4 export -> {bundle_dir}")
    export_run(run, bundle_dir, verify=True, log=lambda line: print("    " + line))

    bundle = load_bundle(bundle_dir)
    num_samples = int(seconds * rate)
    # Start as `wavenet generate` does by default: from one of the bundle's excerpts of the
    # training audio (digital silence is a fixed point a trained model happily continues).
    prime, _ = resolve_prime(bundle, None, 1, seed)
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
    naive_generate_classes(bundle, check, uniforms, temperature=sampler.temperature, top_k=sampler.top_k)
    naive = check / (time.perf_counter() - t0)
    fresh = StreamingSampler(bundle, seed=seed)
    fresh.prime(prime)
    reference = naive_generate_classes(bundle, check, uniforms, temperature=sampler.temperature, top_k=sampler.top_k,
                                       prime_classes=mu_law_encode(prime, bundle.card.quantization_channels))
    if not np.array_equal(reference, fresh.generate_classes(check)):  # not an assert: python -O drops those
        raise RuntimeError("the streaming sampler diverged from naive generation; please report this as a bug")
    wav = out / "generated.wav"
    with output_file(wav) as tmp, sf.SoundFile(tmp, "w", samplerate=rate, channels=1, subtype="PCM_16",
                                               format="WAV") as f:  # complete or absent, even after Ctrl-C
        f.buffer_write(to_pcm16(audio), dtype="int16")
    heard = listener_measures(audio[0], rate)
    print(f"4/4 generated {seconds:.1f} s with the streaming sampler (onnxruntime) at {fast:,.0f} samples/s vs "
          f"naive {naive:,.0f} samples/s, identical samples -> {wav}")
    print(f"    level {heard['rms_dbfs']:.1f} dBFS, periodicity {heard['periodicity'] or 0:.2f}, voiced "
          f"{100 * heard['voiced_fraction']:.0f}% of frames (the held-out melodies: "
          f"{_data_line(trained['held_out'], rate)}); drawn at T {sampler.temperature:g}, top-{sampler.top_k}")
    print(f"    same from the shell: wavenet generate {bundle_dir} --seconds {seconds:g} --seed {seed} --out {wav}")
    print(f"    TensorBoard: tensorboard --logdir {run / 'logs'}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return wav


def _data_line(held_out: list[tuple[str, np.ndarray]], rate: int) -> str:
    rows = [listener_measures(audio, rate) for _, audio in held_out]
    level = 10.0 * np.log10(np.mean([10.0 ** (r["rms_dbfs"] / 10.0) for r in rows]))
    periodicity = np.mean([r["periodicity"] or 0.0 for r in rows])
    voiced = np.mean([r["voiced_fraction"] for r in rows])
    return f"{level:.1f} dBFS, periodicity {periodicity:.2f}, voiced {100 * voiced:.0f}%"
