"""chainrule.jit: torch.jit's decorators and queries, without a compiler.

``trace`` returns its argument unchanged and ``script`` a module as torch's ``RecursiveScriptModule``
(the model runs eagerly with the same numbers); ``ignore``/``unused`` are pass-through decorators,
``export`` marks a method compiled; ``is_scripting`` and ``is_tracing`` are False; a ``ScriptModule``
subclass is a Module whose ``@script_method``s run eagerly. A TorchScript file cannot be written or read: ``save`` and ``load`` raise
NotImplementedError pointing at ``chainrule.save`` (state dicts).
"""

import ast
import builtins
import functools
import inspect
import textwrap
import types
import warnings

from ..nn import Module, Parameter

# torch.jit.annotations is bound on ``import torch`` (and a ``from __future__ import annotations``
# here would shadow the submodule's name)
from . import annotations  # noqa: F401
from ._container_types import isinstance

__all__ = ["script", "trace", "trace_module", "ignore", "unused", "export", "is_scripting", "is_tracing", "save", "load",
           "Final", "ScriptModule", "RecursiveScriptModule", "script_method", "annotate", "interface", "TracerWarning", "isinstance"]

_NO_TORCHSCRIPT = ("chainrule.jit.{}: chainrule has no TorchScript format; save the state dict "
                   "with chainrule.save(model.state_dict(), path) instead")


class TracerWarning(Warning):
    """torch.jit.TracerWarning: chainrule's ``trace`` records nothing, so it never warns, but libraries
    name the category in their warning filters (Pyro's ``jit_iter`` around every ``list(tensor)``)."""

    @staticmethod
    def ignore_lib_warnings():
        warnings.filterwarnings("ignore", category=TracerWarning, module="torch.(?!jit)")


# torch 2.10+ deprecates TorchScript; its entry points say so with a DeprecationWarning attributed to
# torch's own line, which Python's default filters hide from a user's script (pytest shows it). These
# point at chainrule's line (stacklevel=1) for the same reason, not at the caller's.
_DEPRECATED = "`torch.jit.{}` is deprecated. Please switch to `torch.compile` or `torch.export`."


def script(obj, optimize=None, _frames_up: int = 0, _rcb=None, example_inputs=None):
    """A module comes back as torch's compiler returns it, a ``RecursiveScriptModule`` sharing its
    parameters, buffers and attributes, whose methods torch would not compile are absent; it runs
    eagerly. Anything else (a function, a ScriptModule) comes back unchanged."""
    warnings.warn(_DEPRECATED.format("script"), DeprecationWarning, stacklevel=1)
    if builtins.isinstance(obj, Module) and not builtins.isinstance(obj, ScriptModule):
        return RecursiveScriptModule._from_module(obj, _compiled_names(obj))
    return obj


def trace(func, example_inputs=None, *args, **kwargs):
    """Returns ``func`` unchanged (no graph is recorded): it runs eagerly on any input."""
    warnings.warn(_DEPRECATED.format("trace"), DeprecationWarning, stacklevel=1)
    if builtins.isinstance(func, Module):  # torch traces a module through trace_module, which warns too
        warnings.warn(_DEPRECATED.format("trace_method"), DeprecationWarning, stacklevel=1)
    return func


def trace_module(mod, inputs, optimize=None, check_trace: bool = True, check_inputs=None, check_tolerance: float = 1e-5,
                 strict: bool = True, _force_outplace: bool = False, _module_class=None, _compilation_unit=None,
                 example_inputs_is_kwarg: bool = False, _store_inputs: bool = True):
    """torch.jit.trace_module: ``mod`` comes back unchanged, as ``trace``'s (its methods run eagerly),
    after torch's checks of the arguments (e3nn's ``trace`` of a module calls it)."""
    warnings.warn(_DEPRECATED.format("trace_method"), DeprecationWarning, stacklevel=1)
    if not builtins.isinstance(mod, Module):
        raise AttributeError("expected torch.nn.Module as the first argument")
    if not builtins.isinstance(inputs, dict):
        raise AttributeError("expected a dictionary of (method_name, input) pairs")
    return mod


def ignore(drop=False, **kwargs):
    """Usable as ``@ignore`` and ``@ignore(drop=True)``."""
    return drop if callable(drop) else (lambda fn: fn)


def unused(fn):
    return fn


