"""The standard checks every layer passes (after keras-hub's `TestCase.run_layer_test`)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def run_layer_test(layer_cls, init_kwargs, input_data, call_kwargs=None, expected_output_shape=None, tmp_path=None):
    """Config round trip, eager and symbolic calls, one `fit` step, `.keras` save/load.

    ``input_data`` is the main input; ``call_kwargs`` are further tensor arguments
    (conditioning). Returns the layer built by the first call.
    """
    call_kwargs = call_kwargs or {}

    # Config round trip: a layer rebuilt from its config has the same config.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    revived = layer_cls.from_config(config)
    assert revived.get_config() == config

    # Eager call.
    eager = _as_list(layer(input_data, **call_kwargs))
    if expected_output_shape is not None:
        assert [tuple(o.shape) for o in eager] == [tuple(s) for s in _as_list_of_shapes(expected_output_shape)]

    # Symbolic call inside a functional model, with the time axis unknown.
    def symbolic(x):
        shape = (None,) + tuple(np.shape(x)[2:])
        return keras.Input(shape=shape, dtype=str(np.asarray(x).dtype), batch_size=None)

    inputs = [symbolic(input_data)] + [keras.Input(shape=np.shape(v)[1:]) for v in call_kwargs.values()]
    fresh = layer_cls(**init_kwargs)
    outputs = _as_list(fresh(inputs[0], **dict(zip(call_kwargs, inputs[1:]))))
    model = keras.Model(inputs, [keras.layers.Identity()(o) for o in outputs])

    # One training step moves the weights and gives a finite loss.
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    data = [np.asarray(input_data)] + [np.asarray(v) for v in call_kwargs.values()]
    targets = [np.zeros(o.shape, "float32") + 0.5 for o in eager]
    before = [w.numpy().copy() for w in fresh.trainable_weights]
    loss = model.train_on_batch(data, targets)
    loss = loss[0] if isinstance(loss, (list, tuple)) else loss
    assert np.isfinite(loss)
    after = [w.numpy() for w in fresh.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), "no weight moved in a training step"

    # `.keras` save and load: identical outputs, no custom_objects needed.
    if tmp_path is not None:
        path = tmp_path / f"{layer_cls.__name__}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        expected = _as_list(model.predict(data, verbose=0))
        got = _as_list(loaded.predict(data, verbose=0))
        for e, g in zip(expected, got):
            np.testing.assert_array_equal(e, g)
    return layer


def _as_list_of_shapes(shapes):
    if isinstance(shapes, list):
        return shapes
    return [shapes]


__all__ = ["run_layer_test", "tf"]
