"""Windows, the training view, bits/sample, sampling and naive generation."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from wavenet_tf.core.mu_law import mu_law_encode
from wavenet_tf.core.sampling import sample_classes
from wavenet_tf.data import window_dataset
from wavenet_tf.core.bits import unigram_bits
from wavenet_tf.metrics import bits_per_sample
from wavenet_tf.model import WaveNet
from wavenet_tf.sampling import naive_generate
from wavenet_tf.train import compile_for_training, training_model


def test_windows_align_inputs_and_targets(rng):
    tracks = [rng.uniform(-1, 1, n).astype("float32") for n in (300, 50, 1000)]
    ds = window_dataset(tracks, receptive_field=20, target_length=10, batch_size=4, seed=7)
    inputs, targets = next(iter(ds))
    audio = inputs["audio"].numpy()
    assert audio.shape == (4, 29) and targets.shape == (4, 10)
    # Target i is the sample after input position receptive_field - 1 + i.
    np.testing.assert_array_equal(audio[:, 20:], targets.numpy()[:, :-1])
    # Every window is a contiguous piece of one track (the 50-sample track never fits).
    encoded = [mu_law_encode(t) for t in tracks]
    for row, target in zip(audio, targets.numpy()):
        window = np.concatenate([row, target[-1:]])
        assert any(
            any(np.array_equal(window, e[s : s + 30]) for s in range(len(e) - 29)) for e in encoded if len(e) >= 30
        )


def test_windows_are_deterministic_under_a_seed(rng):
    tracks = [rng.uniform(-1, 1, 500).astype("float32")]
    take = lambda seed: [b[1].numpy() for b in window_dataset(tracks, 10, 5, 2, seed=seed).take(3)]
    assert all(np.array_equal(a, b) for a, b in zip(take(1), take(1)))
    assert not all(np.array_equal(a, b) for a, b in zip(take(1), take(2)))


def test_windows_longer_than_every_track_is_a_clear_error():
    with pytest.raises(ValueError, match="target-length"):
        window_dataset([np.zeros(100, "float32")], receptive_field=129, target_length=10, batch_size=1)


@pytest.mark.parametrize("overrides", [{}, dict(global_conditioning_classes=3, input_encoding="embedding"),
                                       dict(local_conditioning_channels=4, upsample_scales=(2, 4))],
                         ids=["plain", "global", "local"])
def test_training_view_is_the_full_context_logits_and_shares_weights(overrides):
    """The view skips the head and skips of the context positions: the same numbers as cropping the model's."""
    model = WaveNet.from_preset("tiny", **overrides)
    rng = np.random.default_rng(0)
    for weight in model.trainable_weights:  # lively biases, so a misaligned crop would show
        weight.assign(rng.normal(0, 0.2, weight.shape).astype("float32"))
    view = training_model(model)
    length = model.receptive_field + 31
    inputs = {"audio": rng.integers(0, 256, (2, length)).astype("int32")}
    if overrides.get("global_conditioning_classes"):
        inputs["global_id"] = np.array([0, 2], "int32")
    if overrides.get("local_conditioning_channels"):
        inputs["mel"] = rng.normal(size=(2, length // 8, 4)).astype("float32")
        inputs["audio"] = inputs["audio"][:, : length // 8 * 8]
    out = keras.ops.convert_to_numpy(view(inputs))
    full = keras.ops.convert_to_numpy(model(inputs))
    assert out.shape == (2, inputs["audio"].shape[1] - model.receptive_field + 1, 256)
    np.testing.assert_allclose(out, full[:, model.receptive_field - 1:], rtol=1e-5, atol=1e-5)
    assert {id(w) for w in view.weights} == {id(w) for w in model.weights}


def test_bits_per_sample_is_nats_over_ln2():
    logits = np.zeros((1, 3, 256), "float32")  # uniform over 256 classes
    bits = keras.ops.convert_to_numpy(bits_per_sample(np.zeros((1, 3), "int32"), logits))
    np.testing.assert_allclose(bits, 8.0, rtol=1e-5)
    assert unigram_bits(np.arange(256)) == pytest.approx(8.0)
    assert unigram_bits(np.zeros(10, int)) == 0.0


def test_sample_classes_follows_the_softmax():
    logits = np.log(np.array([[0.1, 0.2, 0.7]]))
    u = np.random.default_rng(0).random(20000)
    drawn = np.array([sample_classes(logits, 1.0, u[i : i + 1])[0] for i in range(0, 20000)])
    np.testing.assert_allclose(np.bincount(drawn, minlength=3) / 20000, [0.1, 0.2, 0.7], atol=0.015)
    assert sample_classes(logits, 0.0, u[:1])[0] == 2  # T -> 0 is argmax
    # Low temperature concentrates the mass on the mode.
    cold = np.array([sample_classes(logits, 0.2, u[i : i + 1])[0] for i in range(2000)])
    assert (cold == 2).mean() > 0.95


def test_a_few_steps_reduce_the_loss_and_naive_generation_is_reproducible(rng):
    keras.utils.set_random_seed(0)
    model = WaveNet.from_preset("tiny", residual_channels=8, gate_channels=8, skip_channels=16)
    t = np.arange(8000) / 8000
    tracks = [(0.5 * np.sin(2 * math.pi * 200 * t)).astype("float32")]
    ds = window_dataset(tracks, model.receptive_field, 64, 8, seed=0)
    trainer = compile_for_training(training_model(model), learning_rate=1e-2)
    history = trainer.fit(ds, epochs=2, steps_per_epoch=15, shuffle=False, verbose=0)
    assert history.history["bits_per_sample"][-1] < history.history["bits_per_sample"][0]
    a = naive_generate(model, 40, temperature=1.0, seed=5)
    b = naive_generate(model, 40, temperature=1.0, seed=5)
    assert a.dtype == np.float32 and a.shape == (40,)
    np.testing.assert_array_equal(a, b)
    primed = naive_generate(model, 10, seed=5, prime=tracks[0][:300])
    assert primed.shape == (10,)


def test_demo_runs_end_to_end_and_writes_a_wav(tmp_path, capsys):
    import soundfile as sf

    from wavenet_tf.apps.demo import run_demo

    wav = run_demo(tmp_path, steps=4, seconds=0.02, seed=0)
    audio, rate = sf.read(wav)
    assert rate == 8000 and len(audio) == 160
    assert (tmp_path / "run" / "model_best.keras").exists()
    assert (tmp_path / "bundle" / "step.onnx").exists()
    # Its last lines say how to do the same from the shell: a real command (it printed a placeholder,
    # `--prime MELODY.wav`) that writes the same bytes.
    import shlex

    from wavenet_tf.apps.cli import main

    line = next(line for line in capsys.readouterr().out.splitlines() if "same from the shell:" in line)
    command = shlex.split(line.split("same from the shell:", 1)[1])
    assert command[:2] == ["wavenet", "generate"] and "MELODY.wav" not in line
    again = tmp_path / "again.wav"
    command[command.index("--out") + 1] = str(again)
    assert main(command[1:] + ["--quiet"]) == 0
    assert again.read_bytes() == wav.read_bytes()


def test_wavenet_demo_with_no_options_trains_the_measured_recipe(monkeypatch, tmp_path):
    # The CLI's --steps once defaulted to 400 while the recipe measured to be pitched is DEMO_STEPS.
    import wavenet_tf.apps.demo as demo
    from wavenet_tf.apps.cli import main

    seen = {}
    monkeypatch.setattr(demo, "run_demo", lambda out, **kw: seen.update(kw, out=out))
    assert main(["demo", "--out", str(tmp_path / "d")]) == 0
    assert seen["steps"] == demo.DEMO_STEPS == 1500 and seen["seconds"] == 2.0 and seen["seed"] == 0
    assert main(["demo", "--out", str(tmp_path / "d"), "--steps", "7"]) == 0 and seen["steps"] == 7


@pytest.mark.slow
def test_self_feed_replaces_its_fraction_of_the_predicted_inputs_with_the_models_draws():
    model = WaveNet.from_preset("tiny")
    rf = model.receptive_field
    audio = np.random.default_rng(0).integers(0, 256, (2, rf + 127)).astype("int32")
    inputs = {"audio": tf.constant(audio)}
    everything = compile_for_training(training_model(model, self_feed=1.0, seed=3))
    fed = everything.self_fed(inputs)["audio"].numpy()
    np.testing.assert_array_equal(fed, everything.self_fed(inputs)["audio"].numpy())  # seeded by (seed, step)
    np.testing.assert_array_equal(fed[:, :rf], audio[:, :rf])  # the context is never touched
    assert np.mean(fed[:, rf:] != audio[:, rf:]) > 0.9  # an untrained model's draws are almost never the data
    quarter = compile_for_training(training_model(model, self_feed=0.25, seed=3)).self_fed(inputs)["audio"].numpy()
    assert 0.15 < np.mean(quarter[:, rf:] != audio[:, rf:]) < 0.3
    targets = tf.constant(np.random.default_rng(1).integers(0, 256, (2, 128)).astype("int32"))  # input RF + T - 1
    history = everything.fit(inputs, targets, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
