"""Bits per sample: the cross-entropy of targets under logits, and the unigram baseline.

Training's metric, `wavenet evaluate` and the quality benchmark report these figures.
"""

from __future__ import annotations

import math

import numpy as np


def unigram_bits(classes: np.ndarray, quantization_channels: int = 256) -> float:
    """Entropy in bits of the class histogram: the cost of ignoring all context."""
    counts = np.bincount(np.asarray(classes).ravel(), minlength=quantization_channels).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def log_softmax_bits(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cross-entropy of each target under its logits, in bits (float64 for a stable sum)."""
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=-1))
    picked = np.take_along_axis(z, targets[..., None].astype(np.int64), axis=-1)[..., 0]
    return (log_norm - picked) / math.log(2.0)
