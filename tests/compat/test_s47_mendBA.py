"""Session 47, lane mendBA: sparse COO leftovers of session 46, each compared with torch: the graph of
the ops torch computes but cannot differentiate (sspaddmm records ``input`` too; one edge per operand
that requires grad, as torch's NotImplemented node)."""

import itertools
import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _operands(lib, flags):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note that invariant checks are off
        input = lib.sparse_coo_tensor(lib.tensor([[0, 1, 1], [2, 0, 2]]),
                                      lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64), (2, 3))
        mat1 = lib.sparse_coo_tensor(lib.tensor([[0, 1], [1, 0]]), lib.tensor([1.0, 2.0], dtype=lib.float64), (2, 2))
    mat2 = lib.arange(6.0, dtype=lib.float64).reshape(2, 3)
    return tuple(t.requires_grad_(flag) for t, flag in zip((input, mat1, mat2), flags))


def _graph(result):
    """requires_grad, the node's name and its edges' node names (None for an edge to nothing)."""
    node = result.grad_fn
    if node is None:
        return result.requires_grad, None, ()
    return (result.requires_grad, type(node).__name__,
            tuple(type(f).__name__ if f is not None else None for f, _ in node.next_functions))


CALLS = {
    "sspaddmm": lambda lib, input, mat1, mat2: lib.sspaddmm(input, mat1, mat2, beta=2, alpha=3),
    "Tensor.sspaddmm": lambda lib, input, mat1, mat2: input.sspaddmm(mat1, mat2, beta=0.5),
    "hspmm": lambda lib, input, mat1, mat2: lib.hspmm(mat1, mat2),
    "smm": lambda lib, input, mat1, mat2: lib.smm(mat1, mat2),
}


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=3)), ids=str)
@pytest.mark.parametrize("call", list(CALLS))
def test_not_differentiable_graph_as_torch(call, flags):
    ours = CALLS[call](chainrule, *_operands(chainrule, flags))
    theirs = CALLS[call](torch, *_operands(torch, flags))
    assert _graph(ours) == _graph(theirs)
    assert ours.to_dense().tolist() == theirs.to_dense().tolist()


@pytest.mark.parametrize("flags", [(True, False, False), (True, True, True)], ids=str)
def test_sspaddmm_backward_refused_as_torch(flags):
    def refusal(lib):
        result = lib.sspaddmm(*_operands(lib, flags))
        with pytest.raises(RuntimeError) as caught:
            result.to_dense().sum().backward()
        return str(caught.value)

    assert refusal(chainrule) == refusal(torch) == "derivative for aten::sspaddmm is not implemented"


def test_spdiags_graph_as_torch():
    def graph(lib):
        diagonals = lib.arange(6.0, dtype=lib.float64).reshape(2, 3).requires_grad_()
        return _graph(lib.sparse.spdiags(diagonals, lib.tensor([0, 1]), (3, 3)))

    assert graph(chainrule) == graph(torch)


def test_not_differentiable_graph_of_a_non_leaf_as_torch():
    def graph(lib):
        _, mat1, mat2 = _operands(lib, (False, True, False))
        return _graph(lib.hspmm(mat1 * 2, mat2))

    assert graph(chainrule) == graph(torch)
