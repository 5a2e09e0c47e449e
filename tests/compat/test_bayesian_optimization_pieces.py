"""Torch behaviours BoTorch relies on, compared with torch 2.13 (without BoTorch).

- ``SobolEngine`` point for point torch's, scrambled too: torch's digital shift and bit matrices
  drawn by ``randint`` from the seed's generator (or the default one), Gray-code order, ``draw``,
  ``draw_base2``, ``fast_forward``, ``reset`` (SobolQMCNormalSampler's base samples).
- ``Tensor.numpy()`` refuses a tensor that requires grad only while grad mode is on (BoTorch reads
  its parameters for SciPy under ``no_grad``); the array shares the tensor's memory.
- ``Size`` joined or repeated stays a ``Size`` (``shape[:i] + Size([1]) + shape[j:]``, ``.numel()``).
- ``torch.multinomial(..., out=)``.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _sobol_draws(lib, dimension, scramble, seed, dtype_name):
    dtype = getattr(lib, dtype_name)
    engine = lib.quasirandom.SobolEngine(dimension, scramble=scramble, seed=seed)
    first = engine.draw(5, dtype=dtype)
    engine.fast_forward(3)
    second = engine.draw(4, dtype=dtype)
    engine.reset()
    again = engine.draw(1, dtype=dtype)
    base2 = lib.quasirandom.SobolEngine(dimension, scramble=scramble, seed=seed).draw_base2(4, dtype=dtype)
    return [t.numpy() for t in (first, second, again, base2)] + [engine.num_generated]


@pytest.mark.parametrize("dimension, scramble, seed", [(1, False, None), (3, True, 0), (7, True, 123), (2, True, 2**31 - 5),
                                                       (40, True, 9)])
@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
def test_sobol_points_equal_torchs(dimension, scramble, seed, dtype_name):
    ours, theirs = _sobol_draws(chainrule, dimension, scramble, seed, dtype_name), _sobol_draws(torch, dimension, scramble, seed, dtype_name)
    for a, b in zip(ours[:-1], theirs[:-1]):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert ours[-1] == theirs[-1]


def test_unseeded_scramble_draws_from_the_default_generator():
    def draws(lib):
        lib.manual_seed(11)
        points = lib.quasirandom.SobolEngine(4, scramble=True).draw(6, dtype=lib.float64).numpy()
        return points, lib.rand(2, dtype=lib.float64).numpy()  # the stream after the scramble's draws

    for a, b in zip(draws(chainrule), draws(torch)):
        np.testing.assert_array_equal(a, b)


def test_sobol_normal_base_samples_as_botorch_makes_them():
    def base_samples(lib):
        engine = lib.quasirandom.SobolEngine(6, scramble=True, seed=0)
        uniform = engine.draw(16, dtype=lib.float64)
        # BoTorch's draw_sobol_normal_samples: the inverse normal CDF of the points
        return (lib.erfinv(2 * uniform.clamp(1e-10, 1 - 1e-10) - 1) * np.sqrt(2)).numpy()

    np.testing.assert_allclose(base_samples(chainrule), base_samples(torch), rtol=1e-14, atol=1e-14)


def test_numpy_of_a_tensor_requiring_grad_under_no_grad():
    def run(lib):
        weight = lib.nn.Parameter(lib.tensor([0.5, -1.0], dtype=lib.float64))
        with pytest.raises(RuntimeError) as refused:
            weight.numpy()
        with lib.no_grad():
            array = weight.numpy()
        array[0] = 3.0  # shared memory: the parameter sees it
        with lib.inference_mode():
            inference = weight.numpy().copy()
        return str(refused.value), weight.detach().tolist(), inference.tolist(), weight.requires_grad

    assert run(chainrule) == run(torch)


def test_size_arithmetic_stays_a_size():
    def run(lib):
        shape = lib.Size([4, 3, 2])
        joined = shape[:1] + lib.Size([1]) + shape[2:]
        results = [joined, shape + (5,), (7,) + shape, shape * 2, 2 * shape, shape + (), 0 * shape,
                   shape * lib.tensor(2)]
        described = [(type(r).__name__, list(r)) for r in results] + [joined.numel()]
        for bad in ("shape + [1]", "shape * 2.5", "shape + 1"):
            with pytest.raises(TypeError) as info:
                eval(bad, {"shape": shape})
            described.append(str(info.value).replace("chainrule.Size", "torch.Size"))
        return described

    assert run(chainrule) == run(torch)


def test_multinomial_into_out():
    def run(lib):
        weights = lib.tensor([[0.1, 0.5, 0.4, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=lib.float64)
        lib.manual_seed(4)
        out = lib.empty(0, dtype=lib.int64)
        returned = lib.multinomial(weights, 3, out=out)
        with pytest.raises(RuntimeError) as refused:
            lib.multinomial(weights, 2, out=lib.empty(2, 2))
        return out.tolist(), returned is out, str(refused.value)

    assert run(chainrule) == run(torch)
