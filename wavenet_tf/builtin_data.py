"""Built-in training audio: plucked-string melodies synthesized by Karplus–Strong.

The demo, the tests and the notebooks need audio that a WaveNet can learn — periodic,
with attacks, decays and a melody — without downloading anything. Karplus and Strong
(1983) found that a burst of noise fed through a delay line of one pitch period with a
two-tap averaging filter in the loop sounds like a plucked string: the loop keeps the
harmonics of the period and the averaging damps the high ones first, as a real string does.

Everything here is NumPy and deterministic for a given seed. Two "instruments" with
different registers and timbres give the files a label (their sub-folder), so the same
data also exercises global conditioning.

>>> audio = plucked_melody(seconds=1.0, sample_rate=8000, seed=0, instrument="harp")
>>> audio.shape, audio.dtype, float(abs(audio).max()) <= 1.0
((8000,), dtype('float32'), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Instrument:
    # MIDI notes of the lowest and highest pitch the melodies use.
    low_note: int
    high_note: int
    # Fraction of each period's energy kept per round trip of the loop (sustain).
    decay: float
    # 0..1: how much of the pluck's noise burst is low-passed away (1 = dull).
    damping: float
    # Beats per minute of the melodies.
    tempo: float


INSTRUMENTS: dict[str, Instrument] = {
    "harp": Instrument(low_note=60, high_note=84, decay=0.996, damping=0.6, tempo=132.0),
    "bass": Instrument(low_note=36, high_note=55, decay=0.998, damping=0.8, tempo=96.0),
}

# A major pentatonic scale: every pair of its notes sounds consonant, so random melodies do too.
_PENTATONIC = (0, 2, 4, 7, 9)


def karplus_strong(
    frequency: float, num_samples: int, sample_rate: int, rng: np.random.Generator,
    decay: float = 0.996, damping: float = 0.3,
) -> np.ndarray:
    """One plucked note: ``num_samples`` float32 samples of a string tuned to ``frequency``."""
    period = max(2, int(round(sample_rate / frequency)))
    burst = rng.uniform(-1.0, 1.0, period)
    # Soften the pluck: a one-pole low-pass over the noise burst (a softer finger).
    for i in range(1, period):
        burst[i] = (1.0 - damping) * burst[i] + damping * burst[i - 1]
    burst -= burst.mean()
    num_blocks = -(-num_samples // period)
    out = np.empty(num_blocks * period)
    out[:period] = burst
    previous_last = 0.0
    # y[n] = decay * (y[n - P] + y[n - P - 1]) / 2. A whole period depends only on the
    # period before it, so each block is computed in one vectorized step.
    for b in range(1, num_blocks):
        block = out[(b - 1) * period : b * period]
        shifted = np.concatenate(([previous_last], block[:-1]))
        previous_last = block[-1]
        out[b * period : (b + 1) * period] = decay * 0.5 * (block + shifted)
    return out[:num_samples].astype(np.float32)


def plucked_melody(seconds: float, sample_rate: int, seed: int, instrument: str = "harp") -> np.ndarray:
    """A random pentatonic melody on one instrument, peak-normalized to 0.9 (float32)."""
    if instrument not in INSTRUMENTS:
        raise ValueError(f"instrument={instrument!r} is unknown; choose one of {sorted(INSTRUMENTS)}.")
    spec = INSTRUMENTS[instrument]
    rng = np.random.default_rng(seed)
    total = int(round(seconds * sample_rate))
    out = np.zeros(total, dtype=np.float64)
    beat = 60.0 / spec.tempo
    notes = [n for n in range(spec.low_note, spec.high_note + 1) if (n % 12) in _PENTATONIC]
    index = int(rng.integers(len(notes)))
    t = 0.0
    while t < seconds:
        # A melody moves mostly by small steps: a random walk over the scale.
        index = int(np.clip(index + rng.integers(-2, 3), 0, len(notes) - 1))
        frequency = 440.0 * 2.0 ** ((notes[index] - 69) / 12.0)
        duration = beat * float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
        start = int(round(t * sample_rate))
        # Let each note ring past its slot, overlapping the next as a harp's strings do.
        length = min(total - start, int(round(2.0 * duration * sample_rate)))
        if length > 0:
            velocity = float(rng.uniform(0.5, 1.0))
            out[start : start + length] += velocity * karplus_strong(
                frequency, length, sample_rate, rng, spec.decay, spec.damping
            )
        t += duration
    peak = np.abs(out).max()
    if peak > 0:
        out *= 0.9 / peak
    return out.astype(np.float32)


def write_builtin_dataset(
    folder: str | Path, num_files: int = 8, seconds: float = 4.0, sample_rate: int = 8000, seed: int = 0,
) -> list[Path]:
    """Write ``num_files`` 16-bit WAV melodies to ``folder/<instrument>/melody_NN.wav``.

    Files alternate between the instruments, so the sub-folder names are the labels.
    The same arguments always write the same bytes. Returns the paths written.
    """
    import soundfile as sf

    from wavenet_tf.core.files import output_file

    folder = Path(folder)
    names = sorted(INSTRUMENTS)
    paths = []
    for i in range(num_files):
        instrument = names[i % len(names)]
        audio = plucked_melody(seconds, sample_rate, seed=seed * 1000 + i, instrument=instrument)
        path = folder / instrument / f"melody_{i:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        with output_file(path) as tmp:  # a file is a whole melody or absent, even after Ctrl-C
            sf.write(tmp, audio, sample_rate, subtype="PCM_16", format="WAV")
        paths.append(path)
    return paths
