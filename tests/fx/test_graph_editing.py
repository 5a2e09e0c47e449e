"""Graph surgery on traced graphs, done the same way in torch.fx and chainrule.fx: the linked
list of nodes, use lists, node insertion and replacement, dead-code elimination, lint, and the
GraphModule that is recompiled from the edited graph."""

import copy
import operator
import pickle

import numpy as np
import pytest

import chainrule
import chainrule.fx

from . import _models
from ._models import random_inputs, structure, trace_both

torch = pytest.importorskip("torch")
pytest.importorskip("torch.fx")




def _outputs_match(reference_gm, ours_gm, shape):
    data = random_inputs(shape)
    expected = reference_gm(torch.tensor(data)).detach().numpy()
    got = ours_gm(chainrule.tensor(data)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def _relu_modules_to_gelu(gm, lib):
    """Each call of a ReLU module becomes F.gelu of the same input."""
    for node in list(gm.graph.nodes):
        if node.op == "call_module" and type(gm.get_submodule(node.target)).__name__ == "ReLU":
            with gm.graph.inserting_after(node):
                gelu = gm.graph.call_function(lib.nn.functional.gelu, node.args)
            node.replace_all_uses_with(gelu)
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()


def test_replacing_relu_by_gelu_gives_torchs_graph_and_numbers():
    reference_gm, ours_gm = trace_both(_models.basic_block)
    _relu_modules_to_gelu(reference_gm, torch)
    _relu_modules_to_gelu(ours_gm, chainrule)
    assert structure(ours_gm) == structure(reference_gm)
    assert "torch._C._nn.gelu(" in ours_gm.code and "torch._C._nn.gelu(" in reference_gm.code  # F.gelu is a binding
    _outputs_match(reference_gm, ours_gm, (2, 3, 5, 5))


def _double_the_output(gm):
    output = next(iter(reversed(gm.graph.nodes)))
    with gm.graph.inserting_before(output):
        doubled = gm.graph.call_function(operator.mul, (output.args[0], 2))
    output.update_arg(0, doubled)
    gm.recompile()


def test_inserting_a_node_before_the_output():
    reference_gm, ours_gm = trace_both(_models.mlp)
    _double_the_output(reference_gm)
    _double_the_output(ours_gm)
    assert structure(ours_gm) == structure(reference_gm)
    assert ours_gm.code == reference_gm.code
    _outputs_match(reference_gm, ours_gm, (4, 6))


def _add_unused_nodes(gm):
    first = next(n for n in gm.graph.nodes if n.op == "placeholder")
    with gm.graph.inserting_before(first.next):
        unused = gm.graph.call_method("neg", (first,))
        gm.graph.call_function(operator.add, (unused, 1))


def test_dead_code_elimination_removes_unused_nodes_and_keeps_inputs():
    for fx, gm in zip((torch.fx, chainrule.fx), trace_both(_models.mlp)):
        before = [n.name for n in gm.graph.nodes]
        _add_unused_nodes(gm)
        assert len(gm.graph.nodes) == len(before) + 2
        assert gm.graph.eliminate_dead_code() is True
        assert gm.graph.eliminate_dead_code() is False
        assert [n.name for n in gm.graph.nodes] == before, fx.__name__


def test_node_links_users_and_inputs_agree_with_torch():
    def forward(x, y):
        a = x + y
        b = a * x
        return a - b

    for fx in (torch.fx, chainrule.fx):
        graph = fx.symbolic_trace(forward).graph
        x, y, a, b, c, output = graph.nodes
        assert (x.next, a.prev, output.next.op) == (y, y, "root")
        assert list(x.users) == [a, b] and a.all_input_nodes == [x, y]
        assert b.all_input_nodes == [a, x]
        b.replace_input_with(x, y)
        assert b.args == (a, y) and list(x.users) == [a] and list(y.users) == [a, b]
        c.update_arg(1, a)
        assert list(b.users) == [] and c.args == (a, a)
        assert a.format_node() == "%add : [num_users=2] = call_function[target=operator.add](args = (%x, %y), kwargs = {})"
        assert graph.find_nodes(op="call_function", target=operator.mul) == [b]
        c.prepend(b)  # b is already just before c: the order stays
        assert [n.name for n in graph.nodes][3:5] == ["mul", "sub"]
        graph.lint()


def test_erasing_a_used_node_raises_torchs_error():
    messages = []
    for fx in (torch.fx, chainrule.fx):
        graph = fx.symbolic_trace(lambda x: x.relu().neg()).graph
        relu = next(n for n in graph.nodes if n.name == "relu")
        with pytest.raises(RuntimeError) as caught:
            graph.erase_node(relu)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


def test_lint_finds_a_use_before_definition():
    graph = chainrule.fx.Graph()
    x = graph.placeholder("x")
    late = graph.call_method("relu", (x,))
    with graph.inserting_before(late):
        graph.call_method("neg", (late,))
    graph.output(late)
    with pytest.raises(RuntimeError, match="'relu' of Node 'neg' was used before it has been defined"):
        graph.lint()


def test_a_graph_built_by_hand_runs_and_prints_like_torchs():
    texts, codes = [], []
    for fx in (torch.fx, chainrule.fx):
        graph = fx.Graph()
        x = graph.placeholder("x")
        w = graph.placeholder("w", default_value=3)
        total = graph.call_function(operator.add, (x, w))
        graph.output(graph.call_method("sum", (total,), {"dim": 0}))
        texts.append(str(graph))
        codes.append(fx.GraphModule(torch.nn.Module() if fx is torch.fx else chainrule.nn.Module(), graph).code)
    assert texts[0] == texts[1]
    assert codes[0] == codes[1]


def test_print_tabular_needs_tabulate_as_in_torch(capsys):
    try:
        import tabulate  # noqa: F401
    except ImportError:
        for fx in (torch.fx, chainrule.fx):
            with pytest.raises(ImportError):
                fx.symbolic_trace(lambda x: x.relu()).graph.print_tabular()
        printed = capsys.readouterr().out.splitlines()
        assert printed[0] == printed[1] and "pip install tabulate" in printed[0]
    else:
        chainrule.fx.symbolic_trace(lambda x: x.relu()).graph.print_tabular()
        assert "call_method" in capsys.readouterr().out


def test_graph_module_copies_only_what_the_graph_uses():
    model = _models.basic_block(chainrule)
    gm = chainrule.fx.symbolic_trace(model)
    # the graph calls layer1.0.conv1 (and others), never layer1 itself: an empty Module holds them
    assert type(gm.layer1).__name__ == "Module"
    assert gm.layer1.get_submodule("0.conv1") is model.layer1[0].conv1
    assert dict(gm.named_parameters()).keys() == dict(model.named_parameters()).keys()
    assert gm.state_dict().keys() == model.state_dict().keys()


@pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda gm: pickle.loads(pickle.dumps(gm))],
                         ids=["deepcopy", "pickle"])
