"""A folder of audio -> clean, cached tracks -> training windows as a `tf.data` pipeline.

    discover(source)     folder (recursive; sub-folder = label), glob, or CSV manifest
    prepare(...)         decode + clean each file once (AudioCache), skip bad files with
                         a named reason, map labels to ids, split train/val by file
    window_dataset(...)  random windows of receptive_field + target_length samples,
                         mu-law classes, inputs/targets shifted by one, batched, prefetched

The model's logit at input position ``receptive_field − 1 + i`` is the prediction of
target ``i`` and the first with a full receptive field, so no loss is ever computed on
padding (`wavenet_tf.train.training_model` computes no output for the rest).
"""

from __future__ import annotations

import collections
import csv
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from wavenet_tf.core.audio import AUDIO_EXTENSIONS, AudioError, AudioInfo, load_audio
from wavenet_tf.core.audio_cache import AudioCache, default_cache_dir, info_from_dict, info_to_dict
from wavenet_tf.core.config import DataConfig, ModelConfig
from wavenet_tf.core.mu_law import mu_law_encode

logger = logging.getLogger(__name__)


class DataError(ValueError):
    """The data cannot be used as given; the message says what to change."""


@dataclass(frozen=True)
class AudioFile:
    path: Path
    label: str  # "" when the file has none


@dataclass
class Track:
    """One usable file: cleaned audio at the model's rate, its label id, its mel frames."""

    path: str
    label: str
    label_id: int
    audio: np.ndarray  # float32 (samples,), usually memory-mapped from the cache
    info: AudioInfo
    mel: np.ndarray | None = None  # float32 (samples // hop, n_mels) when locally conditioned


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class PreparedData:
    """The outcome of `prepare`: usable tracks split by file, labels, and what was skipped."""

    train: list[Track]
    val: list[Track]
    label_names: list[str]
    skipped: list[Skipped]
    num_files: int
    cache_hits: int = 0
    cache_misses: int = 0
    extensions: dict[str, int] = field(default_factory=dict)

    @property
    def tracks(self) -> list[Track]:
        # With one usable file, validation reads the training file: count it once.
        return self.train + [t for t in self.val if not any(t is u for u in self.train)]

    def summary(self) -> dict[str, Any]:
        tracks = self.tracks
        count = lambda values: dict(sorted(collections.Counter(values).items()))
        return {
            "num_files": self.num_files,
            "num_usable": len(tracks),
            "num_skipped": len(self.skipped),
            "total_seconds": round(sum(t.info.seconds for t in tracks), 3),
            "decoded_seconds": round(sum(t.info.decoded_seconds for t in tracks), 3),
            "trimmed_seconds": round(sum(t.info.trimmed_seconds for t in tracks), 3),
            "formats": self.extensions,
            "encodings": count(f"{t.info.format}/{t.info.subtype}" for t in tracks),
            "sample_rates": {str(k): v for k, v in count(t.info.sample_rate for t in tracks).items()},
            "channels": {str(k): v for k, v in count(t.info.channels for t in tracks).items()},
            "labels": count(t.label for t in tracks),
            "label_ids": {name: i for i, name in enumerate(self.label_names)},
            "num_train": len(self.train),
            "num_val": len(self.val),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }


# --- discovery ------------------------------------------------------------------------------

def discover(source: str | Path) -> list[AudioFile]:
    """Audio files named by ``source``, sorted by path.

    - a folder: every ``.wav .flac .ogg .mp3`` below it; the first sub-folder under
      ``source`` is the label (``speakers/p225/x.wav`` -> ``p225``; files directly in
      ``source`` have none);
    - a glob such as ``"clips/**/*.flac"``: the label is each file's parent folder name;
    - a ``.csv`` manifest with a header ``path,label`` (label optional; relative paths are
      relative to the manifest). Listed files are kept even if missing, so they are
      reported as skipped rather than silently dropped.
    """
    text = str(source)
    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".csv":
        return _unique(_read_manifest(path), path)
    if path.is_dir():
        files = []
        for candidate in sorted(path.rglob("*")):
            if candidate.is_file() and candidate.suffix.lower() in AUDIO_EXTENSIONS:
                relative = candidate.relative_to(path)
                files.append(AudioFile(candidate, relative.parts[0] if len(relative.parts) > 1 else ""))
        return files
    # An existing file is a file, even when its name has glob characters (`take[1].wav`).
    if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS:
        return [AudioFile(path, "")]
    if any(ch in text for ch in "*?["):
        return _unique([AudioFile(p, p.parent.name) for p in _glob_files(text)], text)
    raise DataError(
        f"{text}: not found. DATA must be a folder of audio files, a glob such as 'clips/**/*.wav', "
        "or a CSV manifest with a header row 'path,label'."
    )


