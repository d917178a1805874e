"""Checks of user-given numbers and paths shared by `wavenet generate`, `serve` and `bench`.

Each returns the value it accepts or raises a ``ValueError`` whose message names the flag,
the value received and what would be valid — checked before any model is loaded or any
buffer allocated, so a bad value costs nothing (``--streams 10000`` used to allocate 5.5 GB
before failing).
"""

from __future__ import annotations

import math
from pathlib import Path

from wavenet_tf.core import sampling

# The most streams one sampler generates together (`generate --streams`, `serve --max-streams`).
# Each stream owns a ring buffer of every layer's past; past a few hundred the batched step is
# memory-bound and no faster per stream (docs/performance.md), and a WAV file written by
# libsndfile holds at most 1024 channels.
MAX_STREAMS = 256


def ascii_index(text: str) -> int | None:
    """``text`` as a non-negative integer when it is ASCII digits only, else None.

    ``str.isdigit()`` also accepts "²", "①" and "٣": ``int()`` then fails on the first two
    (a 500 in the server, a traceback-worthy message in the CLI) and reads the third as a
    number nobody typed. Ids and indices are ASCII digits, one rule for every field and flag.
    """
    return int(text) if text.isascii() and text.isdigit() else None


def check_temperature(value: float, name: str = "--temperature") -> float:
    """A finite temperature >= 0 (0 and anything at or below 1e-3 take the most likely class)."""
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0 (0 = the most likely class), got {value}.")
    return value


def check_top_k(value: int, classes: int | None = None, name: str = "--top-k") -> int:
    """A whole number of classes >= 0 (0: every class), at most the model's ``classes`` when known."""
    return sampling.check_top_k(value, classes, name)


def check_positive(value: float, name: str) -> float:
    """A finite number > 0 (seconds, timeouts)."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}.")
    return value


def check_count(value: int, name: str, low: int = 1, high: int | None = None) -> int:
    """An integer in [low, high]."""
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}.")
    return value


def check_streams(value: int, name: str = "--streams") -> int:
    """1 .. `MAX_STREAMS` streams."""
    return check_count(value, name, 1, MAX_STREAMS)


def check_port(value: int, name: str = "--port") -> int:
    """A TCP port: 0 (any free port) .. 65535."""
    return check_count(value, name, 0, 65535)


def check_output_file(path: str | Path, name: str = "--out") -> Path:
    """A file we can create or replace: not a folder, in an existing, writable folder.

    Checked before generating, so a typo costs a line, not the whole generation.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"{name} {path}: is a folder; give a file name such as {path / 'out.wav'}.")
    if not parent.is_dir():
        raise ValueError(f"{name} {path}: the folder {parent} does not exist; create it first (mkdir -p {parent}).")
    # Opening is the only honest test (permissions, read-only file systems, root): append
    # mode leaves an existing file as it is, and a file made by the test alone is removed.
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        raise ValueError(f"{name} {path}: cannot write there ({error.strerror or error}).") from None
    if not existed:
        path.unlink()
    return path


def check_api_key(key: str, name: str = "--api-key") -> str:
    """A key a client can send in a header: visible ASCII, no spaces.

    HTTP header values are bytes that servers decode as latin-1; a key with other characters
    (or with spaces, which clients and proxies trim) could never be matched, so it is
    refused at start rather than locking every client out.
    """
    if not key or not all("!" <= c <= "~" for c in key):
        raise ValueError(f"{name}: an API key must be visible ASCII characters (no spaces, no accents); "
                         "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return key
