"""fill_, zero_ and copy_ on a tensor in the graph: the overwritten values get a zero gradient and
the written value the gradient summed to its shape — compared with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule


def _grads(lib, write, value_dtype=None):
    x = lib.tensor([1.0, 2.0, -3.0], requires_grad=True)
    v = lib.tensor(4.0 if write == "fill_" else [4.0, 5.0, 6.0], requires_grad=True,
                   dtype=getattr(lib, value_dtype) if value_dtype else None)
    y = x * 1.0
    if write == "zero_":
        y.zero_()
    elif write == "fill_scalar":
        y.fill_(3.0)
    else:
        getattr(y, write)(v)
    (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
    return y.grad_fn.name(), y.detach().numpy(), x.grad.numpy(), None if v.grad is None else v.grad.numpy()


@pytest.mark.parametrize("write,value_dtype", [("zero_", None), ("fill_scalar", None), ("fill_", None),
                                               ("copy_", None), ("copy_", "float64")])
def test_overwritten_values_get_zero_gradient_like_torch(write, value_dtype):
    ours, theirs = _grads(chainrule, write, value_dtype), _grads(torch, write, value_dtype)
    assert ours[0] == theirs[0]
    for o, t in zip(ours[1:], theirs[1:]):
        assert (o is None) == (t is None)
        if t is not None:
            assert o.dtype == t.dtype
            np.testing.assert_array_equal(o, t)


def test_copy_sums_a_broadcast_source_gradient_and_keeps_an_infinite_value_out_of_it():
    for lib in (chainrule, torch):
        x = lib.tensor([[float("inf"), 1.0], [2.0, 3.0]], requires_grad=True)
        src = lib.tensor([5.0, 6.0], requires_grad=True)
        y = x * 1.0
        y.copy_(src)
        y.sum().backward()
        assert x.grad.tolist() == [[0.0, 0.0], [0.0, 0.0]]
        assert src.grad.tolist() == [2.0, 2.0]


def test_fill_with_a_tensor_needs_a_zero_dim_value_like_torch():
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match="fill_ only supports 0-dimension value tensor"):
            lib.zeros(3).fill_(lib.ones(1))


@pytest.mark.parametrize("write", ["fill", "zero", "copy"])
def test_writing_into_an_indexed_view_zeroes_the_gradient_there_like_torch(write):
    def grads(lib):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        y = x * 2
        view = y[:, 1]
        {"fill": lambda: view.fill_(5.0), "zero": lambda: view.zero_(),
         "copy": lambda: view.copy_(lib.tensor([7.0, 8.0]))}[write]()
        (y * lib.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
        return y.tolist(), x.grad.tolist()

    assert grads(chainrule) == grads(torch)
