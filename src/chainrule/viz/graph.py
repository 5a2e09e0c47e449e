"""Drawings of the backward graph behind a tensor: Graphviz DOT, SVG/PNG, and a text tree.

``graph(loss, params=dict(model.named_parameters()))`` walks ``loss.grad_fn`` and its
``next_functions`` (iteratively, so deep graphs are fine) and collects:

* op nodes, named as their ``grad_fn`` is (``MulBackward0``), with the shapes of the tensors the
  node saved for backward;
* leaves, named by ``params`` or ``Tensor.name``, with their shapes;
* edges in the forward direction (input → consumer), labelled with the shape that flows.

This is torchviz's ``make_dot`` without the dependency: ``to_dot()`` needs nothing, ``render()``
needs the ``graphviz`` package and the ``dot`` program.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

__all__ = ["Graph", "GraphNode", "GraphEdge", "graph", "check_renderer"]


@dataclass
class GraphNode:
    """One box of the drawing. ``kind`` is ``"op"``, ``"leaf"``, ``"const"`` or ``"output"``."""

    id: str
    kind: str
    label: str
    shape: tuple | None = None
    saved: list = field(default_factory=list)  # shapes of the tensors saved for backward


@dataclass
class GraphEdge:
    """An edge in the forward direction: ``source`` feeds ``target`` a tensor of ``shape``."""

    source: str
    target: str
    shape: tuple | None = None

    @property
    def label(self) -> str:
        return _shape_text(self.shape)


def _shape_text(shape) -> str:
    if shape is None:
        return ""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _named_ids(params) -> dict:
    if not params:
        return {}
    items = params.items() if isinstance(params, dict) else params
    return {id(t): name for name, t in items}


class Graph:
    """The backward graph of one or more outputs, ready to print or draw."""

    def __init__(self, nodes: list[GraphNode], edges: list[GraphEdge], roots: list[str]) -> None:
        self.nodes = nodes
        self.edges = edges
        self.roots = roots
        self._by_id = {n.id: n for n in nodes}

    def node(self, node_id: str) -> GraphNode:
        return self._by_id[node_id]

    def inputs_of(self, node_id: str) -> list[GraphEdge]:
        """Edges into ``node_id``, in the order of the op's inputs."""
        return [e for e in self.edges if e.target == node_id]

    def __repr__(self) -> str:
        ops = sum(1 for n in self.nodes if n.kind == "op")
        leaves = sum(1 for n in self.nodes if n.kind == "leaf")
        return f"Graph({ops} ops, {leaves} leaves, {len(self.edges)} edges)"

    # ------------------------------------------------------------------ outputs
    def to_dot(self, rankdir: str = "BT") -> str:
        """Graphviz DOT text: leaves light blue, ops grey, outputs green; edges labelled with shapes."""
        styles = {
            "op": 'shape=box, style=filled, fillcolor="lightgrey"',
            "leaf": 'shape=box, style=filled, fillcolor="lightblue"',
            "const": 'shape=box, style=dashed',
            "output": 'shape=box, style=filled, fillcolor="darkolivegreen1"',
        }
        lines = ["digraph chainrule {", f"    rankdir={rankdir};",
                 '    node [fontname="monospace", fontsize=11];',
                 '    edge [fontname="monospace", fontsize=9];']
        for n in self.nodes:
            lines.append(f"    {n.id} [label={_dot_quote(self._box_text(n))}, {styles[n.kind]}];")
        for e in self.edges:
            label = f" [label={_dot_quote(e.label)}]" if e.shape is not None else ""
            lines.append(f"    {e.source} -> {e.target}{label};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _box_text(self, n: GraphNode) -> str:
        parts = [n.label]
        if n.kind != "op" and n.shape is not None:
            parts.append(_shape_text(n.shape))
        if n.saved:
            parts.append("saved: " + ", ".join(_shape_text(s) for s in n.saved))
        return "\n".join(parts)

    def render(self, path: str, format: str | None = None) -> str:
        """Write the drawing to ``path`` (``format`` 'svg', 'png', 'pdf' or 'dot'; default from the
        suffix). Needs the ``graphviz`` package and Graphviz's ``dot`` program except for 'dot'."""
        if format is None:
            format = format_from_path(path)
        if format == "dot":
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.to_dot())
            return path
        source = _graphviz_source(self.to_dot())
        data = source.pipe(format=format)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def _repr_svg_(self):
        try:
            return _graphviz_source(self.to_dot()).pipe(format="svg").decode("utf-8")
        except ImportError:
            return None

    def to_text(self) -> str:
        """A plain-text tree from the output down to the leaves; a node reached again is marked."""
        children: dict[str, list[GraphEdge]] = {}
        for e in self.edges:
            children.setdefault(e.target, []).append(e)
        lines: list[str] = []
        seen: set[str] = set()
        for root in self.roots:
            # iterative pre-order walk: (node id, edge shape, prefix, branch marker)
            stack = [(root, None, "", "")]
            while stack:
                node_id, shape, prefix, branch = stack.pop()
                n = self._by_id[node_id]
                text = n.label
                if n.kind == "op":
                    if shape is not None:
                        text += f" -> {_shape_text(shape)}"
                    if n.saved:
                        text += "  saved: " + ", ".join(_shape_text(s) for s in n.saved)
                elif n.shape is not None:
                    text += f" {_shape_text(n.shape)}"
                    if n.kind != "output":
                        text += f" [{n.kind}]"
                repeated = node_id in seen and n.kind == "op" and children.get(node_id)
                if repeated:
                    text += "  (shared, expanded above)"
                lines.append(prefix + branch + text)
                if repeated:
                    continue
                seen.add(node_id)
                kids = children.get(node_id, [])
                child_prefix = prefix + ("" if not branch else ("│  " if branch == "├─ " else "   "))
                for i in reversed(range(len(kids))):
                    marker = "└─ " if i == len(kids) - 1 else "├─ "
                    stack.append((kids[i].source, kids[i].shape, child_prefix, marker))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def format_from_path(path: str) -> str:
    """'svg', 'png', 'dot', ... from a file name's suffix ('svg' without one)."""
    return os.path.splitext(path)[1].lstrip(".").lower() or "svg"


