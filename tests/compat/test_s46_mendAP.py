"""Session 46, lane mendAP: sparse COO tensors through function forms, operators, torch.cat, torch.save/load,
torch.sparse.spdiags, torch.hspmm and Tensor.sparse_mask, each compared with torch."""

import io
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

KINDS = {
    "coalesced": ([[0, 1, 1, 2], [2, 0, 2, 1]], [3.0, -4.0, 5.0, 0.5], (3, 3), True),
    "uncoalesced": ([[1, 0, 1, 2, 0], [2, 2, 2, 1, 0]], [3.0, -4.0, 5.0, 0.5, 2.0], (3, 3), False),
    "hybrid": ([[0, 2, 1]], [[1.0, -2.0], [3.0, 4.0], [-5.0, 6.0]], (3, 2), True),
    "3d": ([[0, 1, 1], [0, 2, 1], [1, 0, 2]], [1.0, -2.0, 3.0], (2, 3, 3), True),
}


def _sparse(lib, kind):
    indices, values, size, coalesce = KINDS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note that invariant checks are off
        made = lib.sparse_coo_tensor(lib.tensor(indices), lib.tensor(values, dtype=lib.float64), size)
    return made.coalesce() if coalesce else made


def _rounded(values: list) -> list:
    """``values`` to 12 decimals where they are floats: the two libraries' last bits may differ."""
    array = np.asarray(values)
    return (np.round(array, 12) if array.dtype.kind == "f" else array).tolist()


def _described(value):
    """What is compared: layout, shape, dtype, the dense values, and a sparse tensor's indices and flag."""
    if isinstance(value, (tuple, list)):
        return tuple(_described(item) for item in value)
    if not hasattr(value, "layout"):
        return value
    layout = str(value.layout).split(".")[-1]
    detached = value.detach()
    if layout == "sparse_coo":
        return (layout, tuple(value.shape), str(value.dtype).split(".")[-1], _rounded(detached.to_dense().tolist()),
                value.is_coalesced(), detached._indices().tolist(), value.requires_grad)
    if layout == "strided":
        return layout, tuple(value.shape), str(value.dtype).split(".")[-1], _rounded(detached.tolist()), value.requires_grad
    return layout, tuple(value.shape)


def _outcome(call, lib):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _described(call(lib))
    except Exception as error:  # noqa: BLE001  (the error itself is what is compared)
        # chainrule's dispatcher message stops where torch's mobile-build advice begins
        return type(error).__name__, str(error).split(" If you are a Facebook employee")[0]


def _same_as_torch(call):
    theirs = _outcome(call, torch)
    assert _outcome(call, chainrule) == theirs
    return theirs


