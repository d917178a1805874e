"""Training windows as a `tf.data` pipeline.

Audio tracks (float32, already at the model's rate) -> random windows of
``receptive_field + target_length`` samples -> mu-law classes -> ``(inputs, targets)``
where the inputs are the window minus its last sample and the targets are the last
``target_length`` samples. The model's logit at position ``receptive_field - 1 + i`` of
the inputs is the prediction for target ``i`` and is the first with a full receptive
field, so no loss is ever computed on padding (see `wavenet_tf.train.training_model`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from wavenet_tf.mu_law import mu_law_encode


def window_dataset(
    tracks: Sequence[np.ndarray],
    receptive_field: int,
    target_length: int,
    batch_size: int,
    quantization_channels: int = 256,
    seed: int = 0,
) -> tf.data.Dataset:
    """An endless, shuffled, batched stream of training windows drawn from ``tracks``.

    Every window start in every track is equally likely, so long files weigh more than
    short ones. The stream is the same for the same ``seed``.

    Args:
        tracks: float32 mono audio in [-1, 1], one array per file.
        receptive_field: the model's receptive field in samples.
        target_length: predicted samples per window.
        batch_size: windows per batch.
        quantization_channels: mu-law classes.
        seed: seed of the window positions.

    Returns:
        A dataset of ``({"audio": int32 (batch, receptive_field + target_length - 1)},
        int32 (batch, target_length))``.
    """
    window = receptive_field + target_length
    lengths = np.array([len(t) for t in tracks], dtype=np.int64)
    starts_per_track = np.maximum(lengths - window + 1, 0)
    if starts_per_track.sum() == 0:
        raise ValueError(
            f"Every track is shorter than one window of {window} samples (receptive_field "
            f"{receptive_field} + target_length {target_length}); the longest has {lengths.max(initial=0)}. "
            "Use a smaller --target-length, a preset with a smaller receptive field, or longer audio."
        )
    flat = tf.constant(np.concatenate([np.asarray(t, np.float32) for t in tracks]))
    offsets = tf.constant(np.concatenate(([0], np.cumsum(lengths)[:-1])))
    cumulative = tf.constant(np.cumsum(starts_per_track))
    total = int(starts_per_track.sum())

    def to_window(random_value):
        # A uniform index over all valid starts, then which track it falls in.
        index = random_value % total
        track = tf.searchsorted(cumulative, [index], side="right")[0]
        before = tf.where(track > 0, tf.gather(cumulative, tf.maximum(track - 1, 0)), tf.constant(0, tf.int64))
        start = tf.gather(offsets, track) + (index - before)
        classes = mu_law_encode(tf.slice(flat, [start], [window]), quantization_channels)
        return {"audio": classes[:-1]}, classes[receptive_field:]

    return (
        tf.data.Dataset.random(seed=seed)
        .map(to_window, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
