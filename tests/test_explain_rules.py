"""Every node type the op registry and the nn layers record carries its explainer text.

Each Function class holds ``label`` (the op's short name), ``rule`` (its local derivative rule in
one line) and ``formula`` (an optional expression template); its recorded node exposes them and
``explain()`` prints them. These tests run every sample case of the op registry, plus the layers
whose nodes the registry does not reach (RNN/LSTM/GRU, the norms, embedding, dropout, padding,
module hooks), walk every node reachable from the outputs — and, through ``create_graph=True``,
the nodes of the backward pass itself — and check each one's text, then explain each graph.
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import chainrule
from chainrule import nn
from chainrule.autograd.function import AccumulateGrad, Function
from chainrule.viz import explain

# the registry's empty-input cases warn as torch does; what they warn is tested in tests/ops
pytestmark = [pytest.mark.filterwarnings("ignore:var\\(\\).*degrees of freedom:UserWarning"),
              pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")]


def _registry_cases() -> list:
    """The op registry's sample cases: chainrule.testing.opinfo once it exists, else tests/ops."""
    try:
        from chainrule.testing.opinfo import op_db
    except ImportError:
        from tests.ops.test_registry_compat import REGISTRY

        return list(REGISTRY)
    return [case for info in op_db for case in info.sample_cases()]


def _inputs(case) -> list:
    """A case's inputs as float64 chainrule tensors (the registry's own arrays), grad as it asks."""
    tensors = []
    for i, x in enumerate(case.inputs):
        if not isinstance(x, np.ndarray):
            tensors.append(x)
            continue
        t = chainrule.from_numpy(x.copy())
        wants = bool(case.grad[i]) if case.grad is not None else x.dtype.kind == "f"
        tensors.append(t.requires_grad_(True) if wants else t)
    return tensors


def _differentiable(outputs) -> list:
    outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    return [o for o in outputs if isinstance(o, chainrule.Tensor) and o.grad_fn is not None
            and o.dtype.is_floating_point]


def _registry_graphs():
    for case in _registry_cases():
        outputs = _differentiable(case.fn(chainrule, *_inputs(case)))
        if outputs:
            yield case.id, outputs


def _recurrent(cls, packed: bool = False, **kwargs):
    chainrule.manual_seed(0)
    layer = cls(3, 4, num_layers=2, bidirectional=True, **kwargs)
    x = chainrule.randn(5, 2, 3, requires_grad=True)
    if packed:  # (an unpacked layer's node is named as torch's StackBackward0)
        out, state = layer(nn.utils.rnn.pack_padded_sequence(x, [5, 3]))
        out = out.data
    else:
        out, state = layer(x)
    return [out] + list(state if isinstance(state, tuple) else (state,))


def _norms():
    chainrule.manual_seed(0)
    x = chainrule.randn(4, 6, 3, 3, requires_grad=True)
    return [nn.LayerNorm([3, 3])(x), nn.GroupNorm(2, 6)(x), nn.BatchNorm2d(6)(x),
            nn.InstanceNorm2d(6)(x), nn.functional.layer_norm(x, (3,)),
            nn.functional.batch_norm(x, None, None, training=True)]


def _hooked_module():
    chainrule.manual_seed(0)
    layer = nn.Linear(3, 2)
    layer.register_full_backward_hook(lambda module, grad_input, grad_output: None)
    return [layer(chainrule.randn(4, 3, requires_grad=True))]


def _embedding_and_dropout():
    chainrule.manual_seed(0)
    table = nn.Embedding(5, 3, padding_idx=0)
    rows = table(chainrule.tensor([[0, 2, 4], [1, 1, 3]]))
    # (F.dropout on the CPU is torch's multiply by the mask; native_dropout is the fused node)
    return [rows, nn.functional.dropout(rows, 0.5, training=True), chainrule.native_dropout(rows, 0.5, True)[0]]


def _padding():
    x = chainrule.randn(1, 2, 4, 4, requires_grad=True)
    return [nn.functional.pad(x, (1, 2, 2, 1), mode=mode) for mode in ("constant", "reflect", "replicate",
                                                                      "circular")]


