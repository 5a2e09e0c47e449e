"""Autograd engine and torch.func corners against torch: which hooks run where autograd.grad
captures a non-leaf input's gradient (and what it captures), backward(inputs=) of a non-leaf,
materialize_grads, non-Tensor seeds, backward() inside a transform, mixed-dtype jvp tangents."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _hook_trace(lib, requested, accumulate=False, retain=True):
    """m = 2x with a tensor hook (x10), a node pre-hook (x100) and a post-hook on m.grad_fn; the
    hooks that ran, the gradients grad() returned, m.grad, x.grad and m.retains_grad."""
    log = []
    x = lib.ones(3, requires_grad=True)
    m = x * 2
    if retain:
        m.retain_grad()
    m.register_hook(lambda g: (log.append("tensor"), g * 10)[1])
    m.grad_fn.register_prehook(lambda gs: (log.append("pre"), (gs[0] * 100,))[1])
    m.grad_fn.register_hook(lambda gi, go: log.append("post"))
    out = (m * 1).sum()
    inputs = [{"m": m, "x": x}[name] for name in requested]
    grads = None
    if accumulate:
        out.backward(inputs=inputs)
    else:
        grads = [g.tolist() for g in lib.autograd.grad(out, inputs)]

    def listed(t):
        return None if t is None else t.tolist()

    return log, grads, listed(m.grad if m.retains_grad else None), listed(x.grad), m.retains_grad


@pytest.mark.parametrize("requested", [("m",), ("m", "x"), ("x",), ("x", "m")])
@pytest.mark.parametrize("accumulate", [False, True], ids=["grad", "backward"])
@pytest.mark.parametrize("retain", [True, False], ids=["retained", "plain"])
def test_hooks_at_a_requested_non_leaf_input_run_as_torchs(requested, accumulate, retain):
    # grad(out, m): m's tensor hooks and retain_grad run and their result is captured; m.grad_fn's
    # pre-hooks and rule do not run. With x requested as well, m.grad_fn runs on and the gradient
    # is captured as it arrived. backward(inputs=[m]) runs m.grad_fn and makes m retain its grad.
    assert _hook_trace(chainrule, requested, accumulate, retain) == _hook_trace(torch, requested, accumulate, retain)


def test_a_gradient_edge_capture_does_not_run_the_nodes_pre_hooks():
    def trace(lib):
        log = []
        x = lib.ones(3, requires_grad=True)
        m = x * 2
        m.grad_fn.register_prehook(lambda gs: log.append("pre"))
        m.register_hook(lambda g: log.append("tensor"))
        (g,) = lib.autograd.grad((m * 3).sum(), lib.autograd.graph.get_gradient_edge(m))
        return log, g.tolist()

    assert trace(chainrule) == trace(torch) == (["tensor"], [3.0, 3.0, 3.0])
