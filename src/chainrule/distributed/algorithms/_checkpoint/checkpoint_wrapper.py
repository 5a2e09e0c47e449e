"""torch's checkpoint_wrapper: a module whose forward recomputes its activations in backward.

The wrapped module lives at ``_checkpoint_wrapped_module``; state-dict hooks drop that name from the
keys on save and put it back on load, so a wrapped model's checkpoints load into an unwrapped one
and the other way round.
"""

from __future__ import annotations

from enum import Enum, auto
from functools import partial
from typing import Any

from ....autograd.graph import save_on_cpu
from ....nn.modules.module import Module

_CHECKPOINT_WRAPPED_MODULE = "_checkpoint_wrapped_module"
_CHECKPOINT_PREFIX = _CHECKPOINT_WRAPPED_MODULE + "."

__all__ = ["ActivationWrapper", "CheckpointImpl", "CheckpointWrapper", "OffloadWrapper",
           "apply_activation_checkpointing", "checkpoint_wrapper", "offload_wrapper"]


class CheckpointImpl(Enum):
    REENTRANT = auto()
    NO_REENTRANT = auto()


def _replace_by_prefix(state_dict: dict[str, Any], old_prefix: str, new_prefix: str) -> None:
    """Rename, in place, every key that starts with ``old_prefix`` (keys keep their order among themselves)."""
    if old_prefix == new_prefix:
        raise ValueError("old_prefix and new_prefix must be distinct")
    for key in [k for k in state_dict if k.startswith(old_prefix)]:
        state_dict[new_prefix + key[len(old_prefix):]] = state_dict.pop(key)


class ActivationWrapper(Module):
    """The shared base of the checkpoint and offload wrappers; not meant to be built directly."""

    def __init__(self, mod: Module) -> None:
        super().__init__()
        self._checkpoint_wrapped_module = mod
        self._register_state_dict_hook(self._post_state_dict_hook)
        self.register_load_state_dict_pre_hook(self._pre_load_state_dict_hook)

    def forward(self, *args, **kwargs):
        raise ValueError("Subclasses should implement forward().")

    def __getattr__(self, name: str) -> Any:
        # attributes the wrapper lacks come from the wrapped module (a wrapped block's .weight, .config)
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._checkpoint_wrapped_module, name)

    def __getitem__(self, key: int) -> Any:
        return self._checkpoint_wrapped_module.__getitem__(key)

    def named_parameters(self, *args, **kwargs):
        for name, param in super().named_parameters(*args, **kwargs):
            yield name.replace(_CHECKPOINT_PREFIX, ""), param

    @staticmethod
    def _post_state_dict_hook(module: Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> dict[str, Any]:
        _replace_by_prefix(state_dict, f"{prefix}{_CHECKPOINT_PREFIX}", prefix)
        return state_dict

    @staticmethod
    def _pre_load_state_dict_hook(module: Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        _replace_by_prefix(state_dict, prefix, prefix + _CHECKPOINT_PREFIX)


class OffloadWrapper(ActivationWrapper):
    def forward(self, *args, **kwargs):
        with save_on_cpu(pin_memory=True):
            return self._checkpoint_wrapped_module(*args, **kwargs)


class CheckpointWrapper(ActivationWrapper):
    """Runs the wrapped module through ``checkpoint_fn`` (by default ``utils.checkpoint.checkpoint``)."""

    def __init__(self, mod: Module, checkpoint_impl: CheckpointImpl = CheckpointImpl.NO_REENTRANT,
                 checkpoint_fn=None, **checkpoint_fn_kwargs) -> None:
        super().__init__(mod)
        self.checkpoint_impl = checkpoint_impl
        if checkpoint_fn is None:
            # utils sits a layer above distributed: imported when a wrapper is built, not at import
            from ....utils.checkpoint import checkpoint
            self.checkpoint_fn = partial(checkpoint, use_reentrant=checkpoint_impl == CheckpointImpl.REENTRANT,
                                         **checkpoint_fn_kwargs)
        else:
            self.checkpoint_fn = partial(checkpoint_fn, **checkpoint_fn_kwargs)

    def forward(self, *args, **kwargs):
        if self.checkpoint_impl == CheckpointImpl.REENTRANT and kwargs:
            # the reentrant checkpoint takes positional inputs only: pass the keyword values
            # positionally after the arguments and rebuild the call inside
            keys = tuple(kwargs)
            flat = args + tuple(kwargs.values())

            def run_with_kwargs(*inputs):
                positional = inputs[:len(inputs) - len(keys)]
                named = dict(zip(keys, inputs[len(inputs) - len(keys):]))
                return self._checkpoint_wrapped_module(*positional, **named)

            return self.checkpoint_fn(run_with_kwargs, *flat)
        return self.checkpoint_fn(self._checkpoint_wrapped_module, *args, **kwargs)


def offload_wrapper(module: Module) -> Module:
    """Wrap ``module`` so the activations it saves for backward are kept on the CPU."""
    return OffloadWrapper(module)


def checkpoint_wrapper(module: Module, checkpoint_impl: CheckpointImpl = CheckpointImpl.NO_REENTRANT,
                       checkpoint_fn=None, **checkpoint_fn_kwargs) -> Module:
    """Wrap ``module`` so its forward runs under activation checkpointing."""
    return CheckpointWrapper(module, checkpoint_impl, checkpoint_fn, **checkpoint_fn_kwargs)


def _wrap_children(module: Module, policy, wrapper_fn, only_children: bool) -> tuple[Module, int]:
    """torch's FSDP _recursive_wrap, without ignored modules: children first (post order), then the
    module itself when ``policy(module=, recurse=False, nonwrapped_numel=)`` says so."""
    numel = sum(p.numel() for p in module.parameters())
    if not policy(module=module, recurse=True, nonwrapped_numel=numel):
        return module, 0
    wrapped_numel = 0
    for name, child in list(module.named_children()):
        new_child, child_numel = _wrap_children(child, policy, wrapper_fn, only_children=False)
        setattr(module, name, new_child)
        wrapped_numel += child_numel
    if not only_children and policy(module=module, recurse=False, nonwrapped_numel=numel - wrapped_numel):
        return wrapper_fn(module), numel
    return module, wrapped_numel


def _lambda_policy(module: Module, recurse: bool, nonwrapped_numel: int, lambda_fn) -> bool:
    # torch's lambda_auto_wrap_policy: always descend; wrap where lambda_fn says so
    return True if recurse else lambda_fn(module)


def apply_activation_checkpointing(model: Module, checkpoint_wrapper_fn=checkpoint_wrapper,
                                   check_fn=lambda _: True, auto_wrap_policy=None) -> None:
    """Replace, in place, every submodule of ``model`` (not ``model`` itself) for which ``check_fn``
    (or ``auto_wrap_policy(module, recurse, nonwrapped_numel)``) holds by ``checkpoint_wrapper_fn(submodule)``."""
    policy = auto_wrap_policy if auto_wrap_policy is not None else partial(_lambda_policy, lambda_fn=check_fn)
    if not callable(policy):
        raise ValueError(f"Expected {policy} to be callable or be a pre-defined wrap policy")
    _wrap_children(model, policy, checkpoint_wrapper_fn, only_children=True)
