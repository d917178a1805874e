"""Decoding and cleaning real files of every format, rate, channel count and bit depth."""

import numpy as np
import pytest
import soundfile as sf

from wavenet_tf.core.audio import AudioError, load_audio, read_audio, remove_dc_offset

RATES = [8000, 16000, 22050, 44100, 48000]
ENCODINGS = [
    ("wav", "WAV", "PCM_U8"), ("wav", "WAV", "PCM_16"), ("wav", "WAV", "PCM_24"), ("wav", "WAV", "PCM_32"),
    ("wav", "WAV", "FLOAT"), ("flac", "FLAC", "PCM_S8"), ("flac", "FLAC", "PCM_16"), ("flac", "FLAC", "PCM_24"),
    ("ogg", "OGG", "VORBIS"), ("mp3", "MP3", "MPEG_LAYER_III"),
]
LOSSY = {"VORBIS", "MPEG_LAYER_III"}


def tone(frequency, seconds, rate, amplitude=0.5):
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def dominant_frequency(audio, rate):
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return np.argmax(spectrum) * rate / len(audio)


@pytest.mark.parametrize("ext, fmt, subtype", ENCODINGS, ids=[e[2] + "-" + e[0] for e in ENCODINGS])
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("channels", [1, 2])
def test_every_format_rate_and_channel_count(tmp_path, ext, fmt, subtype, rate, channels):
    mono = tone(440.0, 0.5, rate)
    data = mono if channels == 1 else np.stack([mono, 0.5 * mono], axis=1)
    path = tmp_path / f"tone.{ext}"
    sf.write(path, data, rate, format=fmt, subtype=subtype)

    audio, info = load_audio(path, 16000, trim_top_db=0)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    assert (info.format, info.subtype, info.sample_rate, info.channels) == (fmt, subtype, rate, channels)
    # Same duration at the new rate (lossy codecs add a little encoder padding).
    assert abs(len(audio) / 16000 - 0.5) < (0.1 if subtype in LOSSY else 0.002)
    assert dominant_frequency(audio, 16000) == pytest.approx(440.0, abs=5.0)
    expected_peak = 0.5 if channels == 1 else 0.375  # the mean of the two channels
    assert np.abs(audio).max() == pytest.approx(expected_peak, abs=0.05 if subtype in LOSSY or subtype.endswith("8") else 0.01)


def test_16_bit_wav_decodes_as_tensorflow_decodes_it(tmp_path):
    # tf.audio.decode_wav as an independent oracle for soundfile's PCM_16 scaling (1/32768).
    import tensorflow as tf

    path = tmp_path / "x.wav"
    sf.write(path, np.stack([tone(300, 0.2, 22050), tone(500, 0.2, 22050)], 1), 22050, subtype="PCM_16")
    decoded, rate, _, _ = read_audio(path)
    assert rate == 22050
    np.testing.assert_array_equal(decoded, tf.audio.decode_wav(path.read_bytes())[0].numpy())


def test_resampling_is_band_limited(tmp_path):
    # 6 kHz is above the 4 kHz Nyquist limit of 8 kHz audio: a real resampler removes it,
    # linear interpolation would fold it down to 2 kHz.
    path = tmp_path / "high.wav"
    sf.write(path, tone(3000, 1.0, 48000, 0.4) + tone(6000, 1.0, 48000, 0.4), 48000, subtype="FLOAT")
    audio, _ = load_audio(path, 8000, trim_top_db=0)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1 / 8000)
    at = lambda f: spectrum[np.argmin(np.abs(freqs - f))]
    assert at(3000) > 1000 * at(2000)  # the 6 kHz tone did not alias to 2 kHz (> 60 dB below)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("this is a text file, not audio\n" * 20), "not a readable audio file"),
        (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4), "not a readable audio file"),
        (lambda p: sf.write(p, np.zeros(8000, np.float32), 8000, subtype="PCM_16"), "silence throughout"),
    ],
    ids=["zero-length", "text-named-wav", "corrupt-header", "pure-silence"],
)
def test_bad_files_raise_a_named_reason(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=reason) as caught:
        load_audio(path, 16000)
    assert caught.value.path == str(path)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
def test_truncated_wav_is_detected(tmp_path, subtype):
    full = tmp_path / "full.wav"
    sf.write(full, tone(440, 1.0, 16000), 16000, subtype=subtype)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(AudioError, match="truncated"):
        load_audio(cut, 16000)


def test_truncated_flac_is_detected(tmp_path):
    full = tmp_path / "full.flac"
    sf.write(full, np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32), 16000)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    with pytest.raises(AudioError, match="truncated or corrupt"):
        load_audio(cut, 16000)


