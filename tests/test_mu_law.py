import numpy as np
import pytest

from wavenet_tf.core import mu_law as np_mu
import math


@pytest.mark.parametrize("channels", [256, 16, 65536])
def test_matches_the_g711_formula_element_by_element(channels):
    # An independent oracle: Python's math on each value, then round half up in the companded domain.
    mu = channels - 1
    values = [-1.0, -0.5, -1e-4, -0.0, 0.0, 3e-5, 0.25, 0.999, 1.0, 2.0, -3.0]
    values += list(np.random.default_rng(0).uniform(-1.0, 1.0, 2000))
    for x in values:
        c = max(-1.0, min(1.0, float(np.float32(x))))
        y = math.copysign(math.log1p(mu * abs(c)) / math.log1p(mu), c)
        assert np_mu.mu_law_encode(np.float32(x), channels) == math.floor((y + 1.0) / 2.0 * mu + 0.5), x
    for q in range(0, channels, max(1, channels // 64)):
        y = q * 2.0 / mu - 1.0
        expected = math.copysign(((1.0 + mu) ** abs(y) - 1.0) / mu, y)
        assert np_mu.mu_law_decode(np.array([q]), channels)[0] == np.float32(expected), q


@pytest.mark.parametrize("channels", [256, 16])
def test_round_trip_error_is_within_one_step(channels):
    x = np.random.default_rng(1).uniform(-1, 1, 200_000).astype(np.float32)
    classes = np_mu.mu_law_encode(x, channels)
    assert classes.min() >= 0 and classes.max() <= channels - 1
    mu = channels - 1
    levels = np_mu.mu_law_decode(np.arange(channels), channels)
    # Rounding happens in the companded domain: class q holds x whose companded value is
    # within half a step (1/mu) of level q, i.e. x between these two expanded boundaries.
    y = np.arange(channels) * 2.0 / mu - 1.0
    lower = np_mu.mu_law_expand(np.maximum(y - 1.0 / mu, -1.0), channels)
    upper = np_mu.mu_law_expand(np.minimum(y + 1.0 / mu, 1.0), channels)
    assert np.all(x >= lower[classes] - 1e-6) and np.all(x <= upper[classes] + 1e-6)
    # So the error never exceeds the local quantization step (the gap between levels).
    gaps = np.diff(levels)
    step = np.maximum(np.concatenate(([gaps[0]], gaps)), np.concatenate((gaps, [gaps[-1]])))
    assert np.all(np.abs(x - np_mu.mu_law_decode(classes, channels)) <= step[classes] + 1e-6)


def test_extremes_and_silence():
    assert np_mu.mu_law_encode(np.array([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]
    assert np_mu.mu_law_decode(np.array([0, 255])).tolist() == [-1.0, 1.0]


def _snr_db(clean, noisy):
    return 10 * np.log10(np.sum(clean**2) / np.sum((clean - noisy) ** 2))


def test_snr_on_a_sine():
    t = np.arange(16000) / 16000
    for level_db, floor in [(0, 37.0), (-20, 35.0), (-40, 30.0)]:
        sine = (10 ** (level_db / 20) * np.sin(2 * np.pi * 441 * t)).astype(np.float32)
        snr = _snr_db(sine, np_mu.mu_law_decode(np_mu.mu_law_encode(sine)))
        # mu-law keeps the SNR nearly constant over a wide range of levels (G.711: ~38 dB).
        assert snr > floor, f"{level_db} dB sine: SNR {snr:.1f} dB"
    linear = np.round((sine + 1) / 2 * 255) / 255 * 2 - 1  # 8-bit linear at -40 dB
    assert _snr_db(sine, linear) < 15.0


@pytest.mark.parametrize("channels", [256, 64, 16])
def test_silence_class_is_the_class_of_amplitude_zero(channels):
    silence = np_mu.silence_class(channels)
    assert isinstance(silence, int)
    assert silence == np_mu.mu_law_encode(np.zeros(3), channels)[0] == channels // 2
    assert np_mu.mu_law_decode(np.array([silence]), channels)[0] == pytest.approx(0.0, abs=1.0 / channels)


@pytest.mark.parametrize("channels", [2, 16, 256])
def test_amplitude_features_are_each_class_level_and_amplitude(channels):
    features = np_mu.amplitude_features(channels)
    classes = np.arange(channels)
    assert features.shape == (channels, 2) and features.dtype == np.float32
    np.testing.assert_allclose(features[:, 0], np.linspace(-1, 1, channels), atol=1e-6)
    np.testing.assert_array_equal(features[:, 1], np_mu.mu_law_decode(classes, channels))
    assert features[0].tolist() == [-1, -1] and features[-1].tolist() == [1, 1]
