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


# linear algebra on a sparse COO argument: torch's dispatcher has no sparse kernel for these and refuses,
# naming the kernel, before any check of shapes or dtypes (after its argument parser)
def _square(lib, layout="sparse", dtype=None):
    dense = lib.tensor([[2.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 4.0]], dtype=dtype or lib.float64)
    return dense.to_sparse() if layout == "sparse" else dense


def _ones(lib, *shape):
    return lib.ones(*shape, dtype=lib.float64)


LINEAR_ALGEBRA = {
    "linalg.cholesky": lambda lib: lib.linalg.cholesky(_square(lib)),
    "linalg.cholesky_ex": lambda lib: lib.linalg.cholesky_ex(_square(lib)),
    "linalg.det": lambda lib: lib.linalg.det(_square(lib)),
    "linalg.det 2x3": lambda lib: lib.linalg.det(_square(lib, "dense")[:2].to_sparse()),
    "linalg.det int": lambda lib: lib.linalg.det(_square(lib, dtype=lib.int64)),
    "linalg.slogdet": lambda lib: lib.linalg.slogdet(_square(lib)),
    "linalg.eigh": lambda lib: lib.linalg.eigh(_square(lib)),
    "linalg.eigvalsh": lambda lib: lib.linalg.eigvalsh(_square(lib)),
    "linalg.householder_product": lambda lib: lib.linalg.householder_product(_square(lib), _ones(lib, 2)),
    "linalg.inv": lambda lib: lib.linalg.inv(_square(lib)),
    "linalg.inv 1-d": lambda lib: lib.linalg.inv(_ones(lib, 3).to_sparse()),
    "linalg.inv_ex": lambda lib: lib.linalg.inv_ex(_square(lib)),
    "linalg.lstsq": lambda lib: lib.linalg.lstsq(_square(lib, "dense"), _square(lib)),
    "linalg.lu": lambda lib: lib.linalg.lu(_square(lib)),
    "linalg.lu_factor": lambda lib: lib.linalg.lu_factor(_square(lib)),
    "linalg.lu_factor_ex": lambda lib: lib.linalg.lu_factor_ex(_square(lib)),
    "linalg.ldl_factor": lambda lib: lib.linalg.ldl_factor(_square(lib)),
    "linalg.matrix_exp": lambda lib: lib.linalg.matrix_exp(_square(lib)),
    "linalg.matrix_norm": lambda lib: lib.linalg.matrix_norm(_square(lib)),
    "linalg.matrix_norm nuc": lambda lib: lib.linalg.matrix_norm(_square(lib), "nuc"),
    "linalg.matrix_norm 2": lambda lib: lib.linalg.matrix_norm(_square(lib), 2),
    "linalg.matrix_norm 1": lambda lib: lib.linalg.matrix_norm(_square(lib), 1),
    "linalg.norm": lambda lib: lib.linalg.norm(_square(lib)),
    "linalg.norm 2": lambda lib: lib.linalg.norm(_square(lib), 2),
    "linalg.norm 1-d 2": lambda lib: lib.linalg.norm(_ones(lib, 3).to_sparse(), 2),
    "linalg.norm inf": lambda lib: lib.linalg.norm(_square(lib), float("inf")),
    "linalg.vector_norm": lambda lib: lib.linalg.vector_norm(_square(lib), 1),
    "linalg.cond": lambda lib: lib.linalg.cond(_square(lib)),
    "linalg.cond fro": lambda lib: lib.linalg.cond(_square(lib), "fro"),
    "linalg.cond -2": lambda lib: lib.linalg.cond(_square(lib), -2),
    "linalg.matrix_rank": lambda lib: lib.linalg.matrix_rank(_square(lib)),
    "linalg.matrix_rank atol": lambda lib: lib.linalg.matrix_rank(_square(lib), atol=0.1),
    "linalg.pinv": lambda lib: lib.linalg.pinv(_square(lib)),
    "linalg.qr": lambda lib: lib.linalg.qr(_square(lib)),
    "linalg.solve": lambda lib: lib.linalg.solve(_square(lib), _square(lib, "dense")),
    "linalg.solve by name": lambda lib: lib.linalg.solve(A=_square(lib, "dense"), B=_square(lib)),
    "linalg.solve_ex": lambda lib: lib.linalg.solve_ex(_square(lib, "dense"), _square(lib)),
    "linalg.solve_triangular": lambda lib: lib.linalg.solve_triangular(_square(lib), _square(lib, "dense"), upper=True),
    "linalg.svd": lambda lib: lib.linalg.svd(_square(lib)),
    "linalg.svdvals": lambda lib: lib.linalg.svdvals(_square(lib)),
    "linalg.cross": lambda lib: lib.linalg.cross(_square(lib), _square(lib, "dense")),
    "det": lambda lib: lib.det(_square(lib)),
    "logdet": lambda lib: _square(lib).logdet(),
    "slogdet": lambda lib: _square(lib).slogdet(),
    "inverse": lambda lib: _square(lib).inverse(),
    "cholesky": lambda lib: _square(lib).cholesky(),
    "cholesky_inverse": lambda lib: lib.cholesky_inverse(_square(lib)),
    "cholesky_solve": lambda lib: lib.cholesky_solve(_square(lib, "dense"), _square(lib)),
    "matrix_exp": lambda lib: _square(lib).matrix_exp(),
    "qr": lambda lib: _square(lib).qr(),
    "svd": lambda lib: lib.svd(_square(lib)),
    "lu": lambda lib: _square(lib).lu(),
    "lu_unpack": lambda lib: lib.lu_unpack(_square(lib), lib.tensor([1, 2, 3], dtype=lib.int32)),
    "triangular_solve": lambda lib: _square(lib).triangular_solve(_square(lib, "dense")),
    "trace": lambda lib: _square(lib).trace(),
    "tril": lambda lib: lib.tril(_square(lib)),
    "triu": lambda lib: _square(lib).triu(1),
    "diag_embed": lambda lib: _square(lib).diag_embed(),
    "geqrf": lambda lib: _square(lib).geqrf(),
    "orgqr": lambda lib: _square(lib).orgqr(_ones(lib, 2)),
    "ormqr": lambda lib: _square(lib).ormqr(_ones(lib, 2), _square(lib, "dense")),
    "renorm": lambda lib: _square(lib).renorm(2, 0, 1.0),
    "logsumexp": lambda lib: lib.logsumexp(_square(lib), 0),
    "cross": lambda lib: _square(lib).cross(_square(lib, "dense")),
    "nuclear_norm": lambda lib: lib.nuclear_norm(_square(lib)),
    "norm nuc": lambda lib: lib.norm(_square(lib), "nuc"),
    "norm dim": lambda lib: _square(lib).norm(dim=0),
    "norm all dims": lambda lib: lib.norm(_square(lib), dim=(0, 1)),
    "norm": lambda lib: lib.norm(_square(lib), 1),
    "pinverse": lambda lib: _square(lib).pinverse(),
    "baddbmm": lambda lib: lib.baddbmm(_ones(lib, 1, 3, 3), _ones(lib, 1, 3, 3).to_sparse(), _ones(lib, 1, 3, 3)),
    "addbmm": lambda lib: _square(lib).addbmm(_ones(lib, 1, 3, 3), _ones(lib, 1, 3, 3)),
    "cdist": lambda lib: lib.cdist(_square(lib), _square(lib, "dense")),
    "cdist mm": lambda lib: lib.cdist(_ones(lib, 30, 3), _ones(lib, 30, 3).to_sparse()),
    # the parser's TypeError comes first
    "linalg.det two tensors": lambda lib: lib.linalg.det(_square(lib), _square(lib, "dense")),
    "lu pivot tensor": lambda lib: lib.lu(_square(lib, "dense"), _square(lib)),
    "cdist one tensor": lambda lib: lib.cdist(_square(lib)),
    "tril tensor diagonal": lambda lib: lib.tril(_square(lib), _square(lib, "dense")),
    "linalg.norm tensor ord": lambda lib: lib.linalg.norm(_square(lib), _square(lib, "dense")),
}


