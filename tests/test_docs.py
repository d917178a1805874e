"""The documentation cannot rot: its links resolve, its command lines parse, and the README's quick start runs.

- **Links.** Every relative link and image in README.md, docs/*.md, notebooks/README.md and
  the notebooks' markdown (the jupytext ``.py`` sources and the executed ``.ipynb``) names a
  file of the repository, and a ``#fragment`` names a heading of that file by GitHub's slug
  rule. Images are files under the repository, so the pages read the same offline.
- **Command lines.** Every ``wavenet …`` line in a ``bash`` block of those pages, and every
  example in ``wavenet COMMAND --help``, parses with the real argument parser: a required
  flag left out (``generate … --out four.wav`` without ``--seconds``) fails here.
- **The quick start.** Every ``bash`` and ``python`` block of README.md runs, in order, in one
  empty folder, as written — unless the line just before the block is
  ``<!-- not run: REASON -->``. Lines that are a plain ``wavenet`` command run in this
  process (TensorFlow is imported once, not once per command); anything else (pipes,
  ``curl``) runs in bash with the virtual environment's ``wavenet`` on the PATH. Three
  substitutions keep it to seconds, none of which can supply a flag the README forgot:
  ``wavenet train`` gets small-size flags appended (a narrow 4-layer model, 2 steps; on
  ``--resume`` only the training ones) — optional flags a user would also pass, checked to
  be optional; ``wavenet serve`` gets a free ``--port`` and runs in the background until
  the end, and later lines reach it on that port instead of the README's; ``aplay`` is a
  stand-in that reads the audio and discards it. Every ``.wav`` a command names as its
  output (``--out``, ``-o``) must then decode as audio.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
NOTEBOOKS = ROOT / "notebooks"
PAGES = [README, *DOCS, NOTEBOOKS / "README.md"]


# --- Markdown, read just well enough --------------------------------------------------------

@dataclass
class Block:
    info: str          # the fence's language ("bash", "python", "")
    code: str
    line: int          # 1-based line of the opening fence
    not_run: str | None  # the reason given by a `<!-- not run: ... -->` just above it


FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)[^\n]*$")
NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(.*?)\s*-->\s*$")


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text."""
    found, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, start, body = opening.group(2), i, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        above = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = NOT_RUN.match(above)
        found.append(Block(opening.group(3), "\n".join(body), start + 1, marker.group(1) if marker else None))
        i += 1
    return found


def prose(text: str, inline_code: bool = False) -> str:
    """The text without fenced blocks (and without inline code unless asked): what links and headings live in."""
    kept, fence = [], None
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(2)
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            kept.append(line if inline_code else re.sub(r"`[^`\n]*`", "``", line))
    return "\n".join(kept)


LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
IMAGE = re.compile(r"!\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)|<img\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)", re.I)


def link_targets(text: str) -> list[str]:
    text = prose(text)
    return LINK.findall(text) + HTML_LINK.findall(text) + REFERENCE.findall(text)


def image_targets(text: str) -> list[str]:
    return [a or b for a, b in IMAGE.findall(prose(text))]


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text, not its address
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return "".join(c for c in text if c.isalnum() or c in "-_ ").replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's slug, with GitHub's -1, -2 … for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(text, inline_code=True).splitlines():
        heading = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = github_slug(heading.group(1))
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


def notebook_markdown(path: Path) -> str:
    """The markdown cells of a notebook (.ipynb) or of its jupytext source (.py), joined."""
    if path.suffix == ".ipynb":
        import nbformat

        notebook = nbformat.read(path, as_version=4)
    else:
        import jupytext

        notebook = jupytext.read(path)
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def documents() -> list[tuple[Path, str]]:
    """(file, Markdown text) for every page the link check covers; relative links resolve from the file's folder."""
    notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")) + sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    return [(page, page.read_text()) for page in PAGES] + [(nb, notebook_markdown(nb)) for nb in notebooks]


def text_of(path: Path) -> str:
    return notebook_markdown(path) if path.suffix in (".ipynb", ".py") else path.read_text()


EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto: …


