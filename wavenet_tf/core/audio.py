"""Any common audio file -> clean mono float32 at the model's sample rate.

read (WAV 8/16/24/32-bit PCM and float, FLAC, OGG/Vorbis, MP3; any rate, any channels)
-> check -> mono -> remove DC -> resample (soxr) -> trim leading/trailing silence ->
optional peak normalization -> check again.

Every format is decoded by soundfile (libsndfile, bundled in its wheel), so training and
serving read the same samples from the same file. tensorflow-io is not used: it does not
load with TensorFlow 2.18+. No TensorFlow here: this is part of the core both sides import.

A file that cannot become usable audio raises `AudioError`, whose message names the file
and the reason; callers decide whether to skip it or stop.
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3")

# Below this (dBFS, loudest frame's RMS) a file is treated as silence, whatever trim_top_db says.
SILENCE_FLOOR_DB = -70.0
# Decoding holds a whole file in memory: files longer than this many seconds are refused
# by default (callers pass their own limit, e.g. `--max-seconds`).
MAX_SECONDS = 3600.0
# No real recording has fewer samples per second; a header that says so is damaged (and
# resampling 1 Hz to 16 kHz would multiply the file's size 16,000 times).
MIN_SAMPLE_RATE = 1000
# Float samples beyond this many times full scale are not audio (a corrupt float file).
MAX_FLOAT_PEAK = 1000.0
# RIFF sizes that mean "unknown, read to the end of the file" (streaming writers leave them).
_STREAMING_SIZES = (0, 0xFFFFFFFF)


class AudioError(ValueError):
    """A file that cannot become training audio. ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class AudioInfo:
    """What a file held before cleaning, and what cleaning did to it."""

    path: str
    format: str  # container as libsndfile names it: WAV, FLAC, OGG, MP3
    subtype: str  # encoding: PCM_16, PCM_24, FLOAT, VORBIS, MPEG_LAYER_III, ...
    sample_rate: int  # the file's own rate
    channels: int
    decoded_seconds: float  # duration before trimming
    seconds: float  # duration after trimming, at the model's rate
    trimmed_seconds: float  # silence removed from the start and the end

    @property
    def trimmed_fraction(self) -> float:
        return self.trimmed_seconds / self.decoded_seconds if self.decoded_seconds else 0.0


