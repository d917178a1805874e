"""Temperatures that used to give garbage, and a prime that used to cost memory in proportion
to its length (issue 13): the sampler's contract at its edges, in every engine."""

import numpy as np
import pytest

from export.bundle import export_run
from serving.bundle import load_bundle
from wavenet_tf.core.mu_law import mu_law_encode
from wavenet_tf.core.sampling import (GREEDY_TEMPERATURE, check_top_k, effective_temperature, sample_classes,
                                     sample_rows)
from serving.step_model import StepModel
from serving.streaming_sampler import StreamingSampler
from tests.helpers import NARROW, make_run
from wavenet_tf.core.presets import get_preset

LOGITS = np.array([[0.5, 3.0, -1.0, 2.9], [1.0, -2.0, 0.0, 0.9]], np.float32)


@pytest.mark.parametrize("temperature", [0.0, 1e-310, 5e-324, 1e-307, 1e-5, GREEDY_TEMPERATURE])
def test_a_tiny_temperature_is_argmax_not_overflow(temperature):
    # logits / 1e-310 is inf in float64; the "sample" was then class 0 or Q - 1 every time.
    uniforms = np.array([0.999, 0.0])
    np.testing.assert_array_equal(sample_classes(LOGITS, temperature, uniforms), [1, 0])
    np.testing.assert_array_equal(sample_classes(LOGITS[:1], temperature, uniforms[:1]), [1])
    np.testing.assert_array_equal(sample_rows(LOGITS, np.array([temperature, 1.0]), uniforms)[:1], [1])
    assert effective_temperature(temperature) == 0.0


