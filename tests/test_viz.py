"""Graph drawings: DOT text (parsed back), the text tree, rendering and its clear errors."""

import re
import shutil
import sys

import numpy as np
import pytest

import chainrule
from chainrule.viz import Graph, graph

_NODE = re.compile(r'^\s+(\w+) \[label="((?:[^"\\]|\\.)*)", ([^\]]*)\];$')
_EDGE = re.compile(r'^\s+(\w+) -> (\w+)(?: \[label="([^"]*)"\])?;$')


def _parse_dot(text):
    nodes, edges = {}, []
    for line in text.splitlines():
        m = _NODE.match(line)
        if m:
            nodes[m.group(1)] = m.group(2).split("\\n")
            continue
        m = _EDGE.match(line)
        if m:
            edges.append((nodes[m.group(1)][0], nodes[m.group(2)][0], m.group(3)))
    return nodes, edges


def _example():
    x = chainrule.tensor(1.0, requires_grad=True)
    y = chainrule.tensor(2.0, requires_grad=True)
    z = chainrule.tensor(0.0, requires_grad=True)
    x.name, y.name, z.name = "x", "y", "z"
    return (x + y) * chainrule.maximum(y, z)


def test_dot_nodes_and_edges():
    g = graph(_example())
    assert isinstance(g, Graph)
    text = g.to_dot()
    assert text.startswith("digraph chainrule {") and text.rstrip().endswith("}")
    nodes, edges = _parse_dot(text)
    labels = sorted(lines[0] for lines in nodes.values())
    assert labels == ["AddBackward0", "MaximumBackward0", "MulBackward0", "output", "x", "y", "z"]
    assert sorted(edges) == sorted([
        ("x", "AddBackward0", "()"), ("y", "AddBackward0", "()"),
        ("y", "MaximumBackward0", "()"), ("z", "MaximumBackward0", "()"),
        ("AddBackward0", "MulBackward0", "()"), ("MaximumBackward0", "MulBackward0", "()"),
        ("MulBackward0", "output", "()"),
    ])
    # the tensors each node saved for backward are listed with their shapes
    by_label = {lines[0]: lines for lines in nodes.values()}
    assert by_label["MulBackward0"][1] == "saved: (), ()"
    assert by_label["AddBackward0"] == ["AddBackward0"]
    assert by_label["y"] == ["y", "()"]


def test_shapes_params_and_constants():
    W = chainrule.randn(3, 4, requires_grad=True)
    b = chainrule.zeros(3, requires_grad=True)
    x = chainrule.randn(4)
    loss = chainrule.tanh((W * x).sum(1) + b).sum()
    g = graph(loss, params={"weight": W, "bias": b})
    nodes, edges = _parse_dot(g.to_dot())
    by_label = {lines[0]: lines for lines in nodes.values()}
    assert by_label["weight"] == ["weight", "(3, 4)"]
    assert by_label["bias"] == ["bias", "(3,)"]
    assert by_label["TanhBackward0"] == ["TanhBackward0", "saved: (3,)"]
    assert ("weight", "MulBackward0", "(3, 4)") in edges
    assert ("constant", "MulBackward0", "(4,)") in edges
    assert ("TanhBackward0", "SumBackward0", "(3,)") in edges
    assert ("bias", "AddBackward0", "(3,)") in edges
    assert repr(g) == "Graph(5 ops, 2 leaves, 8 edges)"


def test_unnamed_leaves_and_tensor_name():
    a = chainrule.ones(2, requires_grad=True)
    b = chainrule.ones(2, requires_grad=True)
    out = (a * b).sum()
    out.name = "loss"
    labels = sorted(n.label for n in graph(out).nodes)
    assert labels == ["MulBackward0", "SumBackward0", "leaf1", "leaf2", "loss"]


def test_text_tree():
    text = graph(_example()).to_text()
    assert text.splitlines() == [
        "output ()",
        "└─ MulBackward0 -> ()  saved: (), ()",
        "   ├─ AddBackward0 -> ()",
        "   │  ├─ x () [leaf]",
        "   │  └─ y () [leaf]",
        "   └─ MaximumBackward0 -> ()  saved: (), ()",
        "      ├─ y () [leaf]",
        "      └─ z () [leaf]",
    ]
    assert str(graph(_example())) == text


def test_text_tree_marks_shared_subgraphs():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    x.name = "x"
    h = chainrule.exp(x)
    text = graph((h * h).sum()).to_text()
    assert text.count("ExpBackward0") == 2
    assert "(shared, expanded above)" in text
    assert text.count("x (2,) [leaf]") == 1


def test_deep_graph_no_recursion_limit():
    x = chainrule.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0
    g = graph(y)
    assert sum(1 for n in g.nodes if n.kind == "op") == 3000
    assert len(g.to_text().splitlines()) > 3000


def test_multiple_outputs_and_errors():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    g = graph([x.sum(), (x * x).mean()])
    assert [g.node(r).label for r in g.roots] == ["output0", "output1"]
    with pytest.raises(TypeError, match="expected a Tensor"):
        graph(np.ones(2))
    # a tensor without history is just its output box
    assert len(graph(chainrule.ones(2)).nodes) == 1


def test_render_dot_file(tmp_path):
    path = graph(_example()).render(str(tmp_path / "g.dot"))
    assert open(path, encoding="utf-8").read() == graph(_example()).to_dot()


def test_render_without_dot_binary_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ImportError, match="`dot` program"):
        graph(_example()).render(str(tmp_path / "g.svg"))
    assert graph(_example())._repr_svg_() is None


def test_render_without_graphviz_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match=r'pip install "chainrule\[graph\]"'):
        graph(_example()).render(str(tmp_path / "g.png"))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
def test_render_svg(tmp_path):
    pytest.importorskip("graphviz")
    path = graph(_example()).render(str(tmp_path / "g.svg"))
    assert "<svg" in open(path, encoding="utf-8").read()
