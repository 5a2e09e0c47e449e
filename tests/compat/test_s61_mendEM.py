"""Session 61, lane mendEM: create_graph node names matched to torch 2.13 (continuing mendEG).

- tanh / sigmoid: the recorded gradient is one TanhBackwardBackward0 / SigmoidBackwardBackward0 node on
  (grad, output), whose own backward is torch's tanh_backward / sigmoid_backward formulas.
- sqrt / rsqrt / silu: torch's formulas' C++ numbers (MulBackward1, SubBackward0, AddBackward1).
"""

import collections

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _node_names(fn) -> collections.Counter:
    seen, names, stack = set(), [], [fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.append(node.name())
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return collections.Counter(names)


def _first_edge_chain(fn) -> list:
    chain = []
    while fn is not None:
        chain.append(fn.name())
        fn = next((next_fn for next_fn, _ in fn.next_functions if next_fn is not None), None)
    return chain


def _recorded_gradients(lib, f, data, dtype, direction):
    """The first gradient (create_graph), a Hessian-vector product of it and a third-order gradient."""
    x = lib.tensor(data, dtype=getattr(lib, dtype), requires_grad=True)
    y = f(lib, x)
    # a weighted sum, so that the gradient reaching the op is itself recorded
    w = lib.tensor(np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape)), dtype=getattr(lib, dtype),
                   requires_grad=True)
    (g,) = lib.autograd.grad((y * w).sum(), x, create_graph=True)
    hx, hw = lib.autograd.grad((g * lib.tensor(direction, dtype=getattr(lib, dtype))).sum(), (x, w),
                               create_graph=True)
    (third,) = lib.autograd.grad((hx * hx).sum(), x)
    return g, (g, hx, hw, third)


_F = {
    "tanh": lambda t, x: x.tanh(),
    "sigmoid": lambda t, x: x.sigmoid(),
    "F.tanh": lambda t, x: t.nn.functional.tanh(x),
    "F.sigmoid": lambda t, x: t.nn.functional.sigmoid(x),
    "sqrt": lambda t, x: (x * x + 1).sqrt(),
    "rsqrt": lambda t, x: (x * x + 1).rsqrt(),
    "silu": lambda t, x: t.nn.functional.silu(x),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(_F))
def test_recorded_backward_nodes_are_torchs(name, dtype):
    rng = np.random.default_rng(0)
    data, direction = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    want, want_values = _recorded_gradients(torch, _F[name], data, dtype, direction)
    got, got_values = _recorded_gradients(chainrule, _F[name], data, dtype, direction)
    assert _node_names(got.grad_fn) == _node_names(want.grad_fn)
    assert _first_edge_chain(got.grad_fn) == _first_edge_chain(want.grad_fn)
    assert got.stride() == want.stride()
    tol = 1e-5 if dtype == "float32" else 1e-12  # (float32 tanh's forward may round an ulp from torch's)
    for g, w in zip(got_values, want_values):
        np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", list(_F))
def test_recorded_backward_gradgradcheck(name):
    x = chainrule.tensor(np.random.default_rng(1).standard_normal((2, 3)), requires_grad=True)
    assert chainrule.autograd.gradgradcheck(lambda a: _F[name](chainrule, a), (x,))


@pytest.mark.parametrize("op", ["tanh", "sigmoid"])
def test_hessian_through_the_one_node_is_torchs(op):
    data = np.random.default_rng(2).standard_normal(5)
    want = torch.autograd.functional.hessian(lambda a: getattr(a, op)().pow(2).sum(), torch.tensor(data))
    got = chainrule.func.hessian(lambda a: getattr(a, op)().pow(2).sum())(chainrule.tensor(data))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rsqrt_gradient_bits_are_torchs(dtype):
    # torch's -0.5 * grad * result.pow(3), the cube y * y * y: grouped otherwise, half the bits differed
    rng = np.random.default_rng(3)
    data, grad = rng.uniform(0.1, 3, 2000).astype(dtype), rng.standard_normal(2000).astype(dtype)
    grads = []
    for lib in (torch, chainrule):
        x = lib.tensor(data, requires_grad=True)
        x.rsqrt().backward(lib.tensor(grad))
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_gradient_bits_are_torchs_kernel(dtype):
    # torch's sigmoid_backward kernel is g * (1 - y) * y; compared on chainrule's own output y, so that
    # a forward rounded an ulp apart does not enter (g * y * (1 - y) differed in a third of the bits)
    rng = np.random.default_rng(4)
    data, grad = rng.standard_normal(2000).astype(dtype), rng.standard_normal(2000).astype(dtype)
    x = chainrule.tensor(data, requires_grad=True)
    y = x.sigmoid()
    y.backward(chainrule.tensor(grad))
    want = torch.ops.aten.sigmoid_backward(torch.tensor(grad), torch.tensor(y.detach().numpy()))
    np.testing.assert_array_equal(x.grad.numpy(), want.numpy())
