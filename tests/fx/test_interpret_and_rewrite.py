"""Running and rewriting traced graphs: Interpreter, Transformer, ShapeProp, replace_pattern,
fx.wrap leaves, math autowrapping, and a feature extractor in the style of torchvision's, each
compared with torch.fx on the same code."""

import math
import operator

import numpy as np
import pytest

import chainrule
import chainrule.fx
from chainrule.fx.passes.shape_prop import ShapeProp

from . import _models
from ._models import copy_weights, random_inputs, structure, trace_both

torch = pytest.importorskip("torch")
pytest.importorskip("torch.fx")
from torch.fx.passes.shape_prop import ShapeProp as TorchShapeProp  # noqa: E402


def _swap_relu_for_sigmoid(fx):
    class SwapActivation(fx.Interpreter):
        def call_module(self, target, args, kwargs):
            if type(self.fetch_attr(target)).__name__ == "ReLU":
                return args[0].sigmoid()
            return super().call_module(target, args, kwargs)

    return SwapActivation


def test_interpreter_runs_the_graph_and_overrides_change_it_as_in_torch():
    reference_gm, ours_gm = trace_both(_models.basic_block)
    data = random_inputs((2, 3, 5, 5))
    plain = chainrule.fx.Interpreter(ours_gm).run(chainrule.tensor(data))
    np.testing.assert_allclose(plain.detach().numpy(), ours_gm(chainrule.tensor(data)).detach().numpy(), rtol=1e-6)
    expected = _swap_relu_for_sigmoid(torch.fx)(reference_gm).run(torch.tensor(data))
    got = _swap_relu_for_sigmoid(chainrule.fx)(ours_gm).run(chainrule.tensor(data))
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_interpreter_initial_env_skips_the_nodes_given():
    gm = chainrule.fx.symbolic_trace(lambda x: (x + 1) * 2)
    add = next(n for n in gm.graph.nodes if n.name == "add")
    result = chainrule.fx.Interpreter(gm).run(chainrule.tensor([0.0]), initial_env={add: chainrule.tensor([5.0])})
    assert result.tolist() == [10.0]


def test_interpreter_error_names_the_node():
    gm = chainrule.fx.symbolic_trace(lambda x: x.view(7))
    with pytest.raises(RuntimeError) as caught:
        chainrule.fx.Interpreter(gm).run(chainrule.ones(3))
    assert any("While executing %view" in note for note in getattr(caught.value, "__notes__", []))


def _negate_then_call(fx):
    class NegateInputsOfAdd(fx.Transformer):
        def call_function(self, target, args, kwargs):
            if target is operator.add:
                args = tuple(-a if isinstance(a, fx.Proxy) else a for a in args)
            return super().call_function(target, args, kwargs)

    return NegateInputsOfAdd


