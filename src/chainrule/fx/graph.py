"""torch.fx.graph: ``Graph``, a program as a linked list of Nodes, and the Python it generates.

``Graph.python_code()`` writes the ``forward`` a GraphModule runs: one line per node, and after a
value's last use ``name = None`` so that intermediate tensors are freed as early as in eager code.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import math
import operator
import re
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..ops.namespaces import OpOverload
from .node import Argument, Node, Target, map_arg, public_path

__all__ = ["Graph", "PythonCode"]

_BINARY_SYMBOLS = {
    operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/", operator.floordiv: "//",
    operator.mod: "%", operator.pow: "**", operator.matmul: "@", operator.lshift: "<<", operator.rshift: ">>",
    operator.and_: "&", operator.or_: "|", operator.xor: "^", operator.eq: "==", operator.ne: "!=",
    operator.lt: "<", operator.le: "<=", operator.gt: ">", operator.ge: ">=",
}
_NO_STACK_TRACE = "# No stacktrace found for following nodes"
_UNARY_SYMBOLS = {operator.neg: "-", operator.pos: "+", operator.invert: "~"}

# names a generated variable must not take: they would shadow what the generated code calls
_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | {"torch", "self", "operator", "math", "inf", "nan",
                                                                "device"}
_TRAILING_NUMBER = re.compile(r"(.*)_(\d+)$")
_NOT_IDENTIFIER = re.compile(r"[^0-9a-zA-Z_]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    return _CAMEL_BOUNDARY.sub(r"_\1", name).lower()


class _Namespace:
    """Hands out unique Python identifiers: a taken or reserved candidate gets ``_1``, ``_2``, ..."""

    def __init__(self) -> None:
        self._used: set[str] = set()
        self._count: dict[str, int] = {}

    def create_name(self, candidate: str) -> str:
        candidate = _NOT_IDENTIFIER.sub("_", candidate) or "_unnamed"
        if candidate[0].isdigit():
            candidate = "_" + candidate
        match = _TRAILING_NUMBER.match(candidate)
        base, number = (match.group(1), int(match.group(2))) if match else (candidate, 0)
        if candidate in self._used or candidate in _RESERVED:
            number = self._count.get(base, 0)
            candidate = f"{base}_{number + 1}"
            number += 1
        while candidate in self._used:
            number += 1
            candidate = f"{base}_{number}"
        self._used.add(candidate)
        self._count[base] = max(self._count.get(base, 0), number)
        return candidate


@dataclass
class PythonCode:
    """The generated ``forward``: its source and the globals it needs to run."""

    src: str
    globals: dict[str, Any]


class _NodeList:
    """``graph.nodes``: a live view of the linked list, iterable both ways, with ``len``."""

    def __init__(self, graph: Graph, reverse: bool = False) -> None:
        self._graph = graph
        self._reverse = reverse

    def __len__(self) -> int:
        return self._graph._len

    def __iter__(self) -> Iterator[Node]:
        root = self._graph._root
        node = root._prev if self._reverse else root._next
        while node is not root:
            # an erased node keeps its links, so erasing nodes during the walk is safe
            if not node._erased:
                yield node
            node = node._prev if self._reverse else node._next

    def __reversed__(self) -> _NodeList:
        return _NodeList(self._graph, not self._reverse)

    def __repr__(self) -> str:
        return repr(list(self))


class Graph:
    """A traced program: Nodes in execution order, created through ``placeholder``, ``get_attr``,
    ``call_function``, ``call_method``, ``call_module`` and ``output`` at the insertion point."""

    def __init__(self, owning_module=None, tracer_cls=None, tracer_extras=None) -> None:
        self._root = Node(self, "", "root", "", (), {})
        self._len = 0
        self._namespace = _Namespace()
        self._insert = self._root.prepend
        self.owning_module = owning_module
        self._tracer_cls = tracer_cls
        self._tracer_extras = tracer_extras

    @property
    def nodes(self) -> _NodeList:
        return _NodeList(self)

    # ------------------------------------------------------------------ creating nodes
    def create_node(self, op: str, target: Target, args: tuple | None = None, kwargs: dict | None = None,
                    name: str | None = None, type_expr: Any = None) -> Node:
        """Makes a Node at the insertion point, named ``name`` or after its target, made unique."""
        candidate = name if name is not None else self._target_to_str(target)
        node = Node(self, self._namespace.create_name(candidate), op, target, args or (), kwargs or {}, type_expr)
        self._insert(node)
        self._len += 1
        return node

    def _target_to_str(self, target: Target) -> str:
        text = target.__name__ if callable(target) else str(target)
        path = public_path(target) if callable(target) else None
        if path is not None and path.startswith("torch._C._nn."):  # a binding's own name: F.logsigmoid is log_sigmoid
            text = path.rpartition(".")[2]
        if text.startswith("__") and text.endswith("__"):
            text = text[2:-2]
        return snake_case(text)

    def placeholder(self, name: str, type_expr: Any = None, default_value: Any = inspect.Signature.empty) -> Node:
        """An input of the program, with ``default_value`` as its default when one is given."""
        args = () if default_value is inspect.Signature.empty else (default_value,)
        return self.create_node("placeholder", name, args, type_expr=type_expr)

    def get_attr(self, qualified_name: str, type_expr: Any = None) -> Node:
        return self.create_node("get_attr", qualified_name, type_expr=type_expr)

    def call_module(self, module_name: str, args: tuple | None = None, kwargs: dict | None = None,
                    type_expr: Any = None) -> Node:
        return self.create_node("call_module", module_name, args, kwargs, type_expr=type_expr)

    def call_method(self, method_name: str, args: tuple | None = None, kwargs: dict | None = None,
                    type_expr: Any = None) -> Node:
        return self.create_node("call_method", method_name, args, kwargs, type_expr=type_expr)

    def call_function(self, the_function: Callable, args: tuple | None = None, kwargs: dict | None = None,
                      type_expr: Any = None) -> Node:
        return self.create_node("call_function", the_function, args, kwargs, type_expr=type_expr)

    def output(self, result: Argument, type_expr: Any = None) -> Node:
        return self.create_node("output", "output", (result,), type_expr=type_expr)

    # ------------------------------------------------------------------ editing
    @contextmanager
    def _inserting(self, insert: Callable[[Node], None]):
        previous = self._insert
        self._insert = insert
        try:
            yield
        finally:
            self._insert = previous

    def inserting_before(self, n: Node | None = None):
        """``with graph.inserting_before(n):`` new nodes go just before ``n`` (None: the start)."""
        if n is None:
            return self.inserting_after(self._root)
        return self._inserting(n.prepend)

    def inserting_after(self, n: Node | None = None):
        """``with graph.inserting_after(n):`` new nodes go just after ``n`` (None: the end)."""
        if n is None:
            return self.inserting_before(self._root)
        return self._inserting(n.append)

    def erase_node(self, to_erase: Node) -> None:
        if to_erase.users:
            raise RuntimeError(f"Tried to erase Node {to_erase} but it still had {len(to_erase.users)} "
                               f"users in the graph: {to_erase.users}!")
        if to_erase.graph is not self:
            raise RuntimeError(f"Attempting to remove {to_erase} from wrong graph!")
        if to_erase._erased:
            return
        to_erase._remove_from_list()
        to_erase._erased = True
        self._len -= 1
        to_erase._set_inputs((), {})

    def node_copy(self, node: Node, arg_transform: Callable[[Node], Argument] = lambda x: x) -> Node:
        """A copy of ``node`` (from any graph) at the insertion point, its input Nodes mapped by
        ``arg_transform``."""
        args = map_arg(node.args, arg_transform)
        kwargs = map_arg(node.kwargs, arg_transform)
        copy = self.create_node(node.op, node.target, args, kwargs, node.name, node.type)
        copy.meta = dict(node.meta)
        return copy

    def graph_copy(self, g: Graph, val_map: dict[Node, Node], return_output_node: bool = False):
        """Copies every node of ``g`` but its output here, filling ``val_map`` (old -> new); returns
        the copied output value (or the output node's copy, with ``return_output_node``)."""
        for node in g.nodes:
            if node in val_map:
                continue
            if node.op == "output":
                value = map_arg(node.args[0], lambda n: val_map[n])
                return (value, node.type) if return_output_node else value
            val_map[node] = self.node_copy(node, lambda n: val_map[n])
        return None

    def eliminate_dead_code(self, is_impure_node: Callable[[Node], bool] | None = None) -> bool:
        """Erases nodes nobody uses and that have no side effect, last first; True if any went."""
        self.lint()
        changed = False
        for node in reversed(self.nodes):
            impure = is_impure_node(node) if is_impure_node is not None else node.is_impure()
            if not impure and not node.users:
                self.erase_node(node)
                changed = True
        return changed

    def find_nodes(self, *, op: str, target: Target | None = None, sort: bool = True) -> list[Node]:
        """The nodes with this ``op`` (and ``target``, when given), in graph order."""
        return [n for n in self.nodes if n.op == op and (target is None or n.target == target)]

    def lint(self) -> None:
        """Checks the graph is well formed: ownership, ops, each input defined before its use,
        unique names, and get_attr/call_module targets that exist on the owning module."""
        seen: set[Node] = set()
        names: set[str] = set()
        for node in self.nodes:
            if node.graph is not self:
                raise RuntimeError(f"Node '{node}' does not belong to this Graph!")
            if node.name in names:
                raise RuntimeError(f"Node redefined name {node.name}!")
            names.add(node.name)
            for arg in node.all_input_nodes:
                if arg not in seen:
                    if arg.graph is not self:
                        raise RuntimeError(f"Argument '{arg}' of Node '{node}' does not belong to this Graph, "
                                           f"but was used as an argument! If you are copying nodes from another "
                                           f"graph, make sure to use ``arg_transform`` on node_copy() to remap "
                                           f"values\n{self}")
                    raise RuntimeError(f"Argument '{arg}' of Node '{node}' was used before it has been defined! "
                                       f"Please check that Nodes in the graph are topologically ordered\n{self}")
            seen.add(node)
            if self.owning_module is not None and node.op in ("get_attr", "call_module"):
                self._check_target_exists(node)

    def _check_target_exists(self, node: Node) -> None:
        owner = self.owning_module
        for atom in node.target.split("."):
            if not hasattr(owner, atom):
                raise RuntimeError(f"Node {node} target {node.target} references nonexistent attribute "
                                   f"{atom} of {owner}")
            owner = getattr(owner, atom)

    def print_tabular(self) -> None:
        """Prints one row per node (opcode, name, target, args, kwargs); needs ``tabulate``, as torch."""
        try:
            from tabulate import tabulate
        except ImportError:
            print("`print_tabular` relies on the library `tabulate`, which could not be found on this machine. "
                  "Run `pip install tabulate` to install the library.")
            raise
        rows = [[n.op, n.name, n.target, n.args, n.kwargs] for n in self.nodes]
        print(tabulate(rows, headers=["opcode", "name", "target", "args", "kwargs"]))

    def __deepcopy__(self, memo=None) -> Graph:
        copy = Graph(tracer_cls=self._tracer_cls)
        value_map: dict[Node, Node] = {}
        output_value = copy.graph_copy(self, value_map, return_output_node=True)
        if output_value is not None:
            value, type_expr = output_value
            copy.output(value, type_expr=type_expr)
        return copy

    def __str__(self) -> str:
        placeholder_names: list[str] = []
        lines = [n.format_node(placeholder_names) for n in self.nodes]
        return "graph():\n" + "\n".join("    " + line for line in lines if line)

    # ------------------------------------------------------------------ code generation
    def python_code(self, root_module: str = "self", *, verbose: bool = False, **_ignored) -> PythonCode:
        """The generated ``forward``; ``verbose`` adds torch's note that nodes carry no stack trace
        (the form ``print_readable`` shows)."""
        return _CodeWriter(self, root_module).write(verbose)


# torch's short dtype names in print_readable's annotations
_DTYPE_ABBREVIATIONS = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16", "int64": "i64",
                        "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8", "bool": "b8",
                        "complex64": "c64", "complex128": "c128"}


