"""Naive generation with the Keras model: recompute the receptive field for every sample.

O(receptive_field × layers) work per sample — the reference that the streaming sampler
(`serving`) must reproduce exactly, and the baseline its speed is measured against.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from wavenet_tf.core.mu_law import mu_law_decode, mu_law_encode, silence_class
from wavenet_tf.core.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_K, naive_generation
from wavenet_tf.model import WaveNet


def naive_generate(
    model: WaveNet,
    num_samples: int,
    temperature: float = DEFAULT_TEMPERATURE,
    seed: int = 0,
    prime: np.ndarray | None = None,
    global_id: int | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> np.ndarray:
    """Generate ``num_samples`` float32 samples, one full forward pass per sample.

    Args:
        model: an unconditioned or globally conditioned `WaveNet` (local conditioning
            needs mel frames; use the streaming sampler).
        num_samples: samples to generate.
        temperature: softmax temperature; <= 0 picks the most likely class.
        seed: seed of the uniform random numbers (one per sample).
        prime: optional float audio to continue from.
        global_id: the class id when the model is globally conditioned.
        top_k: draw only from the k most likely classes (0: every class).
    """
    config = model.model_config
    if config.local_conditioning_channels:
        raise ValueError("naive_generate does not support locally conditioned models; pass mel frames to the streaming sampler.")
    if config.global_conditioning_classes and global_id is None:
        raise ValueError(f"the model is globally conditioned: pass global_id in [0, {config.global_conditioning_classes}).")
    q = config.quantization_channels
    r = model.receptive_field
    # History starts as a receptive field of digital silence (the class of amplitude 0), then the prime.
    prime_classes = np.full(r, silence_class(q), np.int32)
    if prime is not None:
        prime_classes = np.concatenate([prime_classes, mu_law_encode(np.asarray(prime, np.float32), q)])

    inputs = {"audio": tf.TensorSpec((1, r), tf.int32)}
    extra = {}
    if config.global_conditioning_classes:
        inputs["global_id"] = tf.TensorSpec((1,), tf.int32)
        extra["global_id"] = np.array([global_id], np.int32)

    @tf.function(input_signature=[inputs])
    def last_logits(batch):
        return model(batch, training=False)[:, -1, :]

    def logits(history: np.ndarray, position: int) -> np.ndarray:
        return last_logits({"audio": history[:, position - r : position], **extra}).numpy()

    uniforms = np.random.default_rng(seed).random((num_samples, 1))
    classes = naive_generation(logits, prime_classes[None], num_samples, uniforms, temperature, top_k)
    return mu_law_decode(classes[0], q)
