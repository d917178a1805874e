"""wavenet-tf: a WaveNet toolkit — audio to data, Keras 3 model, training, export, generation.

Importing the package is cheap: TensorFlow and Keras load only when a name that needs
them is first used (``wavenet_tf.WaveNet``), so the CLI's TensorFlow-free commands stay
fast and work where only the serving requirements are installed.

A ``.keras`` file of a trained model names this package's classes, and Keras looks them up
only among the classes registered so far (it imports no third-party module named in a file).
So importing the package registers them with Keras as soon as Keras is there: at once if it
is imported already, else right after whoever imports it first. The Keras idiom works::

    import keras
    import wavenet_tf  # noqa: F401  (registers WaveNet and its layers)

    model = keras.saving.load_model("runs/first/model_best.keras")
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
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


def _register_with_keras() -> None:
    """Import the modules whose classes `.keras` files name (each registers its own)."""
    for module in ("wavenet_tf.model", "wavenet_tf.metrics", "wavenet_tf.recipe"):
        importlib.import_module(module)


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Finds ``keras`` as the path finder does and runs `_register_with_keras` once it has loaded.

    Nothing happens in a process that never imports Keras (the CLI's TensorFlow-free
    commands, a serving-only install): the finder looks at one name and steps aside.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None  # not installed, or found some other way: the usual error or finder applies
        load = spec.loader.exec_module

        def exec_module(module) -> None:
            load(module)
            _remove_hook()
            _register_with_keras()

        spec.loader.exec_module = exec_module
        return spec


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterKeras)]


if "keras" in sys.modules:
    _register_with_keras()
elif not any(isinstance(f, _AfterKeras) for f in sys.meta_path):
    # Just before the path finder, which would find keras: finders placed earlier (an import
    # blocker, a test's stand-in for a serving-only install) still come first.
    _at = next((i for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder), len(sys.meta_path))
    sys.meta_path.insert(_at, _AfterKeras())
