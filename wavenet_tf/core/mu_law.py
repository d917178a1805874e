"""mu-law companding and quantization in NumPy (no TensorFlow), as ITU-T G.711 defines it.

The only implementation: the training pipeline quantizes its windows with it too. It
computes in float64 and rounds once at the end: in float32, `log1p`/`pow` differ between
libraries by an ulp, which moved about 3 samples in a million to a neighbouring class.
Quantization uses ``quantization_channels`` classes with ``mu = quantization_channels - 1``.

>>> import numpy as np
>>> q = mu_law_encode(np.array([-1.0, 0.0, 1.0], np.float32))
>>> q.tolist()
[0, 128, 255]
"""

from __future__ import annotations

import numpy as np


def mu_law_compress(audio: np.ndarray, quantization_channels: int = 256) -> np.ndarray:
    """Map amplitude in [-1, 1] to the companded value in [-1, 1] (float32)."""
    return _compress64(audio, quantization_channels).astype(np.float32)


def _compress64(audio: np.ndarray, quantization_channels: int) -> np.ndarray:
    mu = np.float64(quantization_channels - 1)
    x = np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0)
    return np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)


def mu_law_expand(companded: np.ndarray, quantization_channels: int = 256) -> np.ndarray:
    """Inverse of `mu_law_compress` (float32)."""
    mu = np.float64(quantization_channels - 1)
    y = np.asarray(companded, dtype=np.float64)
    return (np.sign(y) * (np.power(1.0 + mu, np.abs(y)) - 1.0) / mu).astype(np.float32)


def mu_law_encode(audio: np.ndarray, quantization_channels: int = 256) -> np.ndarray:
    """Quantize audio in [-1, 1] to int32 classes 0 .. quantization_channels - 1."""
    mu = np.float64(quantization_channels - 1)
    y = _compress64(audio, quantization_channels)
    # Round to the nearest of the mu + 1 evenly spaced companded levels.
    return np.floor((y + 1.0) / 2.0 * mu + 0.5).astype(np.int32)


def silence_class(quantization_channels: int = 256) -> int:
    """The class of amplitude 0 (digital silence): what generation without a prime starts from."""
    return int(mu_law_encode(np.zeros(1), quantization_channels)[0])


def mu_law_decode(classes: np.ndarray, quantization_channels: int = 256) -> np.ndarray:
    """Classes back to float32 audio in [-1, 1]."""
    mu = np.float64(quantization_channels - 1)
    y = np.asarray(classes, dtype=np.float64) * 2.0 / mu - 1.0
    return mu_law_expand(y, quantization_channels)


def amplitude_features(quantization_channels: int = 256) -> np.ndarray:
    """Each class's companded level and linear amplitude, ``(quantization_channels, 2)`` float32 in [-1, 1].

    The ``one_hot_amplitude`` input encoding appends these two columns to the one-hot: the
    network then sees from its first step that class 200 lies between 199 and 201, which a
    one-hot alone has to learn class by class.
    """
    classes = np.arange(quantization_channels)
    levels = classes * 2.0 / (quantization_channels - 1) - 1.0
    return np.stack([levels, mu_law_decode(classes, quantization_channels)], axis=1).astype(np.float32)
