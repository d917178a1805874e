"""The model card (a bundle's ``model.json``) as a frozen, typed object: export writes it, serving reads it.

`ModelCard.from_dict` is the one place the card is validated: every field serving reads is
checked there, so an edited or damaged card gives one line naming the field instead of a
traceback from deep in generation. `ModelCard.to_dict` writes the JSON export has always
written (the file format is unchanged; `BUNDLE_FORMAT_VERSION` names it).

Two names on the card look alike: the JSON's top-level ``dilations`` lists the dilation
of every layer (all stacks), while ``model_config.dilations`` is one stack. On the object
the first is `ModelCard.layer_dilations`; the second stays `ModelCard.model_config.dilations`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from wavenet_tf.core.config import ModelConfig

BUNDLE_FORMAT_VERSION = 2  # 2 added step_sampler.onnx
REQUIRED = ("wavenet.onnx", "step.onnx", "step_sampler.onnx")
# DataConfig's defaults: what every run used before the card recorded its own cleaning settings.
DEFAULT_CLEANING = {"trim_top_db": 50.0, "trim_frame_length": 512, "remove_dc": True, "normalize": False}
# The card's integer sizes, in the JSON's order; each must agree with model_config.
_SIZES = ("sample_rate", "quantization_channels", "kernel_size", "initial_kernel_size", "residual_channels",
          "gate_channels", "skip_channels", "receptive_field")


class BundleError(ValueError):
    """A bundle that cannot be used; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class GlobalConditioning:
    """A speaker (label) model: how many classes, and the names of those that have one."""

    classes: int
    names: tuple[str, ...]


@dataclass(frozen=True)
class LocalConditioning:
    """A mel-conditioned model (vocoder): the log-mel frames it takes."""

    n_mels: int
    hop_length: int
    upsample_scales: tuple[int, ...]
    n_fft: int
    fmin: float
    fmax: float


@dataclass(frozen=True)
class TrainingSummary:
    """What the run had done when it was exported (informational; nothing reads it)."""

    data_seconds: float | None = None
    epochs: int | None = None
    steps: int | None = None
    val_bits_per_sample: float | None = None
    train_bits_per_sample: float | None = None


@dataclass(frozen=True)
class DataCleaning:
    """How the training audio was cleaned; `serving.card_audio` applies it to audio decoded for the model."""

    trim_top_db: float
    trim_frame_length: int
    remove_dc: bool
    normalize: bool
    n_fft: int | None = None
    fmin: float | None = None
    fmax: float | None = None

    def cleaning(self) -> dict[str, Any]:
        """The keyword arguments of `wavenet_tf.core.audio.load_audio` that reproduce the run's cleaning."""
        return {key: getattr(self, key) for key in DEFAULT_CLEANING}


@dataclass(frozen=True)
class StepState:
    """The step graphs' state convention: each layer's tap delays and the offsets its ring buffer stores."""

    delays: tuple[tuple[int, ...], ...]  # [layer][tap]
    residual_offsets: tuple[tuple[float, ...], ...]  # [layer][residual channel]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a graph: its name, dtype, shape (ints and symbolic names) and meaning."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str | None = None
    meaning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "meaning": self.meaning}


