"""The chain of nodes some ops record, walked from the output through ``next_functions``: each
node's name and edges as torch 2.13's (add/sub with alpha are one node, adaptive_avg_pool1d is
unsqueeze, the 2-d pool and squeeze), with values and gradients unchanged."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _leaf(lib, *shape, seed=0):
    values = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return lib.tensor(values, requires_grad=True)


def _chain(node) -> list:
    """The graph under ``node`` as nested (name, [edges]), leaves as their class name."""
    if node is None:
        return None
    name = node.name().replace("torch::autograd::", "")
    if name == "AccumulateGrad":
        return name
    return name, [_chain(edge) for edge, _ in node.next_functions]


CASES = {
    "add alpha": lambda lib, a, b: lib.add(a, b, alpha=2),
    "add fractional alpha": lambda lib, a, b: a.add(b, alpha=0.3),
    "add alpha, other needs no grad": lambda lib, a, b: lib.add(a, b.detach(), alpha=-1.5),
    "add alpha, input needs no grad": lambda lib, a, b: lib.add(a.detach(), b, alpha=4),
    "add alpha broadcast": lambda lib, a, b: lib.add(a, b[:1], alpha=2),
    "add alpha scalar": lambda lib, a, b: lib.add(a, 3.0, alpha=2),
    "sub alpha": lambda lib, a, b: lib.sub(a, b, alpha=0.5),
    "sub alpha, input needs no grad": lambda lib, a, b: a.detach().sub(b, alpha=3),
    "add_ alpha": lambda lib, a, b: (a * 1).add_(b, alpha=2),
    "sub_ alpha": lambda lib, a, b: (a * 1).sub_(b * 1, alpha=-2),
    "adaptive_avg_pool1d": lambda lib, a, b: lib.nn.functional.adaptive_avg_pool1d(a[None], 2),
    "adaptive_avg_pool1d global": lambda lib, a, b: lib.nn.functional.adaptive_avg_pool1d(a, 1),
}


def _run(lib, case):
    a, b = _leaf(lib, 3, 4), _leaf(lib, 3, 4, seed=1)
    out = CASES[case](lib, a, b)
    out.backward(lib.ones_like(out) / 3)
    return out, a, b


@pytest.mark.parametrize("case", CASES)
def test_node_chain_values_and_gradients_as_torch(case):
    (ours, our_a, our_b), (theirs, their_a, their_b) = _run(chainrule, case), _run(torch, case)
    assert _chain(ours.grad_fn) == _chain(theirs.grad_fn)
    # torch's add kernel may fuse a + alpha * b (one rounding); chainrule rounds the product first
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-6, atol=1e-7)
    for mine, their in ((our_a.grad, their_a.grad), (our_b.grad, their_b.grad)):
        assert (mine is None) == (their is None)
        if their is not None:
            np.testing.assert_allclose(mine.numpy(), their.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("op", ["add", "sub"])
def test_scaled_add_and_sub_are_differentiable_twice(op):
    a = chainrule.randn(3, 4, dtype=chainrule.float64, requires_grad=True)
    b = chainrule.randn(4, dtype=chainrule.float64, requires_grad=True)

    def scaled(a, b):
        return getattr(chainrule, op)(a, b, alpha=0.7) ** 2

    assert chainrule.autograd.gradcheck(scaled, (a, b))
    assert chainrule.autograd.gradgradcheck(scaled, (a, b))
