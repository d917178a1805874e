import json
import subprocess
import sys
from pathlib import Path

import pytest

from wavenet_tf.apps.cli import main


def test_console_script_info_small_json():
    wavenet = Path(sys.executable).with_name("wavenet")
    out = subprocess.run([str(wavenet), "info", "--preset", "small", "--json"],
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["receptive_field"] == 2048
    assert report["num_params"] > 0


@pytest.mark.parametrize("preset, field", [("tiny", 129), ("ibab", 5117)])
def test_info_json(capsys, preset, field):
    assert main(["info", "--preset", preset, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["receptive_field"] == field
    assert report["receptive_field_ms"] == pytest.approx(1000 * field / report["config"]["sample_rate"], abs=1e-3)


def test_info_table_with_overrides(capsys):
    assert main(["info", "--preset", "tiny", "--dilations", "1,2,4", "--residual-channels", "8"]) == 0
    text = capsys.readouterr().out
    assert "receptive_field" in text and "9 samples" in text
    assert "residual_channels             8" in text


def test_info_bad_field_is_a_one_line_error(capsys):
    assert main(["info", "--preset", "tiny", "--kernel-size", "0"]) == 2
    err = capsys.readouterr().err
    assert "kernel_size" in err and "Traceback" not in err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["info", "--help"])
    assert "examples:" in capsys.readouterr().out
