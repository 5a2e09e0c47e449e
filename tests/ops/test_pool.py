"""Pooling ops vs torch: kernel × stride × padding × dilation × ceil_mode (max), count_include_pad and
divisor_override (avg), adaptive pools, indices equal to torch's, unpool; gradcheck; errors."""

import itertools

import numpy as np
import pytest

import chainrule

from .harness import OpCase, check_gradients, compare_with_torch, distinct, noncontig, parametrize, randn

try:
    import torch
except ImportError:
    torch = None


def F(lib):
    return lib.nn.functional if lib.__name__ == "torch" else lib


def pool_case(name, op, x, gradgradcheck=True, **kwargs):
    def fn(lib, t):
        return getattr(F(lib), op)(t, **kwargs)

    return OpCase(name, fn, [x], gradgradcheck=gradgradcheck)


X1 = distinct(2, 3, 13, seed=1)  # tie-free: the max is unique in every window


def max_2d(x):
    return [pool_case(f"max_pool2d_k{k}_s{s}_p{p}_d{d}_c{int(c)}".replace(" ", ""), "max_pool2d", x, kernel_size=k,
                      stride=s, padding=p, dilation=d, ceil_mode=c, return_indices=True)
            for k, s, p, d, c in itertools.product([2, (3, 2)], [None, 1, (2, 3)], [0, 1], [1, (2, 1)], [False, True])]


def avg_2d(x):
    return [pool_case(f"avg_pool2d_k{k}_s{s}_p{p}_c{int(c)}_i{int(i)}".replace(" ", ""), "avg_pool2d", x,
                      kernel_size=k, stride=s, padding=p, ceil_mode=c, count_include_pad=i)
            for k, s, p, c, i in itertools.product([2, (3, 2)], [None, 1, (2, 3)], [0, 1], [False, True], [True, False])]


MAX_2D = max_2d(distinct(2, 3, 9, 11))

MAX_1D = [
    pool_case(f"max_pool1d_k{k}_s{s}_p{p}_d{d}_c{int(c)}", "max_pool1d", X1, kernel_size=k, stride=s, padding=p,
              dilation=d, ceil_mode=c, return_indices=True)
    for k, s, p, d, c in itertools.product([2, 3], [None, 2], [0, 1], [1, 2], [False, True])
]

AVG_2D = avg_2d(randn(2, 3, 9, 11))

AVG_1D = [
    pool_case(f"avg_pool1d_k{k}_s{s}_p{p}_c{int(c)}_i{int(i)}", "avg_pool1d", randn(2, 3, 13), kernel_size=k,
              stride=s, padding=p, ceil_mode=c, count_include_pad=i)
    for k, s, p, c, i in itertools.product([2, 4], [None, 3], [0, 1], [False, True], [True, False])
]

