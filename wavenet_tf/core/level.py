"""How loud audio is to a listener, and when a frame counts as near-silent: one definition.

The web page's level line, `wavenet generate`'s near-silent prime note, the excerpts a bundle
stores and the quality benchmark's listener measures all count near-silent frames; they
did with two thresholds (−45 dBFS over 20 ms frames, −50 over 64 ms), so the same audio got
two figures. They all use this module now (the page is handed its numbers by the server).
NumPy only.
"""

from __future__ import annotations

import numpy as np

# Frames over which the near-silent share is counted: 20 ms, short enough to find the gaps
# between notes, long enough to hold a period of anything audible above 50 Hz.
FRAME_SECONDS = 0.02
# A frame whose RMS is below this (dBFS) is near-silent: about the level of a quiet room's
# tone in a 16-bit recording, and where trained models' silent fixed points sit (−54 to −79).
NEAR_SILENT_DBFS = -45.0


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level of float audio in dB relative to full scale (−200 for digital silence)."""
    audio = np.asarray(audio, np.float64)
    rms = float(np.sqrt(np.mean(audio**2))) if audio.size else 0.0
    return 20.0 * float(np.log10(max(rms, 1e-10)))


def frame_levels(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS in dBFS of each whole `FRAME_SECONDS` frame (the whole of shorter audio as one frame)."""
    audio = np.asarray(audio, np.float64).reshape(-1)
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    count = max(1, len(audio) // frame)
    frames = audio[: count * frame].reshape(count, frame) if len(audio) >= frame else audio[None]
    return 20.0 * np.log10(np.maximum(np.sqrt(np.mean(frames**2, axis=1)), 1e-10))


def near_silent_fraction(audio: np.ndarray, sample_rate: int) -> float:
    """The share of `FRAME_SECONDS` frames below `NEAR_SILENT_DBFS`."""
    return float(np.mean(frame_levels(audio, sample_rate) < NEAR_SILENT_DBFS))


def level(audio: np.ndarray, sample_rate: int) -> dict[str, float]:
    """What a listener hears first: ``rms_dbfs`` and ``near_silent_fraction``."""
    return {"rms_dbfs": round(rms_dbfs(audio), 2),
            "near_silent_fraction": round(near_silent_fraction(audio, sample_rate), 3)}
