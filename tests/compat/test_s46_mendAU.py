"""Session 46, lane mendAU: what the sparse COO lanes left, each compared with torch: a sparse tensor in a
later argument (torch.eq(dense, s), torch.where(cond, s, x), torch.mul(dense, s)), floor division,
torch.sum(..., out=), torch.equal, coalesced flags, gradients' layouts, and the missing functions."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

KINDS = {
    "coalesced": ([[0, 1, 1, 2], [2, 0, 2, 1]], [3.0, -4.0, 5.0, 0.5], (3, 3), True),
    "uncoalesced": ([[1, 0, 1, 2, 0], [2, 2, 2, 1, 0]], [3.0, -4.0, 5.0, 0.5, 2.0], (3, 3), False),
    "hybrid": ([[0, 2, 1]], [[1.0, -2.0], [3.0, 4.0], [-5.0, 6.0]], (3, 2), True),
}


def _sparse(lib, kind, dtype=None, requires_grad=False):
    indices, values, size, coalesce = KINDS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note that invariant checks are off
        made = lib.sparse_coo_tensor(lib.tensor(indices), lib.tensor(values, dtype=dtype or lib.float64), size)
    made = made.coalesce() if coalesce else made
    return made.requires_grad_() if requires_grad else made


def _dense(lib, shape=(3, 3), requires_grad=False):
    made = lib.tensor(np.linspace(-2.5, 3.5, int(np.prod(shape))).reshape(shape), dtype=lib.float64)
    return made.requires_grad_() if requires_grad else made


def _described(value):
    """What is compared: layout, shape, dtype, values (bits for float32), a sparse tensor's indices and
    coalesced flag, the node's name."""
    if isinstance(value, (tuple, list)):
        return tuple(_described(item) for item in value)
    if not hasattr(value, "layout"):
        return value
    layout = str(value.layout).split(".")[-1]
    detached = value.detach()
    node = type(value.grad_fn).__name__ if value.grad_fn is not None else None
    if layout == "sparse_coo":
        values = np.asarray(detached._values().tolist())
        return (layout, tuple(value.shape), str(value.dtype).split(".")[-1], detached._indices().tolist(),
                values.round(12).tolist(), value.is_coalesced(), node)
    return layout, tuple(value.shape), str(value.dtype).split(".")[-1], np.round(detached.tolist(), 12).tolist(), node


def _outcome(call, lib):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _described(call(lib))
    except Exception as error:  # noqa: BLE001  (the error itself is what is compared)
        return type(error).__name__, str(error).split(" If you are a Facebook employee")[0]


def _same(call):
    ours, theirs = _outcome(call, chainrule), _outcome(call, torch)
    assert ours == theirs


