"""s46 progCH: gaps found while writing the esn_reservoir_ridge / koopman_autoencoder_dynamics /
iwae_importance_weighted corpus programs, each compared with torch."""

import fractions
import warnings

import numpy as np
import pytest
import torch as real_torch

import chainrule


def _error(lib, fn):
    with pytest.raises(Exception) as info:
        fn(lib)
    return type(info.value).__name__, str(info.value)


@pytest.mark.parametrize("call", ["linalg", "torch", "method"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (0, 3), (2, 2, 3)])
@pytest.mark.parametrize("n", [0, 2, -1])
def test_matrix_power_rejects_what_torch_rejects_with_its_message(call, shape, n):
    def fn(lib):
        A = lib.ones(shape)
        if call == "linalg":
            return lib.linalg.matrix_power(A, n)
        if call == "torch":
            return lib.matrix_power(A, n)
        return A.matrix_power(n)

    assert _error(chainrule, fn) == _error(real_torch, fn)


_NOT_TENSORS = [
    lambda lib: np.ones((2, 2)),
    lambda lib: np.float64(1.0),
    lambda lib: [[1.0, 2.0], [3.0, 4.0]],
    lambda lib: 1.5,
    lambda lib: None,
    lambda lib: lib.float32,
    lambda lib: lib.Size([2, 2]),
    lambda lib: lib.device("cpu"),
    lambda lib: lib.nn.Linear(2, 2),
    lambda lib: fractions.Fraction(1, 2),
]


@pytest.mark.parametrize("make", _NOT_TENSORS)
def test_param_data_set_to_a_non_tensor_names_its_type_as_torch(make):
    # koopmanAE's `self.dynamics.weight.data = ...` idiom: torch names the type by CPython's tp_name
    def fn(lib):
        lin = lib.nn.Linear(2, 2, bias=False)
        lin.weight.data = make(lib)

    assert _error(chainrule, fn) == _error(real_torch, fn)


@pytest.mark.parametrize("make", [make for make in _NOT_TENSORS if make(chainrule) is not None])
def test_variable_of_a_non_tensor_names_its_type_as_torch(make):
    # Variable(None) is an empty tensor in both, so None is left out
    def fn(lib):
        return lib.autograd.Variable(make(lib))

    assert _error(chainrule, fn) == _error(real_torch, fn)


@pytest.mark.parametrize("shape,sparsity", [((6, 4), 0.5), ((5, 3), 0.1), ((4, 7), 0.9), ((3, 2), 0.0)])
def test_init_sparse_with_a_generator_zeroes_rows_from_the_default_generator(shape, sparsity):
    # a sparse reservoir by nn.init.sparse_(W, sparsity, generator=g): torch's randperm ignores g
    def run(lib):
        lib.manual_seed(0)
        w = lib.nn.init.sparse_(lib.empty(*shape), sparsity, std=0.5, generator=lib.Generator().manual_seed(3))
        return w.numpy().copy(), lib.rand(3).numpy()

    ours, theirs = run(chainrule), run(real_torch)
    np.testing.assert_array_equal(ours[0] == 0, theirs[0] == 0)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6)
    np.testing.assert_array_equal(ours[1], theirs[1])


def _matrix_power_into_out(lib, in_dtype, out_dtype, n, requires_grad):
    A = (lib.eye(3, dtype=getattr(lib, in_dtype)) * 2).requires_grad_(requires_grad)
    out = lib.empty(1, dtype=getattr(lib, out_dtype))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = lib.linalg.matrix_power(A, n, out=out)
            shown = (str(result.dtype).split(".")[-1], result.tolist(), result.requires_grad, result is out)
        except Exception as error:  # noqa: BLE001 (the error is what is compared)
            shown = (type(error).__name__, str(error))
    return shown, [str(w.message) for w in caught]


_DTYPE_PAIRS = [("float64", "float32"), ("float32", "float64"), ("float32", "complex64"), ("float64", "int64"),
                ("int64", "float32"), ("int64", "int32"), ("int64", "int64"), ("complex64", "float32"),
                ("float32", "bool"), ("int32", "int64"), ("float32", "float32")]


@pytest.mark.parametrize("in_dtype,out_dtype,requires_grad", [
    (i, o, grad) for i, o in _DTYPE_PAIRS for grad in (False, True) if not (grad and i.startswith("int"))])
@pytest.mark.parametrize("n", [0, 1, 2, 3, -1, -2])
def test_matrix_power_out_checks_as_torch(in_dtype, out_dtype, requires_grad, n):
    # torch's linalg_matrix_power_out: a castable out, the resize warning, then eye/A copied in for
    # n = 0, 1 (a copy takes a cast, and A's gradient), linalg.inv's or matmul's out= otherwise
    assert _matrix_power_into_out(chainrule, in_dtype, out_dtype, n, requires_grad) == \
        _matrix_power_into_out(real_torch, in_dtype, out_dtype, n, requires_grad)


@pytest.mark.parametrize("op", ["eigvals", "eig"])
@pytest.mark.parametrize("make", [
    lambda lib: lib.eye(3),
    lambda lib: lib.ones(3),
    lambda lib: lib.ones(2, 3),
    lambda lib: lib.ones(3, 3, dtype=lib.int64),
    lambda lib: lib.eye(3, dtype=lib.float64),
])
def test_eig_of_a_sparse_coo_tensor_is_refused_as_torch(op, make):
    # a reservoir made sparse (W.to_sparse()) before its spectral radius: torch has no sparse linalg_eig
    def fn(lib):
        return getattr(lib.linalg, op)(make(lib).to_sparse())

    kind, message = _error(real_torch, fn)
    ours = _error(chainrule, fn)
    # (torch's message goes on to list the backends that have the kernel)
    assert ours[0] == kind and message.startswith(ours[1])
