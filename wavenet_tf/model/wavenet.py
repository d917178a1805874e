"""The WaveNet model: quantized audio in, logits over the next sample's class out."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from wavenet_tf.core.config import ModelConfig
from wavenet_tf.core.mu_law import amplitude_features
from wavenet_tf.model.causal_conv1d import CausalConv1D
from wavenet_tf.model.residual_block import ResidualBlock
from wavenet_tf.model.upsample_network import UpsampleNetwork
from wavenet_tf.core.presets import get_preset


@keras.saving.register_keras_serializable(package="wavenet_tf")
class WaveNet(keras.Model):
    """WaveNet (van den Oord et al., 2016, https://arxiv.org/abs/1609.03499).

    ``audio`` classes -> one-hot (or embedding, or one-hot plus amplitude) -> initial `CausalConv1D` ->
    ``num_stacks × dilations`` `ResidualBlock`s -> sum of skips -> ReLU -> 1x1 -> ReLU
    -> 1x1 -> ``quantization_channels`` logits. The logits at time ``t`` are the
    distribution of sample ``t + 1`` given samples ``<= t`` (and the conditioning); they
    depend on exactly the last ``receptive_field`` input samples.

    A functional model: inputs are a dict with ``"audio"`` ``(batch, time)`` int32
    classes, plus ``"global_id"`` ``(batch,)`` int32 when
    ``global_conditioning_classes > 0``, plus ``"mel"`` ``(batch, time // hop_length,
    local_conditioning_channels)`` float32 when locally conditioned (``time`` must then
    be a multiple of ``hop_length``; frame ``k`` conditions samples ``[k·hop, (k+1)·hop)``).

    Args:
        **config: the fields of `ModelConfig` (see `wavenet_tf.core.config`), plus standard
            `keras.Model` arguments (``name``, ``trainable``).

    Returns:
        logits ``(batch, time, quantization_channels)``, float32 (also under mixed precision).

    Example:
    >>> import numpy as np
    >>> model = WaveNet.from_preset("tiny")
    >>> model.receptive_field
    129
    >>> model({"audio": np.zeros((1, 300), "int32")}).shape
    (1, 300, 256)
    """

    def __init__(self, **kwargs: Any):
        model_kwargs = {k: kwargs.pop(k) for k in ("name", "trainable", "dtype") if k in kwargs}
        config = ModelConfig.from_dict(kwargs)
        c = config

        # === Layers ===
        input_embedding = None
        if c.input_encoding == "embedding":
            input_embedding = keras.layers.Embedding(c.quantization_channels, c.residual_channels, name="input_embedding")
        elif c.input_encoding == "one_hot_amplitude":
            # A fixed table: the one-hot and two amplitude columns, so the step export folds it
            # into the first layer's tables exactly as it folds a learned embedding.
            input_embedding = keras.layers.Embedding(
                c.quantization_channels, c.quantization_channels + 2, trainable=False, name="input_embedding")
        initial_conv = CausalConv1D(
            c.residual_channels, c.initial_kernel_size, use_bias=c.use_bias, name="initial_conv"
        )
        global_embedding = (
            keras.layers.Embedding(
                c.global_conditioning_classes, c.global_conditioning_channels, name="global_embedding"
            )
            if c.global_conditioning_classes else None
        )
        upsample_network = (
            UpsampleNetwork(c.upsample_scales, c.local_conditioning_channels, name="upsample_network")
            if c.local_conditioning_channels else None
        )
        residual_blocks = [
            ResidualBlock(
                c.residual_channels, c.gate_channels, c.skip_channels,
                kernel_size=c.kernel_size, dilation_rate=dilation,
                global_conditioning_channels=c.global_conditioning_channels if global_embedding else 0,
                local_conditioning_channels=c.local_conditioning_channels,
                use_bias=c.use_bias, use_residual=i < c.num_layers - 1, name=f"residual_block_{i}",
            )
            for i, dilation in enumerate(c.all_dilations)
        ]
        head_conv = keras.layers.Conv1D(c.skip_channels, 1, use_bias=c.use_bias, name="head_conv")
        # Logits stay float32 under mixed precision: softmax over 256 classes needs the range.
        logits_conv = keras.layers.Conv1D(
            c.quantization_channels, 1, use_bias=c.use_bias, dtype="float32", name="logits"
        )

        # === Functional graph ===
        inputs = {"audio": keras.Input(shape=(None,), dtype="int32", name="audio")}
        if global_embedding is not None:
            inputs["global_id"] = keras.Input(shape=(), dtype="int32", name="global_id")
        if upsample_network is not None:
            inputs["mel"] = keras.Input(shape=(None, c.local_conditioning_channels), name="mel")
        layers = dict(zip(_GRAPH_LAYERS, (input_embedding, initial_conv, global_embedding, upsample_network,
                                          residual_blocks, head_conv, logits_conv)))
        logits, layer_inputs = _graph(c, layers, inputs)
        if c.input_encoding == "one_hot_amplitude":
            input_embedding.embeddings.assign(np.concatenate(
                [np.eye(c.quantization_channels, dtype=np.float32), amplitude_features(c.quantization_channels)], axis=1))

        super().__init__(inputs=inputs, outputs=logits, **model_kwargs)

        # === Config and sub-layers, kept so the step export reuses these very weights ===
        self.model_config = config
        self.input_embedding = input_embedding
        self.initial_conv = initial_conv
        self.global_embedding = global_embedding
        self.upsample_network = upsample_network
        self.residual_blocks = residual_blocks
        self.head_conv = head_conv
        self.logits_conv = logits_conv
        self._layer_input_tensors = layer_inputs

    def layer_inputs_model(self) -> keras.Model:
        """Same inputs; outputs ``[logits, input of block 0, ..., input of block L-1]``.

        The block inputs are what an incremental generator keeps in its ring buffer, so
        this is how a prime waveform fills that buffer in one parallel pass.
        """
        return keras.Model(self.inputs, [self.output, *self._layer_input_tensors], name=f"{self.name}_layer_inputs")

    def full_context_logits(self):
        """The symbolic logits of only the positions that see a full receptive field.

        The same layers on the same inputs, but every skip 1x1 and the output head run on
        positions ``receptive_field - 1`` onwards only: the positions before see causal zero
        padding, and training crops them anyway. At a window of ``receptive_field + 2,047``
        samples of `small` that is a quarter fewer multiply-adds a step, for the same numbers.
        """
        layers = {name: getattr(self, name) for name in _GRAPH_LAYERS}
        inputs = {tensor.name: tensor for tensor in self.inputs}
        return _graph(self.model_config, layers, inputs, skip_from=self.receptive_field - 1)[0]

    @classmethod
    def from_model_config(cls, config: ModelConfig, **kwargs: Any) -> "WaveNet":
        return cls(**config.to_dict(), **kwargs)

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> "WaveNet":
        """A freshly initialized model of a named preset, with fields overridden."""
        return cls.from_model_config(get_preset(preset, **overrides))

    @property
    def receptive_field(self) -> int:
        return self.model_config.receptive_field

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "trainable": self.trainable, **self.model_config.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "WaveNet":
        return cls(**config)


# The sub-layers the forward pass uses, by the attribute names the model keeps them under.
_GRAPH_LAYERS = ("input_embedding", "initial_conv", "global_embedding", "upsample_network", "residual_blocks",
                 "head_conv", "logits_conv")


def _graph(c: ModelConfig, layers: dict[str, Any], inputs: dict[str, Any], skip_from: int = 0):
    """The forward pass through ``layers``: (logits from position ``skip_from`` on, each block's input)."""
    audio = inputs["audio"]
    if layers["input_embedding"] is not None:
        x = layers["input_embedding"](audio)
    else:
        x = ops.one_hot(audio, c.quantization_channels)
    x = layers["initial_conv"](x)
    global_condition = local_condition = None
    if layers["global_embedding"] is not None:
        global_condition = layers["global_embedding"](inputs["global_id"])
    if layers["upsample_network"] is not None:
        local_condition = layers["upsample_network"](inputs["mel"])
    skips, layer_inputs = [], []
    for block in layers["residual_blocks"]:
        layer_inputs.append(x)
        x, skip = block(x, global_condition=global_condition, local_condition=local_condition, skip_from=skip_from)
        skips.append(skip)
    y = keras.layers.Add(name="skip_sum" if not skip_from else None)(skips) if len(skips) > 1 else skips[0]
    y = layers["head_conv"](ops.relu(y))
    return layers["logits_conv"](ops.relu(y)), layer_inputs
