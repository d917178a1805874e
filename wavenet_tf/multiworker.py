"""Distribution: the strategy a training runs under, which worker this is, and the multi-worker loop.

Keras 3.15's `fit` fails under MultiWorkerMirroredStrategy before the first step (it reduces
input structures and scalar metrics with collectives that cannot take them;
keras-team/keras#20329, #20585), so `fit_multiworker` writes its loop out with `strategy.run`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

import keras
import tensorflow as tf

from wavenet_tf.core.config import TrainConfig
from wavenet_tf.core.files import RunError


def make_strategy(config: TrainConfig) -> tf.distribute.Strategy:
    """``config.strategy`` as a `tf.distribute.Strategy` (create it before any other TensorFlow work)."""
    if config.max_cpu_minutes and config.strategy == "multiworker":
        raise RunError("--max-cpu-minutes is not supported with --strategy multiworker (each worker would "
                       "count its own CPU time and they could stop at different epochs).")
    if config.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if config.strategy == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise RunError("--strategy multiworker needs TF_CONFIG describing the cluster (see docs/training.md#several-machines).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def worker_run(out: Path, strategy: tf.distribute.Strategy) -> tuple[Path, bool]:
    """This worker's run directory, and whether it is the chief.

    Every worker keeps a complete run of its own (checkpointing is collective): the chief's
    is ``out``, worker i's is ``out/worker-i``. Only the chief writes audio summaries.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return out, True
    index = resolver.task_id or 0
    is_chief = resolver.task_type == "chief" or (resolver.task_type == "worker" and index == 0)
    return (out if is_chief else out / f"worker-{index}"), is_chief


def per_replica_batch_size(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset) -> int:
    """Windows one replica of this worker receives per step, read from the distributed dataset."""
    inputs, _ = next(iter(strategy.experimental_distribute_dataset(dataset)))
    local = strategy.experimental_local_results(inputs["audio"])
    return int(local[0].shape[0])


def _step_functions(trainer: keras.Model, strategy: tf.distribute.Strategy,
                    global_batch_size: int) -> tuple[Callable, Callable]:
    """A training and an evaluation step over one distributed batch: (summed loss, summed correct).

    Each replica's loss is its summed cross-entropy divided by the *global* batch; the Keras
    optimizer all-reduces (sums) the gradients, so every worker applies the gradient of the
    global mean and the weights stay identical.
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

    return (tf.function(lambda batch: reduced(replica_train_step, batch)),
            tf.function(lambda batch: reduced(replica_eval_step, batch)))


def _logs(loss_sum: float, correct_sum: float, count: int, prefix: str = "") -> dict[str, float]:
    """The figures `fit` would log, from sums over ``count`` windows."""
    loss = float(loss_sum) / count
    return {f"{prefix}loss": loss, f"{prefix}bits_per_sample": loss / math.log(2.0),
            f"{prefix}accuracy": float(correct_sum) / count}


def _validate(strategy: tf.distribute.Strategy, eval_step: Callable, validation: tf.data.Dataset,
              global_batch_size: int) -> dict[str, float]:
    loss, correct, count = 0.0, 0.0, 0
    for batch in strategy.experimental_distribute_dataset(validation):
        loss_sum, correct_sum = eval_step(batch)
        loss, correct, count = loss + float(loss_sum), correct + float(correct_sum), count + global_batch_size
    return _logs(loss, correct, count, prefix="val_")


def fit_multiworker(trainer: keras.Model, strategy: tf.distribute.Strategy, train_data: tf.data.Dataset,
                    validation: tf.data.Dataset | None, config: TrainConfig, initial_epoch: int,
                    callbacks: list[keras.callbacks.Callback], verbose: Any, global_batch_size: int) -> None:
    """`model.fit`'s loop, written out with `strategy.run`, for MultiWorkerMirroredStrategy.

    The documented TensorFlow pattern (see `_step_functions`). The same callbacks
    (checkpoints, TensorBoard, summaries) run at the same moments as under `fit`.
    """
    train_step, eval_step = _step_functions(trainer, strategy, global_batch_size)
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
            callback_list.on_train_batch_end(step, _logs(loss_sum, correct_sum, global_batch_size))
        epoch_logs = _logs(*total, config.steps_per_epoch * global_batch_size)
        if validation is not None:
            epoch_logs.update(_validate(strategy, eval_step, validation, global_batch_size))
        if verbose:
            print(f"Epoch {epoch + 1}/{config.epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in epoch_logs.items()))
        callback_list.on_epoch_end(epoch, epoch_logs)
    callback_list.on_train_end()
