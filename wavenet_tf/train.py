"""Training: `model.fit` on the `tf.data` pipeline, with a run directory that can resume.

Run directory (``wavenet train DATA --out RUN``)::

    config.json        everything resolved: model, data, training, data source, labels
    dataset.json       label ids, the train/validation split by file, skipped files
    state.json         the commit point: epoch, step, best, history, latest checkpoint
    checkpoints/       tf.train.Checkpoint of weights + optimizer state (3 kept)
    model_last.keras   the WaveNet after the latest epoch
    model_best.keras   the WaveNet with the lowest validation loss so far
    metrics.csv        one row per epoch: losses, bits/sample, accuracy, learning rate
    logs/              TensorBoard: scalars, learning rate, generated audio

Every file is written to a temporary name and renamed into place; ``state.json`` is
written last. A crash at any moment leaves the previous ``state.json`` pointing at a
complete checkpoint, so resuming loses at most one epoch (the checkpoint interval).
Windows are a pure function of (seed, index), so a resumed run sees exactly the batches
the uninterrupted run would have seen.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from wavenet_tf.core.config import DataConfig, ModelConfig, TrainConfig
from wavenet_tf.core.files import (
    RunError, atomic_write, file_digest, read_json, verify_checksum, write_json, write_text_atomically,
)
from wavenet_tf.metrics import BitsPerSample
from wavenet_tf.model import WaveNet

logger = logging.getLogger(__name__)

RUN_FORMAT_VERSION = 1


class TrainingView(keras.Model):
    """A view of a `WaveNet` whose outputs are only the logits with a full receptive field.

    The first ``receptive_field - 1`` positions of a window see causal zero padding
    instead of audio; they are context, not targets. The view shares every weight with
    the WaveNet: train the view, save the WaveNet.
    """

    def __init__(self, wavenet: WaveNet, **kwargs):
        crop = keras.layers.Cropping1D((wavenet.receptive_field - 1, 0), name="full_context")
        super().__init__(wavenet.inputs, crop(wavenet.outputs[0]), name=f"{wavenet.name}_training", **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 under MultiWorkerMirroredStrategy reduces the first batch's whole
        # input structure with a collective to learn its shapes, and the collective cannot
        # take a dict (keras-team/keras#20329, #20585: fit fails before the first step).
        # Shapes are all the build needs, so give it this worker's own share of the batch.
        strategy = getattr(self, "_distribute_strategy", None)
        if iterator is None or strategy is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            batch = next(it)
            break
        local = tf.nest.map_structure(
            lambda v: strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
            batch,
        )
        return super()._maybe_symbolic_build(data_batch=local)


def training_model(model: WaveNet) -> keras.Model:
    """The `TrainingView` of ``model`` (shares its weights)."""
    return TrainingView(model)


def compile_for_training(model: keras.Model, learning_rate: float = 1e-3, jit_compile: bool = False) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[BitsPerSample(), keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    return model


def load_run_config(run: str | Path) -> tuple[ModelConfig, DataConfig, TrainConfig, dict[str, Any]]:
    path = Path(run) / "config.json"
    if not path.is_file():
        raise RunError(f"{run} is not a run directory (no config.json); create one with `wavenet train DATA --out {run}`.")
    record = read_json(path)
    if not isinstance(record, dict):
        raise RunError(f"{path}: expected a JSON object, got {type(record).__name__}; the file is damaged.")
    if record.get("format_version") != RUN_FORMAT_VERSION:
        raise RunError(f"{path}: format_version {record.get('format_version')!r} is not {RUN_FORMAT_VERSION}; "
                       "this run was written by another version of wavenet-tf.")
    configs = []
    for key, cls in (("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig)):
        if not isinstance(record.get(key), dict):
            raise RunError(f"{path}: \"{key}\" must be an object of {cls.__name__} fields, got "
                           f"{type(record.get(key)).__name__}; the file is damaged.")
        try:
            configs.append(cls.from_dict(record[key]))
        except (TypeError, ValueError) as error:
            raise RunError(f"{path}: \"{key}\" is not a valid {cls.__name__} ({error}).") from None
    labels = record.get("labels", [])
    if not (isinstance(labels, list) and all(isinstance(label, str) for label in labels)):
        raise RunError(f"{path}: \"labels\" must be a list of strings; the file is damaged.")
    if not isinstance(record.get("data_source", ""), str):
        raise RunError(f"{path}: \"data_source\" must be a string; the file is damaged.")
    return configs[0], configs[1], configs[2], record


def read_state(run: Path) -> dict[str, Any]:
    """``state.json``, checked field by field so a damaged commit point is named, not a traceback."""
    path = run / "state.json"
    state = read_json(path)
    fields = {"epoch": int, "step": int, "history": list}
    problems = [name for name, kind in fields.items()
                if not isinstance(state.get(name) if isinstance(state, dict) else None, kind)
                or isinstance(state.get(name), bool)] if isinstance(state, dict) else ["the whole file"]
    if not problems:
        if state["epoch"] < 0 or state["step"] < 0:
            problems.append("epoch/step (negative)")
        if not (state.get("checkpoint") is None or isinstance(state.get("checkpoint"), str)):
            problems.append("checkpoint")
        best = state.get("best")
        if not (best is None or (isinstance(best, dict) and isinstance(best.get("value"), (int, float))
                                 and isinstance(best.get("metric"), str))):
            problems.append("best")
        if not isinstance(state.get("checkpoint_files", {}), dict):
            problems.append("checkpoint_files")
        if not all(isinstance(row, dict) and isinstance(row.get("epoch"), int) for row in state["history"]):
            problems.append("history")
    if problems:
        raise RunError(f"{path}: damaged ({', '.join(problems)} missing or of the wrong type); the run cannot "
                       "resume from it. Restore it from a copy, or start a new run with another --out "
                       "(model_last.keras holds the latest weights).")
    return state


def load_run_model(run: str | Path, which: str = "best") -> WaveNet:
    """The WaveNet saved in a run directory (``best`` falls back to ``last``)."""
    run = Path(run)
    for name in ([f"model_{which}.keras", "model_last.keras"] if which == "best" else [f"model_{which}.keras"]):
        if (run / name).is_file():
            verify_checksum(run / name)
            try:
                return keras.saving.load_model(run / name)
            except Exception as error:  # a damaged zip/h5 surfaces as many exception types
                raise RunError(f"{run / name}: cannot be loaded ({type(error).__name__}: {error}).") from None
    raise RunError(f"{run}: no saved model yet (model_best.keras / model_last.keras); train at least one epoch.")


# --- callbacks ----------------------------------------------------------------------------------

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
        write_text_atomically(self.run / "metrics.csv", _csv(history))
        self.state.update(epoch=epoch + 1, step=step, checkpoint=os.path.basename(prefix), history=history,
                          checkpoint_files=checkpoint_digests(Path(prefix)), cpu_seconds=cpu_seconds)
        if improved:
            self.state["best"] = {"metric": monitor, "value": logs[monitor], "epoch": epoch + 1}
        write_json(self.run / "state.json", self.state)  # the commit point: always last


def over_cpu_budget(state: dict[str, Any], max_cpu_minutes: float) -> bool:
    """Whether the run in ``state`` has used its CPU budget (never, for a budget of 0)."""
    return bool(max_cpu_minutes) and state.get("cpu_seconds", 0.0) >= 60.0 * max_cpu_minutes


def checkpoint_digests(prefix: Path) -> dict[str, str]:
    """SHA-256 of each file of the TF checkpoint ``prefix`` (its ``.index`` and ``.data-*`` shards)."""
    files = sorted(prefix.parent.glob(prefix.name + ".*"))
    if not files:
        raise RunError(f"{prefix}: the checkpoint wrote no files.")
    return {f.name: file_digest(f) for f in files}


def verify_checkpoint(run: Path, state: dict[str, Any]) -> Path:
    """The committed checkpoint's prefix, after checking its files against state.json's digests."""
    prefix = run / "checkpoints" / state["checkpoint"]
    for name, digest in state.get("checkpoint_files", {}).items():
        path = prefix.parent / name
        if not path.is_file():
            raise RunError(f"{path}: missing, but state.json's checkpoint needs it; the run cannot resume. "
                           "Restore the file, or start a new run (model_last.keras holds the last weights).")
        if file_digest(path) != digest:
            raise RunError(f"{path}: contents differ from the checksum in state.json (truncated or altered); "
                           "the run cannot resume from it. Restore the file, or start a new run.")
    return prefix


def _csv(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


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


class RunLock:
    """An exclusive lock on a run directory, held while a training writes to it.

    ``RUN/.lock`` is locked with ``flock`` and holds the owner's pid: a second training or
    resume of the same run is refused naming that pid, and a lock left by a dead process
    is no obstacle (the kernel releases ``flock`` when its holder exits).
    """

    def __init__(self, run: Path):
        self.path = Path(run) / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 64).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise RunError(f"{self.path.parent} is being trained by pid {owner} (it holds {self.path}); "
                               "wait for it to finish or stop it — two trainings would overwrite each "
                               "other's checkpoints.") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file the previous holder unlinked while we waited to lock it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)  # closing releases the flock
            self.fd = None


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


# --- the run ------------------------------------------------------------------------------------

def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise RunError("--strategy multiworker needs TF_CONFIG describing the cluster (see README, 'Several machines').")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _worker(strategy: tf.distribute.Strategy) -> tuple[bool, int]:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True, 0
    index = resolver.task_id or 0
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and index == 0), index


def _config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def train(
    source: str | Path | None,
    out: str | Path,
    model_config: ModelConfig | None = None,
    data_config: DataConfig | None = None,
    train_config: TrainConfig | None = None,
    resume: bool = False,
    global_conditioning: bool = False,
    local_conditioning: bool = False,
    cache_dir: str | Path | None = None,
    strict: bool = False,
    verbose: str | int = "auto",
    allow_one_label: bool = False,
    val_source: str | Path | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run in ``out``; returns the final state (epoch, step, best, history).

    With ``resume``, the run's saved configuration is used; a ``model_config`` that differs
    from it is refused. ``data_config``/``train_config`` given on resume replace the saved
    ones (to train for more epochs, say). With ``val_source``, its files are the validation
    set (held-out pieces, say) and every file of ``source`` trains.
    """
    train_config = train_config or TrainConfig()
    if train_config.max_cpu_minutes and train_config.strategy == "multiworker":
        raise RunError("--max-cpu-minutes is not supported with --strategy multiworker (each worker would "
                       "count its own CPU time and they could stop at different epochs).")
    strategy = make_strategy(train_config.strategy)  # MultiWorkerMirroredStrategy must come first
    out = Path(out)
    is_chief, worker_index = _worker(strategy)
    # Every worker keeps a complete run of its own (checkpointing is collective): the
    # chief's is `out`, worker i's is `out/worker-i`. Only the chief writes audio summaries.
    run = out if is_chief else out / f"worker-{worker_index}"

    saved = None
    leftovers = [name for name in ("state.json", "checkpoints", "model_best.keras", "model_last.keras")
                 if (run / name).exists()]
    if not (run / "config.json").exists() and leftovers:
        raise RunError(f"{run} holds {', '.join(leftovers)} but no config.json; training there would overwrite "
                       "them. Restore config.json from a copy to --resume, or choose another --out "
                       "(model_last.keras holds the latest weights).")
    if (run / "config.json").exists():
        if not resume:
            raise RunError(f"{run} already holds a run; pass --resume to continue it, or choose another --out.")
        saved_model, saved_data, saved_train, saved = load_run_config(run)
        if model_config is not None and model_config != saved_model:
            raise RunError(f"{run}: refusing to resume with a changed model configuration "
                           f"({'; '.join(_config_diff(saved_model.to_dict(), model_config.to_dict()))}). "
                           "Start a new run with another --out.")
        model_config = saved_model
        data_config = data_config or saved_data
        source = source or saved["data_source"]
        val_source = val_source or saved.get("val_source")
        committed = [name for name in ("checkpoints", "model_best.keras", "model_last.keras") if (run / name).exists()]
        if not (run / "state.json").is_file() and committed:
            raise RunError(f"{run}: state.json (the commit point) is missing but the run holds "
                           f"{', '.join(committed)}; resuming would restart from scratch and overwrite them. "
                           "Restore state.json from a copy, or copy model_last.keras elsewhere and start a new "
                           "run with another --out.")
    elif resume:
        raise RunError(f"--resume: {run} holds no run to resume (no config.json).")
    if source is None:
        raise RunError("no DATA given.")
    with RunLock(run):
        return _train_locked(source, run, out, model_config, data_config, train_config, strategy, is_chief,
                             saved, resume, global_conditioning, local_conditioning, allow_one_label, cache_dir,
                             strict, verbose, val_source)


