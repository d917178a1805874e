"""`wavenet export RUN --out BUNDLE`: everything a deployment needs, verified.

    model.json      the model card: format version, audio and model settings, receptive
                    field, conditioning, training summary, every graph's inputs and
                    outputs, the step's delays and offsets, and each file's SHA-256
    saved_model/    TF SavedModel: the `serve` signature (full sequence -> logits)
    wavenet.onnx    full sequence -> logits and layer inputs (dynamic batch and time), tf2onnx
    step.onnx       one time step for B streams, state in and out (export.step_graph)
    step_sampler.onnx  the same step, also drawing the next class (fewer Python calls per sample)
    step_native.onnx   one node of the native operator: K samples for B streams per call
                    (export.native_graph; needs the library serving/csrc builds at install)
    cond.onnx       mel frames -> per-layer conditioning at the sample rate (local conditioning)
    excerpts/       a few short, loud excerpts of the training audio as 16-bit WAVs (per label
                    for speaker models): generation starts from one (serving.excerpts)

ONNX ``metadata_props`` repeat the card (without the checksums, which cover those files).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import tensorflow as tf

from export.native_graph import build_native_graph
from export.step_graph import build_step_graph
from serving.excerpts import EXCERPTS_FOLDER, choose_excerpts, write_excerpts
from wavenet_tf.model import WaveNet
from wavenet_tf.core.card import (BUNDLE_FORMAT_VERSION, DataCleaning, GlobalConditioning, GraphContract,
                                  LocalConditioning, ModelCard, StepState, TrainingSummary)
from wavenet_tf.core.sampling import JITTER_TOP_K
from wavenet_tf.core.step_arrays import StepArrays
from wavenet_tf.step_weights import step_arrays
from wavenet_tf.core.files import file_digest, read_json
from wavenet_tf.run_dir import load_run_config, load_run_model


def graph_contract(card: ModelCard) -> dict[str, GraphContract]:
    """The names, shapes and meaning of every input and output of each graph."""
    L, R, G, Q = card.num_layers, card.residual_channels, card.gate_channels, card.quantization_channels
    k, k0 = card.kernel_size, card.initial_kernel_size
    gc, lc = card.global_conditioning, card.local_conditioning
    full_inputs = [{"name": "audio", "dtype": "int32", "shape": ["batch", "time"], "meaning": "mu-law classes"}]
    step_inputs = [
        {"name": "input_taps", "dtype": "int64", "shape": ["batch", k0],
         "meaning": f"classes at t-{k0 - 1}..t; {Q} means before the start"},
        {"name": "past", "dtype": "float32", "shape": [L, 1, "batch", (k - 1) * R],
         "meaning": "each layer's stored inputs at its past taps; tap j (delay (k-1-j)*dilation) at [..., j*R:(j+1)*R]"},
    ]
    if gc:
        full_inputs.append({"name": "global_id", "dtype": "int32", "shape": ["batch"], "meaning": "global class id"})
        step_inputs.append({"name": "global_id", "dtype": "int64", "shape": ["batch"], "meaning": "global class id"})
    if lc:
        full_inputs.append({"name": "mel", "dtype": "float32", "shape": ["batch", "time / hop_length", lc.n_mels],
                            "meaning": "log-mel frames; frame k conditions samples [k*hop, (k+1)*hop)"})
        step_inputs.append({"name": "conditioning", "dtype": "float32", "shape": [L, 2, "batch", G],
                            "meaning": "this step's per-layer filter/gate terms from cond.onnx"})
    graphs = {
        "wavenet.onnx": {
            "inputs": full_inputs,
            "outputs": [
                {"name": "logits", "dtype": "float32", "shape": ["batch", "time", Q],
                 "meaning": "logits of sample t+1 given samples <= t"},
                {"name": "layer_inputs", "dtype": "float32", "shape": ["batch", "time", L * R],
                 "meaning": "each layer's input (layer l at [..., l*R:(l+1)*R]) minus step.residual_offsets: "
                            "what the step's ring buffer stores"},
            ],
        },
        "step.onnx": {
            "inputs": step_inputs,
            "outputs": [
                {"name": "logits", "dtype": "float32", "shape": ["batch", Q], "meaning": "logits of sample t+1"},
                {"name": "layer_inputs", "dtype": "float32", "shape": [f"{L}*batch", R],
                 "meaning": "layer inputs of time t (minus step.residual_offsets) for the ring buffer"},
            ],
        },
    }
    step = graphs["step.onnx"]
    graphs["step_sampler.onnx"] = {
        "inputs": step["inputs"] + [
            {"name": "uniform", "dtype": "float64", "shape": ["batch", 1],
             "meaning": "one uniform number in [0, 1) per stream, for drawing the next class"},
            {"name": "temperature", "dtype": "float64", "shape": ["batch", 1],
             "meaning": "each stream's sampling temperature (> 0)"},
        ],
        "outputs": step["outputs"] + [
            {"name": "next_taps", "dtype": "int64", "shape": ["batch", k0],
             "meaning": "input_taps shifted by one, ending with the class of sample t+1 drawn from logits"},
        ],
    }
    if lc:
        graphs["cond.onnx"] = {
            "inputs": [{"name": "mel", "dtype": "float32", "shape": ["batch", "frames", lc.n_mels], "meaning": "log-mel frames"}],
            "outputs": [{"name": "conditioning", "dtype": "float32", "shape": ["batch", "frames*hop_length", L, 2 * G],
                         "meaning": "per-layer conditioning at the sample rate"}],
        }
    return {name: GraphContract.from_dict(contract) for name, contract in graphs.items()}


def build_card(run: Path, step: StepArrays, opset: int) -> ModelCard:
    """The card of ``run``'s export, without ``files`` and ``excerpts`` (known once the files are written)."""
    config, data, _, record = load_run_config(run)
    state = read_json(run / "state.json") if (run / "state.json").is_file() else {}
    history = state.get("history") or []
    last = history[-1] if history else {}
    local = None
    if config.local_conditioning_channels:
        local = LocalConditioning(n_mels=config.local_conditioning_channels, hop_length=config.hop_length,
                                  upsample_scales=tuple(config.upsample_scales), n_fft=data.n_fft, fmin=data.fmin,
                                  fmax=data.fmax or config.sample_rate / 2)
    card = ModelCard(
        format_version=BUNDLE_FORMAT_VERSION,
        producer="wavenet-tf",
        sample_rate=config.sample_rate,
        quantization_channels=config.quantization_channels,
        mu=config.mu,
        layer_dilations=tuple(config.all_dilations),
        kernel_size=config.kernel_size,
        initial_kernel_size=config.initial_kernel_size,
        residual_channels=config.residual_channels,
        gate_channels=config.gate_channels,
        skip_channels=config.skip_channels,
        receptive_field=config.receptive_field,
        receptive_field_ms=round(config.receptive_field_ms, 3),
        model_config=config,
        global_conditioning=GlobalConditioning(config.global_conditioning_classes, tuple(record.get("labels", [])))
        if config.global_conditioning_classes else None,
        local_conditioning=local,
        training=TrainingSummary(
            data_seconds=record.get("data_summary", {}).get("total_seconds"),
            epochs=state.get("epoch"), steps=state.get("step"),
            val_bits_per_sample=last.get("val_bits_per_sample"),
            train_bits_per_sample=last.get("bits_per_sample"),
        ),
        # How the training audio was cleaned: serving.card_audio applies it to every file
        # decoded for this model (evaluation data, primes, --mel-from sources).
        data=DataCleaning(trim_top_db=data.trim_top_db, trim_frame_length=data.trim_frame_length,
                          remove_dc=data.remove_dc, normalize=data.normalize, n_fft=data.n_fft,
                          fmin=data.fmin, fmax=data.fmax),
        step=StepState(tuple(map(tuple, step.delays.tolist())), tuple(map(tuple, step.residual_offsets.tolist()))),
        opset=opset,
        graphs={},
        # A model trained on jittered inputs keeps a tone when drawn from its top classes; its
        # generators draw that way unless told (a clean-trained model draws from every class).
        draw_top_k=JITTER_TOP_K if data.input_noise > 0 else None,
    )
    return dataclasses.replace(card, graphs=graph_contract(card))


