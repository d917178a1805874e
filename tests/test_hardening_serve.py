"""The server's rough edges from issue 13: one error shape, an offline /docs whose schema says
what the server answers, limits refused at start, queued clients and slow connections."""

import logging
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.bundle import load_bundle
from serving.server import create_app
from wavenet_tf.apps.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(speaker_bundle):
    return load_bundle(speaker_bundle)


@pytest.fixture
def client(bundle):
    with TestClient(create_app(bundle, max_streams=2, queue_limit=2, max_seconds=5.0, chunk=128)) as c:
        yield c


def _is_error_body(response) -> dict:
    body = response.json()
    assert set(body) == {"error", "fields"}, body
    assert isinstance(body["error"], str) and body["error"] and isinstance(body["fields"], list), body
    return body


# --- /docs and the schema ------------------------------------------------------------------

def test_docs_is_a_local_page_that_loads_nothing_from_another_host(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "openapi.json" in page.text
    # FastAPI's Swagger UI loads its script and style from cdn.jsdelivr.net: blank offline.
    assert "http://" not in page.text and "https://" not in page.text and "cdn" not in page.text.lower()
    assert client.get("/redoc").status_code == 404  # ReDoc is a CDN page too


def test_the_schema_declares_the_400_the_server_answers(client):
    schema = client.get("/openapi.json").json()
    responses = schema["paths"]["/v1/generate"]["post"]["responses"]
    assert "422" not in responses  # FastAPI's default; this server never answers 422
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for status in ("400", "401", "413", "429", "503", "504"):
        ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody"), (status, ref)
    declared = schema["components"]["schemas"]["ErrorBody"]
    # ... and a real 400 has exactly the declared fields.
    real = client.post("/v1/generate", json={"seconds": -1, "speaker": 0})
    assert real.status_code == 400
    assert set(_is_error_body(real)) == set(declared["properties"]) == set(declared["required"])


def test_the_pages_are_installed_with_the_package(tmp_path):
    # A clean copy of the sources (no egg-info whose SOURCES.txt could list them anyway),
    # built as an install builds it: the server reads both pages from serving/static.
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for package in ("wavenet_tf", "export", "serving"):
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info"))
    out = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path / "lib")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    for page in ("index.html", "docs.html"):
        assert (tmp_path / "lib" / "serving" / "static" / page).is_file(), page


# --- one error shape -----------------------------------------------------------------------

def test_404_and_405_are_the_same_error_shape_as_every_other_error(client):
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404 and "/v1/nothing" in _is_error_body(missing)["error"]
    wrong = client.get("/v1/generate")
    assert wrong.status_code == 405 and "GET" in _is_error_body(wrong)["error"]
    assert "POST" in wrong.headers["allow"]


@pytest.mark.parametrize("text", ['{"seconds": ', '{"seconds": 1,}', "seconds=1"])
def test_broken_json_names_the_body_not_a_character_offset(client, text):
    response = client.post("/v1/generate", content=text, headers={"content-type": "application/json"})
    assert response.status_code == 400
    body = _is_error_body(response)
    assert body["fields"] == ["body"] and "not valid JSON" in body["error"], body


@pytest.mark.parametrize("text, field", [
    ('{"seconds": NaN, "speaker": 0}', "seconds"),
    ('{"seconds": Infinity, "speaker": 0}', "seconds"),
    ('{"temperature": NaN, "speaker": 0}', "temperature"),
    ('{"temperature": -Infinity, "speaker": 0}', "temperature"),
])
def test_nan_and_infinity_are_refused_as_not_finite(client, text, field):
    response = client.post("/v1/generate", content=text, headers={"content-type": "application/json"})
    assert response.status_code == 400
    body = _is_error_body(response)
    # NaN compares false with every bound: "less than or equal to 5" was the message before.
    assert body["fields"] == [field] and "finite" in body["error"] and "less than" not in body["error"], body


