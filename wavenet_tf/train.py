"""Training: `model.fit` on the `tf.data` pipeline, into a run directory that can resume.

`train` is the entry: it resolves the run (`wavenet_tf.run_dir`: what is there, what may be
resumed), the strategy and this worker's part (`wavenet_tf.multiworker`), prepares the data
once, builds and restores the model, and fits with the callbacks that commit each epoch
(`wavenet_tf.callbacks`). Windows are a pure function of (seed, index), so a resumed run
sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from wavenet_tf.callbacks import EpochLine, RunCheckpoint, Summaries, over_cpu_budget
from wavenet_tf.core.config import DataConfig, ModelConfig, TrainConfig
from wavenet_tf.core.files import RunError
from wavenet_tf.core.presets import PRESETS
from wavenet_tf.metrics import BitsPerSample
from wavenet_tf.model import WaveNet
from wavenet_tf.multiworker import fit_multiworker, make_strategy, per_replica_batch_size, worker_run
from wavenet_tf.recipe import PROBE_DECAY_STEPS, PROBE_EPOCHS, budget_decay_steps, make_optimizer
from wavenet_tf.run_dir import (RunLock, config_diff, new_state, open_run, read_state, verify_checkpoint,
                                write_run_config)

logger = logging.getLogger(__name__)


# --- the model that `fit` trains -------------------------------------------------------------

class TrainingView(keras.Model):
    """A view of a `WaveNet` whose outputs are only the logits with a full receptive field.

    The first ``receptive_field - 1`` positions of a window see causal zero padding
    instead of audio; they are context, not targets, and the view computes no skip output
    or head for them (`WaveNet.full_context_logits`). The view shares every weight with
    the WaveNet: train the view, save the WaveNet.
    """

    def __init__(self, wavenet: WaveNet, self_feed: float = 0.0, seed: int = 0, **kwargs):
        super().__init__(wavenet.inputs, wavenet.full_context_logits(), name=f"{wavenet.name}_training", **kwargs)
        self.receptive_field = wavenet.receptive_field
        self.self_feed = float(self_feed)
        self.feed_seed = int(seed)

    def train_step(self, data):
        if self.self_feed:
            inputs, targets = data
            data = (self.self_fed(inputs), targets)
        return super().train_step(data)

    def self_fed(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """``inputs`` with a ``self_feed`` fraction of the predicted positions replaced by the model's own draws.

        Generation feeds the model its own samples; teacher forcing only ever shows it the
        data. One extra forward pass (no gradient) draws every predicted position from the
        model's distribution at T = 1 given the true past, and those draws replace the true
        classes at random positions of the window's part after the context: the model learns
        from pasts that hold exactly the kind of error it makes (parallel scheduled sampling).
        The draws are stateless, seeded by (seed, step): a resumed run draws the same.
        """
        logits = tf.stop_gradient(self(inputs, training=False))
        audio = inputs["audio"]
        batch, length, classes = tf.shape(logits)[0], tf.shape(logits)[1], tf.shape(logits)[2]
        seed = tf.stack([tf.constant(self.feed_seed, tf.int64), tf.cast(self.optimizer.iterations, tf.int64)])
        # Logit i predicts target i, which is input position receptive_field + i: the last
        # target is no input, so its draw is not needed.
        drawn = tf.random.stateless_categorical(tf.reshape(logits[:, :-1], [-1, classes]), 1, seed, dtype=audio.dtype)
        drawn = tf.reshape(drawn, [batch, length - 1])
        chosen = tf.random.stateless_uniform([batch, length - 1], seed + tf.constant([0, 1 << 40], tf.int64)) < self.self_feed
        tail = tf.where(chosen, drawn, audio[:, self.receptive_field:])
        return {**inputs, "audio": tf.concat([audio[:, : self.receptive_field], tail], axis=1)}

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


def training_model(model: WaveNet, self_feed: float = 0.0, seed: int = 0) -> keras.Model:
    """The `TrainingView` of ``model`` (shares its weights)."""
    return TrainingView(model, self_feed=self_feed, seed=seed)


def compile_for_training(model: keras.Model, learning_rate: float = 1e-3, jit_compile: bool = False,
                         optimizer: keras.optimizers.Optimizer | None = None) -> keras.Model:
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[BitsPerSample(), keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    return model


# --- the entry ----------------------------------------------------------------------------------

@dataclasses.dataclass
class _Session:
    """One call of `train`, resolved: where it writes, what it reads, the configurations it uses."""

    source: str | Path
    val_source: str | Path | None
    out: Path
    run: Path  # `out`, or this worker's own folder in it
    is_chief: bool
    model_config: ModelConfig
    data_config: DataConfig
    train_config: TrainConfig
    saved: dict[str, Any] | None  # the run's config.json when resuming
    cache_dir: str | Path | None
    strict: bool
    verbose: str | int
    # A CPU budget's fitted decay (see `train`): the decay_steps the optimizer uses, while
    # config.json keeps the 0 that asks for a fit (so a resume fits again, to its own budget) ...
    decay_steps: int | None = None
    # ... and the epoch at which the probe that measures the CPU per step stops.
    stop_epoch: int | None = None


def train(
    source: str | Path | None,
    out: str | Path,
    model_config: ModelConfig | None = None,
    data_config: DataConfig | None = None,
    train_config: TrainConfig | None = None,
    resume: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Train (or resume) a run in ``out``; returns the final state (epoch, step, best, history).

    With ``resume``, the run's saved configuration is used; a ``model_config`` that differs
    from it is refused. ``data_config``/``train_config`` given on resume replace the saved
    ones (to train for more epochs, say). ``options`` are `_train_once`'s: ``val_source`` (its
    files are the validation set and every file of ``source`` trains), ``global_conditioning``
    (a new run gets one global class per label), ``local_conditioning`` (the `vocoder`
    preset's mel conditioning unless ``model_config`` has its own), ``cache_dir``, ``strict``,
    ``verbose``, ``allow_one_label``.

    A CPU budget (``max_cpu_minutes``) gives no step count for a cosine decay to end at, so
    without ``decay_steps`` the decay is fitted to the budget: the run trains
    `wavenet_tf.recipe.PROBE_EPOCHS` epochs at the peak rate, reads its CPU seconds per step
    from the last of them, and goes on with the decay ending where the budget will
    (`wavenet_tf.recipe.budget_decay_steps`); a resumed run fits again from its history.
    """
    config = train_config or TrainConfig()
    if not (config.max_cpu_minutes and config.lr_schedule != "constant" and not config.decay_steps):
        return _train_once(source, out, model_config, data_config, config, resume, **options)
    if config.strategy == "multiworker":  # each worker would measure its own CPU and fit its own decay
        logger.info("--max-cpu-minutes with --strategy multiworker: the decay is not fitted to the budget "
                    "(give --decay-steps); it ends at epochs × steps_per_epoch")
        return _train_once(source, out, model_config, data_config, config, resume, **options)
    run = Path(out)
    state = read_state(run) if resume and (run / "state.json").is_file() else new_state()
    if over_cpu_budget(state, config.max_cpu_minutes):  # spent already: nothing to fit
        return _train_once(source, out, model_config, data_config, config, resume, **options)
    if len(state["history"]) < PROBE_EPOCHS:
        logger.info("CPU budget of %g minutes: %d epochs at the peak rate measure the CPU per step, then the cosine "
                    "decay is fitted to end with the budget", config.max_cpu_minutes, PROBE_EPOCHS)
        state = _train_once(source, out, model_config, data_config, config, resume, decay_steps=PROBE_DECAY_STEPS,
                            stop_epoch=PROBE_EPOCHS, **options)
        if over_cpu_budget(state, config.max_cpu_minutes) or state["epoch"] >= config.epochs:
            return state
        resume = True
    steps = budget_decay_steps(state["history"], config.max_cpu_minutes, config.steps_per_epoch, config.warmup_steps)
    last, before = state["history"][-1], (state["history"][-2] if len(state["history"]) > 1 else None)
    per_step = (last["cpu_seconds"] - (before["cpu_seconds"] if before else 0.0)) / max(
        1, last["step"] - (before["step"] if before else 0))
    logger.info("cosine decay fitted to the CPU budget: it ends at step %d (%.3f CPU-seconds a step in epoch %d, "
                "%.1f of %g CPU-minutes used)", steps, per_step, last["epoch"], last["cpu_seconds"] / 60,
                config.max_cpu_minutes)
    return _train_once(source, out, model_config, data_config, config, resume, decay_steps=steps, **options)


