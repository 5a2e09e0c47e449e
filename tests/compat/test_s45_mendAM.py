"""Session 45, lane mendAM: sparse COO tensors where torch keeps them sparse or refuses them — the
function forms of the shape ops, permute/movedim/.T/.mT, and the methods whose dense versions
answered where torch raises — each compared with torch."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

# (indices, values, size) of a 2-d, a hybrid (2 sparse dims + 1 dense) and a 3-d sparse tensor; each has
# a repeated index, so that its uncoalesced form differs from its coalesced one
PARTS = {
    "2d": ([[0, 1, 1, 2, 0], [2, 0, 2, 1, 2]], [1.0, 2.0, 3.0, 4.0, 5.0], (3, 4)),
    "hybrid": ([[0, 2, 1, 0], [1, 0, 2, 1]], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]], (3, 3, 2)),
    "3d": ([[0, 1, 1, 0], [1, 0, 2, 1], [0, 1, 1, 0]], [1.0, 2.0, 3.0, 4.0], (2, 3, 2)),
}
KINDS = [(kind, coalesced) for kind in PARTS for coalesced in (True, False)]


def _sparse(lib, kind, coalesced, requires_grad=False):
    indices, values, size = PARTS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note that its invariant checks are off
        tensor = lib.sparse_coo_tensor(lib.tensor(indices), lib.tensor(values, dtype=lib.float64), size)
    tensor = tensor.coalesce() if coalesced else tensor
    return tensor.requires_grad_() if requires_grad else tensor


def _described(result):
    """A result as comparable data: a tensor's layout, shape, values (and, sparse, its parts and
    coalesced flag); a tuple's items; anything else as it is."""
    if isinstance(result, (tuple, list)):
        return tuple(_described(item) for item in result)
    if not hasattr(result, "layout"):
        return result
    layout = str(result.layout).split(".")[-1]
    if not result.is_sparse:
        return layout, tuple(result.shape), result.detach().tolist()
    return (layout, tuple(result.shape), result.to_dense().detach().tolist(), result.is_coalesced(),
            result._indices().tolist(), result._values().detach().tolist())


def _outcome(lib, op, *args):
    try:
        return _described(op(lib, *args))
    except Exception as error:  # noqa: BLE001  (the error itself is what is compared)
        # torch's NotImplementedError goes on to list its backends: its first sentences are compared
        return type(error).__name__, str(error).split(" If you are a Facebook")[0]


def _same_as_torch(op, *args):
    ours, theirs = _outcome(chainrule, op, *args), _outcome(torch, op, *args)
    assert ours == theirs


FUNCTION_FORMS = {
    "reshape": lambda lib, s: lib.reshape(s, (-1,)),
    "reshape_same": lambda lib, s: lib.reshape(s, tuple(s.shape)),
    "flatten": lambda lib, s: lib.flatten(s),
    "flatten_one_dim": lambda lib, s: lib.flatten(s, 1, 1),
    "flip": lambda lib, s: lib.flip(s, (0,)),
    "roll": lambda lib, s: lib.roll(s, 1, 0),
    "roll_flat": lambda lib, s: lib.roll(s, 1),
    "unflatten": lambda lib, s: lib.unflatten(s, 0, (1, -1)),
    "squeeze": lambda lib, s: lib.squeeze(s),
    "squeeze_dim": lambda lib, s: lib.squeeze(s, 0),
    "chunk": lambda lib, s: lib.chunk(s, 2),
    "split": lambda lib, s: lib.split(s, 1),
    "split_sizes": lambda lib, s: lib.split(s, [1, 2]),
    "tensor_split": lambda lib, s: lib.tensor_split(s, 2),
    "diagonal": lambda lib, s: lib.diagonal(s),
}


@pytest.mark.parametrize("kind,coalesced", KINDS)
@pytest.mark.parametrize("name", sorted(FUNCTION_FORMS))
def test_function_forms_refuse_or_keep_sparse_as_torch(name, kind, coalesced):
    _same_as_torch(lambda lib: FUNCTION_FORMS[name](lib, _sparse(lib, kind, coalesced)))