def test_nan_in_a_float_wav_is_rejected(tmp_path):
    audio = tone(440, 0.5, 16000)
    audio[1000] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, audio, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf"):
        load_audio(path, 16000)


def test_silence_trimming_reports_what_it_removed(tmp_path):
    rate = 16000
    audio = np.concatenate([np.zeros(rate), tone(440, 1.0, rate), np.zeros(rate // 2), tone(440, 0.5, rate),
                            np.zeros(rate)]).astype(np.float32)
    path = tmp_path / "padded.wav"
    sf.write(path, audio, rate, subtype="PCM_16")
    out, info = load_audio(path, rate, trim_top_db=40, trim_frame_length=256)
    # Leading and trailing seconds go (to within a frame); the pause in the middle stays.
    assert 2.0 <= info.seconds <= 2.0 + 2 * 256 / rate
    assert info.trimmed_seconds == pytest.approx(info.decoded_seconds - info.seconds)
    assert info.trimmed_fraction > 0.4
    untrimmed, info0 = load_audio(path, rate, trim_top_db=0)
    assert len(untrimmed) == len(audio) and info0.trimmed_seconds == 0


def test_quiet_recordings_are_kept(tmp_path):
    # A recording at -40 dBFS is quiet, not silent: trimming is relative to its own peak.
    path = tmp_path / "quiet.wav"
    sf.write(path, tone(440, 1.0, 16000, amplitude=0.01), 16000, subtype="PCM_16")
    audio, info = load_audio(path, 16000)
    assert info.seconds == pytest.approx(1.0, abs=0.04)


def test_dc_offset_is_removed_and_8_bit_silence_stays_silent(tmp_path):
    offset = tone(440, 1.0, 16000) + 0.2
    cleaned = remove_dc_offset(offset, 16000)
    assert abs(cleaned[4000:-4000].mean()) < 1e-3
    path = tmp_path / "u8.wav"
    sf.write(path, np.concatenate([np.zeros(8000), tone(440, 1.0, 16000), np.zeros(8000)]), 16000, subtype="PCM_U8")
    _, info = load_audio(path, 16000, trim_top_db=50)
    assert info.trimmed_seconds > 0.8  # most of the silent second around the tone was trimmed


def test_peak_normalization(tmp_path):
    path = tmp_path / "x.flac"
    sf.write(path, tone(440, 0.5, 16000, amplitude=0.1), 16000)
    audio, _ = load_audio(path, 16000, normalize=True)
    assert np.abs(audio).max() == pytest.approx(0.99, abs=1e-3)


def _dc_reference(audio, sample_rate):
    """remove_dc_offset as first written: index arrays for every window's bounds (~90 bytes a sample)."""
    width = max(1, int(0.2 * sample_rate)) | 1
    if len(audio) <= width:
        return (audio - audio.mean(dtype=np.float64)).astype(np.float32)
    cumulative = np.concatenate(([0.0], np.cumsum(audio, dtype=np.float64)))
    half = width // 2
    index = np.arange(len(audio))
    lo = np.maximum(index - half, 0)
    hi = np.minimum(index + half + 1, len(audio))
    return (audio - (cumulative[hi] - cumulative[lo]) / (hi - lo)).astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 44100, 5])
def test_dc_removal_in_place_is_bit_identical_to_the_windowed_mean(rate):
    # Rewritten to hold two arrays instead of seven (an upload's decoding took +166 MB): every
    # sample must come out as before, or cached training audio would differ from fresh decodes.
    width = max(1, int(0.2 * rate)) | 1
    rng = np.random.default_rng(rate)
    for n in (1, width - 1, width, width + 1, width + 2, 2 * width, 10 * width + 3):
        audio = (0.3 * rng.standard_normal(n) + 0.1).astype(np.float32)
        np.testing.assert_array_equal(remove_dc_offset(audio, rate), _dc_reference(audio, rate))


def test_dc_removal_holds_about_20_bytes_a_sample():
    import tracemalloc

    audio = np.zeros(1_000_000, np.float32)
    tracemalloc.start()
    try:
        remove_dc_offset(audio, 96000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 * len(audio), f"{peak / len(audio):.0f} bytes a sample"  # it was 52 (numpy-traced; +166 MB for a 30 s upload at 96 kHz in all)


def test_a_sample_limit_refuses_a_file_from_its_header(tmp_path, monkeypatch):
    path = tmp_path / "wide.flac"
    sf.write(path, np.full((2 * 48000, 8), 0.25, np.float32), 48000, format="FLAC", subtype="PCM_16")
    monkeypatch.setattr(sf, "read", lambda *a, **k: pytest.fail("decoded before the limit was checked"))
    with pytest.raises(AudioError, match="8 channels at 48000 Hz for 2.0 s is 768,000 samples .* limit of 500,000"):
        read_audio(path, max_samples=500_000)
