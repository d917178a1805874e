"""`wavenet evaluate`: bits per sample over every position with a full receptive field.

The core is NumPy (this module never imports TensorFlow): an engine is any function from a chunk of classes (plus conditioning)
to logits, so the Keras engine here and the ONNX / step engines of a bundle are measured
by the same code. The unigram baseline — the entropy of the audio's class histogram —
is printed beside the result: a model that does not beat it has learned no context.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from serving.limits import ascii_index
from wavenet_tf.core.bits import log_softmax_bits, unigram_bits
from wavenet_tf.core.mu_law import mu_law_encode

# logits_fn(classes (1, T) int32, global_id (1,) | None, mel (1, T // hop, n_mels) | None) -> (1, T, Q)
LogitsFn = Callable[[np.ndarray, np.ndarray | None, np.ndarray | None], np.ndarray]


def speaker_id(speaker: str, names: Sequence[str], classes: int) -> int:
    """A global class id from a label name or an id in ``[0, classes)``; ValueError naming both otherwise."""
    if speaker in names:
        return list(names).index(speaker)
    index = ascii_index(speaker)
    if index is not None and index < classes:
        return index
    raise ValueError(f"--speaker {speaker!r} is neither a label of the model ({list(names) or 'none recorded'}) "
                     f"nor a class id in [0, {classes}).")


def track_bits(
    logits_fn: LogitsFn, classes: np.ndarray, receptive_field: int, hop_length: int = 1,
    global_id: int | None = None, mel: np.ndarray | None = None, chunk: int = 16384,
) -> np.ndarray:
    """Bits for every sample of one track predicted from a full receptive field.

    The logit at position ``t`` predicts sample ``t + 1`` and has a full receptive field
    when ``t >= receptive_field − 1``, so a track of ``N`` samples yields ``N − R``
    predictions. Long tracks go in chunks that overlap by the receptive field; with local
    conditioning the chunks start and end on frame boundaries.
    """
    n, r = len(classes), receptive_field
    if n <= r:
        return np.zeros(0)
    usable = (n // hop_length) * hop_length if mel is not None else n
    chunk = max(chunk, 2 * r + hop_length)
    chunk -= chunk % hop_length
    step = max(hop_length, ((chunk - r) // hop_length) * hop_length)
    out = []
    next_position = r - 1  # the first position with a full receptive field
    start = 0
    while next_position <= usable - 2:
        end = min(start + chunk, usable)
        ids = None if global_id is None else np.array([global_id], np.int32)
        frames = None if mel is None else mel[None, start // hop_length : end // hop_length]
        logits = logits_fn(classes[None, start:end].astype(np.int32), ids, frames)[0]
        first = next_position - start
        last = min(end - 1, usable - 1) - start  # the last position must have a target after it
        positions = np.arange(first, last)
        out.append(log_softmax_bits(logits[positions], classes[start + positions + 1]))
        next_position = start + last
        start += step
    return np.concatenate(out) if out else np.zeros(0)


def evaluate_tracks(
    logits_fn: LogitsFn, tracks: Sequence[Any], receptive_field: int, quantization_channels: int,
    hop_length: int = 1, global_conditioning: bool = False, local_conditioning: bool = False,
) -> dict[str, Any]:
    """Average bits per sample over all tracks, with the unigram baseline of the same audio."""
    bits, all_classes = [], []
    for track in tracks:
        classes = mu_law_encode(np.asarray(track.audio), quantization_channels)
        all_classes.append(classes)
        bits.append(track_bits(
            logits_fn, classes, receptive_field, hop_length,
            global_id=track.label_id if global_conditioning else None,
            mel=np.asarray(track.mel) if local_conditioning else None,
        ))
    predicted = np.concatenate(bits) if bits else np.zeros(0)
    if predicted.size == 0:
        raise ValueError(f"no file is longer than the receptive field ({receptive_field} samples): nothing to evaluate.")
    return {
        "bits_per_sample": float(predicted.mean()),
        "unigram_bits": unigram_bits(np.concatenate(all_classes), quantization_channels),
        "num_samples": int(predicted.size),
        "num_files": len(tracks),
    }


def onnx_logits_fn(bundle) -> LogitsFn:
    """An engine over a bundle's full-sequence ``wavenet.onnx`` (onnxruntime, no TensorFlow)."""
    from serving.onnx_step import make_session

    session = make_session(str(bundle.file("wavenet.onnx")), threads=2)

    def logits_fn(classes, global_id, mel):
        feeds = {"audio": classes.astype(np.int32)}
        if global_id is not None:
            feeds["global_id"] = global_id.astype(np.int32)
        if mel is not None:
            feeds["mel"] = mel.astype(np.float32)
        return session.run(["logits"], feeds)[0]

    return logits_fn


def step_logits_fn(bundle) -> LogitsFn:
    """An engine that drives ``step.onnx`` one sample at a time (teacher forcing), no TensorFlow."""
    from serving.onnx_step import OnnxStep, make_session
    from wavenet_tf.core.step_generator import StepGenerator

    step = OnnxStep(bundle.file("step.onnx"), bundle.card)
    cond = make_session(str(bundle.file("cond.onnx"))) if bundle.local_conditioning else None

    def logits_fn(classes, global_id, mel):
        local = None if mel is None else cond.run(None, {"mel": mel.astype(np.float32)})[0]
        generator = StepGenerator(step, classes.shape[0], global_id)
        return generator.teacher_forced_logits(classes.astype(np.int64), local)

    return logits_fn


def keras_logits_fn(model) -> LogitsFn:
    """An engine over a Keras `WaveNet`."""

    def logits_fn(classes, global_id, mel):
        inputs = {"audio": classes}
        if global_id is not None:
            inputs["global_id"] = global_id
        if mel is not None:
            inputs["mel"] = mel.astype(np.float32)
        return np.asarray(model(inputs, training=False))

    return logits_fn
