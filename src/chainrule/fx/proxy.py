"""torch.fx.proxy: ``Proxy``, the value a symbolic trace passes through model code in place of a
tensor. Every operation on a Proxy records a Node instead of computing: Python operators become
``call_function`` nodes on ``operator.*``, method calls ``call_method`` nodes, and chainrule
functions reach ``Proxy.__torch_function__`` (torch's override protocol) to become ``call_function``.
"""

from __future__ import annotations

import dis
import inspect
import operator
from collections.abc import Callable
from typing import Any

from .graph import Graph
from .node import Argument, Node, Target, map_aggregate

__all__ = ["Proxy", "Attribute", "TraceError", "TracerBase", "GraphAppendingTracer"]


class TraceError(ValueError):
    """A traced program did something a symbolic trace cannot record (control flow on a Proxy,
    iterating one)."""


def _unpacked_count(frame) -> int | None:
    """How many values the calling line unpacks (``a, b = proxy``), read from its bytecode."""
    for instruction in dis.get_instructions(frame.f_code):
        if instruction.offset == frame.f_lasti and instruction.opname == "UNPACK_SEQUENCE":
            return instruction.argval
    return None


class TracerBase:
    """What a Proxy needs from the tracer that made it: node creation and the refusals."""

    graph: Graph

    def create_node(self, kind: str, target: Target, args: tuple, kwargs: dict, name: str | None = None,
                    type_expr: Any = None) -> Node:
        return self.graph.create_node(kind, target, args, kwargs, name, type_expr)

    def proxy(self, node: Node) -> Proxy:
        return Proxy(node, self)

    def create_proxy(self, kind: str, target: Target, args: tuple, kwargs: dict, name: str | None = None,
                     type_expr: Any = None, proxy_factory_fn: Callable[[Node], Proxy] | None = None) -> Proxy:
        """Records one operation: its arguments turned into graph values, a Node, and a Proxy for it."""
        node = self.create_node(kind, target, self.create_arg(args), self.create_arg(kwargs), name, type_expr)
        return proxy_factory_fn(node) if proxy_factory_fn is not None else self.proxy(node)

    def create_arg(self, a: Any) -> Argument:
        """Turns a Python value into something a Node may hold: a Proxy becomes its Node."""
        def leaf(value):
            return value.node if isinstance(value, Proxy) else value

        return map_aggregate(a, leaf)

    def to_bool(self, obj: Proxy) -> bool:
        raise TraceError("symbolically traced variables cannot be used as inputs to control flow")

    def iter(self, obj: Proxy):
        raise TraceError("Proxy object cannot be iterated. This can be attempted when the Proxy is used in a loop "
                         "or as a *args or **kwargs function argument. See the torch.fx docs on pytorch.org for a "
                         "more detailed explanation of what types of control flow can be traced, and check out the "
                         "Proxy docstring for help troubleshooting Proxy iteration errors")

    def keys(self, obj: Proxy):
        return Attribute(obj, "keys")()


class GraphAppendingTracer(TracerBase):
    """The tracer of a Proxy made directly on a Graph: operations append nodes to it."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph


def _tracer_of(values) -> TracerBase | None:
    found: list[TracerBase] = []
    map_aggregate(values, lambda v: found.append(v.tracer) if isinstance(v, Proxy) else None)
    return found[0] if found else None


class Proxy:
    """torch.fx.Proxy: stands for ``node`` while ``tracer`` traces; operations on it add nodes."""

    def __init__(self, node: Node, tracer: TracerBase | None = None) -> None:
        self.node = node
        self.tracer = tracer if tracer is not None else GraphAppendingTracer(node.graph)

    def __repr__(self) -> str:
        return f"Proxy({self.node.name})"

    def __getattr__(self, name: str) -> Attribute:
        # dunder look-ups come from Python's protocols (copy, pickle), not from model code
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return Attribute(self, name)

    def __call__(self, *args, **kwargs) -> Proxy:
        return self.tracer.create_proxy("call_method", "__call__", (self, *args), kwargs)

    def __iter__(self):
        caller = inspect.currentframe().f_back
        count = _unpacked_count(caller)
        if count is not None:
            # `a, b = proxy` is allowed: the number of values is in the program text
            return iter([self[i] for i in range(count)])
        return self.tracer.iter(self)

    def __bool__(self) -> bool:
        return self.tracer.to_bool(self)

    def __len__(self) -> int:
        raise RuntimeError("'len' is not supported in symbolic tracing by default. If you want this call to be "
                           "recorded, please call torch.fx.wrap('len') at module scope")

    def keys(self):
        return self.tracer.keys(self)

    def __hash__(self) -> int:
        return id(self)

    def __deepcopy__(self, memo) -> Proxy:
        return self

    @classmethod
    def __torch_function__(cls, orig_method: Callable, types, args: tuple = (), kwargs: dict | None = None) -> Proxy:
        """torch's override protocol: a chainrule function called with a Proxy argument records a
        node; a Tensor method (``Tensor.add``) becomes call_method, any other callable call_function."""
        kwargs = kwargs or {}
        tracer = _tracer_of((args, kwargs))
        if tracer is None:
            raise RuntimeError(f"no Proxy among the arguments of {getattr(orig_method, '__name__', orig_method)}")
        import chainrule

        name = getattr(orig_method, "__name__", None)
        # chainrule binds many functions as Tensor methods too (Tensor.relu is chainrule.relu):
        # a function of the namespace is recorded as a function, as torch.relu is in torch
        is_function = name is not None and getattr(chainrule, name, None) is orig_method
        if not is_function and name is not None and getattr(chainrule.Tensor, name, None) is orig_method:
            return tracer.create_proxy("call_method", name, args, kwargs)
        return tracer.create_proxy("call_function", orig_method, args, kwargs)


class Attribute(Proxy):
    """``proxy.name``: becomes a ``call_method`` node when called, a ``getattr`` node when used
    as a value (``x.shape``)."""

    def __init__(self, root: Proxy, attr: str) -> None:
        self.root = root
        self.attr = attr
        self.tracer = root.tracer
        self._node: Node | None = None

    @property
    def node(self) -> Node:
        # made on first use, so that a method call records only call_method
        if self._node is None:
            self._node = self.tracer.create_proxy("call_function", getattr, (self.root, self.attr), {}).node
        return self._node

    def __call__(self, *args, **kwargs) -> Proxy:
        return self.tracer.create_proxy("call_method", self.attr, (self.root, *args), kwargs)


def _record(target: Callable) -> Callable:
    def method(self, *args):
        return self.tracer.create_proxy("call_function", target, (self, *args), {})

    method.__name__ = f"__{target.__name__.strip('_')}__"
    return method


def _record_reflected(target: Callable) -> Callable:
    def method(self, other):
        return self.tracer.create_proxy("call_function", target, (other, self), {})

    method.__name__ = f"__r{target.__name__.strip('_')}__"
    return method


_BINARY = ("add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "lshift", "rshift", "and_", "or_", "xor",
           "matmul")
_OTHER = ("getitem", "eq", "ne", "lt", "le", "gt", "ge", "neg", "pos", "invert", "abs")

for _name in _BINARY + _OTHER:
    _target = getattr(operator, _name)
    setattr(Proxy, f"__{_name.strip('_')}__", _record(_target))
for _name in _BINARY:
    _target = getattr(operator, _name)
    setattr(Proxy, f"__r{_name.strip('_')}__", _record_reflected(_target))
