"""Bits per sample: cross-entropy in the unit audio-model papers report."""

from __future__ import annotations

import math

import keras


def bits_per_sample(y_true, y_pred):
    """Cross-entropy of integer targets under logits, in bits (nats / ln 2), per position."""
    nats = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    return nats / math.log(2.0)


@keras.saving.register_keras_serializable(package="wavenet_tf")
class BitsPerSample(keras.metrics.MeanMetricWrapper):
    """Mean cross-entropy in bits per predicted sample.

    8 bits is a uniform guess over 256 classes; the entropy of the class histogram (the
    unigram baseline) is the first number a model must beat.
    """

    def __init__(self, name: str = "bits_per_sample", dtype=None):
        super().__init__(fn=bits_per_sample, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