FUNCTION_FORMS = {
    "max": lambda lib, s: lib.max(s),
    "min_dim": lambda lib, s: lib.min(s, 0),
    "Tensor.max": lambda lib, s: lib.Tensor.max(s),
    "eq": lambda lib, s: lib.eq(s, 1),
    "gt": lambda lib, s: lib.gt(s, 0),
    "operator ==": lambda lib, s: s == 1,
    "operator >": lambda lib, s: s > 0,
    "operator <=": lambda lib, s: s <= 0,
    "operator != sparse": lambda lib, s: s != s,
    "clamp": lambda lib, s: lib.clamp(s, min=0),
    "clip tensor": lambda lib, s: lib.clip(s, max=lib.tensor(1.0, dtype=lib.float64)),
    "softmax": lambda lib, s: lib.softmax(s, 0),
    "log_softmax": lambda lib, s: lib.log_softmax(s, -1),
    "F.softmax": lambda lib, s: lib.nn.functional.softmax(s, 0),
    "masked_fill": lambda lib, s: lib.masked_fill(s, s.to_dense() > 0, 1.0),
    "masked_fill broadcast mask": lambda lib, s: lib.masked_fill(s, lib.tensor(True), 1.0),
    "transpose": lambda lib, s: lib.transpose(s, 0, 1),
    "sum": lambda lib, s: lib.sum(s),
    "sum dim": lambda lib, s: lib.sum(s, 0),
    "sum input keyword": lambda lib, s: lib.sum(input=s),
    "abs": lambda lib, s: lib.abs(s),
    "abs operator": lambda lib, s: abs(s),
    "exp": lambda lib, s: lib.exp(s),
    "mul": lambda lib, s: lib.mul(s, 2.0),
    "sparse.sum dims": lambda lib, s: lib.sparse.sum(s, (0,)),
    "sparse.softmax": lambda lib, s: lib.sparse.softmax(s, 0),
    "cat dense then sparse": lambda lib, s: lib.cat([s.to_dense(), s]),
    "cat sparse then dense": lambda lib, s: lib.cat([s, s.to_dense()]),
    "cat sparse": lambda lib, s: lib.cat([s, s], 1),
    "stack dense then sparse": lambda lib, s: lib.stack([s.to_dense(), s]),
    "stack sparse then dense": lambda lib, s: lib.stack([s, s.to_dense()]),
    "2 @ sparse": lambda lib, s: 2 @ s,
    "sparse == None": lambda lib, s: s == None,  # noqa: E711 (the operator is what is compared)
    "2 - sparse": lambda lib, s: 2 - s,
    "2 / sparse": lambda lib, s: 2 / s,
    "sparse as a dict key": lambda lib, s: {s: 1}[s],
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("form", FUNCTION_FORMS)
def test_function_forms_answer_as_torch(form, kind):
    _same_as_torch(lambda lib: FUNCTION_FORMS[form](lib, _sparse(lib, kind)))


def test_function_forms_refuse_rather_than_densify():
    # the dense answers these gave before were numbers torch never gives
    assert _same_as_torch(lambda lib: lib.max(_sparse(lib, "coalesced")))[0] == "NotImplementedError"
    assert _same_as_torch(lambda lib: _sparse(lib, "coalesced") == 1)[0] == "NotImplementedError"
    assert _same_as_torch(lambda lib: lib.cat([_sparse(lib, "3d").to_dense(), _sparse(lib, "3d")]))[0] == (
        "NotImplementedError")


@pytest.mark.parametrize("size", [(3,), (3, 3), (2, 3, 3)])
def test_diag_refused_as_torch(size):
    def call(lib):
        dense = lib.arange(float(np.prod(size)), dtype=lib.float64).reshape(size)
        return lib.diag(dense.to_sparse())
    _same_as_torch(call)


def test_sparse_dispatch_is_invisible_to_modes_and_has_torch_function():
    seen = []

    class Recording(chainrule.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(types)
            return func(*args, **(kwargs or {}))

    s = _sparse(chainrule, "coalesced")
    assert not chainrule.overrides.has_torch_function((s,))
    assert not chainrule.overrides.has_torch_function_unary(s)
    with Recording():
        total = chainrule.add(s, s)
    assert total.layout is chainrule.sparse_coo
    assert seen == [()]  # as torch's mode sees a sparse tensor: a plain tensor, no overriding type


def test_sparse_dispatch_keeps_gradients():
    def grads(lib):
        values = lib.tensor([1.0, -2.0, 3.0], dtype=lib.float64, requires_grad=True)
        s = lib.sparse_coo_tensor(lib.tensor([[0, 1, 2], [1, 2, 0]]), values, (3, 3))
        out = lib.sum(lib.transpose(lib.mul(s, s), 0, 1).to_dense() * lib.arange(9.0, dtype=lib.float64).reshape(3, 3))
        out.backward()
        return values.grad
    _same_as_torch(grads)


def _round_trip(lib, obj, weights_only):
    buffer = io.BytesIO()
    lib.save(obj, buffer)
    buffer.seek(0)
    return lib.load(buffer, weights_only=weights_only)


@pytest.mark.parametrize("weights_only", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_save_load_keeps_sparse_layout(kind, weights_only):
    _same_as_torch(lambda lib: _round_trip(lib, _sparse(lib, kind), weights_only))
    _same_as_torch(lambda lib: tuple(_round_trip(lib, {"adjacency": _sparse(lib, kind), "weight": lib.ones(2)},
                                                  weights_only).values()))


@pytest.mark.parametrize("writer, reader", [("torch", "chainrule"), ("chainrule", "torch")])
def test_sparse_files_cross_between_torch_and_chainrule(writer, reader):
    write, read = (torch if writer == "torch" else chainrule), (torch if reader == "torch" else chainrule)
    buffer = io.BytesIO()
    write.save({"a": _sparse(write, "uncoalesced"), "b": _sparse(write, "hybrid")}, buffer)
    buffer.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = read.load(buffer, weights_only=True)
    for name, kind in (("a", "uncoalesced"), ("b", "hybrid")):
        assert _described(loaded[name]) == _described(_sparse(read, kind))


def _dense(lib, shape):
    return lib.arange(float(np.prod(shape)), dtype=lib.float64).reshape(shape) - 4


HSPMM = {
    "coalesced": lambda lib: lib.hspmm(_sparse(lib, "coalesced"), _dense(lib, (3, 2))),
    "uncoalesced": lambda lib: lib.hspmm(_sparse(lib, "uncoalesced"), _dense(lib, (3, 2))),
    "one row": lambda lib: lib.hspmm(lib.ones(2, 2).to_sparse() * lib.tensor([[0.0], [1.0]]), lib.ones(2, 3)),
    "no entries": lambda lib: lib.hspmm(lib.zeros(2, 2).to_sparse(), lib.ones(2, 2)),
    "integers": lambda lib: lib.hspmm(lib.ones(2, 2, dtype=lib.long).to_sparse(), lib.ones(2, 2, dtype=lib.long)),
    "dense first": lambda lib: lib.hspmm(_dense(lib, (3, 3)), _dense(lib, (3, 2))),
    "sparse second": lambda lib: lib.hspmm(_sparse(lib, "coalesced"), _sparse(lib, "coalesced")),
    "hybrid first": lambda lib: lib.hspmm(_sparse(lib, "hybrid"), _dense(lib, (2, 2))),
    "vector second": lambda lib: lib.hspmm(_sparse(lib, "coalesced"), _dense(lib, (3,))),
    "sizes": lambda lib: lib.hspmm(_sparse(lib, "coalesced"), _dense(lib, (4, 2))),
    "dtypes": lambda lib: lib.hspmm(_sparse(lib, "coalesced"), lib.ones(3, 2)),
    "requires grad": lambda lib: lib.hspmm(_sparse(lib, "coalesced"), _dense(lib, (3, 2)).requires_grad_()),
    "grad_fn": lambda lib: type(lib.hspmm(_sparse(lib, "coalesced"), _dense(lib, (3, 2)).requires_grad_()).grad_fn
                                ).__name__,
    "backward": lambda lib: lib.hspmm(_sparse(lib, "coalesced"), _dense(lib, (3, 2)).requires_grad_()
                                      ).to_dense().sum().backward(),
    "backward to values": lambda lib: lib.hspmm(
        lib.sparse_coo_tensor(lib.tensor([[0, 1]] * 2), lib.ones(2, dtype=lib.float64, requires_grad=True)),
        _dense(lib, (2, 2))).to_dense().sum().backward(),
}


@pytest.mark.parametrize("case", HSPMM)
def test_hspmm_as_torch(case):
    _same_as_torch(HSPMM[case])


def test_hspmm_keeps_only_rows_with_entries():
    result = chainrule.hspmm(_sparse(chainrule, "coalesced") * chainrule.tensor([[1.0], [1.0], [0.0]],
                                                                             dtype=chainrule.float64),
                             _dense(chainrule, (3, 2)))
    assert _described(result) == _described(torch.hspmm(_sparse(torch, "coalesced") * torch.tensor(
        [[1.0], [1.0], [0.0]], dtype=torch.float64), _dense(torch, (3, 2))))


SPDIAGS = {
    "square": lambda lib: lib.sparse.spdiags(lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), lib.tensor([0, -1]),
                                             (3, 3)),
    "rectangular": lambda lib: lib.sparse.spdiags(lib.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 5.0, 6.0, 7.0]]),
                                                  lib.tensor([1, -2]), (3, 4)),
    "tall": lambda lib: lib.sparse.spdiags(lib.arange(12.0).reshape(3, 4), lib.tensor([0, -2, 1]), (5, 4)),
    "wide": lambda lib: lib.sparse.spdiags(lib.arange(12.0).reshape(3, 4), lib.tensor([0, -2, 3]), (2, 6)),
    "vector, scalar offset": lambda lib: lib.sparse.spdiags(lib.tensor([1.0, 2.0, 3.0]), lib.tensor(1), (3, 3)),
    "long diagonals": lambda lib: lib.sparse.spdiags(lib.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]]), lib.tensor([0]), (3, 3)),
    "integers": lambda lib: lib.sparse.spdiags(lib.tensor([[1, 2, 3]]), lib.tensor([0]), (3, 3)),
    "none": lambda lib: lib.sparse.spdiags(lib.zeros(0, 3), lib.zeros(0, dtype=lib.long), (3, 3)),
    "csr": lambda lib: lib.sparse.spdiags(lib.tensor([[1.0, 2.0, 3.0]]), lib.tensor([1]), (3, 3),
                                          layout=lib.sparse_csr).to_dense(),
    "csc": lambda lib: lib.sparse.spdiags(lib.tensor([[1.0, 2.0, 3.0]]), lib.tensor([-1]), (3, 3),
                                          layout=lib.sparse_csc).to_dense(),
    "count mismatch": lambda lib: lib.sparse.spdiags(lib.tensor([[1.0, 2.0, 3.0]]), lib.tensor([0, 1]), (3, 3)),
    "2-d offsets": lambda lib: lib.sparse.spdiags(lib.tensor([[1.0, 2.0, 3.0]]), lib.tensor([[0]]), (3, 3)),
    "float offsets": lambda lib: lib.sparse.spdiags(lib.tensor([[1.0, 2.0, 3.0]]), lib.tensor([0.0]), (3, 3)),
    "duplicate offsets": lambda lib: lib.sparse.spdiags(lib.ones(2, 3), lib.tensor([0, 0]), (3, 3)),
    "offset beyond": lambda lib: lib.sparse.spdiags(lib.tensor([[1.0, 2.0, 3.0]]), lib.tensor([5]), (3, 3)),
    "3-d shape": lambda lib: lib.sparse.spdiags(lib.tensor([[1.0, 2.0, 3.0]]), lib.tensor([0]), (3, 3, 3)),
    "strided layout": lambda lib: lib.sparse.spdiags(lib.tensor([[1.0, 2.0, 3.0]]), lib.tensor([0]), (3, 3),
                                                     layout=lib.strided),
    "requires grad": lambda lib: lib.sparse.spdiags(lib.ones(1, 3, requires_grad=True), lib.tensor([0]), (3, 3)),
    "backward": lambda lib: lib.sparse.spdiags(lib.ones(1, 3, requires_grad=True), lib.tensor([0]), (3, 3)
                                               ).to_dense().sum().backward(),
}


