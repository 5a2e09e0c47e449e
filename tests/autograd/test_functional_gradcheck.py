"""autograd.functional against torch.autograd.functional; gradcheck/gradgradcheck behaviour."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import chainrule

rng = np.random.default_rng(3)
A = rng.standard_normal((3, 3))
X = rng.standard_normal(3)
Y = rng.standard_normal(3)
V = rng.standard_normal(3)


def f_vec(lib):
    return lambda x: lib.tanh(lib.tensor(A) @ x) * x


def f_scalar(lib):
    return lambda x: (lib.tanh(lib.tensor(A) @ x) ** 2).sum() + (x ** 3).sum()


def f_two(lib):
    return lambda x, y: ((x * y).sin().sum(), (x.exp() * y))


def _np(v):
    if isinstance(v, (tuple, list)):
        return [_np(u) for u in v]
    return v.detach().numpy()


def _close(a, b):
    if isinstance(b, list):
        assert len(a) == len(b)
        for u, w in zip(a, b):
            _close(u, w)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _call(lib, name, make, inputs, v=None, **kw):
    fn = getattr(lib.autograd.functional, name)
    tensors = tuple(lib.tensor(a) for a in inputs)
    arg = tensors if len(tensors) > 1 else tensors[0]
    if v is not None:
        vs = tuple(lib.tensor(a) for a in v)
        return fn(make(lib), arg, vs if len(vs) > 1 else vs[0], **kw)
    return fn(make(lib), arg, **kw)


@pytest.mark.parametrize("name,make,inputs,v", [
    ("jacobian", f_vec, (X,), None),
    ("jacobian", f_two, (X, Y), None),
    ("hessian", f_scalar, (X,), None),
    ("vjp", f_vec, (X,), (V,)),
    ("vjp", f_scalar, (X,), None),
    ("jvp", f_vec, (X,), (V,)),
    ("hvp", f_scalar, (X,), (V,)),
    ("vhp", f_scalar, (X,), (V,)),
])
def test_functional_matches_torch(name, make, inputs, v):
    ours = _call(chainrule, name, make, inputs, v)
    ref = _call(torch, name, make, inputs, v)
    _close(_np(ours), _np(ref))


def test_hessian_of_two_inputs_matches_torch():
    def make(lib):
        return lambda x, y: (x * x * y).sum() + (x * y.sin()).sum()

    ours = _call(chainrule, "hessian", make, (X, Y))
    ref = _call(torch, "hessian", make, (X, Y))
    _close(_np(ours), _np(ref))


def test_functional_create_graph():
    x = chainrule.tensor(X, requires_grad=True)
    _, hv = chainrule.autograd.functional.hvp(f_scalar(chainrule), x, chainrule.tensor(V), create_graph=True)
    assert hv.requires_grad
    hv.sum().backward()
    xt = torch.tensor(X, requires_grad=True)
    _, hvt = torch.autograd.functional.hvp(f_scalar(torch), xt, torch.tensor(V), create_graph=True)
    hvt.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10)


def test_functional_leaves_user_grads_alone():
    x = chainrule.tensor(X, requires_grad=True)
    chainrule.autograd.functional.jacobian(f_vec(chainrule), x)
    assert x.grad is None


# ------------------------------------------------------------------ gradcheck
class WrongSquare(chainrule.autograd.Function):
    """d(x^2)/dx is 2x; this rule deliberately returns 3x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x * grad


