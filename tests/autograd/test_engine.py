"""The backward engine: backward/grad arguments, graph shapes, accumulation, safety errors,
graph introspection and the seeds' worked examples — each compared with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule

LIBS = [chainrule, torch]


def both(fn):
    """Run ``fn(lib)`` on chainrule and torch; return both results as nested NumPy values."""
    def to_np(v):
        if v is None:
            return None
        if isinstance(v, (tuple, list)):
            return [to_np(x) for x in v]
        if hasattr(v, "detach"):
            return v.detach().numpy()
        return v

    return to_np(fn(chainrule)), to_np(fn(torch))


def assert_same(ours, ref, rtol=1e-6, atol=1e-7):
    if isinstance(ref, list):
        assert len(ours) == len(ref)
        for o, r in zip(ours, ref):
            assert_same(o, r, rtol, atol)
    elif ref is None:
        assert ours is None
    else:
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol)


# ------------------------------------------------------------------ the seeds' worked examples
def test_seed_example_add_mul_max():
    def run(lib):
        x = lib.tensor(1.0, requires_grad=True)
        y = lib.tensor(2.0, requires_grad=True)
        z = lib.tensor(0.0, requires_grad=True)
        f = (x + y) * lib.maximum(y, z)
        f.backward()
        return [f, x.grad, y.grad, z.grad]

    ours, ref = both(run)
    assert_same(ours, ref)
    assert_same(ours, [6.0, 2.0, 5.0, 0.0])


def test_seed_example_single_layer():
    rng = np.random.default_rng(0)
    W, b, x, u = rng.standard_normal((3, 4)), rng.standard_normal(3), rng.standard_normal(4), rng.standard_normal(3)

    def run(lib):
        Wt = lib.tensor(W, requires_grad=True)
        bt = lib.tensor(b, requires_grad=True)
        z = Wt @ lib.tensor(x) + bt
        s = (lib.tensor(u) * lib.sigmoid(z)).sum()
        s.backward()
        return [bt.grad, Wt.grad]

    ours, ref = both(run)
    assert_same(ours, ref, rtol=1e-10)
    sig = 1 / (1 + np.exp(-(W @ x + b)))
    delta = u * sig * (1 - sig)
    np.testing.assert_allclose(ours[0], delta, rtol=1e-10)
    np.testing.assert_allclose(ours[1], np.outer(delta, x), rtol=1e-10)


def test_seed_example_quadratic_form():
    rng = np.random.default_rng(1)
    B, x = rng.standard_normal((4, 4)), rng.standard_normal(4)
    xt = chainrule.tensor(x, requires_grad=True)
    (xt @ chainrule.tensor(B) @ xt).backward()
    np.testing.assert_allclose(xt.grad.numpy(), (B + B.T) @ x, rtol=1e-10)


def test_seed_example_doubling_loop():
    def run(lib):
        lib.manual_seed(0)
        x = lib.tensor([0.3, -0.2, 0.5], requires_grad=True)
        y = x * 2
        i = 0
        while y.norm() < 1000:
            y = y * 2
            i += 1
        v = lib.tensor([0.1, 1.0, 0.0001])
        y.backward(v)
        return [x.grad, np.array(float(2 ** (i + 1))) * v.numpy()]

    ours, ref = both(run)
    assert_same(ours, ref)
    np.testing.assert_allclose(ours[0], ours[1])


# ------------------------------------------------------------------ backward / grad arguments
def test_backward_gradient_retain_graph_and_accumulation():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * x
        y.backward(lib.tensor([1.0, 0.5, 2.0]), retain_graph=True)
        first = x.grad.clone()
        y.backward(lib.ones(3))  # leaves accumulate
        return [first, x.grad]

    ours, ref = both(run)
    assert_same(ours, ref)


def test_backward_inputs_restricts_accumulation():
    def run(lib):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, 4.0], requires_grad=True)
        (a * b).sum().backward(inputs=[b])
        return [a.grad, b.grad]

    ours, ref = both(run)
    assert_same(ours, ref)
    assert ours[0] is None


def test_backward_inputs_non_leaf():
    def run(lib):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        h = a * 3
        (h * h).sum().backward(inputs=[h])
        return [a.grad, h.grad]

    ours, ref = both(run)
    assert_same(ours, ref)


def test_autograd_backward_function_multiple_roots():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y1, y2 = x * 2, (x ** 2).sum()
        lib.autograd.backward([y1, y2], [lib.tensor([1.0, -1.0]), None])
        return x.grad

    ours, ref = both(run)
    assert_same(ours, ref)


def test_grad_returns_without_touching_dot_grad():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([0.5, -1.0], requires_grad=True)
        out = (x * w).exp()
        gx, gw = lib.autograd.grad(out, [x, w], grad_outputs=lib.tensor([1.0, 2.0]))
        assert x.grad is None and w.grad is None
        return [gx, gw]

    ours, ref = both(run)
    assert_same(ours, ref)


def test_grad_allow_unused():
    for lib in LIBS:
        x = lib.ones(2, requires_grad=True)
        u = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match="appears to not have been used"):
            lib.autograd.grad((x * 2).sum(), [x, u], retain_graph=True)
        gx, gu = lib.autograd.grad((x * 2).sum(), [x, u], allow_unused=True)
        assert gu is None and gx.tolist() == [2.0, 2.0]


def test_grad_create_graph_second_derivatives():
    def run(lib):
        x = lib.tensor([0.5, -1.5, 2.0], dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad((x ** 3).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x, create_graph=True)
        (ggg,) = lib.autograd.grad(gg.sum(), x)
        t = lib.tensor([0.3, -0.7], dtype=lib.float64, requires_grad=True)
        (dt,) = lib.autograd.grad(lib.tanh(t).sum(), t, create_graph=True)
        (ddt,) = lib.autograd.grad(dt.sum(), t)
        return [g, gg, ggg, dt, ddt]

    ours, ref = both(run)
    assert_same(ours, ref, rtol=1e-12)
    x = np.array([0.5, -1.5, 2.0])
    np.testing.assert_allclose(ours[1], 6 * x)
    t = np.array([0.3, -0.7])
    np.testing.assert_allclose(ours[4], -2 * np.tanh(t) * (1 - np.tanh(t) ** 2))


def test_hessian_vector_product_by_double_backward():
    rng = np.random.default_rng(2)
    A, xv, v = rng.standard_normal((3, 3)), rng.standard_normal(3), rng.standard_normal(3)

    def run(lib):
        x = lib.tensor(xv, requires_grad=True)
        f = (lib.tanh(lib.tensor(A) @ x) ** 2).sum()
        (g,) = lib.autograd.grad(f, x, create_graph=True)
        (hv,) = lib.autograd.grad(g, x, grad_outputs=lib.tensor(v))
        return hv

    ours, ref = both(run)
    assert_same(ours, ref, rtol=1e-10)


def test_backward_create_graph_grad_is_differentiable():
    def run(lib):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        (x ** 3).sum().backward(create_graph=True)
        assert x.grad.requires_grad
        g = x.grad
        x.grad = None
        g.sum().backward()
        return x.grad

    ours, ref = both(run)
    assert_same(ours, ref)


# ------------------------------------------------------------------ graph shapes
def test_diamond_and_fan_out():
    def run(lib):
        x = lib.tensor([0.5, 1.5], requires_grad=True)
        a = x * 2
        b = a.sin()
        c = a.cos()
        d = b * c + a  # a is used three times
        e = d.sum() + (x * x).sum()  # x is used twice
        e.backward()
        return x.grad

    ours, ref = both(run)
    assert_same(ours, ref)


def test_same_tensor_twice_in_one_op():
    def run(lib):
        x = lib.tensor([0.5, 1.5], requires_grad=True)
        (x * x + x / x).sum().backward()
        return x.grad

    ours, ref = both(run)
    assert_same(ours, ref)


def test_deep_chain_has_no_recursion_limit():
    x = chainrule.tensor([1.0], requires_grad=True)
    step = chainrule.tensor([1e-6])
    y = x
    for _ in range(100_000):
        y = y + step
    y.sum().backward()
    assert x.grad.tolist() == [1.0]


def test_no_grad_sgd_update():
    def run(lib):
        w = lib.tensor([1.0, -2.0], requires_grad=True)
        for _ in range(3):
            loss = ((w - 3) ** 2).sum()
            loss.backward()
            with lib.no_grad():
                w -= 0.1 * w.grad
            w.grad.zero_()
        grad_after = w.grad.clone()
        w.grad = None
        return [w, grad_after, w.is_leaf, w.requires_grad]

    ours, ref = both(run)
    assert_same(ours, ref)


def test_grad_zero_and_none():
    x = chainrule.ones(2, requires_grad=True)
    (x * 3).sum().backward()
    x.grad.zero_()
    assert x.grad.tolist() == [0.0, 0.0]
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_broadcast_gradients_reduced_to_input_shape():
    def run(lib):
        a = lib.ones(3, 1, requires_grad=True)
        b = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        c = lib.tensor(2.0, requires_grad=True)
        (a * b * c).sum().backward()
        return [a.grad, b.grad, c.grad]

    ours, ref = both(run)
    assert_same(ours, ref)


def test_gradient_dtype_follows_input():
    x = chainrule.ones(2, dtype=chainrule.float64, requires_grad=True)
    y = chainrule.ones(2, requires_grad=True)
    (x * y).sum().backward()
    assert x.grad.dtype is chainrule.float64 and y.grad.dtype is chainrule.float32


# ------------------------------------------------------------------ introspection
def test_grad_fn_names_and_next_functions():
    for lib in LIBS:
        x = lib.ones(2, requires_grad=True)
        w = lib.ones(2)
        y = (x * w + 1).sum()
        assert type(y.grad_fn).__name__ == "SumBackward0"
        add = y.grad_fn.next_functions[0][0]
        assert type(add).__name__ == "AddBackward0"
        mul, index = add.next_functions[0]
        assert type(mul).__name__ == "MulBackward0" and index == 0
        acc = mul.next_functions[0][0]
        assert type(acc).__name__ == "AccumulateGrad"
        assert acc.variable is x
        assert mul.next_functions[1][0] is None  # w does not require grad
        assert x.grad_fn is None and x.is_leaf and not y.is_leaf


def test_multi_output_next_function_index():
    for lib in LIBS:
        class SinCos(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x.sin(), x.cos()

            @staticmethod
            def backward(ctx, grad_sin, grad_cos):
                return grad_sin + grad_cos

        x = lib.ones(4, requires_grad=True)
        a, b = SinCos.apply(x)
        y = b * 2
        node, index = y.grad_fn.next_functions[0]
        assert index == 1 and node is a.grad_fn and b.grad_fn is a.grad_fn


def test_requires_grad_propagation():
    for lib in LIBS:
        x = lib.ones(2, requires_grad=True)
        c = lib.ones(2)
        assert (x + c).requires_grad and not (c * 2).requires_grad
        assert not (x.detach() * 2).requires_grad


# ------------------------------------------------------------------ safety errors
def test_backward_twice_through_freed_graph():
    for lib in LIBS:
        x = lib.ones(2, requires_grad=True)
        y = (x * x).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.backward()
        assert x.grad.tolist() == [2.0, 2.0]  # unchanged by the failed call


def test_implicit_grad_for_non_scalar():
    for lib in LIBS:
        x = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
            (x * 2).backward()
        assert x.grad is None


def test_backward_on_tensor_without_grad():
    for lib in LIBS:
        with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
            lib.ones(2).sum().backward()


def test_gradient_shape_mismatch():
    for lib in LIBS:
        x = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match="Mismatch in shape"):
            (x * 2).backward(lib.ones(3))


def test_inplace_change_of_saved_tensor_names_op_and_versions():
    messages = []
    for lib in LIBS:
        x = lib.ones(3, requires_grad=True)
        a = x * 2
        y = a * a
        a.add_(1)
        with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*version 1; "
                                               r"expected version 0") as info:
            y.sum().backward()
        assert x.grad is None
        messages.append(str(info.value))
    assert messages[0] == messages[1]  # torch's message to the letter


def test_inplace_on_leaf_requiring_grad():
    for lib in LIBS:
        x = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            x.add_(1)
        assert x.tolist() == [1.0, 1.0]
        with lib.no_grad():
            x.add_(1)
        assert x.tolist() == [2.0, 2.0]


def test_inplace_on_non_leaf_is_recorded():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3
        y.mul_(2)
        y.sin_()
        y.add_(x)
        y.sum().backward()
        return [y, x.grad, type(y.grad_fn).__name__ == "AddBackward0"]

    ours, ref = both(run)
    assert_same(ours, ref)


def test_requires_grad_on_non_leaf_false_raises():
    for lib in LIBS:
        y = lib.ones(2, requires_grad=True) * 2
        with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
            y.requires_grad_(False)


def test_leaf_grad_never_aliases_what_user_code_saw():
    def run(lib):
        seen = []
        x = lib.ones(2, requires_grad=True)
        x.register_hook(seen.append)
        (x * 2).sum().backward()
        (x * 2).sum().backward()  # accumulating must not change the tensor the hook kept
        post = []
        w = lib.ones(2, requires_grad=True)
        y = w * 3
        y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: post.append(grad_inputs[0]))
        y.sum().backward()
        w.grad.add_(100)
        seed = lib.ones(2)
        leaf = lib.ones(2, requires_grad=True)
        leaf.backward(seed)
        leaf.grad.add_(5)
        r = lib.ones(2, requires_grad=True)
        h = r + 0
        h.retain_grad()
        (h * 1).sum().backward(retain_graph=True)
        kept = h.grad
        (h * 1).sum().backward()
        return [seen[0], x.grad, post[0], seed, kept, h.grad]

    ours, ref = both(run)
    assert_same(ours, ref)


INPLACE_ERRORS = {
    "int += float": lambda x, xf, xb: x.add_(1.5),
    "int += float tensor": lambda x, xf, xb: x.add_(xf),
    "bool += int": lambda x, xf, xb: xb.add_(1),
    "int /= 2": lambda x, xf, xb: x.div_(2),
    "broadcast grows self": lambda x, xf, xb: xf.add_(xf.new_ones(2, 3)),
}


@pytest.mark.parametrize("name", list(INPLACE_ERRORS))
def test_inplace_type_and_shape_errors_match_torch(name):
    messages = []
    for lib in LIBS:
        x, xf, xb = lib.tensor([1, 2, 3]), lib.tensor([1.0, 2.0, 3.0]), lib.tensor([True, False, True])
        with pytest.raises(RuntimeError) as info:
            INPLACE_ERRORS[name](x, xf, xb)
        messages.append(str(info.value))
        assert x.tolist() == [1, 2, 3] and xf.tolist() == [1.0, 2.0, 3.0]  # nothing was written
    if name != "broadcast grows self":
        assert messages[0] == messages[1]


def test_inplace_ops_that_save_their_input_match_out_of_place():
    def run(lib, inplace):
        x = lib.tensor([0.5, 1.0, -0.3], requires_grad=True)
        y = x * 1
        if inplace:
            y.sin_()
            y.mul_(x)
            y.cos_()
        else:
            y = (y.sin() * x).cos()
        y.sum().backward()
        return [y, x.grad]

    for lib in LIBS:
        assert_same([v.detach().numpy() for v in run(lib, True)], [v.detach().numpy() for v in run(lib, False)])
    assert_same([v.detach().numpy() for v in run(chainrule, True)], [v.detach().numpy() for v in run(torch, True)])


def test_inplace_view_ops_change_shape():
    def run(lib):
        x = lib.tensor([[0.5, 1.0]], requires_grad=True)
        y = x * 2
        y.t_()
        y.unsqueeze_(0)
        y.squeeze_()
        (y * lib.tensor([1.0, 3.0])).sum().backward()
        return [y, x.grad]

    ours, ref = both(run)
    assert_same(ours, ref)


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_safety_errors_leave_every_grad_unchanged(lib):
    # w's branch needs no saved tensor, so an engine that checks lazily could update w.grad first
    w = lib.ones(2, requires_grad=True)
    x = lib.ones(2, requires_grad=True)
    y = (w + 1).sum() + (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    if lib is chainrule:  # torch's engine may already have accumulated w here
        assert w.grad.tolist() == [1.0, 1.0]
    a = x * 2
    z = (w + 1).sum() + (a * a).sum()
    a.add_(1)
    w.grad = None
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()
    if lib is chainrule:
        assert w.grad is None


def test_inherited_builtin_ops_keep_torch_node_suffix():
    import chainrule as cr

    x = cr.ones(3, 3, requires_grad=True)
    assert x.triu().grad_fn.name() == "TriuBackward0"
    assert x.tril().grad_fn.name() == "TrilBackward0"


def test_grad_ignores_modified_saved_tensors_on_branches_it_does_not_run():
    """torch checks saved tensors only in nodes that execute; so does chainrule."""
    import chainrule as cr

    torch = pytest.importorskip("torch")
    for lib in (cr, torch):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, 4.0], requires_grad=True)
        h = b * 1.0
        unrelated = h.exp()  # saves its output
        out = (a * 2).sum() + unrelated.sum()
        with lib.no_grad():
            unrelated.mul_(2)  # invalidates ExpBackward0's saved output
        (g,) = lib.autograd.grad(out, a, retain_graph=True)
        assert g.tolist() == [2.0, 2.0]
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            lib.autograd.grad(out, b)


def test_grad_of_an_unconnected_leaf_is_none_not_the_other_leafs_seed():
    """Leaves' AccumulateGrad nodes are held weakly; a freed one's id once matched another's,
    so grad(g, x) returned g's seed as x's gradient (and gradgradcheck failed on identity ops)."""
    def grads(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        g = lib.tensor([3.0, 4.0], requires_grad=True)
        return [lib.autograd.grad(g, x, grad_outputs=lib.ones(2), allow_unused=True) for _ in range(3)]

    assert both(grads) == ([[None]] * 3, [[None]] * 3)
    ours = chainrule.tensor([1.0, 2.0], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradgradcheck(lambda t: t, (ours,))
    assert chainrule.autograd.gradgradcheck(lambda t: +t, (ours,))
