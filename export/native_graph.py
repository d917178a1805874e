"""Build ``step_native.onnx``: one node of the native operator that generates K samples per call.

``step.onnx`` spends ~1 µs of onnxruntime dispatch per node and has ~4 nodes per layer, so
one sample of `small` costs ~80 µs however little arithmetic it holds. The native operator
(``serving/csrc``, loaded by `serving.native`) computes K consecutive samples for B streams
inside one node — every layer, the skip head and the draw of the next class — from the
same arrays as ``step.onnx`` (`wavenet_tf.step_weights.step_arrays`, offsets folded there),
so its ring buffer holds what ``step.onnx``'s does and either engine can continue what the
other started.

The node (domain ``ai.wavenet_tf``, op ``WaveNetSteps``); B streams, K samples per call::

    ring          float32 (N, L, B, R)   every layer's stored inputs, row t % N holds time t
    time          int64   ()             t, the time of the first sample this call draws
    taps          int64   (B, K0)        input classes at t-K0 .. t-1 (Q: before the start)
    logits        float32 (B, Q)         each stream's distribution for time t
    uniforms      float64 (B, K)         one uniform number in [0, 1) per sample
    temperature   float64 (B,)           <= 1e-3: the most likely class
    forced        int64   (B, K or 0)    classes to feed instead of drawing (-1: draw);
                                         with K columns the op also returns every logits row
    active        int64   (A,)           the streams to advance (the others are untouched)
    threads       int64   ()             threads to split the active streams between
    global_id     int64   (B,)           globally conditioned models (else an empty constant)
    conditioning  float32 (B, K, L, 2G)  cond.onnx's terms (locally conditioned models)
    top_k         int64   (B,)           0: draw from every class; k: only from the k most likely
                                         (ties at the k-th all kept), as `sample_rows` does
 -> classes       int64   (B, K)         the classes drawn (or forced); -1 for inactive streams
    logits_out    float32 (B, Q)         each stream's distribution for time t + K
    ring_out, taps_out                   the state after the call
    all_logits    float32 (B, K or 0, Q) the distribution after each sample, when forcing

Bind ``ring_out``/``taps_out``/``logits_out`` to the input arrays themselves and the op
updates the state in place (no copy); bound to other arrays, it copies first.

``top_k`` is the node's last input, after the weights, and optional in the operator: graphs
exported before it existed have 24 inputs and still run (every stream draws from every class);
`serving.step_model.StepModel` then draws truncated streams with the standard graph.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from wavenet_tf.core.step_arrays import StepArrays

NATIVE_DOMAIN = "ai.wavenet_tf"
NATIVE_OP = "WaveNetSteps"
NATIVE_OP_VERSION = 1

# The node's inputs, in order: runtime inputs, then the weights (initializers).
RUNTIME_INPUTS = ("ring", "time", "taps", "logits", "uniforms", "temperature", "forced", "active", "threads",
                  "global_id", "conditioning")
WEIGHT_INPUTS = ("w_tables", "w_past", "w_current", "w_gate_bias", "w_global", "w_residual", "w_skip",
                 "w_skip_bias", "w_head", "w_head_bias", "w_out", "w_out_bias", "w_delays")
# Inputs added later, at the end of the node, each optional in the operator (older graphs lack them).
LATER_INPUTS = ("top_k",)
OUTPUTS = ("classes", "logits_out", "ring_out", "taps_out", "all_logits")


def native_arrays(arrays: StepArrays) -> dict[str, np.ndarray]:
    """The operator's weight inputs: the step arrays flattened to the rows its loops read (layout only)."""
    a = arrays
    num_layers, r = a.num_layers, a.residual_channels
    global_tables = a.global_tables
    if global_tables is None:
        global_tables = np.zeros((num_layers, 0, 2 * a.gate_channels), np.float32)
    layouts = {
        "w_tables": a.tables.reshape(-1, r),
        "w_past": a.past_kernels,  # (L, (k-1)·R, 2G): tap j at rows j·R
        "w_current": a.current_kernels,
        "w_gate_bias": a.gate_bias,
        "w_global": global_tables,
        "w_residual": a.residual_kernels,
        "w_skip": a.skip_kernels,
        "w_skip_bias": a.skip_bias,
        "w_head": a.head_kernel, "w_head_bias": a.head_bias,
        "w_out": a.logits_kernel, "w_out_bias": a.logits_bias,
    }
    out = {k: np.ascontiguousarray(v, np.float32) for k, v in layouts.items()}
    out["w_delays"] = np.ascontiguousarray(a.delays, np.int64)  # (L, k-1) samples back per past tap
    return out