def broken_links(page: Path, text: str) -> list[str]:
    problems = []
    for target in link_targets(text):
        if EXTERNAL.match(target):
            continue
        address, _, fragment = target.partition("#")
        where = f"{page.relative_to(ROOT)}: ({target})"
        if not address:  # a heading of this page
            if fragment not in anchors(text):
                problems.append(f"{where}: this page has no heading whose anchor is #{fragment}")
            continue
        resolved = (page.parent / address).resolve()
        if ROOT not in resolved.parents and resolved != ROOT:
            problems.append(f"{where} points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where} names no file")
        elif fragment and resolved.is_file() and resolved.suffix in (".md", ".ipynb", ".py"):
            if fragment not in anchors(text_of(resolved)):
                problems.append(f"{where}: {resolved.name} has no heading whose anchor is #{fragment}")
    for target in image_targets(text):
        if EXTERNAL.match(target) or target.startswith("/"):
            problems.append(f"{page.relative_to(ROOT)}: image {target} is not a file of the repository (offline reading)")
    return problems


# --- links ---------------------------------------------------------------------------------

@pytest.mark.parametrize("page", [p for p, _ in documents()], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(page):
    assert not broken_links(page, text_of(page))


def test_the_link_check_catches_a_missing_file_a_missing_heading_and_a_remote_image(tmp_path):
    page = ROOT / "docs" / "checked.md"  # never written: only where relative links resolve from
    text = ("[ok](data.md#decoding-cleaning-and-the-cache) [ok](#a-b--c_d) [gone](nothing.md) "
            "[bad](data.md#no-such-heading) [bad](#a-b-c_d) ![remote](https://example.com/x.png) "
            "`[code](skipped.md)`\n\n## A `b` — c_d\n")
    problems = broken_links(page, text)
    assert len(problems) == 4, problems
    assert any("nothing.md" in p for p in problems) and any("#no-such-heading" in p for p in problems)
    assert any("#a-b-c_d" in p for p in problems) and any("example.com" in p for p in problems)


DOCS_REFERENCE = re.compile(r"\bdocs/([\w.-]+\.md)(?:#([\w-]+))?")


def test_the_code_points_at_pages_and_headings_that_exist():
    # Comments, docstrings and messages say "see docs/training.md#several-machines": those must not rot either.
    sources = [ROOT / "Makefile", ROOT / ".ci" / "run"]
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and not d.endswith(".egg-info")
                         and d not in ("node_modules", "__pycache__", "_work", "bench_out", "demo_out")]
        sources += [Path(folder, f) for f in files if f.endswith((".py", ".html", ".txt", ".toml"))]
    found, problems = 0, []
    for source in sources:
        for number, line in enumerate(source.read_text(errors="replace").splitlines(), 1):
            for page, fragment in DOCS_REFERENCE.findall(line):
                found += 1
                target = ROOT / "docs" / page
                if not target.is_file():
                    problems.append(f"{source.relative_to(ROOT)}:{number}: docs/{page} does not exist")
                elif fragment and fragment not in anchors(target.read_text()):
                    problems.append(f"{source.relative_to(ROOT)}:{number}: docs/{page} has no heading #{fragment}")
    assert found > 10 and not problems, problems


def test_github_slugs():
    assert github_slug("Quality on real audio") == "quality-on-real-audio"
    assert github_slug("Choosing `realtime`") == "choosing-realtime"
    assert github_slug("Audio → run → bundle → sound") == "audio--run--bundle--sound"
    assert github_slug("The [server](x.md), v1.0!") == "the-server-v10"


def test_the_readme_and_the_notebooks_list_every_notebook():
    listed = {page: text_of(page) for page in (README, NOTEBOOKS / "README.md")}
    for notebook in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        for page, text in listed.items():
            assert notebook.name in text, f"{page.relative_to(ROOT)} does not link {notebook.name}"


def test_the_readme_is_a_guide_and_says_why_not_tensorflow_io():
    text = README.read_text()
    assert len(text.splitlines()) <= 300, "README.md is the guide; reference belongs in docs/"
    assert "tensorflow-io" in text and "2.18" in text and "abandoned" in text
    for page in DOCS:
        assert f"docs/{page.name}" in text or page.name == "README.md", f"README.md does not point to docs/{page.name}"