@dataclass(frozen=True)
class GraphContract:
    """A graph's inputs and outputs, as export built it and serving checks it."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def from_dict(cls, contract: dict[str, Any]) -> GraphContract:
        return cls(*(tuple(TensorSpec(item["name"], tuple(item["shape"]), item.get("dtype"), item.get("meaning"))
                           for item in contract[kind]) for kind in ("inputs", "outputs")))

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [item.to_dict() for item in self.inputs],
                "outputs": [item.to_dict() for item in self.outputs]}


@dataclass(frozen=True)
class ModelCard:
    """A bundle's model card. Fields follow ``model.json``'s keys, except ``layer_dilations`` (JSON ``dilations``).

    ``files`` and ``excerpts`` are None only while export is still writing the bundle (the
    ONNX metadata repeats the card without them); `from_dict` always sets ``files``, and
    ``excerpts`` stays None for bundles written before excerpts existed.
    """

    format_version: int
    producer: str | None
    sample_rate: int
    quantization_channels: int
    mu: int | None
    layer_dilations: tuple[int, ...]  # every layer, all stacks (model_config.dilations is one stack)
    kernel_size: int
    initial_kernel_size: int
    residual_channels: int
    gate_channels: int
    skip_channels: int
    receptive_field: int
    receptive_field_ms: float | None
    model_config: ModelConfig
    global_conditioning: GlobalConditioning | None
    local_conditioning: LocalConditioning | None
    training: TrainingSummary | None
    data: DataCleaning | None
    step: StepState
    opset: int | None
    graphs: dict[str, GraphContract]
    files: dict[str, str] | None = None
    excerpts: tuple[dict[str, Any], ...] | None = None
    # The top-k its generators draw with unless told (``model.json``'s "draw"); None: DEFAULT_TOP_K.
    draw_top_k: int | None = None

    @property
    def default_top_k(self) -> int:
        """The top-k generation uses unless told: the card's own, else `DEFAULT_TOP_K` (every class)."""
        from wavenet_tf.core.sampling import DEFAULT_TOP_K

        return DEFAULT_TOP_K if self.draw_top_k is None else self.draw_top_k

    @property
    def num_layers(self) -> int:
        return len(self.layer_dilations)

    @property
    def hop_length(self) -> int:
        """Samples per conditioning frame; 1 for a model without local conditioning."""
        return self.local_conditioning.hop_length if self.local_conditioning else 1

    def cleaning(self) -> dict[str, Any]:
        """`load_audio`'s cleaning keywords; DataConfig's defaults for cards written before ``data`` existed."""
        return dict(DEFAULT_CLEANING) if self.data is None else self.data.cleaning()

    @classmethod
    def from_dict(cls, card: Any, path: str | Path = "model.json") -> ModelCard:
        """Validate ``card`` (parsed JSON) and build the object; `BundleError` naming the field otherwise."""
        path = Path(path)
        _check_format(card, path)
        # Checked in this order so that a card with several faults names the same one as before.
        config = _check_sizes(card, path)
        global_conditioning, local_conditioning = _conditioning(card, config, path)
        step, graphs = _step(card, config, path), _graphs(card, config, path)
        files, data = _files(card, path), _data(card, path)
        training = card.get("training")
        return cls(
            format_version=card["format_version"], producer=card.get("producer"), mu=card.get("mu"),
            layer_dilations=tuple(card["dilations"]), receptive_field_ms=card.get("receptive_field_ms"),
            model_config=config, global_conditioning=global_conditioning, local_conditioning=local_conditioning,
            training=TrainingSummary(**{k: training.get(k) for k in TrainingSummary.__dataclass_fields__})
            if isinstance(training, dict) else None,
            data=data, step=step, opset=card.get("opset"), graphs=graphs, files=files,
            excerpts=_excerpts(card, files, path), draw_top_k=_draw_top_k(card, config, path),
            **{name: card[name] for name in _SIZES})

    def to_dict(self) -> dict[str, Any]:
        """The card as ``model.json`` holds it (keys in export's order)."""
        out: dict[str, Any] = {"format_version": self.format_version, "producer": self.producer}
        out.update({name: getattr(self, name) for name in _SIZES[:2]})
        out.update({"mu": self.mu, "dilations": list(self.layer_dilations)})
        out.update({name: getattr(self, name) for name in _SIZES[2:]})
        out.update({"receptive_field_ms": self.receptive_field_ms, "model_config": self.model_config.to_dict(),
                    "conditioning": self._conditioning_dict()})
        if self.training is not None:
            out["training"] = dict(vars(self.training))
        if self.data is not None:
            out["data"] = dict(vars(self.data))
        out["step"] = {"delays": [list(row) for row in self.step.delays],
                       "residual_offsets": [list(row) for row in self.step.residual_offsets]}
        out["opset"] = self.opset
        out["graphs"] = {name: contract.to_dict() for name, contract in self.graphs.items()}
        if self.files is not None:
            out["files"] = dict(self.files)
        if self.excerpts is not None:
            out["excerpts"] = [dict(entry) for entry in self.excerpts]
        if self.draw_top_k is not None:
            out["draw"] = {"top_k": self.draw_top_k}
        return out

    def _conditioning_dict(self) -> dict[str, Any]:
        spec, local = self.global_conditioning, self.local_conditioning
        return {"global": None if spec is None else {"classes": spec.classes, "names": list(spec.names)},
                "local": None if local is None else {**vars(local), "upsample_scales": list(local.upsample_scales)}}


