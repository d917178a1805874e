"""wavenet-tf: a WaveNet toolkit — audio to data, Keras 3 model, training, export, generation.

Importing the package is cheap: TensorFlow and Keras load only when a name that needs
them is first used (``wavenet_tf.WaveNet``), so the CLI's TensorFlow-free commands stay
fast and work where only the serving requirements are installed.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ModelConfig": "wavenet_tf.core.config",
    "get_preset": "wavenet_tf.core.presets",
    "preset_names": "wavenet_tf.core.presets",
    "CausalConv1D": "wavenet_tf.model",
    "ResidualBlock": "wavenet_tf.model",
    "UpsampleNetwork": "wavenet_tf.model",
    "WaveNet": "wavenet_tf.model",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wavenet_tf' has no attribute {name!r}")
