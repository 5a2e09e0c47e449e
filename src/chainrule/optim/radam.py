"""RAdam (torch.optim.RAdam): Adam whose adaptive step is switched on, and rectified, only once
the variance of the adaptive learning rate is tractable (SMA length rho_t > 5)."""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_module
from .._opmath import add_number, divide_by_number, fused_addcmul, multiply_by_number
from ..ops.creation import zeros_like
from ..tensor import Tensor
from .adam import _real_moments
from .optimizer import (
    Optimizer,
    _check_adam_args,
    _params_with_grad,
    _step_tensor,
    _wrapper_gradient,
    _zero_state,
    in_few_updates,
)

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """torch.optim.RAdam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    decoupled_weight_decay=False)."""
    _complex_lr_refusal = "cast"

    _step_is_tensor = True  # a loaded step number becomes a float32 tensor, as torch's __setstate__
    _sparse_gradient_error = "RAdam does not support sparse gradients"

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False) -> None:
        _check_adam_args(self, lr, eps, betas, weight_decay, l2_weight_decay=not decoupled_weight_decay)
        # torch's key order (printed by state_dict()): decoupled_weight_decay after capturable
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group: dict) -> None:
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        numbers_for: dict = {}  # step: the update's numbers, one dict for each
        rows, stepped = [], []
        for p in _params_with_grad(group):
            w = p._data
            g = p.grad._data
            state = self.state[p]
            _zero_state(state, w, "exp_avg", "exp_avg_sq")
            step = _step_tensor(state)
            numbers = numbers_for.get(step)
            if numbers is None:
                numbers = numbers_for[step] = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                                                   decoupled=group["decoupled_weight_decay"],
                                                   maximize=group["maximize"], foreach=group.get("foreach"), step=step)
            rows.append((numbers, (w, g, state["exp_avg"]._data, state["exp_avg_sq"]._data)))
            stepped.append(p)
        in_few_updates(_update, rows, written=(0, 2, 3))
        for p in stepped:
            p._bump_version()

    def _step_wrapper(self, p: Tensor, group: dict) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        state = self.state[p]
        if "exp_avg" not in state:
            state.update(exp_avg=zeros_like(p), exp_avg_sq=zeros_like(p))
        step = _step_tensor(state)
        grad = _wrapper_gradient(p, group, decoupled=group["decoupled_weight_decay"])
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction2 = 1 - beta2 ** step
        corrected_exp_avg = state["exp_avg"] / (1 - beta1 ** step)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            adaptive_lr = bias_correction2 ** 0.5 / state["exp_avg_sq"].sqrt().add_(eps)
            p.add_(corrected_exp_avg * lr * adaptive_lr * rect, alpha=-1.0)
        else:
            p.add_(corrected_exp_avg * lr, alpha=-1.0)



def _update(w, g, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, foreach,
            step) -> None:
    """One RAdam step of the arrays in place, elementwise."""
    xp = array_module(w)
    # a complex parameter as real pairs, rounded as torch's kernels (float32 add(alpha=), lerp and
    # addcmul one fused multiply-add each)
    w, g, exp_avg, exp_avg_sq = _real_moments(w, g, exp_avg, exp_avg_sq, lr=lr, beta1=beta1, beta2=beta2,
                                              weight_decay=weight_decay, decoupled=decoupled, maximize=maximize)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    # length of the approximated simple moving average, and its limit
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) \
        if rho_t > 5.0 else 0.0
    if foreach:
        _multi_tensor_update(w, exp_avg, exp_avg_sq, lr, eps, rect, bias_correction1, bias_correction2)
    elif rect > 0:
        # torch's number / tensor is the tensor's reciprocal times the number
        # (each product by a number in float32 for float16/bfloat16, as torch's opmath)
        adaptive_lr = multiply_by_number(1 / add_number(xp.sqrt(exp_avg_sq), eps), math.sqrt(bias_correction2))
        corrected_lr = multiply_by_number(divide_by_number(exp_avg, bias_correction1), lr)
        w -= multiply_by_number(corrected_lr * adaptive_lr, rect)
    else:
        w -= multiply_by_number(divide_by_number(exp_avg, bias_correction1), lr)


def _multi_tensor_update(w, exp_avg, exp_avg_sq, lr: float, eps: float, rect: float, bias_correction1: float,
                         bias_correction2: float) -> None:
    """torch's foreach RAdam step, as its float32 kernels round it: w += m · (1 / ((sqrt(v) + eps) / a) + b)
    (one fused multiply-add) with a = -sqrt(bias_correction2)·lr·rect/bias_correction1 and b the
    unrectified step -lr/bias_correction1, which is 0 once rectified (a 0 makes 1/(x / -0) = -0)."""
    xp = array_module(w)
    unrectified = 0 if rect > 0 else 1.0
    buffer = add_number(xp.sqrt(exp_avg_sq), eps)
    with np.errstate(divide="ignore", invalid="ignore"):  # (torch's inf and nan, unwarned)
        buffer = 1 / divide_by_number(buffer, (bias_correction2 ** 0.5) * (lr * rect / bias_correction1) * -1)
    buffer = add_number(buffer, (lr * unrectified / bias_correction1) * -1)
    fused_addcmul(w, exp_avg, buffer, 1, out=w)
