"""Session 49, lane progDH (corpus program gptq_hessian_quantization).

``torch.clamp(x, 0, maxq)`` with ``maxq`` a 0-d tensor (GPTQ's ``quantize``, its ``maxq`` a
``register_buffer``) raised clamp's "invalid combination of arguments" TypeError: torch's parser
reads a 0-d tensor that does not require grad as a Number, so a number beside it takes the
(Scalar, Scalar) overload. The same reading decides clamp_'s cast refusal ("long int", the Scalar
kernel's C++ name) and clamp's ``out=``: with number bounds the out must have the result's dtype,
with tensor bounds (clamp.Tensor_out) the result is cast into any out that can hold it.
Each form runs on torch and on chainrule with the same inputs: values, dtypes, grad_fn names,
gradients, and error types and messages compared."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_INPUTS = {
    "float32": ([-1.5, 0.3, 7.0], "float32"),
    "float64": ([-1.5, 0.3, 7.0], "float64"),
    "int64": ([1, 5, 9], "int64"),
    "uint8": ([1, 5, 9], "uint8"),
}
_BOUNDS = {
    "int": lambda lib: 0,
    "float": lambda lib: 2.5,
    "bool": lambda lib: True,
    "0d_int": lambda lib: lib.tensor(3),
    "0d_float": lambda lib: lib.tensor(4.5),
    "0d_double": lambda lib: lib.tensor(4.5, dtype=lib.float64),
    "0d_uint8": lambda lib: lib.tensor(200, dtype=lib.uint8),
    "0d_requires_grad": lambda lib: lib.tensor(4.5, requires_grad=True),
    "1d": lambda lib: lib.tensor([1.0, 2.0, 3.0]),
}
_FORMS = {
    "function": lambda lib, x, lo, hi: lib.clamp(x, lo, hi),
    "clip_keywords": lambda lib, x, lo, hi: lib.clip(x, min=lo, max=hi),
    "method": lambda lib, x, lo, hi: x.clamp(lo, hi),
    "in_place": lambda lib, x, lo, hi: x.clone().clamp_(lo, hi),
    "out_of_input_dtype": lambda lib, x, lo, hi: lib.clamp(x, lo, hi, out=lib.empty(3, dtype=x.dtype)),
}


def _outcome(lib, form, values, dtype, low, high):
    x = lib.tensor(values, dtype=getattr(lib, dtype))
    try:
        result = form(lib, x, _BOUNDS[low](lib), _BOUNDS[high](lib))
    except Exception as error:  # the refusal itself is compared
        return type(error).__name__, str(error).split("\n")[0]
    return str(result.dtype).split(".")[-1], result.tolist()


@pytest.mark.parametrize("form", sorted(_FORMS))
@pytest.mark.parametrize("inputs", sorted(_INPUTS))
@pytest.mark.parametrize("number", ["int", "float", "bool"])
@pytest.mark.parametrize("tensor", ["0d_int", "0d_float", "0d_double", "0d_uint8", "0d_requires_grad", "1d"])
@pytest.mark.parametrize("tensor_first", [True, False])
@pytest.mark.pairwise_in_ci(seed=61)
def test_clamp_with_a_number_and_a_tensor_bound(form, inputs, number, tensor, tensor_first):
    values, dtype = _INPUTS[inputs]
    low, high = (tensor, number) if tensor_first else (number, tensor)
    expected = _outcome(torch, _FORMS[form], values, dtype, low, high)
    got = _outcome(chainrule, _FORMS[form], values, dtype, low, high)
    assert got == expected


def test_gptq_quantize_with_a_buffer_maxq_and_its_gradient():
    rows = np.random.RandomState(0).randn(6, 4).astype(np.float32)

    def run(lib):
        w = lib.tensor(rows, requires_grad=True)
        maxq = lib.tensor(2 ** 3 - 1)
        xmin = lib.minimum(w.min(1)[0], lib.zeros(6)).detach()
        xmax = lib.maximum(w.max(1)[0], lib.zeros(6)).detach()
        scale = ((xmax - xmin) / maxq).reshape(-1, 1)
        zero = lib.round(-xmin / scale.flatten()).reshape(-1, 1)
        q = lib.clamp(w / scale * 1.5 + zero, 0, maxq)
        q.sum().backward()
        return q.grad_fn.name(), q.detach().numpy(), w.grad.numpy()

    (want_name, want_q, want_grad), (name, q, grad) = run(torch), run(chainrule)
    assert name == want_name == "ClampBackward1"
    np.testing.assert_allclose(q, want_q, rtol=1e-6)
    np.testing.assert_array_equal(grad, want_grad)


@pytest.mark.parametrize("out_dtype", ["float32", "float64", "float16", "int64", "int32", "bool"])
@pytest.mark.parametrize("dtype", ["float32", "int64"])
@pytest.mark.parametrize("bounds", ["tensors", "one_tensor", "int_tensors", "numbers", "float_numbers", "mixed"])
def test_clamp_out_dtype_follows_the_overload(out_dtype, dtype, bounds):
    def run(lib):
        made = {"tensors": (lib.tensor(1.0), lib.tensor(3.0)), "one_tensor": (lib.tensor(1.0), None),
                "int_tensors": (lib.tensor(1), lib.tensor(3)), "numbers": (1, 3), "float_numbers": (1.5, 3.0),
                "mixed": (1, lib.tensor(3.0))}[bounds]
        x = lib.tensor([0, 2, 5], dtype=getattr(lib, dtype))
        try:
            result = lib.clamp(x, *made, out=lib.empty(3, dtype=getattr(lib, out_dtype)))
        except Exception as error:  # the refusal itself is compared
            return type(error).__name__, str(error)
        return str(result.dtype).split(".")[-1], result.tolist()

    assert run(chainrule) == run(torch)


# add/sub's alpha given as a 0-d tensor (found probing Scalar arguments around clamp's fix): torch's
# parser reads it as a Number, so an int64 0-d alpha is an integer alpha for integer operands (it
# raised "argument alpha must not be a floating point number") and a bool one a bool alpha
_ALPHA_INPUTS = {"int64": [1, 5, 9], "float32": [1.5, -2.0, 3.0], "bool": [True, False, True], "uint8": [1, 5, 250]}
_ALPHAS = {"int": lambda lib: lib.tensor(2), "float": lambda lib: lib.tensor(0.5), "bool": lambda lib: lib.tensor(True),
           "wide_int": lambda lib: lib.tensor(300), "uint8": lambda lib: lib.tensor(3, dtype=lib.uint8),
           "complex": lambda lib: lib.tensor(1j)}
_ALPHA_FORMS = {
    "add": lambda lib, a, b, alpha: lib.add(a, b, alpha=alpha),
    "sub": lambda lib, a, b, alpha: lib.sub(a, b, alpha=alpha),
    "add_number": lambda lib, a, b, alpha: lib.add(a, 3, alpha=alpha),
    "method_add_": lambda lib, a, b, alpha: a.clone().add_(b, alpha=alpha),
    "method_sub": lambda lib, a, b, alpha: a.sub(b, alpha=alpha),
    "rsub": lambda lib, a, b, alpha: lib.rsub(a, b, alpha=alpha),
    "out": lambda lib, a, b, alpha: lib.add(a, b, alpha=alpha, out=lib.empty(3, dtype=a.dtype)),
}


@pytest.mark.parametrize("form", sorted(_ALPHA_FORMS))
@pytest.mark.parametrize("inputs", sorted(_ALPHA_INPUTS))
@pytest.mark.parametrize("alpha", sorted(_ALPHAS))
def test_add_and_sub_with_a_0d_tensor_alpha(form, inputs, alpha):
    def run(lib):
        dtype = getattr(lib, inputs)
        a, b = lib.tensor(_ALPHA_INPUTS[inputs], dtype=dtype), lib.tensor(_ALPHA_INPUTS[inputs], dtype=dtype)
        try:
            result = _ALPHA_FORMS[form](lib, a, b, _ALPHAS[alpha](lib))
        except Exception as error:  # the refusal itself is compared
            return type(error).__name__, str(error).split("\n")[0]
        return str(result.dtype).split(".")[-1], result.tolist()

    assert run(chainrule) == run(torch)


# addr's checks (found probing GPTQ's addr_ update): torch refuses a fractional beta/alpha for an
# integer result (chainrule truncated alpha=0.5 to 0 and returned input), a bool one for a non-bool
# result, a complex one with an imaginary part for a real floating result (one without is real), and
# names a vector of the wrong rank as addr's vec1/vec2 (chainrule named outer's "self")
_ADDR_DTYPES = ["int64", "float32", "float64", "bool", "uint8", "complex64"]
_ADDR_SCALARS = {"int": 2, "zero": 0, "float": 0.5, "bool": True, "complex": 1j, "real_complex": complex(2, 0),
                 "0d_int": "t2", "0d_float": "t0.5"}
_ADDR_SHAPES = {"plain": ((3, 4), (3,), (4,)), "broadcast": ((4,), (3,), (4,)), "mismatch": ((3, 5), (3,), (4,)),
                "vec1_2d": ((3, 4), (3, 1), (4,)), "vec2_0d": ((3, 4), (3,), ())}


def _addr_outcome(lib, dtype, beta, alpha, shapes, in_place):
    dtype = getattr(lib, dtype)

    def make(shape):
        n = int(np.prod(shape)) if shape else 1
        return (lib.arange(n) % 3).to(dtype).reshape(shape)

    def scalar(value):
        return lib.tensor(2) if value == "t2" else lib.tensor(0.5) if value == "t0.5" else value

    input, vec1, vec2 = (make(shape) for shape in shapes)
    try:
        if in_place:
            result = input.clone().addr_(vec1, vec2, beta=scalar(beta), alpha=scalar(alpha))
        else:
            result = lib.addr(input, vec1, vec2, beta=scalar(beta), alpha=scalar(alpha))
    except Exception as error:  # the refusal itself is compared
        return type(error).__name__, str(error).split("\n")[0]
    return str(result.dtype).split(".")[-1], result.tolist()


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("dtype", _ADDR_DTYPES)
@pytest.mark.parametrize("beta", sorted(_ADDR_SCALARS))
@pytest.mark.parametrize("alpha", sorted(_ADDR_SCALARS))
@pytest.mark.pairwise_in_ci(seed=61)
def test_addr_scalars_against_the_result_dtype(in_place, dtype, beta, alpha):
    args = (dtype, _ADDR_SCALARS[beta], _ADDR_SCALARS[alpha], _ADDR_SHAPES["plain"], in_place)
    assert _addr_outcome(chainrule, *args) == _addr_outcome(torch, *args)


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("dtype", ["int64", "float32"])
@pytest.mark.parametrize("alpha", ["int", "float", "bool"])
@pytest.mark.parametrize("shapes", sorted(_ADDR_SHAPES))
def test_addr_shape_refusals_come_before_the_scalar_checks(in_place, dtype, alpha, shapes):
    args = (dtype, 1, _ADDR_SCALARS[alpha], _ADDR_SHAPES[shapes], in_place)
    assert _addr_outcome(chainrule, *args) == _addr_outcome(torch, *args)


def test_gptq_addr_update_equals_the_matmul_update_with_its_gradient():
    rs = np.random.RandomState(1)
    w, err, row = rs.randn(6, 5), rs.randn(6), rs.randn(5)

    def run(lib):
        W = lib.tensor(w, requires_grad=True)
        e, h = lib.tensor(err, requires_grad=True), lib.tensor(row, requires_grad=True)
        by_addr = W.clone().addr_(e, h, alpha=-1)
        by_matmul = W - e.unsqueeze(1).matmul(h.unsqueeze(0))
        (by_addr * lib.arange(30.0, dtype=lib.float64).reshape(6, 5).cos()).sum().backward()
        return by_addr.detach().numpy(), by_matmul.detach().numpy(), W.grad.numpy(), e.grad.numpy(), h.grad.numpy()

    expected, got = run(torch), run(chainrule)
    np.testing.assert_allclose(got[0], got[1], rtol=1e-12, atol=1e-12)
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, rtol=1e-12, atol=1e-12)
