"""Reductions: forward and gradient vs torch, gradcheck and gradgradcheck in float64, ties, errors.

The sample-table cases (torch agreement, gradcheck, gradgradcheck) are registry entries in
``chainrule/testing/opinfo/reduce.py``, run by ``test_op_db.py``; the tests here are the hand-written ones.
"""


import numpy as np
import pytest

import chainrule as cr

try:
    import torch
except ImportError:  # the oracle; tests needing it are skipped by the harness
    torch = None


def test_ties_split_evenly_in_full_reductions():
    x = cr.tensor([[1.0, 3.0], [3.0, 0.0]], requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [[0.0, 0.5], [0.5, 0.0]]
    y = cr.tensor([2.0, 2.0, 2.0, 1.0], requires_grad=True)
    y.amax().backward()
    np.testing.assert_allclose(y.grad.numpy(), [1 / 3, 1 / 3, 1 / 3, 0.0], rtol=1e-6)


def test_max_dim_routes_to_first_index():
    x = cr.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    values, indices = x.max(1)
    assert indices.tolist() == [1, 0]
    assert indices.dtype is cr.int64
    values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    result = x.max(0)
    assert type(result).__name__ == "max" and result.values is result[0] and result.indices is result[1]


def test_argmax_first_occurrence():
    x = cr.tensor([[0.0, 5.0, 5.0], [7.0, 7.0, 7.0]])
    assert x.argmax(1).tolist() == [1, 0]
    assert x.argmax().item() == 3
    assert x.argmin(1).tolist() == [0, 0]


def test_softmax_huge_logits_no_nan():
    x = cr.tensor([[1e30, 0.0, -1e30], [1e4, 1e4, 1e4]], requires_grad=True)
    y = cr.softmax(x, 1)
    assert np.all(np.isfinite(y.detach().numpy()))
    np.testing.assert_allclose(y.detach().numpy()[0], [1.0, 0.0, 0.0])
    ls = cr.log_softmax(x, 1)
    assert np.isfinite(ls.detach().numpy()[1]).all()
    (y.sum() + ls[1].sum()).backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    lse = cr.logsumexp(cr.tensor([1e30, 1e30]), 0)
    assert np.isfinite(lse.item())
    assert cr.logsumexp(cr.tensor([-float("inf"), -float("inf")]), 0).item() == -float("inf")


def test_norm_gradient_at_zero_is_zero():
    x = cr.zeros(4, requires_grad=True)
    x.norm().backward()
    assert x.grad.tolist() == [0.0] * 4


def test_prod_gradient_with_zeros_second_order():
    x = cr.tensor([2.0, 0.0, 3.0], requires_grad=True, dtype=cr.float64)
    (g,) = cr.autograd.grad(x.prod(), x, create_graph=True)
    assert g.tolist() == [0.0, 6.0, 0.0]
    (h,) = cr.autograd.grad(g[1], x)
    assert h.tolist() == [3.0, 0.0, 2.0]


def test_gradgradcheck_with_zeros():
    x = cr.tensor([[1.5, 0.0, 2.0], [0.5, -1.0, 3.0]], dtype=cr.float64, requires_grad=True)
    assert cr.autograd.gradgradcheck(lambda t: t.prod(1), [x])
    assert cr.autograd.gradgradcheck(lambda t: t.cumprod(1), [x])


def test_float32_stays_float32():
    x = cr.randn(3, 4)
    for out in (x.prod(), x.var(1), x.std(), x.logsumexp(0), x.softmax(1), x.log_softmax(0), x.cumsum(0),
                x.cumprod(1), x.norm(), x.amax(), x.median(), x.sort().values):
        assert out.dtype is cr.float32


def test_return_types_are_namedtuples():
    x = cr.tensor([[1.0, 4.0, 2.0]])
    result = x.max(1)
    assert result.values.tolist() == [4.0] and result.indices.tolist() == [1]
    values, indices = x.sort(descending=True)
    assert values.tolist() == [[4.0, 2.0, 1.0]] and indices.tolist() == [[1, 2, 0]]
    assert x.topk(1).indices.tolist() == [[1]]


@pytest.mark.parametrize("fn, exc, match", [
    (lambda lib: lib.zeros(0).max(), RuntimeError, "Expected reduction dim to be specified"),
    (lambda lib: lib.zeros(0, 3).max(0), IndexError, "Expected reduction dim 0 to have non-zero size"),
    (lambda lib: lib.zeros(0, 3).amax(0), IndexError, "Expected reduction dim 0 to have non-zero size"),
    (lambda lib: lib.zeros(0, 3).argmax(), IndexError, "Expected reduction dim to be specified"),
    (lambda lib: lib.zeros(3).max(1), IndexError, "Dimension out of range"),
    (lambda lib: lib.zeros(3, 4).sum(2), IndexError, "Dimension out of range"),
    (lambda lib: lib.zeros(3, 4).softmax(-3), IndexError, "Dimension out of range"),
    (lambda lib: lib.zeros(3, 4).topk(5), RuntimeError, "selected index k out of range"),
    (lambda lib: lib.zeros(3, 4).cumsum(2), IndexError, "Dimension out of range"),
    (lambda lib: lib.tensor([1, 2]).var(), RuntimeError, "std and var only support floating point"),
    (lambda lib: lib.zeros(3, 4).kthvalue(5), RuntimeError, "out of range"),
])
def test_errors_match_torch(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn(cr)
    if torch is not None:
        with pytest.raises(exc):
            fn(torch)


@pytest.mark.skipif(torch is None, reason="needs torch as the oracle")
@pytest.mark.parametrize("call", [
    lambda t, x: t.cumprod(x + 1, axis=0),  # tiny-diffusion's alphas_cumprod
    lambda t, x: x.cumsum(axis=1),
    lambda t, x: t.sum(x, axis=0, keepdims=True),
    lambda t, x: x.sum(axis=(0, 1)),
    lambda t, x: t.mean(x, axis=1),
    lambda t, x: x.mean(0, keepdims=True),
])
def test_numpy_axis_and_keepdims_spellings_match_torch(call):
    data = np.arange(6.0).reshape(2, 3)
    got, want = call(cr, cr.tensor(data)), call(torch, torch.tensor(data))
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy())


@pytest.mark.parametrize("call, message", [
    (lambda x: cr.sum(x, 0, axis=0), "sum() got an unexpected keyword argument 'axis'"),
    (lambda x: x.mean(0, keepdim=True, keepdims=True), "unexpected keyword argument 'keepdims'"),
    (lambda x: cr.cumprod(x), 'cumprod() missing 1 required positional arguments: "dim"'),
    (lambda x: x.cumsum(0, axis=1), "cumsum() got an unexpected keyword argument 'axis'"),
])
def test_numpy_spelling_alongside_torch_spelling_is_a_type_error(call, message):
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(cr.ones(2, 3))
