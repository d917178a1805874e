"""mu-law companding and quantization as TensorFlow ops, for `tf.data` pipelines.

The NumPy twin is `serving.mu_law` (the runtime needs it without TensorFlow); the two
agree bit for bit, which a test checks: both compute in float64 in the same order and
round once at the end (in float32 the two libraries' `log1p` differ by an ulp).
"""

from __future__ import annotations

import tensorflow as tf


def mu_law_compress(audio: tf.Tensor, quantization_channels: int = 256) -> tf.Tensor:
    """Map amplitude in [-1, 1] to the companded value in [-1, 1] (float32)."""
    return tf.cast(_compress64(audio, quantization_channels), tf.float32)


def _compress64(audio: tf.Tensor, quantization_channels: int) -> tf.Tensor:
    mu = tf.constant(quantization_channels - 1, tf.float64)
    x = tf.clip_by_value(tf.cast(audio, tf.float64), -1.0, 1.0)
    return tf.sign(x) * tf.math.log1p(mu * tf.abs(x)) / tf.math.log1p(mu)


def mu_law_expand(companded: tf.Tensor, quantization_channels: int = 256) -> tf.Tensor:
    """Inverse of `mu_law_compress` (float32)."""
    mu = tf.constant(quantization_channels - 1, tf.float64)
    y = tf.cast(companded, tf.float64)
    return tf.cast(tf.sign(y) * (tf.pow(1.0 + mu, tf.abs(y)) - 1.0) / mu, tf.float32)


def mu_law_encode(audio: tf.Tensor, quantization_channels: int = 256) -> tf.Tensor:
    """Quantize audio in [-1, 1] to int32 classes 0 .. quantization_channels - 1."""
    mu = tf.constant(quantization_channels - 1, tf.float64)
    y = _compress64(audio, quantization_channels)
    # Round to the nearest of the mu + 1 evenly spaced companded levels.
    return tf.cast(tf.floor((y + 1.0) / 2.0 * mu + 0.5), tf.int32)


def mu_law_decode(classes: tf.Tensor, quantization_channels: int = 256) -> tf.Tensor:
    """Classes back to float32 audio in [-1, 1]."""
    mu = tf.constant(quantization_channels - 1, tf.float64)
    y = tf.cast(classes, tf.float64) * 2.0 / mu - 1.0
    return mu_law_expand(y, quantization_channels)
