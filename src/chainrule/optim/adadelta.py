"""Adadelta (torch.optim.Adadelta): a step sized by the ratio of running RMS of past updates to
running RMS of gradients, so no learning-rate tuning is needed (lr scales it, default 1)."""

from __future__ import annotations

import numpy as np

from .._backend import array_module
from .._opmath import fused_addcmul, multiply_by_number
from ..ops.creation import zeros_like
from ..ops.elementwise import fused_scaled_add
from ..tensor import Tensor
from .adam import _as_real, _decayed_as_real
from .optimizer import (
    Optimizer,
    _check_hyper_parameters,
    _params_with_grad,
    _step_tensor,
    _wrapper_gradient,
    in_few_updates,
)

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """torch.optim.Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)."""
    _complex_lr_refusal = "alpha"

    _step_is_tensor = True  # a loaded step number becomes a float32 tensor, as torch's __setstate__
    _foreach_refuses_autograd_unstepped = True
    _sparse_gradient_error = "Adadelta does not support sparse gradients"

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 foreach=None, *, capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_hyper_parameters(self, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group: dict) -> None:
        lr, rho, eps, weight_decay = group["lr"], group["rho"], group["eps"], group["weight_decay"]
        numbers = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=group["maximize"],
                       foreach=group.get("foreach"))
        rows, stepped = [], []
        for p in _params_with_grad(group):
            w = p._data
            xp = array_module(w)
            state = self.state[p]
            if "square_avg" not in state:
                state["step"] = Tensor._make(np.zeros((), dtype=np.float32))
                state["square_avg"] = Tensor._make(xp.zeros_like(w))
                state["acc_delta"] = Tensor._make(xp.zeros_like(w))
            _step_tensor(state)
            rows.append((numbers, (w, p.grad._data, state["square_avg"]._data, state["acc_delta"]._data)))
            stepped.append(p)
        in_few_updates(_update, rows, written=(0, 2, 3))
        for p in stepped:
            p._bump_version()

    def _step_wrapper(self, p: Tensor, group: dict) -> None:
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        state = self.state[p]
        if "square_avg" not in state:
            state["step"] = Tensor._make(np.zeros((), dtype=np.float32))
            state.update(square_avg=zeros_like(p), acc_delta=zeros_like(p))
        _step_tensor(state)
        grad = _wrapper_gradient(p, group)
        state["square_avg"].mul_(rho).addcmul_(grad, grad, value=1 - rho)
        std = state["square_avg"].add(eps).sqrt_()
        delta = state["acc_delta"].add(eps).sqrt_().div_(std).mul_(grad)
        state["acc_delta"].mul_(rho).addcmul_(delta, delta, value=1 - rho)
        p.add_(delta, alpha=-lr)


def _update(w, g, square_avg, acc_delta, *, lr, rho, eps, weight_decay, maximize, foreach) -> None:
    """One Adadelta step of the arrays in place, elementwise."""
    xp = array_module(w)
    if maximize:
        g = -g
    # a complex parameter as real pairs, as torch: each part gets its own running averages
    w, g = _decayed_as_real(w, g, weight_decay, foreach)
    square_avg, acc_delta = _as_real(square_avg), _as_real(acc_delta)
    # E[g^2] = rho E[g^2] + (1 - rho) g^2; delta = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) g, in
    # torch's order with its roundings (float32 addcmul and add(alpha=) one fused multiply-add each)
    multiply_by_number(square_avg, rho, out=square_avg)
    fused_addcmul(square_avg, g, g, 1 - rho, out=square_avg)
    delta = xp.sqrt(acc_delta + eps)
    delta /= xp.sqrt(square_avg + eps)
    delta *= g
    multiply_by_number(acc_delta, rho, out=acc_delta)
    fused_addcmul(acc_delta, delta, delta, 1 - rho, out=acc_delta)
    fused_scaled_add(w, delta, w.dtype.type(-lr), out=w)
