"""Log-mel frames for local conditioning, in NumPy: training, export and serving all use these.

Frame ``k`` describes samples ``[k·hop, (k+1)·hop)`` — the samples `UpsampleNetwork`
hands it to — so its Hann analysis window of ``n_fft`` samples is *centred* on that
interval, at ``k·hop + hop/2`` (the audio is zero-padded by ``n_fft/2 − hop/2`` on the
left). A window that merely contained the interval at one end would weigh it near zero:
Hann tapers to nothing at its edges. Consequence, tested: for a sound starting at sample
``n``, the first frame holding at least half of its steady energy is ``n // hop`` when
``n`` falls in the first half of its hop interval, and the next frame otherwise. A file
of ``N`` samples has ``N // hop`` frames (the incomplete last hop is dropped).

The filters are HTK mel triangles as `tf.signal.linear_to_mel_weight_matrix` builds them (DC bin
excluded) on a periodic Hann window; a test holds the frames to a `tf.signal` computation within
float32 rounding.
"""

from __future__ import annotations

import numpy as np

# Added to mel energies before the log, so silence maps to log(1e-5) ≈ −11.5, not −inf.
LOG_OFFSET = 1e-5


def _hertz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(frequencies / 700.0)


def mel_matrix(n_mels: int, n_fft: int, sample_rate: int, fmin: float, fmax: float) -> np.ndarray:
    """``(n_fft // 2 + 1, n_mels)`` triangular filters, as tf.signal builds them."""
    bins = n_fft // 2 + 1
    linear = np.linspace(0.0, sample_rate / 2.0, bins)[1:]  # the DC bin gets no weight
    spectrogram_mel = _hertz_to_mel(linear)[:, None]
    edges = np.linspace(_hertz_to_mel(np.float64(fmin)), _hertz_to_mel(np.float64(fmax)), n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lower_slopes = (spectrogram_mel - lower) / (center - lower)
    upper_slopes = (upper - spectrogram_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    return np.concatenate([np.zeros((1, n_mels)), weights]).astype(np.float32)


def log_mel(audio: np.ndarray, sample_rate: int, n_mels: int, hop_length: int, n_fft: int = 1024,
            fmin: float = 0.0, fmax: float = 0.0) -> np.ndarray:
    """``(len(audio) // hop_length, n_mels)`` float32 log-mel energies of mono ``audio``."""
    if n_fft < hop_length:
        raise ValueError(f"n_fft ({n_fft}) must be at least hop_length ({hop_length}): frames would skip samples.")
    num_frames = len(audio) // hop_length
    if num_frames == 0:
        return np.zeros((0, n_mels), np.float32)
    left = n_fft // 2 - hop_length // 2
    signal = np.pad(np.asarray(audio[: num_frames * hop_length], np.float32), (left, n_fft - hop_length - left))
    starts = np.arange(num_frames) * hop_length
    frames = signal[starts[:, None] + np.arange(n_fft)[None, :]]
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, n=n_fft, axis=1)) ** 2
    mel = power.astype(np.float32) @ mel_matrix(n_mels, n_fft, sample_rate, fmin, fmax or sample_rate / 2.0)
    return np.log(mel + LOG_OFFSET).astype(np.float32)