class RightSquare(chainrule.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


def test_gradcheck_passes_on_correct_function():
    x = chainrule.tensor([[0.5, -1.0], [2.0, 0.3]], dtype=chainrule.float64, requires_grad=True)
    y = chainrule.tensor([1.5, -0.5], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda a, b: RightSquare.apply(a) * b.sin(), (x, y))
    assert chainrule.autograd.gradgradcheck(lambda a, b: RightSquare.apply(a) * b.sin(), (x, y))
    assert chainrule.autograd.gradcheck(lambda a, b: RightSquare.apply(a) * b, (x, y), fast_mode=True)


def test_gradcheck_names_input_and_prints_both_jacobians():
    x = chainrule.tensor([0.5, -1.0, 2.0], dtype=chainrule.float64, requires_grad=True)
    y = chainrule.tensor([1.0, 1.0, 1.0], dtype=chainrule.float64, requires_grad=True)
    c = chainrule.tensor([0.5, -1.0, 2.0], dtype=chainrule.float64)
    # d/db (b c)^2 = 2 b c^2 = [0.5, 2, 8]; the wrong rule gives 3 b c^2 = [0.75, 3, 12]
    with pytest.raises(chainrule.autograd.GradcheckError,
                       match=r"(?s)output 0 with respect to input 1,\nnumerical:tensor\(\[\[0\.5000.*8\.0000\]\].*"
                             r"\nanalytical:tensor\(\[\[ 0\.7500.*12\.0000\]\]"):
        chainrule.autograd.gradcheck(lambda a, b: a + WrongSquare.apply(b * c), (x, y))
    assert not chainrule.autograd.gradcheck(lambda a: WrongSquare.apply(a), (x,), raise_exception=False)
    with pytest.raises(chainrule.autograd.GradcheckError, match="mismatch"):
        chainrule.autograd.gradcheck(lambda a: WrongSquare.apply(a), (x,), fast_mode=True)


def test_gradcheck_error_is_runtime_error_like_torch():
    assert issubclass(chainrule.autograd.GradcheckError, RuntimeError)
    import sys

    assert issubclass(sys.modules["torch.autograd.gradcheck"].GradcheckError, RuntimeError)


def test_gradcheck_requires_an_input_with_grad():
    for lib in (chainrule, torch):
        with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
            lib.autograd.gradcheck(lambda a: a * 2, (lib.ones(2, dtype=lib.float64),))


def test_gradgradcheck_catches_wrong_second_derivative():
    class WrongCube(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            # right value, wrong derivative of it: x.detach() hides the dependence on x
            return 3 * x.detach() ** 2 * grad

    x = chainrule.tensor([0.5, -1.0], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(WrongCube.apply, (x,))
    with pytest.raises(chainrule.autograd.GradcheckError):
        chainrule.autograd.gradgradcheck(WrongCube.apply, (x,))


@pytest.mark.parametrize("path", ["autograd.gradcheck", "autograd.gradgradcheck", "autograd.grad",
                                  "autograd.backward", "Tensor.backward", "autograd.functional.jacobian",
                                  "autograd.functional.hessian", "autograd.functional.vjp",
                                  "autograd.functional.jvp", "autograd.functional.hvp"])
def test_signatures_match_torch(path):
    import functools
    import inspect

    def params(lib):
        fn = functools.reduce(getattr, path.split("."), lib)
        return [(n, p.default, p.kind) for n, p in inspect.signature(fn).parameters.items()]

    assert params(chainrule) == params(torch)


def _exp_function(lib, jvp_scale: float, backward_scale: float):
    """exp as a custom Function whose jvp and backward rules can be made wrong by a factor."""

    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            result = lib.exp(x)
            ctx.save_for_backward(result)
            ctx.result = result
            return result

        @staticmethod
        def jvp(ctx, tangent):
            return jvp_scale * tangent * ctx.result

        @staticmethod
        def backward(ctx, grad):
            (result,) = ctx.saved_tensors
            return backward_scale * grad * result

    return Exp.apply


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_gradcheck_checks_forward_mode_jvps_when_asked(lib):
    x = lib.tensor([[0.3, -1.2], [0.7, 2.0]], dtype=lib.float64, requires_grad=True)
    forward_only = dict(check_forward_ad=True, check_backward_ad=False, check_undefined_grad=False,
                        check_batched_grad=False)
    # a right jvp passes even when the backward rule is wrong: only forward mode is checked
    assert lib.autograd.gradcheck(_exp_function(lib, 1.0, 3.0), (x,), **forward_only)
    with pytest.raises(RuntimeError, match="forward mode mismatch for output 0 with respect to input 0"):  # GradcheckError
        lib.autograd.gradcheck(_exp_function(lib, 2.0, 1.0), (x,), **forward_only)
    assert not lib.autograd.gradcheck(_exp_function(lib, 2.0, 1.0), (x,), raise_exception=False, **forward_only)
    # both modes: a right jvp with a wrong backward still fails, on the backward comparison
    assert lib.autograd.gradcheck(_exp_function(lib, 1.0, 1.0), (x,), check_forward_ad=True)
    assert not lib.autograd.gradcheck(_exp_function(lib, 1.0, 3.0), (x,), check_forward_ad=True, raise_exception=False)


def test_gradcheck_forward_mode_through_builtin_ops_two_inputs_and_outputs():
    x = chainrule.tensor([0.5, -1.0, 2.0], dtype=chainrule.float64, requires_grad=True)
    w = chainrule.tensor([[1.5, -0.5, 0.25]], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda a, b: ((a.sin() * b).cumsum(1), (a @ b.T).tanh()), (x, w),
                                        check_forward_ad=True)


def test_a_jacobian_that_is_nan_on_both_sides_fails_as_torchs():
    # torch compares with allclose without equal_nan: NaN on both sides checks nothing, so it fails
    for lib in (torch, chainrule):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's inf - inf in the central differences
            assert lib.autograd.gradcheck(lambda t: t * float("nan"), (x,), raise_exception=False) is False
            assert lib.autograd.gradcheck(lambda t: t * float("nan"), (x,), raise_exception=False,
                                          check_forward_ad=True, check_backward_ad=False) is False
            assert lib.autograd.gradcheck(lambda t: t * 2.0, (x,), raise_exception=False) is True
