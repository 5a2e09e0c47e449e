"""Session 29, lane progT: chainrule bugs found around the graph, recommender and generative
programs (graphsage_scatter, deepfm_ctr, made_maf_flow, gumbel_softmax_vae, neural_process), each
checked against torch."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(call):
    """What a call gives: its values (and dtype name), or its exception's class and message."""
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - the class is part of what is compared
        return type(error).__name__, str(error)
    return str(result.dtype).split(".")[-1], result.tolist()


def _same_on_both(make):
    assert _outcome(lambda: make(chainrule)) == _outcome(lambda: make(torch))


# ---- index_add_ / index_copy_: no dtype promotion of source, torch's order of checks ----
@pytest.mark.parametrize("make", [
    lambda lib: lib.zeros(3, 2).index_add_(0, lib.tensor([0, 1]), lib.ones(2, 2, dtype=lib.float64)),
    lambda lib: lib.zeros(3, 2).index_add(0, lib.tensor([0, 1]), lib.ones(2, 2, dtype=lib.int32)),
    lambda lib: lib.index_add(lib.zeros(3, 2), 0, lib.tensor([0, 1]), lib.ones(2, 2, dtype=lib.float64),
                              out=lib.zeros(3, 2)),
    lambda lib: lib.zeros(3, 2, dtype=lib.long).index_add_(0, lib.tensor([0, 1]), lib.ones(2, 2)),
    lambda lib: lib.zeros(3, 2).index_add_(0, lib.tensor([0, 1, 2]), lib.ones(2, 3, dtype=lib.bool)),
    lambda lib: lib.zeros(3, 2).index_add_(0, lib.tensor([0, 1]), lib.ones(2, 2, dtype=lib.float64), alpha=2),
    lambda lib: lib.zeros(()).index_add_(0, lib.tensor([0]), lib.ones(2, dtype=lib.float64)),
    lambda lib: lib.zeros(()).index_add_(0, lib.tensor([0, 0]), lib.tensor(1.0, dtype=lib.float64)),
    lambda lib: lib.zeros(()).index_add_(0, lib.tensor([0.0]), lib.ones(2, dtype=lib.float64)),
    lambda lib: lib.zeros(()).index_add_(0, lib.tensor([0]), lib.ones(2)),
    lambda lib: lib.zeros(()).index_add_(0, lib.tensor([[0]]), lib.ones(2)),
    lambda lib: lib.zeros(()).index_add_(0, lib.tensor([5]), lib.ones(1)),
    lambda lib: lib.zeros(3, 2).index_add_(0, lib.tensor([[0, 1]]), lib.ones(2, 2, dtype=lib.float64)),
    lambda lib: lib.zeros(3, 2).index_add_(0, lib.tensor([[0.0, 1.0]]), lib.ones(2, 2)),
    lambda lib: lib.zeros(3, 2).index_add_(0, lib.tensor([[[0, 1]]], dtype=lib.int32), lib.ones(2, 2)),
    lambda lib: lib.zeros(3, 2).index_add_(7, lib.tensor([0, 1]), lib.ones(2, 2, dtype=lib.float64)),
    lambda lib: lib.zeros(3, 2).index_copy_(0, lib.tensor([0, 1]), lib.ones(2, 2, dtype=lib.float64)),
    lambda lib: lib.zeros(3, 2).index_copy(0, lib.tensor([0, 1, 2]), lib.ones(2, 3, dtype=lib.float64)),
    lambda lib: lib.zeros(()).index_copy_(0, lib.tensor([0, 1]), lib.ones(2, 2, dtype=lib.float64)),
    lambda lib: lib.zeros(3, 2).index_copy_(0, lib.tensor([0.0, 1.0]), lib.ones(2, 2, dtype=lib.float64)),
    lambda lib: lib.zeros(3, 2).index_copy_(0, lib.tensor([[0.0, 1.0]]), lib.ones(2, 2)),
    lambda lib: lib.zeros(3, 2).index_fill_(0, lib.tensor([[0, 1]]), 1.0),
    lambda lib: lib.zeros(3, 2).index_add_(0, lib.tensor([0, 0, 2]), lib.ones(3, 2), alpha=2),
])
def test_index_add_and_copy_refuse_another_source_dtype_as_torch(make):
    _same_on_both(make)


# ---- bincount's messages ----
@pytest.mark.parametrize("make", [
    lambda lib: lib.bincount(lib.tensor([1.0, 2.0])),
    lambda lib: lib.bincount(lib.tensor([True, False])),
    lambda lib: lib.bincount(lib.tensor([[1, 2]])),
    lambda lib: lib.bincount(lib.tensor([1, -2])),
    lambda lib: lib.bincount(lib.tensor(3)),
    lambda lib: lib.bincount(lib.tensor([1, 2]), weights=lib.tensor([1.0])),
    lambda lib: lib.bincount(lib.tensor([0, 1, 1, 3]), weights=lib.tensor([0.5, 1.0, 2.0, 3.0]), minlength=6),
    lambda lib: lib.bincount(lib.tensor([0, 3, 3]), minlength=5).clamp(min=1),
])
def test_bincount_words_its_errors_as_torch(make):
    _same_on_both(make)


