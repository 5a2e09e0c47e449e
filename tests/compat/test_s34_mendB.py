"""Autograd corner cases, each checked against torch: Tensor.set_ in the graph.

set_ on a non-leaf that requires grad: torch records its NotImplemented node (backward raises
"derivative for set_ is not implemented") and bumps the version once; chainrule refused it as a
leaf. On a view of a leaf torch says "a view of a leaf Variable"; chainrule said "a leaf Variable".
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _plain(value):
    """A result both libraries can compare: tensors and sizes as lists, nodes by type name."""
    if isinstance(value, (torch.Tensor, chainrule.Tensor)):
        return ("tensor", str(value.dtype).rsplit(".", 1)[-1], value.detach().tolist())
    if isinstance(value, (torch.Size, chainrule.Size)):
        return tuple(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    if hasattr(value, "next_functions") and hasattr(value, "name"):
        return ("node", type(value).__name__, value.name())
    return value


def outcome(case, library):
    """``case(library)``'s result in comparable form, or the exception's type and message."""
    try:
        return _plain(case(library))
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return (type(error).__name__, str(error).split("\n")[0])


def assert_same_as_torch(case):
    assert outcome(case, chainrule) == outcome(case, torch)


# ---- 1. Tensor.set_ ----------------------------------------------------------------------------


def _set_nonleaf(lib):
    a = lib.ones(3, requires_grad=True)
    b = a * 2
    before = b._version
    b.set_(lib.zeros(2))
    return b.grad_fn, b._version - before, b.requires_grad, b.is_leaf, b.shape, repr(b.grad_fn).split(" ")[0]


def _set_nonleaf_backward(lib):
    a = lib.ones(3, requires_grad=True)
    b = a * 2
    b.set_(lib.zeros(3))
    (b * 3).sum().backward()


def _set_nonleaf_edges(lib):
    a = lib.ones(3, requires_grad=True)
    b = a * 2
    b.set_(lib.zeros(3))
    return [type(node).__name__ if node is not None else None for node, _ in b.grad_fn.next_functions]


def _set_source_requires_grad(lib):
    x = lib.zeros(3)
    x.set_(lib.ones(3, requires_grad=True))
    return x.requires_grad, x.grad_fn, [type(node).__name__ if node is not None else None
                                        for node, _ in x.grad_fn.next_functions]


def _set_nothing_nonleaf(lib):
    b = lib.ones(3, requires_grad=True) * 2
    b.set_()
    return b.shape, b.grad_fn, b._version


def _set_strided_nonleaf(lib):
    b = lib.ones(3, requires_grad=True) * 2
    b.set_(lib.arange(4.0), 1, (2,), (1,))
    return b, b.grad_fn


def _set_leaf(lib):
    lib.ones(3, requires_grad=True).set_(lib.zeros(3))


def _set_view_of_leaf(lib):
    lib.ones(3, requires_grad=True)[:2].set_(lib.zeros(2))


def _set_reshaped_view_of_leaf(lib):
    lib.ones(2, 3, requires_grad=True).view(6).set_(lib.zeros(2))


def _set_view_of_nonleaf(lib):
    b = lib.ones(3, requires_grad=True) * 2
    view = b[:2]
    view.set_(lib.zeros(2))
    return b, view, b.grad_fn, view.grad_fn, b._version, view._version


def _set_view_of_nonleaf_backward(lib):
    b = lib.ones(3, requires_grad=True) * 2
    b[:2].set_(lib.zeros(2))
    b.sum().backward()


def _set_base_of_view(lib):
    b = lib.ones(3, requires_grad=True) * 2
    view = b[:2]
    b.set_(lib.zeros(3))
    return view.grad_fn, view._version


def _set_saved_input(lib):
    b = lib.ones(3, requires_grad=True) * 2
    square = b * b
    b.set_(lib.zeros(3))
    square.sum().backward()


def _set_retained(lib):
    b = lib.ones(3, requires_grad=True) * 2
    b.retain_grad()
    b.set_(lib.zeros(3))
    return b.retains_grad, b._version


def _set_leaf_under_no_grad(lib):
    a = lib.ones(3, requires_grad=True)
    with lib.no_grad():
        a.set_(lib.zeros(2))
    return a.shape, a.requires_grad, a.is_leaf, a.grad_fn


def _set_wrong_dtype_changes_nothing(lib):
    b = lib.ones(3, requires_grad=True) * 2
    before = b._version
    with pytest.raises(RuntimeError):
        b.set_(lib.zeros(2, dtype=lib.float64))
    return b._version - before, b.grad_fn, b.shape


@pytest.mark.parametrize("case", [
    _set_nonleaf, _set_nonleaf_backward, _set_nonleaf_edges, _set_source_requires_grad, _set_nothing_nonleaf,
    _set_strided_nonleaf, _set_leaf, _set_view_of_leaf, _set_reshaped_view_of_leaf, _set_view_of_nonleaf,
    _set_view_of_nonleaf_backward, _set_base_of_view, _set_saved_input, _set_retained, _set_leaf_under_no_grad,
    _set_wrong_dtype_changes_nothing,
], ids=lambda case: case.__name__.lstrip("_"))
def test_set_in_the_graph_as_torch(case):
    assert_same_as_torch(case)


def test_set_nonleaf_values_shared_with_source():
    source = chainrule.tensor(np.arange(3, dtype=np.float32))
    b = chainrule.ones(3, requires_grad=True) * 2
    b.set_(source)
    with chainrule.no_grad():
        source.add_(1)
    assert b.tolist() == [1.0, 2.0, 3.0]