def test_nan_and_infinite_temperatures_are_refused():
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="finite"):
            effective_temperature(bad)
    with pytest.raises(ValueError, match="finite"):
        sample_classes(LOGITS, float("nan"), np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        sample_rows(LOGITS, np.array([1.0, np.nan]), np.zeros(2))
    assert effective_temperature(0.5) == 0.5


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("limits")
    make_run(folder / "run", get_preset("tiny", **NARROW))
    export_run(folder / "run", folder / "bundle", log=lambda *_: None)
    return load_bundle(folder / "bundle")


@pytest.fixture(scope="module")
def mel_bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("limits-mel")
    make_run(folder / "run", get_preset("tiny", **NARROW, local_conditioning_channels=8, upsample_scales=(4, 8)))
    export_run(folder / "run", folder / "bundle", log=lambda *_: None)
    return load_bundle(folder / "bundle")


@pytest.mark.parametrize("engine", ["graph", "native"])
def test_a_denormal_temperature_generates_what_zero_generates(plain_bundle, engine):
    def audio(temperature, streams):
        try:
            sampler = StreamingSampler(plain_bundle, streams=streams, temperature=temperature, seed=3, engine=engine)
        except Exception as error:  # the native library may not be built on this machine
            pytest.skip(f"{engine}: {error}")
        return sampler.generate(300)

    for streams in (1, 6):  # one stream samples in the graph, six in NumPy (or natively)
        greedy = audio(0.0, streams)
        tiny = audio(1e-310, streams)
        np.testing.assert_array_equal(tiny, greedy)
        assert np.abs(tiny).max() < 1.0  # not the full-scale square wave of an overflowed softmax
    with pytest.raises(ValueError, match="finite"):
        StreamingSampler(plain_bundle, temperature=float("nan"), engine=engine)


@pytest.mark.parametrize("engine", ["graph", "native"])
def test_streams_treat_tiny_and_nan_temperatures_like_every_engine(plain_bundle, engine):
    model = StepModel(plain_bundle, engine="graph" if engine == "graph" else None)
    if engine == "native" and model.engine != "native":
        pytest.skip(model.engine_note)
    streams = model.open_streams(2, temperature=[1e-310, 1e-310])
    state = np.stack([stream.logits for stream in streams])
    tiny = model.advance(streams, 1, uniforms=np.full((2, 1), 0.999))
    np.testing.assert_array_equal(tiny[:, 0], state.argmax(axis=-1))
    with pytest.raises(ValueError, match="finite"):
        model.open_streams(2, temperature=[np.nan, 1.0])


def _feeds_recorder(sampler):
    """Records the length of every full-sequence pass the sampler makes."""
    session = sampler.model.full_session()
    lengths = []

    class Recorder:
        def run(self, names, feeds):
            lengths.append(feeds["audio"].shape[1])
            return session.run(names, feeds)

    sampler.model._full = Recorder()
    return lengths


def test_a_long_prime_costs_one_receptive_field_and_changes_nothing(plain_bundle):
    rng = np.random.default_rng(0)
    prime = (0.4 * np.sin(np.arange(20_000) / 5.0) + 0.05 * rng.normal(size=20_000)).astype(np.float32)
    sampler = StreamingSampler(plain_bundle, streams=2, seed=5, engine="graph")
    lengths = _feeds_recorder(sampler)
    sampler.prime(prime)
    assert lengths == [sampler.receptive_field] and sampler.t == len(prime)
    tail = sampler.generate_classes(400)
    # The reference: the whole prime through the full-sequence graph (what prime() used to do).
    reference = StepModel(plain_bundle, engine="graph")
    classes = np.broadcast_to(mu_law_encode(prime, reference.quantization_channels), (2, len(prime)))
    streams = reference.open_streams(2, seed=5, prime_classes=classes)
    assert streams[0].position == len(prime)
    np.testing.assert_array_equal(tail, reference.advance(streams, 400))


def test_a_long_prime_with_mel_frames_is_cut_on_a_frame_boundary(mel_bundle):
    rng = np.random.default_rng(1)
    hop = mel_bundle.hop_length
    frames = rng.normal(size=(400, mel_bundle.card.local_conditioning.n_mels)).astype(np.float32)
    prime = (0.3 * np.sin(np.arange(5_000) / 3.0)).astype(np.float32)
    sampler = StreamingSampler(mel_bundle, seed=2, mel=frames, engine="graph")
    lengths = _feeds_recorder(sampler)
    sampler.prime(prime)
    assert lengths[0] < sampler.receptive_field + 2 * hop and sampler.t == len(prime)
    tail = sampler.generate_classes(300)
    reference = StepModel(mel_bundle, engine="graph")
    classes = mu_law_encode(prime, reference.quantization_channels)[None].astype(np.int32)
    streams = reference.open_streams(1, seed=2, mel=frames, prime_classes=classes)
    np.testing.assert_array_equal(tail, reference.advance(streams, 300))


def test_top_k_draws_only_among_the_k_most_likely_classes_with_the_same_arithmetic():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 256)).astype(np.float32)
    uniforms = rng.random(6)
    # 0 (and k >= the class count) is no truncation: exactly the plain draw.
    plain = sample_classes(logits, 1.0, uniforms)
    np.testing.assert_array_equal(sample_rows(logits, np.ones(6), uniforms, np.zeros(6, int)), plain)
    np.testing.assert_array_equal(sample_rows(logits, np.ones(6), uniforms, np.full(6, 256)), plain)
    for k in (1, 3, 17):
        top = np.argsort(-logits, axis=1)[:, :k]
        for u in rng.random((40, 6)):
            drawn = sample_rows(logits, np.full(6, 0.7), u, np.full(6, k))
            assert all(drawn[i] in top[i] for i in range(6))
            np.testing.assert_array_equal(sample_classes(logits, 0.7, u, top_k=k), drawn)
    # Among the kept classes the draw follows their renormalized softmax.
    row = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))[None]
    draws = np.array([sample_classes(row, 1.0, np.array([u]), top_k=2)[0] for u in np.linspace(0, 1, 1000, False)])
    assert np.bincount(draws, minlength=4)[:2] / 1000 == pytest.approx([0.625, 0.375], abs=0.002)
    # Ties at the k-th largest all stay.
    tied = np.array([[0.0, 1.0, 1.0, 1.0]], np.float32)
    assert {int(sample_classes(tied, 1.0, np.array([u]), top_k=1)[0]) for u in (0.1, 0.5, 0.9)} == {1, 2, 3}
    with pytest.raises(ValueError, match="top_k must be a whole number"):
        check_top_k(-1)
    with pytest.raises(ValueError, match="at most the 256 classes"):
        check_top_k(300, 256)
