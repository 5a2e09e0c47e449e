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


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=(3, 2), stride=1, dilation=(1, 2), ceil_mode=True)])
def test_max_pool_split_over_threads_is_bit_identical(kwargs, monkeypatch):
    # max pool and its backward run over the batch in pieces on the thread budget (CPU): one
    # piece or three must give the same values, indices and gradients, ties and NaN included
    from chainrule import _config, _parallel

    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(5, 3, 11, 10)).astype(np.float32)  # many ties
    x[1, 2, 3, 4] = np.nan
    out_shape = tuple(F(chainrule).max_pool2d(chainrule.tensor(x), **kwargs).shape)
    grad = rng.standard_normal(out_shape).astype(np.float32)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS_PER_PIECE", 1)
    results = []
    for budget in (1, 3):
        monkeypatch.setattr(_config, "thread_budget", lambda budget=budget: budget)
        t = chainrule.tensor(x, requires_grad=True)
        y, indices = F(chainrule).max_pool2d(t, return_indices=True, **kwargs)
        y.backward(chainrule.tensor(grad))
        results.append((y.detach().numpy(), indices.numpy(), t.grad.numpy()))
    for one_piece, three_pieces in zip(*results):
        np.testing.assert_array_equal(one_piece, three_pieces)
    if torch is not None:
        t = torch.tensor(x, requires_grad=True)
        y, indices = torch.nn.functional.max_pool2d(t, return_indices=True, **kwargs)
        y.backward(torch.tensor(grad))
        np.testing.assert_array_equal(results[1][0], y.detach().numpy())
        np.testing.assert_array_equal(results[1][1], indices.numpy())
        # overlapping windows add in another order than torch's
        np.testing.assert_allclose(results[1][2], t.grad.numpy(), rtol=1e-6, atol=1e-6)
