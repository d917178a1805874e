"""Training helpers around `model.fit`."""

from __future__ import annotations

import keras

from wavenet_tf.metrics import BitsPerSample
from wavenet_tf.model import WaveNet


def training_model(model: WaveNet) -> keras.Model:
    """A view of ``model`` whose outputs are only the logits with a full receptive field.

    The first ``receptive_field - 1`` positions of a window see causal zero padding
    instead of audio; they are context, not targets. The view shares every weight with
    ``model``: train the view, save ``model``.
    """
    crop = keras.layers.Cropping1D((model.receptive_field - 1, 0), name="full_context")
    return keras.Model(model.inputs, crop(model.outputs[0]), name=f"{model.name}_training")


def compile_for_training(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[BitsPerSample(), keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model
