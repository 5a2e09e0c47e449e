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


def _net(lib):
    """A module with a submodule, a buffer and a plain attribute, built on ``lib``."""
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = lib.nn.Linear(3, 2)
            self.register_buffer("scale", lib.ones(2))
            self.note = "plain"

        def forward(self, x):
            return self.fc(x) * self.scale

    return Net()


@pytest.fixture
def torch_validation_kept():
    # torch.compile's first call turns torch.distributions' argument validation off for the whole
    # process; put it back so later tests see torch's default
    validate = torch.distributions.Distribution._validate_args
    yield
    torch.distributions.Distribution.set_default_validate_args(validate)


@pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])
def test_compiled_module_is_a_wrapper_with_orig_mod_prefixed_state(lib, torch_validation_kept):
    model = _net(lib)
    compiled = lib.compile(model, backend="eager")
    assert type(compiled).__name__ == "OptimizedModule" and isinstance(compiled, lib.nn.Module)
    assert compiled._orig_mod is model
    assert sorted(compiled.state_dict()) == ["_orig_mod.fc.bias", "_orig_mod.fc.weight", "_orig_mod.scale"]
    assert [name for name, _ in compiled.named_parameters()] == ["_orig_mod.fc.weight", "_orig_mod.fc.bias"]
    assert [name for name, _ in compiled.named_modules()] == ["", "_orig_mod", "_orig_mod.fc"]
    # attributes read and written through to the wrapped module, the mode mirrored both ways
    assert compiled.fc is model.fc and compiled.note == "plain" and compiled.scale is model.scale
    compiled.note = "changed"
    assert model.note == "changed"
    compiled.eval()
    assert model.training is False and model.fc.training is False
    model.train()
    assert compiled.training is True
    # a state_dict saved from the compiled model loads into a plain one after the prefix strip
    plain = _net(lib)
    plain.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in compiled.state_dict().items()})
    assert lib.equal(plain.fc.weight, model.fc.weight)
    with pytest.raises(AttributeError):
        compiled.no_such_attribute  # noqa: B018  (the read is the test)


def test_compiled_module_runs_the_module_and_functions_come_back_unchanged():
    model = _net(chainrule)
    compiled = chainrule.compile(model)
    x = chainrule.ones(4, 3)
    assert chainrule.equal(compiled(x), model(x))
    compiled(x).sum().backward()
    assert model.fc.weight.grad is not None
    assert type(chainrule.compile(mode="reduce-overhead")(model)).__name__ == "OptimizedModule"

    def double(x):
        return x * 2

    assert chainrule.compile(double) is double and chainrule.compile(fullgraph=True)(double) is double
    with pytest.raises(RuntimeError, match="compile: expected a Module or a callable, got int"):
        chainrule.compile(3)