def _glob_files(pattern: str) -> list[Path]:
    """Files matching ``pattern`` (``*``, ``?``, ``[..]``, ``**``), each real file once.

    `glob.glob(recursive=True)` follows directory symlinks without remembering where it
    has been: one loop lists each file dozens of times (the same audio in train and
    validation) and two loops never finish. This walk follows a symlinked folder only
    the first time it reaches that real folder, and lists each real file once.
    """
    import fnmatch

    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if any(ch in part for ch in "*?[")), len(parts))
    base = Path(*parts[:fixed]) if fixed else Path(".")
    wanted = parts[fixed:]

    def matches(names: tuple[str, ...], pats: tuple[str, ...]) -> bool:
        if not pats:
            return not names
        if pats[0] == "**":
            return any(matches(names[i:], pats[1:]) for i in range(len(names) + 1)
                       if not any(n.startswith(".") for n in names[:i]))
        if not names or (names[0].startswith(".") and not pats[0].startswith(".")):
            return False  # like glob: wildcards do not match hidden names
        return fnmatch.fnmatchcase(names[0], pats[0]) and matches(names[1:], pats[1:])

    found, seen_files, seen_dirs = [], set(), set()
    for folder, dirs, names in os.walk(base, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen_dirs:
            dirs[:] = []  # a symlink back to a folder already walked: a loop, or a second route
            continue
        seen_dirs.add(real)
        dirs.sort()
        relative = Path(folder).relative_to(base).parts
        for name in sorted(names):
            candidate = Path(folder) / name
            if matches(relative + (name,), wanted) and candidate.is_file():
                real_file = os.path.realpath(candidate)
                if real_file not in seen_files:
                    seen_files.add(real_file)
                    found.append(candidate)
    return sorted(found)


def _unique(files: list[AudioFile], source: str | Path) -> list[AudioFile]:
    """Each file once (a manifest may list one twice), keeping the first label; says so."""
    kept, seen = [], set()
    for file in files:
        real = os.path.realpath(file.path)
        if real in seen:
            logger.warning("%s: %s is listed more than once; using it once", source, file.path)
            continue
        seen.add(real)
        kept.append(file)
    return kept


def _read_manifest(path: Path) -> list[AudioFile]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a BOM from spreadsheet exports is not part of the header
    except UnicodeDecodeError:
        # Not UTF-8 (latin-1 from an old editor, say): keep the bytes of each name as the
        # file system has them, so the listed files are still found.
        text = raw.decode("utf-8", errors="surrogateescape")
    import io

    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise DataError(f"{path}: a manifest needs a header row with a 'path' column (and optionally 'label').")
        files = []
        for row in reader:
            if not (row.get("path") or "").strip():
                continue
            file_path = Path(row["path"].strip())
            if not file_path.is_absolute():
                file_path = path.parent / file_path
            files.append(AudioFile(file_path, (row.get("label") or "").strip()))
    return files


# --- preparation ----------------------------------------------------------------------------

def _audio_settings(model: ModelConfig, data: DataConfig) -> dict[str, Any]:
    return {
        "sample_rate": model.sample_rate, "trim_top_db": data.trim_top_db,
        "trim_frame_length": data.trim_frame_length, "remove_dc": data.remove_dc, "normalize": data.normalize,
    }


def _mel_settings(model: ModelConfig, data: DataConfig) -> dict[str, Any]:
    return {
        **_audio_settings(model, data), "n_mels": model.local_conditioning_channels,
        "hop_length": model.hop_length, "n_fft": data.n_fft, "fmin": data.fmin, "fmax": data.fmax,
    }


def prepare(
    source: str | Path,
    model: ModelConfig,
    data: DataConfig | None = None,
    cache_dir: str | Path | None = None,
    strict: bool = False,
    labels: Sequence[str] | None = None,
    split: bool = True,
) -> PreparedData:
    """Discover, decode (once), clean and split the audio named by ``source``.

    Every file that cannot be used is logged in one line naming it and the reason, and
    listed in the result; with ``strict`` the first such file is an error instead. Mel
    frames are computed (and cached) when the model is locally conditioned.

    Args:
        labels: a trained model's label table (its ids are the positions): labels map
            through it instead of being numbered from the data, and a label not in it is
            an error listing the known ones.
        split: False to keep every file in ``train`` (evaluation: nothing is held out).

    Raises:
        DataError: no audio found, no usable audio, an unknown label, or a skipped file
            under ``strict``.
    """
    data = data or DataConfig()
    files = discover(source)
    if not files:
        raise DataError(f"{source}: no audio files ({' '.join(AUDIO_EXTENSIONS)}) found.")
    cache = AudioCache(cache_dir if cache_dir is not None else default_cache_dir())
    loaded, skipped = _load_files(files, cache, model, data, strict)
    extensions = dict(sorted(collections.Counter(f.path.suffix.lower().lstrip(".") for f in files).items()))
    if not loaded:
        reasons = collections.Counter(s.reason.split(" (")[0] for s in skipped).most_common(3)
        raise DataError(
            f"{source}: none of the {len(files)} audio files is usable ({'; '.join(f'{n}× {r}' for r, n in reasons)}). "
            "Check the files, or use --trim-top-db 0 if they are very quiet."
        )
    label_names = _label_names(source, loaded, labels)
    label_ids = {name: i for i, name in enumerate(label_names)}
    tracks = []
    for file, audio, info in loaded:
        mel = _mel_cached(cache, file.path, audio, model, data) if model.local_conditioning_channels else None
        tracks.append(Track(str(file.path), file.label, label_ids[file.label], audio, info, mel))
    train, val = split_by_file(tracks, data.val_split, data.seed) if split else (sorted(tracks, key=lambda t: t.path), [])
    result = PreparedData(train, val, label_names, skipped, len(files), cache.hits, cache.misses, extensions)
    _log_summary(result, split)
    return result


def _load_files(files: list[AudioFile], cache: AudioCache, model: ModelConfig, data: DataConfig,
                strict: bool) -> tuple[list[tuple[AudioFile, np.ndarray, AudioInfo]], list[Skipped]]:
    """Decode every file (through the cache); an unusable one is skipped with its reason, or raises under strict."""
    settings = _audio_settings(model, data)
    loaded: list[tuple[AudioFile, np.ndarray, AudioInfo]] = []
    skipped: list[Skipped] = []
    for file in files:
        try:
            audio, info = _load_one(cache, file, model, data, settings)
        except AudioError as error:
            if strict:
                raise DataError(f"{error} (--strict turns every skipped file into an error)") from None
            logger.warning("skipped %s: %s", error.path, error.reason)
            skipped.append(Skipped(error.path, error.reason))
            continue
        _log_trimming(file, info, data)
        loaded.append((file, audio, info))
    return loaded, skipped


def _load_one(cache: AudioCache, file: AudioFile, model: ModelConfig, data: DataConfig,
              settings: dict[str, Any]) -> tuple[np.ndarray, AudioInfo]:
    try:
        return _load_cached(cache, file.path, model, data, settings)
    except AudioError:
        raise
    except MemoryError:
        raise AudioError(file.path, "too large to decode in memory; lower --max-seconds") from None
    except Exception as error:  # one unreadable file must not abort the whole dataset
        first = str(error).splitlines()[0][:200] if str(error) else ""
        raise AudioError(file.path, f"could not be decoded ({type(error).__name__}: {first})") from None


def _log_trimming(file: AudioFile, info: AudioInfo, data: DataConfig) -> None:
    if info.trimmed_fraction > 0.5:
        logger.warning(
            "%s: trimming removed %.2f s of %.2f s (%.0f%%) as silence; if that was audio, "
            "lower --trim-top-db (now %g) or set it to 0", file.path, info.trimmed_seconds,
            info.decoded_seconds, 100 * info.trimmed_fraction, data.trim_top_db,
        )
    elif info.trimmed_seconds > 0:
        logger.debug("%s: trimmed %.2f s (%.0f%%) of silence", file.path, info.trimmed_seconds,
                     100 * info.trimmed_fraction)


def _label_names(source: str | Path, loaded: list[tuple[AudioFile, np.ndarray, AudioInfo]],
                 labels: list[str] | None) -> list[str]:
    """The label table: the sub-folder names found, or the given table, which every file's label must be in."""
    found = {file.label for file, _, _ in loaded}
    if labels is None:
        return sorted(found)
    unknown = sorted(found - set(labels))
    if unknown:
        example = next(str(file.path) for file, _, _ in loaded if file.label == unknown[0])
        if unknown == [""]:
            raise DataError(f"{source}: files without a label (e.g. {example}) cannot be mapped to the model's "
                            f"labels {list(labels)}; put them in a sub-folder named by their label, or choose "
                            "one with --speaker.")
        raise DataError(f"{source}: label(s) {[u for u in unknown if u]} (e.g. {example}) are not among the "
                        f"model's labels {list(labels)}; its ids cannot be remapped. Relabel the files, or "
                        "leave them out.")
    return list(labels)


def _log_summary(result: PreparedData, split: bool) -> None:
    summary = result.summary()
    train, val, label_names = result.train, result.val, result.label_names
    counted = (f"{len(train)} train / {len(val)} validation files" if split
               else f"{len(train)} file{'s' * (len(train) != 1)} to evaluate")
    logger.info(
        "%d file%s: %d usable (%.1f s), %d skipped; %s; %d label%s",
        summary["num_files"], "s" * (summary["num_files"] != 1), summary["num_usable"], summary["total_seconds"],
        summary["num_skipped"], counted, len(label_names), "s" * (len(label_names) != 1),
    )


def _load_cached(cache, path, model, data, settings) -> tuple[np.ndarray, AudioInfo]:
    if not Path(path).is_file():
        raise AudioError(path, "no such file")
    key = cache.key(path, settings)
    entry = cache.load(key, ndim=1)
    if entry is not None:
        try:
            info = info_from_dict(entry[1])
            if info.decoded_seconds <= data.max_seconds:
                return entry[0], info
        except (TypeError, ValueError):
            pass  # a malformed sidecar is a miss: decode again and overwrite it
    audio, info = load_audio(
        path, model.sample_rate, trim_top_db=data.trim_top_db, trim_frame_length=data.trim_frame_length,
        remove_dc=data.remove_dc, normalize=data.normalize, max_seconds=data.max_seconds,
    )
    return cache.store(key, audio, info_to_dict(info)), info


def _mel_cached(cache, path, audio, model, data) -> np.ndarray:
    from wavenet_tf.core.mel import log_mel

    key = cache.key(path, _mel_settings(model, data)) + "-mel"
    entry = cache.load(key, ndim=2)
    if entry is not None and entry[0].shape == (len(audio) // model.hop_length, model.local_conditioning_channels):
        return entry[0]
    mel = log_mel(audio, model.sample_rate, model.local_conditioning_channels, model.hop_length,
                  n_fft=data.n_fft, fmin=data.fmin, fmax=data.fmax)
    return cache.store(key, mel, {"shape": list(mel.shape)})


def split_by_file(tracks: list[Track], val_split: float, seed: int) -> tuple[list[Track], list[Track]]:
    """Hold out about ``val_split`` of the files, label by label, the same for the same seed.

    Splitting by file (not by window) keeps validation honest: no validation window ever
    overlaps a training one. Each label contributes its share, so a globally conditioned
    model is validated on every speaker that has enough files. With one file there is
    nothing to hold out: validation then reads the training file (and says so).
    """
    if val_split <= 0 or len(tracks) < 2:
        if val_split > 0:
            logger.warning("only one usable file: validation windows come from the training file")
            return list(tracks), list(tracks)
        return list(tracks), []
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[Track]] = collections.defaultdict(list)
    for track in sorted(tracks, key=lambda t: t.path):
        by_label[track.label].append(track)
    val_paths: set[str] = set()
    for label in sorted(by_label):
        group = by_label[label]
        count = int(round(val_split * len(group)))
        if count >= len(group):
            count = len(group) - 1
        for i in rng.permutation(len(group))[:count]:
            val_paths.add(group[i].path)
    if not val_paths:
        largest = max(sorted(by_label), key=lambda name: len(by_label[name]))
        val_paths.add(by_label[largest][int(rng.integers(len(by_label[largest])))].path)
    ordered = sorted(tracks, key=lambda t: t.path)
    return [t for t in ordered if t.path not in val_paths], [t for t in ordered if t.path in val_paths]


def write_dataset_manifest(prepared: PreparedData, path: str | Path) -> None:
    """Save the label ids, the split and the skipped files as JSON (for runs and debugging)."""
    # Absolute paths: the record is read from other working directories (evaluate, export).
    entry = lambda t: {"path": str(Path(t.path).resolve()), "label": t.label, "seconds": t.info.seconds}
    record = {
        "labels": prepared.label_names,
        "train": [entry(t) for t in prepared.train],
        "val": [entry(t) for t in prepared.val],
        "skipped": [{"path": str(Path(s.path).resolve()), "reason": s.reason} for s in prepared.skipped],
    }
    # Atomic: a crash mid-write must not leave a run with half a record of its split.
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record, indent=2))
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


