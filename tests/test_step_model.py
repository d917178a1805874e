"""The step model apart from its streams: a stream's classes depend on its own state only."""

import numpy as np
import pytest

from serving import native
from serving.step_model import StepModel

ENGINES = ["graph", pytest.param("native", marks=pytest.mark.skipif(
    native.library_path() is None, reason="the native library was not built"))]


def _conditioning(bundle, k: int) -> dict:
    """Stream k's own conditioning: its own speaker, its own mel frames."""
    options = {}
    if bundle.global_conditioning:
        options["global_ids"] = [k % 3]
    if bundle.local_conditioning:
        options["mel"] = np.random.default_rng(k).normal(size=(1, 200, 4)).astype(np.float32)
    return options


def _open(model, k: int, prime_length: int = 0):
    """Stream k: its own seed, temperature and prime length (so its own clock)."""
    prime = None if not prime_length else (0.3 * np.sin(np.arange(prime_length) / (3.0 + k))).astype(np.float32)
    return model.open_streams(1, prime, seed=10 + k, temperature=0.7 + 0.3 * k, **_conditioning(model.bundle, k))[0]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["plain", "global", "local", "kernel3"])
def test_streams_advanced_together_equal_each_advanced_alone(bundles, name, engine):
    model = StepModel(bundles[name], engine=engine)
    primes = (0, 150, 301)  # different clocks: seating them together rotates their rings
    together = [_open(model, k, p) for k, p in enumerate(primes)]
    got = np.concatenate([model.advance(together, n) for n in (1, 90, 209)], axis=1)
    for k, p in enumerate(primes):
        alone = _open(model, k, p)
        np.testing.assert_array_equal(got[k], model.advance([alone], 300)[0])


@pytest.mark.parametrize("engine", ENGINES)
def test_a_streams_classes_do_not_depend_on_its_companions(bundles, engine):
    # Stream a is advanced with changing companions, in changing rows, across workspaces.
    model = StepModel(bundles["global"], engine=engine)
    a, b, c = (_open(model, k, 40 * k) for k in range(3))
    parts = [model.advance([a, b, c], 50)[0], model.advance([c, a], 30)[1], model.advance([a], 20)[0],
             model.advance([b, c, a], 70)[2], model.advance([a, b], 1)[0]]
    reference = model.advance([_open(model, 0)], 171)[0]
    np.testing.assert_array_equal(np.concatenate(parts), reference)


@pytest.mark.parametrize("engine", ENGINES)
def test_removing_a_stream_midway_leaves_the_others_unchanged(bundles, engine):
    model = StepModel(bundles["plain"], engine=engine)
    a, b, c = (_open(model, k) for k in range(3))
    first = model.advance([a, b, c], 120)
    b.close()
    second = model.advance([a, c], 130)
    other = StepModel(bundles["plain"], engine=engine)  # a model of its own: nothing shared
    x, y = _open(other, 0), _open(other, 2)
    reference = other.advance([x, y], 250)
    np.testing.assert_array_equal(np.concatenate([first[[0, 2]], second], axis=1), reference)


def test_stream_k_of_a_seed_draws_what_its_generator_draws(bundles):
    # Stream 0 of seed s is a lone stream of seed s; stream 1 is its own stream_generator(s, 1).
    from wavenet_tf.core.sampling import stream_generator

    model = StepModel(bundles["plain"], engine="graph")
    pair = model.advance(model.open_streams(2, seed=5), 100)
    np.testing.assert_array_equal(pair[0], model.advance([model.open_stream(seed=5)], 100)[0])
    uniforms = np.stack([stream_generator(5, k).random(100) for k in range(2)])
    np.testing.assert_array_equal(pair, model.advance(model.open_streams(2, seed=99), 100, uniforms=uniforms))


def test_bad_stream_lists_are_refused_by_name(bundles):
    model = StepModel(bundles["plain"], engine="graph")
    a = model.open_stream()
    with pytest.raises(ValueError, match="listed twice"):
        model.advance([a, a], 5)
    stranger = StepModel(bundles["plain"], engine="graph").open_stream()
    with pytest.raises(ValueError, match="belongs to another StepModel"):
        model.advance([a, stranger], 5)
    a.close()
    with pytest.raises(ValueError, match="closed stream"):
        model.advance([a], 5)
    local = StepModel(bundles["local"], engine="graph")
    short = local.open_stream(mel=np.zeros((40, 4), np.float32))  # 40 frames × hop 8 = 320 samples
    left = 320 - short.position
    with pytest.raises(ValueError, match="mel frames cover 320 samples"):
        local.advance([short], left + 1)
    assert local.advance([short], left).shape == (1, left)  # every covered sample, the last one included
