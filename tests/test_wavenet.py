"""The defining properties of the model: causality, receptive field, serialization."""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from wavenet_tf.core.config import ModelConfig
from wavenet_tf.model import WaveNet
from wavenet_tf.core.presets import get_preset

# Small channel counts keep deep presets cheap while keeping their exact structure.
NARROW = dict(residual_channels=4, gate_channels=4, skip_channels=8, quantization_channels=16)


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build layers under another global dtype policy, then restore the previous one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _inputs(config: ModelConfig, audio: np.ndarray, rng) -> dict:
    batch, time = audio.shape
    inputs = {"audio": audio}
    if config.global_conditioning_classes:
        inputs["global_id"] = rng.integers(0, config.global_conditioning_classes, batch).astype("int32")
    if config.local_conditioning_channels:
        frames = time // config.hop_length
        inputs["mel"] = rng.normal(size=(batch, frames, config.local_conditioning_channels)).astype("float32")
    return inputs


def _logits(model, inputs):
    return model.predict(inputs, verbose=0)


def test_future_inputs_leave_past_logits_unchanged(rng):
    model = WaveNet.from_preset("tiny")
    audio = rng.integers(0, 256, (2, 400)).astype("int32")
    reference = _logits(model, {"audio": audio})
    for t0 in (1, 57, 200, 399):
        changed = audio.copy()
        changed[:, t0:] = rng.integers(0, 256, changed[:, t0:].shape)
        np.testing.assert_array_equal(_logits(model, {"audio": changed})[:, :t0], reference[:, :t0])


@pytest.mark.parametrize(
    "preset, overrides",
    [
        ("tiny", {}),
        ("tiny", dict(global_conditioning_classes=3)),
        ("tiny", dict(input_encoding="embedding", initial_kernel_size=3)),
        ("tiny", dict(kernel_size=3, dilations=(1, 2, 4, 8))),
    ],
    ids=["tiny", "global-cond", "embedding-width3", "kernel-3"],
)
def test_receptive_field_by_perturbation(rng, preset, overrides):
    """Changing input t0-R+1 changes logit t0; changing t0-R does not change it at all."""
    config = get_preset(preset, **overrides)
    model = WaveNet.from_model_config(config)
    r = config.receptive_field
    t0 = r + 20
    audio = rng.integers(0, config.quantization_channels, (1, t0 + 5)).astype("int32")
    inputs = _inputs(config, audio, rng)
    reference = _logits(model, inputs)[0, t0]

    def logit_at_t0_after_changing(position):
        poked = dict(inputs, audio=audio.copy())
        poked["audio"][0, position] = (audio[0, position] + 1) % config.quantization_channels
        return _logits(model, poked)[0, t0]

    assert np.abs(logit_at_t0_after_changing(t0 - r + 1) - reference).max() > 0, "oldest sample in the field ignored"
    assert np.abs(logit_at_t0_after_changing(t0) - reference).max() > 0, "current sample ignored"
    np.testing.assert_array_equal(logit_at_t0_after_changing(t0 - r), reference)


@pytest.mark.parametrize(
    "preset, overrides",
    [
        ("small", {}),
        ("small", NARROW),
        ("ibab", NARROW),
        ("vocoder", dict(NARROW, local_conditioning_channels=0, upsample_scales=())),
    ],
    ids=["small", "small-structure", "ibab-structure", "vocoder-structure"],
)
def test_receptive_field_by_gradient_for_deep_stacks(rng, preset, overrides):
    """The same boundary for deep stacks, shown by d logit[t0] / d input[t] in float64.

    The oldest sample reaches the output only through every layer's past tap, a product
    of 20–50 per-layer gains. At random one-hot inputs the gates of a deep stack partly
    saturate (tanh' == 0 exactly) and the product falls below 1e-38, where TensorFlow's
    CPU kernels flush it to zero, so a perturbation test changes nothing visible (measured
    for `small`: ~1e-12 of a logit). Near zero input the gates are linear (tanh' = 1,
    sigmoid = 1/2) and the product stays measurable: ~1e-12 for `small`, ~1e-29 for 50
    narrow layers. So the gradient is taken there, after the one-hot encoding: nonzero for
    every t in [t0 - R + 1, t0], exactly zero elsewhere.

    The initial weights are seeded here rather than drawn from whatever random state earlier
    tests left: in one full run (after new training tests had reseeded Keras) `small`'s
    gradient came out zero everywhere, while the same test alone passed.
    """
    keras.utils.set_random_seed(0)
    with dtype_policy("float64"):
        config = get_preset(preset, **overrides)
        model = WaveNet.from_model_config(config)
        after_one_hot = keras.Model(model.get_layer("initial_conv").input, model.output)
        r, q = config.receptive_field, config.quantization_channels
        t0 = r + 5
        x = tf.constant(1e-3 * rng.normal(size=(1, t0 + 3, q)))
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(after_one_hot(x)[0, t0])
        magnitude = np.abs(tape.gradient(total, x).numpy()[0]).max(axis=-1)
    assert np.all(magnitude[t0 - r + 1 : t0 + 1] > 1e-35), "a sample inside the receptive field has no influence"
    assert np.all(magnitude[: t0 - r + 1] == 0), "a sample before the receptive field has influence"
    assert np.all(magnitude[t0 + 1 :] == 0), "the future has influence"


