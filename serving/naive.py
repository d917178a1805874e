"""Naive generation on ``wavenet.onnx``: recompute the receptive field for every sample.

O(receptive field × layers) per sample. It is the definition the streaming sampler must
reproduce exactly (same uniforms, same samples), and the baseline its speed is measured
against in `wavenet bench`.
"""

from __future__ import annotations

import numpy as np

from serving.bundle import Bundle
from wavenet_tf.core.mu_law import mu_law_encode
from serving.onnx_step import make_session
from wavenet_tf.core.sampling import sample_classes


def naive_generate_classes(
    bundle: Bundle, num_samples: int, uniforms: np.ndarray, temperature: float = 1.0,
    prime_classes: np.ndarray | None = None, global_ids=None, mel: np.ndarray | None = None, threads: int = 1,
) -> np.ndarray:
    """``(B, num_samples)`` classes. ``uniforms`` is ``(num_samples, B)``, consumed in that order
    (as `StreamingSampler` consumes its generator's draws: one row per step)."""
    card = bundle.card
    q, r = card["quantization_channels"], card["receptive_field"]
    batch = uniforms.shape[1]
    session = make_session(str(bundle.file("wavenet.onnx")), threads)
    if prime_classes is None:
        prime_classes = np.full((batch, r), mu_law_encode(np.zeros(1), q)[0], np.int32)
    history = np.concatenate([prime_classes.astype(np.int32), np.zeros((batch, num_samples), np.int32)], axis=1)
    hop = bundle.hop_length
    position = prime_classes.shape[1]
    for i in range(num_samples):
        start = max(0, position - r)
        end = position
        feeds = {}
        if mel is not None:
            # Whole frames: start on a frame boundary, pad the end into the (unused) future.
            start = (start // hop) * hop
            end = -(-position // hop) * hop
            feeds["mel"] = np.asarray(mel, np.float32)[:, start // hop : end // hop]
        window = history[:, start:end] if end <= history.shape[1] else np.pad(
            history[:, start:], ((0, 0), (0, end - history.shape[1])))
        feeds["audio"] = window
        if global_ids is not None:
            feeds["global_id"] = np.broadcast_to(np.asarray(global_ids, np.int32), (batch,)).copy()
        logits = session.run(["logits"], feeds)[0][:, position - 1 - start]
        history[:, position] = sample_classes(logits, temperature, uniforms[i])
        position += 1
    return history[:, prime_classes.shape[1]:]
