"""Differences from torch 2.13 that earlier sessions noted and this lane closed: a sparse COO left
operand of a dense product whose dense right operand does not fit it (each product, called as a
function, a Tensor method or ``@``, refuses it in the words of torch's sparse kernel); weight
norm's torch-level ops (torch._weight_norm, torch.norm_except_dim) and the nodes both weight-norm
APIs record through them; hostile arguments (expand's negative and overflowing sizes, an index
beyond int64 through Subset, Tensor methods and operators called off the class without self);
singular solves and inverses (LAPACK's infinities and NaNs, info, the check_errors words); the
type names in "must be Tensor, not ..." and descriptor refusals. Each case
runs the same code on torch and on chainrule and compares what a user sees: values, gradients,
dtypes, shapes and node names, or the error's type and words."""

import functools
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(run, lib):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run(lib)
    except Exception as error:  # the error is part of what is compared
        return ("error", type(error).__name__, str(error))
    if result.layout != lib.strided:
        result = result.to_dense()
    return (str(result.dtype).split(".")[-1], tuple(result.shape), result.detach().numpy().tolist())


def _same(run, bitwise: bool = True):
    """The same outcome on both; values bitwise, or (``bitwise=False``: sums whose rounding order
    differs) to float32's last bits."""
    expected, ours = _outcome(run, torch), _outcome(run, chainrule)
    if not bitwise and expected[0] != "error":
        np.testing.assert_allclose(ours[2], expected[2], rtol=1e-6)
        expected, ours = expected[:2], ours[:2]
    assert ours == expected


# ------------------------------------------------------------------ 1. sparse @ dense guards
def _sparse(lib, *shape, dtype="float32"):
    dense = lib.arange(float(np.prod(shape)), dtype=getattr(lib, dtype)).reshape(shape) % 3
    return dense.to_sparse()


def _dense(lib, *shape, dtype="float32"):
    return lib.linspace(-1, 2, int(np.prod(shape)), dtype=getattr(lib, dtype)).reshape(shape)


MATRIX_PRODUCTS = {
    "torch.mm": lambda lib, s, d: lib.mm(s, d),
    "torch.matmul": lambda lib, s, d: lib.matmul(s, d),
    "torch.mv": lambda lib, s, d: lib.mv(s, d),
    "torch.addmm": lambda lib, s, d: lib.addmm(_dense(lib, 3, 2), s, d),
    "torch.sparse.mm": lambda lib, s, d: lib.sparse.mm(s, d),
    "torch.sparse.addmm": lambda lib, s, d: lib.sparse.addmm(_dense(lib, 3, 2), s, d),
    "torch.spmm": lambda lib, s, d: lib.spmm(s, d),
    "@": lambda lib, s, d: s @ d,
    "Tensor.mm": lambda lib, s, d: s.mm(d),
    "Tensor.matmul": lambda lib, s, d: s.matmul(d),
    "Tensor.mv": lambda lib, s, d: s.mv(d),
    "Tensor.addmm": lambda lib, s, d: _dense(lib, 3, 2).addmm(s, d),
}
DENSE_SHAPES = [(), (1,), (3,), (4,), (5,), (4, 2), (5, 2), (4, 3, 3), (4, 2, 3), (2, 4, 2)]


@pytest.mark.parametrize("dense_shape", DENSE_SHAPES, ids=str)
@pytest.mark.parametrize("product", MATRIX_PRODUCTS)
def test_a_sparse_matrix_times_a_dense_operand_as_torch(product, dense_shape):
    # (a sparse addmm adds its product in another order than torch's: the last bit may differ)
    _same(lambda lib: MATRIX_PRODUCTS[product](lib, _sparse(lib, 3, 4), _dense(lib, *dense_shape)),
          bitwise="addmm" not in product)


BATCHED_PRODUCTS = {
    "torch.bmm": lambda lib, s, d: lib.bmm(s, d),
    "Tensor.bmm": lambda lib, s, d: s.bmm(d),
    "torch.matmul": lambda lib, s, d: lib.matmul(s, d),
    "@": lambda lib, s, d: s @ d,
    "torch.mm": lambda lib, s, d: lib.mm(s, d),
    "torch.mv": lambda lib, s, d: lib.mv(s, d),
    "torch.addmm": lambda lib, s, d: lib.addmm(_dense(lib, 3, 2), s, d),
}


@pytest.mark.parametrize("dense_shape", [(2, 4, 2), (2, 5, 2), (3, 4, 2), (1, 2, 4, 2), (4, 2), (2, 4), (4,), (5,),
                                         (3, 4, 2)], ids=str)
