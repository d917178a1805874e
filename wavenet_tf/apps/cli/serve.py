"""`wavenet serve`: the HTTP streaming server (onnxruntime, FastAPI; no TensorFlow)."""

from __future__ import annotations

import argparse
import os
import sys

from wavenet_tf.apps.cli.common import Formatter, fail


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    serve_parser = commands.add_parser(
        "serve", help="HTTP streaming server with a web page (onnxruntime; no TensorFlow)",
        formatter_class=Formatter,
        description="Serve a bundle: POST /v1/generate streams a WAV as it is generated; concurrent "
                    "requests are generated together in one batched step call; GET / is a web page "
                    "that plays the stream and draws the waveform; GET /docs describes the API (offline).",
        epilog="examples:\n  wavenet serve bundles/first\n  wavenet serve bundles/first --port 9000 --max-streams 16\n"
               "  curl -X POST localhost:8000/v1/generate -H 'Content-Type: application/json' "
               "-d '{\"seconds\": 3}' -o three.wav",
    )
    serve_parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder")
    serve_parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback unless told otherwise)")
    serve_parser.add_argument("--port", type=int, default=8000, help="TCP port")
    serve_parser.add_argument("--max-streams", type=int, default=8, help="requests generated together")
    serve_parser.add_argument("--queue-limit", type=int, default=16, help="requests waiting for a stream; more get 429")
    serve_parser.add_argument("--max-seconds", type=float, default=30.0, help="longest audio one request may ask for")
    serve_parser.add_argument("--threads", type=int, default=1, help="threads (the native engine splits streams between them)")
    serve_parser.add_argument("--engine", default=None, choices=["auto", "native", "graph"],
                              help="step engine, as for generate (default auto: native when its library loads)")
    serve_parser.add_argument("--max-body-bytes", type=int, default=262144,
                              help="largest request body (an uploaded prime_audio clip counts); more gets 413")
    serve_parser.add_argument("--timeout", type=float, default=300.0,
                              help="wall seconds one request may take, queueing included; the stream ends there")
    serve_parser.add_argument("--api-key", default=None,
                              help="require this key (Authorization: Bearer KEY or X-API-Key) for /v1/*; "
                                   "default: the WAVENET_API_KEY environment variable, else none")
    serve_parser.set_defaults(func=run)
    return serve_parser


def run(args: argparse.Namespace) -> int:
    """Serving needs onnxruntime, NumPy, FastAPI and uvicorn: no TensorFlow."""
    from serving.bundle import load_bundle
    from serving.limits import check_api_key, check_count, check_port, check_positive, check_streams
    from serving.server import serve

    # Limits first, with the flags' names; then the bundle: a bad one stops here, before the port opens.
    check_port(args.port)
    check_streams(args.max_streams, "--max-streams")
    check_count(args.queue_limit, "--queue-limit", low=0)
    check_positive(args.max_seconds, "--max-seconds")
    check_positive(args.timeout, "--timeout")
    check_count(args.max_body_bytes, "--max-body-bytes")
    check_count(args.threads, "--threads")
    api_key = args.api_key or os.environ.get("WAVENET_API_KEY") or None
    if api_key is not None:
        check_api_key(api_key, "--api-key" if args.api_key else "WAVENET_API_KEY")
    bundle = load_bundle(args.bundle)
    if args.host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        print(f"warning: serving on {args.host} without an API key: anyone who can reach the port can generate "
              "(set --api-key or WAVENET_API_KEY)", file=sys.stderr)
    from serving.native import NativeUnavailable

    try:
        serve(bundle, host=args.host, port=args.port, max_streams=args.max_streams, queue_limit=args.queue_limit,
              max_seconds=args.max_seconds, threads=args.threads, max_body_bytes=args.max_body_bytes,
              step_engine=args.engine, timeout=args.timeout, api_key=api_key)
    except NativeUnavailable as error:  # --engine native with a bundle or a machine it cannot run on
        return fail(f"wavenet serve: {error}")
    return 0
