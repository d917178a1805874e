"""What several test modules share: tiny model sizes, a run directory without training, CLI arguments.

Test modules import these from here, never from each other (importing a test module runs its
module-level code and, with pytest, can collect its tests twice).
"""

import csv
import sys
from pathlib import Path

import numpy as np

WAVENET = str(Path(sys.executable).with_name("wavenet"))

# A narrow `tiny`: seconds to build and export.
NARROW = dict(residual_channels=8, gate_channels=8, skip_channels=16, quantization_channels=64)

# The same idea as `wavenet train` flags (a 256-class output: what training tests measure).
NARROW_FLAGS = ["--preset", "tiny", "--residual-channels", "8", "--gate-channels", "8", "--skip-channels", "16"]

# The bundle kinds the streaming tests cover (the `bundles` fixture exports one of each).
CASES = {
    "plain": dict(NARROW),
    "global": dict(NARROW, global_conditioning_classes=3),
    "local": dict(NARROW, local_conditioning_channels=4, upsample_scales=(2, 4)),
    "kernel3": dict(NARROW, kernel_size=3, dilations=(1, 2, 4, 8, 16)),
}


def make_run(folder: Path, config, labels=(), seed=0):
    """A run directory holding an untrained model with livelier weights than Keras' init.

    Written by `wavenet_tf.run_dir`, so it is the format training writes.
    """
    from wavenet_tf.core.config import DataConfig, TrainConfig
    from wavenet_tf.model import WaveNet
    from wavenet_tf.run_dir import write_run_config

    model = WaveNet.from_model_config(config)
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, 0.25, weight.shape).astype(np.float32))
    folder.mkdir(parents=True)
    write_run_config(folder, config, DataConfig(), TrainConfig(), "none", labels)
    model.save(folder / "model_best.keras")
    return model


def small_run(data_dir, run, cache, *extra) -> list[str]:
    """`wavenet train` arguments for a run of seconds on two cores."""
    return ["train", str(data_dir), "--out", str(run), *NARROW_FLAGS, "--target-length", "128", "--batch-size", "4",
            "--validation-steps", "2", "--val-split", "0.5", "--cache-dir", str(cache), *extra]


def read_metrics(run) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))