# ---- scatter_reduce reads "max" / "min" as amax / amin; their backward is refused ----
@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_accepts_max_and_min_as_torch_forward(reduce, include_self):
    def make(lib):
        base = lib.tensor([[0.0, 3.0], [1.0, 1.0], [2.0, 2.0]])
        index = lib.tensor([[0, 0], [0, 0], [1, 2], [1, 2]])
        src = lib.tensor([[1.0, 2.0], [3.0, 2.0], [3.0, 5.0], [0.0, 1.0]])
        return base.scatter_reduce(0, index, src, reduce=reduce, include_self=include_self)

    _same_on_both(make)

    def in_place(lib):
        base = lib.zeros(3)
        base.scatter_reduce_(0, lib.tensor([0, 0, 1]), lib.tensor([1.0, 2.0, 4.0]), reduce=reduce,
                             include_self=include_self)
        return base

    _same_on_both(in_place)


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_scatter_reduce_max_backward_raises_as_torch(reduce):
    outcomes = []
    for lib in (torch, chainrule):
        src = lib.tensor([1.0, 2.0, 2.0, 4.0], requires_grad=True)
        out = lib.zeros(3).scatter_reduce(0, lib.tensor([0, 0, 0, 1]), src, reduce=reduce)
        assert type(out.grad_fn).__name__ == "ScatterReduceBackward0"
        with pytest.raises(RuntimeError) as caught:
            out.sum().backward()
        outcomes.append(str(caught.value))
    assert outcomes[1] == outcomes[0]


# ---- from_numpy names a non-array as CPython's tp_name (numpy.float64, not float64) ----
@pytest.mark.parametrize("make", [
    lambda: __import__("numpy").float64(2.0), lambda: __import__("numpy").int32(3), lambda: 1.5, lambda: [1],
    lambda: None, lambda: __import__("decimal").Decimal(1), lambda: __import__("collections").OrderedDict(),
    lambda: __import__("numpy").bool_(True),
])
def test_from_numpy_names_the_type_it_refuses_as_torch(make):
    messages = []
    for lib in (torch, chainrule):
        with pytest.raises(TypeError) as caught:
            lib.from_numpy(make())
        messages.append(str(caught.value))
    assert messages[1] == messages[0]


# ---- an in-place op on a view that is its whole base reshaped (nn.Linear of a 3-d input, then
# ReLU(inplace=True), as neural_process's encoders) writes through the base by a reshape ----
def _view_writes(lib):
    lib.manual_seed(0)
    linear = lib.nn.Linear(3, 4)
    x = lib.randn(2, 5, 3, requires_grad=True)
    hidden = linear(x)
    hidden.relu_()
    weights = lib.arange(40.0).view(2, 5, 4)
    (hidden * weights).sum().backward()
    leaf = lib.randn(6, requires_grad=True)
    base = leaf * 2
    first, second = base.view(3, 2), base.view(2, 3)
    first.mul_(lib.arange(6.0).view(3, 2))
    (second * lib.arange(6.0).view(2, 3)).sum().backward()
    twice = lib.randn(4, requires_grad=True)
    square = twice * twice
    square.view(2, 2).mul_(twice.view(2, 2))
    (grad,) = lib.autograd.grad(square.sum(), twice, create_graph=True)
    grad.sum().backward()
    return {
        "values": hidden.tolist(), "x.grad": x.grad.tolist(), "weight.grad": linear.weight.grad.tolist(),
        "names": [type(hidden.grad_fn).__name__, type(base.grad_fn).__name__, type(second.grad_fn).__name__,
                  [type(n).__name__ for n, _ in hidden.grad_fn.next_functions]],
        "leaf.grad": leaf.grad.tolist(), "second": second.tolist(), "double": twice.grad.tolist(),
        "version": base._version,
    }


def test_inplace_on_a_whole_reshape_view_matches_torch():
    ours, theirs = _view_writes(chainrule), _view_writes(torch)
    assert ours.keys() == theirs.keys()
    for key in theirs:
        if key in ("names", "version"):
            assert ours[key] == theirs[key], key
        else:
            assert torch.allclose(torch.tensor(ours[key]), torch.tensor(theirs[key]), rtol=1e-6, atol=1e-6), key


