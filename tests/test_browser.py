"""The web page in a real headless browser: press Play, audio streams in, the canvas is drawn.

Needs Debian's chromium and playwright-core (`make browser-deps`); runs in `make test-browser`.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from export.bundle import export_run
from tests.test_export import NARROW, make_run
from wavenet_tf.presets import get_preset

HERE = Path(__file__).parent / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAVENET = str(Path(sys.executable).with_name("wavenet"))

pytestmark = pytest.mark.browser


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_play_streams_audio_and_draws_the_waveform(tmp_path):
    # Fail, not skip: under `make test-browser` a missing browser is a broken setup, not a pass.
    if not (Path(CHROMIUM).exists() and (HERE / "node_modules" / "playwright-core").exists()):
        pytest.fail("needs Debian's chromium and playwright-core: run `make browser-deps`")
    make_run(tmp_path / "run", get_preset("tiny", **NARROW))
    export_run(tmp_path / "run", tmp_path / "bundle", log=lambda *_: None)
    port = _free_port()
    server = subprocess.Popen([WAVENET, "serve", str(tmp_path / "bundle"), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url + "healthz", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                time.sleep(0.2)
        out = subprocess.run(["node", str(HERE / "play.mjs"), url, "1"], capture_output=True, text=True,
                             timeout=120, env={"CHROMIUM": CHROMIUM, "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stderr[-3000:]
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["bytes"] == 44 + 2 * 8000  # the WAV header and one second of 16-bit audio at 8 kHz
        assert result["drawn"] == 8000
        assert result["painted"] > 500  # pixels of the waveform on the canvas
    finally:
        server.terminate()
        server.wait(timeout=10)
