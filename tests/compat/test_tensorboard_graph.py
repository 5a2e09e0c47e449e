"""SummaryWriter.add_graph: the model graph read back with TensorBoard's own reader, checked node by
node, and compared with torch 2.13's writer (its module scopes, its op kinds mapped to chainrule's,
the shapes leaving each module)."""

from __future__ import annotations

import collections
import importlib

import numpy as np
import pytest

import chainrule

pytest.importorskip("tensorboard")
torch = pytest.importorskip("torch")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

# torch traces whole functional ops; chainrule records the ops they are made of
_TORCH_KINDS = {"aten::linear": ("aten::t", "aten::addmm"), "aten::_convolution": ("aten::convolution",),
                "aten::max_pool2d": ("aten::max_pool2d_with_indices",), "aten::flatten": ("aten::view",)}


def _models(lib):
    nn = lib.nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 8)
            self.act = nn.ReLU()
            self.fc2 = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                          nn.MaxPool2d(2))
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 5))

        def forward(self, images):
            return self.head(self.features(images))

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.left = nn.Linear(3, 4)
            self.right = nn.Linear(5, 4)

        def forward(self, x, y):
            hidden = self.left(x) + self.right(y)
            return lib.tanh(hidden), hidden.sum(1)

    return {"mlp": MLP, "cnn": CNN, "two": TwoInputs}


_INPUTS = {"mlp": [(2, 4)], "cnn": [(2, 1, 8, 8)], "two": [(2, 3), (2, 5)]}


def _write_graph(lib, log_dir, name, **kwargs):
    lib.manual_seed(0)
    model = _models(lib)[name]()
    generator = np.random.default_rng(1)
    inputs = [lib.tensor(generator.standard_normal(shape).astype(np.float32)) for shape in _INPUTS[name]]
    writer = importlib.import_module(f"{lib.__name__}.utils.tensorboard").SummaryWriter(str(log_dir))
    writer.add_graph(model, inputs[0] if len(inputs) == 1 else tuple(inputs), **kwargs)
    writer.close()
    return model


def _read(log_dir):
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return events


def _shapes(node) -> list:
    if "_output_shapes" not in node.attr:
        return []
    return [[dim.size for dim in shape.dim] for shape in node.attr["_output_shapes"].list.shape]


def _scope(node) -> str:
    return node.name.rsplit("/", 1)[0]


def _op_nodes(nodes) -> list:
    return [n for n in nodes if n.op.startswith("aten::")]


def _mapped_kinds(nodes, skip_scope: str | None = None) -> collections.Counter:
    """The op kinds of torch's or chainrule's graph, torch's spelled as chainrule records them."""
    kinds = collections.Counter()
    for node in _op_nodes(nodes):
        if skip_scope is None or skip_scope not in node.name:
            kinds.update(_TORCH_KINDS.get(node.op, (node.op,)))
    return kinds


def _leaving_shapes(nodes) -> dict:
    """scope -> the shapes of the op results read outside it: what each module hands on."""
    by_name = {n.name: n for n in nodes}
    leaving = collections.defaultdict(list)
    for reader in nodes:
        for edge in reader.input:
            source = by_name.get(edge.split(":")[0])
            if source is not None and source.op.startswith("aten::") and _scope(source) != _scope(reader):
                leaving[_scope(source)].append(_shapes(source)[0])
    return {scope: sorted(shapes) for scope, shapes in leaving.items()}


def _both(tmp_path, name):
    _write_graph(chainrule, tmp_path / "ours", name)
    _write_graph(torch, tmp_path / "theirs", name)
    return list(_read(tmp_path / "ours").Graph().node), list(_read(tmp_path / "theirs").Graph().node)