def test_a_whole_reshape_view_is_written_without_an_index_map():
    from chainrule.ops import index as index_ops

    base = chainrule.randn(6, requires_grad=True) * 1
    assert type(index_ops.covered_elements(base.view(2, 3), base)) is index_ops._ReshapeKey
    # a transpose, a part, or an offset view still needs the general key
    assert type(index_ops.covered_elements(base.view(2, 3).t(), base)) is tuple
    assert type(index_ops.covered_elements(base[1:], base)) is tuple
    assert type(index_ops.covered_elements(base[:3].view(3, 1), base)) is tuple


# ---- a sparse COO tensor built from values that require grad passes the gradient to them ----
_SPARSE_USES = {
    "sparse.mm": lambda lib, a, x: lib.sparse.mm(a, x),
    "spmm": lambda lib, a, x: lib.spmm(a, x),
    "matmul": lambda lib, a, x: a @ x,
    "mm of coalesced": lambda lib, a, x: lib.mm(a.coalesce(), x),
    "to_dense": lambda lib, a, x: a.to_dense() * lib.arange(6.0).view(2, 3),
    "sparse.sum": lambda lib, a, x: lib.sparse.sum(a) * 3,
    "values": lambda lib, a, x: a.coalesce().values() * lib.arange(3.0),
    "transpose then mm": lambda lib, a, x: lib.sparse.mm(a.t(), lib.ones(2, 2)),
    "dense + sparse": lambda lib, a, x: lib.ones(2, 3) + a,
}


@pytest.mark.parametrize("use", list(_SPARSE_USES))
def test_sparse_coo_tensor_passes_the_gradient_to_its_values(use):
    results = []
    for lib in (torch, chainrule):
        values = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)  # (0, 1) twice: the two add up
        x = lib.arange(6.0).view(3, 2).requires_grad_()
        a = lib.sparse_coo_tensor(lib.tensor([[0, 1, 1, 0], [1, 0, 2, 1]]), values, (2, 3))
        out = _SPARSE_USES[use](lib, a, x)
        out = out.to_dense() if out.is_sparse else out
        (out * lib.arange(float(out.numel())).view(out.shape)).sum().backward()
        results.append((a.requires_grad, a.is_leaf, type(a.grad_fn).__name__, out.tolist(), values.grad.tolist(),
                        None if x.grad is None else x.grad.tolist()))
    assert results[1] == results[0]


def test_sparse_coo_tensor_of_grad_values_names_and_prints_its_nodes_as_torch():
    shown = []
    for lib in (torch, chainrule):
        indices = lib.tensor([[0, 1, 1, 0], [1, 0, 2, 1]])
        a = lib.sparse_coo_tensor(indices, lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True), (2, 3))
        coalesced = a.coalesce()
        with lib.no_grad():
            untracked = lib.sparse_coo_tensor(indices, lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True), (2, 3))
        shown.append((repr(a).replace(lib.__name__, "torch"), repr(coalesced).replace(lib.__name__, "torch"),
                      type(coalesced.grad_fn).__name__, type(coalesced.values().grad_fn).__name__,
                      type(a.to_dense().grad_fn).__name__, untracked.requires_grad))
    assert shown[1] == shown[0]


def test_sparse_values_gradient_passes_gradcheck():
    indices = chainrule.tensor([[0, 1, 1, 0], [1, 0, 2, 1]])
    values = chainrule.rand(4, dtype=chainrule.float64, requires_grad=True)
    x = chainrule.rand(3, 2, dtype=chainrule.float64, requires_grad=True)

    def product(values, x):
        return chainrule.sparse.mm(chainrule.sparse_coo_tensor(indices, values, (2, 3)).coalesce(), x) ** 2

    assert chainrule.autograd.gradcheck(product, (values, x))
    assert chainrule.autograd.gradgradcheck(product, (values, x))


