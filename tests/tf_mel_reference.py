"""A `tf.signal` log-mel used only by tests, as an independent oracle for `wavenet_tf.core.mel`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Added to mel energies before the log, so silence maps to log(1e-5) ≈ −11.5, not −inf.
LOG_OFFSET = 1e-5


def log_mel(
    audio: np.ndarray,
    sample_rate: int,
    n_mels: int,
    hop_length: int,
    n_fft: int = 1024,
    fmin: float = 0.0,
    fmax: float = 0.0,
) -> np.ndarray:
    """``(len(audio) // hop_length, n_mels)`` float32 log-mel energies of mono ``audio``."""
    if n_fft < hop_length:
        raise ValueError(f"n_fft ({n_fft}) must be at least hop_length ({hop_length}): frames would skip samples.")
    num_frames = len(audio) // hop_length
    if num_frames == 0:
        return np.zeros((0, n_mels), np.float32)
    signal = tf.constant(np.asarray(audio[: num_frames * hop_length], np.float32))
    left = n_fft // 2 - hop_length // 2
    signal = tf.pad(signal, [[left, n_fft - hop_length - left]])
    stft = tf.signal.stft(signal, frame_length=n_fft, frame_step=hop_length, fft_length=n_fft, pad_end=False)
    power = tf.square(tf.abs(stft))
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=n_mels, num_spectrogram_bins=n_fft // 2 + 1, sample_rate=sample_rate,
        lower_edge_hertz=fmin, upper_edge_hertz=fmax or sample_rate / 2,
    )
    mel = tf.matmul(power, mel_matrix)
    return tf.math.log(mel + LOG_OFFSET).numpy()[:num_frames].astype(np.float32)
