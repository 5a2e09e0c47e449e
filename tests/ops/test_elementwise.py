"""Elementwise ops: forward and gradient vs torch, gradcheck and gradgradcheck in float64."""

import numpy as np
import pytest

from .harness import OpCase, check_gradients, compare_with_torch, noncontig, parametrize, positive, randn

B = randn(3, 4)
ROW = randn(4, seed=1)
COL = randn(3, 1, seed=2)
SCALAR = randn(seed=3)  # 0-d
EMPTY = randn(0, 4)

BINARY = [
    ("add", lambda lib, a, b: a + b),
    ("sub", lambda lib, a, b: a - b),
    ("mul", lambda lib, a, b: a * b),
    ("div", lambda lib, a, b: a / b),
    ("maximum", lambda lib, a, b: lib.maximum(a, b)),
    ("minimum", lambda lib, a, b: lib.minimum(a, b)),
    ("atan2", lambda lib, a, b: lib.atan2(a, b)),
    ("add_alpha", lambda lib, a, b: lib.add(a, b, alpha=2.5)),
    ("sub_alpha", lambda lib, a, b: lib.sub(a, b, alpha=0.5)),
]
PAIRS = [(B, randn(3, 4, seed=5, low_gap=0.3)), (B, ROW), (COL, ROW), (SCALAR, B), (B, SCALAR),
         (noncontig(B), ROW), (EMPTY, randn(4, seed=6))]

UNARY = [
    ("neg", lambda lib, x: -x, randn(3, 4)),
    ("abs", lambda lib, x: x.abs(), randn(3, 4, low_gap=0.1)),
    ("exp", lambda lib, x: x.exp(), randn(3, 4)),
    ("exp2", lambda lib, x: lib.exp2(x), randn(3, 4)),
    ("expm1", lambda lib, x: x.expm1(), randn(3, 4)),
    ("log", lambda lib, x: x.log(), positive(3, 4)),
    ("log1p", lambda lib, x: x.log1p(), positive(3, 4)),
    ("log2", lambda lib, x: x.log2(), positive(3, 4)),
    ("log10", lambda lib, x: x.log10(), positive(3, 4)),
    ("sqrt", lambda lib, x: x.sqrt(), positive(3, 4)),
    ("rsqrt", lambda lib, x: x.rsqrt(), positive(3, 4)),
    ("square", lambda lib, x: x.square(), randn(3, 4)),
    ("reciprocal", lambda lib, x: x.reciprocal(), positive(3, 4)),
    ("sin", lambda lib, x: x.sin(), randn(3, 4)),
    ("cos", lambda lib, x: x.cos(), randn(3, 4)),
    ("tan", lambda lib, x: x.tan(), randn(3, 4) * 0.5),
    ("asin", lambda lib, x: x.asin(), randn(3, 4) * 0.3),
    ("acos", lambda lib, x: x.acos(), randn(3, 4) * 0.3),
    ("atan", lambda lib, x: x.atan(), randn(3, 4)),
    ("sinh", lambda lib, x: x.sinh(), randn(3, 4)),
    ("cosh", lambda lib, x: x.cosh(), randn(3, 4)),
    ("tanh", lambda lib, x: x.tanh(), randn(3, 4)),
    ("sigmoid", lambda lib, x: x.sigmoid(), randn(3, 4) * 3),
    ("erf", lambda lib, x: lib.erf(x), randn(3, 4)),
    ("pow_scalar", lambda lib, x: x ** 3, randn(3, 4)),
    ("pow_half", lambda lib, x: x ** 0.5, positive(3, 4)),
    ("rpow", lambda lib, x: 2.0 ** x, randn(3, 4)),
    ("pow_tensor", lambda lib, x: x ** (x * 0.5), positive(3, 4)),
    ("clamp", lambda lib, x: x.clamp(-0.5, 0.5), randn(3, 4, low_gap=0.1)),
    ("clamp_min", lambda lib, x: x.clamp(min=0.2), randn(3, 4, low_gap=0.1) + 0.05),
    ("clamp_max", lambda lib, x: lib.clamp(x, max=0.1), randn(3, 4, low_gap=0.1) + 0.05),
    ("sign", lambda lib, x: x.sign() * x, randn(3, 4, low_gap=0.1)),
    ("floor", lambda lib, x: x.floor() + x, randn(3, 4)),
    ("ceil", lambda lib, x: x.ceil() + x, randn(3, 4)),
    ("round", lambda lib, x: x.round() + x, randn(3, 4)),
    ("trunc", lambda lib, x: x.trunc() + x, randn(3, 4)),
    ("frac", lambda lib, x: x.frac(), randn(3, 4) + 0.05),
    ("remainder", lambda lib, x: x % 0.7, randn(3, 4) + 0.01),
    ("fmod", lambda lib, x: lib.fmod(x, 0.7), randn(3, 4) + 0.01),
    ("rsub", lambda lib, x: 1.5 - x, randn(3, 4)),
    ("rdiv", lambda lib, x: 2.0 / x, positive(3, 4)),
    ("unary_0d", lambda lib, x: (x * 2).exp(), randn()),
    ("unary_empty", lambda lib, x: x.tanh(), randn(0, 3)),
    ("unary_noncontig", lambda lib, x: x.sin(), noncontig(randn(3, 4))),
    ("where", lambda lib, x: lib.where(x > 0, x * 2, x.exp()), randn(3, 4, low_gap=0.1)),
    ("xlogy", lambda lib, x: lib.xlogy(x, x + 3), positive(3, 4)),
    ("lerp", lambda lib, x: lib.lerp(x, x * x, 0.3), randn(3, 4)),
    ("addcmul", lambda lib, x: lib.addcmul(x, x, x.exp(), value=0.5), randn(3, 4)),
    ("addcdiv", lambda lib, x: lib.addcdiv(x, x, x.exp(), value=0.5), randn(3, 4)),
]

