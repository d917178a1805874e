"""The compendium cannot rot: every notebook executes (small sizes), and the committed
``.ipynb`` files are the executed output of the current ``.py`` sources."""

import re

import jupytext
import nbformat
import pytest

from notebooks.build import build, sources

SOURCES = sources([])


def test_there_are_nine_notebooks():
    assert [p.name[:2] for p in SOURCES] == ["00", "01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_executes(source, tmp_path):
    build(source, tmp_path, quick=True, work=tmp_path / "work")
    notebook = nbformat.read(tmp_path / f"{source.stem}.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code)  # every cell ran
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert str(tmp_path) not in output_text(notebook)  # no path of the building machine


# A path from the file system's root ("/home/…/x"), not the tail of a URL ("https://host/a/b").
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.-]+/){2,}")


def output_text(notebook) -> str:
    """Everything a reader sees printed: stream text and plain/HTML results (not images)."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts += [output.get("data", {}).get(kind, "") for kind in ("text/plain", "text/html")]
    return re.sub(r"base64,[A-Za-z0-9+/=\s]+", "", "\n".join(parts))  # embedded audio is not text


def test_committed_notebooks_hold_no_absolute_paths():
    for source in SOURCES:
        found = ABSOLUTE_PATH.findall(output_text(nbformat.read(source.with_suffix(".ipynb"), as_version=4)))
        assert not found, f"{source.stem} holds the building machine's paths ({found[:3]}): rebuild it"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_is_the_executed_source(source):
    executed = source.with_suffix(".ipynb")
    assert executed.exists(), f"{executed.name} missing: run `make notebooks`"
    committed = nbformat.read(executed, as_version=4)
    expected = jupytext.read(source)
    strip = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]  # noqa: E731
    assert strip(committed) == strip(expected), f"{executed.name} is stale: run `make notebooks`"
    code = [cell for cell in committed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), f"{executed.name} was not executed: run `make notebooks`"
    if source.name[:2] != "08":  # every notebook but the glossary plots what it measures
        assert any("image/png" in o.get("data", {}) for cell in code for o in cell.outputs)
