"""Products with a sparse COO operand as torch's: torch.mm/matmul/spmm of two COO tensors are sparse
(MmBackward0, sparse gradients), dense @ COO is torch's column-major (sparseᵀ @ denseᵀ)ᵀ with its
shape check's words, and torch.sparse.mm(dense, COO) is its TransposeBackward0 over SparseAddmmBackward0."""
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

PRODUCTS = {"mm": lambda lib: lib.mm, "matmul": lambda lib: lib.matmul, "@": lambda lib: (lambda x, y: x @ y),
            "spmm": lambda lib: lib.spmm, "sparse.mm": lambda lib: lib.sparse.mm}


def _observed(lib, product, layouts, shapes, dtype, seed):
    r = np.random.default_rng(seed)
    arrays = [r.standard_normal(s) * (r.random(s) < 0.5) for s in shapes]
    a, b = (lib.tensor(x, dtype=getattr(lib, dtype)) for x in arrays)
    a, b = (t.to_sparse() if layout == "s" else t for t, layout in zip((a, b), layouts))
    a.requires_grad_()
    b.requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's sparse @ sparse goes through CSR: its beta warning)
        try:
            out = PRODUCTS[product](lib)(a, b)
        except RuntimeError as error:
            return ("RuntimeError", str(error))
    names, stack = [], [(out.grad_fn, 0)]
    while stack:
        node, depth = stack.pop()
        if node is not None and depth < 4:
            names.append(node.name())
            stack.extend((n, depth + 1) for n, _ in reversed(node.next_functions))
    dense = out.to_dense() if out.layout != lib.strided else out
    dense.backward(lib.tensor(r.standard_normal(tuple(dense.shape)), dtype=getattr(lib, dtype)))
    seen = [str(out.layout).split(".")[-1], names, np.array(dense.detach().tolist()),
            out.stride() if out.layout == lib.strided else None]
    for t in (a, b):
        seen += [str(t.grad.layout).split(".")[-1], np.array(t.grad.to_dense().tolist())]
    return seen


@pytest.mark.parametrize("layouts", ["ss", "ds", "sd"])
@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_products_with_a_sparse_operand_as_torchs(product, layouts):
    for seed in range(5):
        r = np.random.default_rng(seed)
        m, k, p = (int(v) for v in r.integers(0, 4, 3))
        shapes = [(m, k), (k + (seed == 4), p)]  # (the last a mismatch: the error's words)
        dtype = ("float64", "float32")[seed % 2]
        theirs = _observed(torch, product, layouts, shapes, dtype, seed)
        ours = _observed(chainrule, product, layouts, shapes, dtype, seed)
        assert len(ours) == len(theirs), (shapes, ours, theirs)
        for o, t in zip(ours, theirs):
            if isinstance(t, np.ndarray):
                np.testing.assert_allclose(o, t, rtol=1e-5, atol=1e-6, err_msg=str(shapes))
            else:
                assert o == t, (shapes, o, t)


@pytest.mark.parametrize("coalesced", [False, True])
@pytest.mark.parametrize("product", ["mm", "sparse.mm", "sparse.addmm"])
def test_coo_times_dense_float32_bits_as_torchs_kernel(product, coalesced):
    # torch's CPU kernel adds each stored entry's v·dense[c] to its row by one fused multiply-add, in
    # storage order (an uncoalesced tensor's duplicates one by one): the product's and the dense
    # operand's gradient's bits
    for seed in range(12):
        r = np.random.default_rng(seed)
        m, k, p = (int(v) for v in r.integers(1, 7, 3))
        nnz = int(r.integers(0, 3 * m * k))
        indices = np.stack([r.integers(0, m, nnz), r.integers(0, k, nnz)])
        values, dense, grad, added = (r.standard_normal(s).astype(np.float32) for s in (nnz, (k, p), (m, p), (m, p)))
        beta, alpha = [(1, 1), (0.5, 1.5), (0, 1), (1, 0.25)][seed % 4]
        seen = []
        for lib in (torch, chainrule):
            sparse = lib.sparse_coo_tensor(lib.tensor(indices), lib.tensor(values), (m, k))
            sparse = sparse.coalesce() if coalesced else sparse
            d = lib.tensor(dense, requires_grad=True)
            out = (lib.mm(sparse, d) if product == "mm" else lib.sparse.mm(sparse, d) if product == "sparse.mm"
                   else lib.sparse.addmm(lib.tensor(added), sparse, d, beta=beta, alpha=alpha))
            out.backward(lib.tensor(grad))
            seen.append([np.array(t.detach().tolist(), np.float32).view(np.int32) for t in (out, d.grad)])
        for ours, theirs in zip(seen[1], seen[0]):
            np.testing.assert_array_equal(ours, theirs, err_msg=f"seed {seed}")
