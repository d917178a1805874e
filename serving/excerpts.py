"""Lively excerpts of the training audio, and the prime each generated stream starts from.

A trained WaveNet treats digital silence as a fixed point: primed with a receptive field of
silence it goes on generating near-silence, and primed with the end of a recording it often
continues a decaying tail. So `wavenet export` stores a few short, loud excerpts of the
training audio in the bundle (``excerpts/``, listed in the card with their checksums), and
generation starts from one of them unless told otherwise. Only the last receptive field of
a prime reaches the model; the rest of an excerpt is there to be listened to.

NumPy and soundfile only: serving imports this without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

# The level measures are the core's (one definition of near-silent); they are used here, and
# imported from here by older code.
from wavenet_tf.core.level import level, rms_dbfs  # noqa: F401

EXCERPTS_FOLDER = "excerpts"
# Seconds per excerpt: long enough to hear what the model learned, short enough for a small bundle
# (0.75 s of 16-bit audio at 16 kHz is 24 KB). Never shorter than a receptive field.
EXCERPT_SECONDS = 0.75
# Excerpts per label (or in all, without global conditioning) ...
EXCERPTS_PER_LABEL = 4
# ... but at most this many in a bundle: with many speakers, fewer each (at least one per label).
MAX_EXCERPTS = 64
# A window quieter than this (RMS over the window, dBFS) is never an excerpt.
QUIET_DBFS = -35.0


def _window_scores(audio: np.ndarray, length: int, tail: int, starts: np.ndarray) -> np.ndarray:
    """Each window's activity: the lower of its RMS and its last ``tail`` samples' RMS.

    Generation continues from a prime's end, so a window that ends in a decaying tail is a
    poor prime however loud its start: both parts must be loud.
    """
    power = np.concatenate(([0.0], np.cumsum(np.asarray(audio, np.float64) ** 2)))
    whole = (power[starts + length] - power[starts]) / length
    end = (power[starts + length] - power[starts + length - tail]) / tail
    return np.sqrt(np.minimum(whole, end))


def active_window(audio: np.ndarray, length: int, tail: int | None = None) -> int:
    """Start of the most active ``length``-sample window of ``audio`` (0 when it is shorter)."""
    audio = np.asarray(audio).reshape(-1)
    if len(audio) <= length:
        return 0
    starts = np.arange(len(audio) - length + 1)
    return int(starts[np.argmax(_window_scores(audio, length, min(tail or length, length), starts))])


def choose_part(audio: np.ndarray, sample_rate: int, receptive_field: int, start: float | None = None,
                seconds: float | None = None, name: str = "the prime", sound_end: int | None = None) -> np.ndarray:
    """The part of ``audio`` that primes generation (which continues from its end).

    With ``start`` (seconds from the start of ``audio``): from there, ``seconds`` long, or to
    ``sound_end`` (the sample where trailing silence begins; default: the end) — or to the end
    when ``start`` lies past it. Without: the most active window, ``seconds`` long or one
    receptive field (all the model sees of a prime).

    Raises:
        ValueError: ``start`` at or past the end, or a non-positive length; the message names them.
    """
    duration = len(audio) / sample_rate
    if seconds is not None and not seconds > 0:
        raise ValueError(f"--prime-seconds must be > 0, got {seconds:g}.")
    if start is not None:
        if not 0 <= start < duration:
            raise ValueError(f"--prime-start {start:g} is outside {name} (0 to {duration:.3f} s, counted from the "
                             "start of the file).")
        first = int(round(start * sample_rate))
        end = len(audio) if sound_end is None or sound_end <= first else sound_end
        last = end if seconds is None else min(len(audio), first + max(1, int(round(seconds * sample_rate))))
        return np.asarray(audio[first:last], np.float32)
    length = receptive_field if seconds is None else max(1, int(round(seconds * sample_rate)))
    first = active_window(audio, length, tail=min(length, receptive_field))
    return np.asarray(audio[first : first + length], np.float32)


@dataclass(frozen=True)
class Excerpt:
    """One excerpt chosen at export: its samples and where they came from."""

    audio: np.ndarray
    label: int | None
    label_name: str | None
    source: str  # the training file's path from its data folder, the folder's name first (never absolute: bundles travel)
    start_seconds: float  # where the excerpt starts in that file, as an editor shows it


def choose_excerpts(tracks: Sequence[tuple[np.ndarray, int | None, str | None, str]], sample_rate: int,
                    receptive_field: int, per_label: bool, seconds: float = EXCERPT_SECONDS,
                    count: int = EXCERPTS_PER_LABEL) -> list[Excerpt]:
    """The loudest windows of ``tracks`` (``(audio, label id, label name, source)``), distinct files first.

    With ``per_label`` each label gets up to ``count`` (fewer when many labels would pass
    `MAX_EXCERPTS`, at least one); otherwise ``count`` in all. Windows are
    ``max(seconds, receptive field)`` long and never overlap; windows quieter than
    `QUIET_DBFS` are skipped, so a label whose audio is all quiet gets none.
    """
    length = max(receptive_field, int(round(seconds * sample_rate)))
    tail = min(length, max(receptive_field, length // 4))
    groups: dict[int | None, list[tuple[np.ndarray, int | None, str | None, str]]] = {}
    for track in tracks:
        groups.setdefault(track[1] if per_label else None, []).append(track)
    if per_label:
        count = max(1, min(count, MAX_EXCERPTS // max(1, len(groups))))
    threshold = 10 ** (QUIET_DBFS / 20)
    chosen: list[Excerpt] = []
    for key in sorted(groups, key=lambda k: (k is None, k)):
        ranked = []  # per file: its non-overlapping windows, loudest first
        for audio, label, label_name, source in groups[key]:
            audio = np.asarray(audio, np.float32).reshape(-1)
            if len(audio) < length:
                continue
            starts = np.unique(np.r_[np.arange(0, len(audio) - length + 1, max(1, length // 8)), len(audio) - length])
            scores = _window_scores(audio, length, tail, starts)
            windows: list[tuple[float, int]] = []
            for i in np.argsort(-scores, kind="stable"):
                if scores[i] < threshold:
                    break
                if all(abs(int(starts[i]) - s) >= length for _, s in windows):
                    windows.append((float(scores[i]), int(starts[i])))
                if len(windows) == count:
                    break
            if windows:
                ranked.append((windows, audio, label, label_name, source))
        ranked.sort(key=lambda item: -item[0][0][0])
        picked = 0
        for round_ in range(count):  # the best window of every file, then every file's second best, ...
            for windows, audio, label, label_name, source in ranked:
                if picked < count and round_ < len(windows):
                    start = windows[round_][1]
                    chosen.append(Excerpt(audio[start : start + length].copy(), label, label_name, source,
                                          round(start / sample_rate, 6)))  # µs: exact to the sample
                    picked += 1
    return chosen


def write_excerpts(folder: Path, excerpts: Sequence[Excerpt], sample_rate: int) -> list[dict[str, Any]]:
    """Write 16-bit WAVs into ``folder/excerpts/``; returns the card's entries (file, label, seconds, RMS)."""
    import soundfile as sf

    entries = []
    (folder / EXCERPTS_FOLDER).mkdir(exist_ok=True)
    for i, excerpt in enumerate(excerpts):
        suffix = "" if excerpt.label is None else f"-{excerpt.label_name or excerpt.label}"
        name = f"{EXCERPTS_FOLDER}/{i:02d}{''.join(c if c.isalnum() or c in '-_' else '_' for c in suffix)}.wav"
        sf.write(folder / name, excerpt.audio, sample_rate, subtype="PCM_16", format="WAV")
        entries.append({
            "file": name, "label": excerpt.label, "label_name": excerpt.label_name,
            "seconds": round(len(excerpt.audio) / sample_rate, 3), "rms_dbfs": round(rms_dbfs(excerpt.audio), 2),
            "source": excerpt.source, "source_start_seconds": excerpt.start_seconds,
        })
    return entries


