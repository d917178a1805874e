"""Generation that sounds like the data by default: excerpts in bundles, primes in the CLI and the server."""

import base64
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from serving.bundle import BundleError, file_digest, load_bundle
from serving.excerpts import QUIET_DBFS, choose_part, level
from serving.server import create_app
from serving.streaming_sampler import StreamingSampler
from wavenet_tf.cli import main

WAVENET = str(Path(sys.executable).with_name("wavenet"))
RATE = 8000


def generate(bundle, tmp_path, *extra, name="out.wav"):
    """`wavenet generate` through the console script: (returncode, stderr, (frames, channels) audio)."""
    out = tmp_path / name
    done = subprocess.run([WAVENET, "generate", str(bundle), "--out", str(out), *extra],
                          capture_output=True, text=True)
    audio = sf.read(out, dtype="float32", always_2d=True)[0] if done.returncode == 0 else None
    return done.returncode, done.stderr, audio


def alone(bundle, prime, samples, seed, speaker=0):
    """What a lone sampler (the standard graph) generates from ``prime``, as the 16-bit WAV holds it."""
    sampler = StreamingSampler(load_bundle(bundle), seed=seed, global_ids=[speaker], engine="graph")
    sampler.prime(prime)
    pcm = np.clip(np.round(sampler.generate(samples)[0] * 32767), -32768, 32767).astype(np.int16)
    return (pcm / 32768).astype(np.float32)


def assert_audible(audio: np.ndarray, what: str) -> None:
    """The issue's bar for "audible": RMS above −30 dBFS and fewer than half the 20 ms frames near-silent."""
    heard = level(audio, RATE)
    assert heard["rms_dbfs"] > -30 and heard["near_silent_fraction"] < 0.5, (what, heard)


def test_export_stores_lively_excerpts_per_label_listed_with_checksums(trained_speaker_bundle):
    card = json.loads((trained_speaker_bundle / "model.json").read_text())
    excerpts = card["excerpts"]
    assert {e["label"] for e in excerpts} == {0, 1}  # every speaker has its own
    assert {e["label_name"] for e in excerpts} == {"bass", "harp"}
    total = 0
    for entry in excerpts:
        path = trained_speaker_bundle / entry["file"]
        assert entry["file"].startswith("excerpts/") and card["files"][entry["file"]] == file_digest(path)
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_16")
        assert 0.5 <= entry["seconds"] <= 1.0 and info.frames >= card["receptive_field"]
        audio = sf.read(path, dtype="float32")[0]
        assert entry["rms_dbfs"] == pytest.approx(level(audio, RATE)["rms_dbfs"], abs=0.05)
        assert entry["rms_dbfs"] > QUIET_DBFS  # never a near-silent window
        total += path.stat().st_size
    # Distinct training files first: each speaker's excerpts come from both of its files.
    for label in (0, 1):
        assert len({e["source"] for e in excerpts if e["label"] == label}) == 2
    assert total < 200_000  # a small part of the bundle


def test_a_tampered_or_missing_excerpt_is_refused(trained_speaker_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_speaker_bundle, bundle)
    name = json.loads((bundle / "model.json").read_text())["excerpts"][0]["file"]
    data = bytearray((bundle / name).read_bytes())
    data[-10] ^= 0xFF  # one sample changed
    (bundle / name).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"{name}: contents differ from the checksum"):
        load_bundle(bundle, check_graphs=False)
    (bundle / name).unlink()
    with pytest.raises(BundleError, match=f"{name} is missing"):
        load_bundle(bundle, check_graphs=False)
    code, err, _ = generate(bundle, tmp_path, "--seconds", "0.1", "--speaker", "bass")
    assert code == 2 and "is missing" in err and "Traceback" not in err

