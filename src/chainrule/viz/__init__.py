"""Make the chain rule visible: graph drawings and the backward-pass explainer.

``chainrule.viz.graph(t)`` returns a :class:`Graph` (``to_dot()``, ``render()``, ``to_text()``);
``chainrule.viz.explain(f)`` (also ``chainrule.autograd.explain``) traces backward step by step.
"""

from .explain import RULES, Step, Trace, explain, format_value
from .graph import Graph, GraphEdge, GraphNode, graph

__all__ = ["graph", "Graph", "GraphNode", "GraphEdge", "explain", "Trace", "Step", "RULES",
           "format_value"]
