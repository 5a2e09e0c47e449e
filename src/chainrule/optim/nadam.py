"""NAdam (torch.optim.NAdam): Adam with Nesterov momentum and a warming momentum schedule."""

from __future__ import annotations

import numpy as np

from .._backend import array_module
from .._opmath import (
    add_number,
    divide_by_number,
    fused_addcdiv,
)
from ..ops.creation import zeros_like
from ..tensor import Tensor
from .adam import _real_moments
from .optimizer import (
    Optimizer,
    _check_adam_args,
    _check_hyper_parameters,
    _foreach_step_lr,
    _params_with_grad,
    _step_tensor,
    _wrapper_gradient,
    in_few_updates,
)

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """torch.optim.NAdam(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    momentum_decay=4e-3, decoupled_weight_decay=False)."""
    _complex_lr_refusal = "overflow"

    _step_is_tensor = True  # a loaded step number becomes a float32 tensor, as torch's __setstate__
    _sparse_gradient_error = "NAdam does not support sparse gradients"

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False,
                 *, foreach=None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        _check_adam_args(self, lr, eps, betas, weight_decay, l2_weight_decay=not decoupled_weight_decay)
        _check_hyper_parameters(self, momentum_decay=momentum_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group: dict) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, momentum_decay = group["weight_decay"], group["momentum_decay"]
        numbers_for: dict = {}  # (step, mu_product's dtype and bytes): the update's numbers, one dict for each
        rows, stepped = [], []
        for p in _params_with_grad(group):
            w = p._data
            xp = array_module(w)
            g = p.grad._data
            state = self.state[p]
            if "exp_avg" not in state:
                state["step"] = Tensor._make(np.zeros((), dtype=np.float32))
                # a float32 0-d tensor in torch, so the product rounds in float32 there too
                state["mu_product"] = Tensor._make(np.ones((), dtype=np.float32))
                state["exp_avg"] = Tensor._make(xp.zeros_like(w))
                state["exp_avg_sq"] = Tensor._make(xp.zeros_like(w))
            step = _step_tensor(state)
            # momentum schedule mu_t = beta1 (1 - 0.96^(t psi) / 2), and its next value
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
            mu_product = state["mu_product"]._data
            mu_product *= mu
            # parameters whose step and mu_product (dtype and bits) agree share one update's numbers
            key = (step, mu_product.dtype, mu_product.tobytes())
            numbers = numbers_for.get(key)
            if numbers is None:
                numbers = numbers_for[key] = dict(
                    lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                    decoupled=group["decoupled_weight_decay"], maximize=group["maximize"],
                    foreach=group.get("foreach"), differentiable=group.get("differentiable"), step=step, mu=mu,
                    mu_next=mu_next, mu_product=mu_product)
            rows.append((numbers, (w, g, state["exp_avg"]._data, state["exp_avg_sq"]._data)))
            stepped.append(p)
        in_few_updates(_update, rows, written=(0, 2, 3))
        for p in stepped:
            p._bump_version()

    def _step_wrapper(self, p: Tensor, group: dict) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        momentum_decay = group["momentum_decay"]
        state = self.state[p]
        if "exp_avg" not in state:
            state["step"] = Tensor._make(np.zeros((), dtype=np.float32))
            state["mu_product"] = Tensor._make(np.ones((), dtype=np.float32))
            state.update(exp_avg=zeros_like(p), exp_avg_sq=zeros_like(p))
        step = _step_tensor(state)
        grad = _wrapper_gradient(p, group, decoupled=group["decoupled_weight_decay"])
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        state["mu_product"].mul_(mu)
        mu_product = float(state["mu_product"])
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = state["exp_avg_sq"].div(1 - beta2 ** step).sqrt().add_(eps)
        p.addcdiv_(grad, denom, value=-lr * (1.0 - mu) / (1.0 - mu_product))
        p.addcdiv_(state["exp_avg"], denom, value=-lr * mu_next / (1.0 - mu_product * mu_next))


def _update(w, g, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, foreach,
            differentiable, step, mu, mu_next, mu_product) -> None:
    """One NAdam step of the arrays in place, elementwise (``mu_product`` already multiplied by ``mu``)."""
    xp = array_module(w)
    # a complex parameter as real pairs, rounded as torch's kernels (float32 add(alpha=), lerp and
    # addcmul one fused multiply-add each)
    w, g, exp_avg, exp_avg_sq = _real_moments(w, g, exp_avg, exp_avg_sq, lr=lr, beta1=beta1, beta2=beta2,
                                              weight_decay=weight_decay, decoupled=decoupled, maximize=maximize)
    if foreach and not differentiable:
        # torch's foreach step divides the square root by the bias correction's square root
        denom = divide_by_number(xp.sqrt(exp_avg_sq), (1 - beta2**step) ** 0.5)
    else:  # its for-loop takes the root of the corrected second moment
        denom = xp.sqrt(divide_by_number(exp_avg_sq, 1 - beta2**step))
    denom = add_number(denom, eps)
    # the gradient's share and the (Nesterov) momentum's share of the step, each (value * t) / denom
    # in that order as torch's addcdiv computes it (the same rounding, and the same overflow)
    if differentiable:
        # torch's differentiable step scales by 0-d tensors of mu_product's dtype (float32, or
        # the parameter's once loaded); a number divided by a tensor is its reciprocal times it
        scalar = mu_product.dtype.type
        one = scalar(1)
        grad_scale = (one / (one - mu_product)) * scalar(-lr * (1.0 - mu))
        momentum_scale = (one / (one - mu_product * scalar(mu_next))) * scalar(-lr * mu_next)
        w += g * grad_scale.astype(w.dtype) / denom
        w += exp_avg * momentum_scale.astype(w.dtype) / denom
    else:
        lr = _foreach_step_lr(lr, foreach)
        fused_addcdiv(w, g, denom, -lr * (1.0 - mu) / (1.0 - float(mu_product)), out=w)
        fused_addcdiv(w, exp_avg, denom, (-lr * mu_next) / (1.0 - float(mu_product) * mu_next), out=w)