def _is_int(value: Any, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fail(path: Path, field: str, why: str) -> NoReturn:
    raise BundleError(f"{path}: {field} {why}; the card is damaged or was edited — re-export the bundle.")


def _check_format(card: Any, path: Path) -> None:
    version = card.get("format_version") if isinstance(card, dict) else None
    if version != BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{path}: format_version {version!r} is not supported (this wavenet-tf reads "
                          f"{BUNDLE_FORMAT_VERSION}); re-export the run with this version.")


def _check_sizes(card: dict[str, Any], path: Path) -> ModelConfig:
    """The sizes and dilations: well-typed, and equal to what ``model_config`` gives. Returns the config."""
    for name in _SIZES:
        if not _is_int(card.get(name), 2 if name == "quantization_channels" else 1):
            _fail(path, f"\"{name}\"", f"must be a positive integer, got {card.get(name)!r}")
    dilations = card.get("dilations")
    if not (isinstance(dilations, list) and dilations and all(_is_int(d) for d in dilations)):
        _fail(path, "\"dilations\"", "must be a non-empty list of positive integers")
    if not isinstance(card.get("model_config"), dict):
        _fail(path, "\"model_config\"", "must be an object")
    try:
        config = ModelConfig.from_dict(card["model_config"])
    except (TypeError, ValueError) as error:
        _fail(path, "\"model_config\"", f"is not a valid model configuration ({error})")
    expected = {name: getattr(config, name) for name in _SIZES}
    expected["dilations"] = list(config.all_dilations)
    for name, value in expected.items():
        if card[name] != value:
            _fail(path, f"\"{name}\"", f"is {card[name]!r} but model_config gives {value!r}")
    return config


def _conditioning(card: dict[str, Any], config: ModelConfig,
                  path: Path) -> tuple[GlobalConditioning | None, LocalConditioning | None]:
    conditioning = card.get("conditioning")
    if not (isinstance(conditioning, dict) and "global" in conditioning and "local" in conditioning):
        _fail(path, "\"conditioning\"", "must be an object with \"global\" and \"local\"")
    return _global(conditioning["global"], config, path), _local(conditioning["local"], config, path)


def _global(spec: Any, config: ModelConfig, path: Path) -> GlobalConditioning | None:
    if not config.global_conditioning_classes:
        if spec is not None:
            _fail(path, "\"conditioning.global\"", "must be null: the model is not globally conditioned")
        return None
    if not (isinstance(spec, dict) and spec.get("classes") == config.global_conditioning_classes):
        _fail(path, "\"conditioning.global\"", f"must give classes {config.global_conditioning_classes}")
    names = spec.get("names", [])
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names) and len(names) <= spec["classes"]):
        _fail(path, "\"conditioning.global.names\"", f"must be a list of at most {spec['classes']} strings")
    return GlobalConditioning(spec["classes"], tuple(names))


def _local(local: Any, config: ModelConfig, path: Path) -> LocalConditioning | None:
    if not config.local_conditioning_channels:
        if local is not None:
            _fail(path, "\"conditioning.local\"", "must be null: the model is not locally conditioned")
        return None
    if not (isinstance(local, dict) and local.get("n_mels") == config.local_conditioning_channels
            and local.get("hop_length") == config.hop_length and _is_int(local.get("n_fft"))
            and _is_number(local.get("fmin")) and _is_number(local.get("fmax"))):
        _fail(path, "\"conditioning.local\"", f"must give n_mels {config.local_conditioning_channels}, hop_length "
              f"{config.hop_length}, n_fft, fmin and fmax")
    scales = local.get("upsample_scales")  # informational: the graphs already hold the upsampling
    if not (isinstance(scales, list) and all(_is_int(s) for s in scales)):
        scales = config.upsample_scales
    return LocalConditioning(local["n_mels"], local["hop_length"], tuple(scales), local["n_fft"], local["fmin"],
                             local["fmax"])


