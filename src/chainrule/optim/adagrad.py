"""Adagrad (torch.optim.Adagrad)."""

from __future__ import annotations

import numpy as np

from .._backend import array_module
from .._opmath import add_number, fused_addcdiv, fused_addcmul
from ..ops.creation import full_like
from ..tensor import Tensor
from .adam import _as_real, _decayed_as_real
from .optimizer import (
    Optimizer,
    _check_hyper_parameters,
    _params_with_grad,
    _step_tensor,
    _wrapper_gradient,
    holds_values_inside,
    in_few_updates,
)

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """torch.optim.Adagrad: ``sum += g^2``; step ``lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps)``."""
    _complex_lr_refusal = "overflow"

    _step_is_tensor = True  # a loaded step number becomes a float32 tensor, as torch's __setstate__
    _foreach_refuses_autograd_unstepped = True

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach=None, *,
                 maximize: bool = False, differentiable: bool = False, fused=None) -> None:
        _check_hyper_parameters(self, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                initial_accumulator_value=initial_accumulator_value, eps=eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        if any(p.is_sparse for group in self.param_groups for p in group["params"]):
            # torch's words: its full_like(p, memory_format=preserve_format) for the sum refuses a sparse p
            raise RuntimeError("memory format option is only supported by strided tensors")
        # every sum starts at the constructor's value, as torch's: a group's own initial_accumulator_value
        # is kept in the group but not read
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = Tensor._make(np.zeros((), dtype=np.float32))
                state["sum"] = full_like(p, initial_accumulator_value) if holds_values_inside(p) \
                    else _initial_sum(p._data, initial_accumulator_value)

    def _step_group(self, group: dict) -> None:
        lr, lr_decay, eps, weight_decay = group["lr"], group["lr_decay"], group["eps"], group["weight_decay"]
        maximize, foreach = group["maximize"], group.get("foreach")
        numbers_for: dict = {}  # step: the update's numbers, one dict for each
        rows, stepped = [], []
        if weight_decay != 0 and any(p.grad.is_sparse for p in _params_with_grad(group)):
            raise RuntimeError("weight_decay option is not compatible with sparse gradients")
        for p in _params_with_grad(group):
            w = p._data
            g = p.grad._data
            state = self.state[p]
            if "sum" not in state:  # a parameter added with add_param_group
                state["sum"] = _initial_sum(w, group["initial_accumulator_value"])
            step = _step_tensor(state)
            numbers = numbers_for.get(step)
            if numbers is None:
                numbers = numbers_for[step] = dict(clr=lr / (1 + (step - 1) * lr_decay), eps=eps,
                                                   weight_decay=weight_decay, maximize=maximize, foreach=foreach)
            rows.append((numbers, (w, g, state["sum"]._data)))
            stepped.append(p)
        in_few_updates(_update, rows, written=(0, 2))
        for p in stepped:
            p._bump_version()

    def _step_wrapper(self, p: Tensor, group: dict) -> None:
        state = self.state[p]
        if "sum" not in state:  # a parameter added with add_param_group
            state["sum"] = full_like(p, group["initial_accumulator_value"])
        step = _step_tensor(state)
        grad = _wrapper_gradient(p, group)
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        state["sum"].addcmul_(grad, grad, value=1)
        p.addcdiv_(grad, state["sum"].sqrt().add_(group["eps"]), value=-clr)


def _update(w, g, state_sum, *, clr, eps, weight_decay, maximize, foreach) -> None:
    """One Adagrad step of the arrays in place, elementwise: torch's ops in its order, each rounded
    as its CPU kernel (float32: add(alpha=) and addcmul one fused multiply-add each; addcdiv's
    (value·g) / std, then the sum)."""
    xp = array_module(w)
    if maximize:
        g = -g
    w, g = _decayed_as_real(w, g, weight_decay, foreach)  # a complex parameter as real pairs
    state_sum = _as_real(state_sum)
    fused_addcmul(state_sum, g, g, 1, out=state_sum)
    std = add_number(xp.sqrt(state_sum), eps)
    fused_addcdiv(w, g, std, -clr, out=w)


def _initial_sum(w, initial_accumulator_value) -> Tensor:
    """The accumulator's start, shaped like ``w``; a complex parameter's holds the value in both parts
    (torch's complex(v, v): the real pairs of a complex parameter each start at v)."""
    value = complex(initial_accumulator_value, initial_accumulator_value) if w.dtype.kind == "c" \
        else initial_accumulator_value
    return Tensor._make(array_module(w).full_like(w, value))
