"""Sparse COO tensors against torch: construction, coalescing, the repr, and the products a
hand-written graph network (GCN) uses, with gradients through the dense operands."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

INDICES = [[0, 1, 1, 0], [2, 0, 2, 2]]
VALUES = [3.0, 4.0, 5.0, 1.0]


def _both(fn):
    return fn(chainrule), fn(torch)


def _same(ours, theirs):
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_construction_coalescing_and_repr_match_torch():
    ours, theirs = _both(lambda lib: lib.sparse_coo_tensor(INDICES, VALUES, (2, 3)))
    assert ours.is_sparse and ours.layout is chainrule.sparse_coo and theirs.is_sparse
    assert ours.is_coalesced() == theirs.is_coalesced() is False
    assert ours._nnz() == theirs._nnz() == 4
    _same(ours.to_dense(), theirs.to_dense())
    for tensor in (ours, theirs):
        with pytest.raises(RuntimeError, match="Cannot get indices on an uncoalesced tensor"):
            tensor.indices()
        with pytest.raises(RuntimeError, match="Cannot get values on an uncoalesced tensor"):
            tensor.values()
    c, tc = ours.coalesce(), theirs.coalesce()
    assert c.is_coalesced() and c._nnz() == tc._nnz() == 3
    assert c.indices().tolist() == tc.indices().tolist() and c.values().tolist() == tc.values().tolist()
    assert repr(c).replace("chainrule", "torch") == repr(tc)


@pytest.mark.parametrize("make", [
    lambda lib: lib.sparse_coo_tensor([[0, 2]], [1.5, -2.0]),
    lambda lib: lib.sparse_coo_tensor(lib.tensor([[0, 1]]), lib.ones(2, 3)),
    lambda lib: lib.sparse_coo_tensor([[0, 1], [1, 0]], [1, 2], (2, 2), dtype=lib.float64),
    lambda lib: lib.tensor([[0.0, 2.0, 0.0], [3.0, 0.0, 0.0]]).to_sparse(),
    lambda lib: lib.tensor([[[0.0, 1.0], [0.0, 0.0]], [[2.0, 0.0], [0.0, 0.0]]]).to_sparse(sparse_dim=2),
], ids=["size_inferred", "dense_values", "dtype", "from_dense", "hybrid"])
def test_shapes_dtypes_and_dense_values_match_torch(make):
    ours, theirs = _both(make)
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
    assert ours.sparse_dim() == theirs.sparse_dim() and ours.dense_dim() == theirs.dense_dim()
    _same(ours.to_dense(), theirs.to_dense())
    if theirs.is_coalesced():
        assert ours.indices().tolist() == theirs.indices().tolist()
        assert ours.values().tolist() == theirs.values().tolist()


def test_gcn_layer_products_and_gradients_match_torch():
    """A GCN layer: D^-1/2 (A + I) D^-1/2 built from a COO edge list, then spmm with the
    features times the weight; the weight's gradient through the sparse product."""
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [1, 3]]).T
    features = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    weight = np.random.default_rng(1).standard_normal((5, 2)).astype(np.float32)

    def layer(lib):
        adj = lib.sparse_coo_tensor(lib.tensor(edges), lib.ones(edges.shape[1]), (4, 4))
        adj = lib.eye(4) + adj
        degree = lib.sqrt(1 / lib.sum(adj, dim=1))
        norm = lib.diag(degree).to_sparse()
        adj = (norm @ adj @ norm).to_sparse()
        w = lib.tensor(weight, requires_grad=True)
        support = lib.mm(lib.tensor(features).to_sparse(), w)
        out = lib.spmm(adj, support)
        (out ** 2).sum().backward()
        return out, w.grad, adj

    (out, grad, adj), (tout, tgrad, tadj) = _both(layer)
    assert not out.is_sparse and not tout.is_sparse
    _same(out, tout)
    _same(grad, tgrad)
    _same(adj.to_dense(), tadj.to_dense())
    _same(chainrule.sparse.mm(adj, chainrule.ones(4, 1)), torch.sparse.mm(tadj, torch.ones(4, 1)))


def test_moving_keeps_the_layout():
    sparse = chainrule.sparse_coo_tensor([[0, 1]], [1.0, 2.0], (3,))
    moved = sparse.to(chainrule.float64)
    assert moved.is_sparse and moved.dtype == chainrule.float64 and moved._indices().dtype == chainrule.int64
    assert sparse.to("cpu") is sparse
    assert chainrule.ones(2).layout is chainrule.strided and not chainrule.ones(2).is_sparse


def test_errors():
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match="indices and values must have same nnz"):
            lib.sparse_coo_tensor([[0, 1]], [1.0, 2.0, 3.0], (2,))
        with pytest.raises(RuntimeError, match="'len\\(size\\) == sparse_dim \\+ dense_dim' is not satisfied"):
            lib.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2,))
    with pytest.raises(RuntimeError, match="size is inconsistent with indices: for dim 0, size is 2 but found index 5"):
        chainrule.sparse_coo_tensor([[0, 5]], [1.0, 2.0], (2,))
    with pytest.raises(RuntimeError, match="found negative index -1 for dim 0"):
        chainrule.sparse_coo_tensor([[0, -1]], [1.0, 2.0], (2,))
    with pytest.raises(RuntimeError, match="stores sparse tensors densely"):
        chainrule.sparse_coo_tensor([[0], [0]], [1.0], (100_000, 100_000))


