"""s46 progCG: the layout of topk, kthvalue, mode and argsort results, against torch.

Found around mixture_of_depths_router's ``torch.topk(router_logits, k, dim=1, sorted=False)``: where
chainrule replays torch's CPU order (unsorted topk, rows with ties) along a dim other than the last, the
index came back as a strided view, so values and indices were non-contiguous where torch's are
contiguous; argsort kept C order where torch's follows the input's layout (as sort's indices do)."""

import itertools

import numpy as np
import pytest
import torch as real_torch

import chainrule

ARRAYS = {
    "ties": np.random.default_rng(0).integers(0, 3, size=(4, 5, 6)).astype(np.float32),
    "no_ties": np.random.default_rng(0).standard_normal((4, 5, 6)).astype(np.float32),
    "int64": np.random.default_rng(1).integers(0, 4, size=(3, 4, 5)),
}

OPS = {
    "topk_sorted": lambda lib, x, d: lib.topk(x, 2, dim=d),
    "topk_unsorted": lambda lib, x, d: lib.topk(x, 2, dim=d, sorted=False),
    "topk_unsorted_smallest": lambda lib, x, d: lib.topk(x, 1, dim=d, largest=False, sorted=False),
    "kthvalue_keepdim": lambda lib, x, d: lib.kthvalue(x, 2, dim=d, keepdim=True),
    "kthvalue": lambda lib, x, d: lib.kthvalue(x, 2, dim=d),
    "mode_keepdim": lambda lib, x, d: lib.mode(x, dim=d, keepdim=True),
    "mode": lambda lib, x, d: lib.mode(x, dim=d),
    "sort": lambda lib, x, d: lib.sort(x, dim=d),
    "argsort": lambda lib, x, d: (lib.argsort(x, dim=d),),
    "argsort_descending": lambda lib, x, d: (lib.argsort(x, dim=d, descending=True),),
    "argsort_stable": lambda lib, x, d: (lib.argsort(x, dim=d, stable=True),),
}


def _results(lib, op, array, transposed, dim):
    x = lib.tensor(array)
    if transposed:
        x = x.transpose(0, 2)
    return [(t.tolist(), tuple(t.stride()), t.is_contiguous()) for t in OPS[op](lib, x, dim)]


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("name,transposed,dim", list(itertools.product(ARRAYS, (False, True), (0, 1, 2, -1))))
@pytest.mark.pairwise_in_ci(seed=61)
def test_selection_layout_matches_torch(op, name, transposed, dim):
    expected = _results(real_torch, op, ARRAYS[name], transposed, dim)
    assert _results(chainrule, op, ARRAYS[name], transposed, dim) == expected


def test_mixture_of_depths_topk_then_gather_is_contiguous():
    logits = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)
    results = []
    for lib in (real_torch, chainrule):
        weights, selected = lib.topk(lib.tensor(logits).t(), k=8, dim=0, sorted=False)
        selected, index = lib.sort(selected, dim=0)
        gathered = lib.gather(weights, dim=0, index=index)
        results.append([(t.tolist(), tuple(t.stride())) for t in (weights, selected, index, gathered)])
    assert results[1] == results[0]


def test_topk_unsorted_gradient_matches_torch():
    logits = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float64)
    grads = []
    for lib in (real_torch, chainrule):
        x = lib.tensor(logits, requires_grad=True)
        values, _ = lib.topk(x, 3, dim=0, sorted=False)
        (values * lib.arange(15, dtype=lib.float64).view(3, 5)).sum().backward()
        grads.append(x.grad.tolist())
    assert grads[1] == grads[0]
    x = chainrule.tensor(logits, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: chainrule.topk(t, 3, dim=0, sorted=False).values, (x,))