def read_audio(path: str | Path, max_seconds: float = MAX_SECONDS,
               max_samples: int | None = None) -> tuple[np.ndarray, int, str, str]:
    """Decode a file to float32 ``(frames, channels)`` in [-1, 1].

    Returns ``(audio, sample_rate, format, subtype)``. The header is checked before
    decoding: a file longer than ``max_seconds``, at an absurd rate, or (with
    ``max_samples``) holding more than ``max_samples`` samples over all its channels is
    refused without allocating its samples; decoding then reads no more frames than the
    header declared.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "no such file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        # os.fsencode: a file name that is not valid UTF-8 still reaches libsndfile as its bytes.
        info = sf.info(_sf_path(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioError(path, f"not a readable audio file ({_first_line(error)})") from None
    if info.frames == 0 or info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(path, "no audio frames in the file")
    if info.samplerate < MIN_SAMPLE_RATE:
        raise AudioError(path, f"the header declares {info.samplerate} Hz, below {MIN_SAMPLE_RATE} Hz "
                               "(a damaged header?)")
    if info.frames / info.samplerate > max_seconds:
        raise AudioError(path, f"{info.frames / info.samplerate:.0f} s long, over the limit of {max_seconds:g} s "
                               "(decoding holds the whole file in memory); raise --max-seconds or split the file")
    if max_samples is not None and info.frames * info.channels > max_samples:
        # The duration alone does not bound memory: 8 channels at 192 kHz are 96 times the samples
        # of mono 16 kHz, and decoding holds every one of them as float32 before mixing down.
        raise AudioError(path, f"{info.channels} channel{'s' if info.channels > 1 else ''} at {info.samplerate} Hz "
                               f"for {info.frames / info.samplerate:.1f} s is {info.frames * info.channels:,} samples "
                               f"to decode, over the limit of {max_samples:,}; send it mono, at a lower rate, "
                               "or shorter")
    if info.format in ("WAV", "WAVEX", "RF64"):
        declared, present = wav_data_sizes(path)
        if declared is not None and declared > present:
            raise AudioError(
                path, f"truncated: the WAV header declares {declared} bytes of audio but the file holds {present}"
            )
    try:
        # frames=: never more than the header declared (and the checks above accepted).
        audio, rate = sf.read(_sf_path(path), frames=info.frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, MemoryError) as error:
        raise AudioError(path, f"decoding failed, the file may be truncated or corrupt ({_first_line(error)})") from None
    if audio.shape[0] == 0:
        raise AudioError(path, "no audio frames could be decoded (truncated?)")
    return audio, rate, info.format, info.subtype


def _sf_path(path: Path) -> str | bytes:
    text = str(path)
    try:
        text.encode()
    except UnicodeEncodeError:  # a non-UTF-8 name decoded with surrogateescape: pass its bytes
        return os.fsencode(text)
    return text


def wav_data_sizes(path: str | Path) -> tuple[int | None, int]:
    """Bytes of audio a RIFF/RF64 header declares in its ``data`` chunk, and bytes present.

    libsndfile quietly decodes what is there from a truncated WAV (WAVEX and RF64
    included); comparing the two finds the truncation. Returns ``(None, 0)`` when the
    chunk cannot be found or its size is unknown (a streaming writer's 0 or 0xFFFFFFFF,
    which libsndfile reads to the end of the file).
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return None, 0
        size = os.fstat(f.fileno()).st_size
        rf64_data_size = None
        while True:
            header = f.read(8)
            if len(header) < 8:
                return None, 0
            chunk_id, chunk_size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk_id == b"ds64" and head[:4] == b"RF64":
                body = f.read(chunk_size)
                if len(body) >= 16:
                    rf64_data_size = struct.unpack("<Q", body[8:16])[0]  # riff size, then data size
                f.seek((chunk_size & 1), 1)
                continue
            if chunk_id == b"data":
                if head[:4] == b"RF64" and chunk_size == 0xFFFFFFFF:
                    chunk_size = rf64_data_size
                elif chunk_size in _STREAMING_SIZES:
                    chunk_size = None
                return chunk_size, size - f.tell()
            f.seek(chunk_size + (chunk_size & 1), 1)  # chunks are padded to even sizes


