"""Files that must never be half-written or silently damaged: atomic writes and SHA-256 checksums.

Training writes its run directory with these, export its bundle, serving checks a bundle's
files against the digests in its card. No TensorFlow, no onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


class RunError(ValueError):
    """The run directory cannot be used as asked; the message says what to do."""


def file_digest(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (names and contents, in sorted order)."""
    digest = hashlib.sha256()
    paths = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in paths:
        if path.is_dir():
            digest.update(str(p.relative_to(path)).encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def checksum_path(path: Path) -> Path:
    """Where `atomic_write(..., checksum=True)` keeps ``path``'s SHA-256: ``<path>.sha256``."""
    return path.with_name(path.name + ".sha256")


def verify_checksum(path: Path) -> None:
    """Raise `RunError` unless ``path`` matches a digest in its ``.sha256`` file (if it has one).

    The file lists the digest of the current contents, plus the previous contents' while a
    replacement is in flight, so a crash between the two renames is not mistaken for damage.
    """
    sidecar = checksum_path(path)
    if not sidecar.is_file():
        return
    if file_digest(path) not in sidecar.read_text().split():
        raise RunError(f"{path}: contents differ from the checksum in {sidecar.name} (truncated or altered after "
                       "it was written); restore it from a copy or retrain — it cannot be trusted as it is.")


def atomic_write(path: Path, write: Callable[[Path], None], checksum: bool = False) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, fsync it, and rename it into place.

    With ``checksum`` the SHA-256 goes to ``<path>.sha256`` (see `verify_checksum`): first the
    new and old digests, then, after the rename, the new one alone.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        if checksum:
            new = file_digest(tmp_path)
            old = [file_digest(path)] if path.is_file() else []
            write_text_atomically(checksum_path(path), "\n".join([new] + old) + "\n")
        os.replace(tmp_path, path)
        if checksum:
            write_text_atomically(checksum_path(path), new + "\n")
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def output_file(path: str | Path) -> Iterator[Path]:
    """Where to write a file the user asked for, so that it appears complete or not at all.

    Yields a temporary path beside ``path`` (same folder, same suffix, hidden name); when the
    block ends normally the file is fsynced and renamed over ``path``, keeping an existing
    file's permissions. When it ends by an exception — Ctrl-C included — the partial file is
    removed and an existing ``path`` is left exactly as it was. A symlink is written through
    to its target. Something that is not a regular file (``/dev/null``, a FIFO, a terminal)
    cannot be replaced and holds nothing to keep: it is yielded as it is and written directly.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        yield path
        return
    target = path.resolve() if path.is_symlink() else path
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=target.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if target.exists():
            mode = target.stat().st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # mkstemp creates 0600; give the usual permissions
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, value: Any) -> None:
    write_text_atomically(path, json.dumps(value, indent=2) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RunError(f"{path}: cannot be read ({error}).") from None
