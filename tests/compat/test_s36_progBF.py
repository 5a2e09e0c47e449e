"""What the session-36 programs of lane progBF found, each checked against torch 2.13.

A custom ``autograd.Function`` called with arguments that are not tensors (a module, a step count,
a float, a string, None), as the hand-written adjoint ``OdeintAdjoint.apply(z0, t, func, substeps,
*params)`` is: torch's node has an edge for each Tensor argument only, so ``next_functions`` and
a node hook's ``grad_inputs`` skip the others, while ``ctx.needs_input_grad`` and the gradients
backward returns still count every argument (a gradient where the argument is no tensor is an
error)."""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")


def scaled_sum_function(lib, backward_result=None):
    """A Function of (x, scale: float, y, name: str), whose backward returns ``backward_result(g)``
    when given, else the right gradients."""

    class ScaledSum(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale, y, name):
            ctx.scale = scale
            return x * scale + y

        @staticmethod
        def backward(ctx, grad):
            ctx.seen_needs = ctx.needs_input_grad
            if backward_result is not None:
                return backward_result(grad)
            return grad * ctx.scale, None, grad, None

    return ScaledSum


def edges_and_grads(lib, y_requires_grad):
    x = lib.tensor([1.0, -2.0], requires_grad=True)
    y = lib.tensor([0.5, 0.25], requires_grad=y_requires_grad)
    out = scaled_sum_function(lib).apply(x, 3.0, y, "name")
    edges = [None if fn is None else type(fn).__name__ for fn, _ in out.grad_fn.next_functions]
    seen = {}
    out.grad_fn.register_hook(lambda grad_inputs, grad_outputs: seen.update(n=len(grad_inputs)))
    out.sum().backward()
    return edges, seen["n"], x.grad.tolist(), None if y.grad is None else y.grad.tolist()


@pytest.mark.parametrize("y_requires_grad", [True, False])
def test_next_functions_and_hook_inputs_skip_the_non_tensor_arguments(y_requires_grad):
    assert edges_and_grads(chainrule, y_requires_grad) == edges_and_grads(torch, y_requires_grad)


def none_argument_edges(lib):
    x = lib.ones(2, requires_grad=True)
    out = scaled_sum_function(lib).apply(x, 2.0, lib.ones(2), None)
    edges = len(out.grad_fn.next_functions)
    out.sum().backward()
    return edges, x.grad.tolist()


def test_a_none_argument_gets_no_edge_either():
    assert none_argument_edges(chainrule) == none_argument_edges(torch)


def backward_error(lib, backward_result):
    x = lib.ones(2, requires_grad=True)
    out = scaled_sum_function(lib, backward_result).apply(x, 2.0, lib.ones(2), "name")
    try:
        out.sum().backward()
    except RuntimeError as error:
        return str(error)
    return ("no error", x.grad.tolist())


@pytest.mark.parametrize("backward_result", [
    lambda g: (g, 3.0, g, None),        # a number where the argument is a float
    lambda g: (g, None, g, g),          # a tensor where the argument is a string
    lambda g: (g, None, g),             # one gradient short
    lambda g: (g, None, g, None, None),  # a trailing None beyond the arguments: accepted
], ids=["float-position", "string-position", "short", "trailing-none"])
def test_backward_returns_one_gradient_per_argument_and_none_for_non_tensors(backward_result):
    assert backward_error(chainrule, backward_result) == backward_error(torch, backward_result)


def test_needs_input_grad_still_counts_every_argument():
    seen = []
    for lib in (chainrule, torch):
        x = lib.ones(2, requires_grad=True)

        class Probe(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, scale, y, name):
                return x * scale + y

            @staticmethod
            def backward(ctx, grad):
                seen.append(tuple(ctx.needs_input_grad))
                return grad, None, grad, None

        Probe.apply(x, 2.0, lib.ones(2, requires_grad=True), "name").sum().backward()
    assert seen[0] == seen[1] == (True, False, True, False)


def jacobians_through_a_function_with_a_float_argument(lib):
    class Scale(lib.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x, scale, name):
            return x * scale

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.scale = inputs[1]

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.scale, None, None

        @staticmethod
        def jvp(ctx, x_tangent, scale_tangent, name_tangent):
            return x_tangent * ctx.scale

    x = lib.tensor([1.0, 2.0, 3.0])
    def f(x):
        return Scale.apply(x, 3.0, "name").sin()
    return lib.func.jacfwd(f)(x).tolist(), lib.func.jacrev(f)(x).tolist()


def test_jacfwd_checks_backward_against_jvp_with_one_value_per_argument():
    # (jacfwd's check of backward against jvp passes both one value per argument, float and string too)
    ours, theirs = (jacobians_through_a_function_with_a_float_argument(lib) for lib in (chainrule, torch))
    for mine, reference in zip(ours, theirs):
        assert torch.allclose(torch.tensor(mine), torch.tensor(reference), atol=1e-6)


def gradcheck_runs(lib):
    """How many times gradcheck runs the function (the hand-written adjoint's solve is costly)."""
    runs = []

    def shifted_square(x, p):
        runs.append(None)
        return x * x + p.sum()

    x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    p = lib.tensor([0.25, 1.5], dtype=lib.float64, requires_grad=True)
    assert lib.autograd.gradcheck(shifted_square, (x, p))
    return len(runs)


def test_gradcheck_runs_the_function_no_more_often_than_torch():
    # torch's 12: one run whose graph serves every analytical Jacobian, two per input element for
    # the central differences, one for its undefined-gradient check (which chainrule lacks)
    assert gradcheck_runs(chainrule) <= gradcheck_runs(torch)