def test_copies_of_a_graph_module_run_the_same_and_own_their_parameters(duplicate):
    gm = chainrule.fx.symbolic_trace(_models.mlp(chainrule))
    twin = duplicate(gm)
    data = chainrule.tensor(random_inputs((3, 6)))
    np.testing.assert_array_equal(twin(data).detach().numpy(), gm(data).detach().numpy())
    assert twin.code == gm.code and type(twin).__name__ == "MLP"
    assert twin.hidden.weight is not gm.hidden.weight
    assert [n.name for n in twin.graph.nodes] == [n.name for n in gm.graph.nodes]


def test_setting_the_graph_recompiles_forward():
    gm = chainrule.fx.symbolic_trace(lambda x: x + 1)
    graph = chainrule.fx.Graph()
    x = graph.placeholder("x")
    graph.output(graph.call_function(operator.mul, (x, 10)))
    gm.graph = graph
    assert gm(chainrule.tensor([2.0])).tolist() == [20.0]
    assert "mul = x * 10" in gm.code


def _submodule_surgery(lib, fx):
    model = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.ReLU(), lib.nn.Sequential(lib.nn.Linear(2, 2)))
    gm = fx.symbolic_trace(model)
    answers = [gm.add_submodule("extra.lin", lib.nn.Linear(2, 2)), gm.delete_submodule("extra.lin"),
               gm.delete_submodule("missing"), gm.add_submodule("extra.lin", lib.nn.Linear(2, 2))]
    inner = next(n for n in gm.graph.nodes if n.target == "2.0")
    inner.replace_all_uses_with(inner.args[0])
    gm.graph.erase_node(inner)
    gm.recompile()
    gm.delete_all_unused_submodules()
    return answers, list(dict(gm.named_modules())), str(gm)


def test_submodule_surgery_and_printing_match_torch():
    expected = _submodule_surgery(torch, torch.fx)
    got = _submodule_surgery(chainrule, chainrule.fx)
    assert got[:2] == expected[:2] == ([True, True, False, True], ["", "0", "1"])
    assert got[2] == expected[2]


def test_erasing_nodes_while_walking_the_graph_and_names_not_reused():
    names = []
    for fx in (torch.fx, chainrule.fx):
        graph = fx.symbolic_trace(lambda x: x.relu().neg().relu()).graph
        for node in graph.nodes:
            if node.op == "call_method" and node.target == "relu" and node.args[0].op == "placeholder":
                neg = node.next
                neg.replace_all_uses_with(node)
                graph.erase_node(neg)  # the node after the one the walk stands on
        for node in graph.nodes:
            if node.name == "relu_1":
                node.replace_all_uses_with(node.args[0])
                graph.erase_node(node)  # the node the walk stands on
        x = next(iter(graph.nodes))
        with graph.inserting_after(x):
            graph.call_method("relu", (x,))
        names.append([n.name for n in graph.nodes])
    assert names[0] == names[1] == ["x", "relu_2", "relu", "output"]


