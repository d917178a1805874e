"""Named model configurations. Plain data: pick one and override what you need.

>>> from wavenet_tf.core.presets import get_preset
>>> get_preset("small").receptive_field
2048
>>> get_preset("small", residual_channels=64).residual_channels
64
"""

from __future__ import annotations

from typing import Any

from wavenet_tf.core.config import ModelConfig, _doubling

PRESETS: dict[str, ModelConfig] = {
    # Seconds to train on two CPU cores: tests and `make demo`.
    "tiny": ModelConfig(
        sample_rate=8000, dilations=_doubling(64), num_stacks=1,
        residual_channels=16, gate_channels=16, skip_channels=32,
    ),
    # The real-time-on-CPU target size: 20 layers, 128 ms of context at 16 kHz.
    "small": ModelConfig(
        sample_rate=16000, dilations=_doubling(512), num_stacks=2,
        residual_channels=32, gate_channels=32, skip_channels=128,
    ),
    # One stream in real time at 16 kHz on one CPU core (chosen by measurement,
    # docs/performance.md#choosing-realtime): 10 layers, 64 ms of context; step.onnx has 51 nodes.
    "realtime": ModelConfig(
        sample_rate=16000, dilations=_doubling(512), num_stacks=1,
        residual_channels=16, gate_channels=16, skip_channels=64,
    ),
    # ibab/tensorflow-wavenet's wavenet_params.json defaults (with a width-2 first conv).
    "ibab": ModelConfig(
        sample_rate=16000, dilations=_doubling(512), num_stacks=5,
        residual_channels=32, gate_channels=32, skip_channels=512,
    ),
    # A mel-conditioned vocoder: 24 layers in 4 stacks of kernel 3, hop 256 (16 ms at 16 kHz).
    "vocoder": ModelConfig(
        sample_rate=16000, dilations=_doubling(32), num_stacks=4, kernel_size=3,
        residual_channels=64, gate_channels=64, skip_channels=128,
        local_conditioning_channels=80, upsample_scales=(4, 8, 8),
    ),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str, **overrides: Any) -> ModelConfig:
    """The preset called `name`, with any field replaced by `overrides`."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {preset_names()}.")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