def _metadata(card: ModelCard) -> dict[str, str]:
    return {"model_card": json.dumps(card.to_dict()), "format_version": str(card.format_version),
            "sample_rate": str(card.sample_rate), "receptive_field": str(card.receptive_field)}


def _prime_model(model: WaveNet, offsets: np.ndarray) -> tf.function:
    """Full sequence -> (logits, every layer's input minus its residual offset)."""
    inner = model.layer_inputs_model()
    shift = np.asarray(offsets, np.float32).reshape(-1)

    def run(inputs):
        # Constants are made inside the traced function: a captured tensor would become a
        # graph input. Layers are concatenated on the channel axis: (B, T, L·R).
        outputs = inner(inputs, training=False)
        return {"logits": outputs[0], "layer_inputs": tf.concat(outputs[1:], axis=-1) - tf.constant(shift)}

    return run


def _full_signature(config) -> dict[str, tf.TensorSpec]:
    spec = {"audio": tf.TensorSpec((None, None), tf.int32, name="audio")}
    if config.global_conditioning_classes:
        spec["global_id"] = tf.TensorSpec((None,), tf.int32, name="global_id")
    if config.local_conditioning_channels:
        spec["mel"] = tf.TensorSpec((None, None, config.local_conditioning_channels), tf.float32, name="mel")
    return spec


