"""Top-k sampling in every engine: the native draw = NumPy's `sample_rows` = the graph engine = naive,
bundles exported before top-k, and the defaults' one home."""

import ctypes
import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

from serving import native
from serving.bench import conditioning_options
from serving.bundle import load_bundle
from serving.naive import naive_generate_classes
from serving.step_model import StepModel
from serving.streaming_sampler import StreamingSampler
from wavenet_tf.core.files import file_digest
from wavenet_tf.core.sampling import sample_rows, stream_generator

needs_native = pytest.mark.skipif(native.library_path() is None, reason="the native library was not built")


def _native_draw():
    draw = ctypes.CDLL(str(native.library_path())).wavenet_steps_draw
    draw.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_int64, ctypes.c_double]
    draw.restype = ctypes.c_int
    return draw


@needs_native
def test_the_native_draw_is_sample_rows_class_for_class():
    draw = _native_draw()
    rng = np.random.default_rng(0)
    for q in (256, 64, 5):
        rows = [rng.normal(0, 3, q), rng.normal(0, 0.05, q),
                rng.integers(0, 4, q).astype(float),      # many ties at every edge
                np.zeros(q), np.full(q, -1e30),           # all equal
                np.where(np.arange(q) % 7 == 0, 5.0, rng.normal(0, 1, q))]
        for row in rows:
            logits = np.ascontiguousarray(row, np.float32)
            # Up to 32 the operator keeps a running top k; above, it quickselects: both sides of that.
            for k in sorted({k for k in (0, 1, 2, 3, 7, 17, 32, 33, 100, q - 1, q) if k <= q}):
                for t in (0.0, 1e-3, 0.3, 1.0, 2.5):
                    for u in np.concatenate([[0.0, 0.5, np.nextafter(1.0, 0.0)], rng.random(20)]):
                        expected = sample_rows(logits[None], np.array([t]), np.array([u]), np.array([k]))[0]
                        got = draw(logits.ctypes.data, q, t, k, u)
                        assert got == expected, (q, k, t, u, logits[:8])


def _per_stream_top_k(streams):
    return [(1, 3, 0, 17, 2, 64, 5)[i % 7] for i in range(streams)]


@needs_native
@pytest.mark.parametrize("name, streams, threads", [
    ("plain", 3, 1), ("global", 3, 1), ("local", 3, 1), ("kernel3", 3, 1),
    ("global", 1, 2), ("kernel3", 13, 2),
])
def test_native_top_k_draws_the_graph_engines_classes(bundles, name, streams, threads):
    bundle = bundles[name]
    n = 3000
    options = conditioning_options(bundle, streams, n + 300, np.random.default_rng(1))
    prime = (0.4 * np.sin(np.arange(300) / 7.0)).astype(np.float32)
    top_ks = _per_stream_top_k(streams)
    for temperature in (0.0, 0.6, 1.3):
        models = {engine: StepModel(bundle, threads=threads, engine=engine) for engine in ("graph", "native")}
        out = {}
        for engine, model in models.items():
            streams_ = model.open_streams(streams, None if name == "local" else prime, seed=4,
                                          temperature=temperature, top_k=top_ks, **_open_options(options))
            out[engine] = np.concatenate([model.advance(streams_, k) for k in (1, 999, n - 1000)], axis=1)
        assert models["native"].engine == "native"
        np.testing.assert_array_equal(out["native"], out["graph"])


def _open_options(options):
    return {"global_ids": options.get("global_ids"), "mel": options.get("mel")}


@pytest.mark.parametrize("name", ["plain", "global", "local"])
@pytest.mark.parametrize("engine", ["graph", "native"])
def test_the_sampler_with_top_k_equals_naive_generation(bundles, name, engine):
    if engine == "native" and native.library_path() is None:
        pytest.skip("the native library was not built")
    bundle = bundles[name]
    streams, n = 2, 120
    options = conditioning_options(bundle, streams, n + 200, np.random.default_rng(2))
    for top_k in (1, 3):
        sampler = StreamingSampler(bundle, streams=streams, seed=7, temperature=0.9, top_k=top_k, engine=engine,
                                   **options)
        fast = sampler.generate_classes(n)
        uniforms = np.stack([stream_generator(7, k).random(n) for k in range(streams)], axis=1)
        slow = naive_generate_classes(bundle, n, uniforms, 0.9, top_k=top_k, **options)
        np.testing.assert_array_equal(fast, slow)
        # k = 1 is the most likely class whatever the uniform: the argmax of T = 0.
        if top_k == 1:
            greedy = StreamingSampler(bundle, streams=streams, seed=8, temperature=0.0, engine=engine, **options)
            np.testing.assert_array_equal(fast, greedy.generate_classes(n))


