"""`wavenet demo` / `make demo`: built-in audio -> a short training -> a generated WAV."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import soundfile as sf

from serving.mu_law import mu_law_encode
from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.config import DataConfig
from wavenet_tf.data import prepare, window_dataset
from wavenet_tf.metrics import unigram_bits
from wavenet_tf.model import WaveNet
from wavenet_tf.presets import get_preset
from wavenet_tf.sampling import naive_generate
from wavenet_tf.train import compile_for_training, training_model


def run_demo(out: str | Path, steps: int = 400, seconds: float = 2.0, seed: int = 0) -> Path:
    """Train `tiny` on built-in melodies for ``steps`` steps and write ``out/generated.wav``."""
    out = Path(out)
    started = time.perf_counter()
    config = get_preset("tiny")
    rate = config.sample_rate
    write_builtin_dataset(out / "data", num_files=8, seconds=4.0, sample_rate=rate, seed=seed)
    # Hold out a quarter of the files (one per instrument): validation measures
    # generalization, not memory.
    data = DataConfig(target_length=512, batch_size=16, val_split=0.25, seed=seed)
    prepared = prepare(out / "data", config, data, cache_dir=out / "cache")
    train_tracks, val_tracks = prepared.train, prepared.val
    summary = prepared.summary()
    print(f"data: {summary['num_usable']} built-in melodies, {summary['total_seconds']:.0f} s at {rate} Hz "
          f"({len(train_tracks)} train / {len(val_tracks)} validation files) -> {out / 'data'}")

    keras.utils.set_random_seed(seed)
    model = WaveNet.from_model_config(config)
    r = model.receptive_field
    train = window_dataset(train_tracks, r, data.target_length, data.batch_size,
                           quantization_channels=config.quantization_channels, seed=seed)
    val = window_dataset(val_tracks, r, data.target_length, data.batch_size,
                         quantization_channels=config.quantization_channels, seed=seed + 1).take(8)
    trainer = compile_for_training(training_model(model), learning_rate=3e-3)
    epochs = 4
    history = trainer.fit(train, epochs=epochs, steps_per_epoch=max(1, steps // epochs), validation_data=val,
                          shuffle=False, verbose=2)  # windows are drawn at random positions already
    val_bits = history.history["val_bits_per_sample"][-1]
    baseline = unigram_bits(np.concatenate([mu_law_encode(t.audio) for t in val_tracks]), config.quantization_channels)
    print(f"validation: {val_bits:.3f} bits/sample (unigram baseline {baseline:.3f}, uniform 8.000)")
    model.save(out / "model.keras")

    num_samples = int(seconds * rate)
    t0 = time.perf_counter()
    audio = naive_generate(model, num_samples, temperature=1.0, seed=seed)
    rate_naive = num_samples / (time.perf_counter() - t0)
    wav = out / "generated.wav"
    sf.write(wav, audio, rate, subtype="PCM_16")
    print(f"generated {seconds:.1f} s with naive generation at {rate_naive:.0f} samples/s -> {wav}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return wav
