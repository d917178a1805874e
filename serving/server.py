"""`wavenet serve`: HTTP streaming generation (FastAPI + uvicorn), dynamically batched.

    POST /v1/generate   {seconds, temperature, seed, speaker} -> audio/wav, streamed as generated
    GET  /v1/model      the model card
    GET  /healthz       liveness and load
    GET  /              a page to pick parameters, play the stream and watch the waveform
    GET  /docs, /openapi.json

Concurrent requests share one batched step call (`serving.batcher.Batcher`) up to
``max_streams``; up to ``queue_limit`` more wait for a slot, and beyond that the answer is
429. Every field is validated; a bad one gets a 400 that names it. A client that
disconnects frees its slot, whether or not its stream had started.

Limits, each an argument of `create_app` (and a `wavenet serve` flag) with a safe default:
``max_seconds`` of audio per request, ``max_streams`` generated together, ``queue_limit``
waiting, ``max_body_bytes`` per request body (413 beyond), ``timeout`` seconds of wall time
per request, queueing included (the stream ends there, short of its header's length).
With ``api_key`` (or the ``WAVENET_API_KEY`` environment variable, read by the CLI)
``/v1/generate`` and ``/v1/model`` need ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``
(401 otherwise).
No request field names a file: the only file the server reads is its bundle, at start.
"""

from __future__ import annotations

import asyncio
import hmac
import struct
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from serving import batcher as batching
from serving.bundle import Bundle
from serving.generate import resolve_speaker, to_pcm16

PAGE = Path(__file__).with_name("static") / "index.html"


class GenerateRequest(BaseModel):
    """What to generate."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(2.0, gt=0, description="seconds of audio")
    temperature: float = Field(1.0, ge=0.0, le=5.0, description="softmax temperature; 0 = most likely class")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="random seed: the same seed gives the same audio")
    speaker: str | int | None = Field(None, description="global class id or name (globally conditioned models)")


class _Unauthorized(Exception):
    """The request lacks the API key the server was started with."""


def wav_header(num_samples: int, sample_rate: int) -> bytes:
    """A 44-byte PCM16 mono WAV header for a known length, sent before the audio is generated."""
    data = num_samples * 2
    return b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16) + b"data" + struct.pack("<I", data)


class _SlotResponse(StreamingResponse):
    """A stream that gives its slot back when the response ends — even one that never started.

    Starlette never iterates a body whose client left before the first byte, so a release
    inside the body generator could leak the slot; ``__call__`` always runs.
    """

    def __init__(self, content, release, **kwargs: Any):
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _error(status: int, message: str, fields: list[str] | None = None, **headers: str) -> JSONResponse:
    content: dict[str, Any] = {"error": message}
    if fields is not None:
        content["fields"] = fields
    return JSONResponse(status_code=status, content=content, headers=headers or None)


def create_app(bundle: Bundle, max_streams: int = 8, queue_limit: int = 16, max_seconds: float = 30.0,
               threads: int = 1, chunk: int = 512, max_body_bytes: int = 4096, timeout: float = 300.0,
               api_key: str | None = None, step_engine: str | None = None) -> FastAPI:
    """The application around one bundle (the batcher starts now: a bad bundle fails here, not at a request).

    ``step_engine`` picks the step engine (`serving.native`): native by default when it loads.
    """
    for name, value in (("max_streams", max_streams), ("max_seconds", max_seconds),
                        ("max_body_bytes", max_body_bytes), ("timeout", timeout)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}.")
    if queue_limit < 0:
        raise ValueError(f"queue_limit must be >= 0, got {queue_limit}.")
    engine = batching.Batcher(bundle, capacity=max_streams, chunk=chunk, threads=threads, engine=step_engine)

    class Body(GenerateRequest):
        # This server's limit, in the OpenAPI schema too (clients and fuzzers see it).
        seconds: float = Field(min(2.0, max_seconds), gt=0, le=max_seconds,
                               description=f"seconds of audio, at most {max_seconds:g}")

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        engine.close()

    app = FastAPI(title="wavenet-tf", version="1", description="Streaming WaveNet generation.", lifespan=lifespan)
    rate = bundle.card["sample_rate"]
    state = {"waiting": 0}
    slots = asyncio.Semaphore(max_streams)
    app.state.batcher = engine

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        # Refuse a large body before reading it (Content-Length), and a chunked one while reading.
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            return _error(413, f"request body over {max_body_bytes} bytes")
        if length is None and request.method == "POST":
            body = b""
            async for part in request.stream():
                body += part
                if len(body) > max_body_bytes:
                    return _error(413, f"request body over {max_body_bytes} bytes")
            request._body = body  # what was read is what the handler sees
        return await call_next(request)

    def authorized(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key") or ""
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            given = given or bearer[7:]
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise _Unauthorized()

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError) -> JSONResponse:
        fields = [".".join(str(p) for p in e["loc"] if p != "body") or "body" for e in error.errors()]
        messages = [f"{f}: {e['msg']}" for f, e in zip(fields, error.errors())]
        return _error(400, "; ".join(messages), fields)

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"status": "ok", "active_streams": engine.active, "waiting": state["waiting"],
                "max_streams": max_streams}

    @app.exception_handler(_Unauthorized)
    async def unauthorized(_: Request, __: Exception) -> JSONResponse:
        return _error(401, "missing or wrong API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`",
                      **{"WWW-Authenticate": "Bearer"})

    @app.get("/v1/model", dependencies=[Depends(authorized)], responses={401: {}})
    def model_card() -> dict[str, Any]:
        return bundle.card

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text()

    async def generate(body: Body) -> StreamingResponse:
        started = time.monotonic()
        try:
            speaker = resolve_speaker(bundle, None if body.speaker is None else str(body.speaker))
        except ValueError as error:
            return _error(400, f"speaker: {error}", ["speaker"])
        if slots.locked() and state["waiting"] >= queue_limit:
            return _error(429, "too many requests: all streams are busy and the queue is full; retry later",
                          **{"Retry-After": "1"})
        num_samples = int(round(body.seconds * rate))
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def deliver(chunk):
            loop.call_soon_threadsafe(queue.put_nowait, None if chunk is None else to_pcm16(chunk[None]))

        request = batching.Request(num_samples, body.temperature, body.seed, speaker, deliver)
        state["waiting"] += 1
        try:
            await slots.acquire()  # a client that leaves while waiting cancels this: nothing taken
        finally:
            state["waiting"] -= 1
        engine.submit(request)  # accepted before the first byte goes out

        def release() -> None:
            # Finished, timed out, or the client went away: free the slot, exactly once.
            engine.cancel(request)
            slots.release()

        async def stream():
            yield wav_header(num_samples, rate)
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), timeout - (time.monotonic() - started))
                except asyncio.TimeoutError:
                    return  # the stream ends short of its header's length: the client sees a truncated WAV
                if data is None:
                    return
                yield data

        return _SlotResponse(stream(), release, media_type="audio/wav")

    # `Body` is local to this function, which postponed annotations cannot see: give FastAPI the class.
    generate.__annotations__["body"] = Body
    app.post("/v1/generate", dependencies=[Depends(authorized)],
             responses={200: {"content": {"audio/wav": {}}}, 400: {}, 401: {}, 413: {}, 429: {}})(generate)

    return app


def serve(bundle: Bundle, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    import uvicorn

    from serving.native import engine_line

    app = create_app(bundle, **options)
    print(engine_line(app.state.batcher.sampler), flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
