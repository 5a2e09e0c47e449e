"""chainrule.fx: torch.fx's symbolic tracing and graph rewriting, for chainrule modules.

``symbolic_trace(module)`` runs ``forward`` on ``Proxy`` values and records each operation as a
``Node`` of a ``Graph``; ``GraphModule`` turns a (possibly edited) Graph back into a module by
generating Python for its forward. ``Interpreter`` and ``Transformer`` walk a graph node by node,
``passes.shape_prop.ShapeProp`` records shapes, ``subgraph_rewriter.replace_pattern`` rewrites
matching subgraphs. The import paths are torch's (``torch.fx.node.Node``, ``torch.fx.graph.Graph``,
...). ``experimental.proxy_tensor.make_fx`` records a function's aten ops through the dispatch
layer. Not built: ``torch.export``, symbolic shapes beyond the plain-int helpers.
"""

from __future__ import annotations

from . import experimental, graph, graph_module, interpreter, node, passes, proxy, subgraph_rewriter
from ._symbolic_trace import PH, Tracer, symbolic_trace, wrap
from .graph import Graph
from .graph_module import GraphModule
from .interpreter import Interpreter, Transformer
from .node import Node, map_arg
from .proxy import Proxy
from .subgraph_rewriter import replace_pattern

__all__ = ["symbolic_trace", "wrap", "Tracer", "Graph", "GraphModule", "Node", "Proxy", "Interpreter",
           "Transformer", "map_arg", "replace_pattern", "PH", "graph", "graph_module", "interpreter", "node",
           "passes", "proxy", "subgraph_rewriter", "experimental"]
