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
