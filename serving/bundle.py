"""Load an exported bundle without TensorFlow: validate the card, the files and the graphs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavenet_tf.core.files import file_digest

BUNDLE_FORMAT_VERSION = 2  # 2 added step_sampler.onnx
REQUIRED = ("wavenet.onnx", "step.onnx", "step_sampler.onnx")


class BundleError(ValueError):
    """A bundle that cannot be used; the message says what is wrong and how to fix it."""


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
    def excerpts(self) -> list[dict[str, Any]]:
        """The card's excerpts of the training audio (`serving.excerpts`); empty for older bundles."""
        return list(self.card.get("excerpts") or [])

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
    version = card.get("format_version") if isinstance(card, dict) else None
    if version != BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{card_path}: format_version {version!r} is not supported (this wavenet-tf reads "
                          f"{BUNDLE_FORMAT_VERSION}); re-export the run with this version.")
    validate_card(card, card_path)
    needed = list(REQUIRED) + (["cond.onnx"] if card["conditioning"]["local"] else [])
    for name in needed:
        if not (path / name).exists():
            raise BundleError(f"{path}: {name} is missing; re-export the run (`wavenet export RUN --out {path}`).")
        if name not in card["files"]:
            raise BundleError(f"{card_path}: \"files\" has no checksum for {name}; the card was edited — re-export "
                              "the bundle.")
    # Excerpts (added within format 2: older bundles have none and still load) are files too.
    for entry in card.get("excerpts") or []:
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.startswith("excerpts/") or name not in card["files"]:
            raise BundleError(f"{card_path}: excerpt entry {entry!r} is not a file under excerpts/ listed with a "
                              "checksum; re-export the bundle.")
        if not (path / name).is_file():
            raise BundleError(f"{path}: {name} is missing; re-export the run (`wavenet export RUN --out {path}`).")
    for name, digest in card["files"].items():
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
            contract = card["graphs"][name]
            for kind, found in (("inputs", session.get_inputs()), ("outputs", session.get_outputs())):
                expected = [item["name"] for item in contract[kind]]
                names = [item.name for item in found]
                if sorted(names) != sorted(expected):
                    raise BundleError(f"{path / name}: graph {kind} are {names}, the card says {expected}; "
                                      "the files come from different exports — re-export the bundle.")
                # Same names, other widths: a graph from a model of another size.
                shapes = {item.name: list(item.shape) for item in found}
                for item in contract[kind]:
                    actual = shapes[item["name"]]
                    if len(actual) != len(item["shape"]) or any(
                            isinstance(want, int) and isinstance(got, int) and want != got
                            for want, got in zip(item["shape"], actual)):
                        raise BundleError(f"{path / name}: {kind[:-1]} {item['name']!r} has shape {actual}, the "
                                          f"card says {item['shape']}; the graph comes from a model of another "
                                          "size — re-export the bundle.")
    return bundle


