"""One WaveNet layer: dilated causal conv -> gated activation -> residual and skip outputs."""

from __future__ import annotations

import keras
from keras import ops

from wavenet_tf.model.causal_conv1d import CausalConv1D


@keras.saving.register_keras_serializable(package="wavenet_tf")
class ResidualBlock(keras.layers.Layer):
    """Gated residual block (van den Oord et al., 2016, https://arxiv.org/abs/1609.03499, §2.3–2.5).

    ``z = tanh(W_f * x + V_f h) ⊙ sigmoid(W_g * x + V_g h)``; the block returns
    ``x + residual_1x1(z)`` for the next block and ``skip_1x1(z)`` for the output head.

    The filter and gate convolutions are one `CausalConv1D` with ``2 * gate_channels``
    outputs split in half: the same math as two convolutions, half the operations, and
    the step graph (export) reads one kernel per layer. Conditioning is projected to
    ``2 * gate_channels`` and added before the split, so it biases filter and gate alike.

    Args:
        residual_channels: channels in and out of the residual path.
        gate_channels: channels of each half of the gated unit.
        skip_channels: channels of the skip output.
        kernel_size: taps of the dilated convolution.
        dilation_rate: dilation of the dilated convolution.
        global_conditioning_channels: width of the global conditioning vector; 0 for none.
        local_conditioning_channels: channels of the local conditioning features
            (already at the sample rate); 0 for none.
        use_bias: whether the convolutions carry a bias.
        use_residual: whether to compute the residual output. The last block of a
            WaveNet sets False: only its skip output reaches the head, and a residual
            1x1 there would be weights that receive no gradient. Its residual output is
            then the input, unchanged.
        **kwargs: standard `keras.layers.Layer` arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: ``(batch, time, residual_channels)``.
        global_condition: ``(batch, global_conditioning_channels)`` or None.
        local_condition: ``(batch, time, local_conditioning_channels)`` or None.
        skip_from: compute the skip output for positions ``skip_from`` onwards only.

    Returns:
        ``(residual_output, skip_output)`` of shapes ``(batch, time, residual_channels)``
        and ``(batch, time - skip_from, skip_channels)``.

    Example:
    >>> import numpy as np
    >>> block = ResidualBlock(8, 8, 16, dilation_rate=4)
    >>> residual, skip = block(np.zeros((2, 50, 8), "float32"))
    >>> residual.shape, skip.shape
    ((2, 50, 8), (2, 50, 16))
    """

    def __init__(
        self,
        residual_channels: int,
        gate_channels: int,
        skip_channels: int,
        kernel_size: int = 2,
        dilation_rate: int = 1,
        global_conditioning_channels: int = 0,
        local_conditioning_channels: int = 0,
        use_bias: bool = True,
        use_residual: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.residual_channels = residual_channels
        self.gate_channels = gate_channels
        self.skip_channels = skip_channels
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate
        self.global_conditioning_channels = global_conditioning_channels
        self.local_conditioning_channels = local_conditioning_channels
        self.use_bias = use_bias
        self.use_residual = use_residual

        self.dilated_conv = CausalConv1D(
            2 * gate_channels, kernel_size, dilation_rate=dilation_rate, use_bias=use_bias,
            dtype=self.dtype_policy, name="dilated_conv",
        )
        # Conditioning carries no bias: the dilated convolution's bias already covers it.
        self.global_projection = (
            keras.layers.Dense(2 * gate_channels, use_bias=False, dtype=self.dtype_policy, name="global_projection")
            if global_conditioning_channels else None
        )
        self.local_projection = (
            keras.layers.Conv1D(2 * gate_channels, 1, use_bias=False, dtype=self.dtype_policy, name="local_projection")
            if local_conditioning_channels else None
        )
        self.skip_conv = keras.layers.Conv1D(
            skip_channels, 1, use_bias=use_bias, dtype=self.dtype_policy, name="skip_conv"
        )
        self.residual_conv = (
            keras.layers.Conv1D(residual_channels, 1, use_bias=use_bias, dtype=self.dtype_policy, name="residual_conv")
            if use_residual else None
        )

    def build(self, input_shape):
        batch, time = input_shape[0], input_shape[1]
        self.dilated_conv.build((batch, time, self.residual_channels))
        if self.global_projection is not None:
            self.global_projection.build((batch, self.global_conditioning_channels))
        if self.local_projection is not None:
            self.local_projection.build((batch, time, self.local_conditioning_channels))
        self.skip_conv.build((batch, time, self.gate_channels))
        if self.residual_conv is not None:
            self.residual_conv.build((batch, time, self.gate_channels))

    def call(self, inputs, global_condition=None, local_condition=None, skip_from=0):
        x = self.dilated_conv(inputs)
        if self.global_projection is not None:
            if global_condition is None:
                raise ValueError(f"{self.name} was built with global conditioning; pass `global_condition`.")
            x = x + ops.expand_dims(self.global_projection(global_condition), 1)
        if self.local_projection is not None:
            if local_condition is None:
                raise ValueError(f"{self.name} was built with local conditioning; pass `local_condition`.")
            x = x + self.local_projection(local_condition)
        filter_part, gate_part = ops.split(x, 2, axis=-1)
        z = ops.tanh(filter_part) * ops.sigmoid(gate_part)
        residual = inputs + self.residual_conv(z) if self.residual_conv is not None else inputs
        # Training needs the skips of the full-context positions only (``skip_from`` onwards).
        return residual, self.skip_conv(z[:, skip_from:] if skip_from else z)

    @property
    def receptive_field(self) -> int:
        return (self.kernel_size - 1) * self.dilation_rate + 1

    def get_config(self):
        config = super().get_config()
        config.update({
            "residual_channels": self.residual_channels,
            "gate_channels": self.gate_channels,
            "skip_channels": self.skip_channels,
            "kernel_size": self.kernel_size,
            "dilation_rate": self.dilation_rate,
            "global_conditioning_channels": self.global_conditioning_channels,
            "local_conditioning_channels": self.local_conditioning_channels,
            "use_bias": self.use_bias,
            "use_residual": self.use_residual,
        })
        return config
