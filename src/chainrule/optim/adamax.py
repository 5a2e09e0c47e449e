"""Adamax (torch.optim.Adamax): Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from .._backend import array_module
from .._opmath import add_number, fused_addcdiv, fused_lerp, multiply_by_number
from ..ops.creation import zeros_like
from ..ops.elementwise import maximum
from ..tensor import Tensor
from .adam import _as_real, _decayed_as_real
from .optimizer import (
    Optimizer,
    _check_adam_args,
    _foreach_step_lr,
    _params_with_grad,
    _step_tensor,
    _wrapper_gradient,
    _zero_state,
    in_few_updates,
)

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """torch.optim.Adamax(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)."""
    _complex_lr_refusal = "overflow"

    _step_is_tensor = True  # a loaded step number becomes a float32 tensor, as torch's __setstate__
    _foreach_refuses_autograd_unstepped = True
    _sparse_gradient_error = "Adamax does not support sparse gradients"

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach=None, *, maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        _check_adam_args(self, lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _step_group(self, group: dict) -> None:
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        numbers_for: dict = {}  # step: the update's numbers, one dict for each
        rows, stepped = [], []
        for p in _params_with_grad(group):
            w = p._data
            state = self.state[p]
            _zero_state(state, w, "exp_avg", "exp_inf")
            step = _step_tensor(state)
            numbers = numbers_for.get(step)
            if numbers is None:
                foreach = group.get("foreach")
                numbers = numbers_for[step] = dict(beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                                                   maximize=group["maximize"], foreach=foreach,
                                                   step_size=_foreach_step_lr(lr, foreach) / (1 - beta1**step))
            rows.append((numbers, (w, p.grad._data, state["exp_avg"]._data, state["exp_inf"]._data)))
            stepped.append(p)
        in_few_updates(_update, rows, written=(0, 2, 3))
        for p in stepped:
            p._bump_version()

    def _step_wrapper(self, p: Tensor, group: dict) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        state = self.state[p]
        if "exp_avg" not in state:
            state.update(exp_avg=zeros_like(p), exp_inf=zeros_like(p))
        step = _step_tensor(state)
        grad = _wrapper_gradient(p, group)
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_inf"].copy_(maximum(state["exp_inf"].mul_(beta2), grad.abs().add_(eps)))
        p.addcdiv_(state["exp_avg"], state["exp_inf"], value=-lr / (1 - beta1 ** step))


def _update(w, g, exp_avg, exp_inf, *, beta1, beta2, eps, weight_decay, maximize, foreach, step_size) -> None:
    """One Adamax step of the arrays in place, elementwise."""
    xp = array_module(w)
    if maximize:
        g = -g
    w, g = _decayed_as_real(w, g, weight_decay, foreach)  # a complex parameter as real pairs
    exp_avg, exp_inf = _as_real(exp_avg), _as_real(exp_inf)
    # m = lerp(m, g, 1 - beta1); u = max(beta2 u, |g| + eps); rounded as torch's kernels
    fused_lerp(exp_avg, g, 1 - beta1, out=exp_avg)
    xp.maximum(multiply_by_number(exp_inf, beta2), add_number(xp.abs(g), eps), out=exp_inf)
    fused_addcdiv(w, exp_avg, exp_inf, -step_size, out=w)