def export(fn):
    """Marks ``fn`` as compiled on a scripted module, as forward is: it stays callable there."""
    fn._torchscript_export = True
    return fn


def annotate(the_type, the_value):
    """Returns ``the_value``: the type is a hint for the TorchScript compiler, which chainrule lacks."""
    return the_value


def interface(obj):
    """torch.jit.interface: the class comes back unchanged (there is no compiler to declare it to),
    after torch's deprecation warning and its checks on what may be an interface."""
    warnings.warn("`torch.jit.interface` is deprecated. Please use `torch.compile` instead.",
                  DeprecationWarning, stacklevel=1)
    if not inspect.isclass(obj):
        raise RuntimeError("interface must be applied to a class")
    # an interface derives from object directly, or from nn.Module directly (MRO: itself, Module, object)
    is_module_interface = issubclass(obj, Module) and len(obj.mro()) == 3
    if not is_module_interface and len(obj.mro()) > 2:
        raise RuntimeError("TorchScript interface does not support inheritance yet. "
                           "Please directly inherit from 'object' or 'nn.Module'.")
    return obj


def _get_trace_graph(f, args=(), kwargs=None, strict=True, _force_outplace=False, return_inputs=False,
                     _return_inputs_states=False):
    """torch's TorchScript IR graph of one traced call (fvcore's FlopCountAnalysis walks its nodes);
    chainrule records no IR, so this refuses, naming what does count operations here."""
    raise NotImplementedError(
        "chainrule.jit._get_trace_graph: chainrule has no TorchScript tracer, so there is no IR graph to walk; "
        "count FLOPs with chainrule.utils.flop_counter.FlopCounterMode instead")


def _overload(fn):
    """Declares one TorchScript signature of a function (its body is ``pass``); the eager
    definition that follows replaces it, so the declaration is returned unchanged."""
    return fn


def _overload_method(fn):
    """``_overload`` for a method: model code declares scriptable signatures of ``forward`` with it
    (timm's DenseLayer), then defines the real ``forward``, which is what runs."""
    return fn


def _script_if_tracing(fn):
    """torch scripts ``fn`` on its first call while tracing; chainrule never traces, so ``fn`` runs
    eagerly as it is (torchvision decorates its box helpers with it)."""
    return fn