def test_speaker_errors_name_the_field_not_a_flag_or_the_servers_files(client, bundle):
    for speaker in ("cello", "\u0661", "\u00b2", "5"):  # Arabic-Indic one and superscript two are not ids
        response = client.post("/v1/generate", json={"seconds": 0.02, "speaker": speaker})
        assert response.status_code == 400, speaker
        body = _is_error_body(response)
        assert body["fields"] == ["speaker"] and "--speaker" not in body["error"], body
        assert str(bundle.path) not in body["error"], body
    assert client.post("/v1/generate", json={"seconds": 0.02, "speaker": "1"}).status_code == 200


# --- limits at start -----------------------------------------------------------------------

@pytest.mark.parametrize("flags, needle", [
    (["--port", "-1"], "--port"),
    (["--port", "70000"], "--port"),
    (["--max-seconds", "inf"], "--max-seconds"),
    (["--max-seconds", "nan"], "--max-seconds"),
    (["--timeout", "inf"], "--timeout"),
    (["--max-streams", "10000"], "--max-streams"),
    (["--queue-limit", "-1"], "--queue-limit"),
    (["--api-key", "cl\u00e9-\u043a\u043b\u044e\u0447"], "--api-key"),
    (["--api-key", "two words"], "--api-key"),
])
def test_serve_refuses_bad_limits_in_one_line_before_the_port_opens(speaker_bundle, monkeypatch, capsys,
                                                                     flags, needle):
    import serving.server

    def started(*_, **__):
        raise AssertionError("the server started")

    monkeypatch.setattr(serving.server, "serve", started)
    assert main(["serve", str(speaker_bundle), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wavenet: error: ") and "\n" not in err and needle in err, err


def test_an_api_key_from_the_environment_outside_ascii_is_refused(speaker_bundle, monkeypatch, capsys):
    import serving.server

    monkeypatch.setattr(serving.server, "serve", lambda *_, **__: pytest.fail("the server started"))
    monkeypatch.setenv("WAVENET_API_KEY", "\u043a\u043b\u044e\u0447")
    assert main(["serve", str(speaker_bundle)]) == 2
    assert "WAVENET_API_KEY" in capsys.readouterr().err


def test_create_app_refuses_infinite_limits_and_unsendable_keys(bundle):
    for bad, name in (({"max_seconds": float("inf")}, "max_seconds"), ({"timeout": float("nan")}, "timeout"),
                      ({"body_timeout": 0}, "body_timeout"), ({"api_key": "\u043a\u043b\u044e\u0447"}, "api_key")):
        with pytest.raises(ValueError, match=name):
            create_app(bundle, **bad)


# --- timeouts and the queue ------------------------------------------------------------------

def test_a_request_still_queued_at_its_timeout_gets_an_error_status_not_audio(bundle):
    with TestClient(create_app(bundle, max_streams=1, queue_limit=2, max_seconds=600.0, timeout=1.0,
                               chunk=64)) as c:
        with c.stream("POST", "/v1/generate", json={"seconds": 600.0, "speaker": 0}) as busy:
            assert next(busy.iter_bytes())[:4] == b"RIFF"
            # In a thread: a queued request used to wait for a slot with no deadline at all.
            answers = []
            asking = threading.Thread(target=lambda: answers.append(
                c.post("/v1/generate", json={"seconds": 1.0, "speaker": 0})), daemon=True)
            asking.start()
            asking.join(10)
            assert answers, "the queued request was still waiting 10 s after its 1 s timeout"
        queued = answers[0]
        # 503 while waiting for a stream, 504 if it got one too late for any audio: never 200 + a cut WAV.
        assert queued.status_code in (503, 504) and not queued.content.startswith(b"RIFF")
        assert "timed out" in _is_error_body(queued)["error"]
        assert c.get("/healthz").json()["waiting"] == 0


@contextmanager
def _running(app, header_timeout: float = 10.0):
    """A real uvicorn server for ``app`` on a free loopback port, in a thread."""
    from serving.server import make_server

    server = make_server(app, "127.0.0.1", 0, header_timeout=header_timeout, log_level="warning")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _health(port: int) -> dict:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()


def _post(port: int, body: bytes, headers: str = "") -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + headers.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return conn


def _wait_for(predicate, within: float) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_queued_clients_that_leave_leave_the_queue(bundle):
    app = create_app(bundle, max_streams=1, queue_limit=2, max_seconds=600.0, chunk=64)
    with _running(app) as port:
        busy = _post(port, b'{"seconds": 600, "speaker": 0}')
        assert busy.recv(4) == b"HTTP"  # the slot is taken
        for _ in range(4):  # twice the queue: each ghost would have filled it for good
            ghost = _post(port, b'{"seconds": 1, "speaker": 0}')
            assert _wait_for(lambda: _health(port)["waiting"] == 1, 10)
            ghost.close()
            assert _wait_for(lambda: _health(port)["waiting"] == 0, 5), _health(port)
        # A real client is queued, not refused with 429.
        waiting = _post(port, b'{"seconds": 0.01, "speaker": 0}')
        assert _wait_for(lambda: _health(port)["waiting"] == 1, 10)
        busy.close()
        waiting.settimeout(30)
        assert waiting.recv(12) == b"HTTP/1.1 200"
        waiting.close()
        assert _wait_for(lambda: _health(port)["active_streams"] == 0, 10)


def _closed_within(conn: socket.socket, seconds: float) -> bool:
    """True if the server closes ``conn`` (possibly after an answer) within ``seconds``."""
    conn.settimeout(seconds)
    try:
        while conn.recv(4096):
            pass
        return True
    except (TimeoutError, socket.timeout):
        return False
    except ConnectionResetError:
        return True


def test_idle_and_byte_at_a_time_connections_are_closed(bundle):
    app = create_app(bundle, max_streams=1, queue_limit=0, max_seconds=1.0, chunk=64)
    with _running(app, header_timeout=0.5) as port:
        idle = socket.create_connection(("127.0.0.1", port))
        slow = socket.create_connection(("127.0.0.1", port))
        started = time.time()
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n":  # headers a byte at a time, never finished
                slow.sendall(bytes([byte]))
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while still sending: what this test wants
        assert _closed_within(idle, 3) and _closed_within(slow, 3)
        assert time.time() - started < 5
        # A connection that asks in time is answered as before.
        assert _health(port)["status"] == "ok"


def test_a_body_that_stalls_gets_408_and_a_cut_body_logs_nothing(bundle):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    app = create_app(bundle, max_streams=1, queue_limit=0, max_seconds=1.0, chunk=64, body_timeout=0.5)
    with _running(app) as port:
        logging.getLogger("uvicorn.error").addHandler(handler)
        try:
            stalled = socket.create_connection(("127.0.0.1", port), timeout=5)
            stalled.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 40\r\n\r\n{\"seconds\": ")
            answer = b""
            while part := stalled.recv(4096):  # the server closes the connection after its answer
                answer += part
            assert answer.startswith(b"HTTP/1.1 408") and b'"fields"' in answer, answer
            stalled.close()
            # A chunked body the client cuts off and leaves: no ClientDisconnect traceback.
            cut = socket.create_connection(("127.0.0.1", port), timeout=5)
            cut.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\nc\r\n{\"seconds\": \r\n")
            time.sleep(0.2)
            cut.close()
            time.sleep(0.5)
            assert _health(port)["status"] == "ok"
        finally:
            logging.getLogger("uvicorn.error").removeHandler(handler)
    errors = [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]


# --- issue 23: malformed requests, one strict rule, uploads within the limits ------------------

@pytest.mark.parametrize("length", ["12abc", "-5", "1e3"])
def test_a_malformed_content_length_gets_a_json_400_that_names_it(bundle, length):
    # h11 refuses these before the application sees them; uvicorn answered in plain text.
    app = create_app(bundle, max_streams=1, queue_limit=0, max_seconds=1.0, chunk=64)
    with _running(app) as port:
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + length.encode() + b"\r\n\r\n{}")
        answer = b""
        while part := conn.recv(4096):
            answer += part
        conn.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head, answer
    import json

    error = json.loads(body)
    assert set(error) == {"error", "fields"} and error["fields"] == ["Content-Length"], error
    assert "Content-Length" in error["error"] and "digits" in error["error"], error


@pytest.mark.parametrize("raw, says", [
    (b"[" * 60_000 + b"]" * 60_000, "nested too deeply"),
    (b'{"seconds": 1, "speaker": "\xff\xfe"}', "not UTF-8"),
    (b'{"seconds": 1, "speaker": 0, "prime": "\xc3', "not UTF-8"),
])
def test_an_unreadable_body_is_named_not_a_generic_parse_error(client, raw, says):
    response = client.post("/v1/generate", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    body = _is_error_body(response)
    assert body["fields"] == ["body"] and says in body["error"], body
    assert "There was an error parsing the body" not in body["error"]


@pytest.mark.parametrize("body, field", [
    ({"prime": True}, "prime"),           # was read as excerpt 1
    ({"seconds": "0.02"}, "seconds"),     # was read as 0.02
    ({"temperature": "1"}, "temperature"),
    ({"seed": "1"}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"speaker": True}, "speaker"),       # was speaker 1
    ({"speaker": 1.5}, "speaker"),
    ({"top_k": "2"}, "top_k"),            # the top_k merge had lost this message
    ({"top_k": True}, "top_k"),
    ({"top_k": 2.5}, "top_k"),
])
def test_every_field_takes_one_json_type_and_nothing_is_coerced(client, body, field):
    response = client.post("/v1/generate", json={"seconds": 0.02, "speaker": 0, **body})
    assert response.status_code == 400, (body, response.status_code)
    error = _is_error_body(response)
    # One field, named once (not "speaker.str" and "speaker.int"), with what was sent and what it takes.
    assert error["fields"] == [field] and "got " in error["error"] and "send " in error["error"], error


def test_an_integer_is_a_json_number_without_a_fraction(client):
    # As JSON Schema (and so the server's own /openapi.json) counts it, and as JavaScript and
    # NumPy clients write it: 3.0 is the integer 3. Schemathesis sends such values as valid.
    for body in ({"seed": 3.0}, {"speaker": 1.0}, {"seconds": 1}):
        response = client.post("/v1/generate", json={"seconds": 0.02, "speaker": 0, **body})
        assert response.status_code == 200, (body, response.text)


@pytest.mark.parametrize("value", ["\u00b2", "\u2460", "\u0663", "\uff11"])
def test_ids_and_indices_are_ascii_digits_in_every_field(client, value):
    # "²" and "①" were a 500 (str.isdigit() then int()); "٣" was read as 3 while "１" was refused.
    for body, field in (({"speaker": 0, "prime": value}, "prime"), ({"speaker": value}, "speaker")):
        response = client.post("/v1/generate", json={"seconds": 0.02, **body})
        assert response.status_code == 400, (body, response.text)
        assert _is_error_body(response)["fields"] == [field]


def test_null_is_refused_where_a_field_has_a_value_and_says_to_leave_it_out(client):
    response = client.post("/v1/generate", json={"seconds": None, "speaker": 0})
    error = _is_error_body(response)
    assert response.status_code == 400 and error["fields"] == ["seconds"]
    assert "leave seconds out" in error["error"] and "valid number" not in error["error"], error
    error = _is_error_body(client.post("/v1/generate", json={"seconds": 0.02, "speaker": 0, "top_k": None}))
    assert error["fields"] == ["top_k"] and "leave top_k out" in error["error"], error
    # Optional fields take null as "not given".
    assert client.post("/v1/generate", json={"seconds": 0.02, "speaker": 0, "prime": None}).status_code == 200


def test_the_413_says_the_clip_is_too_long_and_what_fits(bundle):
    from serving.server import clip_bytes_limit

    with TestClient(create_app(bundle, max_body_bytes=20_000)) as c:
        response = c.post("/v1/generate", json={"seconds": 0.1, "speaker": 0, "prime_audio": "A" * 30_000})
        page = c.get("/").text
    error = _is_error_body(response)["error"]
    assert response.status_code == 413
    # Was only "request body over 262144 bytes": now what it means for a clip, in KB and seconds at 8 kHz.
    assert "clip" in error and f"{clip_bytes_limit(20_000) // 1024} KB" in error and "s of 16-bit mono WAV" in error
    # The page knows the limit before it uploads (a browser run: `make test-browser`).
    assert f"CLIP_BYTES = {clip_bytes_limit(20_000)}," in page and "__" not in page.split("<script>")[1]
    assert "the clip is too long" in page and "if (clipTooLarge(file))" in page
    # ... and counts near-silent frames as every measure does (it used −45 dBFS, the quality bench −50).
    from wavenet_tf.core.level import FRAME_SECONDS, NEAR_SILENT_DBFS

    assert f"NEAR_SILENT_DBFS = {NEAR_SILENT_DBFS:g}, FRAME_MS = {1000 * FRAME_SECONDS:g};" in page
    assert page.count(f"{NEAR_SILENT_DBFS:g}") == 1 and "−45" not in page  # the constant alone, once


def _flac(seconds: float, rate: int, channels: int, value: float = 0.5) -> str:
    import base64
    import io

    import numpy as np
    import soundfile as sf

    buffer = io.BytesIO()
    # A constant compresses to almost nothing: a few KB that decode to millions of samples.
    sf.write(buffer, np.full((int(seconds * rate), channels), value, np.float32), rate, format="FLAC",
             subtype="PCM_16")
    return base64.b64encode(buffer.getvalue()).decode()


def test_an_uploaded_clip_is_refused_from_its_header_by_samples_not_only_seconds(bundle, monkeypatch):
    import serving.card_audio

    decoded = []
    real = serving.card_audio.load_for_bundle
    monkeypatch.setattr(serving.card_audio, "load_for_bundle", lambda *a, **k: decoded.append(a) or real(*a, **k))
    clip = _flac(2.0, 192_000, 8)  # 3 M samples in 2 s: within 30 s, far beyond what a prime needs
    with TestClient(create_app(bundle, max_streams=2)) as c:
        response = c.post("/v1/generate", json={"seconds": 0.1, "speaker": 0, "prime_audio": clip})
    error = _is_error_body(response)
    assert response.status_code == 400 and error["fields"] == ["prime_audio"], error
    assert "8 channels at 192000 Hz" in error["error"] and "mono, at a lower rate" in error["error"], error
    assert decoded == []  # refused before a sample was decoded


def test_uploads_count_against_the_stream_limits_and_decode_a_few_at_once(bundle, monkeypatch):
    import serving.server

    active, most = [0], [0]
    real = serving.server.decode_clip

    def decode(*args, **kwargs):
        active[0] += 1
        most[0] = max(most[0], active[0])
        time.sleep(0.3)
        try:
            return real(*args, **kwargs)
        finally:
            active[0] -= 1

    monkeypatch.setattr(serving.server, "decode_clip", decode)
    clip = _flac(0.5, 8000, 1, value=0.0)  # silence: a 400 after decoding, quickly
    ask = lambda c: c.post("/v1/generate", json={"seconds": 0.1, "speaker": 0, "prime_audio": clip})
    # One stream, no queue, the stream busy: the upload is refused with 429 and never decoded
    # (four clips decoded at once outside --max-streams took 1.68 GB).
    with TestClient(create_app(bundle, max_streams=1, queue_limit=0, max_seconds=10.0, chunk=64)) as c:
        with c.stream("POST", "/v1/generate", json={"seconds": 10.0, "speaker": 0}) as busy:
            assert next(busy.iter_bytes())[:4] == b"RIFF"
            assert ask(c).status_code == 429
        assert most[0] == 0
    # Room for four streams, but clips are decoded one at a time (max_decodes), and each gets its answer.
    with TestClient(create_app(bundle, max_streams=4, max_decodes=1)) as c:
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(ask(c))) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert [a.status_code for a in answers] == [400] * 3 and "silence" in answers[0].json()["error"]
        assert most[0] == 1
        assert c.get("/healthz").json()["active_streams"] == 0
