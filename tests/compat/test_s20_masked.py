"""chainrule.masked against torch.masked (session 20): values of fully masked-out slices, dtypes, the
gradient masked-out elements get, torch's errors, and a repeated dim named as torch names it. A nested input's refusal is in test_s20_nested.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule
from chainrule.autograd import gradcheck

torch = pytest.importorskip("torch")

VALUES = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 3
# the middle row keeps nothing
MASK = np.array([[True, False, True, False], [False, False, False, False], [True, True, False, True]])


def _on(lib, values=VALUES, mask=MASK, requires_grad=False):
    x = lib.tensor(values, requires_grad=requires_grad)
    return x, lib.tensor(mask)


def _same(ours, theirs):
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("call, empty_row_value", [
    (lambda lib, x, m: lib.masked.sum(x, 1, mask=m), 0.0),
    (lambda lib, x, m: lib.masked.prod(x, 1, mask=m), 1.0),
    (lambda lib, x, m: lib.masked.amax(x, 1, mask=m), -math.inf),
    (lambda lib, x, m: lib.masked.amin(x, 1, mask=m), math.inf),
    (lambda lib, x, m: lib.masked.mean(x, 1, mask=m), math.nan),
    (lambda lib, x, m: lib.masked.median(x, 1, mask=m), math.nan),
    (lambda lib, x, m: lib.masked.var(x, 1, mask=m), math.nan),
    (lambda lib, x, m: lib.masked.std(x, 1, correction=0, mask=m), math.nan),
    (lambda lib, x, m: lib.masked.logsumexp(x, 1, mask=m), -math.inf),
    (lambda lib, x, m: lib.masked.norm(x, 2.0, 1, mask=m), 0.0),
    (lambda lib, x, m: lib.masked.norm(x, -math.inf, 1, mask=m), math.inf),
], ids=["sum", "prod", "amax", "amin", "mean", "median", "var", "std", "logsumexp", "norm", "norm_-inf"])
def test_a_fully_masked_out_row_reduces_to_torchs_value_and_gets_no_gradient(call, empty_row_value):
    x, m = _on(chainrule, requires_grad=True)
    tx, tm = _on(torch, requires_grad=True)
    ours, theirs = call(chainrule, x, m), call(torch, tx, tm)
    _same(ours, theirs)
    np.testing.assert_equal(ours[1].item(), empty_row_value)
    ours.nan_to_num(0.0, 0.0, 0.0).sum().backward()
    theirs.nan_to_num(0.0, 0.0, 0.0).sum().backward()
    _same(x.grad, tx.grad)  # the empty row's gradient too: NaN for var/std, whose mean of nothing is NaN
    partly_kept = np.array([True, False, True])
    assert not x.grad.numpy()[partly_kept][~MASK[partly_kept]].any()  # masked-out elements: zero gradient


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin", "cumsum", "cumprod"])
def test_normalizations_along_a_dim_match_torch_and_zero_the_masked_out_gradient(name):
    x, m = _on(chainrule, requires_grad=True)
    tx, tm = _on(torch, requires_grad=True)
    ours, theirs = getattr(chainrule.masked, name)(x, -1, mask=m), getattr(torch.masked, name)(tx, -1, mask=tm)
    _same(ours, theirs)
    weights = np.linspace(0.5, 2.0, 12, dtype=np.float32).reshape(3, 4)
    (ours.nan_to_num(0.0, 0.0, 0.0) * chainrule.tensor(weights)).sum().backward()
    (theirs.nan_to_num(0.0, 0.0, 0.0) * torch.tensor(weights)).sum().backward()
    _same(x.grad, tx.grad)
    assert not x.grad.numpy()[~MASK].any()


def test_integer_inputs_widen_and_index_results_take_the_input_dtype_as_torchs():
    ints = np.arange(12).reshape(3, 4).astype(np.int32) - 6
    x, m = _on(chainrule, ints)
    tx, tm = _on(torch, ints)
    for call in (lambda lib, x, m: lib.masked.sum(x, 0, mask=m),  # int32 -> int64
                 lambda lib, x, m: lib.masked.amax(x, 1, mask=m),  # the empty row: int32's lowest value
                 lambda lib, x, m: lib.masked.argmax(x.float(), 1, mask=m),  # indices in float32, as torch's
                 lambda lib, x, m: lib.masked.var(x, 1, mask=m),  # float32 for an integer input
                 lambda lib, x, m: lib.masked.normalize(x.float(), 1.0, 0, mask=m),
                 lambda lib, x, m: lib.masked.logaddexp(x.float(), x.float() / 2, input_mask=m, other_mask=m[:, :1]),
                 lambda lib, x, m: lib.masked.mean(x.double(), (0, -1), keepdim=True, mask=m[0])):
        _same(call(chainrule, x, m), call(torch, tx, tm))


@pytest.mark.parametrize("call", [
    lambda lib, x, m: lib.masked.sum(x, (1, -1), mask=m),
    lambda lib, x, m: lib.masked.amax(x, 2, mask=m),
    lambda lib, x, m: lib.masked.sum(x, 1, mask=m[None]),
    lambda lib, x, m: lib.masked.mean(x.long(), 1, mask=m),
    lambda lib, x, m: lib.masked.median(x.long(), 1, mask=m),
    lambda lib, x, m: lib.masked.var(x, 1, True, correction=1, mask=m),
    lambda lib, x, m: lib.masked.amax(m, 1, mask=m),
], ids=["repeated_dim", "dim_out_of_range", "mask_of_more_dims", "mean_of_ints", "median_int_empty_row",
        "unbiased_and_correction", "amax_of_bool"])
def test_torchs_errors(call):
    x, m = _on(chainrule)
    tx, tm = _on(torch)
    with pytest.raises(Exception) as theirs:
        call(torch, tx, tm)
    with pytest.raises(type(theirs.value)) as ours:
        call(chainrule, x, m)
    assert str(ours.value).replace("chainrule.", "torch.") == str(theirs.value)


def test_a_repeated_dim_is_named_as_torch_names_it():
    x, tx = chainrule.ones(2, 3), torch.ones(2, 3)
    for call in (lambda lib, x: x.sum((0, 1, -1, 0)), lambda lib, x: lib.logsumexp(x, (1, -1))):
        with pytest.raises(RuntimeError) as theirs:
            call(torch, tx)
        with pytest.raises(RuntimeError, match=f"^{theirs.value}$"):
            call(chainrule, x)


def test_float64_gradcheck_of_masked_reductions_and_normalizations():
    x = chainrule.tensor(VALUES.astype(np.float64), requires_grad=True)
    # every row keeps two elements and every column one: no slice is empty or a single sample (NaN std)
    keeps_some = chainrule.tensor(np.array([[True, False, True, False], [False, True, True, False],
                                            [True, True, False, True]]))

    def composed(x):
        m = keeps_some
        return (chainrule.masked.std(x, 1, mask=m).sum() + chainrule.masked.logsumexp(x, 0, mask=m).sum()
                + (chainrule.masked.softmax(x, 1, mask=m) * x).sum() + chainrule.masked.normalize(x, 3.0, 1, mask=m).sum()
                + chainrule.masked.prod(x, 1, mask=m).sum() + chainrule.masked.amax(x, 0, mask=m).sum())

    assert math.isfinite(composed(x).item())
    assert gradcheck(composed, (x,))


@pytest.mark.parametrize("call", [
    lambda lib: lib.masked.softmax(lib.arange(6).reshape(2, 3).int(), 1, mask=lib.tensor([True, False, True])),
    lambda lib: lib.softmax(lib.ones(2, 3), 1, dtype=lib.int32),
    lambda lib: lib.nn.functional.log_softmax(lib.ones(2, 3), 0, dtype=lib.int16),
    lambda lib: lib.nn.functional.softmin(lib.ones(2, 3).short(), 0, dtype=lib.int16),
], ids=["masked_softmax_of_ints", "softmax_in_int32", "log_softmax_in_int16", "softmin_in_int16"])
def test_a_softmax_computed_in_an_integer_dtype_raises_torchs_kernel_error(call):
    with pytest.raises(NotImplementedError) as theirs:
        call(torch)
    with pytest.raises(NotImplementedError, match=f"^{theirs.value}$"):
        call(chainrule)


def test_an_empty_softmax_in_an_integer_dtype_comes_back_in_that_dtype():
    ours = chainrule.softmax(chainrule.zeros(0, 3, dtype=chainrule.int64), 1, dtype=chainrule.int32)
    theirs = torch.softmax(torch.zeros(0, 3, dtype=torch.int64), 1, dtype=torch.int32)
    assert tuple(ours.shape) == tuple(theirs.shape) and str(ours.dtype).split(".")[-1] == "int32" == str(theirs.dtype).split(".")[-1]
