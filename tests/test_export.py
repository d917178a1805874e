"""Export: every graph agrees with the Keras model; bundles load, or are refused clearly."""

import json

import numpy as np
import pytest

from export.bundle import export_run
from export.verify import DRAWS, verify_bundle
from serving.bundle import BundleError, load_bundle
from tests.helpers import NARROW, make_run
from tests.tf_free import run_without_tensorflow
from wavenet_tf.apps.cli import main
from wavenet_tf.core.presets import get_preset


@pytest.mark.parametrize(
    "preset, overrides",
    [
        ("tiny", {}),
        pytest.param("small", NARROW, marks=pytest.mark.slow),
        pytest.param("ibab", NARROW, marks=pytest.mark.slow),
        ("tiny", dict(global_conditioning_classes=3)),
        ("vocoder", dict(NARROW, dilations=(1, 2, 4, 8), num_stacks=2, local_conditioning_channels=6,
                         upsample_scales=(2, 4))),
        ("tiny", dict(NARROW, input_encoding="embedding", initial_kernel_size=3, global_conditioning_classes=2,
                      local_conditioning_channels=3, upsample_scales=(4,))),
    ],
    ids=["tiny", "small-structure", "ibab-structure", "global", "vocoder-local", "embedding-both"],
)
def test_export_verifies_every_graph(tmp_path, preset, overrides):
    config = get_preset(preset, **overrides)
    labels = [f"class{i}" for i in range(config.global_conditioning_classes)]
    model = make_run(tmp_path / "run", config, labels)
    lines = []
    card = export_run(tmp_path / "run", tmp_path / "bundle", verify=False, log=lines.append)
    report = verify_bundle(tmp_path / "bundle", model, log=lines.append)
    for key in ("wavenet_onnx", "saved_model_serve", "step_onnx"):
        assert report[key] <= 1e-4, (key, report[key])
    assert any("teacher forcing" in line for line in lines)  # figures are printed
    # Every engine draws NumPy's classes, top-k included (DRAWS holds a truncated draw).
    assert report["sampler_mismatches"] == 0
    assert report["step_native"] is None or report["native_mismatches"] == 0
    assert any(top_k for _, top_k in DRAWS) and any("x 4 draws" in line for line in lines)
    # Node count: about four per layer plus a fixed head (each node costs ~1 µs: export/step_graph.py).
    assert report["step_nodes"] <= 4 * config.num_layers + 16
    bundle = load_bundle(tmp_path / "bundle")
    assert card.receptive_field == config.receptive_field
    assert set(card.files) >= {"wavenet.onnx", "step.onnx", "saved_model"}
    assert ("cond.onnx" in card.files) == bool(config.local_conditioning_channels)
    if labels:
        assert list(bundle.card.global_conditioning.names) == labels


def test_model_card_and_onnx_metadata(tmp_path):
    import onnx

    make_run(tmp_path / "run", get_preset("tiny"))
    card = export_run(tmp_path / "run", tmp_path / "bundle", log=lambda *_: None)
    on_disk = json.loads((tmp_path / "bundle" / "model.json").read_text())
    assert on_disk == card.to_dict()
    for key in ("format_version", "sample_rate", "quantization_channels", "mu", "dilations", "kernel_size",
                "residual_channels", "gate_channels", "skip_channels", "receptive_field", "conditioning",
                "training", "graphs", "step", "files"):
        assert key in on_disk, key
    step = card.graphs["step.onnx"]
    assert [i.name for i in step.inputs] == ["input_taps", "past"]
    sampler = card.graphs["step_sampler.onnx"]
    assert [i.name for i in sampler.inputs] == ["input_taps", "past", "uniform", "temperature"]
    assert [o.name for o in sampler.outputs] == ["logits", "layer_inputs", "next_taps"]
    for name in ("wavenet.onnx", "step.onnx"):
        props = {p.key: p.value for p in onnx.load(tmp_path / "bundle" / name).metadata_props}
        assert json.loads(props["model_card"])["receptive_field"] == 129


