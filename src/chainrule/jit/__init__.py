"""chainrule.jit: torch.jit's decorators and queries, without a compiler.

``script`` and ``trace`` return their argument unchanged (the model runs eagerly with the same
numbers); ``ignore``/``unused``/``export`` are pass-through decorators; ``is_scripting`` and
``is_tracing`` are False; a ``ScriptModule`` subclass is a Module whose ``@script_method``s run
eagerly. A TorchScript file cannot be written or read: ``save`` and ``load`` raise
NotImplementedError pointing at ``chainrule.save`` (state dicts).
"""

import builtins
import inspect
import warnings

from ..nn import Module

# torch.jit.annotations is bound on ``import torch`` (and a ``from __future__ import annotations``
# here would shadow the submodule's name)
from . import annotations  # noqa: F401
from ._container_types import isinstance

__all__ = ["script", "trace", "trace_module", "ignore", "unused", "export", "is_scripting", "is_tracing", "save", "load",
           "Final", "ScriptModule", "script_method", "annotate", "interface", "TracerWarning", "isinstance"]

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
    """torch.jit.ScriptModule: a Module; its ``@script_method``s run eagerly (no compiler)."""


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
