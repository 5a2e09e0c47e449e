"""torch.fx.node: ``Node``, one operation of a ``Graph``, and the helpers that walk its arguments.

A node's ``args``/``kwargs`` may nest Nodes inside tuples, lists, dicts and slices; every setter
recomputes which nodes it reads, so ``users`` (who reads me) and ``all_input_nodes`` (whom I read)
stay true after any edit.
"""

from __future__ import annotations

import builtins
import math
import operator
import types
import typing
from collections.abc import Callable
from typing import Any

from .. import _dtype
from ..ops.namespaces import OpOverload

__all__ = ["Node", "map_arg", "map_aggregate", "Argument", "Target"]

Argument = Any
Target = Any

OPCODES = ("placeholder", "get_attr", "call_function", "call_method", "call_module", "output", "root")

# a call of one of these changes state outside its result, so dead-code elimination keeps it
_SIDE_EFFECT_FUNCTIONS = {operator.setitem, builtins.print}


def map_aggregate(a: Argument, fn: Callable[[Argument], Argument]) -> Argument:
    """Applies ``fn`` to every leaf of ``a`` (tuples, namedtuples, lists, dicts and slices are
    walked; anything else is a leaf) and rebuilds the containers around the results."""
    if isinstance(a, tuple):
        mapped = tuple(map_aggregate(elem, fn) for elem in a)
        # a namedtuple is rebuilt from its fields, a plain tuple from the sequence
        return type(a)(*mapped) if hasattr(a, "_fields") else mapped
    if isinstance(a, list):
        return [map_aggregate(elem, fn) for elem in a]
    if isinstance(a, dict):
        return {key: map_aggregate(value, fn) for key, value in a.items()}
    if isinstance(a, slice):
        return slice(map_aggregate(a.start, fn), map_aggregate(a.stop, fn), map_aggregate(a.step, fn))
    return fn(a)


def map_arg(a: Argument, fn: Callable[[Node], Argument]) -> Argument:
    """Applies ``fn`` to every Node inside the nested argument ``a``; other leaves stay as they are."""
    if not callable(fn):
        raise AssertionError("torch.fx.map_arg(a, fn): fn must be a callable")
    return map_aggregate(a, lambda x: fn(x) if isinstance(x, Node) else x)


def _nodes_in(a: Argument) -> dict[Node, None]:
    found: dict[Node, None] = {}
    map_arg(a, lambda node: found.setdefault(node))
    return found


def _qualified_name(target) -> str:
    """The dotted name a graph prints for a function: ``operator.add``, ``torch.relu``,
    ``torch.nn.functional.relu``; chainrule's functions print under torch's name, as in torch."""
    path = public_path(target)
    if path is not None:
        return path
    if isinstance(target, OpOverload):  # make_fx's targets: an overload the dispatch layer handed over
        return f"torch.ops.{target}"
    module = getattr(target, "__module__", None) or "builtins"
    return f"{module}.{getattr(target, '__qualname__', getattr(target, '__name__', repr(target)))}"


_public_paths: dict[int, str] = {}

# the torch.nn.functional names that are torch's C++ bindings (torch._C._nn's or torch's own),
# where chainrule's are functions of their own (chainrule._C._nn answers with them)
_FUNCTIONAL_BINDINGS = {
    **{name: f"torch._C._nn.{name}" for name in (
        "avg_pool2d", "avg_pool3d", "elu_", "gelu", "hardtanh_", "leaky_relu_", "linear", "one_hot",
        "scaled_dot_product_attention", "softplus", "softshrink")},
    "logsigmoid": "torch._C._nn.log_sigmoid",
    "hardshrink": "torch.hardshrink", "relu_": "torch.relu_",
}


def public_path(target) -> str | None:
    """The name under which torch's code prints ``target``: ``operator.add``, ``builtins.getattr``,
    ``torch.relu``, ``torch.nn.functional.gelu``, ``torch.linalg.norm``, ``torch.ops.aten.sin.default``
    (an overload ``torch.ops`` answers with); None for other callables."""
    if isinstance(target, OpOverload):
        return _overload_path(target)
    if not _public_paths:
        import chainrule

        # later namespaces do not override earlier ones: chainrule.relu is F.relu, printed torch.relu
        namespaces = [("torch", chainrule), ("torch.nn.functional", chainrule.nn.functional),
                      ("torch.linalg", chainrule.linalg), ("torch.special", chainrule.special),
                      ("torch.fft", chainrule.fft), ("torch.Tensor", chainrule.Tensor),
                      ("operator", operator), ("math", math), ("builtins", builtins)]
        for prefix, namespace in namespaces:
            for name in dir(namespace):
                value = getattr(namespace, name, None)
                if callable(value) and not isinstance(value, type) and not name.startswith("__"):
                    _public_paths.setdefault(id(value), f"{prefix}.{name}")
        # torch's F binds some names to its C++ functions: F.gelu is torch._C._nn.gelu, F.hardshrink
        # torch.hardshrink; its code prints them by those names
        for name, path in _FUNCTIONAL_BINDINGS.items():
            _public_paths[id(getattr(chainrule.nn.functional, name))] = path
        # the namespace's constant objects (dtypes, memory formats, layouts) print by name too;
        # plain numbers and strings are left out: their identity is shared with unrelated values
        for name in dir(chainrule):
            value = getattr(chainrule, name, None)
            if not (callable(value) or isinstance(value, (types.ModuleType, type, int, float, str, bytes))
                    or value is None or name.startswith("_")):
                # an alias (torch.double) yields to the object's own name (torch.float64)
                own_name = str(value).removeprefix(_dtype.package_prefix())
                _public_paths[id(value)] = f"torch.{own_name if hasattr(chainrule, own_name) else name}"
    return _public_paths.get(id(target))


