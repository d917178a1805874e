"""The native step engine: its ABI declarations, exactness against the standard graph, refusals, fallback."""

import ctypes

import numpy as np
import onnxruntime as ort
import pytest

from serving import native
from serving.bench import conditioning_options
from serving.step_model import StepModel
from serving.streaming_sampler import StreamingSampler

pytestmark = pytest.mark.skipif(native.library_path() is None, reason="the native library was not built")


def test_declarations_match_the_installed_runtime(bundles):
    # A session makes onnxruntime call RegisterCustomOps through our OrtApiBase declaration;
    # the version string it hands back must be the installed runtime's own.
    sampler = StreamingSampler(bundles["plain"], engine="native")  # keeps the library loaded
    library = ctypes.CDLL(str(native.library_path()))
    library.wavenet_steps_runtime_version.restype = ctypes.c_char_p
    assert library.wavenet_steps_runtime_version().decode() == ort.__version__
    # Every other entry the library uses runs in a call: inputs, shapes, outputs, and a status.
    assert (sampler.generate_classes(10) >= 0).all()
    with pytest.raises(Exception, match="WaveNetSteps: time is negative"):
        sampler.model.native_engine(1).run(-1, np.full((1, 4), 0.5), np.ones(1))


@pytest.mark.parametrize("name, streams, threads", [
    ("plain", 3, 1), ("global", 3, 1), ("local", 3, 1), ("kernel3", 3, 1),
    # One stream on two threads: every layer's channels split between them (the split path).
    ("global", 1, 2), ("local", 1, 2), ("kernel3", 1, 2),
    # 13 streams on two threads: groups of 6 and 1 per thread, every layer passing through both.
    ("kernel3", 13, 2),
])
def test_native_draws_the_standard_graphs_classes(bundles, name, streams, threads):
    # 10,000 samples x 3 streams x 3 temperatures from the same uniforms, after a prime.
    bundle = bundles[name]
    n = 10_000
    prime = (0.4 * np.sin(np.arange(300) / 7.0)).astype(np.float32)
    options = conditioning_options(bundle, streams, n + 300, np.random.default_rng(1))
    for temperature in (0.5, 1.0, 1.5):
        graph = StreamingSampler(bundle, streams=streams, seed=4, temperature=temperature, engine="graph", **options)
        fast = StreamingSampler(bundle, streams=streams, seed=4, temperature=temperature, engine="native",
                                threads=threads, **options)
        assert fast.engine == "native"
        if name != "local":  # a locally conditioned prime is checked by test_streaming against naive
            graph.prime(prime)
            fast.prime(prime)
        expected = np.concatenate([graph.generate_classes(k) for k in (1, 4999, 5000)], axis=1)
        got = np.concatenate([fast.generate_classes(k) for k in (3000, 7000)], axis=1)
        np.testing.assert_array_equal(got, expected)


def test_tiny_temperatures_take_the_most_likely_class(bundles):
    # logits / 1e-300 overflows to inf; the engine must not turn that into a square wave.
    model = StepModel(bundles["plain"], engine="native")
    uniforms = np.random.default_rng(3).random((4, 200))
    tiny = model.advance(model.open_streams(4, temperature=[1e-300, 5e-324, 1e-3, 0.0]), 200, uniforms)
    expected = model.advance(model.open_streams(4, temperature=0.0), 200, uniforms)
    np.testing.assert_array_equal(tiny, expected)
    assert len(np.unique(expected)) > 2  # argmax audio moves; it is not a two-level square wave


def test_only_active_streams_move(bundles):
    engine = StepModel(bundles["plain"], engine="native").native_engine(3)
    ring, taps = engine.state.ring.copy(), engine.state.taps.copy()
    classes, _ = engine.run(0, np.full((3, 50), 0.5), np.ones(3), active=np.array([1], np.int64))
    assert (classes[[0, 2]] == -1).all() and (classes[1] >= 0).all()
    np.testing.assert_array_equal(engine.state.ring[:, :, [0, 2]], ring[:, :, [0, 2]])
    np.testing.assert_array_equal(engine.state.taps[[0, 2]], taps[[0, 2]])
    assert not np.array_equal(engine.state.taps[1], taps[1])


