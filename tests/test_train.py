"""Training runs: CLI end to end, TensorBoard and metrics, SIGKILL + resume, refusals, two workers, learning."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from tests.helpers import WAVENET, read_metrics, small_run
from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.apps.cli import main
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.core.presets import get_preset
from wavenet_tf.train import train


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("melodies")
    write_builtin_dataset(folder, num_files=4, seconds=2.0, sample_rate=8000, seed=0)
    return folder


def event_tags(folder):
    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        assert path.stat().st_size > 0
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    return tags


def test_train_writes_a_complete_run_and_evaluate_reads_it(data_dir, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(small_run(data_dir, run, tmp_path / "cache", "--epochs", "2", "--steps-per-epoch", "5",
                          "--audio-every", "1", "--audio-seconds", "0.25")) == 0
    for name in ("config.json", "dataset.json", "state.json", "model_best.keras", "model_last.keras", "metrics.csv"):
        assert (run / name).is_file(), name
    assert list((run / "checkpoints").glob("ckpt-10.index"))
    config = json.loads((run / "config.json").read_text())
    assert {"model", "data", "train", "labels", "data_source", "format_version"} <= set(config)
    assert config["model"]["residual_channels"] == 8 and config["labels"] == ["bass", "harp"]
    rows = read_metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"loss", "bits_per_sample", "accuracy", "val_loss", "val_bits_per_sample", "learning_rate"} <= set(rows[0])
    assert float(rows[-1]["bits_per_sample"]) == pytest.approx(float(rows[-1]["loss"]) / np.log(2), rel=1e-4)
    assert {"epoch_loss", "epoch_bits_per_sample"} <= event_tags(run / "logs" / "train")
    assert "epoch_loss" in event_tags(run / "logs" / "validation")
    assert {"learning_rate", "generated"} <= event_tags(run / "logs" / "samples")
    assert isinstance(keras.saving.load_model(run / "model_best.keras").receptive_field, int)
    capsys.readouterr()

    assert main(["evaluate", str(run), str(data_dir), "--json", "--cache-dir", str(tmp_path / "cache")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0 < report["bits_per_sample"] < 8.5 and 0 < report["unigram_bits"] <= 8
    # 4 files of 2 s at 8 kHz, trimmed a little; each loses receptive_field predictions.
    assert 4 * (16000 - 129) * 0.9 < report["num_samples"] <= 4 * (16000 - 129)
    assert main(["evaluate", str(run), "--json", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert json.loads(capsys.readouterr().out)["num_files"] == 2  # the held-out half

    # The held-out manifest evaluate writes for a run without DATA is removed on every way out,
    # an error after it was written (--speaker of a model without global classes) included.
    import tempfile

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    assert main(["evaluate", str(run), "--speaker", "harp", "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "not globally conditioned" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--json", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert list((tmp_path / "tmp").iterdir()) == []


def test_existing_run_needs_resume_and_a_changed_model_is_refused(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(small_run(data_dir, run, tmp_path / "c", "--epochs", "1", "--steps-per-epoch", "2",
                          "--audio-every", "0")) == 0
    capsys.readouterr()
    assert main(small_run(data_dir, run, tmp_path / "c", "--epochs", "2")) == 2
    assert "--resume" in capsys.readouterr().err
    args = small_run(data_dir, run, tmp_path / "c", "--resume", "--epochs", "2")
    args[args.index("--residual-channels") + 1] = "4"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "refusing to resume" in err and "residual_channels: 8 -> 4" in err
    assert main(["train", "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    # Without --preset, model flags on resume change the run's own model (a `tiny` here): they
    # started from `small`, so the same value was refused for every field tiny and small differ in.
    resume = ["train", "--out", str(run), "--resume", "--cache-dir", str(tmp_path / "c"), "--epochs", "1"]
    capsys.readouterr()
    assert main([*resume, "--residual-channels", "8"]) == 0, capsys.readouterr().err
    assert main([*resume, "--residual-channels", "12"]) == 2
    err = capsys.readouterr().err
    assert "residual_channels: 8 -> 12" in err and "dilations" not in err and "sample_rate" not in err, err


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--global-cond", "--local-cond"])
def test_the_same_conditioned_command_resumes(data_dir, tmp_path, capsys, flag):
    """`--global-cond` settles the class count (and `--local-cond` the mel fields) when a run begins;
    the same command with --resume used to be refused as a changed model (bench-quality's speaker run)."""
    args = small_run(data_dir, tmp_path / "run", tmp_path / "c", flag, "--steps-per-epoch", "1", "--audio-every", "0")
    assert main([*args, "--epochs", "1"]) == 0
    assert main([*args, "--epochs", "2", "--resume"]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "state.json").read_text())["epoch"] == 2