class ScriptModule(Module):
    """torch.jit.ScriptModule: a Module; its ``@script_method``s run eagerly (no compiler).

    When the outermost ``__init__`` of a subclass returns, its submodules are replaced, at every depth,
    by ``RecursiveScriptModule``s, as torch's compiler replaces them: code that walks ``modules()``
    then sees what it sees on torch (no ``isinstance(m, nn.Linear)``, but ``original_name == "Linear"``),
    sharing the same parameters, buffers and attributes.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_compiled_submodule", False):
            return
        init = cls.__init__

        @functools.wraps(init)
        def init_then_script(self, *args, **kwargs):
            init(self, *args, **kwargs)
            # each subclass wraps the __init__ it inherits: only the most derived one scripts (torch's ScriptMeta)
            if type(self) is cls:
                _script_submodules(self, _compiled_names(self))

        cls.__init__ = init_then_script

    def __setattr__(self, name: str, value) -> None:
        # once compiled, torch's module has a fixed type: a new parameter, or a module it could not
        # compile in place of one, is refused (plain attributes may still change)
        if self.__dict__.get("_scripted", False):
            if builtins.isinstance(value, Parameter) and name not in self._parameters:
                raise RuntimeError(f"Can't add a new parameter after ScriptModule construction. Tried to add '{name}")
            replaces_module = value is None and name in self._modules
            if replaces_module or builtins.isinstance(value, Module):
                _check_compiled_submodule_slot(self, name, value)
        super().__setattr__(name, value)

    def add_module(self, name: str, module: Module | None) -> None:
        self._check_submodule_name(name, module)
        if self.__dict__.get("_scripted", False):
            _check_compiled_submodule_slot(self, name, module)
        self._modules[name] = module

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            # once compiled, torch's module answers as the RecursiveScriptModule it has become
            if self.__dict__.get("_scripted", False):
                raise AttributeError(f"'RecursiveScriptModule' object has no attribute '{name}'") from None
            raise

    @property
    def original_name(self) -> str:
        return type(self).__name__


# the address torch prints for its Python compilation unit; one for all compiled types, as torch's
_PYTHON_COMPILATION_UNIT = object()


def _jit_type_name(module: Module) -> str:
    """torch's name for a compiled module's type: ``__torch__.`` and its class's module (none for
    ``__main__``) and name, with the compilation unit it lives in."""
    original = getattr(module, "_original_class", type(module))
    where = "" if original.__module__ == "__main__" else f".{original.__module__}"
    return f"__torch__{where}.{original.__name__} (of Python compilation unit at: {id(_PYTHON_COMPILATION_UNIT):#x})"


def _check_compiled_submodule_slot(module: ScriptModule, name: str, value: Module | None) -> None:
    """A compiled module's type is fixed: only a scripted module may take a submodule's place, one of
    its class, and there is no slot for a new one (torch's ``_c.setattr``, with its words)."""
    if not builtins.isinstance(value, ScriptModule):
        raise RuntimeError("Cannot re-assign modules in a ScriptModule with non-scripted module, tried to "
                           f"replace existing module '{name}': {value}")
    if name in module._modules:
        current = module._modules[name]
        if current is not None and getattr(current, "_original_class", type(current)) is not \
                getattr(value, "_original_class", type(value)):
            raise RuntimeError(f"Expected a value of type '{_jit_type_name(current)}' for field '{name}', but found "
                               f"'{_jit_type_name(value)}'")
    elif name not in module.__dict__ and name not in module._parameters and name not in module._buffers:
        raise RuntimeError(f"{_jit_type_name(module)} does not have an attribute with name '{name}'")


class RecursiveScriptModule(ScriptModule):
    """torch.jit.RecursiveScriptModule: a submodule of a ``ScriptModule``, compiled on torch. Here the
    same module (its ``__dict__`` shared: parameters, buffers, hooks, attributes like ``in_features``)
    under a class named RecursiveScriptModule that carries its original class's methods and class
    attributes but is no subclass of it (``isinstance(m, nn.Linear)`` is False, as on torch). Its repr
    is torch's, ``RecursiveScriptModule(original_name=Linear)``."""

    # built from a module by _from_module, never by __init__, so there is no __init__ to wrap
    _compiled_submodule = True

    @classmethod
    def _from_module(cls, module: Module, compiled_names: frozenset | None) -> "RecursiveScriptModule":
        scripted = object.__new__(_compiled_class(type(module), compiled_names))
        scripted.__dict__.update(module.__dict__)
        object.__setattr__(scripted, "_modules", dict(module._modules))
        # a container's items, indexed or iterated, are the modules it was scripted from, as on torch
        object.__setattr__(scripted, "_original_module", module)
        _script_submodules(scripted, compiled_names)
        return scripted

    @property
    def original_name(self) -> str:
        return self._original_class.__name__

    def extra_repr(self) -> str:
        return f"original_name={self.original_name}"


# what a compiled submodule keeps of its own: its identity, repr and attribute protocol
_NOT_COPIED = frozenset({"__init__", "__new__", "__dict__", "__weakref__", "__module__", "__qualname__", "__doc__",
                         "__annotations__", "__slots__", "__init_subclass__", "__class_getitem__", "__repr__",
                         "extra_repr", "_get_name", "original_name", "__getattr__", "__setattr__", "__delattr__",
                         "__getstate__", "__setstate__", "__reduce__", "__reduce_ex__", "__orig_bases__",
                         "__parameters__", "__abstractmethods__", "_abc_impl",
                         # a compiled container's items are fixed: torch's "does not support item assignment"
                         "__setitem__", "__delitem__"})


# what a container's compiled class answers from the module it was scripted from
_FROM_ORIGINAL = ("__getitem__", "__iter__")


@functools.cache
def _compiled_class(original: type, compiled_names: frozenset | None) -> type:
    """A class per module class, mirroring its hierarchy down to Module (RecursiveScriptModule takes
    Module's place), so each method's zero-argument super() still finds the next class's method.
    A public method torch would not compile (in no ``compiled_names``: ``reset_parameters``) is left
    out, so calling it raises torch's AttributeError; None keeps them all."""
    bases = tuple(_compiled_class(base, compiled_names) if issubclass(base, Module) else base
                  for base in original.__bases__ if base is not Module)
    if not any(issubclass(base, RecursiveScriptModule) for base in bases):
        bases += (RecursiveScriptModule,)
    class_cell = types.CellType()
    namespace = {name: _with_class_cell(value, class_cell) for name, value in vars(original).items()
                 if name not in _NOT_COPIED and _is_compiled(name, value, compiled_names)}
    for name in _FROM_ORIGINAL:
        if name in vars(original):
            namespace[name] = _answered_by_original(vars(original)[name])
    namespace.update(_original_class=original, _compiled_submodule=True, __module__=__name__)
    compiled = type("RecursiveScriptModule", bases, namespace)
    class_cell.cell_contents = compiled
    return compiled


def _with_class_cell(value, class_cell):
    """``value`` with its functions' ``__class__`` cell (what zero-argument super() reads) swapped."""
    if builtins.isinstance(value, types.FunctionType) and "__class__" in value.__code__.co_freevars:
        cells = tuple(class_cell if name == "__class__" else cell
                      for name, cell in zip(value.__code__.co_freevars, value.__closure__, strict=True))
        swapped = types.FunctionType(value.__code__, value.__globals__, value.__name__, value.__defaults__, cells)
        swapped.__kwdefaults__ = value.__kwdefaults__
        return functools.update_wrapper(swapped, value)
    if builtins.isinstance(value, (staticmethod, classmethod)):
        return type(value)(_with_class_cell(value.__func__, class_cell))
    if builtins.isinstance(value, property):
        return property(*(_with_class_cell(f, class_cell) if f is not None else None
                          for f in (value.fget, value.fset, value.fdel)), value.__doc__)
    return value


def _is_compiled(name: str, value, compiled_names: frozenset | None) -> bool:
    # (an override of Module's own API, train() or load_state_dict(), stays: the module machinery calls it)
    return (compiled_names is None or name.startswith("_") or not builtins.isinstance(value, types.FunctionType)
            or name in compiled_names or hasattr(Module, name))


def _answered_by_original(method):
    @functools.wraps(method)
    def from_original(self, *args):
        return method(self._original_module, *args)
    return from_original


def _script_submodules(module: Module, compiled_names: frozenset | None) -> None:
    modules = module._modules
    for name, child in modules.items():
        if child is not None and not builtins.isinstance(child, ScriptModule):
            modules[name] = RecursiveScriptModule._from_module(child, compiled_names)
    object.__setattr__(module, "_scripted", True)


def _compiled_names(root: Module) -> frozenset | None:
    """The attribute names the code torch compiles for ``root``'s tree mentions: each module's
    ``forward`` and ``@export``ed methods and the methods of its own they reach through ``self``.
    torch compiles a submodule's method wherever compiled code calls it (``self.block.step(x)``),
    so a public method is kept when any of that code names it; None (keep every method) where a
    method's source cannot be read."""
    names: set = set()
    for module in root.modules():
        reached = _reached_names(type(module))
        if reached is None:
            return None
        names |= reached
    return frozenset(names)


@functools.cache
def _reached_names(cls: type) -> frozenset | None:
    roots = {name for klass in cls.__mro__ for name, value in vars(klass).items()
             if getattr(value, "_torchscript_export", False)}
    pending, seen, mentioned = ["forward", *roots], set(), set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for klass in cls.__mro__:
            function = vars(klass).get(name)
            if not builtins.isinstance(function, types.FunctionType):
                continue
            attributes = _attributes_named(function)
            if attributes is None:
                return None
            mentioned |= attributes
            pending.extend(attributes)
    return frozenset(mentioned | seen)


@functools.cache
def _attributes_named(function) -> frozenset | None:
    """Every ``x.name`` in ``function``'s source, or None when the source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None
    return frozenset(node.attr for node in ast.walk(tree) if builtins.isinstance(node, ast.Attribute))


def script_method(fn):
    """Returns ``fn`` unchanged: a ScriptModule's method runs eagerly."""
    warnings.warn(_DEPRECATED.format("script_method"), DeprecationWarning, stacklevel=1)
    return fn


def is_scripting() -> bool:
    return False


def is_tracing() -> bool:
    return False


def save(m, f, _extra_files=None) -> None:
    raise NotImplementedError(_NO_TORCHSCRIPT.format("save"))


def load(f, map_location=None, _extra_files=None):
    raise NotImplementedError(_NO_TORCHSCRIPT.format("load"))


class Final:
    """``typing.Final`` stand-in used in annotations like ``x: jit.Final[int]``."""

    def __class_getitem__(cls, item):
        return item
