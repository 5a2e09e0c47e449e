"""Small float32 normal draws (randn, normal, normal_ of 16 to 496 values) read their Box–Muller
transforms from a table made ahead on the stream's next words (mt19937_stream._NormalLookahead):
the values, and the stream left behind, must be torch's bit for bit whatever else moves the stream
between draws."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

import chainrule
from chainrule.ops import mt19937_stream

SIZES = [16, 17, 21, 32, 63, 64, 84, 100, 255, 480, 496, 497, 1000]


def _same_bits(ours: chainrule.Tensor, theirs: torch.Tensor) -> bool:
    return ours.dtype == getattr(chainrule, str(theirs.dtype).split(".")[1]) and np.array_equal(
        np.ascontiguousarray(ours.numpy()).view(np.uint8), np.ascontiguousarray(theirs.numpy()).view(np.uint8))


@pytest.fixture
def seeded():
    """Both generators seeded alike; the default generators' states put back afterwards."""
    theirs, ours = torch.get_rng_state(), chainrule.get_rng_state()
    yield lambda seed: (torch.manual_seed(seed), chainrule.manual_seed(seed))
    torch.set_rng_state(theirs)
    chainrule.set_rng_state(ours)


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_a_run_of_small_draws_is_torchs(seeded, seed):
    seeded(seed)
    for size in SIZES + SIZES[::-1]:
        assert _same_bits(chainrule.randn(size), torch.randn(size)), size
        assert _same_bits(chainrule.randn(1, size), torch.randn(1, size)), size
        assert _same_bits(chainrule.normal(0.5, 2.0, (size,)), torch.normal(0.5, 2.0, (size,))), size
        ours, theirs = chainrule.empty(size), torch.empty(size)
        ours.normal_(-1.0, 0.25)
        theirs.normal_(-1.0, 0.25)
        assert _same_bits(ours, theirs), size
    assert np.array_equal(chainrule.get_rng_state().numpy(), torch.get_rng_state().numpy())


def test_other_draws_between_small_normals_move_the_stream_as_torchs(seeded):
    seeded(3)
    steps = [lambda m: m.randn(64), lambda m: m.rand(5), lambda m: m.randn(21), lambda m: m.randint(0, 10, (8,)),
             lambda m: m.randn(84, dtype=m.float64), lambda m: m.randn(3), lambda m: m.randperm(40),
             lambda m: m.randn(100, dtype=m.float16), lambda m: m.empty(2, 50).t().normal_(), lambda m: m.randn(64)]
    for _ in range(3):
        for step in steps:
            assert _same_bits(step(chainrule), step(torch))
    assert np.array_equal(chainrule.get_rng_state().numpy(), torch.get_rng_state().numpy())


def test_a_state_set_back_replays_the_small_draws(seeded):
    seeded(11)
    chainrule.randn(64)
    torch.randn(64)
    ours_state, their_state = chainrule.get_rng_state(), torch.get_rng_state()
    first = [chainrule.randn(size) for size in (64, 21, 84)]
    chainrule.set_rng_state(ours_state)
    torch.set_rng_state(their_state)
    for size, earlier in zip((64, 21, 84), first):
        again, theirs = chainrule.randn(size), torch.randn(size)
        assert _same_bits(again, theirs) and np.array_equal(again.numpy(), earlier.numpy())
    seeded(11)  # a reseed mid-table starts over
    assert _same_bits(chainrule.randn(64), torch.randn(64))


def test_a_generator_of_its_own_and_its_copies(seeded):
    ours, theirs = chainrule.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for size in (64, 21, 84, 16):
        assert _same_bits(chainrule.randn(size, generator=ours), torch.randn(size, generator=theirs))
    stream = ours._rng
    copied, unpickled = copy.deepcopy(stream), pickle.loads(pickle.dumps(stream))
    expected = stream.normal(0.0, 1.0, (64,), np.float32)
    assert copied._lookahead is None and unpickled._lookahead is None
    assert np.array_equal(copied.normal(0.0, 1.0, (64,), np.float32), expected)
    assert np.array_equal(unpickled.normal(0.0, 1.0, (64,), np.float32), expected)
    # the copies' own draws do not move the original, nor its draws theirs
    assert np.array_equal(stream.normal(0.0, 1.0, (21,), np.float32), copied.normal(0.0, 1.0, (21,), np.float32))


def test_values_are_the_transform_of_the_draws_own_words(monkeypatch):
    """The table against the per-draw transform on the same words, past the table's end too."""
    looked, direct = mt19937_stream.MT19937Stream(9), mt19937_stream.MT19937Stream(9)
    with monkeypatch.context() as patched:
        patched.setattr(mt19937_stream, "_LOOKAHEAD_MAX_DRAW", 0)
        expected = [direct.normal(0.25, 3.0, (size,), np.float32) for size in SIZES * 8]
    got = [looked.normal(0.25, 3.0, (size,), np.float32) for size in SIZES * 8]
    assert looked._lookahead and direct._lookahead is None
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    assert np.array_equal(looked.state_bytes(9), direct.state_bytes(9))


def test_the_seeded_key_is_init_genrands():
    """seeded_key (NumPy's C init_genrand where it has one) against the recurrence written out."""
    seeds = [0, 1, 5, 2**31, 2**32 - 1, 2**32, 2**32 + 5, 67280421310721, 2**64 - 1]
    seeds += [int(seed) for seed in np.random.default_rng(44).integers(0, 2**63, 200)]
    for seed in seeds:
        assert np.array_equal(mt19937_stream.seeded_key(seed), mt19937_stream._seeded_key_in_python(seed)), seed


@pytest.mark.parametrize("seed", [0, 3, 2**32 + 3, -1, 2**63 + 17])
def test_a_seeded_stream_is_torchs(seeded, seed):
    seeded(seed)
    assert np.array_equal(chainrule.get_rng_state().numpy(), torch.get_rng_state().numpy())
    assert chainrule.initial_seed() == torch.initial_seed()
    assert _same_bits(chainrule.rand(7), torch.rand(7))
    assert _same_bits(chainrule.randn(100), torch.randn(100))
    ours, theirs = chainrule.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    assert _same_bits(chainrule.randint(0, 100, (50,), generator=ours), torch.randint(0, 100, (50,), generator=theirs))
    assert np.array_equal(ours.get_state().numpy(), theirs.get_state().numpy())