def _train_locked(source, run, out, model_config, data_config, train_config, strategy, is_chief, saved, resume,
                  global_conditioning, local_conditioning, allow_one_label, cache_dir, strict, verbose, val_source):
    from wavenet_tf.data import aligned_target_length, window_dataset, write_dataset_manifest

    # Read (and check) the commit point before anything in the run is rewritten.
    state = read_state(run) if resume and (run / "state.json").is_file() else {
        "epoch": 0, "step": 0, "checkpoint": None, "best": None, "history": []}
    model_config = model_config or ModelConfig()
    data_config = data_config or DataConfig()
    if train_config.precision != "float32":
        keras.mixed_precision.set_global_policy(train_config.precision)
    keras.utils.set_random_seed(data_config.seed)

    # A conditioned run keeps the label ids it was trained with: resuming on relabelled data
    # must not silently renumber them (an unknown label is refused by `prepare`).
    labels = saved.get("labels") if saved is not None and model_config.global_conditioning_classes else None
    prepared = _prepare(source, val_source, model_config, data_config, cache_dir, strict, labels)
    if saved is None:
        if (global_conditioning and not model_config.global_conditioning_classes and len(prepared.label_names) < 2
                and not allow_one_label):
            raise RunError(f"--global-cond: {source} has one label ({prepared.label_names[0] or 'none'!r}), so the "
                           "model would learn a single class. Put each speaker's files in a sub-folder (or give a "
                           "manifest with a label column), or pass --allow-one-label.")
        if global_conditioning and not model_config.global_conditioning_classes:
            model_config = model_config.replace(global_conditioning_classes=max(1, len(prepared.label_names)))
        if local_conditioning and not model_config.local_conditioning_channels:
            model_config = model_config.replace(
                local_conditioning_channels=80, upsample_scales=model_config.upsample_scales or (4, 8, 8))
        if model_config.local_conditioning_channels and prepared.train[0].mel is None:
            prepared = _prepare(source, val_source, model_config, data_config, cache_dir, strict)
    if model_config.global_conditioning_classes and len(prepared.label_names) > model_config.global_conditioning_classes:
        raise RunError(f"the data has {len(prepared.label_names)} labels but the model has "
                       f"{model_config.global_conditioning_classes} global classes.")
    r = model_config.receptive_field
    target_length = data_config.target_length
    if model_config.local_conditioning_channels:
        target_length = aligned_target_length(r, target_length, model_config.hop_length)

    record = {
        "format_version": RUN_FORMAT_VERSION, "model": model_config.to_dict(), "data": data_config.to_dict(),
        # Absolute, so `--resume` without DATA works from any working directory.
        "train": train_config.to_dict(), "data_source": os.path.abspath(str(source)), "labels": prepared.label_names,
        "val_source": None if val_source is None else os.path.abspath(str(val_source)),
        "target_length": target_length, "receptive_field": r,
        "data_summary": {k: v for k, v in prepared.summary().items() if k != "skipped"},
    }
    write_json(run / "config.json", record)
    write_dataset_manifest(prepared, run / "dataset.json")

    with strategy.scope():
        wavenet = WaveNet.from_model_config(model_config)
        trainer = compile_for_training(training_model(wavenet), train_config.learning_rate, train_config.jit_compile)
        trainer.optimizer.build(trainer.trainable_variables)
        checkpoint = tf.train.Checkpoint(model=trainer, optimizer=trainer.optimizer)
        if state["checkpoint"]:
            prefix = verify_checkpoint(run, state)
            try:
                checkpoint.read(str(prefix)).assert_existing_objects_matched()
            except (tf.errors.OpError, AssertionError, ValueError) as error:
                raise RunError(f"{prefix}: the checkpoint cannot be restored ({type(error).__name__}: "
                               f"{str(error).splitlines()[0][:200]}).") from None
            logger.info("resumed %s at epoch %d (step %d)", run, state["epoch"], state["step"])

    conditioning = dict(global_conditioning=bool(model_config.global_conditioning_classes),
                        local_conditioning=bool(model_config.local_conditioning_channels),
                        hop_length=model_config.hop_length)
    train_data = window_dataset(prepared.train, r, target_length, data_config.batch_size,
                                model_config.quantization_channels, seed=data_config.seed,
                                start_step=state["step"], **conditioning)
    validation = None
    if prepared.val:
        validation = window_dataset(prepared.val, r, target_length, data_config.batch_size,
                                    model_config.quantization_channels, seed=data_config.seed + 1,
                                    **conditioning).take(train_config.validation_steps)
    callbacks = [
        RunCheckpoint(run, wavenet, checkpoint, state, train_config.steps_per_epoch, train_config.max_cpu_minutes),
        keras.callbacks.TensorBoard(log_dir=str(run / "logs"), update_freq="epoch"),
    ]
    if is_chief:
        callbacks.append(Summaries(run / "logs", wavenet, train_config, data_config.seed))
    if verbose == "lines" and train_config.strategy != "multiworker":
        callbacks.append(EpochLine(train_config.epochs, state))
        verbose = 0
    if over_cpu_budget(state, train_config.max_cpu_minutes):
        logger.info("%s already used %.1f of its %g CPU-minutes; nothing to do", out, state["cpu_seconds"] / 60,
                    train_config.max_cpu_minutes)
    elif state["epoch"] < train_config.epochs:
        fit = fit_multiworker if train_config.strategy == "multiworker" else _keras_fit
        fit(trainer, strategy, train_data, validation, train_config, state["epoch"], callbacks, verbose,
            data_config.batch_size)
    else:
        logger.info("%s already trained %d of %d epochs; nothing to do", out, state["epoch"], train_config.epochs)
    state["replicas"] = strategy.num_replicas_in_sync
    state["per_replica_batch_size"] = per_replica_batch_size(strategy, train_data)
    return state