# --- command lines ---------------------------------------------------------------------------

SHELLS = {"bash", "sh", "shell", "console"}
OPERATORS = {"|", "||", "&", "&&", ";", ";;", "(", ")", "<", ">", ">>", "<<", "|&"}


def logical_lines(code: str, first_line: int = 1) -> list[tuple[int, str]]:
    """Shell commands with their line numbers: continuations joined, quotes that span lines kept whole."""
    out, pending, start = [], "", first_line
    for number, raw in enumerate(code.splitlines(), first_line):
        if not pending:
            start = number
        pending += raw + "\n"
        if raw.rstrip().endswith("\\"):
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # a quotation still open: the command goes on
            continue
        if shlex.split(pending, comments=True):
            out.append((start, pending.rstrip("\n")))
        pending = ""
    return out


def tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line.replace("\\\n", " "), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def wavenet_calls(line: str) -> list[list[str]]:
    """The argument lists of every `wavenet` (or `.venv/bin/wavenet`) command on a shell line."""
    calls, segment = [], []
    for token in tokens(line) + [";"]:
        if token in OPERATORS:
            while segment and re.match(r"^[A-Za-z_]\w*=", segment[0]):
                segment.pop(0)  # VAR=value before the command
            if segment and (segment[0] == "wavenet" or segment[0].endswith("/wavenet")):
                calls.append(segment[1:])
            segment = []
        else:
            segment.append(token)
    return calls


def parse_error(argv: list[str]) -> str | None:
    """None if `wavenet ARGV` parses, else argparse's message."""
    from wavenet_tf.apps.cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as stop:
        if stop.code:
            return err.getvalue().strip().splitlines()[-1]
    return None


WAVENET_LINE = re.compile(r"^\s*(?:[A-Za-z_]\w*=\S*\s+)*(?:\S*/)?wavenet\s")


def shell_text(block: Block) -> str:
    """A block's shell commands: all of a shell block; of an untagged one (notebooks show commands so),
    the lines that start with `wavenet` and their continuations — the rest may be a diagram."""
    if block.info in SHELLS:
        return block.code
    if block.info:
        return ""
    kept, going_on = [], False
    for line in block.code.splitlines():
        going_on = going_on or bool(WAVENET_LINE.match(line))
        kept.append(line if going_on else "")  # blank keeps the line numbers
        going_on = going_on and line.rstrip().endswith("\\")
    return "\n".join(kept)


def documented_command_lines() -> list[tuple[str, list[str]]]:
    found = []
    for page, text in documents():
        for block in blocks(text):
            for number, line in logical_lines(shell_text(block), block.line + 1):
                where = (f"{page.relative_to(ROOT)}:{number}" if page.suffix == ".md"
                         else f"{page.relative_to(ROOT)}, line {number} of its markdown cells")
                found += [(where, argv) for argv in wavenet_calls(line)]
    return found


def commands_of(parser) -> dict:
    """Every leaf command's parser by its full name ("data inspect")."""
    import argparse

    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = commands_of(sub)
                found.update({f"{name} {k}": v for k, v in nested.items()} if nested else {name: sub})
    return found


def help_examples() -> list[tuple[str, list[str]]]:
    """Every `wavenet …` example line under "examples:" in a command's --help."""
    from wavenet_tf.apps.cli import build_parser

    found = []
    for name, parser in commands_of(build_parser()).items():
        examples = (parser.epilog or "").partition("examples:")[2]
        for number, line in logical_lines(examples):
            found += [(f"wavenet {name} --help", argv) for argv in wavenet_calls(line)]
    return found


def test_every_documented_wavenet_command_line_parses():
    lines = documented_command_lines()
    assert len(lines) > 40  # README, docs and notebooks together show that many
    failures = [f"{where}: wavenet {shlex.join(argv)}\n    {error}"
                for where, argv in lines if (error := parse_error(argv))]
    assert not failures, "\n".join(failures)


def test_every_help_example_parses():
    examples = help_examples()
    assert len(examples) > 20
    failures = [f"{where}: wavenet {shlex.join(argv)}\n    {error}"
                for where, argv in examples if (error := parse_error(argv))]
    assert not failures, "\n".join(failures)


