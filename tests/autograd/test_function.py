"""User-written autograd.Functions, written exactly as torch's docs write them, run on both libraries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule

LIBS = [chainrule, torch]


def make_functions(lib):
    """The torch-docs examples: Exp, LinearFunction, MulConstant, and a two-output function."""

    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, i):
            result = i.exp()
            ctx.save_for_backward(result)
            return result

        @staticmethod
        def backward(ctx, grad_output):
            (result,) = ctx.saved_tensors
            return grad_output * result

    class LinearFunction(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input, weight, bias=None):
            ctx.save_for_backward(input, weight, bias)
            output = input.mm(weight.t())
            if bias is not None:
                output += bias.unsqueeze(0).expand_as(output)
            return output

        @staticmethod
        def backward(ctx, grad_output):
            input, weight, bias = ctx.saved_tensors
            grad_input = grad_weight = grad_bias = None
            if ctx.needs_input_grad[0]:
                grad_input = grad_output.mm(weight)
            if ctx.needs_input_grad[1]:
                grad_weight = grad_output.t().mm(input)
            if bias is not None and ctx.needs_input_grad[2]:
                grad_bias = grad_output.sum(0)
            return grad_input, grad_weight, grad_bias

    class MulConstant(lib.autograd.Function):
        @staticmethod
        def forward(ctx, tensor, constant):
            ctx.constant = constant
            return tensor * constant

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * ctx.constant, None

    class SinCos(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin(), x.cos()

        @staticmethod
        def backward(ctx, grad_sin, grad_cos):
            (x,) = ctx.saved_tensors
            return grad_sin * x.cos() - grad_cos * x.sin()

    class SortWithIndex(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            order = np.argsort(x.detach().numpy())
            idx = lib.from_numpy(order.copy())
            ctx.mark_non_differentiable(idx)
            ctx.save_for_backward(idx)
            return x[idx], idx

        @staticmethod
        def backward(ctx, grad, grad_idx):
            (idx,) = ctx.saved_tensors
            out = lib.zeros_like(grad)
            out[idx] = grad
            return out

    return Exp, LinearFunction, MulConstant, SinCos, SortWithIndex


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)


def _run(lib, which):
    Exp, Linear, MulConstant, SinCos, Sort = make_functions(lib)
    xa, wa, ba = _data()
    x = lib.tensor(xa, requires_grad=True)
    w = lib.tensor(wa, requires_grad=True)
    b = lib.tensor(ba, requires_grad=True)
    if which == "exp":
        out = Exp.apply(x).sum()
    elif which == "linear":
        out = (Linear.apply(x, w, b) ** 2).sum()
    elif which == "linear_nobias":
        out = (Linear.apply(x, w) ** 2).sum()
    elif which == "mulconstant":
        out = MulConstant.apply(x, 2.5).sum()
    elif which == "sincos":
        s, c = SinCos.apply(x)
        out = (s * 2 + c * 3).sum()
    elif which == "sincos_one_used":
        s, _ = SinCos.apply(x)
        out = s.sum()
    elif which == "sort":
        values, idx = Sort.apply(x[0])
        assert not idx.requires_grad
        out = (values * lib.arange(3.0, dtype=values.dtype)).sum()
    out.backward()
    return out.detach().numpy(), [t.grad.numpy() if t.grad is not None else None for t in (x, w, b)]


@pytest.mark.parametrize("which", ["exp", "linear", "linear_nobias", "mulconstant", "sincos",
                                   "sincos_one_used", "sort"])
def test_user_functions_match_torch(which):
    ours_out, ours_grads = _run(chainrule, which)
    ref_out, ref_grads = _run(torch, which)
    np.testing.assert_allclose(ours_out, ref_out, rtol=1e-10)
    for g, r in zip(ours_grads, ref_grads):
        assert (g is None) == (r is None)
        if g is not None:
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_grad_fn_name_and_needs_input_grad(lib):
    Exp, Linear, *_ = make_functions(lib)
    x = lib.ones(2, requires_grad=True)
    assert type(Exp.apply(x).grad_fn).__name__ == "ExpBackward"
    seen = {}

    class Probe(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, k):
            seen["needs"] = tuple(ctx.needs_input_grad)
            return a * b * k

        @staticmethod
        def backward(ctx, grad):
            return grad, grad, None

    Probe.apply(x, lib.ones(2), 3.0)
    assert seen["needs"] == (True, False, False)


def test_function_under_no_grad_records_nothing():
    for lib in LIBS:
        Exp, *_ = make_functions(lib)
        x = lib.ones(2, requires_grad=True)
        with lib.no_grad():
            y = Exp.apply(x)
        assert y.grad_fn is None and not y.requires_grad


def test_function_double_backward_through_saved_output():
    results = []
    for lib in LIBS:
        Exp, *_ = make_functions(lib)
        x = lib.tensor([0.5, -1.0], dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad(Exp.apply(x).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        results.append(gg.numpy())
    np.testing.assert_allclose(results[0], results[1])
    np.testing.assert_allclose(results[0], np.exp([0.5, -1.0]))


def test_wrong_number_of_gradients_raises():
    for lib in LIBS:
        class Bad(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a, b):
                return a + b

            @staticmethod
            def backward(ctx, grad):
                return (grad,)

        x = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match="incorrect number of gradients"):
            Bad.apply(x, x).sum().backward()


def test_wrong_gradient_shape_names_the_node():
    class Bad(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return chainrule.ones(5)

    x = chainrule.ones(3, requires_grad=True)
    # torch's words: "Function BadBackward returned an invalid gradient at index 0 - got [5] but
    # expected shape compatible with [3]"
    with pytest.raises(RuntimeError, match=r"Function BadBackward returned an invalid gradient at index 0 - "
                                           r"got \[5\] but expected shape compatible with \[3\]"):
        Bad.apply(x).sum().backward()


def test_saved_tensor_modified_in_place_raises():
    for lib in LIBS:
        Exp, *_ = make_functions(lib)
        x = lib.ones(2, requires_grad=True)
        y = Exp.apply(x)
        y.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_once_differentiable_runs_backward_without_graph():
    class Square(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @chainrule.autograd.once_differentiable
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x = chainrule.tensor([3.0], requires_grad=True)
    (g,) = chainrule.autograd.grad(Square.apply(x), x, create_graph=True)
    assert g.item() == 6.0 and not g.requires_grad


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_none_gradient_for_an_input_that_requires_grad(lib):
    class FirstOnly(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * 2 + b

        @staticmethod
        def backward(ctx, grad):
            return grad * 2, None

    a = lib.ones(2, requires_grad=True)
    b = lib.ones(2, requires_grad=True)
    FirstOnly.apply(a, b).sum().backward()
    assert a.grad.tolist() == [2.0, 2.0] and b.grad is None
    ga, gb = lib.autograd.grad(FirstOnly.apply(a, b).sum(), [a, b], allow_unused=True)
    assert ga.tolist() == [2.0, 2.0] and gb is None


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_ctx_attributes_without_recording(lib):
    _, _, MulConstant, *_ = make_functions(lib)
    with lib.no_grad():
        y = MulConstant.apply(lib.ones(2, requires_grad=True), 3.0)
    assert y.tolist() == [3.0, 3.0] and not y.requires_grad


def _functorch_style_cube(lib):
    """torch's "Extending torch.func with autograd.Function" shape: forward takes no ctx,
    setup_context saves what backward and jvp need, and the output is a tuple."""
    class Cube(lib.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x):
            return x ** 3, 3 * x ** 2

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, = inputs
            ctx.save_for_backward(x, output[1])
            ctx.save_for_forward(x)
            ctx.mark_non_differentiable(output[1])

        @staticmethod
        def backward(ctx, grad_cube, grad_slope):
            x, slope = ctx.saved_tensors
            return grad_cube * slope

        @staticmethod
        def jvp(ctx, tangent):
            x, = ctx.saved_tensors
            return 3 * x ** 2 * tangent, None

    return Cube


def test_a_functorch_style_function_runs_under_every_transform_as_torch():
    found = []
    for lib in (chainrule, torch):
        cube = _functorch_style_cube(lib)
        x = lib.tensor([0.5, -1.5, 2.0], dtype=lib.float64, requires_grad=True)
        value, slope = cube.apply(x)
        (value * lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)).sum().backward()
        plain = x.detach()

        def cubed(y, cube=cube):
            return cube.apply(y)[0]

        found.append([value.detach(), slope, x.grad, slope.requires_grad,
                      lib.func.grad(lambda y, cubed=cubed: cubed(y).sum())(plain),
                      lib.func.jacrev(cubed)(plain), lib.func.jacfwd(cubed)(plain),
                      lib.func.vmap(cubed)(plain.reshape(3, 1))])
    for ours, theirs in zip(*found):
        if isinstance(ours, bool):
            assert ours == theirs
        else:
            np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_legacy_instance_style_function_is_refused_as_torch_refuses_it(lib):
    # pre-0.4 scripts wrote forward/backward as instance methods and called an instance:
    # building it warns, calling it raises torch's RuntimeError (not a TypeError "not callable")
    class LegacyReLU(lib.autograd.Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x.clamp(min=0)

        def backward(self, grad_output):
            (x,) = self.saved_tensors
            return grad_output * (x > 0)

    with pytest.warns(DeprecationWarning, match="should not be instantiated"):
        relu = LegacyReLU()
    with pytest.raises(RuntimeError, match="Legacy autograd function with non-static forward method"):
        relu(lib.ones(3, requires_grad=True))
