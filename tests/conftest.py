"""Shared fixtures. TensorFlow is imported once per session; models in tests stay tiny."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def builtin_folder(tmp_path_factory):
    """The built-in melodies, written once for the whole session (8 kHz, 4 files × 2 s)."""
    from wavenet_tf.builtin_data import write_builtin_dataset

    folder = tmp_path_factory.mktemp("builtin")
    write_builtin_dataset(folder, num_files=4, seconds=2.0, sample_rate=8000, seed=0)
    return folder


@pytest.fixture(scope="session")
def speaker_bundle(tmp_path_factory):
    """A bundle folder of a narrow `tiny` with two global classes, "bass" and "harp" (exported once)."""
    from export.bundle import export_run
    from tests.helpers import NARROW, make_run
    from wavenet_tf.core.presets import get_preset

    folder = tmp_path_factory.mktemp("speaker-bundle")
    make_run(folder / "run", get_preset("tiny", **NARROW, global_conditioning_classes=2), ["bass", "harp"])
    export_run(folder / "run", folder / "bundle", log=lambda *_: None)
    return folder / "bundle"


# 120 steps at 1e-2 (about 15 s of training on two busy cores, most of it start-up): enough for
# silence to become a fixed point. 60 steps were not: from silence "bass" still reached −43 dBFS.
TRAINED_STEPS, TRAINED_LEARNING_RATE = 120, 1e-2


@pytest.fixture(scope="session")
def trained_speaker_bundle(tmp_path_factory):
    """A bundle of a narrow `tiny` speaker model ("bass", "harp") trained on the built-in melodies.

    Trained just long enough that, as with real models, digital silence has become a fixed
    point (primed with silence it generates near-silence, −57 to −63 dBFS for "bass"): the model that
    generation-by-default tests need. Exported with its excerpts of the training audio.
    """
    from export.bundle import export_run
    from wavenet_tf.builtin_data import write_builtin_dataset
    from wavenet_tf.core.config import DataConfig, TrainConfig
    from wavenet_tf.core.presets import get_preset
    from wavenet_tf.train import train

    folder = tmp_path_factory.mktemp("trained-speaker")
    write_builtin_dataset(folder / "data", num_files=4, seconds=2.0, sample_rate=8000, seed=0)
    config = get_preset("tiny", residual_channels=8, gate_channels=8, skip_channels=16, global_conditioning_classes=2)
    train(folder / "data", folder / "run", config, DataConfig(target_length=256, batch_size=8, val_split=0.0),
          # The constant rate this model was calibrated with (not the default warm-up and decay).
          TrainConfig(epochs=1, steps_per_epoch=TRAINED_STEPS, learning_rate=TRAINED_LEARNING_RATE,
                      warmup_steps=0, lr_schedule="constant", validation_steps=1, audio_every=0),
          cache_dir=folder / "cache", verbose=0)
    export_run(folder / "run", folder / "bundle", log=lambda *_: None)
    return folder / "bundle"


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    """One loaded bundle per kind of `tests.helpers.CASES`, exported once for the whole session
    (seven modules share them; tests that change a bundle change a copy)."""
    from export.bundle import export_run
    from serving.bundle import load_bundle
    from tests.helpers import CASES, make_run
    from wavenet_tf.core.presets import get_preset

    folder = tmp_path_factory.mktemp("bundles")
    out = {}
    for name, overrides in CASES.items():
        config = get_preset("tiny", **overrides)
        make_run(folder / f"run-{name}", config, [f"c{i}" for i in range(config.global_conditioning_classes)])
        export_run(folder / f"run-{name}", folder / name, log=lambda *_: None)
        out[name] = load_bundle(folder / name)
    return out
