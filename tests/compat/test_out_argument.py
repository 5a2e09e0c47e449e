"""torch's ``out=`` on the namespace functions of reductions, comparisons and selections
(``torch.sum(x, 0, out=y)``): the result written into ``out`` and ``out`` returned (a tuple of
outs for (values, indices)), a wrongly shaped ``out`` resized with torch's warning, an ``out``
whose dtype cannot hold the result refused, and ``out=`` under autograd refused, as torch 2.13."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

X = np.array([[1.0, -5.0, 3.0], [4.0, 2.0, -6.0]], dtype=np.float32)
Y = np.array([[1.0, 2.0, 3.0], [0.0, 2.0, -7.0]], dtype=np.float32)

# name: (call given the library, x, y and out; the out's shape, dtype name) for a correct out
CASES = {
    "sum dim": (lambda lib, x, y, out: lib.sum(x, 1, out=out), (2,), "float32"),
    "sum keepdim": (lambda lib, x, y, out: lib.sum(x, 0, keepdim=True, out=out), (1, 3), "float32"),
    "mean dim": (lambda lib, x, y, out: lib.mean(x, (0, 1), out=out), (), "float32"),
    "prod dim": (lambda lib, x, y, out: lib.prod(x, 0, out=out), (3,), "float32"),
    "amax": (lambda lib, x, y, out: lib.amax(x, 1, out=out), (2,), "float32"),
    "amin": (lambda lib, x, y, out: lib.amin(x, 0, out=out), (3,), "float32"),
    "argmax": (lambda lib, x, y, out: lib.argmax(x, 1, out=out), (2,), "int64"),
    "argmin": (lambda lib, x, y, out: lib.argmin(x, 0, out=out), (3,), "int64"),
    "max": (lambda lib, x, y, out: lib.max(x, out=out), (), "float32"),
    "std dim": (lambda lib, x, y, out: lib.std(x, 1, out=out), (2,), "float32"),
    "var dim": (lambda lib, x, y, out: lib.var(x, 0, out=out), (3,), "float32"),
    "logsumexp": (lambda lib, x, y, out: lib.logsumexp(x, 1, out=out), (2,), "float32"),
    "norm dim": (lambda lib, x, y, out: lib.norm(x, 2, 1, out=out), (2,), "float32"),
    "cumsum": (lambda lib, x, y, out: lib.cumsum(x, 1, out=out), (2, 3), "float32"),
    "cumprod": (lambda lib, x, y, out: lib.cumprod(x, 0, out=out), (2, 3), "float32"),
    "all dim": (lambda lib, x, y, out: lib.all(x > 0, 1, out=out), (2,), "bool"),
    "any dim": (lambda lib, x, y, out: lib.any(x > 0, 0, out=out), (3,), "bool"),
    "nansum dim": (lambda lib, x, y, out: lib.nansum(x, 1, out=out), (2,), "float32"),
    "nanmean dim": (lambda lib, x, y, out: lib.nanmean(x, 0, out=out), (3,), "float32"),
    "eq": (lambda lib, x, y, out: lib.eq(x, y, out=out), (2, 3), "bool"),
    "ne scalar": (lambda lib, x, y, out: lib.ne(x, 2.0, out=out), (2, 3), "bool"),
    "lt": (lambda lib, x, y, out: lib.lt(x, y, out=out), (2, 3), "bool"),
    "le": (lambda lib, x, y, out: lib.le(x, y, out=out), (2, 3), "bool"),
    "gt into float": (lambda lib, x, y, out: lib.gt(x, y, out=out), (2, 3), "float32"),
    "ge": (lambda lib, x, y, out: lib.ge(x, y, out=out), (2, 3), "bool"),
    "where": (lambda lib, x, y, out: lib.where(x > y, x, y, out=out), (2, 3), "float32"),
    "neg": (lambda lib, x, y, out: lib.neg(x, out=out), (2, 3), "float32"),
    "pow": (lambda lib, x, y, out: lib.pow(x, 2, out=out), (2, 3), "float32"),
    "maximum": (lambda lib, x, y, out: lib.maximum(x, y, out=out), (2, 3), "float32"),
    "minimum into double": (lambda lib, x, y, out: lib.minimum(x, y, out=out), (2, 3), "float64"),
    "logical_and": (lambda lib, x, y, out: lib.logical_and(x > 0, y > 0, out=out), (2, 3), "bool"),
    "logical_not": (lambda lib, x, y, out: lib.logical_not(x > 0, out=out), (2, 3), "bool"),
    "round": (lambda lib, x, y, out: lib.round(x / 3, out=out), (2, 3), "float32"),
    "atan2": (lambda lib, x, y, out: lib.atan2(x, y, out=out), (2, 3), "float32"),
    "remainder": (lambda lib, x, y, out: lib.remainder(x, y, out=out), (2, 3), "float64"),
    "lerp": (lambda lib, x, y, out: lib.lerp(x, y, 0.25, out=out), (2, 3), "float32"),
    "addcmul": (lambda lib, x, y, out: lib.addcmul(x, x, y, value=2, out=out), (2, 3), "float32"),
    "logaddexp": (lambda lib, x, y, out: lib.logaddexp(x, y, out=out), (2, 3), "float32"),
    "index_select": (lambda lib, x, y, out: lib.index_select(x, 1, lib.tensor([2, 0]), out=out), (2, 2), "float32"),
    "gather": (lambda lib, x, y, out: lib.gather(x, 1, lib.tensor([[0], [2]]), out=out), (2, 1), "float32"),
    "masked_select": (lambda lib, x, y, out: lib.masked_select(x, x > 0, out=out), (3,), "float32"),
    "nonzero": (lambda lib, x, y, out: lib.nonzero(x > 0, out=out), (3, 2), "int64"),
    "tril": (lambda lib, x, y, out: lib.tril(x, out=out), (2, 3), "float32"),
    "triu": (lambda lib, x, y, out: lib.triu(x, 1, out=out), (2, 3), "float32"),
    "diag": (lambda lib, x, y, out: lib.diag(x, out=out), (2,), "float32"),
    "cross": (lambda lib, x, y, out: lib.cross(x, y, dim=1, out=out), (2, 3), "float32"),
    "softmax": (lambda lib, x, y, out: lib.softmax(x, 1, out=out), (2, 3), "float32"),
}
# (values, indices) results take a tuple of two outs
PAIR_CASES = {
    "max dim": (lambda lib, x, out: lib.max(x, 1, out=out), (2,)),
    "min dim keepdim": (lambda lib, x, out: lib.min(x, 0, keepdim=True, out=out), (1, 3)),
    "sort": (lambda lib, x, out: lib.sort(x, 1, out=out), (2, 3)),
    "topk": (lambda lib, x, out: lib.topk(x, 2, out=out), (2, 2)),
    "median dim": (lambda lib, x, out: lib.median(x, 1, out=out), (2,)),
}


def _run(lib, call, shape, dtype_name):
    x, y = lib.tensor(X), lib.tensor(Y)
    out = lib.full(shape, 7, dtype=getattr(lib, dtype_name))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        returned = call(lib, x, y, out)
    values = np.round(np.nan_to_num(np.array(out.tolist(), dtype=float), nan=1e9), 5).tolist()  # to float32's digits
    return (returned is out, values, str(out.dtype).split(".")[-1], out._version > 0,
            [str(w.message)[:60] for w in caught])


@pytest.mark.parametrize("name", CASES)
def test_out_written_and_returned_as_torch(name):
    call, shape, dtype_name = CASES[name]
    assert _run(chainrule, call, shape, dtype_name) == _run(torch, call, shape, dtype_name)


@pytest.mark.parametrize("name", ["sum dim", "argmax", "eq", "cumsum", "where"])
def test_wrong_shape_is_resized_with_torchs_warning(name):
    call, shape, dtype_name = CASES[name]
    mine, theirs = _run(chainrule, call, (5, 5), dtype_name), _run(torch, call, (5, 5), dtype_name)
    assert mine == theirs and mine[4][0].startswith("An output with one or more elements was resized")
    assert _run(chainrule, call, (0,), dtype_name) == _run(torch, call, (0,), dtype_name)  # no warning when empty


def _error(lib, call, shape, dtype_name, requires_grad=False):
    x, y = lib.tensor(X, requires_grad=requires_grad), lib.tensor(Y)
    out = lib.zeros(shape, dtype=getattr(lib, dtype_name))
    with pytest.raises(RuntimeError) as error:
        call(lib, x, y, out)
    return str(error.value), out.tolist()


# torch's rule for the out's dtype differs by op: cast when it can hold the result (else refused),
# the dtype computed in (sum), the same as the input's (amax) or the result's (argmax, where, neg)
DTYPE_REFUSALS = [("maximum", "int64"), ("pow", "int64"), ("std dim", "int64"),
                  ("amax", "int64"), ("amin", "float64"), ("argmax", "int32"), ("argmin", "float32"),
                  ("norm dim", "float64"), ("where", "float64"), ("neg", "int64"), ("round", "float64"),
                  ("logsumexp", "int64"), ("max", "int64"), ("atan2", "int64"), ("index_select", "float64"),
                  ("masked_select", "int64"), ("nonzero", "float32"), ("gather", "float64"), ("tril", "int64"),
                  ("diag", "float64"), ("cross", "int64"), ("softmax", "float64")]


@pytest.mark.parametrize("name, dtype_name", DTYPE_REFUSALS)
def test_out_of_a_dtype_the_op_refuses_as_torch(name, dtype_name):
    call, shape, _ = CASES[name]
    assert _error(chainrule, call, shape, dtype_name) == _error(torch, call, shape, dtype_name)


@pytest.mark.parametrize("name, dtype_name", [("sum dim", "int64"), ("sum dim", "float64"), ("sum dim", "bool"),
                                             ("prod dim", "int64"), ("cumsum", "int64"), ("cumprod", "float64"),
                                             ("nansum dim", "float64")])
def test_out_dtype_is_the_dtype_computed_in_as_torch(name, dtype_name):
    # (the input is cast first: 1.5 sums as 1 into an int64 out)
    call, shape, _ = CASES[name]
    half = np.array([[1.5, -5.0, 3.0], [4.0, 2.0, -6.0]], dtype=np.float32)
    results = []
    for lib in (chainrule, torch):
        out = lib.zeros(shape, dtype=getattr(lib, dtype_name))
        results.append((call(lib, lib.tensor(half), lib.tensor(Y), out).tolist(), str(out.dtype).split(".")[-1]))
    assert results[0] == results[1]


@pytest.mark.parametrize("name", ["sum dim", "amax", "cumsum", "maximum", "neg"])
def test_out_under_autograd_is_refused_as_torch(name):
    call, shape, dtype_name = CASES[name]
    mine, theirs = _error(chainrule, call, shape, dtype_name, True), _error(torch, call, shape, dtype_name, True)
    assert "functions with out=... arguments don't support automatic differentiation" in mine[0]
    assert mine[0].split(": ", 1)[1] == theirs[0].split(": ", 1)[1] and mine[1] == theirs[1]


def _pair(lib, call, shape):
    x = lib.tensor(X)
    values, indices = lib.zeros(shape), lib.zeros(shape, dtype=lib.int64)
    returned = call(lib, x, (values, indices))
    return (returned.values is values, returned.indices is indices, values.tolist(), indices.tolist())


@pytest.mark.parametrize("name", PAIR_CASES)
def test_values_and_indices_outs_as_torch(name):
    call, shape = PAIR_CASES[name]
    assert _pair(chainrule, call, shape) == _pair(torch, call, shape)


def test_tensor_methods_take_no_out_as_torchs():
    # the out= wrapper is on the namespace functions only: methods and operators keep the plain ops
    # (each under its __torch_function__ wrapper)
    x = chainrule.tensor(X)
    assert chainrule.Tensor.sum.__wrapped__ is chainrule.ops.reduce.sum
    assert chainrule.sum.__wrapped__ is not chainrule.ops.reduce.sum
    for lib in (chainrule, torch):
        with pytest.raises(TypeError):
            lib.tensor(X).sum(1, out=lib.zeros(2))
    assert (x == x).all() and chainrule.sum(x, 1).tolist() == x.sum(1).tolist()