# ---- a sparse tensor after a dense one: torch's dispatcher picks the sparse kernel all the same
LATER_SPARSE = {
    "eq": lambda lib: lib.eq(_dense(lib), _sparse(lib, "coalesced")),
    "ne": lambda lib: lib.ne(_dense(lib), _sparse(lib, "uncoalesced")),
    "lt_method": lambda lib: _dense(lib).lt(_sparse(lib, "coalesced")),
    "max_two": lambda lib: lib.max(_dense(lib), _sparse(lib, "coalesced")),
    "maximum": lambda lib: lib.maximum(_dense(lib), _sparse(lib, "coalesced")),
    "minimum_method": lambda lib: _sparse(lib, "coalesced").minimum(_dense(lib)),
    "fmax": lambda lib: _sparse(lib, "coalesced").fmax(_dense(lib)),
    "where_middle": lambda lib: lib.where(_dense(lib) > 0, _sparse(lib, "coalesced"), _dense(lib)),
    "where_last": lambda lib: lib.where(_dense(lib) > 0, _dense(lib), _sparse(lib, "uncoalesced")),
    "where_number": lambda lib: lib.where(_dense(lib) > 0, _sparse(lib, "coalesced"), 2.0),
    "where_method": lambda lib: _sparse(lib, "coalesced").where(_dense(lib) > 0, _dense(lib)),
    "equal": lambda lib: lib.equal(_sparse(lib, "coalesced"), _sparse(lib, "coalesced")),
    "equal_dense_first": lambda lib: lib.equal(_dense(lib), _sparse(lib, "coalesced")),
    "equal_method": lambda lib: _sparse(lib, "uncoalesced").equal(_dense(lib)),
    "mul_dense_first": lambda lib: lib.mul(_dense(lib), _sparse(lib, "uncoalesced")),
    "multiply_dense_first": lambda lib: lib.multiply(_dense(lib), _sparse(lib, "coalesced")),
    "mul_hybrid_dense_first": lambda lib: lib.mul(_dense(lib, (3, 2)), _sparse(lib, "hybrid")),
    "sub_dense_first": lambda lib: lib.sub(_dense(lib), _sparse(lib, "uncoalesced")),
    "sum_out": lambda lib: lib.sum(_sparse(lib, "coalesced"), 0, out=lib.empty(3, dtype=lib.float64)),
    "sum_dim_out": lambda lib: lib.sum(_sparse(lib, "uncoalesced"), dim=1, out=lib.empty(3, dtype=lib.float64)),
    "sum": lambda lib: lib.sum(_sparse(lib, "uncoalesced"), 0),
}


@pytest.mark.parametrize("name", sorted(LATER_SPARSE))
def test_sparse_in_a_later_argument(name):
    _same(LATER_SPARSE[name])


def _in_place(operation):
    def call(lib):
        target = _sparse(lib, "uncoalesced")
        result = operation(target)
        assert result is target
        return target
    return call


def _floor_divide_in_place(target):
    target //= 2
    return target


FLOOR = {
    "operator": lambda lib: _sparse(lib, "uncoalesced") // 2,
    "operator_coalesced": lambda lib: _sparse(lib, "coalesced") // -3,
    "zero_dim": lambda lib: lib.floor_divide(_sparse(lib, "uncoalesced"), lib.tensor(2.0, dtype=lib.float64)),
    "dense_divisor": lambda lib: _sparse(lib, "coalesced") // _dense(lib),
    "sparse_divisor": lambda lib: lib.floor_divide(_sparse(lib, "coalesced"), _sparse(lib, "coalesced")),
    "sparse_dividend_of_number": lambda lib: 2 // _sparse(lib, "coalesced"),
    "dense_dividend": lambda lib: _dense(lib) // _sparse(lib, "coalesced"),
    "function_dense_dividend": lambda lib: lib.floor_divide(_dense(lib), _sparse(lib, "coalesced")),
    "in_place": _in_place(lambda target: target.floor_divide_(2)),
    "in_place_operator": _in_place(_floor_divide_in_place),
    "in_place_dense_divisor": _in_place(lambda target: target.floor_divide_(_dense(chainrule if isinstance(
        target, chainrule.Tensor) else torch))),
    "grad_node": lambda lib: _sparse(lib, "coalesced", requires_grad=True) // 2,
}


@pytest.mark.parametrize("name", sorted(FLOOR))
def test_floor_division(name):
    _same(FLOOR[name])


def test_refused_in_place_floor_division_leaves_the_tensor():
    target = _sparse(chainrule, "uncoalesced")
    before = target._values().tolist(), target._indices().tolist(), target._version
    with pytest.raises(RuntimeError, match="Sparse floor division"):
        target.floor_divide_(_dense(chainrule))
    assert (target._values().tolist(), target._indices().tolist(), target._version) == before


def _gradients(build, *names):
    """The gradients of the leaves ``build`` makes (a dict by name) of the sum of its result's values."""
    def call(lib):
        leaves = {}
        result = build(lib, leaves)
        (result.to_dense() if result.layout == lib.sparse_coo else result).sum().backward()
        return tuple(leaves[name].grad for name in names)
    return call


