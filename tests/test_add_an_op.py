"""docs/architecture.md's "add an op" example, followed step by step.

The test executes the doc's own code blocks (so the doc cannot drift from what works): it defines the
toy op ``logcosh``, binds it onto chainrule and Tensor the way ``_methods.bind_all`` binds an ops
module, adds the doc's registry entry, and runs what the registry gives every op: the coverage test
(failing before the entry exists), torch agreement, gradcheck/gradgradcheck, the node's name and the
explainer's text.
"""

from __future__ import annotations

import ast
import re
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule import _methods
from chainrule.testing import opinfo

from . import test_op_coverage
from .ops.harness import check_gradients, compare_with_torch, requires_torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _doc_blocks() -> tuple[str, str]:
    text = DOC.read_text(encoding="utf-8")
    op = re.search(r"<!-- add-an-op example[^>]*-->\n```python\n(.*?)```", text, re.S)
    entry = re.search(r"<!-- add-an-op entry -->\n\s*```python\n(.*?)```", text, re.S)
    assert op and entry, "docs/architecture.md lost its add-an-op code blocks"
    return op.group(1), textwrap.dedent(entry.group(1))


def _registry_entry(source: str) -> opinfo.OpInfo:
    """Run the entry block; its last statement is the ``OpInfo(...),`` a family's op_db lists."""
    namespace = {"OpInfo": opinfo.OpInfo, "OpCase": opinfo.OpCase, "randn": opinfo.randn}
    tree = ast.parse(source)
    *statements, last = tree.body
    exec(compile(ast.Module(statements, type_ignores=[]), str(DOC), "exec"), namespace)
    value = eval(compile(ast.Expression(last.value), str(DOC), "eval"), namespace)
    return value[0] if isinstance(value, tuple) else value


@pytest.fixture
def toy(monkeypatch):
    op_source, entry_source = _doc_blocks()
    namespace = {"__name__": "chainrule.ops.toy"}
    exec(compile(op_source, str(DOC), "exec"), namespace)
    module = types.ModuleType("chainrule.ops.toy")
    module.__all__ = ["logcosh"]
    module.logcosh = namespace["logcosh"]
    # step 1: the public function and the Tensor method, as bind_all does for an ops module
    monkeypatch.setattr(chainrule, "logcosh", module.logcosh, raising=False)
    assert not hasattr(chainrule.Tensor, "logcosh")
    _methods.bind_module(module)
    yield namespace, _registry_entry(entry_source)
    del chainrule.Tensor.logcosh


def test_coverage_fails_until_the_entry_is_added(toy, monkeypatch):
    _, entry = toy
    with pytest.raises(AssertionError, match="logcosh"):
        test_op_coverage.test_every_public_function_has_an_entry()
    with pytest.raises(AssertionError, match="logcosh"):
        test_op_coverage.test_every_tensor_method_has_an_entry()
    # step 2: the entry in the registry
    monkeypatch.setattr(opinfo, "op_db", [*opinfo.op_db, entry])
    test_op_coverage.test_every_public_function_has_an_entry()
    test_op_coverage.test_every_tensor_method_has_an_entry()
    test_op_coverage.test_entries_name_real_things()


@requires_torch
def test_the_generic_checks_pass_on_the_new_entry(toy):
    _, entry = toy
    cases = entry.sample_cases()
    assert len(cases) == 2
    for case in cases:
        compare_with_torch(case)  # forward, dtype, shape and gradients against torch's composition
        check_gradients(case)  # gradcheck and gradgradcheck in float64


def test_the_node_is_named_and_explained(toy, capsys):
    x = chainrule.tensor([-30.0, -0.5, 0.0, 2.0, 40.0], requires_grad=True)
    y = x.logcosh()
    assert type(y.grad_fn).__name__ == "LogcoshBackward0"
    expected = np.log(np.cosh(np.array([-0.5, 0.0, 2.0])))
    np.testing.assert_allclose(y.detach().numpy()[1:4], expected, rtol=1e-6)
    np.testing.assert_allclose(y.detach().numpy()[[0, 4]], [30 - np.log(2), 40 - np.log(2)], rtol=1e-6)
    chainrule.autograd.explain(y.sum(), x)
    assert "logcosh: ∂/∂a = tanh(a)" in capsys.readouterr().out
    (g,) = chainrule.autograd.grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), np.tanh(x.detach().numpy()), rtol=1e-6)
    (gg,) = chainrule.autograd.grad(g.sum(), x)  # the rule is differentiable: d²/dx² = 1 - tanh²
    np.testing.assert_allclose(gg.numpy(), 1 - np.tanh(x.detach().numpy()) ** 2, rtol=1e-5, atol=1e-7)


def test_the_new_op_runs_on_the_device_without_host_copies(toy):
    """Its forward asked the seam for ``xp``, so it runs on 'cuda' (the CuPy stand-in here)."""
    from chainrule._backend import use_standin_cuda
    from chainrule.testing import standin

    values = np.array([-30.0, -0.5, 0.0, 2.0, 40.0], dtype=np.float32)
    x_cpu = chainrule.tensor(values, requires_grad=True)
    (g_cpu,) = chainrule.autograd.grad(x_cpu.logcosh().sum(), x_cpu)
    with use_standin_cuda():
        x = chainrule.tensor(values, device="cuda", requires_grad=True)
        standin.reset_transfers()
        y = x.logcosh()
        (g,) = chainrule.autograd.grad(y.sum(), x)
        assert standin.transfers() == 0, "the op or its rule copied between host and device"
        assert y.device.type == "cuda" and g.device.type == "cuda"
        np.testing.assert_allclose(y.detach().cpu().numpy(), x_cpu.logcosh().detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(g.cpu().numpy(), g_cpu.numpy(), rtol=1e-6)
