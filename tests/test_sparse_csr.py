"""Sparse CSR tensors against torch 2.13: construction, the CSR parts, conversion both ways, the
repr, and the product with a dense matrix with its gradient to the dense operand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _program(lib):
    """A small user program on CSR matrices; every observable value, as plain Python data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "CSR support is in beta" and invariant-check notes
        a = lib.sparse_csr_tensor(lib.tensor([0, 2, 3, 3]), lib.tensor([0, 2, 1]), lib.tensor([1.0, -2.0, 3.0]),
                                  size=(3, 3))
        b = lib.tensor([[0, 1.5], [2, 0], [0, 0], [0, -1]]).to_sparse_csr()
        w = lib.tensor(np.arange(6.0, dtype=np.float32).reshape(3, 2), requires_grad=True)
        product = a @ w
        (product * lib.sparse.mm(a, w)).sum().backward()
        inferred = lib.sparse_csr_tensor([0, 1, 2], [3, 0], [5, 6], dtype=lib.float64)
        return {
            "repr": [repr(a).replace("torch.", "chainrule."), repr(b).replace("torch.", "chainrule.")],
            "layout": [str(t.layout).split(".")[-1] for t in (a, b)],
            "flags": [(t.is_sparse, t.is_sparse_csr, t._nnz()) for t in (a, b)],
            "dense_flags": (lib.ones(2).is_sparse, lib.ones(2).is_sparse_csr),
            "parts": [(t.crow_indices().tolist(), t.col_indices().tolist(), t.values().tolist()) for t in (a, b)],
            "dense": [a.to_dense().tolist(), b.to_dense().tolist()],
            "product": product.tolist(), "grad": w.grad.tolist(),
            "inferred": (tuple(inferred.shape), str(inferred.dtype).split(".")[-1], inferred.to_dense().tolist()),
            "via_to_sparse": lib.eye(3).to_sparse(layout=lib.sparse_csr).crow_indices().tolist(),
        }


def test_csr_program_matches_torch():
    ours, theirs = _program(chainrule), _program(torch)
    for key in theirs:
        assert ours[key] == theirs[key], key


def test_hostile_csr_parts_raise_before_building():
    bad = [
        ([0, 2, 1], [0, 1], [1.0, 2.0], (2, 2)),  # crow_indices decreasing
        ([0, 1, 2], [0, 5], [1.0, 2.0], (2, 2)),  # a column outside the size
        ([0, 1, 2], [0, 1], [1.0], (2, 2)),  # fewer values than columns
        ([0, 1, 2], [0, 1], [1.0, 2.0], (3, 2)),  # rows that crow_indices does not describe
    ]
    for crow, col, values, size in bad:
        with pytest.raises(RuntimeError, match="is not satisfied|must be equal"):  # (torch's check_invariants words)
            chainrule.sparse_csr_tensor(crow, col, values, size=size)
    # a CSR leaf may require grad, as torch's (tests/compat/test_s53_mendCR.py compares its gradients)
    assert chainrule.sparse_csr_tensor([0, 1], [0], [1.0], requires_grad=True).requires_grad


def test_gradcheck_through_the_dense_operand():
    a = chainrule.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, -3.0]], dtype=chainrule.float64).to_sparse_csr()
    w = chainrule.randn(3, 2, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda dense: chainrule.sparse.mm(a, dense), (w,))
