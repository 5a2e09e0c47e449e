"""Session 46, lane progCF: chainrule bugs found around the LightGCN, PNA and FastSpeech2 programs
(lightgcn_sparse_propagation, pna_degree_scalers, fastspeech_length_regulator), each checked
against torch."""

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")

INDICES = [[0, 1, 1, 2, 0], [2, 0, 2, 1, 2]]


def _sparse(lib, values=(3.0, 4.0, 5.0, 6.0, 1.0), coalesce=False, requires_grad=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's one-time "invariant checks are implicitly disabled"
        tensor = lib.sparse_coo_tensor(lib.tensor(INDICES), lib.tensor(values, requires_grad=requires_grad), (3, 3))
    return tensor.coalesce() if coalesce else tensor


def _outcome(call):
    """What a call gives: layout, dtype, coalesced-ness, grad_fn name and dense values, or its
    exception's class and message."""
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - the class is part of what is compared
        return type(error).__name__, str(error)
    is_sparse = result.layout != chainrule.strided and result.layout != torch.strided
    return (str(result.layout).split(".")[-1], str(result.dtype).split(".")[-1],
            result.is_coalesced() if is_sparse else None,
            None if result.grad_fn is None else result.grad_fn.name(),
            (result.to_dense() if is_sparse else result).tolist())


def _same_on_both(make):
    assert _outcome(lambda: make(chainrule)) == _outcome(lambda: make(torch))


# ---- sparse COO division: by a number or a 0-d dense tensor it stays sparse (coalesced first
# under a rounding mode); any other divisor, and any sparse divisor, torch refuses ----
@pytest.mark.parametrize("coalesce", [False, True])
@pytest.mark.parametrize("make", [
    lambda lib, s: s / 2,
    lambda lib, s: s / lib.tensor(2.0),
    lambda lib, s: s / lib.tensor(2),
    lambda lib, s: s / lib.tensor(2.0, dtype=lib.float64),
    lambda lib, s: lib.div(s, lib.tensor(4.0)),
    lambda lib, s: lib.true_divide(s, lib.tensor(4.0)),
    lambda lib, s: s.div(lib.tensor(4.0)),
    lambda lib, s: lib.div(s, 2, rounding_mode="floor"),
    lambda lib, s: lib.div(s, -2, rounding_mode="trunc"),
    lambda lib, s: s.div(lib.tensor(2.0), rounding_mode="floor"),
    lambda lib, s: s.clone().div_(lib.tensor(2.0)),
    lambda lib, s: s.clone().div_(2, rounding_mode="floor"),
    lambda lib, s: s / lib.tensor([2.0]),
    lambda lib, s: s / lib.tensor([1.0, 2.0, 4.0]),
    lambda lib, s: s / lib.ones(3, 3),
    lambda lib, s: s / s,
    lambda lib, s: lib.div(s, lib.ones(3, 3), rounding_mode="floor"),
    lambda lib, s: s.clone().div_(lib.ones(3, 3)),
    lambda lib, s: lib.ones(3, 3) / s,
    lambda lib, s: lib.div(lib.ones(3, 3), s),
    lambda lib, s: lib.true_divide(s, lib.ones(3, 3)),
])
def test_sparse_division_as_torch(make, coalesce):
    _same_on_both(lambda lib: make(lib, _sparse(lib, coalesce=coalesce)))


@pytest.mark.parametrize("make", [
    lambda lib, s: s / 2,
    lambda lib, s: s / lib.tensor(2),
    lambda lib, s: lib.div(s, 3, rounding_mode="floor"),
])
def test_integer_sparse_division_as_torch(make):
    _same_on_both(lambda lib: make(lib, _sparse(lib, values=(1, 2, 3, 4, 5))))


def test_refused_sparse_division_leaves_the_tensor_unchanged():
    tensor = _sparse(chainrule, coalesce=True)
    before = tensor.to_dense().clone()
    with pytest.raises(RuntimeError, match="Sparse division requires a scalar or zero-dim dense tensor divisor"):
        tensor.div_(chainrule.ones(3, 3))
    assert chainrule.equal(tensor.to_dense(), before) and tensor._version == 0


@pytest.mark.parametrize("rounding_mode", [None, "floor"])
@pytest.mark.parametrize("divisor_requires_grad", [False, True])
def test_sparse_division_by_a_0d_tensor_gradients_as_torch(rounding_mode, divisor_requires_grad):
    def run(lib):
        values = lib.tensor([3.0, 4.0, 5.0, 6.0, 1.0], requires_grad=True)
        divisor = lib.tensor(2.0, requires_grad=divisor_requires_grad)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sparse = lib.sparse_coo_tensor(lib.tensor(INDICES), values, (3, 3))
        # (rounding_mode=None spelled out is torch's div.Tensor_mode, DivBackward2 even dense: not compared here)
        quotient = lib.div(sparse, divisor) if rounding_mode is None else lib.div(sparse, divisor, rounding_mode=rounding_mode)
        (quotient.to_dense() * lib.arange(9.0).view(3, 3)).sum().backward()
        return quotient.grad_fn.name(), values.grad.tolist(), None if divisor.grad is None else divisor.grad.tolist()
    assert run(chainrule) == run(torch)


def test_sparse_leaf_divided_by_a_0d_tensor_gets_torch_sparse_gradient():
    def run(lib):
        leaf = _sparse(lib, coalesce=True).requires_grad_()
        (leaf / lib.tensor(2.0)).to_dense().sum().backward()
        return leaf.grad.layout == lib.sparse_coo, leaf.grad.to_dense().tolist()
    assert run(chainrule) == run(torch)


# ---- torch.sparse.sum: its dim refusals (out of range, named twice) ----
@pytest.mark.parametrize("make", [
    lambda lib, s: lib.sparse.sum(s, dim=2),
    lambda lib, s: lib.sparse.sum(s, dim=-3),
    lambda lib, s: lib.sparse.sum(s, dim=(0, 2)),
    lambda lib, s: lib.sparse.sum(s, dim=(0, 0)),
    lambda lib, s: lib.sparse.sum(s, dim=(1, -1)),
    lambda lib, s: lib.sparse.sum(s, dim=[-1]),
    lambda lib, s: lib.sparse.sum(s, dim=-2),
    lambda lib, s: lib.sparse.sum(s, dim=()),
    lambda lib, s: s.sum(2),
    lambda lib, s: s.sum(-1),
])
def test_sparse_sum_dims_as_torch(make):
    _same_on_both(lambda lib: make(lib, _sparse(lib)))


@pytest.mark.parametrize("dim", [2, 3, -4, (0, 2), (2, -1)])
def test_hybrid_sparse_sum_dims_as_torch(dim):
    def make(lib):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hybrid = lib.sparse_coo_tensor(lib.tensor(INDICES), lib.ones(5, 2), (3, 3, 2))
        return lib.sparse.sum(hybrid, dim=dim)
    _same_on_both(make)
