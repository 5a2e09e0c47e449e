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


@pytest.mark.parametrize("keywords", [{}, {"dtype": "float64"}, {"requires_grad": True},
                                      {"size": (2, 2), "dtype": "float64"}, {"size": (2, 2), "requires_grad": True}])
def test_csr_from_values_node_depends_on_size_as_torch(keywords):
    # torch's overload without a size records its NotImplemented node, whose backward raises
    seen = []
    for lib in (torch, chainrule):
        v = lib.tensor([1.0, 2.0], requires_grad=True)
        given = {k: getattr(lib, w) if k == "dtype" else w for k, w in keywords.items()}
        matrix = lib.sparse_csr_tensor(lib.tensor([0, 1, 2]), lib.tensor([1, 0]), v, **given)
        node = matrix.grad_fn
        outcome = [type(node).__name__, node.name(), [type(f).__name__ for f, _ in node.next_functions],
                   matrix.is_leaf, matrix.requires_grad]
        try:
            (matrix.to_dense() * lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=matrix.dtype)).sum().backward()
            outcome.append(v.grad.tolist())
        except RuntimeError as error:
            outcome.append(str(error))
        seen.append(outcome)
    assert seen[1] == seen[0]


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


def _outcome(function, *args, **kwargs):
    try:
        function(*args, **kwargs)
    except Exception as error:
        return type(error).__name__, str(error)
    return "ok", None


_OUT_SHAPES = {"sum": (3,), "mean": (3,), "prod": (3,), "nansum": (3,), "cumsum": (2, 3), "cumprod": (2, 3)}


@pytest.mark.parametrize("op", sorted(_OUT_SHAPES))
def test_explicit_dtype_other_than_outs_is_refused_as_torch(op):
    cases = [(x, d, o) for x in ("float32", "int64") for d in ("float32", "float64", "int64", "float16")
             for o in ("float32", "float64", "int64")]
    for source, dtype, out_dtype in cases:
        seen = []
        for lib in (torch, chainrule):
            x = lib.arange(6, dtype=getattr(lib, source)).reshape(2, 3)
            out = lib.full((5,), 7, dtype=getattr(lib, out_dtype))  # (a wrong shape: a refusal leaves it as it is)
            if dtype == out_dtype:
                out = lib.zeros(_OUT_SHAPES[op], dtype=getattr(lib, out_dtype))
            outcome = _outcome(getattr(lib, op), x, 0, dtype=getattr(lib, dtype), out=out)
            seen.append((outcome, out.tolist()))
        assert seen[1] == seen[0], (source, dtype, out_dtype)


def test_out_under_autograd_refused_before_the_dtype():
    seen = []
    for lib in (torch, chainrule):
        x = lib.ones(2, 3, requires_grad=True)
        seen.append([_outcome(getattr(lib, op), x, 0, dtype=lib.float64, out=lib.zeros(_OUT_SHAPES[op]))
                     for op in sorted(_OUT_SHAPES)])
    assert seen[1] == seen[0]
    assert all("don't support automatic differentiation" in message for _, message in seen[0])