def test_a_top_k_changed_between_chunks_applies_to_the_next_sample(bundles):
    bundle = bundles["plain"]
    whole = StreamingSampler(bundle, streams=2, seed=5, engine="graph")
    first = whole.generate_classes(50)
    whole.top_k = 2
    second = whole.generate_classes(50)
    reference = StepModel(bundle, engine="graph")
    streams = reference.open_streams(2, seed=5)
    np.testing.assert_array_equal(reference.advance(streams, 50), first)
    for stream in streams:
        stream.top_k = 2
    np.testing.assert_array_equal(reference.advance(streams, 50), second)
    with pytest.raises(ValueError, match="top_k must be at most the 64 classes"):
        whole.top_k = 65
    with pytest.raises(ValueError, match="top_k must be a whole number"):
        StreamingSampler(bundle, top_k=-1)
    with pytest.raises(ValueError, match=r"one per stream \(2\), got 3"):
        reference.open_streams(2, top_k=[1, 2, 3])


@needs_native
@pytest.mark.parametrize("top_k, message", [
    (np.array([-1, 0]), r"top_k -1 of stream 0 is not in \[0, 64\]"),
    (np.array([0, 65]), r"top_k 65 of stream 1 is not in \[0, 64\]"),
    (np.array([0, 1, 2]), r"top_k has shape \(3\), expected \(2\)"),
])
def test_bad_top_k_inputs_are_refused_by_name(bundles, top_k, message):
    engine = StepModel(bundles["plain"], engine="native").native_engine(2)
    with pytest.raises(Exception, match=message):
        engine.run(0, np.full((2, 8), 0.5), np.ones(2), top_k=top_k)


def _old_bundle(bundle, folder):
    """A copy of ``bundle`` whose step_native.onnx is what export wrote before top-k (no top_k input)."""
    shutil.copytree(bundle.path, folder)
    path = folder / "step_native.onnx"
    graph = onnx.load(str(path))
    node = graph.graph.node[0]
    assert node.input[-1] == "top_k"
    del node.input[-1]
    kept = [i for i in graph.graph.input if i.name != "top_k"]
    del graph.graph.input[:]
    graph.graph.input.extend(kept)
    onnx.save(graph, str(path))
    card = json.loads((folder / "model.json").read_text())
    card["files"]["step_native.onnx"] = file_digest(path)
    (folder / "model.json").write_text(json.dumps(card))
    return load_bundle(folder)


@needs_native
def test_a_bundle_exported_before_top_k_still_runs_and_draws_top_k_on_the_graph(bundles, tmp_path):
    bundle = bundles["plain"]
    old = _old_bundle(bundle, tmp_path / "old")
    # Without truncation the old graph runs natively (the operator's top_k input is optional).
    plain = StreamingSampler(old, streams=2, seed=3)
    assert plain.engine == "native" and plain.engine_note is None
    np.testing.assert_array_equal(plain.generate_classes(300),
                                  StreamingSampler(bundle, streams=2, seed=3, engine="graph").generate_classes(300))
    # A stream that truncates moves the model to the graph, saying why and what to do.
    sampler = StreamingSampler(old, streams=2, seed=3, top_k=3)
    assert sampler.engine == "graph"
    assert "predates top-k" in sampler.engine_note and "re-export the bundle" in sampler.engine_note
    assert "\n" not in sampler.engine_note
    expected = StreamingSampler(bundle, streams=2, seed=3, top_k=3, engine="graph").generate_classes(300)
    np.testing.assert_array_equal(sampler.generate_classes(300), expected)
    # Mid-generation: streams started natively continue on the graph from the same state.
    model = StepModel(old)
    streams = model.open_streams(2, seed=3)
    first = model.advance(streams, 150)
    assert model.engine == "native"
    for stream in streams:
        stream.top_k = 3
    second = model.advance(streams, 150)
    assert model.engine == "graph" and "predates top-k" in model.engine_note
    reference = StepModel(bundle, engine="native")
    again = reference.open_streams(2, seed=3)
    np.testing.assert_array_equal(reference.advance(again, 150), first)
    for stream in again:
        stream.top_k = 3
    np.testing.assert_array_equal(reference.advance(again, 150), second)
    # Asked for explicitly, the native engine refuses rather than switch.
    with pytest.raises(native.NativeUnavailable, match="predates top-k"):
        StreamingSampler(old, top_k=3, engine="native")


