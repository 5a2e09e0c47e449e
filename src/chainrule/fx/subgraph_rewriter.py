"""torch.fx.subgraph_rewriter: ``replace_pattern`` finds every occurrence of a traced pattern in a
GraphModule's graph and splices a traced replacement in its place."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..nn.modules.module import Module
from .graph import Graph
from .graph_module import GraphModule, _copy_attribute
from .node import Node

__all__ = ["Match", "replace_pattern"]


class Match(NamedTuple):
    anchor: Node  # the graph node matched to the pattern's output
    nodes_map: dict[Node, Node]  # pattern node -> graph node


def _graph_of(pattern: Callable | Graph | GraphModule) -> Graph:
    if isinstance(pattern, GraphModule):
        return pattern.graph
    if isinstance(pattern, Graph):
        return pattern
    from ._symbolic_trace import symbolic_trace

    return symbolic_trace(pattern).graph


def _same_constant(a, b) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return a is b


class _Matcher:
    def __init__(self, pattern: Graph) -> None:
        self.placeholders = [n for n in pattern.nodes if n.op == "placeholder"]
        output = next(n for n in pattern.nodes if n.op == "output")
        self.anchor = output.args[0]
        if not isinstance(self.anchor, Node):
            raise NotImplementedError("replace_pattern: the pattern must return a single value")

    def match_at(self, node: Node) -> dict[Node, Node] | None:
        mapping: dict[Node, Node] = {}
        if not self._match(self.anchor, node, mapping):
            return None
        matched = {graph_node for pattern_node, graph_node in mapping.items() if pattern_node.op != "placeholder"}
        # an inner node read from outside the match cannot be removed with it
        for pattern_node, graph_node in mapping.items():
            if pattern_node.op != "placeholder" and pattern_node is not self.anchor:
                if any(user not in matched for user in graph_node.users):
                    return None
        return mapping

    def _match(self, pattern_node: Node, graph_node, mapping: dict[Node, Node]) -> bool:
        if not isinstance(graph_node, Node):
            return False
        if pattern_node in mapping:
            return mapping[pattern_node] is graph_node
        if pattern_node.op == "placeholder":
            mapping[pattern_node] = graph_node
            return True
        if pattern_node.op != graph_node.op or pattern_node.target != graph_node.target:
            return False
        if len(pattern_node.args) != len(graph_node.args) or set(pattern_node.kwargs) != set(graph_node.kwargs):
            return False
        mapping[pattern_node] = graph_node
        pairs = list(zip(pattern_node.args, graph_node.args))
        pairs += [(pattern_node.kwargs[key], graph_node.kwargs[key]) for key in pattern_node.kwargs]
        for expected, actual in pairs:
            if isinstance(expected, Node):
                if not self._match(expected, actual, mapping):
                    del mapping[pattern_node]
                    return False
            elif isinstance(actual, Node) or not _same_constant(expected, actual):
                del mapping[pattern_node]
                return False
        return True


def replace_pattern(gm: GraphModule, pattern: Callable | Graph | GraphModule,
                    replacement: Callable | Graph | GraphModule) -> list[Match]:
    """Replaces each non-overlapping occurrence of ``pattern`` in ``gm.graph`` by ``replacement``
    (functions, modules or graphs with the same inputs), recompiles ``gm`` and returns the matches."""
    pattern_graph = _graph_of(pattern)
    replacement_graph = _graph_of(replacement)
    matcher = _Matcher(pattern_graph)
    matches: list[Match] = []
    taken: set[Node] = set()
    for node in list(gm.graph.nodes):
        mapping = matcher.match_at(node)
        if mapping is None:
            continue
        inner = [mapping[p] for p in mapping if p.op != "placeholder"]
        if any(n in taken for n in inner):
            continue
        taken.update(inner)
        matches.append(Match(node, mapping))

    replacement_inputs = [n for n in replacement_graph.nodes if n.op == "placeholder"]
    for match in matches:
        value_map = {placeholder: match.nodes_map[pattern_placeholder]
                     for placeholder, pattern_placeholder in zip(replacement_inputs, matcher.placeholders)}
        # as torch: the replacement goes just before the first reader of the matched result
        first_reader = next((n for n in gm.graph.nodes if n in match.anchor.users), match.anchor)
        with gm.graph.inserting_before(first_reader):
            new_value = gm.graph.graph_copy(replacement_graph, value_map)
        for module_node in (n for n in replacement_graph.nodes if n.op in ("get_attr", "call_module")):
            if isinstance(replacement, Module):
                _copy_attribute(replacement, gm, module_node.target)
        match.anchor.replace_all_uses_with(new_value)
        for pattern_node in reversed(list(pattern_graph.nodes)):
            if pattern_node.op not in ("placeholder", "output"):
                gm.graph.erase_node(match.nodes_map[pattern_node])
    gm.recompile()
    return matches
