"""Load an exported bundle without TensorFlow: validate the card, the files and the graphs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavenet_tf.core.card import BUNDLE_FORMAT_VERSION, REQUIRED, BundleError, ModelCard
from wavenet_tf.core.files import file_digest

__all__ = ["BUNDLE_FORMAT_VERSION", "REQUIRED", "Bundle", "BundleError", "ModelCard", "load_bundle"]


@dataclass
class Bundle:
    path: Path
    card: ModelCard

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def global_conditioning(self) -> bool:
        return self.card.global_conditioning is not None

    @property
    def local_conditioning(self) -> bool:
        return self.card.local_conditioning is not None

    @property
    def excerpts(self) -> list[dict[str, Any]]:
        """The card's excerpts of the training audio (`serving.excerpts`); empty for older bundles."""
        return list(self.card.excerpts or [])

    @property
    def hop_length(self) -> int:
        return self.card.hop_length


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
        raw = json.loads(card_path.read_text())
    except ValueError as error:
        raise BundleError(f"{card_path}: not valid JSON ({error}); re-export the bundle.") from None
    card = ModelCard.from_dict(raw, card_path)
    needed = list(REQUIRED) + (["cond.onnx"] if card.local_conditioning else [])
    for name in needed:
        if not (path / name).exists():
            raise BundleError(f"{path}: {name} is missing; re-export the run (`wavenet export RUN --out {path}`).")
        if name not in card.files:
            raise BundleError(f"{card_path}: \"files\" has no checksum for {name}; the card was edited — re-export "
                              "the bundle.")
    for entry in card.excerpts or ():
        if not (path / entry["file"]).is_file():
            raise BundleError(f"{path}: {entry['file']} is missing; re-export the run "
                              f"(`wavenet export RUN --out {path}`).")
    for name, digest in card.files.items():
        # An optional file that is absent (step_native.onnx) is simply not used.
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
            contract = card.graphs[name]
            for kind, found in (("inputs", session.get_inputs()), ("outputs", session.get_outputs())):
                expected = [item.name for item in getattr(contract, kind)]
                names = [item.name for item in found]
                if sorted(names) != sorted(expected):
                    raise BundleError(f"{path / name}: graph {kind} are {names}, the card says {expected}; "
                                      "the files come from different exports — re-export the bundle.")
                # Same names, other widths: a graph from a model of another size.
                shapes = {item.name: list(item.shape) for item in found}
                for item in getattr(contract, kind):
                    actual = shapes[item.name]
                    if len(actual) != len(item.shape) or any(
                            isinstance(want, int) and isinstance(got, int) and want != got
                            for want, got in zip(item.shape, actual)):
                        raise BundleError(f"{path / name}: {kind[:-1]} {item.name!r} has shape {actual}, the "
                                          f"card says {list(item.shape)}; the graph comes from a model of another "
                                          "size — re-export the bundle.")
    return bundle