def _overload_path(overload: OpOverload) -> str | None:
    from ..ops.namespaces import namespace

    try:
        answered = getattr(getattr(namespace(overload.namespace), overload._op_name), overload._overloadname)
    except AttributeError:
        return None
    return f"torch.ops.{overload}" if answered is overload else None


def type_repr(t) -> str:
    """How a graph prints a node's type: ``torch.Tensor``, ``int``, ``typing.Optional[torch.Tensor]``,
    or a quoted string for a postponed annotation."""
    if isinstance(t, str):
        return repr(t)
    if isinstance(t, type):
        import chainrule

        if getattr(chainrule, t.__name__, None) is t:
            return f"torch.{t.__name__}"
        return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    if t is Ellipsis:
        return "..."
    args = typing.get_args(t)
    if isinstance(t, types.UnionType):
        return " | ".join("None" if a is type(None) else type_repr(a) for a in args)
    if isinstance(t, types.GenericAlias):
        return f"{type_repr(t.__origin__)}[" + ", ".join(type_repr(a) for a in args) + "]"
    if typing.get_origin(t) is typing.Union:
        if len(args) == 2 and type(None) in args:
            return f"typing.Optional[{type_repr(next(a for a in args if a is not type(None)))}]"
        return "typing.Union[" + ", ".join(type_repr(a) for a in args) + "]"
    name = getattr(t, "_name", None)
    if name and args:
        return f"typing.{name}[" + ", ".join(type_repr(a) for a in args) + "]"
    return repr(t)


def _format_arg(arg: Argument) -> str:
    if isinstance(arg, Node):
        return "%" + arg.name
    if not callable(arg) and public_path(arg) is not None:
        return public_path(arg)
    if isinstance(arg, list):
        return "[" + ", ".join(_format_arg(a) for a in arg) + "]"
    if isinstance(arg, tuple):
        items = ", ".join(_format_arg(a) for a in arg)
        return "(" + items + ("," if len(arg) == 1 else "") + ")"
    if isinstance(arg, dict):
        return "{" + ", ".join(f"{key}: {_format_arg(value)}" for key, value in arg.items()) + "}"
    return str(arg)


def _format_returned(arg: Argument) -> str:
    # torch prints the output as the generated code's return statement
    if isinstance(arg, Node):
        return arg.name
    if isinstance(arg, list):
        return "[" + ", ".join(_format_returned(a) for a in arg) + "]"
    if isinstance(arg, tuple):
        return "(" + ", ".join(_format_returned(a) for a in arg) + ("," if len(arg) == 1 else "") + ")"
    if isinstance(arg, dict):
        return "{" + ", ".join(f"{key!r}: {_format_returned(value)}" for key, value in arg.items()) + "}"
    return repr(arg)


