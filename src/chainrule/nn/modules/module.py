"""nn.Module: the base class of layers and models, with torch's registration semantics.

Assigning a ``Parameter``, a ``Module`` or (via ``register_buffer``) a buffer to an attribute
registers it, so ``parameters()``, ``state_dict()``, ``to()``, ``train()`` and the hooks see it.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections import OrderedDict, namedtuple

import numpy as np

from ... import _dtype, _torch_function
from ..._hook_handle import RemovableHandle
from ..._naming import in_torchs_words, naming_the_class
from ...autograd.engine import _checked_hook_result
from ...autograd.function import as_input_view, is_recording
from ...autograd.grad_mode import no_grad
from ...autograd.hooks import BackwardHookFunction
from ...ops.compat import typename
from ...ops.creation import empty_like, zeros
from ...tensor import Tensor
from ..parameter import Buffer, Parameter

__all__ = ["Module", "register_module_forward_pre_hook", "register_module_forward_hook",
           "register_module_full_backward_pre_hook", "register_module_full_backward_hook",
           "register_module_backward_hook", "register_module_buffer_registration_hook",
           "register_module_module_registration_hook", "register_module_parameter_registration_hook"]


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


# hooks every module runs (torch.nn.modules.module's register_module_*_hook), before its own
_global_forward_pre_hooks: OrderedDict = OrderedDict()
_global_forward_hooks: OrderedDict = OrderedDict()
_global_forward_hooks_with_kwargs: OrderedDict = OrderedDict()
_global_forward_hooks_always_called: OrderedDict = OrderedDict()
_global_backward_pre_hooks: OrderedDict = OrderedDict()
_global_backward_hooks: OrderedDict = OrderedDict()
_global_buffer_registration_hooks: OrderedDict = OrderedDict()
_global_module_registration_hooks: OrderedDict = OrderedDict()
_global_parameter_registration_hooks: OrderedDict = OrderedDict()
_global_is_full_backward_hook = None  # None until a global backward hook says which kind

_MIXED_BACKWARD_HOOKS = "Cannot use both regular backward hooks and full backward hooks as a {}. " \
                        "Please use only one of them."


def register_module_buffer_registration_hook(hook) -> RemovableHandle:
    """``hook(module, name, buffer)`` whenever any module registers a buffer (``register_buffer`` or
    assignment); a non-None return replaces the buffer."""
    handle = RemovableHandle(_global_buffer_registration_hooks)
    _global_buffer_registration_hooks[handle.id] = hook
    return handle


def register_module_module_registration_hook(hook) -> RemovableHandle:
    """``hook(module, name, submodule)`` whenever any module registers a submodule (``add_module`` or
    assignment); a non-None return replaces the submodule."""
    handle = RemovableHandle(_global_module_registration_hooks)
    _global_module_registration_hooks[handle.id] = hook
    return handle


def register_module_parameter_registration_hook(hook) -> RemovableHandle:
    """``hook(module, name, param)`` whenever any module registers a parameter (``register_parameter``
    or assignment of a Parameter); a non-None return replaces the parameter."""
    handle = RemovableHandle(_global_parameter_registration_hooks)
    _global_parameter_registration_hooks[handle.id] = hook
    return handle


def _after_registration_hooks(hooks: OrderedDict, module, name: str, value):
    """``value`` as the global registration hooks leave it (each may return a replacement)."""
    for hook in list(hooks.values()):
        output = hook(module, name, value)
        if output is not None:
            value = output
    return value


def register_module_forward_pre_hook(hook) -> RemovableHandle:
    """``hook(module, args)`` before every module's forward; it may return replacement args."""
    handle = RemovableHandle(_global_forward_pre_hooks)
    _global_forward_pre_hooks[handle.id] = hook
    return handle


def register_module_forward_hook(hook, *, with_kwargs: bool = False, always_call: bool = False) -> RemovableHandle:
    """``hook(module, args, output)`` (``args, kwargs, output`` with ``with_kwargs``) after every
    module's forward; ``always_call`` runs it even when the forward raised."""
    handle = RemovableHandle(_global_forward_hooks,
                             extra_dict=[_global_forward_hooks_with_kwargs, _global_forward_hooks_always_called])
    _global_forward_hooks[handle.id] = hook
    if with_kwargs:
        _global_forward_hooks_with_kwargs[handle.id] = True
    if always_call:
        _global_forward_hooks_always_called[handle.id] = True
    return handle


def register_module_full_backward_pre_hook(hook) -> RemovableHandle:
    """``hook(module, grad_output)`` before every module's input gradients are computed."""
    handle = RemovableHandle(_global_backward_pre_hooks)
    _global_backward_pre_hooks[handle.id] = hook
    return handle


def register_module_full_backward_hook(hook) -> RemovableHandle:
    """``hook(module, grad_input, grad_output)`` once every module's input gradients are known."""
    return _register_global_backward_hook(hook, full=True)


def register_module_backward_hook(hook) -> RemovableHandle:
    """The deprecated non-full form of ``register_module_full_backward_hook`` (see
    ``Module.register_backward_hook``)."""
    return _register_global_backward_hook(hook, full=False)


