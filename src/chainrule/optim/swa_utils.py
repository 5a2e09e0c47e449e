"""Weight averaging (torch.optim.swa_utils): stochastic weight averaging (SWA) and exponential
moving averages (EMA) of a model's weights, the SWA learning-rate schedule, and the pass that
recomputes BatchNorm statistics for the averaged weights.

Averaging runs on the weights' arrays under ``no_grad``: the averaged model is a copy that
training never differentiates through.
"""

from __future__ import annotations

import itertools
import math
from copy import deepcopy

from .._dtype import int64
from ..autograd.grad_mode import no_grad
from ..nn.modules.module import Module
from ..nn.modules.normalization import _BatchNorm
from ..ops.creation import tensor as _make_tensor
from ..ops.foreach import _foreach_add_, _foreach_addcdiv_, _foreach_lerp_, _foreach_sub
from ..tensor import Tensor
from .lr_scheduler import LRScheduler, _format_param, _warn_unless_stepping
from .optimizer import Optimizer

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn",
           "get_ema_avg_fn", "get_swa_avg_fn"]


def get_ema_avg_fn(decay: float = 0.999):
    """One parameter's EMA update: ``decay * ema + (1 - decay) * current``."""
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """One parameter's running mean: ``avg + (current - avg) / (n + 1)``."""
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


def _floating_or_complex(tensors) -> bool:
    return tensors[0].is_floating_point() or tensors[0].is_complex()


def get_ema_multi_avg_fn(decay: float = 0.999):
    """The EMA update over a list of parameters of one dtype (AveragedModel groups them), in place:
    a lerp towards the current for floating lists, ``ema * decay + current * (1 - decay)`` copied
    back (truncated) for integer ones."""
    def ema_update(ema_param_list, current_param_list, _num_averaged):
        if _floating_or_complex(ema_param_list):
            _foreach_lerp_(ema_param_list, current_param_list, 1 - decay)
        else:
            for ema, current in zip(ema_param_list, current_param_list):
                ema.copy_(ema * decay + current * (1 - decay))
    return ema_update


def get_swa_multi_avg_fn():
    """The running mean over a list of parameters of one dtype, in place. An integer list (BatchNorm's
    batch count under ``use_buffers=True``) takes torch's route, addcdiv by ``n + 1`` (a tensor), which
    torch refuses for integers with its RuntimeError."""
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        if _floating_or_complex(averaged_param_list):
            _foreach_lerp_(averaged_param_list, current_param_list, 1 / (num_averaged + 1))
            return
        diffs = _foreach_sub(current_param_list, averaged_param_list)
        if isinstance(num_averaged, Tensor):
            _foreach_addcdiv_(averaged_param_list, diffs, [num_averaged + 1] * len(averaged_param_list))
        else:
            _foreach_add_(averaged_param_list, diffs, alpha=1.0 / (num_averaged + 1))
    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose weights are the average of the weights it is shown by
    ``update_parameters(model)``: the running mean (SWA) by default, or ``avg_fn`` /
    ``multi_avg_fn`` (e.g. ``get_ema_multi_avg_fn(0.999)`` for an EMA). ``use_buffers=True``
    averages the buffers too; otherwise they are copied from ``model``."""

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None, use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", _make_tensor(0, dtype=int64, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _averaged(self, module: Module):
        if self.use_buffers:
            return itertools.chain(module.parameters(), module.buffers())
        return module.parameters()

    @no_grad()
    def update_parameters(self, model: Module) -> None:
        averaged_params, model_params = [], []
        first = int(self.n_averaged.item()) == 0
        for averaged, current in zip(self._averaged(self.module), self._averaged(model)):
            current = current.detach().to(averaged.device)
            averaged_params.append(averaged.detach())
            model_params.append(current)
            if first:
                averaged.detach().copy_(current)
        if not first:
            if self.multi_avg_fn is not None:
                # one call per (device, dtype) group, as torch's, so a list never mixes dtypes
                groups: dict = {}
                for averaged, current in zip(averaged_params, model_params):
                    pair = groups.setdefault((averaged.device, averaged.dtype), ([], []))
                    pair[0].append(averaged)
                    pair[1].append(current)
                for (device, _), (averaged_group, current_group) in groups.items():
                    self.multi_avg_fn(averaged_group, current_group, self.n_averaged.to(device))
            else:
                # one parameter at a time, as torch averages on the CPU (its multi-tensor kernels are GPU-only)
                average = self.avg_fn or get_swa_avg_fn()
                for averaged, current in zip(averaged_params, model_params):
                    averaged.copy_(average(averaged, current, self.n_averaged.to(averaged.device)))
        if not self.use_buffers:
            # the buffers (BatchNorm's statistics) follow the model; update_bn recomputes them
            for mine, theirs in zip(self.module.buffers(), model.buffers()):
                mine.detach().copy_(theirs.detach().to(mine.device))
        self.n_averaged += 1


@no_grad()
def update_bn(loader, model: Module, device=None) -> None:
    """Recompute the BatchNorm running statistics of ``model`` with one pass over ``loader``
    (the averaged weights never produced the statistics they hold). Batches may be tensors or
    (input, target, ...) tuples; the first element is the input."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None  # a cumulative average over the whole pass
    for batch in loader:
        if isinstance(batch, (list, tuple)):
            batch = batch[0]
        if device is not None:
            batch = batch.to(device)
        model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to its ``swa_lr`` over ``anneal_epochs`` epochs (cosine or linear),
    then hold it: the schedule used while the SWA average is collected."""

    def __init__(self, optimizer: Optimizer, swa_lr, anneal_epochs: int = 10, anneal_strategy: str = "cos",
                 last_epoch: int = -1) -> None:
        for value, group in zip(_format_param("SWALR", "swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = value
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        # the strategy's name is the state (torch's key): a function does not go into a state dict
        self._anneal_strategy = anneal_strategy
        self.anneal_func = _cosine_anneal if anneal_strategy == "cos" else _linear_anneal

    def get_lr(self) -> list:
        _warn_unless_stepping(self)
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        span = max(1, self.anneal_epochs)
        # the lr the schedule started from, recovered from the previous step's mix
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / span)))
        starts = [_initial_lr(group["lr"], group["swa_lr"], prev_alpha) for group in self.optimizer.param_groups]
        alpha = self.anneal_func(max(0, min(1, step / span)))
        return [group["swa_lr"] * alpha + start * (1 - alpha)
                for group, start in zip(self.optimizer.param_groups, starts)]

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.pop("anneal_func", None)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._set_anneal_func(self._anneal_strategy)


def _linear_anneal(t: float) -> float:
    return t


def _cosine_anneal(t: float) -> float:
    return (1 - math.cos(math.pi * t)) / 2


def _initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
    if alpha == 1:
        return swa_lr
    return (lr - alpha * swa_lr) / (1 - alpha)
