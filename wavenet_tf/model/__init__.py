"""Keras 3 layers and the WaveNet model, smallest piece first."""

from wavenet_tf.model.causal_conv1d import CausalConv1D
from wavenet_tf.model.residual_block import ResidualBlock
from wavenet_tf.model.upsample_network import UpsampleNetwork
from wavenet_tf.model.wavenet import WaveNet

__all__ = ["CausalConv1D", "ResidualBlock", "UpsampleNetwork", "WaveNet"]
