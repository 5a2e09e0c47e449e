"""The per-op fast paths of node construction and the backward walk (issue 15) keep torch's
behaviour: hooks still run on nodes the walk treats as hook-free by default, shared metadata and
version tuples do not leak between nodes, and long single-input runs are walked in order."""

import numpy as np
import pytest
import torch

import chainrule as cr


def _both(fn):
    """Run ``fn(lib)`` with chainrule and torch; it returns a list of arrays-like results."""
    return fn(cr), fn(torch)


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a.detach().numpy() if hasattr(a, "detach") else a),
                               np.asarray(b.detach().numpy() if hasattr(b, "detach") else b),
                               rtol=1e-5, atol=1e-6)


def test_tensor_hook_retain_grad_and_prehook_still_run_in_a_chain():
    calls = {cr: [], torch: []}

    def run(lib):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        a = x * 3.0
        b = a.tanh()
        b.retain_grad()
        a.register_hook(lambda g: g * 2)  # doubles what reaches x
        b.grad_fn.register_prehook(lambda grads: calls[lib].append("pre") or None)
        b.grad_fn.register_hook(lambda gi, go: calls[lib].append("post"))
        (b * b).sum().backward()
        return x.grad, b.grad

    (cx, cb), (tx, tb) = _both(run)
    _close(cx, tx)
    _close(cb, tb)
    assert calls[cr] == calls[torch] == ["pre", "post"]


def test_a_hook_on_one_node_is_not_seen_by_another_of_the_same_class():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    first, second = x * 2.0, x * 3.0
    assert type(first.grad_fn) is type(second.grad_fn)
    seen = []
    first.grad_fn.register_prehook(lambda grads: seen.append(1))
    assert second.grad_fn._pre_hooks is None
    second.sum().backward()
    assert seen == []
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_a_long_single_input_chain_and_a_diamond_match_torch():
    def run(lib):
        x = lib.tensor([0.3, -0.2], requires_grad=True)
        y = x
        for _ in range(3000):  # deep enough that a recursive walk would overflow
            y = y.sin()
        a = y.exp()
        out = (a.sin() * a.cos() + a).sum()  # a fans out to three consumers
        out.backward()
        return x.grad

    chainrule_grad, torch_grad = _both(run)
    _close(chainrule_grad, torch_grad)


def test_in_place_change_of_a_saved_tensor_is_still_detected():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1.0
    b = a * a  # saves a at version 0 (shared all-zero version tuple)
    c = a * 2.0
    a.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()
    # a node recorded after the change saved the new version and still runs
    d = a * a
    (d.sum() + c.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([2.0, 3.0]) + 2.0)


def test_input_metadata_is_per_input_and_matches_the_inputs():
    x = cr.ones(2, 3, requires_grad=True)
    y = cr.ones(3)
    out = x * y
    assert out.grad_fn._input_meta == (((2, 3), np.dtype(np.float32)), ((3,), np.dtype(np.float32)))
    other = cr.ones(2, 3, requires_grad=True) + 1.0
    # equal metadata is one shared tuple: no new object per recorded input
    assert out.grad_fn._input_meta[0] is other.grad_fn._input_meta[0]
    out.sum().backward()
    assert x.grad.dtype == cr.float32 and tuple(x.grad.shape) == (2, 3)


def test_several_outputs_and_anomaly_traceback_on_the_binary_path():
    def run(lib):
        x = lib.tensor([[1.0, 5.0], [3.0, 2.0]], requires_grad=True)
        values, _ = x.max(dim=0)
        (values * 2.0).sum().backward()
        return x.grad

    chainrule_grad, torch_grad = _both(run)
    _close(chainrule_grad, torch_grad)
    with cr.autograd.set_detect_anomaly(True):
        x = cr.tensor([1.0], requires_grad=True)
        y = x * x
    assert y.grad_fn._traceback and "test_engine_fast_paths" in "".join(y.grad_fn._traceback)
    assert (x * x).grad_fn._traceback is None
