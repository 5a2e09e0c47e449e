"""What torch 2.13's op_db reference inputs found (``tools/torch_opinfo_trial.py run --inputs
reference --limit 0``), each case in our own words and compared with torch: values, dtypes,
gradients, and torch's exception type and message where torch refuses.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

NAN, INF = float("nan"), float("inf")


def _raises_like_torch(call):
    """call(lib) raises on torch and on chainrule with the same type and message."""
    with pytest.raises(Exception) as expected:
        call(torch)
    with pytest.raises(type(expected.value)) as actual:
        call(chainrule)
    assert str(actual.value) == str(expected.value)


def _values_and_grads(lib, fn, arrays, upstream_seed=0):
    """fn(lib, *leaves) on float leaves that require grad; its value and every leaf's gradient
    under one fixed upstream."""
    leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = fn(lib, *leaves)
        upstream = np.random.default_rng(upstream_seed).standard_normal(tuple(out.shape))
        grads = lib.autograd.grad(out, leaves, lib.tensor(upstream.astype(arrays[0].dtype)), allow_unused=True)
    return out.detach().numpy(), [None if g is None else g.numpy() for g in grads]


def _same_as_torch(fn, *arrays):
    ours, our_grads = _values_and_grads(chainrule, fn, arrays)
    theirs, their_grads = _values_and_grads(torch, fn, arrays)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)  # NaN positions included
    for i, (mine, expected) in enumerate(zip(our_grads, their_grads)):
        if expected is None:
            expected = np.zeros_like(arrays[i])
        # NaN positions must match; finite values to rounding (torch's kernels order sums differently)
        np.testing.assert_allclose(mine if mine is not None else np.zeros_like(arrays[i]), expected,
                                   rtol=1e-6 if expected.dtype == np.float32 else 1e-12,
                                   err_msg=f"gradient of input {i}")


# ---- two Python numbers: torch wraps the first as a 0-d tensor -------------------------------
@pytest.mark.parametrize("name", ["add", "sub", "subtract", "mul", "multiply", "div", "true_divide", "divide"])
@pytest.mark.parametrize("numbers", [(-8.5, -1.75), (3, 2), (2, 1.5), (True, 3), (1 + 2j, 2)])
def test_arithmetic_of_two_python_numbers_is_a_0d_tensor(name, numbers):
    if name.startswith("sub") and isinstance(numbers[0], bool):
        _raises_like_torch(lambda lib: getattr(lib, name)(*numbers))  # no bool subtraction, wrapped or not
        return
    expected = getattr(torch, name)(*numbers)
    actual = getattr(chainrule, name)(*numbers)
    assert isinstance(actual, chainrule.Tensor)
    assert str(actual.dtype) == str(expected.dtype).replace("torch", "chainrule")
    assert actual.shape == ()
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-6)


def test_add_of_two_python_numbers_keeps_alpha_and_bool():
    assert chainrule.add(2, 3, alpha=2).item() == torch.add(2, 3, alpha=2).item() == 8
    assert chainrule.add(True, False).dtype == chainrule.bool
    assert chainrule.mul(True, False).item() is torch.mul(True, False).item()


# ---- rounding divisions have no bool or complex kernel ---------------------------------------
@pytest.mark.parametrize("rounding_mode", ["floor", "trunc"])
@pytest.mark.parametrize("dtype", ["bool", "complex64"])
def test_rounding_division_refuses_bool_and_complex_as_torch(rounding_mode, dtype):
    _raises_like_torch(lambda lib: lib.div(lib.ones(2, dtype=getattr(lib, dtype)),
                                           lib.ones(2, dtype=getattr(lib, dtype)), rounding_mode=rounding_mode))


def test_floor_divide_of_two_bools_refuses_as_torch():
    _raises_like_torch(lambda lib: lib.floor_divide(True, False))


# ---- clamp with tensor bounds propagates NaN from either side --------------------------------
CLAMP_X = np.array([NAN, 1.0, NAN, 2.0, -0.0, 0.0, 3.0, -INF])
CLAMP_BOUND = np.array([1.0, NAN, NAN, -0.0, 0.0, INF, 3.0, -1.0])


@pytest.mark.parametrize("name", ["clamp_min", "clamp_max"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clamp_with_a_nan_tensor_bound_is_nan_with_no_gradient(name, dtype):
    _same_as_torch(lambda lib, x, bound: getattr(lib, name)(x, bound), CLAMP_X.astype(dtype),
                   CLAMP_BOUND.astype(dtype))



@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("other", [-1.5, "tensor"])
def test_tensor_method_called_unbound_on_a_number_refuses_as_torch(name, other):
    def call(lib):
        return getattr(lib.Tensor, name)(2.5, lib.ones(2) if other == "tensor" else other)

    with pytest.raises(TypeError, match="descriptor") as expected:
        call(torch)
    with pytest.raises(TypeError) as actual:
        call(chainrule)
    assert str(actual.value) == str(expected.value)


# ---- logaddexp: torch's gradient formula at infinities; no integer kernel ---------------------
EXTREMAL = np.array([INF, -INF, NAN, 0.0, -0.0, 1e308, -1e308, 5.0])


def test_logaddexp_gradient_at_infinities_follows_torch():
    pairs = np.array(np.meshgrid(EXTREMAL, EXTREMAL)).reshape(2, -1)
    _same_as_torch(lambda lib, a, b: lib.logaddexp(a, b), pairs[0].copy(), pairs[1].copy())


def test_logaddexp_gradient_passes_gradcheck_and_gradgradcheck_far_apart():
    a = chainrule.tensor([0.5, -2.0, 30.0], dtype=chainrule.float64, requires_grad=True)
    b = chainrule.tensor([1.5, 40.0, -30.0], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(chainrule.logaddexp, (a, b))
    assert chainrule.autograd.gradgradcheck(chainrule.logaddexp, (a, b))


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_logaddexp_refuses_integers_as_torch(dtype):
    _raises_like_torch(lambda lib: lib.logaddexp(lib.ones(2, dtype=getattr(lib, dtype)),
                                                 lib.ones(2, dtype=getattr(lib, dtype))))


# ---- xlogy: no x-gradient where x = 0 and y <= 0, nor where the upstream gradient is 0 --------
def test_xlogy_gradient_at_zero_x_and_nonpositive_y_follows_torch():
    ys = np.array([0.0, -0.0, -1e-3, 1e-3, -0.25, 0.25, -INF, INF, NAN, 3.0])
    xs = np.array([0.0, 0.0, 0.0, 0.0, 1.5, 0.0, 0.0, 0.0, 0.0, -2.0])
    _same_as_torch(lambda lib, x, y: lib.xlogy(x, y), xs, ys)


# ---- index_add of bools with repeated indices: a logical or ----------------------------------
@pytest.mark.parametrize("alpha", [True, False])
def test_index_add_of_bools_with_repeated_indices(alpha):
    def run(lib):
        x = lib.tensor([[True, False, False], [False, False, False]])
        source = lib.tensor([[True, True, False], [False, True, False], [False, False, False]])
        return x.index_add(0, lib.tensor([1, 1, 0]), source, alpha=alpha)

    expected, actual = run(torch), run(chainrule)
    assert actual.dtype == chainrule.bool
    np.testing.assert_array_equal(actual.numpy(), expected.numpy())


# ---- nextafter: no gradient where input equals other ------------------------------------------
def test_nextafter_gradient_is_zero_where_input_equals_other():
    xs = np.array([1.0, 2.0, 3.0, NAN, 0.0, -0.0, 1e20, -501.0])
    ys = np.array([1.0, 5.0, 0.0, 1.0, -0.0, 0.0, 1e20, -501.0])
    _same_as_torch(lambda lib, x, y: lib.nextafter(x, y), xs, ys)


# ---- Tensor.__rsub__ called unbound on a number answers NotImplemented, as torch's ------------
def test_rsub_dunder_unbound_on_a_number_is_not_implemented():
    assert torch.Tensor.__rsub__(5.1, torch.ones(2)) is NotImplemented
    assert chainrule.Tensor.__rsub__(5.1, chainrule.ones(2)) is NotImplemented
    np.testing.assert_allclose(chainrule.Tensor.__rsub__(chainrule.ones(2), 5.1).numpy(),
                               torch.Tensor.__rsub__(torch.ones(2), 5.1).numpy())


# ---- special.xlog1py takes a Python number on either side -------------------------------------
@pytest.mark.parametrize("numbers_first", [False, True])
def test_xlog1py_takes_a_python_number(numbers_first):
    def run(lib):
        t = lib.tensor([0.0, 1.0, -2.0, 3.5])
        return lib.special.xlog1py(2.0, t) if numbers_first else lib.special.xlog1py(t, 2.0)

    expected, actual = run(torch), run(chainrule)
    assert actual.dtype == chainrule.float32
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-6, equal_nan=True)
