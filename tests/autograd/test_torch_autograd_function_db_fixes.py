"""What torch's autograd.Function database (autograd_function_db, driven by
tools/torch_autograd_function_trial.py) found chainrule doing differently: custom Functions in the
functorch style (forward without ctx, setup_context, jvp, vmap) under autograd and torch.func,
each checked against torch 2.13 in our own words. Every Function is written once and built on
both libraries."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")
LIBS = [chainrule, torch]


def _close(ours, theirs, tol=1e-6):
    assert str(ours.dtype).rpartition(".")[2] == str(theirs.dtype).rpartition(".")[2]
    np.testing.assert_allclose(np.asarray(ours.detach().numpy()), theirs.detach().numpy(), rtol=tol, atol=tol)


def _tensor(lib, values, **kwargs):
    return lib.tensor(np.asarray(values, dtype=np.float64), **kwargs)


# ---------------------------------------------------------------- forward with a default argument
def _power_with_default(lib):
    """x ** exponent, exponent defaulting to 3; setup_context keeps what ``inputs`` held."""

    class Power(lib.autograd.Function):
        @staticmethod
        def forward(x, exponent=3):
            return x ** exponent

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, exponent = inputs  # the default is among the inputs
            ctx.save_for_backward(x)
            ctx.save_for_forward(x)
            ctx.exponent = exponent

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * ctx.exponent * x ** (ctx.exponent - 1), None

        @staticmethod
        def jvp(ctx, x_tangent, exponent_tangent):  # one tangent per input, the default's included
            (x,) = ctx.saved_tensors
            return x_tangent * ctx.exponent * x ** (ctx.exponent - 1)

    return Power


def _power_derivative(lib, transform):
    power = _power_with_default(lib)
    x = _tensor(lib, [0.5, -1.5, 2.0])
    if transform == "backward":
        x.requires_grad_()
        return lib.autograd.grad(power.apply(x).sum(), x)[0]
    if transform == "forward_ad":
        with lib.autograd.forward_ad.dual_level():
            dual = lib.autograd.forward_ad.make_dual(x, lib.ones_like(x))
            return lib.autograd.forward_ad.unpack_dual(power.apply(dual)).tangent.clone()
    if transform == "func.grad":
        return lib.func.grad(lambda v: power.apply(v).sum())(x)
    return lib.func.jvp(power.apply, (x,), (lib.ones_like(x),))[1]


@pytest.mark.parametrize("transform", ["backward", "forward_ad", "func.grad", "func.jvp"])
def test_a_defaulted_forward_argument_reaches_setup_context_and_jvp(transform):
    ours, theirs = (_power_derivative(lib, transform) for lib in LIBS)
    _close(ours, theirs)
    _close(ours, _tensor(torch, [0.75, 6.75, 12.0]))


def test_a_defaulted_argument_given_by_keyword_binds_as_torch_binds_it():
    outs = [_power_with_default(lib).apply(_tensor(lib, [2.0, 3.0]), exponent=2) for lib in LIBS]
    _close(*outs)
    for lib in LIBS:
        with pytest.raises(TypeError, match="unexpected keyword argument 'power'"):
            _power_with_default(lib).apply(_tensor(lib, [2.0]), power=2)


# ---------------------------------------------------------------- once_differentiable under create_graph
def _numpy_square(lib):
    """x² whose backward leaves the library for NumPy, so it is marked once_differentiable."""

    class NumpySquare(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return lib.tensor(x.detach().numpy() ** 2)

        @staticmethod
        @lib.autograd.function.once_differentiable
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return lib.tensor(2 * x.numpy() * grad.numpy())

    return NumpySquare


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_once_differentiable_results_refuse_a_second_differentiation(lib):
    x = _tensor(lib, [1.0, -2.0], requires_grad=True)
    cotangent = _tensor(lib, [1.0, 1.0], requires_grad=True)
    (grad,) = lib.autograd.grad(_numpy_square(lib).apply(x), x, cotangent, create_graph=True)
    # the cotangent requires grad, so the backward is being recorded: as torch records it, the
    # gradient requires grad through an Error node ...
    assert grad.requires_grad and type(grad.grad_fn).__name__ == "Error"
    np.testing.assert_allclose(grad.detach().numpy(), [2.0, -4.0])
    # ... that is no path back to x (no gradient there) and raises when a backward reaches it
    assert lib.autograd.grad(grad.sum(), (x, cotangent), allow_unused=True) == (None, None)
    with pytest.raises(RuntimeError, match="trying to differentiate twice a function that was marked with "
                                           "@once_differentiable"):
        grad.sum().backward()


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_once_differentiable_results_stay_plain_without_create_graph(lib):
    x = _tensor(lib, [1.0, -2.0], requires_grad=True)
    (grad,) = lib.autograd.grad(_numpy_square(lib).apply(x).sum(), x)
    assert not grad.requires_grad and grad.grad_fn is None


# ---------------------------------------------------------------- forward AD: which inputs get a tangent
def _scaled_gather(lib, seen):
    """x[index] * scale; its jvp records which tangents it was given."""

    class ScaledGather(lib.autograd.Function):
        @staticmethod
        def forward(x, index, scale):
            return x[index] * scale

        @staticmethod
        def setup_context(ctx, inputs, output):
            _, index, scale = inputs
            ctx.save_for_forward(index, scale)

        @staticmethod
        def backward(ctx, grad):
            raise AssertionError("forward mode only")

        @staticmethod
        def jvp(ctx, x_tangent, index_tangent, scale_tangent):
            index, scale = ctx.saved_tensors
            seen.append((index_tangent, None if scale_tangent is None else scale_tangent.tolist()))
            return x_tangent[index] * scale

    return ScaledGather


def _gather_tangent(lib):
    seen = []
    x, scale = _tensor(lib, [1.0, 2.0, 3.0]), _tensor(lib, [10.0, 10.0])
    index = lib.tensor([2, 0])
    gather = _scaled_gather(lib, seen)
    _, tangent = lib.func.jvp(lambda v: gather.apply(v, index, scale), (x,), (_tensor(lib, [1.0, 0.5, 0.25]),))
    return seen, tangent


def test_forward_ad_gives_an_integer_input_no_tangent_and_a_floating_one_zeros():
    (seen, ours), (seen_by_torch, theirs) = (_gather_tangent(lib) for lib in LIBS)
    assert seen == seen_by_torch == [(None, [0.0, 0.0])]
    _close(ours, theirs)


# ---------------------------------------------------------------- forward over reverse through a saved output
def _exp_saving_output(lib):
    """exp(x), its backward reading the saved output: grad · y."""

    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(x):
            return x.exp()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(output)
            ctx.save_for_forward(output)

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

        @staticmethod
        def jvp(ctx, x_tangent):
            (y,) = ctx.saved_tensors
            return x_tangent * y

    return Exp


def _jvp_of_vjp(lib):
    exp = _exp_saving_output(lib)

    def vjp_of(x, cotangent):
        return lib.func.vjp(exp.apply, x)[1](cotangent)[0]

    x, cotangent = _tensor(lib, [0.0, 1.0, -0.5]), _tensor(lib, [1.0, 2.0, 3.0])
    return lib.func.jvp(vjp_of, (x, cotangent), (_tensor(lib, [1.0, 1.0, 0.0]), _tensor(lib, [0.0, 0.0, 1.0])))


def test_a_saved_output_keeps_its_tangent_when_the_backward_runs_under_forward_ad():
    # d/dx (c · e^x) = c · e^x · dx, + e^x · dc: the first term needs the saved output's tangent
    (ours_value, ours_tangent), (theirs_value, theirs_tangent) = (_jvp_of_vjp(lib) for lib in LIBS)
    _close(ours_value, theirs_value)
    _close(ours_tangent, theirs_tangent)
    _close(ours_tangent, _tensor(torch, [1.0, 2 * np.e, np.exp(-0.5)]))


# ---------------------------------------------------------------- jacfwd runs the jvp, jacrev the backward
def _square_with_two_rules(lib):
    """x², whose jvp (2x·t) and backward (3x·g, deliberately another derivative) disagree, as
    torch's CubeGenVmap test Function's do: each transform shows which rule it ran."""

    class Square(lib.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])
            ctx.save_for_forward(inputs[0])

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 3 * x * grad

        @staticmethod
        def jvp(ctx, tangent):
            (x,) = ctx.saved_tensors
            return 2 * x * tangent

    return Square


@pytest.mark.parametrize("transform", ["jacfwd", "jacrev"])
def test_jacfwd_runs_a_users_jvp_even_where_its_backward_disagrees(transform):
    ours, theirs = (getattr(lib.func, transform)(_square_with_two_rules(lib).apply)(_tensor(lib, [1.0, -2.0]))
                    for lib in LIBS)
    _close(ours, theirs)
    _close(ours, _tensor(torch, np.diag([2.0, -4.0] if transform == "jacfwd" else [3.0, -6.0])))


# ---------------------------------------------------------------- what torch.func requires of a Function
def _doubler(lib, style):
    """2x as a Function: ``old`` (forward takes ctx), ``plain`` (setup_context, no vmap support),
    ``generated`` (generate_vmap_rule), ``both`` (generate_vmap_rule and a vmap staticmethod)."""

    class Doubler(lib.autograd.Function):
        @staticmethod
        def backward(ctx, grad):
            return 2 * grad

    if style == "old":
        Doubler.forward = staticmethod(lambda ctx, x: 2 * x)
        return Doubler
    Doubler.forward = staticmethod(lambda x: 2 * x)
    Doubler.setup_context = staticmethod(lambda ctx, inputs, output: None)
    if style in ("generated", "both"):
        Doubler.generate_vmap_rule = True
    if style == "both":
        Doubler.vmap = staticmethod(lambda info, in_dims, x: (Doubler.apply(x), in_dims[0]))
    return Doubler


def _outcome(call):
    try:
        return call().detach().numpy().tolist()
    except RuntimeError as error:
        return str(error)


@pytest.mark.parametrize("style", ["old", "plain", "generated", "both"])
@pytest.mark.parametrize("transform", ["grad", "vmap", "vmap over a constant", "jacfwd", "no transform"])
def test_functions_are_held_to_torch_func_requirements(style, transform):
    def run(lib):
        doubler, x = _doubler(lib, style), _tensor(lib, [[1.0, 2.0], [3.0, 4.0]])
        if transform == "grad":
            return lambda: lib.func.grad(lambda v: doubler.apply(v).sum())(x)
        if transform == "vmap":
            return lambda: lib.func.vmap(doubler.apply)(x)
        if transform == "vmap over a constant":  # a Function's inputs need not be batched to count
            return lambda: lib.func.vmap(lambda row: doubler.apply(x[0]) + row)(x)
        if transform == "jacfwd":  # torch's jacfwd vmaps its jvps
            return lambda: lib.func.jacfwd(lambda v: doubler.apply(v).sum())(x)
        return lambda: doubler.apply(x.requires_grad_()).sum()

    ours, theirs = (_outcome(run(lib)) for lib in LIBS)
    assert ours == theirs
    if style == "old" and transform != "no transform":
        assert "must override the setup_context staticmethod" in ours
    if transform.startswith("vmap") and style in ("plain", "both"):
        assert "You tried to vmap over Doubler" in ours


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_the_base_function_declares_no_vmap_support(lib):
    assert lib.autograd.Function.generate_vmap_rule is False
    with pytest.raises(NotImplementedError, match="either override the vmap staticmethod or set "
                                                  "generate_vmap_rule=True"):
        lib.autograd.Function.vmap(None, (0,), None)


# ---------------------------------------------------------------- jvp of vjp leaves no graph behind
def _jvp_of_a_vjp(lib, needs_grad: bool):
    x = _tensor(lib, [0.5, 2.0], requires_grad=needs_grad)
    cotangent = _tensor(lib, [1.0, 3.0])

    def vjp_of(x, cotangent):
        return lib.func.vjp(lambda v: v.sin() * v, x)[1](cotangent)[0]

    return lib.func.jvp(vjp_of, (x, cotangent), (_tensor(lib, [1.0, -1.0]), _tensor(lib, [0.5, 0.5])))


@pytest.mark.parametrize("needs_grad", [False, True])
def test_jvp_of_vjp_results_require_grad_only_for_an_outer_reverse_pass(needs_grad):
    (ours_value, ours_tangent), (theirs_value, theirs_tangent) = (_jvp_of_a_vjp(lib, needs_grad) for lib in LIBS)
    _close(ours_value, theirs_value)
    _close(ours_tangent, theirs_tangent)
    # the graph recorded to carry the tangents through the backward is chainrule's, not the user's
    assert ours_value.requires_grad == theirs_value.requires_grad == needs_grad
    assert ours_tangent.requires_grad == theirs_tangent.requires_grad == needs_grad


def test_a_transform_running_in_another_thread_does_not_hold_this_threads_functions():
    import threading

    inside, outside = threading.Event(), threading.Event()
    old_style = _doubler(chainrule, "old")

    def transformed(v):
        inside.set()
        outside.wait(5)
        return v.sum()

    worker = threading.Thread(target=lambda: chainrule.func.grad(transformed)(_tensor(chainrule, [1.0])))
    worker.start()
    inside.wait(5)
    try:  # the other thread is inside func.grad; this one runs no transform
        assert old_style.apply(_tensor(chainrule, [1.0, 2.0])).tolist() == [2.0, 4.0]
    finally:
        outside.set()
        worker.join()


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_too_many_arguments_for_forward_are_refused_before_it_runs(lib):
    with pytest.raises(TypeError, match="too many positional arguments"):
        _power_with_default(lib).apply(_tensor(lib, [2.0]), 2, 3)
