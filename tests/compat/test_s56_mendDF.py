"""s56 mendDF: sparse compressed tensors' gradients as torch's. torch.sparse.mm/addmm record one
SparseAddmmBackward0 over (added, sparse, dense) whose sparse gradient is in the operand's layout at its
entries (a CSR leaf's CSR, a non-leaf's masked, a CSC one refused); a CSR leaf's ``.grad`` is CSR where the
op's gradient is, accumulated in place over backward passes and summed over fan-out; ToSparseCsrBackward0
takes a CSR gradient. Each case runs on torch and on chainrule and is compared."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

A = [[1.0, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 5]]
W = [[1.0, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
B = [[0.5, -1.0], [2.0, 0.25], [-1.5, 1.0], [0.75, 3.0]]
LAYOUTS = {"csr": "to_sparse_csr", "csc": "to_sparse_csc", "coo": "to_sparse"}


def _described(t):
    """A tensor's layout, indices and values (None for None), comparable across the two libraries."""
    if t is None:
        return None
    layout = str(t.layout).rpartition(".")[2]
    if layout == "sparse_csr":
        parts = (t.crow_indices().tolist(), t.col_indices().tolist(), t.values().detach().tolist())
    elif layout == "sparse_csc":
        parts = (t.ccol_indices().tolist(), t.row_indices().tolist(), t.values().detach().tolist())
    elif layout == "sparse_coo":
        parts = (t._indices().tolist(), t._values().detach().tolist())
    else:
        parts = (t.detach().tolist(),)
    return layout, str(t.dtype).rpartition(".")[2], tuple(np.round(np.asarray(p, dtype=float), 5).tolist() for p in parts)


def _node(t):
    fn = t.grad_fn
    return None if fn is None else (fn.name(), [None if f is None else f.name() for f, _ in fn.next_functions])


def _outcome(lib, program):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return program(lib)
        except Exception as error:  # noqa: BLE001 - the class and words are what is compared
            return type(error).__name__, str(error).split("\n")[0]


def _same(program):
    expected, got = _outcome(torch, program), _outcome(chainrule, program)
    assert got == expected
    return expected


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("route", ["leaf", "nonleaf", "const"])
@pytest.mark.parametrize("dense_grad", [False, True])
def test_sparse_mm_gradients_by_layout(layout, route, dense_grad):
    # a CSR operand's gradient is CSR at its entries (masked for a non-leaf), a CSC one's refused, a COO one's
    # COO; the node is SparseAddmmBackward0 over (zeros, sparse, dense)
    if route == "const" and not dense_grad:
        pytest.skip("nothing requires grad")

    def program(lib):
        a = lib.tensor(A)
        d = lib.tensor(B).requires_grad_(dense_grad)
        source = a.clone().requires_grad_() if route == "nonleaf" else None
        s = getattr(source if source is not None else a, LAYOUTS[layout])()
        if route == "leaf":
            source = s.requires_grad_()
        y = lib.sparse.mm(s, d)
        shown = [_described(y), _node(y)]
        (y * lib.tensor([1.0, -2.0])).sum().backward()
        return shown + [_described(None if source is None else source.grad), _described(d.grad)]

    outcome = _same(program)
    if layout == "csc" and route != "const":
        assert "sparse_addmm_sparse_backward: unsupported combination of layouts" in outcome[1]


def test_sparse_mm_edge_matrices_and_float64():
    # all-zero and empty-row matrices, float64: the CSR leaf's gradient keeps its (empty) pattern and dtype
    def program(lib):
        shown = []
        for matrix in ([[0.0, 0, 0, 0]] * 3, [[0.0, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0]]):
            s = lib.tensor(matrix, dtype=lib.float64).to_sparse_csr().requires_grad_()
            lib.sparse.mm(s, lib.tensor(B, dtype=lib.float64)).sum().backward()
            shown.append(_described(s.grad))
        return shown

    _same(program)


def test_sparse_addmm_csr_gradients_and_refusals():
    def program(lib):
        m = lib.ones(3, 2).requires_grad_()
        s = lib.tensor(A).to_sparse_csr().requires_grad_()
        d = lib.tensor(B).requires_grad_()
        y = lib.sparse.addmm(m, s, d, beta=0.5, alpha=2.0)
        (y * lib.tensor([1.0, 2.0])).sum().backward()
        return _described(y), _node(y), _described(m.grad), _described(s.grad), _described(d.grad)

    _same(program)
    for refused in (lambda lib: lib.sparse.mm(lib.tensor(A).to_sparse_csr(), lib.tensor(B).long()),
                    lambda lib: lib.sparse.mm(lib.tensor(A).double().to_sparse_csr(), lib.tensor(B)),
                    lambda lib: lib.sparse.mm(lib.tensor(A).to_sparse_csc(), lib.tensor(B)[:2]),
                    lambda lib: lib.sparse.addmm(lib.ones(3, 2).double(), lib.tensor(A).to_sparse_csr(),
                                                 lib.tensor(B))):
        assert isinstance(_same(refused)[0], str)


