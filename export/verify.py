"""Parity of a bundle with the Keras model it came from; hard failure, figures printed.

- Keras vs SavedModel `serve` vs ``wavenet.onnx`` logits, several lengths and batch sizes.
- ``step.onnx`` driven one sample at a time (teacher forcing) over 2 × receptive field + a
  margin vs the Keras full-sequence logits.
- ``step_sampler.onnx`` draws the classes NumPy draws from the same logits and uniforms, and
  the graph engine leaves it for NumPy's draw when a stream truncates to its top k.
- ``step_native.onnx`` (the native engine, when its library is built): teacher-forced logits
  against Keras, and the same classes as ``step.onnx`` from the same uniforms, top-k included.
- ``step.onnx``'s node count after onnxruntime's graph optimizations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from serving.bundle import load_bundle
from serving.onnx_step import OnnxStep, make_session, optimized_node_count
from wavenet_tf.core.step_generator import StepGenerator
from wavenet_tf.model import WaveNet

TOLERANCE = 1e-4


class ParityError(RuntimeError):
    """An engine disagrees with the Keras model by more than the tolerance.

    A RuntimeError, not an AssertionError: it reports a broken export to the user (one line
    from `wavenet export --verify`), and `python -O` must not make it disappear."""


def _random_inputs(model: WaveNet, batch: int, length: int, rng) -> dict[str, np.ndarray]:
    c = model.model_config
    inputs = {"audio": rng.integers(0, c.quantization_channels, (batch, length)).astype(np.int32)}
    if c.global_conditioning_classes:
        inputs["global_id"] = rng.integers(0, c.global_conditioning_classes, batch).astype(np.int32)
    if c.local_conditioning_channels:
        inputs["mel"] = rng.normal(size=(batch, length // c.hop_length, c.local_conditioning_channels)).astype(np.float32)
    return inputs


def _check(name: str, difference: float, log, what: str = "logits") -> float:
    log(f"  {name:<52} max |Δ {what}| = {difference:.2e}")
    if not difference <= TOLERANCE:
        raise ParityError(f"{name}: logits differ by {difference:.3e} > {TOLERANCE:g}")
    return difference


def verify_bundle(path: str | Path, model: WaveNet, seed: int = 0, log=print) -> dict[str, Any]:
    bundle = load_bundle(path)
    c = model.model_config
    r, hop = c.receptive_field, c.hop_length
    rng = np.random.default_rng(seed)
    report: dict[str, Any] = {}
    log(f"verifying {path} (tolerance {TOLERANCE:g})")

    full = make_session(str(bundle.file("wavenet.onnx")), threads=2)
    served = tf.saved_model.load(str(bundle.file("saved_model")))
    worst_onnx = worst_saved = worst_states = 0.0
    with_states = model.layer_inputs_model()
    offsets = np.asarray(bundle.card.step.residual_offsets, np.float32).reshape(-1)
    for batch, length in ((1, r + 7), (3, 2 * r + 33), (2, 64)):
        length = max(hop, (length // hop) * hop)
        inputs = _random_inputs(model, batch, length, rng)
        outputs = with_states(inputs, training=False)
        expected = np.asarray(outputs[0])
        states = np.concatenate([np.asarray(o) for o in outputs[1:]], axis=-1) - offsets
        onnx_logits, onnx_states = full.run(["logits", "layer_inputs"], {k: v for k, v in inputs.items()})
        worst_states = max(worst_states, float(np.abs(onnx_states - states).max()))
        saved = served.signatures["serve"](**{k: tf.constant(v) for k, v in inputs.items()})["logits"].numpy()
        worst_onnx = max(worst_onnx, float(np.abs(onnx_logits - expected).max()))
        worst_saved = max(worst_saved, float(np.abs(saved - expected).max()))
    report["wavenet_onnx"] = _check("Keras vs wavenet.onnx (3 lengths, batch 1-3)", worst_onnx, log)
    report["saved_model_serve"] = _check("Keras vs SavedModel serve (3 lengths, batch 1-3)", worst_saved, log)
    report["wavenet_onnx_layer_inputs"] = _check("Keras vs wavenet.onnx (layer inputs, for priming)", worst_states, log,
                                                 what="layer inputs")

    # Teacher forcing: the step graph, one sample at a time, against the full forward pass.
    length = ((2 * r + 50) // hop + 1) * hop
    inputs = _random_inputs(model, 2, length, rng)
    expected = np.asarray(model(inputs, training=False))
    global_ids = inputs.get("global_id")
    local = None
    if c.local_conditioning_channels:
        cond = make_session(str(bundle.file("cond.onnx")))
        local = cond.run(None, {"mel": inputs["mel"]})[0]
    step = OnnxStep(bundle.file("step.onnx"), bundle.card)
    got = StepGenerator(step, 2, global_ids).teacher_forced_logits(inputs["audio"], local)
    report["step_onnx"] = _check(f"Keras vs step.onnx, teacher forcing {length} steps", float(np.abs(got - expected).max()), log)

    report["sampler_mismatches"] = _sampler_mismatches(bundle, rng)
    log(f"  {'step_sampler.onnx vs NumPy sampling, 2 x 300 samples x 4 draws':<52} "
        f"{report['sampler_mismatches']} different classes")
    if report["sampler_mismatches"]:
        raise ParityError("step_sampler.onnx draws other classes than wavenet_tf.core.sampling from the same logits")
    _verify_native(bundle, inputs, expected, local, rng, report, log)
    report["step_nodes"] = optimized_node_count(bundle.file("step.onnx"))
    log(f"  step.onnx: {report['step_nodes']} nodes after onnxruntime optimization ({len(c.all_dilations)} layers)")
    return report


# (temperature, top_k) pairs the samplers are compared on: three temperatures over every class,
# and a truncated draw (NumPy's in the graph engine, the operator's own in the native one).
DRAWS = ((0.5, 0), (1.0, 0), (2.0, 0), (0.8, 3))


def _sampler_mismatches(bundle, rng) -> int:
    """Classes that differ between the graph engine's draws and NumPy's one sample at a time, two streams."""
    from serving.bench import conditioning_options
    from serving.streaming_sampler import StreamingSampler

    options = conditioning_options(bundle, 2, 300, rng)
    mismatches = 0
    for temperature, top_k in DRAWS:
        numpy_side = StreamingSampler(bundle, streams=2, temperature=temperature, top_k=top_k, seed=1, **options)
        expected = np.stack([numpy_side.step() for _ in range(300)], axis=1)
        graph_side = StreamingSampler(bundle, streams=2, temperature=temperature, top_k=top_k, seed=1,
                                      engine="graph", **options)
        mismatches += int((graph_side.generate_classes(300) != expected).sum())
    return mismatches


def _verify_native(bundle, inputs, expected, local, rng, report, log) -> None:
    """The native engine: teacher-forced logits vs Keras, and free-running classes vs ``step.onnx``."""
    from serving.bench import conditioning_options
    from serving.native import NativeUnavailable
    from serving.step_model import StepModel
    from serving.streaming_sampler import StreamingSampler

    audio = inputs["audio"]
    batch, length = audio.shape
    global_ids = inputs.get("global_id")
    try:
        model = StepModel(bundle, engine="native")
    except NativeUnavailable as error:
        log(f"  {'step_native.onnx':<52} not checked: {error}")
        report["step_native"] = None
        return
    conditioning = None if local is None else local.reshape(batch, length, len(model.delays), -1)
    _, logits = model.native_engine(batch).run(0, np.zeros((batch, length)), np.ones(batch), None,
                                               None if global_ids is None else global_ids.astype(np.int64),
                                               conditioning, forced=audio.astype(np.int64))
    report["step_native"] = _check(f"Keras vs step_native.onnx, teacher forcing {length} steps",
                                   float(np.abs(logits - expected).max()), log)
    options = conditioning_options(bundle, 2, 600, rng)
    mismatches = 0
    for temperature, top_k in DRAWS:
        graph = StreamingSampler(bundle, streams=2, temperature=temperature, top_k=top_k, seed=3, engine="graph",
                                 **options)
        native = StreamingSampler(bundle, streams=2, temperature=temperature, top_k=top_k, seed=3, engine="native",
                                  **options)
        mismatches += int((graph.generate_classes(600) != native.generate_classes(600)).sum())
    report["native_mismatches"] = mismatches
    log(f"  {'step_native.onnx vs step.onnx, 2 x 600 samples x 4 draws':<52} {mismatches} different classes")
    if mismatches:
        raise ParityError("step_native.onnx draws other classes than step.onnx from the same uniforms")

