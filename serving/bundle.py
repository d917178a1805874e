"""Load an exported bundle without TensorFlow: validate the card, the files and the graphs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUNDLE_FORMAT_VERSION = 2  # 2 added step_sampler.onnx
REQUIRED = ("wavenet.onnx", "step.onnx", "step_sampler.onnx")


class BundleError(ValueError):
    """A bundle that cannot be used; the message says what is wrong and how to fix it."""


def file_digest(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (names and contents, in sorted order)."""
    digest = hashlib.sha256()
    paths = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in paths:
        if path.is_dir():
            digest.update(str(p.relative_to(path)).encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass
class Bundle:
    path: Path
    card: dict[str, Any]

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def global_conditioning(self) -> bool:
        return bool(self.card["conditioning"]["global"])

    @property
    def local_conditioning(self) -> bool:
        return bool(self.card["conditioning"]["local"])

    @property
    def hop_length(self) -> int:
        local = self.card["conditioning"]["local"]
        return local["hop_length"] if local else 1


def _how_to_export(path: Path) -> str:
    """The export command to suggest; never one whose --out would replace ``path``'s own files."""
    if (path / "config.json").is_file():
        target = path.parent / f"{path.name}-bundle"
        return f"It is a run directory: export it with `wavenet export {path} --out {target}` and use {target}."
    if path.is_dir() and any(path.iterdir()):
        return "Create one in a new folder with `wavenet export RUN --out bundles/NAME`."
    return f"Create one with `wavenet export RUN --out {path}`."


def load_bundle(path: str | Path, check_graphs: bool = True) -> Bundle:
    """Open and validate ``path``.

    Refuses, with what to do: a missing folder or card, an unknown format version, a
    missing or altered file (SHA-256 against the card), and a graph whose input/output
    names differ from the card's contract.
    """
    path = Path(path)
    card_path = path / "model.json"
    if not card_path.is_file():
        raise BundleError(f"{path}: no model.json — not a bundle. {_how_to_export(path)}")
    try:
        card = json.loads(card_path.read_text())
    except ValueError as error:
        raise BundleError(f"{card_path}: not valid JSON ({error}); re-export the bundle.") from None
    version = card.get("format_version")
    if version != BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{card_path}: format_version {version!r} is not supported (this wavenet-tf reads "
                          f"{BUNDLE_FORMAT_VERSION}); re-export the run with this version.")
    needed = list(REQUIRED) + (["cond.onnx"] if card["conditioning"]["local"] else [])
    for name in needed:
        if not (path / name).exists():
            raise BundleError(f"{path}: {name} is missing; re-export the run (`wavenet export RUN --out {path}`).")
    for name, digest in card.get("files", {}).items():
        if (path / name).exists() and file_digest(path / name) != digest:
            raise BundleError(f"{path / name}: contents differ from the checksum in model.json (truncated, "
                              "altered or from another export); re-export the bundle.")
    bundle = Bundle(path, card)
    if check_graphs:
        from serving.onnx_step import make_session

        for name in needed:
            try:
                session = make_session(str(path / name))
            except Exception as error:  # onnxruntime raises its own exception types
                raise BundleError(f"{path / name}: onnxruntime cannot load it ({error}); re-export the bundle.") from None
            contract = card["graphs"][name]
            for kind, found in (("inputs", session.get_inputs()), ("outputs", session.get_outputs())):
                expected = [item["name"] for item in contract[kind]]
                names = [item.name for item in found]
                if sorted(names) != sorted(expected):
                    raise BundleError(f"{path / name}: graph {kind} are {names}, the card says {expected}; "
                                      "the files come from different exports — re-export the bundle.")
    return bundle
