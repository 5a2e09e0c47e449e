"""chainrule.distributed.fsdp: torch's FSDP names, for code that checks whether a model is wrapped.

transformers' ``generate`` asks ``isinstance(model, FullyShardedDataParallel)`` on every call.
chainrule shards no parameters, so nothing is an FSDP module: the wrappers refuse as torch's do
on a machine without an accelerator (FullyShardedDataParallel) or without a process group
(fully_shard), and the option enums carry torch's members and values.
"""

from __future__ import annotations

import dataclasses
import enum

from ...nn.modules.module import Module
from ..device_mesh import _ensure_process_group

__all__ = ["FullyShardedDataParallel", "FSDPModule", "fully_shard", "register_fsdp_forward_method",
           "ShardingStrategy", "BackwardPrefetch", "StateDictType", "MixedPrecisionPolicy", "OffloadPolicy",
           "CPUOffloadPolicy"]


@dataclasses.dataclass(frozen=True)
class MixedPrecisionPolicy:
    """fully_shard's mixed-precision settings (torch's fields and defaults); opacus imports it at load."""

    param_dtype: object = None
    reduce_dtype: object = None
    output_dtype: object = None
    cast_forward_inputs: bool = True


@dataclasses.dataclass
class OffloadPolicy:
    """fully_shard's default: no offloading."""


@dataclasses.dataclass
class CPUOffloadPolicy(OffloadPolicy):
    pin_memory: bool = True


class ShardingStrategy(enum.Enum):
    FULL_SHARD = 1
    SHARD_GRAD_OP = 2
    NO_SHARD = 3
    HYBRID_SHARD = 4
    _HYBRID_SHARD_ZERO2 = 5


class BackwardPrefetch(enum.Enum):
    BACKWARD_PRE = 1
    BACKWARD_POST = 2


class StateDictType(enum.Enum):
    FULL_STATE_DICT = 1
    LOCAL_STATE_DICT = 2
    SHARDED_STATE_DICT = 3


class FullyShardedDataParallel(Module):
    """torch's FSDP wrapper; it needs an accelerator, which chainrule's FSDP never has."""

    def __init__(self, module, process_group=None, sharding_strategy=None, cpu_offload=None, auto_wrap_policy=None,
                 backward_prefetch=BackwardPrefetch.BACKWARD_PRE, mixed_precision=None, ignored_modules=None,
                 param_init_fn=None, device_id=None, sync_module_states: bool = False, forward_prefetch: bool = False,
                 limit_all_gathers: bool = True, use_orig_params: bool = False, ignored_states=None,
                 device_mesh=None) -> None:
        raise RuntimeError("FSDP needs a non-CPU accelerator device, but no accelerator device is detected.")


class FSDPModule:
    """The class ``fully_shard`` mixes into a module in torch; no chainrule module is one."""


def fully_shard(module, *, mesh=None, reshard_after_forward=None, shard_placement_fn=None, mp_policy=None,
                offload_policy=None, ignored_params=None):
    _ensure_process_group()
    raise NotImplementedError("fully_shard: chainrule has no sharded (DTensor) parameters; run FSDP code on torch")


def register_fsdp_forward_method(module, method_name: str) -> None:
    """A no-op for a module that is not an FSDPModule, as in torch (and none is here)."""
    if isinstance(module, FSDPModule):
        raise NotImplementedError("register_fsdp_forward_method: chainrule has no FSDP modules")
