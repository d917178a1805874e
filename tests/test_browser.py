"""The web page in a real headless browser: press Play, audio streams in, the canvas is drawn.

Needs Debian's chromium and playwright-core (`make browser-deps`); runs in `make test-browser`.
"""

import io
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from export.bundle import export_run
from serving.excerpts import level
from tests.helpers import NARROW, make_run
from wavenet_tf.core.presets import get_preset

HERE = Path(__file__).parent / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAVENET = str(Path(sys.executable).with_name("wavenet"))

pytestmark = pytest.mark.browser


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """`wavenet serve BUNDLE` on a free port, ready when entered."""

    def __init__(self, bundle: Path):
        self.url = f"http://127.0.0.1:{_free_port()}/"
        self.process = subprocess.Popen([WAVENET, "serve", str(bundle), "--port", self.url.rsplit(":", 1)[1][:-1]],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self) -> "_Server":
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "healthz", timeout=1)
                return self
            except OSError:
                assert self.process.poll() is None, self.process.stderr.read().decode()[-2000:]
                time.sleep(0.2)
        raise AssertionError(f"{self.url} did not start in 60 s")

    def __exit__(self, *_) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def play(self, seconds: str = "1", prime: str | None = None, clip: Path | None = None,
             top_k: str | None = None) -> dict:
        """Press Play in headless Chromium (``prime``: the prime menu's option value; ``clip``: a file to upload;
        ``top_k``: typed in its control)."""
        env = {"CHROMIUM": CHROMIUM, "PATH": "/usr/bin:/bin", **({} if prime is None else {"PRIME": prime}),
               **({} if clip is None else {"CLIP": str(clip)}), **({} if top_k is None else {"TOP_K": top_k})}
        out = subprocess.run(["node", str(HERE / "play.mjs"), self.url, seconds], capture_output=True, text=True,
                             timeout=120, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    def generate(self, **body) -> np.ndarray:
        """The same request the page makes, straight to the API: its samples."""
        request = urllib.request.Request(self.url + "v1/generate", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return sf.read(io.BytesIO(response.read()), dtype="float32")[0]


def _needs_browser() -> None:
    # Fail, not skip: under `make test-browser` a missing browser is a broken setup, not a pass.
    if not (Path(CHROMIUM).exists() and (HERE / "node_modules" / "playwright-core").exists()):
        pytest.fail("needs Debian's chromium and playwright-core: run `make browser-deps`")


def test_play_streams_audio_and_draws_the_waveform(tmp_path):
    _needs_browser()
    make_run(tmp_path / "run", get_preset("tiny", **NARROW))
    export_run(tmp_path / "run", tmp_path / "bundle", log=lambda *_: None)
    with _Server(tmp_path / "bundle") as server:
        result = server.play("1")
    assert result["bytes"] == 44 + 2 * 8000  # the WAV header and one second of 16-bit audio at 8 kHz
    assert result["drawn"] == 8000
    assert result["painted"] > 500  # pixels of the waveform on the canvas


def test_the_sampling_controls_show_the_servers_defaults_and_send_top_k(tmp_path):
    from wavenet_tf.core.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_K

    _needs_browser()
    make_run(tmp_path / "run", get_preset("tiny", **NARROW))
    export_run(tmp_path / "run", tmp_path / "bundle", log=lambda *_: None)
    with _Server(tmp_path / "bundle") as server:
        default = server.play("0.5")
        narrow = server.play("0.5", top_k="3")
        expected = server.generate(seconds=0.5, temperature=DEFAULT_TEMPERATURE, top_k=3, seed=0)
    top_k = default["controls"]["top_k"]
    assert top_k["label"] == "top-k" and float(top_k["max"]) == 64  # the model's classes
    assert float(top_k["value"]) == DEFAULT_TOP_K
    assert float(default["controls"]["temperature"]["value"]) == DEFAULT_TEMPERATURE
    assert default["sent"]["top_k"] == DEFAULT_TOP_K and narrow["sent"]["top_k"] == 3
    assert narrow["drawn"] == len(expected) == 4000
    assert narrow["rms_dbfs"] == pytest.approx(level(expected, 8000)["rms_dbfs"], abs=0.1)


def test_the_page_offers_the_prime_and_shows_the_level_honestly(trained_speaker_bundle):
    _needs_browser()
    excerpts = json.loads((trained_speaker_bundle / "model.json").read_text())["excerpts"]
    with _Server(trained_speaker_bundle) as server:
        loud = server.play("1")  # the defaults: speaker "bass", one of its excerpts
        quiet = server.play("1", prime="silence")
        expected = {name: server.generate(seconds=1.0, temperature=1.0, seed=0, speaker="bass", **body)
                    for name, body in (("loud", {}), ("quiet", {"prime": "silence"}))}
    assert loud["primes"] == ["", *map(str, range(len(excerpts))), "silence", "upload"]
    for result, name in ((loud, "loud"), (quiet, "quiet")):
        audio = expected[name]
        assert result["drawn"] == len(audio) == 8000
        # The level shown is the level of the audio sent (the page and the API agree, sample for sample).
        assert result["rms_dbfs"] == pytest.approx(level(audio, 8000)["rms_dbfs"], abs=0.1), name
        assert "dBFS" in result["level"]
        # True scale: full height is full scale, so the waveform reaches as far as the samples do.
        middle = result["height"] / 2
        assert result["top"] == pytest.approx(middle - audio.max() * middle, abs=2), (name, result, audio.max())
        assert result["bottom"] == pytest.approx(middle - audio.min() * middle, abs=2), (name, result, audio.min())
    assert loud["rms_dbfs"] > -30 and quiet["rms_dbfs"] < -40
    # Near-silence stays a thin line (the old page scaled it to fill 90% of the height).
    assert quiet["bottom"] - quiet["top"] < 0.1 * quiet["height"]


def test_a_clip_too_long_to_upload_is_named_with_what_fits(speaker_bundle, tmp_path):
    # A 513 KB clip got only "request body over 262144 bytes".
    _needs_browser()
    clip = tmp_path / "long.wav"
    sf.write(clip, (0.3 * np.sin(np.arange(int(16.4 * 16000)) / 5.0)).astype(np.float32), 16000, subtype="PCM_16")
    assert 500_000 < clip.stat().st_size < 530_000
    short = tmp_path / "short.wav"
    sf.write(short, (0.3 * np.sin(np.arange(4000) / 5.0)).astype(np.float32), 8000, subtype="PCM_16")
    with _Server(speaker_bundle) as server:
        refused = server.play("0.2", clip=clip)
        played = server.play("0.2", clip=short)
    assert refused["status"].startswith("the clip is too long: long.wav is 51") and "up to 191 KB" in refused["status"]
    assert "12.3 s of 16-bit mono WAV at 8000 Hz" in refused["status"] and not refused["bytes"], refused  # nothing sent
    assert played["status"].startswith("done") and played["drawn"] == 1600, played
