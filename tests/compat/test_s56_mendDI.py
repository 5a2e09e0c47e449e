"""Session 56, lane mendDI: a CSR matrix built from values that require grad is in their graph
(SparseCompressedTensorBackward0), retain_grad on a CSR non-leaf, and out= refusing an explicit dtype
that differs from out's in sum/mean/cumsum/cumprod/prod."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _csr_case(seed):
    rng = np.random.default_rng(seed)
    rows, cols, n = (int(v) for v in rng.integers(1, 5, size=3))
    mask = rng.random((rows, cols)) < 0.5
    crow = np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int64)
    col = np.nonzero(mask)[1].astype(np.int64)
    values = rng.standard_normal(len(col)).astype(np.float32)
    return crow, col, values, (rows, cols), rng.standard_normal((cols, n)).astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("read", ["mm", "to_dense"])
def test_csr_from_values_records_their_graph(seed, read):
    crow, col, values, size, dense = _csr_case(seed)
    weight = np.arange(size[0] * size[1], dtype=np.float32).reshape(size)
    seen = []
    for lib in (torch, chainrule):
        v = lib.tensor(values, requires_grad=True)
        matrix = lib.sparse_csr_tensor(lib.tensor(crow), lib.tensor(col), v, size=size)
        names = [type(f).__name__ for f, _ in matrix.grad_fn.next_functions]
        out = lib.sparse.mm(matrix, lib.tensor(dense)) if read == "mm" else matrix.to_dense() * lib.tensor(weight)
        out.sum().backward()
        seen.append((type(matrix.grad_fn).__name__, names, matrix.requires_grad, v.grad.numpy().tolist()))
    assert seen[1][:3] == seen[0][:3] == ("SparseCompressedTensorBackward0", ["AccumulateGrad"], True)
    np.testing.assert_allclose(seen[1][3], seen[0][3], rtol=1e-6, atol=1e-6)


def test_csr_from_values_under_no_grad_records_nothing():
    v = chainrule.tensor([1.0, 2.0], requires_grad=True)
    with chainrule.no_grad():
        matrix = chainrule.sparse_csr_tensor([0, 1, 2], [1, 0], v)
    assert matrix.grad_fn is None and not matrix.requires_grad


@pytest.mark.parametrize("convert", ["to_sparse_csr", "to_sparse_csc"])
def test_retain_grad_on_compressed_non_leaf_refuses_as_torch(convert):
    seen = []
    for lib in (torch, chainrule):
        x = lib.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]], requires_grad=True)
        y = getattr(x, convert)()
        y.retain_grad()
        with pytest.raises(RuntimeError) as caught:
            y.to_dense().sum().backward()
        seen.append((str(caught.value), x.grad, y.grad))
    assert seen[1] == seen[0] == ("unsupported memory format option Contiguous", None, None)


def test_retain_grad_on_coo_and_dense_non_leaves_unchanged():
    for lib in (torch, chainrule):
        x = lib.tensor([[1.0, 0.0], [0.0, 3.0]], requires_grad=True)
        coo, dense = x.to_sparse(), x.t()
        coo.retain_grad()
        dense.retain_grad()
        (coo.to_dense() * 2 + dense).sum().backward()
        assert coo.grad.to_dense().tolist() == [[2.0, 0.0], [0.0, 2.0]]
        assert dense.grad.tolist() == [[1.0, 1.0], [1.0, 1.0]] and dense.grad.is_contiguous()