def _first_words(error) -> str:
    """An exception's first line, less torch's note to its mobile users (not in chainrule's words)."""
    return str(error).split("\n")[0].split(" If you are a Facebook employee")[0]


def _outcome(call, lib):
    """The exception's type and first line, or the result's layout, dtype and values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = call(lib)
        except Exception as error:  # noqa: BLE001 - the exception is what is compared
            return type(error).__name__, _first_words(error)
    first = result[0] if isinstance(result, tuple) else result
    dense = first.to_dense() if first.layout != lib.strided else first
    return str(first.layout).split(".")[-1], str(first.dtype).split(".")[-1], dense.tolist()


@pytest.mark.parametrize("name", list(LINEAR_ALGEBRA))
def test_linear_algebra_on_sparse_as_torch(name):
    ours, theirs = _outcome(LINEAR_ALGEBRA[name], chainrule), _outcome(LINEAR_ALGEBRA[name], torch)
    if ours[0] == "TypeError" and theirs[0] == "TypeError":
        return  # the parser's own words name its function, and torch's parser differs in form
    assert ours == theirs


@pytest.mark.parametrize("method", ["tril_", "triu_", "renorm_"])
def test_in_place_linear_algebra_refused_before_writing(method):
    def attempt(lib):
        sparse = _square(lib)
        args = (2, 0, 1.0) if method == "renorm_" else ()
        with pytest.raises(NotImplementedError) as caught:
            getattr(sparse, method)(*args)
        return _first_words(caught.value), sparse.to_dense().tolist()

    ours = attempt(chainrule)
    assert ours == attempt(torch)
    assert ours[1] == _square(chainrule, "dense").tolist()


def test_linear_algebra_on_dense_unaffected():
    dense = _square(chainrule, "dense")
    assert chainrule.linalg.det(dense).item() == pytest.approx(torch.linalg.det(_square(torch, "dense")).item())
    assert chainrule.tril(dense).tolist() == torch.tril(_square(torch, "dense")).tolist()


# sparse times a dense tensor of more dims: sparse as torch's, the new leading dims sparse ones
def _broadcast_operands(lib, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "hybrid":
            return lib.sparse_coo_tensor(lib.tensor([[0, 1]]), lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), (2, 3))
        if kind == "size-1 dim":
            return lib.sparse_coo_tensor(lib.tensor([[0], [2]]), lib.tensor([1.5]), (1, 3))
        if kind == "int":
            return lib.sparse_coo_tensor(lib.tensor([[1, 0, 1], [2, 2, 2]]), lib.tensor([1, 2, 3]), (2, 3))
        return lib.sparse_coo_tensor(lib.tensor([[1, 0, 1], [2, 2, 2]]), lib.tensor([1.0, 2.0, 3.0]), (2, 3))


BROADCAST = {
    "s * (4, 2, 3)": lambda lib, s: s * lib.arange(24.0).reshape(4, 2, 3),
    "(4, 2, 3) * s": lambda lib, s: lib.arange(24.0).reshape(4, 2, 3) * s,
    "s * (2, 1, 3)": lambda lib, s: s * lib.arange(6.0).reshape(2, 1, 3),
    "mul(s, (1, 2, 1))": lambda lib, s: lib.mul(s, lib.tensor([[[2.0], [3.0]]])),
    "s * (3, 1, 1, 1) float64": lambda lib, s: s * lib.arange(3.0, dtype=lib.float64).reshape(3, 1, 1, 1),
}


def _sparse_outcome(lib, kind, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = BROADCAST[name](lib, _broadcast_operands(lib, kind))
        except Exception as error:  # noqa: BLE001 - the exception is what is compared
            return type(error).__name__, _first_words(error)
    return (str(result.layout).split(".")[-1], tuple(result.shape), str(result.dtype).split(".")[-1],
            result.sparse_dim(), result.is_coalesced(), result._indices().tolist(), result._values().tolist())


@pytest.mark.parametrize("kind", ["uncoalesced", "hybrid", "size-1 dim", "int"])
@pytest.mark.parametrize("name", list(BROADCAST))
def test_sparse_times_broadcast_dense_as_torch(name, kind):
    assert _sparse_outcome(chainrule, kind, name) == _sparse_outcome(torch, kind, name)


@pytest.mark.parametrize("which", ["sparse", "dense", "both"])
def test_sparse_times_broadcast_dense_graph_and_refused_backward_as_torch(which):
    def attempt(lib):
        sparse = _broadcast_operands(lib, "uncoalesced")
        dense = lib.ones(2, 2, 3)
        for operand, name in ((sparse, "sparse"), (dense, "dense")):
            operand.requires_grad_(which in (name, "both"))
        result = sparse * dense
        graph = _graph(result)
        with pytest.raises(RuntimeError) as caught:
            result.to_dense().sum().backward()
        return graph, type(caught.value).__name__, _first_words(caught.value)

    assert attempt(chainrule) == attempt(torch)

