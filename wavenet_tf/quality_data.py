"""Real audio for the quality benchmark, made at run time from registry packages.

Instruments: pieces from the ``music21`` corpus (none of them Bach chorales) rendered with
FluidSynth and Debian's General-MIDI soundfont (``fluid-soundfont-gm``: sampled instruments),
several instruments per piece, some pieces held out. Speech: ``espeak-ng`` in several
voices and languages. Everything is 16-bit mono WAV at 16 kHz, one sub-folder per label
(instrument or voice), the layout `wavenet_tf.data.discover` reads::

    OUT/instruments/train/<instrument>/<piece>.wav
    OUT/instruments/heldout/<instrument>/<piece>.wav
    OUT/speech/train/<voice>/<n>.wav
    OUT/speech/heldout/<voice>/<n>.wav

Deterministic: the MIDI files are written here note by note (no tool's defaults in between)
and FluidSynth renders float samples (its 16-bit output is dithered), so the same inputs give
the same bytes. ``OUT/manifest.json`` records the settings and each file's SHA-256; a second
call with the same settings leaves the files alone.

No TensorFlow: NumPy, soxr (already a serving dependency) and, for the instruments, music21.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import tempfile
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
INSTALL_HINT = "run `make quality-deps` (as root: apt-get install fluidsynth fluid-soundfont-gm espeak-ng)"

# (corpus name, held out). No Bach: the chorales are what every tutorial trains on, and
# four-part homophony is one texture; these are piano, string-quartet, song and dance pieces
# by other composers. The held-out pieces are by composers absent from training.
PIECES: tuple[tuple[str, bool], ...] = (
    ("mozart/k545/movement1_exposition", False),
    ("schumann_clara/polonaise_op1n1", False),
    ("schumann_clara/polonaise_op1n3", False),
    ("handel/rinaldo/Lascia_chio_pianga", False),
    ("cpebach/h186", False),
    ("mozart/k156/movement2", False),
    ("haydn/opus1no1/movement1", False),
    ("joplin/maple_leaf_rag", False),
    ("chopin/mazurka06-2", True),
    ("verdi/laDonnaEMobile", True),
    ("schumann_robert/opus48no2", True),
)

# General-MIDI programs (0-based): the label is the folder name.
INSTRUMENTS: tuple[tuple[str, int], ...] = (
    ("piano", 0),
    ("guitar", 24),   # acoustic guitar (nylon)
    ("violin", 40),
    ("flute", 73),
)

# espeak-ng voice (language + variant): label folder name.
VOICES: tuple[tuple[str, str], ...] = (
    ("en-us+m3", "en_m3"),
    ("en-us+f2", "en_f2"),
    ("de+m1", "de_m1"),
    ("fr+f3", "fr_f3"),
)

# Sentences per language; the last of each list is held out.
TEXTS: dict[str, tuple[str, ...]] = {
    "en": (
        "The quick brown fox jumps over the lazy dog while the farmer watches from the gate.",
        "A wavenet predicts every sample of the waveform from the samples that came before it.",
        "On a quiet morning the river carried leaves and light down to the old stone bridge.",
        "Please read the numbers slowly: seven, twelve, forty one, and one hundred and three.",
        "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
        "Every evening the lamps along the harbour came on one by one as the boats returned.",
    ),
    "de": (
        "Der schnelle braune Fuchs springt über den faulen Hund am Rande des Waldes.",
        "Am Morgen fuhr der Zug pünktlich ab, und die Reisenden lasen ihre Zeitungen.",
        "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich nach Hause.",
        "Die Sonne schien auf das alte Haus, und im Garten blühten die ersten Rosen.",
        "Bitte sprechen Sie langsam: sieben, zwölf, einundvierzig und hundertdrei.",
        "Am Abend gingen die Lichter im Hafen an, als die Boote zurückkehrten.",
    ),
    "fr": (
        "Le vif renard brun saute par dessus le chien paresseux au bord de la forêt.",
        "Ce matin le train est parti à l'heure et les voyageurs lisaient leurs journaux.",
        "La rivière portait les feuilles et la lumière jusqu'au vieux pont de pierre.",
        "Dans le jardin de ma tante, les roses fleurissent tout l'été sous le soleil.",
        "Lisez les nombres lentement: sept, douze, quarante et un, et cent trois.",
        "Le soir, les lumières du port s'allumaient une à une quand les bateaux rentraient.",
    ),
}


class QualityDataError(RuntimeError):
    """A tool or file the benchmark data needs is missing; the message says how to get it."""


@dataclass(frozen=True)
class RenderSettings:
    """What the rendered data depends on; recorded in the manifest."""

    # Seconds rendered per (training piece, instrument); each instrument plays a different excerpt.
    train_seconds: float = 12.0
    # Seconds rendered per (held-out piece, instrument).
    heldout_seconds: float = 6.0
    # Tempo when a piece has no metronome mark; marks are clamped to 60..160 quarter notes/min.
    default_qpm: float = 100.0
    # FluidSynth's output gain (its default 0.2 leaves a solo line near -30 dBFS).
    gain: float = 0.6
    pieces: tuple[tuple[str, bool], ...] = PIECES
    instruments: tuple[tuple[str, int], ...] = INSTRUMENTS
    voices: tuple[tuple[str, str], ...] = VOICES
    # Whether to render speech (espeak-ng) as well as instruments.
    speech: bool = True


# --- tools ----------------------------------------------------------------------------------

def check_tools(speech: bool = True) -> None:
    """Raise `QualityDataError` naming the first missing tool and the make target that installs it."""
    for tool in ("fluidsynth",) + (("espeak-ng",) if speech else ()):
        if shutil.which(tool) is None:
            raise QualityDataError(f"{tool} not found on PATH: {INSTALL_HINT}.")
    if not SOUNDFONT.is_file():
        raise QualityDataError(f"{SOUNDFONT} not found (Debian's fluid-soundfont-gm): {INSTALL_HINT}.")
    try:
        import music21  # noqa: F401
    except ImportError:
        raise QualityDataError("music21 is not installed: pip install -r requirements-dev.txt.") from None


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise QualityDataError(f"{command[0]} failed (exit {result.returncode}): {detail[-1] if detail else ''}")


# --- MIDI -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Note:
    start: float  # seconds
    end: float
    pitch: int
    velocity: int
    channel: int


def piece_notes(name: str, default_qpm: float = 100.0) -> list[Note]:
    """The notes of corpus piece ``name`` in seconds, one MIDI channel per part (never 9: drums)."""
    from music21 import corpus

    score = corpus.parse(name).stripTies()
    marks = score.metronomeMarkBoundaries()
    qpm = default_qpm
    if marks and marks[0][2].number:
        qpm = float(marks[0][2].getQuarterBPM() or marks[0][2].number)
    seconds_per_quarter = 60.0 / min(160.0, max(60.0, qpm))
    notes = []
    for index, part in enumerate(score.parts):
        channel = index if index < 9 else index + 1
        velocity = 96 if index == 0 else 80  # the top part a little louder, as players do
        for element in part.flatten().notes:
            length = float(element.quarterLength)
            if length <= 0:  # grace notes carry no duration
                continue
            start = float(element.offset) * seconds_per_quarter
            for pitch in element.pitches:
                if 0 <= pitch.midi < 128:
                    notes.append(Note(start, start + length * seconds_per_quarter, int(pitch.midi), velocity, channel % 16))
    notes.sort(key=lambda n: (n.start, n.channel, n.pitch))
    return notes


def excerpt(notes: list[Note], start: float, seconds: float) -> list[Note]:
    """Notes sounding in ``[start, start + seconds)``, shifted to begin at 0 and cut at the end."""
    out = []
    for n in notes:
        if n.end > start and n.start < start + seconds:
            out.append(Note(max(0.0, n.start - start), min(seconds, n.end - start), n.pitch, n.velocity, n.channel))
    return out


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(notes: list[Note], program: int, seconds: float, ticks_per_quarter: int = 480) -> bytes:
    """A type-0 MIDI file: 120 qpm (so a tick is a fixed time), ``program`` on every channel used.

    The file ends at ``seconds`` (an end-of-track event there), so every rendering has the
    same length plus FluidSynth's release tail.
    """
    ticks_per_second = ticks_per_quarter * 2  # 120 quarter notes per minute
    tick = lambda t: int(round(t * ticks_per_second))
    events: list[tuple[int, int, bytes]] = []  # (tick, order, message): note-offs before note-ons
    for channel in sorted({n.channel for n in notes}):
        events.append((0, 0, bytes([0xC0 | channel, program])))
    for n in notes:
        events.append((tick(n.start), 2, bytes([0x90 | n.channel, n.pitch, n.velocity])))
        events.append((max(tick(n.end), tick(n.start) + 1), 1, bytes([0x80 | n.channel, n.pitch, 0])))
    events.sort()
    track = bytearray(b"\x00\xff\x51\x03" + (500000).to_bytes(3, "big"))  # tempo: 500,000 us per quarter
    now = 0
    for when, _, message in events:
        track += _varlen(when - now) + message
        now = when
    track += _varlen(max(0, tick(seconds) - now)) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_quarter)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


# --- audio ----------------------------------------------------------------------------------

def write_wav16(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit mono PCM (the values are clipped to [-1, 1])."""
    from wavenet_tf.core.files import output_file

    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_file(path) as tmp, wave.open(str(tmp), "wb") as f:  # complete or absent, even after Ctrl-C
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float64 audio and its rate from a 16-bit PCM or 32-bit float WAV (channels averaged)."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise QualityDataError(f"{path}: not a WAV file.")
    pos, fmt, samples = 12, None, None
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if chunk == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif chunk == b"data":
            samples = body
        pos += 8 + size + (size & 1)
    if fmt is None or samples is None:
        raise QualityDataError(f"{path}: a WAV without fmt or data chunk.")
    tag, channels, rate, _, _, bits = fmt
    if tag == 3 and bits == 32 or tag == 0xFFFE and bits == 32:
        audio = np.frombuffer(samples, "<f4").astype(np.float64)
    elif bits == 16:
        audio = np.frombuffer(samples[: len(samples) // 2 * 2], "<i2").astype(np.float64) / 32768.0
    else:
        raise QualityDataError(f"{path}: WAV format {tag} with {bits}-bit samples is not read here.")
    return audio[: len(audio) // channels * channels].reshape(-1, channels).mean(axis=1), rate


def _peak_normalize(audio: np.ndarray, peak: float) -> np.ndarray:
    top = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio * (peak / top) if top > 0 else audio


def _fade_out(audio: np.ndarray, seconds: float, tail: float = 0.5, fade: float = 0.05) -> np.ndarray:
    """Keep ``tail`` seconds of the release after ``seconds`` (FluidSynth renders until every
    voice has died away, seconds of near-silence) and fade the last ``fade`` seconds out."""
    audio = audio[: int(round((seconds + tail) * SAMPLE_RATE))].copy()
    ramp = min(len(audio), int(round(fade * SAMPLE_RATE)))
    if ramp:
        audio[-ramp:] *= np.linspace(1.0, 0.0, ramp)
    return audio


def render_midi(midi: bytes, gain: float, workdir: Path) -> np.ndarray:
    """FluidSynth renders ``midi`` to float samples at 16 kHz; returns mono float64."""
    mid, wav = workdir / "piece.mid", workdir / "piece.wav"
    mid.write_bytes(midi)
    _run(["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(SAMPLE_RATE), "-O", "float", "-T", "wav",
          "-F", str(wav), str(SOUNDFONT), str(mid)])
    audio, rate = read_wav(wav)
    if rate != SAMPLE_RATE:
        raise QualityDataError(f"fluidsynth wrote {rate} Hz, not {SAMPLE_RATE}.")
    return audio


def speak(text: str, voice: str, workdir: Path) -> np.ndarray:
    """espeak-ng speaks ``text`` (at its native 22,050 Hz); returned resampled to 16 kHz, float64."""
    import soxr

    wav = workdir / "speech.wav"
    _run(["espeak-ng", "-v", voice, "-w", str(wav), text])
    audio, rate = read_wav(wav)
    return soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ") if rate != SAMPLE_RATE else audio


# --- the data set ---------------------------------------------------------------------------

def _safe(name: str) -> str:
    return name.replace("/", "_").replace(".", "_")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render_quality_data(out: str | Path, settings: RenderSettings | None = None, log=print) -> dict[str, Any]:
    """Render the benchmark's instrument (and speech) audio under ``out``; returns the manifest.

    Skips the work when ``out/manifest.json`` holds the same settings and every file it lists
    is present with its digest.
    """
    settings = settings or RenderSettings()
    out = Path(out)
    manifest_path = out / "manifest.json"
    wanted = json.loads(json.dumps(asdict(settings)))
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("settings") == wanted and all(
                (out / f).is_file() and _digest(out / f) == d for f, d in manifest["files"].items()):
            log(f"{out}: {len(manifest['files'])} files already rendered with these settings")
            return manifest
    check_tools(settings.speech)
    files: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="wavenet-quality-") as tmp:
        workdir = Path(tmp)
        for name, held_out in settings.pieces:
            notes = piece_notes(name, settings.default_qpm)
            length = notes[-1].end if notes else 0.0
            seconds = settings.heldout_seconds if held_out else settings.train_seconds
            for index, (instrument, program) in enumerate(settings.instruments):
                # Each instrument plays the next excerpt of the piece (wrapping round), so the
                # training set holds more music than one excerpt four times over.
                span = max(length - seconds, 0.0)
                start = (index * seconds) % span if span > 0 else 0.0
                part = excerpt(notes, start, seconds)
                if not part:
                    continue
                audio = _fade_out(render_midi(midi_bytes(part, program, seconds), settings.gain, workdir), seconds)
                # A soundfont's levels differ by instrument; peak at -1 dBFS keeps every file's
                # mu-law classes in use (the loader does not normalize by default).
                relative = Path("instruments", "heldout" if held_out else "train", instrument, _safe(name) + ".wav")
                write_wav16(out / relative, _peak_normalize(audio, 10 ** (-1 / 20)))
                files[str(relative)] = _digest(out / relative)
            log(f"rendered {name} ({'held out' if held_out else 'train'}) with {len(settings.instruments)} instruments")
        if settings.speech:
            for voice, label in settings.voices:
                texts = TEXTS[voice.split("-")[0].split("+")[0]]
                for index, text in enumerate(texts):
                    split = "heldout" if index == len(texts) - 1 else "train"
                    relative = Path("speech", split, label, f"{index:02d}.wav")
                    write_wav16(out / relative, _peak_normalize(speak(text, voice, workdir), 10 ** (-1 / 20)))
                    files[str(relative)] = _digest(out / relative)
                log(f"spoke {len(texts)} sentences as {voice}")
    manifest = {"settings": wanted, "sample_rate": SAMPLE_RATE, "files": dict(sorted(files.items()))}
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
