"""`wavenet bench-sound`: the listener's measures it reports, its draws, and one small run end to end."""

import json

import numpy as np
import pytest

from wavenet_tf.apps.bench_sound import (Draw, cents, held_out_primes, markdown_table, parse_draw, pitched, report_rows,
                                    sound_row)
from wavenet_tf.apps.cli import main
from wavenet_tf.quality import voiced_run_seconds

RATE = 8000


def pluck(f0: float, seconds: float, decay: float = 3.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.exp(-decay * t) * np.sin(2 * np.pi * f0 * t)


def test_draws_parse_as_temperature_and_optional_top_k():
    assert parse_draw("0.9") == Draw(0.9, 0) and parse_draw("1.0/3") == Draw(1.0, 3)
    assert Draw(1.0, 3).label == "T 1, top-3" and Draw(0.8).slug == "T0.8"
    for bad in ("hot", "1.0/x", "-1", "1.0/-2", "nan"):
        with pytest.raises(ValueError, match="--draws"):
            parse_draw(bad)


def test_cents_are_a_semitone_per_hundred_and_unknown_without_a_pitch():
    assert cents(220.0, 110.0) == pytest.approx(1200.0) and cents(110.0 * 2 ** (1 / 12), 110.0) == pytest.approx(100.0)
    assert cents(None, 110.0) is None and cents(110.0, None) is None


def test_a_tone_is_pitched_noise_is_not_and_a_quiet_tone_is_not_as_loud_as_its_data():
    tone = sound_row(pluck(220.0, 1.0, decay=0.5), RATE, 220.0)
    assert tone["periodicity"] > 0.9 and tone["f0_error_cents"] < 50 and tone["voiced_seconds"] > 0.8
    assert pitched(tone, tone["rms_dbfs"] + 3.0)
    assert not pitched(tone, tone["rms_dbfs"] + 10.0)  # the right pitch, 10 dB too quiet
    noise = sound_row(0.1 * np.random.default_rng(0).standard_normal(RATE), RATE, 220.0)
    assert noise["voiced_fraction"] < 0.1 and noise["voiced_seconds"] == 0.0
    assert not pitched(noise, noise["rms_dbfs"])


def test_a_continuation_is_voiced_until_its_tone_stops():
    audio = np.concatenate([pluck(196.0, 0.5, decay=0.2), 0.1 * np.random.default_rng(1).standard_normal(RATE // 2)])
    assert 0.4 <= voiced_run_seconds(audio, RATE) <= 0.5


def test_primes_end_at_the_middle_of_each_held_out_file_and_know_what_came_next():
    audio = pluck(330.0, 2.0, decay=0.3)
    (prime,) = held_out_primes([("harp/a.wav", audio)], RATE, receptive_field=256, seconds=0.5)
    assert prime.audio.shape == (256,) and np.array_equal(prime.audio, audio[RATE - 256:RATE])
    assert np.array_equal(prime.continuation, audio[RATE:RATE + 4000])
    assert cents(prime.reference_f0, 330.0) < 50 and prime.name == "harp/a.wav"


def test_bench_sound_refuses_bad_flags_in_one_line(tmp_path, capsys):
    for argv, message in ((["--suites", "piano"], "--suites: 'piano' is not a suite"),
                          (["--draws", "1.0/x"], "--draws '1.0/x'"),
                          (["--suites", "instruments", "--lever", "a:input_noise=0"], "--lever changes the demo"),
                          (["--melody-steps", "0"], "--melody-steps must be >= 1")):
        assert main(["bench-sound", "--out", str(tmp_path / "o"), *argv]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_bench_sound_on_the_melodies_trains_the_demo_recipe_and_a_lever_and_reports_them(tmp_path, capsys):
    out = tmp_path / "sound"
    argv = ["bench-sound", "--out", str(out), "--suites", "melodies", "--melody-steps", "4", "--seeds", "2",
            "--seconds", "0.3", "--draws", "1.0/3,1.0", "--lever", "clean:input_noise=0", "--report",
            str(tmp_path / "r.json")]
    assert main(argv) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert list(report["melodies"]) == ["demo", "clean"] and report["draws"] == ["T 1, top-3", "T 1"]
    for name, result in report["melodies"].items():
        assert result["training"]["steps"] == 4 and result["held_out_bits"]["bits_per_sample"] > 0
        assert result["head"]["units"] > 0 and 0 <= result["head"]["dead"] <= result["head"]["units"]
        assert result["data"]["files"]["periodicity"] > 0.6  # the melodies are pitched
        for label in report["draws"]:
            for start in ("default", "primed"):
                generated = result["generated"][label][start]
                assert generated["mean"]["count"] == 2 and len(generated["streams"]) == 2
                assert 0 <= generated["pitched"] <= 2
    saved = json.loads((out / "runs" / "melodies-clean" / "config.json").read_text())
    assert saved["data"]["input_noise"] == 0 and saved["train"]["epochs"] >= 1
    demo = json.loads((out / "runs" / "melodies-demo" / "config.json").read_text())
    assert demo["data"]["input_noise"] > 0  # the demo's own recipe
    assert (out / "generated" / "melodies-demo" / "primed-T1-top3-seed1.wav").is_file()
    table = (out / "sound.md").read_text()
    assert table == markdown_table(report_rows(report)) and "melodies (clean): T 1, primed start" in table
    assert (out / "spectrograms.png").stat().st_size > 10_000
    assert "melodies (demo): held-out audio" in capsys.readouterr().out


def test_bench_sound_replaces_only_its_own_runs(tmp_path, capsys):
    # --out may be a folder a user owns: a melody run's path that holds something else is refused.
    mine = tmp_path / "o" / "runs" / "melodies-demo"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    assert main(["bench-sound", "--out", str(tmp_path / "o"), "--suites", "melodies", "--melody-steps", "1",
                 "--seeds", "1", "--seconds", "0.1"]) == 2
    assert "is not a run directory" in capsys.readouterr().err and (mine / "notes.txt").read_text() == "keep me"