def build_native_graph(step: StepArrays, metadata: Mapping[str, str] | None = None,
                       opset: int = 17) -> onnx.ModelProto:
    """The one-node graph (see the module docstring); ``step`` from `wavenet_tf.step_weights.step_arrays`."""
    local_conditioning = step.local_kernels is not None
    arrays = native_arrays(step)
    num_layers, _, two_g = arrays["w_past"].shape
    r = arrays["w_current"].shape[1]
    q = arrays["w_out_bias"].shape[0]
    num_input_taps = arrays["w_tables"].shape[0] // (q + 1)
    global_conditioning = arrays["w_global"].shape[1] > 0
    initializers = [numpy_helper.from_array(v, k) for k, v in arrays.items()]
    float_, int64, double = TensorProto.FLOAT, TensorProto.INT64, TensorProto.DOUBLE
    inputs = [
        helper.make_tensor_value_info("ring", float_, ["ring_rows", num_layers, "batch", r]),
        helper.make_tensor_value_info("time", int64, []),
        helper.make_tensor_value_info("taps", int64, ["batch", num_input_taps]),
        helper.make_tensor_value_info("logits", float_, ["batch", q]),
        helper.make_tensor_value_info("uniforms", double, ["batch", "samples"]),
        helper.make_tensor_value_info("temperature", double, ["batch"]),
        helper.make_tensor_value_info("forced", int64, ["batch", "forced_samples"]),
        helper.make_tensor_value_info("active", int64, ["active"]),
        helper.make_tensor_value_info("threads", int64, []),
        helper.make_tensor_value_info("top_k", int64, ["batch"]),
    ]
    # Inputs a model has no use for are empty constants, so callers feed only what matters.
    if global_conditioning:
        inputs.append(helper.make_tensor_value_info("global_id", int64, ["batch"]))
    else:
        initializers.append(numpy_helper.from_array(np.zeros(0, np.int64), "global_id"))
    if local_conditioning:
        inputs.append(helper.make_tensor_value_info("conditioning", float_, ["batch", "samples", num_layers, two_g]))
    else:
        initializers.append(numpy_helper.from_array(np.zeros((0, 0, num_layers, two_g), np.float32), "conditioning"))
    outputs = [
        helper.make_tensor_value_info("classes", int64, ["batch", "samples"]),
        helper.make_tensor_value_info("logits_out", float_, ["batch", q]),
        helper.make_tensor_value_info("ring_out", float_, ["ring_rows", num_layers, "batch", r]),
        helper.make_tensor_value_info("taps_out", int64, ["batch", num_input_taps]),
        helper.make_tensor_value_info("all_logits", float_, ["batch", "forced_samples", q]),
    ]
    node = helper.make_node(NATIVE_OP, list(RUNTIME_INPUTS + WEIGHT_INPUTS + LATER_INPUTS), list(OUTPUTS),
                            domain=NATIVE_DOMAIN, name="wavenet_steps")
    graph = helper.make_graph([node], "wavenet_native_steps", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, producer_name="wavenet-tf", opset_imports=[
        helper.make_opsetid("", opset), helper.make_opsetid(NATIVE_DOMAIN, NATIVE_OP_VERSION)])
    for key, value in (metadata or {}).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    return model