def _leaf(leaves, name, tensor):
    leaves[name] = tensor
    return tensor


FLAGS = {
    "mul_in_place_number": lambda lib: _sparse(lib, "coalesced").mul_(2),
    "mul_in_place_zero_dim": lambda lib: _sparse(lib, "coalesced").mul_(lib.tensor(2.0, dtype=lib.float64)),
    "mul_in_place_dense": lambda lib: _sparse(lib, "coalesced").mul_(_dense(lib)),
    "mul_in_place_sparse": lambda lib: _sparse(lib, "coalesced").mul_(_sparse(lib, "coalesced")),
    "mul_in_place_hybrid": lambda lib: _sparse(lib, "hybrid").mul_(3),
    "mul_in_place_hybrid_dense": lambda lib: _sparse(lib, "hybrid").mul_(_dense(lib, (3, 2))),
    "mul_in_place_one_entry": lambda lib: _sparse(lib, "coalesced").narrow_copy(0, 0, 1).mul_(2),
    "mul": lambda lib: _sparse(lib, "coalesced").mul(2),
    "narrow_copy": lambda lib: _sparse(lib, "coalesced").narrow_copy(1, 1, 2),
    "narrow_copy_rows": lambda lib: _sparse(lib, "coalesced").narrow_copy(0, 1, 2),
    "narrow_copy_uncoalesced": lambda lib: _sparse(lib, "uncoalesced").narrow_copy(1, 2, 1),
    "narrow_copy_hybrid": lambda lib: _sparse(lib, "hybrid").narrow_copy(0, 0, 2),
    "narrow_copy_dense_dim": lambda lib: _sparse(lib, "hybrid").narrow_copy(1, 1, 1),
    "product_gradients": _gradients(
        lambda lib, leaves: _leaf(leaves, "a", _sparse(lib, "coalesced", requires_grad=True))
        * _leaf(leaves, "b", (_sparse(lib, "coalesced") * 2).detach().requires_grad_()), "a", "b"),
}


@pytest.mark.parametrize("name", sorted(FLAGS))
def test_coalesced_flags(name):
    _same(FLAGS[name])


def _hybrid_matrix(lib):
    """A 2-d sparse COO tensor with one sparse and one dense dim."""
    return lib.sparse_coo_tensor(lib.tensor([[0, 2]]), lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), (3, 3))


PRODUCTS = {
    "mm_hybrid_dense": lambda lib: lib.sparse.mm(_sparse(lib, "hybrid"), _dense(lib, (2, 2))),
    "addmm_hybrid": lambda lib: lib.sparse.addmm(_dense(lib, (2, 2)), _hybrid_3d(lib), _dense(lib, (3, 2))),
    "torch_addmm_hybrid": lambda lib: lib.addmm(_dense(lib, (2, 2)), _hybrid_3d(lib), _dense(lib, (3, 2))),
    "addmm_one_sparse_dim": lambda lib: lib.sparse.addmm(_dense(lib, (3, 2)), _hybrid_matrix(lib), _dense(lib, (3, 2))),
    "mm_sparse_hybrid_3d": lambda lib: lib.sparse.mm(_sparse(lib, "coalesced"), _hybrid_3d(lib)),
    "mm_hybrid_3d_sparse": lambda lib: lib.sparse.mm(_hybrid_3d(lib), _sparse(lib, "coalesced")),
    "mm_hybrid_3d_twice": lambda lib: lib.sparse.mm(_hybrid_3d(lib), _hybrid_3d(lib)),
    "mm_hybrid_matrices": lambda lib: lib.sparse.mm(_hybrid_matrix(lib), _hybrid_matrix(lib)),
    "mm_sparse_hybrid_matrix": lambda lib: lib.sparse.mm(_sparse(lib, "coalesced"), _hybrid_matrix(lib)),
    "mm_sparse_sparse": lambda lib: lib.sparse.mm(_sparse(lib, "coalesced"), _sparse(lib, "uncoalesced")),
}


