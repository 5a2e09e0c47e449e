"""The backward explainer: numbers on the worked examples, fan-out sums, no side effects."""

import numpy as np
import pytest
import torch

import chainrule
from chainrule.viz import RULES, Trace, explain, format_value


def _xyz():
    x = chainrule.tensor(1.0, requires_grad=True)
    y = chainrule.tensor(2.0, requires_grad=True)
    z = chainrule.tensor(0.0, requires_grad=True)
    x.name, y.name, z.name = "x", "y", "z"
    return x, y, z


def test_worked_example_numbers_and_fan_out(capsys):
    x, y, z = _xyz()
    f = (x + y) * chainrule.maximum(y, z)
    trace = chainrule.autograd.explain(f, print_trace=False)
    assert isinstance(trace, Trace)
    assert {k: float(v) for k, v in trace.grads.items()} == {"x": 2.0, "y": 5.0, "z": 0.0}
    # reverse topological order: the output's node first, every consumer before what it consumes
    assert trace[0].node_name == "MulBackward0"
    assert trace[0].label == "f"
    position = {s.label: s.index for s in trace}
    assert position["f"] < position["x + y"] < position["x"]
    assert position["max(y, z)"] < position["z"]
    assert position["x + y"] < position["y"] and position["max(y, z)"] < position["y"]
    # the product rule sends b to a and a to b
    mul = trace[0]
    assert [(t, float(g)) for t, g in mul.outgoing] == [("x + y", 2.0), ("max(y, z)", 3.0)]
    assert mul.rule.startswith("mul: ∂/∂a = b, ∂/∂b = a")
    # max routes the gradient to the larger input only
    maximum = next(s for s in trace if s.node_name == "MaximumBackward0")
    assert [(t, float(g)) for t, g in maximum.outgoing] == [("y", 3.0), ("z", 0.0)]
    assert "routes the gradient to the larger input" in maximum.rule
    add = next(s for s in trace if s.node_name == "AddBackward0")
    assert add.rule.startswith("+: copies the gradient to both inputs")
    # y fans out: two contributions, 2 (through x + y) and 3 (through max), summed to 5
    y_step = next(s for s in trace if s.label == "y")
    assert y_step.kind == "leaf"
    assert [(src, float(g)) for src, g in y_step.incoming] == [("x + y", 2.0), ("max(y, z)", 3.0)]
    assert float(y_step.grad) == 5.0
    text = str(trace)
    assert "y receives 2.0 + 3.0 = 5.0" in text
    assert text.splitlines()[-1] == "gradients: ∂f/∂x = 2.0, ∂f/∂y = 5.0, ∂f/∂z = 0.0"
    assert capsys.readouterr().out == ""


def test_print_trace_prints(capsys):
    x, y, z = _xyz()
    chainrule.viz.explain((x + y) * chainrule.maximum(y, z))
    out = capsys.readouterr().out
    assert "MaximumBackward0" in out and "∂f/∂y = 5.0" in out


def test_user_grads_untouched_and_graph_retained():
    x, y, z = _xyz()
    y.grad = chainrule.tensor(10.0)
    h = x + y
    h.retain_grad()
    f = h * chainrule.maximum(y, z)
    first = explain(f, print_trace=False)
    assert x.grad is None and z.grad is None and h.grad is None
    assert float(y.grad) == 10.0
    # hooks were removed: a second explain gives the same steps, not doubled ones
    assert [s.label for s in explain(f, print_trace=False)] == [s.label for s in first]
    f.backward()  # the graph was retained
    assert float(x.grad) == 2.0 and float(y.grad) == 15.0 and float(h.grad) == 2.0


def test_intermediate_fan_out_and_matches_torch():
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal(4), rng.standard_normal(4)
    results = {}
    for lib in (chainrule, torch):
        a = lib.tensor(a_np, requires_grad=True)
        b = lib.tensor(b_np, requires_grad=True)
        h = a * b
        out = (h * h + lib.exp(h)).sum() + lib.tanh(h).mean()
        if lib is chainrule:
            trace = explain(out, inputs={"a": a, "b": b}, print_trace=False, names={"h": h})
            results["cr"] = {k: v.numpy() for k, v in trace.grads.items()}
            h_steps = [s for s in trace if s.label == "h"]
            # h * h sends to h twice (both operands), exp(h) and tanh(h) once each
            assert len(h_steps) == 1
            assert sorted(src for src, _ in h_steps[0].incoming) == ["exp(h)", "h * h", "h * h", "tanh(h)"]
            total = sum(g.numpy() for _, g in h_steps[0].incoming)
            np.testing.assert_allclose(total, h_steps[0].grad.numpy(), rtol=1e-12)
        else:
            ga, gb = torch.autograd.grad(out, (a, b))
            results["torch"] = {"a": ga.numpy(), "b": gb.numpy()}
    for k in ("a", "b"):
        np.testing.assert_allclose(results["cr"][k], results["torch"][k], rtol=1e-12)


