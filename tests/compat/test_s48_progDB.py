"""Session 48, lane progDB: the matrix products on bool tensors, found around the BitNet program's
int8/int32 matmuls. torch's mm, mv and dot have no bool kernel ("addmm_impl_cpu_", "addmv_impl_cpu",
"dot" not implemented for 'Bool'), but mm and mv return zeros (False) before the kernel for an empty
result or an empty inner dim; tensordot multiplies by mm (a 1x1 result by dot); addmm over an empty
inner dim cannot scale a bool input by its integer beta. chainrule multiplied bool matrices through
matmul, F.linear and matrix_power, and refused the empty ones in mm, addmm and tensordot. Also the
order of torch's checks: mm compares the shapes before the dtypes, addmm (and F.linear with a bias,
which is addmm) the dtypes before the shapes. Each form runs on torch and on chainrule with the same
inputs and the outcomes (dtype, shape and values, or the exception type and words) are compared."""

from __future__ import annotations

import itertools

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, form, *args):
    try:
        r = form(lib, *args)
    except Exception as e:  # noqa: BLE001  (the exception is the outcome compared)
        return ("raised", type(e).__name__, str(e).split("\n")[0])
    return ("value", str(r.dtype).split(".")[-1], tuple(r.shape), r.to(lib.int64).flatten().tolist())


def _ones(lib, shape, dtype="bool"):
    return lib.ones(shape, dtype=getattr(lib, dtype))


FORMS = {
    "matmul": lambda lib, a, b, da, db: lib.matmul(_ones(lib, a, da), _ones(lib, b, db)),
    "operator": lambda lib, a, b, da, db: _ones(lib, a, da) @ _ones(lib, b, db),
    "mm": lambda lib, a, b, da, db: lib.mm(_ones(lib, a, da), _ones(lib, b, db)),
    "mv": lambda lib, a, b, da, db: lib.mv(_ones(lib, a, da), _ones(lib, b, db)),
    "dot": lambda lib, a, b, da, db: lib.dot(_ones(lib, a, da), _ones(lib, b, db)),
    "linear": lambda lib, a, b, da, db: lib.nn.functional.linear(_ones(lib, a, da), _ones(lib, b, db).t()),
    "linear_bias": lambda lib, a, b, da, db: lib.nn.functional.linear(
        _ones(lib, a, da), _ones(lib, b, db).t(), _ones(lib, (b[-1],), db)),
    "addmm": lambda lib, a, b, da, db: lib.addmm(_ones(lib, (a[0], b[-1]), da), _ones(lib, a, da), _ones(lib, b, db)),
    "tensordot": lambda lib, a, b, da, db: lib.tensordot(_ones(lib, a, da), _ones(lib, b, db), dims=([len(a) - 1], [0])),
    "inner": lambda lib, a, b, da, db: lib.inner(_ones(lib, a, da), _ones(lib, b, db)),
}

_SHAPES = {
    "matmul": [((2, 3), (3, 2)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)), ((0,), (0,)), ((2, 2, 3), (3, 2)),
               ((2, 2, 3), (3,)), ((0, 3), (3, 2)), ((2, 0), (0, 2)), ((2, 0), (0,)), ((1, 3), (3, 1)),
               ((2, 2, 3), (2, 3, 2)), ((2, 3, 0), (0, 2))],
    "mm": [((2, 3), (3, 2)), ((0, 3), (3, 2)), ((2, 0), (0, 2)), ((2, 3), (3, 0)), ((1, 0), (0, 1)),
           ((2, 3), (2, 3)), ((2, 0), (3, 2))],
    "mv": [((2, 3), (3,)), ((0, 3), (3,)), ((2, 0), (0,)), ((1, 3), (3,))],
    "dot": [((3,), (3,)), ((0,), (0,))],
    "linear": [((2, 3), (3, 2)), ((0, 3), (3, 2)), ((2, 0), (0, 2)), ((2, 3), (3, 0)), ((2, 3), (2, 3))],
    "addmm": [((2, 3), (3, 2)), ((0, 3), (3, 2)), ((2, 0), (0, 2)), ((2, 3), (3, 0)), ((0, 2), (2, 0))],
    "tensordot": [((2, 3), (3, 2)), ((3,), (3,)), ((3,), (3, 1)), ((1, 3), (3, 1)), ((1, 0), (0, 1)),
                  ((3,), (3, 0)), ((0,), (0, 3)), ((2, 0), (0, 3)), ((0, 2), (2, 3)), ((2, 3, 0), (0, 2, 3)),
                  ((2, 3), (3,))],
    "inner": [((3,), (3,)), ((0,), (0,)), ((2, 3), (3,))],
}
_SHAPES["operator"] = _SHAPES["matmul"]
_SHAPES["linear_bias"] = _SHAPES["linear"]

