"""Sparse leftovers (lane mendCP, session 52), each compared with torch on the same inputs: a CSR/CSC tensor made
from one that requires grad records torch's nodes and gives the strided input its gradient; addmm's refusals of
sparse COO layouts it has no kernel for."""

import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta"),
              pytest.mark.filterwarnings("ignore:Sparse CSC tensor support is in beta")]

_X = [[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]
_W = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


def _error(lib, call):
    """The error's type and first line, or None when the call returns."""
    try:
        call(lib)
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return type(error).__name__, str(error).splitlines()[0]
    return None


def _layout_name(lib, tensor):
    return str(tensor.layout).rpartition(".")[2]


def _gradient_outcome(lib, make, use):
    """The result's layout, node name and requires_grad, then the strided input's gradient after a weighted sum
    of the result (made dense), or the error the backward raises."""
    x = lib.tensor(_X, dtype=lib.float64, requires_grad=True)
    result = use(lib, getattr(x, make)())
    seen = [_layout_name(lib, result), result.requires_grad, result.grad_fn and result.grad_fn.name()]
    dense = result if result.layout == lib.strided else result.to_dense()
    weight = lib.tensor(_W, dtype=lib.float64)
    try:
        (dense * weight if dense.dim() == 2 else dense).sum().backward()
    except RuntimeError as error:
        return seen, str(error)
    return seen, x.grad.tolist()


_USES = {
    "itself": lambda lib, s: s,
    "clone": lambda lib, s: s.clone(),
    "neg": lambda lib, s: -s,
    "times 2": lambda lib, s: s * 2,
    "2 times": lambda lib, s: 2 * s,
    "t": lambda lib, s: s.t(),
    "to float32 and back": lambda lib, s: s.to(lib.float32).to(lib.float64),
    "values": lambda lib, s: s.values(),
    "plus dense": lambda lib, s: s + lib.ones(2, 3, dtype=lib.float64),
    "dense plus": lambda lib, s: lib.ones(2, 3, dtype=lib.float64) + s,
    "matmul dense": lambda lib, s: s @ lib.ones(3, 2, dtype=lib.float64),
}


@pytest.mark.parametrize("make", ["to_sparse_csr", "to_sparse_csc"])
@pytest.mark.parametrize("use", sorted(_USES))
def test_compressed_from_a_tensor_that_requires_grad(make, use):
    theirs = _gradient_outcome(torch, make, _USES[use])
    ours = _gradient_outcome(chainrule, make, _USES[use])
    if use == "neg":  # (chainrule's gradient outside the pattern is -0.0, torch's +0.0: equal numbers)
        assert ours[0] == theirs[0] and ours[1] == theirs[1]
    else:
        assert ours == theirs


_CSR_ONLY = {
    "csr plus csr": lambda lib, s: s + s,
    "csr times csr": lambda lib, s: s * s,
}


@pytest.mark.parametrize("use", sorted(_CSR_ONLY))
def test_csr_pairs_from_a_tensor_that_requires_grad(use):
    assert _gradient_outcome(chainrule, "to_sparse_csr", _CSR_ONLY[use]) == \
        _gradient_outcome(torch, "to_sparse_csr", _CSR_ONLY[use])


def _dense_times_csr(lib, order, csr_grad=False, reduce="to_dense"):
    """A dense matrix that requires grad times a CSR one: torch records MulBackward0 on the CSR result and its
    backward refuses the strided operand's compressed gradient."""
    dense = lib.tensor(_W, requires_grad=True)
    source = lib.tensor(_X, requires_grad=csr_grad)
    csr = source.to_sparse_csr()
    result = dense * csr if order == "dense first" else csr * dense
    seen = [_layout_name(lib, result), result.requires_grad, result.grad_fn.name()]
    out = result.to_dense().sum() if reduce == "to_dense" else result.values().sum()
    try:
        out.backward()
    except RuntimeError as error:
        return seen, str(error)
    return seen, dense.grad.tolist()


@pytest.mark.parametrize("order", ["dense first", "csr first"])
@pytest.mark.parametrize("csr_grad", [False, True])
@pytest.mark.parametrize("reduce", ["to_dense", "values"])
def test_dense_that_requires_grad_times_csr(order, csr_grad, reduce):
    assert _dense_times_csr(chainrule, order, csr_grad, reduce) == _dense_times_csr(torch, order, csr_grad, reduce)


def test_compressed_from_a_tensor_that_requires_grad_outside_grad_mode():
    for lib in (torch, chainrule):
        with lib.no_grad():
            made = lib.ones(2, 2, requires_grad=True).to_sparse_csr()
        assert not made.requires_grad and made.grad_fn is None
        assert not lib.ones(2, 2, requires_grad=True).to_sparse_csc().detach().requires_grad


def test_compressed_gradcheck():
    # every entry nonzero: a perturbed zero would join the pattern, which torch's gradient (masked to it) ignores
    x = chainrule.tensor([[1.0, -2.0, 0.5], [3.0, 1.5, -1.0]], dtype=chainrule.float64, requires_grad=True)
    weight = chainrule.tensor(_W, dtype=chainrule.float64)
    assert chainrule.autograd.gradcheck(lambda t: (t.to_sparse_csr().to_dense() * weight).sum(), (x,))
    assert chainrule.autograd.gradcheck(lambda t: t.to_sparse_csc() @ weight.t(), (x,))


_ADDMM = {
    "dense, dense, coo": lambda lib: lib.addmm(lib.zeros(2, 2), lib.ones(2, 2), lib.eye(2).to_sparse()),
    "dense, dense, coo, beta=0": lambda lib: lib.addmm(lib.zeros(2, 2), lib.ones(2, 2), lib.eye(2).to_sparse(),
                                                       beta=0),
    "dense, coo, coo": lambda lib: lib.addmm(lib.zeros(2, 2), lib.eye(2).to_sparse(), lib.eye(2).to_sparse()),
    "coo, dense, dense": lambda lib: lib.addmm(lib.zeros(2, 2).to_sparse(), lib.ones(2, 2), lib.eye(2)),
    "coo, coo, dense": lambda lib: lib.addmm(lib.zeros(2, 2).to_sparse(), lib.eye(2).to_sparse(), lib.ones(2, 2)),
    "coo, dense, coo": lambda lib: lib.addmm(lib.zeros(2, 2).to_sparse(), lib.ones(2, 2), lib.eye(2).to_sparse()),
    "dense, csr, coo": lambda lib: lib.addmm(lib.zeros(2, 2), lib.eye(2).to_sparse_csr(), lib.eye(2).to_sparse()),
    "method dense, dense, coo": lambda lib: lib.zeros(2, 2).addmm(lib.ones(2, 2), lib.eye(2).to_sparse()),
}


@pytest.mark.parametrize("name", sorted(_ADDMM))
def test_addmm_refuses_sparse_layouts(name):
    theirs = _error(torch, _ADDMM[name])
    assert theirs is not None
    assert _error(chainrule, _ADDMM[name]) == theirs


_ADDMM_WORKS = {
    "dense, coo, dense": lambda lib: lib.addmm(lib.zeros(2, 2), lib.eye(2).to_sparse(), lib.ones(2, 2)),
    "dense, dense, csr": lambda lib: lib.addmm(lib.zeros(2, 2), lib.ones(2, 2), lib.eye(2).to_sparse_csr()),
    "dense, dense, csc": lambda lib: lib.addmm(lib.zeros(2, 2), lib.ones(2, 2), lib.eye(2).to_sparse_csc()),
}


@pytest.mark.parametrize("name", sorted(_ADDMM_WORKS))
def test_addmm_sparse_layouts_it_takes(name):
    assert _ADDMM_WORKS[name](chainrule).tolist() == _ADDMM_WORKS[name](torch).tolist()


_MIXED_MV = {
    "csr @ double vector": lambda lib: lib.eye(2).to_sparse_csr() @ lib.ones(2, dtype=lib.float64),
    "double csr @ vector": lambda lib: lib.eye(2, dtype=lib.float64).to_sparse_csr() @ lib.ones(2),
    "csc @ long vector": lambda lib: lib.eye(2).to_sparse_csc() @ lib.ones(2, dtype=lib.int64),
    "mv": lambda lib: lib.mv(lib.eye(2).to_sparse_csr(), lib.ones(2, dtype=lib.float64)),
    "addmv": lambda lib: lib.addmv(lib.zeros(2), lib.eye(2).to_sparse_csr(), lib.ones(2, dtype=lib.float64)),
}


@pytest.mark.parametrize("name", sorted(_MIXED_MV))
def test_compressed_matrix_vector_mixed_dtypes(name):
    theirs = _error(torch, _MIXED_MV[name])
    assert theirs is not None
    assert _error(chainrule, _MIXED_MV[name]) == theirs


def _outcome(lib, call):
    """The error's type and first line, or the result's layout, dtype and dense values."""
    try:
        result = call(lib)
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return type(error).__name__, str(error).splitlines()[0]
    return _layout_name(lib, result), str(result.dtype).rpartition(".")[2], result.to_dense().tolist()


def _eye(lib, dtype=None):
    return lib.tensor([[1, 0, 2], [0, 3, 0]], dtype=dtype or lib.float32)


_MIXED = {
    # a strided operand added into a compressed one in place
    "csr.add_(dense)": lambda lib: _eye(lib).to_sparse_csr().add_(lib.ones(2, 3)),
    "csc.add_(dense)": lambda lib: _eye(lib).to_sparse_csc().add_(lib.ones(2, 3)),
    "csr.add_(dense of another shape)": lambda lib: _eye(lib).to_sparse_csr().add_(lib.ones(3, 3)),
    "csr.add_(5)": lambda lib: _eye(lib).to_sparse_csr().add_(5),
    "csr.add_(dense, alpha=2)": lambda lib: _eye(lib).to_sparse_csr().add_(lib.ones(2, 3), alpha=2),
    "csr += dense": lambda lib: _eye(lib).to_sparse_csr().__iadd__(lib.ones(2, 3)),
    "csr.add_(csr)": lambda lib: _eye(lib).to_sparse_csr().add_(_eye(lib).to_sparse_csr()),
    # a Python number into an integer compressed tensor: torch's kernel takes it as a double
    "long csr.mul_(2.5)": lambda lib: _eye(lib, lib.int64).to_sparse_csr().mul_(2.5),
    "int csr.mul_(2.5)": lambda lib: _eye(lib, lib.int32).to_sparse_csr().mul_(2.5),
    "long csc.mul_(2.5)": lambda lib: _eye(lib, lib.int64).to_sparse_csc().mul_(2.5),
    "long csr *= 2.5": lambda lib: _eye(lib, lib.int64).to_sparse_csr().__imul__(2.5),
    "long csr.mul_(1j)": lambda lib: _eye(lib, lib.int64).to_sparse_csr().mul_(1j),
    "long csr.mul_(tensor(2.5))": lambda lib: _eye(lib, lib.int64).to_sparse_csr().mul_(lib.tensor(2.5)),
    "bool csr.mul_(2)": lambda lib: _eye(lib, lib.bool).to_sparse_csr().mul_(2),
    "float csr.mul_(2.5)": lambda lib: _eye(lib).to_sparse_csr().mul_(2.5),
    # COO with a compressed operand
    "coo * csr": lambda lib: _eye(lib).to_sparse() * _eye(lib).to_sparse_csr(),
    "coo.mul(csr)": lambda lib: _eye(lib).to_sparse().mul(_eye(lib).to_sparse_csr()),
    "coo.mul_(csr)": lambda lib: _eye(lib).to_sparse().mul_(_eye(lib).to_sparse_csr()),
    "coo * csc": lambda lib: _eye(lib).to_sparse() * _eye(lib).to_sparse_csc(),
    "csr * coo": lambda lib: _eye(lib).to_sparse_csr() * _eye(lib).to_sparse(),
    "coo + csr": lambda lib: _eye(lib).to_sparse() + _eye(lib).to_sparse_csr(),
    "coo.add(csc)": lambda lib: _eye(lib).to_sparse().add(_eye(lib).to_sparse_csc()),
    "coo.add_(csr)": lambda lib: _eye(lib).to_sparse().add_(_eye(lib).to_sparse_csr()),
    "csr + coo": lambda lib: _eye(lib).to_sparse_csr() + _eye(lib).to_sparse(),
}


@pytest.mark.parametrize("name", sorted(_MIXED))
def test_compressed_and_coo_operands(name):
    assert _outcome(chainrule, _MIXED[name]) == _outcome(torch, _MIXED[name])


_OPERANDS = {"None": None, "list": [1.0], "str": "a"}
_OPERATORS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
              "@": lambda a, b: a @ b}


# (not: a sequence times a tensor, which Python tries as repetition; a sequence's reflected operator, which
# answers first in its own words; reflected division, for which torch takes the sparse reciprocal first)
_NON_OPERAND_CASES = [(layout, symbol, operand, reflected)
                      for layout in ("to_sparse_csr", "to_sparse_csc", "to_sparse")
                      for symbol in sorted(_OPERATORS) for operand in sorted(_OPERANDS) for reflected in (False, True)
                      if not (operand in ("str", "list") and (symbol == "*" or reflected))
                      and not (symbol == "/" and reflected)]


@pytest.mark.parametrize(("layout", "symbol", "operand", "reflected"), _NON_OPERAND_CASES)
def test_sparse_operators_refuse_non_operands_naming_tensor(layout, symbol, operand, reflected):
    def call(lib):
        sparse = getattr(_eye(lib), layout)()
        other = _OPERANDS[operand]
        return _OPERATORS[symbol](other, sparse) if reflected else _OPERATORS[symbol](sparse, other)

    theirs = _error(torch, call)
    assert theirs is not None and theirs[0] == "TypeError"
    assert _error(chainrule, call) == theirs