def _convert(fn, signature, path: Path, opset: int, metadata: dict[str, str]) -> None:
    import tf2onnx

    model_proto, _ = tf2onnx.convert.from_function(tf.function(fn), input_signature=signature, opset=opset)
    for key, value in metadata.items():
        model_proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.save(model_proto, str(path))


# ONNX opsets the exporters support: tf2onnx's highest, and the ops the graphs use.
MIN_OPSET, MAX_OPSET = 13, 18
# What a run directory holds; a folder holding any of these is never a bundle destination.
RUN_MARKERS = ("config.json", "state.json", "dataset.json", "checkpoints", "model_best.keras", "model_last.keras")


class ExportError(ValueError):
    """The export cannot go ahead as asked; the message says what to change."""


def check_destination(run: Path, out: Path) -> bool:
    """Refuse a destination whose contents export did not create; True when it replaces a bundle.

    Export replaces ``out`` as a whole, so ``out`` may only be missing, an empty folder, or
    a bundle holding nothing but bundle files: never the run itself, a run directory, a
    folder that contains the run, or any other folder with files in it.
    """
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: a file is in the way; choose a folder path such as {run.name}-bundle.")
    if out.resolve() == run.resolve() or run.resolve().is_relative_to(out.resolve()):
        raise ExportError(f"--out {out} is (or contains) the run {run}; exporting there would replace the run. "
                          f"Choose another folder, e.g. --out {run.parent / (run.name + '-bundle')}.")
    if not out.is_dir():
        return False
    entries = sorted(p.name for p in out.iterdir())
    markers = [name for name in RUN_MARKERS if name in entries]
    if markers:
        raise ExportError(f"--out {out} is a run directory ({', '.join(markers)}); exporting there would delete it. "
                          f"Choose another folder, e.g. --out {out.parent / (out.name + '-bundle')}.")
    if not entries:
        return False
    if "model.json" not in entries:
        raise ExportError(f"--out {out} is not empty and not a bundle ({len(entries)} entries, e.g. {entries[0]!r}); "
                          "export replaces the whole folder, so choose a new or empty one.")
    try:
        listed = set(json.loads((out / "model.json").read_text()).get("files") or {})
    except (OSError, ValueError, AttributeError):
        listed = set()
    # Entries of the card name files inside folders too ("excerpts/00-bass.wav"): the folder is known.
    known = {name.split("/")[0] for name in listed} | {"model.json", "wavenet.onnx", "step.onnx",
                                                        "step_sampler.onnx", "step_native.onnx", "cond.onnx",
                                                        "saved_model", EXCERPTS_FOLDER}
    extra = [name for name in entries if name not in known]
    if extra:
        raise ExportError(f"--out {out} is a bundle that also holds {', '.join(extra[:5])}, which export did not "
                          "write; move them out or choose another folder.")
    return True


def check_finite_weights(model: WaveNet, source: Path) -> None:
    """Refuse a model with NaN/Inf weights: its bundle would generate a full-scale square wave."""
    bad = [w.path for w in model.weights if not np.isfinite(np.asarray(w.numpy(), np.float64)).all()]
    if bad:
        raise ExportError(f"{source}: {len(bad)} weight tensor(s) hold NaN or Inf (e.g. {bad[0]}); the training "
                          "diverged. Retrain with a lower --learning-rate; nothing was exported.")