def test_a_command_line_without_a_required_flag_is_caught():
    [argv] = wavenet_calls("wavenet generate bundles/gc --speaker harp --streams 4 --out four.wav  # a comment")
    assert "--seconds" in parse_error(argv)
    assert wavenet_calls("A=1 .venv/bin/wavenet info --preset tiny | jq . && make demo") == [["info", "--preset", "tiny"]]


# --- the README's quick start, run as written ------------------------------------------------

# Appended to `wavenet train` (the last occurrence of a flag wins): a narrow 4-layer model and two
# steps. The presets' rates, kernel sizes and conditioning are left as the README chose them.
TRAIN_SIZES = ["--epochs", "1", "--steps-per-epoch", "2", "--validation-steps", "1", "--batch-size", "2",
               "--target-length", "256", "--audio-every", "0"]
MODEL_SIZES = ["--num-stacks", "1", "--dilations", "1,2,4,8", "--residual-channels", "8", "--gate-channels", "8",
               "--skip-channels", "16"]
# What a shell would act on (pipes, redirections, expansions, globs, a leading VAR=value): such lines run in bash.
SHELL_ONLY = re.compile(r"[|&;<>()$`*?~\[\]{}\\=]")


def plain_wavenet(line: str) -> list[str] | None:
    """The arguments of a line that is one `wavenet` command the shell would pass on unchanged, else None."""
    words = tokens(line)
    if words[:1] != ["wavenet"] or SHELL_ONLY.search(line.split(" #")[0]):
        return None
    return words[1:]


def shrunk(argv: list[str]) -> list[str]:
    if argv[:1] != ["train"]:
        return argv
    return argv + TRAIN_SIZES + ([] if "--resume" in argv else MODEL_SIZES)


def test_only_lines_a_shell_would_pass_on_unchanged_run_in_this_process():
    assert plain_wavenet("wavenet generate b --seconds 5 --out five.wav   # a comment") == \
        ["generate", "b", "--seconds", "5", "--out", "five.wav"]
    for line in ("wavenet generate b --seconds 5 --out - | aplay", "WAVENET_ENGINE=graph wavenet generate b",
                 "wavenet data inspect ~/recordings", "wavenet data inspect clips/*.flac", "wavenet info > x",
                 "wavenet train $DATA --out r", "curl localhost:8000/v1/model"):
        assert plain_wavenet(line) is None, line


def test_the_sizes_added_to_the_quick_start_are_optional_flags():
    from wavenet_tf.apps.cli import build_parser

    train = commands_of(build_parser())["train"]
    optional = {option for action in train._actions if not action.required for option in action.option_strings}
    assert set(TRAIN_SIZES[::2] + MODEL_SIZES[::2]) <= optional


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wav_outputs(line: str) -> list[str]:
    words = tokens(line)
    return [words[i + 1] for i, w in enumerate(words[:-1])
            if w in ("--out", "-o") and words[i + 1].endswith(".wav")]


