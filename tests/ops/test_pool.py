"""Pooling ops vs torch: kernel × stride × padding × dilation × ceil_mode (max), count_include_pad and
divisor_override (avg), adaptive pools, indices equal to torch's, unpool; gradcheck; errors.

The sample-table cases (torch agreement, gradcheck, gradgradcheck) are registry entries in
``chainrule/testing/opinfo/pool.py``, run by ``test_op_db.py``; the tests here are the hand-written ones.
"""


import numpy as np
import pytest

import chainrule

from .harness import distinct

try:
    import torch
except ImportError:
    torch = None


def F(lib):
    return lib.nn.functional if lib.__name__ == "torch" else lib



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
