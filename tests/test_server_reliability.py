"""The server under bad input and load: fuzzed against its own OpenAPI schema, and a bounded
loopback load test at and above the batching limit (``reliability``: `make test-reliability`)."""

import re
import socket
import statistics
import subprocess
import threading
import time

import httpx
import psutil
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from serving.bundle import load_bundle
from serving.server import create_app
from tests.helpers import WAVENET



@pytest.fixture(scope="module")
def app(speaker_bundle):
    # Short audio, so that thousands of valid requests stay fast.
    return create_app(load_bundle(speaker_bundle), max_streams=4, queue_limit=4, max_seconds=0.02, chunk=64)


def _fuzz_api(app, examples: int) -> dict:
    """Every operation of the server's OpenAPI schema, with valid and invalid requests
    (wrong types, out-of-range numbers, unknown fields, ...) from Schemathesis."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    counts = {"requests": 0, "status": {}}
    for operation in (result.ok() for result in schema.get_all_operations()):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case):
                response = case.call_and_validate(checks=[not_a_server_error])  # raises on any 5xx
                counts["requests"] += 1
                counts["status"][response.status_code] = counts["status"].get(response.status_code, 0) + 1

            try:
                run()
            except Unsatisfiable:  # an operation without parameters has no invalid form
                assert mode == GenerationMode.NEGATIVE
    return counts


def test_fuzzed_requests_never_get_a_500(app):
    counts = _fuzz_api(app, 25)
    assert counts["requests"] >= 40 and 400 in counts["status"] and 200 in counts["status"]


@pytest.mark.reliability
def test_fuzzed_requests_never_get_a_500_at_length(app):
    started = time.perf_counter()
    counts = _fuzz_api(app, 400)
    print(f"\nSchemathesis against /openapi.json: {counts['requests']} requests, statuses "
          f"{dict(sorted(counts['status'].items()))}, no 5xx, {time.perf_counter() - started:.0f} s")
    assert counts["requests"] >= 500


# --- load ------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(url: str, seconds: float, rate: int, results: list, disconnect_after: int | None = None) -> None:
    """One streaming request; records status, audio seconds, wall time and the gaps between chunks."""
    started = time.perf_counter()
    record = {"status": None, "audio_s": 0.0, "wall_s": 0.0, "gaps": [], "disconnected": False}
    try:
        with httpx.stream("POST", url, json={"seconds": seconds, "speaker": 0}, timeout=60) as response:
            record["status"] = response.status_code
            if response.status_code == 200:
                received, last = 0, None
                for part in response.iter_bytes():
                    now = time.perf_counter()
                    if last is not None:
                        record["gaps"].append(now - last)
                    last = now
                    received += len(part)
                    if disconnect_after is not None and received > disconnect_after:
                        record["disconnected"] = True
                        break  # leaving the block closes the connection mid-stream
                record["audio_s"] = max(0, received - 44) / 2 / rate
                record["first_byte_s"] = None
    except httpx.HTTPError as error:
        record["status"] = f"error: {type(error).__name__}"
    record["wall_s"] = time.perf_counter() - started
    results.append(record)


def _round(url, clients, seconds, rate, disconnecting=0):
    results: list = []
    threads = [threading.Thread(target=_client, args=(url, seconds, rate, results,
                                                       4096 if i < disconnecting else None)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results, time.perf_counter() - started


@pytest.mark.reliability
def test_load_at_and_above_the_batching_limit(speaker_bundle):
    """N clients for M seconds of audio each, at, and at three times, the server's stream limit."""
    port, max_streams, queue_limit, seconds = _free_port(), 8, 8, 3.0
    server = subprocess.Popen([WAVENET, "serve", str(speaker_bundle), "--port", str(port), "--max-streams",
                               str(max_streams), "--queue-limit", str(queue_limit), "--max-seconds", "10"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        process = psutil.Process(server.pid)
        rate = httpx.get(f"{base}/v1/model").json()["sample_rate"]
        url = f"{base}/v1/generate"
        _round(url, 2, 0.2, rate)  # warm up: sessions, first allocations
        memory = [process.memory_info().rss]
        report = []
        for clients, disconnecting in ((max_streams, 0), (3 * max_streams, 4), (max_streams, 0), (3 * max_streams, 4),
                                       (max_streams, 0)):
            results, wall = _round(url, clients, seconds, rate, disconnecting)
            memory.append(process.memory_info().rss)
            served = [r for r in results if r["status"] == 200 and not r["disconnected"]]
            refused = sum(r["status"] == 429 for r in results)
            # A client meant to hang up may itself be refused first (the queue is full when it arrives), so
            # count the hang-ups that happened rather than the ones planned.
            disconnected = sum(r["disconnected"] for r in results)
            failed = [r["status"] for r in results if r["status"] not in (200, 429)]
            assert not failed, failed  # refusing is the only way to degrade
            assert len(results) == clients and len(served) + refused + disconnected == clients
            assert disconnected <= disconnecting and (disconnecting == 0 or disconnected + refused >= disconnecting)
            assert all(abs(r["audio_s"] - seconds) < 1e-3 for r in served)  # complete streams
            real_time = sum(r["audio_s"] >= r["wall_s"] for r in served)  # delivered at least as fast as played
            gaps = [g for r in served for g in r["gaps"]]
            audio = sum(r["audio_s"] for r in results)
            health = httpx.get(f"{base}/healthz").json()
            report.append(dict(clients=clients, served=len(served), refused=refused, disconnected=disconnected,
                               samples_per_s=audio * rate / wall, real_time=real_time,
                               p99_gap_ms=1000 * statistics.quantiles(gaps, n=100)[98] if len(gaps) > 1 else 0.0,
                               active_after=health["active_streams"], rss_mb=memory[-1] / 2**20))
            assert health["active_streams"] == 0 and health["waiting"] == 0  # disconnects freed their slots
        print("\nload test (loopback, tiny bundle, 8 kHz; each client asks for 3 s):")
        for r in report:
            print(f"  {r['clients']:>3} clients: {r['served']:>2} served ({r['real_time']} in real time), "
                  f"{r['refused']:>2} got 429, {r['disconnected']} disconnected mid-stream; "
                  f"{r['samples_per_s']:>9,.0f} samples/s aggregate; p99 chunk gap {r['p99_gap_ms']:.1f} ms; "
                  f"RSS {r['rss_mb']:.0f} MB")
        growth = (memory[-1] - memory[1]) / 2**20
        print(f"  server memory: {memory[0] / 2**20:.0f} MB after warm-up, {memory[1] / 2**20:.0f} MB after "
              f"round 1, {memory[-1] / 2**20:.0f} MB after round {len(report)} ({growth:+.1f} MB)")
        assert growth < 25, f"memory grew by {growth:.1f} MB over repeated rounds"
        assert all(r["served"] >= max_streams for r in report)
        assert any(r["refused"] for r in report)  # above the limit, refusal happened
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert server.returncode in (0, -15), server.stderr.read()[-2000:]
    log = server.stderr.read() if server.stderr else ""
    assert not re.search(r"Traceback|Exception in ASGI", log), log[-3000:]
