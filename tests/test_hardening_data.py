"""Issue 13, the data side: nothing deleted that the program did not create, evaluation that
respects the model, bundles that refuse tampering by name, and adversarial audio/CLI input.

Each test holds one input from the adversarial pass, so the finding stays fixed.
"""

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from export.bundle import ExportError, export_run
from serving.bundle import BundleError, load_bundle
from tests.helpers import NARROW, make_run
from wavenet_tf.apps.cli import main
from wavenet_tf.core.presets import get_preset

QUIET = dict(log=lambda *_: None)


@pytest.fixture
def run(tmp_path):
    make_run(tmp_path / "run", get_preset("tiny", **NARROW))
    return tmp_path / "run"


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- export never deletes what it did not create -----------------------------------------------

def test_export_refuses_a_run_directory_the_run_itself_and_a_folder_of_other_files(run, tmp_path, capsys):
    other_run = tmp_path / "gc_copy"
    make_run(other_run, get_preset("tiny", **NARROW))
    (other_run / "metrics.csv").write_text("epoch\n1\n")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("keep me")
    (folder / "sub" / "song.wav").write_bytes(b"RIFF")
    before = {p: tree(p) for p in (run, other_run, folder)}

    for out, expected in ((other_run, "is a run directory"), (run, "is (or contains) the run"),
                          (tmp_path, "is (or contains) the run"), (folder, "not empty and not a bundle")):
        assert main(["export", str(run), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert {p: tree(p) for p in before} == before  # not one byte touched
    assert not list(tmp_path.glob(".*export*"))  # refused before any staging folder was made


def test_generate_on_a_run_does_not_suggest_exporting_over_it(run, capsys):
    with pytest.raises(BundleError) as error:
        load_bundle(run)
    message = str(error.value)
    assert f"--out {run}-bundle" in message and f"--out {run}`" not in message


@pytest.mark.slow
def test_export_creates_parents_with_ordinary_permissions_and_replaces_only_a_bundle(run, tmp_path, capsys):
    out = tmp_path / "bundles" / "nested" / "tiny"  # parents do not exist
    assert main(["export", str(run), "--out", str(out), "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "passed every parity check" in printed.strip().splitlines()[-1]
    assert "-export-" not in printed  # the staging folder is never named
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask  # not mkdtemp's 0700
    load_bundle(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]  # nothing left beside it

    (out / "notes.txt").write_text("mine")  # a bundle that holds something export did not write
    with pytest.raises(ExportError, match="notes.txt"):
        export_run(run, out, **QUIET)
    (out / "notes.txt").unlink()
    lines = []
    export_run(run, out, log=lines.append)  # a plain bundle is replaced, and it says so
    assert any("replaced the previous bundle" in line for line in lines)
    load_bundle(out)


def test_export_to_an_unwritable_place_fails_before_the_work(run, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", str(run), "--out", str(blocker / "bundle")]) == 2
    err = capsys.readouterr().err
    assert "cannot create a folder" in err and "Traceback" not in err


def test_export_refuses_an_unsupported_opset_and_non_finite_weights(run, tmp_path, capsys):
    assert main(["export", str(run), "--out", str(tmp_path / "b"), "--opset", "1"]) == 2
    assert "--opset 1 is not supported" in capsys.readouterr().err
    import keras

    model = keras.saving.load_model(run / "model_best.keras")
    model.weights[0].assign(np.full(model.weights[0].shape, np.nan, np.float32))
    model.save(run / "model_best.keras")
    assert main(["export", str(run), "--out", str(tmp_path / "b")]) == 2
    assert "hold NaN or Inf" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_parity_failure_is_one_line_not_an_assertion_traceback(run, tmp_path, capsys, monkeypatch):
    import export.verify as verify

    def fail(*args, **kwargs):
        raise verify.ParityError("step.onnx: logits differ by 1.000e+00 > 0.0001")

    monkeypatch.setattr(verify, "verify_bundle", fail)
    assert main(["export", str(run), "--out", str(tmp_path / "b"), "--verify"]) == 2
    err = capsys.readouterr().err
    assert "--verify failed" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b-*"))


# --- training never overwrites a run it cannot resume ------------------------------------------

from tests.helpers import read_metrics, small_run  # noqa: E402
from wavenet_tf.core.files import RunError  # noqa: E402
from wavenet_tf.run_dir import RunLock  # noqa: E402


@pytest.mark.slow
def test_resume_without_state_json_is_refused_and_a_lock_stops_a_second_training(builtin_folder, tmp_path, capsys):
    run, cache = tmp_path / "run", tmp_path / "cache"
    assert main(small_run(builtin_folder, run, cache, "--epochs", "1", "--steps-per-epoch", "2",
                          "--audio-every", "0")) == 0
    out = capsys.readouterr().out
    # Not a terminal: one plain line per epoch, no progress-bar control codes.
    assert "\x1b" not in out and "\r" not in out and "\x08" not in out
    assert [line for line in out.splitlines() if line.startswith("epoch ")][0].startswith("epoch 1/1 - step 2 - loss")
    record = json.loads((run / "config.json").read_text())
    assert os.path.isabs(record["data_source"])  # --resume works from any directory

    # 1. No commit point but checkpoints: refused, nothing overwritten.
    state = (run / "state.json").read_bytes()
    (run / "state.json").unlink()
    before = tree(run)
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err
    assert "state.json (the commit point) is missing" in err and "Restore state.json" in err
    assert tree(run) == before
    (run / "state.json").write_bytes(state)

    # 2. A structurally wrong state.json is named in one line.
    (run / "state.json").write_text(json.dumps({"epoch": "one", "step": 2, "history": []}))
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err
    assert "state.json: damaged (epoch" in err and "Traceback" not in err
    (run / "state.json").write_bytes(state)

    assert tree(run) == {**before, "state.json": state}  # nothing rewritten by the refused resume
    before = tree(run)

    # 3. A live lock refuses a second training of the same run.
    with RunLock(run):
        assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--cache-dir", str(cache)]) == 2
        err = capsys.readouterr().err
        assert f"being trained by pid {os.getpid()}" in err
    assert tree(run) == before

    # 4. A stale lock file (its process gone) is no obstacle; another --steps-per-epoch
    #    continues the step counter instead of moving it backwards.
    (run / ".lock").write_text("999999\n")
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--steps-per-epoch", "1",
                 "--cache-dir", str(cache)]) == 0
    final = json.loads((run / "state.json").read_text())
    assert (final["epoch"], final["step"]) == (2, 3)
    assert [int(r["step"]) for r in read_metrics(run)] == [2, 3]
    assert not (run / ".lock").exists()


def test_config_json_with_the_wrong_structure_is_one_line(run, capsys):
    for broken in ([1, 2], {"format_version": 1, "model": "tiny", "data": {}, "train": {}},
                   {"format_version": 1, "model": {"residual_channels": "8"}, "data": {}, "train": {}},
                   {"format_version": 1, "model": {}, "data": {"fmin": None}, "train": {}}):
        (run / "config.json").write_text(json.dumps(broken))
        assert main(["export", str(run), "--out", str(run.parent / "b")]) == 2
        err = capsys.readouterr().err
        assert "config.json" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_a_folder_with_leftovers_but_no_config_is_not_trained_over(builtin_folder, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "model_best.keras").write_bytes(b"weights")
    assert main(small_run(builtin_folder, run, tmp_path / "c", "--epochs", "1")) == 2
    assert "but no config.json" in capsys.readouterr().err
    assert (run / "model_best.keras").read_bytes() == b"weights"


@pytest.mark.slow
def test_a_diverging_training_stops_and_saves_no_nan_model(builtin_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(small_run(builtin_folder, run, tmp_path / "c", "--epochs", "2", "--steps-per-epoch", "4",
                          "--audio-every", "0", "--learning-rate", "1e30")) == 2
    err = capsys.readouterr().err
    assert "became nan" in err.lower() or "non-finite" in err or "NaN or Inf" in err, err
    assert "Lower --learning-rate" in err
    assert not (run / "model_best.keras").exists() and not (run / "state.json").exists()


def test_global_cond_on_one_label_needs_allow_one_label(tmp_path, capsys):
    import soundfile as sf

    from wavenet_tf.builtin_data import plucked_melody

    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(2):
        sf.write(folder / f"m{i}.wav", plucked_melody(1.0, 8000, seed=i), 8000)
    assert main(small_run(folder, tmp_path / "run", tmp_path / "c", "--global-cond", "--epochs", "1")) == 2
    assert "--allow-one-label" in capsys.readouterr().err
    assert not (tmp_path / "run" / "config.json").exists()


def test_resuming_on_relabelled_data_keeps_the_run_label_ids(builtin_folder, tmp_path):
    from wavenet_tf.core.config import DataConfig
    from wavenet_tf.data import DataError, prepare

    only_harp = tmp_path / "harp_only"
    (only_harp / "harp").mkdir(parents=True)
    for path in (builtin_folder / "harp").iterdir():
        (only_harp / "harp" / path.name).write_bytes(path.read_bytes())
    tiny = get_preset("tiny")
    prepared = prepare(only_harp, tiny, DataConfig(), cache_dir=tmp_path / "c", labels=["bass", "harp"])
    assert {t.label_id for t in prepared.tracks} == {1}  # harp stays 1, not renumbered to 0
    (only_harp / "flute").mkdir()
    (only_harp / "flute" / "x.wav").write_bytes((only_harp / "harp" / path.name).read_bytes())
    with pytest.raises(DataError, match=r"\['flute'\].*not among the model's labels \['bass', 'harp'\]"):
        prepare(only_harp, tiny, DataConfig(), cache_dir=tmp_path / "c", labels=["bass", "harp"])


def test_demo_does_not_delete_a_run_folder_it_did_not_create(tmp_path):
    from wavenet_tf.apps.demo import DEMO_MARKER, claim_folder

    out = tmp_path / "mine"
    (out / "run").mkdir(parents=True)
    (out / "run" / "model_best.keras").write_bytes(b"precious")
    with pytest.raises(ValueError, match="holds files the demo did not write"):
        claim_folder(out)
    assert main(["demo", "--out", str(out), "--steps", "4"]) == 2
    assert (out / "run" / "model_best.keras").read_bytes() == b"precious"
    fresh = tmp_path / "fresh"
    claim_folder(fresh)
    claim_folder(fresh)  # the demo's own folder is reused
    assert (fresh / DEMO_MARKER).is_file()


# --- evaluation measures the model it is given -------------------------------------------------

def copy_files(source: Path, dest: Path, count: int = 1) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.wav"))[:count]:
        (dest / path.name).write_bytes(path.read_bytes())
    return dest


def evaluate_json(capsys, *args) -> dict:
    capsys.readouterr()
    code = main(["evaluate", *map(str, args), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_evaluate_maps_labels_through_the_model_table(speaker_bundle, builtin_folder, tmp_path, capsys):
    cache = ("--cache-dir", tmp_path / "c")
    harp = copy_files(builtin_folder / "harp", tmp_path / "labelled" / "harp")
    plain = copy_files(builtin_folder / "harp", tmp_path / "plain")
    scores = {}
    scores["harp"] = evaluate_json(capsys, speaker_bundle, harp.parent, "--engine", "onnx", *cache)["bits_per_sample"]
    for speaker in ("harp", "1", "bass"):
        scores[speaker + "!"] = evaluate_json(capsys, speaker_bundle, plain, "--engine", "onnx", "--speaker", speaker,
                                              *cache)["bits_per_sample"]
    # The label "harp" is the model's id 1, whatever other labels the evaluated data has.
    assert scores["harp"] == scores["harp!"] == scores["1!"] != scores["bass!"]

    copy_files(builtin_folder / "harp", tmp_path / "labelled" / "nobody")
    assert main(["evaluate", str(speaker_bundle), str(tmp_path / "labelled"), "--engine", "onnx", *map(str, cache)]) == 2
    err = capsys.readouterr().err
    assert "['nobody']" in err and "['bass', 'harp']" in err and "Traceback" not in err
    assert main(["evaluate", str(speaker_bundle), str(plain), "--engine", "onnx", *map(str, cache)]) == 2
    assert "--speaker" in capsys.readouterr().err  # unlabelled data for a conditioned model
    assert main(["evaluate", str(speaker_bundle), str(plain), "--engine", "onnx", "--speaker", "cello",
                 *map(str, cache)]) == 2
    assert "neither a label" in capsys.readouterr().err


@pytest.mark.slow
def test_a_bundle_cleans_audio_as_its_run_did(tmp_path, builtin_folder, capsys, caplog):
    import logging

    import soundfile as sf

    from serving.card_audio import cleaning_settings, load_for_bundle
    from wavenet_tf.core.config import DataConfig, TrainConfig
    from wavenet_tf.run_dir import write_run_config

    run = tmp_path / "run"
    config = get_preset("tiny", **NARROW)
    make_run(run, config)
    data = DataConfig(normalize=True, remove_dc=False, trim_top_db=30.0)
    write_run_config(run, config, data, TrainConfig(), "none")  # a run that cleaned its audio otherwise
    bundle = tmp_path / "bundle"
    export_run(run, bundle, **QUIET)
    card = load_bundle(bundle).card
    assert cleaning_settings(card) == {"trim_top_db": 30.0, "trim_frame_length": 512, "remove_dc": False,
                                       "normalize": True}
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    audio, rate = sf.read(sorted((builtin_folder / "harp").glob("*.wav"))[0], dtype="float32")
    sf.write(quiet / "quiet.wav", 0.2 * audio, rate)
    assert np.abs(load_for_bundle(card, quiet / "quiet.wav")).max() == pytest.approx(0.99, abs=1e-3)  # --prime

    cache = ("--cache-dir", tmp_path / "c")
    with caplog.at_level(logging.INFO, logger="wavenet_tf"):
        keras_bits = evaluate_json(capsys, run, quiet, *cache)["bits_per_sample"]
    assert "1 file to evaluate" in caplog.text and "train /" not in caplog.text
    onnx_bits = evaluate_json(capsys, bundle, quiet, "--engine", "onnx", *cache)["bits_per_sample"]
    assert onnx_bits == pytest.approx(keras_bits, abs=1e-4)  # the bundle path normalizes too


def test_data_inspect_of_one_file_counts_it_once(builtin_folder, tmp_path, capsys):
    one = sorted((builtin_folder / "harp").glob("*.wav"))[0]
    assert main(["data", "inspect", str(one), "--preset", "tiny", "--json", "--cache-dir", str(tmp_path / "c")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_files"] == summary["num_usable"] == 1


def test_evaluate_run_leaves_no_temporary_manifest(run, builtin_folder, tmp_path, capsys, monkeypatch):
    import tempfile

    from wavenet_tf.core.config import DataConfig
    from wavenet_tf.data import prepare, write_dataset_manifest

    write_dataset_manifest(prepare(builtin_folder, get_preset("tiny"), DataConfig(val_split=0.5),
                                   cache_dir=tmp_path / "c"), run / "dataset.json")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert evaluate_json(capsys, run, "--cache-dir", tmp_path / "c")["num_files"] == 2
    assert list(scratch.iterdir()) == []


# --- tampered bundles are refused by name ------------------------------------------------------

import copy as _copy  # noqa: E402
import shutil  # noqa: E402


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plain-bundle")
    make_run(folder / "run", get_preset("tiny", **NARROW))
    export_run(folder / "run", folder / "bundle", **QUIET)
    return folder / "bundle"


def _tampered_cards(card: dict):
    """(label, card) pairs: every key removed, and wrong types and bad values in each place."""
    bad_values = [None, "x", -1, 0, 1.5, [], {}, True, [1, "a"], 10**12]
    for key in card:
        edited = _copy.deepcopy(card)
        del edited[key]
        yield f"without {key}", edited
    for key in ("sample_rate", "quantization_channels", "receptive_field", "dilations", "kernel_size",
                "residual_channels", "gate_channels", "skip_channels", "initial_kernel_size", "model_config",
                "conditioning", "step", "graphs", "files"):
        for value in bad_values:
            edited = _copy.deepcopy(card)
            edited[key] = value
            yield f"{key}={value!r}", edited
    for path, value in ((("conditioning", "global"), {"classes": 2}), (("conditioning", "local"), {"n_mels": 3}),
                        (("step", "delays"), [[1]]), (("step", "residual_offsets"), [[0.0]]),
                        (("step", "residual_offsets"), "x"), (("model_config", "residual_channels"), 16),
                        (("model_config", "dilations"), "1,2"), (("graphs", "step.onnx"), {"inputs": 1}),
                        (("data", "normalize"), "yes"), (("data", "trim_top_db"), -5)):
        edited = _copy.deepcopy(card)
        edited[path[0]][path[1]] = value
        yield f"{'.'.join(path)}={value!r}", edited


def test_tampered_cards_are_refused_by_name_never_a_traceback(plain_bundle, tmp_path, capsys):
    card = json.loads((plain_bundle / "model.json").read_text())
    work = tmp_path / "b"
    shutil.copytree(plain_bundle, work)
    outcomes = {}
    for label, edited in _tampered_cards(card):
        (work / "model.json").write_text(json.dumps(edited))
        try:
            code = main(["generate", str(work), "--seconds", "0.005", "--out", str(tmp_path / "x.wav"), "--quiet"])
        except Exception as error:  # what the finding was: a traceback
            pytest.fail(f"{label}: {type(error).__name__}: {error}")
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err, (label, err)
        if code == 2:
            assert "model.json" in err or "--" in err, (label, err)
        outcomes[label] = code
    assert outcomes["without files"] == 2 and outcomes["step.delays=[[1]]"] == 2
    assert sum(code == 2 for code in outcomes.values()) > 0.8 * len(outcomes)


# Only excerpts/NAME, one level deep, may name a folder (the bundle's excerpts of its training audio).
@pytest.mark.parametrize("name", ["/usr", "../x", "..", "a/b", "excerpts/../model.json", "excerpts/a/b.wav",
                                  "other/x.wav", "excerpts/", "/excerpts/x.wav"])
def test_card_file_entries_stay_inside_the_bundle(plain_bundle, tmp_path, name):
    work = tmp_path / "b"
    shutil.copytree(plain_bundle, work)
    card = json.loads((work / "model.json").read_text())
    card["files"][name] = "0" * 64
    (work / "model.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="is not a file name inside the bundle"):
        load_bundle(work)


def test_a_step_graph_of_another_width_is_refused_by_name(plain_bundle, tmp_path):
    from wavenet_tf.core.files import file_digest

    other = tmp_path / "other"
    make_run(other / "run", get_preset("tiny", **dict(NARROW, residual_channels=4)))
    export_run(other / "run", other / "bundle", **QUIET)
    work = tmp_path / "b"
    shutil.copytree(plain_bundle, work)
    shutil.copy(other / "bundle" / "step.onnx", work / "step.onnx")
    card = json.loads((work / "model.json").read_text())
    card["files"]["step.onnx"] = file_digest(work / "step.onnx")  # even with a matching checksum
    (work / "model.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match=r"step\.onnx: input 'past' has shape .*model of another size"):
        load_bundle(work)


# --- adversarial audio and data sources --------------------------------------------------------

import struct  # noqa: E402

import soundfile as sf  # noqa: E402

from wavenet_tf.core.audio import AudioError, load_audio, read_audio  # noqa: E402
from wavenet_tf.core.config import DataConfig  # noqa: E402
from wavenet_tf.data import discover, prepare  # noqa: E402

TINY = get_preset("tiny")


def tone(seconds: float = 0.5, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


def pcm16_wav(samples: np.ndarray, rate: int, extra_chunk: bytes = b"", data_size: int | None = None,
              riff_size: int | None = None) -> bytes:
    pcm = (samples * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunk
    body += b"data" + struct.pack("<I", len(pcm) if data_size is None else data_size) + pcm
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def decoded(path: Path):
    """What the decoder makes of ``path``: the samples, or the AudioError's reason."""
    try:
        return read_audio(path)[0]
    except AudioError as error:
        return error.reason


def test_huge_float_samples_are_refused_by_name_and_skipped_in_a_dataset(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    huge = tone()
    huge[100] = 1e36
    sf.write(folder / "huge.wav", huge, 8000, subtype="FLOAT")
    sf.write(folder / "good.wav", tone(), 8000)
    with pytest.raises(AudioError, match=r"huge\.wav: samples reach 1e\+36"):
        load_audio(folder / "huge.wav", 8000)
    prepared = prepare(folder, TINY, DataConfig(val_split=0.0), cache_dir=tmp_path / "c")
    assert [Path(t.path).name for t in prepared.tracks] == ["good.wav"]
    assert [Path(s.path).name for s in prepared.skipped] == ["huge.wav"]
    assert main(["data", "inspect", str(folder), "--preset", "tiny", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "huge.wav: samples reach" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["--trim-top-db", "--fmin", "--fmax"])
def test_nan_data_flags_are_refused(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["data", "inspect", str(tmp_path), flag, "nan"])
    assert stop.value.code == 2 and "finite number" in capsys.readouterr().err
    with pytest.raises(ValueError, match="must be a finite number"):
        DataConfig(**{flag[2:].replace("-", "_"): float("nan")})


def test_non_finite_training_numbers_are_refused(capsys):
    from wavenet_tf.core.config import TrainConfig

    with pytest.raises(ValueError, match="audio_seconds must be a finite number"):
        TrainConfig(audio_seconds=float("inf"))
    with pytest.raises(SystemExit):
        main(["train", "x", "--out", "y", "--audio-seconds", "inf"])
    assert "finite number" in capsys.readouterr().err


def test_a_glob_does_not_follow_symlink_loops(tmp_path):
    root = tmp_path / "a"
    (root / "b").mkdir(parents=True)
    for name in ("one.wav", "b/two.wav"):
        sf.write(root / name, tone(0.1), 8000)
    (root / "loop").symlink_to(root)  # two loops: glob.glob(recursive=True) never finished
    (root / "b" / "back").symlink_to(root)
    found = discover(f"{root}/**/*.wav")
    assert sorted(f.path.name for f in found) == ["one.wav", "two.wav"]
    assert sorted(f.path.name for f in discover(f"{root}/*.wav")) == ["one.wav"]


def test_a_file_name_with_glob_characters_is_a_file(tmp_path):
    sf.write(tmp_path / "take[1].wav", tone(0.1), 8000)
    sf.write(tmp_path / "take1.wav", tone(0.1), 8000)
    assert [f.path.name for f in discover(tmp_path / "take[1].wav")] == ["take[1].wav"]


def test_manifests_with_duplicates_a_bom_or_latin1_names(tmp_path):
    name = os.fsdecode(b"caf\xe9.wav")  # a latin-1 name, as the file system holds it
    sf.write(os.fsencode(str(tmp_path / name)), tone(), 8000)
    sf.write(tmp_path / "b.wav", tone(), 8000)
    (tmp_path / "dup.csv").write_text("path,label\nb.wav,x\nb.wav,x\n" + "./b.wav,x\n")
    assert [f.path.name for f in discover(tmp_path / "dup.csv")] == ["b.wav"]
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfpath,label\nb.wav,x\n")
    assert [f.label for f in discover(tmp_path / "bom.csv")] == ["x"]
    (tmp_path / "latin1.csv").write_bytes(b"path,label\ncaf\xe9.wav,caf\xe9\nb.wav,y\n")
    prepared = prepare(tmp_path / "latin1.csv", TINY, DataConfig(val_split=0.0), cache_dir=tmp_path / "c")
    assert len(prepared.tracks) == 2 and not prepared.skipped  # the non-UTF-8 name is read, not "not readable"


def test_odd_chunks_truncation_and_streaming_sizes_decode_or_are_named(tmp_path):
    audio = tone(0.25)
    expected = np.round(audio * 32767) / 32768
    odd = tmp_path / "odd.wav"  # a 3-byte LIST chunk plus its pad byte: valid RIFF
    odd.write_bytes(pcm16_wav(audio, 8000, extra_chunk=b"LIST" + struct.pack("<I", 3) + b"abc\0"))
    result = decoded(odd)
    assert isinstance(result, np.ndarray) and np.allclose(result[:, 0], expected, atol=1 / 32768)

    streaming = tmp_path / "stream.wav"  # sizes a streaming writer leaves unknown
    streaming.write_bytes(pcm16_wav(audio, 8000, data_size=0xFFFFFFFF, riff_size=0xFFFFFFFF))
    result = decoded(streaming)
    assert isinstance(result, np.ndarray) and len(result) == len(audio)

    for fmt in ("WAVEX", "RF64"):
        path = tmp_path / f"{fmt}.wav"
        sf.write(path, audio, 8000, format=fmt, subtype="PCM_16")
        path.write_bytes(path.read_bytes()[:-1000])
        assert "truncated" in str(decoded(path)), fmt


def test_decoding_memory_is_bounded(tmp_path):
    slow = tmp_path / "one_hz.wav"
    slow.write_bytes(pcm16_wav(np.zeros(10000, np.float32) + 0.1, 1))
    with pytest.raises(AudioError, match="declares 1 Hz"):
        load_audio(slow, 16000)
    sf.write(tmp_path / "long.wav", tone(2.0), 8000)
    with pytest.raises(AudioError, match="over the limit of 1 s.*--max-seconds"):
        load_audio(tmp_path / "long.wav", 8000, max_seconds=1.0)
    sf.write(tmp_path / "short.wav", tone(0.5), 8000)
    prepared = prepare(tmp_path, TINY, DataConfig(val_split=0.0, max_seconds=1.0), cache_dir=tmp_path / "c")
    assert {Path(s.path).name for s in prepared.skipped} == {"one_hz.wav", "long.wav"}


def test_a_damaged_cache_entry_is_a_miss(tmp_path):
    sf.write(tmp_path / "a.wav", tone(), 8000)
    cache = tmp_path / "cache"
    prepare(tmp_path / "a.wav", TINY, DataConfig(val_split=0.0), cache_dir=cache)
    (array_path,) = cache.glob("*.npy")
    np.save(array_path, np.full(np.load(array_path).shape, np.nan, np.float32))
    again = prepare(tmp_path / "a.wav", TINY, DataConfig(val_split=0.0), cache_dir=cache)
    assert again.cache_misses == 1 and np.isfinite(np.asarray(again.tracks[0].audio)).all()
    (sidecar,) = cache.glob("*.json")
    sidecar.write_text(json.dumps({"path": 1}))
    again = prepare(tmp_path / "a.wav", TINY, DataConfig(val_split=0.0), cache_dir=cache)
    assert len(again.tracks) == 1 and again.tracks[0].info.seconds > 0


def test_bench_data_with_zero_steps_is_refused_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["bench-data", "--train-steps", "0"]) == 2
    assert "--train-steps must be at least 1" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --- help texts --------------------------------------------------------------------------------

def test_field_flags_have_one_default_and_a_real_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    import re

    assert "(default: None)" not in text and not re.search(r"\(default: [^)]*\) \(default", text)
    assert "--strategy STR default (one device), mirrored (all local devices) or multiworker" in text
    assert "--epochs INT epochs in total" in text and "(default: 20)" in text
    with pytest.raises(SystemExit):
        main(["data", "inspect", "--help"])
    text = capsys.readouterr().out
    assert "--sample-rate" in text and "--residual-channels" not in text and "--dilations" not in text


@pytest.mark.slow
def test_bench_data_leaves_no_decoded_copy_behind(builtin_folder, tmp_path, monkeypatch, capsys):
    import tempfile

    from wavenet_tf.apps.bench_data import run_bench_data
    from wavenet_tf.core.config import DataConfig

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    report = run_bench_data(builtin_folder, preset="tiny", data=DataConfig(batch_size=2, target_length=256),
                            batches=1, train_steps=1)
    assert report["pipeline_windows_per_sec"] > 0
    # Each run used to leave its decoded cache there (TensorFlow's own autograph files are not ours).
    assert list(scratch.glob("wavenet-*")) == []


@pytest.mark.parametrize("section, field, value", [
    ("model", "use_bias", "no"), ("model", "global_conditioning_classes", True), ("model", "dilations", [1, "2"]),
    ("data", "normalize", "false"), ("data", "remove_dc", None), ("data", "seed", "x"),
    ("train", "jit_compile", 1), ("train", "audio_every", 1e308),
])
def test_config_json_values_of_the_wrong_type_are_named(run, section, field, value):
    """A string "false" used to turn normalization on (truthy); 1e308 steps reached TensorFlow."""
    from wavenet_tf.core.files import RunError
    from wavenet_tf.run_dir import load_run_config

    record = json.loads((run / "config.json").read_text())
    record[section][field] = value
    (run / "config.json").write_text(json.dumps(record))
    with pytest.raises(RunError, match=rf"config\.json: \"{section}\" is not a valid \w+Config \(\w+Config\.{field} must be"):
        load_run_config(run)


def test_the_mel_from_length_error_speaks_of_a_prime_only_when_there_is_one(tmp_path, capsys):
    config = get_preset("tiny", **NARROW, local_conditioning_channels=8, upsample_scales=(4, 8))
    make_run(tmp_path / "run", config)
    export_run(tmp_path / "run", tmp_path / "bundle", **QUIET)
    speech = tmp_path / "speech.wav"
    sf.write(speech, tone(1.0), 8000)
    assert main(["generate", str(tmp_path / "bundle"), "--seconds", "5", "--mel-from", str(speech),
                 "--out", str(tmp_path / "w.wav"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "goes past the end of --mel-from's frames" in err and " s left)." in err and "prime" not in err, err
