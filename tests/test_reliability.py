"""Reliability: crashes lose at most one checkpoint interval, damage is named, bad input is refused.

The quick checks run in `make test`; the long ones (marked ``reliability``: a SIGKILL loop,
thousands of fuzzed audio files) run in `make test-reliability`, which CI also runs. The
server's fuzzing and load tests live in tests/test_server_reliability.py.
"""

import io
import json
import os
import random
import signal
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.bundle import BundleError, load_bundle
from serving.streaming_sampler import StreamingSampler
from tests.helpers import NARROW, make_run
from tests.helpers import WAVENET, read_metrics, small_run
from wavenet_tf.core.audio import AudioError, load_audio
from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.apps.cli import main
from wavenet_tf.core.presets import get_preset
from wavenet_tf.core.files import RunError, read_json
from wavenet_tf.run_dir import load_run_model, verify_checkpoint


@pytest.fixture(scope="module")
def melodies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("melodies")
    write_builtin_dataset(folder, num_files=4, seconds=2.0, sample_rate=8000, seed=0)
    return folder


def flip_byte(path: Path, offset_fraction: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * offset_fraction)] ^= 0xFF
    path.write_bytes(bytes(data))


# --- damaged files are named ------------------------------------------------------------------

def test_a_tampered_model_or_checkpoint_is_named_not_a_stack_trace(melodies, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(small_run(melodies, run, tmp_path / "cache", "--epochs", "2", "--steps-per-epoch", "2",
                          "--audio-every", "0")) == 0
    capsys.readouterr()
    assert (run / "model_best.keras.sha256").is_file() and (run / "model_last.keras.sha256").is_file()
    state = read_json(run / "state.json")
    assert state["checkpoint_files"] and verify_checkpoint(run, state)  # intact: passes

    flip_byte(run / "model_best.keras")
    with pytest.raises(RunError, match=r"model_best\.keras: contents differ from the checksum"):
        load_run_model(run)
    assert main(["export", str(run), "--out", str(tmp_path / "bundle")]) == 2
    assert "contents differ from the checksum" in capsys.readouterr().err

    data_file = next((run / "checkpoints").glob(f"{state['checkpoint']}.data-*"))
    flip_byte(data_file)
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3", "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert data_file.name in err and "cannot resume" in err and "Traceback" not in err

    (run / "model_last.keras").write_bytes((run / "model_last.keras").read_bytes()[:1000])  # truncated
    with pytest.raises(RunError, match="model_last.keras: contents differ"):
        load_run_model(run, "last")


def test_a_tampered_bundle_file_is_named(tmp_path):
    from export.bundle import export_run

    make_run(tmp_path / "run", get_preset("tiny", **NARROW))
    export_run(tmp_path / "run", tmp_path / "bundle", log=lambda *_: None)
    flip_byte(tmp_path / "bundle" / "step_sampler.onnx")
    with pytest.raises(BundleError, match=r"step_sampler\.onnx: contents differ from the checksum"):
        load_bundle(tmp_path / "bundle")


# --- a full disk during a checkpoint write -----------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("failing", ["tf checkpoint", "model_last.keras"])
def test_a_full_disk_while_saving_keeps_the_last_checkpoint(melodies, tmp_path, monkeypatch, capsys, failing):
    import tensorflow as tf

    from wavenet_tf import callbacks

    run = tmp_path / "run"
    args = small_run(melodies, run, tmp_path / "cache", "--epochs", "3", "--steps-per-epoch", "2", "--audio-every", "0")
    calls = {"n": 0}
    full = OSError(28, "No space left on device")
    if failing == "tf checkpoint":
        original = tf.train.CheckpointManager.save

        def save(self, *a, **k):
            calls["n"] += 1
            if calls["n"] == 2:  # epoch 2: write part of it, then the disk is full
                prefix = original(self, *a, **k)
                data = next(Path(prefix).parent.glob(Path(prefix).name + ".data-*"))
                data.write_bytes(data.read_bytes()[:10])
                raise full
            return original(self, *a, **k)

        monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    else:
        original = callbacks.atomic_write

        def atomic_write(path, write, checksum=False):
            if Path(path).name == "model_last.keras":
                calls["n"] += 1
                if calls["n"] == 2:
                    def partial(tmp):
                        Path(tmp).write_bytes(b"PK\x03\x04 half a zip")
                        raise full
                    return original(path, partial, checksum)
            return original(path, write, checksum)

        monkeypatch.setattr(callbacks, "atomic_write", atomic_write)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "intact at epoch 1" in err and "--resume" in err
    assert read_json(run / "state.json")["epoch"] == 1
    assert not list(run.glob(".model_*"))  # no temporary file left behind
    load_run_model(run, "last")  # the previous model still loads and matches its checksum

    monkeypatch.undo()
    assert main(["train", "--out", str(run), "--resume", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert [int(r["epoch"]) for r in read_metrics(run)] == [1, 2, 3]


# --- NaN / Inf at the boundary -----------------------------------------------------------------

@pytest.mark.slow
def test_nan_and_inf_are_refused_at_the_boundary(tmp_path):
    audio = np.sin(np.arange(8000) / 7.0).astype(np.float32)
    audio[123] = np.inf
    sf.write(tmp_path / "inf.wav", audio, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"inf\.wav.*NaN or Inf"):
        load_audio(tmp_path / "inf.wav", 8000)

    from export.bundle import export_run

    make_run(tmp_path / "run", get_preset("tiny", **NARROW, local_conditioning_channels=3, upsample_scales=(4,)))
    export_run(tmp_path / "run", tmp_path / "bundle", log=lambda *_: None)
    bundle = load_bundle(tmp_path / "bundle")
    mel = np.zeros((1, 50, 3), np.float32)
    mel[0, 7, 1] = np.nan
    with pytest.raises(ValueError, match="mel frames contain NaN or Inf"):
        StreamingSampler(bundle, mel=mel)
    sampler = StreamingSampler(bundle, mel=np.zeros((1, 50, 3), np.float32))
    with pytest.raises(ValueError, match="prime contains NaN or Inf"):
        sampler.prime(np.array([0.0, np.nan], np.float32))


# --- fuzzing the audio loader ------------------------------------------------------------------

def _seed_files() -> dict[str, bytes]:
    """One valid file per format, to mutate."""
    t = np.arange(4000) / 8000
    audio = (0.5 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    out = {}
    for suffix, fmt, subtype in ((".wav", "WAV", "PCM_16"), (".flac", "FLAC", "PCM_16"), (".ogg", "OGG", "VORBIS"),
                                 (".mp3", "MP3", "MPEG_LAYER_III")):
        buffer = io.BytesIO()
        sf.write(buffer, audio, 8000, format=fmt, subtype=subtype)
        out[suffix] = buffer.getvalue()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:  # the 16-bit WAV that goes through tf.audio.decode_wav's twin path
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(11025)
        w.writeframes((np.zeros((1000, 2)) + 300).astype("<i2").tobytes())
    out[".WAV"] = buffer.getvalue()
    return out


SEEDS = _seed_files()


@st.composite
def audio_files(draw):
    suffix = draw(st.sampled_from(sorted(SEEDS)))
    how = draw(st.sampled_from(["random", "flip", "truncate", "splice", "header"]))
    data = bytearray(SEEDS[suffix])
    if how == "random":
        data = bytearray(draw(st.binary(min_size=0, max_size=4096)))
    elif how == "flip":
        for _ in range(draw(st.integers(1, 16))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    elif how == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "splice":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=256))
    else:  # the header: where parsers trust lengths and counts
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, min(len(data), 64) - 1))
            data[i] = draw(st.integers(0, 255))
    return suffix.lower(), bytes(data)


class _Hang(Exception):
    pass


def _load_one(folder: Path, suffix: str, data: bytes, counter: dict) -> None:
    path = folder / f"fuzz{suffix}"
    path.write_bytes(data)
    counter["tried"] += 1

    def alarm(*_):
        raise _Hang(f"load_audio hung on {len(data)} bytes named {path.name}")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(5)
    try:
        audio, info = load_audio(path, 8000)
    except AudioError as error:
        assert str(path) in str(error)  # the message names the file
        counter["refused"] += 1
        return
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size > 0
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    counter["loaded"] += 1


def _fuzz(tmp_path, examples: int) -> dict:
    counter = {"tried": 0, "refused": 0, "loaded": 0}
    # libmpg123 prints a line to fd 2 for every broken MP3 frame: thousands of them.
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        _fuzz_quietly(tmp_path, examples, counter)
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
    return counter


def _fuzz_quietly(tmp_path, examples: int, counter: dict) -> None:

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(audio_files())
    def run(case):
        _load_one(tmp_path, case[0], case[1], counter)

    run()
    for suffix, data in SEEDS.items():  # the unmutated seeds load
        _load_one(tmp_path, suffix.lower(), data, counter)


def test_fuzzed_audio_files_are_loaded_or_refused_by_name(tmp_path):
    counter = _fuzz(tmp_path, 150)
    assert counter["tried"] >= 150 and counter["refused"] > 0 and counter["loaded"] >= len(SEEDS)


@pytest.mark.reliability
def test_fuzz_the_audio_loader_thousands_of_times(tmp_path):
    started = time.perf_counter()
    counter = _fuzz(tmp_path, 10000)
    print(f"\nfuzzed the audio loader: {counter['tried']} inputs (.wav/.flac/.ogg/.mp3, random and mutated), "
          f"{counter['refused']} refused by name, {counter['loaded']} loaded finite, 0 crashes, 0 hangs, "
          f"{time.perf_counter() - started:.0f} s")
    assert counter["tried"] >= 10000


# --- SIGKILL at random moments -----------------------------------------------------------------

def _committed_epoch(run: Path) -> int:
    try:
        return json.loads((run / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def _writing_checkpoint(run: Path) -> bool:
    """True while an epoch's files are being written (temporary names exist)."""
    return bool(list(run.glob(".model_*")) or list((run / "checkpoints").glob("*_temp*")))


@pytest.mark.reliability
def test_sigkill_at_random_moments_never_loses_more_than_one_checkpoint(melodies, tmp_path):
    run, cache = tmp_path / "run", tmp_path / "cache"
    epochs = 80
    args = small_run(melodies, run, cache, "--epochs", str(epochs), "--steps-per-epoch", "3", "--audio-every", "0",
                     "--seed", "1")
    rng = random.Random(0)
    trials, during_write = 0, 0
    for trial in range(12):
        command = [WAVENET, *args] if trial == 0 else [WAVENET, "train", "--out", str(run), "--resume",
                                                       "--cache-dir", str(cache)]
        before = _committed_epoch(run)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        aim_at_write = trial % 2 == 1  # odd trials: kill while the epoch's files are being written
        deadline = time.time() + 120
        seen = before
        delay = rng.uniform(0.2, 3.0)
        progressed_at = None
        killed_in_write = False
        while time.time() < deadline and process.poll() is None:
            seen = max(seen, _committed_epoch(run))
            if seen > before and progressed_at is None:
                progressed_at = time.time()
            if progressed_at is not None:
                if aim_at_write and _writing_checkpoint(run):
                    killed_in_write = True
                    break
                if not aim_at_write and time.time() - progressed_at > delay:
                    break
            time.sleep(0.002)
        assert process.poll() is None, f"trial {trial}: the run ended before the kill: {process.stderr.read()[-2000:]}"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        trials += 1
        during_write += killed_in_write
        after = _committed_epoch(run)
        # The commit never goes backwards, and at most the epoch in flight is lost.
        assert after >= seen >= before + 1, (trial, before, seen, after)
        state = read_json(run / "state.json")
        verify_checkpoint(run, state)  # the committed checkpoint's files match their digests
        load_run_model(run, "last")  # and the model files match theirs
    # The last resume runs to the end: every epoch exactly once in the metrics.
    assert main(["train", "--out", str(run), "--resume", "--cache-dir", str(cache)]) == 0
    assert [int(r["epoch"]) for r in read_metrics(run)] == list(range(1, epochs + 1))
    print(f"\nSIGKILL loop: {trials} trials ({during_write} while an epoch's files were being written), "
          f"every resume succeeded, no commit went backwards, final run complete ({epochs} epochs)")
    assert trials >= 10 and during_write >= 3
