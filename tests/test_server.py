"""The HTTP server: streaming WAV, batching, validation, back-pressure, disconnects."""

import io
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from serving.bundle import load_bundle
from serving.server import create_app
from serving.streaming_sampler import StreamingSampler
from wavenet_tf.apps.cli import main


@pytest.fixture(scope="module")
def bundle(speaker_bundle):
    return load_bundle(speaker_bundle)


@pytest.fixture
def client(bundle):
    with TestClient(create_app(bundle, max_streams=4, queue_limit=2, max_seconds=5.0, chunk=128)) as c:
        yield c


def test_streams_a_wav_equal_to_the_sampler_alone(client, bundle):
    response = client.post("/v1/generate", json={"seconds": 0.1, "temperature": 0.8, "seed": 9, "speaker": "harp"})
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(response.content), dtype="int16")
    assert rate == 8000 and audio.shape == (800,)
    alone = StreamingSampler(bundle, seed=9, temperature=0.8, global_ids=[1]).generate(800)[0]
    np.testing.assert_array_equal(audio, np.clip(np.round(alone * 32767), -32768, 32767).astype(np.int16))


def test_top_k_is_a_request_field_with_its_bounds_and_the_samplers_audio(client, bundle):
    from wavenet_tf.core.sampling import DEFAULT_TOP_K

    field = client.get("/openapi.json").json()["components"]["schemas"]["Body"]["properties"]["top_k"]
    assert (field["type"], field["minimum"], field["maximum"], field["default"]) == ("integer", 0, 64, DEFAULT_TOP_K)
    response = client.post("/v1/generate", json={"seconds": 0.1, "temperature": 0.8, "top_k": 3, "seed": 9,
                                                 "speaker": "harp"})
    assert response.status_code == 200
    audio, _ = sf.read(io.BytesIO(response.content), dtype="int16")
    alone = StreamingSampler(bundle, seed=9, temperature=0.8, top_k=3, global_ids=[1]).generate(800)[0]
    np.testing.assert_array_equal(audio, np.clip(np.round(alone * 32767), -32768, 32767).astype(np.int16))
    page = client.get("/").text
    assert 'id="top_k"' in page and "top_k: parseInt" in page


def test_first_bytes_arrive_before_the_audio_is_complete(client):
    with client.stream("POST", "/v1/generate", json={"seconds": 3.0, "speaker": 0}) as response:
        first = next(response.iter_bytes())
        assert first[:4] == b"RIFF"  # the header goes out before any sample is generated
        assert client.get("/healthz").json()["active_streams"] >= 1


