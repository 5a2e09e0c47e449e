"""torch.compiler and torch._dynamo's script-facing names, with torch's answers for eager code."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])
def test_a_script_that_configures_dynamo_then_compiles_runs(lib):
    import importlib

    dynamo = importlib.import_module(lib.__name__ + "._dynamo")
    assert dynamo.config.suppress_errors is False and dynamo.config.cache_size_limit == 8
    before = dynamo.config.suppress_errors
    dynamo.config.suppress_errors = True
    try:
        if lib is chainrule:  # (torch's first call would run its real compiler)
            model = lib.compile(lib.nn.Linear(3, 2))
            assert tuple(model(lib.ones(1, 3)).shape) == (1, 2)
        assert lib.compiler.is_compiling() is False and lib.compiler.is_dynamo_compiling() is False
        assert lib.compiler.is_exporting() is False
        assert "inductor" in lib.compiler.list_backends()
    finally:
        dynamo.config.suppress_errors = before
        dynamo.reset()


@pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])
def test_compiler_decorators_leave_the_function_working(lib):
    @lib.compiler.disable
    def double(x):
        return x * 2

    @lib.compiler.disable(recursive=False)
    def triple(x):
        return x * 3

    halve = lib.compiler.allow_in_graph(lambda x: x / 2)
    constant = lib.compiler.assume_constant_result(lambda: 5)
    x = lib.tensor([1.0, 2.0])
    assert double(x).tolist() == [2.0, 4.0] and triple(x).tolist() == [3.0, 6.0]
    assert halve(x).tolist() == [0.5, 1.0] and constant() == 5
    with lib.compiler.set_stance("force_eager"):
        assert double(x).tolist() == [2.0, 4.0]
    lib.compiler.cudagraph_mark_step_begin()


def test_wrap_numpy_gives_tensors_from_a_numpy_function():
    @chainrule.compiler.wrap_numpy
    def f(a, b):
        return np.add(a, b), np.multiply(a, b)

    total, product = f(chainrule.tensor([1.0, 2.0]), chainrule.tensor([3.0, 4.0]))
    assert isinstance(total, chainrule.Tensor) and total.tolist() == [4.0, 6.0] and product.tolist() == [3.0, 8.0]
