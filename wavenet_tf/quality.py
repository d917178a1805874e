"""What a listener would measure: a classical predictor's bits/sample and the sound of audio.

NumPy only (no TensorFlow), so a bundle's output can be judged where serving runs.

- `lpc_bits`: the cost, in bits per sample, of the mu-law classes of a recording under
  backward-adaptive linear prediction — order-32 coefficients fitted (autocorrelation
  method, Levinson-Durbin) on the samples *before* each block, and the prediction residual
  modelled as a Laplace distribution whose scale is the mean absolute residual of the last
  few samples, integrated over each class's amplitude interval. It is causal, needs no side
  information, and scores exactly the targets a WaveNet is scored on, so the two compare.
  A model that does not beat it has learned less than a 1970s speech coder knows.
- `listener_measures`: level (RMS in dBFS, the fraction of near-silent frames), pitch
  (autocorrelation periodicity, the fraction of voiced frames, median F0) and noisiness
  (spectral flatness: 0.56 for white noise, near 0 for a tone).
- `compare_to_source`: for a vocoder's output against the audio its mel frames came from:
  envelope correlation, voiced frames in each, F0 error in cents where both are voiced.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from wavenet_tf.core.level import NEAR_SILENT_DBFS, near_silent_fraction
from wavenet_tf.core.mu_law import mu_law_decode, mu_law_expand

# Frames for the pitch and spectrum measures: 64 ms with 50 % overlap at 16 kHz.
FRAME_SECONDS = 0.064
# A pitch frame quieter than this is left out of periodicity and flatness and is not voiced: the
# core's near-silent level, the one every measure uses (the near-silent share itself is the
# core's, over its 20 ms frames).
SILENCE_DBFS = NEAR_SILENT_DBFS
F0_MIN, F0_MAX = 60.0, 1000.0  # Hz: the pitch search range (voices and the instruments' melodies)
VOICED_THRESHOLD = 0.6  # normalized autocorrelation at the pitch lag for a frame to count as voiced


# --- the linear-prediction baseline ---------------------------------------------------------

def class_edges(quantization_channels: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Each mu-law class's amplitude interval [lo, hi) in the linear domain (outer ones infinite).

    `wavenet_tf.core.mu_law.mu_law_encode` rounds the companded value to the nearest of the evenly
    spaced levels, so class ``c``'s interval is ± half a level around level ``c``, expanded.
    """
    mu = quantization_channels - 1
    companded = (np.arange(quantization_channels + 1) - 0.5) * 2.0 / mu - 1.0
    edges = mu_law_expand(np.clip(companded, -1.0, 1.0), quantization_channels).astype(np.float64)
    edges[0], edges[-1] = -np.inf, np.inf
    return edges[:-1], edges[1:]


def levinson(r: np.ndarray, order: int) -> np.ndarray:
    """Prediction coefficients ``a`` (x_t ≈ Σ a_k x_{t-k}) from autocorrelation ``r[0..order]``."""
    a = np.zeros(order)
    error = r[0]
    for i in range(order):
        if error <= 0:
            break
        k = (r[i + 1] - np.dot(a[:i], r[i:0:-1])) / error
        a[:i] = a[:i] - k * a[:i][::-1]
        a[i] = k
        error *= 1.0 - k * k
    return a


def lpc_coefficients(history: np.ndarray, order: int) -> np.ndarray:
    """Order-``order`` coefficients fitted to ``history`` (Hann window, lag window, noise floor)."""
    if len(history) <= 2 * order:
        return np.zeros(order)
    x = history * np.hanning(len(history))
    spectrum = np.fft.rfft(x, 2 * len(x))
    r = np.fft.irfft(np.abs(spectrum) ** 2)[: order + 1]
    if r[0] <= 0:
        return np.zeros(order)
    # A Gaussian lag window and a -40 dB white-noise floor keep the filter stable and stop it
    # from fitting a narrow peak that the next block does not have.
    lags = np.arange(order + 1)
    r = r * np.exp(-0.5 * (2 * math.pi * 40.0 / 16000.0 * lags) ** 2)
    r[0] *= 1.0 + 1e-4
    return levinson(r, order)


