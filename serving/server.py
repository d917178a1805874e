"""`wavenet serve`: HTTP streaming generation (FastAPI + uvicorn), dynamically batched.

    POST /v1/generate   {seconds, temperature, seed, speaker} -> audio/wav, streamed as generated
    GET  /v1/model      the model card
    GET  /healthz       liveness and load
    GET  /              a page to pick parameters, play the stream and watch the waveform
    GET  /docs, /openapi.json

Concurrent requests share one batched step call (`serving.batcher.Batcher`) up to
``max_streams``; up to ``queue_limit`` more wait for a slot, and beyond that the answer is
429. Every field is validated; a bad one gets a 400 that names it. A client that
disconnects frees its slot.
"""

from __future__ import annotations

import asyncio
import struct
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
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


def wav_header(num_samples: int, sample_rate: int) -> bytes:
    """A 44-byte PCM16 mono WAV header for a known length, sent before the audio is generated."""
    data = num_samples * 2
    return b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16) + b"data" + struct.pack("<I", data)


def create_app(bundle: Bundle, max_streams: int = 8, queue_limit: int = 16, max_seconds: float = 30.0,
               threads: int = 1, chunk: int = 512) -> FastAPI:
    """The application around one bundle (the batcher starts now: a bad bundle fails here, not at a request)."""
    engine = batching.Batcher(bundle, capacity=max_streams, chunk=chunk, threads=threads)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        engine.close()

    app = FastAPI(title="wavenet-tf", version="1", description="Streaming WaveNet generation.", lifespan=lifespan)
    rate = bundle.card["sample_rate"]
    state = {"waiting": 0}
    slots = asyncio.Semaphore(max_streams)
    app.state.batcher = engine

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError) -> JSONResponse:
        fields = [".".join(str(p) for p in e["loc"] if p != "body") or "body" for e in error.errors()]
        messages = [f"{f}: {e['msg']}" for f, e in zip(fields, error.errors())]
        return JSONResponse(status_code=400, content={"error": "; ".join(messages), "fields": fields})

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"status": "ok", "active_streams": engine.active, "waiting": state["waiting"],
                "max_streams": max_streams}

    @app.get("/v1/model")
    def model_card() -> dict[str, Any]:
        return bundle.card

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text()

    @app.post("/v1/generate", responses={200: {"content": {"audio/wav": {}}}, 400: {}, 429: {}})
    async def generate(body: GenerateRequest) -> StreamingResponse:
        if body.seconds > max_seconds:
            return JSONResponse(status_code=400, content={
                "error": f"seconds: at most {max_seconds:g} per request (got {body.seconds:g})", "fields": ["seconds"]})
        try:
            speaker = resolve_speaker(bundle, None if body.speaker is None else str(body.speaker))
        except ValueError as error:
            return JSONResponse(status_code=400, content={"error": f"speaker: {error}", "fields": ["speaker"]})
        if slots.locked() and state["waiting"] >= queue_limit:
            return JSONResponse(status_code=429, content={"error": "too many requests: all streams are busy and "
                                                          "the queue is full; retry later"},
                                headers={"Retry-After": "1"})
        num_samples = int(round(body.seconds * rate))
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def deliver(chunk):
            loop.call_soon_threadsafe(queue.put_nowait, None if chunk is None else to_pcm16(chunk[None]))

        request = batching.Request(num_samples, body.temperature, body.seed, speaker, deliver)
        state["waiting"] += 1
        try:
            await slots.acquire()
        finally:
            state["waiting"] -= 1

        async def stream():
            try:
                engine.submit(request)  # accepted before the first byte goes out
                yield wav_header(num_samples, rate)
                while True:
                    data = await queue.get()
                    if data is None:
                        return
                    yield data
            finally:
                # Finished, or the client went away (the response is cancelled): free the slot.
                engine.cancel(request)
                slots.release()

        return StreamingResponse(stream(), media_type="audio/wav")

    return app


def serve(bundle: Bundle, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    import uvicorn

    uvicorn.run(create_app(bundle, **options), host=host, port=port, log_level="info")
