"""The incremental step's arrays: what every step engine computes with, in one layout.

`wavenet_tf.step_weights.step_arrays` reads them out of a trained `WaveNet` once (the only
place that does arithmetic on weights); ``step.onnx`` (`export.step_graph`), the native
operator (`export.native_graph`) and the NumPy reference (`wavenet_tf.core.numpy_step`)
only lay them out. L layers, k taps per layer, K0 input taps, Q classes, R/G/S channels::

    tables            (K0, Q + 1, R)   one lookup table per input tap; row Q is "before the
                                       start" (zeros: causal padding); the first conv's bias
                                       is on the current tap's class rows
    past_kernels      (L, (k-1)·R, 2G) tap j (delay (k-1-j)·d_l) at rows j·R .. (j+1)·R
    current_kernels   (L, R, 2G)
    gate_bias         (L, 2G)          each layer's gate bias, residual offsets folded in
    residual_kernels  (L - 1, G, R)    no bias: the residual biases are folded (below)
    skip_kernels      (L·G, S)         layer l's rows at l·G: concat(z_0 .. z_{L-1}) @ it
    skip_bias         (S,)             the sum of every layer's skip bias
    head_kernel (S, S), head_bias (S,), logits_kernel (S, Q), logits_bias (Q,)
    delays            (L, k - 1) int64 samples back for each past tap
    residual_offsets  (L, R)           c_l (below)
    global_tables     (L, C, 2G)       global class id -> each layer's gate term (or None)
    local_kernels     (L, Cl, 2G)      upsampled features -> each layer's gate term (or None)

The state convention. The residual biases are folded: layer l's input is carried as
``h̃_l = h_l − c_l`` with ``c_l = Σ_{m<l} residual_bias_m``, and ``c_l`` pushed through the
past and current kernels into ``gate_bias``, so a layer needs no bias add of its own. The
ring buffer therefore stores ``h̃``: before the start (the causal zero padding of the full
forward pass) it holds ``−c`` (`padding`), and a prime computed by the full-sequence graph
subtracts ``c`` (``wavenet.onnx``'s ``layer_inputs`` already do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepArrays:
    """One model's step arrays (see the module docstring for shapes and meaning)."""

    tables: np.ndarray
    past_kernels: np.ndarray
    current_kernels: np.ndarray
    gate_bias: np.ndarray
    residual_kernels: np.ndarray
    skip_kernels: np.ndarray
    skip_bias: np.ndarray
    head_kernel: np.ndarray
    head_bias: np.ndarray
    logits_kernel: np.ndarray
    logits_bias: np.ndarray
    delays: np.ndarray
    residual_offsets: np.ndarray
    global_tables: np.ndarray | None = None
    local_kernels: np.ndarray | None = None

    @property
    def num_layers(self) -> int:
        return self.delays.shape[0]

    @property
    def num_taps(self) -> int:
        """Past taps per layer, k − 1."""
        return self.delays.shape[1]

    @property
    def input_taps(self) -> int:
        return self.tables.shape[0]

    @property
    def residual_channels(self) -> int:
        return self.current_kernels.shape[1]

    @property
    def gate_channels(self) -> int:
        return self.current_kernels.shape[2] // 2

    @property
    def quantization_channels(self) -> int:
        return self.logits_bias.shape[0]

    @property
    def padding(self) -> np.ndarray:
        """``(L, R)``: what the ring buffer holds before the start (the folded zero)."""
        return -self.residual_offsets


def step_graph_arrays(arrays: StepArrays) -> dict[str, np.ndarray]:
    """The arrays in ``step.onnx``'s layouts: its initializers, and what `NumpyStep` multiplies by.

    Layouts only (reshapes and transposes, no arithmetic), chosen so that the graph needs
    no Transpose node: ``past_kernels`` ``(L, 2, (k-1)·R, G)`` (filter half, gate half) meets
    ``past`` ``(L, 1, B, (k-1)·R)`` in one batched MatMul giving ``(L, 2, B, G)``, the
    layout of ``gate_bias``, the global terms and the conditioning.
    """
    a = arrays
    num_layers, g, r = a.num_layers, a.gate_channels, a.residual_channels
    out = {
        "input_tables": a.tables.reshape(-1, r),
        # Tap j's classes index rows j·(Q + 1) ..: all taps are one Gather.
        "tap_offsets": np.arange(a.input_taps, dtype=np.int64) * a.tables.shape[1],
        "past_kernels": a.past_kernels.reshape(num_layers, -1, 2, g).transpose(0, 2, 1, 3),
        "gate_bias": a.gate_bias.reshape(num_layers, 2, 1, g),
        "filter_kernels": a.current_kernels[:, :, :g],
        "gate_kernels": a.current_kernels[:, :, g:],
    }
    if a.global_tables is not None:
        # (L, C, 2G) -> (L, 2, C, G): a Gather on axis 2 lands in the MatMul's layout directly.
        out["global_tables"] = a.global_tables.reshape(num_layers, -1, 2, g).transpose(0, 2, 1, 3)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}