def _hybrid_3d(lib):
    """A (2, 3, 2) sparse COO tensor: two sparse dims, one dense."""
    return lib.sparse_coo_tensor(lib.tensor([[0, 1, 1], [2, 0, 2]]), lib.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
                                                                            dtype=lib.float64), (2, 3, 2))


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_sparse_products_of_hybrid_tensors(name):
    _same(PRODUCTS[name])


DENSE_FACTOR = {
    "sparse_first": _gradients(lambda lib, leaves: _sparse(lib, "coalesced") * _leaf(leaves, "b", _dense(lib, requires_grad=True)),
                               "b"),
    "dense_first": _gradients(lambda lib, leaves: _leaf(leaves, "b", _dense(lib, requires_grad=True)) * _sparse(lib, "coalesced"),
                              "b"),
    "function_dense_first": _gradients(
        lambda lib, leaves: lib.mul(_leaf(leaves, "b", _dense(lib, requires_grad=True)), _sparse(lib, "uncoalesced")), "b"),
    "duplicates": _gradients(lambda lib, leaves: _sparse(lib, "uncoalesced") * _leaf(leaves, "b", _dense(lib, requires_grad=True)),
                             "b"),
    "both_leaves": _gradients(
        lambda lib, leaves: _leaf(leaves, "a", _sparse(lib, "uncoalesced", requires_grad=True))
        * _leaf(leaves, "b", _dense(lib, requires_grad=True)), "a", "b"),
    "hybrid": _gradients(lambda lib, leaves: _sparse(lib, "hybrid") * _leaf(leaves, "b", _dense(lib, (3, 2), requires_grad=True)),
                         "b"),
    "float32_factor": _gradients(
        lambda lib, leaves: _sparse(lib, "coalesced", dtype=lib.float32)
        * _leaf(leaves, "b", _dense(lib).float().detach().requires_grad_()), "b"),
    "used_twice": _gradients(
        lambda lib, leaves: (_sparse(lib, "coalesced") * _leaf(leaves, "b", _dense(lib, requires_grad=True))
                             + _sparse(lib, "uncoalesced") * leaves["b"]), "b"),
    "node": lambda lib: _sparse(lib, "coalesced") * _dense(lib, requires_grad=True),
    "mismatch": lambda lib: _sparse(lib, "coalesced") * _dense(lib, (3, 2)),
    "mismatch_dense_first": lambda lib: _dense(lib, (2, 3)) * _sparse(lib, "coalesced"),
    "mismatch_longer": lambda lib: _sparse(lib, "coalesced") * _dense(lib, (3, 4)),
}


@pytest.mark.parametrize("name", sorted(DENSE_FACTOR))
def test_dense_factor_of_a_sparse_product(name):
    _same(DENSE_FACTOR[name])


def test_dense_factor_gradient_is_the_dense_products():
    """The sparse gradient holds, summed, what the same product of dense tensors gives (torch's gradcheck,
    as chainrule's, refuses the sparse layout of an input's gradient)."""
    weights = chainrule.tensor(np.arange(9.0).reshape(3, 3) / 7)
    factor = _dense(chainrule, requires_grad=True)
    ((_sparse(chainrule, "uncoalesced") * factor).to_dense() * weights).sum().backward()
    dense_factor = _dense(chainrule, requires_grad=True)
    ((_sparse(chainrule, "uncoalesced").to_dense() * dense_factor) * weights).sum().backward()
    assert factor.grad.layout == chainrule.sparse_coo
    assert np.allclose(factor.grad.to_dense().tolist(), dense_factor.grad.tolist(), rtol=0, atol=1e-12)


