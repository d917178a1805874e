"""The deployment install: a fresh virtual environment with only requirements-serving.txt and
the project (`pip install --no-deps .`), no TensorFlow, runs what a deployment runs.

Slow (it installs onnxruntime, NumPy, FastAPI… from the package registry, about a minute), so it
is not part of `make test`: `make test-deploy` runs it, and `.ci/run` calls that.
"""

import json
import socket
import subprocess
import time
import urllib.request
import venv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """(the deployment's `wavenet` script, a folder with a bundle, held-out audio and a FLAC prime)."""
    from export.bundle import export_run
    from tests.helpers import NARROW, make_run
    from wavenet_tf.builtin_data import write_builtin_dataset
    from wavenet_tf.core.presets import get_preset

    work = tmp_path_factory.mktemp("deploy")
    make_run(work / "run", get_preset("tiny", **NARROW))
    export_run(work / "run", work / "bundle", log=lambda *_: None)
    write_builtin_dataset(work / "heldout", num_files=2, seconds=1.0, sample_rate=8000, seed=3)
    # A stereo FLAC at 22.05 kHz: the prime must be decoded, mixed down and resampled to 8 kHz.
    t = np.arange(22050) / 22050
    tone = 0.4 * np.sin(2 * np.pi * 220 * t)
    sf.write(work / "prime.flac", np.stack([tone, 0.5 * tone], axis=1), 22050)

    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    for args in (["-r", str(ROOT / "requirements-serving.txt")], ["--no-deps", str(ROOT)]):
        done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args],
                              capture_output=True, text=True, cwd=work)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return env_dir / "bin" / "wavenet", work


def run(wavenet: Path, *args: str, cwd: Path) -> str:
    # A clean environment: nothing from this test process's PYTHONPATH or virtual environment.
    env = {"PATH": f"{wavenet.parent}:/usr/bin:/bin", "HOME": str(cwd)}
    done = subprocess.run([str(wavenet), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert done.returncode == 0, f"wavenet {' '.join(args)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def test_the_deployment_has_no_tensorflow(deployment):
    wavenet, work = deployment
    python = wavenet.with_name("python")
    done = subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True, text=True, cwd=work)
    assert done.returncode != 0 and "No module named 'tensorflow'" in done.stderr
    # The project came from this checkout, not from the test's own editable install.
    done = subprocess.run([str(python), "-c", "import serving; print(serving.__file__)"],
                          capture_output=True, text=True, cwd=work)
    assert str(work / "venv") in done.stdout


def test_generate_with_a_flac_prime_at_another_rate(deployment):
    wavenet, work = deployment
    run(wavenet, "generate", "bundle", "--seconds", "0.5", "--prime", "prime.flac", "--out", "out.wav", cwd=work)
    audio, rate = sf.read(work / "out.wav")
    assert rate == 8000 and len(audio) >= 4000 and np.isfinite(audio).all()


def test_evaluate_with_the_step_engine(deployment):
    wavenet, work = deployment
    out = run(wavenet, "evaluate", "bundle", "heldout", "--engine", "step", cwd=work)
    assert "bits/sample" in out


def test_bench(deployment):
    wavenet, work = deployment
    out = run(wavenet, "bench", "bundle", "--seconds", "0.2", "--repeats", "1", cwd=work)
    assert "samples/s" in out


def test_serve_answers_one_request(deployment):
    wavenet, work = deployment
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"PATH": f"{wavenet.parent}:/usr/bin:/bin", "HOME": str(work)}
    server = subprocess.Popen([str(wavenet), "serve", "bundle", "--port", str(port)], cwd=work, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-3000:]
                assert time.time() < deadline, "the server did not answer /healthz within 120 s"
                time.sleep(0.3)
        request = urllib.request.Request(url + "/v1/generate", data=json.dumps({"seconds": 0.5}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            body = response.read()
        assert response.status == 200 and body[:4] == b"RIFF"
        assert len(body) == 44 + 2 * 4000  # the WAV header and half a second of 16-bit audio at 8 kHz
    finally:
        server.terminate()
        server.wait(timeout=30)