@needs_native
def test_the_command_line_says_why_an_old_bundle_draws_top_k_on_the_graph(bundles, tmp_path, capsys):
    from wavenet_tf.apps.cli import main

    old = _old_bundle(bundles["plain"], tmp_path / "old")
    out = ["--seconds", "0.05", "--prime", "silence", "--top-k", "3"]
    assert main(["generate", str(old.path), *out, "--out", str(tmp_path / "a.wav")]) == 0
    err = capsys.readouterr().err
    assert "engine: standard step graph" in err and "predates top-k" in err and "re-export" in err
    assert main(["generate", str(old.path), *out, "--out", str(tmp_path / "b.wav"), "--engine", "native"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wavenet: error: --engine native:") and "predates top-k" in err and "\n" not in err
    assert not (tmp_path / "b.wav").exists()


@needs_native
def test_the_server_draws_top_k_from_an_old_bundle_on_the_graph_or_says_why_not(bundles, tmp_path):
    from fastapi.testclient import TestClient

    from serving.server import create_app

    from serving.native import NativeUnavailable

    old = _old_bundle(bundles["plain"], tmp_path / "old")
    body = {"seconds": 0.05, "top_k": 3, "seed": 4, "prime": "silence"}
    # A card that draws from every class by default: the native engine serves, and a request
    # that asks for top_k is refused by name.
    with TestClient(create_app(old, step_engine="native")) as client:
        refused = client.post("/v1/generate", json=body)
        assert refused.status_code == 400 and refused.json()["fields"] == ["top_k"]
        assert "predates top-k" in refused.json()["error"]
    # A card whose default draw truncates (a jitter-trained model's): every request that leaves
    # top_k out truncates, so `--engine native` refuses to start (it would answer each with a 400)
    # and `wavenet serve` says so in one line.
    card = json.loads((old.path / "model.json").read_text())
    (old.path / "model.json").write_text(json.dumps({**card, "draw": {"top_k": 3}}))
    old = load_bundle(old.path)
    assert old.card.default_top_k == 3
    with pytest.raises(NativeUnavailable, match="predates top-k"):
        create_app(old, step_engine="native")
    from wavenet_tf.apps.cli import main

    assert main(["serve", str(old), "--engine", "native", "--port", "0"]) == 2
    # auto: the engine is settled at startup, before any request, and the engine line says why.
    app = create_app(old)
    assert app.state.batcher.model.engine == "graph" and "predates top-k" in app.state.batcher.model.engine_note
    with TestClient(app) as client:
        assert client.post("/v1/generate", json=body).status_code == 200
        assert client.post("/v1/generate", json={"seconds": 0.05, "prime": "silence"}).status_code == 200


def test_every_default_comes_from_the_two_constants(tmp_path):
    # Other values in sampling.py's two lines, before anything imports it: every default must follow
    # (None where the default is the bundle's own, `ModelCard.default_top_k`, itself DEFAULT_TOP_K
    # for a card without a draw).
    script = r"""
import importlib.util, inspect, json, re, sys
spec = importlib.util.find_spec("wavenet_tf.core.sampling")
source = open(spec.origin).read()
for name, value in (("DEFAULT_TEMPERATURE", "0.625"), ("DEFAULT_TOP_K", "7")):
    source, found = re.subn(rf"^{name} = [^#\n]*", f"{name} = {value}  ", source, flags=re.M)
    assert found == 1, name
sampling = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
exec(compile(source, spec.origin, "exec"), sampling.__dict__)
from serving.streaming_sampler import StreamingSampler
from serving.step_model import StepModel
from serving.naive import naive_generate_classes
from serving.batcher import Request
from serving.server import GenerateRequest
from wavenet_tf.core.step_generator import StepGenerator
from wavenet_tf.core.numpy_step import generate_audio
from wavenet_tf.apps.cli import build_parser

def defaults(function, *names):
    parameters = inspect.signature(function).parameters
    return [parameters[name].default for name in names]

found = {
    "sampler": defaults(StreamingSampler.__init__, "temperature", "top_k"),
    "open_streams": defaults(StepModel.open_streams, "temperature", "top_k"),
    "open_stream": defaults(StepModel.open_stream, "temperature", "top_k"),
    "naive": defaults(sampling.naive_generation, "temperature", "top_k"),
    "serving_naive": defaults(naive_generate_classes, "temperature", "top_k"),
    "step_generator": defaults(StepGenerator.generate, "temperature", "top_k"),
    "numpy_step": defaults(generate_audio, "temperature", "top_k"),
    "request": [None, Request.__dataclass_fields__["top_k"].default],
    "server": [GenerateRequest.model_fields["temperature"].default, GenerateRequest.model_fields["top_k"].default],
}
from wavenet_tf.core.card import ModelCard
found["card"] = [None, ModelCard.default_top_k.fget(type("Card", (), {"draw_top_k": None})())]
args = build_parser().parse_args(["generate", "b", "--seconds", "1", "--out", "x.wav"])
found["cli"] = [args.temperature, args.top_k]
print(json.dumps(found))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    for name, (temperature, top_k) in json.loads(out.stdout.strip().splitlines()[-1]).items():
        assert temperature in (0.625, None) and top_k in (7, None), name
        # The generators that hold a bundle take its default (None), the rest the constant.
        assert (top_k is None) == (name in ("sampler", "open_streams", "open_stream", "serving_naive", "request",
                                            "cli")), name


def test_a_jitter_trained_model_draws_from_its_top_classes_by_default_and_a_clean_one_from_every_class(tmp_path):
    # Measured (docs/sound.md): a model trained on jittered inputs keeps a tone when drawn from its
    # 3 most likely classes; a clean-trained one drawn that way only gets quieter. Export records
    # the first in the card, and every generator that holds a bundle defaults to the card's draw.
    from fastapi.testclient import TestClient

    from export.bundle import export_run
    from serving.server import create_app
    from tests.helpers import make_run
    from wavenet_tf.apps.cli import build_parser
    from wavenet_tf.core.presets import get_preset
    from wavenet_tf.core.sampling import DEFAULT_TOP_K, JITTER_TOP_K

    config = get_preset("tiny", residual_channels=8, gate_channels=8, skip_channels=16)
    bundles = {}
    for name, noise in (("clean", 0.0), ("jittered", 6.0)):
        make_run(tmp_path / f"run-{name}", config)
        record = json.loads((tmp_path / f"run-{name}" / "config.json").read_text())
        record["data"]["input_noise"] = noise
        (tmp_path / f"run-{name}" / "config.json").write_text(json.dumps(record))
        export_run(tmp_path / f"run-{name}", tmp_path / name, log=lambda *_: None)
        bundles[name] = load_bundle(tmp_path / name)
    assert json.loads((tmp_path / "jittered" / "model.json").read_text())["draw"] == {"top_k": JITTER_TOP_K}
    assert "draw" not in json.loads((tmp_path / "clean" / "model.json").read_text())
    for name, expected in (("clean", DEFAULT_TOP_K), ("jittered", JITTER_TOP_K)):
        bundle = bundles[name]
        assert bundle.card.default_top_k == expected
        assert StreamingSampler(bundle).top_k == expected and StepModel(bundle).open_stream().top_k == expected
        with TestClient(create_app(bundle)) as client:
            schema = client.get("/openapi.json").json()["components"]["schemas"]["Body"]["properties"]["top_k"]
            assert schema["default"] == expected, name
        # Unasked, the sampler draws what an explicit top_k of the card's value draws.
        assert np.array_equal(StreamingSampler(bundle, seed=3).generate_classes(300),
                              StreamingSampler(bundle, seed=3, top_k=expected).generate_classes(300))
    assert build_parser().parse_args(["generate", "b", "--seconds", "1", "--out", "x.wav"]).top_k is None
    # A damaged draw is named.
    card = json.loads((tmp_path / "jittered" / "model.json").read_text())
    (tmp_path / "jittered" / "model.json").write_text(json.dumps({**card, "draw": {"top_k": 999}}))
    with pytest.raises(ValueError, match='"draw" must give top_k'):
        load_bundle(tmp_path / "jittered")
