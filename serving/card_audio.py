"""Audio decoded for a bundle is cleaned the way its training audio was.

A model only ever saw audio after its run's cleaning (DC removal, silence trimming, peak
normalization); audio decoded for it — evaluation files, a ``--prime``, the source of
``--mel-from`` frames, anything a server decodes — must go through the same steps, or the
model is measured or driven on input it never saw. The card's ``data`` block records
those settings (`export.bundle.build_card`); bundles written before it existed were
trained with the defaults below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wavenet_tf.core.card import DEFAULT_CLEANING, ModelCard

__all__ = ["DEFAULT_CLEANING", "cleaning_settings", "load_for_bundle"]


def cleaning_settings(card: ModelCard) -> dict[str, Any]:
    """The keyword arguments of `wavenet_tf.core.audio.load_audio` that reproduce the run's cleaning."""
    return card.cleaning()


def load_for_bundle(card: ModelCard, path: str | Path, **options: Any) -> np.ndarray:
    """Decode ``path`` to mono float32 at the card's rate, cleaned with the card's settings (no TensorFlow).

    ``options`` go to `wavenet_tf.core.audio.load_audio` over the card's: ``max_seconds`` /
    ``max_samples``, or ``trim_top_db=0`` to keep the file's own timeline (a prime's offsets).
    """
    from wavenet_tf.core.audio import load_audio

    audio, _ = load_audio(path, card.sample_rate, **{**cleaning_settings(card), **options})
    return audio
