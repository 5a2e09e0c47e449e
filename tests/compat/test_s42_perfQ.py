"""Fast paths taken where corpus programs were slow (session 42, lane perfQ), each checked against
torch 2.13 and against the per-tensor path it stands in for.

* clip_grad_norm_ under no_grad: ``_foreach_norm`` and ``_foreach_mul_`` by the clip coefficient
  compute on the arrays directly (c51_rainbow clips 12 gradients a step).
* small normal draws (c51_rainbow's NoisyLinear calls torch.randn(64) 22,432 times): the scalar
  sampler on Python floats, NumPy constants as 0-d arrays, a remainder's redrawn block transformed
  with the rest; every draw still torch's bits.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

GRAD_SHAPES = [(64, 84), (64,), (5, 7, 3), (1,), ()]


def _gradients(seed: int, dtype) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * rng.uniform(0.01, 10)).astype(dtype) for shape in GRAD_SHAPES]


def _parameters(lib, arrays):
    parameters = [lib.nn.Parameter(lib.tensor(a)) for a in arrays]
    for p, a in zip(parameters, arrays):
        p.grad = lib.tensor(a * 0.5)
    return parameters


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.0, float("inf")])
@pytest.mark.parametrize("foreach", [None, True, False])
def test_clip_grad_norm_matches_torch_and_the_per_tensor_path(dtype, norm_type, foreach):
    for seed in range(4):
        arrays = _gradients(seed, dtype)
        ours, theirs, one_by_one = (_parameters(lib, arrays) for lib in (chainrule, torch, chainrule))
        total = chainrule.nn.utils.clip_grad_norm_(ours, 0.5, norm_type, foreach=foreach)
        expected = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type, foreach=foreach)
        # the per-tensor ops the fast path stands in for: the same bits
        per_tensor = chainrule.nn.utils.clip_grad_norm_(one_by_one, 0.5, norm_type, foreach=False)
        assert total.dtype == per_tensor.dtype and total.shape == per_tensor.shape == ()
        assert total.numpy().tobytes() == per_tensor.numpy().tobytes()
        assert total.grad_fn is None and str(total.dtype) == str(expected.dtype).replace("torch", "chainrule")
        np.testing.assert_allclose(total.numpy(), expected.numpy(), rtol=2e-6 if dtype == np.float32 else 1e-14)
        for p, q, r in zip(ours, theirs, one_by_one):
            assert p.grad.numpy().tobytes() == r.grad.numpy().tobytes()
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=4e-6 if dtype == np.float32 else 1e-14)
            assert p.grad._version == q.grad._version


@pytest.mark.parametrize("ord", [2, 1, 0, 3, 2.5, float("inf"), -1])
def test_foreach_norm_without_grad_mode_is_the_per_tensor_norm(ord):
    arrays = [a.astype(np.float32) for a in _gradients(5, np.float32)]
    with chainrule.no_grad():
        norms = chainrule._foreach_norm([chainrule.tensor(a) for a in arrays], ord)
    expected = torch._foreach_norm([torch.tensor(a) for a in arrays], ord)
    for a, norm, theirs in zip(arrays, norms, expected):
        assert norm.shape == () and norm.dtype == chainrule.float32 and norm.grad_fn is None
        assert norm.numpy().tobytes() == chainrule.linalg.vector_norm(chainrule.tensor(a), ord).numpy().tobytes()
        np.testing.assert_allclose(norm.numpy(), theirs.numpy(), rtol=2e-6)


def test_foreach_norm_records_its_nodes_when_a_tensor_requires_grad():
    arrays = _gradients(6, np.float32)
    ours = [chainrule.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    norms, expected = chainrule._foreach_norm(ours), torch._foreach_norm(theirs)
    assert [n.grad_fn.name() for n in norms] == [n.grad_fn.name() for n in expected]
    sum(norms).backward()
    sum(expected).backward()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("ord", [float("inf"), float("-inf"), -1, -0.5])
@pytest.mark.parametrize("grad_mode", [True, False])
def test_foreach_norm_refuses_what_torch_refuses(ord, grad_mode):
    errors = []
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError) as caught, lib.set_grad_enabled(grad_mode):
            lib._foreach_norm([lib.ones(2), lib.zeros(0, 3)], ord)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    with pytest.raises(RuntimeError, match="Expected a floating point or complex tensor as input. Got Long"):
        chainrule._foreach_norm([chainrule.arange(3)])
    with pytest.raises(RuntimeError, match="Expected a floating point or complex tensor as input. Got Long"):
        torch._foreach_norm([torch.arange(3)])


@pytest.mark.parametrize("factor", [0.37, 3, "0-d float32", "0-d float64"])
def test_foreach_mul_in_place_matches_torch(factor):
    arrays = _gradients(7, np.float32)
    results = []
    for lib in (chainrule, torch):
        tensors = [lib.tensor(a) for a in arrays]
        operand = factor
        if isinstance(factor, str):
            operand = lib.tensor(0.37, dtype=lib.float32 if factor.endswith("32") else lib.float64)
        with lib.no_grad():
            returned = lib._foreach_mul_(tensors, operand)
        assert lib is torch or returned is tensors
        results.append(tensors)
    for ours, theirs in zip(*results):
        assert ours._version == theirs._version == 1
        if factor != "0-d float64":  # (a float64 factor takes the per-tensor mul_, unchanged here)
            assert ours.numpy().tobytes() == theirs.numpy().tobytes()
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)



NORMAL_SIZES = [*range(0, 41), 47, 48, 49, 63, 64, 65, 84, 100, 1003]


def _normal_draws(lib, seed: int, dtype: str) -> list[bytes]:
    """Every way of drawing normals at each size, in one stream (so the scalar sampler's cached
    second value carries from call to call), then the generator's state."""
    lib.manual_seed(seed)
    dt = getattr(lib, dtype)
    draws = []
    for n in NORMAL_SIZES:
        draws += [lib.randn(n, dtype=dt), lib.empty(n, dtype=dt).normal_(0.5, 2.0),
                  lib.randn_like(lib.zeros(2, n, dtype=dt)), lib.normal(1.0, 3.0, (n,), dtype=dt),
                  lib.normal(lib.arange(n, dtype=dt), 2.0), lib.empty(5, n % 7 + 1, dtype=dt).t().normal_(),
                  lib.empty(n, dtype=dt).log_normal_(0.1, 0.5)]
    return [t.numpy().tobytes() for t in draws] + [lib.get_rng_state().numpy().tobytes()]


@pytest.mark.parametrize("seed", [0, 42, 2**32 + 5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_draws_of_every_small_size_are_torchs_bits(seed, dtype):
    ours, theirs = _normal_draws(chainrule, seed, dtype), _normal_draws(torch, seed, dtype)
    assert len(ours) == len(theirs) == 7 * len(NORMAL_SIZES) + 1
    differing = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    assert differing == []


def test_randn_of_a_parameter_shape_keeps_torchs_dtype_shape_and_no_node():
    for lib in (chainrule, torch):
        lib.manual_seed(3)
    for n in (10, 64, 84):
        ours, theirs = chainrule.randn(n, requires_grad=True), torch.randn(n, requires_grad=True)
        assert ours.detach().numpy().tobytes() == theirs.detach().numpy().tobytes()
        assert ours.shape == theirs.shape and ours.is_contiguous() and ours.grad_fn is None and ours.requires_grad
