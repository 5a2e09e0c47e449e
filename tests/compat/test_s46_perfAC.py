"""s46 perfAC: the faster paths keep torch's values and streams.

A CPU stream's ``integers`` (randint, random_, the samplers' index draws) with a range below 2**28
and bounds inside int64 reduces the engine's raw words in place and reads them as int64, with no
uint32 and int64 copies; each case draws on torch and on chainrule from the same seed, by a
generator and by the default one, and compares values, dtypes and the stream after the draw."""

import numpy as np
import pytest
import torch as real_torch

import chainrule

LIBS = (real_torch, chainrule)


def _draws(lib, draw, use_generator):
    if use_generator:
        generator = lib.Generator().manual_seed(7)
        first = draw(lib, generator)
        return first, lib.rand(3, generator=generator, dtype=lib.float64)
    saved = lib.get_rng_state()
    try:
        lib.manual_seed(7)
        first = draw(lib, None)
        return first, lib.rand(3, dtype=lib.float64)
    finally:
        lib.set_rng_state(saved)


RANDINT_CASES = [
    ((0, 10, (16,)), {}),
    ((-5, 7, (3, 4)), {}),
    ((10, (2, 3)), {}),
    ((0, 2**28 - 1, (50,)), {}),  # the last range on 32-bit words
    ((0, 2**28, (50,)), {}),  # the first on 64-bit ones (the other path)
    ((-2**63, -2**63 + 5, (5,)), {}),
    ((2**63 - 4, 2**63 - 1, (4,)), {}),
    ((0, 3, ()), {}),
    ((0, 3, (0,)), {}),
    ((-3, 3, (7,)), {"dtype": "int32"}),
    ((0, 200, (9,)), {"dtype": "uint8"}),
    ((-100, 100, (9,)), {"dtype": "int8"}),
    ((0, 1000, (9,)), {"dtype": "float32"}),
    ((-7, 7, (2, 5)), {"dtype": "float64"}),
    ((0, 2, (6,)), {"dtype": "bool"}),
]


@pytest.mark.parametrize("use_generator", [True, False])
@pytest.mark.parametrize(("args", "kwargs"), RANDINT_CASES)
def test_randint_values_dtype_and_stream_as_torch(args, kwargs, use_generator):
    results = []
    for lib in LIBS:
        extra = {name: getattr(lib, value) for name, value in kwargs.items()}

        def draw(lib, generator, extra=extra):
            return lib.randint(*args, generator=generator, **extra)

        results.append(_draws(lib, draw, use_generator))
    (expected, expected_after), (got, got_after) = results
    assert str(got.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
    assert tuple(got.shape) == tuple(expected.shape)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    np.testing.assert_array_equal(got_after.numpy(), expected_after.numpy())


@pytest.mark.parametrize("use_generator", [True, False])
@pytest.mark.parametrize(("low", "high", "dtype"), [(0, 10, "int64"), (-4, 9, "int32"), (0, 256, "uint8"),
                                                    (3, 2**20, "float64"), (0, 2**28, "int64")])
def test_random_method_values_and_stream_as_torch(low, high, dtype, use_generator):
    results = []
    for lib in LIBS:
        def draw(lib, generator):
            return lib.zeros(4, 5, dtype=getattr(lib, dtype)).random_(low, high, generator=generator)

        results.append(_draws(lib, draw, use_generator))
    (expected, expected_after), (got, got_after) = results
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    np.testing.assert_array_equal(got_after.numpy(), expected_after.numpy())


@pytest.mark.parametrize("n", [0, 1, 2, 100, 128, 129, 1000])
def test_randperm_values_and_stream_as_torch(n):
    results = []
    for lib in LIBS:
        results.append(_draws(lib, lambda lib, generator: lib.randperm(n, generator=generator), True))
    (expected, expected_after), (got, got_after) = results
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    np.testing.assert_array_equal(got_after.numpy(), expected_after.numpy())
