"""vmap runs the mapped function once where session 50's mendBU left it running slice by slice
(session 50, mendBW): random factories and bernoulli under randomness="different" (one draw for
the batch, torch's numbers bitwise), ... The function called once as torch's vmap calls it, each op
run once on the batch (no per-slice fallback), values torch's."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from tests._profile import DIRECTIONAL_GRADCHECK

torch = pytest.importorskip("torch")

from ._vmap_checks import mapped  # noqa: E402

_rng = np.random.default_rng(50)
_X = _rng.standard_normal((4, 5, 6))
_Y = _rng.standard_normal((4, 5, 6))

# ---------------------------------------------------------------- random ops under randomness="different"

RANDOM = {
    "rand": lambda lib: lambda x: x * lib.rand(6, dtype=x.dtype),
    "randn": lambda lib: lambda x: x * lib.randn(5, 6, dtype=x.dtype),
    "rand_like": lambda lib: lambda x: x * lib.rand_like(x),
    "randn_like": lambda lib: lambda x: x * lib.randn_like(x) * x,
    "two_draws": lambda lib: lambda x: x * lib.rand(6, dtype=x.dtype) + lib.randn_like(x) * lib.randn(5, 1,
                                                                                                   dtype=x.dtype),
    "generator": lambda lib: lambda x: x * lib.rand(6, dtype=x.dtype, generator=lib.Generator().manual_seed(9)),
    "bernoulli": lambda lib: lambda x: x * lib.bernoulli(x.sigmoid()),
    "bernoulli_p": lambda lib: lambda x: x * lib.bernoulli(x.detach(), 0.3),
    "bernoulli_unbatched": lambda lib: lambda x: x * lib.bernoulli(lib.full((6,), 0.4, dtype=x.dtype)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("grad", [0, 1], ids=["forward", "grad"])
@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_op_draws_torchs_numbers_once_for_the_batch(name, grad, dtype, per_slice_ops):
    """One draw of the batch's shape, as torch's batching rule draws it: bitwise torch's numbers."""
    ours, our_calls = mapped(chainrule, RANDOM[name], (_X.astype(dtype),), grad, "different", seed=3)
    theirs, their_calls = mapped(torch, RANDOM[name], (_X.astype(dtype),), grad, "different", seed=3)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", ["rand", "randn_like", "bernoulli"])
def test_random_op_leaves_the_generator_where_torchs_vmap_does(name):
    after = []
    for lib in (chainrule, torch):
        mapped(lib, RANDOM[name], (_X,), 0, "different", seed=4)
        after.append(lib.rand(8, dtype=lib.float64).numpy())
    np.testing.assert_array_equal(*after)


def test_random_factory_value_is_batched_under_different():
    """A factory's draw under randomness="different" is batched: reading it as a number is refused."""
    messages = []
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError) as info:
            lib.func.vmap(lambda x, lib=lib: x * lib.rand(()).item(), randomness="different")(lib.ones(3))
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_bernoulli_sample_keeps_torchs_node_under_vmap():
    names = []
    for lib in (chainrule, torch):
        x = lib.tensor(_X[:, 0], requires_grad=True)
        lib.manual_seed(2)
        out = lib.func.vmap(lambda x, lib=lib: lib.bernoulli(x.sigmoid()), randomness="different")(x)
        out.sum().backward()
        names.append((type(out.grad_fn).__name__, out.detach().numpy(), x.grad.numpy()))
    assert names[0][0] == names[1][0]
    np.testing.assert_array_equal(names[0][1], names[1][1])
    np.testing.assert_array_equal(names[0][2], names[1][2])


# ---------------------------------------------------------------- median() over all elements

MEDIAN = {
    "median": lambda lib: lambda x, y: x.median() * y,
    # most of each slice tied at 1.0: the median's gradient split evenly among the ties
    "median_ties": lambda lib: lambda x, y: lib.where(x > -0.5, 1.0, x).median() * y,
    "median_int": lambda lib: lambda x, y: (x * 3).long().median() * y,
}


@pytest.mark.parametrize(("name", "grad"), [(name, grad) for name in sorted(MEDIAN) for grad in (0, 1, 2)
                                            if not (grad and name == "median_int")])  # (no gradient of an integer)
def test_median_of_all_elements_replays_on_the_batch(name, grad, per_slice_ops):
    ours, our_calls = mapped(chainrule, MEDIAN[name], (_X, _Y), grad)
    theirs, their_calls = mapped(torch, MEDIAN[name], (_X, _Y), grad)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_median_of_all_elements_is_bitwise_torchs_under_vmap(per_slice_ops):
    xs = _X.astype(np.float32)
    xs[:, 0, :3] = np.nan  # (a NaN slice's median is NaN)
    xs[1] = np.round(xs[1])
    found = [lib.func.vmap(lib.median)(lib.tensor(xs)).numpy() for lib in (chainrule, torch)]
    assert per_slice_ops == []
    np.testing.assert_array_equal(*found)


def test_median_of_all_elements_passes_gradcheck_through_vmap(per_slice_ops):
    x = chainrule.tensor(_X[:, :2], requires_grad=True)
    f = chainrule.func.vmap(chainrule.func.grad(lambda x: (x.median() * x.sin()).sum()))
    assert chainrule.autograd.gradcheck(f, (x,))
    # second order along random directions in CI (14 s element by element, loaded), all in the long profile
    assert chainrule.autograd.gradgradcheck(f, (x,), fast_mode=DIRECTIONAL_GRADCHECK)
    assert per_slice_ops == []