class Node:
    """One operation of a Graph: ``op`` is one of placeholder, get_attr, call_function,
    call_method, call_module or output; ``target`` is what it calls or reads; ``args``/``kwargs``
    may contain other Nodes. Nodes form a doubly linked list (``prev``/``next``) in program order."""

    def __init__(self, graph, name: str, op: str, target: Target, args: tuple, kwargs: dict,
                 return_type: Any = None) -> None:
        if op not in OPCODES:
            raise ValueError(f"Node: op must be one of {OPCODES[:-1]}, got {op!r}")
        if op == "call_function" and not callable(target):
            raise ValueError(f"Node [graph = {graph}, name = '{name}'] target {target} has type "
                             f"{type(target)} but a Callable is expected")
        if op in ("placeholder", "get_attr", "call_method", "call_module") and not isinstance(target, str):
            raise ValueError(f"Node [graph = {graph}, name = '{name}'] target {target} has type "
                             f"{type(target)} but a str is expected")
        self.graph = graph
        self.name = name
        self.op = op
        self.target = target
        self.type = return_type
        self.users: dict[Node, None] = {}
        self.meta: dict[str, Any] = {}
        self._input_nodes: dict[Node, None] = {}
        self._args: tuple = ()
        self._kwargs: dict = {}
        self._prev = self
        self._next = self
        self._erased = False
        self._set_inputs(tuple(args), dict(kwargs))

    # ------------------------------------------------------------------ arguments
    @property
    def args(self) -> tuple:
        return self._args

    @args.setter
    def args(self, new_args) -> None:
        self._set_inputs(tuple(new_args), self._kwargs)

    @property
    def kwargs(self) -> dict:
        return self._kwargs

    @kwargs.setter
    def kwargs(self, new_kwargs) -> None:
        self._set_inputs(self._args, dict(new_kwargs))

    def _set_inputs(self, new_args: tuple, new_kwargs: dict) -> None:
        for old in self._input_nodes:
            old.users.pop(self, None)
        # rebuilt containers: a caller editing its own list afterwards cannot change the node
        self._args = map_arg(new_args, lambda n: n)
        self._kwargs = map_arg(new_kwargs, lambda n: n)
        self._input_nodes = _nodes_in((self._args, self._kwargs))
        for node in self._input_nodes:
            node.users.setdefault(self)

    @property
    def all_input_nodes(self) -> list[Node]:
        """The Nodes this one reads, each once, in the order they appear in args then kwargs."""
        return list(self._input_nodes)

    def update_arg(self, idx: int, arg: Argument) -> None:
        args = list(self._args)
        args[idx] = arg
        self.args = tuple(args)

    def update_kwarg(self, key: str, arg: Argument) -> None:
        self.kwargs = {**self._kwargs, key: arg}

    def replace_input_with(self, old_input: Node, new_input: Node) -> None:
        """Every occurrence of ``old_input`` in this node's arguments becomes ``new_input``."""
        def swap(node: Node) -> Node:
            return new_input if node is old_input else node

        self._set_inputs(map_arg(self._args, swap), map_arg(self._kwargs, swap))

    def replace_all_uses_with(self, replace_with: Node, delete_user_cb: Callable[[Node], bool] = lambda user: True,
                              *, propagate_meta: bool = False) -> list[Node]:
        """Makes every user of this node read ``replace_with`` instead (those ``delete_user_cb``
        accepts); returns the users changed."""
        if propagate_meta:
            if replace_with.meta:
                raise AssertionError("Called node.replace_all_uses_with(replace_with, propagate_meta=True), "
                                     "but replace_with already has .meta keys")
            replace_with.meta.update(self.meta)
        changed = [user for user in list(self.users) if delete_user_cb(user)]
        for user in changed:
            user.replace_input_with(self, replace_with)
        return changed

    # ------------------------------------------------------------------ the linked list
    @property
    def next(self) -> Node:
        return self._next

    @property
    def prev(self) -> Node:
        return self._prev

    def prepend(self, x: Node) -> None:
        """Moves ``x`` to just before this node."""
        if x is self:
            raise AssertionError("Cannot prepend a node to itself")
        if x.graph is not self.graph:
            raise AssertionError("Attempting to move a Node into a different Graph")
        x._remove_from_list()
        before = self._prev
        before._next, x._prev = x, before
        x._next, self._prev = self, x

    def append(self, x: Node) -> None:
        """Moves ``x`` to just after this node."""
        self._next.prepend(x)

    def _remove_from_list(self) -> None:
        # the removed node keeps its own links, so that a walk standing on it can go on
        before, after = self._prev, self._next
        before._next, after._prev = after, before

    # ------------------------------------------------------------------ questions
    @property
    def stack_trace(self) -> str | None:
        return self.meta.get("stack_trace")

    @stack_trace.setter
    def stack_trace(self, trace: str | None) -> None:
        self.meta["stack_trace"] = trace

    def is_impure(self, impure_random: bool = True) -> bool:
        """Whether removing this node could change what the program does besides its result."""
        if self.op in ("placeholder", "output"):
            return True
        if self.op == "call_function":
            return self.target in _SIDE_EFFECT_FUNCTIONS
        if self.op == "call_method":
            return isinstance(self.target, str) and self.target.endswith("_") and not self.target.endswith("__")
        if self.op == "call_module" and self.graph.owning_module is not None:
            module = self.graph.owning_module.get_submodule(self.target)
            return bool(getattr(module, "_is_impure", False))
        return False

    def format_node(self, placeholder_names: list[str] | None = None, maybe_return_typename: list[str] | None = None,
                    **_ignored) -> str | None:
        """One line of ``str(graph)``: ``%name : [num_users=N] = op[target=T](args = ..., kwargs = ...)``."""
        declared = f"%{self.name} : " + (f"{type_repr(self.type)} " if self.type is not None else "")
        if self.op == "placeholder":
            if placeholder_names is not None:
                placeholder_names.append(self.target)
            default = f"(default={self.args[0]})" if self.args else ""
            return f"{declared}[num_users={len(self.users)}] = placeholder[target={self.target}]{default}"
        if self.op == "output":
            if self.type is not None and maybe_return_typename is not None:
                maybe_return_typename[0] = f" -> {self.type}"
            return f"return {_format_returned(self.args[0])}" if self.args else "return None"
        target = _qualified_name(self.target) if self.op == "call_function" else self.target
        if self.op == "get_attr":
            return f"{declared}[num_users={len(self.users)}] = get_attr[target={target}]"
        return (f"{declared}[num_users={len(self.users)}] = {self.op}[target={target}]"
                f"(args = {_format_arg(self.args)}, kwargs = {_format_arg(self.kwargs)})")

    def __repr__(self) -> str:
        return self.name

    # nodes are keys of users/input dicts: identity, not value, decides equality
    __hash__ = object.__hash__

