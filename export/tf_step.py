"""The incremental step as a `tf.function`, for the SavedModel's ``step`` signature.

The same arrays and order of operations as `wavenet_tf.core.numpy_step.NumpyStep` (the NumPy
reference layouts: ``past`` ``(L, k-1, B, R)``, ``layer_inputs`` ``(L, B, R)``), in
TensorFlow ops so a TF deployment can step the model without onnxruntime. Export
verifies it against the Keras full forward pass like every other engine.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf


def make_tf_step(weights: Mapping[str, np.ndarray], local_conditioning: bool) -> tf.Module:
    """A module whose ``step`` function takes explicit state and returns the new state."""
    w = {k: tf.constant(np.asarray(v)) for k, v in weights.items() if k != "delays"}
    num_layers, num_taps, r, two_g = weights["past_kernels"].shape
    g = two_g // 2
    input_taps = weights["input_tables"].shape[0]
    global_conditioning = "global_tables" in weights

    signature = [
        tf.TensorSpec((None, input_taps), tf.int64, name="input_taps"),
        tf.TensorSpec((num_layers, num_taps, None, r), tf.float32, name="past"),
        tf.TensorSpec((None,), tf.int64, name="global_id"),
        tf.TensorSpec((None, num_layers, two_g), tf.float32, name="local"),
    ]

    class Step(tf.Module):
        @tf.function(input_signature=signature)
        def step(self, input_taps, past, global_id, local):
            h = w["input_bias"] + tf.add_n([tf.gather(w["input_tables"][j], input_taps[:, j]) for j in range(input_taps_count)])
            pre = tf.einsum("lkbr,lkrg->blg", past, w["past_kernels"]) + w["gate_bias"]
            if global_conditioning:
                pre += tf.transpose(tf.gather(w["global_tables"], global_id, axis=1), (1, 0, 2))
            if local_conditioning:
                pre += local
            stored, gates = [], []
            for layer in range(num_layers):
                stored.append(h)
                a = pre[:, layer] + tf.matmul(h, w["current_kernels"][layer])
                z = tf.tanh(a[:, :g]) * tf.sigmoid(a[:, g:])
                gates.append(z)
                if layer < num_layers - 1:
                    h = h + tf.matmul(z, w["residual_kernels"][layer]) + w["residual_bias"][layer]
            skip = tf.matmul(tf.concat(gates, axis=1), tf.reshape(w["skip_kernels"], (num_layers * g, -1))) + w["skip_bias"]
            hidden = tf.nn.relu(tf.matmul(tf.nn.relu(skip), w["head_kernel"]) + w["head_bias"])
            logits = tf.matmul(hidden, w["logits_kernel"]) + w["logits_bias"]
            return {"logits": logits, "layer_inputs": tf.stack(stored)}

    input_taps_count = input_taps
    return Step()
