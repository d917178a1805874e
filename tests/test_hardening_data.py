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
from tests.test_export import NARROW, make_run
from wavenet_tf.cli import main
from wavenet_tf.presets import get_preset

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
