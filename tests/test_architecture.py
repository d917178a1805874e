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
# The applications live in one sub-package: the command line, the demo and the benchmarks.
APPLICATIONS = ("wavenet_tf.apps",)


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


def import_graph() -> dict[str, set[str]]:
    """Each project module -> the project modules it imports (annotation-only imports included)."""
    found = modules()
    graph = {}
    for module, path in found.items():
        targets = set()
        for name in imports(module, path):
            parts = name.split(".")
            # `from serving.stream import Stream` names a module; `from serving import x` may name one too.
            candidates = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
            target = next((c for c in candidates if c in found), None)
            if target is not None and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_modules_import_each_other_in_a_circle():
    # serving.step_model, .stream and .workspace did (issue 23): a stream needed the model's module
    # for its annotations and the workspace the stream's private helpers.
    assert cycles(import_graph()) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_applications_have_a_package_of_their_own():
    # wavenet_tf/ was one flat room where the training library sat beside the CLI, the demo and
    # the benchmarks: now a listing of wavenet_tf/ shows the library, and wavenet_tf/apps/ the rest.
    top = {p.stem for p in (ROOT / "wavenet_tf").glob("*.py")} | {p.name for p in (ROOT / "wavenet_tf").iterdir()
                                                                  if p.is_dir() and (p / "__init__.py").exists()}
    assert not {name for name in top if name in ("cli", "demo") or name.startswith("bench_")}, top
    apps = {p.stem for p in (ROOT / "wavenet_tf" / "apps").glob("*.py")} | {"cli"}
    assert {"cli", "demo", "bench_quality", "bench_recipe", "bench_data", "bench_train", "bench_sound"} <= apps
    assert all(layer(module) == "application" for module in modules() if module.startswith("wavenet_tf.apps"))
