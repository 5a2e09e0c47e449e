"""Model averagers (torch.distributed.algorithms.model_averaging.averagers): call
``average_parameters`` after every ``optimizer.step()`` of local SGD."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable

from ... import distributed_c10d as c10d
from . import utils

__all__ = ["ModelAverager", "PeriodicModelAverager"]


class ModelAverager(ABC):
    """Base of the averagers: ``process_group`` (the world when None) and a ``step`` counter."""

    def __init__(self, process_group=None) -> None:
        self.process_group = process_group if process_group is not None else c10d.group.WORLD
        if self.process_group is None:  # torch's type and words, then why
            raise TypeError("Invariant encountered: value was None when it should not be (ModelAverager: no "
                            "process_group given and the default one is not initialized; call init_process_group)")
        self.step = 0

    @abstractmethod
    def average_parameters(self, params: Iterable) -> None:
        """Average ``params`` (parameters or optimizer parameter groups) if this step calls for it."""


class PeriodicModelAverager(ModelAverager):
    """Average the parameters every ``period`` steps once ``warmup_steps`` steps have passed
    (torch's post-local SGD: during warm-up DDP averages gradients instead)."""

    def __init__(self, period: int, warmup_steps: int = 0, process_group=None) -> None:
        super().__init__(process_group)
        if warmup_steps < 0:
            raise ValueError("Arg ``warmup_steps`` must be a non-negative number.")
        self.warmup_steps = warmup_steps
        if period < 1:
            raise ValueError("Arg ``period`` must be a positive value.")
        if period == 1:
            warnings.warn("When period is 1, no need to use model averaging because the communication cost of "
                          "all-reducing parameters will be no less than the cost of all-reducing gradients by "
                          "DistributedDataParallel in the backward pass. Therefore, only DistributedDataParallel "
                          "should be used for this case.", stacklevel=2)
        self.period = period

    def average_parameters(self, params: Iterable) -> None:
        if self.step >= self.warmup_steps and (self.step - self.warmup_steps) % self.period == 0:
            utils.average_parameters_or_parameter_groups(params, self.process_group)
        self.step += 1
