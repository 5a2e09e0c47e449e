"""Session 20: the node a recorded (create_graph) backward ends in, named as torch names it, and
the second-order values unchanged (each compared with torch's)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

BUILDS = {
    # torch composes silu's infinitely differentiable gradient: grad * s * (1 + x * (1 - s))
    "silu": lambda lib, x: lib.nn.functional.silu(x),
    # eval rrelu is leaky relu at the mean slope, recorded under rrelu's names
    "rrelu_eval": lambda lib, x: lib.nn.functional.rrelu(x, training=False),
    # a complex grad's rule ends in the outer conj: torch's tanh_backward is one node
    "tanh_complex": lambda lib, x: lib.tanh(x).abs(),
}
COMPLEX_INPUT = {"tanh_complex"}


def _input(lib, name, count):
    values = np.linspace(-2.0, 1.5, count)
    return lib.tensor(values * (1 + 0.5j) if name in COMPLEX_INPUT else values, requires_grad=True)


def _grad_node_and_values(lib, name):
    x = _input(lib, name, 12)
    (grad,) = lib.autograd.grad(BUILDS[name](lib, x).sum(), x, create_graph=True)
    (second,) = lib.autograd.grad((grad.abs() ** 2).sum(), x)
    return grad.grad_fn.name(), grad.detach().numpy(), second.numpy()


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_recorded_backward_node_is_torchs_and_its_values_too(name):
    node, grad, second = _grad_node_and_values(chainrule, name)
    torch_node, torch_grad, torch_second = _grad_node_and_values(torch, name)
    assert node == torch_node
    np.testing.assert_allclose(grad, torch_grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(second, torch_second, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_second_order_gradients_pass_gradgradcheck(name):
    x = _input(chainrule, name, 6)
    assert chainrule.autograd.gradgradcheck(lambda t: BUILDS[name](chainrule, t), (x,))