# --- windows --------------------------------------------------------------------------------

def aligned_target_length(receptive_field: int, target_length: int, hop_length: int) -> int:
    """The smallest target length >= ``target_length`` whose input length is a multiple of the hop.

    A locally conditioned model reads ``receptive_field + target_length − 1`` input
    samples and one mel frame per ``hop_length`` of them, so that length must divide.
    """
    inputs = receptive_field + target_length - 1
    return math.ceil(inputs / hop_length) * hop_length - receptive_field + 1


class WindowMaker:
    """Window ``index`` of a training stream, in NumPy: ``(classes, label_id, mel)``.

    The window depends only on ``(seed, index)``: no state to save, nothing to replay. Every
    window start in every track is equally likely; with ``hop_length`` (mel conditioning)
    windows start on frame boundaries and carry their frames.
    """

    def __init__(self, tracks: Sequence[Track | np.ndarray], receptive_field: int, target_length: int,
                 quantization_channels: int, seed: int, hop_length: int = 0, input_noise: float = 0.0,
                 input_noise_fraction: float = 1.0):
        self.tracks = tracks
        self.receptive_field = receptive_field
        self.input_noise, self.input_noise_fraction = float(input_noise), float(input_noise_fraction)
        self.arrays = [t.audio if isinstance(t, Track) else np.asarray(t, np.float32) for t in tracks]
        self.window = receptive_field + target_length
        self.stride = hop_length or 1
        self.hop_length = hop_length
        self.num_frames = (self.window - 1) // hop_length if hop_length else 0
        self.quantization_channels = quantization_channels
        self.seed = seed
        self.label_ids = np.array([t.label_id if isinstance(t, Track) else 0 for t in tracks], np.int32)
        lengths = np.array([len(a) for a in self.arrays], dtype=np.int64)
        starts = np.maximum((lengths - self.window) // self.stride + 1, 0)
        if starts.sum() == 0:
            raise DataError(
                f"every track is shorter than one window of {self.window} samples (receptive field "
                f"{receptive_field} + target length {target_length}); the longest has {lengths.max(initial=0)}. "
                "Use a smaller --target-length, a preset with a smaller receptive field, or longer audio."
            )
        self.cumulative = np.cumsum(starts)

    def __call__(self, index) -> tuple[np.ndarray, np.ndarray, np.int32, np.ndarray]:
        """``(inputs, targets, label_id, mel)`` of window ``index``: inputs ``(RF + T - 1,)``, targets ``(T,)``."""
        rng = np.random.default_rng([self.seed, int(index)])
        position = int(rng.integers(0, self.cumulative[-1]))
        which = int(np.searchsorted(self.cumulative, position, side="right"))
        offset = int(position - (self.cumulative[which - 1] if which > 0 else 0)) * self.stride
        classes = mu_law_encode(self.arrays[which][offset : offset + self.window], self.quantization_channels)
        if self.hop_length:
            frame = offset // self.hop_length
            mel = np.asarray(self.tracks[which].mel[frame : frame + self.num_frames], np.float32)
        else:
            mel = np.zeros((0, 0), np.float32)
        inputs = self.jitter(classes[:-1], rng) if self.input_noise else classes[:-1]
        return inputs, classes[self.receptive_field:], self.label_ids[which], mel

    def jitter(self, inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``inputs`` with a fraction of their classes moved by Gaussian noise rounded to whole classes.

        Only the inputs: the targets stay the true next samples. A model that has only ever
        read clean pasts meets its own draws at generation time, each a little off, and
        amplifies the errors into noise (exposure bias); one taught that its past may be off
        keeps the tone. Each window draws its own σ, uniformly from 0 to ``input_noise``: the
        model sees every amount of error from none to a lot and learns how far to trust its
        past, rather than always discounting it by one fixed amount (which measured quieter,
        decaying tones). Drawn from the window's own generator: still a pure function of
        ``(seed, index)``.
        """
        sigma = self.input_noise * rng.random()
        moved = rng.random(inputs.shape) < self.input_noise_fraction
        offsets = np.rint(rng.normal(0.0, 1.0, inputs.shape) * sigma) * moved
        return np.clip(inputs + offsets.astype(inputs.dtype), 0, self.quantization_channels - 1).astype(inputs.dtype)


def window_dataset(
    tracks: Sequence[Track | np.ndarray],
    receptive_field: int,
    target_length: int,
    batch_size: int,
    quantization_channels: int = 256,
    seed: int = 0,
    start_step: int = 0,
    global_conditioning: bool = False,
    local_conditioning: bool = False,
    hop_length: int = 1,
    input_noise: float = 0.0,
    input_noise_fraction: float = 1.0,
):
    """An endless stream of training batches drawn at random from ``tracks``.

    Every window start in every track is equally likely (long files weigh more), and each
    window is drawn independently — the shuffle is the sampling itself. Window ``i`` is a
    pure function of ``(seed, i)``, so batch ``k`` is too: the stream is the same for the
    same seed, and ``start_step`` resumes it exactly where a run stopped without replaying
    it. Windows are cut from the (memory-mapped) tracks and quantized to mu-law classes in
    NumPy inside parallel map calls, then batched and prefetched.

    Args:
        tracks: `Track`s, or plain float32 arrays for unconditioned training.
        receptive_field: the model's receptive field in samples.
        target_length: predicted samples per window.
        batch_size: windows per batch.
        quantization_channels: mu-law classes.
        seed: seed of the window positions.
        start_step: index of the first batch.
        global_conditioning: add each window's label id as ``"global_id"``.
        local_conditioning: add each window's mel frames as ``"mel"`` (windows then start
            on frame boundaries, and the input length must be a multiple of ``hop_length``).
        hop_length: samples per mel frame.
        input_noise: σ, in classes, of the Gaussian jitter on training inputs (0: clean;
            targets are always clean; `WindowMaker.jitter`).
        input_noise_fraction: the fraction of input samples jittered.

    Returns:
        A `tf.data.Dataset` of ``(inputs, targets)``: ``inputs["audio"]`` int32
        ``(batch, receptive_field + target_length − 1)``, targets int32
        ``(batch, target_length)``, plus ``"global_id"`` ``(batch,)`` and ``"mel"``
        ``(batch, input_length // hop_length, n_mels)`` when asked for.
    """
    import tensorflow as tf

    window = receptive_field + target_length
    input_length = window - 1
    if local_conditioning and input_length % hop_length:
        raise DataError(
            f"receptive_field + target_length − 1 = {input_length} is not a multiple of the hop length {hop_length}; "
            f"use target_length {aligned_target_length(receptive_field, target_length, hop_length)}."
        )
    if (global_conditioning or local_conditioning) and not all(isinstance(t, Track) for t in tracks):
        raise ValueError("conditioning needs Track objects (from `prepare`), not plain arrays.")
    make_window = WindowMaker(tracks, receptive_field, target_length, quantization_channels, seed,
                              hop_length if local_conditioning else 0, input_noise, input_noise_fraction)
    num_frames = input_length // hop_length
    n_mels = tracks[0].mel.shape[1] if local_conditioning else 0

    def to_example(index):
        audio, targets, label, mel = tf.numpy_function(make_window, [index], [tf.int32, tf.int32, tf.int32, tf.float32],
                                                       stateful=False)
        inputs = {"audio": tf.ensure_shape(audio, (input_length,))}
        if global_conditioning:
            inputs["global_id"] = tf.ensure_shape(label, ())
        if local_conditioning:
            inputs["mel"] = tf.ensure_shape(mel, (num_frames, n_mels))
        return inputs, tf.ensure_shape(targets, (target_length,))

    options = tf.data.Options()
    # Under tf.distribute every worker builds the same stream and keeps its share of each batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (
        tf.data.Dataset.range(start_step * batch_size, 2**62)
        .map(to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )
