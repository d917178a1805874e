"""Generate and execute the compendium: ``NN_*.py`` (jupytext percent) -> executed ``NN_*.ipynb``.

    python notebooks/build.py                 # all notebooks, full sizes, written next to the sources
    python notebooks/build.py 03 05           # some of them
    python notebooks/build.py --quick --out /tmp/nb   # small sizes (what the test runs)

Each notebook runs in a fresh kernel with the ``notebooks/`` folder as its working
directory; a cell that raises fails the build with the cell's error. Work files (data,
runs, bundles) go to ``WAVENET_NOTEBOOK_WORK`` (default ``notebooks/_work``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# TensorFlow's start-up chatter: absl log lines from C++ (no environment variable silences them
# in TF 2.21) and SavedModel's "Assets written" INFO lines.
TF_LOG_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl|INFO:tensorflow:)")


def drop_tensorflow_chatter(notebook) -> None:
    """Remove output lines that are TensorFlow's logging, so readers see the notebook's own output."""
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                lines = [line for line in output["text"].splitlines(keepends=True) if not TF_LOG_LINE.match(line)]
                if not lines:
                    continue
                output["text"] = "".join(lines)
            kept.append(output)
        if cell.cell_type == "code":
            cell["outputs"] = kept


def relative_paths(notebook, work: Path) -> None:
    """Write the work folder as ``_work`` and the repository as ``.`` in text outputs: an executed
    notebook is read on other machines, where the building machine's absolute paths mean nothing."""
    # Longest first: the work folder usually lies inside the repository.
    prefixes = sorted({(str(work), "_work"), (str(work.resolve()), "_work"), (str(HERE.parent), ".")},
                      key=lambda pair: len(pair[0]), reverse=True)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            fields = [("text", output)] if "text" in output else []
            fields += [(kind, output["data"]) for kind in ("text/plain", "text/html") if kind in output.get("data", {})]
            for key, holder in fields:
                text = holder[key]
                for prefix, replacement in prefixes:
                    text = text.replace(prefix, replacement)
                holder[key] = text


def sources(selected: list[str]) -> list[Path]:
    found = sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))
    if selected:
        found = [p for p in found if any(p.name.startswith(s) for s in selected)]
        if not found:
            raise SystemExit(f"no notebook matches {selected}; have {[p.stem for p in HERE.glob('[0-9][0-9]_*.py')]}")
    return found


def build(source: Path, out: Path, quick: bool, work: Path, timeout: int = 900) -> float:
    """Execute one notebook source; write ``out/<name>.ipynb``; return the seconds it took."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    notebook = jupytext.read(source)
    env = dict(os.environ, WAVENET_NOTEBOOK_QUICK="1" if quick else "0", WAVENET_NOTEBOOK_WORK=str(work))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The kernel imports the repository's packages from the notebooks' parent folder.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    started = time.perf_counter()
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE)}})
    client.execute(env=env)
    drop_tensorflow_chatter(notebook)
    relative_paths(notebook, work)
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out / f"{source.stem}.ipynb")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="prefixes (01, 02_causal, ...); default: all")
    parser.add_argument("--quick", action="store_true", help="small sizes (the test suite's setting)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the executed .ipynb files")
    parser.add_argument("--work", type=Path, default=None, help="folder for data, runs and bundles")
    args = parser.parse_args(argv)
    work = (args.work or (args.out / "_work" if args.out != HERE else HERE / "_work")).resolve()
    total = 0.0
    for source in sources(args.notebooks):
        seconds = build(source, args.out, args.quick, work)
        total += seconds
        print(f"{source.stem}: executed in {seconds:.0f} s -> {args.out / (source.stem + '.ipynb')}", flush=True)
    print(f"all executed in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
