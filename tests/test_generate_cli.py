"""`wavenet generate` and `wavenet bench` on a real bundle, through the real entry points."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from export.bundle import export_run
from tests.helpers import NARROW, make_run
from tests.tf_free import run_without_tensorflow
from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.apps.cli import main
from wavenet_tf.core.presets import get_preset

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


def _interrupt_generate(bundle, out: Path) -> subprocess.CompletedProcess:
    """`wavenet generate` of 300 s × 8 streams, sent SIGINT once it is writing (its temporary file exists)."""
    import signal

    # A pytest-xdist worker ignores SIGINT, and an ignored signal stays ignored across exec (Python
    # then installs no KeyboardInterrupt handler): give the child the default, as a shell does.
    process = subprocess.Popen([WAVENET, "generate", str(bundle), "--seconds", "300", "--streams", "8",
                                "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.stem}-")]:
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.05)
    time.sleep(0.3)  # some chunks in
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_ctrl_c_leaves_an_existing_file_as_it_was_and_no_partial_one(bundle, tmp_path):
    # It replaced keep.wav with a 20 s WAV whose header was correct, and printed a traceback.
    keep = tmp_path / "keep.wav"
    sf.write(keep, np.full(800, 0.25, np.float32), 8000, subtype="PCM_16")
    before = keep.read_bytes()
    done = _interrupt_generate(bundle, keep)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 130 and "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr
    assert lines[-1].startswith("wavenet generate: interrupted after ") and "keep.wav left as it was" in lines[-1]
    assert keep.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]
    # Without an existing file, nothing is left at all (it left a 20 s file of the 300 s asked for).
    done = _interrupt_generate(bundle, tmp_path / "new.wav")
    assert done.returncode == 130 and "new.wav not written" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]


def test_progress_writes_no_carriage_returns_into_a_file(bundle, tmp_path):
    # stderr to a file (a log): one plain line with the figures, no \r-redrawn bar.
    with open(tmp_path / "log.txt", "w") as log:
        subprocess.run([WAVENET, "generate", str(bundle), "--seconds", "0.5", "--out", str(tmp_path / "a.wav")],
                       stderr=log, check=True)
    text = (tmp_path / "log.txt").read_text()
    assert "\r" not in text and "samples/s" in text and "RTF" in text
    assert [line for line in text.splitlines() if "samples/s" in line][0].startswith("[########################]")


def test_output_file_writes_through_symlinks_and_never_replaces_a_device(tmp_path):
    import os

    from wavenet_tf.core.files import output_file

    real = tmp_path / "real.wav"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    (tmp_path / "link.wav").symlink_to(real)
    with output_file(tmp_path / "link.wav") as path:
        path.write_bytes(b"new")
    assert (tmp_path / "link.wav").is_symlink() and real.read_bytes() == b"new"
    assert os.stat(real).st_mode & 0o777 == 0o640  # an existing file keeps its permissions
    with output_file("/dev/null") as path:
        assert str(path) == "/dev/null"  # written directly: a device is never renamed over
    with pytest.raises(RuntimeError), output_file(real) as path:
        path.write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert real.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["link.wav", "real.wav"]


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
        "import sys\nfrom wavenet_tf.apps.cli import main\n"
        f"sys.exit(main(['generate', {str(bundle)!r}, '--seconds', '0.05', '--out', {str(tmp_path / 'n.wav')!r},"
        " '--quiet']))\n"
    )
    out = run_without_tensorflow(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert sf.info(tmp_path / "n.wav").frames == 400


def test_bench_reports_every_figure(bundle, tmp_path, capsys):
    # --json: stdout is the report alone (the table goes to stderr); --report: the same in a file.
    assert main(["bench", str(bundle), "--seconds", "0.1", "--json", "--report", str(tmp_path / "b.json")]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    captured = capsys.readouterr()
    assert json.loads(captured.out) == report
    for key in ("samples_per_sec_1", "samples_per_sec_8", "samples_per_sec_32", "naive_samples_per_sec",
                "speedup_vs_naive", "step_nodes", "sample_rate", "chunk_latency_p99_ms", "time_to_first_audio_s"):
        assert key in report and report[key] is not None, key
    assert report["samples_per_sec_32"] > report["samples_per_sec_1"]  # batching amortizes the per-node cost
    assert report["speedup_vs_naive"] > 1
    out = captured.err
    assert "x naive" in out and "GMAC/s" in out
    if report["engine"] == "native":  # both engines measured in the same run, and the core's FMA limit
        assert report["graph_samples_per_sec_1"] > 0 and "native / graph" in out
        assert report["multiply_adds_per_sample"] > 0 and report["fma_peak_per_core"] > 0


def test_bench_levers_reports_each_lever(bundle, tmp_path, capsys):
    write_builtin_dataset(tmp_path / "held_out", num_files=1, seconds=0.3, sample_rate=8000, seed=3)
    assert main(["bench-levers", str(bundle), "--audio", str(tmp_path / "held_out"), "--seconds", "0.05",
                 "--repeats", "1", "--report", str(tmp_path / "levers.json")]) == 0
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
                 "--repeats", "1", "--report", str(tmp_path / "levers.json")]) == 0
    bits = json.loads((tmp_path / "levers.json").read_text())["int8"]["bits_per_sample"]
    assert 0 < bits["float32"] < 12 and 0 < bits["int8"] < 12


@pytest.mark.slow
def test_mel_from_an_audio_file_drives_a_locally_conditioned_bundle(tmp_path, capsys):
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
    err = capsys.readouterr().err
    assert "s left)" in err and "after the prime" not in err  # no prime was given
    assert main(["generate", str(tmp_path / "bundle"), "--seconds", "0.5", "--out", str(tmp_path / "w.wav")]) == 2


# --- bad input: one line naming the flag, exit 2, before anything is loaded (issue 13) ---------

def _one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("wavenet: error: ") and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("flags, needle", [
    (["--seconds", "inf"], "--seconds"),
    (["--seconds", "nan"], "--seconds"),
    (["--streams", "10000"], "--streams"),
    (["--streams", "0"], "--streams"),
    (["--chunk-size", "0"], "--chunk-size"),
    (["--temperature", "nan"], "--temperature"),
    (["--temperature", "-1"], "--temperature"),
    (["--top-k", "-1"], "--top-k"),
    (["--top-k", "65"], "--top-k"),  # the bundle's 64 classes: checked once it is loaded, before generating
    (["--threads", "0"], "--threads"),
])
def test_bad_numbers_are_refused_before_any_work(bundle, tmp_path, capsys, flags, needle):
    args = {"--seconds": "0.1", "--out": str(tmp_path / "x.wav")}
    for flag, value in zip(flags[::2], flags[1::2]):
        args[flag] = value
    started = time.perf_counter()
    assert main(["generate", str(bundle), "--quiet", *[v for kv in args.items() for v in kv]]) == 2
    assert time.perf_counter() - started < 2  # --streams 10000 used to allocate 5.5 GB first; --chunk-size 0 hung
    _one_error_line(capsys, needle)
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("where, needle", [
    ("folder", "is a folder"), ("missing/x.wav", "does not exist"), ("/sys/x.wav", "cannot write"),
])
def test_an_out_that_cannot_be_written_is_refused_before_generating(bundle, tmp_path, capsys, where, needle):
    (tmp_path / "folder").mkdir()
    out = where if where.startswith("/") else str(tmp_path / where)
    assert main(["generate", str(bundle), "--seconds", "0.1", "--out", out, "--quiet"]) == 2
    _one_error_line(capsys, "--out", needle)
    assert not (tmp_path / "missing").exists()


def test_the_writability_probe_leaves_no_file_and_keeps_an_existing_one(tmp_path, capsys):
    # The --out check passes, then the bundle is refused: nothing may be left or changed.
    assert main(["generate", str(tmp_path / "no-bundle"), "--seconds", "0.05", "--out", str(tmp_path / "a.wav")]) == 2
    assert not (tmp_path / "a.wav").exists()
    _one_error_line(capsys, "not a bundle")
    (tmp_path / "keep.wav").write_bytes(b"precious")
    assert main(["generate", str(tmp_path / "no-bundle"), "--seconds", "0.05", "--out", str(tmp_path / "keep.wav")]) == 2
    assert (tmp_path / "keep.wav").read_bytes() == b"precious"
    _one_error_line(capsys, "not a bundle")


def test_a_tiny_temperature_is_the_most_likely_class_not_a_square_wave(bundle, tmp_path):
    for name, temperature in (("zero.wav", "0"), ("tiny.wav", "1e-320")):
        assert main(["generate", str(bundle), "--seconds", "0.1", "--out", str(tmp_path / name),
                     "--temperature", temperature, "--quiet"]) == 0
    assert (tmp_path / "zero.wav").read_bytes() == (tmp_path / "tiny.wav").read_bytes()
    audio, _ = sf.read(tmp_path / "tiny.wav", dtype="int16")
    assert np.abs(audio.astype(np.int32)).max() < 32767


def test_top_k_draws_what_the_sampler_draws_and_one_is_the_most_likely_class(bundle, tmp_path):
    from serving.bundle import load_bundle
    from serving.generate import to_pcm16
    from serving.streaming_sampler import StreamingSampler

    for k in ("1", "3"):
        assert main(["generate", str(bundle), "--seconds", "0.1", "--out", str(tmp_path / f"k{k}.wav"), "--seed", "2",
                     "--prime", "silence", "--top-k", k, "--quiet"]) == 0
    sampler = StreamingSampler(load_bundle(bundle), seed=2, top_k=3)
    sampler.prime(None)
    assert (tmp_path / "k3.wav").read_bytes()[44:] == to_pcm16(sampler.generate(800))
    assert main(["generate", str(bundle), "--seconds", "0.1", "--out", str(tmp_path / "argmax.wav"), "--seed", "9",
                 "--prime", "silence", "--temperature", "0", "--quiet"]) == 0
    assert (tmp_path / "k1.wav").read_bytes() == (tmp_path / "argmax.wav").read_bytes()


def test_a_closed_pipe_is_one_error_line_and_exit_2(bundle):
    # `wavenet generate ... --out - | head -c 100`: the reader leaves after 100 bytes.
    process = subprocess.Popen([WAVENET, "generate", str(bundle), "--seconds", "20", "--out", "-", "--quiet",
                                "--chunk-size", "256"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert len(process.stdout.read(100)) == 100
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    err = err.decode()
    assert process.returncode == 2, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.count("\n") == 1 and "closed the pipe" in err, err


def test_bench_and_levers_refuse_counts_that_measure_nothing(bundle, capsys):
    assert main(["bench", str(bundle), "--repeats", "0"]) == 2
    _one_error_line(capsys, "--repeats")
    assert main(["bench", str(bundle), "--seconds", "inf"]) == 2
    _one_error_line(capsys, "--seconds")
    assert main(["bench-levers", str(bundle), "--seconds", "0"]) == 2
    _one_error_line(capsys, "--seconds")
    assert main(["bench-levers", str(bundle), "--seconds", "0.001"]) == 2  # 8 samples: no measurement
    _one_error_line(capsys, "--seconds")


def test_speaker_errors_name_the_flag_and_accept_only_ascii_ids(speaker_bundle, bundle, tmp_path, capsys):
    out = str(tmp_path / "s.wav")
    assert main(["generate", str(speaker_bundle), "--seconds", "0.05", "--out", out, "--speaker", "١"]) == 2
    _one_error_line(capsys, "--speaker", "neither an id")
    assert main(["generate", str(bundle), "--seconds", "0.05", "--out", out, "--speaker", "0"]) == 2
    _one_error_line(capsys, "--speaker", "not globally conditioned")


def test_a_training_command_without_tensorflow_says_what_to_install(tmp_path):
    # A serving-only install: `wavenet train` must name the missing package and the fix, no traceback.
    write_builtin_dataset(tmp_path / "data", num_files=2, seconds=1.0, sample_rate=8000)
    code = ("import sys\nfrom wavenet_tf.apps.cli import main\n"
            f"sys.exit(main(['train', {str(tmp_path / 'data')!r}, '--out', {str(tmp_path / 'run')!r}, "
            "'--preset', 'tiny', '--epochs', '1']))")
    out = run_without_tensorflow(code)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    line = [l for l in out.stderr.splitlines() if "wavenet train" in l]
    assert line and "tensorflow" in line[0] and "pip install -r requirements.txt" in line[0], out.stderr[-2000:]
    assert not (tmp_path / "run").exists()
