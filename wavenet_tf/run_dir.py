"""The run directory: what `wavenet train` writes, reads back and refuses to overwrite.

Layout (``wavenet train DATA --out RUN``)::

    config.json        everything resolved: model, data, training, data source, labels
    dataset.json       label ids, the train/validation split by file, skipped files
    state.json         the commit point: epoch, step, best, history, latest checkpoint
    checkpoints/       tf.train.Checkpoint of weights + optimizer state (3 kept)
    model_last.keras   the WaveNet after the latest epoch
    model_best.keras   the WaveNet with the lowest validation loss so far
    metrics.csv        one row per epoch: losses, bits/sample, accuracy, learning rate
    logs/              TensorBoard: scalars, learning rate, generated audio

Every file is written to a temporary name and renamed into place; ``state.json`` is
written last. A crash at any moment leaves the previous ``state.json`` pointing at a
complete checkpoint, so resuming loses at most one epoch (the checkpoint interval).
``.lock`` is held while a training writes (`RunLock`).

Nothing here imports TensorFlow until a model is loaded.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from wavenet_tf.core.config import DataConfig, ModelConfig, TrainConfig
from wavenet_tf.core.files import RunError, file_digest, read_json, verify_checksum, write_json

if TYPE_CHECKING:
    from wavenet_tf.model import WaveNet

RUN_FORMAT_VERSION = 1

__all__ = ["RUN_FORMAT_VERSION", "RunError", "RunLock", "checkpoint_digests", "config_diff", "load_run_config",
           "load_run_model", "metrics_csv", "new_state", "open_run", "read_state", "verify_checkpoint",
           "write_run_config"]


def load_run_config(run: str | Path) -> tuple[ModelConfig, DataConfig, TrainConfig, dict[str, Any]]:
    path = Path(run) / "config.json"
    if not path.is_file():
        raise RunError(f"{run} is not a run directory (no config.json); create one with `wavenet train DATA --out {run}`.")
    record = read_json(path)
    if not isinstance(record, dict):
        raise RunError(f"{path}: expected a JSON object, got {type(record).__name__}; the file is damaged.")
    if record.get("format_version") != RUN_FORMAT_VERSION:
        raise RunError(f"{path}: format_version {record.get('format_version')!r} is not {RUN_FORMAT_VERSION}; "
                       "this run was written by another version of wavenet-tf.")
    configs = []
    for key, cls in (("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig)):
        if not isinstance(record.get(key), dict):
            raise RunError(f"{path}: \"{key}\" must be an object of {cls.__name__} fields, got "
                           f"{type(record.get(key)).__name__}; the file is damaged.")
        try:
            configs.append(cls.from_dict(record[key]))
        except (TypeError, ValueError) as error:
            raise RunError(f"{path}: \"{key}\" is not a valid {cls.__name__} ({error}).") from None
    labels = record.get("labels", [])
    if not (isinstance(labels, list) and all(isinstance(label, str) for label in labels)):
        raise RunError(f"{path}: \"labels\" must be a list of strings; the file is damaged.")
    if not isinstance(record.get("data_source", ""), str):
        raise RunError(f"{path}: \"data_source\" must be a string; the file is damaged.")
    return configs[0], configs[1], configs[2], record


def read_state(run: Path) -> dict[str, Any]:
    """``state.json``, checked field by field so a damaged commit point is named, not a traceback."""
    path = run / "state.json"
    state = read_json(path)
    fields = {"epoch": int, "step": int, "history": list}
    problems = [name for name, kind in fields.items()
                if not isinstance(state.get(name) if isinstance(state, dict) else None, kind)
                or isinstance(state.get(name), bool)] if isinstance(state, dict) else ["the whole file"]
    if not problems:
        if state["epoch"] < 0 or state["step"] < 0:
            problems.append("epoch/step (negative)")
        if not (state.get("checkpoint") is None or isinstance(state.get("checkpoint"), str)):
            problems.append("checkpoint")
        best = state.get("best")
        if not (best is None or (isinstance(best, dict) and isinstance(best.get("value"), (int, float))
                                 and isinstance(best.get("metric"), str))):
            problems.append("best")
        if not isinstance(state.get("checkpoint_files", {}), dict):
            problems.append("checkpoint_files")
        if not all(isinstance(row, dict) and isinstance(row.get("epoch"), int) for row in state["history"]):
            problems.append("history")
    if problems:
        raise RunError(f"{path}: damaged ({', '.join(problems)} missing or of the wrong type); the run cannot "
                       "resume from it. Restore it from a copy, or start a new run with another --out "
                       "(model_last.keras holds the latest weights).")
    return state


def load_run_model(run: str | Path, which: str = "best") -> "WaveNet":
    """The WaveNet saved in a run directory (``best`` falls back to ``last``)."""
    import keras

    import wavenet_tf.model  # noqa: F401  (registers the layers the .keras file names)

    run = Path(run)
    for name in ([f"model_{which}.keras", "model_last.keras"] if which == "best" else [f"model_{which}.keras"]):
        if (run / name).is_file():
            verify_checksum(run / name)
            try:
                return keras.saving.load_model(run / name)
            except Exception as error:  # a damaged zip/h5 surfaces as many exception types
                raise RunError(f"{run / name}: cannot be loaded ({type(error).__name__}: {error}).") from None
    raise RunError(f"{run}: no saved model yet (model_best.keras / model_last.keras); train at least one epoch.")


def checkpoint_digests(prefix: Path) -> dict[str, str]:
    """SHA-256 of each file of the TF checkpoint ``prefix`` (its ``.index`` and ``.data-*`` shards)."""
    files = sorted(prefix.parent.glob(prefix.name + ".*"))
    if not files:
        raise RunError(f"{prefix}: the checkpoint wrote no files.")
    return {f.name: file_digest(f) for f in files}


def verify_checkpoint(run: Path, state: dict[str, Any]) -> Path:
    """The committed checkpoint's prefix, after checking its files against state.json's digests."""
    prefix = run / "checkpoints" / state["checkpoint"]
    for name, digest in state.get("checkpoint_files", {}).items():
        path = prefix.parent / name
        if not path.is_file():
            raise RunError(f"{path}: missing, but state.json's checkpoint needs it; the run cannot resume. "
                           "Restore the file, or start a new run (model_last.keras holds the last weights).")
        if file_digest(path) != digest:
            raise RunError(f"{path}: contents differ from the checksum in state.json (truncated or altered); "
                           "the run cannot resume from it. Restore the file, or start a new run.")
    return prefix


def metrics_csv(rows: list[dict[str, Any]]) -> str:
    """``metrics.csv``'s text: one row per epoch, a column for every key any row has."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class RunLock:
    """An exclusive lock on a run directory, held while a training writes to it.

    ``RUN/.lock`` is locked with ``flock`` and holds the owner's pid: a second training or
    resume of the same run is refused naming that pid, and a lock left by a dead process
    is no obstacle (the kernel releases ``flock`` when its holder exits). The lock creates
    RUN (and missing parents) and, when the training inside fails, removes those it created
    that are still empty.
    """

    def __init__(self, run: Path):
        self.path = Path(run) / ".lock"
        self.fd: int | None = None
        self.created: list[Path] = []  # folders the lock made, deepest first

    def __enter__(self) -> "RunLock":
        import fcntl

        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            self.created.append(folder)
            folder = folder.parent
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 64).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise RunError(f"{self.path.parent} is being trained by pid {owner} (it holds {self.path}); "
                               "wait for it to finish or stop it — two trainings would overwrite each "
                               "other's checkpoints.") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file the previous holder unlinked while we waited to lock it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, kind, *exc) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)  # closing releases the flock
            self.fd = None
        if kind is not None:
            # A training that failed before writing anything (a missing --val-data, say) leaves no
            # empty --out behind: the folders the lock made go again, if still empty; nothing else.
            for folder in self.created:
                try:
                    folder.rmdir()
                except OSError:
                    break


