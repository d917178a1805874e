"""`wavenet generate`: a bundle -> a WAV file, or raw PCM on stdout while it is generated."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from serving.bundle import Bundle


def resolve_speaker(bundle: Bundle, speaker: str | None) -> int | None:
    """A global class id from an id or a label name; None when the bundle is not globally conditioned.

    The messages name neither a flag nor a path: the CLI (``--speaker``) and the server
    (the ``speaker`` field) each say where the value came from, and a server must not tell
    its clients where its files are.
    """
    spec = bundle.card["conditioning"]["global"]
    if spec is None:
        if speaker is not None:
            raise ValueError("the model is not globally conditioned: it takes no speaker.")
        return None
    names = spec.get("names") or []
    if speaker is None:
        raise ValueError(f"the model is globally conditioned: a speaker is required "
                         f"(ids 0..{spec['classes'] - 1}{', names ' + ', '.join(names) if names else ''}).")
    if speaker in names:
        return names.index(speaker)
    # ASCII digits only: str.isdigit() also accepts "١" or "²", which are not ids.
    if speaker.isascii() and speaker.isdigit() and int(speaker) < spec["classes"]:
        return int(speaker)
    raise ValueError(f"{speaker!r} is neither an id in [0, {spec['classes']}) nor one of {names}.")


def mel_from_file(bundle: Bundle, path: str | Path) -> np.ndarray:
    """Log-mel frames of an audio file with the bundle's settings (NumPy; no TensorFlow)."""
    from serving.card_audio import load_for_bundle

    # Training computed mel frames from cleaned audio: clean this file the same way.
    return mel_frames(bundle, load_for_bundle(bundle.card, path))


def mel_frames(bundle: Bundle, audio: np.ndarray) -> np.ndarray:
    """Log-mel frames of mono audio at the bundle's rate, with the bundle's settings."""
    from serving.mel import log_mel

    local = bundle.card["conditioning"]["local"]
    return log_mel(audio, bundle.card["sample_rate"], local["n_mels"], local["hop_length"],
                   local["n_fft"], local["fmin"], local["fmax"])


def to_pcm16(chunk: np.ndarray) -> bytes:
    """``(streams, n)`` float audio -> interleaved little-endian 16-bit PCM (streams = channels)."""
    pcm = np.clip(np.round(chunk.T * 32767.0), -32768, 32767).astype("<i2")
    return pcm.tobytes()


class Progress:
    """One stderr line: seconds done, samples/s per stream and the real-time factor."""

    def __init__(self, total: int, sample_rate: int, enabled: bool = True):
        self.total, self.rate, self.enabled = total, sample_rate, enabled
        self.started = time.perf_counter()

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        speed = done / elapsed
        width = 24
        filled = int(width * done / max(self.total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done / self.rate:6.2f}/{self.total / self.rate:.2f} s"
                         f"  {speed:8,.0f} samples/s  RTF {speed / self.rate:5.2f}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