def _first_line(error: BaseException) -> str:
    # TensorFlow op errors carry "{{function_node ...}}" and "[Op:...]" decorations.
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\].*", "", str(error)).strip().splitlines()
    return text[-1].strip() if text else type(error).__name__


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of ``(frames, channels)`` audio into ``(frames,)``."""
    return audio.mean(axis=1, dtype=np.float32) if audio.ndim == 2 else audio.astype(np.float32)


def remove_dc_offset(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """High-pass below a few Hz: subtract a centred 200 ms moving average.

    Subtracting the file's global mean would lift digital silence to the mean's level
    (an 8-bit file's rounding alone gives about -54 dBFS) and stop silence trimming; a
    local average leaves silence at zero. The boxcar's side lobes make the pass band
    ripple by about 0.2 dB at 65 Hz and less above.
    """
    width = max(1, int(0.2 * sample_rate)) | 1  # odd, so the average is centred
    n = len(audio)
    if n <= width:
        return (audio - audio.mean(dtype=np.float64)).astype(np.float32)
    half = width // 2
    cumulative = np.empty(n + 1)
    cumulative[0] = 0.0
    np.cumsum(audio, dtype=np.float64, out=cumulative[1:])
    # Two float64 arrays, written in place: index arrays for the window bounds held ~90 bytes a
    # sample at once (a 30 s clip at 96 kHz took +166 MB to decode). The same sums, bit for bit.
    local = np.empty(n)
    inner = local[half : n - half]  # whole windows
    np.subtract(cumulative[width:], cumulative[: n + 1 - width], out=inner)
    inner /= width
    head = np.arange(half) + half + 1  # windows cut by the start: [0, i + half + 1)
    local[:half] = (cumulative[head] - cumulative[0]) / head
    tail = np.arange(n - half, n) - half  # windows cut by the end: [i - half, n)
    local[n - half :] = (cumulative[n] - cumulative[tail]) / (n - tail)
    np.subtract(audio, local, out=local)
    return local.astype(np.float32)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (its "HQ" quality); a no-op at equal rates."""
    if from_rate == to_rate:
        return audio
    return soxr.resample(audio, from_rate, to_rate, quality="HQ").astype(np.float32)


def frame_rms_db(audio: np.ndarray, frame_length: int) -> np.ndarray:
    """RMS level of each non-overlapping frame in dB relative to full scale (last frame may be short)."""
    num_frames = max(1, math.ceil(len(audio) / frame_length))
    padded = np.zeros(num_frames * frame_length, np.float64)
    padded[: len(audio)] = audio
    frames = padded.reshape(num_frames, frame_length)
    lengths = np.full(num_frames, frame_length, np.float64)
    lengths[-1] = len(audio) - (num_frames - 1) * frame_length or frame_length
    rms = np.sqrt((frames**2).sum(axis=1) / lengths)
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


def trim_silence(audio: np.ndarray, top_db: float, frame_length: int) -> tuple[int, int]:
    """The ``[start, end)`` sample range left after trimming quiet leading/trailing frames.

    A frame is quiet when its RMS is more than ``top_db`` below the loudest frame's
    (relative, so quiet recordings are not discarded), or below `SILENCE_FLOOR_DB`.
    Returns ``(0, 0)`` for a file that is silence throughout.
    """
    levels = frame_rms_db(audio, frame_length)
    loudest = levels.max()
    if not loudest >= SILENCE_FLOOR_DB:  # NaN included: no frame can be called loud
        return 0, 0
    if top_db <= 0:
        return 0, len(audio)
    loud = np.flatnonzero(levels >= max(loudest - top_db, SILENCE_FLOOR_DB))
    if loud.size == 0:
        return 0, 0
    return int(loud[0] * frame_length), int(min(len(audio), (loud[-1] + 1) * frame_length))


def load_audio(
    path: str | Path,
    sample_rate: int,
    trim_top_db: float = 50.0,
    trim_frame_length: int = 512,
    remove_dc: bool = True,
    normalize: bool = False,
    max_seconds: float = MAX_SECONDS,
    max_samples: int | None = None,
) -> tuple[np.ndarray, AudioInfo]:
    """Decode and clean one file. Returns mono float32 audio at ``sample_rate`` and its `AudioInfo`.

    Raises `AudioError` naming the file when it is unreadable, empty, not audio, longer
    than ``max_seconds`` (or ``max_samples`` over all channels), holds NaN/Inf or samples
    far beyond full scale, or is silence throughout.
    """
    raw, rate, fmt, subtype = read_audio(path, max_seconds, max_samples)
    if not np.isfinite(raw).all():
        raise AudioError(path, "decoded samples contain NaN or Inf (a corrupt float WAV?)")
    peak = float(np.abs(raw).max())
    if peak > MAX_FLOAT_PEAK:
        # Squares of such samples overflow float32 in every later step (found by probing 1e36).
        raise AudioError(path, f"samples reach {peak:.3g}, over {MAX_FLOAT_PEAK:g}× full scale (a corrupt float file?)")
    channels = raw.shape[1]
    decoded_seconds = raw.shape[0] / rate
    audio = to_mono(raw)
    if remove_dc:
        audio = remove_dc_offset(audio, rate)
    audio = resample(audio, rate, sample_rate)
    start, end = trim_silence(audio, trim_top_db, trim_frame_length)
    if end <= start:
        raise AudioError(path, f"silence throughout (loudest frame below {SILENCE_FLOOR_DB:.0f} dBFS)")
    audio = audio[start:end]
    if normalize:
        audio = audio * np.float32(0.99 / max(float(np.abs(audio).max()), 1e-9))
    # Float files may exceed full scale; the model's input range is [-1, 1].
    audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
    if not np.isfinite(audio).all():
        raise AudioError(path, "cleaning produced NaN or Inf")
    info = AudioInfo(
        path=str(path), format=fmt, subtype=subtype, sample_rate=rate, channels=channels,
        decoded_seconds=decoded_seconds, seconds=len(audio) / sample_rate,
        trimmed_seconds=max(0.0, decoded_seconds - len(audio) / sample_rate),
    )
    return audio, info
