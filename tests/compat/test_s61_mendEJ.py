"""Session 61, lane mendEJ: sparse COO mends (sparse @ sparse gradients, ...), each pinned against torch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _coo(lib, indices, values, size, dtype, coalesced):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's invariant-check notice
        tensor = lib.sparse_coo_tensor(lib.tensor(indices), lib.tensor(values, dtype=getattr(lib, dtype)), size)
    return (tensor.coalesce() if coalesced else tensor).requires_grad_()


def _sparse_grads(lib, case, product):
    (i1, v1, s1), (i2, v2, s2), dtype, coalesced = case
    a, b = _coo(lib, i1, v1, s1, dtype, coalesced), _coo(lib, i2, v2, s2, dtype, coalesced)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = product(lib)(a, b)
    weights = lib.tensor(np.arange(1.0, 1 + s1[0] * s2[1]).reshape(s1[0], s2[1]), dtype=getattr(lib, dtype))
    (c.to_dense() * weights).sum().backward()
    return c.grad_fn.name(), [(g.is_coalesced(), g._indices().tolist(), g.to_dense().tolist()) for g in (a.grad, b.grad)]


_PRODUCTS = {"sparse.mm": lambda lib: lib.sparse.mm, "matmul operator": lambda lib: lambda a, b: a @ b}


@pytest.mark.parametrize("coalesced", [False, True])
@pytest.mark.parametrize("product", sorted(_PRODUCTS))
def test_sparse_times_sparse_gradients_are_torchs(product, coalesced):
    # torch.sparse.mm (SparseSparseMatmulBackward0) projects grad @ b^T onto a's pattern, keeping the product's
    # entries off it as zeros; ``@`` (MmBackward0) gives the whole product. Small integers: exact sums.
    rng = np.random.default_rng(61)
    for _ in range(12):
        n, m, p = (int(k) for k in rng.integers(1, 5, 3))
        case = tuple((np.stack([rng.integers(0, rows, nnz), rng.integers(0, cols, nnz)]),
                      rng.integers(-3, 4, nnz).astype(np.float64), (rows, cols))
                     for rows, cols, nnz in ((n, m, int(rng.integers(0, 6))), (m, p, int(rng.integers(0, 6)))))
        case += ("float64", coalesced)
        assert _sparse_grads(chainrule, case, _PRODUCTS[product]) == _sparse_grads(torch, case, _PRODUCTS[product])


def _error(thunk):
    try:
        thunk()
    except Exception as error:  # noqa: BLE001 - the error is what we compare
        return type(error).__name__, str(error)
    return None


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("shape, sparse_dims, dense_dim", [((3,), 1, None), ((2, 2, 2), 3, None), ((2, 2, 2), 1, None),
                                                           ((2, 2), 2, 1), ((2, 2, 2), 2, 1)])
def test_coo_to_compressed_refusals_are_torchs(layout, shape, sparse_dims, dense_dim):
    def convert(lib):
        coo = lib.arange(1.0, 1 + np.prod(shape)).reshape(shape).to_sparse(sparse_dims)
        return getattr(coo, f"to_sparse_{layout}")(**({} if dense_dim is None else {"dense_dim": dense_dim}))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _error(lambda: convert(chainrule)) == _error(lambda: convert(torch)) is not None


@pytest.mark.parametrize("dims", [None, (0,), (1,)])
def test_sum_to_a_narrower_float_casts_first_as_torch(dims):
    # torch's sum(dtype=float32) of a float64 tensor casts it, then sums in its float32 order (summing in float64
    # and casting differs in the last bits)
    x = np.random.default_rng(61).standard_normal((37, 300)) * 1000.0

    def total(lib):
        t = lib.tensor(x, dtype=lib.float64)
        out = t.sum(dtype=lib.float32) if dims is None else t.sum(dims, dtype=lib.float32)
        return str(out.dtype).split(".")[-1], out.numpy().tobytes()

    assert total(chainrule) == total(torch)