def _register_global_backward_hook(hook, full: bool) -> RemovableHandle:
    # the global hooks are all full or all non-full, as torch refuses to mix them
    global _global_is_full_backward_hook
    if _global_is_full_backward_hook is (not full):
        raise RuntimeError(_MIXED_BACKWARD_HOOKS.format("global Module hook"))
    _global_is_full_backward_hook = full
    handle = RemovableHandle(_global_backward_hooks)
    _global_backward_hooks[handle.id] = hook
    return handle


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    first = lines.pop(0)
    return first + "\n" + "\n".join(" " * spaces + line for line in lines)


def _attribute_of(module, item: str, kind: type | None = None, kind_name: str = "nn.Module"):
    """``module.<item>`` when it is a ``kind`` (default: a Module), else torch's AttributeError for a
    dotted-path step: "<Module> has no attribute `item`" or "`item` is not an <kind_name>"."""
    if not hasattr(module, item):
        raise AttributeError(f"{module._get_name()} has no attribute `{item}`")
    value = getattr(module, item)
    if not isinstance(value, kind or Module):
        raise AttributeError(f"`{item}` is not an {kind_name}")
    return value


class Module:
    """Base class for all neural-network modules (``torch.nn.Module``)."""

    training: bool
    _version = 1

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # chainrule's own classes only: a user's module keeps its own errors as it raised them
        if cls.__module__.startswith("chainrule.") and "__init__" in cls.__dict__:
            cls.__init__ = naming_the_class(cls.__dict__["__init__"])

    def __init__(self, *args, **kwargs) -> None:
        # torch's words, keywords first: a class without an __init__ of its own (Tanh, Sigmoid) takes none
        if kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                            f"'{next(iter(kwargs))}'")
        if args:
            raise TypeError(f"{type(self).__name__}.__init__() takes 1 positional argument but {len(args) + 1} "
                            "were given")
        setattr_ = object.__setattr__
        setattr_(self, "training", True)
        # plain dicts, as torch's (its hook tables stay OrderedDicts: they move handles to the front)
        setattr_(self, "_parameters", {})
        setattr_(self, "_buffers", {})
        setattr_(self, "_non_persistent_buffers_set", set())
        setattr_(self, "_modules", {})
        setattr_(self, "_forward_pre_hooks", OrderedDict())
        setattr_(self, "_forward_pre_hooks_with_kwargs", OrderedDict())
        setattr_(self, "_forward_hooks", OrderedDict())
        setattr_(self, "_forward_hooks_with_kwargs", OrderedDict())
        setattr_(self, "_forward_hooks_always_called", OrderedDict())
        setattr_(self, "_backward_hooks", OrderedDict())
        setattr_(self, "_is_full_backward_hook", None)
        setattr_(self, "_backward_pre_hooks", OrderedDict())
        setattr_(self, "_load_state_dict_pre_hooks", OrderedDict())
        setattr_(self, "_load_state_dict_post_hooks", OrderedDict())
        setattr_(self, "_state_dict_pre_hooks", OrderedDict())
        setattr_(self, "_state_dict_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    # ------------------------------------------------------------------ registration
    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is None:
            self._parameters[name] = None
        elif not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{typename(param)}' object to parameter '{name}' "
                "(torch.nn.Parameter or None required)"
            )
        elif param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be "
                "created explicitly. To express '{name}' as a function of another Tensor, compute "
                "the value in the forward() method."
            )
        else:
            self._parameters[name] = _after_registration_hooks(_global_parameter_registration_hooks, self, name,
                                                               param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{typename(tensor)}' object to buffer '{name}' "
                "(torch Tensor or None required)"
            )
        if isinstance(tensor, Buffer):
            tensor = _plain(tensor)
        self._buffers[name] = _after_registration_hooks(_global_buffer_registration_hooks, self, name, tensor)
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._check_submodule_name(name, module)
        self._modules[name] = _after_registration_hooks(_global_module_registration_hooks, self, name, module)

    def register_module(self, name: str, module: Module | None) -> None:
        self.add_module(name, module)  # (an override of add_module, a ScriptModule's, serves both)

    def _check_submodule_name(self, name: str, module: Module | None) -> None:
        """torch's checks of ``add_module``'s arguments, in its order."""
        if not isinstance(module, Module) and module is not None:
            raise in_torchs_words(TypeError(f"{typename(module)} is not a Module subclass"))
        if not isinstance(name, str):
            raise in_torchs_words(TypeError(f"module name should be a string. Got {type(name).__name__}"))
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if "." in name:
            raise KeyError(f'module name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError('module name can\'t be empty string ""')

    def get_submodule(self, target: str) -> Module:
        """The submodule at the dotted path ``target`` ("" is ``self``); AttributeError naming the
        step that is missing or is not a module, in torch's words."""
        module = self
        if target == "":
            return module
        for item in target.split("."):
            module = _attribute_of(module, item)
        return module

    def set_submodule(self, target: str, module: Module, strict: bool = False) -> None:
        """Put ``module`` at the dotted path ``target``: its parent must exist; with ``strict`` the
        submodule replaced must exist too. torch.nn.Module.set_submodule."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        if not isinstance(module, Module):
            raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
        *path, name = target.split(".")
        # torch's: the parent through get_submodule, so an empty parent path ('.x') is this module itself
        parent = self.get_submodule(".".join(path)) if path else self
        if strict and not hasattr(parent, name):
            raise AttributeError(f"{parent._get_name()} has no attribute `{name}`")
        if hasattr(parent, name) and not isinstance(getattr(parent, name), Module):
            raise AttributeError(f"`{name}` is not an nn.Module")
        setattr(parent, name, module)

    def get_parameter(self, target: str) -> Parameter:
        module_path, _, name = target.rpartition(".")
        return _attribute_of(self.get_submodule(module_path), name, Parameter, "nn.Parameter")

    def get_buffer(self, target: str) -> Tensor:
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(f"{module._get_name()} has no attribute `{name}`")
        if name not in module._buffers:
            raise AttributeError(f"`{name}` is not a buffer")
        return module._buffers[name]

    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            _remove_from(name, self.__dict__, self._buffers, self._modules, self._non_persistent_buffers_set)
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{typename(value)}' as parameter '{name}' "
                    "(torch.nn.Parameter or None expected)"
                )
            self.register_parameter(name, value)
            return
        modules = self.__dict__.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            _remove_from(name, self.__dict__, self._parameters, self._buffers, self._non_persistent_buffers_set)
            modules[name] = _after_registration_hooks(_global_module_registration_hooks, self, name, value)
            return
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{typename(value)}' as child module '{name}' "
                    "(torch.nn.Module or None expected)"
                )
            modules[name] = _after_registration_hooks(_global_module_registration_hooks, self, name, value)
            return
        buffers = self.__dict__.get("_buffers")
        if isinstance(value, Buffer) or (buffers is not None and name in buffers):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{typename(value)}' as buffer '{name}' "
                    "(torch.nn.Buffer, torch.Tensor or None expected)"
                )
            if isinstance(value, Buffer):
                persistent = value.persistent
            else:
                persistent = name not in self._non_persistent_buffers_set
            # (a plain attribute of that name stays, and register_buffer refuses it, as torch's)
            self.register_buffer(name, value, persistent)
            return
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            table = d.get(store)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        keys = list(object.__dir__(self)) + list(self._parameters) + list(self._modules) + list(self._buffers)
        return sorted(k for k in set(keys) if not k[0].isdigit())

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        # modules pickled before the state-dict hooks existed get empty ones, as torch's __setstate__ does
        for name in ("_load_state_dict_pre_hooks", "_load_state_dict_post_hooks", "_state_dict_pre_hooks",
                     "_state_dict_hooks", "_forward_hooks_always_called"):
            self.__dict__.setdefault(name, OrderedDict())
        self.__dict__.setdefault("_is_full_backward_hook", None)
        for name in ("_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs"):  # sets before session 15
            if isinstance(self.__dict__.get(name), set):
                self.__dict__[name] = OrderedDict.fromkeys(self.__dict__[name], True)

    # ------------------------------------------------------------------ iteration
    def _named_members(self, get_members, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        memo = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in get_members(module):
                if value is None or (remove_duplicate and id(value) in memo):
                    continue
                if remove_duplicate:
                    memo.add(id(value))
                yield (module_prefix + ("." if module_prefix else "") + name, value)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        for name, param in self._named_members(lambda m: m._parameters.items(), prefix, recurse, remove_duplicate):
            if param._name is None:
                param._name = name
            yield name, param

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        return self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_children(self):
        memo = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in memo:
                memo.add(id(module))
                yield name, module

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True):
        if memo is None:
            memo = set()
        if self in memo:  # the modules themselves, as torch's: a caller's memo names modules
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub_prefix = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub_prefix, remove_duplicate)

    # ------------------------------------------------------------------ state
    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """An OrderedDict of parameters and persistent buffers, detached and sharing memory."""
        if args:  # torch's deprecated positional order: (destination, prefix, keep_vars)
            warnings.warn("Positional args are being deprecated, use kwargs instead. Refer to "
                          "https://pytorch.org/docs/main/generated/torch.nn.Module.html#torch.nn.Module.state_dict"
                          " for details.", FutureWarning, stacklevel=_torch_function.user_stacklevel())
            destination = args[0]
            prefix = args[1] if len(args) > 1 else prefix
            keep_vars = args[2] if len(args) > 2 else keep_vars
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        local_metadata = {"version": self._version}
        metadata = getattr(destination, "_metadata", None)
        if metadata is not None:
            # each module's _version, as torch's: a layer whose format changed (BatchNorm's
            # num_batches_tracked, torchvision's MNASNet) reads it back in _load_from_state_dict
            metadata[prefix[:-1]] = local_metadata
        for hook in self.__dict__.get("_state_dict_pre_hooks", {}).values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hook in self.__dict__.get("_state_dict_hooks", {}).values():
            result = hook(self, destination, prefix, local_metadata)
            if getattr(hook, "_from_public_api", False):
                if result is not None:
                    raise RuntimeError("state_dict post-hook must return None")
            elif result is not None:
                # the private hook may hand back a new dict; as in torch, only the root's caller sees it
                # (a child's parent keeps filling the dict it passed down)
                destination = result
        return destination

    def _save_to_state_dict(self, destination, prefix: str, keep_vars: bool) -> None:
        """This module's own entries (not its children's); torch's override point, which quantized
        modules use to save packed parameters that are neither parameters nor buffers."""
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buffer if keep_vars else buffer.detach()
        extra = getattr(type(self), "get_extra_state", None)
        if extra is not None and extra is not Module.get_extra_state:
            destination[prefix + "_extra_state"] = self.get_extra_state()

    def get_extra_state(self):
        raise RuntimeError("Reached a code path in Module.get_extra_state() that should never be called. "
                           "Please file an issue at https://github.com/pytorch/pytorch/issues/new?template=bug-report.yml "
                           "to report this bug.")

    def set_extra_state(self, state) -> None:
        raise RuntimeError("Reached a code path in Module.set_extra_state() that should never be called. "
                           "Please file an issue at https://github.com/pytorch/pytorch/issues/new?template=bug-report.yml "
                           "to report this bug.")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        # torch's seven-argument protocol: libraries override it (torchmetrics' Metric) and call
        # super() with these seven; load_state_dict(assign=True) arrives in local_metadata
        for hook in self.__dict__.get("_load_state_dict_pre_hooks", {}).values():
            hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        assign = local_metadata.get("assign_to_params_buffers", False)
        persistent = {k: v for k, v in self._buffers.items() if k not in self._non_persistent_buffers_set}
        local_state = {k: v for k, v in itertools.chain(self._parameters.items(), persistent.items()) if v is not None}
        for name, param in local_state.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            input_param = state_dict[key]
            if not isinstance(input_param, Tensor):
                # torch accepts only tensor-likes here: a NumPy array is reported, not converted
                error_msgs.append(
                    f'While copying the parameter named "{key}", expected torch.Tensor or '
                    f"Tensor-like object from checkpoint but received <class '{typename(type(input_param))}'>"
                )
                continue
            if len(param.shape) == 0 and tuple(input_param.shape) == (1,):
                # torch's backward compatibility with 0.3 checkpoints: a 0-d entry saved 1-d
                input_param = input_param[0]
            if tuple(input_param.shape) != tuple(param.shape):
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {_size(input_param.shape)} "
                    f"from checkpoint, the shape in current model is {_size(param.shape)}."
                )
                continue
            try:
                with no_grad():
                    if assign:
                        if isinstance(param, Parameter):
                            if isinstance(input_param, Parameter):
                                # torch's: the assigned Parameter takes the replaced one's requires_grad
                                new = input_param.requires_grad_(param.requires_grad)
                            else:
                                new = Parameter(input_param, requires_grad=param.requires_grad)
                            setattr(self, name, new)
                        else:
                            setattr(self, name, input_param)
                    else:
                        if param.is_meta and not input_param.is_meta:
                            warnings.warn(f"for {key}: copying from a non-meta parameter in the checkpoint to a meta "
                                          "parameter in the current model, which is a no-op. (Did you mean to pass "
                                          "`assign=True` to assign items in the state dictionary to their "
                                          "corresponding key in the module instead of copying them in place?)",
                                          UserWarning, stacklevel=2)
                        param.copy_(input_param)
            except Exception as ex:  # noqa: BLE001 - reported by name, as torch does
                error_msgs.append(
                    f'While copying the parameter named "{key}", whose dimensions in the model are '
                    f"{_size(param.shape)} and whose dimensions in the checkpoint are "
                    f"{_size(input_param.shape)}, an exception occurred : {ex.args}."
                )
        extra_key = prefix + "_extra_state"
        if getattr(type(self), "set_extra_state", None) is not Module.set_extra_state:
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            elif strict:
                missing_keys.append(extra_key)
        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != extra_key:
                    input_name = key[len(prefix):].split(".", 1)
                    if len(input_name) > 1:
                        if input_name[0] not in self._modules:
                            unexpected_keys.append(key)
                    elif input_name[0] not in local_state:
                        unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy parameters and buffers from ``state_dict``; returns (missing_keys, unexpected_keys)."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing_keys: list = []
        unexpected_keys: list = []
        error_msgs: list = []
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)

        def load(module: Module, local_state_dict, prefix: str = "") -> None:
            local_metadata = dict({} if metadata is None else metadata.get(prefix[:-1], {}))
            if assign:
                local_metadata["assign_to_params_buffers"] = True
            module._load_from_state_dict(local_state_dict, prefix, local_metadata, True, missing_keys,
                                         unexpected_keys, error_msgs)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    child_state = {k: v for k, v in local_state_dict.items() if k.startswith(child_prefix)}
                    load(child, child_state, child_prefix)
            # the hooks may edit the key lists in place (a post hook returns nothing)
            incompatible_keys = _IncompatibleKeys(missing_keys, unexpected_keys)
            for hook in module.__dict__.get("_load_state_dict_post_hooks", {}).values():
                if hook(module, incompatible_keys) is not None:
                    raise AssertionError(
                        "Hooks registered with ``register_load_state_dict_post_hook`` are not expected to return "
                        "new values, if incompatible_keys need to be modified, it should be done inplace.")

        load(self, state_dict)
        if strict:
            if unexpected_keys:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected_keys)))
            if missing_keys:
                error_msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing_keys)))
        if error_msgs:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                type(self).__name__, "\n\t".join(error_msgs)))
        return _IncompatibleKeys(missing_keys, unexpected_keys)

    # ------------------------------------------------------------------ modes and conversion
    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.parameters():
            if param._grad is not None:
                if set_to_none:
                    param._grad = None
                elif param._grad.is_sparse:
                    param._grad.zero_()  # no entries left, as torch's sparse zero_()
                elif param._grad._data.flags.writeable and param._grad.grad_fn is None:
                    param._grad._data[...] = 0  # in place, as torch's grad.zero_()
                    param._grad._version_box[0] += 1
                else:
                    param._grad = Tensor._make(np.zeros_like(param._grad._data))

    def apply(self, fn) -> Module:
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def share_memory(self) -> Module:
        """Move every parameter and buffer into shared memory (Tensor.share_memory_), so that
        processes started afterwards train the same weights (Hogwild)."""
        return self._apply(lambda t: t.share_memory_())

    def _apply(self, fn, recurse: bool = True) -> Module:
        """Apply ``fn`` to every parameter and buffer, in place (parameters keep their identity)."""
        if recurse:
            for module in self.children():
                module._apply(fn)
        for param in self._parameters.values():
            if param is None:
                continue
            with no_grad():
                new = fn(param)
            if new._data is not param._data:
                if param.requires_grad and not (new.dtype.is_floating_point or new.dtype.is_complex):
                    # torch's _apply sets param.data, which refuses this (after converting the parameters before)
                    raise RuntimeError("data set to a tensor that requires gradients must be floating point or "
                                       "complex dtype")
                param._data = new._data
                param._version_box[0] += 1
            if param._grad is not None:
                with no_grad():
                    grad = fn(param._grad)
                param._grad = grad if grad is param._grad else Tensor._make(grad._data)
        for name, buffer in self._buffers.items():
            if buffer is not None:
                # outside no_grad, as torch's: a buffer that requires grad (a Parameter registered as a
                # buffer) converts to a tensor that requires grad
                self._buffers[name] = fn(buffer)
        return self

    def to(self, *args, **kwargs) -> Module:
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``: floating tensors only change dtype."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        memory_format = kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to() received an invalid combination of arguments: {sorted(kwargs)}")
        from ... import memory_format as memory_format_type  # the package defines it after importing nn

        if memory_format is not None and not isinstance(memory_format, memory_format_type):
            raise TypeError(f"Module.to(): memory_format must be a torch.memory_format such as "
                            f"torch.channels_last, got {type(memory_format).__name__}")
        for a in args:
            if isinstance(a, bool):  # non_blocking, torch's last positional argument
                continue
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, _dtype.dtype) or (isinstance(a, str) and a in _dtype._BY_NAME):
                dtype = _dtype.to_dtype(a)
            else:
                device = a
        if dtype is not None:
            dtype = _dtype.to_dtype(dtype)
            if dtype._category < _dtype.float32._category and dtype.np.kind not in "fV":
                raise TypeError(
                    f"nn.Module.to only accepts floating point or complex dtypes, but got desired dtype={dtype}"
                )
            if dtype.is_complex:
                warnings.warn("Complex modules are a new feature under active development whose design may change, "
                              "and some modules might not work as expected when using complex tensors as parameters "
                              "or buffers. Please file an issue at https://github.com/pytorch/pytorch/issues/new?"
                              "template=bug-report.yml if a complex module does not work as expected.",
                              stacklevel=_torch_function.user_stacklevel())

        def convert(t: Tensor) -> Tensor:
            out = t
            if device is not None:
                out = out.to(device)
            # torch casts complex tensors too: to a complex dtype, or (with Tensor.to's warning that the
            # imaginary parts are dropped) to a floating one
            if dtype is not None and (out.is_floating_point() or out.is_complex()):
                out = out.to(dtype)
            if memory_format is not None and out.dim() in (4, 5):
                # torch converts the 4-d and 5-d tensors only, to any format (contiguous_format back
                # from channels-last); a format of the other rank raises Tensor.to's error
                out = out.to(memory_format=memory_format)
            return out

        return self._apply(convert)

    def float(self) -> Module:
        return self._apply(lambda t: t.float() if t.is_floating_point() else t)

    def double(self) -> Module:
        return self._apply(lambda t: t.double() if t.is_floating_point() else t)

    def half(self) -> Module:
        return self._apply(lambda t: t.half() if t.is_floating_point() else t)

    def bfloat16(self) -> Module:
        return self._apply(lambda t: t.bfloat16() if t.is_floating_point() else t)

    def type(self, dst_type) -> Module:
        return self._apply(lambda t: t.type(dst_type))  # (Tensor.type: a dtype or a type name such as 'torch.DoubleTensor')

    def cpu(self) -> Module:
        return self._apply(lambda t: t.cpu())

    def to_empty(self, *, device, recurse: bool = True) -> Module:
        """torch.nn.Module.to_empty: give every parameter and buffer fresh, uninitialised storage on
        ``device`` (same shapes and dtypes); the way off the meta device, where ``to()`` would
        have no data to copy. Initialise after it (``reset_parameters``, ``load_state_dict``)."""
        return self._apply(lambda t: empty_like(t, device=device), recurse=recurse)

    def cuda(self, device=None) -> Module:
        return self._apply(lambda t: t.cuda(device))

    # ------------------------------------------------------------------ hooks
    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False) -> RemovableHandle:
        handle = RemovableHandle(self._forward_pre_hooks, extra_dict=self._forward_pre_hooks_with_kwargs)
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        handle = RemovableHandle(self._forward_hooks,
                                 extra_dict=[self._forward_hooks_with_kwargs, self._forward_hooks_always_called])
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if always_call:
            self._forward_hooks_always_called[handle.id] = True
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` once the gradients w.r.t. the module's inputs are known."""
        if self._is_full_backward_hook is False:
            raise RuntimeError(_MIXED_BACKWARD_HOOKS.format("single Module").replace("as a", "on a"))
        self._is_full_backward_hook = True
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def _register_load_state_dict_pre_hook(self, hook, with_module: bool = False) -> RemovableHandle:
        """``hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)``
        (with the module first if ``with_module``) before this module reads its entries of a
        ``load_state_dict``; it may edit ``state_dict`` (kornia's descriptors fill in missing buffers)."""
        handle = RemovableHandle(self._load_state_dict_pre_hooks)
        self._load_state_dict_pre_hooks[handle.id] = functools.partial(hook, self) if with_module else hook
        return handle

    def register_load_state_dict_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs)`` before this module reads its entries of a ``load_state_dict``."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def register_load_state_dict_post_hook(self, hook) -> RemovableHandle:
        """``hook(module, incompatible_keys)`` after this module and its children have loaded; it may
        edit ``incompatible_keys.missing_keys``/``unexpected_keys`` in place (strict mode then sees that)."""
        handle = RemovableHandle(self._load_state_dict_post_hooks)
        self._load_state_dict_post_hooks[handle.id] = hook
        return handle

    def register_state_dict_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, prefix, keep_vars)`` before this module writes its entries of a ``state_dict``."""
        handle = RemovableHandle(self._state_dict_pre_hooks)
        self._state_dict_pre_hooks[handle.id] = hook
        return handle

    def register_state_dict_post_hook(self, hook) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata)`` after this module and its children have
        written their entries; it edits ``state_dict`` in place and must return None."""
        # torch marks the function itself, so one function cannot be both a public and a private hook
        hook._from_public_api = True
        handle = RemovableHandle(self._state_dict_hooks)
        self._state_dict_hooks[handle.id] = hook
        return handle

    def _register_state_dict_hook(self, hook) -> RemovableHandle:
        """The private post hook libraries use (checkpoint_wrapper, FSDP): like the public one, but it
        may return a new state dict, which replaces the result when this module is the root."""
        if getattr(hook, "_from_public_api", False):
            raise RuntimeError("Cannot register the same function as the state dict post hook that was "
                               "previously registered via register_state_dict_post_hook")
        handle = RemovableHandle(self._state_dict_hooks)
        self._state_dict_hooks[handle.id] = hook
        return handle

    def register_backward_hook(self, hook) -> RemovableHandle:
        """Deprecated in torch for ``register_full_backward_hook``: ``hook(module, grad_input,
        grad_output)`` is a hook on the autograd node that made the module's (first) output, so it
        sees that node's gradients only, and torch warns with FutureWarning when that is not the
        whole module."""
        if self._is_full_backward_hook is True:
            raise RuntimeError(_MIXED_BACKWARD_HOOKS.format("single Module").replace("as a", "on a"))
        self._is_full_backward_hook = False
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_output)`` before the module's input gradients are computed."""
        handle = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[handle.id] = hook
        if prepend:
            self._backward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        try:
            if not (d["_forward_pre_hooks"] or d["_forward_hooks"] or d["_backward_hooks"] or d["_backward_pre_hooks"]
                    or _global_forward_pre_hooks or _global_forward_hooks or _global_backward_hooks
                    or _global_backward_pre_hooks):
                return self.forward(*args, **kwargs)
            return self._call_with_hooks(args, kwargs)
        except AttributeError as error:
            refusal = self._argument_refusal(args, kwargs, error)
            if refusal is None:
                raise
            raise refusal from None

    def _argument_refusal(self, args: tuple, kwargs: dict, error: AttributeError):
        """torch's TypeError when one of chainrule's own layers (nn.CrossEntropyLoss given a list
        as its target) read a tensor's attribute off an argument that is no tensor; None for any
        other AttributeError, and always for a user's own forward, whose arguments may be anything."""
        forward = type(self).forward
        if not getattr(forward, "__module__", "").startswith("chainrule."):
            return None
        return _torch_function.argument_refusal(forward, self.forward, args, kwargs, error,
                                                name=f"{type(self).__name__}.forward")

    def _backward_hook_lists(self) -> tuple:
        """(full hooks, non-full hooks, pre-hooks) for this call: the global ones first, each kind
        only where it was registered as that kind, as torch gathers them."""
        full, non_full = [], []
        for is_full, hooks in ((_global_is_full_backward_hook, _global_backward_hooks),
                               (self._is_full_backward_hook, self._backward_hooks)):
            if is_full is True:
                full.extend(hooks.values())
            elif is_full is False:
                non_full.extend(hooks.values())
        return full, non_full, [*_global_backward_pre_hooks.values(), *self._backward_pre_hooks.values()]

    def _call_with_hooks(self, args, kwargs):
        called_always = set()
        output = None
        try:
            return self._run_hooked(args, kwargs, called_always)
        except Exception:
            # the always_call forward hooks still run (with no output), their own errors only warned
            for hooks, always, with_kwargs, scope in (
                    (_global_forward_hooks, _global_forward_hooks_always_called, {}, "global module"),
                    (self._forward_hooks, self._forward_hooks_always_called, self._forward_hooks_with_kwargs,
                     "module")):
                for hook_id, hook in list(hooks.items()):
                    if hook_id not in always or hook_id in called_always:
                        continue
                    try:
                        result = (hook(self, args, kwargs, output) if hook_id in with_kwargs
                                  else hook(self, args, output))
                        if result is not None:
                            output = result
                    except Exception as e:
                        warnings.warn(f"{scope} forward hook with ``always_call=True`` raised an exception that "
                                      f"was silenced as another error was raised in forward: {e}", stacklevel=2)
            raise

    def _run_hooked(self, args, kwargs, called_always: set):
        full_hooks, non_full_hooks, pre_hooks = self._backward_hook_lists()
        for hook_id, hook in [*_global_forward_pre_hooks.items(), *self._forward_pre_hooks.items()]:
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError("forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                           f"but got {result}.")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        state = None
        if full_hooks or pre_hooks:
            state = _BackwardHookState(self, full_hooks, pre_hooks)
            args = state.wrap_inputs(args)
        output = self.forward(*args, **kwargs)
        for hook_id, hook in [*_global_forward_hooks.items(), *self._forward_hooks.items()]:
            if hook_id in self._forward_hooks_always_called or hook_id in _global_forward_hooks_always_called:
                called_always.add(hook_id)
            if hook_id in self._forward_hooks_with_kwargs or hook_id in _global_forward_hooks_with_kwargs:
                result = hook(self, args, kwargs, output)
            else:
                result = hook(self, args, output)
            if result is not None:
                output = result
        if state is not None:
            output = state.wrap_outputs(output)
        if non_full_hooks:
            _attach_non_full_backward_hooks(self, non_full_hooks, args, output)
        return output

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for key, module in self._modules.items():
            lines.append("(" + key + "): " + _addindent(repr(module), 2))
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


def _check_name(name, kind: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain "."')
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')


def _remove_from(name: str, *stores) -> None:
    for store in stores:
        if name in store:
            if isinstance(store, set):
                store.discard(name)
            else:
                del store[name]


def _plain(t: Tensor) -> Tensor:
    out = Tensor._make(t._data)
    out._version_box = t._version_box
    return out


def _size(shape) -> str:
    return f"torch.Size({list(shape)})".replace("torch", "chainrule")


# ---------------------------------------------------------------- full backward hooks
class _BackwardHookState:
    """Identity nodes around a module's call that see the gradients of its inputs and outputs.

    Outputs pass through one node, whose pre-hook sees grad_output; tensor inputs that require
    grad pass through another, whose post-hook runs after the module's own graph and calls the
    hooks with (grad_input, grad_output), the same pair and order torch's BackwardHook gives: one
    entry per positional argument, None for a non-tensor, zeros for a tensor that needs no
    gradient while another does (torch's node materialises them: fresh contiguous zeros of the
    input's shape and dtype on each backward, so they are built then, and only when a full hook
    will see them); what a hook returns is checked as torch's node hook checks it. They are node
    hooks, as torch's, so the engine copies rather than steals a gradient a hook saw when it
    becomes a leaf's ``.grad`` (a kept one would change with the next accumulation).
    """

    def __init__(self, module: Module, full_hooks: list, pre_hooks: list) -> None:
        self.module = module
        self.full_hooks = full_hooks
        self.pre_hooks = pre_hooks
        self.grad_outputs = None
        self.n_inputs = 0
        self.input_positions: list = []
        self.untracked_inputs: list = []
        self.has_input_node = False

    def wrap_inputs(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        tensors = [(i, a) for i, a in enumerate(args) if isinstance(a, Tensor)]
        wanted = [(i, a) for i, a in tensors if a.requires_grad]
        if not is_recording(*[a for _, a in wanted]):
            return args
        self.has_input_node = True
        self.input_positions = [i for i, _ in wanted]
        self.untracked_inputs = [(i, a.shape, a.dtype, a.device) for i, a in tensors if not a.requires_grad]
        wrapped = BackwardHookFunction.apply(*[a for _, a in wanted])
        wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)

        def hook(grad_input, _):  # (torch's node hook, named so in its errors)
            return self.received_grad_inputs(grad_input)

        wrapped[0].grad_fn.register_hook(hook)
        for (_, a), w in zip(wanted, wrapped):  # torch's BackwardHookFunction returns its inputs as-is
            as_input_view(w, a, several=len(wrapped) > 1)
        args = list(args)
        for (i, _), w in zip(wanted, wrapped):
            args[i] = w
        return tuple(args)

    def wrap_outputs(self, output):
        outs = output if isinstance(output, tuple) else (output,)
        positions = [k for k, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
        if not positions:
            return output
        self.n_outputs = len(outs)
        self.output_positions = positions
        wrapped = BackwardHookFunction.apply(*[outs[k] for k in positions], materialize_grads=False)
        wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
        if wrapped[0].grad_fn is not None:
            wrapped[0].grad_fn.register_prehook(self.received_grad_outputs)
        for k, w in zip(positions, wrapped):
            as_input_view(w, outs[k], several=len(wrapped) > 1)
        outs = list(outs)
        for k, w in zip(positions, wrapped):
            outs[k] = w
        return tuple(outs) if isinstance(output, tuple) else outs[0]

    def received_grad_outputs(self, grads: tuple) -> tuple:
        """The outputs' node pre-hook: the pre-hooks' grad_output, kept for the full hooks."""
        full = [None] * self.n_outputs
        for k, g in zip(self.output_positions, grads):
            full[k] = g
        grad_output = tuple(full)
        for hook in self.pre_hooks:
            result = hook(self.module, grad_output)
            if result is not None:
                if len(result) != len(grad_output):
                    raise RuntimeError("Backward pre hook returned an invalid number of grad_output, "
                                       f"got {len(result)}, but expected {len(grad_output)}")
                grad_output = result
        self.grad_outputs = grad_output
        if not self.has_input_node:
            # no input needs a gradient: torch calls the hooks now, with grad_input all None
            warnings.warn(
                "Full backward hook is firing when gradients are computed with respect to module "
                "outputs since no inputs require gradients. See "
                "https://docs.pytorch.org/docs/main/generated/torch.nn.Module.html#torch.nn.Module.register_full_backward_hook "
                "for more details.", UserWarning, stacklevel=_torch_function.user_stacklevel())
            grad_input = (None,) * self.n_inputs
            for hook in self.full_hooks:
                result = hook(self.module, grad_input, self.grad_outputs)
                if result is not None and not (isinstance(result, tuple) and all(r is None for r in result)):
                    raise RuntimeError("Backward hook for Modules where no input requires gradient should "
                                       "always return None or None for all gradients.")
            self.grad_outputs = None
        return tuple(grad_output[k] for k in self.output_positions)

    def received_grad_inputs(self, grads: tuple) -> tuple | None:
        """The inputs' node post-hook: the full hooks' grad_input (None: the gradients unchanged)."""
        if self.grad_outputs is None:
            # a gradient reaching the inputs without passing the outputs (a double backward through
            # the module's first backward): torch's hooks stay silent
            return None
        if not self.full_hooks:
            # only backward pre-hooks, which saw grad_output already: no hook sees grad_input, so
            # its zeros (built for, and observable by, full hooks alone) are not made
            self.grad_outputs = None
            return None
        full = [None] * self.n_inputs
        for k, g in zip(self.input_positions, grads):
            full[k] = g
        for k, shape, dtype, device in self.untracked_inputs:
            full[k] = zeros(shape, dtype=dtype, device=device)
        grad_input = tuple(full)
        for hook in self.full_hooks:
            result = hook(self.module, grad_input, self.grad_outputs)
            if result is not None:
                if len(result) != len(grad_input):
                    raise RuntimeError(
                        f"Backward hook returned an invalid number of grad_input, got {len(result)}, "
                        f"but expected {len(grad_input)}"
                    )
                grad_input = result
        # torch's hook is a node hook named 'hook' over the node's tensors: each checked for type and size
        tensor_positions = sorted(self.input_positions + [k for k, *_ in self.untracked_inputs])
        checked = _checked_hook_result(None, tuple(grad_input[k] for k in tensor_positions),
                                       tuple(full[k] for k in tensor_positions), name="hook")
        by_position = dict(zip(tensor_positions, checked))
        self.grad_outputs = None
        return tuple(by_position[k] for k in self.input_positions)


# ---------------------------------------------------------------- non-full (deprecated) backward hooks
_NON_FULL_ADVICE = " Please use register_full_backward_hook to get the documented behavior."


def _attach_non_full_backward_hooks(module: Module, hooks: list, args: tuple, output) -> None:
    """torch's old module backward hook: a hook on the node that made the first output tensor,
    called with that node's (grad_input, grad_output), and the FutureWarning torch gives when
    that node is not the whole module."""
    first = output
    while not isinstance(first, Tensor):
        first = next(v for v in first.values() if isinstance(v, Tensor)) if isinstance(first, dict) else first[0]
    node = first.grad_fn
    if node is None:
        return
    for hook in hooks:
        node.register_hook(functools.partial(hook, module))
    outputs = (output,) if isinstance(output, Tensor) else output
    if not (isinstance(outputs, tuple) and all(isinstance(o, Tensor) for o in outputs)):
        warnings.warn("Using non-full backward hooks on a Module that does not return a single Tensor or a tuple "
                      "of Tensors is deprecated and will be removed in future versions. This hook will be missing "
                      "some of the grad_output." + _NON_FULL_ADVICE, FutureWarning, stacklevel=3)
        return
    inputs = args
    if not all(isinstance(i, Tensor) for i in inputs):
        warnings.warn("Using non-full backward hooks on a Module that does not take as input a single Tensor or a "
                      "tuple of Tensors is deprecated and will be removed in future versions. This hook will be "
                      "missing some of the grad_input." + _NON_FULL_ADVICE, FutureWarning, stacklevel=3)
        return
    output_nodes = {o.grad_fn for o in outputs if o.grad_fn is not None}
    if not output_nodes or (len(output_nodes) == 1 and node not in output_nodes):
        warnings.warn("Using a non-full backward hook when outputs are nested in python data structure is "
                      "deprecated and will be removed in future versions. This hook will be missing some "
                      "grad_output.", FutureWarning, stacklevel=3)
    elif len(output_nodes) > 1:
        warnings.warn("Using a non-full backward hook when outputs are generated by different autograd Nodes is "
                      "deprecated and will be removed in future versions. This hook will be missing some "
                      "grad_output." + _NON_FULL_ADVICE, FutureWarning, stacklevel=3)
    elif {i.grad_fn for i in inputs if i.grad_fn is not None} != {edge[0] for edge in node.next_functions}:
        # the node's inputs are not the module's: the module ran more than this one node
        warnings.warn("Using a non-full backward hook when the forward contains multiple autograd Nodes is "
                      "deprecated and will be removed in future versions. This hook will be missing some "
                      "grad_input." + _NON_FULL_ADVICE, FutureWarning, stacklevel=3)
