"""chainrule.jit: torch.jit's decorators and queries, without a compiler.

``script`` and ``trace`` return their argument unchanged (the model runs eagerly with the same
numbers); ``ignore``/``unused``/``export`` are pass-through decorators; ``is_scripting`` and
``is_tracing`` are False; a ``ScriptModule`` subclass is a Module whose ``@script_method``s run
eagerly. A TorchScript file cannot be written or read: ``save`` and ``load`` raise
NotImplementedError pointing at ``chainrule.save`` (state dicts).
"""

import builtins
import functools
import inspect
import types
import warnings

from ..nn import Module

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


# torch 2.10+ deprecates TorchScript; its entry points say so (DeprecationWarning, shown by default
# only for calls from __main__)
_DEPRECATED = "`torch.jit.{}` is deprecated. Please switch to `torch.compile` or `torch.export`."


def script(obj, optimize=None, _frames_up: int = 0, _rcb=None, example_inputs=None):
    """Returns ``obj`` unchanged: it runs eagerly."""
    warnings.warn(_DEPRECATED.format("script"), DeprecationWarning, stacklevel=2)
    return obj


def trace(func, example_inputs=None, *args, **kwargs):
    """Returns ``func`` unchanged (no graph is recorded): it runs eagerly on any input."""
    warnings.warn(_DEPRECATED.format("trace"), DeprecationWarning, stacklevel=2)
    return func


def trace_module(mod, inputs, optimize=None, check_trace: bool = True, check_inputs=None, check_tolerance: float = 1e-5,
                 strict: bool = True, _force_outplace: bool = False, _module_class=None, _compilation_unit=None,
                 example_inputs_is_kwarg: bool = False, _store_inputs: bool = True):
    """torch.jit.trace_module: ``mod`` comes back unchanged, as ``trace``'s (its methods run eagerly),
    after torch's checks of the arguments (e3nn's ``trace`` of a module calls it)."""
    warnings.warn(_DEPRECATED.format("trace_method"), DeprecationWarning, stacklevel=2)
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
    return fn


def annotate(the_type, the_value):
    """Returns ``the_value``: the type is a hint for the TorchScript compiler, which chainrule lacks."""
    return the_value


def interface(obj):
    """torch.jit.interface: the class comes back unchanged (there is no compiler to declare it to),
    after torch's deprecation warning and its checks on what may be an interface."""
    warnings.warn("`torch.jit.interface` is deprecated. Please use `torch.compile` instead.",
                  DeprecationWarning, stacklevel=2)
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
                _script_submodules(self)

        cls.__init__ = init_then_script

    @property
    def original_name(self) -> str:
        return type(self).__name__


class RecursiveScriptModule(ScriptModule):
    """torch.jit.RecursiveScriptModule: a submodule of a ``ScriptModule``, compiled on torch. Here the
    same module (its ``__dict__`` shared: parameters, buffers, hooks, attributes like ``in_features``)
    under a class named RecursiveScriptModule that carries its original class's methods and class
    attributes but is no subclass of it (``isinstance(m, nn.Linear)`` is False, as on torch). Its repr
    is torch's, ``RecursiveScriptModule(original_name=Linear)``."""

    # built from a module by _from_module, never by __init__, so there is no __init__ to wrap
    _compiled_submodule = True

    @classmethod
    def _from_module(cls, module: Module) -> "RecursiveScriptModule":
        scripted = object.__new__(_compiled_class(type(module)))
        scripted.__dict__.update(module.__dict__)
        object.__setattr__(scripted, "_modules", dict(module._modules))
        _script_submodules(scripted)
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
                         "__parameters__", "__abstractmethods__", "_abc_impl"})


@functools.cache
def _compiled_class(original: type) -> type:
    """A class per module class, mirroring its hierarchy down to Module (RecursiveScriptModule takes
    Module's place), so each method's zero-argument super() still finds the next class's method."""
    bases = tuple(_compiled_class(base) if issubclass(base, Module) else base
                  for base in original.__bases__ if base is not Module)
    if not any(issubclass(base, RecursiveScriptModule) for base in bases):
        bases += (RecursiveScriptModule,)
    class_cell = types.CellType()
    namespace = {name: _with_class_cell(value, class_cell) for name, value in vars(original).items()
                 if name not in _NOT_COPIED}
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


def _script_submodules(module: Module) -> None:
    modules = module._modules
    for name, child in modules.items():
        if child is not None and not builtins.isinstance(child, ScriptModule):
            modules[name] = RecursiveScriptModule._from_module(child)


def script_method(fn):
    """Returns ``fn`` unchanged: a ScriptModule's method runs eagerly."""
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
