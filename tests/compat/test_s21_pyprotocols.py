"""Python's own protocols on tensors, as torch 2.13 answers them (tools/torch_python_protocols_trial.py
found these differences); expected values are torch's, measured."""

import copy

import pytest

import chainrule


def test_hash_of_a_tensor_is_its_id():
    x = chainrule.ones(2)
    parameter = chainrule.nn.Parameter(chainrule.ones(2))
    assert hash(x) == id(x)
    assert hash(parameter) == id(parameter)
    assert hash(x) != hash(chainrule.ones(2))
    assert len({x, x, chainrule.ones(2)}) == 2


def test_reversed_flips_dim_0():
    x = chainrule.tensor([3, 1, 2])
    assert reversed(x).tolist() == [2, 1, 3]
    assert x.__reversed__().tolist() == [2, 1, 3]
    rows = reversed(chainrule.arange(4).reshape(2, 2))
    assert isinstance(rows, chainrule.Tensor) and rows.tolist() == [[2, 3], [0, 1]]
    scalar = chainrule.tensor(3)
    assert reversed(scalar) is scalar
    assert "__reversed__" in dir(x)


def test_contains_with_a_tensor_that_does_not_broadcast_is_runtime_error():
    x = chainrule.arange(4)
    assert chainrule.tensor(2) in x
    assert chainrule.tensor([9, 8]) not in chainrule.arange(2)
    with pytest.raises(RuntimeError, match=r"size of tensor a \(2\) must match the size of tensor b \(4\)"):
        chainrule.tensor([9, 1]) in x  # noqa: B015


def test_unary_plus_refuses_a_bool_tensor_as_torch_positive():
    with pytest.raises(RuntimeError, match="The `\\+` operator, on a bool tensor is not supported."):
        +chainrule.tensor([True, False])  # noqa: B018
    x = chainrule.tensor([1, 2])
    assert +x is x


def test_deepcopy_of_a_parameter_leaves_its_grad_behind_as_torch():
    parameter = chainrule.nn.Parameter(chainrule.ones(2))
    (parameter * 3).sum().backward()
    clone = copy.deepcopy(parameter)
    assert type(clone) is chainrule.nn.Parameter and clone.requires_grad
    assert clone.grad is None and parameter.grad.tolist() == [3.0, 3.0]
    model = chainrule.nn.Linear(2, 1)
    model(chainrule.ones(1, 2)).sum().backward()
    assert all(p.grad is None for p in copy.deepcopy(model).parameters())
    # a plain tensor keeps its grad (torch's Tensor.__deepcopy__ copies it)
    leaf = chainrule.ones(2, requires_grad=True)
    (leaf * 2).sum().backward()
    assert copy.deepcopy(leaf).grad.tolist() == [2.0, 2.0]