def _resized(size, sparse_dim, dense_dim, kind="uncoalesced"):
    def call(lib):
        target = _sparse(lib, kind)
        kept = target._values().numel()
        result = target.sparse_resize_(size, sparse_dim, dense_dim)
        assert result is target
        if target._values().numel() <= kept:
            return target
        # Growing a dense dim resizes torch's values storage: the new elements are uninitialised memory,
        # so only the elements the storage held before are compared.
        return (tuple(target.shape), target.sparse_dim(), target.dense_dim(), target._indices(),
                target._values().flatten()[:kept], target.is_coalesced())
    return call


def _empty(lib):
    return lib.sparse_coo_tensor(lib.zeros(2, 0, dtype=lib.int64), lib.zeros(0, dtype=lib.float64), (3, 3))


def _backward_of(call):
    def run(lib):
        result = call(lib)
        result.to_dense().sum().backward()
    return run


NEW_FUNCTIONS = {
    "smm": lambda lib: lib.smm(_sparse(lib, "coalesced"), _dense(lib, (3, 2))),
    "smm_uncoalesced": lambda lib: lib.smm(_sparse(lib, "uncoalesced"), _dense(lib, (3, 4))),
    "smm_method": lambda lib: _sparse(lib, "uncoalesced").smm(_dense(lib, (3, 2))),
    "smm_float32": lambda lib: lib.smm(_sparse(lib, "uncoalesced", dtype=lib.float32) * 0.37,
                                       _dense(lib, (3, 2)).float() / 3),
    "smm_empty": lambda lib: lib.smm(_empty(lib), _dense(lib, (3, 2))),
    "smm_dense_first": lambda lib: lib.smm(_dense(lib), _dense(lib)),
    "smm_sparse_second": lambda lib: lib.smm(_sparse(lib, "coalesced"), _sparse(lib, "coalesced")),
    "smm_sizes": lambda lib: lib.smm(_sparse(lib, "coalesced"), _dense(lib, (2, 2))),
    "smm_dtypes": lambda lib: lib.smm(_sparse(lib, "coalesced"), _dense(lib).float()),
    "smm_backward": _backward_of(lambda lib: lib.smm(_sparse(lib, "coalesced"), _dense(lib, requires_grad=True))),
    "smm_node": lambda lib: lib.smm(_sparse(lib, "coalesced"), _dense(lib, requires_grad=True)),
    "sspaddmm": lambda lib: lib.sspaddmm(_sparse(lib, "uncoalesced"), _sparse(lib, "coalesced"), _dense(lib)),
    "sspaddmm_scaled": lambda lib: lib.sspaddmm(_sparse(lib, "coalesced"), _sparse(lib, "uncoalesced"), _dense(lib),
                                                beta=2, alpha=-0.5),
    "sspaddmm_method": lambda lib: _sparse(lib, "coalesced").sspaddmm(_sparse(lib, "uncoalesced"), _dense(lib), alpha=3),
    "sspaddmm_input_size": lambda lib: lib.sspaddmm(_sparse(lib, "coalesced"), _sparse(lib, "coalesced"),
                                                    _dense(lib, (3, 2))),
    "sspaddmm_backward": _backward_of(lambda lib: lib.sspaddmm(_sparse(lib, "coalesced"), _sparse(lib, "coalesced"),
                                                               _dense(lib, requires_grad=True))),
    "resize_grow": _resized((4, 5), 2, 0),
    "resize_grow_coalesced": _resized((3, 7), 2, 0, "coalesced"),
    "resize_grow_dense_dim": _resized((5, 3), 1, 1, "hybrid"),
    "resize_shrink": _resized((3, 2), 2, 0),
    "resize_shrink_dense_dim": _resized((3, 1), 1, 1, "hybrid"),
    "resize_sparse_dims": _resized((3, 3, 1), 3, 0),
    "resize_dense_dims": _resized((3, 3, 1), 2, 1),
    "resize_length": _resized((3, 3), 2, 1),
    "resize_empty": lambda lib: _empty(lib).sparse_resize_((2, 1, 4), 1, 2),
    "resize_dense": lambda lib: _dense(lib).sparse_resize_((3, 3), 2, 0),
}