@pytest.mark.filterwarnings("ignore:.*is deprecated")
def test_legacy_sparse_constructors_match_torch():
    """pygcn's ``torch.sparse.FloatTensor(indices, values, shape)``: the values keep their dtype
    (whatever the type's name, as in torch), sizes alone give an empty sparse tensor, and
    isinstance tells the sparse legacy types from the dense ones."""
    for lib in (chainrule, torch):
        indices = lib.tensor([[0, 1, 1], [1, 0, 1]])
        for values in (lib.tensor([1.0, 2.0, 3.0]), lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64),
                       lib.tensor([1, 2, 3])):
            built = lib.sparse.FloatTensor(indices, values, lib.Size([2, 2]))
            assert built.is_sparse and str(built.dtype).split(".")[1] == str(values.dtype).split(".")[1]
            assert built.to_dense().tolist() == [[0, 1], [2, 3]]
        inferred = lib.sparse.FloatTensor(indices, lib.tensor([1.0, 2.0, 3.0]))
        assert tuple(inferred.shape) == (2, 2) and inferred.type() == "torch.sparse.FloatTensor"
        assert isinstance(inferred, lib.sparse.FloatTensor) and not isinstance(inferred, lib.sparse.DoubleTensor)
        assert not isinstance(inferred, lib.FloatTensor) and not isinstance(inferred.to_dense(), lib.sparse.FloatTensor)
        empty = lib.sparse.FloatTensor(2, 3)
        assert empty.is_sparse and tuple(empty.shape) == (2, 3) and empty._nnz() == 0
        assert str(empty.dtype).endswith("float32") and empty.to_dense().tolist() == [[0.0] * 3] * 2
        assert tuple(lib.sparse.FloatTensor().shape) == (0,)
        assert str(lib.sparse.LongTensor(lib.Size([4])).dtype).endswith("int64")
        with pytest.raises(TypeError):
            lib.sparse.FloatTensor([1.0, 2.0])
        with pytest.raises(TypeError):
            lib.sparse.FloatTensor(indices, [1.0, 2.0, 3.0], (2, 2))
    chainrule.set_warn_always(True)  # torch's warning is TORCH_WARN_ONCE: this asks for it again
    try:
        with pytest.warns(UserWarning, match="is deprecated"):
            chainrule.sparse.FloatTensor(chainrule.tensor([[0]]), chainrule.tensor([1.0]), (2,))
    finally:
        chainrule.set_warn_always(False)


@pytest.mark.parametrize("make", [
    lambda lib: lib.sparse_coo_tensor(lib.zeros(2, 0, dtype=lib.int64), lib.zeros(0), (2, 3)),
    lambda lib: lib.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2, 2), dtype=lib.float64),
    lambda lib: lib.sparse_coo_tensor([[0, 1]], [1, 2], (3,), dtype=lib.int32),
    lambda lib: lib.sparse_coo_tensor([[0, 1]], [True, False], (3,)),
    lambda lib: lib.sparse_coo_tensor([[0, 1], [1, 0]], lib.arange(240.0).view(2, 3, 40), (2, 2, 3, 40)),
    lambda lib: lib.sparse_coo_tensor(lib.arange(300).view(1, 300), lib.arange(300.0), (300,)),
], ids=["empty", "float64", "int32", "bool", "hybrid_wide", "summarised"])
def test_repr_matches_torch(make):
    """torch's sparse repr: parts without their own dtype, an empty part's size, the suffixes on a
    new line with a non-default dtype before the layout."""
    ours, theirs = _both(make)
    assert repr(ours).replace("chainrule.", "torch.") == repr(theirs)


def test_the_invariant_checking_switch_keeps_torchs_state_as_context_decorator_and_calls():
    # torch 2.x warns that sparse invariant checks are implicitly off and advises this switch;
    # chainrule always checks, but scripts that follow the advice must run
    states = {}
    for lib in (chainrule, torch):
        switch = lib.sparse.check_sparse_tensor_invariants
        seen = [switch.is_enabled()]
        with switch():
            seen.append(switch.is_enabled())
            with switch(enable=False):
                seen.append(switch.is_enabled())
            seen.append(switch.is_enabled())
        seen.append(switch.is_enabled())
        seen.append(switch(False)(switch.is_enabled)())
        switch.enable()
        seen.append(switch.is_enabled())
        switch.disable()
        seen.append(switch.is_enabled())
        once = switch()
        with once, pytest.raises(RuntimeError, match="already activated"):
            with once:
                pass
        states[lib] = seen
    assert states[chainrule] == states[torch] == [False, True, False, True, False, False, True, False]
    with chainrule.sparse.check_sparse_tensor_invariants(enable=False):  # checked all the same
        with pytest.raises(RuntimeError, match="size is inconsistent with indices"):
            chainrule.sparse_coo_tensor([[0, 3]], [1.0, 2.0], (2,))