def _log_laplace_mass(lo: np.ndarray, hi: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """log P(lo <= X < hi) for X ~ Laplace(mean, scale), stable in both tails."""
    width = hi - lo
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # Both edges on one side: one exponential times (1 - exp(-width / scale)).
        side = np.where(lo >= mean, lo - mean, mean - hi)
        log_side = math.log(0.5) - side / scale + np.log(-np.expm1(-width / scale))
        middle = 1.0 - 0.5 * np.exp(-(mean - lo) / scale) - 0.5 * np.exp(-(hi - mean) / scale)
        log_middle = np.log(np.maximum(middle, 1e-300))
    return np.where((lo >= mean) | (hi <= mean), log_side, log_middle)


def lpc_bits(
    classes: np.ndarray, quantization_channels: int = 256, start: int = 0, order: int = 32,
    block: int = 512, history: int = 1024, scale_window: int = 32, floor: float = 1e-4,
) -> np.ndarray:
    """Bits for each target ``classes[start:]`` under backward-adaptive linear prediction.

    Args:
        classes: int mu-law classes of one recording.
        start: the first target scored (a WaveNet's receptive field, to score the same samples).
        order: prediction order.
        block: samples that share one set of coefficients.
        history: samples before a block that its coefficients are fitted on.
        scale_window: past residuals whose mean absolute value is the Laplace scale.
        floor: weight of a uniform distribution mixed in, so no class costs more than
            log2(quantization_channels / floor) bits.

    Returns:
        float64 bits, shape ``(len(classes) - start,)``.
    """
    classes = np.asarray(classes, np.int64)
    n = len(classes)
    if start >= n:
        return np.zeros(0)
    x = mu_law_decode(classes, quantization_channels).astype(np.float64)
    padded = np.concatenate([np.zeros(order), x])
    past = np.lib.stride_tricks.sliding_window_view(padded[:-1], order)[:, ::-1]  # row t: x[t-1], ..., x[t-order]
    prediction = np.zeros(n)
    first_block = (start // block) * block
    for begin in range(0, n, block):
        end = min(begin + block, n)
        if end <= first_block:
            continue
        a = lpc_coefficients(x[max(0, begin - history):begin], order)
        prediction[begin:end] = past[begin:end] @ a
    residual = np.abs(x - prediction)
    # The scale at t is the mean |residual| of t - scale_window .. t - 1: causal, like the prediction.
    total = np.concatenate([[0.0], np.cumsum(residual)])
    t = np.arange(n)
    lo_t = np.maximum(0, t - scale_window)
    count = np.maximum(t - lo_t, 1)
    scale = (total[t] - total[lo_t]) / count
    scale = np.maximum(scale, 1e-5)  # digital silence: a tiny scale, not a zero division
    lo, hi = class_edges(quantization_channels)
    targets = slice(start, n)
    log_p = _log_laplace_mass(lo[classes[targets]], hi[classes[targets]], prediction[targets], scale[targets])
    p = (1.0 - floor) * np.exp(log_p) + floor / quantization_channels
    return -np.log2(p)


def lpc_report(tracks_classes: list[np.ndarray], quantization_channels: int = 256, start: int = 0) -> dict[str, Any]:
    """Mean LPC bits/sample over several recordings' classes (targets from ``start`` in each)."""
    bits = [lpc_bits(c, quantization_channels, start) for c in tracks_classes]
    joined = np.concatenate(bits) if bits else np.zeros(0)
    if joined.size == 0:
        raise ValueError(f"no recording is longer than start={start} samples: nothing to score.")
    return {"bits_per_sample": float(joined.mean()), "num_samples": int(joined.size), "order": 32}


# --- listener measures ----------------------------------------------------------------------

def _frames(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    length = int(round(FRAME_SECONDS * sample_rate))
    hop = length // 2
    audio = np.asarray(audio, np.float64)
    if len(audio) < length:
        audio = np.concatenate([audio, np.zeros(length - len(audio))])
    count = 1 + (len(audio) - length) // hop
    return np.lib.stride_tricks.sliding_window_view(audio, length)[::hop][:count]


def frame_dbfs(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Each frame's RMS level in dB relative to full scale (floored at -120)."""
    rms = np.sqrt(np.mean(_frames(audio, sample_rate) ** 2, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-6))


def pitch_track(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the normalized autocorrelation at the pitch lag (0 if none) and F0 in Hz (0 if none).

    The normalization divides by the energies of the two overlapping parts, so a periodic
    signal scores 1 at its period whatever its level. The pitch lag is the shortest local
    peak within 90 % of the best one (a sine peaks at every multiple of its period).
    """
    frames = _frames(audio, sample_rate)
    frames = frames - frames.mean(axis=1, keepdims=True)
    n = frames.shape[1]
    min_lag = max(2, int(sample_rate / F0_MAX))
    max_lag = min(n // 2, int(math.ceil(sample_rate / F0_MIN)))
    spectrum = np.fft.rfft(frames, 2 * n, axis=1)
    ac = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, : max_lag + 2]
    energy = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames ** 2, axis=1)], axis=1)
    lags = np.arange(max_lag + 2)
    head = energy[:, n - lags]  # Σ x_t², t < n - lag
    tail = energy[:, n:n + 1] - energy[:, lags]  # Σ x_t², t >= lag
    r = ac / np.sqrt(np.maximum(head * tail, 1e-30))
    inner = r[:, min_lag:max_lag + 1]
    is_peak = (inner > r[:, min_lag - 1:max_lag]) & (inner >= r[:, min_lag + 1:max_lag + 2])
    peaks = np.where(is_peak, inner, -np.inf)
    best = peaks.max(axis=1)
    periodicity = np.where(np.isfinite(best), np.maximum(best, 0.0), 0.0)
    f0 = np.zeros(len(frames))
    for i in np.flatnonzero(best > 0):  # a negative best peak is no period at all
        lag = min_lag + int(np.flatnonzero(peaks[i] >= 0.9 * best[i])[0])
        # A parabola through the peak and its neighbours places the period between samples.
        left, mid, right = r[i, lag - 1], r[i, lag], r[i, lag + 1]
        denominator = left - 2 * mid + right
        offset = 0.5 * (left - right) / denominator if denominator < 0 else 0.0
        f0[i] = sample_rate / (lag + offset)
    return periodicity, f0


def spectral_flatness(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per frame: geometric over arithmetic mean of the Hann-windowed power spectrum (DC and Nyquist left out)."""
    frames = _frames(audio, sample_rate)
    power = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1)[:, 1:-1]) ** 2 + 1e-30
    return np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)


def listener_measures(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """Level, voicing and noisiness of ``audio`` (float in [-1, 1]) as one flat dict.

    Periodicity and flatness average the frames that are not near-silent; the voiced
    fraction counts near-silent frames as unvoiced (silence is not a tone).
    """
    audio = np.asarray(audio, np.float64)
    levels = frame_dbfs(audio, sample_rate)
    audible = levels >= SILENCE_DBFS
    periodicity, f0 = pitch_track(audio, sample_rate)
    voiced = audible & (periodicity >= VOICED_THRESHOLD)
    flatness = spectral_flatness(audio, sample_rate)
    rms = float(np.sqrt(np.mean(audio ** 2))) if audio.size else 0.0
    mean_or_none = lambda values: float(np.mean(values)) if values.size else None
    return {
        "seconds": round(len(audio) / sample_rate, 3),
        "rms_dbfs": round(20.0 * math.log10(max(rms, 1e-6)), 2),
        "near_silent_fraction": round(near_silent_fraction(audio, sample_rate), 4),
        "periodicity": mean_or_none(periodicity[audible]),
        "voiced_fraction": round(float(np.mean(voiced)), 4),
        "median_f0_hz": float(np.median(f0[voiced])) if voiced.any() else None,
        "spectral_flatness": mean_or_none(flatness[audible]),
    }


def voiced_run_seconds(audio: np.ndarray, sample_rate: int) -> float:
    """How long ``audio`` stays voiced from its start: seconds until the first frame that is
    near-silent or below the voicing threshold (a primed continuation that holds its tone)."""
    periodicity, _ = pitch_track(audio, sample_rate)
    voiced = (periodicity >= VOICED_THRESHOLD) & (frame_dbfs(audio, sample_rate) >= SILENCE_DBFS)
    unvoiced = np.flatnonzero(~voiced)
    frames = int(unvoiced[0]) if unvoiced.size else len(voiced)
    hop = int(round(FRAME_SECONDS * sample_rate)) // 2
    return round(frames * hop / sample_rate, 3)


def compare_to_source(generated: np.ndarray, source: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """How closely ``generated`` follows ``source`` frame by frame (a vocoder against its input).

    envelope_correlation: Pearson r of the frame levels in dB (floored at -80). f0_error_cents:
    the median |1200 log2(F0 ratio)| over frames voiced in both (None when there are none).
    """
    count = min(len(_frames(generated, sample_rate)), len(_frames(source, sample_rate)))
    level_g = np.maximum(frame_dbfs(generated, sample_rate)[:count], -80.0)
    level_s = np.maximum(frame_dbfs(source, sample_rate)[:count], -80.0)
    correlation = None
    if count > 1 and level_g.std() > 0 and level_s.std() > 0:
        correlation = float(np.corrcoef(level_g, level_s)[0, 1])
    per_g, f0_g = pitch_track(generated, sample_rate)
    per_s, f0_s = pitch_track(source, sample_rate)
    voiced_g = (level_g >= SILENCE_DBFS) & (per_g[:count] >= VOICED_THRESHOLD)
    voiced_s = (level_s >= SILENCE_DBFS) & (per_s[:count] >= VOICED_THRESHOLD)
    both = voiced_g & voiced_s
    cents = np.abs(1200.0 * np.log2(f0_g[:count][both] / f0_s[:count][both])) if both.any() else np.zeros(0)
    return {
        "envelope_correlation": correlation,
        "voiced_fraction": round(float(voiced_g.mean()), 4) if count else 0.0,
        "source_voiced_fraction": round(float(voiced_s.mean()), 4) if count else 0.0,
        "both_voiced_fraction": round(float(both.mean()), 4) if count else 0.0,
        "f0_error_cents": float(np.median(cents)) if cents.size else None,
    }
