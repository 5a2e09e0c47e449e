"""vmap runs the mapped function once where session 50's mendBU/mendBW left it running slice by
slice (session 50, mendBZ): vmap(grad) through clamp (its backward's mask combined by ``&``/``|``,
which the record now replays, and a missing tensor bound a record constant) and round's rule. The
function called once as torch's vmap calls it, each op run once on the batch, values torch's."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from tests._profile import DIRECTIONAL_GRADCHECK

torch = pytest.importorskip("torch")

from ._vmap_checks import mapped  # noqa: E402

_rng = np.random.default_rng(51)
_X = _rng.standard_normal((4, 5, 6))
_Y = _rng.standard_normal((4, 5, 6))

# ---------------------------------------------------------------- clamp and round

CLAMP = {
    "clamp": lambda lib: lambda x, y: x.clamp(-0.5, 0.5) * y,
    "clamp_min": lambda lib: lambda x, y: x.clamp_min(0.1) * y,
    "clamp_max": lambda lib: lambda x, y: x.clamp(max=0.2) * y * x,
    "clamp_tensor_min": lambda lib: lambda x, y: lib.clamp(x, min=y) * y,
    "clamp_tensors": lambda lib: lambda x, y: lib.clamp(x, min=y, max=y + 1) * y * x,
    "clamp_min_tensor": lambda lib: lambda x, y: lib.clamp_min(x, y[0]) * y,
    "clamp_max_tensor": lambda lib: lambda x, y: x.clamp_max(y.cos()) * y,
    "round": lambda lib: lambda x, y: (x * 3).round() * y,
    "round_decimals": lambda lib: lambda x, y: (x * 3).round(decimals=1) * y + x,
    "mask_and_or": lambda lib: lambda x, y: lib.where((x > 0) & (y < 0.5) | (x < -1), x, y) * x,
}


@pytest.mark.parametrize("grad", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(CLAMP))
def test_clamp_and_round_replay_on_the_batch(name, grad, per_slice_ops):
    ours, our_calls = mapped(chainrule, CLAMP[name], (_X, _Y), grad)
    theirs, their_calls = mapped(torch, CLAMP[name], (_X, _Y), grad)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["clamp", "clamp_tensors", "round_decimals"])
def test_clamp_and_round_pass_gradcheck_through_vmap(name, per_slice_ops):
    build = CLAMP[name](chainrule)
    x = chainrule.tensor(_X[:, :2], requires_grad=True)
    y = chainrule.tensor(_Y[:, :2], requires_grad=True)
    f = chainrule.func.vmap(chainrule.func.grad(lambda x, y: build(x, y).sum(), argnums=(0, 1)))
    assert chainrule.autograd.gradcheck(f, (x, y), fast_mode=DIRECTIONAL_GRADCHECK)
    assert per_slice_ops == []


def test_bitwise_ops_replay_on_the_batch(per_slice_ops):
    """``&``, ``|`` and ``^`` of batched masks are in the record (they ran once per slice)."""
    xs, ys = (_X * 4).astype(np.int64), (_Y * 4).astype(np.int64)
    build = lambda lib: lambda x, y: ((x & y) | (x ^ 3)) + lib.bitwise_and(x > 0, y > 0)  # noqa: E731
    ours, our_calls = mapped(chainrule, build, (xs, ys))
    theirs, their_calls = mapped(torch, build, (xs, ys))
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    np.testing.assert_array_equal(ours, theirs)


# ---------------------------------------------------------------- a mixed-dtype op's promoted operand

PROMOTED = {
    "rfft_abs": lambda lib: lambda x, y: lib.fft.rfft(x * y).abs(),
    "fft_abs": lambda lib: lambda x, y: lib.fft.fft(x * y).abs(),
    "fft2_abs": lambda lib: lambda x, y: lib.fft.fft2(x * y).abs(),
    "irfft": lambda lib: lambda x, y: lib.fft.irfft(x * y) ** 2,
    "sgn": lambda lib: lambda x, y: lib.fft.fft(x * y).sgn().imag * x,
    "real_times_complex": lambda lib: lambda x, y: (x * lib.fft.fft(y)).abs() * x,
    "float32_times_float64": lambda lib: lambda x, y: (x.float() * y).double() * x,
}


@pytest.mark.parametrize("grad", [1, 2])
@pytest.mark.parametrize("name", sorted(PROMOTED))
def test_promoted_operand_replays_on_the_batch(name, grad, per_slice_ops):
    """The second derivative of |z| divides z by a real where(...) promoted to complex with no node of
    its own (torch's TensorIterator cast): the replay promotes the batch's operand the same way."""
    ours, our_calls = mapped(chainrule, PROMOTED[name], (_X, _Y), grad)
    theirs, their_calls = mapped(torch, PROMOTED[name], (_X, _Y), grad)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["rfft_abs", "real_times_complex"])
def test_promoted_operand_passes_gradcheck_through_vmap(name, per_slice_ops):
    build = PROMOTED[name](chainrule)
    x = chainrule.tensor(_X[:, :2], requires_grad=True)
    y = chainrule.tensor(_Y[:, :2], requires_grad=True)
    f = chainrule.func.vmap(chainrule.func.grad(lambda x, y: build(x, y).sum(), argnums=(0, 1)))
    assert chainrule.autograd.gradcheck(f, (x, y), fast_mode=DIRECTIONAL_GRADCHECK)
    assert per_slice_ops == []


# ---------------------------------------------------------------- randint and normal under randomness="different"

RANDOM = {
    "randint": lambda lib: lambda x: x * lib.randint(0, 10, (6,)),
    "randint_high_float": lambda lib: lambda x: x * lib.randint(7, (5, 6), dtype=x.dtype),
    "randint_int32": lambda lib: lambda x: x * lib.randint(-3, 4, (5, 1), dtype=lib.int32),
    "normal": lambda lib: lambda x: x * lib.normal(0.5, 2.0, (5, 6), dtype=x.dtype),
    "randperm": lambda lib: lambda x: x * lib.randperm(6),
    "randperm_float": lambda lib: lambda x: x * lib.randperm(5, dtype=x.dtype)[:, None] + x,
    "normal_tensor_mean": lambda lib: lambda x: lib.normal(x, 1.0) * x,
    "normal_tensor_mean_std": lambda lib: lambda x: lib.normal(x, x.abs() + 0.1) * x,
    "normal_tensor_std": lambda lib: lambda x: lib.normal(0.3, x.abs() + 0.1) * x,
    "normal_unbatched_mean": lambda lib: lambda x: lib.normal(lib.zeros(6, dtype=x.dtype), 2.0) * x,
    "normal_broadcast": lambda lib: lambda x: lib.normal(x[:, :1], x[0].abs()) * x,
    "normal_default_dtype": lambda lib: lambda x: x * lib.normal(-1.0, 0.5, (6,)).to(x.dtype) + x,
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("grad", [0, 1], ids=["forward", "grad"])
@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_factory_draws_torchs_numbers_once_for_the_batch(name, grad, dtype, per_slice_ops):
    """randint, normal and randperm draw for the batch once, as torch's batching rules: bitwise (normal
    from tensors: the batch's noise, then ``* std + mean``)."""
    ours, our_calls = mapped(chainrule, RANDOM[name], (_X.astype(dtype),), grad, "different", seed=5)
    theirs, their_calls = mapped(torch, RANDOM[name], (_X.astype(dtype),), grad, "different", seed=5)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_randperm_index_runs_the_function_once():
    """x[:, randperm(6)] under randomness="different": f once, torch's permutations (the index op
    with a batched index still runs per slice)."""
    build = lambda lib: lambda x: x[:, lib.randperm(6)]  # noqa: E731
    ours, our_calls = mapped(chainrule, build, (_X,), 1, "different", seed=7)
    theirs, their_calls = mapped(torch, build, (_X,), 1, "different", seed=7)
    assert our_calls == their_calls == 1
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", ["randint", "normal", "randperm", "normal_tensor_mean_std"])
def test_random_factory_leaves_the_generator_where_torchs_vmap_does(name):
    after = []
    for lib in (chainrule, torch):
        mapped(lib, RANDOM[name], (_X,), 0, "different", seed=6)
        after.append(lib.rand(8, dtype=lib.float64).numpy())
    np.testing.assert_array_equal(*after)


# ---------------------------------------------------------------- rand_like of a slice cut along a later dim

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("grad", [0, 1], ids=["forward", "grad"])
@pytest.mark.parametrize("in_dim", [1, 2, -1])
def test_rand_like_of_a_later_dims_slice_draws_in_the_batched_layout(in_dim, grad, dtype, per_slice_ops):
    """torch's rand_like runs on the batched tensor itself: one draw in its memory order, the batch dim
    where vmap found it (a slice of it refused an in-place fill before)."""
    xs = np.random.default_rng(52).standard_normal((5, 6, 4)).astype(dtype)
    found = []
    for lib in (chainrule, torch):
        calls = []

        def f(x, lib=lib, calls=calls):
            calls.append(1)
            return lib.rand_like(x) * x

        g = lib.func.grad(lambda x: f(x).sum()) if grad else f
        lib.manual_seed(8)
        out = lib.func.vmap(g, in_dims=in_dim, randomness="different")(lib.tensor(xs))
        found.append((out.numpy(), len(calls), lib.rand(3, dtype=lib.float64).numpy()))
    assert found[0][1] == found[1][1] == 1
    assert per_slice_ops == []
    np.testing.assert_array_equal(found[0][0], found[1][0])
    np.testing.assert_array_equal(found[0][2], found[1][2])  # (the generator left where torch's is)