def _prepare(source, val_source, model_config: ModelConfig, data_config: DataConfig, cache_dir, strict: bool,
             labels=None):
    """`prepare` the training data; with ``val_source``, its files replace the random validation split."""
    from wavenet_tf.data import prepare

    if val_source is None:
        return prepare(source, model_config, data_config, cache_dir=cache_dir, strict=strict, labels=labels)
    prepared = prepare(source, model_config, data_config.replace(val_split=0.0), cache_dir=cache_dir, strict=strict,
                       labels=labels)
    held_out = prepare(val_source, model_config, data_config.replace(val_split=0.0), cache_dir=cache_dir, strict=strict)
    ids = {name: i for i, name in enumerate(prepared.label_names)}
    for track in held_out.tracks:
        if track.label not in ids:
            raise RunError(f"--val-data: {track.path} has label {track.label!r}, which the training data "
                           f"does not have (labels: {prepared.label_names}); use the same sub-folder names.")
        track.label_id = ids[track.label]
    prepared.val = held_out.tracks
    prepared.skipped = prepared.skipped + held_out.skipped
    return prepared


def _keras_fit(trainer, strategy, train_data, validation, config, initial_epoch, callbacks, verbose, batch_size):
    trainer.fit(train_data, epochs=config.epochs, initial_epoch=initial_epoch, steps_per_epoch=config.steps_per_epoch,
                validation_data=validation, callbacks=callbacks, shuffle=False, verbose=verbose)