def new_state() -> dict[str, Any]:
    """``state.json`` of a run that has committed no epoch."""
    return {"epoch": 0, "step": 0, "checkpoint": None, "best": None, "history": []}


def write_run_config(run: Path, model_config: ModelConfig, data_config: DataConfig, train_config: TrainConfig,
                     data_source: str | Path, labels: Sequence[str] = (), **extra: Any) -> None:
    """``config.json``: the resolved configurations, the data source (absolute) and the label names.

    ``extra`` adds the fields a training records beside them (validation source, target
    length, receptive field, data summary); `load_run_config` reads the file back.
    """
    write_json(Path(run) / "config.json", {
        "format_version": RUN_FORMAT_VERSION, "model": model_config.to_dict(), "data": data_config.to_dict(),
        # Absolute, so `--resume` without DATA works from any working directory.
        "train": train_config.to_dict(), "data_source": os.path.abspath(str(data_source)), "labels": list(labels),
        **extra,
    })


def open_run(run: Path, resume: bool) -> tuple[ModelConfig, DataConfig, TrainConfig, dict[str, Any]] | None:
    """The saved run in ``run`` to resume (`load_run_config`'s tuple), or None for a new run.

    Refuses what training there would damage: files of a run without its config.json, a run
    without ``resume``, ``resume`` without a run, and checkpoints without their commit point.
    """
    leftovers = [name for name in ("state.json", "checkpoints", "model_best.keras", "model_last.keras")
                 if (run / name).exists()]
    if not (run / "config.json").exists() and leftovers:
        raise RunError(f"{run} holds {', '.join(leftovers)} but no config.json; training there would overwrite "
                       "them. Restore config.json from a copy to --resume, or choose another --out "
                       "(model_last.keras holds the latest weights).")
    if not (run / "config.json").exists():
        if resume:
            raise RunError(f"--resume: {run} holds no run to resume (no config.json).")
        return None
    if not resume:
        raise RunError(f"{run} already holds a run; pass --resume to continue it, or choose another --out.")
    saved = load_run_config(run)
    committed = [name for name in ("checkpoints", "model_best.keras", "model_last.keras") if (run / name).exists()]
    if not (run / "state.json").is_file() and committed:
        raise RunError(f"{run}: state.json (the commit point) is missing but the run holds "
                       f"{', '.join(committed)}; resuming would restart from scratch and overwrite them. "
                       "Restore state.json from a copy, or copy model_last.keras elsewhere and start a new "
                       "run with another --out.")
    return saved


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``field: old -> new`` for every field that differs (for refusals that name the change)."""
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