def _train_once(
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
    decay_steps: int | None = None,
    stop_epoch: int | None = None,
) -> dict[str, Any]:
    """One training session (`train`): ``decay_steps`` replaces the schedule's without being
    saved, ``stop_epoch`` ends the session early (the budget's probe)."""
    train_config = train_config or TrainConfig()
    strategy = make_strategy(train_config)  # MultiWorkerMirroredStrategy must come first
    run, is_chief = worker_run(Path(out), strategy)
    saved = open_run(run, resume)
    record = None
    if saved is not None:
        saved_model, saved_data, _, record = saved
        if model_config is not None:
            # --global-cond / --local-cond settled these fields when the run began: the same
            # command with --resume means the same model.
            if global_conditioning and not model_config.global_conditioning_classes:
                model_config = model_config.replace(global_conditioning_classes=saved_model.global_conditioning_classes)
            if local_conditioning and not model_config.local_conditioning_channels:
                model_config = with_local_conditioning(model_config)
        if model_config is not None and model_config != saved_model:
            raise RunError(f"{run}: refusing to resume with a changed model configuration "
                           f"({'; '.join(config_diff(saved_model.to_dict(), model_config.to_dict()))}). "
                           "Start a new run with another --out.")
        model_config, data_config = saved_model, data_config or saved_data
        source, val_source = source or record["data_source"], val_source or record.get("val_source")
    if source is None:
        raise RunError("no DATA given.")
    session = _Session(source, val_source, Path(out), run, is_chief, model_config or ModelConfig(),
                       data_config or DataConfig(), train_config, record, cache_dir, strict, verbose,
                       decay_steps, stop_epoch)
    with RunLock(run):
        # Read (and check) the commit point before anything in the run is rewritten.
        state = read_state(run) if resume and (run / "state.json").is_file() else new_state()
        # Always set: the policy is process-wide, and a bfloat16 run must not leak into the next one.
        keras.mixed_precision.set_global_policy(train_config.precision)
        keras.utils.set_random_seed(session.data_config.seed)
        prepared, model_config = _prepare_session(session, global_conditioning, local_conditioning, allow_one_label)
        return _train_session(dataclasses.replace(session, model_config=model_config), strategy, state, prepared)


def with_local_conditioning(config: ModelConfig) -> ModelConfig:
    """``config`` conditioned on log-mel frames as the `vocoder` preset is (its bands, its hop).

    Upsample scales ``config`` already has are kept; ``--local-conditioning-channels`` and
    ``--upsample-scales`` set both explicitly.
    """
    vocoder = PRESETS["vocoder"]
    return config.replace(local_conditioning_channels=vocoder.local_conditioning_channels,
                          upsample_scales=config.upsample_scales or vocoder.upsample_scales)


def _prepare_session(session: _Session, global_conditioning: bool, local_conditioning: bool,
                     allow_one_label: bool) -> tuple[Any, ModelConfig]:
    """Decode and split the data once; returns it and the model configuration settled around it.

    Local conditioning is settled first (the mel frames are computed while decoding), the
    number of global classes after (it is the number of labels found).
    """
    config, new_run = session.model_config, session.saved is None
    if new_run and local_conditioning and not config.local_conditioning_channels:
        config = with_local_conditioning(config)
        logger.info("--local-cond: %d mel bands, upsample scales %s (hop %d), as in the vocoder preset",
                    config.local_conditioning_channels, ",".join(map(str, config.upsample_scales)), config.hop_length)
    # A conditioned run keeps the label ids it was trained with: resuming on relabelled data
    # must not silently renumber them (an unknown label is refused by `prepare`).
    labels = session.saved.get("labels") if not new_run and config.global_conditioning_classes else None
    prepared = _prepare(session.source, session.val_source, config, session.data_config, session.cache_dir,
                        session.strict, labels)
    names = prepared.label_names
    if new_run and global_conditioning and not config.global_conditioning_classes:
        if len(names) < 2 and not allow_one_label:
            raise RunError(f"--global-cond: {session.source} has one label ({names[0] or 'none'!r}), so the "
                           "model would learn a single class. Put each speaker's files in a sub-folder (or give a "
                           "manifest with a label column), or pass --allow-one-label.")
        config = config.replace(global_conditioning_classes=max(1, len(names)))
    if config.global_conditioning_classes and len(names) > config.global_conditioning_classes:
        raise RunError(f"the data has {len(names)} labels but the model has "
                       f"{config.global_conditioning_classes} global classes.")
    return prepared, config


def _prepare(source, val_source, model_config: ModelConfig, data_config: DataConfig, cache_dir, strict: bool,
             labels=None):
    """`prepare` the training data; with ``val_source``, its files replace the random validation split."""
    from wavenet_tf.data import prepare

    if val_source is None:
        return prepare(source, model_config, data_config, cache_dir=cache_dir, strict=strict, labels=labels)
    _refuse_shared_files(source, val_source)
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


def _refuse_shared_files(source, val_source) -> None:
    """Validation on training files measures memory, not generalization: refuse it, naming a file."""
    from wavenet_tf.data import discover

    training = {Path(f.path).resolve() for f in discover(source)}
    shared = [f.path for f in discover(val_source) if Path(f.path).resolve() in training]
    if shared:
        raise RunError(f"--val-data {val_source}: {len(shared)} of its files are training files too (e.g. {shared[0]}); "
                       "validation on them would measure memory, not generalization. Give held-out recordings, "
                       "or leave out --val-data to hold out --val-split of DATA's files.")


def _train_session(session: _Session, strategy: tf.distribute.Strategy, state: dict[str, Any], prepared) -> dict[str, Any]:
    """Write the run's configuration, build or restore the model, fit until the epochs or the budget are spent."""
    from wavenet_tf.data import aligned_target_length, write_dataset_manifest

    s = session
    target_length = s.data_config.target_length
    if s.model_config.local_conditioning_channels:
        target_length = aligned_target_length(s.model_config.receptive_field, target_length, s.model_config.hop_length)
    write_run_config(s.run, s.model_config, s.data_config, s.train_config, s.source, prepared.label_names,
                     val_source=None if s.val_source is None else os.path.abspath(str(s.val_source)),
                     target_length=target_length, receptive_field=s.model_config.receptive_field,
                     data_summary={k: v for k, v in prepared.summary().items() if k != "skipped"},
                     # The decay this session fitted to the CPU budget (train.decay_steps stays 0).
                     **({"fitted_decay_steps": s.decay_steps} if s.decay_steps and s.stop_epoch is None else {}))
    write_dataset_manifest(prepared, s.run / "dataset.json")
    wavenet, trainer, checkpoint = _build(s, strategy, state)
    train_data, validation = _datasets(s, prepared, target_length, state["step"])
    callbacks, verbose = _callbacks(s, wavenet, checkpoint, state)
    config = s.train_config if s.stop_epoch is None else s.train_config.replace(
        epochs=min(s.train_config.epochs, s.stop_epoch))
    if over_cpu_budget(state, config.max_cpu_minutes):
        logger.info("%s already used %.1f of its %g CPU-minutes; nothing to do", s.out, state["cpu_seconds"] / 60,
                    config.max_cpu_minutes)
    elif state["epoch"] < config.epochs:
        fit = fit_multiworker if config.strategy == "multiworker" else _keras_fit
        fit(trainer, strategy, train_data, validation, config, state["epoch"], callbacks, verbose,
            s.data_config.batch_size)
    else:
        logger.info("%s already trained %d of %d epochs; nothing to do", s.out, state["epoch"], config.epochs)
    state["replicas"] = strategy.num_replicas_in_sync
    state["per_replica_batch_size"] = per_replica_batch_size(strategy, train_data)
    return state


def _build(session: _Session, strategy: tf.distribute.Strategy,
           state: dict[str, Any]) -> tuple[WaveNet, keras.Model, tf.train.Checkpoint]:
    """The WaveNet, its compiled training view and their checkpoint, restored from the commit point if any."""
    config = session.train_config
    with strategy.scope():
        wavenet = WaveNet.from_model_config(session.model_config)
        schedule = config if session.decay_steps is None else config.replace(decay_steps=session.decay_steps)
        trainer = compile_for_training(training_model(wavenet, config.self_feed, session.data_config.seed),
                                       jit_compile=config.jit_compile, optimizer=make_optimizer(schedule))
        trainer.optimizer.build(trainer.trainable_variables)
        checkpoint = tf.train.Checkpoint(model=trainer, optimizer=trainer.optimizer)
        if state["checkpoint"]:
            prefix = verify_checkpoint(session.run, state)
            try:
                checkpoint.read(str(prefix)).assert_existing_objects_matched()
            except (tf.errors.OpError, AssertionError, ValueError) as error:
                raise RunError(f"{prefix}: the checkpoint cannot be restored ({type(error).__name__}: "
                               f"{str(error).splitlines()[0][:200]}).") from None
            logger.info("resumed %s at epoch %d (step %d)", session.run, state["epoch"], state["step"])
    return wavenet, trainer, checkpoint


def _datasets(session: _Session, prepared, target_length: int,
              start_step: int) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
    """Training windows from ``start_step`` on, and the validation batches (None without validation files)."""
    from wavenet_tf.data import window_dataset

    model, data = session.model_config, session.data_config
    common = dict(global_conditioning=bool(model.global_conditioning_classes),
                  local_conditioning=bool(model.local_conditioning_channels), hop_length=model.hop_length)
    # Jitter reaches the training inputs only: validation scores clean pasts, as generation's bits are defined.
    train_data = window_dataset(prepared.train, model.receptive_field, target_length, data.batch_size,
                                model.quantization_channels, seed=data.seed, start_step=start_step,
                                input_noise=data.input_noise, input_noise_fraction=data.input_noise_fraction, **common)
    if not prepared.val:
        return train_data, None
    validation = window_dataset(prepared.val, model.receptive_field, target_length, data.batch_size,
                                model.quantization_channels, seed=data.seed + 1, **common)
    return train_data, validation.take(session.train_config.validation_steps)


def _callbacks(session: _Session, wavenet: WaveNet, checkpoint: tf.train.Checkpoint,
               state: dict[str, Any]) -> tuple[list[keras.callbacks.Callback], str | int]:
    """The epoch's commit, TensorBoard, the chief's audio summaries and, for a log file, one line per epoch."""
    config, verbose = session.train_config, session.verbose
    callbacks = [
        RunCheckpoint(session.run, wavenet, checkpoint, state, config.steps_per_epoch, config.max_cpu_minutes),
        keras.callbacks.TensorBoard(log_dir=str(session.run / "logs"), update_freq="epoch"),
    ]
    if session.is_chief:
        callbacks.append(Summaries(session.run / "logs", wavenet, config, session.data_config.seed))
    if verbose == "lines" and config.strategy != "multiworker":
        callbacks.append(EpochLine(config.epochs, state))
        verbose = 0
    return callbacks, verbose


def _keras_fit(trainer, strategy, train_data, validation, config, initial_epoch, callbacks, verbose, batch_size):
    trainer.fit(train_data, epochs=config.epochs, initial_epoch=initial_epoch, steps_per_epoch=config.steps_per_epoch,
                validation_data=validation, callbacks=callbacks, shuffle=False, verbose=verbose)