def _feeds(batch, global_ids=None, **changes):
    feeds = dict(time=0, uniforms=np.full((batch, 8), 0.5), temperature=np.ones(batch), active=None,
                 global_ids=global_ids, conditioning=None, forced=None)
    feeds.update(changes)
    return feeds


@pytest.mark.parametrize("change, message", [
    (dict(time=-1), "time is negative"),
    (dict(active=np.array([0, 0])), "active lists stream 0 twice"),
    (dict(active=np.array([5])), r"active stream 5 is not in \[0, 2\)"),
    (dict(uniforms=np.full((2, 8), np.nan)), r"uniforms\[0, 0\] = nan is not in \[0, 1\)"),
    (dict(temperature=np.array([np.nan, 1.0])), "temperature of stream 0 is NaN"),
    (dict(forced=np.full((2, 8), 99)), r"forced class 99 is not in \[-1, 64\)"),
    (dict(forced=np.full((2, 3), 1)), r"forced must be \(B, 0\) or \(B, K\)"),
])
def test_bad_inputs_are_refused_by_name(bundles, change, message):
    engine = StepModel(bundles["plain"], engine="native").native_engine(2)
    with pytest.raises(Exception, match=message):
        engine.run(**_feeds(2, **change))


def test_nan_conditioning_and_bad_ids_are_refused(bundles):
    model = StepModel(bundles["local"], engine="native")
    conditioning = np.zeros((2, 8, len(model.delays), 16), np.float32)
    conditioning[1, 3, 0, 5] = np.nan
    with pytest.raises(Exception, match="conditioning of stream 1 holds NaN or Inf"):
        model.native_engine(2).run(**_feeds(2, conditioning=conditioning))
    with pytest.raises(Exception, match=r"conditioning has shape \(2, 7, "):
        model.native_engine(2).run(**_feeds(2, conditioning=conditioning[:, :7]))
    speaker = StepModel(bundles["global"], engine="native").native_engine(2)
    with pytest.raises(Exception, match=r"global_id 7 of stream 1 is not in \[0, 3\)"):
        speaker.run(**_feeds(2, global_ids=np.array([0, 7])))


def test_falls_back_to_the_graph_saying_why(bundles, monkeypatch):
    monkeypatch.setattr(native, "library_path", lambda: None)
    sampler = StreamingSampler(bundles["plain"], seed=2)
    assert sampler.engine == "graph" and "library was not built" in sampler.engine_note
    with pytest.raises(native.NativeUnavailable, match="library was not built"):
        StreamingSampler(bundles["plain"], engine="native")
    monkeypatch.undo()
    monkeypatch.setenv(native.ENGINE_ENV, "graph")
    assert StreamingSampler(bundles["plain"]).engine == "graph"
    monkeypatch.setenv(native.ENGINE_ENV, "fast")
    with pytest.raises(ValueError, match="engine must be one of auto, native, graph"):
        StreamingSampler(bundles["plain"])


def test_a_bundle_without_the_native_file_falls_back(bundles, tmp_path):
    import shutil

    from serving.bundle import load_bundle

    copy = tmp_path / "old"
    shutil.copytree(bundles["plain"].path, copy)
    (copy / "step_native.onnx").unlink()
    card = load_bundle(copy, check_graphs=False).card.to_dict()
    card["files"].pop("step_native.onnx")
    (copy / "model.json").write_text(__import__("json").dumps(card))
    sampler = StreamingSampler(load_bundle(copy), seed=1)
    assert sampler.engine == "graph" and "has no step_native.onnx" in sampler.engine_note