def _conv_transpose():
    chainrule.manual_seed(0)
    return [nn.ConvTranspose2d(2, 3, 3, stride=2)(chainrule.randn(1, 2, 4, 4, requires_grad=True))]


# the graphs the registry's cases do not record, with a node type each must reach (so a layer that
# stops recording its own node cannot pass unnoticed)
EXTRA_GRAPHS = {
    "rnn": (lambda: _recurrent(nn.RNN, packed=True), "RnnBackward0"),
    "lstm": (lambda: _recurrent(nn.LSTM), "MkldnnRnnLayerBackward0"),  # float32 on the CPU: torch's oneDNN name
    "gru": (lambda: _recurrent(nn.GRU, packed=True), "GruBackward0"),
    "norms": (_norms, "NativeGroupNormBackward0"),
    "module_hooks": (_hooked_module, "BackwardHookFunctionBackward"),
    "embedding_dropout": (_embedding_and_dropout, "NativeDropoutBackward0"),
    "padding": (_padding, "ReflectionPad2DBackward0"),
    "conv_transpose": (_conv_transpose, "ConvolutionBackward0"),
}


def _all_graphs():
    yield from _registry_graphs()
    for name, (build, _) in EXTRA_GRAPHS.items():
        yield name, _differentiable(build())


def _reachable(roots) -> list:
    """Every node reachable from ``roots`` through ``next_functions``, each once."""
    seen: dict[int, object] = {}
    stack = [r for r in roots if r is not None]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(child for child, _ in node.next_functions if child is not None)
    return list(seen.values())


def _graph_nodes(outputs) -> list:
    """The forward graph's nodes, then those of its backward pass recorded under create_graph
    (seeded with output gradients that require grad, so the adjoint ops are recorded too)."""
    nodes = _reachable([o.grad_fn for o in outputs])
    leaves = [n.variable for n in nodes if type(n) is AccumulateGrad]
    seeds = [chainrule.ones_like(o).requires_grad_(True) for o in outputs]
    grads = chainrule.autograd.grad(outputs, leaves, grad_outputs=seeds, create_graph=True, allow_unused=True)
    return nodes + _reachable([g.grad_fn for g in grads if g is not None])


@pytest.fixture(scope="module")
def node_types() -> dict:
    """Node class -> the first graph that recorded it."""
    types: dict = {}
    for name, outputs in _all_graphs():
        for node in _graph_nodes(outputs):
            types.setdefault(type(node), name)
    return types


def test_every_reachable_node_type_has_a_label_and_a_rule(node_types):
    missing = sorted(f"{t.__name__} (from {graph})" for t, graph in node_types.items()
                     if not (isinstance(t.label, str) and t.label and isinstance(t.rule, str) and t.rule))
    assert not missing, missing
    names = {t.__name__ for t in node_types}
    for name, (_, expected) in EXTRA_GRAPHS.items():
        assert expected in names, f"{name} recorded no {expected}"
    # the backward passes' own ops (create_graph) were reached too
    assert {"ConvolutionBackwardBackward0", "GruBackwardBackward0", "PadBackwardBackward0",
            "MaxPool2DWithIndicesBackwardBackward0", "IndexBackwardBackward0"} <= names


def test_formula_templates_name_only_inputs_the_op_has(node_types):
    # a template's {0}, {1}, ... must fit the node's inputs (else the explainer falls back silently)
    for name, outputs in _all_graphs():
        for node in _reachable([o.grad_fn for o in outputs]):
            template = type(node).formula
            if template is None:
                continue
            labels = [f"in{i}" for i in range(len(node.next_functions))]
            attributes = {k: 0 for k, v in node.__dict__.items() if isinstance(v, (int, float))}
            try:
                template.format(*labels, **attributes)
            except (IndexError, KeyError) as error:
                pytest.fail(f"{type(node).__name__} in {name}: formula {template!r} does not fit: {error!r}")


