"""The training recipe: its config fields, the learning-rate schedule, clipping, resume, and `wavenet bench-recipe`."""

import json
import math

import keras
import numpy as np
import pytest

from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.apps.cli import build_parser, main
from wavenet_tf.apps.cli.common import config_overrides
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.core.presets import get_preset
from wavenet_tf.apps.bench_recipe import parse_lever, split_overrides
from wavenet_tf.recipe import PROBE_EPOCHS, WarmupDecay, budget_decay_steps, learning_rate, make_optimizer
from wavenet_tf.train import train

NARROW = dict(residual_channels=8, gate_channels=8, skip_channels=16)


@pytest.mark.parametrize("kwargs, message", [
    ({"warmup_steps": -1}, "TrainConfig.warmup_steps"),
    ({"warmup_steps": 2.5}, "TrainConfig.warmup_steps"),
    ({"decay_steps": -3}, "TrainConfig.decay_steps"),
    ({"lr_schedule": "step"}, "TrainConfig.lr_schedule"),
    ({"final_lr_fraction": 1.5}, "TrainConfig.final_lr_fraction"),
    ({"final_lr_fraction": float("nan")}, "TrainConfig.final_lr_fraction"),
    ({"clip_norm": -1.0}, "TrainConfig.clip_norm"),
    ({"clip_norm": float("inf")}, "TrainConfig.clip_norm"),
    # A decay that ends before the warm-up does.
    ({"lr_schedule": "cosine", "warmup_steps": 50, "decay_steps": 50}, "TrainConfig.decay_steps .* must exceed"),
])
def test_new_train_fields_are_validated_and_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_recipe_fields_round_trip_and_come_as_train_flags():
    config = TrainConfig(warmup_steps=10, lr_schedule="cosine", decay_steps=100, final_lr_fraction=0.05,
                         clip_norm=1.0)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    args = build_parser().parse_args(["train", "data", "--out", "run", "--warmup-steps", "10", "--lr-schedule",
                                      "cosine", "--decay-steps", "100", "--final-lr-fraction", "0.05",
                                      "--clip-norm", "1"])
    assert TrainConfig().replace(**config_overrides(args, TrainConfig)) == config


def test_warmup_ramps_linearly_and_cosine_ends_at_the_final_fraction():
    schedule = WarmupDecay(1e-3, warmup_steps=10, decay_steps=110, final_fraction=0.1, kind="cosine")
    rate = lambda step: float(schedule(step))
    assert [rate(s) for s in (0, 4, 9)] == pytest.approx([1e-4, 5e-4, 1e-3])
    assert rate(60) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half-way down the cosine
    assert rate(110) == pytest.approx(1e-4) and rate(5000) == pytest.approx(1e-4)  # and it stays there
    rates = [rate(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    constant = WarmupDecay(2e-3, warmup_steps=4, kind="constant")
    assert [float(constant(s)) for s in (0, 3, 1000)] == pytest.approx([5e-4, 2e-3, 2e-3])


def test_decay_steps_zero_means_the_whole_run():
    config = TrainConfig(epochs=4, steps_per_epoch=25, learning_rate=1e-3, warmup_steps=0, lr_schedule="cosine",
                         final_lr_fraction=0.2)
    schedule = learning_rate(config)
    assert schedule.decay_steps == 100
    assert float(schedule(100)) == pytest.approx(2e-4)
    plain = TrainConfig(lr_schedule="constant", warmup_steps=0)
    assert learning_rate(plain) == plain.learning_rate  # nothing scheduled: a plain rate


def test_a_run_shorter_than_the_warmup_warms_up_for_half_its_steps():
    short = learning_rate(TrainConfig(epochs=1, steps_per_epoch=10, learning_rate=1e-3, warmup_steps=25,
                                      lr_schedule="cosine"))
    assert short.warmup_steps == 5 and short.decay_steps == 10
    assert float(short(4)) == pytest.approx(1e-3) and float(short(10)) == pytest.approx(1e-4)
    # An explicit decay_steps keeps the whole warm-up.
    assert learning_rate(TrainConfig(warmup_steps=25, lr_schedule="cosine", decay_steps=30)).warmup_steps == 25


def test_clipping_clips_the_gradient_adam_sees():
    # Adam divides by sqrt(v): scaling a gradient hardly moves its update, unless the scaled
    # gradient nears epsilon (1e-7). Clipped to 1e-9 it does; unclipped the step is ~lr.
    def first_step(clip_norm):
        variable = keras.Variable(np.zeros(4, "float32"))
        optimizer = make_optimizer(TrainConfig(learning_rate=1e-2, warmup_steps=0, lr_schedule="constant",
                                               clip_norm=clip_norm))
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.full(4, 100.0, "float32")), variable)])
        return np.abs(keras.ops.convert_to_numpy(variable))

    assert first_step(0.0) == pytest.approx(np.full(4, 1e-2), rel=1e-3)
    assert (first_step(1e-9) < 1e-3).all()


def test_budget_decay_steps_end_the_decay_with_the_budget():
    history = [{"step": 25, "cpu_seconds": 40.0}, {"step": 50, "cpu_seconds": 70.0}]  # 1.2 s per step after tracing
    # 300 s budget: 230 s left = 191.7 steps = 8 epochs of 25 (rounded up) after step 50.
    assert budget_decay_steps(history, 5.0, 25) == 50 + 8 * 25
    assert budget_decay_steps(history[:1], 0.5, 25) == 50  # spent already: one more epoch at most
    assert budget_decay_steps(history[:1], 0.5, 25, warmup_steps=80) == 81  # never inside the warm-up
    # The next session traces again: what the first epoch cost beyond its steps (here 100 s) is set aside.
    traced = [{"step": 25, "cpu_seconds": 130.0}, {"step": 50, "cpu_seconds": 160.0}]
    assert budget_decay_steps(traced, 5.0, 25) == 50 + 2 * 25  # 40 s left, not 140 s