def _value_annotation(node: Node) -> str | None:
    """``"f32[2, 3]"`` for a node whose ``meta["val"]`` is a tensor (make_fx's nodes), else None."""
    value = node.meta.get("val")
    dtype, shape = getattr(value, "dtype", None), getattr(value, "shape", None)
    if dtype is None or shape is None:
        return None
    short = _DTYPE_ABBREVIATIONS.get(str(dtype).rsplit(".", 1)[-1])
    return None if short is None else f'"{short}[{", ".join(str(n) for n in shape)}]"'


class _CodeWriter:
    """Writes a graph as the body of ``def forward(self, ...)``."""

    def __init__(self, graph: Graph, root_module: str) -> None:
        import chainrule

        self.graph = graph
        self.root = root_module
        self.globals: dict[str, Any] = {"torch": chainrule, "operator": operator, "math": math,
                                        "inf": math.inf, "nan": math.nan, "NoneType": type(None)}
        self.constant_names: dict[int, str] = {}

    def global_name(self, value: Any, hint: str) -> str:
        """A name in the generated code's globals bound to ``value``."""
        if id(value) in self.constant_names:
            return self.constant_names[id(value)]
        name = _NOT_IDENTIFIER.sub("_", hint)
        base, count = name, 0
        while name in self.globals and self.globals[name] is not value:
            count += 1
            name = f"{base}_{count}"
        self.globals[name] = value
        self.constant_names[id(value)] = name
        return name

    def type_text(self, t: Any) -> str:
        """An annotation as the generated code writes it (``torch.Tensor``,
        ``typing_Union[torch.Tensor,NoneType]``), binding what it names in the globals."""
        import chainrule

        if isinstance(t, str):
            return self.global_name(t, repr(t))  # a postponed annotation, bound as the string
        if isinstance(t, type):
            if t is type(None):
                return "NoneType"
            if getattr(chainrule, t.__name__, None) is t:
                return f"torch.{t.__name__}"
            if t.__module__ == "builtins":
                return t.__qualname__
            return self.global_name(t, f"{t.__module__}_{t.__qualname__}")
        if t is Ellipsis:
            return self.global_name(t, "...")  # torch writes tuple[int, ...] as tuple[int,_]
        args = typing.get_args(t)
        if isinstance(t, types.UnionType):
            return "|".join(self.type_text(a) for a in args)
        if typing.get_origin(t) is typing.Union:
            base = self.global_name(typing.Union, "typing_Union")
        elif getattr(t, "_name", None) and args:
            base = self.global_name(getattr(typing, t._name), f"typing_{t._name}")
        elif isinstance(t, types.GenericAlias):
            base = self.type_text(t.__origin__)
        else:
            return self.global_name(t, repr(t))
        return f"{base}[" + ",".join(self.type_text(a) for a in args) + "]"

    def callable_name(self, target: Callable) -> str:
        path = public_path(target)
        if path is not None and path.split(".")[0] in ("torch", "operator", "math"):
            return path
        if path is not None and path.startswith("builtins."):
            return path.split(".", 1)[1]
        if isinstance(target, OpOverload):  # one torch.ops does not answer with: called as the object
            return self.global_name(target, f"{target.namespace}_{target._op_name}_{target._overloadname}")
        qualified = f"{getattr(target, '__module__', None) or ''}_{getattr(target, '__name__', 'fn')}"
        return self.global_name(target, qualified.lstrip("_"))

    def value(self, arg: Argument) -> str:
        import chainrule

        if isinstance(arg, Node):
            return arg.name
        if isinstance(arg, tuple) and not hasattr(arg, "_fields"):
            return "(" + ", ".join(self.value(a) for a in arg) + ("," if len(arg) == 1 else "") + ")"
        if isinstance(arg, list):
            return "[" + ", ".join(self.value(a) for a in arg) + "]"
        if isinstance(arg, dict):
            return "{" + ", ".join(f"{self.value(k)}: {self.value(v)}" for k, v in arg.items()) + "}"
        if isinstance(arg, slice):
            return f"slice({self.value(arg.start)}, {self.value(arg.stop)}, {self.value(arg.step)})"
        if isinstance(arg, float) and not math.isfinite(arg):
            return repr(arg)  # inf, -inf and nan are bound in the globals
        if arg is None or arg is Ellipsis or isinstance(arg, (bool, int, float, complex, str, bytes)):
            return repr(arg)
        constant = public_path(arg)
        if constant is not None:
            return self.callable_name(arg) if callable(arg) else constant
        if isinstance(arg, chainrule.device):
            self.globals["device"] = chainrule.device  # torch's code writes a device as its repr
            return repr(arg)
        # a prefix no node name takes, so that a local never shadows the object
        return self.global_name(arg, f"_fx_{type(arg).__name__.lower()}")

    def call_arguments(self, args: tuple, kwargs: dict) -> str:
        parts = [self.value(a) for a in args] + [f"{key} = {self.value(v)}" for key, v in kwargs.items()]
        return ", ".join(parts)

    def attribute_path(self, target: str) -> str:
        text = self.root
        for atom in target.split("."):
            # a numbered child (Sequential's "0") is not an identifier: getattr(self.seq, "0")
            text = f"{text}.{atom}" if atom.isidentifier() and not keyword.iskeyword(atom) else f'getattr({text}, "{atom}")'
        return text

    def expression(self, node: Node) -> str:
        args, kwargs = node.args, node.kwargs
        if node.op == "get_attr":
            return self.attribute_path(node.target)
        if node.op == "call_module":
            return f"{self.attribute_path(node.target)}({self.call_arguments(args, kwargs)})"
        if node.op == "call_method":
            return f"{self.value(args[0])}.{node.target}({self.call_arguments(args[1:], kwargs)})"
        target = node.target
        if not kwargs:
            if target in _BINARY_SYMBOLS and len(args) == 2:
                return f"{self.value(args[0])} {_BINARY_SYMBOLS[target]} {self.value(args[1])}"
            if target in _UNARY_SYMBOLS and len(args) == 1:
                return f"{_UNARY_SYMBOLS[target]}{self.value(args[0])}"
            if target is operator.getitem and len(args) == 2:
                return f"{self.value(args[0])}[{self.value(args[1])}]"
            if target is builtins.getattr and len(args) == 2 and isinstance(args[1], str) and args[1].isidentifier():
                return f"{self.value(args[0])}.{args[1]}"
        return f"{self.callable_name(target)}({self.call_arguments(args, kwargs)})"

    def write(self, verbose: bool = False) -> PythonCode:
        nodes = list(self.graph.nodes)
        # a value is dropped after the last node that reads it, as eager code would free it
        last_reader: dict[Node, Node] = {}
        for node in nodes:
            for source in node.all_input_nodes:
                last_reader[source] = node

        signature: list[str] = []
        body: list[str] = []
        noted = not verbose
        returns = ""
        for node in nodes:
            if not noted and node.op != "placeholder":
                # chainrule records no stack traces, so torch's note covers every node
                body += ["", _NO_STACK_TRACE] if body else [_NO_STACK_TRACE]
                noted = True
            if node.op == "placeholder":
                parameter = node.target
                if verbose and _value_annotation(node):  # print_readable's "f32[2, 3]" (torch's)
                    parameter += f": {_value_annotation(node)}"
                elif node.type is not None:
                    parameter += f" : {self.type_text(node.type)}"
                if node.args:
                    parameter += f" = {self.value(node.args[0])}"
                signature.append(parameter)
                if node.name != node.target.lstrip("*"):
                    body.append(f"{node.name} = {node.target.lstrip('*')}")
                continue
            if node.op == "output":
                body.append(f"return {self.value(node.args[0]) if node.args else 'None'}")
                if node.type is not None:
                    returns = f" -> {self.type_text(node.type)}"
                continue
            annotation = _value_annotation(node) if verbose else None
            target = f"{node.name}: {annotation}" if annotation else node.name
            line = f"{target} = {self.expression(node)}"
            dropped = [source.name for source in node.all_input_nodes if last_reader[source] is node]
            if not node.users:
                dropped.append(node.name)
            if dropped:
                line += ";  " + " = ".join(dropped) + " = None"
            body.append(line)
        if not body or not body[-1].startswith("return"):
            body.append("pass")
        source = "\n\n\ndef forward(" + ", ".join([self.root, *signature]) + f"){returns}:\n"
        source += "".join(f"    {line}\n" if line else "\n" for line in body) + "    "
        return PythonCode(source, self.globals)