class QuickStart:
    """Runs the README's blocks in one folder; servers stay up until `close`."""

    def __init__(self, folder: Path):
        self.folder = folder
        shims = folder.parent / "shims"
        shims.mkdir()
        aplay = shims / "aplay"  # a sound card's stand-in: reads what it is given
        aplay.write_text("#!/bin/sh\ncat > /dev/null\n")
        aplay.chmod(0o755)
        self.env = dict(os.environ, PATH=os.pathsep.join([str(shims), str(Path(sys.executable).parent),
                                                          os.environ.get("PATH", "")]))
        self.ports: dict[str, str] = {}  # the README's port -> the one this run's server listens on
        self.servers: list[tuple[subprocess.Popen, Path]] = []

    def run(self, where: str, line: str, capsys) -> None:
        argv = plain_wavenet(line)
        if argv is not None and argv[:1] == ["serve"]:
            self.serve(where, argv)
        elif argv is not None:
            from wavenet_tf.apps.cli import main

            try:
                code = main(shrunk(argv))
            except SystemExit as stop:  # argparse refused the line
                code = stop.code
            captured = capsys.readouterr()
            assert code == 0, f"{where}: {line}\n{captured.err[-3000:]}"
        else:
            for readme_port, port in self.ports.items():
                line = re.sub(rf"\b(localhost|127\.0\.0\.1):{readme_port}\b", rf"\g<1>:{port}", line)
            out = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=self.folder, env=self.env,
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, f"{where}: {line}\n{out.stderr[-3000:]}"
        for name in wav_outputs(line):
            self.assert_audio(where, name)

    def serve(self, where: str, argv: list[str]) -> None:
        words = argv + ["--port", "8000"]
        readme_port, port = words[words.index("--port") + 1], free_port()
        log = self.folder.parent / f"serve-{port}.log"
        with open(log, "w") as sink:
            server = subprocess.Popen([str(Path(sys.executable).with_name("wavenet")), *argv, "--port", str(port)],
                                      cwd=self.folder, env=self.env, stdout=sink, stderr=subprocess.STDOUT)
        self.servers.append((server, log))
        self.ports[readme_port] = str(port)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, f"{where}: wavenet {shlex.join(argv)} stopped:\n{log.read_text()[-3000:]}"
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                return
            time.sleep(0.2)
        raise AssertionError(f"{where}: the server did not answer within 60 s:\n{log.read_text()[-3000:]}")

    def assert_audio(self, where: str, name: str) -> None:
        import soundfile as sf

        path = self.folder / name
        assert path.is_file(), f"{where}: {name} was not written"
        try:
            info = sf.info(str(path))
        except RuntimeError as error:
            raise AssertionError(f"{where}: {name} is not audio ({path.read_bytes()[:200]!r})") from error
        assert info.frames > 0, f"{where}: {name} is empty"

    def close(self) -> None:
        for server, _ in self.servers:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=10)
            if server.poll() is None:
                server.kill()


def readme_runs() -> list[Block]:
    found = [b for b in blocks(README.read_text()) if b.info in ("bash", "python")]
    assert all(b.not_run for b in found if b.not_run is not None), "a `not run` marker must say why"
    return [b for b in found if b.not_run is None]


def test_the_quick_start_covers_every_job():
    shown = [argv for block in readme_runs() if block.info == "bash"
             for _, line in logical_lines(block.code) for argv in wavenet_calls(line)]
    commands = {argv[0] for argv in shown}
    assert {"data", "train", "evaluate", "export", "generate", "serve"} <= commands
    assert any("--mel-from" in argv for argv in shown) and any("--global-cond" in argv for argv in shown)
    assert any(block.info == "python" for block in readme_runs())


def test_the_quick_start_runner_fails_on_a_failing_command_and_on_an_output_that_is_not_audio(
        tmp_path, monkeypatch, capsys):
    folder = tmp_path / "runner"
    folder.mkdir()
    monkeypatch.chdir(folder)
    quick = QuickStart(folder)
    with pytest.raises(AssertionError, match="README.md:1: wavenet generate"):
        quick.run("README.md:1", "wavenet generate no-bundle --seconds 1 --out x.wav", capsys)
    with pytest.raises(AssertionError, match="README.md:2: wavenet generate"):  # argparse refuses it
        quick.run("README.md:2", "wavenet generate no-bundle --out x.wav", capsys)
    with pytest.raises(AssertionError, match=r"README.md:3: true \| false"):
        quick.run("README.md:3", "true | false", capsys)
    with pytest.raises(AssertionError, match="y.wav is not audio"):  # an error body saved as the WAV
        quick.run("README.md:4", """python3 -c 'open("y.wav", "w").write("{}")' -o y.wav""", capsys)


def test_the_readme_quick_start_runs_as_written(tmp_path, monkeypatch, capsys):
    if shutil.which("curl") is None:
        pytest.fail("the README's serving examples use curl; install it (apt-get install curl)")
    folder = tmp_path / "quick-start"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("WAVENET_CACHE", str(tmp_path / "cache"))  # not the user's ~/.cache
    quick = QuickStart(folder)
    try:
        for block in readme_runs():
            if block.info == "python":
                exec(compile(block.code, f"README.md:{block.line + 1}", "exec"), {"__name__": "__readme__"})
                continue
            for number, line in logical_lines(block.code, block.line + 1):
                quick.run(f"README.md:{number}", line, capsys)
    finally:
        quick.close()
