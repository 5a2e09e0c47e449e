"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (torch.optim.SGD)."""

from __future__ import annotations

import numpy as np

from .._backend import array_module
from ..ops.elementwise import fused_scaled_add
from ..tensor import Tensor
from .optimizer import (
    Optimizer,
    _check_fused_flags,
    _check_hyper_parameters,
    _params_with_grad,
    _wrapper_gradient,
    in_blocks,
    in_few_updates,
)

__all__ = ["SGD"]


class SGD(Optimizer):
    """torch.optim.SGD; the momentum buffer starts as the first gradient, as torch's."""
    _complex_lr_refusal = "alpha"
    _foreach_refuses_autograd = False  # (its foreach step meets the leaf's in-place refusal instead)

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach=None, differentiable: bool = False, fused=None) -> None:
        _check_hyper_parameters(self, only_below=True, lr=lr, momentum=momentum, weight_decay=weight_decay)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        _check_fused_flags(fused, foreach, differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group: dict) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        params = list(_params_with_grad(group))
        if weight_decay != 0 and any(p.grad.is_sparse for p in params):  # torch's grad.add(param, alpha=) refuses it
            raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead.")
        if not params:
            return
        numbers = dict(lr=float(-lr), momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                       nesterov=nesterov, maximize=maximize)  # -lr first: torch's TypeError for a str lr
        buffers = [self.state[p].get("momentum_buffer") if momentum != 0 else None for p in params]
        if momentum != 0 and any(buf is None for buf in buffers):
            # a first step (whole arrays): a new buffer starts as the gradient. One parameter after
            # the other, as the others' updates then run in their order too
            for p, buf in zip(params, buffers):
                if buf is None:
                    self.state[p]["momentum_buffer"] = Tensor._make(_update(p._data, p.grad._data, None, **numbers))
                else:
                    in_blocks(_update, (p._data, p.grad._data, buf._data), **numbers)
        else:
            in_few_updates(_update, [(numbers, (p._data, p.grad._data, None if buf is None else buf._data))
                                     for p, buf in zip(params, buffers)], written=(0, 2))
        for p in params:
            p._bump_version()

    def _step_wrapper(self, p: Tensor, group: dict) -> None:
        """torch's single-tensor SGD step in tensor ops, for a wrapper subclass parameter (its handler
        runs each op on the values it holds)."""
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        grad = _wrapper_gradient(p, group)
        if momentum != 0:
            state = self.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone().detach()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
        p.add_(grad, alpha=-lr)


def _update(w, g, momentum_buffer, *, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """One SGD step of the arrays in place, elementwise. With momentum and no ``momentum_buffer``
    yet (the first step), the new buffer (a copy of the gradient) is returned."""
    xp = array_module(w)  # (a device array's GPU becomes the current one, for the math below)
    if maximize:
        g = -g
    # each ``x + alpha * y`` as torch's add(..., alpha=) computes it: rounded once in float32
    scalar = w.dtype.type
    if weight_decay != 0:
        g = fused_scaled_add(g, w, scalar(weight_decay))
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = xp.array(g, dtype=w.dtype, copy=True)
        else:
            b = momentum_buffer
            if b.dtype.itemsize == 2 and b.dtype.kind in "fV":
                # torch's bfloat16/float16 mul_ takes momentum as a float32, rounding once
                b[...] = (b.astype(np.float32) * np.float32(momentum)).astype(b.dtype)
            else:
                b *= momentum
            fused_scaled_add(b, g, scalar(1 - dampening), out=b)
        g = fused_scaled_add(g, momentum_buffer, scalar(momentum)) if nesterov else momentum_buffer
    fused_scaled_add(w, g, scalar(lr), out=w)
    return momentum_buffer