def test_every_builtin_function_has_its_text():
    # also the classes no sample reaches: import every module that defines Functions
    for module in pkgutil.walk_packages(chainrule.__path__, "chainrule."):
        if module.name.rsplit(".", 1)[-1] in ("__main__", "cli"):
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional extra that is not installed: its Functions cannot run either
            continue
    pending, missing = list(Function.__subclasses__()), []
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("chainrule.") and not (cls._node_cls.label and cls._node_cls.rule):
            missing.append(f"{cls.__module__}.{cls.__qualname__}")
    assert not missing, sorted(missing)


def test_explain_prints_every_nodes_own_rule():
    explained = 0
    for name, outputs in _all_graphs():
        trace = explain(sum(o.sum() for o in outputs), print_trace=False)
        text = str(trace)
        nodes = {id(n): n for n in _reachable([o.grad_fn for o in outputs])}
        for step in trace:
            if step.kind != "op":
                continue
            assert step.rule, f"{name}: {step.node_name} printed no rule"
            assert f"    local rule: {step.rule}" in text
        for node in nodes.values():
            if type(node) is not AccumulateGrad:
                rule = f"{type(node).label}: {type(node).rule}"
                assert any(s.node_name == node.name() and s.rule == rule for s in trace), (name, node.name())
        explained += 1
    assert explained > len(EXTRA_GRAPHS)


def test_max_and_min_rules_follow_the_overload():
    x = chainrule.tensor([1.0, 3.0, 3.0], requires_grad=True)
    whole, along = x.max(), x.max(0).values
    assert whole.grad_fn.name() == "MaxBackward1" and "split evenly among ties" in whole.grad_fn.rule
    assert along.grad_fn.name() == "MaxBackward0" and "the returned index" in along.grad_fn.rule
    np.testing.assert_array_equal(chainrule.autograd.grad(whole, x)[0].numpy(), [0.0, 0.5, 0.5])


def test_renamed_composite_nodes_explain_the_composite():
    a = chainrule.randn(2, 3, requires_grad=True)
    b = chainrule.randn(3, 4, requires_grad=True)
    c = chainrule.randn(2, 4, requires_grad=True)
    addmm = chainrule.addmm(c, a, b, beta=2.0)
    assert addmm.grad_fn.name() == "AddmmBackward0" and addmm.grad_fn.label == "addmm"
    assert addmm.grad_fn.rule.startswith("β·input + α·(mat1 @ mat2), its last step the sum")
    # without its own words a renamed node keeps its op's text: this loss's last step is the mean
    loss = nn.functional.binary_cross_entropy_with_logits(a, chainrule.zeros(2, 3))
    name, label = "BinaryCrossEntropyWithLogitsBackward0", "binary_cross_entropy_with_logits"
    assert loss.grad_fn.name() == name and loss.grad_fn.label == label
    assert loss.grad_fn.rule == chainrule.ops.reduce.Mean.rule
    steps = {s.node_name: s for s in explain(loss, print_trace=False)}
    assert steps[name].rule == f"{label}: {chainrule.ops.reduce.Mean.rule}"
    # renaming one op's node does not change another's
    assert chainrule.add(c, c).grad_fn.label == "+"


def test_user_function_explains_with_a_generic_sentence():
    class Cube(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return t * t * t

        @staticmethod
        def backward(ctx, grad):
            (t,) = ctx.saved_tensors
            return 3 * t * t * grad

    class Twice(chainrule.autograd.Function):
        label = "twice"
        rule = "∂/∂a = 2"

        @staticmethod
        def forward(ctx, t):
            return 2 * t

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad

    x = chainrule.tensor(2.0, requires_grad=True)
    out = Twice.apply(Cube.apply(x))
    assert out.grad_fn.rule == "∂/∂a = 2" and out.grad_fn.label == "twice"
    trace = explain(out, inputs={"x": x}, print_trace=False)
    cube = next(s for s in trace if s.node_name == "CubeBackward")
    assert cube.rule == "Cube: custom rule (CubeBackward runs the backward written by the user)"
    assert trace[0].rule == "twice: ∂/∂a = 2"
    assert float(trace.grads["x"]) == 24.0