# ---- torch.sparse.softmax / log_softmax: over the specified entries only ----
def _sparse_softmax_run(lib, name, dim):
    indices = lib.tensor([[0, 1, 1, 0, 2], [1, 0, 2, 1, 2]])  # (0, 1) twice; row 0 and column 0 hold one entry
    values = lib.tensor([1.0, 2.0, 3.0, 4.0, -1.0], requires_grad=True)
    a = lib.sparse_coo_tensor(indices, values, (4, 3))  # row 3 holds none
    out = getattr(lib.sparse, name)(a, dim)
    dense = out.to_dense()
    (dense * lib.arange(12.0).view(4, 3)).sum().backward()
    return (out.is_sparse, out.is_coalesced(), type(out.grad_fn).__name__, out.indices().tolist(), dense.tolist(),
            values.grad.tolist())


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1])
def test_sparse_softmax_matches_torch(name, dim):
    ours, theirs = _sparse_softmax_run(chainrule, name, dim), _sparse_softmax_run(torch, name, dim)
    assert ours[:4] == theirs[:4]
    for mine, its in zip(ours[4:], theirs[4:]):
        assert torch.allclose(torch.tensor(mine), torch.tensor(its), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_sparse_softmax_over_the_last_dim_by_a_negative_dim(name):
    # torch 2.13's backward of sparse softmax with dim=-1 returns gradients whose row sums are not 0
    # (softmax is shift-invariant, so they must be): its values are dim=1's, its gradient is not.
    # Ours gives dim=1's values and gradient.
    ours_last, ours_one = _sparse_softmax_run(chainrule, name, -1), _sparse_softmax_run(chainrule, name, 1)
    theirs_last = _sparse_softmax_run(torch, name, -1)
    assert ours_last[4:] == ours_one[4:]
    assert torch.allclose(torch.tensor(ours_last[4]), torch.tensor(theirs_last[4]), atol=1e-6)


def test_sparse_softmax_with_dense_dims_and_its_errors_match_torch():
    outcomes = []
    for lib in (torch, chainrule):
        hybrid = lib.sparse_coo_tensor(lib.tensor([[0, 1]]), lib.tensor([[1.0, 2.0], [3.0, 4.0]]), (3, 2))
        by_rows = lib.sparse.softmax(hybrid, 1).to_dense()
        by_entries = lib.sparse.softmax(hybrid, 0, dtype=lib.float64)
        with pytest.raises(IndexError) as caught:
            lib.sparse.softmax(hybrid, 2)
        outcomes.append((by_rows.tolist(), by_entries.dtype == lib.float64, by_entries.to_dense().tolist(),
                         str(caught.value)))
    (rows, wide, entries, message), (rows_t, wide_t, entries_t, message_t) = outcomes[1], outcomes[0]
    assert (wide, message) == (wide_t, message_t)
    assert torch.allclose(torch.tensor(rows), torch.tensor(rows_t)) and torch.allclose(
        torch.tensor(entries, dtype=torch.float64), torch.tensor(entries_t, dtype=torch.float64))


def test_sparse_to_keeps_the_graph_and_detach_stays_sparse():
    outcomes = []
    for lib in (torch, chainrule):
        values = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        a = lib.sparse_coo_tensor(lib.tensor([[0, 1, 1, 0], [1, 0, 2, 1]]), values, (2, 3))
        wide = a.to(lib.float64)
        (wide.to_dense() * lib.arange(6.0, dtype=lib.float64).view(2, 3)).sum().backward()
        detached = a.detach()
        outcomes.append((wide.is_sparse, str(wide.dtype).split(".")[-1], type(wide.grad_fn).__name__,
                         values.grad.tolist(), detached.is_sparse, detached.requires_grad, detached._nnz(),
                         detached.to_dense().tolist()))
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("make", [
    lambda lib: (1.0, 0.0), lambda lib: (lib.tensor([1.0, 0.0]), lib.tensor([0.0, 1.0])),
    lambda lib: (lib.tensor(1.0), 0.5), lambda lib: (2, 1), lambda lib: (lib.tensor([[1.0, 0.0]], dtype=lib.float64), 0.5),
])
def test_uniform_names_its_upper_bound_as_torch(make):
    # torch's arg_constraints are less_than(self.high): the bound printed is high's value
    messages = []
    for lib in (torch, chainrule):
        with pytest.raises(ValueError) as caught:
            lib.distributions.Uniform(*make(lib))
        messages.append(str(caught.value).replace(lib.__name__ + ".", "torch."))
    assert messages[1] == messages[0]


@pytest.mark.parametrize("make", [
    lambda np: "a", lambda np: None, lambda np: [1.0, 2.0], lambda np: np.array([1.0]), lambda np: np.float32(2.0),
    lambda np: np.bool_(True), lambda np: np.int64(2), lambda np: 1 + 2j,
    lambda np: np.float64(1.0), lambda np: 3, lambda np: True,
])
def test_distribution_parameters_are_refused_as_torch(make):
    # torch's broadcast_all takes Python int/float/bool (np.float64 is a float) and tensor-likes only
    import numpy as np

    outcomes = []
    for lib in (torch, chainrule):
        try:
            outcomes.append(repr(lib.distributions.Normal(make(np), 1.0)))
        except ValueError as error:
            outcomes.append(str(error).split("): ")[-1])  # (chainrule names the constructor call first)
    assert outcomes[1] == outcomes[0]


def test_sparse_mm_names_its_node_as_torch():
    names = []
    for lib in (torch, chainrule):
        a = lib.sparse_coo_tensor(lib.tensor([[0, 1, 1], [1, 0, 2]]), lib.tensor([1.0, 2.0, 3.0]), (2, 3))
        x = lib.ones(3, 2, requires_grad=True)
        names.append([type(lib.sparse.mm(a, x).grad_fn).__name__, type(lib.spmm(a, x).grad_fn).__name__,
                      type((a @ x).grad_fn).__name__, lib.sparse.mm(a, lib.ones(3, 2)).grad_fn])
    assert names[1] == names[0]
