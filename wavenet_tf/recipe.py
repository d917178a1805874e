"""The training recipe: the learning-rate schedule and the optimizer `train` uses.

Its levers are `TrainConfig` fields (warm-up and decay, gradient clipping, ...);
`wavenet_tf.apps.bench_recipe` (`wavenet bench-recipe`) measures them on real audio.

A decay over a budget of CPU time needs a step count the budget does not give: a budgeted
run (`wavenet_tf.train.train` with ``max_cpu_minutes`` and no ``decay_steps``: `wavenet train
--max-cpu-minutes`, `bench-quality`, `bench-recipe`) first trains ``PROBE_EPOCHS`` epochs,
reads its own CPU seconds per step from the second one (the first includes tracing), and
sets ``decay_steps`` so that the decay ends with the budget (`budget_decay_steps`).
"""

from __future__ import annotations

import math
from typing import Any

import keras

from wavenet_tf.core.config import TrainConfig

# Epochs a budgeted run with a decaying schedule trains before it measures its CPU seconds per step.
PROBE_EPOCHS = 2
# decay_steps while the probe runs: far beyond any run, so the probe's rate is the peak rate.
PROBE_DECAY_STEPS = 10**9


@keras.saving.register_keras_serializable(package="wavenet_tf")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak``, then constant or cosine decay to ``peak * final_fraction``.

    At optimizer step ``s`` (0-based: the step being taken) the rate is
    ``peak * (s + 1) / warmup_steps`` while ``s < warmup_steps``; then, for ``cosine``,
    ``peak * (f + (1 - f) * (1 + cos(pi * p)) / 2)`` with ``p = (s - warmup) / (decay - warmup)``
    clipped to [0, 1], so it reaches ``peak * f`` at step ``decay_steps`` and stays there.
    The step is the optimizer's ``iterations``, which the run's checkpoint restores: a
    resumed run continues the schedule where it stopped.

    Example:
    >>> schedule = WarmupDecay(1e-3, warmup_steps=10, decay_steps=110, final_fraction=0.1, kind="cosine")
    >>> round(float(schedule(4)), 6), round(float(schedule(110)), 6)
    (0.0005, 0.0001)
    """

    def __init__(self, peak: float, warmup_steps: int = 0, decay_steps: int = 0, final_fraction: float = 0.1,
                 kind: str = "constant"):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        self.final_fraction = float(final_fraction)
        self.kind = kind

    def __call__(self, step):
        ops = keras.ops
        s = ops.cast(step, "float32")
        rate = ops.convert_to_tensor(self.peak, "float32")
        if self.kind == "cosine":
            span = float(max(1, self.decay_steps - self.warmup_steps))
            progress = ops.clip((s - self.warmup_steps) / span, 0.0, 1.0)
            f = self.final_fraction
            rate = rate * (f + (1.0 - f) * 0.5 * (1.0 + ops.cos(math.pi * progress)))
        if self.warmup_steps:
            rate = rate * ops.minimum(1.0, (s + 1.0) / self.warmup_steps)
        return rate

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "decay_steps": self.decay_steps,
                "final_fraction": self.final_fraction, "kind": self.kind}


def learning_rate(config: TrainConfig) -> float | WarmupDecay:
    """What Adam gets: the plain rate when nothing schedules it, else a `WarmupDecay`."""
    if config.lr_schedule == "constant" and not config.effective_warmup_steps:
        return config.learning_rate
    return WarmupDecay(config.learning_rate, config.effective_warmup_steps, config.schedule_steps,
                       config.final_lr_fraction, config.lr_schedule)


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam with the config's schedule and, when ``clip_norm`` is set, global-norm gradient clipping."""
    return keras.optimizers.Adam(learning_rate(config), global_clipnorm=config.clip_norm or None)


def budget_decay_steps(history: list[dict[str, Any]], cpu_minutes: float, steps_per_epoch: int,
                       warmup_steps: int = 0) -> int:
    """The step at which a decay should end so that it ends with a budget of ``cpu_minutes``.

    ``history`` is the run's state history (cumulative ``step`` and ``cpu_seconds`` per
    epoch). The rate is the last epoch's CPU seconds per step (the first epoch also pays
    for tracing); the answer is rounded up to whole epochs, since the budget stops a run at
    the end of the epoch that spends it. The session that goes on with the fitted decay
    traces again, so what the first epoch cost beyond its steps is set aside first (a small
    run spent a third of its budget that way and ended at half its peak rate). Never before
    the warm-up ends (a budget too short for its warm-up ends the run at the peak rate).
    """
    last = history[-1]
    before = history[-2] if len(history) > 1 else {"step": 0, "cpu_seconds": 0.0}
    per_step = (last["cpu_seconds"] - before["cpu_seconds"]) / max(1, last["step"] - before["step"])
    first = history[0]
    restart = max(0.0, first["cpu_seconds"] - per_step * first["step"]) if len(history) > 1 else 0.0
    remaining = max(0.0, 60.0 * cpu_minutes - last["cpu_seconds"] - restart)
    epochs = math.ceil(remaining / max(per_step, 1e-9) / steps_per_epoch)
    return max(last["step"] + max(1, epochs) * steps_per_epoch, warmup_steps + 1)
