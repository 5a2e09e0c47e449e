"""torch.fx's symbolic tracer: runs a module's ``forward`` on Proxies and records what it does.

While ``Tracer.trace`` runs, ``nn.Module.__call__`` is patched so that leaf modules record a
``call_module`` node instead of running, ``nn.Module.__getattr__`` so that reading a parameter
records ``get_attr``, and the global functions marked with ``wrap`` (and the functions of the
``autowrap_modules``, ``math`` by default) record ``call_function`` when a Proxy reaches them.
Everything is restored when the trace ends, also when it fails.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
from collections.abc import Callable
from typing import Any

from ..nn.modules.container import Sequential
from ..nn.modules.module import Module
from ..nn.parameter import Parameter
from ..tensor import Tensor
from .graph import Graph
from .graph_module import GraphModule
from .node import Argument, map_aggregate
from .proxy import Proxy, TracerBase

__all__ = ["Tracer", "symbolic_trace", "wrap", "PH", "is_fx_tracing"]

# (globals dict, name) of every function registered with wrap(); patched while tracing
_wrapped_globals: list[tuple[dict, str]] = []


_tracing_depth = 0


def is_fx_tracing() -> bool:
    """True while a symbolic trace runs (model code may skip checks a Proxy cannot answer)."""
    return _tracing_depth > 0


class _PlaceholderMarker:
    """``fx.PH``: a concrete_args value that still becomes an input of the traced graph."""

    def __repr__(self) -> str:
        return "PH"


PH = _PlaceholderMarker()


def wrap(fn_or_name: str | Callable):
    """Makes a global function a leaf of tracing: called with a Proxy, it records one
    ``call_function`` node instead of being traced through. Call it at a module's top level,
    with the function or its name; usable as a decorator. Returns its argument."""
    if not callable(fn_or_name) and not isinstance(fn_or_name, str):
        raise RuntimeError("Unsupported type for global function! Must be either a callable or string name")
    name = fn_or_name if isinstance(fn_or_name, str) else fn_or_name.__name__
    caller = inspect.currentframe().f_back
    # the name is patched in the caller's globals while tracing, so the call must be there
    if caller.f_code.co_name != "<module>":
        raise NotImplementedError("wrap must be called at the top level of a module")
    _wrapped_globals.append((caller.f_globals, name))
    return fn_or_name


def _has_proxy(args, kwargs) -> Proxy | None:
    found: list[Proxy] = []
    map_aggregate((args, kwargs), lambda v: found.append(v) if isinstance(v, Proxy) else None)
    return found[0] if found else None


def _recording(original: Callable) -> Callable:
    @functools.wraps(original)
    def recorded(*args, **kwargs):
        proxy = _has_proxy(args, kwargs)
        if proxy is None:
            return original(*args, **kwargs)
        return proxy.tracer.create_proxy("call_function", original, args, kwargs)

    return recorded


class _Patcher:
    """Sets attributes for the length of a trace and puts the old values back afterwards."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def set_item(self, table: dict, key: str, value: Any) -> None:
        old = table[key]
        table[key] = value
        self._undo.append(lambda: table.__setitem__(key, old))

    def set_attribute(self, owner: Any, name: str, value: Any) -> None:
        old = owner.__dict__[name] if name in vars(owner) else getattr(owner, name)
        setattr(owner, name, value)
        self._undo.append(lambda: setattr(owner, name, old))

    def on_exit(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    def __enter__(self) -> _Patcher:
        return self

    def __exit__(self, *exc) -> None:
        while self._undo:
            self._undo.pop()()


def _positional_code(fn: types.FunctionType) -> types.FunctionType:
    """``fn`` with keyword-only, ``*args`` and ``**kwargs`` parameters made positional, in
    ``co_varnames`` order, so that a trace can pass one Proxy for each (torch's placeholders)."""
    code = fn.__code__
    varargs = bool(code.co_flags & inspect.CO_VARARGS)
    varkeywords = bool(code.co_flags & inspect.CO_VARKEYWORDS)
    if not (varargs or varkeywords or code.co_kwonlyargcount):
        return fn
    flat = code.replace(co_argcount=code.co_argcount + code.co_kwonlyargcount + varargs + varkeywords,
                        co_kwonlyargcount=0, co_flags=code.co_flags & ~(inspect.CO_VARARGS | inspect.CO_VARKEYWORDS))
    return types.FunctionType(flat, fn.__globals__, fn.__name__, None, fn.__closure__)


def _tensor_attributes(root: Module) -> dict[int, str]:
    """id -> dotted path of the tensors held as plain attributes (neither parameter nor buffer)
    of ``root`` and its submodules: a traced program reads them with get_attr too."""
    found: dict[int, str] = {}
    for prefix, module in root.named_modules():
        for name, value in vars(module).items():
            if isinstance(value, Tensor):
                found.setdefault(id(value), f"{prefix}.{name}" if prefix else name)
    return found


class Tracer(TracerBase):
    """torch.fx.Tracer: ``trace(root)`` returns the Graph of ``root.forward`` (or of a function).
    Override ``is_leaf_module`` to choose which modules stay opaque ``call_module`` nodes."""

    def __init__(self, autowrap_modules: tuple = (math,), autowrap_functions: tuple = (),
                 param_shapes_constant: bool = False) -> None:
        self._autowrap_modules = tuple(autowrap_modules)
        self._autowrap_ids = {id(value) for module in autowrap_modules for name, value in vars(module).items()
                              if not name.startswith("_") and callable(value)}
        self._autowrap_ids |= {id(fn) for fn in autowrap_functions}
        self._autowrap_functions = tuple(autowrap_functions)
        self.param_shapes_constant = param_shapes_constant
        self.root: Module | None = None
        self.graph: Graph | None = None

    # ------------------------------------------------------------------ questions users override
    def is_leaf_module(self, m: Module, module_qualified_name: str) -> bool:
        """chainrule's own layers are leaves (as torch's torch.nn layers are), Sequential is not."""
        module_name = type(m).__module__
        return ((module_name.startswith("chainrule.nn") or module_name.startswith("torch.nn"))
                and not isinstance(m, Sequential))

    def path_of_module(self, mod: Module) -> str:
        path = self._module_paths.get(id(mod))
        if path is None:
            raise NameError("module is not installed as a submodule")
        return path

    def call_module(self, m: Module, forward: Callable, args: tuple, kwargs: dict) -> Any:
        """A leaf records ``call_module``; any other module is traced through."""
        qualified_name = self.path_of_module(m)
        # a module called again is keyed "path@1", "path@2", ... in nn_module_stack, as in torch
        calls = self._module_calls.get(qualified_name, 0)
        self._module_calls[qualified_name] = calls + 1
        key = qualified_name if calls == 0 else f"{qualified_name}@{calls}"
        self._module_stack.append((key, qualified_name, type(m)))
        try:
            if not self.is_leaf_module(m, qualified_name):
                return forward(*args, **kwargs)
            return self.create_proxy("call_module", qualified_name, args, kwargs)
        finally:
            self._module_stack.pop()

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict) -> Any:
        """Reading a parameter of the root records one ``get_attr`` node (shared by later reads)."""
        name = self._parameter_names.get(id(attr_val)) if isinstance(attr_val, Parameter) else None
        if name is None:
            return attr_val
        if name not in parameter_proxy_cache:
            parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
        return parameter_proxy_cache[name]

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        if kind == "call_module" or self._module_stack:
            node.meta["nn_module_stack"] = {key: (path, cls) for key, path, cls in self._module_stack}
        return node

    def create_arg(self, a: Any) -> Argument:
        """Parameters and buffers of the root become ``get_attr`` nodes; any other tensor is
        stored on the root as ``_tensor_constantN`` and read the same way."""
        def leaf(value):
            if isinstance(value, Proxy):
                return value.node
            if isinstance(value, Tensor):
                name = self._tensor_names.get(id(value))
                if name is None:
                    name = f"_tensor_constant{self._constant_count}"
                    self._constant_count += 1
                    setattr(self.root, name, value)
                    self._tensor_names[id(value)] = name
                return self.create_node("get_attr", name, (), {})
            if isinstance(value, Module):
                return self.create_node("get_attr", self.path_of_module(value), (), {})
            return value

        return map_aggregate(a, leaf)

    # ------------------------------------------------------------------ tracing
    def _placeholders(self, fn: Callable, skip_self: bool, concrete_args: dict | None) -> list:
        concrete_args = concrete_args or {}
        parameters = list(inspect.signature(fn).parameters.values())[int(skip_self):]
        # co_varnames order: positional, keyword-only, *args, **kwargs
        ordered = ([p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
                   + [p for p in parameters if p.kind is p.KEYWORD_ONLY]
                   + [p for p in parameters if p.kind is p.VAR_POSITIONAL]
                   + [p for p in parameters if p.kind is p.VAR_KEYWORD])
        values = []
        for p in ordered:
            if p.name in concrete_args and concrete_args[p.name] is not PH:
                # a concrete value is traced as a constant; the input stays, defaulting to it
                value = concrete_args[p.name]
                self.create_node("placeholder", p.name, (value,), {}, name=p.name)
                values.append(value)
                continue
            target = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
            default = () if p.default is inspect.Parameter.empty else (p.default,)
            annotation = None if p.annotation is inspect.Parameter.empty else p.annotation
            values.append(self.create_proxy("placeholder", target, default, {}, type_expr=annotation))
        return values

    def trace(self, root: Module | Callable, concrete_args: dict[str, Any] | None = None) -> Graph:
        """Runs ``root`` (a Module's forward, or a function) on Proxies; returns the Graph."""
        if isinstance(root, Module):
            self.root = root
            fn = type(root).forward
        else:
            self.root = Module()
            fn = root
        self.graph = Graph(tracer_cls=type(self))
        self._module_paths = {id(module): name for name, module in self.root.named_modules()}
        self._tensor_names = _tensor_attributes(self.root)
        self._tensor_names.update({id(t): name for name, t in self.root.named_buffers()})
        self._parameter_names = {id(t): name for name, t in self.root.named_parameters()}
        self._tensor_names.update(self._parameter_names)
        self._constant_count = 0
        self._module_stack: list[tuple[str, str, type]] = []
        self._module_calls: dict[str, int] = {}
        is_method = isinstance(root, Module)
        args = self._placeholders(fn, is_method, concrete_args)
        if is_method:
            args = [root, *args]
        parameter_proxy_cache: dict[str, Proxy] = {}
        tracer = self
        original_call = Module.__call__
        original_getattr = Module.__getattr__

        def module_call(mod, *call_args, **call_kwargs):
            def forward(*a, **k):
                return original_call(mod, *a, **k)

            return tracer.call_module(mod, forward, call_args, call_kwargs)

        def module_getattr(mod, name):
            return tracer.getattr(name, original_getattr(mod, name), parameter_proxy_cache)

        global _tracing_depth
        _tracing_depth += 1
        with _Patcher() as patcher:
            patcher.on_exit(_leave_tracing)
            patcher.set_attribute(Module, "__call__", module_call)
            patcher.set_attribute(Module, "__getattr__", module_getattr)
            self._patch_leaf_functions(patcher, fn.__globals__)
            result = _positional_code(fn)(*args)
            returns = inspect.signature(fn).return_annotation
            self.create_node("output", "output", (self.create_arg(result),), {},
                             type_expr=None if returns is inspect.Signature.empty else returns)
        return self.graph

    def _patch_leaf_functions(self, patcher: _Patcher, fn_globals: dict) -> None:
        patched: set[tuple[int, str]] = set()
        for table, name in _wrapped_globals:
            # a name registered twice (a module imported again) is patched once
            if name in table and (id(table), name) not in patched:
                patched.add((id(table), name))
                patcher.set_item(table, name, _recording(table[name]))
        for name, value in list(fn_globals.items()):
            if id(value) in self._autowrap_ids and (id(fn_globals), name) not in patched:
                patcher.set_item(fn_globals, name, _recording(value))
        for module in self._autowrap_modules:
            for name, value in list(vars(module).items()):
                if not name.startswith("_") and callable(value) and not isinstance(value, type):
                    patcher.set_attribute(module, name, _recording(value))


def _leave_tracing() -> None:
    global _tracing_depth
    _tracing_depth -= 1


def symbolic_trace(root: Module | Callable, concrete_args: dict[str, Any] | None = None) -> GraphModule:
    """torch.fx.symbolic_trace: the GraphModule of ``root``'s traced forward (or of a function).
    ``concrete_args`` fixes some inputs to values (control flow on them is then traced away)."""
    tracer = Tracer()
    graph = tracer.trace(root, concrete_args)
    name = type(root).__name__ if isinstance(root, Module) else root.__name__
    return GraphModule(tracer.root, graph, name)
