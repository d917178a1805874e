"""The incremental step, derived from the Keras layers, equals the full forward pass."""

import numpy as np
import pytest

from wavenet_tf.core.numpy_step import NumpyStep, generate_audio
from wavenet_tf.core.ring_buffer import RingBuffer
from wavenet_tf.core.step_generator import StepGenerator
from wavenet_tf.model import WaveNet
from wavenet_tf.core.presets import get_preset
from wavenet_tf.sampling import naive_generate
from wavenet_tf.step_weights import extract_step_weights, upsampled_features

NARROW = dict(residual_channels=8, gate_channels=8, skip_channels=16)


@pytest.mark.parametrize(
    "preset, overrides",
    [
        ("tiny", {}),
        ("tiny", dict(global_conditioning_classes=3)),
        ("tiny", dict(local_conditioning_channels=5, upsample_scales=(2, 4))),
        ("tiny", dict(input_encoding="embedding", initial_kernel_size=3, kernel_size=3, dilations=(1, 2, 4, 8))),
        ("small", dict(NARROW, dilations=(1, 2, 4, 8, 16, 32, 64, 128))),
    ],
    ids=["tiny", "global", "local", "embedding-kernel3", "small-structure"],
)
def test_teacher_forced_step_equals_full_forward(rng, preset, overrides):
    config = get_preset(preset, **overrides)
    model = WaveNet.from_model_config(config)
    batch, length = 2, 2 * config.receptive_field + 40
    length -= length % config.hop_length
    classes = rng.integers(0, config.quantization_channels, (batch, length)).astype(np.int32)
    inputs = {"audio": classes}
    step = NumpyStep(extract_step_weights(model))
    global_ids = local = None
    if config.global_conditioning_classes:
        global_ids = np.array([0, 2])
        inputs["global_id"] = global_ids.astype(np.int32)
    if config.local_conditioning_channels:
        inputs["mel"] = rng.normal(size=(batch, length // config.hop_length, 5)).astype(np.float32)
        local = upsampled_features(model, inputs["mel"])
    expected = model.predict(inputs, verbose=0)
    local_terms = None if local is None else step.local_conditioning(local)
    got = StepGenerator(step, batch, global_ids).teacher_forced_logits(classes, local_terms)
    assert np.abs(got - expected).max() < 1e-4


def test_ring_buffer_index_arithmetic():
    ring = RingBuffer(np.array([[1], [4], [3]]), batch=1, channels=1)
    assert ring.size == 8
    for t in range(20):
        ring.write(t, np.full((3, 1, 1), t, np.float32))
        if t >= 4:
            past = ring.past(t + 1)[:, 0, 0, 0]  # inputs read at time t + 1
            assert past.tolist() == [t, t - 3, t - 2]


def test_sampling_equals_naive_generation_given_the_same_uniforms():
    model = WaveNet.from_preset("tiny", **NARROW)
    weights = extract_step_weights(model)
    fast = generate_audio(weights, 60, seed=9, temperature=1.0, receptive_field=model.receptive_field)
    slow = naive_generate(model, 60, temperature=1.0, seed=9)
    np.testing.assert_array_equal(fast, slow)