@pytest.mark.parametrize("case", SPDIAGS)
def test_spdiags_as_torch(case):
    _same_as_torch(SPDIAGS[case])


def _mask_gradient(lib, kind, shape):
    dense = _dense(lib, shape).requires_grad_()
    masked = dense.sparse_mask(_sparse(lib, kind))
    (masked.to_dense() * _dense(lib, shape)).sum().backward()
    return masked, type(masked.grad_fn).__name__, dense.grad


SPARSE_MASK = {
    "coalesced": lambda lib: _dense(lib, (3, 3)).sparse_mask(_sparse(lib, "coalesced")),
    "uncoalesced": lambda lib: _dense(lib, (3, 3)).sparse_mask(_sparse(lib, "uncoalesced")),
    "hybrid": lambda lib: _dense(lib, (3, 2)).sparse_mask(_sparse(lib, "hybrid")),
    "3d": lambda lib: _dense(lib, (2, 3, 3)).sparse_mask(_sparse(lib, "3d")),
    "dtype of self": lambda lib: _dense(lib, (3, 3)).float().sparse_mask(_sparse(lib, "coalesced")),
    "dense mask": lambda lib: _dense(lib, (3, 3)).sparse_mask(_dense(lib, (3, 3))),
    "sizes": lambda lib: _dense(lib, (3, 2)).sparse_mask(_sparse(lib, "coalesced")),
    "gradient coalesced": lambda lib: _mask_gradient(lib, "coalesced", (3, 3)),
    "gradient uncoalesced": lambda lib: _mask_gradient(lib, "uncoalesced", (3, 3)),
    "gradient hybrid": lambda lib: _mask_gradient(lib, "hybrid", (3, 2)),
}