@pytest.mark.parametrize("name", sorted(NEW_FUNCTIONS))
def test_smm_sspaddmm_sparse_resize_(name):
    _same(NEW_FUNCTIONS[name])


def test_sparse_resize_refusal_leaves_the_tensor():
    target = _sparse(chainrule, "coalesced")
    before = target._indices().tolist(), target._values().tolist(), tuple(target.shape), target._version
    with pytest.raises(RuntimeError, match="shrinking"):
        target.sparse_resize_((2, 3), 2, 0)
    assert (target._indices().tolist(), target._values().tolist(), tuple(target.shape), target._version) == before


DIV_NODES = {
    "default": lambda lib: lib.div(_dense(lib, requires_grad=True), 2.0),
    "written_none": lambda lib: lib.div(_dense(lib, requires_grad=True), 2.0, rounding_mode=None),
    "written_none_tensor": lambda lib: lib.div(_dense(lib, requires_grad=True), _dense(lib) + 9, rounding_mode=None),
    "divide_written_none": lambda lib: lib.divide(_dense(lib), _dense(lib, requires_grad=True) + 9, rounding_mode=None),
    "method_written_none": lambda lib: _dense(lib, requires_grad=True).div(3, rounding_mode=None),
    "in_place_written_none": lambda lib: (_dense(lib, requires_grad=True) * 1).div_(3, rounding_mode=None),
    "in_place_default": lambda lib: (_dense(lib, requires_grad=True) * 1).div_(3),
    "operator": lambda lib: _dense(lib, requires_grad=True) / 3,
    "true_divide": lambda lib: lib.true_divide(_dense(lib, requires_grad=True), 3),
    "integers_written_none": lambda lib: lib.div(lib.tensor([3, -7]), 2, rounding_mode=None),
    "floor": lambda lib: lib.div(_dense(lib, requires_grad=True), 3, rounding_mode="floor"),
    "bad_mode": lambda lib: lib.div(_dense(lib), 3, rounding_mode="round"),
    "out_written_none": lambda lib: lib.div(_dense(lib), 3, rounding_mode=None, out=lib.empty(3, 3, dtype=lib.float64)),
    "sparse_number": lambda lib: _sparse(lib, "coalesced", requires_grad=True) / 2,
    "sparse_zero_dim": lambda lib: _sparse(lib, "uncoalesced", requires_grad=True) / lib.tensor(2.0, dtype=lib.float64),
    "sparse_written_none": lambda lib: lib.div(_sparse(lib, "coalesced", requires_grad=True), 2, rounding_mode=None),
    "sparse_zero_dim_written_none": lambda lib: lib.div(_sparse(lib, "uncoalesced", requires_grad=True),
                                                        lib.tensor(2.0, dtype=lib.float64), rounding_mode=None),
    "sparse_true_divide": lambda lib: lib.true_divide(_sparse(lib, "coalesced", requires_grad=True), 2),
}


@pytest.mark.parametrize("name", sorted(DIV_NODES))
def test_div_node_of_a_written_out_rounding_mode(name):
    _same(DIV_NODES[name])


def test_div_written_none_gradient():
    """DivBackward2 of a written-out None is still true division's derivative."""
    for lib in (chainrule, torch):
        a, b = _dense(lib, requires_grad=True), (_dense(lib) + 9).requires_grad_()
        lib.div(a, b, rounding_mode=None).sum().backward()
        expected_a, expected_b = 1 / (_dense(lib) + 9), -_dense(lib) / (_dense(lib) + 9) ** 2
        assert np.allclose(a.grad.tolist(), expected_a.tolist()) and np.allclose(b.grad.tolist(), expected_b.tolist())
