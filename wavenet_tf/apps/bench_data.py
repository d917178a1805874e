"""`wavenet bench-data`: is the data pipeline fast enough to keep training busy?

Three figures, all in windows per second on this machine:
1. the pipeline alone (batches pulled as fast as possible);
2. training on one batch held in memory (what the model can consume);
3. training fed from the pipeline (what a real run gets).
If (3) matches (2), the pipeline is not the bottleneck; (1) ÷ (2) is the headroom.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.core.config import DataConfig
from wavenet_tf.data import prepare, window_dataset
from wavenet_tf.model import WaveNet
from wavenet_tf.core.presets import get_preset
from wavenet_tf.train import compile_for_training, training_model


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def run_bench_data(
    source: str | Path | None,
    preset: str = "small",
    data: DataConfig | None = None,
    batches: int = 200,
    train_steps: int = 5,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    for name, value in (("--batches", batches), ("--train-steps", train_steps)):
        if value < 1:
            # fit(steps_per_epoch=0) never ends: refuse instead of hanging.
            raise ValueError(f"{name} must be at least 1, got {value}.")
    data = data or DataConfig()
    scratch = Path(tempfile.mkdtemp(prefix="wavenet-bench-data-"))
    try:
        return _bench(source, preset, data, batches, train_steps, cache_dir, scratch, log)
    finally:
        # The built-in melodies and their decoded copies are this run's scratch, not a cache.
        shutil.rmtree(scratch, ignore_errors=True)


def _bench(source, preset, data, batches, train_steps, cache_dir, scratch, log) -> dict[str, Any]:
    model_config = get_preset(preset)
    if source is None:
        source = scratch / "builtin"
        write_builtin_dataset(source, num_files=16, seconds=8.0, sample_rate=model_config.sample_rate, seed=data.seed)
    prepared = prepare(source, model_config, data, cache_dir=cache_dir or scratch / "cache")
    r, batch_size = model_config.receptive_field, data.batch_size
    window = r + data.target_length

    dataset = window_dataset(prepared.train, r, data.target_length, batch_size,
                             model_config.quantization_channels, seed=data.seed)
    batches_iter = iter(dataset)
    for _ in range(5):
        next(batches_iter)
    started = time.perf_counter()
    for _ in range(batches):
        next(batches_iter)
    pipeline = _rate(batches * batch_size, time.perf_counter() - started)

    trainer = compile_for_training(training_model(WaveNet.from_model_config(model_config)))
    inputs, targets = next(batches_iter)
    for _ in range(2):
        trainer.train_on_batch(inputs, targets)
    started = time.perf_counter()
    for _ in range(train_steps):
        trainer.train_on_batch(inputs, targets)
    in_memory = _rate(train_steps * batch_size, time.perf_counter() - started)

    trainer.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)  # build the fit loop first
    started = time.perf_counter()
    trainer.fit(dataset, steps_per_epoch=train_steps, epochs=1, verbose=0, shuffle=False)
    from_pipeline = _rate(train_steps * batch_size, time.perf_counter() - started)

    report = {
        "preset": preset,
        "window_samples": window,
        "batch_size": batch_size,
        "pipeline_windows_per_sec": round(pipeline, 1),
        "train_windows_per_sec_in_memory": round(in_memory, 2),
        "train_windows_per_sec_from_pipeline": round(from_pipeline, 2),
        "headroom": round(pipeline / in_memory, 1),
    }
    log(f"data pipeline vs. training `{preset}` (windows of {window} samples, batch {batch_size})")
    log(f"  pipeline alone                  {pipeline:10.1f} windows/s")
    log(f"  training, batch held in memory  {in_memory:10.2f} windows/s")
    log(f"  training, fed by the pipeline   {from_pipeline:10.2f} windows/s")
    log(f"  headroom (pipeline / training)  {report['headroom']:10.1f} ×")
    return report