def _is_int(value: Any, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_card(card: Any, card_path: Path) -> None:
    """Refuse, naming the field, a card whose values have the wrong type or disagree with each other.

    Everything serving reads from the card is checked here, so an edited or damaged card
    gives one line naming the field rather than a traceback from deep in generation.
    """

    def fail(field: str, why: str) -> None:
        raise BundleError(f"{card_path}: {field} {why}; the card is damaged or was edited — re-export the bundle.")

    for name in ("sample_rate", "quantization_channels", "kernel_size", "initial_kernel_size", "residual_channels",
                 "gate_channels", "skip_channels", "receptive_field"):
        if not _is_int(card.get(name), 2 if name == "quantization_channels" else 1):
            fail(f"\"{name}\"", f"must be a positive integer, got {card.get(name)!r}")
    dilations = card.get("dilations")
    if not (isinstance(dilations, list) and dilations and all(_is_int(d) for d in dilations)):
        fail("\"dilations\"", "must be a non-empty list of positive integers")
    if not isinstance(card.get("model_config"), dict):
        fail("\"model_config\"", "must be an object")
    from wavenet_tf.core.config import ModelConfig  # plain data, no TensorFlow

    try:
        config = ModelConfig.from_dict(card["model_config"])
    except (TypeError, ValueError) as error:
        fail("\"model_config\"", f"is not a valid model configuration ({error})")
    expected = {"sample_rate": config.sample_rate, "quantization_channels": config.quantization_channels,
                "kernel_size": config.kernel_size, "initial_kernel_size": config.initial_kernel_size,
                "residual_channels": config.residual_channels, "gate_channels": config.gate_channels,
                "skip_channels": config.skip_channels, "receptive_field": config.receptive_field,
                "dilations": list(config.all_dilations)}
    for name, value in expected.items():
        if card[name] != value:
            fail(f"\"{name}\"", f"is {card[name]!r} but model_config gives {value!r}")
    conditioning = card.get("conditioning")
    if not (isinstance(conditioning, dict) and "global" in conditioning and "local" in conditioning):
        fail("\"conditioning\"", "must be an object with \"global\" and \"local\"")
    spec = conditioning["global"]
    if config.global_conditioning_classes:
        if not (isinstance(spec, dict) and spec.get("classes") == config.global_conditioning_classes):
            fail("\"conditioning.global\"", f"must give classes {config.global_conditioning_classes}")
        names = spec.get("names", [])
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)
                and len(names) <= spec["classes"]):
            fail("\"conditioning.global.names\"", f"must be a list of at most {spec['classes']} strings")
    elif spec is not None:
        fail("\"conditioning.global\"", "must be null: the model is not globally conditioned")
    local = conditioning["local"]
    if config.local_conditioning_channels:
        if not (isinstance(local, dict) and local.get("n_mels") == config.local_conditioning_channels
                and local.get("hop_length") == config.hop_length and _is_int(local.get("n_fft"))
                and _is_number(local.get("fmin")) and _is_number(local.get("fmax"))):
            fail("\"conditioning.local\"", f"must give n_mels {config.local_conditioning_channels}, hop_length "
                 f"{config.hop_length}, n_fft, fmin and fmax")
    elif local is not None:
        fail("\"conditioning.local\"", "must be null: the model is not locally conditioned")
    step = card.get("step")
    layers, width = len(expected["dilations"]), config.residual_channels
    if not isinstance(step, dict):
        fail("\"step\"", "must be an object")
    delays = step.get("delays")
    taps = config.kernel_size - 1
    if not (isinstance(delays, list) and len(delays) == layers and all(
            isinstance(row, list) and len(row) == taps and all(_is_int(d, 1) for d in row) for row in delays)):
        fail("\"step.delays\"", f"must be {layers} rows of {taps} positive integers (each layer's tap delays)")
    offsets = step.get("residual_offsets")
    if not (isinstance(offsets, list) and len(offsets) == layers and all(
            isinstance(row, list) and len(row) == width and all(_is_number(v) for v in row) for row in offsets)):
        fail("\"step.residual_offsets\"", f"must be {layers} rows of {width} finite numbers")
    graphs = card.get("graphs")
    if not isinstance(graphs, dict):
        fail("\"graphs\"", "must be an object")
    needed = list(REQUIRED) + (["cond.onnx"] if config.local_conditioning_channels else [])
    for name in needed:
        contract = graphs.get(name)
        if not (isinstance(contract, dict) and all(
                isinstance(contract.get(kind), list) and all(
                    isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("shape"), list)
                    for item in contract[kind]) for kind in ("inputs", "outputs"))):
            fail(f"\"graphs.{name}\"", "must list inputs and outputs, each with a name and a shape")
    files = card.get("files")
    if not isinstance(files, dict):
        fail("\"files\"", "is missing or not an object (without it no file could be checked against its checksum)")
    for name, digest in files.items():
        # A card entry names a file of this bundle: never a path outside it ("/usr", "../x"). The
        # one folder is excerpts/ (serving.excerpts), one level deep.
        parts = name.split("/") if isinstance(name, str) else [""]
        inside = len(parts) == 1 or (len(parts) == 2 and parts[0] == "excerpts")
        if not (inside and all(part not in ("", ".", "..") for part in parts)) or "\\" in name or "\0" in name:
            fail(f"\"files\" entry {name!r}", "is not a file name inside the bundle")
        if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            fail(f"\"files\" entry {name!r}", "must be a SHA-256 hex digest")
    data = card.get("data")
    if data is not None:
        if not (isinstance(data, dict) and _is_number(data.get("trim_top_db", 0)) and data.get("trim_top_db", 0) >= 0
                and _is_int(data.get("trim_frame_length", 1))
                and all(isinstance(data.get(key, False), bool) for key in ("remove_dc", "normalize"))):
            fail("\"data\"", "must give trim_top_db (>= 0), trim_frame_length (> 0), remove_dc and normalize "
                 "(true/false)")
