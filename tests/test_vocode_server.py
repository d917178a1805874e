"""Vocoding from the server: a mel-conditioned bundle serves the stream its conditioning drives."""

import base64
import io
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from serving import native
from serving.batcher import Batcher, Request
from serving.bundle import load_bundle
from serving.card_audio import load_for_bundle
from serving.generate import mel_frames
from serving.server import create_app
from serving.streaming_sampler import StreamingSampler

N_MELS = 4


@pytest.fixture(scope="module")
def mel_bundle(tmp_path_factory):
    """A narrow `tiny` conditioned on 4 mel bands, hop 8 (8 kHz): tests/test_streaming.py's "local" case."""
    from export.bundle import export_run
    from tests.helpers import NARROW, make_run
    from wavenet_tf.core.presets import get_preset

    folder = tmp_path_factory.mktemp("mel-bundle")
    config = get_preset("tiny", **NARROW, local_conditioning_channels=N_MELS, upsample_scales=(2, 4))
    make_run(folder / "run", config)
    export_run(folder / "run", folder / "bundle", log=lambda *_: None)
    return load_bundle(folder / "bundle")


@pytest.fixture(scope="module")
def speaker(speaker_bundle):
    return load_bundle(speaker_bundle)


@pytest.fixture
def client(mel_bundle):
    with TestClient(create_app(mel_bundle, max_streams=3, queue_limit=2, max_seconds=0.5, chunk=64)) as c:
        yield c


def frames(count, seed):
    return np.random.default_rng(seed).normal(size=(count, N_MELS)).astype(np.float32)


def alone(bundle, mel, seed, temperature=1.0, engine=None):
    """What a lone `StreamingSampler` vocodes from ``mel``: everything after its receptive field of silence."""
    sampler = StreamingSampler(bundle, seed=seed, temperature=temperature, mel=mel[None], engine=engine)
    sampler.prime()
    return sampler.generate(sampler.max_samples - sampler.t)[0]


def pcm16(audio):
    return np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)


def wav(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(response.content), dtype="int16")
    return audio


@pytest.mark.parametrize("engine", [
    pytest.param("native", marks=pytest.mark.skipif(native.library_path() is None,
                                                    reason="the native library was not built")),
    "graph"])
def test_batcher_slots_vocode_their_own_frames_on_their_own_clocks(mel_bundle, engine):
    # Three requests of different lengths in one batched sampler, one joining mid-stream: each
    # equals a lone sampler with its frames and seed, and each finishes on its own.
    rf, hop = mel_bundle.card.receptive_field, mel_bundle.hop_length
    batcher = Batcher(mel_bundle, capacity=2, chunk=24, engine=engine)
    try:
        assert batcher.model.engine == engine
        mels = [frames(40, 1), frames(25, 2), frames(33, 3)]
        got = [[] for _ in mels]
        done = [threading.Event() for _ in mels]

        def request(i, seed):
            def deliver(chunk):
                if chunk is None:
                    done[i].set()
                else:
                    got[i].append(chunk)
            return Request(len(mels[i]) * hop - rf, 0.9, seed, None, deliver, mel=mels[i])

        batcher.submit(request(0, 5))
        batcher.submit(request(1, 6))
        batcher.submit(request(2, 7))  # waits for a free slot: joins at a later time, off the frame grid
        for event in done:
            assert event.wait(60)
        for i, seed in enumerate((5, 6, 7)):
            np.testing.assert_array_equal(np.concatenate(got[i]), alone(mel_bundle, mels[i], seed, 0.9, engine))
        assert batcher.max_active == 2
    finally:
        batcher.close()


def test_batcher_refuses_a_request_its_frames_cannot_carry(mel_bundle):
    batcher = Batcher(mel_bundle, capacity=1, chunk=16)
    try:
        with pytest.raises(ValueError, match="mel frames"):
            batcher.submit(Request(100, 1.0, 0, None, lambda _: None))
        with pytest.raises(ValueError, match="go past"):
            batcher.submit(Request(10_000, 1.0, 0, None, lambda _: None, mel=frames(20, 0)))
        assert batcher.active == 0
    finally:
        batcher.close()