def test_window_classifier_delta():
    # s = uᵀ tanh(W x + b): ∂s/∂b = δ = u ∘ (1 - tanh²(z)), ∂s/∂W = δ xᵀ
    rng = np.random.default_rng(1)
    W = chainrule.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = chainrule.tensor(rng.standard_normal(3), requires_grad=True)
    x = chainrule.tensor(rng.standard_normal(4))
    u = chainrule.tensor(rng.standard_normal(3))
    zv = (W.detach() * x).sum(1) + b.detach()
    s = (u * chainrule.tanh((W * x).sum(1) + b)).sum()
    trace = explain(s, inputs={"W": W, "b": b}, print_trace=False)
    delta = u.numpy() * (1 - np.tanh(zv.numpy()) ** 2)
    np.testing.assert_allclose(trace.grads["b"].numpy(), delta, rtol=1e-12)
    np.testing.assert_allclose(trace.grads["W"].numpy(), np.outer(delta, x.numpy()), rtol=1e-12)


def test_non_leaf_input_and_unknown_node_fallback():
    class Cube(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return t * t * t

        @staticmethod
        def backward(ctx, grad):
            (t,) = ctx.saved_tensors
            return 3 * t * t * grad

    x = chainrule.tensor(2.0, requires_grad=True)
    h = x * 3.0
    out = Cube.apply(h)
    trace = explain(out, inputs={"h": h}, print_trace=False)
    assert float(trace.grads["h"]) == pytest.approx(3 * 36.0)
    cube = trace[0]
    assert cube.node_name == "CubeBackward"
    assert "CubeBackward" in cube.rule  # no table entry: the node's name stands in


def test_errors():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="single value"):
        explain(x * 2, print_trace=False)
    with pytest.raises(RuntimeError, match="does not require grad"):
        explain(chainrule.tensor(1.0), print_trace=False)
    with pytest.raises(TypeError, match="expected a Tensor"):
        explain(1.0, print_trace=False)


def test_format_value():
    assert format_value(chainrule.tensor(2.0)) == "2.0"
    assert format_value(chainrule.tensor(0.1)) == "0.1"  # shortest float32 repr, not 0.100000001
    assert format_value(chainrule.tensor(3)) == "3"
    assert format_value(chainrule.tensor([1.0, -0.5])) == "(2,) [1.0, -0.5]"
    big = format_value(chainrule.ones(4, 4))
    assert big.startswith("(4, 4) norm=4.0") and "min=1.0 max=1.0" in big
    assert format_value(chainrule.tensor(float("inf"))) == "inf"


def test_rule_table_names_are_torch_node_names():
    x = chainrule.tensor([0.5, 1.5], requires_grad=True)
    ops = [x + x, x * x, x - x, x / 2, -x, x ** 3, chainrule.exp(x), chainrule.log(x), chainrule.sqrt(x),
           chainrule.tanh(x), chainrule.sigmoid(x), chainrule.sin(x), chainrule.cos(x), chainrule.abs(x),
           x.sum(), x.mean()]
    for t in ops:
        assert t.grad_fn.name() in RULES, t.grad_fn.name()


def test_rule_table_has_no_stale_entries():
    import chainrule.nn.functional  # noqa: F401  (registers its Functions)
    from chainrule.autograd.function import Function

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    produced = {c._node_cls.__name__ for c in subclasses(Function) if c.__module__.startswith("chainrule")}
    assert set(RULES) <= produced, sorted(set(RULES) - produced)


def test_expression_labels_use_node_attributes():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    x.name = "x"
    trace = explain((x ** 3).sum(), print_trace=False)
    assert [s.label for s in trace] == ["f", "x ** 3", "x"]
    np.testing.assert_array_equal(trace.grads["x"].numpy(), [3.0, 12.0])


def test_deep_graph_no_recursion_limit():
    x = chainrule.tensor(1.0, requires_grad=True)
    x.name = "x"
    y = x
    for _ in range(3000):
        y = y * 1.0
    trace = explain(y, print_trace=False)
    assert len(trace) == 3001 and float(trace.grads["x"]) == 1.0