def _make_staging(out: Path) -> Path:
    """An empty folder beside ``out`` (same filesystem, so the final rename is atomic), umask permissions."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-export-", dir=out.parent))
    except OSError as error:
        raise ExportError(f"--out {out}: cannot create a folder in {out.parent} ({error.strerror or error}); "
                          "choose a writable location.") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes 0700: a server running as another user could not read it
    return staging


def export_run(run: str | Path, out: str | Path, opset: int = 17, verify: bool = False,
               log=print) -> ModelCard:
    """Export the best model of ``run`` into the bundle folder ``out``; returns the card.

    ``out`` is created (with its parents) or, when it already is a bundle, replaced in one
    rename; anything else in the way is refused before any work (`check_destination`).
    """
    run, out = Path(run), Path(out)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"--opset {opset} is not supported; use {MIN_OPSET} to {MAX_OPSET} (default 17).")
    load_run_config(run)  # a missing or damaged run is named before anything is written
    check_destination(run, out)
    model = load_run_model(run)
    check_finite_weights(model, run)
    config = model.model_config
    step = step_arrays(model)
    card = build_card(run, step, opset)
    metadata = _metadata(card)
    staging = _make_staging(out)
    # The staging folder's name is an implementation detail: messages name the destination.
    shown = lambda line: log(str(line).replace(str(staging), str(out)))
    try:
        started = time.perf_counter()
        _write_graphs(model, step, staging, opset, metadata)
        files = sorted(p.name for p in staging.iterdir())
        excerpts = write_excerpts(staging, training_excerpts(run, log), config.sample_rate)
        digests = {name: file_digest(staging / name) for name in files + [e["file"] for e in excerpts]}
        card = dataclasses.replace(card, files=digests, excerpts=tuple(excerpts))
        (staging / "model.json").write_text(json.dumps(card.to_dict(), indent=2) + "\n")
        shown(f"exported {run} -> {out} in {time.perf_counter() - started:.1f} s: {', '.join(files + ['model.json'])}")
        if verify:
            _verify_staged(staging, model, out, shown)
        else:
            from serving.onnx_step import optimized_node_count

            nodes = optimized_node_count(staging / "step.onnx")
            shown(f"step.onnx: {nodes} nodes after onnxruntime optimization ({config.num_layers} layers)")
        replacing = _move_into_place(run, staging, out)
        if verify:
            shown(f"{out}: {'replaced the previous bundle; ' if replacing else ''}the bundle passed every parity check")
        elif replacing:
            shown(f"{out}: replaced the previous bundle")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def _write_graphs(model: WaveNet, step: StepArrays, staging: Path, opset: int, metadata: dict[str, str]) -> None:
    """wavenet.onnx, step.onnx, step_sampler.onnx, step_native.onnx, cond.onnx (mel models), the SavedModel."""
    config = model.model_config
    prime = _prime_model(model, step.residual_offsets)
    full_spec = _full_signature(config)
    _convert(lambda inputs: prime(inputs), [full_spec], staging / "wavenet.onnx", opset, metadata)
    for name, sampler in (("step.onnx", False), ("step_sampler.onnx", True)):
        onnx.save(build_step_graph(step, opset, metadata, sampler), str(staging / name))
    # The native engine's one-node graph (serving.native); step.onnx stays the portable one.
    onnx.save(build_native_graph(step, metadata, opset), str(staging / "step_native.onnx"))
    if config.local_conditioning_channels:
        local_kernels = step.local_kernels
        cond = lambda mel: {"conditioning": tf.einsum("btc,lcg->btlg", model.upsample_network(mel),
                                                      tf.constant(local_kernels))}
        _convert(cond, [tf.TensorSpec((None, None, config.local_conditioning_channels), tf.float32, name="mel")],
                 staging / "cond.onnx", opset, metadata)
    _save_saved_model(model, full_spec, staging / "saved_model")


def _verify_staged(staging: Path, model: WaveNet, out: Path, shown) -> None:
    """`export --verify`: every graph of the staged bundle against the Keras model, or an ExportError."""
    from export.verify import ParityError, verify_bundle

    try:
        verify_bundle(staging, model, log=shown)  # reports the node count too
    except ParityError as error:
        raise ExportError(f"--verify failed, nothing was written to {out}: {error}") from None
    except (ValueError, RuntimeError) as error:  # onnxruntime's own errors are RuntimeErrors
        raise ExportError(f"--verify could not run the bundle's graphs, nothing was written to {out}: "
                          f"{type(error).__name__}: {str(error).splitlines()[0][:300]}") from None


def _move_into_place(run: Path, staging: Path, out: Path) -> bool:
    """Rename the staged bundle to ``out``; True when it replaced a previous bundle."""
    # Checked again: the folder may have changed during the export.
    replacing = check_destination(run, out)
    if replacing:
        # Old bundle aside, new one in, old one gone: at every moment `out` is a whole bundle or absent.
        retired = Path(tempfile.mkdtemp(prefix=f".{out.name}-old-", dir=out.parent))
        os.replace(out, retired / "bundle")
        os.replace(staging, out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        if out.is_dir():
            out.rmdir()  # empty (checked above): nothing to lose
        os.replace(staging, out)
    return replacing


def training_excerpts(run: Path, log=print) -> list:
    """Short, loud excerpts of the run's training files (`serving.excerpts.choose_excerpts`), cleaned
    as training cleaned them. Files that moved since training are skipped; with none left, none."""
    from wavenet_tf.core.audio import AudioError, load_audio

    config, data, _, run_record = load_run_config(run)
    manifest = run / "dataset.json"
    if not manifest.is_file():
        log(f"{run}: no dataset.json, so the bundle gets no excerpts (generation will start from silence)")
        return []
    record = read_json(manifest)
    labels = record.get("labels") or []
    rows = record.get("train") or record.get("val") or []
    names = source_names([row["path"] for row in rows], run_record.get("data_source", ""))
    tracks, missing = [], []
    for row, name in zip(rows, names):
        try:
            # Cleaned as in training but not trimmed, so an excerpt's start is a time in its file
            # as a user's editor shows it (trimming only removes silence, never an excerpt).
            audio, _ = load_audio(row["path"], config.sample_rate, trim_top_db=0,
                                  trim_frame_length=data.trim_frame_length, remove_dc=data.remove_dc,
                                  normalize=data.normalize)
        except AudioError:
            missing.append(row["path"])
            continue
        # Labels matter only to a model that is conditioned on them.
        label = labels.index(row["label"]) if config.global_conditioning_classes and row.get("label") in labels else None
        tracks.append((audio, label, None if label is None else row["label"], name))
    if missing:
        log(f"excerpts: {len(missing)} training file(s) no longer readable (first: {missing[0]}); skipped")
    excerpts = choose_excerpts(tracks, config.sample_rate, config.receptive_field,
                               per_label=bool(config.global_conditioning_classes))
    if tracks and not excerpts:
        log("excerpts: every training window is near-silent; the bundle gets none")
    return excerpts


def source_names(paths: list[str], data_source: str) -> list[str]:
    """How the card names each training file: its path from the training data's folder, that folder
    included (``speakers/p225/s2.wav``; ``s2.wav`` alone may exist under every speaker).

    Bundles travel, so never an absolute path. The folder is DATA when it is one, else (a glob,
    a manifest) the folder all the files share.
    """
    if not paths:
        return []
    source = Path(data_source) if data_source else None
    if source is not None and source.is_dir():
        root = source.resolve()
    else:
        root = Path(os.path.commonpath([str(Path(p).resolve().parent) for p in paths]))
    names = []
    for path in paths:
        try:
            names.append(str(Path(path).resolve().relative_to(root.parent)))
        except ValueError:  # outside the folder (a manifest naming files elsewhere): the name alone
            names.append(Path(path).name)
    return names


def _save_saved_model(model: WaveNet, full_spec, path: Path) -> None:
    # Only `serve`: a step signature would be a fifth copy of the step's arithmetic (in TF ops);
    # step.onnx is the step for every deployment, TensorFlow or not.
    module = tf.Module()
    module.wavenet = model

    @tf.function(input_signature=[full_spec])
    def serve(inputs):
        return {"logits": model(inputs, training=False)}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serve": serve})
