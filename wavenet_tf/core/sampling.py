"""Drawing the next sample's class from logits (NumPy; shared by every generator).

Inverse-CDF sampling consumes exactly one uniform random number per sample and stream,
so two generators fed the same uniforms (naive re-computation and the streaming
sampler, Keras and onnxruntime) must produce the very same classes if their logits
agree — which is what the exactness tests check.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

# At or below this temperature a sampler takes the most likely class (argmax). Dividing
# logits by a tiny T overflows: below ~1e-307 even float64 gives inf, then NaN, and the
# "sample" is class 0 or Q - 1 every time (a full-scale square wave). Long before that the
# softmax is one-hot anyway: logits differ by more than 1e-2, so at T = 1e-3 the runner-up
# has a probability below e^-10. Every engine (NumPy, the step graph, the native step)
# therefore sees 0 for such temperatures, and 0 means argmax everywhere.
GREEDY_TEMPERATURE = 1e-3

# The draw every generator uses unless told otherwise: the `wavenet generate` flags, the
# server's request fields and its page, `StreamingSampler`, `StepModel.open_streams` and the
# naive reference all read these two, so changing them here changes every default at once.
DEFAULT_TEMPERATURE = 1.0  # the model's own distribution
DEFAULT_TOP_K = 0  # 0: draw from every class (no truncation)
# The draw export records in the card of a model trained with input jitter (DataConfig.input_noise):
# the 3 most likely classes. Such a model pulls an off past back to a tone, and a class from the
# tail is the error that derails it; a clean-trained model drawn this way only gets quieter
# (docs/sound.md). A bundle's card.default_top_k is what its generators use unless told.
JITTER_TOP_K = 3


def effective_temperature(temperature: float) -> float:
    """The temperature a sampler works with: 0.0 (argmax) at or below `GREEDY_TEMPERATURE`.

    NaN and infinity are refused (``ValueError``): they have no distribution to draw from.
    """
    temperature = float(temperature)
    if not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number, got {temperature}.")
    return 0.0 if temperature <= GREEDY_TEMPERATURE else temperature


def check_top_k(top_k: int, quantization_channels: int | None = None, name: str = "top_k") -> int:
    """``top_k`` as an int: 0 (no truncation) or at least 1 — a bad value is a ValueError naming it (``name``)."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
        raise ValueError(f"{name} must be a whole number >= 0 (0: draw from every class), got {top_k!r}.")
    if quantization_channels is not None and top_k > quantization_channels:
        raise ValueError(f"{name} must be at most the {quantization_channels} classes (0: all of them), got {top_k}.")
    return int(top_k)


def _kept(logits: np.ndarray, top_k: np.ndarray) -> np.ndarray:
    """Which classes each row keeps: logits >= the row's k-th largest (ties at the edge all kept; k = 0: all)."""
    q = logits.shape[-1]
    k = np.where((top_k <= 0) | (top_k >= q), q, top_k)
    ordered = np.sort(logits, axis=-1)  # ascending: the k-th largest is at q - k
    kth = np.take_along_axis(ordered, (q - k)[:, None], axis=-1)
    return logits >= kth


def sample_classes(logits: np.ndarray, temperature: float, uniforms: np.ndarray, top_k: int = 0) -> np.ndarray:
    """One class per row of ``logits`` ``(batch, classes)``, given ``uniforms`` ``(batch,)`` in [0, 1).

    Logits are divided by the temperature before the softmax: T < 1 sharpens the
    distribution towards its mode (cleaner, more repetitive audio), T > 1 flattens it
    (noisier). T <= `GREEDY_TEMPERATURE` means the limit T -> 0: the most likely class (argmax).
    ``top_k`` > 0 draws only among the k most likely classes (ties at the k-th all stay): a
    draw from the far tail is the error a model then builds on, and a tone derails into noise.
    """
    logits = np.asarray(logits)
    if temperature != temperature:  # NaN: refuse rather than draw from NaN probabilities
        raise ValueError("temperature must be a finite number, got nan.")
    if temperature <= GREEDY_TEMPERATURE:
        return np.argmax(logits, axis=-1).astype(np.int32)
    if top_k:
        return sample_rows(logits, np.full(logits.shape[0], temperature), uniforms, np.full(logits.shape[0], top_k))
    if logits.shape[0] == 1:
        # One stream (the real-time case): the same float64 arithmetic as below, in place in
        # one buffer, and a binary search for the first cumulative sum above the threshold
        # (equal to counting those <= it). 7 µs instead of 12 µs a sample on this machine.
        z = np.divide(logits[0], np.float64(temperature), out=np.empty(logits.shape[-1]))
        z -= z.max()
        np.exp(z, out=z)
        np.cumsum(z, out=z)
        index = int(z.searchsorted(float(uniforms[0]) * z[-1], side="right"))
        return np.array([min(index, logits.shape[-1] - 1)], np.int32)
    # float64 so that the cumulative sum cannot lose small probabilities at the top end.
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    cdf = np.cumsum(np.exp(z), axis=-1)
    threshold = np.asarray(uniforms, np.float64) * cdf[:, -1]
    classes = (cdf <= threshold[:, None]).sum(axis=-1)
    return np.minimum(classes, logits.shape[-1] - 1).astype(np.int32)


