"""Naive generation on ``wavenet.onnx``: recompute the receptive field for every sample.

O(receptive field × layers) per sample. It is the definition the streaming sampler must
reproduce exactly (same uniforms, same samples), and the baseline its speed is measured
against in `wavenet bench`.
"""

from __future__ import annotations

import numpy as np

from serving.bundle import Bundle
from serving.onnx_step import make_session
from wavenet_tf.core.mu_law import silence_class
from wavenet_tf.core.sampling import DEFAULT_TEMPERATURE, naive_generation


def naive_generate_classes(
    bundle: Bundle, num_samples: int, uniforms: np.ndarray, temperature: float = DEFAULT_TEMPERATURE,
    prime_classes: np.ndarray | None = None, global_ids=None, mel: np.ndarray | None = None, threads: int = 1,
    top_k: int | None = None,
) -> np.ndarray:
    """``(B, num_samples)`` classes. ``uniforms`` is ``(num_samples, B)``, consumed in that order
    (one row per step; column k is a `StreamingSampler`'s stream k's draws: ``stream_generator(seed, k)``);
    ``temperature`` and ``top_k`` as in `wavenet_tf.core.sampling.sample_classes` (``top_k`` None: the
    bundle's default, as every generator draws)."""
    card = bundle.card
    top_k = card.default_top_k if top_k is None else top_k
    q, r = card.quantization_channels, card.receptive_field
    batch = uniforms.shape[1]
    session = make_session(str(bundle.file("wavenet.onnx")), threads)
    if prime_classes is None:
        prime_classes = np.full((batch, r), silence_class(q), np.int32)
    hop = bundle.hop_length
    feeds = {}
    if global_ids is not None:
        feeds["global_id"] = np.broadcast_to(np.asarray(global_ids, np.int32), (batch,)).copy()

    def logits(history: np.ndarray, position: int) -> np.ndarray:
        start, end = max(0, position - r), position
        if mel is not None:
            # Whole frames: start on a frame boundary, pad the end into the (unused) future.
            start = (start // hop) * hop
            end = -(-position // hop) * hop
            feeds["mel"] = np.asarray(mel, np.float32)[:, start // hop : end // hop]
        window = history[:, start:end] if end <= history.shape[1] else np.pad(
            history[:, start:], ((0, 0), (0, end - history.shape[1])))
        return session.run(["logits"], {**feeds, "audio": window})[0][:, position - 1 - start]

    return naive_generation(logits, prime_classes, num_samples, uniforms, temperature, top_k)
