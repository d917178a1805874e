"""The quality benchmark's driver on the built-in melodies with `tiny` (the real data needs fluidsynth)."""

import json

import numpy as np
import pytest

from wavenet_tf.apps.bench_quality import (
    generate_and_measure, held_out_bits, learning_curve, speaker_bits, train_budgeted,
)
from wavenet_tf.builtin_data import write_builtin_dataset


@pytest.fixture(scope="module")
def spent_run(tmp_path_factory):
    """`tiny` trained on 4 melodies until a 0.001 CPU-minute budget stops it after one epoch."""
    root = tmp_path_factory.mktemp("quality")
    write_builtin_dataset(root / "train", num_files=4, seconds=1.0, sample_rate=8000, seed=0)
    write_builtin_dataset(root / "heldout", num_files=2, seconds=1.0, sample_rate=8000, seed=9)
    state = train_budgeted(root / "train", root / "heldout", root / "run", "tiny", 0.001, 2, root / "cache",
                           global_conditioning=True)
    return root, state


def test_the_budget_stops_training_and_a_second_call_trains_no_further(spent_run):
    root, state = spent_run
    assert state["epoch"] == 1 and state["step"] == 2 and state["cpu_seconds"] > 0
    again = train_budgeted(root / "train", root / "heldout", root / "run", "tiny", 0.001, 2, root / "cache",
                           global_conditioning=True)
    assert again["step"] == 2
    curve = learning_curve(root / "run")
    assert len(curve) == 1 and curve[0]["val_bits_per_sample"] > 0 and curve[0]["cpu_minutes"] > 0


def test_held_out_bits_agree_with_wavenet_evaluate_and_score_the_same_targets(spent_run):
    from serving import evaluate as ev
    from wavenet_tf.core.config import DataConfig
    from wavenet_tf.data import prepare
    from wavenet_tf.run_dir import load_run_config, load_run_model

    root, _ = spent_run
    bits = held_out_bits(root / "run", root / "heldout", root / "cache", global_conditioning=True)
    model_config, _, _, _ = load_run_config(root / "run")
    tracks = prepare(root / "heldout", model_config, DataConfig(val_split=0.0), cache_dir=root / "cache").tracks
    reference = ev.evaluate_tracks(ev.keras_logits_fn(load_run_model(root / "run", "last")), tracks,
                                   model_config.receptive_field, model_config.quantization_channels,
                                   global_conditioning=True)
    overall = bits["overall"]
    assert overall["bits_per_sample"] == pytest.approx(reference["bits_per_sample"], rel=1e-6)
    assert overall["num_samples"] == reference["num_samples"]
    assert set(bits["per_label"]) == {"bass", "harp"}
    # Plucked strings are predictable: linear prediction beats the unigram by far.
    assert overall["lpc_bits"] < overall["unigram_bits"] - 1.0
    assert json.dumps(bits)  # the report is plain JSON


def test_speaker_bits_score_every_file_with_every_speaker(spent_run):
    root, _ = spent_run
    report = speaker_bits(root / "run", root / "heldout", root / "cache")
    assert len(report["files"]) == 2
    for row in report["files"]:
        assert set(row["bits"]) == {"bass", "harp"}
    right = np.mean([row["bits"][row["speaker"]] for row in report["files"]])
    assert report["right_speaker_bits"] == pytest.approx(right)


def test_generation_is_measured_unprimed_and_primed_and_written(spent_run, tmp_path):
    from export.bundle import export_run

    root, _ = spent_run
    export_run(root / "run", tmp_path / "bundle", log=lambda *_: None)
    held_out = [np.sin(np.arange(8000) * 0.2) * 0.5, np.sin(np.arange(8000) * 0.3) * 0.5]
    result = generate_and_measure(tmp_path / "bundle", held_out, seconds=0.25, streams=2, out=tmp_path / "wav",
                                  global_ids=[0, 1])
    for mode in ("unprimed", "primed"):
        assert len(result[mode]["streams"]) == 2 and result[mode]["mean"]["count"] == 2
        assert (tmp_path / "wav" / f"{mode}-1.wav").is_file()
    assert min(result["prime_rms_dbfs"]) > -10  # the middle of a half-scale sine, not silence


def test_primes_come_from_the_middle_of_a_file_not_its_fade_out():
    from wavenet_tf.apps.bench_quality import _middle

    audio = np.concatenate([np.ones(100), np.zeros(100)])  # loud, then a silent tail
    assert np.array_equal(_middle(audio, 50), np.ones(50))
    assert np.array_equal(_middle(np.ones(10), 16), np.concatenate([np.zeros(6), np.ones(10)]))
