import numpy as np
import pytest

from tests.layer_test_case import run_layer_test
from wavenet_tf.model import CausalConv1D, ResidualBlock, UpsampleNetwork


def test_causal_conv1d_standard(rng, tmp_path):
    x = rng.normal(size=(2, 40, 3)).astype("float32")
    run_layer_test(CausalConv1D, {"filters": 5, "kernel_size": 2, "dilation_rate": 4}, x,
                   expected_output_shape=(2, 40, 5), tmp_path=tmp_path)


def test_causal_conv1d_sees_no_future_and_exactly_its_taps(rng):
    conv = CausalConv1D(4, kernel_size=3, dilation_rate=5)
    x = rng.normal(size=(1, 60, 2)).astype("float32")
    y = conv(x).numpy()
    t0 = 30
    future = x.copy()
    future[:, t0:] += 1.0
    np.testing.assert_array_equal(conv(future).numpy()[:, :t0], y[:, :t0])
    assert conv.receptive_field == 11
    # Output t0 reads inputs t0, t0-5, t0-10 and nothing in between.
    for offset, matters in [(0, True), (5, True), (10, True), (3, False), (11, False)]:
        poked = x.copy()
        poked[:, t0 - offset] += 1.0
        changed = not np.allclose(conv(poked).numpy()[:, t0], y[:, t0])
        assert changed == matters, f"offset {offset}"


def test_causal_conv1d_refuses_other_padding():
    with pytest.raises(ValueError, match="padding='causal'"):
        CausalConv1D(4, 2, padding="same")


@pytest.mark.parametrize(
    "kwargs, call",
    [
        ({}, {}),
        ({"global_conditioning_channels": 3}, {"global_condition": (2, 3)}),
        ({"local_conditioning_channels": 5}, {"local_condition": (2, 30, 5)}),
        ({"use_residual": False}, {}),
    ],
    ids=["plain", "global", "local", "last-block"],
)
def test_residual_block_standard(rng, tmp_path, kwargs, call):
    x = rng.normal(size=(2, 30, 8)).astype("float32")
    call_kwargs = {k: rng.normal(size=s).astype("float32") for k, s in call.items()}
    init = {"residual_channels": 8, "gate_channels": 6, "skip_channels": 10, "dilation_rate": 2, **kwargs}
    run_layer_test(ResidualBlock, init, x, call_kwargs, expected_output_shape=[(2, 30, 8), (2, 30, 10)],
                   tmp_path=tmp_path)


def test_residual_block_conditioning_changes_output(rng):
    block = ResidualBlock(8, 8, 8, global_conditioning_channels=3)
    x = rng.normal(size=(1, 20, 8)).astype("float32")
    a = block(x, global_condition=np.zeros((1, 3), "float32"))[1].numpy()
    b = block(x, global_condition=np.ones((1, 3), "float32"))[1].numpy()
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="global_condition"):
        block(x)


def test_last_block_passes_residual_through(rng):
    block = ResidualBlock(8, 8, 8, use_residual=False)
    x = rng.normal(size=(1, 20, 8)).astype("float32")
    np.testing.assert_array_equal(block(x)[0].numpy(), x)
    assert block.residual_conv is None


def test_upsample_network_standard(rng, tmp_path):
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    run_layer_test(UpsampleNetwork, {"upsample_scales": (2, 4), "channels": 3}, x,
                   expected_output_shape=(2, 40, 3), tmp_path=tmp_path)


def test_upsample_frame_k_conditions_exactly_its_hop(rng):
    up = UpsampleNetwork((2, 3), channels=2)
    hop = up.hop_length
    base = np.zeros((1, 6, 2), "float32")
    y0 = up(base).numpy()
    for k in range(6):
        poked = base.copy()
        poked[0, k] = 1.0
        diff = np.abs(up(poked).numpy() - y0).sum(axis=-1)[0]
        touched = np.flatnonzero(diff > 0)
        assert touched.min() >= k * hop and touched.max() < (k + 1) * hop