def test_concurrent_requests_share_one_batched_call(client):
    results = []

    def ask(seed):
        results.append(client.post("/v1/generate", json={"seconds": 0.5, "seed": seed, "speaker": 1}).status_code)

    threads = [threading.Thread(target=ask, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200, 200, 200]
    assert client.app.state.batcher.max_active >= 2


@pytest.mark.parametrize(
    "body, field",
    [
        ({"seconds": -1}, "seconds"),
        ({"seconds": 99}, "seconds"),
        ({"temperature": "hot"}, "temperature"),
        ({"seed": -3}, "seed"),
        ({"speaker": "cello"}, "speaker"),
        ({"seconds": 1, "volume": 11}, "volume"),
        # top_k: whole numbers from 0 to the model's classes, nothing read as one
        ({"top_k": -1}, "top_k"), ({"top_k": "2"}, "top_k"), ({"top_k": True}, "top_k"),
        ({"top_k": 1e9}, "top_k"), ({"top_k": 2.5}, "top_k"), ({"top_k": 65}, "top_k"),
    ],
)
def test_bad_fields_get_a_400_that_names_them(client, body, field):
    response = client.post("/v1/generate", json={"speaker": 0, **body})
    assert response.status_code == 400
    assert field in response.json()["fields"] and field in response.json()["error"]
    assert client.get("/healthz").status_code == 200  # and the server is still up


def test_beyond_the_queue_limit_the_answer_is_429(bundle):
    with TestClient(create_app(bundle, max_streams=1, queue_limit=0, chunk=64)) as c:
        with c.stream("POST", "/v1/generate", json={"seconds": 4.0, "speaker": 0}) as busy:
            next(busy.iter_bytes())
            refused = c.post("/v1/generate", json={"seconds": 0.1, "speaker": 0})
            assert refused.status_code == 429 and "Retry-After" in refused.headers


def assert_stream_freed(client, within: float) -> None:
    """Within ``within`` seconds no stream is active, and a new request is served."""
    deadline = time.time() + within
    while client.get("/healthz").json()["active_streams"] and time.time() < deadline:
        time.sleep(0.05)
    assert client.get("/healthz").json()["active_streams"] == 0
    assert client.post("/v1/generate", json={"seconds": 0.05, "speaker": 0}).status_code == 200


def test_a_client_that_disconnects_frees_its_stream(bundle):
    with TestClient(create_app(bundle, max_streams=1, queue_limit=0, chunk=64)) as c:
        with c.stream("POST", "/v1/generate", json={"seconds": 5.0, "speaker": 0}) as response:
            next(response.iter_bytes())
        assert_stream_freed(c, within=10)


def test_card_health_openapi_and_page(client):
    assert client.get("/v1/model").json()["receptive_field"] == 129
    assert client.get("/healthz").json()["status"] == "ok"
    schema = client.get("/openapi.json").json()
    assert "/v1/generate" in schema["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "Play" in page.text and "<canvas" in page.text


def test_serve_refuses_a_bad_bundle_at_start(tmp_path, capsys):
    assert main(["serve", str(tmp_path)]) == 2
    assert "not a bundle" in capsys.readouterr().err


def test_an_api_key_guards_generation_and_the_card(bundle):
    with TestClient(create_app(bundle, max_seconds=1.0, api_key="s3cret")) as c:
        body = {"seconds": 0.02, "speaker": 0}
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            response = c.post("/v1/generate", json=body, headers=headers)
            assert response.status_code == 401 and "API key" in response.json()["error"]
        assert c.get("/v1/model").status_code == 401
        assert c.get("/healthz").status_code == 200  # liveness stays open
        assert c.post("/v1/generate", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/v1/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_request_bodies_are_limited(bundle):
    with TestClient(create_app(bundle, max_body_bytes=64)) as c:
        big = '{"seconds": 0.02, "speaker": 0, "pad": "' + "x" * 100 + '"}'
        response = c.post("/v1/generate", content=big, headers={"content-type": "application/json"})
        assert response.status_code == 413 and "64 bytes" in response.json()["error"]

        def chunked():  # no Content-Length: counted while read
            yield b'{"seconds": 0.02, '
            yield b'"speaker": 0, "pad": "' + b"x" * 100 + b'"}'

        response = c.post("/v1/generate", content=chunked(), headers={"content-type": "application/json"})
        assert response.status_code == 413
        small = c.post("/v1/generate", json={"seconds": 0.02, "speaker": 0})
        assert small.status_code == 200
        assert c.get("/healthz").json()["active_streams"] == 0


def test_a_request_past_its_timeout_ends_and_frees_its_stream(bundle):
    with TestClient(create_app(bundle, max_streams=1, max_seconds=60.0, timeout=0.5, chunk=64)) as c:
        started = time.perf_counter()
        response = c.post("/v1/generate", json={"seconds": 60.0, "speaker": 0})
        assert time.perf_counter() - started < 10
        assert response.status_code == 200 and len(response.content) < 44 + 60 * 8000 * 2  # cut short
        assert_stream_freed(c, within=5)


def test_limits_must_be_positive(bundle):
    for bad in ({"max_streams": 0}, {"timeout": 0}, {"max_body_bytes": -1}, {"queue_limit": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            create_app(bundle, **bad)
