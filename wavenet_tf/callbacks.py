"""The callbacks of a training: the epoch's commit, the CPU budget, divergence, summaries, log lines.

`RunCheckpoint` is the only writer of a run's checkpoints, models, ``metrics.csv`` and
``state.json`` (see `wavenet_tf.run_dir` for the layout); it runs under `model.fit` and under
the multi-worker loop alike.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from wavenet_tf.core.config import TrainConfig
from wavenet_tf.core.files import RunError, atomic_write, write_json, write_text_atomically
from wavenet_tf.model import WaveNet
from wavenet_tf.run_dir import checkpoint_digests, metrics_csv

logger = logging.getLogger(__name__)


class RunCheckpoint(keras.callbacks.Callback):
    """At the end of every epoch: checkpoint, models, metrics.csv, then the state commit."""

    def __init__(self, run: Path, wavenet: WaveNet, checkpoint: tf.train.Checkpoint, state: dict[str, Any],
                 steps_per_epoch: int, max_cpu_minutes: float = 0.0):
        super().__init__()
        self.run = run
        self.wavenet = wavenet
        self.manager = tf.train.CheckpointManager(checkpoint, run / "checkpoints", max_to_keep=3)
        self.state = state
        self.steps_per_epoch = steps_per_epoch
        self.max_cpu_minutes = max_cpu_minutes
        self._started = time.perf_counter()
        self._cpu_started = time.process_time()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()
        self._cpu_started = time.process_time()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # A diverged step poisons every weight: stop before the epoch's commit can save them.
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._diverged(f"the training loss became {float(loss)} at step {batch + 1} of epoch "
                           f"{self.state['epoch'] + 1}")

    def _diverged(self, what: str) -> None:
        raise RunError(f"{self.run}: {what}; nothing of this epoch was saved (the run is intact at epoch "
                       f"{self.state['epoch']}). Lower --learning-rate and run again with --resume, or start "
                       "a new run.")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        committed = self.state["epoch"]
        bad = sorted(k for k, v in (logs or {}).items() if not math.isfinite(float(v)))
        if bad:
            self._diverged(f"epoch {epoch + 1} ended with non-finite {', '.join(bad)}")
        if not all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in self.wavenet.weights):
            self._diverged(f"epoch {epoch + 1} left NaN or Inf in the weights")
        try:
            self._commit(epoch, logs)
        except OSError as error:  # a full disk, a lost mount: the last commit still stands
            raise RunError(f"{self.run}: saving epoch {epoch + 1} failed ({error}). The run is intact at epoch "
                           f"{committed} (state.json); free space or fix the folder, then run again with "
                           "--resume.") from None
        if over_cpu_budget(self.state, self.max_cpu_minutes):
            logger.info("%s: %.1f CPU-minutes used (budget %g) after epoch %d; stopping", self.run,
                        self.state["cpu_seconds"] / 60, self.max_cpu_minutes, epoch + 1)
            self.model.stop_training = True

    def _commit(self, epoch: int, logs: dict[str, Any] | None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        # Cumulative: a resume with another --steps-per-epoch must not move the counter (and
        # the window stream it indexes) backwards.
        step = self.state["step"] + self.steps_per_epoch
        prefix = self.manager.save(checkpoint_number=step)
        # CPU seconds of every thread (training, tf.data, validation, saving), summed over the
        # sessions of a resumed run: the x axis of a learning curve on a shared machine.
        cpu_seconds = self.state.get("cpu_seconds", 0.0) + time.process_time() - self._cpu_started
        row = {"epoch": epoch + 1, "step": step, **logs,
               "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
               "seconds": round(time.perf_counter() - self._started, 2), "cpu_seconds": round(cpu_seconds, 2)}
        history = [r for r in self.state["history"] if r["epoch"] < epoch + 1] + [row]
        monitor = "val_loss" if "val_loss" in logs else "loss"
        improved = self.state.get("best") is None or logs[monitor] < self.state["best"]["value"]
        atomic_write(self.run / "model_last.keras", lambda tmp: self.wavenet.save(tmp), checksum=True)
        if improved:
            atomic_write(self.run / "model_best.keras", lambda tmp: self.wavenet.save(tmp), checksum=True)
        write_text_atomically(self.run / "metrics.csv", metrics_csv(history))
        self.state.update(epoch=epoch + 1, step=step, checkpoint=os.path.basename(prefix), history=history,
                          checkpoint_files=checkpoint_digests(Path(prefix)), cpu_seconds=cpu_seconds)
        if improved:
            self.state["best"] = {"metric": monitor, "value": logs[monitor], "epoch": epoch + 1}
        write_json(self.run / "state.json", self.state)  # the commit point: always last


def over_cpu_budget(state: dict[str, Any], max_cpu_minutes: float) -> bool:
    """Whether the run in ``state`` has used its CPU budget (never, for a budget of 0)."""
    return bool(max_cpu_minutes) and state.get("cpu_seconds", 0.0) >= 60.0 * max_cpu_minutes


class Summaries(keras.callbacks.Callback):
    """Learning rate every epoch and generated audio every ``audio_every`` epochs, for TensorBoard."""

    def __init__(self, log_dir: Path, wavenet: WaveNet, train_config: TrainConfig, seed: int):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(log_dir / "samples"))
        self.wavenet = wavenet
        self.config = train_config
        self.seed = seed

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        with self.writer.as_default(step=epoch + 1):
            tf.summary.scalar("learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
            every = self.config.audio_every
            if every and (epoch + 1) % every == 0 and self.config.audio_seconds > 0:
                audio = self.generate(int(self.config.audio_seconds * self.wavenet.model_config.sample_rate), epoch)
                if audio is not None:
                    tf.summary.audio("generated", audio[None, :, None], self.wavenet.model_config.sample_rate,
                                     max_outputs=1, description=f"epoch {epoch + 1}, temperature 1.0")
        self.writer.flush()

    def generate(self, num_samples: int, epoch: int) -> np.ndarray | None:
        from wavenet_tf.core.numpy_step import generate_audio
        from wavenet_tf.step_weights import step_arrays

        config = self.wavenet.model_config
        if config.local_conditioning_channels:
            return None  # needs mel frames; generate from a bundle with --mel-from instead
        global_id = 0 if config.global_conditioning_classes else None
        return generate_audio(step_arrays(self.wavenet), num_samples, seed=self.seed + epoch,
                              receptive_field=config.receptive_field, global_id=global_id)


class EpochLine(keras.callbacks.Callback):
    """One plain line per epoch on stdout (for logs and pipes, where a progress bar is noise)."""

    def __init__(self, epochs: int, state: dict[str, Any]):
        super().__init__()
        self.epochs = epochs
        self.state = state
        self._started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        first = ("loss", "bits_per_sample", "accuracy")
        rank = lambda k: (k.startswith("val_"), first.index(k[4:] if k.startswith("val_") else k)
                          if (k[4:] if k.startswith("val_") else k) in first else len(first), k)
        figures = " - ".join(f"{k}: {float(logs[k]):.4f}" for k in sorted(logs, key=rank))
        print(f"epoch {epoch + 1}/{self.epochs} - step {self.state['step']} - {figures} - "
              f"{time.perf_counter() - self._started:.1f} s", flush=True)