def _step(card: dict[str, Any], config: ModelConfig, path: Path) -> StepState:
    step = card.get("step")
    layers, width, taps = len(config.all_dilations), config.residual_channels, config.kernel_size - 1
    if not isinstance(step, dict):
        _fail(path, "\"step\"", "must be an object")
    delays = step.get("delays")
    if not (isinstance(delays, list) and len(delays) == layers and all(
            isinstance(row, list) and len(row) == taps and all(_is_int(d, 1) for d in row) for row in delays)):
        _fail(path, "\"step.delays\"", f"must be {layers} rows of {taps} positive integers (each layer's tap delays)")
    offsets = step.get("residual_offsets")
    if not (isinstance(offsets, list) and len(offsets) == layers and all(
            isinstance(row, list) and len(row) == width and all(_is_number(v) for v in row) for row in offsets)):
        _fail(path, "\"step.residual_offsets\"", f"must be {layers} rows of {width} finite numbers")
    return StepState(tuple(map(tuple, delays)), tuple(map(tuple, offsets)))


def _graphs(card: dict[str, Any], config: ModelConfig, path: Path) -> dict[str, GraphContract]:
    graphs = card.get("graphs")
    if not isinstance(graphs, dict):
        _fail(path, "\"graphs\"", "must be an object")
    needed = list(REQUIRED) + (["cond.onnx"] if config.local_conditioning_channels else [])
    for name in needed + [name for name in graphs if name not in needed]:
        contract = graphs.get(name)
        if not (isinstance(contract, dict) and all(
                isinstance(contract.get(kind), list) and all(
                    isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("shape"), list)
                    for item in contract[kind]) for kind in ("inputs", "outputs"))):
            _fail(path, f"\"graphs.{name}\"", "must list inputs and outputs, each with a name and a shape")
    return {name: GraphContract.from_dict(contract) for name, contract in graphs.items()}


def _files(card: dict[str, Any], path: Path) -> dict[str, str]:
    files = card.get("files")
    if not isinstance(files, dict):
        _fail(path, "\"files\"", "is missing or not an object (without it no file could be checked against its checksum)")
    for name, digest in files.items():
        # A card entry names a file of this bundle: never a path outside it ("/usr", "../x"). The
        # one folder is excerpts/ (serving.excerpts), one level deep.
        parts = name.split("/") if isinstance(name, str) else [""]
        inside = len(parts) == 1 or (len(parts) == 2 and parts[0] == "excerpts")
        if not (inside and all(part not in ("", ".", "..") for part in parts)) or "\\" in name or "\0" in name:
            _fail(path, f"\"files\" entry {name!r}", "is not a file name inside the bundle")
        if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            _fail(path, f"\"files\" entry {name!r}", "must be a SHA-256 hex digest")
    return dict(files)


def _data(card: dict[str, Any], path: Path) -> DataCleaning | None:
    data = card.get("data")
    if data is None:
        return None
    if not (isinstance(data, dict) and _is_number(data.get("trim_top_db", 0)) and data.get("trim_top_db", 0) >= 0
            and _is_int(data.get("trim_frame_length", 1))
            and all(isinstance(data.get(key, False), bool) for key in ("remove_dc", "normalize"))):
        _fail(path, "\"data\"", "must give trim_top_db (>= 0), trim_frame_length (> 0), remove_dc and normalize "
              "(true/false)")
    # A card may record only some settings; the others are what every run used before.
    return DataCleaning(**{**DEFAULT_CLEANING, **{k: data[k] for k in DEFAULT_CLEANING if k in data}},
                        n_fft=data.get("n_fft"), fmin=data.get("fmin"), fmax=data.get("fmax"))


def _draw_top_k(card: dict[str, Any], config: ModelConfig, path: Path) -> int | None:
    """The card's default top-k ("draw", added within format 2: older cards have none)."""
    draw = card.get("draw")
    if draw is None:
        return None
    top_k = draw.get("top_k") if isinstance(draw, dict) else None
    if not (isinstance(top_k, int) and not isinstance(top_k, bool) and 0 <= top_k <= config.quantization_channels):
        _fail(path, "\"draw\"", f"must give top_k, a whole number from 0 to {config.quantization_channels}")
    return top_k


def _excerpts(card: dict[str, Any], files: dict[str, str], path: Path) -> tuple[dict[str, Any], ...] | None:
    """Excerpts (added within format 2: older bundles have none and still load) are files with checksums."""
    entries = card.get("excerpts")
    if not entries:
        return None if entries is None else ()
    for entry in entries:
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.startswith("excerpts/") or name not in files:
            raise BundleError(f"{path}: excerpt entry {entry!r} is not a file under excerpts/ listed with a "
                              "checksum; re-export the bundle.")
    return None if entries is None else tuple(dict(entry) for entry in entries)
