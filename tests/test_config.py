import pytest

from wavenet_tf.core.config import ModelConfig
from wavenet_tf.core.presets import PRESETS, get_preset


def test_receptive_field_formula():
    # (kernel - 1) * sum(dilations) + 1, plus (initial width - 1).
    config = ModelConfig(dilations=(1, 2, 4), num_stacks=2, kernel_size=3, initial_kernel_size=4)
    assert config.receptive_field == 2 * 14 + 1 + 3
    assert config.all_dilations == (1, 2, 4, 1, 2, 4)


def test_round_trip_through_dict():
    for config in PRESETS.values():
        assert ModelConfig.from_dict(config.to_dict()) == config


def test_overrides_field_by_field():
    config = get_preset("small", residual_channels=64, dilations=[1, 2])
    assert config.residual_channels == 64 and config.dilations == (1, 2)
    assert get_preset("small").residual_channels == 32  # the preset itself is untouched


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kernel_size": 0}, "kernel_size"),
        ({"dilations": ()}, "dilations"),
        ({"input_encoding": "raw"}, "input_encoding"),
        ({"quantization_channels": 1}, "quantization_channels"),
        ({"local_conditioning_channels": 80}, "upsample_scales"),
    ],
)
def test_invalid_fields_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_unknown_fields_and_presets_are_refused():
    with pytest.raises(ValueError, match="residual_chanels"):
        get_preset("tiny", residual_chanels=3)
    with pytest.raises(ValueError, match="Unknown preset 'huge'"):
        get_preset("huge")
    with pytest.raises(ValueError, match="valid fields"):
        ModelConfig.from_dict({"sample_rate": 8000, "colour": "red"})
