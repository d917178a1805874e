"""The install contract: every package in pyproject exists, and serving never needs TensorFlow."""

import tomllib
from pathlib import Path

from tests.tf_free import run_without_tensorflow

ROOT = Path(__file__).resolve().parents[1]


def test_every_declared_package_is_a_real_package():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for name in packages:
        assert (ROOT / name.replace(".", "/") / "__init__.py").is_file(), f"{name} has no __init__.py"


def test_every_package_folder_is_declared():
    # A sub-package missing from the list is left out of a wheel: the console script then
    # fails in a deployment install while every test here (run from the tree) passes.
    packages = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for top in ("wavenet_tf", "export", "serving") for init in (ROOT / top).rglob("__init__.py")}
    assert found <= packages, f"not in pyproject's packages: {sorted(found - packages)}"


def test_serving_imports_without_tensorflow():
    code = (
        "import serving, wavenet_tf.core.mu_law, wavenet_tf.core.sampling, wavenet_tf, wavenet_tf.core.config, wavenet_tf.core.presets\n"
        "import serving.bundle, serving.onnx_step, wavenet_tf.core.numpy_step, wavenet_tf.core.ring_buffer, wavenet_tf.core.step_generator\n"
        "import serving.server, serving.batcher, serving.streaming_sampler, serving.naive, serving.bench\n"
        "import wavenet_tf.builtin_data, wavenet_tf.core.audio, wavenet_tf.data, serving.evaluate, wavenet_tf.cli\n"
        "print('ok')\n"
    )
    out = run_without_tensorflow(code, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