CASES = [OpCase(f"{name}", fn, [a, b]) for name, fn in BINARY for a, b in PAIRS]
CASES += [OpCase(name, fn, [x]) for name, fn, x in UNARY]


@parametrize(CASES)
def test_matches_torch(case):
    compare_with_torch(case)


@parametrize(CASES)
def test_gradcheck(case):
    check_gradients(case)


def test_maximum_ties_split_the_gradient():
    import chainrule as cr

    a = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = cr.tensor([1.0, 1.0, 4.0], requires_grad=True)
    cr.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 1.0, 0.0]
    assert b.grad.tolist() == [0.5, 0.0, 1.0]


@pytest.mark.parametrize("op", ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"])
def test_comparisons_give_bool_without_grad(op):
    import chainrule as cr

    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    out = getattr(x, op)(2.0)
    assert out.dtype is cr.bool and not out.requires_grad
    expected = getattr(np.array([1.0, 2.0, 3.0]), op)(2.0)
    assert out.tolist() == expected.tolist()


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("op", ["__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
                                "__truediv__", "__rtruediv__"])
@pytest.mark.parametrize("scalar", [0.5, -3, 0.0, -0.0])
def test_operator_fast_path_matches_torch(op, scalar, grad):
    """Python-number operands take a fast path (cached constants, no promotion): same values,
    same dtype and the same gradient as torch, including the sign of a zero operand."""
    import chainrule as cr

    torch = pytest.importorskip("torch")
    data = np.array([1.5, -2.0, 0.25], dtype=np.float32)
    ours = cr.tensor(data, requires_grad=grad)
    theirs = torch.tensor(data, requires_grad=grad)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = getattr(ours, op)(scalar)
    b = getattr(theirs, op)(scalar)
    assert a.dtype is cr.float32 and a.requires_grad == b.requires_grad
    np.testing.assert_array_equal(np.signbit(a.detach().numpy()), np.signbit(b.detach().numpy()))
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy())
    if grad:
        with np.errstate(divide="ignore", invalid="ignore"):
            a.sum().backward()
        b.sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy())


def test_same_dtype_tensor_fast_path_broadcasts_and_records():
    import chainrule as cr

    a = cr.ones(2, 3)
    b = cr.arange(3.0)
    assert (a * b).tolist() == [[0.0, 1.0, 2.0]] * 2
    w = cr.ones(3, requires_grad=True)
    (a * w).sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]
    assert (a * w).grad_fn.name() == "MulBackward0"
