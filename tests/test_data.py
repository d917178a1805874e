"""Folder/glob/manifest -> prepared tracks -> windows: labels, skips, cache, split, mel alignment."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from wavenet_tf.core.mu_law import mu_law_decode
from wavenet_tf.core.audio import AudioInfo
from wavenet_tf.apps.cli import main
from wavenet_tf.core.config import DataConfig
from wavenet_tf.data import (DataError, Track, WindowMaker, aligned_target_length, discover, prepare,
                             split_by_file, window_dataset)
from wavenet_tf.core.mel import log_mel
from wavenet_tf.core.presets import get_preset

TINY = get_preset("tiny")


def melody(seconds=1.0, rate=8000, frequency=330.0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32) / 1.5


@pytest.fixture
def folder(tmp_path):
    """Two labelled sub-folders of good files, plus one bad file of each kind."""
    root = tmp_path / "data"
    for label, rate, fmt in [("cello", 16000, "wav"), ("cello", 22050, "flac"), ("cello", 8000, "ogg"),
                             ("flute", 44100, "wav"), ("flute", 48000, "mp3"), ("flute", 8000, "flac")]:
        (root / label).mkdir(parents=True, exist_ok=True)
        index = len(list((root / label).iterdir()))
        sf.write(root / label / f"take{index}.{fmt}", melody(1.0, rate), rate)
    (root / "flute" / "empty.wav").write_bytes(b"")
    (root / "flute" / "notes.wav").write_text("not audio")
    sf.write(root / "cello" / "silence.wav", np.zeros(8000, np.float32), 8000)
    (root / "cello" / "readme.txt").write_text("ignored: not an audio extension")
    return root


def test_folder_labels_and_named_skips(folder, tmp_path, caplog):
    prepared = prepare(folder, TINY, DataConfig(val_split=0.0), cache_dir=tmp_path / "cache")
    summary = prepared.summary()
    assert summary["num_files"] == 9 and summary["num_usable"] == 6 and summary["num_skipped"] == 3
    assert summary["labels"] == {"cello": 3, "flute": 3}
    assert prepared.label_names == ["cello", "flute"]
    assert {t.label_id for t in prepared.tracks if t.label == "flute"} == {1}
    reasons = {os.path.basename(s["path"]): s["reason"] for s in summary["skipped"]}
    assert reasons["empty.wav"].startswith("empty file")
    assert reasons["notes.wav"].startswith("not a readable audio file")
    assert reasons["silence.wav"].startswith("silence throughout")
    # One log line per skipped file, naming it.
    skip_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert len(skip_lines) == 3 and all(str(folder) in line for line in skip_lines)
    assert summary["total_seconds"] == pytest.approx(6.0, abs=0.3)
    for track in prepared.tracks:
        assert track.audio.dtype == np.float32 and np.isfinite(track.audio).all()


def test_strict_turns_a_skip_into_an_error(folder, tmp_path):
    with pytest.raises(DataError, match="--strict"):
        prepare(folder, TINY, cache_dir=tmp_path / "cache", strict=True)


def test_no_usable_audio_says_what_to_change(tmp_path):
    (tmp_path / "a.wav").write_text("nope")
    with pytest.raises(DataError, match="none of the 1 audio files is usable"):
        prepare(tmp_path, TINY, cache_dir=tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no audio files"):
        prepare(tmp_path / "empty", TINY, cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match="CSV manifest"):
        discover(tmp_path / "missing")


def test_manifest_and_glob(folder, tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label\ndata/cello/take0.wav,alice\ndata/flute/take0.wav,bob\ndata/gone.wav,bob\n")
    prepared = prepare(manifest, TINY, DataConfig(val_split=0), cache_dir=tmp_path / "cache")
    assert prepared.label_names == ["alice", "bob"]
    assert [s.reason for s in prepared.skipped] == ["no such file"]
    files = discover(str(folder / "**" / "*.flac"))
    assert [f.label for f in files] == ["cello", "flute"]


def test_cache_is_reused_and_invalidated(folder, tmp_path):
    cache = tmp_path / "cache"
    first = prepare(folder, TINY, cache_dir=cache)
    assert first.cache_misses >= 6 and first.cache_hits == 0
    second = prepare(folder, TINY, cache_dir=cache)
    assert second.cache_hits == 6 and second.cache_misses == 3  # the 3 bad files are retried, never cached
    for a, b in zip(first.tracks, second.tracks):
        np.testing.assert_array_equal(a.audio, b.audio)
    # Changing one source file invalidates that file only.
    changed = folder / "cello" / "take0.wav"
    sf.write(changed, melody(2.0, 16000, 440.0), 16000)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    third = prepare(folder, TINY, cache_dir=cache)
    assert third.cache_hits == 5
    assert next(t for t in third.tracks if t.path == str(changed)).info.seconds == pytest.approx(2.0, abs=0.1)
    # Changing an audio setting invalidates everything.
    fourth = prepare(folder, TINY, DataConfig(trim_top_db=30.0), cache_dir=cache)
    assert fourth.cache_hits == 0


def test_split_is_by_file_seeded_and_per_label(folder, tmp_path):
    prepared = prepare(folder, TINY, DataConfig(val_split=0.34, seed=3), cache_dir=tmp_path / "cache")
    val = {t.path for t in prepared.val}
    assert {t.label for t in prepared.val} == {"cello", "flute"}  # every label is validated
    assert not val & {t.path for t in prepared.train}
    again, _ = split_by_file(prepared.tracks, 0.34, 3)
    assert [t.path for t in again] == [t.path for t in prepared.train]
    assert any({t.path for t in split_by_file(prepared.tracks, 0.34, s)[1]} != val for s in range(4, 10))


def test_windows_are_deterministic_and_resume_at_a_step(builtin_folder, tmp_path):
    prepared = prepare(builtin_folder, TINY, cache_dir=tmp_path / "cache")
    make = lambda seed, start=0: window_dataset(prepared.train, 129, 64, 4, seed=seed, start_step=start,
                                                global_conditioning=True)
    batches = [(x["audio"].numpy(), x["global_id"].numpy(), y.numpy()) for x, y in make(1).take(4)]
    again = [(x["audio"].numpy(), x["global_id"].numpy(), y.numpy()) for x, y in make(1).take(4)]
    for a, b in zip(batches, again):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    other = next(iter(make(2)))[1].numpy()
    assert not np.array_equal(other, batches[0][2])
    resumed = next(iter(make(1, start=3)))
    np.testing.assert_array_equal(resumed[0]["audio"].numpy(), batches[3][0])
    # Label ids travel with their windows.
    assert set(np.concatenate([b[1] for b in batches])) <= {0, 1}


def test_input_noise_jitters_inputs_only_at_its_fraction_and_is_a_function_of_the_window():
    tracks = [np.sin(np.arange(20000) / 7.0).astype(np.float32) * 0.5]
    clean = WindowMaker(tracks, 129, 512, 256, seed=3)
    noisy = WindowMaker(tracks, 129, 512, 256, seed=3, input_noise=8.0, input_noise_fraction=0.5)
    moved = []
    for index in range(40):
        (x, y, _, _), (xn, yn, _, _) = clean(index), noisy(index)
        np.testing.assert_array_equal(y, yn)  # the targets are always the true next samples
        np.testing.assert_array_equal(x[129:], y[:-1])  # inputs lead targets by one sample
        np.testing.assert_array_equal(xn, noisy(index)[0])  # a pure function of (seed, index)
        assert xn.min() >= 0 and xn.max() <= 255
        moved.append(np.mean(xn != x))
    # Half the samples drawn, each window with its own σ in [0, 8]: some windows hardly move,
    # others move nearly every drawn sample.
    assert min(moved) < 0.3 and 0.4 < max(moved) < 0.55
    assert 0.35 < np.mean(moved) < 0.48
    with pytest.raises(ValueError, match="input_noise_fraction"):
        DataConfig(input_noise=2.0, input_noise_fraction=1.5)
    with pytest.raises(ValueError, match="input_noise must be >= 0"):
        DataConfig(input_noise=-1.0)


def test_mel_frames_align_with_audio():
    """A tone burst starting at sample n lights frame n // hop (windows centred on their hop)."""
    hop, rate = 64, 8000
    for n in (0, 1000, 1024, 1040, 1055, 1056, 1087):
        audio = np.zeros(4096, np.float32)
        audio[n:] = 0.5 * np.cos(2 * np.pi * 1000 * np.arange(4096 - n) / rate)  # nonzero from sample n on
        mel = log_mel(audio, rate, n_mels=16, hop_length=hop, n_fft=256)
        assert mel.shape == (4096 // hop, 16)
        energy = np.exp(mel).sum(axis=1)
        steady = energy[-10:].mean()
        first_half_lit = np.flatnonzero(energy >= 0.5 * steady)[0]
        expected = n // hop + (1 if n % hop > hop // 2 else 0)
        assert first_half_lit == expected, f"burst at {n}"
        # Frames whose whole window ends before the burst see nothing of it.
        dark = (n - 256 // 2 - hop // 2) // hop
        if dark > 0:
            assert energy[:dark].max() < 1e-3 * steady


def test_mel_windows_are_cut_at_the_audio_offsets():
    hop = 8
    config = get_preset("tiny", local_conditioning_channels=2, upsample_scales=(2, 4))
    # Block k of `hop` samples holds mu-law class k, and mel frame k holds k: a window's
    # audio classes then say where it was cut, and its mel frames must say the same.
    blocks = 200
    audio = np.repeat(mu_law_decode(np.arange(blocks) % 256), hop).astype(np.float32)
    mel = np.stack([np.arange(blocks), -np.arange(blocks)], axis=1).astype(np.float32)
    info = AudioInfo("x", "WAV", "PCM_16", 8000, 1, 0.2, 0.2, 0.0)
    track = Track("x", "", 0, audio, info, mel)
    target = aligned_target_length(config.receptive_field, 100, hop)
    assert (config.receptive_field + target - 1) % hop == 0
    ds = window_dataset([track], config.receptive_field, target, 3, seed=0, local_conditioning=True, hop_length=hop)
    for inputs, _ in ds.take(3):
        classes, frames = inputs["audio"].numpy(), inputs["mel"].numpy()
        assert frames.shape[1] * hop == classes.shape[1]
        np.testing.assert_array_equal(frames[:, :, 0], classes[:, ::hop])
    with pytest.raises(DataError, match="use target_length"):
        window_dataset([track], config.receptive_field, target + 1, 3, local_conditioning=True, hop_length=hop)


def test_prepare_computes_and_caches_mel_for_local_conditioning(builtin_folder, tmp_path):
    config = get_preset("tiny", local_conditioning_channels=20, upsample_scales=(4, 16))
    data = DataConfig(n_fft=256)
    prepared = prepare(builtin_folder, config, data, cache_dir=tmp_path / "cache")
    for track in prepared.tracks:
        assert track.mel.shape == (len(track.audio) // 64, 20) and np.isfinite(track.mel).all()
    again = prepare(builtin_folder, config, data, cache_dir=tmp_path / "cache")
    assert again.cache_misses == 0


def test_data_inspect_json(folder, tmp_path, capsys):
    assert main(["data", "inspect", str(folder), "--json", "--preset", "tiny", "--cache-dir", str(tmp_path / "c")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_files"] == 9 and report["num_usable"] == 6 and report["num_skipped"] == 3
    assert report["labels"] == {"cello": 3, "flute": 3}
    assert {"path", "reason"} <= set(report["skipped"][0])
    assert report["formats"] == {"flac": 2, "mp3": 1, "ogg": 1, "wav": 5}
    assert report["total_seconds"] > 5.0


def test_data_inspect_strict_fails_naming_the_file(folder, tmp_path, capsys):
    assert main(["data", "inspect", str(folder), "--strict", "--cache-dir", str(tmp_path / "c")]) == 2
    assert "--strict" in capsys.readouterr().err
