"""Tensor hooks, retain_grad, Node hooks and grad modes, compared with torch call by call."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import chainrule

LIBS = [chainrule, torch]


def _log_values(log):
    return [(name, np.asarray(value.detach().numpy() if hasattr(value, "detach") else value).tolist())
            for name, value in log]


def _hook_run(lib):
    log = []
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: log.append(("x-first", g)))
    x.register_hook(lambda g: g * 10)  # replaces the gradient that reaches x.grad
    x.register_hook(lambda g: log.append(("x-after-replace", g)))
    h = x * 3
    h.retain_grad()
    h.register_hook(lambda g: log.append(("h", g)))
    h.register_hook(lambda g: g + 1)
    k = h * h
    k.register_hook(lambda g: log.append(("k", g)))
    k.sum().backward()
    return log, x.grad, h.grad


def test_tensor_hooks_order_values_and_replacement():
    ours_log, ours_x, ours_h = _hook_run(chainrule)
    ref_log, ref_x, ref_h = _hook_run(torch)
    assert _log_values(ours_log) == _log_values(ref_log)
    np.testing.assert_allclose(ours_x.numpy(), ref_x.numpy())
    np.testing.assert_allclose(ours_h.numpy(), ref_h.numpy())


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_hook_handle_remove(lib):
    calls = []
    x = lib.ones(2, requires_grad=True)
    handle = x.register_hook(lambda g: calls.append(1))
    handle.remove()
    (x * 2).sum().backward()
    assert calls == [] and x.grad.tolist() == [2.0, 2.0]


def test_hook_on_tensor_without_grad_raises():
    for lib in LIBS:
        with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
            lib.ones(2).register_hook(lambda g: g)


def test_retain_grad_non_leaf():
    for lib in LIBS:
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * x
        y.retain_grad()
        assert y.retains_grad
        z = (y * 3).sum()
        z.backward()
        assert y.grad.tolist() == [3.0, 3.0]
        assert x.grad.tolist() == [6.0, 12.0]


def test_non_leaf_grad_access_warns():
    for lib in LIBS:
        y = lib.ones(2, requires_grad=True) * 2
        with pytest.warns(UserWarning, match="not a leaf Tensor"):
            assert y.grad is None


def _node_hook_run(lib):
    log = []
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = y.exp()
    node = z.grad_fn
    node.register_prehook(lambda grad_outputs: log.append(("pre", [g.tolist() for g in grad_outputs])))
    node.register_hook(lambda grad_inputs, grad_outputs: log.append(
        ("post", [g.tolist() for g in grad_inputs], [g.tolist() for g in grad_outputs])))
    y.grad_fn.register_prehook(lambda grad_outputs: (grad_outputs[0] * 0 + 1,))
    z.sum().backward()
    return log, x.grad


def test_node_hooks_and_prehook_replacement():
    ours_log, ours_x = _node_hook_run(chainrule)
    ref_log, ref_x = _node_hook_run(torch)
    assert len(ours_log) == len(ref_log) == 2
    for a, b in zip(ours_log, ref_log):
        assert a[0] == b[0]
        np.testing.assert_allclose(np.array(a[1:], dtype=object).tolist(), np.array(b[1:], dtype=object).tolist())
    np.testing.assert_allclose(ours_x.numpy(), ref_x.numpy())


# ------------------------------------------------------------------ grad modes
@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_grad_mode_context_managers(lib):
    x = lib.ones(2, requires_grad=True)
    with lib.no_grad():
        assert not lib.is_grad_enabled()
        assert not (x * 2).requires_grad
        with lib.enable_grad():
            assert (x * 2).requires_grad
        assert not lib.is_grad_enabled()
    assert lib.is_grad_enabled()
    with lib.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert lib.is_grad_enabled()
    with lib.inference_mode():
        assert not (x * 2).requires_grad
    with lib.inference_mode(False):
        assert (x * 2).requires_grad
    lib.set_grad_enabled(False)  # a plain call switches the mode
    assert not lib.is_grad_enabled()
    lib.set_grad_enabled(True)
    assert lib.is_grad_enabled()


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_grad_mode_decorators(lib):
    x = lib.ones(2, requires_grad=True)

    @lib.no_grad()
    def with_parens(t):
        return (t * 2).requires_grad, lib.is_grad_enabled()

    @lib.no_grad
    def bare(t):
        return (t * 2).requires_grad

    @lib.enable_grad()
    def enabled(t):
        return (t * 2).requires_grad

    @lib.set_grad_enabled(False)
    def disabled(t):
        return (t * 2).requires_grad

    assert lib.is_grad_enabled()  # decorating with set_grad_enabled(False) left the mode alone

    @lib.inference_mode()
    def inference(t):
        return (t * 2).requires_grad

    @lib.inference_mode
    def inference_bare(t):
        return (t * 2).requires_grad

    @lib.no_grad()
    def generator():
        yield lib.is_grad_enabled()
        yield lib.is_grad_enabled()

    assert with_parens(x) == (False, False)
    assert bare(x) is False
    assert disabled(x) is False
    assert inference(x) is False and inference_bare(x) is False
    with lib.no_grad():
        assert enabled(x) is True
        assert not lib.is_grad_enabled()
    assert lib.is_grad_enabled()
    gen = generator()
    assert next(gen) is False
    assert lib.is_grad_enabled()  # restored between the generator's steps
    assert next(gen) is False
    assert with_parens.__name__ == "with_parens"


def test_decorator_restores_mode_after_exception():
    for lib in LIBS:
        @lib.no_grad()
        def fails():
            raise ValueError("boom")

        with pytest.raises(ValueError):
            fails()
        assert lib.is_grad_enabled()


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
def test_decorated_recursion_restores_mode(lib):
    @lib.no_grad()
    def recurse(n):
        return recurse(n - 1) if n else lib.is_grad_enabled()

    assert recurse(3) is False
    assert lib.is_grad_enabled()


def test_grad_mode_is_thread_local():
    inside = threading.Event()
    release = threading.Event()
    seen = []

    def worker():
        with chainrule.no_grad():
            inside.set()
            release.wait(5)
            seen.append(chainrule.is_grad_enabled())

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(5)
    x = chainrule.ones(2, requires_grad=True)
    assert chainrule.is_grad_enabled() and (x * 2).requires_grad  # the worker's no_grad is its own
    release.set()
    thread.join()
    assert seen == [False]

    fresh = []
    with chainrule.no_grad():
        t = threading.Thread(target=lambda: fresh.append(chainrule.is_grad_enabled()))
        t.start()
        t.join()
    assert fresh == [True]  # a new thread starts with grad mode on, as in torch