def fit_multiworker(trainer, strategy, train_data, validation, config, initial_epoch, callbacks, verbose,
                    global_batch_size):
    """`model.fit`'s loop, written out with `strategy.run`, for MultiWorkerMirroredStrategy.

    Keras 3.15's `fit` fails under MultiWorkerMirroredStrategy before the first step (it
    reduces input structures and scalar metrics with collectives that cannot take them;
    keras-team/keras#20329, #20585). This loop is the documented TensorFlow pattern: each
    replica's loss is its summed cross-entropy divided by the *global* batch, the Keras
    optimizer all-reduces (sums) the gradients, so every worker applies the gradient of
    the global mean and the weights stay identical. The same callbacks (checkpoints,
    TensorBoard, summaries) run at the same moments as under `fit`.
    """
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def sums(inputs, targets, training):
        logits = trainer(inputs, training=training)
        per_example = tf.reduce_mean(cross_entropy(targets, logits), axis=1)
        correct = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), targets), tf.float32), 1)
        return per_example, correct

    def replica_train_step(inputs, targets):
        with tf.GradientTape() as tape:
            per_example, correct = sums(inputs, targets, True)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
        gradients = tape.gradient(loss, trainer.trainable_variables)
        trainer.optimizer.apply_gradients(zip(gradients, trainer.trainable_variables))
        return tf.reduce_sum(per_example), tf.reduce_sum(correct)

    def replica_eval_step(inputs, targets):
        per_example, correct = sums(inputs, targets, False)
        return tf.reduce_sum(per_example), tf.reduce_sum(correct)

    def reduced(fn, batch):
        loss_sum, correct_sum = strategy.run(fn, args=batch)
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss_sum, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, correct_sum, axis=None))

    train_step = tf.function(lambda batch: reduced(replica_train_step, batch))
    eval_step = tf.function(lambda batch: reduced(replica_eval_step, batch))

    def logs(loss_sum, correct_sum, count, prefix=""):
        loss = float(loss_sum) / count
        return {f"{prefix}loss": loss, f"{prefix}bits_per_sample": loss / math.log(2.0),
                f"{prefix}accuracy": float(correct_sum) / count}

    callback_list = keras.callbacks.CallbackList(callbacks, model=trainer, epochs=config.epochs,
                                                 steps=config.steps_per_epoch, verbose=0)
    batches = iter(strategy.experimental_distribute_dataset(train_data))
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, config.epochs):
        callback_list.on_epoch_begin(epoch)
        total = [0.0, 0.0]
        for step in range(config.steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            loss_sum, correct_sum = train_step(next(batches))
            total = [total[0] + float(loss_sum), total[1] + float(correct_sum)]
            callback_list.on_train_batch_end(step, logs(loss_sum, correct_sum, global_batch_size))
        epoch_logs = logs(*total, config.steps_per_epoch * global_batch_size)
        if validation is not None:
            val = [0.0, 0.0, 0]
            for batch in strategy.experimental_distribute_dataset(validation):
                loss_sum, correct_sum = eval_step(batch)
                val = [val[0] + float(loss_sum), val[1] + float(correct_sum), val[2] + global_batch_size]
            epoch_logs.update(logs(val[0], val[1], val[2], prefix="val_"))
        if verbose:
            print(f"Epoch {epoch + 1}/{config.epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in epoch_logs.items()))
        callback_list.on_epoch_end(epoch, epoch_logs)
    callback_list.on_train_end()


def per_replica_batch_size(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset) -> int:
    """Windows one replica of this worker receives per step, read from the distributed dataset."""
    inputs, _ = next(iter(strategy.experimental_distribute_dataset(dataset)))
    local = strategy.experimental_local_results(inputs["audio"])
    return int(local[0].shape[0])
