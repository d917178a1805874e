"""The import layers docs/architecture.md describes, checked on every module's source.

core (``wavenet_tf.core``) <- training (the rest of ``wavenet_tf``) and serving (``serving``)
<- export (``export``) <- the applications (the CLI, the demo, the benchmarks). A module may
import its own layer and the layers below it, never one above; imports inside functions count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = {"tensorflow", "keras", "tf2onnx"}
RUNTIME = {"onnxruntime", "onnx"}
APPLICATIONS = ("wavenet_tf.cli", "wavenet_tf.demo", "wavenet_tf.bench_quality", "wavenet_tf.bench_recipe",
                "wavenet_tf.bench_data", "wavenet_tf.bench_train", "wavenet_tf.bench_sound")


def layer(module: str) -> str:
    if module == "wavenet_tf.core" or module.startswith("wavenet_tf.core."):
        return "core"
    if any(module == app or module.startswith(app + ".") for app in APPLICATIONS):
        return "application"
    return module.split(".")[0].replace("wavenet_tf", "training")


# What each layer may import from the project, and which heavy libraries it must not import.
ALLOWED = {
    "core": ({"core"}, FRAMEWORKS | RUNTIME),
    "training": ({"core", "training"}, RUNTIME),
    "serving": ({"core", "serving"}, FRAMEWORKS),
    "export": ({"core", "training", "serving", "export"}, set()),
    "application": ({"core", "training", "serving", "export", "application"}, set()),
}


def modules() -> dict[str, Path]:
    found = {}
    for package in ("wavenet_tf", "export", "serving"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(module: str, path: Path) -> set[str]:
    names = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            else:
                names.add(node.module)
    return names


def project_layer(name: str) -> str | None:
    top = name.split(".")[0]
    if top not in ("wavenet_tf", "export", "serving") or name == "wavenet_tf":
        return None  # the package root only holds lazy names
    return layer(name)


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_module_imports_a_layer_above_its_own(module):
    path = modules()[module]
    own = layer(module)
    allowed, forbidden = ALLOWED[own]
    for name in imports(module, path):
        target = project_layer(name)
        assert target is None or target in allowed, f"{module} ({own}) imports {name} ({target})"
        assert name.split(".")[0] not in forbidden, f"{module} ({own}) imports {name}"


def test_the_layers_cover_every_module_and_the_checker_sees_a_violation(tmp_path):
    assert {layer(m) for m in modules()} == set(ALLOWED)
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from serving.bundle import load_bundle\n    import tensorflow\n")
    names = imports("wavenet_tf.core.bad", bad)
    assert {"serving.bundle", "tensorflow"} <= names
    assert project_layer("serving.bundle") not in ALLOWED["core"][0]
