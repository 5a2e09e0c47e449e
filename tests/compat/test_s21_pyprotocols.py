"""Python's own protocols on tensors, as torch 2.13 answers them (tools/torch_python_protocols_trial.py
found these differences); expected values are torch's, measured."""

import copy

import numpy as np
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


@pytest.mark.parametrize("value, shown", [([1, 2, 3], "list"), ((1, 2, 3), "tuple"), (None, "NoneType"),
                                          (np.array([1.0, 2.0, 3.0]), "numpy.ndarray"),
                                          (np.float32(1), "numpy.float32")])
def test_item_assignment_refuses_what_is_not_a_tensor_or_a_number(value, shown):
    x = chainrule.zeros(2, 3)
    with pytest.raises(TypeError, match=rf"^can't assign a {shown} to a torch.FloatTensor$"):
        x[1] = value
    assert x.tolist() == [[0.0] * 3] * 2 and x._version == 0


def test_item_assignment_takes_tensors_python_numbers_and_numpy_integers():
    x = chainrule.zeros(5, dtype=chainrule.int64)
    x[0], x[1], x[2], x[3] = chainrule.tensor(7), 8, np.int8(9), True
    x[4] = np.float64(10.0)  # a float subclass
    assert x.tolist() == [7, 8, 9, 1, 10]


def test_deepcopy_copies_the_storage_once_so_views_still_share_it():
    base = chainrule.arange(6.0)
    first, second = copy.deepcopy([base[:3], base[2:]])
    first[2] = 100.0
    assert second.tolist() == [100.0, 3.0, 4.0, 5.0]  # torch: one storage copied through the memo
    assert base.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert second._base is None and second.storage_offset() == 2 and second.untyped_storage().nbytes() == 24
    transposed = copy.deepcopy(chainrule.arange(6.0).reshape(2, 3).t())
    assert transposed.stride() == (1, 3) and transposed.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
