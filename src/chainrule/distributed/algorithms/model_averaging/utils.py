"""Averaging parameters over a process group (torch.distributed.algorithms.model_averaging.utils)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from ....autograd.grad_mode import no_grad
from ....nn.parameter import Parameter
from ....ops.shape import cat
from ... import distributed_c10d as c10d

__all__ = ["average_parameters", "average_parameters_or_parameter_groups", "get_params_to_average"]


def average_parameters(params: Iterator, process_group=None) -> None:
    """Replace each parameter by its mean over ``process_group`` (the world when None), in one
    all-reduce of all of them packed flat; a rank outside the group does nothing."""
    group_to_use = process_group if process_group is not None else c10d.group.WORLD
    if group_to_use is c10d.GroupMember.NON_GROUP_MEMBER:
        return
    to_pack, to_fill = itertools.tee(params)
    flat = cat([p.detach().reshape(-1) for p in to_pack])
    # divide before summing, as torch does (a float16 sum can overflow where the mean would not)
    flat /= c10d.get_world_size(group_to_use)
    c10d.all_reduce(flat, group=group_to_use)
    offset = 0
    with no_grad():
        for p in to_fill:
            p.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()


def get_params_to_average(params: Iterable) -> list:
    """The parameters that have a gradient, from parameters or optimizer parameter groups (dicts
    with "params"); torch's NotImplementedError for anything else."""
    chosen = []
    for param in params:
        if isinstance(param, Parameter):
            members = [param]
        elif isinstance(param, dict):
            members = param["params"]
        else:
            raise NotImplementedError(f"Parameter input of type {type(param)} is not supported")
        chosen.extend(p for p in members if p.grad is not None)
    return chosen


def average_parameters_or_parameter_groups(params: Iterable, process_group) -> None:
    """``average_parameters`` over those of ``params`` (parameters or parameter groups) that have
    a gradient."""
    average_parameters(iter(get_params_to_average(params)), process_group)