def excerpt_name(entry: dict[str, Any]) -> str:
    """How requests name an excerpt: its file name without folder and extension (``00-bass``)."""
    return Path(entry["file"]).stem


def load_excerpt(bundle_path: Path, entry: dict[str, Any], sample_rate: int) -> np.ndarray:
    """An excerpt's samples, float32 in [-1, 1]."""
    import soundfile as sf

    audio, rate = sf.read(str(bundle_path / entry["file"]), dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise ValueError(f"{bundle_path / entry['file']}: {rate} Hz, the model's rate is {sample_rate}; re-export the bundle.")
    return audio[:, 0]


def pick_excerpt(entries: Sequence[dict[str, Any]], global_id: int | None, seed: int, stream: int = 0) -> int | None:
    """Index of the excerpt that primes ``stream``: one of its label's, chosen by seed (None: no excerpts).

    Streams of one request take consecutive excerpts, so they start differently; the same
    seed picks the same excerpts. A label with no excerpt (all its audio was quiet) takes
    one of another label's.
    """
    if not entries:
        return None
    same = [i for i, e in enumerate(entries) if global_id is None or e.get("label") == global_id]
    candidates = same or list(range(len(entries)))
    return candidates[(seed + stream) % len(candidates)]


def stack_primes(primes: Sequence[np.ndarray]) -> np.ndarray:
    """One ``(B, P)`` array from per-stream primes, keeping each one's end (P: the shortest)."""
    length = min(len(p) for p in primes)
    return np.stack([np.asarray(p, np.float32)[len(p) - length :] for p in primes])