@pytest.mark.parametrize("product", BATCHED_PRODUCTS)
def test_a_sparse_batch_times_a_dense_operand_as_torch(product, dense_shape):
    _same(lambda lib: BATCHED_PRODUCTS[product](lib, _sparse(lib, 2, 3, 4), _dense(lib, *dense_shape)))


@pytest.mark.parametrize("case", [
    lambda lib: lib.mm(_sparse(lib, 4), _dense(lib, 4, 2)),
    lambda lib: lib.mv(_sparse(lib, 4), _dense(lib, 4)),
    lambda lib: lib.matmul(_sparse(lib, 4), _dense(lib, 4, 2)),
    lambda lib: lib.matmul(_sparse(lib, 4), _dense(lib, 2, 4, 2)),
    lambda lib: lib.bmm(_sparse(lib, 3, 4), _dense(lib, 2, 4, 2)),
    lambda lib: lib.bmm(_sparse(lib, 1, 2, 3, 4), _dense(lib, 2, 4, 2)),
    lambda lib: lib.mm(lib.ones(3, 4).to_sparse(1), _dense(lib, 4, 2)),
    lambda lib: lib.mv(lib.ones(3, 4).to_sparse(1), _dense(lib, 4)),
    lambda lib: lib.matmul(_sparse(lib, 2, 3, 4), _dense(lib, 3, 4, 2)),
    lambda lib: lib.matmul(_sparse(lib, 3, 4), _dense(lib, 2, 4, 2).requires_grad_()),
    lambda lib: lib.addmm(_dense(lib, 3, 5), _sparse(lib, 3, 4), _dense(lib, 4, 2)),
    lambda lib: lib.sparse.addmm(_dense(lib, 3, 5), _sparse(lib, 3, 4), _dense(lib, 4, 2)),
    lambda lib: lib.addmm(_dense(lib, 1, 3, 2), _sparse(lib, 3, 4), _dense(lib, 4, 2)),
    lambda lib: lib.mm(_sparse(lib, 3, 4), _dense(lib, 4, 2, dtype="float64")),
    lambda lib: lib.mm(_sparse(lib, 3, 4), _dense(lib, 5, 2, dtype="float64")),
    lambda lib: lib.mv(_sparse(lib, 3, 4), _dense(lib, 4, dtype="float64")),
    lambda lib: lib.addmm(_dense(lib, 3, 2, dtype="float64"), _sparse(lib, 3, 4), _dense(lib, 4, 2)),
    lambda lib: lib.addmm(_dense(lib, 3, 2), _sparse(lib, 3, 4), _dense(lib, 4, 2, dtype="float64")),
    lambda lib: lib.bmm(_sparse(lib, 2, 3, 4), _dense(lib, 2, 4, 2, dtype="float64")),
    lambda lib: lib.mv(_sparse(lib, 3, 4, dtype="int64"), _dense(lib, 4).long()),
    lambda lib: lib.mm(_sparse(lib, 3, 4), [[1.0]]),
])
def test_sparse_product_edges_as_torch(case):
    _same(case)


@pytest.mark.parametrize("added_shape", [(2,), (3, 1), (1, 2), ()], ids=str)
@pytest.mark.parametrize("addmm", ["torch.addmm", "torch.sparse.addmm"])
def test_a_sparse_addmm_broadcasts_the_added_tensor_as_torch(addmm, added_shape):
    def run(lib):
        function = lib.addmm if addmm == "torch.addmm" else lib.sparse.addmm
        return function(_dense(lib, *added_shape), _sparse(lib, 3, 4), _dense(lib, 4, 2))

    _same(run, bitwise=False)


def test_dim_of_a_0d_tensor_is_refused_in_torchs_words():
    for dim in (0, -1, 1, -2):
        _same(lambda lib, dim=dim: lib.tensor(1.0).size(dim))


@pytest.mark.parametrize("product", ["torch.mm", "torch.matmul", "torch.sparse.mm", "torch.addmm", "torch.mv", "@",
                                     "torch.bmm"])