def check_renderer(format: str = "svg") -> None:
    """Raise the ImportError ``render`` would raise for ``format``, before any work is done."""
    if format != "dot":
        _graphviz_source("digraph {}")


def _graphviz_source(dot_text: str):
    try:
        import graphviz
    except ImportError:
        raise ImportError(
            'rendering a graph needs the graphviz package: pip install "chainrule[graph]" '
            "(to_dot() works without it)"
        ) from None
    if shutil.which("dot") is None:
        raise ImportError(
            "rendering a graph needs Graphviz's `dot` program on PATH (apt install graphviz, "
            "brew install graphviz, or conda install graphviz); to_dot() works without it"
        )
    return graphviz.Source(dot_text)


def graph(tensor, params=None) -> Graph:
    """The computation behind ``tensor`` (or a tuple of tensors) as a :class:`Graph`.

    ``params`` names leaves: ``dict(model.named_parameters())`` or any ``{name: tensor}``;
    otherwise a leaf's ``Tensor.name`` is used, else ``leaf<k>``.
    """
    from ..autograd.function import AccumulateGrad
    from ..tensor import Tensor

    outputs = tuple(tensor) if isinstance(tensor, (tuple, list)) else (tensor,)
    for i, t in enumerate(outputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"viz.graph: output {i} is a {type(t).__name__}, expected a Tensor")
    names = _named_ids(params)
    nodes: list[GraphNode] = []
    edges: list[GraphEdge] = []
    ids: dict[int, str] = {}
    leaf_count = [0]

    def leaf_label(variable) -> str:
        name = names.get(id(variable)) or variable.name
        if name:
            return name
        leaf_count[0] += 1
        return f"leaf{leaf_count[0]}"

    def visit(fn) -> tuple[str, bool]:
        key = id(fn)
        if key in ids:
            return ids[key], False
        node_id = f"n{len(ids)}"
        ids[key] = node_id
        if type(fn) is AccumulateGrad:
            v = fn.variable
            nodes.append(GraphNode(node_id, "leaf", leaf_label(v), tuple(v.shape)))
        else:
            saved = []
            for s in getattr(fn, "_saved", ()) or ():
                if isinstance(s, Tensor):
                    saved.append(tuple(s.shape))
            nodes.append(GraphNode(node_id, "op", fn.name(), None, saved))
        return node_id, True

    roots = []
    for k, out in enumerate(outputs):
        out_id = f"out{k}"
        label = names.get(id(out)) or out.name or ("output" if len(outputs) == 1 else f"output{k}")
        nodes.append(GraphNode(out_id, "output", label, tuple(out.shape)))
        roots.append(out_id)
        fn = out.grad_fn
        if fn is None and out.requires_grad:
            fn = out._get_accumulator()
        if fn is None:
            continue
        src, new = visit(fn)
        edges.append(GraphEdge(src, out_id, tuple(out.shape)))
        stack = [fn] if new else []
        while stack:
            fn = stack.pop()
            target = ids[id(fn)]
            metas = getattr(fn, "_input_meta", ()) or ()
            for i, (child, _) in enumerate(fn.next_functions):
                shape = tuple(metas[i][0]) if i < len(metas) and metas[i] is not None else None
                if child is None:
                    if shape is None:
                        continue
                    const_id = f"c{len(nodes)}"
                    nodes.append(GraphNode(const_id, "const", "constant", shape))
                    edges.append(GraphEdge(const_id, target, shape))
                    continue
                src, new = visit(child)
                edges.append(GraphEdge(src, target, shape))
                if new:
                    stack.append(child)
    return Graph(nodes, edges, roots)