def test_the_server_vocodes_mel_frames_like_the_sampler_alone(client, mel_bundle):
    rf, hop = mel_bundle.card.receptive_field, mel_bundle.hop_length
    mel = frames(50, 4)
    audio = wav(client.post("/v1/generate", json={"mel": mel.tolist(), "seed": 9, "temperature": 0.8}))
    # As long as the frames: the receptive field of silence generation starts from, then the vocoded samples.
    assert audio.shape == (50 * hop,)
    assert not audio[:rf].any()
    np.testing.assert_array_equal(audio[rf:], pcm16(alone(mel_bundle, mel, 9, 0.8)))


def test_concurrent_vocoding_requests_of_different_lengths(client, mel_bundle):
    rf, hop = mel_bundle.card.receptive_field, mel_bundle.hop_length
    mels = {seed: frames(30 + 9 * seed, seed) for seed in range(3)}
    results = {}

    def ask(seed):
        results[seed] = client.post("/v1/generate", json={"mel": mels[seed].tolist(), "seed": seed})

    threads = [threading.Thread(target=ask, args=(s,)) for s in mels]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed, mel in mels.items():
        np.testing.assert_array_equal(wav(results[seed])[rf:], pcm16(alone(mel_bundle, mel, seed)))
    assert client.app.state.batcher.max_active >= 2


def _clip(seconds=0.3, rate=8000):
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    tone = 0.5 * np.sin(2 * np.pi * 330 * t) * np.linspace(0.2, 1, t.size)
    sf.write(buffer, tone, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_audio_in_gives_the_same_stream_as_its_mel_frames_in(client, mel_bundle, tmp_path):
    data = _clip()
    (tmp_path / "clip.wav").write_bytes(data)
    # generate --mel-from's frames of the same clip
    mel = mel_frames(mel_bundle, load_for_bundle(mel_bundle.card, tmp_path / "clip.wav"))
    from_audio = client.post("/v1/generate", json={"mel_audio": base64.b64encode(data).decode(), "seed": 2})
    from_frames = client.post("/v1/generate", json={"mel": mel.tolist(), "seed": 2})
    assert wav(from_audio).shape == (len(mel) * mel_bundle.hop_length,)
    assert from_audio.content == from_frames.content


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({}, "mel", "mel-conditioned"),
        ({"seed": 3}, "mel", "mel_audio"),
        ({"mel": [[0.0] * (N_MELS + 1)] * 40}, "mel", "4 mel bands"),
        ({"mel": [[0.0] * N_MELS] * 39 + [[0.0]]}, "mel", "frame 39"),
        ({"mel": []}, "mel", "receptive field"),
        ({"mel": [[0.0] * N_MELS] * 3}, "mel", "receptive field"),
        ({"mel": [[1e39] * N_MELS] * 40}, "mel", "finite"),
        ({"mel": [["loud"] * N_MELS] * 40}, "mel", 'frame 0, value 0: got a string ("loud") (and 159 more values)'),
        # Strings of numbers are strings too: nothing is coerced (they were read as numbers).
        ({"mel": [["0.5"] * N_MELS] * 40}, "mel", 'frame 0, value 0: got a string ("0.5") (and 159 more values)'),
        # null for a field with a value: the vocoder's own reason, not "Input should be a valid number".
        ({"mel": [[0.0] * N_MELS] * 40, "seconds": None}, "seconds", "leave seconds out"),
        ({"mel": [[0.0] * N_MELS]}, "mel", "1 frame is 8 samples"),
        ({"mel": [[0.0] * N_MELS] * 40, "mel_audio": "AAAA"}, "mel", "not both"),
        ({"mel_audio": "!!not base64!!"}, "mel_audio", "base64"),
        ({"mel_audio": base64.b64encode(b"RIFF nonsense").decode()}, "mel_audio", "cannot be used"),
        ({"mel": [[0.0] * N_MELS] * 40, "seconds": 0.25}, "seconds", "as long as the frames"),
        ({"mel": [[0.0] * N_MELS] * 40, "prime": "silence"}, "prime", "leave it out"),
        ({"mel": [[0.0] * N_MELS] * 40, "speaker": 0}, "speaker", "not globally conditioned"),
    ],
)
def test_bad_conditioning_gets_a_400_that_names_the_field(client, body, field, words):
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["fields"] and field in response.json()["error"]
    assert words in response.json()["error"]
    assert client.get("/healthz").json()["active_streams"] == 0


