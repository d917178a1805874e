import numpy as np
import pytest

from serving import mu_law as np_mu
from wavenet_tf import mu_law as tf_mu


@pytest.mark.parametrize("channels", [256, 16, 65536])
def test_tensorflow_equals_numpy_bit_for_bit(channels):
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.uniform(-1.2, 1.2, 500_000),
        np.linspace(-1, 1, 100_001),
        [-1.0, -0.0, 0.0, 1.0, 2.0, -3.0],
    ]).astype(np.float32)
    np.testing.assert_array_equal(np_mu.mu_law_encode(x, channels), tf_mu.mu_law_encode(x, channels).numpy())
    classes = np.arange(channels, dtype=np.int32)
    np.testing.assert_array_equal(np_mu.mu_law_decode(classes, channels), tf_mu.mu_law_decode(classes, channels).numpy())
    np.testing.assert_array_equal(np_mu.mu_law_compress(x, channels), tf_mu.mu_law_compress(x, channels).numpy())


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