OTHER = [
    pool_case("max_pool2d_tiles", "max_pool2d", distinct(2, 3, 8, 10), kernel_size=2),
    pool_case("max_pool2d_unbatched", "max_pool2d", distinct(3, 7, 6), kernel_size=3, stride=2, padding=1,
              return_indices=True),
    pool_case("max_pool1d_unbatched", "max_pool1d", distinct(3, 9), kernel_size=2),
    pool_case("max_pool2d_noncontig", "max_pool2d", noncontig(distinct(2, 3, 6, 6)), kernel_size=2, stride=1),
    pool_case("max_pool2d_empty_batch", "max_pool2d", distinct(0, 2, 4, 4), kernel_size=2),
    pool_case("max_pool3d", "max_pool3d", distinct(1, 2, 5, 4, 6), kernel_size=(2, 3, 2), stride=(1, 2, 2),
              padding=(1, 1, 0), return_indices=True),
    pool_case("avg_pool2d_tiles", "avg_pool2d", randn(2, 3, 8, 10), kernel_size=2),
    pool_case("avg_pool2d_divisor", "avg_pool2d", randn(2, 3, 7, 8), kernel_size=(2, 3), stride=(1, 2),
              padding=(1, 0), divisor_override=5),
    pool_case("avg_pool2d_unbatched", "avg_pool2d", randn(3, 7, 6), kernel_size=3, stride=2, padding=1),
    pool_case("avg_pool2d_noncontig", "avg_pool2d", noncontig(randn(2, 3, 6, 6)), kernel_size=3, stride=1),
    pool_case("avg_pool3d", "avg_pool3d", randn(1, 2, 5, 4, 6), kernel_size=2, stride=(1, 2, 2), padding=1,
              ceil_mode=True, count_include_pad=False),
    pool_case("adaptive_avg_pool2d", "adaptive_avg_pool2d", randn(2, 3, 9, 11), output_size=(4, 3)),
    pool_case("adaptive_avg_pool2d_divides", "adaptive_avg_pool2d", randn(2, 3, 8, 6), output_size=(4, 3)),
    pool_case("adaptive_avg_pool2d_global", "adaptive_avg_pool2d", randn(2, 3, 5, 7), output_size=1),
    pool_case("adaptive_avg_pool2d_none", "adaptive_avg_pool2d", randn(2, 3, 5, 7), output_size=(None, 2)),
    pool_case("adaptive_avg_pool2d_upsample", "adaptive_avg_pool2d", randn(1, 2, 3, 2), output_size=(5, 4)),
    pool_case("adaptive_avg_pool2d_unbatched", "adaptive_avg_pool2d", randn(3, 5, 7), output_size=3),
    pool_case("adaptive_avg_pool1d", "adaptive_avg_pool1d", randn(2, 3, 13), output_size=5),
    pool_case("adaptive_max_pool2d", "adaptive_max_pool2d", distinct(2, 3, 9, 11), output_size=(4, 3),
              return_indices=True),
    pool_case("adaptive_max_pool2d_global", "adaptive_max_pool2d", distinct(2, 3, 5, 7), output_size=1),
    pool_case("adaptive_max_pool2d_upsample", "adaptive_max_pool2d", distinct(1, 2, 3, 2), output_size=(5, 4),
              return_indices=True),
    pool_case("adaptive_max_pool2d_unbatched", "adaptive_max_pool2d", distinct(3, 5, 7), output_size=(2, 3)),
    pool_case("adaptive_max_pool1d", "adaptive_max_pool1d", distinct(2, 3, 13), output_size=5, return_indices=True),
    OpCase("max_unpool2d", lambda lib, x: F(lib).max_unpool2d(*F(lib).max_pool2d(x, 2, return_indices=True), 2),
           [distinct(2, 3, 6, 8)]),
    OpCase("max_unpool2d_output_size",
           lambda lib, x: F(lib).max_unpool2d(*F(lib).max_pool2d(x, 3, 2, 1, return_indices=True), 3, 2, 1,
                                              output_size=(7, 9)),
           # overlapping windows repeat indices: unpool writes once but its backward (torch's too)
           # gathers once per repeat, so it is not the finite-difference Jacobian there
           [distinct(2, 3, 7, 9)], gradcheck=False, gradgradcheck=False),
    OpCase("max_unpool1d", lambda lib, x: F(lib).max_unpool1d(*F(lib).max_pool1d(x, 2, return_indices=True), 2),
           [distinct(2, 3, 8)]),
    OpCase("pool_chain", lambda lib, x: F(lib).avg_pool2d(F(lib).max_pool2d(x, 2, 1), 2, ceil_mode=True),
           [distinct(2, 2, 7, 6)]),
]

ALL = MAX_2D + MAX_1D + AVG_2D + AVG_1D + OTHER
GRADCHECKED = max_2d(distinct(1, 2, 7, 8))[::7] + MAX_1D[::5] + avg_2d(randn(1, 2, 7, 8))[::6] + AVG_1D[::5] + OTHER