def sample_rows(logits: np.ndarray, temperatures: np.ndarray, uniforms: np.ndarray,
                top_ks: np.ndarray | None = None) -> np.ndarray:
    """`sample_classes` with one temperature (and top-k) per row: every row gets what it would get alone.

    A class outside a row's top k weighs 0: it adds nothing to the cumulative sum, so the
    count of sums <= the threshold lands on a kept class, with the same arithmetic as before.
    """
    temperatures = np.asarray(temperatures, np.float64)
    if np.isnan(temperatures).any():
        raise ValueError(f"temperature must be a finite number, got {temperatures.tolist()}.")
    out = np.empty(logits.shape[0], np.int32)
    greedy = temperatures <= GREEDY_TEMPERATURE
    if greedy.any():
        out[greedy] = np.argmax(logits[greedy], axis=-1)
    if (~greedy).any():
        rows = ~greedy
        z = logits[rows].astype(np.float64) / temperatures[rows, None]
        z -= z.max(axis=-1, keepdims=True)
        weights = np.exp(z)
        if top_ks is not None and np.any(np.asarray(top_ks)[rows] > 0):
            weights *= _kept(np.asarray(logits[rows]), np.asarray(top_ks, np.int64)[rows])
        cdf = np.cumsum(weights, axis=-1)
        threshold = np.asarray(uniforms, np.float64)[rows] * cdf[:, -1]
        out[rows] = np.minimum((cdf <= threshold[:, None]).sum(axis=-1), logits.shape[-1] - 1)
    return out


def naive_generation(logits: Callable[[np.ndarray, int], np.ndarray], prime_classes: np.ndarray, num_samples: int,
                     uniforms: np.ndarray, temperature: float = DEFAULT_TEMPERATURE,
                     top_k: int = DEFAULT_TOP_K) -> np.ndarray:
    """Naive generation: one full forward pass per sample, the definition fast generators must match.

    Args:
        logits: ``logits(history, position) -> (B, Q)``, the distribution of the class at
            ``position`` given ``history[:, :position]`` (the Keras model or ``wavenet.onnx``
            over whatever window of it the model needs).
        prime_classes: ``(B, P)`` the classes generation continues from (P >= 1).
        num_samples: classes to generate per stream.
        uniforms: ``(num_samples, B)``, one row per sample; column k is stream k's own draws
            (a streaming sampler's stream k draws from `stream_generator`).
        temperature, top_k: see `sample_classes`.

    Returns:
        ``(B, num_samples)`` int32 classes, after the prime.
    """
    batch, start = prime_classes.shape
    history = np.concatenate([np.asarray(prime_classes, np.int32), np.zeros((batch, num_samples), np.int32)], axis=1)
    for i in range(num_samples):
        history[:, start + i] = sample_classes(logits(history, start + i), temperature, uniforms[i], top_k)
    return history[:, start:]


def stream_generator(seed: int, index: int = 0) -> np.random.Generator:
    """Stream ``index``'s random generator for ``seed`` (one uniform per sample it generates).

    ``default_rng([seed, index])``: stream 0's is ``default_rng(seed)`` itself (NumPy pads a
    seed's entropy with zeros), so a lone stream and the first of several draw the same
    numbers, and each stream's numbers do not depend on how many others there are.
    """
    return np.random.default_rng([int(seed), int(index)])

