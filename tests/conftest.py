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
    from tests.test_export import NARROW, make_run
    from wavenet_tf.presets import get_preset

    folder = tmp_path_factory.mktemp("speaker-bundle")
    make_run(folder / "run", get_preset("tiny", **NARROW, global_conditioning_classes=2), ["bass", "harp"])
    export_run(folder / "run", folder / "bundle", log=lambda *_: None)
    return folder / "bundle"
