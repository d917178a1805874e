"""`wavenet generate` and `wavenet bench` on a real bundle, through the real entry points."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from export.bundle import export_run
from tests.test_export import NARROW, make_run
from tests.tf_free import run_without_tensorflow
from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.cli import main
from wavenet_tf.presets import get_preset

WAVENET = str(Path(sys.executable).with_name("wavenet"))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gen")
    make_run(folder / "run", get_preset("tiny", **NARROW))
    export_run(folder / "run", folder / "bundle", log=lambda *_: None)
    return folder / "bundle"


def test_generate_writes_a_wav_and_the_same_seed_gives_the_same_bytes(bundle, tmp_path):
    for name in ("a.wav", "b.wav"):
        assert main(["generate", str(bundle), "--seconds", "0.25", "--out", str(tmp_path / name), "--seed", "4",
                     "--quiet"]) == 0
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    info = sf.info(tmp_path / "a.wav")
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (8000, 1, 2000, "PCM_16")
    assert main(["generate", str(bundle), "--seconds", "0.25", "--out", str(tmp_path / "c.wav"), "--seed", "5",
                 "--quiet"]) == 0
    assert (tmp_path / "c.wav").read_bytes() != (tmp_path / "a.wav").read_bytes()


def test_streams_are_channels_and_stdout_is_raw_pcm(bundle, tmp_path):
    assert main(["generate", str(bundle), "--seconds", "0.1", "--out", str(tmp_path / "s.wav"), "--streams", "3",
                 "--quiet", "--seed", "2"]) == 0
    audio, _ = sf.read(tmp_path / "s.wav", dtype="int16")
    assert audio.shape == (800, 3)
    # The console script, as a user pipes it into a player; progress goes to stderr.
    out = subprocess.run([WAVENET, "generate", str(bundle), "--seconds", "0.1", "--out", "-", "--streams", "3",
                          "--seed", "2"], capture_output=True, check=True)
    raw = np.frombuffer(out.stdout, dtype="<i2").reshape(-1, 3)
    np.testing.assert_array_equal(raw, audio)
    assert b"samples/s" in out.stderr and b"RTF" in out.stderr


def test_prime_and_speaker(speaker_bundle, tmp_path):
    prime = tmp_path / "prime.flac"
    sf.write(prime, (0.3 * np.sin(np.arange(4000) / 7.0)).astype(np.float32), 8000)
    assert main(["generate", str(speaker_bundle), "--seconds", "0.05", "--out", str(tmp_path / "x.wav"),
                 "--speaker", "harp", "--prime", str(prime), "--quiet"]) == 0
    assert main(["generate", str(speaker_bundle), "--seconds", "0.05", "--out", str(tmp_path / "y.wav"),
                 "--speaker", "1", "--prime", str(prime), "--quiet"]) == 0
    assert (tmp_path / "x.wav").read_bytes() == (tmp_path / "y.wav").read_bytes()  # name and id agree
    assert main(["generate", str(speaker_bundle), "--seconds", "0.05", "--out", str(tmp_path / "z.wav")]) == 2
    assert main(["generate", str(speaker_bundle), "--seconds", "0.05", "--out", str(tmp_path / "z.wav"),
                 "--speaker", "cello"]) == 2


def test_generate_runs_without_tensorflow(bundle, tmp_path):
    code = (
        "import sys\nfrom wavenet_tf.cli import main\n"
        f"sys.exit(main(['generate', {str(bundle)!r}, '--seconds', '0.05', '--out', {str(tmp_path / 'n.wav')!r},"
        " '--quiet']))\n"
    )
    out = run_without_tensorflow(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert sf.info(tmp_path / "n.wav").frames == 400


def test_bench_reports_every_figure(bundle, tmp_path, capsys):
    assert main(["bench", str(bundle), "--seconds", "0.1", "--json", str(tmp_path / "b.json")]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    for key in ("samples_per_sec_1", "samples_per_sec_8", "samples_per_sec_32", "naive_samples_per_sec",
                "speedup_vs_naive", "step_nodes", "sample_rate", "chunk_latency_p99_ms", "time_to_first_audio_s"):
        assert key in report and report[key] is not None, key
    assert report["samples_per_sec_32"] > report["samples_per_sec_1"]  # batching amortizes the per-node cost
    assert report["speedup_vs_naive"] > 1
    out = capsys.readouterr().out
    assert "x naive" in out and "GMAC/s" in out
    if report["engine"] == "native":  # both engines measured in the same run, and the core's FMA limit
        assert report["graph_samples_per_sec_1"] > 0 and "native / graph" in out
        assert report["multiply_adds_per_sample"] > 0 and report["fma_peak_per_core"] > 0


def test_bench_levers_reports_each_lever(bundle, tmp_path, capsys):
    write_builtin_dataset(tmp_path / "held_out", num_files=1, seconds=0.3, sample_rate=8000, seed=3)
    assert main(["bench-levers", str(bundle), "--audio", str(tmp_path / "held_out"), "--seconds", "0.05",
                 "--repeats", "1", "--json", str(tmp_path / "levers.json")]) == 0
    report = json.loads((tmp_path / "levers.json").read_text())
    assert set(report["threads"]) == {"1 thread, 1 stream", "2 threads, 1 stream",
                                      "1 thread, 32 streams", "2 threads, 32 streams"}
    assert all(v > 0 for v in {**report["threads"], **report["sessions"], **report["int8"]["speed"]}.values())
    assert report["int8"]["nodes"]["int8"] > report["int8"]["nodes"]["float32"]  # quantization adds nodes
    bits = report["int8"]["bits_per_sample"]
    assert 0 < bits["float32"] < 12 and 0 < bits["int8"] < 12
    parts = report["breakdown_1"]
    assert parts["run_us"] > 0 and parts["graph_samples"]  # one stream: the graph draws
    assert report["breakdown_32"]["sampling_us"] > 0 and not report["breakdown_32"]["graph_samples"]
    assert "bits/sample on" in capsys.readouterr().out


@pytest.mark.parametrize("conditioning", ["global", "local"])
def test_bench_levers_measures_conditioned_bundles_too(speaker_bundle, tmp_path, conditioning):
    if conditioning == "global":
        path = speaker_bundle
    else:
        make_run(tmp_path / "run", get_preset("tiny", **NARROW, local_conditioning_channels=8, upsample_scales=(4,)))
        export_run(tmp_path / "run", tmp_path / "bundle", log=lambda *_: None)
        path = tmp_path / "bundle"
    write_builtin_dataset(tmp_path / "held_out", num_files=1, seconds=0.3, sample_rate=8000, seed=3)
    assert main(["bench-levers", str(path), "--audio", str(tmp_path / "held_out"), "--seconds", "0.05",
                 "--repeats", "1", "--json", str(tmp_path / "levers.json")]) == 0
    bits = json.loads((tmp_path / "levers.json").read_text())["int8"]["bits_per_sample"]
    assert 0 < bits["float32"] < 12 and 0 < bits["int8"] < 12


def test_mel_from_an_audio_file_drives_a_locally_conditioned_bundle(tmp_path):
    config = get_preset("tiny", **NARROW, local_conditioning_channels=8, upsample_scales=(4, 8))
    make_run(tmp_path / "run", config)
    export_run(tmp_path / "run", tmp_path / "bundle", log=lambda *_: None)
    speech = tmp_path / "speech.ogg"
    sf.write(speech, (0.4 * np.sin(np.arange(8000) * 0.07)).astype(np.float32), 8000, format="OGG", subtype="VORBIS")
    assert main(["generate", str(tmp_path / "bundle"), "--seconds", "0.5", "--mel-from", str(speech),
                 "--out", str(tmp_path / "v.wav"), "--quiet"]) == 0
    assert sf.info(tmp_path / "v.wav").frames == 4000
    # Past the end of the frames is refused, saying how much is left; no mel at all too.
    assert main(["generate", str(tmp_path / "bundle"), "--seconds", "5", "--mel-from", str(speech),
                 "--out", str(tmp_path / "w.wav"), "--quiet"]) == 2
    assert main(["generate", str(tmp_path / "bundle"), "--seconds", "0.5", "--out", str(tmp_path / "w.wav")]) == 2