def test_mlp_graph_nodes_scopes_and_shapes(tmp_path):
    ours, theirs = _both(tmp_path, "mlp")
    by_name = {n.name: n for n in ours}
    assert by_name["input/x"].op == "IO Node" and _shapes(by_name["input/x"]) == [[2, 4]]
    output = by_name["output/output.1"]
    assert output.op == "IO Node" and _shapes(output) == [[2, 3]]
    last = by_name[output.input[0]]
    assert last.op == "aten::addmm" and _scope(last) == "MLP/Linear[fc2]" and _shapes(last) == [[2, 3]]
    weight = by_name["MLP/Linear[fc1]/weight/weight"]
    assert weight.op == "prim::GetAttr" and _shapes(weight) == [[8, 4]]
    assert weight.attr["attr"].s == b"{ name :  weight }"
    (relu,) = [n for n in ours if n.op == "aten::relu"]
    assert _scope(relu) == "MLP/ReLU[act]" and _shapes(relu) == [[2, 8]]
    assert [by_name[edge].op for edge in relu.input] == ["aten::addmm"]
    assert {_scope(n) for n in _op_nodes(ours)} == {_scope(n) for n in _op_nodes(theirs)}
    assert _mapped_kinds(ours) == _mapped_kinds(theirs)
    assert _leaving_shapes(ours) == _leaving_shapes(theirs)


def test_cnn_with_sequential_blocks_matches_torch_scopes(tmp_path):
    ours, theirs = _both(tmp_path, "cnn")
    scopes = {_scope(n) for n in _op_nodes(ours)}
    assert scopes == {_scope(n) for n in _op_nodes(theirs)}
    assert "CNN/Sequential[features]/Conv2d[0]" in scopes and "CNN/Sequential[head]/Linear[1]" in scopes
    # eval-mode BatchNorm is a few arithmetic ops here, one aten::batch_norm in torch
    assert _mapped_kinds(ours, skip_scope="BatchNorm") == _mapped_kinds(theirs, skip_scope="BatchNorm")
    assert _leaving_shapes(ours) == _leaving_shapes(theirs)
    by_name = {n.name: n for n in ours}
    (convolution,) = [n for n in ours if n.op == "aten::convolution"]
    assert convolution.input[0] == "input/images"
    assert [by_name[edge].op for edge in convolution.input[1:]] == ["prim::GetAttr", "prim::GetAttr"]
    assert _shapes(by_name["output/output.1"]) == [[2, 5]]
    # every edge names a node of the graph
    assert all(edge.split(":")[0] in by_name for node in ours for edge in node.input)


def test_two_inputs_and_two_outputs(tmp_path):
    ours, theirs = _both(tmp_path, "two")
    by_name = {n.name: n for n in ours}
    assert _shapes(by_name["input/x"]) == [[2, 3]] and _shapes(by_name["input/y"]) == [[2, 5]]
    readers = {edge: _scope(n) for n in ours for edge in n.input if edge.startswith("input/")}
    assert readers == {"input/x": "TwoInputs/Linear[left]", "input/y": "TwoInputs/Linear[right]"}
    # each output tensor has its own output node (torch's one node holds the tuple)
    assert [(by_name[f"output/output.{i}"].input[0].split("/")[-1].split(".")[0],
             _shapes(by_name[f"output/output.{i}"])) for i in (1, 2)] == [("tanh", [[2, 4]]), ("sum", [[2]])]
    assert {_scope(n) for n in _op_nodes(ours)} == {_scope(n) for n in _op_nodes(theirs)}
    assert _mapped_kinds(ours) == _mapped_kinds(theirs)


def test_graph_event_and_step_stats_as_torch_writes_them(tmp_path):
    _write_graph(chainrule, tmp_path / "ours", "mlp")
    _write_graph(torch, tmp_path / "theirs", "mlp")
    ours, theirs = _read(tmp_path / "ours"), _read(tmp_path / "theirs")
    assert ours.Tags() == theirs.Tags()
    assert ours.Tags()["graph"] and ours.Tags()["run_metadata"] == ["step1"]
    assert ours.RunMetadata("step1") == theirs.RunMetadata("step1")
    assert ours.Graph().versions.producer == theirs.Graph().versions.producer == 22