def test_local_cond_decodes_the_data_once_with_the_vocoder_presets_mel(data_dir, tmp_path, monkeypatch, caplog):
    """`--local-cond` used to prepare the data twice (the first time without mel frames) and to
    take 80 bands and upsample scales (4, 8, 8) from constants hidden in `train`."""
    import logging

    from wavenet_tf import data as data_module

    models = []
    prepare = data_module.prepare
    monkeypatch.setattr(data_module, "prepare", lambda source, model, *a, **k: models.append(model) or
                        prepare(source, model, *a, **k))
    config = get_preset("tiny", residual_channels=8, gate_channels=8, skip_channels=16)
    with caplog.at_level(logging.INFO, logger="wavenet_tf"):
        train(data_dir, tmp_path / "run", config, DataConfig(target_length=128, batch_size=2, val_split=0.0),
              TrainConfig(epochs=1, steps_per_epoch=1, validation_steps=1, audio_every=0), local_conditioning=True,
              cache_dir=tmp_path / "cache", verbose=0)
    vocoder = get_preset("vocoder")
    assert len(models) == 1 and models[0].local_conditioning_channels == vocoder.local_conditioning_channels
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert saved["local_conditioning_channels"] == vocoder.local_conditioning_channels
    assert tuple(saved["upsample_scales"]) == vocoder.upsample_scales
    assert "as in the vocoder preset" in caplog.text  # said, not hidden