def _lib(tensor):
    return chainrule if isinstance(tensor, chainrule.Tensor) else torch


METHODS = {
    "squeeze": lambda s: s.squeeze(),
    "squeeze_dims": lambda s: s.squeeze(0, 1),
    "chunk": lambda s: s.chunk(2),
    "split": lambda s: s.split(1),
    "split_sizes": lambda s: s.split([1, 2]),
    "tensor_split": lambda s: s.tensor_split(2),
    "diagonal": lambda s: s.diagonal(),
    "max": lambda s: s.max(),
    "max_dim": lambda s: s.max(0),
    "min": lambda s: s.min(),
    "eq": lambda s: s.eq(1.0),
    "eq_tensor": lambda s: s.eq(s),
    "ne": lambda s: s.ne(1.0),
    "gt": lambda s: s.gt(1.0),
    "lt": lambda s: s.lt(1.0),
    "ge": lambda s: s.ge(1.0),
    "le": lambda s: s.le(1.0),
    "clamp": lambda s: s.clamp(0, 2),
    "clamp_min": lambda s: s.clamp(min=0),
    "clamp_tensor": lambda s: s.clamp(s.to_dense()),
    "clip": lambda s: s.clip(0, 1),
    "clamp_": lambda s: s.clone().clamp_(0, 1),
    "eq_": lambda s: s.clone().eq_(1.0),
    "softmax": lambda s: s.softmax(0),
    "log_softmax": lambda s: s.log_softmax(0),
    "masked_fill": lambda s: s.masked_fill(s.to_dense() > 1, 1.0),
    "masked_fill_scalar_mask": lambda s: s.masked_fill(s.to_dense().sum() > 1, 1.0),
    "masked_fill_broadcast_mask": lambda s: s.masked_fill(s.to_dense()[0] > 1, 1.0),
    "masked_fill_": lambda s: s.clone().masked_fill_(s.to_dense() > 1, 1.0),
    "numpy": lambda s: s.numpy(),
    "tolist": lambda s: s.tolist(),
    "data_ptr": lambda s: s.data_ptr(),
    "stride": lambda s: s.stride(),
    "stride_dim": lambda s: s.stride(-1),
    "stride_out_of_range": lambda s: s.stride(5),
    "is_contiguous": lambda s: s.is_contiguous(),
    "contiguous": lambda s: s.contiguous(),
    "contiguous_preserve": lambda s: s.contiguous(memory_format=_lib(s).preserve_format),
    "permute": lambda s: s.permute(1, 0, *range(2, s.dim())),
    "permute_list": lambda s: s.permute([1, 0, *range(2, s.dim())]),
    "permute_identity": lambda s: s.permute(*range(s.dim())),
    "permute_reversed": lambda s: s.permute(*reversed(range(s.dim()))),
    "permute_negative": lambda s: s.permute(-1, *range(s.dim() - 1)),
    "permute_length": lambda s: s.permute(0),
    "permute_duplicate": lambda s: s.permute(*([0] * s.dim())),
    "permute_out_of_range": lambda s: s.permute(5, *range(1, s.dim())),
    "movedim": lambda s: s.movedim(0, 1),
    "movedim_last": lambda s: s.movedim(0, -1),
    "movedim_out_of_range": lambda s: s.movedim(0, 5),
    "moveaxis": lambda s: s.moveaxis(1, 0),
    "T": lambda s: s.T,
    "mT": lambda s: s.mT,
    "transpose_last": lambda s: s.transpose(-2, -1),
    "permute_function": lambda s: _lib(s).permute(s, (1, 0, *range(2, s.dim()))),
    "movedim_function": lambda s: _lib(s).movedim(s, 1, 0),
}


@pytest.mark.parametrize("kind,coalesced", KINDS)
@pytest.mark.parametrize("name", sorted(METHODS))
def test_methods_refuse_or_keep_sparse_as_torch(name, kind, coalesced):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # .T of a 3-d tensor is deprecated, in both
        _same_as_torch(lambda lib: METHODS[name](_sparse(lib, kind, coalesced)))


PERMUTATIONS = [("2d", (1, 0)), ("3d", (2, 0, 1)), ("3d", (0, 2, 1)), ("hybrid", (1, 0, 2))]