@parametrize(ALL)
def test_pool_matches_torch(case):
    compare_with_torch(case)


@parametrize(GRADCHECKED)
def test_pool_gradcheck(case):
    check_gradients(case)


def test_max_pool_routes_gradient_to_first_maximum():
    # ties: torch sends the whole gradient to the first maximum of each window
    x = np.array([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 1.0, 5.0]]]])
    results = []
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        t = lib.tensor(x, requires_grad=True)
        y, indices = F(lib).max_pool2d(t, 2, stride=1, return_indices=True)
        y.sum().backward()
        results.append((t.grad.numpy(), indices.numpy()))
    expected = np.array([[[[0, 2, 1, 0], [0, 0, 0, 0], [2, 2, 2, 0], [0, 0, 0, 0]]]], dtype=float)
    np.testing.assert_array_equal(results[0][0], expected)
    for grad, indices in results[1:]:
        np.testing.assert_array_equal(results[0][0], grad)
        np.testing.assert_array_equal(results[0][1], indices)


def test_max_pool_nan_propagates():
    x = chainrule.tensor([[[1.0, float("nan"), 2.0, 3.0]]])
    y = chainrule.max_pool1d(x, 2)
    assert np.isnan(y.numpy()[0, 0, 0]) and y.numpy()[0, 0, 1] == 3.0


def test_indices_dtype_and_no_grad():
    x = chainrule.randn(1, 2, 4, 4, requires_grad=True)
    y, indices = chainrule.max_pool2d(x, 2, return_indices=True)
    assert indices.dtype == chainrule.int64 and not indices.requires_grad
    assert y.grad_fn is not None and y.dtype == chainrule.float32


def test_fast_gradcheck_bigger_pools():
    x = chainrule.tensor(distinct(4, 6, 14, 13), dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: chainrule.max_pool2d(t, 3, 2, 1, ceil_mode=True), (x,),
                                        fast_mode=True)
    assert chainrule.autograd.gradgradcheck(lambda t: chainrule.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
                                            (x,), fast_mode=True)


def test_pool_functions_are_not_methods():
    for name in ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "max_unpool2d"):
        assert not hasattr(chainrule.Tensor, name), name


ERRORS = [
    ("pad_too_big", lambda lib: F(lib).max_pool2d(lib.randn(1, 1, 4, 4), 3, padding=2),
     "pad should be at most half of effective kernel size"),
    ("output_too_small", lambda lib: F(lib).max_pool2d(lib.randn(1, 2, 2), 3),
     r"Given input size: \(1x2x2\). Calculated output size: \(1x0x0\). Output size is too small"),
    ("avg_output_too_small", lambda lib: F(lib).avg_pool2d(lib.randn(1, 2, 2), 3), "Output size is too small"),
    ("stride_zero", lambda lib: F(lib).max_pool2d(lib.randn(1, 1, 4, 4), 2, stride=0), "stride should not be zero"),
    ("divisor_zero", lambda lib: F(lib).avg_pool2d(lib.randn(1, 1, 4, 4), 2, divisor_override=0),
     "divisor must be not zero"),
]


@pytest.mark.parametrize("name,fn,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_pool_errors(name, fn, message):
    with pytest.raises(RuntimeError, match=message):
        fn(chainrule)
    if torch is not None:
        with pytest.raises(RuntimeError, match=message):
            fn(torch)


@pytest.mark.parametrize("op,x", [("max_pool2d", (4, 4)), ("avg_pool2d", (4, 4)), ("max_pool1d", (4,)),
                                  ("adaptive_avg_pool2d", (4,))])
def test_pool_wrong_rank(op, x):
    kwargs = {"output_size": 2} if op.startswith("adaptive") else {"kernel_size": 2}
    with pytest.raises(RuntimeError):
        getattr(chainrule, op)(chainrule.randn(*x), **kwargs)
