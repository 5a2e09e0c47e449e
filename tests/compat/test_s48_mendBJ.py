"""vmap replays sort, topk, kthvalue, median, mode, max/min by dim, argmax and argmin on the batch
(session 48, mendBJ): their indices, which no Function computes, made vmap run the function slice
by slice (and argmax's, once more on the last slice). Each call is now one op of slice 0's record,
which the replay runs once on the batch along the dim behind the batch dim, as torch's batching
rules run them; the gradients' scatter and gather at the kept indices replay by rules too."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _inputs():
    rng = np.random.default_rng(3)
    return rng.standard_normal((5, 4, 6)), rng.integers(0, 3, (4, 6))


_CASES = {
    "sort": lambda lib, x, ints: x.sort(),
    "sort_descending_dim0": lambda lib, x, ints: lib.sort(x, 0, descending=True),
    "sort_stable": lambda lib, x, ints: lib.sort(x, dim=1, stable=True),
    "topk": lambda lib, x, ints: x.topk(3),
    "topk_smallest_unsorted": lambda lib, x, ints: x.topk(2, dim=0, largest=False, sorted=False),
    "kthvalue_keepdim": lambda lib, x, ints: x.kthvalue(2, 1, True),
    "median_dim": lambda lib, x, ints: x.median(-1),
    "mode": lambda lib, x, ints: (x * 0 + ints).mode(0),
    "max_dim": lambda lib, x, ints: x.max(1),
    "min_dim_keepdim": lambda lib, x, ints: lib.min(x, 0, keepdim=True),
    "argmax": lambda lib, x, ints: x.argmax(),
    "argmax_dim_keepdim": lambda lib, x, ints: x.argmax(1, keepdim=True),
    "argmin_dim": lambda lib, x, ints: lib.argmin(x, dim=-1),
    "topk_of_0d": lambda lib, x, ints: x[0, 0].topk(1),
    "argmax_of_0d": lambda lib, x, ints: x[0, 0].argmax(),
}


def _run(lib, case: str, transform=None):
    data, ints = _inputs()
    calls = []

    def f(x):
        calls.append(1)
        return _CASES[case](lib, x, lib.tensor(ints).to(x.dtype))

    mapped = f if transform is None else getattr(lib.func, transform)(f)
    out = lib.func.vmap(mapped)(lib.tensor(data))
    return out, len(calls)


def _arrays(out):
    return [t.detach().numpy() for t in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("case", sorted(_CASES))
def test_ops_along_a_dim_run_once_on_the_batch(case, per_slice_ops):
    (ours, our_calls), (theirs, their_calls) = _run(chainrule, case), _run(torch, case)
    assert per_slice_ops == []
    assert our_calls == their_calls == 1
    ours, theirs = _arrays(ours), _arrays(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)  # (the same picks: bitwise)


_GRAD_CASES = {
    "topk": lambda lib, x: (x.topk(3).values ** 2).sum(),
    "sort": lambda lib, x: (x.sort(0).values[:2] ** 3).sum(),  # (a slice: its IndexScatter under jacrev)
    "max_dim": lambda lib, x: x.max(1).values.sin().sum(),
    "median_dim": lambda lib, x: x.median(1).values.exp().sum(),
    "kthvalue": lambda lib, x: (x.kthvalue(2, 1).values ** 3).sum(),
}


@pytest.mark.parametrize("transform", ["grad", "hessian"])
@pytest.mark.parametrize("case", sorted(_GRAD_CASES))
def test_derivatives_through_picked_values_replay_on_the_batch(case, transform, per_slice_ops):
    """The gradient's scatter at the kept indices (and under hessian its gather, at the indices
    jacrev's batched walk broadcasts over its rows) replays by rules: f runs once, as torch's."""
    data, _ = _inputs()
    found = {}
    for lib in (chainrule, torch):
        calls = []

        def f(x, lib=lib, calls=calls):
            calls.append(1)
            return _GRAD_CASES[case](lib, x)

        found[lib.__name__] = (lib.func.vmap(getattr(lib.func, transform)(f))(lib.tensor(data)), len(calls))
    (ours, our_calls), (theirs, their_calls) = found["chainrule"], found["torch"]
    assert per_slice_ops == []
    assert our_calls == their_calls == 1
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_jacrev_of_topk_replays_on_the_batch(per_slice_ops):
    data, _ = _inputs()
    out = {}
    for lib in (chainrule, torch):
        calls = []

        def f(x, calls=calls):
            calls.append(1)
            return x.topk(2).values.tanh()

        out[lib.__name__] = (lib.func.vmap(lib.func.jacrev(f))(lib.tensor(data)), len(calls))
    assert per_slice_ops == []
    assert out["chainrule"][1] == out["torch"][1] == 1
    np.testing.assert_allclose(out["chainrule"][0].numpy(), out["torch"][0].numpy(), rtol=1e-12, atol=1e-15)


def test_batched_rules_of_the_picks_pass_gradcheck():
    """The replayed picks are differentiable on the batch: float64 finite differences of vmap's
    result through topk and kthvalue (their scatter and gather rules), first and second order."""
    data, _ = _inputs()
    x = chainrule.tensor(data[:3, :2, :4], requires_grad=True)

    def f(x):
        return chainrule.func.vmap(lambda s: s.topk(2).values.sin() + s.kthvalue(2, 1, True).values ** 2)(x)

    assert chainrule.autograd.gradcheck(f, (x,))
    assert chainrule.autograd.gradgradcheck(f, (x,))


def test_an_op_along_a_dim_given_bad_arguments_raises_torchs_error_inside_vmap():
    data, _ = _inputs()
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match="selected index k out of range"):
            lib.func.vmap(lambda s: s.topk(9))(lib.tensor(data))


# ---------------------------------------------------------------- cross_entropy's label smoothing


def _smoothing_inputs():
    rng = np.random.default_rng(4)
    target = rng.integers(0, 5, (4, 3))
    target[1, 1] = -100  # (ignored: masked_fill_ zeroes its smoothing term)
    return rng.standard_normal((4, 3, 5)).astype(np.float32), target, np.linspace(0.5, 2, 5).astype(np.float32)


@pytest.mark.parametrize("transform", [None, "grad"])
@pytest.mark.parametrize("reduction, weighted", [("mean", False), ("sum", False), ("sum", True), ("none", False),
                                                 ("none", True)])
def test_label_smoothed_cross_entropy_replays_on_the_batch(reduction, weighted, transform, per_slice_ops):
    """The smoothing term's in-place masked_fill_ (a write of an op's result into an op's output),
    its fill number, ``~ignored``, a dtype given as NumPy's type and the engine's fan-out sum are
    all in the record now: f runs once, no op per slice, the values torch's."""
    data, target, weight = _smoothing_inputs()
    found = {}
    for lib in (chainrule, torch):
        calls = []

        def f(x, y, lib=lib, calls=calls):
            calls.append(1)
            out = lib.nn.functional.cross_entropy(x, y, weight=lib.tensor(weight) if weighted else None,
                                                  reduction=reduction, label_smoothing=0.2)
            return out.sum() if transform else out

        mapped = lib.func.grad(f) if transform else f
        found[lib.__name__] = (lib.func.vmap(mapped)(lib.tensor(data), lib.tensor(target)).numpy(), len(calls))
    (ours, our_calls), (theirs, their_calls) = found["chainrule"], found["torch"]
    assert per_slice_ops == []
    assert our_calls == their_calls == 1
    # (float32 rounding: the slice-by-slice run before differed from torch's by as much, 2.4e-7)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


def test_an_in_place_write_of_an_intermediate_replays_on_the_batch(per_slice_ops):
    """``y = x * 2; y.masked_fill_(mask, 0.0)``: the write is recorded (its result stands for y from
    there on) and replayed, first and second order."""
    rng = np.random.default_rng(5)
    data = rng.standard_normal((6, 7))
    found = {}
    for lib in (chainrule, torch):
        calls = []

        def f(x, lib=lib, calls=calls):
            calls.append(1)
            y = x * 2
            before = y + 1.0  # (a read of y before the write keeps its old value)
            y.masked_fill_(x > 0.3, 0.0)
            return (y * before).sum()

        found[lib.__name__] = ([lib.func.vmap(g)(lib.tensor(data)).numpy()
                                for g in (f, lib.func.grad(f), lib.func.hessian(f))], len(calls))
    (ours, our_calls), (theirs, their_calls) = found["chainrule"], found["torch"]
    assert per_slice_ops == []
    assert our_calls == their_calls == 3
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