@pytest.mark.parametrize("kind,dims", PERMUTATIONS)
def test_sparse_permute_gradient_matches_torch(kind, dims):
    weights = np.arange(1.0, 1.0 + np.prod(PARTS[kind][2])).reshape([PARTS[kind][2][d] for d in dims])
    grads = []
    for lib in (chainrule, torch):
        leaf = _sparse(lib, kind, True, requires_grad=True)
        result = leaf.permute(*dims)
        assert result.is_sparse
        (result.to_dense() * lib.tensor(weights)).sum().backward()
        grads.append((str(leaf.grad.layout).split(".")[-1], leaf.grad.to_dense().tolist()))
    assert grads[0] == grads[1]


@pytest.mark.parametrize("kind,dims", PERMUTATIONS)
def test_sparse_permute_passes_gradcheck_in_its_values(kind, dims):
    indices, values, size = PARTS[kind]

    def permuted(values):
        sparse = chainrule.sparse_coo_tensor(chainrule.tensor(indices), values, size)
        return sparse.permute(*dims).to_dense()

    values = chainrule.tensor(values, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(permuted, (values,))


def _other(lib, kind):
    """A second tensor of ``kind``'s size with other entries (uncoalesced)."""
    indices, values, size = PARTS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lib.sparse_coo_tensor(lib.tensor(indices)[:, :2].flip(1), lib.tensor(values[:2], dtype=lib.float64) * 10,
                                     size)


JOINS = {
    "cat": lambda lib, a, b: lib.cat([a, b]),
    "cat_last": lambda lib, a, b: lib.cat([a, b], -1),
    "cat_one": lambda lib, a, b: lib.cat([a]),
    "concat": lambda lib, a, b: lib.concat((b, a), 1),
    "cat_dense_second": lambda lib, a, b: lib.cat([a, b.to_dense()]),
    "cat_other_shape": lambda lib, a, b: lib.cat([a, lib.cat([b, b], -1)], 0),
    "cat_other_sparse_dim": lambda lib, a, b: lib.cat([a, b.to_dense().to_sparse(1)]),
    "cat_out_of_range": lambda lib, a, b: lib.cat([a, b], 5),
    "cat_other_dtype": lambda lib, a, b: lib.cat([a, b.float()]),
    "stack": lambda lib, a, b: lib.stack([a, b]),
    "stack_middle": lambda lib, a, b: lib.stack([a, b], 1),
    "stack_last": lambda lib, a, b: lib.stack([a, b], -1),
    "stack_dense_second": lambda lib, a, b: lib.stack([a, b.to_dense()]),
    "stack_other_shape": lambda lib, a, b: lib.stack([a, lib.cat([b, b])]),
    "stack_out_of_range": lambda lib, a, b: lib.stack([a, b], 6),
    "unbind": lambda lib, a, b: a.unbind(0),
    "unbind_last": lambda lib, a, b: a.unbind(-1),
    "unbind_function": lambda lib, a, b: lib.unbind(b, 1),
    "unbind_out_of_range": lambda lib, a, b: a.unbind(5),
}


@pytest.mark.parametrize("kind,coalesced", KINDS)
@pytest.mark.parametrize("name", sorted(JOINS))
def test_cat_stack_unbind_keep_sparse_as_torch(name, kind, coalesced):
    _same_as_torch(lambda lib: JOINS[name](lib, _sparse(lib, kind, coalesced), _other(lib, kind)))


@pytest.mark.parametrize("kind", sorted(PARTS))
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_sparse_stack_gradient_matches_torch(kind, dim):
    grads = []
    for lib in (chainrule, torch):
        a, b = _sparse(lib, kind, True, requires_grad=True), _other(lib, kind).coalesce().requires_grad_()
        result = lib.stack([a, b], dim)
        weights = lib.arange(1.0, 1.0 + result.numel(), dtype=lib.float64).reshape(result.shape)
        (result.to_dense() * weights).sum().backward()
        grads.append([(str(t.grad.layout).split(".")[-1], t.grad.to_dense().tolist()) for t in (a, b)])
    assert grads[0] == grads[1]


@pytest.mark.parametrize("join", ["cat", "unbind"])
def test_sparse_cat_and_unbind_backward_refused_as_torch(join):
    def backward(lib):
        a, b = _sparse(lib, "2d", True, requires_grad=True), _other(lib, "2d")
        result = lib.cat([b, a]) if join == "cat" else a.unbind(0)[1]
        result.to_dense().sum().backward()
        return a.grad

    _same_as_torch(backward)


def test_sparse_stack_passes_gradcheck_in_its_values():
    indices, values, size = PARTS["hybrid"]

    def stacked(values):
        sparse = chainrule.sparse_coo_tensor(chainrule.tensor(indices), values, size)
        return chainrule.stack([sparse, sparse * 2.0], 2).to_dense()

    values = chainrule.tensor(values, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(stacked, (values,))


CONSTRUCTIONS = {
    "indices_1d": lambda lib: lib.sparse_coo_tensor(lib.tensor([0, 1]), lib.tensor([1.0, 2.0]), (3,)),
    "indices_1d_size_fits": lambda lib: lib.sparse_coo_tensor(lib.tensor([0, 1]), lib.tensor([1.0, 2.0]), (3, 3)),
    "indices_1d_no_size": lambda lib: lib.sparse_coo_tensor(lib.tensor([0, 1]), lib.tensor([1.0, 2.0])),
    "indices_0d": lambda lib: lib.sparse_coo_tensor(lib.tensor(0), lib.tensor([1.0, 2.0]), (3,)),
    "indices_0d_no_size": lambda lib: lib.sparse_coo_tensor(lib.tensor(0), lib.tensor([1.0, 2.0])),
    "indices_3d": lambda lib: lib.sparse_coo_tensor(lib.tensor([[[0, 1]]]), lib.tensor([1.0, 2.0]), (3,)),
    "negative_size": lambda lib: lib.sparse_coo_tensor(lib.tensor([[0], [1]]), lib.tensor([1.0]), (-1, 3)),
    "negative_size_length": lambda lib: lib.sparse_coo_tensor(lib.tensor([[0], [1]]), lib.tensor([1.0]), (-1, 3, 4)),
    "negative_size_nnz": lambda lib: lib.sparse_coo_tensor(lib.tensor([[0], [1]]), lib.tensor([1.0, 2.0]), (-1, 3)),
    "negative_size_empty": lambda lib: lib.sparse_coo_tensor(lib.zeros(2, 0, dtype=lib.long), lib.zeros(0), (-1, 3)),
    "negative_dense_size": lambda lib: lib.sparse_coo_tensor(lib.tensor([[0], [1]]), lib.tensor([[1.0]]), (2, 3, -1)),
    "length": lambda lib: lib.sparse_coo_tensor(lib.tensor([[0], [1]]), lib.tensor([1.0]), (2, 3, 1)),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTIONS))
def test_construction_errors_as_torch(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same_as_torch(CONSTRUCTIONS[name])


@pytest.mark.parametrize("kind,coalesced", KINDS)
def test_assert_close_compares_sparse_tensors_without_their_numpy(kind, coalesced):
    # (numpy() of a sparse tensor is refused, as torch's: assert_close reads its values another way)
    for lib in (chainrule, torch):
        sparse = _sparse(lib, kind, coalesced)
        lib.testing.assert_close(sparse, sparse.clone())
        with pytest.raises(AssertionError):
            lib.testing.assert_close(sparse, sparse * 2)


def test_retained_sparse_gradient_is_cloned_not_made_contiguous():
    # (contiguous() of a sparse tensor is refused, as torch's: a retained sparse gradient is cloned)
    outcomes = []
    for lib in (chainrule, torch):
        leaf = _sparse(lib, "2d", True, requires_grad=True)
        scaled = leaf * 2
        scaled.retain_grad()
        lib.sparse.sum(scaled).backward()
        outcomes.append((str(scaled.grad.layout).split(".")[-1], scaled.grad.to_dense().tolist(),
                         leaf.grad.to_dense().tolist()))
    assert outcomes[0] == outcomes[1]
