"""The streaming sampler: exact against naive generation, chunk-invariant, reproducible, batched."""

import numpy as np
import pytest

from wavenet_tf.core.mel import log_mel as numpy_log_mel
from wavenet_tf.core.mu_law import mu_law_encode
from serving.naive import naive_generate_classes
from serving.streaming_sampler import StreamingSampler
from tests.helpers import CASES
from tests.tf_mel_reference import log_mel as tf_log_mel
from wavenet_tf.core.sampling import stream_generator


def stream_uniforms(seed: int, streams: int, count: int) -> np.ndarray:
    """``(count, streams)``: the uniforms a sampler's ``streams`` streams seeded ``seed`` draw (naive's input)."""
    return np.stack([stream_generator(seed, k).random(count) for k in range(streams)], axis=1)


def _options(bundle, streams, rng):
    options = {}
    if bundle.global_conditioning:
        options["global_ids"] = np.arange(streams) % 3
    if bundle.local_conditioning:
        options["mel"] = rng.normal(size=(streams, 200, 4)).astype(np.float32)
    return options


@pytest.mark.parametrize("name", list(CASES))
def test_sampler_equals_naive_generation_sample_for_sample(bundles, name):
    bundle = bundles[name]
    streams, n = 2, 120
    options = _options(bundle, streams, np.random.default_rng(0))
    sampler = StreamingSampler(bundle, streams=streams, seed=7, **options)
    fast = sampler.generate_classes(n)
    uniforms = stream_uniforms(7, streams, n)
    slow = naive_generate_classes(bundle, n, uniforms, **options)
    np.testing.assert_array_equal(fast, slow)


def test_chunked_streaming_equals_one_shot_and_seeds_reproduce(bundles):
    bundle = bundles["plain"]
    one_shot = StreamingSampler(bundle, seed=3).generate(500)
    chunks = list(StreamingSampler(bundle, seed=3).stream(500, chunk_size=64))
    assert [c.shape[1] for c in chunks] == [64] * 7 + [52]
    np.testing.assert_array_equal(np.concatenate(chunks, axis=1), one_shot)
    assert not np.array_equal(StreamingSampler(bundle, seed=4).generate(500), one_shot)
    sampler = StreamingSampler(bundle, seed=3)
    sampler.generate(100)
    sampler.reset()
    np.testing.assert_array_equal(sampler.generate(500), one_shot)


@pytest.mark.parametrize("streams", [1, 3])
def test_the_graphs_sampler_draws_what_numpy_draws(bundles, streams):
    # step() samples in NumPy; generate_classes lets step.onnx draw (next_taps) for few streams.
    bundle = bundles["plain"]
    for temperature in (0.6, 1.0, 1.7):
        numpy_side = StreamingSampler(bundle, streams=streams, seed=9, temperature=temperature)
        reference = np.stack([numpy_side.step() for _ in range(300)], axis=1)
        graph_side = StreamingSampler(bundle, streams=streams, seed=9, temperature=temperature, engine="graph")
        parts = [graph_side.generate_classes(n) for n in (1, 37, 100)]
        assert graph_side.model.workspace(streams).sampler_binding is not None  # the graph drew: this path ran
        parts.append(np.stack([graph_side.step() for _ in range(12)], axis=1))
        parts.append(graph_side.generate_classes(150))
        np.testing.assert_array_equal(np.concatenate(parts, axis=1), reference)
    # A temperature changed between chunks applies to the very next sample, as with step().
    numpy_side = StreamingSampler(bundle, streams=streams, seed=2)
    first = np.stack([numpy_side.step() for _ in range(50)], axis=1)
    numpy_side.temperature = 0.5
    second = np.stack([numpy_side.step() for _ in range(50)], axis=1)
    graph_side = StreamingSampler(bundle, streams=streams, seed=2, engine="graph")
    np.testing.assert_array_equal(graph_side.generate_classes(50), first)
    graph_side.temperature = 0.5
    np.testing.assert_array_equal(graph_side.generate_classes(50), second)


def test_batched_streams_are_independent(bundles):
    bundle = bundles["global"]
    together = StreamingSampler(bundle, streams=3, seed=11, global_ids=[0, 1, 2], temperature=0.0)
    batch = together.generate(150)
    for k in range(3):
        alone = StreamingSampler(bundle, streams=1, seed=11, global_ids=[k], temperature=0.0).generate(150)
        np.testing.assert_array_equal(batch[k], alone[0])


def test_priming_continues_like_teacher_forcing(bundles):
    bundle = bundles["plain"]
    prime = (0.3 * np.sin(np.arange(400) / 5.0)).astype(np.float32)
    sampler = StreamingSampler(bundle, seed=5)
    sampler.prime(prime)
    fast = sampler.generate_classes(80)
    uniforms = np.random.default_rng(5).random((80, 1))
    slow = naive_generate_classes(bundle, 80, uniforms, prime_classes=mu_law_encode(prime, 64)[None])
    np.testing.assert_array_equal(fast, slow)


def test_temperature_zero_is_argmax_and_bad_arguments_are_named(bundles):
    a = StreamingSampler(bundles["plain"], seed=1, temperature=0.0).generate(50)
    b = StreamingSampler(bundles["plain"], seed=2, temperature=0.0).generate(50)
    np.testing.assert_array_equal(a, b)  # no randomness left
    with pytest.raises(ValueError, match="global_ids"):
        StreamingSampler(bundles["global"])
    with pytest.raises(ValueError, match=r"global_ids must be in \[0, 3\)"):
        StreamingSampler(bundles["global"], global_ids=[5])
    with pytest.raises(ValueError, match="mel"):
        StreamingSampler(bundles["local"])


def test_numpy_log_mel_equals_tf_signal():
    rng = np.random.default_rng(0)
    audio = (0.3 * np.sin(np.arange(9000) * 0.05) + 0.05 * rng.normal(size=9000)).astype(np.float32)
    for n_mels, hop, n_fft, fmin, fmax in ((20, 64, 256, 0.0, 0.0), (8, 100, 400, 50.0, 3000.0)):
        expected = tf_log_mel(audio, 8000, n_mels, hop, n_fft, fmin, fmax)
        got = numpy_log_mel(audio, 8000, n_mels, hop, n_fft, fmin, fmax)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=2e-3, rtol=1e-4)
