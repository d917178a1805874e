"""`wavenet serve`: HTTP streaming generation (FastAPI + uvicorn), dynamically batched.

    POST /v1/generate   {seconds, temperature, top_k, seed, speaker, prime, prime_audio} -> audio/wav, streamed
                        as generated; by default it continues one of the bundle's excerpts of its
                        training audio (the speaker's), so a trained model is not silent;
                        a mel-conditioned bundle takes {mel} or {mel_audio} instead and streams
                        the vocoded audio, as long as its frames (seed, temperature, top_k as above)
    GET  /v1/model      the model card
    GET  /healthz       liveness and load
    GET  /              a page to pick parameters, play the stream and watch the waveform
    GET  /docs          the API described from /openapi.json (a local page: works offline)
    GET  /openapi.json

Concurrent requests share one batched step call (`serving.batcher.Batcher`) up to
``max_streams``; up to ``queue_limit`` more wait for a slot, and beyond that the answer is
429. Every field is validated; a bad one gets a 400 that names it. Every error, 404 and 405
included, is ``{"error": "...", "fields": [...]}``. A client that disconnects frees its slot,
whether or not its stream had started, and a client that leaves the queue leaves it at once.

Limits, each an argument of `create_app` (and a `wavenet serve` flag) with a safe default:
``max_seconds`` of audio per request, ``max_streams`` generated together, ``queue_limit``
waiting, ``max_body_bytes`` per request body (413 beyond), ``timeout`` seconds of wall time
per request, queueing included: a request still queued (or without audio) at its timeout
gets a 503 (or 504) before any audio; one that times out while streaming ends there, short of
its header's length. ``body_timeout`` seconds to receive a request body (408 beyond); `serve`
also closes a connection that has not sent a request's headers within ``header_timeout``
seconds (idle, or sending a byte at a time).
With ``api_key`` (or the ``WAVENET_API_KEY`` environment variable, read by the CLI)
``/v1/generate`` and ``/v1/model`` need ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``
(401 otherwise).
No request field names a file: the only files the server reads are its bundle's, at start
(an uploaded ``prime_audio`` or ``mel_audio`` clip is decoded from a temporary file of its own).
An upload is checked from its header (length, and samples over all channels) before the
queue, decoded only once its request holds a stream slot, and at most ``max_decodes`` at once
(an argument of `create_app` only).
"""

# No `from __future__ import annotations`: FastAPI reads the route's body model from its
# annotation, and this server's model is built at run time (its length limit is a setting).

import asyncio
import base64
import binascii
import hmac
import io
import json
import math
import tempfile
import struct
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, create_model
from pydantic_core import PydanticCustomError
import soundfile as sf
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving import batcher as batching
from serving.bundle import Bundle
from serving.excerpts import choose_part, excerpt_name, load_excerpt, pick_excerpt
from serving.generate import NO_EXCERPTS_NOTE, resolve_speaker, to_pcm16
from serving.limits import MAX_STREAMS, ascii_index, check_api_key
from serving.native import NativeUnavailable
from wavenet_tf.core.level import FRAME_SECONDS, NEAR_SILENT_DBFS
from wavenet_tf.core.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_K

PAGE = Path(__file__).with_name("static") / "index.html"
# The API reference: a small page of our own that renders /openapi.json, because FastAPI's
# Swagger UI loads its scripts from a CDN and is a blank page on a machine without internet.
DOCS_PAGE = Path(__file__).with_name("static") / "docs.html"


def _json_integer(value: Any) -> Any:
    # An integer is a JSON number without a fractional part — 1, or 1.0 as JSON Schema counts it
    # (and as JavaScript and NumPy clients write it); never a string or a boolean.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# What integer fields take: the rule above, then pydantic's check that 1.0 is whole (1.5 is refused).
JsonInt = Annotated[int, BeforeValidator(_json_integer), Strict(False)]