@pytest.mark.parametrize("preset, field", [("tiny", 129), ("small", 2048), ("realtime", 1025), ("ibab", 5117)])
def test_preset_receptive_fields(preset, field):
    assert get_preset(preset).receptive_field == field


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"global_conditioning_classes": 4},
        {"local_conditioning_channels": 6, "upsample_scales": (2, 4)},
        {"global_conditioning_classes": 2, "local_conditioning_channels": 3, "upsample_scales": (8,),
         "input_encoding": "embedding"},
        {"input_encoding": "one_hot_amplitude"},
    ],
    ids=["plain", "global", "local", "both-embedding", "one-hot-amplitude"],
)
def test_keras_save_load_identical_outputs(rng, tmp_path, overrides):
    config = get_preset("tiny", **overrides)
    model = WaveNet.from_model_config(config)
    audio = rng.integers(0, 256, (2, 160)).astype("int32")
    inputs = _inputs(config, audio, rng)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, WaveNet)
    assert loaded.model_config == config
    assert WaveNet.from_config(model.get_config()).model_config == config
    np.testing.assert_array_equal(_logits(loaded, inputs), _logits(model, inputs))


def test_one_hot_amplitude_input_is_a_fixed_table_that_training_leaves_alone(rng):
    model = WaveNet.from_preset("tiny", input_encoding="one_hot_amplitude")
    table = model.input_embedding.embeddings.numpy()
    assert table.shape == (256, 258)
    np.testing.assert_array_equal(table[:, :256], np.eye(256))
    assert table[0, 256] == -1 and table[255, 256] == 1 and np.all(np.diff(table[:, 257]) > 0)
    assert all(w is not model.input_embedding.embeddings for w in model.trainable_weights)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    audio = rng.integers(0, 256, (2, 200)).astype("int32")
    before = model.initial_conv.kernel.numpy()
    model.train_on_batch({"audio": audio}, audio)
    assert not np.array_equal(model.initial_conv.kernel.numpy(), before)  # the step did train
    np.testing.assert_array_equal(model.input_embedding.embeddings.numpy(), table)


def test_global_conditioning_changes_the_prediction(rng):
    model = WaveNet.from_preset("tiny", global_conditioning_classes=3)
    audio = rng.integers(0, 256, (1, 200)).astype("int32")
    a = _logits(model, {"audio": audio, "global_id": np.array([0], "int32")})
    b = _logits(model, {"audio": audio, "global_id": np.array([2], "int32")})
    assert np.abs(a - b).max() > 1e-6


def test_local_conditioning_frames_align_with_samples(rng):
    config = get_preset("tiny", local_conditioning_channels=3, upsample_scales=(2, 4))
    model = WaveNet.from_model_config(config)
    audio = rng.integers(0, 256, (1, 160)).astype("int32")
    mel = rng.normal(size=(1, 20, 3)).astype("float32")
    reference = _logits(model, {"audio": audio, "mel": mel})
    poked = mel.copy()
    poked[0, 10] += 1.0  # frame 10 covers samples 80..87
    changed = np.abs(_logits(model, {"audio": audio, "mel": poked}) - reference).max(axis=-1)[0]
    assert np.flatnonzero(changed > 0).min() == 80
    assert changed[:80].max() == 0.0


def test_logits_are_float32_under_mixed_precision(rng):
    with dtype_policy("mixed_float16"):
        model = WaveNet.from_preset("tiny")
        out = model({"audio": rng.integers(0, 256, (1, 50)).astype("int32")})
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
