"""Small refusals and layouts that differed from torch (lane mendCL, session 52), each compared with
torch on the same inputs: arithmetic on sparse compressed (CSR/CSC) tensors."""

import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta"),
              pytest.mark.filterwarnings("ignore:Sparse CSC tensor support is in beta")]

_FIRST = [[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]
_SECOND = [[0.0, 5.0, -2.0], [0.0, 1.0, 0.0]]


def _outcome(lib, call):
    """The result's layout, dtype and stored parts (a dense result's values), or the error's type and first
    line (torch's dispatcher messages go on to list every backend)."""
    try:
        result = call(lib)
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return type(error).__name__, str(error).split(" If you are a Facebook employee")[0]
    if result.layout == lib.sparse_csr:
        parts = (result.crow_indices(), result.col_indices(), result.values())
    elif result.layout == lib.sparse_csc:
        parts = (result.ccol_indices(), result.row_indices(), result.values())
    else:
        parts = (result,)
    return (str(result.layout).split(".")[-1], str(result.dtype).split(".")[-1],
            [part.tolist() for part in parts])


def _csr(lib, values=_FIRST, dtype=None):
    return lib.tensor(values, dtype=dtype and getattr(lib, dtype)).to_sparse_csr()


def _csc(lib, values=_FIRST):
    return lib.tensor(values).to_sparse_csc()


def _dense(lib, values=_FIRST):
    return lib.tensor(values)


def _in_place(operator):
    def call(lib):
        target = _csr(lib).clone()
        result = operator(lib, target)
        assert result is target
        return target
    return call


_CALLS = {
    # add keeps CSR over the union of the patterns (a cancelled entry stays, as an explicit zero)
    "csr+csr": lambda lib: _csr(lib) + _csr(lib, _SECOND),
    "csr+(-csr)": lambda lib: _csr(lib) + (-_csr(lib)),
    "csr.add(csr,alpha=2)": lambda lib: _csr(lib).add(_csr(lib, _SECOND), alpha=2),
    "torch.add(csr,csr,alpha=0.5)": lambda lib: lib.add(_csr(lib), _csr(lib, _SECOND), alpha=0.5),
    "int csr.add(alpha=0.5)": lambda lib: _csr(lib, dtype="int64").add(_csr(lib, dtype="int64"), alpha=0.5),
    "int csr+float csr": lambda lib: _csr(lib, dtype="int64") + _csr(lib),
    "csr+double csr": lambda lib: _csr(lib) + _csr(lib, dtype="float64"),
    "csr+csr of another shape": lambda lib: _csr(lib) + lib.ones(3, 2).to_sparse_csr(),
    "csc+csc": lambda lib: _csc(lib) + _csc(lib, _SECOND),
    "csr+csc": lambda lib: _csr(lib) + _csc(lib),
    "csr+coo": lambda lib: _csr(lib) + _dense(lib).to_sparse(),
    # with a dense operand the sum is dense; broadcasting (a number too) is refused
    "csr+dense": lambda lib: _csr(lib) + _dense(lib, _SECOND),
    "dense+csr": lambda lib: _dense(lib, _SECOND) + _csr(lib),
    "torch.add(dense,csr,alpha=2)": lambda lib: lib.add(_dense(lib), _csr(lib), alpha=2),
    "csc+dense": lambda lib: _csc(lib) + _dense(lib),
    "csr+2": lambda lib: _csr(lib) + 2,
    "2+csr": lambda lib: 2 + _csr(lib),
    "csr+0-d": lambda lib: _csr(lib) + lib.tensor(2.0),
    "csr+dense of another shape": lambda lib: _csr(lib) + lib.ones(3, 3),
    # mul keeps CSR: the intersection of two patterns, or the CSR one's pattern against a dense matrix
    "csr*csr": lambda lib: _csr(lib) * _csr(lib, _SECOND),
    "csr*dense": lambda lib: _csr(lib) * _dense(lib, _SECOND),
    "dense*csr": lambda lib: _dense(lib, _SECOND) * _csr(lib),
    "torch.mul(dense,csr)": lambda lib: lib.mul(_dense(lib), _csr(lib)),
    "csr*double dense": lambda lib: _csr(lib) * _dense(lib).double(),
    "int csr*float csr": lambda lib: _csr(lib, dtype="int64") * _csr(lib),
    "csr*coo": lambda lib: _csr(lib) * _dense(lib).to_sparse(),
    "csr*row": lambda lib: _csr(lib) * lib.tensor([1.0, 2.0, 3.0]),
    "csr*2": lambda lib: _csr(lib) * 2,
    "csr*0-d": lambda lib: _csr(lib) * lib.tensor(2.0),
    "csc*2": lambda lib: _csc(lib) * 2,
    "csc*csc": lambda lib: _csc(lib) * _csc(lib),
    "csc*dense": lambda lib: _csc(lib) * _dense(lib),
    "dense*csc": lambda lib: _dense(lib) * _csc(lib),
    # subtraction and division have no compressed kernel, whichever operand is compressed
    "csr-csr": lambda lib: _csr(lib) - _csr(lib, _SECOND),
    "dense-csr": lambda lib: _dense(lib) - _csr(lib),
    "csr-dense": lambda lib: _csr(lib) - _dense(lib),
    "csr-2": lambda lib: _csr(lib) - 2,
    "2-csr": lambda lib: 2 - _csr(lib),
    "csc-dense": lambda lib: _csc(lib) - _dense(lib),
    "torch.sub(dense,csr)": lambda lib: lib.sub(_dense(lib), _csr(lib)),
    "csr.sub(csr,alpha=2)": lambda lib: _csr(lib).sub(_csr(lib, _SECOND), alpha=2),
    "csr/csr": lambda lib: _csr(lib) / _csr(lib, _SECOND),
    "dense/csr": lambda lib: _dense(lib) / _csr(lib),
    "csr/2": lambda lib: _csr(lib) / 2,
    "2/csr": lambda lib: 2 / _csr(lib),
    "csr/0-d": lambda lib: _csr(lib) / lib.tensor(2.0),
    "csc/2": lambda lib: _csc(lib) / 2,
    "csr.div(2,rounding_mode=floor)": lambda lib: _csr(lib).div(2, rounding_mode="floor"),
    "torch.true_divide(csr,2)": lambda lib: lib.true_divide(_csr(lib), 2),
    "csr//2": lambda lib: _csr(lib) // 2,
    "2//csr": lambda lib: 2 // _csr(lib),
    "torch.rsub(csr,dense)": lambda lib: lib.rsub(_csr(lib), _dense(lib)),
    # in place: the target keeps its identity and takes the new pattern
    "csr.add_(csr)": _in_place(lambda lib, target: target.add_(_csr(lib, _SECOND))),
    "csr+=csr": _in_place(lambda lib, target: target.__iadd__(_csr(lib, _SECOND))),
    "csr.mul_(2)": _in_place(lambda lib, target: target.mul_(2)),
    "csr*=dense": _in_place(lambda lib, target: target.__imul__(_dense(lib, _SECOND))),
    "csr.sub_(csr)": _in_place(lambda lib, target: target.sub_(_csr(lib, _SECOND))),
    "csr-=csr": _in_place(lambda lib, target: target.__isub__(_csr(lib, _SECOND))),
    "csr.div_(2)": _in_place(lambda lib, target: target.div_(2)),
    "csr/=2": _in_place(lambda lib, target: target.__itruediv__(2)),
    "csr//=2": _in_place(lambda lib, target: target.__ifloordiv__(2)),
    "dense+=csr": lambda lib: _dense(lib).__iadd__(_csr(lib)),
    "dense-=csr": lambda lib: _dense(lib).__isub__(_csr(lib)),
    "dense*=csr": lambda lib: _dense(lib).__imul__(_csr(lib)),
    "dense/=csr": lambda lib: _dense(lib).__itruediv__(_csr(lib)),
}


@pytest.mark.parametrize("name", list(_CALLS))
def test_compressed_arithmetic_keeps_torchs_layout_or_refusal(name):
    # chainrule computed every one of these densely and answered a strided tensor (and its in-place
    # forms left the target unchanged); torch keeps CSR for add and mul and refuses sub and div
    assert _outcome(chainrule, _CALLS[name]) == _outcome(torch, _CALLS[name])


def test_in_place_add_on_csr_bumps_the_version():
    target = _csr(chainrule).clone()
    before = target._version
    target.add_(_csr(chainrule, _SECOND))
    assert target._version > before
    assert target.to_dense().tolist() == (_dense(torch) + _dense(torch, _SECOND)).tolist()


_PRODUCT_DTYPES = ["bool", "float32", "int64"]
_LAYOUTS = {"coo": lambda t: t.to_sparse(), "csr": lambda t: t.to_sparse_csr(), "csc": lambda t: t.to_sparse_csc()}
_PRODUCTS = {
    "dense @ sparse": lambda lib, dense, sparse: dense @ sparse,
    "sparse @ dense": lambda lib, dense, sparse: sparse @ dense,
    "mm(dense, sparse)": lambda lib, dense, sparse: lib.mm(dense, sparse),
    "matmul(sparse, dense)": lambda lib, dense, sparse: lib.matmul(sparse, dense),
}


@pytest.mark.parametrize("product", list(_PRODUCTS))
@pytest.mark.parametrize("layout", list(_LAYOUTS))
@pytest.mark.parametrize("sparse_dtype", _PRODUCT_DTYPES)
@pytest.mark.parametrize("dense_dtype", _PRODUCT_DTYPES)
def test_sparse_products_refuse_in_the_sparse_kernels_words(product, layout, sparse_dtype, dense_dtype):
    # a bool or mixed-dtype product with a sparse operand named the dense addmm_impl_cpu_ (or its
    # "expected m1 and m2 to have the same dtype"); torch's sparse kernels (addmm_sparse_dense for
    # COO, the MKL addmm/addmv for CSR/CSC, float and complex only) refuse in their own words
    def call(lib):
        dense = lib.ones(2, 3, dtype=getattr(lib, dense_dtype))
        sparse = _LAYOUTS[layout](lib.tensor([[1, 0], [0, 1], [1, 1]]).to(getattr(lib, sparse_dtype)))
        return _PRODUCTS[product](lib, dense, sparse)
    assert _outcome(chainrule, call) == _outcome(torch, call)


_NO_DERIVATIVE = {
    "hspmm": lambda lib, sparse, dense: lib.hspmm(sparse, dense),
    "sspaddmm": lambda lib, sparse, dense: lib.sspaddmm(lib.zeros(2, 3).to_sparse(), sparse, dense),
    "spdiags": lambda lib, sparse, dense: lib.sparse.spdiags(dense[:1], lib.tensor([0]), (3, 3)),
}


@pytest.mark.parametrize("name", list(_NO_DERIVATIVE))
def test_sparse_ops_without_derivative_name_torchs_not_implemented_node(name):
    # the node's name() was "NotImplemented": torch's C++ node prints its namespace
    def node(lib):
        sparse = lib.tensor([[1.0, 0.0], [0.0, 2.0]]).to_sparse().requires_grad_()
        dense = lib.ones(2, 3, requires_grad=True)
        grad_fn = _NO_DERIVATIVE[name](lib, sparse, dense).grad_fn
        return grad_fn.name(), type(grad_fn).__name__
    assert node(chainrule) == node(torch)



_TO_SPARSE_GRADIENTS = {
    "to_sparse().to_dense().sum()": lambda lib, x: x.to_sparse().to_dense().sum(),
    "sparse.sum(to_sparse())": lambda lib, x: lib.sparse.sum(x.to_sparse()),
    "to_sparse(1).to_dense() ** 2": lambda lib, x: x.to_sparse(1).to_dense().pow(2).sum(),
    "sparse.mm(to_sparse(), ones)": lambda lib, x: lib.sparse.mm(x.to_sparse(), lib.ones(3, 2, dtype=x.dtype)).sum(),
    "(to_sparse() * 2).to_dense()": lambda lib, x: (x.to_sparse() * 2).to_dense().sum(),
}


@pytest.mark.parametrize("name", list(_TO_SPARSE_GRADIENTS))
def test_to_sparse_of_a_tensor_that_requires_grad_carries_the_gradient_back(name):
    # to_sparse() refused a tensor that requires grad; torch records ToSparseBackward1 (ToSparseBackward0
    # given sparse_dim) and gives the strided input a strided gradient at the stored entries
    def gradient(lib):
        x = lib.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]], requires_grad=True)
        nodes = (x.to_sparse().grad_fn.name(), x.to_sparse(1).grad_fn.name())
        _TO_SPARSE_GRADIENTS[name](lib, x).backward()
        return nodes, str(x.grad.layout).split(".")[-1], x.grad.tolist()
    assert gradient(chainrule) == gradient(torch)


def test_to_sparse_gradient_agrees_with_finite_differences():
    # no zero entries, so a small step never changes which entries are stored
    x = chainrule.tensor([[1.0, -2.0, 0.5], [3.0, 0.25, -1.5]], dtype=chainrule.float64, requires_grad=True)
    weights = chainrule.tensor([[2.0, -1.0, 0.5], [1.5, 3.0, -0.5]], dtype=chainrule.float64)
    assert chainrule.autograd.gradcheck(lambda t: (t.to_sparse() * weights).to_dense(), (x,))
    assert chainrule.autograd.gradcheck(lambda t: chainrule.sparse.sum(t.to_sparse(1)), (x,))