ROUTES = {
    "to_dense": lambda lib, x: (x.to_dense() * lib.tensor(W)).sum(),
    "values": lambda lib, x: (x.values() * lib.arange(1.0, 6.0)).sum(),
    "mul_dense": lambda lib, x: (x * lib.tensor(W)).to_dense().sum(),
    "sparse_mm": lambda lib, x: lib.sparse.mm(x, lib.tensor(B)).sum(),
    "add_dense": lambda lib, x: ((x + lib.tensor(W)) * lib.tensor(W)).sum(),
    "sum": lambda lib, x: x.sum(),
    "torch_mm": lambda lib, x: lib.mm(x, lib.tensor(B)).sum(),
    "sparse_sum": lambda lib, x: lib.sparse.sum(x),
}


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("route", ROUTES)
def test_compressed_leaf_grad_over_two_backward_passes(layout, route):
    # torch keeps a CSR gradient as CSR and adds the second into it in place; a CSC one its layout check refuses
    def program(lib):
        x = getattr(lib.tensor(A), LAYOUTS[layout])().requires_grad_()
        ROUTES[route](lib, x).backward()
        first = x.grad
        shown = [_described(first)]
        ROUTES[route](lib, x).backward()
        return shown + [_described(x.grad), x.grad is first]

    _same(program)


@pytest.mark.parametrize("first,second", [("sparse_mm", "to_dense"), ("torch_mm", "sparse_mm"),
                                          ("sparse_mm", "torch_mm")])
def test_csr_leaf_grad_mixing_layouts(first, second):
    # a CSR gradient adds into a strided .grad; a strided one into a CSR .grad is refused in torch's words
    def program(lib):
        x = lib.tensor(A).to_sparse_csr().requires_grad_()
        ROUTES[first](lib, x).backward()
        shown = [_described(x.grad)]
        ROUTES[second](lib, x).backward()
        return shown + [_described(x.grad)]

    _same(program)


def test_csr_leaf_fan_out_and_autograd_grad():
    def program(lib):
        shown = []
        for other in ("values", "sparse_mm", "sum"):
            x = lib.tensor(A).to_sparse_csr().requires_grad_()
            (ROUTES["to_dense"](lib, x) + ROUTES[other](lib, x)).backward()
            shown.append(_described(x.grad))
        x = lib.tensor(A).to_sparse_csr().requires_grad_()
        shown.append(_described(lib.autograd.grad(ROUTES["sparse_mm"](lib, x), x)[0]))
        return shown

    _same(program)


@pytest.mark.parametrize("route", ["to_dense", "values", "mul_dense", "sparse_mm", "add_dense"])
def test_to_sparse_csr_of_a_dense_tensor_takes_a_csr_gradient(route):
    def program(lib):
        a = lib.tensor(A).requires_grad_()
        s = a.to_sparse_csr()
        ROUTES[route](lib, s).backward()
        return _described(a.grad)

    _same(program)


def test_sparse_mm_gradient_stays_in_the_graph_under_create_graph():
    # the sparse leaf's gradient is differentiable in the dense operand, the dense one's in the leaf (torch's
    # double backward of a CSR leaf's sampled addmm asks it for strides, which chainrule does not copy)
    def program(lib):
        s = lib.tensor(A, dtype=lib.float64).to_sparse().requires_grad_()
        d = lib.tensor(B, dtype=lib.float64).requires_grad_()
        grad_s, grad_d = lib.autograd.grad(lib.sparse.mm(s, d).pow(2).sum(), (s, d), create_graph=True)
        (second,) = lib.autograd.grad((grad_s.coalesce().values() * lib.arange(1.0, 6.0, dtype=lib.float64)).sum(), d)
        return _described(grad_s.coalesce()), _described(grad_d), _described(second), grad_d.grad_fn is not None

    _same(program)


NAMED = {
    "coo_to_dense": lambda lib: lib.tensor(A).to_sparse().requires_grad_().to_dense(),
    "coo_values": lambda lib: lib.tensor(A).to_sparse().requires_grad_().values(),
    "csr_to_dense": lambda lib: lib.tensor(A).to_sparse_csr().requires_grad_().to_dense(),
    "csr_values": lambda lib: lib.tensor(A).to_sparse_csr().requires_grad_().values(),
    "built_to_dense": lambda lib: lib.sparse_coo_tensor(lib.tensor([[0, 2, 0], [1, 0, 1]]),
                                                        lib.tensor([1.0, 2.0, 3.0], requires_grad=True),
                                                        (3, 2)).to_dense(),
    "built_coalesce": lambda lib: lib.sparse_coo_tensor(lib.tensor([[0, 2, 0], [1, 0, 1]]),
                                                        lib.tensor([1.0, 2.0, 3.0], requires_grad=True),
                                                        (3, 2)).coalesce(),
    "coo_t": lambda lib: lib.tensor(A).to_sparse().requires_grad_().t(),
    "coo_neg": lambda lib: -lib.tensor(A).to_sparse().requires_grad_(),
    "coo_addmm": lambda lib: lib.sparse.addmm(lib.ones(3, 2), lib.tensor(A).to_sparse().requires_grad_(),
                                              lib.tensor(B)),
}


@pytest.mark.parametrize("name", NAMED)
def test_sparse_reads_name_their_nodes_and_edges_as_torch(name):
    # to_dense, values, coalesce and the ops linear in the entries (t, neg) record one node over the sparse tensor
    # itself (no node between it and its AccumulateGrad or grad_fn); the gradient is the same as before
    def program(lib):
        result = NAMED[name](lib)
        leaf = result.grad_fn.next_functions[1 if name == "coo_addmm" else 0][0]
        source = getattr(leaf, "variable", None)
        (result.to_dense() if result.layout != lib.strided else result).sum().backward()
        return _node(result), _described(None if source is None else source.grad)

    _same(program)