def test_each_graph_module_recompiles_its_own_forward():
    gm = chainrule.fx.symbolic_trace(lambda x: x + 1)
    sibling = type(gm)(gm, copy.deepcopy(gm.graph))
    assert type(sibling) is not type(gm)
    add = next(n for n in sibling.graph.nodes if n.op == "call_function")
    add.target = operator.sub
    sibling.recompile()
    assert sibling(chainrule.tensor([1.0])).tolist() == [0.0]
    assert gm(chainrule.tensor([1.0])).tolist() == [2.0]


def test_generated_code_writes_dtypes_formats_and_indices_as_torch():
    def make(lib):
        def forward(x):
            wide = x.to(lib.float64)[..., None, 1:]
            packed = x.to(dtype=lib.float32).contiguous(memory_format=lib.contiguous_format)
            return wide, packed, x.new_full((2,), float("-inf"))

        return forward

    got = chainrule.fx.symbolic_trace(make(chainrule))
    expected = torch.fx.symbolic_trace(make(torch))
    assert got.code == expected.code
    assert str(got.graph) == str(expected.graph)
    wide, packed, filled = got(chainrule.ones(2, 3))
    assert (wide.dtype, tuple(wide.shape), packed.dtype) == (chainrule.float64, (2, 1, 2), chainrule.float32)
    assert filled.tolist() == [float("-inf")] * 2


def test_a_graph_module_saved_whole_loads_and_runs(tmp_path):
    gm = chainrule.fx.symbolic_trace(_models.mlp(chainrule))
    chainrule.save(gm, tmp_path / "traced.pt")
    loaded = chainrule.load(tmp_path / "traced.pt", weights_only=False)
    data = chainrule.tensor(random_inputs((2, 6)))
    assert type(loaded).__name__ == "MLP" and loaded.code == gm.code
    np.testing.assert_array_equal(loaded(data).detach().numpy(), gm(data).detach().numpy())


@pytest.mark.parametrize("path, names", [
    ("fx", ["symbolic_trace", "wrap", "Tracer", "Graph", "GraphModule", "Node", "Proxy", "Interpreter",
            "Transformer", "map_arg", "replace_pattern", "PH"]),
    ("fx.node", ["Node", "map_arg", "map_aggregate", "Argument", "Target"]),
    ("fx.graph", ["Graph", "PythonCode"]),
    ("fx.graph_module", ["GraphModule", "_copy_attr"]),
    ("fx.proxy", ["Proxy", "Attribute", "TraceError", "TracerBase", "GraphAppendingTracer"]),
    ("fx.interpreter", ["Interpreter", "Transformer"]),
    ("fx.passes.shape_prop", ["ShapeProp", "TensorMetadata"]),
    ("fx.subgraph_rewriter", ["replace_pattern", "Match"]),
    ("fx._symbolic_trace", ["Tracer", "symbolic_trace", "wrap", "is_fx_tracing", "PH"]),
])
def test_torchs_import_paths_exist(path, names):
    import importlib

    ours = importlib.import_module(f"chainrule.{path}")
    theirs = importlib.import_module(f"torch.{path}")
    for name in names:
        assert hasattr(theirs, name), f"torch.{path}.{name}"
        assert hasattr(ours, name), f"chainrule.{path}.{name}"


def test_a_traceback_through_forward_shows_the_generated_line():
    import traceback

    gm = chainrule.fx.symbolic_trace(lambda x: x.view(7))
    with pytest.raises(RuntimeError) as caught:
        gm(chainrule.ones(3))
    assert "view = x.view(7)" in "".join(traceback.format_tb(caught.value.__traceback__))


def _nested_readable(lib, fx):
    class AddOne(lib.nn.Module):
        def forward(self, x):
            return x + 1

    gm = fx.symbolic_trace(lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.ReLU()))
    gm.sub = fx.symbolic_trace(AddOne())
    output = next(iter(reversed(gm.graph.nodes)))
    with gm.graph.inserting_before(output):
        output.args = (gm.graph.call_module("sub", (output.args[0],)),)
    gm.recompile()
    return gm.print_readable(print_output=False)


def test_print_readable_nests_graph_module_children_as_torch(capsys):
    got = _nested_readable(chainrule, chainrule.fx)
    assert got == _nested_readable(torch, torch.fx)
    assert "    class sub(torch.nn.Module):\n        def forward(self, x):" in got
    assert capsys.readouterr().out == ""


def test_arbitrary_objects_in_arguments_are_bound_for_the_generated_code():
    import enum

    class Mode(enum.Enum):
        DOUBLE = 2

    def scale(x, mode):
        return x * mode.value

    graph = chainrule.fx.Graph()
    x = graph.placeholder("x")
    graph.output(graph.call_function(scale, (x, Mode.DOUBLE)))
    gm = chainrule.fx.GraphModule(chainrule.nn.Module(), graph)
    assert gm(chainrule.tensor([1.5])).tolist() == [3.0]
    assert "_fx_mode" in gm.code
