"""The causal, dilated 1-D convolution that WaveNet is made of."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="wavenet_tf")
class CausalConv1D(keras.layers.Conv1D):
    """`keras.layers.Conv1D` with ``padding="causal"``: output t sees inputs <= t only.

    Causal padding left-pads the input with ``(kernel_size - 1) * dilation_rate`` zeros,
    so output ``t`` is computed from inputs ``t - k * dilation_rate`` for
    ``k = 0 .. kernel_size - 1`` ("à trous": the filter has holes between its taps).
    Stacking layers with dilations 1, 2, 4, ... doubles the receptive field per layer
    for the same number of weights (van den Oord et al., 2016,
    https://arxiv.org/abs/1609.03499, section 2.1).

    Args:
        filters: output channels.
        kernel_size: taps of the filter.
        dilation_rate: spacing between taps, in samples.
        **kwargs: any other `keras.layers.Conv1D` argument except ``padding``.

    Call arguments:
        inputs: ``(batch, time, channels)``.

    Returns:
        ``(batch, time, filters)``; the time axis keeps its length.

    Example:
    >>> import numpy as np
    >>> conv = CausalConv1D(4, kernel_size=2, dilation_rate=8)
    >>> conv(np.zeros((1, 100, 3), "float32")).shape
    (1, 100, 4)
    >>> conv.receptive_field
    9
    """

    def __init__(self, filters: int, kernel_size: int, dilation_rate: int = 1, padding: str = "causal", **kwargs):
        if padding != "causal":
            raise ValueError(
                f"CausalConv1D only supports padding='causal', got padding={padding!r}; "
                "use keras.layers.Conv1D for other paddings."
            )
        super().__init__(filters, kernel_size, dilation_rate=dilation_rate, padding="causal", **kwargs)

    @property
    def receptive_field(self) -> int:
        """Input samples that one output depends on."""
        return (self.kernel_size[0] - 1) * self.dilation_rate[0] + 1
