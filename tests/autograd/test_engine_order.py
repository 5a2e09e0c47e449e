"""The backward engine's order of execution, node post-hooks' results, and in-place writes on a
custom Function's returned inputs, each against torch 2.13.

torch runs, among the nodes whose consumers have all run, the most recently made one first (a
leaf's AccumulateGrad before anything else): the order hooks fire in, and whether a custom
Function's backward may still differentiate through a part of the graph that another branch
also goes through.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBRARIES = {"chainrule": chainrule, "torch": torch}


def _leaves(lib, n, size=3):
    rng = np.random.default_rng(n)
    return [lib.tensor(rng.standard_normal(size).astype(np.float32), requires_grad=True) for _ in range(n)]


def _named_hooks(log, **tensors):
    for name, tensor in tensors.items():
        tensor.register_hook(lambda grad, name=name: log.append(name))


def _diamond(lib, log):
    (x,) = _leaves(lib, 1)
    a = x * 2
    b = a.sin()
    c = a.cos()
    d = b + c
    _named_hooks(log, x=x, a=a, b=b, c=c, d=d)
    for name, t in (("a", a), ("b", b), ("c", c), ("d", d)):
        t.grad_fn.register_prehook(lambda grads, name=name: log.append("pre " + name))
        t.grad_fn.register_hook(lambda grads_in, grads_out, name=name: log.append("post " + name))
    d.sum().backward()


def _uneven_branches(lib, log):
    (x,) = _leaves(lib, 1)
    a = x * 2
    c = a.cos()
    b = a.sin()
    longer = b.exp()
    _named_hooks(log, x=x, a=a, b=b, c=c, longer=longer)
    (c + longer).sum().backward()


def _two_losses_summed(lib, log):
    x, y = _leaves(lib, 2)
    first = (x * y).sum()
    u = y.exp()
    second = (u * x).sum()
    _named_hooks(log, x=x, y=y, first=first, u=u, second=second)
    (first + second).backward()


def _leaf_used_three_times(lib, log):
    (x,) = _leaves(lib, 1)
    a, b, c = x.sin(), x.cos(), x.exp()
    _named_hooks(log, x=x, a=a, b=b, c=c)
    (a * b + c).sum().backward()


def _many_leaves_at_once(lib, log):
    # leaves whose accumulations become ready together: torch's heap decides their order
    leaves = _leaves(lib, 9)
    _named_hooks(log, **{f"leaf{i}": t for i, t in enumerate(leaves)})
    parts = [t * 1 if i % 3 == 0 else t for i, t in enumerate(leaves)]
    joined = lib.cat(parts[4:] + parts[:4])
    lib.cat([joined, leaves[2].exp(), leaves[7]]).sum().backward()
    log.append("|")
    lib.cat([leaves[1], leaves[0], leaves[3], leaves[4], leaves[2]]).sum().backward()


def _post_accumulate_hooks(lib, log):
    a, b = _leaves(lib, 2)
    a.register_post_accumulate_grad_hook(lambda t: log.append("accumulated a"))
    b.register_post_accumulate_grad_hook(lambda t: log.append("accumulated b"))
    _named_hooks(log, a=a, b=b)
    (a.sin() * b.cos() + a).sum().backward()


def _custom_function(lib, log):
    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            log.append("Square.backward")
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x, y = _leaves(lib, 2)
    s = Square.apply(x)
    t = y.tanh()
    u = x.sigmoid()
    _named_hooks(log, x=x, y=y, s=s, t=t, u=u)
    (s * t + u).sum().backward()


def _retained_grad(lib, log):
    (x,) = _leaves(lib, 1)
    a = x.exp()
    a.retain_grad()
    b, c = a.sin(), a.cos()
    _named_hooks(log, x=x, a=a, b=b, c=c)
    (b * c).sum().backward()
    log.append(a.grad is not None)


def _grad_of_some_inputs(lib, log):
    x, y = _leaves(lib, 2)
    a = x.exp()
    b = (a * y).sin()
    c = a.cos()
    _named_hooks(log, x=x, y=y, a=a, b=b, c=c)
    lib.autograd.grad((b + c).sum(), [y, a])


@pytest.mark.parametrize("graph", [_diamond, _uneven_branches, _two_losses_summed, _leaf_used_three_times,
                                   _many_leaves_at_once, _post_accumulate_hooks, _custom_function,
                                   _retained_grad, _grad_of_some_inputs], ids=lambda f: f.__name__.strip("_"))
def test_hooks_fire_in_torchs_order(graph):
    logs = {}
    for name, lib in LIBRARIES.items():
        logs[name] = []
        graph(lib, logs[name])
    assert logs["chainrule"] == logs["torch"]
    assert len(logs["torch"]) > 3


def test_sequence_numbers_grow_with_creation_and_leaves_come_first():
    (x,) = _leaves(chainrule, 1)
    first = x * 2
    second = first.sin()
    assert second.grad_fn._sequence_nr() > first.grad_fn._sequence_nr()
    accumulate = first.grad_fn.next_functions[0][0]
    assert accumulate._sequence_nr() == 2**64 - 1 == torch.randn(1, requires_grad=True).mul(2).grad_fn \
        .next_functions[0][0]._sequence_nr()


def _differentiates_inside_backward(lib):
    """A custom Function whose backward differentiates, with create_graph, a part of the outer graph
    it did not take as an input (as zuko's flows do); that part is also reached by another branch
    of the outer loss. torch runs the Function's node first (it is newer), before the shared part's
    saved tensors are released."""
    x = lib.tensor([0.3, -0.2, 0.5], dtype=lib.float64, requires_grad=True)
    shared = x.exp()

    class ThroughShared(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input * 3

        @staticmethod
        def backward(ctx, grad):
            (input,) = ctx.saved_tensors
            with lib.enable_grad():
                (inner,) = lib.autograd.grad(shared.sum(), input, create_graph=True)
            return grad * inner

    loss = ThroughShared.apply(x).sum() + shared.sin().sum()
    loss.backward()
    return x.grad.detach().numpy()


def test_custom_backward_differentiates_part_of_the_outer_graph():
    got = _differentiates_inside_backward(chainrule)
    expected = _differentiates_inside_backward(torch)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    x = np.array([0.3, -0.2, 0.5])
    np.testing.assert_allclose(got, np.exp(x) + np.cos(np.exp(x)) * np.exp(x), rtol=1e-12)


def test_engine_order_keeps_second_order_gradients():
    def second_derivative(lib):
        x = lib.tensor([0.4, 1.1], dtype=lib.float64, requires_grad=True)
        a = x.sin()
        y = (a * x.exp() + a.cos()).sum()
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), x)
        return h.numpy()

    np.testing.assert_allclose(second_derivative(chainrule), second_derivative(torch), rtol=1e-12)


# ------------------------------------------------------------------ node post-hooks' results

def _post_hook_replacing(lib):
    x, y = _leaves(lib, 2)
    z = x * y
    z.grad_fn.register_hook(lambda grads_in, grads_out: (grads_in[0] * 10, None))
    seen = []
    z.grad_fn.register_hook(lambda grads_in, grads_out: seen.append(grads_in[1]))
    z.sum().backward()
    return x.grad.numpy(), y.grad, seen


def test_post_hook_result_replaces_the_gradients_passed_on():
    got_x, got_y, got_seen = _post_hook_replacing(chainrule)
    want_x, want_y, want_seen = _post_hook_replacing(torch)
    np.testing.assert_allclose(got_x, want_x)
    assert got_y is None and want_y is None
    assert got_seen == [None] and want_seen == [None]  # a later hook sees the replacement


@pytest.mark.parametrize("hook", [
    lambda gi, go: (gi[0],),
    lambda gi, go: [gi[0], gi[1]],
    lambda gi, go: 3,
    lambda gi, go: (gi[0][:2], gi[1]),
    lambda gi, go: (gi[0].double(), gi[1]),
], ids=["count", "list", "int", "size", "dtype"])
def test_post_hook_bad_result_raises_as_torch(hook):
    errors = {}
    for name, lib in LIBRARIES.items():
        x, y = _leaves(lib, 2)
        z = x * y
        z.grad_fn.register_hook(hook)
        with pytest.raises((RuntimeError, TypeError)) as info:
            z.sum().backward()
        errors[name] = (info.type, str(info.value))
        assert x.grad is None
    assert errors["chainrule"] == errors["torch"]


def test_post_hook_cannot_fill_a_none_gradient():
    messages = {}
    for name, lib in LIBRARIES.items():
        x = _leaves(lib, 1)[0]
        z = x * lib.ones(3)
        z.grad_fn.register_hook(lambda gi, go, lib=lib: (gi[0], lib.ones(3)))
        with pytest.raises(RuntimeError) as info:
            z.sum().backward()
        messages[name] = str(info.value)
    assert messages["chainrule"] == messages["torch"]


def test_module_backward_hook_result_replaces_grad_input():
    def run(lib):
        lib.manual_seed(0)
        layer = lib.nn.Linear(3, 2)
        layer.register_backward_hook(lambda m, gi, go: tuple(None if g is None else g * 0 + 7 for g in gi))
        inp = lib.ones(4, 3, requires_grad=True)
        with pytest.warns(FutureWarning, match="non-full backward hook"):  # (addmm and its transpose: torch warns)
            layer(inp).sum().backward()
        return inp.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy()

    for got, want in zip(run(chainrule), run(torch)):
        np.testing.assert_array_equal(got, want)
        assert (got == 7).all()


# ------------------------------------------------------------------ a custom Function's input returned as-is

def _identity_function(lib):
    class Identity(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    return Identity


def _pair_function(lib):
    class Pair(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x, y * 2

        @staticmethod
        def backward(ctx, gx, gy):
            return gx, gy * 2

    return Pair


def _dirty_function(lib):
    class Double(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    return Double


def _write_identity_output(lib):
    out = _identity_function(lib).apply(_leaves(lib, 1)[0])
    out.add_(1)


def _write_identity_of_non_leaf(lib):
    out = _identity_function(lib).apply(_leaves(lib, 1)[0] * 1)
    out.add_(1)


def _write_identity_of_a_view(lib):
    base = _leaves(lib, 1, size=4)[0].clone()
    out = _identity_function(lib).apply(base[:2])
    out.mul_(2)


def _write_a_view_of_identity_output(lib):
    out = _identity_function(lib).apply(_leaves(lib, 1)[0])
    out.view(3).add_(1)


def _write_pair_output(lib):
    x, y = _leaves(lib, 2)
    returned, made = _pair_function(lib).apply(x, y)
    made.add_(1)  # a new tensor: allowed
    returned.add_(1)


def _relu_in_place_after_full_backward_hook(lib):
    layer = lib.nn.Linear(3, 3)
    layer.register_full_backward_hook(lambda *args: None)
    lib.nn.Sequential(layer, lib.nn.ReLU(inplace=True))(lib.ones(2, 3)).sum().backward()


@pytest.mark.parametrize("write", [_write_identity_output, _write_identity_of_non_leaf, _write_identity_of_a_view,
                                   _write_a_view_of_identity_output, _write_pair_output,
                                   _relu_in_place_after_full_backward_hook], ids=lambda f: f.__name__.strip("_"))
def test_writing_a_returned_input_in_place_raises_as_torch(write):
    messages = {}
    for name, lib in LIBRARIES.items():
        with pytest.raises(RuntimeError) as info:
            write(lib)
        messages[name] = str(info.value)
    assert messages["chainrule"] == messages["torch"]
    assert "is a view and is being modified inplace" in messages["torch"]


def test_returned_input_is_a_view_of_it():
    for lib in LIBRARIES.values():
        x = _leaves(lib, 1)[0]
        out = _identity_function(lib).apply(x)
        assert out is not x and out._is_view() and out._base is x
        (out * 3).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 3.0, np.float32))
        cloned = _identity_function(lib).apply(x).clone()
        cloned.add_(1)  # the fix torch's message suggests


def test_marked_dirty_output_may_be_written():
    results = {}
    for name, lib in LIBRARIES.items():
        x = _leaves(lib, 1)[0]
        out = _dirty_function(lib).apply(x.clone())
        assert not out._is_view()
        out.add_(1)
        out.sum().backward()
        results[name] = (out.detach().numpy(), x.grad.numpy())
    for got, want in zip(results["chainrule"], results["torch"]):
        np.testing.assert_allclose(got, want)
