"""The typed model card (`wavenet_tf.core.card.ModelCard`): export writes it, serving reads it, same JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest

from serving.bundle import BundleError, load_bundle
from tests.helpers import NARROW
from wavenet_tf.core.card import DEFAULT_CLEANING, ModelCard

CASES = {
    "plain": dict(NARROW, dilations=(1, 2, 4), num_stacks=2),  # two stacks: one stack differs from all layers
    "speaker": dict(NARROW, global_conditioning_classes=2),
    "mel": dict(NARROW, local_conditioning_channels=4, upsample_scales=(2, 4)),
}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    from export.bundle import export_run
    from tests.helpers import make_run
    from wavenet_tf.core.presets import get_preset

    folder = tmp_path_factory.mktemp("cards")
    for name, overrides in CASES.items():
        config = get_preset("tiny", **overrides)
        make_run(folder / f"run-{name}", config, [f"c{i}" for i in range(config.global_conditioning_classes)])
        export_run(folder / f"run-{name}", folder / name, log=lambda *_: None)
    return folder


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_card_round_trips_to_the_same_json(bundles, name):
    path = bundles / name / "model.json"
    text = path.read_text()
    card = ModelCard.from_dict(json.loads(text), path)
    assert card.to_dict() == json.loads(text)
    # Byte for byte, key order included: export writes `to_dict`, so old and new bundles read alike.
    assert json.dumps(card.to_dict(), indent=2) + "\n" == text
    assert load_bundle(bundles / name).card == card


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_typed_fields_hold_what_the_json_holds(bundles, name):
    raw = json.loads((bundles / name / "model.json").read_text())
    card = load_bundle(bundles / name, check_graphs=False).card
    # The JSON's top-level "dilations" is every layer; model_config's is one stack.
    assert list(card.layer_dilations) == raw["dilations"] == list(card.model_config.all_dilations)
    assert card.num_layers == len(card.model_config.dilations) * card.model_config.num_stacks
    if name == "plain":
        assert card.layer_dilations == (1, 2, 4, 1, 2, 4) and card.model_config.dilations == (1, 2, 4)
    assert (card.global_conditioning is None) == (raw["conditioning"]["global"] is None)
    assert (card.local_conditioning is None) == (raw["conditioning"]["local"] is None)
    if card.local_conditioning:
        assert card.local_conditioning.n_mels == 4 and card.hop_length == raw["conditioning"]["local"]["hop_length"]
    else:
        assert card.hop_length == 1
    if card.global_conditioning:
        assert card.global_conditioning.names == ("c0", "c1")
    assert [list(row) for row in card.step.delays] == raw["step"]["delays"]
    step_inputs = raw["graphs"]["step.onnx"]["inputs"]
    assert [i.name for i in card.graphs["step.onnx"].inputs] == [i["name"] for i in step_inputs]
    assert card.files == raw["files"]


def test_the_card_is_frozen(bundles):
    card = load_bundle(bundles / "speaker", check_graphs=False).card
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.sample_rate = 16000
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.global_conditioning.classes = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.step.delays = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.graphs["step.onnx"].inputs[0].name = "x"


def test_a_card_from_before_data_and_excerpts_round_trips_and_cleans_with_the_defaults(bundles):
    path = bundles / "plain" / "model.json"
    raw = json.loads(path.read_text())
    for entry in raw.pop("excerpts"):
        del raw["files"][entry["file"]]
    del raw["data"]
    card = ModelCard.from_dict(raw, path)
    assert card.data is None and card.excerpts is None and card.cleaning() == DEFAULT_CLEANING
    assert card.to_dict() == raw


def test_from_dict_refuses_a_damaged_card_naming_the_file_and_field(bundles):
    path = bundles / "plain" / "model.json"
    raw = json.loads(path.read_text())
    raw["dilations"] = raw["dilations"][:-1]
    with pytest.raises(BundleError, match=r"model\.json: \"dilations\" is \[.*\] but model_config gives"):
        ModelCard.from_dict(raw, path)
    with pytest.raises(BundleError, match="format_version None is not supported"):
        ModelCard.from_dict([], path)
