"""``step.onnx`` on onnxruntime, behind the same interface as `wavenet_tf.core.numpy_step.NumpyStep`."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from wavenet_tf.core.card import ModelCard


def make_session(path: str, threads: int = 1, spinning: bool = True) -> ort.InferenceSession:
    """A CPU session with explicit thread counts.

    One intra-op thread beats two for a single stream on this kind of graph (many tiny
    nodes; `wavenet bench-levers` measures it), and sessions never spin up inter-op threads of their own. Without
    ``spinning`` the session's threads sleep as soon as a run ends instead of spin-waiting
    for the next: needed beside the native engine, whose own threads want those cores.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def optimized_node_count(path) -> int | None:
    """Nodes left in a graph after onnxruntime's full optimization (what a step pays for).

    None when the `onnx` package (needed to read the optimized graph) is not installed.
    """
    try:
        import onnx
    except ImportError:
        return None
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        options.intra_op_num_threads = 1
        options.log_severity_level = 3  # it warns that the saved graph is tuned to this CPU: we only count
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return len(onnx.load(options.optimized_model_filepath).graph.node)


class OnnxStep:
    """``step(input_taps, past, global_ids, conditioning) -> (logits, layer_inputs)`` on ``step.onnx``.

    The graph's own layouts and state convention, as `wavenet_tf.core.numpy_step.NumpyStep`
    (which computes the same): ``past`` ``(L, 1, B, (k-1)·R)``, ``conditioning``
    ``(L, 2, B, G)``, ``layer_inputs`` ``(L·B, R)``, stored inputs offset by the card's
    ``residual_offsets`` (``padding`` is what the ring buffer holds before the start).

    Args:
        path: the ``step.onnx`` file.
        card: the bundle's model card.
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, path: str, card: ModelCard, threads: int = 1):
        self.session = make_session(str(path), threads)
        self.delays = np.asarray(card.step.delays, np.int64)
        self.num_layers = self.delays.shape[0]
        self.residual_channels = card.residual_channels
        self.gate_channels = card.gate_channels
        self.quantization_channels = card.quantization_channels
        self.input_taps = card.initial_kernel_size
        # Before the start every layer input is 0, which this graph stores as -offset.
        self.padding = -np.asarray(card.step.residual_offsets, np.float32)
        self.input_names = {i.name for i in self.session.get_inputs()}

    def step(self, input_taps, past, global_ids=None, conditioning=None):
        feeds = {"input_taps": np.ascontiguousarray(input_taps, np.int64), "past": np.ascontiguousarray(past, np.float32)}
        if "global_id" in self.input_names:
            feeds["global_id"] = np.asarray(global_ids, np.int64)
        if "conditioning" in self.input_names:
            feeds["conditioning"] = np.ascontiguousarray(conditioning, np.float32)
        return tuple(self.session.run(["logits", "layer_inputs"], feeds))