class GenerateRequest(BaseModel):
    """What to generate.

    One strict rule for every field: a number is a JSON number (``"2"`` and ``true`` are
    not), an integer is a JSON number without a fraction (``3`` or ``3.0``, as JSON Schema
    says), text is a JSON string, ids and indices are integers or strings of ASCII digits,
    and ``null`` is accepted only where the field is optional, meaning the same as leaving
    it out. Nothing else is coerced.
    """

    # strict: pydantic's lax mode turned "2" into 2.0, true into 1 and "1" into a seed.
    model_config = ConfigDict(extra="forbid", strict=True)

    # allow_inf_nan=False: NaN compares false with every bound, so it must be refused by name.
    seconds: float = Field(2.0, gt=0, allow_inf_nan=False, description="seconds of audio")
    temperature: float = Field(DEFAULT_TEMPERATURE, ge=0.0, le=5.0, allow_inf_nan=False,
                               description="softmax temperature; 0 (or up to 1e-3) = the most likely class")
    top_k: JsonInt = Field(DEFAULT_TOP_K, ge=0,
                           description="draw only from the k most likely classes (ties at the k-th all kept); "
                                       "0 = every class")
    seed: JsonInt = Field(0, ge=0, le=2**32 - 1, description="random seed: the same seed gives the same audio")
    speaker: str | JsonInt | None = Field(None, description="global class id or name (globally conditioned models)")
    prime: str | JsonInt | None = Field(
        None, description="what the audio continues from: one of the bundle's excerpts of its training audio, by "
                          "index or name (GET /v1/model lists them under `excerpts`), or `silence`; default: one of "
                          "the speaker's excerpts, chosen by the seed")
    prime_audio: str | None = Field(
        None, description="instead of `prime`: base64 of a short audio file (WAV, FLAC, OGG or MP3) to continue "
                          "from; its most active receptive field primes. At most 30 s long, and within the request body limit")
    mel: list[list[float]] | None = Field(
        None, description="mel-conditioned models (vocoding): log-mel frames, frames × n_mels (GET /v1/model: "
                          "conditioning.local), finite; the WAV is frames × hop_length samples long")
    mel_audio: str | None = Field(
        None, description="mel-conditioned models, instead of `mel`: base64 of an audio file (WAV, FLAC, OGG or MP3) "
                          "whose log-mel frames the server computes with the model's settings, as `wavenet generate "
                          "--mel-from` does; within the request body limit")


# The longest uploaded prime clip, in seconds (only its last receptive field reaches the model).
MAX_PRIME_SECONDS = 30.0
# Samples (frames × channels) an uploaded clip may decode to, per second of the longest clip
# allowed: stereo at 48 kHz. A length limit alone let an 8-channel 192 kHz FLAC of 29 s (234 KB,
# within the body limit) decode to 45 M float samples: +480 MB and 6 s of CPU before its 400.
CLIP_SAMPLES_PER_SECOND = 2 * 48_000


def clip_sample_limit(max_seconds: float) -> int:
    """The most samples, over all channels, that a clip of at most ``max_seconds`` may decode to."""
    return int(max_seconds * CLIP_SAMPLES_PER_SECOND)


