"""RMSprop (torch.optim.RMSprop), optionally centered and with momentum."""

from __future__ import annotations

import numpy as np

from .._backend import array_module
from .._opmath import add_number, fused_addcdiv, fused_addcmul, fused_lerp, multiply_by_number
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

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """torch.optim.RMSprop: ``v = alpha v + (1 - alpha) g^2``; step ``g / (sqrt(v [- mean^2]) + eps)``."""
    _complex_lr_refusal = "overflow"

    _step_is_tensor = True  # a loaded step number becomes a float32 tensor, as torch's __setstate__
    _sparse_gradient_error = "RMSprop does not support sparse gradients"

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach=None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_hyper_parameters(self, lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group: dict) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        weight_decay, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
        numbers = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                       maximize=group["maximize"], foreach=group.get("foreach"))
        rows, stepped = [], []
        for p in _params_with_grad(group):
            w = p._data
            xp = array_module(w)
            state = self.state[p]
            if "square_avg" not in state:
                state["step"] = Tensor._make(np.zeros((), dtype=np.float32))
                state["square_avg"] = Tensor._make(xp.zeros_like(w))
                if momentum > 0:
                    state["momentum_buffer"] = Tensor._make(xp.zeros_like(w))
                if centered:
                    state["grad_avg"] = Tensor._make(xp.zeros_like(w))
            _step_tensor(state)
            optional = (state["grad_avg"]._data if centered else None,
                        state["momentum_buffer"]._data if momentum > 0 else None)
            rows.append((numbers, (w, p.grad._data, state["square_avg"]._data, *optional)))
            stepped.append(p)
        in_few_updates(_update, rows, written=(0, 2, 3, 4))
        for p in stepped:
            p._bump_version()

    def _step_wrapper(self, p: Tensor, group: dict) -> None:
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        state = self.state[p]
        if "square_avg" not in state:
            state["step"] = Tensor._make(np.zeros((), dtype=np.float32))
            names = ["square_avg"] + ["momentum_buffer"] * (momentum > 0) + ["grad_avg"] * group["centered"]
            state.update({name: zeros_like(p) for name in names})
        _step_tensor(state)
        grad = _wrapper_gradient(p, group)
        state["square_avg"].mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            state["grad_avg"].lerp_(grad, 1 - alpha)
            avg = state["square_avg"].addcmul(state["grad_avg"], state["grad_avg"], value=-1).sqrt_()
        else:
            avg = state["square_avg"].sqrt()
        avg = avg.add_(eps)
        if momentum > 0:
            state["momentum_buffer"].mul_(momentum).addcdiv_(grad, avg)
            p.add_(state["momentum_buffer"], alpha=-lr)
        else:
            p.addcdiv_(grad, avg, value=-lr)


def _update(w, g, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps, weight_decay, momentum, maximize,
            foreach) -> None:
    """One RMSprop step of the arrays in place, elementwise: torch's ops in its order (the same in
    its for-loop and foreach steps), each rounded as its CPU kernel (float32 add(alpha=), addcmul
    and lerp one fused multiply-add each). ``grad_avg`` (centered) and ``momentum_buffer`` may be None."""
    xp = array_module(w)
    if maximize:
        g = -g
    w, g = _decayed_as_real(w, g, weight_decay, foreach)  # a complex parameter as real pairs
    square_avg = _as_real(square_avg)
    multiply_by_number(square_avg, alpha, out=square_avg)
    fused_addcmul(square_avg, g, g, 1 - alpha, out=square_avg)
    if grad_avg is not None:
        grad_avg = _as_real(grad_avg)
        fused_lerp(grad_avg, g, 1 - alpha, out=grad_avg)
        avg = xp.sqrt(fused_addcmul(square_avg, grad_avg, grad_avg, -1))
    else:
        avg = xp.sqrt(square_avg)
    avg = add_number(avg, eps)
    if momentum_buffer is not None:
        buf = _as_real(momentum_buffer)
        multiply_by_number(buf, momentum, out=buf)
        fused_addcdiv(buf, g, avg, 1, out=buf)
        fused_scaled_add(w, buf, w.dtype.type(-lr), out=w)
    else:
        fused_addcdiv(w, g, avg, -lr, out=w)
