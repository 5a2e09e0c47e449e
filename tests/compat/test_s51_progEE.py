"""Session 51, lane progEE (program ffjord_cnf_hutchinson): a grad toward non-leaf inputs walks only
the nodes that can lead to them, as torch's engine does by topological number.

FFJORD differentiates the vector field with respect to the ODE state at every stage of the solve
(``autograd.grad(f, y, e, create_graph=True)``). The state's node sits on top of the whole solve so
far; torch numbers each node by its longest path to a leaf and never follows the edges of a node
numbered below the inputs', so each such grad costs the graph built since the state. chainrule
walked the whole history every time, so a solve cost time quadratic in its steps. The gradients,
hooks and errors are the same either way: these tests compare them with torch on graphs where the
pruned part is large, where inputs sit at different depths, lie beyond one another or are unused,
and check that the walk no longer grows with the history below the inputs.
"""

import numpy as np
import pytest
import torch as real_torch

import chainrule as torch
from chainrule.autograd import engine


def _data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _solve(lib, steps, weights, start, noise):
    """Euler steps of dy/dt = f(y) with the log-density change by Hutchinson's estimator, the
    divergence taken by a grad toward the current (non-leaf after the first step) state."""
    w1, w2 = (lib.tensor(w, requires_grad=True) for w in weights)
    y = lib.tensor(start, requires_grad=True)
    e = lib.tensor(noise)
    logp = lib.zeros(start.shape[0])
    divergences = []
    for _ in range(steps):
        dy = lib.tanh(y @ w1) @ w2
        div = (lib.autograd.grad(dy, y, e, create_graph=True)[0] * e).sum(1)
        divergences.append(div.detach().numpy())
        y = y + 0.1 * dy
        logp = logp - 0.1 * div
    (y.pow(2).sum() + logp.sum()).backward()
    return divergences, y.detach().numpy(), w1.grad.numpy(), w2.grad.numpy()


def test_nested_hutchinson_solve_matches_torch():
    weights = (_data((2, 16), 1), _data((16, 2), 2))
    start, noise = _data((8, 2), 3), np.sign(_data((8, 2), 4))
    ours = _solve(torch, 12, weights, start, noise)
    theirs = _solve(real_torch, 12, weights, start, noise)
    for got, want in zip(ours[0], theirs[0]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for got, want in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _walked(monkeypatch):
    """The number of nodes each backward's dependency walk reached, pruned or not."""
    sizes = []
    for name in ("_dependencies", "_pruned_dependencies"):
        original = getattr(engine, name)

        def counting(*args, _original=original):
            found = _original(*args)
            sizes.append(len(found))
            return found

        monkeypatch.setattr(engine, name, counting)
    return sizes


@pytest.mark.parametrize("history", [5, 60])
def test_grad_toward_a_non_leaf_does_not_walk_its_history(monkeypatch, history):
    x = torch.randn(4, 3, requires_grad=True)
    y = x
    for _ in range(history):
        y = torch.tanh(y * 0.9 + 0.1)
    out = (y * y).sin().sum()
    sizes = _walked(monkeypatch)
    (grad,) = torch.autograd.grad(out, y, retain_graph=True)
    np.testing.assert_allclose(grad.numpy(), (2 * y * (y * y).cos()).detach().numpy(), rtol=1e-6)
    # sum's, sin's and mul's nodes, y's tanh node and the add below it (counted, not followed),
    # whatever the history
    assert sizes == [5]
    torch.autograd.grad(out, x)  # toward the leaf: the whole graph, as before
    assert sizes[-1] == 3 * history + 4


def _graph(lib, x_data):
    """Inputs at several depths of one graph, a tensor hook below them and one between them."""
    x = lib.tensor(x_data, requires_grad=True)
    calls = []
    low = x.exp()
    low.register_hook(lambda g: calls.append("low"))
    a = low * 2 + 1
    b = a.tanh()
    b.register_hook(lambda g: calls.append("b"))
    c = (b * a).sigmoid()
    unrelated = (x * 3).cos()  # numbered high, but no path from the output leads to it
    out = (c * c).sum() + b.sum()
    return x, low, a, b, c, unrelated, out, calls


@pytest.mark.parametrize("which", [("b",), ("c",), ("a", "c"), ("c", "a", "b"), ("low", "c")])
def test_grad_toward_non_leaves_at_several_depths_matches_torch(which):
    results = []
    for lib in (torch, real_torch):
        x, low, a, b, c, _, out, calls = _graph(lib, _data((3, 4), 5))
        named = {"low": low, "a": a, "b": b, "c": c}
        grads = lib.autograd.grad(out, [named[name] for name in which], retain_graph=True)
        results.append(([g.numpy() for g in grads], calls))
    (ours, our_calls), (theirs, their_calls) = results
    for got, want in zip(ours, theirs):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert our_calls == their_calls


def test_grad_toward_an_unreached_non_leaf_matches_torch():
    for lib in (torch, real_torch):
        *_, c, unrelated, out, _ = _graph(lib, _data((3, 4), 6))
        grads = lib.autograd.grad(out, [unrelated, c], allow_unused=True, retain_graph=True)
        assert grads[0] is None and grads[1] is not None
        with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
            lib.autograd.grad(out, [unrelated])


def test_backward_with_non_leaf_inputs_matches_torch():
    results = []
    for lib in (torch, real_torch):
        x, low, a, b, c, _, out, calls = _graph(lib, _data((3, 4), 7))
        out.backward(inputs=[b, a])
        results.append((b.grad.numpy(), a.grad.numpy(), x.grad, calls))
    (b_ours, a_ours, x_ours, calls_ours), (b_theirs, a_theirs, x_theirs, calls_theirs) = results
    np.testing.assert_allclose(b_ours, b_theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a_ours, a_theirs, rtol=1e-5, atol=1e-6)
    assert x_ours is None and x_theirs is None
    assert calls_ours == calls_theirs


def test_pruned_walk_leaves_a_modified_history_alone_as_torch():
    # a tensor saved below the input changed in place: a grad toward the input never runs (nor
    # checks) that node, in torch and in chainrule; toward the leaf both raise
    for lib in (torch, real_torch):
        x = lib.tensor(_data((5,), 8), requires_grad=True)
        low = x * 1.0
        mid = low.sin()  # saves low
        top = mid * 2
        out = (top * top).sum()
        with lib.no_grad():
            low.mul_(1.0)
        (grad,) = lib.autograd.grad(out, top, retain_graph=True)
        np.testing.assert_allclose(grad.numpy(), (2 * top).detach().numpy(), rtol=1e-6)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            lib.autograd.grad(out, x)
