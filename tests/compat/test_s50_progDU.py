"""Lane progDU (session 50): gaps found around the sngp_random_feature_gp program (spectral norms
checked by linalg.matrix_norm), each compared with torch."""
import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

INF = float("inf")


def outcome(fn, lib):
    """(shape, dtype name, values, has a graph) of fn(lib), or (error type name, message)."""
    try:
        out = fn(lib)
    except Exception as error:  # noqa: BLE001 (the error is the result compared)
        return type(error).__name__, str(error)
    return (tuple(out.shape), str(out.dtype).split(".")[-1], np.asarray(out.detach().numpy()).tolist(),
            out.grad_fn is not None)


def assert_same(fn):
    expected, got = outcome(fn, torch), outcome(fn, chainrule)
    if len(expected) == 4 and len(got) == 4:  # values to float rounding (LAPACK's singular values)
        np.testing.assert_allclose(got[2], expected[2], rtol=1e-6)
        expected, got = expected[:2] + expected[3:], got[:2] + got[3:]
    assert got == expected


# ---------------------------------------------------------------- matrix_norm of empty matrices
EMPTY_SHAPES = [(0, 3), (3, 0), (0, 0), (2, 0, 3), (2, 3, 0), (0, 3, 3)]
ORDS = [2, -2, 1, -1, INF, -INF, "fro", "nuc"]


@pytest.mark.parametrize("shape", EMPTY_SHAPES)
@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("keepdim", [False, True])
def test_matrix_norm_of_empty_matrices_as_torchs(shape, ord, keepdim):
    # positive orders whose max runs over an empty dim give zeros (no graph); negative ones name
    # the empty dim torch's amin sees
    assert_same(lambda lib: lib.linalg.matrix_norm(lib.ones(shape, requires_grad=True), ord, keepdim=keepdim))
    assert_same(lambda lib: lib.linalg.norm(lib.ones(shape), ord, dim=(-2, -1), keepdim=keepdim))


@pytest.mark.parametrize("ord", [2, 1, -1, INF, -INF])
@pytest.mark.parametrize("dim", [(1, 0), (0, 2), (2, 0), (0, 1), (-1, -3), (2, 1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_matrix_norm_of_empty_matrices_over_other_dims(ord, dim, keepdim):
    for shape in [(2, 0, 3), (2, 3, 0), (0, 3, 2)]:
        assert_same(lambda lib, shape=shape: lib.linalg.matrix_norm(lib.ones(shape), ord, dim=dim, keepdim=keepdim))


# ---------------------------------------------------------------- norms' dtype=
@pytest.mark.parametrize("ord", [1, -1, INF, -INF, 2, -2, "fro", "nuc"])
@pytest.mark.parametrize("dtype_pair", [("float32", "float64"), ("float32", "float16"), ("float64", "float32"),
                                        ("float32", "complex64"), ("complex64", "float64"),
                                        ("complex64", "complex128"), ("float32", "int64"),
                                        ("float16", "float32"), ("bfloat16", "float64")])
def test_matrix_norm_dtype_as_torchs(ord, dtype_pair):
    # ord 1/inf used to ignore dtype=; torch refuses narrowing, real/complex mismatches and integer
    # dtypes, and low precision inputs for the orders from singular values even with a dtype
    source, target = dtype_pair
    a = np.array([[0.5, -1.25, 2.0], [1.5, 0.25, -0.75]])

    def fn(lib):
        x = lib.tensor(a, dtype=getattr(lib, source), requires_grad=True)
        out = lib.linalg.matrix_norm(x, ord, dtype=getattr(lib, target))
        out.backward()
        assert x.grad.dtype == x.dtype
        return out

    assert_same(fn)


@pytest.mark.parametrize("dtype_pair", [("float32", "float16"), ("float32", "int64"), ("complex64", "float32"),
                                        ("float32", "complex64"), ("float32", "float64")])
def test_vector_norm_dtype_checks_as_torchs(dtype_pair):
    source, target = dtype_pair
    assert_same(lambda lib: lib.linalg.vector_norm(lib.ones(2, 3, dtype=getattr(lib, source)),
                                                   dtype=getattr(lib, target)))
    assert_same(lambda lib: lib.norm(lib.ones(2, 3, dtype=getattr(lib, source)), dtype=getattr(lib, target)))


def test_matrix_norm_one_with_dtype_gradient_matches_torch():
    a = np.array([[0.5, -1.25, 2.0], [1.5, 0.25, -0.75]], dtype=np.float32)
    grads = []
    for lib in (torch, chainrule):
        x = lib.tensor(a, requires_grad=True)
        lib.linalg.matrix_norm(x, 1, dim=(1, 0), dtype=lib.float64).backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])


def test_empty_dim_check_comes_before_the_dtype_check():
    assert_same(lambda lib: lib.linalg.vector_norm(lib.ones(0, 3), -1, dim=0, dtype=lib.float16))
    assert_same(lambda lib: lib.nuclear_norm(lib.ones(3, 3, dtype=lib.float16)))
    assert_same(lambda lib: lib.linalg.matrix_norm(lib.ones(3, dtype=lib.float16), 2))


# ---------------------------------------------------------------- empty-dim messages as the dim was given
@pytest.mark.parametrize("shape,dim", [((0,), -1), ((2, 0), -1), ((0, 3), (-1, -2)), ((2, 0, 3), [-2]),
                                       ((0,), (-1, -2)), ((0,), (0, 1)), ((2, 0), (-1, 5)), ((2, 0), (5, -1)),
                                       ((2, 0), (-1, 1)), ((0,), (0, 0)), ((0, 3), (-2, -2)), ((), 0)])
@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_amin_empty_dim_error_names_the_dim_as_given(shape, dim, name):
    assert_same(lambda lib: getattr(lib, name)(lib.ones(shape), dim))
    assert_same(lambda lib: getattr(lib.ones(shape), name)(dim=dim, keepdim=True))


@pytest.mark.parametrize("ord", [-1, INF, -INF, -0.5])
@pytest.mark.parametrize("dim", [-1, 1, (0, 1), (1, 0), (-1, -2), [0], 0, (1, 1)])
def test_vector_norm_empty_dim_error_as_torchs(ord, dim):
    for shape in [(3, 0), (0, 3)]:
        assert_same(lambda lib, shape=shape: lib.linalg.vector_norm(lib.ones(shape), ord, dim))
        assert_same(lambda lib, shape=shape: lib.ones(shape).norm(ord, dim))


@pytest.mark.parametrize("name", ["cummax", "cummin"])
@pytest.mark.parametrize("shape,dim", [((0,), 5), ((0,), -2), ((2, 0), 5), ((0, 3), 7), ((), 3), ((0,), 0)])
def test_cummax_cummin_of_empty_input_take_any_dim(name, shape, dim):
    def fn(lib):
        x = lib.ones(shape, requires_grad=True)
        values, indices = getattr(lib, name)(x, dim)
        values.sum().backward()
        assert indices.dtype == lib.int64 and tuple(x.grad.shape) == shape
        return values

    assert_same(fn)
