"""Model configuration: one frozen dataclass, validated on construction.

A configuration is plain data. It is written into every run directory and bundle
(``config.json`` / ``model.json``) and read back with :meth:`ModelConfig.from_dict`,
which refuses unknown fields so that a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

INPUT_ENCODINGS = ("one_hot", "embedding", "one_hot_amplitude")


class _Config:
    """Dict round trip and field-by-field replacement shared by the configuration dataclasses.

    Unknown field names are refused, naming the valid ones, so a typo in a JSON file or an
    override never silently falls back to a default.
    """

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def _check_fields(cls, names) -> None:
        unknown = sorted(set(names) - set(field_names(cls)))
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} field(s) {unknown}; valid fields are {field_names(cls)}.")

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        cls._check_fields(values)
        cls._check_types(values)
        return cls(**values)

    @classmethod
    def _check_types(cls, values: dict[str, Any]) -> None:
        """JSON from a file (a run's config.json, a bundle's card) may hold any type: a string
        where a flag belongs would be truthy, a float where a count belongs would reach
        TensorFlow. Each value must have its field's type, named otherwise."""
        kinds = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        for name, value in values.items():
            kind = kinds[name]
            if kind == "bool":
                ok = isinstance(value, bool)
            elif kind == "int":
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif kind == "float":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            elif kind == "str":
                ok = isinstance(value, str)
            elif kind == "tuple[int, ...]":
                ok = isinstance(value, (list, tuple)) and all(
                    isinstance(v, int) and not isinstance(v, bool) for v in value)
            else:
                ok = True
            if not ok:
                wanted = {"tuple[int, ...]": "a list of integers", "bool": "true or false", "int": "an integer",
                          "float": "a number", "str": "a string"}[kind]
                raise ValueError(f"{cls.__name__}.{name} must be {wanted}, got {value!r}.")

    def replace(self, **overrides: Any):
        """A copy with some fields changed."""
        self._check_fields(overrides)
        return dataclasses.replace(self, **overrides)

    def _require_positive_ints(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{type(self).__name__}.{name} must be a positive integer, got {value!r}.")

    def _require_finite_numbers(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{type(self).__name__}.{name} must be a finite number, got {value!r}.")


def _doubling(top: int) -> tuple[int, ...]:
    """Dilations 1, 2, 4, ..., top — one WaveNet "stack"."""
    return tuple(2**i for i in range(int(math.log2(top)) + 1))


@dataclass(frozen=True)
class ModelConfig(_Config):
    """Everything needed to build a `WaveNet` and to read its outputs.

    The dilated stack is ``dilations`` repeated ``num_stacks`` times, as in the
    paper ("1, 2, ..., 512, 1, 2, ..., 512, ...").

    Example:
    >>> ModelConfig(dilations=(1, 2, 4), num_stacks=2).receptive_field
    16
    """

    # Hz of the audio the model reads and writes; data is resampled to this rate.
    sample_rate: int = 16000
    # mu-law classes of the input and of the output softmax; mu = quantization_channels - 1.
    quantization_channels: int = 256
    # Dilation rates of one stack, applied in order.
    dilations: tuple[int, ...] = field(default_factory=lambda: _doubling(512))
    # How many times the stack of `dilations` is repeated.
    num_stacks: int = 2
    # Taps of every dilated convolution (2 in the paper; 3 in many vocoders).
    kernel_size: int = 2
    # Taps of the first causal convolution that lifts the one-hot input to residual_channels.
    initial_kernel_size: int = 2
    # Channels of the residual stream that runs through every block.
    residual_channels: int = 32
    # Channels of each half (filter, gate) of the gated activation unit.
    gate_channels: int = 32
    # Channels of each block's skip output and of the first 1x1 of the output head.
    skip_channels: int = 128
    # How input classes enter the network: "one_hot" (the paper), a learned "embedding", or
    # "one_hot_amplitude" (the one-hot plus each class's companded level and linear amplitude).
    input_encoding: str = "one_hot"
    # Number of global conditioning classes (speakers, instruments); 0 turns it off.
    global_conditioning_classes: int = 0
    # Width of the learned embedding of the global class id.
    global_conditioning_channels: int = 16
    # Feature channels of local conditioning (e.g. mel bands); 0 turns it off.
    local_conditioning_channels: int = 0
    # Strides of the transposed convolutions that bring feature frames to the sample
    # rate; their product is the hop length between frames.
    upsample_scales: tuple[int, ...] = ()
    # Whether convolutions carry a bias.
    use_bias: bool = True

    def __post_init__(self) -> None:
        # Lists arrive from JSON and argparse; store tuples so the config stays hashable.
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        object.__setattr__(self, "upsample_scales", tuple(int(s) for s in self.upsample_scales))
        self._require_positive_ints(
            "sample_rate", "num_stacks", "kernel_size", "initial_kernel_size",
            "residual_channels", "gate_channels", "skip_channels", "global_conditioning_channels",
        )
        if self.quantization_channels < 2:
            raise ValueError(
                f"ModelConfig.quantization_channels must be at least 2, got {self.quantization_channels!r} "
                "(256 is the usual 8-bit mu-law)."
            )
        if not self.dilations or any(d < 1 for d in self.dilations):
            raise ValueError(
                f"ModelConfig.dilations must be a non-empty list of positive integers, got {self.dilations!r}."
            )
        if self.input_encoding not in INPUT_ENCODINGS:
            raise ValueError(
                f"ModelConfig.input_encoding must be one of {INPUT_ENCODINGS}, got {self.input_encoding!r}."
            )
        for name in ("global_conditioning_classes", "local_conditioning_channels"):
            if getattr(self, name) < 0:
                raise ValueError(f"ModelConfig.{name} must be >= 0 (0 turns it off), got {getattr(self, name)!r}.")
        if self.local_conditioning_channels and not self.upsample_scales:
            raise ValueError(
                "ModelConfig.upsample_scales is empty but local_conditioning_channels is "
                f"{self.local_conditioning_channels}: give the strides whose product is the hop length, e.g. (4, 8, 8)."
            )
        if any(s < 1 for s in self.upsample_scales):
            raise ValueError(f"ModelConfig.upsample_scales must be positive integers, got {self.upsample_scales!r}.")

    # -- derived quantities -------------------------------------------------------------

    @property
    def mu(self) -> int:
        return self.quantization_channels - 1

    @property
    def all_dilations(self) -> tuple[int, ...]:
        """Dilation of every residual block, in order."""
        return self.dilations * self.num_stacks

    @property
    def num_layers(self) -> int:
        return len(self.all_dilations)

    @property
    def receptive_field(self) -> int:
        """How many input samples one output depends on (the current one included).

        (kernel_size - 1) * sum(dilations) + 1 for the dilated stack, plus
        (initial_kernel_size - 1) for the first causal convolution. This is the same
        number as ibab/tensorflow-wavenet's ``calculate_receptive_field`` for one-hot
        input; tests check it against the model by perturbing inputs.
        """
        return (self.kernel_size - 1) * sum(self.all_dilations) + 1 + (self.initial_kernel_size - 1)

    @property
    def receptive_field_ms(self) -> float:
        return 1000.0 * self.receptive_field / self.sample_rate

    @property
    def hop_length(self) -> int:
        """Samples per local-conditioning frame (1 when there is no local conditioning)."""
        return math.prod(self.upsample_scales) if self.upsample_scales else 1


def field_names(cls: type | None = None) -> list[str]:
    return [f.name for f in dataclasses.fields(cls or ModelConfig)]


@dataclass(frozen=True)
class DataConfig(_Config):
    """How audio files become training windows. The sample rate, the number of mel bands
    (``local_conditioning_channels``) and the hop length (``prod(upsample_scales)``) come
    from the `ModelConfig`, so the two can never disagree.
    """

    # Leading/trailing frames quieter than the file's loudest frame by more than this many
    # dB are trimmed; 0 turns trimming off. (ibab/tensorflow-wavenet used an absolute
    # threshold that silently emptied most of VCTK; a relative one keeps quiet recordings.)
    trim_top_db: float = 50.0
    # Samples per frame when measuring loudness for trimming (at the model's rate).
    trim_frame_length: int = 512
    # Subtract each file's mean (microphone DC offset would waste quantization levels).
    remove_dc: bool = True
    # Scale each file so its peak is at 0.99 of full scale.
    normalize: bool = False
    # FFT size of the log-mel analysis window (samples at the model's rate).
    n_fft: int = 1024
    # Lowest and highest mel filter frequency in Hz; fmax 0 means the Nyquist frequency.
    fmin: float = 0.0
    fmax: float = 0.0
    # Predicted samples per training window (each window adds the receptive field as context).
    target_length: int = 2048
    # Windows per batch. 4 beat 8, and 2 beat 4, at the same CPU budget on held-out real audio
    # (twice the steps for the same compute; docs/quality.md); raise it on a GPU.
    batch_size: int = 2
    # Fraction of files (not windows) held out for validation.
    val_split: float = 0.1
    # Seed of the train/validation split and of the window positions.
    seed: int = 0
    # Longest file accepted, in seconds; longer ones are skipped, by name. Decoding holds a
    # whole file in memory, so this bounds memory (an hour of 48 kHz stereo is ~1.4 GB).
    max_seconds: float = 3600.0
    # The largest σ, in mu-law classes, of Gaussian jitter (rounded to whole classes) on the
    # training inputs, never the targets; each window draws its σ uniformly from 0 to this. A
    # model that has only read clean pasts amplifies its own draws' errors into noise at
    # generation time (exposure bias). 0: clean inputs.
    input_noise: float = 0.0
    # The fraction of input samples that get the jitter.
    input_noise_fraction: float = 1.0

    def __post_init__(self) -> None:
        self._require_positive_ints("trim_frame_length", "n_fft", "target_length", "batch_size")
        self._require_finite_numbers("trim_top_db", "fmin", "fmax", "val_split", "max_seconds", "input_noise",
                                     "input_noise_fraction")
        if self.input_noise < 0:
            raise ValueError(f"DataConfig.input_noise must be >= 0 (0: clean inputs), got {self.input_noise!r}.")
        if not 0.0 <= self.input_noise_fraction <= 1.0:
            raise ValueError(f"DataConfig.input_noise_fraction must be in [0, 1], got {self.input_noise_fraction!r}.")
        if self.trim_top_db < 0:
            raise ValueError(f"DataConfig.trim_top_db must be >= 0 (0 disables trimming), got {self.trim_top_db!r}.")
        if not 0.0 <= self.val_split < 1.0:
            raise ValueError(f"DataConfig.val_split must be in [0, 1), got {self.val_split!r}.")
        if self.fmin < 0 or self.fmax < 0 or (self.fmax and self.fmax <= self.fmin):
            raise ValueError(f"DataConfig.fmin/fmax must satisfy 0 <= fmin < fmax (or fmax 0), got {self.fmin!r}/{self.fmax!r}.")
        if self.max_seconds <= 0:
            raise ValueError(f"DataConfig.max_seconds must be positive, got {self.max_seconds!r}.")



STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig(_Config):
    """How `model.fit` runs. An epoch is also the checkpoint interval."""

    # Epochs to train in total (a resumed run continues up to this number).
    epochs: int = 20
    # Optimizer steps per epoch; a checkpoint is written at the end of every epoch.
    steps_per_epoch: int = 200
    # Adam's peak learning rate. 3e-3 with the warm-up and cosine decay below beat a constant 1e-3,
    # and 6e-3 beat 3e-3, on held-out real audio at the same CPU budget (docs/quality.md).
    learning_rate: float = 6e-3
    # Validation batches per epoch: the same held-out windows every time.
    validation_steps: int = 16
    # "default" (one device), "mirrored" (all local devices) or "multiworker" (TF_CONFIG).
    strategy: str = "default"
    # Compute dtype policy. float32 was fastest on the 2-core CPU we measured (docs/training.md#training-speed).
    precision: str = "float32"
    # XLA-compile the training step. Measured slower on the 2-core CPU (docs/training.md#training-speed); try it on GPUs.
    jit_compile: bool = False
    # Epochs between audio summaries in TensorBoard; 0 turns them off.
    audio_every: int = 5
    # Seconds of audio each summary generates.
    audio_seconds: float = 2.0
    # Stop at the end of the epoch in which the run's CPU time (every thread of the process,
    # summed over resumed sessions) reaches this many minutes; 0 means no limit. A budget in
    # CPU time, not wall time, is what compares on a machine shared with other work.
    max_cpu_minutes: float = 0.0
    # Steps over which the learning rate ramps linearly from learning_rate / warmup_steps up to
    # learning_rate (wavenet_tf.recipe); 0: no warm-up. Never more than half of a run given by
    # epochs * steps_per_epoch (a 10-step test run warms up for 5).
    warmup_steps: int = 25
    # After the warm-up: "constant" keeps learning_rate; "cosine" decays it to
    # learning_rate * final_lr_fraction at step decay_steps and holds it there.
    lr_schedule: str = "cosine"
    # The step at which a decaying schedule ends, counted from step 0; 0: epochs * steps_per_epoch,
    # or with max_cpu_minutes the step where the budget will end, which training estimates
    # (wavenet_tf.train.train, wavenet_tf.recipe).
    decay_steps: int = 0
    # The decayed learning rate as a fraction of learning_rate.
    final_lr_fraction: float = 0.1
    # Clip the gradient to this global L2 norm before Adam sees it; 0: no clipping.
    clip_norm: float = 0.0
    # The fraction of each window's predicted positions whose input is replaced by the model's own
    # draw (T = 1) given the true past, so it learns from pasts holding its own errors (parallel
    # scheduled sampling; one extra forward pass a step). 0: teacher forcing only.
    self_feed: float = 0.0

    @property
    def schedule_steps(self) -> int:
        """The step at which a decaying learning rate reaches its final value."""
        return self.decay_steps or self.epochs * self.steps_per_epoch

    @property
    def effective_warmup_steps(self) -> int:
        """``warmup_steps``, cut to half the run when ``decay_steps`` is 0 and the run is short."""
        return self.warmup_steps if self.decay_steps else min(self.warmup_steps, self.schedule_steps // 2)

    def __post_init__(self) -> None:
        self._require_positive_ints("epochs", "steps_per_epoch", "validation_steps")
        for name in ("warmup_steps", "decay_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 0 (0: off), got {value!r}.")
        self._require_finite_numbers("learning_rate", "audio_seconds", "final_lr_fraction", "clip_norm", "self_feed")
        if not 0.0 <= self.self_feed <= 1.0:
            raise ValueError(f"TrainConfig.self_feed must be in [0, 1] (0: teacher forcing only), got {self.self_feed!r}.")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"TrainConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}.")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise ValueError(f"TrainConfig.final_lr_fraction must be in [0, 1], got {self.final_lr_fraction!r}.")
        if self.clip_norm < 0:
            raise ValueError(f"TrainConfig.clip_norm must be >= 0 (0: no clipping), got {self.clip_norm!r}.")
        if self.lr_schedule != "constant" and self.decay_steps and self.decay_steps <= self.warmup_steps:
            raise ValueError(f"TrainConfig.decay_steps ({self.decay_steps}) must exceed warmup_steps "
                             f"({self.warmup_steps}) for lr_schedule {self.lr_schedule!r} (or be 0: the whole run).")
        if not self.max_cpu_minutes >= 0:
            raise ValueError(f"TrainConfig.max_cpu_minutes must be >= 0 (0: no limit), got {self.max_cpu_minutes!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"TrainConfig.learning_rate must be positive, got {self.learning_rate!r}.")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"TrainConfig.strategy must be one of {STRATEGIES}, got {self.strategy!r}.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision must be one of {PRECISIONS}, got {self.precision!r}.")
        if self.audio_every < 0 or self.audio_seconds < 0:
            raise ValueError("TrainConfig.audio_every and audio_seconds must be >= 0.")