def test_model_is_left_as_it_was(tmp_path):
    model = _models(chainrule)["cnn"]()
    x = chainrule.randn(2, 1, 8, 8)
    model.train()
    before = model(x)
    multiply = chainrule.Tensor.__mul__  # the operators' fast path, switched off while recording
    writer = chainrule.utils.tensorboard.SummaryWriter(str(tmp_path))
    writer.add_graph(model, x)
    writer.close()
    assert model.training and all(m.training for m in model.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert chainrule.autograd.function.active_profiler is None
    assert chainrule.Tensor.__mul__ is multiply
    after = model(x)
    assert after.requires_grad
    np.testing.assert_allclose(after.detach().numpy(), before.detach().numpy(), rtol=1e-6)


def test_inside_a_profiler_and_after_a_failing_forward(tmp_path):
    nn = chainrule.nn
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x = chainrule.randn(2, 3)
    writer = chainrule.utils.tensorboard.SummaryWriter(str(tmp_path))
    with chainrule.profiler.profile() as prof:
        model(x)
        writer.add_graph(model, x)  # its forward is the graph's, not the profiler's
        model(x) * 3
    # linear's own row around its t and addmm, as torch's profile has it
    assert [e.name for e in prof.events()] == ["aten::linear", "aten::t", "aten::addmm", "aten::relu"] * 2 + [
        "aten::mul"]

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x).reshape(7)

    broken = Broken()
    with pytest.raises(RuntimeError, match=r"shape '\[7\]' is invalid for input of size 4"):
        writer.add_graph(broken, x)
    writer.close()
    assert broken.training and chainrule.autograd.function.active_profiler is None
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in broken.modules())
    assert [n.name for n in _read(tmp_path).Graph().node if n.op.startswith("aten::")] == [
        "Sequential/Linear[0]/t.1", "Sequential/Linear[0]/addmm.2", "Sequential/ReLU[1]/relu.3"]


def test_constants_in_place_ops_and_unused_results(tmp_path):
    nn = chainrule.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            unused = x.exp()  # noqa: F841 - a result that reaches no output is not drawn
            hidden = self.fc(x) * 2
            hidden.relu_()
            return hidden + chainrule.ones(3)

    writer = chainrule.utils.tensorboard.SummaryWriter(str(tmp_path))
    writer.add_graph(Net(), chainrule.randn(2, 3))
    writer.close()
    nodes = list(_read(tmp_path).Graph().node)
    by_name = {n.name: n for n in nodes}
    kinds = [n.op for n in _op_nodes(nodes)]
    assert "aten::exp" not in kinds
    add = by_name[by_name["output/output.1"].input[0]]
    assert add.op == "aten::add" and _shapes(add) == [[2, 3]]
    relu, ones = (by_name[edge] for edge in add.input)
    assert relu.op == "aten::relu_" and ones.op == "prim::Constant" and _shapes(ones) == [[3]]
    mul = by_name[relu.input[0]]
    assert mul.op == "aten::mul" and _scope(mul) == "Net"
    two = by_name[mul.input[1]]
    assert two.op == "prim::Constant" and two.attr["attr"].s == b"{ value : 2.0}"


def test_verbose_prints_the_recorded_graph(tmp_path, capsys):
    _write_graph(chainrule, tmp_path, "mlp", verbose=True)
    printed = capsys.readouterr().out
    assert printed.startswith("graph(%input/x):")
    assert "aten::relu(%MLP/Linear[fc1]/addmm." in printed
    assert "return %MLP/Linear[fc2]/addmm." in printed


def _error_of(lib, tmp_path, make_model, model_input, **kwargs):
    writer = importlib.import_module(f"{lib.__name__}.utils.tensorboard").SummaryWriter(str(tmp_path / lib.__name__))
    try:
        with pytest.raises(Exception) as caught:
            writer.add_graph(make_model(lib), model_input(lib), **kwargs)
    finally:
        writer.close()
    return type(caught.value), str(caught.value)


def test_missing_input_raises_as_torch(tmp_path, capsys):
    def two(lib):
        return _models(lib)["two"]()

    ours = _error_of(chainrule, tmp_path, two, lambda lib: None)
    our_print = capsys.readouterr().out
    theirs = _error_of(torch, tmp_path, two, lambda lib: None)
    assert ours == theirs == (RuntimeError, "example_kwarg_inputs should be a dict")
    assert our_print == capsys.readouterr().out == ("example_kwarg_inputs should be a dict\n"
                                                    "Error occurs, No graph saved\n")
    assert _error_of(chainrule, tmp_path, two, lambda lib: ()) == _error_of(torch, tmp_path, two, lambda lib: ())


