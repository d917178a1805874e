"""Build ``step.onnx``: one WaveNet time step for B streams, with the state passed explicitly.

The graph is written node by node (onnx.helper) from the arrays that
`wavenet_tf.step_weights` reads out of the trained Keras layers, in the shape that makes
onnxruntime fast: its cost is ~1 µs per node for tensors this small, not arithmetic
(`wavenet bench-levers` shows where a step's time goes), so the graph has about four nodes per layer:

    h0       = ReduceSum(Gather(tables, taps + tap offsets))  (the first conv's bias in the last table)
    pre      = MatMul(past (L, 1, B, (k-1)R), W_past (L, 2, (k-1)R, G)) + bias [+ conditioning]
               -> Reshape (2L·B, G) -> Split into filter_l, gate_l     (all layers at once)
    layer l:   z_l = FusedGemm(h_l, Wf_l, C=filter_l, tanh) * FusedGemm(h_l, Wg_l, C=gate_l, sigmoid)
               h_{l+1} = Gemm(z_l, Wr_l, C=h_l)                         (4 nodes)
    skip     = Gemm(Concat(z_0 .. z_{L-1}), W_skip) -> Relu -> Gemm -> Relu -> Gemm -> logits

The arrays are `wavenet_tf.step_weights.step_arrays`' (the residual-offset folding is done
there, once, for every engine; `wavenet_tf.core.step_arrays` explains it) in
`wavenet_tf.core.step_arrays.step_graph_arrays`' layouts; this module does no arithmetic on
them, and `wavenet_tf.core.numpy_step.NumpyStep` computes what this graph computes.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from wavenet_tf.core.step_arrays import StepArrays, step_graph_arrays


def _sampling_nodes(logits: str, q: int, num_input_taps: int, opset: int, node, const) -> None:
    """``next_taps``: the next class drawn in the graph, with `wavenet_tf.core.sampling.sample_classes`' arithmetic.

    float64 throughout, and in the same order: ``z = logits / T``, ``z -= max z``, ``exp``,
    cumulative sum, class = the number of cumulative sums ``<= u · total`` (at most Q − 1).
    Only ``exp`` may round differently from NumPy's (by an ulp), so the class can differ only
    when ``u`` falls within ~1e-16 of a boundary. Drawing in the graph saves the eight NumPy
    calls a sample costs in Python — a fifth of a one-stream step
    (docs/generation-and-server.md#the-graph-draws-the-next-sample-for-few-streams).
    """
    z = node("Cast", [logits], ["sample_logits"], to=TensorProto.DOUBLE)
    z = node("Div", [z, "temperature"], ["sample_scaled"])
    if opset >= 18:
        top = node("ReduceMax", [z, const("sample_class_axis", [1], np.int64)], ["sample_max"], keepdims=1)
    else:
        top = node("ReduceMax", [z], ["sample_max"], axes=[1], keepdims=1)
    z = node("Sub", [z, top], ["sample_shifted"])
    z = node("Exp", [z], ["sample_weights"])
    cdf = node("CumSum", [z, const("sample_cumsum_axis", 1, np.int64)], ["sample_cdf"])
    total = node("Slice", [cdf, const("sample_last", [q - 1], np.int64), const("sample_end", [q], np.int64),
                           const("sample_slice_axis", [1], np.int64)], ["sample_total"])
    below = node("LessOrEqual", [cdf, node("Mul", ["uniform", total], ["sample_threshold"])], ["sample_below"])
    count = node("ReduceSum", [node("Cast", [below], ["sample_below_int"], to=TensorProto.INT64),
                               const("sample_count_axis", [1], np.int64)], ["sample_count"], keepdims=1)
    drawn = node("Min", [count, const("sample_top_class", [q - 1], np.int64)], ["sample_class"])
    if num_input_taps == 1:
        node("Identity", [drawn], ["next_taps"])
    else:
        kept = node("Slice", ["input_taps", const("taps_from", [1], np.int64),
                              const("taps_to", [num_input_taps], np.int64), const("taps_axis", [1], np.int64)],
                    ["kept_taps"])
        node("Concat", [kept, drawn], ["next_taps"], axis=1)


def build_step_graph(arrays: StepArrays, opset: int = 17, metadata: Mapping[str, str] | None = None,
                     sampler: bool = False) -> onnx.ModelProto:
    """The step graph. Inputs and outputs (B dynamic)::

        input_taps    int64   (B, K0)           classes at t-K0+1 .. t; Q means "before the start"
        past          float32 (L, 1, B, (k-1)·R) each layer's stored inputs at its past taps,
                                                 tap j (delay (k-1-j)·d_l) at [..., j·R:(j+1)·R]
        global_id     int64   (B,)              each stream's class (globally conditioned models)
        conditioning  float32 (L, 2, B, G)       this step's filter/gate terms from cond.onnx
                                                 (locally conditioned models)
        logits        float32 (B, Q)            the next sample's distribution
        layer_inputs  float32 (L·B, R)          what the ring buffer stores for time t

    With ``sampler`` (``step_sampler.onnx``) the graph also draws the next class::

        uniform       float64 (B, 1)            a uniform number in [0, 1) per stream
        temperature   float64 (B, 1)            each stream's sampling temperature (> 0)
        next_taps     int64   (B, K0)           input_taps shifted by one, ending with the class
                                                 drawn from logits (`wavenet_tf.core.sampling`'s
                                                 inverse-CDF arithmetic, in float64)

    Two files rather than one: onnxruntime runs every node of a graph whatever outputs are
    asked for, and the sampler's float64 work over 32 streams costs more than NumPy's.
    """
    w = step_graph_arrays(arrays)
    graph = _Graph()
    h = _input_taps(graph, w)
    halves = _past_and_conditioning(graph, w, arrays)
    gates = _layers(graph, w, arrays, h, halves)
    logits = _head(graph, arrays, gates)
    if sampler:
        _sampling_nodes(logits, arrays.quantization_channels, arrays.input_taps, opset, graph.node, graph.const)
    inputs, outputs = _signature(arrays, "global_tables" in w, sampler)
    model = helper.make_model(helper.make_graph(graph.nodes, "wavenet_step", inputs, outputs, initializer=graph.inits),
                              opset_imports=[helper.make_opsetid("", opset)], producer_name="wavenet-tf")
    for key, value in (metadata or {}).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    return model


class _Graph:
    """Nodes and initializers collected in order; `node` returns the output name(s)."""

    def __init__(self) -> None:
        self.inits: list[onnx.TensorProto] = []
        self.nodes: list[onnx.NodeProto] = []

    def const(self, name: str, value, dtype=np.float32) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(value, dtype)), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs


def _input_taps(graph: _Graph, w: Mapping[str, np.ndarray]) -> str:
    """The per-tap lookup tables stacked into one, so the taps are one Gather at offset indices
    and a sum (the first conv's bias is in the current tap's table)."""
    index = graph.node("Add", ["input_taps", graph.const("tap_offsets", w["tap_offsets"], np.int64)], ["tap_rows"])
    looked_up = graph.node("Gather", [graph.const("input_tables", w["input_tables"]), index], ["tap_embeddings"], axis=0)
    return graph.node("ReduceSum", [looked_up, graph.const("tap_axis", [1], np.int64)], ["h_0"], keepdims=0)


def _past_and_conditioning(graph: _Graph, w: Mapping[str, np.ndarray], arrays: StepArrays) -> list[str]:
    """Every layer's past taps at once, (L, 1, B, KR) @ (L, 2, KR, G) -> (L, 2, B, G), plus the
    biases and conditioning terms, split into each layer's filter and gate pre-activations."""
    pre = graph.node("MatMul", ["past", graph.const("past_kernels", w["past_kernels"])], ["past_products"])
    pre = graph.node("Add", [pre, graph.const("gate_bias", w["gate_bias"])], ["pre_biased"])
    if "global_tables" in w:
        term = graph.node("Gather", [graph.const("global_tables", w["global_tables"]), "global_id"],
                          ["global_terms"], axis=2)
        pre = graph.node("Add", [pre, term], ["pre_global"])
    if arrays.local_kernels is not None:
        pre = graph.node("Add", [pre, "conditioning"], ["pre_conditioned"])
    pre = graph.node("Reshape", [pre, graph.const("pre_shape", [-1, arrays.gate_channels], np.int64)], ["pre_flat"])
    names = [f"{kind}_{l}" for l in range(arrays.num_layers) for kind in ("filter", "gate")]
    return graph.node("Split", [pre], names, axis=0)


def _layers(graph: _Graph, w: Mapping[str, np.ndarray], arrays: StepArrays, h: str, halves: list[str]) -> list[str]:
    """The gated layers in order; their inputs are concatenated into ``layer_inputs``."""
    gates, stored = [], []
    for l in range(arrays.num_layers):
        stored.append(h)
        f = graph.node("Gemm", [h, graph.const(f"filter_kernel_{l}", w["filter_kernels"][l]), halves[2 * l]],
                       [f"filter_pre_{l}"])
        f = graph.node("Tanh", [f], [f"filter_{l}_act"])
        s = graph.node("Gemm", [h, graph.const(f"gate_kernel_{l}", w["gate_kernels"][l]), halves[2 * l + 1]],
                       [f"gate_pre_{l}"])
        s = graph.node("Sigmoid", [s], [f"gate_{l}_act"])
        gates.append(graph.node("Mul", [f, s], [f"z_{l}"]))
        if l < arrays.num_layers - 1:
            h = graph.node("Gemm", [gates[-1], graph.const(f"residual_kernel_{l}", arrays.residual_kernels[l]), h],
                           [f"h_{l + 1}"])
    graph.node("Concat", stored, ["layer_inputs"], axis=0)
    return gates


def _head(graph: _Graph, arrays: StepArrays, gates: list[str]) -> str:
    """Skip connections -> ReLU -> 1x1 -> ReLU -> 1x1: the logits."""
    skip = graph.node("Concat", gates, ["gates"], axis=1) if len(gates) > 1 else gates[0]
    skip = graph.node("Gemm", [skip, graph.const("skip_kernel", arrays.skip_kernels),
                               graph.const("skip_bias", arrays.skip_bias)], ["skip"])
    hidden = graph.node("Relu", [skip], ["skip_relu"])
    hidden = graph.node("Gemm", [hidden, graph.const("head_kernel", arrays.head_kernel),
                                 graph.const("head_bias", arrays.head_bias)], ["head"])
    hidden = graph.node("Relu", [hidden], ["head_relu"])
    return graph.node("Gemm", [hidden, graph.const("logits_kernel", arrays.logits_kernel),
                               graph.const("logits_bias", arrays.logits_bias)], ["logits"])


def _signature(arrays: StepArrays, global_conditioning: bool, sampler: bool) -> tuple[list, list]:
    """The graph's inputs and outputs, as `build_step_graph`'s docstring lists them."""
    value = helper.make_tensor_value_info
    taps, layers = arrays.input_taps, arrays.num_layers
    inputs = [value("input_taps", TensorProto.INT64, ["batch", taps]),
              value("past", TensorProto.FLOAT, [layers, 1, "batch", arrays.num_taps * arrays.residual_channels])]
    if global_conditioning:
        inputs.append(value("global_id", TensorProto.INT64, ["batch"]))
    if arrays.local_kernels is not None:
        inputs.append(value("conditioning", TensorProto.FLOAT, [layers, 2, "batch", arrays.gate_channels]))
    outputs = [value("logits", TensorProto.FLOAT, ["batch", arrays.quantization_channels]),
               value("layer_inputs", TensorProto.FLOAT, ["layers_x_batch", arrays.residual_channels])]
    if sampler:
        inputs += [value("uniform", TensorProto.DOUBLE, ["batch", 1]),
                   value("temperature", TensorProto.DOUBLE, ["batch", 1])]
        outputs.append(value("next_taps", TensorProto.INT64, ["batch", taps]))
    return inputs, outputs
