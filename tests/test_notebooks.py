"""The compendium cannot rot: every notebook executes (small sizes), and the committed
``.ipynb`` files are the executed output of the current ``.py`` sources."""

import jupytext
import nbformat
import pytest

from notebooks.build import build, sources

SOURCES = sources([])


def test_there_are_seven_notebooks():
    assert [p.name[:2] for p in SOURCES] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_executes(source, tmp_path):
    build(source, tmp_path, quick=True, work=tmp_path / "work")
    notebook = nbformat.read(tmp_path / f"{source.stem}.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code)  # every cell ran
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]


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
    if source.name[:2] != "07":  # every notebook but the glossary plots what it measures
        assert any("image/png" in o.get("data", {}) for cell in code for o in cell.outputs)