def test_nan_in_mel_frames_is_refused_by_name(client):
    row = "[" + ", ".join(["NaN"] * N_MELS) + "]"
    response = client.post("/v1/generate", content="{\"mel\": [" + ", ".join([row] * 40) + "]}",
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["fields"] == ["mel"]
    assert "NaN" in response.json()["error"]


def test_conditioning_longer_than_max_seconds_is_refused(client, mel_bundle):
    hop = mel_bundle.hop_length  # max_seconds 0.5 at 8 kHz: 4000 samples, 500 frames
    assert wav(client.post("/v1/generate", json={"mel": frames(500, 0).tolist()})).shape == (4000,)
    response = client.post("/v1/generate", json={"mel": frames(501, 0).tolist()})
    assert response.status_code == 400 and response.json()["fields"] == ["mel"]
    assert "at most 0.5 s (500 frames)" in response.json()["error"]
    # A clip is refused from its header, before it is decoded.
    response = client.post("/v1/generate", json={"mel_audio": base64.b64encode(_clip(0.6)).decode()})
    assert response.status_code == 400 and response.json()["fields"] == ["mel_audio"]
    assert "0.6 s long" in response.json()["error"] and 4000 // hop == 500


def test_mel_frames_beyond_the_body_limit_get_a_413(mel_bundle):
    with TestClient(create_app(mel_bundle, max_body_bytes=2000)) as c:
        response = c.post("/v1/generate", json={"mel": frames(200, 0).tolist()})
    assert response.status_code == 413 and "body" in response.json()["error"]


def test_a_bundle_without_mel_conditioning_refuses_frames_by_name(speaker):
    with TestClient(create_app(speaker, max_streams=1, chunk=64)) as c:
        for field, value in (("mel", [[0.0] * N_MELS] * 40), ("mel_audio", base64.b64encode(_clip()).decode())):
            response = c.post("/v1/generate", json={"speaker": 0, field: value})
            assert response.status_code == 400 and response.json()["fields"] == [field]
            assert "not mel-conditioned" in response.json()["error"]


def test_the_schema_documents_the_conditioning(client):
    schema = client.get("/openapi.json").json()
    body = schema["components"]["schemas"]["Body"]["properties"]
    assert body["mel"]["anyOf"][0] == {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
    assert "n_mels" in body["mel"]["description"] and "--mel-from" in body["mel_audio"]["description"]


def test_the_page_sends_a_vocoders_clip_as_mel_audio(client):
    # The page's script (a browser check of it needs `make test-browser`): a card with local
    # conditioning hides seconds and prime and sends the chosen clip as mel_audio.
    page = client.get("/").text
    assert "vocoder = Boolean(card.conditioning.local)" in page and "body.mel_audio = await base64Of(file)" in page
    assert "if (!vocoder) body.seconds = seconds;" in page


def test_vocoding_queues_like_generation(mel_bundle):
    # One stream, no queue: a second vocoding request while the first streams gets 429; a bad
    # one still gets its 400 first; once the first is done, its slot serves the next.
    with TestClient(create_app(mel_bundle, max_streams=1, queue_limit=0, max_seconds=5.0, chunk=64,
                               max_body_bytes=10**6)) as c:
        with c.stream("POST", "/v1/generate", json={"mel": frames(4000, 1).tolist()}) as busy:
            assert next(busy.iter_bytes())[:4] == b"RIFF"
            refused = c.post("/v1/generate", json={"mel": frames(40, 2).tolist()})
            assert refused.status_code == 429 and "Retry-After" in refused.headers
            assert c.post("/v1/generate", json={"mel": frames(3, 2).tolist()}).status_code == 400
        deadline = time.time() + 10
        while c.get("/healthz").json()["active_streams"] and time.time() < deadline:
            time.sleep(0.05)
        assert wav(c.post("/v1/generate", json={"mel": frames(40, 2).tolist()})).shape == (40 * mel_bundle.hop_length,)
