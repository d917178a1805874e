"""Decode once: cleaned audio (and mel frames) stored as .npy, keyed by source and settings."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from wavenet_tf.core.audio import AudioInfo

# Bump when the cleaning code changes what it produces, so old entries are not reused.
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$WAVENET_CACHE``, else ``$XDG_CACHE_HOME/wavenet-tf``, else ``~/.cache/wavenet-tf``."""
    if os.environ.get("WAVENET_CACHE"):
        return Path(os.environ["WAVENET_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "wavenet-tf"


class AudioCache:
    """A folder of ``<key>.npy`` arrays with a ``<key>.json`` sidecar.

    The key hashes the source file's absolute path, size and modification time together
    with every setting that changes the output, so editing the file or the settings
    invalidates its entry, and nothing is ever decoded twice for the same inputs. Entries
    are written to a temporary file and renamed into place, so an interrupted run never
    leaves a half-written array that a later run would trust. Arrays are opened
    memory-mapped: hours of audio cost no RAM until windows are read.

    Args:
        directory: where entries live (created on first write).

    Example:
    >>> cache = AudioCache(tempfile.mkdtemp())
    >>> key = cache.key(__file__, {"sample_rate": 16000})
    >>> cache.load(key) is None
    True
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0

    def key(self, source: str | Path, settings: dict[str, Any]) -> str:
        stat = Path(source).stat()
        identity = {
            "version": CACHE_VERSION,
            "path": str(Path(source).resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "settings": settings,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]

    def load(self, key: str, ndim: int | None = None) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The entry's array and sidecar, or None (a miss) when absent or damaged.

        Damaged means: unreadable, a sidecar that is not a JSON object, an array that is not
        float32 (of ``ndim`` dimensions when given) or that holds NaN/Inf — which would
        otherwise reach the model and fail deep inside TensorFlow.
        """
        array_path, meta_path = self._paths(key)
        if not (array_path.is_file() and meta_path.is_file()):
            self.misses += 1
            return None
        try:
            meta = json.loads(meta_path.read_text())
            array = np.load(array_path, mmap_mode="r")
            valid = (isinstance(meta, dict) and array.dtype == np.float32 and (ndim is None or array.ndim == ndim)
                     and all(np.isfinite(array[i : i + (1 << 20)]).all() for i in range(0, len(array), 1 << 20)))
        except (OSError, ValueError, UnicodeDecodeError):
            valid = False
        if not valid:
            # A damaged entry is a miss: it will be decoded again and overwritten.
            self.misses += 1
            return None
        self.hits += 1
        return array, meta

    def store(self, key: str, array: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
        self.directory.mkdir(parents=True, exist_ok=True)
        array_path, meta_path = self._paths(key)
        for path, write in ((array_path, lambda f: np.save(f, np.ascontiguousarray(array))),
                            (meta_path, lambda f: f.write(json.dumps(meta).encode()))):
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    write(f)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return np.load(array_path, mmap_mode="r")

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.directory / f"{key}.npy", self.directory / f"{key}.json"


def info_to_dict(info: AudioInfo) -> dict[str, Any]:
    return dataclasses.asdict(info)


def info_from_dict(values: dict[str, Any]) -> AudioInfo:
    return AudioInfo(**values)
