"""`wavenet generate`: a bundle -> a WAV file, or raw PCM on stdout while it is generated."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from serving.bundle import Bundle
from serving.limits import ascii_index
from wavenet_tf.core.level import NEAR_SILENT_DBFS


def resolve_speaker(bundle: Bundle, speaker: str | None) -> int | None:
    """A global class id from an id or a label name; None when the bundle is not globally conditioned.

    The messages name neither a flag nor a path: the CLI (``--speaker``) and the server
    (the ``speaker`` field) each say where the value came from, and a server must not tell
    its clients where its files are.
    """
    spec = bundle.card.global_conditioning
    if spec is None:
        if speaker is not None:
            raise ValueError("the model is not globally conditioned: it takes no speaker.")
        return None
    names = list(spec.names)
    if speaker is None:
        raise ValueError(f"the model is globally conditioned: a speaker is required "
                         f"(ids 0..{spec.classes - 1}{', names ' + ', '.join(names) if names else ''}).")
    if speaker in names:
        return names.index(speaker)
    index = ascii_index(speaker)
    if index is not None and index < spec.classes:
        return index
    raise ValueError(f"{speaker!r} is neither an id in [0, {spec.classes}) nor one of {names}.")


NO_EXCERPTS_NOTE = ("note: {path} has no excerpts of its training audio (exported before they existed), so "
                     "generation starts from silence and may be quiet; re-export it (`wavenet export RUN --out {path}`) "
                     "or pass --prime FILE.")


def resolve_prime(bundle: Bundle, prime: str | None, streams: int, seed: int, global_ids=None,
                  start: float | None = None, seconds: float | None = None) -> tuple[np.ndarray | None, str | None]:
    """What each stream starts from: ``((B, P) float audio or None for silence, a note for the user or None)``.

    ``prime``: None or ``excerpt`` (default: one of the bundle's excerpts per stream, of the
    stream's speaker, chosen by ``seed``), ``excerpt:N`` or ``excerpt:NAME`` (that one),
    ``silence`` (a receptive field of digital silence), or an audio file, of which
    `serving.excerpts.choose_part` takes the part that ``start``/``seconds`` name (default:
    its most active receptive field). A mel-conditioned bundle starts from silence by
    default: its mel frames drive it.

    Raises:
        ValueError: an unknown excerpt, ``start``/``seconds`` without a file, or a part outside it.
    """
    from serving.excerpts import choose_part, excerpt_name, level, load_excerpt, pick_excerpt, stack_primes

    is_file = prime not in (None, "silence", "excerpt") and not prime.startswith("excerpt:")
    if (start is not None or seconds is not None) and not is_file:
        raise ValueError("--prime-start and --prime-seconds choose part of an audio file: pass --prime FILE.")
    rate, rf = bundle.card.sample_rate, bundle.card.receptive_field
    if prime == "silence" or (prime is None and bundle.local_conditioning):
        return None, None
    if is_file:
        from serving.card_audio import cleaning_settings, load_for_bundle
        from wavenet_tf.core.audio import trim_silence

        # Cleaned as in training, but not trimmed: --prime-start counts on the file's own
        # timeline, what a user reads in an editor (it counted from the trimmed audio, so 3.5 s
        # was "outside" a 4.59 s file with 1.6 s of leading silence). The same samples, unshifted.
        audio = load_for_bundle(bundle.card, prime, trim_top_db=0)
        cleaning = cleaning_settings(bundle.card)
        _, sound_end = trim_silence(audio, cleaning["trim_top_db"], cleaning["trim_frame_length"])
        part = choose_part(audio, rate, rf, start, seconds, name=str(prime), sound_end=sound_end)
        heard = level(part, rate)
        note = None
        if heard["rms_dbfs"] < NEAR_SILENT_DBFS or heard["near_silent_fraction"] > 0.5:
            note = (f"note: the chosen part of {prime} is near-silent ({heard['rms_dbfs']:.1f} dBFS), so generation "
                    "may be quiet; choose a louder part with --prime-start/--prime-seconds.")
        return part[None].repeat(streams, axis=0), note
    entries = bundle.excerpts
    if not entries:
        if prime is not None and prime != "excerpt":
            raise ValueError(f"--prime {prime}: {bundle.path} has no excerpts; re-export it or pass --prime FILE.")
        return None, NO_EXCERPTS_NOTE.format(path=bundle.path)
    if prime is None or prime == "excerpt":
        ids = [None] * streams if global_ids is None else list(global_ids)
        chosen = [pick_excerpt(entries, ids[i], seed, i) for i in range(streams)]
    else:
        wanted = prime.split(":", 1)[1] if ":" in prime else ""
        names = [excerpt_name(e) for e in entries]
        index = names.index(wanted) if wanted in names else ascii_index(wanted)
        if index is None or index >= len(entries):
            raise ValueError(f"--prime {prime}: {bundle.path} has excerpts 0..{len(entries) - 1} ({', '.join(names)}).")
        chosen = [index] * streams
    return stack_primes([load_excerpt(bundle.path, entries[i], rate) for i in chosen]), None


def mel_from_file(bundle: Bundle, path: str | Path) -> np.ndarray:
    """Log-mel frames of an audio file with the bundle's settings (NumPy; no TensorFlow)."""
    from serving.card_audio import load_for_bundle

    # Training computed mel frames from cleaned audio: clean this file the same way.
    return mel_frames(bundle, load_for_bundle(bundle.card, path))


def mel_frames(bundle: Bundle, audio: np.ndarray) -> np.ndarray:
    """Log-mel frames of mono audio at the bundle's rate, with the bundle's settings."""
    from wavenet_tf.core.mel import log_mel

    local = bundle.card.local_conditioning
    return log_mel(audio, bundle.card.sample_rate, local.n_mels, local.hop_length,
                   local.n_fft, local.fmin, local.fmax)


def to_pcm16(chunk: np.ndarray) -> bytes:
    """``(streams, n)`` float audio -> interleaved little-endian 16-bit PCM (streams = channels)."""
    pcm = np.clip(np.round(chunk.T * 32767.0), -32768, 32767).astype("<i2")
    return pcm.tobytes()


class Progress:
    """One stderr line: seconds done, samples/s per stream and the real-time factor.

    On a terminal the line is redrawn in place (``\r``) as chunks arrive. Anywhere else — a
    log file, a pipe — carriage returns would pile up in the file, so the figures are written
    once, as a plain line, when generation ends.
    """

    def __init__(self, total: int, sample_rate: int, enabled: bool = True, live: bool | None = None):
        self.total, self.rate, self.enabled = total, sample_rate, enabled
        self.live = sys.stderr.isatty() if live is None else live
        self.started = time.perf_counter()
        self.done = 0

    def _line(self) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        speed = self.done / elapsed
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done / self.rate:6.2f}/{self.total / self.rate:.2f} s"
                f"  {speed:8,.0f} samples/s  RTF {speed / self.rate:5.2f}")

    def update(self, done: int) -> None:
        self.done = done
        if self.enabled and self.live:
            sys.stderr.write("\r" + self._line())
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n" if self.live else self._line() + "\n")
            sys.stderr.flush()