def test_every_step_graph_holds_the_step_arrays_unchanged(tmp_path):
    """The residual-offset folding happens once (`step_arrays`): the graphs' weights are its
    arrays, bit for bit, only laid out — the builders do no arithmetic of their own."""
    import onnx
    from onnx import numpy_helper

    from wavenet_tf.core.step_arrays import step_graph_arrays
    from wavenet_tf.step_weights import step_arrays

    model = make_run(tmp_path / "run", get_preset("tiny", **NARROW, global_conditioning_classes=2), ["a", "b"])
    export_run(tmp_path / "run", tmp_path / "bundle", log=lambda *_: None)
    arrays = step_arrays(model)
    assert np.abs(arrays.residual_offsets).max() > 0.1  # lively biases: the folding shows
    card = json.loads((tmp_path / "bundle" / "model.json").read_text())
    np.testing.assert_array_equal(np.asarray(card["step"]["residual_offsets"], np.float32), arrays.residual_offsets)

    def initializers(name):
        graph = onnx.load(tmp_path / "bundle" / name).graph
        return {i.name: numpy_helper.to_array(i) for i in graph.initializer}

    step, native, laid_out = initializers("step.onnx"), initializers("step_native.onnx"), step_graph_arrays(arrays)
    for name in ("input_tables", "tap_offsets", "past_kernels", "gate_bias", "global_tables"):
        np.testing.assert_array_equal(step[name], laid_out[name], err_msg=name)
    for l in range(arrays.num_layers):
        np.testing.assert_array_equal(step[f"filter_kernel_{l}"], laid_out["filter_kernels"][l])
        np.testing.assert_array_equal(step[f"gate_kernel_{l}"], laid_out["gate_kernels"][l])
    for name, field in (("skip_kernel", "skip_kernels"), ("skip_bias", "skip_bias"), ("head_kernel", "head_kernel"),
                        ("logits_bias", "logits_bias")):
        np.testing.assert_array_equal(step[name], getattr(arrays, field), err_msg=name)
    for name, field in (("w_past", "past_kernels"), ("w_current", "current_kernels"), ("w_gate_bias", "gate_bias"),
                        ("w_global", "global_tables"), ("w_residual", "residual_kernels"), ("w_skip", "skip_kernels"),
                        ("w_delays", "delays")):
        np.testing.assert_array_equal(native[name], getattr(arrays, field), err_msg=name)
    np.testing.assert_array_equal(native["w_tables"], step["input_tables"])


def test_evaluate_engines_agree(tmp_path, builtin_folder, capsys):
    make_run(tmp_path / "run", get_preset("tiny", residual_channels=8, gate_channels=8, skip_channels=16))
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "bundle")]) == 0
    results = {}
    for target, engine in ((tmp_path / "run", "keras"), (tmp_path / "bundle", "onnx"), (tmp_path / "bundle", "step")):
        capsys.readouterr()
        assert main(["evaluate", str(target), str(builtin_folder), "--engine", engine, "--json",
                     "--cache-dir", str(tmp_path / "cache")]) == 0
        results[engine] = json.loads(capsys.readouterr().out)
    assert abs(results["step"]["bits_per_sample"] - results["keras"]["bits_per_sample"]) < 1e-3
    assert abs(results["onnx"]["bits_per_sample"] - results["keras"]["bits_per_sample"]) < 1e-3
    assert results["step"]["num_samples"] == results["keras"]["num_samples"] > 0
    assert main(["evaluate", str(tmp_path / "bundle"), str(builtin_folder), "--engine", "keras"]) == 2


def test_step_evaluation_runs_without_tensorflow(tmp_path, builtin_folder):
    make_run(tmp_path / "run", get_preset("tiny", residual_channels=8, gate_channels=8, skip_channels=16))
    export_run(tmp_path / "run", tmp_path / "bundle", log=lambda *_: None)
    code = (
        "import sys\nfrom wavenet_tf.apps.cli import main\n"
        f"sys.exit(main(['evaluate', {str(tmp_path / 'bundle')!r}, {str(builtin_folder)!r}, '--engine', 'step',"
        f" '--json', '--cache-dir', {str(tmp_path / 'fresh-cache')!r}]))\n"
    )
    out = run_without_tensorflow(code)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["bits_per_sample"] > 0


@pytest.fixture
def bundle(tmp_path):
    make_run(tmp_path / "run", get_preset("tiny"))
    export_run(tmp_path / "run", tmp_path / "bundle", log=lambda *_: None)
    return tmp_path / "bundle"


def test_missing_file_is_refused_with_the_fix(bundle):
    (bundle / "step.onnx").unlink()
    with pytest.raises(BundleError, match="step.onnx is missing; re-export"):
        load_bundle(bundle)


def test_truncated_file_is_caught_by_its_checksum(bundle):
    data = (bundle / "wavenet.onnx").read_bytes()
    (bundle / "wavenet.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(bundle)


def test_unknown_format_version_and_non_bundles_are_refused(bundle, tmp_path):
    card = json.loads((bundle / "model.json").read_text())
    card["format_version"] = 99
    (bundle / "model.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="format_version 99 is not supported"):
        load_bundle(bundle)
    with pytest.raises(BundleError, match="not a bundle"):
        load_bundle(tmp_path)
    (bundle / "model.json").write_text("{ not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle)


def test_mismatched_graph_is_refused(bundle, tmp_path):
    card = json.loads((bundle / "model.json").read_text())
    card["graphs"]["step.onnx"]["inputs"][0]["name"] = "classes"
    (bundle / "model.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="graph inputs"):
        load_bundle(bundle)
