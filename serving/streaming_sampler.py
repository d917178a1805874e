"""Real-time generation of B streams from one seed: a convenience over `StepModel` and its streams."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from serving.bundle import Bundle
from serving.step_model import StepModel, Stream
from wavenet_tf.core.mu_law import mu_law_decode
from wavenet_tf.core.sampling import DEFAULT_TEMPERATURE, effective_temperature


class StreamingSampler:
    """Generate audio from a bundle, sample by sample, for B independent streams at once.

    "Fast WaveNet": each layer's past taps are ring buffer rows found by index arithmetic,
    so a sample costs one step (O(layers)) however long the receptive field. The model
    (`serving.step_model.StepModel`: sessions, engine) is apart from the streams
    (`serving.step_model.Stream`: ring rows, taps, random generator); this object makes
    one model and B streams and advances them together.

    Args:
        bundle: a loaded bundle (`serving.bundle.load_bundle`).
        streams: B, the number of independent streams generated together.
        temperature: logits are divided by it before sampling; at or below
            `wavenet_tf.core.sampling.GREEDY_TEMPERATURE` (0 included) the most likely class is taken.
        top_k: draw only from the k most likely classes (ties at the k-th all kept); 0 (or the
            class count) draws from every class.
        seed: stream k draws one uniform per sample from
            ``wavenet_tf.core.sampling.stream_generator(seed, k)`` (stream 0: ``default_rng(seed)``).
        threads: threads the engine may use (1 is fastest for one stream on the graph; see docs/performance.md).
        global_ids: each stream's global class id (globally conditioned bundles).
        mel: ``(B, frames, n_mels)`` log-mel frames (locally conditioned bundles); generation
            can run for at most ``frames · hop_length`` samples including the prime.
        engine: ``native``, ``graph`` or ``auto`` (`StepModel`); ``engine_note`` says why
            not native when it is not (a bundle exported before top-k sampling draws
            top_k > 0 on the graph).

    Example:
    >>> sampler = StreamingSampler(load_bundle("bundles/first"), streams=2, seed=1)  # doctest: +SKIP
    >>> audio = sampler.generate(16000)                                            # doctest: +SKIP
    >>> audio.shape                                                                # doctest: +SKIP
    (2, 16000)
    """

    def __init__(self, bundle: Bundle, streams: int = 1, temperature: float = DEFAULT_TEMPERATURE, seed: int = 0,
                 threads: int = 1, global_ids=None, mel: np.ndarray | None = None, engine: str | None = None,
                 top_k: int | None = None):
        self.bundle = bundle
        self.streams = streams
        self.seed = seed
        self.model = model = StepModel(bundle, threads=threads, engine=engine)
        self.sample_rate = model.sample_rate
        self.quantization_channels = model.quantization_channels
        self.receptive_field = model.receptive_field
        self.delays = model.delays
        self.hop = model.hop
        self.global_ids = model._global_ids(streams, global_ids)
        self.mel = model._mel(streams, mel)
        self.states: list[Stream] | None = None  # the primed streams; None until `prime`
        self._seed = seed
        self.temperature = temperature
        self.top_k = top_k  # None: the bundle's default (resolved by the model)

    @property
    def engine(self) -> str:
        """The model's engine: ``native`` or ``graph`` (it can move to the graph for top_k, see `StepModel`)."""
        return self.model.engine

    @property
    def engine_note(self) -> str | None:
        return self.model.engine_note

    @property
    def top_k(self) -> int:
        return self._top_k

    @top_k.setter
    def top_k(self, value: int) -> None:
        """Every stream's top k from the next sample on (0: every class); a bad value is a ValueError."""
        self._top_k = self.model.top_ks(1, value)[0]
        for stream in self.states or ():
            stream.top_k = self._top_k

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        """Every stream's temperature from the next sample on (tiny T is argmax in every engine)."""
        self._temperature = effective_temperature(value)
        for stream in self.states or ():
            stream.temperature = self._temperature

    def reset(self, seed: int | None = None) -> None:
        """Forget everything generated: the next call primes with silence, and the random streams restart."""
        self._close()
        self._seed = self.seed if seed is None else seed

    def _close(self) -> None:
        for stream in self.states or ():
            stream.close()
        self.states = None

    @property
    def primed(self) -> bool:
        return self.states is not None

    @property
    def t(self) -> int:
        """The time of the next sample (0 before a prime)."""
        return 0 if self.states is None else self.states[0].position

    @property
    def max_samples(self) -> int | None:
        """Samples the mel frames cover (prime included), or None without local conditioning."""
        return None if self.mel is None else self.mel.shape[1] * self.hop

    def prime(self, audio: np.ndarray | None = None) -> None:
        """Start the streams from a waveform ``(B, P)`` or ``(P,)`` at the model's rate, in one full-sequence pass.

        None means a receptive field of digital silence (what naive generation starts
        from). Generation continues from the end of the prime.
        """
        self._close()
        self.states = self.model.open_streams(self.streams, audio, seed=self._seed, temperature=self.temperature,
                                              top_k=self.top_k, global_ids=self.global_ids, mel=self.mel)
        self.model.prepare(self.states)  # they are always advanced together: seat them once, now

    def step(self) -> np.ndarray:
        """Advance every stream by one sample; returns the new classes ``(B,)``."""
        return self.generate_classes(1)[:, 0]

    def generate_classes(self, num_samples: int) -> np.ndarray:
        """``num_samples`` classes per stream ``(B, num_samples)`` (int32)."""
        if self.states is None:
            self.prime()
        return self.model.advance(self.states, num_samples).astype(np.int32)

    def generate(self, num_samples: int) -> np.ndarray:
        """``num_samples`` float32 samples per stream, ``(B, num_samples)``."""
        return mu_law_decode(self.generate_classes(num_samples), self.quantization_channels)

    def stream(self, num_samples: int, chunk_size: int = 1024) -> Iterator[np.ndarray]:
        """Yield float32 chunks ``(B, ≤ chunk_size)`` until ``num_samples`` per stream are out.

        Chunking changes nothing but latency: the concatenated chunks equal `generate`.
        """
        done = 0
        while done < num_samples:
            n = min(chunk_size, num_samples - done)
            yield self.generate(n)
            done += n