# ---------------------------------------------------------------- float32 interpolate without a graph

INTERPOLATE = {
    "linear": lambda lib: lambda x: lib.nn.functional.interpolate(x[None], scale_factor=2, mode="linear")[0],
    "linear_align_corners": lambda lib: lambda x: lib.nn.functional.interpolate(
        x[None], size=11, mode="linear", align_corners=True)[0] * x[:, :1],
    "bicubic": lambda lib: lambda x: lib.nn.functional.interpolate(x[None, None], scale_factor=1.5,
                                                                   mode="bicubic")[0, 0],
    "trilinear": lambda lib: lambda x: lib.nn.functional.interpolate(x[None, None, None], scale_factor=2,
                                                                     mode="trilinear")[0, 0, 0],
    "two_images": lambda lib: lambda x: lib.nn.functional.interpolate(x.reshape(3, 2, 5), size=7,
                                                                      mode="linear", align_corners=True),
}


@pytest.mark.parametrize("name", sorted(INTERPOLATE))
def test_float32_interpolate_replays_bitwise_as_torchs_kernel(name, per_slice_ops):
    """torch's batching rule folds the batch into N and runs its float32 kernel: the same roundings."""
    xs = _X.astype(np.float32)
    ours, our_calls = mapped(chainrule, INTERPOLATE[name], (xs,))
    theirs, their_calls = mapped(torch, INTERPOLATE[name], (xs,))
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)


# ---------------------------------------------------------------- vmap(grad) of the FFTs

FFT = {
    "fft2": lambda lib: lambda x, y: lib.fft.fft2(x * y).abs(),
    "irfft": lambda lib: lambda x, y: lib.fft.irfft(x * y) ** 2,
    "irfft_n": lambda lib: lambda x, y: lib.fft.irfft(x * y, n=9, norm="ortho") ** 2,
    "hfft": lambda lib: lambda x, y: lib.fft.hfft(x * y, dim=0),
    "fftn_real": lambda lib: lambda x, y: lib.fft.fftn(x, norm="forward").real * y,
}


@pytest.mark.parametrize("name", sorted(FFT))
def test_grad_of_an_fft_of_a_real_input_replays_on_the_batch(name, per_slice_ops):
    """The engine's real part of a complex gradient for a real input, and irfft's weights of the
    doubled bins, are ops the record follows: vmap(grad) runs f once."""
    ours, our_calls = mapped(chainrule, FFT[name], (_X, _Y), 1)
    theirs, their_calls = mapped(torch, FFT[name], (_X, _Y), 1)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


def test_real_input_gradient_of_a_complex_op_stays_a_contiguous_copy():
    """Outside vmap, the real part of a complex gradient is still a contiguous copy (as the cast made it)."""
    x = chainrule.tensor(_X[0], requires_grad=True)
    chainrule.fft.fft2(x).abs().sum().backward()
    y = torch.tensor(_X[0], requires_grad=True)
    torch.fft.fft2(y).abs().sum().backward()
    assert x.grad.is_contiguous() and x.grad.dtype == chainrule.float64
    np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- indexing by a batched 0-d index

INDEXED = {
    "flat_argmax": lambda lib: lambda x, y: x.reshape(-1)[x.reshape(-1).argmax()] * y,
    "row_at_argmax": lambda lib: lambda x, y: x[x[:, 0].argmax()] * 2 + y[0],
    "column_at_argmin": lambda lib: lambda x, y: x.t()[y[0].argmin()] * x[0, 0],
    "closed_over_table": lambda lib: (lambda table: lambda x, y: table[y[:, 0].argmax()] * x[0])(
        lib.tensor(np.arange(30.0).reshape(5, 6))),
}


@pytest.mark.parametrize("name", sorted(INDEXED))
def test_index_by_a_batched_0d_index_replays_on_the_batch(name, per_slice_ops):
    ours, our_calls = mapped(chainrule, INDEXED[name], (_X, _Y))
    theirs, their_calls = mapped(torch, INDEXED[name], (_X, _Y))
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    np.testing.assert_array_equal(ours, theirs)


def test_index_by_a_batched_0d_index_differentiated_outside_the_vmap(per_slice_ops):
    found = []
    for lib in (chainrule, torch):
        x = lib.tensor(_X, requires_grad=True)
        out = lib.func.vmap(lambda x: x[x[:, 0].argmax()] ** 2)(x)
        out.sum().backward()
        found.append((out.detach().numpy(), x.grad.numpy()))
    assert "replay failed" not in per_slice_ops
    for ours, theirs in zip(*found):
        np.testing.assert_array_equal(ours, theirs)


def test_index_by_a_batched_0d_index_out_of_range_raises_as_torch():
    messages = []
    for lib in (chainrule, torch):
        with pytest.raises(IndexError) as info:
            lib.func.vmap(lambda x, lib=lib: x[x.argmax() + 40])(lib.tensor(_X[:, 0]))
        messages.append(type(info.value))
    assert messages[0] is messages[1]