# ---------------------------------------------------------------- quiet overflow in tensor creation
# DeBERTa's XSoftmax fills with torch.tensor(torch.finfo(input.dtype).min): for a float64 input that is
# a float32 -inf in torch, made without a word; NumPy's cast warned "overflow encountered in cast".
OVERFLOWING = {
    "finfo_float64_min": lambda lib: lib.tensor(lib.finfo(lib.float64).min),
    "list_beyond_float32": lambda lib: lib.tensor([1e300, -1e300, 2.0]),
    "nested_list": lambda lib: lib.tensor([[1e39], [3.0]]),
    "float16_scalar": lambda lib: lib.tensor(1e10, dtype=lib.float16),
    "float16_int": lambda lib: lib.tensor(70000, dtype=lib.float16),
    "float16_int_list": lambda lib: lib.tensor([70000, 1], dtype=lib.float16),
    "complex64": lambda lib: lib.tensor(complex(1e300, 1.0), dtype=lib.complex64),
    "float64_array_to_float32": lambda lib: lib.tensor(np.array([1e300, 1.0]), dtype=lib.float32),
    "as_tensor_float64_array": lambda lib: lib.as_tensor(np.array([-1e300]), dtype=lib.float32),
    "int64_array_to_float16": lambda lib: lib.tensor(np.array([100000, 3]), dtype=lib.float16),
    "new_tensor": lambda lib: lib.zeros(2).new_tensor([1e300]),
    "xsoftmax_fill_float64": lambda lib: lib.softmax(lib.zeros(2, 3, dtype=lib.float64).masked_fill(
        lib.tensor([[True, False, False], [False, True, True]]), lib.tensor(lib.finfo(lib.float64).min)), -1),
    "in_range": lambda lib: lib.tensor([3.4e38, -65504.0]),
}


@pytest.mark.parametrize("case", list(OVERFLOWING))
def test_creation_overflow_is_quiet_as_torch(case):
    import warnings

    results = []
    for lib in (real_torch, chainrule):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = OVERFLOWING[case](lib)
        results.append((out.tolist(), str(out.dtype).split(".")[-1], [str(w.message) for w in caught]))
    assert results[1] == results[0]


def test_integer_overflow_still_raises():
    for data in (300.5, [1, 1e300]):
        with pytest.raises(RuntimeError, match="value cannot be converted to type uint8 without overflow"):
            real_torch.tensor(data, dtype=real_torch.uint8)
        with pytest.raises(RuntimeError, match="value cannot be converted to type uint8 without overflow"):
            chainrule.tensor(data, dtype=chainrule.uint8)


# ---------------------------------------------------------------- x[key] = number, converted as torch
# torch converts the number to x's dtype (c10's checked_convert) before it reads the key: found probing
# the overflow above, where x[0] = 1e300 on a float32 tensor wrote inf for torch's RuntimeError.
ASSIGNED = [1e300, -1e300, 70000.0, 3.5e38, 3.4028235e38, float("inf"), float("-inf"), 200, 300, -1, -129, -255,
            -256, 2**31, 2**40, 2**63, -2**63, -2**63 - 1, 2**64, 2.5e9, -0.5, 255.5, 127.5, -0.0, complex(1, 2),
            complex(1e300, 0), complex(3.0, 0), True, False, 1e-300, np.int64(5), np.uint64(2**63 + 1), np.int8(-1)]
KEYS = [0, slice(None), False, True, 5, "mask", "index", None, Ellipsis]


def _assign(lib, dtype, key, value):
    x = lib.zeros(2, dtype=getattr(lib, dtype))
    key = lib.tensor([True, False]) if key == "mask" else lib.tensor([1]) if key == "index" else key
    try:
        x[key] = value
    except Exception as e:  # the error is the result compared
        return type(e).__name__, str(e)
    return "ok", [repr(v) for v in x.tolist()]


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64", "complex64", "complex128", "int8",
                                   "uint8", "int16", "int32", "int64", "bool"])
def test_setitem_number_converted_as_torch(dtype):
    for value, key in itertools.product(ASSIGNED, KEYS):
        assert _assign(chainrule, dtype, key, value) == _assign(real_torch, dtype, key, value), (value, key)


def test_setitem_overflow_leaves_tensor_unchanged():
    x = chainrule.arange(3.0)
    with pytest.raises(RuntimeError, match="value cannot be converted to type float without overflow"):
        x[1] = 1e300
    assert x.tolist() == [0.0, 1.0, 2.0] and x._version == 0