CASES = [(name, a, b) for name in FORMS for a, b in _SHAPES[name]]


@pytest.mark.parametrize("name,a,b", CASES, ids=[f"{n}-{a}-{b}" for n, a, b in CASES])
def test_bool_products_match_torch(name, a, b):
    expected = _outcome(torch, FORMS[name], a, b, "bool", "bool")
    assert _outcome(chainrule, FORMS[name], a, b, "bool", "bool") == expected


_MIXED = [("float32", "float64"), ("bool", "int64"), ("int64", "bool"), ("float32", "bool")]


@pytest.mark.parametrize("name", ["mm", "addmm", "linear_bias", "linear"])
@pytest.mark.parametrize("a,b", [((2, 3), (2, 3)), ((2, 0), (3, 2)), ((2, 3), (3, 2))])
def test_shape_and_dtype_check_order_matches_torch(name, a, b):
    # mm: the shapes first; addmm (and F.linear with a bias): the dtypes first
    for da, db in _MIXED:
        expected = _outcome(torch, FORMS[name], a, b, da, db)
        assert _outcome(chainrule, FORMS[name], a, b, da, db) == expected, (da, db)


def _addmm(lib, shapes, dtypes):
    return lib.addmm(*(_ones(lib, shape, dtype) for shape, dtype in zip(shapes, dtypes)))


@pytest.mark.parametrize("shapes", [((2, 2, 2), (2, 2), (3,)), ((2, 3), (2,), (2, 2, 2)), ((2, 2), (2, 3), (2, 2))])
def test_addmm_dtypes_before_dims_and_expand(shapes):
    for dtypes in itertools.product(["float32", "float64", "bool"], repeat=3):
        assert _outcome(chainrule, _addmm, shapes, dtypes) == _outcome(torch, _addmm, shapes, dtypes), dtypes


@pytest.mark.parametrize("shape", [(2, 2), (2, 3, 3), (0, 0), (0, 2, 2), (2, 0, 0)])
@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_bool_matrix_power_matches_torch(shape, n):
    def form(lib, *_):
        return lib.linalg.matrix_power(_ones(lib, shape), n)
    assert _outcome(chainrule, form) == _outcome(torch, form)


def _int_matmul(lib, dtype):
    x = lib.tensor([[3, 1, 2], [0, 5, 4]]).to(getattr(lib, dtype))
    w = lib.tensor([[1, 0, 1], [1, 1, 0]]).to(getattr(lib, dtype))
    if dtype != "uint8":
        x, w = x * lib.tensor([1, -1, 1], dtype=x.dtype), w * lib.tensor([1, 1, -1], dtype=w.dtype)
    return lib.matmul(x, w.t())


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
def test_int_products_unchanged(dtype):
    # the BitNet program's int8 inference path: integer accumulation by matmul on integer tensors
    assert _outcome(chainrule, _int_matmul, dtype) == _outcome(torch, _int_matmul, dtype)


def _vector_times_batch(lib, a, b, da, db):
    return lib.matmul(_ones(lib, a, da), _ones(lib, b, db))


@pytest.mark.parametrize("a,b", [((3,), (2, 0, 3)), ((3,), (0, 2, 3)), ((3,), (2, 3, 0)), ((0,), (2, 3, 0)),
                                 ((0,), (2, 0, 3)), ((3,), (1, 2, 3, 0)), ((3,), (2, 3, 2))])
@pytest.mark.parametrize("da,db", [("float32", "float32"), ("float32", "float64"), ("bool", "bool"), ("bool", "int64")])
def test_vector_times_empty_batch_folds_to_mv_as_torch(a, b, da, db):
    # torch's matmul folds a vector times an empty batch into one mv of the batch's transposed rows
    # (as for an input that requires grad): its size and dtype errors are mv's, not bmm's
    assert _outcome(chainrule, _vector_times_batch, a, b, da, db) == _outcome(torch, _vector_times_batch, a, b, da, db)
