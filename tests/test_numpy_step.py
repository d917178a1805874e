"""The incremental step, derived from the Keras layers, equals the full forward pass; NumPy computes what step.onnx does."""

from types import SimpleNamespace

import numpy as np
import pytest

from wavenet_tf.core.numpy_step import NumpyStep, generate_audio
from wavenet_tf.core.ring_buffer import RingBuffer
from wavenet_tf.core.step_generator import StepGenerator
from wavenet_tf.model import WaveNet
from wavenet_tf.core.presets import get_preset
from wavenet_tf.sampling import naive_generate
from wavenet_tf.step_weights import step_arrays, upsampled_features

NARROW = dict(residual_channels=8, gate_channels=8, skip_channels=16)


@pytest.mark.parametrize(
    "preset, overrides",
    [
        ("tiny", {}),
        ("tiny", dict(global_conditioning_classes=3)),
        ("tiny", dict(local_conditioning_channels=5, upsample_scales=(2, 4))),
        ("tiny", dict(input_encoding="embedding", initial_kernel_size=3, kernel_size=3, dilations=(1, 2, 4, 8))),
        ("small", dict(NARROW, dilations=(1, 2, 4, 8, 16, 32, 64, 128))),
        ("tiny", dict(input_encoding="one_hot_amplitude", dilations=(1, 2, 4, 8))),
    ],
    ids=["tiny", "global", "local", "embedding-kernel3", "small-structure", "one-hot-amplitude"],
)
def test_teacher_forced_step_equals_full_forward(rng, preset, overrides):
    config = get_preset(preset, **overrides)
    model = WaveNet.from_model_config(config)
    batch, length = 2, 2 * config.receptive_field + 40
    length -= length % config.hop_length
    classes = rng.integers(0, config.quantization_channels, (batch, length)).astype(np.int32)
    inputs = {"audio": classes}
    step = NumpyStep(step_arrays(model))
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
    fast = generate_audio(step_arrays(model), 60, seed=9, temperature=1.0, receptive_field=model.receptive_field)
    slow = naive_generate(model, 60, temperature=1.0, seed=9)
    np.testing.assert_array_equal(fast, slow)


# Lively weights (Keras initializes biases to 0, which would hide the residual-offset folding).
CONVENTION_CASES = {
    "tiny": {},
    "global": dict(global_conditioning_classes=3),
    "local": dict(local_conditioning_channels=5, upsample_scales=(2, 4)),
    "embedding-kernel3": dict(input_encoding="embedding", initial_kernel_size=3, kernel_size=3, dilations=(1, 2, 4, 8)),
}


def _lively(config, seed=0) -> WaveNet:
    model = WaveNet.from_model_config(config)
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, 0.25, weight.shape).astype(np.float32))
    return model


def _inputs(model, rng, batch=2):
    config = model.model_config
    length = 2 * config.receptive_field + 40
    length -= length % config.hop_length
    inputs = {"audio": rng.integers(0, config.quantization_channels, (batch, length)).astype(np.int32)}
    global_ids = local = None
    if config.global_conditioning_classes:
        global_ids = np.array([0, 2])[:batch]
        inputs["global_id"] = global_ids.astype(np.int32)
    if config.local_conditioning_channels:
        inputs["mel"] = rng.normal(size=(batch, length // config.hop_length, 5)).astype(np.float32)
        local = upsampled_features(model, inputs["mel"])
    return inputs, global_ids, local


@pytest.mark.parametrize("name", list(CONVENTION_CASES))
def test_numpy_step_stores_what_the_graph_stores(rng, name):
    """The ring buffer holds each layer's input minus its residual offset (the folded state), from the start."""
    model = _lively(get_preset("tiny", **NARROW, **CONVENTION_CASES[name]))
    arrays = step_arrays(model)
    assert np.abs(arrays.residual_offsets).max() > 0.1  # the folding is exercised
    inputs, global_ids, local = _inputs(model, rng)
    step = NumpyStep(arrays)
    generator = StepGenerator(step, 2, global_ids)
    np.testing.assert_array_equal(generator.ring.buffer[0], np.broadcast_to(-arrays.residual_offsets[:, None], (
        arrays.num_layers, 2, arrays.residual_channels)))
    local_terms = None if local is None else step.local_conditioning(local)
    length = inputs["audio"].shape[1]
    generator.teacher_forced_logits(inputs["audio"], local_terms)
    keras = model.layer_inputs_model()(inputs, training=False)
    expected = np.stack([np.asarray(o) for o in keras[1:]], axis=2) - arrays.residual_offsets  # (B, T, L, R)
    last = (length - 1) % generator.ring.size
    stored = generator.ring.buffer[last].transpose(1, 0, 2)  # (B, L, R) of time T - 1
    assert np.abs(stored - expected[:, -1]).max() < 1e-4


@pytest.mark.parametrize("name", list(CONVENTION_CASES))
def test_numpy_step_computes_what_step_onnx_computes(rng, tmp_path, name):
    """Same arrays, same layouts, same operations: logits and stored state agree to float32
    rounding at every step of a teacher-forced run, and free-running sampling draws the same classes."""
    import onnx

    from export.step_graph import build_step_graph
    from serving.onnx_step import OnnxStep

    model = _lively(get_preset("tiny", **NARROW, **CONVENTION_CASES[name]))
    arrays = step_arrays(model)
    onnx.save(build_step_graph(arrays), str(tmp_path / "step.onnx"))
    # The card fields OnnxStep reads (a whole ModelCard needs a run to export).
    card = SimpleNamespace(
        step=SimpleNamespace(delays=arrays.delays.tolist(), residual_offsets=arrays.residual_offsets.tolist()),
        residual_channels=arrays.residual_channels, gate_channels=arrays.gate_channels,
        quantization_channels=arrays.quantization_channels, initial_kernel_size=arrays.input_taps)
    numpy_step, onnx_step = NumpyStep(arrays), OnnxStep(tmp_path / "step.onnx", card)
    inputs, global_ids, local = _inputs(model, rng)
    local_terms = None if local is None else numpy_step.local_conditioning(local)
    generators = [StepGenerator(s, 2, global_ids) for s in (numpy_step, onnx_step)]
    scale = 0.0
    for t in range(inputs["audio"].shape[1]):
        term = None if local_terms is None else local_terms[:, t]
        a, b = (g.advance(inputs["audio"][:, t], term) for g in generators)
        scale = max(scale, float(np.abs(a).max()))
        # float32 rounding: a few ulps of the logits' magnitude, not the 1e-4 of a Keras comparison.
        assert np.abs(a - b).max() <= 2e-6 * max(1.0, float(np.abs(a).max())), t
        np.testing.assert_allclose(generators[0].ring.buffer, generators[1].ring.buffer, rtol=0, atol=2e-6)
    assert scale > 1.0  # the logits are not all tiny: the bound above is relative to real values
    uniforms = np.random.default_rng(3).random((2, 200))
    prime = inputs["audio"][:, :40]
    classes = [StepGenerator(s, 2, global_ids).generate(200, uniforms, 1.0, prime,
                                                        None if local_terms is None else local_terms[:, :240])
               for s in (numpy_step, onnx_step)]
    np.testing.assert_array_equal(classes[0], classes[1])