class _BadField(ValueError):
    """A request field the model cannot use; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def read_clip(encoded: str, field: str, max_seconds: float, hint: str) -> bytes:
    """An uploaded clip's file (base64 in the request), checked from its header; nothing is decoded.

    Clips longer than ``max_seconds``, or with more samples than `clip_sample_limit` allows
    (channels × rate × duration), are refused here, before any sample is decoded: the
    body limit bounds the bytes, not the samples (a FLAC of silence decodes to hours).
    `_BadField` names ``field``. A file libsndfile cannot read passes: decoding says why.
    """
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _BadField(field, "not base64 (standard alphabet, with padding)") from None
    if not data:
        raise _BadField(field, "empty")
    try:
        info = sf.info(io.BytesIO(data))
    except (RuntimeError, TypeError, ValueError):  # sf.LibsndfileError: `decode_clip` names the reason
        return data
    if info.samplerate > 0:
        seconds = info.frames / info.samplerate
        if seconds > max_seconds:
            raise _BadField(field, f"the clip is {seconds:.1f} s long; send at most {max_seconds:g} s ({hint})")
        limit = clip_sample_limit(max_seconds)
        if info.frames * info.channels > limit:
            raise _BadField(field, f"the clip is {info.channels} channels at {info.samplerate} Hz for {seconds:.1f} s: "
                                   f"{info.frames * info.channels:,} samples to decode, over this server's {limit:,} "
                                   f"({max_seconds:g} s of 48 kHz stereo); send it mono, at a lower rate, or shorter")
    return data


def decode_clip(bundle: Bundle, data: bytes, field: str, max_seconds: float) -> Any:
    """A clip `read_clip` accepted, decoded as the bundle's training audio was: mono, its rate, cleaned.

    Decoding holds the limits again (a header the check could not read is refused here) and
    reads no more frames than the header declares. `_BadField` names ``field``.
    """
    from serving.card_audio import load_for_bundle

    # The project's decoders read files: the clip gets a temporary one, deleted after.
    with tempfile.NamedTemporaryFile(suffix=".audio") as handle:
        handle.write(data)
        handle.flush()
        try:
            return load_for_bundle(bundle.card, handle.name, max_seconds=max_seconds,
                                   max_samples=clip_sample_limit(max_seconds))
        except ValueError as error:  # AudioError names the temporary file: say "the clip" instead
            # libsndfile's own message can name the temporary file too.
            reason = (getattr(error, "reason", None) or str(error)).replace(handle.name, "the clip")
            raise _BadField(field, f"the clip cannot be used ({reason})") from None


def mel_from_json(bundle: Bundle, mel: list) -> Any:
    """``mel`` (a request's frames) as ``(frames, n_mels)`` float32, every frame its bands, all finite."""
    import numpy as np

    n_mels = bundle.card.local_conditioning.n_mels
    bad = next((i for i, row in enumerate(mel) if len(row) != n_mels), None)
    if bad is not None:
        raise _BadField("mel", f"frame {bad} has {len(mel[bad])} values; every frame needs the model's {n_mels} "
                               "mel bands (GET /v1/model: conditioning.local.n_mels)")
    with np.errstate(over="ignore"):  # beyond float32's range becomes Inf: refused just below
        frames = np.asarray(mel, np.float32).reshape(len(mel), n_mels)
    if not np.isfinite(frames).all():  # NaN/Infinity literals, or beyond float32's range
        raise _BadField("mel", "NaN or Inf (or a value beyond float32's range) in the frames; "
                               "send finite log-mel values")
    return frames


def check_mel_length(bundle: Bundle, frames: Any, field: str, max_seconds: float) -> Any:
    """``frames`` if they cover more than the receptive field (the silence generation starts from) and at most ``max_seconds``."""
    rate, rf, hop = bundle.card.sample_rate, bundle.card.receptive_field, bundle.hop_length
    covered = frames.shape[0] * hop
    count = _frames(frames.shape[0])
    if covered > max_seconds * rate:
        raise _BadField(field, f"{count} {'is' if frames.shape[0] == 1 else 'are'} {covered / rate:.2f} s of audio; "
                               f"this server vocodes at most {max_seconds:g} s "
                               f"({_frames(int(max_seconds * rate) // hop)})")
    if covered <= rf:
        raise _BadField(field, f"{count} {'is' if frames.shape[0] == 1 else 'are'} {covered} samples, no more than "
                               f"the receptive field ({rf} samples, the silence generation starts from); "
                               f"send at least {_frames(rf // hop + 1)}")
    return frames


def _frames(count: int) -> str:
    return f"{count} frame" if count == 1 else f"{count} frames"


def messages_frame(field: str) -> str:
    """``mel.12.3`` -> ``12, value 3`` (where a bad value sits in the frames)."""
    parts = field.split(".")[1:]
    return ", value ".join(parts[:2]) if parts else "?"


def request_prime(bundle: Bundle, excerpts: list, prime: str | int | None, speaker: int | None, seed: int) -> Any:
    """The float audio a request's ``prime`` names (None: silence); `_BadField` names a bad one."""
    if prime == "silence":
        return None
    if prime is None:
        index = pick_excerpt(bundle.excerpts, speaker, seed)
        return None if index is None else excerpts[index]
    names = [excerpt_name(e) for e in bundle.excerpts]
    index = prime if isinstance(prime, int) else ascii_index(prime)
    if index is not None:
        if 0 <= index < len(excerpts):
            return excerpts[index]
    elif prime in names:
        return excerpts[names.index(prime)]
    if not names:
        raise _BadField("prime", f"{prime!r}: this bundle has no excerpts (exported before they existed); "
                                 "use 'silence' or prime_audio, or re-export the bundle")
    raise _BadField("prime", f"{prime!r} is not an excerpt index 0..{len(names) - 1}, one of {names}, or 'silence'")


class ErrorBody(BaseModel):
    """Every error the server answers: a message, and the request fields it is about (may be empty)."""

    error: str = Field(description="what is wrong and what to do")
    fields: list[str] = Field(description="the request fields the error names, e.g. [\"seconds\"]; [] if none")


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
    """An `ErrorBody` response: the one shape of every error."""
    content: dict[str, Any] = {"error": message, "fields": fields or []}
    return JSONResponse(status_code=status, content=content, headers=headers or None)


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, each with the `ErrorBody` schema."""
    meaning = {400: "a field is invalid (named in fields)", 401: "missing or wrong API key",
               408: "the request body did not arrive in time", 413: "request body too large",
               429: "every stream is busy and the queue is full", 503: "timed out waiting for a free stream",
               504: "timed out before any audio was generated"}
    return {status: {"model": ErrorBody, "description": meaning[status]} for status in statuses}


class _BodyGuard:
    """Reads each request body before the application sees it: bounded in size and in time.

    A ``Content-Length`` over the limit is refused before reading (413); a chunked body is
    counted while read. A body that does not arrive within ``timeout`` seconds gets a 408
    and the connection is closed (a slow client must not hold a connection forever). A
    client that leaves mid-body gets nothing — there is nobody to answer, and nothing to log.
    """

    def __init__(self, app, max_bytes: int, timeout: float, sample_rate: int):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout
        self.too_large = too_large_message(max_bytes, sample_rate)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_large = _error(413, self.too_large, Connection="close")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):  # ASCII digits only
            await too_large(scope, receive, send)
            return
        body = bytearray()
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # the client cut its body off and left
                    body += message.get("body", b"")
                    if len(body) > self.max_bytes:
                        await too_large(scope, receive, send)
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await _error(408, f"the request body did not arrive within {self.timeout:g} s",
                         Connection="close")(scope, receive, send)
            return
        delivered = False

        async def replay():
            # The body once, then the server's own messages (a disconnect, when it comes).
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# Bytes of a request body that are not the clip: the JSON around it ({"prime_audio": "...", "seconds": ...}).
BODY_OVERHEAD = 256


def clip_bytes_limit(max_body_bytes: int) -> int:
    """The largest audio file a request body of ``max_body_bytes`` can carry (base64 is 4/3 of it)."""
    return max(0, (max_body_bytes - BODY_OVERHEAD) * 3 // 4)


def too_large_message(max_body_bytes: int, sample_rate: int) -> str:
    """The 413's message: the limit, and what it means for the only large field, an uploaded clip."""
    clip = clip_bytes_limit(max_body_bytes)
    seconds = max(0, clip - 44) / (2 * sample_rate)
    return (f"request body over this server's {max_body_bytes:,} bytes. An uploaded clip (prime_audio, mel_audio) "
            f"is sent as base64, so the audio file can be at most about {clip // 1024:,} KB: {seconds:.1f} s of "
            f"16-bit mono WAV at the model's {sample_rate} Hz (FLAC or OGG hold more); send a shorter clip")


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (its body was read already: the next message is a disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def create_app(bundle: Bundle, max_streams: int = 8, queue_limit: int = 16, max_seconds: float = 30.0,
               threads: int = 1, chunk: int = 512, max_body_bytes: int = 262144, timeout: float = 300.0,
               api_key: str | None = None, step_engine: str | None = None, body_timeout: float = 10.0,
               max_decodes: int = 2) -> FastAPI:
    """The application around one bundle (the batcher starts now: a bad bundle fails here, not at a request).

    ``step_engine`` picks the step engine (`serving.native`): native by default when it loads.
    ``max_decodes`` uploaded clips are decoded at once (each holds a stream slot meanwhile).
    """
    _check_limits(max_streams=max_streams, max_seconds=max_seconds, max_body_bytes=max_body_bytes,
                  timeout=timeout, body_timeout=body_timeout, max_decodes=max_decodes, queue_limit=queue_limit,
                  api_key=api_key)
    batcher = batching.Batcher(bundle, capacity=max_streams, chunk=chunk, threads=threads, engine=step_engine)
    if 0 < bundle.card.default_top_k < bundle.card.quantization_channels:
        # Every request that leaves top_k out truncates (the card's default draw): settle the engine
        # now, not on the first request (a native graph exported before top-k moves to the standard
        # graph here, with its note in the engine line; `--engine native` refuses to start instead).
        try:
            batcher.model.need_top_k()
        except NativeUnavailable:
            batcher.close()
            raise
    service = _Generation(bundle, batcher, max_streams, queue_limit, max_seconds, timeout, max_decodes)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        batcher.close()

    app = FastAPI(title="wavenet-tf", version="1", description="Streaming WaveNet generation.", lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # both load from a CDN; /docs is ours (below)
    app.state.batcher = batcher
    app.add_middleware(_BodyGuard, max_bytes=max_body_bytes, timeout=body_timeout, sample_rate=service.rate)
    app.openapi = lambda: _openapi_without_422(app)
    body_model = _request_model(max_seconds, bundle.card.quantization_channels, bundle.card.default_top_k)
    _add_error_handlers(app, body_model, vocoder=bundle.local_conditioning)
    authorized = _authorizer(api_key)
    _add_read_routes(app, service, authorized, clip_bytes_limit(max_body_bytes))

    async def generate(body: body_model, http: Request) -> StreamingResponse:  # type: ignore[valid-type]
        return await service.generate(body, http)

    app.post("/v1/generate", dependencies=[Depends(authorized)],
             responses={200: {"content": {"audio/wav": {}}}, **_errors(400, 401, 408, 413, 429, 503, 504)})(generate)
    return app


def _check_limits(queue_limit: int, api_key: str | None, **positive: float) -> None:
    # Finite, too: an infinite max_seconds would let {"seconds": 1e308} through to int().
    for name, value in positive.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value}.")
    if positive["max_streams"] > MAX_STREAMS:
        raise ValueError(f"max_streams must be at most {MAX_STREAMS}, got {positive['max_streams']}.")
    if queue_limit < 0:
        raise ValueError(f"queue_limit must be >= 0, got {queue_limit}.")
    if api_key is not None:
        check_api_key(api_key, "api_key")


def _request_model(max_seconds: float, classes: int, default_top_k: int | None = None) -> type[GenerateRequest]:
    """`GenerateRequest` with this server's length limit, its model's class count (top_k's bound) and the
    model's default top-k (its card's), in the OpenAPI schema too (clients, fuzzers and the page see them)."""
    top_k = GenerateRequest.model_fields["top_k"]
    return create_model(
        "Body", __base__=GenerateRequest,
        seconds=(float, Field(min(2.0, max_seconds), gt=0, le=max_seconds, allow_inf_nan=False,
                              description=f"seconds of audio, at most {max_seconds:g}")),
        top_k=(JsonInt, Field(top_k.default if default_top_k is None else default_top_k, ge=0, le=classes,
                              description=f"{top_k.description}; at most the model's {classes} classes; "
                                          "the default is this model's")),
    )


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    # FastAPI declares 422 HTTPValidationError on every operation with a body; this server
    # answers a bad field with 400 ErrorBody (declared per route), so the schema says that.
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        for operations in schema["paths"].values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
    return app.openapi_schema


def _authorizer(api_key: str | None):
    """The dependency that admits a request with the key (any request, without one)."""
    def authorized(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key") or ""
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            given = given or bearer[7:]
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise _Unauthorized()

    return authorized


# What each field takes, for messages about a value of the wrong JSON type (nothing is coerced).
EXPECTED = {
    "seconds": "a number", "temperature": "a number", "seed": "an integer (a number without a fraction)",
    "top_k": "an integer (a number without a fraction)",
    "speaker": "a label name (a string) or an id (an integer or ASCII digits)",
    "prime": "an excerpt index (an integer or ASCII digits), an excerpt name, or \"silence\"",
    "prime_audio": "base64 of an audio file (a string)", "mel_audio": "base64 of an audio file (a string)",
    "mel": "log-mel frames: a list of frames, each a list of numbers",
}


def _json_value(value: Any) -> str:
    """How a client wrote ``value``: ``a string ("2")``, ``true``, ``null``, ``an object``."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:20] + "…"
        return f"a string ({json.dumps(shown, ensure_ascii=False)})"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return "a list" if isinstance(value, list) else "an object"


def _field_message(field: str, error: dict[str, Any], defaults: dict[str, Any], vocoder: bool) -> str:
    """One field's problem in the client's terms: what it sent, what the field takes."""
    value = error.get("input")
    if (error["type"].endswith("_type") or error["type"] == "int_from_float") and field in EXPECTED:
        if value is None and field in defaults:
            if vocoder and field == "seconds":
                return ("seconds: null; a mel-conditioned model vocodes its conditioning (`mel` or `mel_audio`) "
                        "as long as the frames: leave seconds out")
            return f"{field}: null is not a value; leave {field} out for its default ({defaults[field]!r})"
        return f"{field}: got {_json_value(value)}; send {EXPECTED[field]}"
    return f"{field}: {error['msg']}"


def _validation_error(error: RequestValidationError, defaults: dict[str, Any], vocoder: bool) -> JSONResponse:
    """A bad body as one 400: the fields named, broken JSON located, bad mel values counted as one field.

    A union's alternatives (``speaker.str``, ``speaker.int``) are one field with one message.
    """
    errors = error.errors()
    broken = [e for e in errors if e["type"] == "json_invalid"]
    if broken:  # its "loc" holds a character offset, not a field
        where = broken[0]["loc"][-1]
        reason = (broken[0].get("ctx") or {}).get("error", "JSON decode error")
        return _error(400, f"body: not valid JSON ({reason} at character {where}); send a JSON object "
                           'such as {"seconds": 2}', ["body"])
    fields: list[str] = []
    messages: list[str] = []
    bad_values: list[dict[str, Any]] = []
    for e in errors:
        loc = [str(p) for p in e["loc"] if p != "body"]
        field = loc[0] if loc else "body"
        if field == "mel" and len(loc) > 1 and loc[1].isdigit():
            bad_values.append(e)  # thousands of bad values are one bad field, `mel`
            continue
        if field not in fields:
            fields.append(field)
            messages.append(_field_message(field, e, defaults, vocoder))
    if bad_values:
        first = bad_values[0]
        where = messages_frame(".".join(["mel"] + [str(p) for p in first["loc"][2:]]))
        more = f" (and {len(bad_values) - 1} more values)" if len(bad_values) > 1 else ""
        what = (f"got {_json_value(first.get('input'))}" if first["type"].endswith("_type") else first["msg"])
        messages.append(f"mel: frame {where}: {what}{more}; send numbers, frames × n_mels")
        fields.append("mel")
    return _error(400, "; ".join(messages), fields)


def _unreadable_body(cause: BaseException | None) -> str:
    """Why FastAPI could not parse a body json.loads did not call invalid JSON: named for the client."""
    if isinstance(cause, UnicodeDecodeError):
        return (f"body: not UTF-8 text (byte 0x{cause.object[cause.start]:02x} at offset {cause.start}); "
                "send the JSON encoded as UTF-8")
    if isinstance(cause, RecursionError):
        return ("body: JSON nested too deeply to read (a request nests at most three levels: the body, mel, "
                "a frame); send a flat JSON object such as {\"seconds\": 2}")
    return f"body: cannot be read as JSON ({type(cause).__name__ if cause else 'unknown reason'}); send a JSON object"


def _add_error_handlers(app: FastAPI, body_model: type[GenerateRequest], vocoder: bool = False) -> None:
    """Every error in the one `ErrorBody` shape, not FastAPI's ``{"detail": ...}``."""
    # The fields null is not a value of, with the default that leaving them out gives.
    defaults = {name: field.default for name, field in body_model.model_fields.items() if field.default is not None}

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError) -> JSONResponse:
        return _validation_error(error, defaults, vocoder)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and error.__cause__ is not None:
            # FastAPI reads the body with json.loads and answers anything but a JSONDecodeError
            # (invalid UTF-8, nesting past the recursion limit) with a bare "error parsing the body".
            return _error(400, _unreadable_body(error.__cause__), ["body"])
        message = {404: f"no such path: {request.url.path} (see /docs)",
                   405: f"method {request.method} not allowed on {request.url.path} (see /docs)"}
        return _error(error.status_code, message.get(error.status_code, str(error.detail)),
                      **(error.headers or {}))

    @app.exception_handler(_Unauthorized)
    async def unauthorized(_: Request, __: Exception) -> JSONResponse:
        return _error(401, "missing or wrong API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`",
                      **{"WWW-Authenticate": "Bearer"})


def _add_read_routes(app: FastAPI, service: "_Generation", authorized, clip_bytes: int) -> None:
    """/healthz, /v1/model, the page and the API reference.

    The page is told this server's limits (the largest clip it can upload) and the level below
    which it calls a frame near-silent (`wavenet_tf.core.level`, as every measure does).
    """
    page_text = (PAGE.read_text().replace("__CLIP_BYTES__", str(clip_bytes))
                 .replace("__NEAR_SILENT_DBFS__", f"{NEAR_SILENT_DBFS:g}")
                 .replace("__NEAR_SILENT_FRAME_MS__", f"{1000 * FRAME_SECONDS:g}"))
    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"status": "ok", "active_streams": service.batcher.active, "waiting": service.waiting,
                "max_streams": service.max_streams}

    @app.get("/v1/model", dependencies=[Depends(authorized)], responses=_errors(401))
    def model_card() -> dict[str, Any]:
        return service.bundle.card.to_dict()

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return page_text

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> str:
        return DOCS_PAGE.read_text()


class _Generation:
    """POST /v1/generate: validate, queue for a stream slot, submit to the batcher, stream the WAV."""

    def __init__(self, bundle: Bundle, batcher: batching.Batcher, max_streams: int, queue_limit: int,
                 max_seconds: float, timeout: float, max_decodes: int = 2):
        self.bundle, self.batcher = bundle, batcher
        self.decodes = asyncio.Semaphore(max_decodes)
        self.max_streams, self.queue_limit = max_streams, queue_limit
        self.max_seconds, self.timeout = max_seconds, timeout
        self.rate = bundle.card.sample_rate
        self.waiting = 0
        self.slots = asyncio.Semaphore(max_streams)
        # Decoded once, at start (their checksums were checked when the bundle loaded).
        self.excerpts = [load_excerpt(bundle.path, entry, self.rate) for entry in bundle.excerpts]

    async def generate(self, body: GenerateRequest, http: Request) -> StreamingResponse | JSONResponse:
        started = time.monotonic()
        left = lambda: self.timeout - (time.monotonic() - started)
        try:
            speaker = resolve_speaker(self.bundle, None if body.speaker is None else str(body.speaker))
        except ValueError as error:
            return _error(400, f"speaker: {error}", ["speaker"])
        if body.top_k:
            try:  # in a thread: a bundle exported before top-k moves its streams to the graph engine once
                await asyncio.to_thread(self.batcher.model.top_ks, 1, body.top_k)
            except NativeUnavailable as error:  # `serve --engine native` with such a bundle
                return _error(400, f"top_k: {error}", ["top_k"])
        try:
            # Everything that needs no decoding, so a bad request gets its 400 whatever the load.
            self._check_fields(body)
            prime, mel, upload = await asyncio.to_thread(self._read_conditioning, body, speaker)
        except _BadField as error:
            return _error(400, str(error), [error.field])
        if self.slots.locked() and self.waiting >= self.queue_limit:
            return _error(429, "too many requests: all streams are busy and the queue is full; retry later",
                          **{"Retry-After": "1"})
        refused = await self._wait_for_slot(http, left)
        if refused is not None:
            return refused
        if upload is not None:
            # An uploaded clip is decoded holding the slot: uploads count against --max-streams and
            # --queue-limit (four clips decoded at once outside them took 1.68 GB) ...
            try:
                prime, mel = await self._decode(upload, left)
            except _BadField as error:
                self.slots.release()
                return _error(400, str(error), [error.field])
            except TimeoutError:
                self.slots.release()
                return _error(503, f"timed out after {self.timeout:g} s waiting to decode the clip; retry later",
                              **{"Retry-After": "1"})
            except BaseException:
                self.slots.release()
                raise
        # With mel frames the stream is frames × hop samples: the receptive field of silence it
        # starts from, then the vocoded samples, so the WAV lines up with the frames' source.
        lead = 0 if mel is None else self.bundle.card.receptive_field
        num_samples = (max(1, int(round(body.seconds * self.rate))) if mel is None
                       else mel.shape[0] * self.bundle.hop_length - lead)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        deliver = lambda chunk: loop.call_soon_threadsafe(queue.put_nowait,
                                                          None if chunk is None else to_pcm16(chunk[None]))
        request = batching.Request(num_samples, body.temperature, body.seed, speaker, deliver, prime, mel,
                                   top_k=body.top_k)
        self.batcher.submit(request)  # accepted before the first byte goes out

        def release() -> None:
            # Finished, timed out, or the client went away: free the slot, exactly once.
            self.batcher.cancel(request)
            self.slots.release()

        # The status goes out with the first audio, so a request that times out before any
        # audio gets an error status, not a 200 with an empty WAV.
        try:
            first = await asyncio.wait_for(queue.get(), max(left(), 0))
        except asyncio.TimeoutError:
            release()
            return _error(504, f"timed out after {self.timeout:g} s before any audio was generated; retry later")
        except BaseException:
            release()
            raise
        header = wav_header(lead + num_samples, self.rate) + bytes(2 * lead)
        return _SlotResponse(_wav_stream(header, first, queue, left), release, media_type="audio/wav")

    def _check_fields(self, body: GenerateRequest) -> None:
        """What can be refused without decoding anything: fields the bundle's kind does not take."""
        if self.bundle.local_conditioning:
            # Vocoding: the conditioning sets the length, and generation starts from silence
            # (a receptive field of it, read against the first frames), as `generate --mel-from`.
            for name in ("seconds", "prime", "prime_audio"):
                if name in body.model_fields_set and getattr(body, name) is not None:
                    raise _BadField(name, "a mel-conditioned model vocodes its conditioning (`mel` or `mel_audio`) "
                                          "from silence, as long as the frames: leave it out")
            return
        for name in ("mel", "mel_audio"):
            if getattr(body, name) is not None:
                raise _BadField(name, "the model is not mel-conditioned: it takes no mel frames "
                                      "(GET /v1/model: conditioning.local is null)")
        if body.prime is not None and body.prime_audio is not None:
            raise _BadField("prime", "give either prime or prime_audio, not both")

    def _read_conditioning(self, body: GenerateRequest, speaker: int | None) -> tuple[Any, Any, Any]:
        """``(prime, mel, upload)``: conditioning that needs no decoding, or ``upload = (field, file bytes)``
        of a clip whose header passed (`read_clip`), left to `_decode_upload`."""
        if self.bundle.local_conditioning:
            if body.mel is not None and body.mel_audio is not None:
                raise _BadField("mel", "give either mel or mel_audio, not both")
            if body.mel_audio is not None:
                return None, None, ("mel_audio", read_clip(body.mel_audio, "mel_audio", self.max_seconds,
                                                           "the stream is as long as the clip"))
            if body.mel is None:
                n_mels = self.bundle.card.local_conditioning.n_mels
                raise _BadField("mel", f"the model is mel-conditioned: send its conditioning, either `mel` (log-mel "
                                       f"frames, frames × {n_mels}) or `mel_audio` (base64 of an audio file)")
            return None, check_mel_length(self.bundle, mel_from_json(self.bundle, body.mel), "mel", self.max_seconds), None
        if body.prime_audio is not None:
            return None, None, ("prime_audio", read_clip(body.prime_audio, "prime_audio", MAX_PRIME_SECONDS,
                                                         "only its end primes"))
        return request_prime(self.bundle, self.excerpts, body.prime, speaker, body.seed), None, None

    async def _decode(self, upload: tuple[str, bytes], left) -> tuple[Any, Any]:
        """`_decode_upload` off the event loop, at most ``max_decodes`` at once (TimeoutError past the deadline).

        ... and under a bound of their own: decoding is CPU and memory while it lasts (a clip at
        the sample limit takes about 80 MB), so only a few run at once whatever --max-streams is.
        """
        async with asyncio.timeout(max(left(), 0)):
            await self.decodes.acquire()
        try:
            return await asyncio.to_thread(self._decode_upload, *upload)
        finally:
            self.decodes.release()

    def _decode_upload(self, field: str, data: bytes) -> tuple[Any, Any]:
        """``(prime, mel)`` from an uploaded clip: its most active receptive field, or its mel frames."""
        from serving.generate import mel_frames

        if field == "mel_audio":
            audio = decode_clip(self.bundle, data, field, self.max_seconds)
            return None, check_mel_length(self.bundle, mel_frames(self.bundle, audio), field, self.max_seconds)
        audio = decode_clip(self.bundle, data, field, MAX_PRIME_SECONDS)
        return choose_part(audio, self.rate, self.bundle.card.receptive_field), None

    async def _wait_for_slot(self, http: Request, left) -> JSONResponse | None:
        """Hold a stream slot (None), or the error to answer with.

        Waits, but not for a client that has left (it must not keep its place in the queue, or
        the queue fills with ghosts and real clients get 429) nor past the timeout.
        """
        self.waiting += 1
        acquire = asyncio.ensure_future(self.slots.acquire())
        gone = asyncio.ensure_future(_disconnected(http))
        try:
            await asyncio.wait({acquire, gone}, timeout=max(left(), 0), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.waiting -= 1
            gone.cancel()  # no effect on a finished task
            acquire.cancel()
        left_early = gone.done() and not gone.cancelled() and gone.exception() is None
        acquired = acquire.done() and not acquire.cancelled()
        if acquired and left_early:
            self.slots.release()  # acquired just as the client left
        if left_early:
            return _error(499, "client closed the request")  # nobody is there to read it
        if not acquired:
            return _error(503, f"timed out after {self.timeout:g} s waiting for a free stream; retry later",
                          **{"Retry-After": "1"})
        return None


async def _wav_stream(header: bytes, first: bytes | None, queue: asyncio.Queue, left):
    """The WAV header and the chunks as they arrive; a timeout ends it short of the header's length."""
    yield header + (first or b"")
    if first is None:
        return
    while True:
        try:
            data = await asyncio.wait_for(queue.get(), left())
        except asyncio.TimeoutError:
            return  # the stream ends short of its header's length: the client sees a truncated WAV
        if data is None:
            return
        yield data


def _timed_protocol(header_timeout: float):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's headers.

    uvicorn times out idle keep-alive connections only after a first response; a connection
    that never sends a request — or sends its headers a byte at a time — would stay open
    forever. Here every connection must deliver a request's headers within
    ``header_timeout`` seconds of opening or of its previous response, else it is closed.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _deadline = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout, self._expire)
            self._armed_cycle = self.cycle

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            if self.cycle is self._armed_cycle and not self.transport.is_closing():
                self.transport.close()  # no request began in time: nothing to answer

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._deadline is not None and self.cycle is not self._armed_cycle:
                self._disarm()  # a request's headers arrived; the body has its own timeout

        def on_response_complete(self) -> None:
            super().on_response_complete()  # may start a pipelined request already
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            # h11 refuses a malformed request (a Content-Length of "12abc" or "-5", a bad header
            # line) before the application sees it, and uvicorn answers in plain text. Called
            # inside uvicorn's `except h11.RemoteProtocolError`, so the reason is at hand.
            import sys

            import h11

            reason = str(sys.exc_info()[1] or msg)
            header = "Content-Length" if "content-length" in reason.lower() else None
            body = json.dumps({"error": malformed_request_message(reason), "fields": [header] if header else []})
            response = h11.Response(status_code=400, reason=b"Bad Request", headers=[
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"connection", b"close")])
            self.transport.write(self.conn.send(response))
            self.transport.write(self.conn.send(h11.Data(data=body.encode())))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
            self.transport.close()

    return TimedH11Protocol