@pytest.mark.parametrize("case", SPARSE_MASK)
def test_sparse_mask_as_torch(case):
    _same_as_torch(SPARSE_MASK[case])


def test_sparse_mask_gradcheck():
    mask = _sparse(chainrule, "uncoalesced")
    dense = _dense(chainrule, (3, 3)).requires_grad_()
    assert chainrule.autograd.gradcheck(lambda d: d.sparse_mask(mask).to_dense(), (dense,))


def _hybrid_product_gradient(lib):
    built = _sparse(lib, "hybrid")
    values = built._values().clone().requires_grad_(True)
    product = lib.sparse_coo_tensor(built._indices(), values, built.shape) * lib.tensor([2.0, -3.0],
                                                                                       dtype=lib.float64)
    (product.to_dense() * _dense(lib, (3, 2))).sum().backward()
    return product, values.grad


HYBRID_PRODUCTS = {
    "same shape": lambda lib: _sparse(lib, "hybrid") * _dense(lib, (3, 2)),
    "a row": lambda lib: _sparse(lib, "hybrid") * lib.tensor([1.0, 2.0], dtype=lib.float64),
    "a column": lambda lib: _sparse(lib, "hybrid") * lib.tensor([[1.0], [2.0], [3.0]], dtype=lib.float64),
    "0-d": lambda lib: _sparse(lib, "hybrid") * lib.tensor(2.0, dtype=lib.float64),
    "method": lambda lib: _sparse(lib, "hybrid").mul(_dense(lib, (3, 2))),
    "gradient to the values": _hybrid_product_gradient,
}


