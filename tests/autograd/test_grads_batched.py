"""autograd.grad(..., is_grads_batched=True) against torch: the same program on both libraries
gives the same batched gradients (first dim the grad_outputs' batch), second derivatives through
create_graph=True, and torch's exception types for mismatched batches and shapes."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _program(lib, create_graph):
    """A two-input, two-output function; batched VJPs of its outputs, and (with create_graph) the
    gradient of a scalar of those VJPs back to the inputs."""
    x = lib.from_numpy(_data(3, 4)).requires_grad_()
    w = lib.from_numpy(_data(4, 2, seed=1)).requires_grad_()
    h = (x @ w).tanh()
    outputs = (h, (x.exp() * x).sum(dim=1))
    grad_outputs = (lib.from_numpy(_data(5, 3, 2, seed=2)), lib.from_numpy(_data(5, 3, seed=3)))
    gx, gw = lib.autograd.grad(outputs, (x, w), grad_outputs, create_graph=create_graph, is_grads_batched=True)
    results = [gx, gw]
    if create_graph:
        results += lib.autograd.grad((gx.sin().sum() + (gw ** 2).sum()), (x, w))
    return [r.detach().numpy() for r in results]


@pytest.mark.parametrize("create_graph", [False, True])
def test_batched_vjps_match_torch(create_graph):
    theirs, ours = _program(torch, create_graph), _program(chainrule, create_graph)
    assert [o.shape for o in ours] == [t.shape for t in theirs]
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, t, rtol=1e-5, atol=1e-5)


def test_rows_are_the_unbatched_vjps():
    x = chainrule.randn(4, requires_grad=True)
    y = x.sin() * 3
    v = chainrule.randn(6, 4)
    (batched,) = chainrule.autograd.grad(y, x, v, retain_graph=True, is_grads_batched=True)
    for b in range(6):
        (row,) = chainrule.autograd.grad(y, x, v[b], retain_graph=True)
        np.testing.assert_allclose(batched[b].numpy(), row.numpy(), rtol=1e-6)


def _outcome(lib, case):
    x = lib.from_numpy(_data(3)).requires_grad_()
    w = lib.from_numpy(_data(2)).requires_grad_()
    y, z = x * 2, (x ** 2).sum()
    grad = lib.autograd.grad
    calls = {
        "shape_mismatch": lambda: grad(y, x, lib.ones(4, 2), is_grads_batched=True),
        "unbatched_grad_output": lambda: grad(y, x, lib.ones(3), is_grads_batched=True),
        "batch_sizes_differ": lambda: grad([y, z], x, [lib.ones(4, 3), lib.ones(5)], is_grads_batched=True),
        "empty_batch": lambda: grad(y, x, lib.ones(0, 3), is_grads_batched=True),
        "no_grad_output_scalar": lambda: grad(z, x, None, is_grads_batched=True),
        "no_grad_output_vector": lambda: grad(y, x, None, is_grads_batched=True),
        "unused_input": lambda: grad(y, [x, w], lib.ones(4, 3), is_grads_batched=True),
        "unused_allowed": lambda: grad(y, [x, w], lib.ones(4, 3), is_grads_batched=True, allow_unused=True),
        "unused_materialized": lambda: grad(y, [x, w], lib.ones(4, 3), is_grads_batched=True,
                                            materialize_grads=True),
        "graph_freed": lambda: (grad(y, x, lib.ones(2, 3), is_grads_batched=True),
                                grad(y, x, lib.ones(2, 3), is_grads_batched=True)),
    }
    try:
        out = calls[case]()
    except Exception as error:  # the exception's type is what is compared
        return type(error).__name__
    if case == "graph_freed":
        out = out[1]
    return [None if g is None else (tuple(g.shape), g.detach().numpy().tolist()) for g in out]


@pytest.mark.parametrize("case", ["shape_mismatch", "unbatched_grad_output", "batch_sizes_differ", "empty_batch",
                                  "no_grad_output_scalar", "no_grad_output_vector", "unused_input", "unused_allowed",
                                  "unused_materialized", "graph_freed"])
def test_batched_edges_as_torch(case):
    assert _outcome(chainrule, case) == _outcome(torch, case)
