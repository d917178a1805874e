"""Brings local conditioning frames (e.g. log-mel) up to the audio sample rate."""

from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="wavenet_tf")
class UpsampleNetwork(keras.layers.Layer):
    """Transposed convolutions that turn one feature frame into ``hop_length`` samples.

    Each stage is a `keras.layers.Conv1DTranspose` with ``kernel_size == strides == s``:
    every input frame writes exactly ``s`` outputs and no two frames overlap, so frame
    ``k`` conditions samples ``[k * hop, (k + 1) * hop)`` and nothing else — the alignment
    the data pipeline relies on. Seen from the output, each stage is a convolution with
    fractional stride ``1 / s``. A learned upsampler beats repeating frames because it can
    interpolate within a frame (van den Oord et al., 2016, §2.6).

    Args:
        upsample_scales: stride of each stage; ``hop_length = prod(upsample_scales)``.
        channels: feature channels (kept through every stage).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: ``(batch, frames, channels)``.

    Returns:
        ``(batch, frames * hop_length, channels)``.

    Example:
    >>> import numpy as np
    >>> up = UpsampleNetwork((2, 4), channels=3)
    >>> up(np.zeros((1, 5, 3), "float32")).shape
    (1, 40, 3)
    """

    def __init__(self, upsample_scales, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.upsample_scales = tuple(int(s) for s in upsample_scales)
        self.channels = channels
        self.stages = [
            keras.layers.Conv1DTranspose(
                channels, kernel_size=s, strides=s, padding="valid", dtype=self.dtype_policy, name=f"upsample_{i}"
            )
            for i, s in enumerate(self.upsample_scales)
        ]

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_scales)

    def build(self, input_shape):
        batch, frames = input_shape[0], input_shape[1]
        for stage, scale in zip(self.stages, self.upsample_scales):
            stage.build((batch, frames, self.channels))
            frames = None if frames is None else frames * scale

    def call(self, inputs):
        x = inputs
        for stage in self.stages:
            x = stage(x)
        return x

    def compute_output_shape(self, input_shape):
        frames = input_shape[1]
        return (input_shape[0], None if frames is None else frames * self.hop_length, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update({"upsample_scales": list(self.upsample_scales), "channels": self.channels})
        return config