def test_good_sparse_products_keep_values_gradients_and_nodes(product):
    def run(lib):
        batched = product == "torch.bmm"
        sparse = _sparse(lib, *((2, 3, 4) if batched else (3, 4)), dtype="float64").requires_grad_()
        dense = _dense(lib, *((2, 4, 2) if batched else (4,) if product == "torch.mv" else (4, 2)),
                       dtype="float64").requires_grad_()
        calls = dict(MATRIX_PRODUCTS, **{"torch.bmm": lambda lib, s, d: lib.bmm(s, d)})
        if product == "torch.addmm":
            result = lib.addmm(_dense(lib, 3, 2, dtype="float64"), sparse, dense)
        else:
            result = calls[product](lib, sparse, dense)
        result.pow(2).sum().backward()
        sparse_grad = sparse.grad.to_dense() if sparse.grad.layout != lib.strided else sparse.grad
        return (result.grad_fn.name(), result.detach().numpy().tolist(), str(sparse.grad.layout).split(".")[-1],
                sparse_grad.numpy().tolist(), dense.grad.numpy().tolist())

    ours, expected = run(chainrule), run(torch)
    assert ours[0] == expected[0] and ours[2] == expected[2]
    for index in (1, 3, 4):  # values and both gradients (addmm's sums round in another order: last bits)
        np.testing.assert_allclose(ours[index], expected[index], rtol=0 if product != "torch.addmm" else 1e-13)


# ------------------------------------------------------------------ 2. weight norm's torch-level ops
def _graph(tensor):
    """The node's name and its inputs' node names, as a user walks them."""
    node = tensor.grad_fn
    return (node.name(), tuple((None if n is None else n.name().rpartition("::")[2], i) for n, i in node.next_functions))


def _array(lib, shape, dtype, seed):
    return lib.tensor(np.random.RandomState(seed).randn(*shape), dtype=getattr(lib, dtype))


def _close(ours, theirs, dtype):
    """float64 to its last bits (torch's fused kernels add in their own lane order), float32 to its."""
    rtol = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=rtol)


WEIGHT_SHAPES = [(3, 4), (3, 4, 2), (5,), (2, 3, 4, 5)]