@pytest.mark.slow
def test_sigkill_and_resume_ends_where_an_uninterrupted_run_ends(data_dir, tmp_path):
    common = ["--epochs", "6", "--steps-per-epoch", "6", "--audio-every", "0", "--seed", "3"]
    reference = tmp_path / "reference"
    assert main(small_run(data_dir, reference, tmp_path / "cache", *common)) == 0

    victim = tmp_path / "victim"
    process = subprocess.Popen([WAVENET, *small_run(data_dir, victim, tmp_path / "cache", *common)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    state_file = victim / "state.json"
    while time.time() < deadline:
        if state_file.exists() and json.loads(state_file.read_text())["epoch"] >= 2:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = json.loads(state_file.read_text())["epoch"]
    assert 2 <= killed_at < 6, "the run finished before it could be killed; make it longer"

    assert main(["train", "--out", str(victim), "--resume", "--cache-dir", str(tmp_path / "cache")]) == 0
    resumed, uninterrupted = read_metrics(victim), read_metrics(reference)
    assert [int(r["epoch"]) for r in resumed] == [1, 2, 3, 4, 5, 6]
    assert float(resumed[-1]["val_loss"]) == pytest.approx(float(uninterrupted[-1]["val_loss"]), rel=1e-3)
    assert float(resumed[-1]["loss"]) == pytest.approx(float(uninterrupted[-1]["loss"]), rel=1e-3)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


WORKER = """
import json, sys
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.core.presets import get_preset
from wavenet_tf.train import train
state = train(sys.argv[1], sys.argv[2], get_preset("tiny", residual_channels=8, gate_channels=8, skip_channels=16),
              DataConfig(target_length=128, batch_size=8, val_split=0.0),
              TrainConfig(epochs=1, steps_per_epoch=3, audio_every=0, strategy="multiworker"),
              cache_dir=sys.argv[3], verbose=0)
print(json.dumps({"replicas": state["replicas"], "per_replica": state["per_replica_batch_size"]}))
"""


@pytest.mark.slow
def test_two_workers_hold_identical_weights_and_split_the_global_batch(data_dir, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    run = tmp_path / "mw"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(data_dir), str(run), str(tmp_path / "cache")],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                 "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    results = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr[-2000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    assert results == [{"replicas": 2, "per_replica": 4}] * 2  # the global batch of 8, split in two
    chief = keras.saving.load_model(run / "model_last.keras")
    other = keras.saving.load_model(run / "worker-1" / "model_last.keras")
    for a, b in zip(chief.weights, other.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert json.loads((run / "state.json").read_text())["step"] == 3


@pytest.mark.slow
def test_a_few_hundred_steps_learn_a_periodic_signal(tmp_path):
    rate = 8000
    t = np.arange(3 * rate) / rate
    folder = tmp_path / "periodic"
    folder.mkdir()
    for i, shift in enumerate((0.0, 0.0013)):
        # The same periodic signal, time-shifted by 10.4 samples, with its own noise. The
        # period (8000 / 210.3 = 38.04 samples) is not a whole number of samples, so the
        # sampling phase drifts and training sees every sub-sample phase, as with real audio.
        # (At 200 Hz the period is exactly 40 samples: the model memorizes 40 class patterns,
        # and the shifted copy costs ~21 bits/sample while training reaches 1.2.)
        signal_ = sum(0.3 / k * np.sin(2 * np.pi * k * 210.3 * (t + shift) + k) for k in range(1, 4))
        signal_ = signal_ + 0.003 * np.random.default_rng(i).normal(size=len(t))
        sf.write(folder / f"tone{i}.wav", signal_.astype(np.float32), rate, subtype="FLOAT")
    state = train(folder, tmp_path / "run", get_preset("tiny", residual_channels=8, gate_channels=8, skip_channels=16),
                  DataConfig(target_length=128, batch_size=8, val_split=0.5),
                  TrainConfig(epochs=3, steps_per_epoch=100, learning_rate=3e-3, validation_steps=4, audio_every=0),
                  cache_dir=tmp_path / "cache", verbose=0)
    from wavenet_tf.core.mu_law import mu_law_encode
    from wavenet_tf.core.bits import unigram_bits

    unigram = unigram_bits(mu_law_encode(sf.read(folder / "tone1.wav", dtype="float32")[0]))
    final = state["history"][-1]["val_bits_per_sample"]
    assert final < 0.5 * unigram, f"validation {final:.2f} bits/sample vs unigram {unigram:.2f}"


def test_max_cpu_minutes_stops_after_the_epoch_that_spends_the_budget(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    budget = ["--epochs", "50", "--steps-per-epoch", "2", "--audio-every", "0", "--max-cpu-minutes", "0.0001"]
    assert main(small_run(data_dir, run, tmp_path / "cache", *budget)) == 0
    state = json.loads((run / "state.json").read_text())
    rows = read_metrics(run)
    assert state["epoch"] == 1 and len(rows) == 1  # one epoch spends far more than 6 ms of CPU
    assert float(rows[0]["cpu_seconds"]) == pytest.approx(state["cpu_seconds"], abs=0.01) and state["cpu_seconds"] > 0
    # Resumed with the same budget there is nothing to do; with a larger one it goes on counting.
    assert main(["train", "--out", str(run), "--resume", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
    assert main(["train", "--out", str(run), "--resume", "--cache-dir", str(tmp_path / "cache"), "--epochs", "2",
                 "--max-cpu-minutes", "0"]) == 0
    rows = read_metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2] and float(rows[1]["cpu_seconds"]) > float(rows[0]["cpu_seconds"])
    capsys.readouterr()
    assert main(small_run(data_dir, tmp_path / "bad", tmp_path / "cache", "--max-cpu-minutes", "-1")) == 2
    assert "max_cpu_minutes must be >= 0" in capsys.readouterr().err


def test_a_cpu_budget_fits_the_cosine_decay_to_itself(data_dir, tmp_path, caplog):
    # `train --max-cpu-minutes` decayed over epochs × steps_per_epoch (2,000 steps here): a budgeted
    # run ended near its peak rate (5.88e-3 of 6e-3 after 30 CPU-minutes of `small`).
    import logging

    run = tmp_path / "run"
    budget = ["--epochs", "1000", "--steps-per-epoch", "2", "--warmup-steps", "2", "--audio-every", "0",
              "--max-cpu-minutes", "0.15"]
    with caplog.at_level(logging.INFO, logger="wavenet_tf"):
        assert main(small_run(data_dir, run, tmp_path / "cache", *budget)) == 0
    import re

    end = int(re.search(r"cosine decay fitted to the CPU budget: it ends at step (\d+)", caplog.text).group(1))
    rows = read_metrics(run)
    rates = [float(row["learning_rate"]) for row in rows]
    assert rates[1] == pytest.approx(6e-3)  # the probe runs at the peak rate
    # The decay ends about where the budget did (the estimate is of CPU time on a shared machine),
    # not at step 2,000, and the rate came down on the way.
    assert 0.5 * int(rows[-1]["step"]) <= end <= 2 * int(rows[-1]["step"]), (end, rows[-1]["step"])
    assert rates[-1] < 0.7 * 6e-3 and rates == sorted(rates, reverse=True), rates
    # config.json keeps the 0 that asks for a fit: a resume with another budget fits its own.
    record = json.loads((run / "config.json").read_text())
    assert record["train"]["decay_steps"] == 0 and record["fitted_decay_steps"] == end


def test_val_data_is_the_validation_set_and_every_data_file_trains(data_dir, tmp_path, capsys):
    held_out = tmp_path / "held_out"
    write_builtin_dataset(held_out, num_files=2, seconds=1.0, sample_rate=8000, seed=5)
    run = tmp_path / "run"
    assert main(small_run(data_dir, run, tmp_path / "cache", "--val-data", str(held_out), "--epochs", "1",
                          "--steps-per-epoch", "2", "--audio-every", "0")) == 0
    record = json.loads((run / "dataset.json").read_text())
    assert len(record["train"]) == 4 and all(Path(r["path"]).is_relative_to(data_dir.resolve()) for r in record["train"])
    assert len(record["val"]) == 2 and all(Path(r["path"]).is_relative_to(held_out.resolve()) for r in record["val"])
    assert json.loads((run / "config.json").read_text())["val_source"] == str(held_out)
    assert "val_loss" in read_metrics(run)[0]
    capsys.readouterr()
    (held_out / "drums").mkdir()
    next(held_out.rglob("*.wav")).rename(held_out / "drums" / "x.wav")
    assert main(small_run(data_dir, tmp_path / "run2", tmp_path / "cache", "--val-data", str(held_out))) == 2
    err = capsys.readouterr().err
    assert "has label 'drums'" in err and "same sub-folder names" in err


def test_val_data_of_training_files_is_refused_and_a_failed_start_leaves_no_folder(data_dir, tmp_path, capsys):
    # Validation = training files was accepted silently; a missing --val-data left an empty --out.
    out = tmp_path / "new" / "runs" / "q"
    assert main(small_run(data_dir, out, tmp_path / "cache", "--val-data", str(data_dir))) == 2
    err = capsys.readouterr().err
    assert "4 of its files are training files too (e.g. " in err and "melody_0" in err, err
    assert main(small_run(data_dir, out, tmp_path / "cache", "--val-data", str(tmp_path / "missing"))) == 2
    assert "missing" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # nothing it created is left
    kept = tmp_path / "kept"
    kept.mkdir()
    assert main(small_run(data_dir, kept, tmp_path / "cache", "--val-data", str(tmp_path / "missing"))) == 2
    assert kept.is_dir()  # a folder that was there before stays
