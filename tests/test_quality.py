"""The quality benchmark's measures on signals whose answer is known, and its data generator. No TensorFlow."""

import shutil

import numpy as np
import pytest

from wavenet_tf.core.mu_law import mu_law_decode, mu_law_encode
from tests.tf_free import run_without_tensorflow
from wavenet_tf import quality_data
from wavenet_tf.core.bits import unigram_bits
from wavenet_tf.quality import (
    _log_laplace_mass, class_edges, compare_to_source, listener_measures, lpc_bits,
)

RATE = 16000


def sine(freq=220.0, seconds=1.0, amplitude=0.5, rate=RATE):
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


def white_noise(seconds=1.0, sigma=0.2, seed=0):
    return np.clip(np.random.default_rng(seed).normal(0.0, sigma, int(seconds * RATE)), -1.0, 1.0)


# --- listener measures ------------------------------------------------------------------------

def test_a_sine_is_voiced_at_its_frequency_with_a_flat_level():
    m = listener_measures(sine(220.0), RATE)
    assert m["voiced_fraction"] == 1.0
    assert m["periodicity"] > 0.99
    assert abs(m["median_f0_hz"] - 220.0) < 1.0
    assert m["rms_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    assert m["near_silent_fraction"] == 0.0
    assert m["spectral_flatness"] < 0.01


@pytest.mark.parametrize("freq", [80.0, 440.0, 900.0])
def test_f0_is_found_across_the_search_range(freq):
    assert abs(listener_measures(sine(freq), RATE)["median_f0_hz"] / freq - 1.0) < 0.01


def test_white_noise_is_flat_and_unvoiced():
    m = listener_measures(white_noise(2.0), RATE)
    assert 0.53 < m["spectral_flatness"] < 0.59  # exp(-Euler's gamma) = 0.5615 for white noise
    assert m["voiced_fraction"] == 0.0
    assert m["periodicity"] < 0.3
    assert m["median_f0_hz"] is None


def test_silence_is_all_near_silent_frames():
    m = listener_measures(np.zeros(RATE), RATE)
    assert m["near_silent_fraction"] == 1.0
    assert m["voiced_fraction"] == 0.0
    assert m["rms_dbfs"] == -120.0
    assert m["periodicity"] is None and m["spectral_flatness"] is None


def test_a_quiet_tone_is_near_silent_and_not_voiced():
    m = listener_measures(sine(220.0, amplitude=10 ** (-60 / 20)), RATE)  # -63 dBFS RMS
    assert m["near_silent_fraction"] == 1.0
    assert m["voiced_fraction"] == 0.0


def test_near_silence_has_one_definition_for_the_bench_the_page_and_the_cli():
    # The quality bench counted frames below −50 dBFS over 64 ms, the page and `generate`'s
    # note below −45 over 20 ms: a tone at −47 dBFS was audible to one and near-silent to the other.
    from serving.excerpts import level
    from wavenet_tf.core.level import NEAR_SILENT_DBFS

    for dbfs in (NEAR_SILENT_DBFS - 2, NEAR_SILENT_DBFS + 2):
        tone = sine(220.0, amplitude=np.sqrt(2) * 10 ** (dbfs / 20))
        assert listener_measures(tone, RATE)["near_silent_fraction"] == level(tone, RATE)["near_silent_fraction"]
    gaps = np.concatenate([sine(220.0, seconds=0.3), np.zeros(4321), sine(220.0, seconds=0.2), np.zeros(999)])
    assert listener_measures(gaps, RATE)["near_silent_fraction"] == pytest.approx(
        level(gaps, RATE)["near_silent_fraction"], abs=1e-3)


def test_half_silence_counts_half_the_frames():
    audio = np.concatenate([sine(220.0, seconds=1.0), np.zeros(RATE)])
    m = listener_measures(audio, RATE)
    assert 0.4 < m["near_silent_fraction"] < 0.6
    assert 0.4 < m["voiced_fraction"] < 0.6


def test_compare_to_source_follows_the_envelope_and_measures_f0_error_in_cents():
    envelope = np.repeat([0.5, 0.05, 0.3, 0.01], RATE // 2)
    source = sine(220.0, seconds=2.0) * envelope
    same = compare_to_source(source, source, RATE)
    assert same["envelope_correlation"] == pytest.approx(1.0)
    assert same["f0_error_cents"] == pytest.approx(0.0, abs=1e-6)
    assert same["voiced_fraction"] == same["source_voiced_fraction"] > 0.5
    shifted = compare_to_source(sine(220.0 * 2 ** (2 / 12), seconds=2.0) * envelope, source, RATE)  # two semitones up
    assert shifted["f0_error_cents"] == pytest.approx(200.0, abs=5.0)
    noise = compare_to_source(white_noise(2.0) * envelope, source, RATE)
    assert noise["envelope_correlation"] > 0.9  # the level follows even though nothing is voiced
    assert noise["voiced_fraction"] == 0.0 and noise["f0_error_cents"] is None
    flat = compare_to_source(white_noise(2.0, seed=1) * 0.3, source, RATE)
    assert abs(flat["envelope_correlation"]) < 0.5


# --- the linear-prediction baseline ---------------------------------------------------------

def test_class_edges_hold_each_class_and_tile_the_line():
    lo, hi = class_edges(256)
    centres = mu_law_decode(np.arange(256)).astype(np.float64)
    assert np.all(lo < centres) and np.all(centres < hi)
    assert np.array_equal(hi[:-1], lo[1:])
    assert lo[0] == -np.inf and hi[-1] == np.inf
    # Just inside each finite edge, the encoder picks the class on that side.
    inside_lo, inside_hi = lo[1:] + 1e-7, hi[:-1] - 1e-7
    assert np.array_equal(mu_law_encode(inside_lo), np.arange(1, 256))
    assert np.array_equal(mu_law_encode(inside_hi), np.arange(0, 255))


@pytest.mark.parametrize("mean,scale", [(0.0, 1e-3), (0.3, 0.02), (-0.97, 0.5), (0.999, 1e-5), (2.0, 0.1)])
def test_the_discretized_laplace_sums_to_one_over_the_classes(mean, scale):
    lo, hi = class_edges(256)
    mass = np.exp(_log_laplace_mass(lo, hi, np.full(256, mean), np.full(256, scale)))
    assert mass.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(mass >= 0)


def test_lpc_beats_unigram_on_a_sine_and_not_on_white_noise():
    tone = mu_law_encode(sine(220.0, seconds=2.0))
    noise = mu_law_encode(white_noise(2.0))
    start = 2048
    assert lpc_bits(tone, start=start).mean() < unigram_bits(tone[start:]) - 3.0
    assert lpc_bits(noise, start=start).mean() > unigram_bits(noise[start:])


def test_lpc_scores_the_targets_from_start_and_is_causal():
    classes = mu_law_encode(sine(330.0, seconds=1.0) + 0.01 * white_noise(1.0))
    bits = lpc_bits(classes, start=2048)
    assert bits.shape == (len(classes) - 2048,)
    changed = classes.copy()
    changed[10000:] = 255 - changed[10000:]  # the future changes; the past's bits may not
    np.testing.assert_array_equal(lpc_bits(changed, start=2048)[: 10000 - 2048], bits[: 10000 - 2048])
    assert lpc_bits(classes[:100], start=2048).size == 0


def test_lpc_on_digital_silence_costs_almost_nothing_and_never_more_than_the_floor():
    assert lpc_bits(np.full(8000, 128), start=1024).mean() < 0.01
    jumps = np.tile([0, 255], 4000)  # a predictor's nightmare: the cost stays bounded
    assert lpc_bits(jumps, start=1024).max() <= np.log2(256 / 1e-4) + 1e-9


def test_the_measures_import_no_tensorflow():
    result = run_without_tensorflow(
        "import numpy as np\n"
        "from wavenet_tf.quality import listener_measures, lpc_bits\n"
        "x = 0.5 * np.sin(np.arange(16000) * 0.1)\n"
        "print(listener_measures(x, 16000)['voiced_fraction'])\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.0"


# --- the data generator ---------------------------------------------------------------------

def test_a_missing_tool_is_one_line_naming_the_make_target(monkeypatch):
    monkeypatch.setattr(quality_data.shutil, "which", lambda name: None if name == "fluidsynth" else "/usr/bin/" + name)
    with pytest.raises(quality_data.QualityDataError, match=r"fluidsynth not found.*make quality-deps"):
        quality_data.check_tools()


def test_a_missing_soundfont_names_the_make_target(monkeypatch, tmp_path):
    monkeypatch.setattr(quality_data.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(quality_data, "SOUNDFONT", tmp_path / "absent.sf2")
    with pytest.raises(quality_data.QualityDataError, match=r"absent\.sf2 not found.*make quality-deps"):
        quality_data.check_tools()


def test_the_midi_writer_keeps_times_and_ends_at_the_excerpt():
    notes = [quality_data.Note(0.5, 1.5, 60, 90, 0), quality_data.Note(1.0, 9.0, 64, 80, 1)]
    part = quality_data.excerpt(notes, start=1.0, seconds=2.0)
    assert part == [quality_data.Note(0.0, 0.5, 60, 90, 0), quality_data.Note(0.0, 2.0, 64, 80, 1)]
    midi = quality_data.midi_bytes(part, program=40, seconds=2.0)
    assert midi[:4] == b"MThd" and b"\xc0\x28" in midi and b"\xc1\x28" in midi  # program 40 on both channels
    assert midi.endswith(quality_data._varlen(0) + b"\xff\x2f\x00")  # the last note-off is at 2 s: end there
    assert quality_data._varlen(200) == b"\x81\x48"


needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not quality_data.SOUNDFONT.is_file(),
    reason="fluidsynth and fluid-soundfont-gm are not installed (make quality-deps)")


@needs_fluidsynth
def test_fluidsynth_renders_the_same_samples_twice(tmp_path):
    notes = [quality_data.Note(0.0, 0.4, 69, 100, 0), quality_data.Note(0.3, 0.9, 72, 90, 1)]
    midi = quality_data.midi_bytes(notes, program=0, seconds=1.0)
    first = quality_data._fade_out(quality_data.render_midi(midi, 0.6, tmp_path), 1.0)
    second = quality_data._fade_out(quality_data.render_midi(midi, 0.6, tmp_path), 1.0)
    np.testing.assert_array_equal(first, second)
    assert len(first) == int(1.5 * RATE)
    m = listener_measures(first[: RATE // 3], RATE)  # A4 alone on the piano
    assert m["rms_dbfs"] > -40 and abs(m["median_f0_hz"] - 440.0) < 5.0


# --- the driver's TF-free parts ---------------------------------------------------------------

def test_bench_quality_without_fluidsynth_is_one_line_naming_the_make_target(tmp_path, monkeypatch, capsys):
    from wavenet_tf.apps.cli import main

    monkeypatch.setattr(quality_data.shutil, "which", lambda name: None)
    assert main(["bench-quality", "--out", str(tmp_path / "q"), "--cpu-minutes", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "fluidsynth not found" in err and "make quality-deps" in err
    assert not (tmp_path / "q" / "data" / "manifest.json").exists()


def test_the_learning_curve_comes_from_the_run_and_plots_without_matplotlib(tmp_path, monkeypatch):
    import json
    import sys

    from wavenet_tf.apps.bench_quality import learning_curve, plot_learning_curve

    history = [{"epoch": e, "step": 25 * e, "bits_per_sample": 7.0 - e, "val_bits_per_sample": 7.2 - e,
                "cpu_seconds": 90.0 * e} for e in (1, 2, 3)]
    (tmp_path / "state.json").write_text(json.dumps({"history": history}))
    curve = learning_curve(tmp_path)
    assert [p["cpu_minutes"] for p in curve] == [1.5, 3.0, 4.5]
    assert [p["val_bits_per_sample"] for p in curve] == pytest.approx([6.2, 5.2, 4.2])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    path = plot_learning_curve(curve, {"LPC-32": 4.4, "unigram": 7.5}, tmp_path / "curve")
    assert path.suffix == ".svg"
    svg = path.read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 1 and "LPC-32 4.40" in svg and "unigram 7.50" in svg