def _dims(shape):
    return range(-len(shape) - 1, len(shape) + 1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", WEIGHT_SHAPES, ids=str)
def test_norm_except_dim_as_torch(shape, dtype):
    for dim in _dims(shape):
        for power in (2, 1, 3):
            results = {}
            for lib in (torch, chainrule):
                v = _array(lib, shape, dtype, 1).requires_grad_()
                try:
                    norm = lib.norm_except_dim(v, power, dim)
                except IndexError as error:
                    results[lib] = ("error", str(error))
                    continue
                norm.sum().backward()
                results[lib] = (tuple(norm.shape), str(norm.dtype).split(".")[-1], _graph(norm), norm, v.grad)
            ours, theirs = results[chainrule], results[torch]
            assert ours[:3] == theirs[:3], (dim, power)
            if ours[0] != "error":
                _close(ours[3], theirs[3], dtype)
                _close(ours[4], theirs[4], dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", WEIGHT_SHAPES, ids=str)
def test_weight_norm_as_torch(shape, dtype):
    for dim in _dims(shape):
        results = {}
        for lib in (torch, chainrule):
            v = _array(lib, shape, dtype, 1).requires_grad_()
            try:
                g = lib.norm_except_dim(_array(lib, shape, dtype, 2), 2, dim).requires_grad_()
                weight = lib._weight_norm(v, g, dim)
            except IndexError as error:
                results[lib] = ("error", str(error))
                continue
            (weight * _array(lib, shape, dtype, 3)).sum().backward()
            results[lib] = (tuple(weight.shape), str(weight.dtype).split(".")[-1], _graph(weight), weight, v.grad,
                            g.grad)
        ours, theirs = results[chainrule], results[torch]
        assert ours[:3] == theirs[:3], dim
        if ours[0] != "error":
            for got, want in zip(ours[3:], theirs[3:]):
                _close(got, want, dtype)


def test_weight_norm_refuses_what_torch_refuses():
    _same(lambda lib: lib._weight_norm(_dense(lib, 3, 4, dtype="float64"), _dense(lib, 3, 1), 0))
    _same(lambda lib: lib.norm_except_dim(_dense(lib, 3, 4), 2.0, 0))
    _same(lambda lib: lib.norm_except_dim(_dense(lib, 3, 4), 2, 0.5))


def test_the_fused_weight_norm_saves_torchs_tensors():
    for lib in (torch, chainrule):
        v, g = _array(lib, (3, 4), "float64", 1).requires_grad_(), _array(lib, (3, 1), "float64", 2).requires_grad_()
        node = lib._weight_norm(v, g, 0).grad_fn
        assert node._saved_dim == 0
        assert node._saved_v.equal(v) and node._saved_g.equal(g)
        _close(node._saved_result1, lib.norm_except_dim(v, 2, 0), "float64")


@pytest.mark.parametrize("dim, g_shape", [(0, (3, 1, 1)), (2, (1, 1, 2)), (0, (3,))])
def test_the_fused_weight_norm_passes_gradcheck_twice(dim, g_shape):
    v = chainrule.tensor(np.random.RandomState(0).randn(3, 4, 2), requires_grad=True)
    g = chainrule.tensor(np.random.RandomState(1).rand(*g_shape) + 0.5, requires_grad=True)
    assert v.__class__ is chainrule.Tensor and chainrule._weight_norm(v, g, dim).grad_fn.name() == \
        "WeightNormInterfaceBackward0"
    assert chainrule.autograd.gradcheck(lambda v, g: chainrule._weight_norm(v, g, dim), (v, g))
    assert chainrule.autograd.gradgradcheck(lambda v, g: chainrule._weight_norm(v, g, dim), (v, g))


@pytest.mark.parametrize("dim", [0, 1, -1, -2, None])
@pytest.mark.parametrize("api", ["nn.utils.weight_norm", "nn.utils.parametrizations.weight_norm"])
def test_both_weight_norm_apis_record_torchs_nodes(api, dim):
    results = {}
    for lib in (torch, chainrule):
        layer = lib.nn.Linear(3, 4)
        with lib.no_grad():
            layer.weight.copy_(_array(lib, (4, 3), "float32", 5))
            layer.bias.zero_()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (nn.utils.weight_norm is deprecated in torch)
            if api == "nn.utils.weight_norm":
                layer = lib.nn.utils.weight_norm(layer, dim=dim)
            else:
                layer = lib.nn.utils.parametrizations.weight_norm(layer, dim=dim)
        weight = layer.weight
        layer(_array(lib, (2, 3), "float32", 6)).pow(2).sum().backward()
        parameters = {name: p for name, p in layer.named_parameters() if name != "bias"}
        results[lib] = (_graph(weight), {name: tuple(p.shape) for name, p in parameters.items()}, weight,
                        [parameters[name].grad for name in sorted(parameters)])
    ours, theirs = results[chainrule], results[torch]
    assert ours[:2] == theirs[:2]
    _close(ours[2], theirs[2], "float32")
    for got, want in zip(ours[3], theirs[3]):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ 3. hostile arguments
def _first_line_of(outcome):
    """torch's overflow refusals carry its C++ stack after the words (and close their quote there)."""
    if outcome[0] == "error" and "\nException raised from" in outcome[2]:
        return outcome[:2] + (outcome[2].split("\nException raised from")[0] + '"',)
    return outcome


@pytest.mark.parametrize("sizes", [(-3, 3), (-2, 3), (-1, 3), (-3, -1), (2, -2, 3), (2**62, 3), (2**62, 1), (-3,),
                                   (3, -3), (2**63,), (2**63, 3), (-2**63 - 1,), (2, 3)], ids=str)
def test_expand_refuses_hostile_sizes_as_torch(sizes):
    expected = _first_line_of(_outcome(lambda lib: lib.ones(3).expand(*sizes), torch))
    assert _outcome(lambda lib: lib.ones(3).expand(*sizes), chainrule) == expected


@pytest.mark.parametrize("index", [2**63, -2**63 - 1, 2**64, 2**62, 10, -5, 3])
def test_a_subset_index_beyond_int64_is_refused_as_torch(index):
    def run(lib):
        dataset = lib.utils.data.TensorDataset(lib.arange(4.0))
        return lib.utils.data.Subset(dataset, [index])[0][0]

    _same(run)
    _same(lambda lib: lib.arange(4.0)[index])
    _same(lambda lib: lib.arange(4.0)[[index]])
    _same(lambda lib: lib.ones(2, 4)[0, index])


UNBOUND_CALLS = {
    "Tensor.__add__()": lambda lib: lib.Tensor.__add__(),
    "Tensor.add()": lambda lib: lib.Tensor.add(),
    "Tensor.view()": lambda lib: lib.Tensor.view(),
    "Tensor.sum()": lambda lib: lib.Tensor.sum(),
    "Tensor.__mul__()": lambda lib: lib.Tensor.__mul__(),
    "Tensor.__sub__()": lambda lib: lib.Tensor.__sub__(),
    "Tensor.__iadd__()": lambda lib: lib.Tensor.__iadd__(),
    "Tensor.__matmul__()": lambda lib: lib.Tensor.__matmul__(),
    "Tensor.__and__()": lambda lib: lib.Tensor.__and__(),
    "Tensor.__rsub__()": lambda lib: lib.Tensor.__rsub__(),
    "Tensor.__rtruediv__()": lambda lib: lib.Tensor.__rtruediv__(),
    "Tensor.__floordiv__()": lambda lib: lib.Tensor.__floordiv__(),
    "Tensor.__rfloordiv__()": lambda lib: lib.Tensor.__rfloordiv__(),
    "Tensor.view(t)": lambda lib: lib.Tensor.view(lib.ones(3)),
    "Tensor.add(t)": lambda lib: lib.Tensor.add(lib.ones(3)),
}
MISSING_OTHER = ["__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__mod__", "__pow__", "__iadd__", "__isub__"]


@pytest.mark.parametrize("call", UNBOUND_CALLS)
def test_a_method_called_off_the_class_without_self_is_refused_in_torchs_words(call):
    _same(UNBOUND_CALLS[call])


@pytest.mark.parametrize("name", MISSING_OTHER)
def test_an_operator_without_its_other_operand_answers_not_implemented_as_torch(name):
    assert getattr(torch.Tensor, name)(torch.ones(3)) is NotImplemented
    assert getattr(chainrule.Tensor, name)(chainrule.ones(3)) is NotImplemented


# ------------------------------------------------------------------ 4. singular solves and inverses
def _same_with_nan(run):
    """The same error, or the same dtype, shape, NaNs and signed infinities; the finite values to
    their last bits (getrf's multipliers round as LAPACK's blocking orders them)."""
    expected, ours = _outcome(run, torch), _outcome(run, chainrule)
    assert ours[:2] == expected[:2]
    if expected[0] == "error":
        assert ours == expected
        return
    got, want = np.array(ours[2], dtype=float), np.array(expected[2], dtype=float)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(np.where(np.isinf(got), got, 0), np.where(np.isinf(want), want, 0))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6 if expected[0] == "float32" else 1e-12)


SINGULAR = {"rank one": [[1.0, 2.0], [2.0, 4.0]], "zero": [[0.0, 0.0], [0.0, 0.0]],
            "zero first column": [[0.0, 1.0], [0.0, 2.0]], "zero row": [[1.0, 2.0, 0.5], [0.0, 0.0, 0.0], [3.0, 1.0, 2.0]],
            "repeated column": [[1.0, 1.0, 2.0], [2.0, 2.0, 1.0], [0.5, 0.5, 3.0]]}


def _solve_cases(matrix, dtype):
    n = len(matrix)

    def a(lib):
        return lib.tensor(matrix, dtype=getattr(lib, dtype))

    def b(lib):
        return lib.arange(1.0, n + 1, dtype=getattr(lib, dtype)).reshape(n, 1) + 0.5

    def batch(lib):
        return lib.stack([lib.eye(n, dtype=getattr(lib, dtype)), a(lib)])

    return {
        "solve_ex": lambda lib: lib.linalg.solve_ex(a(lib), b(lib)),
        "solve_ex vector": lambda lib: lib.linalg.solve_ex(a(lib), b(lib).reshape(-1)),
        "solve_ex left=False": lambda lib: lib.linalg.solve_ex(a(lib), b(lib).reshape(1, -1), left=False),
        "solve_ex batched": lambda lib: lib.linalg.solve_ex(batch(lib), lib.stack([b(lib), 2 * b(lib)])),
        "solve_ex broadcast B": lambda lib: lib.linalg.solve_ex(batch(lib), b(lib)),
        "solve_ex check_errors": lambda lib: lib.linalg.solve_ex(batch(lib), b(lib), check_errors=True),
        "solve": lambda lib: lib.linalg.solve(batch(lib), b(lib)),
        "inv_ex": lambda lib: lib.linalg.inv_ex(a(lib)),
        "inv_ex batched": lambda lib: lib.linalg.inv_ex(batch(lib)),
        "lu_factor_ex": lambda lib: lib.linalg.lu_factor_ex(a(lib)),
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("matrix", SINGULAR, ids=str)
def test_a_singular_solve_leaves_torchs_infinities_and_info(matrix, dtype):
    for case in _solve_cases(SINGULAR[matrix], dtype).values():
        def run(lib, case=case):
            result = case(lib)
            return lib.cat([t.reshape(-1).to(getattr(lib, dtype)) for t in result]) if isinstance(result, tuple) \
                else result
        _same_with_nan(run)


def _random_singular_matrices():
    matrices = []
    random = np.random.RandomState(0)
    while len(matrices) < 40:
        n = random.randint(2, 5)
        matrix = random.randint(-2, 3, size=(n, n)).astype(float)
        if np.linalg.matrix_rank(matrix) < n:
            matrices.append(matrix)
    return matrices


def _singular_solve(lib, matrix, left):
    a = lib.tensor(matrix)
    b = lib.arange(1.0, len(matrix) + 1, dtype=lib.float64).reshape(-1, 1) + 0.25
    result, info = lib.linalg.solve_ex(a, b if left else b.mT, left=left)
    return lib.cat([result.reshape(-1), info.reshape(-1).double()])


_SINGULAR_SOLVES_IN_COMPATIBLE_MKL = """
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from tests.compat.test_s41_mendZ import _random_singular_matrices, _singular_solve
print(json.dumps([[_singular_solve(torch, m, left).tolist() for left in (True, False)]
                  for m in _random_singular_matrices()]))
"""


def _torch_singular_solves_in_compatible_mkl():
    """torch's answers with MKL's reference code path (MKL_CBWR=COMPATIBLE), which LAPACK's
    getrf gives on every CPU: on an AVX-512 CPU MKL's own path can leave a pivot of these exactly
    singular integer matrices a rounding residue (1e-17) instead of 0, and solve by it."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "MKL_CBWR": "COMPATIBLE"}
    done = subprocess.run([sys.executable, "-c", _SINGULAR_SOLVES_IN_COMPATIBLE_MKL, root], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout)


def test_random_singular_matrices_solve_as_torch():
    matrices, compatible = _random_singular_matrices(), None
    for index, matrix in enumerate(matrices):
        for side, left in enumerate((True, False)):
            run = functools.partial(_singular_solve, matrix=matrix, left=left)
            here = _outcome(run, torch)
            values = np.array(here[2])
            if np.isfinite(values).all() and np.abs(values[:-1]).max() > 1e12:
                # solved by a residue pivot (see above): compare with torch's reference path
                compatible = compatible or _torch_singular_solves_in_compatible_mkl()
                expected = ("float64", here[1], compatible[index][side])
                ours = _outcome(run, chainrule)
                assert ours[:2] == expected[:2]
                got, want = np.array(ours[2]), np.array(expected[2])
                np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
                np.testing.assert_array_equal(np.where(np.isfinite(got), 0, got), np.where(np.isfinite(want), 0, want))
                np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-12)
                continue
            _same_with_nan(run)


# ------------------------------------------------------------------ 5. type names in error messages
NOT_TENSORS = {"ndarray": lambda lib: np.ones(3), "numpy scalar": lambda lib: np.float64(1.0),
               "dtype": lambda lib: lib.float32, "Size": lambda lib: lib.Size([3]),
               "device": lambda lib: lib.device("cpu"), "list": lambda lib: [1.0], "str": lambda lib: "a"}
WHERE_A_TENSOR_GOES = {
    "F.linear input": lambda lib, v: lib.nn.functional.linear(v, lib.ones(2, 3)),
    "F.linear weight": lambda lib, v: lib.nn.functional.linear(lib.ones(2, 3), v),
    "nn.Linear": lambda lib, v: lib.nn.Linear(3, 2)(v),
    "torch.mm": lambda lib, v: lib.mm(v, lib.ones(3, 3)),
    "torch.matmul": lambda lib, v: lib.matmul(lib.ones(3, 3), v),
    "torch.quantile": lambda lib, v: lib.quantile(v, 0.5),
    "torch.movedim": lambda lib, v: lib.movedim(v, 0, 0),
    "Tensor.add off the class": lambda lib, v: lib.Tensor.add(v, lib.ones(1)),
    "Tensor.view off the class": lambda lib, v: lib.Tensor.view(v, 1),
    "Tensor.__and__ off the class": lambda lib, v: lib.Tensor.__and__(v, lib.ones(1)),
    "Tensor.sum off the class": lambda lib, v: lib.Tensor.sum(v),
}


@pytest.mark.parametrize("value", NOT_TENSORS)
@pytest.mark.parametrize("call", WHERE_A_TENSOR_GOES)
def test_a_non_tensor_is_named_as_torch_names_its_type(call, value):
    def run(lib):
        return WHERE_A_TENSOR_GOES[call](lib, NOT_TENSORS[value](lib))

    _same(run)
    assert _outcome(run, chainrule)[0] == "error"