@pytest.fixture(scope="module")
def melodies(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    write_builtin_dataset(root / "d" / "train", num_files=4, seconds=1.0, sample_rate=8000, seed=0)
    write_builtin_dataset(root / "d" / "heldout", num_files=2, seconds=1.0, sample_rate=8000, seed=9)
    return root


def _run(melodies, run, epochs, resume=False, **train_fields):
    config = TrainConfig(epochs=epochs, steps_per_epoch=3, validation_steps=1, audio_every=0, **train_fields)
    return train(melodies / "d" / "train", run, get_preset("tiny", **NARROW),
                 DataConfig(target_length=64, batch_size=2, val_split=0.0), config, resume=resume,
                 cache_dir=melodies / "cache", val_source=melodies / "d" / "heldout", verbose=0)


@pytest.mark.slow
def test_resume_continues_the_schedule_at_its_step(melodies, tmp_path):
    schedule = dict(learning_rate=1e-2, warmup_steps=2, lr_schedule="cosine", decay_steps=6, final_lr_fraction=0.1)
    whole = _run(melodies, tmp_path / "whole", 2, **schedule)
    _run(melodies, tmp_path / "split", 1, **schedule)
    resumed = _run(melodies, tmp_path / "split", 2, resume=True, **schedule)
    rates = [row["learning_rate"] for row in resumed["history"]]
    expected = WarmupDecay(1e-2, 2, 6, 0.1, "cosine")
    # After epoch 2 the optimizer has taken 6 steps: the decayed rate, not step 3's again.
    assert rates == pytest.approx([float(expected(3)), float(expected(6))])
    assert rates[1] == pytest.approx(1e-3) and rates[0] > 2 * rates[1]
    assert rates == pytest.approx([row["learning_rate"] for row in whole["history"]])
    assert resumed["history"][-1]["loss"] == pytest.approx(whole["history"][-1]["loss"], rel=1e-4)


@pytest.mark.slow
def test_a_bfloat16_run_does_not_leave_its_policy_to_the_next_run(melodies, tmp_path):
    _run(melodies, tmp_path / "bf16", 1, precision="mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    _run(melodies, tmp_path / "f32", 1)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_levers_are_routed_to_the_config_that_owns_each_field():
    name, overrides = parse_lever("mix:learning_rate=2e-3,target_length=4096,input_encoding=embedding")
    assert name == "mix" and overrides == {"learning_rate": 2e-3, "target_length": 4096, "input_encoding": "embedding"}
    assert split_overrides(overrides) == {"model": {"input_encoding": "embedding"}, "data": {"target_length": 4096},
                                          "train": {"learning_rate": 2e-3}}
    with pytest.raises(ValueError, match="'lerning_rate' is not a ModelConfig"):
        parse_lever("typo:lerning_rate=1")
    with pytest.raises(ValueError, match="NAME:field=value"):
        parse_lever("no-fields")


def test_bench_recipe_argument_errors_are_one_line(melodies, tmp_path, capsys):
    assert main(["bench-recipe", "--out", str(tmp_path / "o"), "--levers", "baseline,nope"]) == 2
    assert "unknown lever 'nope'" in capsys.readouterr().err
    assert main(["bench-recipe", "--out", str(tmp_path / "o"), "--lever", "x:batch=3"]) == 2
    assert "'batch' is not a ModelConfig" in capsys.readouterr().err
    assert main(["bench-recipe", "--out", str(tmp_path / "o"), "--data", str(tmp_path)]) == 2
    assert "train/ and heldout/" in capsys.readouterr().err
    assert main(["bench-recipe", "--cpu-minutes", "0"]) == 2
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_bench_recipe_measures_each_lever_against_the_baseline(melodies, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["bench-recipe", "--out", str(out), "--data", str(melodies / "d"), "--preset", "tiny",
            "--cpu-minutes", "0.1", "--steps-per-epoch", "2", "--levers", "warmup-cosine",
            "--base", "target_length=128,batch_size=2,validation_steps=1,lr_schedule=constant,warmup_steps=0",
            "--lever", "clip:clip_norm=0.5", "--report", str(tmp_path / "r.json")]
    assert main(argv) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert list(report["levers"]) == ["baseline", "warmup-cosine", "clip"]  # the baseline is always measured
    for name, row in report["levers"].items():
        assert row["held_out"]["overall"]["bits_per_sample"] > 0 and row["steps"] >= 2, name
        assert (out / "runs" / name / "result.json").is_file()
    saved = json.loads((out / "runs" / "clip" / "config.json").read_text())
    assert saved["data"]["target_length"] == 128  # --base applies to every run
    assert saved["train"]["clip_norm"] == 0.5 and saved["train"]["max_cpu_minutes"] == 0.1
    # The cosine run probed its CPU per step, then fitted the decay to the budget, and the
    # report says what the run recorded. On a slow or shared machine the probe alone can spend
    # 0.1 CPU-minutes (tracing is most of it): then nothing was fitted and the report says 0.
    cosine = report["levers"]["warmup-cosine"]
    fitted = json.loads((out / "runs" / "warmup-cosine" / "config.json").read_text()).get("fitted_decay_steps", 0)
    assert cosine["decay_steps"] == fitted and report["levers"]["baseline"]["decay_steps"] == 0
    if cosine["steps"] > PROBE_EPOCHS * 2:  # it went on past the probe: with a decay fitted to the budget
        assert 4 <= fitted < 1000
    assert "warmup-cosine" in capsys.readouterr().out
    assert main(argv) == 0  # measured already: read back, not retrained
    assert "measured already" in capsys.readouterr().out