def test_transformer_returns_a_new_graph_module_like_torchs():
    reference_gm, ours_gm = trace_both(_models.mlp)
    reference_new = _negate_then_call(torch.fx)(reference_gm).transform()
    ours_new = _negate_then_call(chainrule.fx)(ours_gm).transform()
    assert isinstance(ours_new, chainrule.fx.GraphModule) and ours_new is not ours_gm
    assert structure(ours_new) == structure(reference_new)
    data = random_inputs((3, 6))
    np.testing.assert_allclose(ours_new(chainrule.tensor(data)).detach().numpy(),
                               reference_new(torch.tensor(data)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_shape_prop_records_torchs_tensor_meta():
    reference_gm, ours_gm = trace_both(_models.basic_block)
    data = random_inputs((2, 3, 5, 5))
    TorchShapeProp(reference_gm).propagate(torch.tensor(data))
    ShapeProp(ours_gm).propagate(chainrule.tensor(data))
    for expected, got in zip(reference_gm.graph.nodes, ours_gm.graph.nodes):
        if "tensor_meta" not in expected.meta:
            assert "tensor_meta" not in got.meta, got.name
            continue
        want, have = expected.meta["tensor_meta"], got.meta["tensor_meta"]
        assert (tuple(have.shape), have.stride, have.requires_grad) == (tuple(want.shape), want.stride,
                                                                      want.requires_grad), got.name
        assert str(have.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]


def _pattern(x):
    return x.relu().neg()


def _replacement(x):
    return x.sigmoid() * 2


def test_replace_pattern_matches_and_rewrites_as_torch():
    def forward(x, y):
        a = x.relu().neg()
        b = (a + y).relu().neg()
        kept = y.relu()
        return b * kept.neg() + kept

    results = []
    for fx in (torch.fx, chainrule.fx):
        gm = fx.symbolic_trace(forward)
        matches = fx.replace_pattern(gm, _pattern, _replacement)
        results.append((len(matches), structure(gm), gm.code))
    assert results[0] == results[1]
    assert results[1][0] == 2  # the third relu has another reader, so its neg cannot be taken with it


def scaled_norm(x):
    return x * 3


chainrule.fx.wrap("scaled_norm")
chainrule.fx.wrap("scaled_norm")  # registered twice, as a module imported again would: still one leaf
torch.fx.wrap("scaled_norm")


def test_wrapped_global_function_is_a_leaf_and_math_is_autowrapped():
    def forward(x, n):
        return scaled_norm(x) + math.sqrt(n)

    got = chainrule.fx.symbolic_trace(forward)
    expected = torch.fx.symbolic_trace(forward)
    assert structure(got) == structure(expected)
    calls = [n.target for n in got.graph.nodes if n.op == "call_function"]
    assert calls[:2] == [scaled_norm, math.sqrt]
    assert got(chainrule.tensor([1.0]), 4).tolist() == [5.0]
    assert scaled_norm(2) == 6  # the global is restored after tracing


def _feature_extractor(fx, model, return_nodes):
    """Traces ``model`` and returns a GraphModule whose output is a dict of the named nodes'
    values, pruned of everything after them (what torchvision's create_feature_extractor does)."""
    gm = fx.symbolic_trace(model)
    named = {n.name: n for n in gm.graph.nodes}
    output = next(n for n in gm.graph.nodes if n.op == "output")
    with gm.graph.inserting_before(output):
        gm.graph.output({key: named[name] for name, key in return_nodes.items()})
    gm.graph.erase_node(output)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


def test_feature_extractor_returns_the_intermediate_values_torch_returns():
    torch.manual_seed(0)
    reference = _models.basic_block(torch).eval()
    ours = _models.basic_block(chainrule).eval()
    copy_weights(reference, ours, chainrule)
    return_nodes = {"stem": "stem", "layer1_0_relu_1": "block0", "pool": "pooled"}
    expected_gm = _feature_extractor(torch.fx, reference, return_nodes)
    got_gm = _feature_extractor(chainrule.fx, ours, return_nodes)
    assert structure(got_gm) == structure(expected_gm)
    assert "fc" not in dict(got_gm.named_children()) or not any(
        n.target == "fc" for n in got_gm.graph.nodes)
    data = random_inputs((2, 3, 6, 6))
    expected = expected_gm(torch.tensor(data))
    got = got_gm(chainrule.tensor(data))
    assert list(got) == list(expected) == ["stem", "block0", "pooled"]
    for key in expected:
        np.testing.assert_allclose(got[key].detach().numpy(), expected[key].detach().numpy(), rtol=1e-5, atol=1e-5)


def clamp_scale(x):
    return x * 0.5


def test_autowrap_functions_makes_a_global_a_leaf_for_one_tracer():
    def forward(x):
        return clamp_scale(x) + 1

    results = []
    for fx in (torch.fx, chainrule.fx):
        leafy = fx.Tracer(autowrap_functions=(clamp_scale,)).trace(forward)
        plain = fx.Tracer().trace(forward)
        results.append(([(n.op, n.target) for n in leafy.nodes if n.op == "call_function"],
                        [(n.op, n.target) for n in plain.nodes if n.op == "call_function"]))
    assert results[0] == results[1]
    assert results[1][0][0] == ("call_function", clamp_scale)
    assert results[1][1][0] == ("call_function", operator.mul)


def test_interpreter_takes_defaults_star_args_and_boxed_lists_as_torch():
    def forward(x, scale=3, *rest):
        return x * scale

    results = []
    for lib, fx in ((torch, torch.fx), (chainrule, chainrule.fx)):
        interpreter = fx.Interpreter(fx.symbolic_trace(forward))
        boxed = [lib.tensor([1.0]), 4, ()]
        results.append((interpreter.run(lib.tensor([2.0])).tolist(),
                        interpreter.run(lib.tensor([2.0]), 5, "ignored").tolist(),
                        interpreter.boxed_run(boxed).tolist(), boxed))
        with pytest.raises(RuntimeError) as caught:
            interpreter.boxed_run([lib.tensor([1.0])])
        results.append(str(caught.value))
    assert results[0:2] == results[2:4]
    assert results[0] == ([6.0], [10.0], [4.0], [])