@pytest.mark.parametrize("case", HYBRID_PRODUCTS)
def test_hybrid_times_dense_stays_sparse_as_torch(case):
    _same_as_torch(HYBRID_PRODUCTS[case])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_unsqueeze_coalesced_flag_as_torch(kind, dim):
    _same_as_torch(lambda lib: _sparse(lib, kind).unsqueeze(dim))
    _same_as_torch(lambda lib: lib.unsqueeze(_sparse(lib, kind), dim))


def test_unsqueeze_of_one_entry_stays_coalesced_as_torch():
    _same_as_torch(lambda lib: lib.ones(1, 1).to_sparse().unsqueeze(0))


OPERATORS = {
    "s % 2": lambda s: s % 2,
    "2 % s": lambda s: 2 % s,
    "s % s": lambda s: s % s,
    "s & s": lambda s: s & s,
    "1 & s": lambda s: 1 & s,
    "s | 1": lambda s: s | 1,
    "s ^ s": lambda s: s ^ s,
    "s << 1": lambda s: s << 1,
    "s >> 1": lambda s: s >> 1,
    "1 << s": lambda s: 1 << s,
    "~s": lambda s: ~s,
    "2 ** s": lambda s: 2 ** s,
    "s ** 2": lambda s: s ** 2,
    "s & None": lambda s: s & None,
}


@pytest.mark.parametrize("case", OPERATORS)
def test_integer_operators_on_sparse_as_torch(case):
    def call(lib):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = lib.sparse_coo_tensor(lib.tensor([[0, 1], [1, 0]]), lib.tensor([3, -4]), (2, 2))
        return OPERATORS[case](s)
    _same_as_torch(call)