def malformed_request_message(reason: str) -> str:
    """The 400 for an HTTP request h11 could not parse, naming what was wrong."""
    if "content-length" in reason.lower():
        return (f"malformed request: {reason} (Content-Length must be the body's size in bytes, ASCII digits "
                "only, given once); most HTTP clients set it themselves")
    return f"malformed HTTP request ({reason}); send a well-formed HTTP/1.1 request"


def make_server(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, header_timeout: float = 10.0,
                keep_alive: float = 5.0, log_level: str = "info"):
    """A `uvicorn.Server` for ``app`` whose connections cannot stay open idle or half-sent."""
    import uvicorn

    if not (math.isfinite(header_timeout) and header_timeout > 0):
        raise ValueError(f"header_timeout must be a finite number > 0, got {header_timeout}.")
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, http=_timed_protocol(header_timeout),
                            timeout_keep_alive=keep_alive)
    return uvicorn.Server(config)


def serve(bundle: Bundle, host: str = "127.0.0.1", port: int = 8000, header_timeout: float = 10.0,
          **options: Any) -> None:
    from serving.native import engine_line

    app = create_app(bundle, **options)
    print(engine_line(app.state.batcher.model), flush=True)
    if not bundle.excerpts and not bundle.local_conditioning:  # a vocoder starts from silence by design
        print(NO_EXCERPTS_NOTE.format(path=bundle.path).replace(" or pass --prime FILE", " or send prime_audio"),
              flush=True)
    make_server(app, host, port, header_timeout=header_timeout).run()