def test_dict_output_needs_a_non_strict_trace(tmp_path):
    def dict_model(lib):
        class Named(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = lib.nn.Linear(3, 2)

            def forward(self, x):
                return {"logits": self.fc(x)}

        return Named()

    ours = _error_of(chainrule, tmp_path, dict_model, lambda lib: lib.randn(2, 3))
    theirs = _error_of(torch, tmp_path, dict_model, lambda lib: lib.randn(2, 3))
    assert ours == theirs and ours[0] is RuntimeError
    writer = chainrule.utils.tensorboard.SummaryWriter(str(tmp_path / "loose"))
    writer.add_graph(dict_model(chainrule), chainrule.randn(2, 3), use_strict_trace=False)
    writer.close()
    nodes = {n.name: n for n in _read(tmp_path / "loose").Graph().node}
    assert _shapes(nodes["output/output.1"]) == [[2, 2]]


def test_nested_inputs_and_second_results_of_an_op(tmp_path):
    nn = chainrule.nn

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, batch_first=True)
            self.fc = nn.Linear(4, 2)

        def forward(self, x, state):
            out, (hidden, _) = self.lstm(x, state)
            return self.fc(out[:, -1]), hidden

    writer = chainrule.utils.tensorboard.SummaryWriter(str(tmp_path))
    writer.add_graph(Tagger(), (chainrule.randn(2, 5, 3), (chainrule.zeros(1, 2, 4), chainrule.zeros(1, 2, 4))))
    writer.close()
    nodes = list(_read(tmp_path).Graph().node)
    by_name = {n.name: n for n in nodes}
    assert [_shapes(by_name[f"input/{name}"]) for name in ("x", "state.1", "state.2")] == [
        [[2, 5, 3]], [[1, 2, 4]], [[1, 2, 4]]]
    (lstm,) = [n for n in nodes if n.op == "aten::lstm"]
    assert _scope(lstm) == "Tagger/LSTM[lstm]" and _shapes(lstm) == [[5, 2, 4], [2, 4], [2, 4]]
    # the hidden state is the op's second result, referenced as TensorBoard does: "name:1"
    assert any(edge == lstm.name + ":1" for n in nodes for edge in n.input)
    assert all(edge.split(":")[0] in by_name for node in nodes for edge in node.input)
    assert _shapes(by_name["output/output.2"]) == [[1, 2, 4]]


def _residual_net(lib):
    nn = lib.nn

    class Block(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            out += x  # torchvision's residual, written in place
            return self.relu(out)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.layer1 = nn.Sequential(Block(8), Block(8))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            return self.fc(lib.flatten(self.pool(self.layer1(self.stem(x))), 1))

    return Net()


def test_residual_blocks_with_in_place_ops_match_torch(tmp_path):
    graphs = {}
    for lib in (chainrule, torch):
        log_dir = tmp_path / lib.__name__
        writer = importlib.import_module(f"{lib.__name__}.utils.tensorboard").SummaryWriter(str(log_dir))
        lib.manual_seed(0)
        writer.add_graph(_residual_net(lib), lib.randn(2, 3, 8, 8))
        writer.close()
        graphs[lib] = list(_read(log_dir).Graph().node)
    ours, theirs = graphs[chainrule], graphs[torch]
    assert {_scope(n) for n in _op_nodes(ours)} == {_scope(n) for n in _op_nodes(theirs)}

    def in_place(nodes):
        return collections.Counter((_scope(n), n.op) for n in _op_nodes(nodes) if n.op.endswith("_"))

    assert in_place(ours) == in_place(theirs)
    assert in_place(ours)[("Net/Sequential[layer1]/Block[1]", "aten::add_")] == 1
    by_name = {n.name: n for n in ours}
    (add,) = [n for n in ours if n.op == "aten::add_" and "Block[1]" in n.name]
    # the second block's residual reads its own eval batch norm (one node, EvalBatchNorm, recorded
    # as aten::native_batch_norm where torch names its aten::batch_norm) and the first block's last
    # (in-place) relu
    assert [by_name[edge].op for edge in add.input] == ["aten::native_batch_norm", "aten::relu_"]
    assert _scope(by_name[add.input[1]]) == "Net/Sequential[layer1]/Block[0]/ReLU[relu]"
    assert _leaving_shapes(ours) == _leaving_shapes(theirs)
