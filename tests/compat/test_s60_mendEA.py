"""Session 60, lane mendEA, against torch 2.13: sparse COO results' index strides, coalesce's summation order,
float index dtypes, complex sparse products' gradients and conversions, nansum/nanmean under a dispatch mode."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks", "ignore:Sparse CS[RC] tensor support")


def _effective_strides(tensor) -> tuple:
    # (a size-1 dim's stride is whatever the kernel left: only the others say how the memory is laid out)
    return tuple(stride for size, stride in zip(tensor.shape, tensor.stride()) if size != 1)


def _layout_of(result) -> tuple:
    indices, values = result._indices(), result._values()
    return (tuple(indices.shape), _effective_strides(indices), indices.is_contiguous(),
            _effective_strides(values), result.is_coalesced())


_STRIDE_OPS = {
    "coalesce": lambda lib, s: s.coalesce(),
    "coalesce of transpose": lambda lib, s: s.transpose(0, 1).coalesce(),
    "abs": lambda lib, s: s.abs(),
    "sin": lambda lib, s: s.sin(),
    "pow": lambda lib, s: s.pow(2),
    "times 2": lambda lib, s: s * 2,
    "neg": lambda lib, s: -s,
    "transpose": lambda lib, s: s.transpose(0, 1),
    "s + s": lambda lib, s: s + s,
    "s - s": lambda lib, s: s - s,
    "coalesced + coalesced": lambda lib, s: s.coalesce() + s.coalesce(),
    "coalesced + s": lambda lib, s: s.coalesce() + s,
    "add_": lambda lib, s: s.clone().add_(s),
    "coalesced abs": lambda lib, s: s.coalesce().abs(),
    "coalesced double": lambda lib, s: s.coalesce().double(),
    "coalesced detach": lambda lib, s: s.coalesce().detach(),
    "softmax": lambda lib, s: lib.sparse.softmax(s, 0),
    "sparse_mask": lambda lib, s: s.to_dense().sparse_mask(s.coalesce()),
}


@pytest.mark.parametrize("name", sorted(_STRIDE_OPS))
@pytest.mark.parametrize("hybrid", [False, True])
def test_coo_results_index_strides_are_torchs(name, hybrid):
    # torch's coalesce and add narrow a buffer as long as their input(s): (2, 3) indices with strides (5, 1)
    index = [[0, 1, 0, 2, 1], [2, 0, 2, 1, 0]]
    layouts = []
    for lib in (torch, chainrule):
        values = lib.arange(10.0).reshape(5, 2) if hybrid else lib.arange(5.0)
        sparse = lib.sparse_coo_tensor(lib.tensor(index), values, (3, 3, 2) if hybrid else (3, 3),
                                       check_invariants=True)
        layouts.append(_layout_of(_STRIDE_OPS[name](lib, sparse)))
    assert layouts[1] == layouts[0]


def test_constructor_keeps_the_given_indices_strides():
    layouts = []
    for lib in (torch, chainrule):
        index = lib.tensor([[0, 2], [1, 0], [2, 2]]).t()  # strides (1, 2)
        layouts.append(tuple(lib.sparse_coo_tensor(index, lib.ones(3), (3, 3))._indices().stride()))
    assert layouts[1] == layouts[0] == (1, 2)


def test_sum_gradient_keeps_the_coalesced_flag_through_narrowed_indices():
    # ValuesBackward0's gradient shares the coalesced input's (narrowed) indices: AccumulateGrad clones it, flag kept
    flags = []
    for lib in (torch, chainrule):
        leaf = lib.sparse_coo_tensor(lib.tensor([[0, 0, 1], [0, 0, 2]]), lib.tensor([1.0, 2.0, 3.0]), (2, 3),
                                     check_invariants=True).requires_grad_()
        lib.sparse.sum(leaf).backward()
        flags.append((leaf.grad.is_coalesced(), leaf.grad._nnz()))
    assert flags[1] == flags[0]


def _bits(tensor) -> bytes:
    if tensor.dtype in (torch.bfloat16, chainrule.bfloat16):
        tensor = tensor.view(torch.int16 if isinstance(tensor, torch.Tensor) else chainrule.int16)
    return tensor.numpy().tobytes()


def test_coalesce_sums_as_torch_small_case():
    # 0.35 + 0.9 + 0.09: NumPy's reduceat gave 1.3399999999999999, torch adds in turn: 1.34
    results = []
    for lib in (torch, chainrule):
        sparse = lib.sparse_coo_tensor(lib.tensor([[0, 0, 0]]), lib.tensor([0.35, 0.9, 0.09], dtype=lib.float64),
                                       (2,), check_invariants=True)
        results.append(sparse.coalesce()._values().item())
    assert results[1] == results[0] == 1.34


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "complex128"])
@pytest.mark.parametrize("seed", range(4))
def test_coalesce_sums_duplicates_in_torchs_order_bit_for_bit(dtype, seed):
    # beyond 16 entries torch's unstable sort (libstdc++'s introsort) decides each index's order of addition
    rng = np.random.default_rng(seed)
    count, keys = int(rng.integers(17, 300)), int(rng.integers(1, 8))
    index = rng.integers(0, keys, size=(2, count)).tolist()
    hybrid = seed % 2 == 1
    shape = (count, 2) if hybrid else (count,)
    values = rng.standard_normal(shape) * 10 ** rng.uniform(-3, 3, size=shape)
    values[0] = -0.0  # (the first value of a run is copied, its sign kept)
    results = []
    for lib in (torch, chainrule):
        data = lib.tensor(values.tolist(), dtype=lib.float64)
        data = data * (1 + 0.5j) if dtype == "complex128" else data.to(getattr(lib, dtype))
        sparse = lib.sparse_coo_tensor(lib.tensor(index), data, (keys, keys) + ((2,) if hybrid else ()),
                                       check_invariants=True)
        coalesced = sparse.coalesce()
        results.append((coalesced._indices().numpy().tobytes(), _bits(coalesced._values())))
    assert results[1] == results[0]


@pytest.mark.parametrize("index_dtype", ["float32", "float64", "float16", "bool"])
def test_float_indices_truncated_then_coalesced_as_torch(index_dtype):
    index = [[0.7, 1.2, 0.1, 2.9, 1.5], [2.2, 0.0, 2.8, 1.1, 0.4]]
    values = [0.35, 0.2, 0.9, -1.5, 0.09]
    results = []
    for lib in (torch, chainrule):
        sparse = lib.sparse_coo_tensor(lib.tensor(index, dtype=getattr(lib, index_dtype)), lib.tensor(values),
                                       check_invariants=True)
        coalesced = sparse.coalesce()
        results.append((sparse._indices().dtype is lib.int64, tuple(sparse.shape), _bits(coalesced._values()),
                        coalesced._indices().tolist(), _bits(sparse.to_dense())))
    assert results[1] == results[0]


def test_tensor_sum_of_coo_sums_the_stored_values_in_their_order():
    # torch's sum_coo: the uncoalesced values summed as they stand, not index by index (-0.02000000000000035,
    # where the dense backing's sum gave -0.02000000000000024)
    values = [-0.22, -2.02, -0.23, -0.87, 3.32]
    results = []
    for lib in (torch, chainrule):
        sparse = lib.sparse_coo_tensor(lib.tensor([[1, 0, 1, 1, 0]]), lib.tensor(values, dtype=lib.float64), (2,),
                                       check_invariants=True).requires_grad_()
        total = sparse.sum()
        total.backward()
        results.append((total.item(), total.grad_fn.name(), sparse.grad.tolist()))
    assert results[1] == results[0]


_COMPLEX_A = np.array([[1 + 2j, 0, -0.5j], [0, 2 - 1j, 0], [0.25 + 1j, 0, 3]])
_COMPLEX_B = np.array([[1 - 1j, 2j], [0.5, -1 + 0.5j], [2 + 1j, 1]])


def _gradients(lib, layout: str, product):
    make = {"csr": lambda t: t.to_sparse_csr(), "csc": lambda t: t.to_sparse_csc(), "coo": lambda t: t.to_sparse()}
    sparse = make[layout](lib.tensor(_COMPLEX_A, dtype=lib.complex128)).requires_grad_()
    dense = lib.tensor(_COMPLEX_B, dtype=lib.complex128, requires_grad=True)
    out = product(lib, sparse, dense)
    out = out.to_dense() if out.layout is not lib.strided else out
    try:
        out.backward(lib.arange(out.numel(), dtype=lib.float64).reshape(out.shape) * (0.5 - 0.25j) + 1j)
    except RuntimeError as refused:  # (torch's CSC @ CSC gradient comes back CSR, which its engine refuses)
        return str(refused)
    return [None if t.grad is None else np.round(t.grad.to_dense().numpy(), 10).tolist() for t in (sparse, dense)]


_PRODUCTS = {
    "csr @ csr": ("csr", lambda lib, s, d: s @ s),
    "csc @ csc": ("csc", lambda lib, s, d: s @ s),
    "csr @ dense": ("csr", lambda lib, s, d: s @ d),
    "csc @ dense": ("csc", lambda lib, s, d: s @ d),
    "coo * coo": ("coo", lambda lib, s, d: s * s),
}


@pytest.mark.parametrize("product", sorted(_PRODUCTS))
def test_complex_sparse_products_backward_conjugates_the_other_factor(product):
    # d(a @ b) = grad @ b^H da + a^H @ grad db; d(a * b) = conj(b) grad da: the compressed product and sparse * sparse
    # used b^T and b
    layout, compute = _PRODUCTS[product]
    assert _gradients(chainrule, layout, compute) == _gradients(torch, layout, compute)


@pytest.mark.parametrize("conversion", ["to_sparse", "to_sparse(1)", "to_sparse_csr", "to_sparse_csc",
                                        "to_sparse(layout=csc)", "csr.to_sparse", "coo.to_sparse_csr"])
def test_layout_conversions_refuse_a_complex_result_requiring_grad(conversion):
    conversions = {
        "to_sparse": lambda lib, t: t.to_sparse(),
        "to_sparse(1)": lambda lib, t: t.to_sparse(1),
        "to_sparse_csr": lambda lib, t: t.to_sparse_csr(),
        "to_sparse_csc": lambda lib, t: t.to_sparse_csc(),
        "to_sparse(layout=csc)": lambda lib, t: t.to_sparse(layout=lib.sparse_csc),
        "csr.to_sparse": lambda lib, t: t.detach().to_sparse_csr().requires_grad_().to_sparse(),
        "coo.to_sparse_csr": lambda lib, t: t.detach().to_sparse().requires_grad_().to_sparse_csr(),
    }
    messages = []
    for lib in (torch, chainrule):
        leaf = lib.tensor(_COMPLEX_A, dtype=lib.complex64, requires_grad=True)
        with pytest.raises(RuntimeError) as refused:
            conversions[conversion](lib, leaf)
        messages.append(str(refused.value))
        with lib.no_grad():  # (nothing records: converted as any other tensor)
            assert not conversions[conversion](lib, leaf).requires_grad or conversion.startswith(("csr", "coo"))
    assert messages[1] == messages[0]


def _dispatch_log(lib, run) -> list:
    from importlib import import_module

    base = import_module(lib.__name__ + ".utils._python_dispatch").TorchDispatchMode
    log = []

    class Logging(base):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            shown = [tuple(a.shape) if isinstance(a, lib.Tensor) else a for a in args]
            log.append((str(func), shown if "sum" in str(func) else None))
            return func(*args, **(kwargs or {}))

    with Logging():
        run()
    return log


_NAN_REDUCTIONS = {
    "nanmean()": lambda lib, x: x.nanmean(),
    "nanmean(0)": lambda lib, x: x.nanmean(0),
    "nansum()": lambda lib, x: x.nansum(),
    "nansum(1, keepdim)": lambda lib, x: lib.nansum(x, 1, keepdim=True),
}


@pytest.mark.parametrize("name", sorted(_NAN_REDUCTIONS))
def test_nan_reductions_show_a_dispatch_mode_torchs_ops(name):
    # nanmean() counts by sum.dim_IntList(kept, None); NansumBackward0 is one node: isnan, logical_not, expand, mul
    logs = []
    for lib in (torch, chainrule):
        x = lib.tensor([[1.0, float("nan"), 3.0], [4.0, 5.0, -1.0]], requires_grad=True)
        forward = _dispatch_log(lib, lambda lib=lib, x=x: _NAN_REDUCTIONS[name](lib, x))
        out = _NAN_REDUCTIONS[name](lib, x)
        backward = _dispatch_log(lib, lambda out=out: out.sum().backward())
        logs.append((forward, backward, out.grad_fn.name(), x.grad.tolist()))
    assert logs[1] == logs[0]


@pytest.mark.parametrize("seed", range(3))
def test_nansum_gradient_and_low_precision_values_as_torch(seed):
    # the gradient is grad * ¬isnan(x) (an infinite gradient gives NaN at NaN positions, -0.0 kept), and a bfloat16
    # nansum accumulates in float32 as torch's kernel
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((4, 40))
    values[rng.random(values.shape) < 0.25] = np.nan
    upstream = rng.standard_normal(40)
    upstream[:3] = (np.inf, -np.inf, -1.0)
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(values, dtype=lib.float32, requires_grad=True)
        out = lib.nansum(x, 0)
        out.backward(lib.tensor(upstream, dtype=lib.float32))
        low = lib.tensor(values, dtype=lib.bfloat16)
        results.append((out.detach().numpy().tobytes(), x.grad.numpy().tobytes(), out.grad_fn.name(),
                        _bits(lib.nansum(low)), _bits(lib.nansum(low, 1)), _bits(low.nanmean())))
    assert results[1] == results[0]


@pytest.mark.parametrize("dim", [None, 1])
@pytest.mark.parametrize("dtypes", [("bfloat16", "float32"), ("float32", "float64")])
def test_nanmean_into_a_wider_out_is_computed_in_the_outs_dtype(dtypes, dim):
    # torch's nanmean.out sums into the out (nansum.out) and divides there: not the bfloat16 mean cast
    values = np.random.default_rng(5).standard_normal((3, 50))
    values[::4, ::3] = np.nan
    results = []
    for lib in (torch, chainrule):
        source = lib.tensor(values, dtype=getattr(lib, dtypes[0]))
        out = lib.zeros(() if dim is None else (3,), dtype=getattr(lib, dtypes[1]))
        lib.nanmean(source, out=out) if dim is None else lib.nanmean(source, dim, out=out)
        results.append(out.numpy().tobytes())
    assert results[1] == results[0]
