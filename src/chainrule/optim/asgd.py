"""ASGD (torch.optim.ASGD): SGD with a decaying step size and, after ``t0`` steps, a running
average ``ax`` of the iterates (Polyak-Ruppert averaging)."""

from __future__ import annotations

import numpy as np

from .. import _dtype
from .._backend import array_module
from .._opmath import fused_addcmul
from ..ops.creation import zeros_like
from ..ops.elementwise import fused_scaled_add
from ..tensor import Tensor
from .adam import _as_real, _decayed_as_real
from .optimizer import (
    Optimizer,
    _check_hyper_parameters,
    _params_with_grad,
    _start_state,
    _step_tensor,
    _wrapper_gradient,
    in_blocks,
)

__all__ = ["ASGD"]


class ASGD(Optimizer):
    """torch.optim.ASGD(params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0)."""
    _complex_lr_refusal = "real"

    _step_is_tensor = True  # a loaded step number becomes a float32 tensor, as torch's __setstate__
    _sparse_gradient_error = "ASGD does not support sparse gradients"

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0, foreach=None, maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        _check_hyper_parameters(self, lr=lr, weight_decay=weight_decay)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _step_group(self, group: dict) -> None:
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        for p in _params_with_grad(group):
            w = p._data
            xp = array_module(w)
            g = p.grad._data
            state = self.state[p]
            if "ax" not in state:
                # eta and mu as 0-d float32 tensors on the CPU, as torch keeps them
                _start_state(state)
                state["eta"] = Tensor._make(np.array(lr, dtype=np.float32))
                state["mu"] = Tensor._make(np.ones((), dtype=np.float32))
                state["ax"] = Tensor._make(xp.zeros_like(w))
            step = _step_tensor(state)
            in_blocks(_update, (w, g, state["ax"]._data), lambd=lambd, weight_decay=group["weight_decay"],
                      maximize=group["maximize"], foreach=group.get("foreach"), eta_tensor=state["eta"]._data,
                      mu_tensor=state["mu"]._data)
            # torch writes these through a tensor of the default dtype (as_tensor of a float): a
            # float64 eta (loaded beside a float64 parameter) still takes float32-rounded values
            default = _dtype.get_default_dtype().np
            state["eta"]._data[...] = default.type(_next_eta(lr, lambd, alpha, step, group["foreach"]))
            state["mu"]._data[...] = default.type(1 / max(1, step - t0))
            p._bump_version()

    def _step_wrapper(self, p: Tensor, group: dict) -> None:
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        state = self.state[p]
        if "ax" not in state:
            _start_state(state)
            state["eta"] = Tensor._make(np.array(lr, dtype=np.float32))
            state["mu"] = Tensor._make(np.ones((), dtype=np.float32))
            state["ax"] = zeros_like(p)
        step = _step_tensor(state)
        grad = _wrapper_gradient(p, group)
        eta = float(state["eta"])
        p.mul_(1 - lambd * eta)
        p.add_(grad, alpha=-eta)
        if float(state["mu"]) != 1:
            state["ax"].add_(p.sub(state["ax"]).mul_(float(state["mu"])))
        else:
            state["ax"].copy_(p)
        default = _dtype.get_default_dtype().np  # torch writes them through a tensor of the default dtype
        state["eta"]._data[...] = default.type(lr / ((1 + lambd * lr * step) ** alpha))
        state["mu"]._data[...] = default.type(1 / max(1, step - t0))


def _next_eta(lr, lambd: float, alpha: float, step: float, foreach) -> float:
    """torch's ``lr / ((1 + lambd * lr * step) ** alpha)``, rounded as its step computes it: in double
    for a float lr in its for-loop; in float32 0-d tensor ops where a tensor lr (a NumPy float32 here,
    ``_plain_numbers``) or its foreach step's float32 step tensor enters, where a float lr divided by
    the tensor is the tensor's reciprocal times the number, and a tensor lr divides."""
    tensor_lr = isinstance(lr, np.float32)
    if not (foreach or tensor_lr):
        return lr / ((1 + lambd * lr * step) ** alpha)
    # (lambd * lr: a tensor lr's float32 product; a float lr's double product, rounded entering the tensor op)
    scaled = (lambd * lr if tensor_lr else np.float32(lambd * lr)) * np.float32(step)
    denominator = _float32_power(np.float32(1) + scaled, alpha)
    return lr / denominator if tensor_lr else (np.float32(1) / denominator) * np.float32(lr)


def _float32_power(base, exponent: float):
    """torch's ``pow`` of a 1-element float32 tensor by a number: its sqrt and reciprocal kernels for
    0.5, -0.5 and -1, products for 2, 3 and -2, else its scalar loop's ``std::pow(float, double)``:
    the double power of the float32 value, rounded to float32 (NumPy's float32 power rounds
    ``powf``'s, an ulp off it now and then)."""
    one = np.float32(1)
    if exponent == 0.5:
        return np.sqrt(base)
    if exponent == -0.5:
        return one / np.sqrt(base)
    if exponent == -1:
        return one / base
    if exponent == 2:
        return base * base
    if exponent == 3:
        return base * base * base
    if exponent == -2:
        return np.float32(1.0 / float(base * base))
    return np.float32(float(base) ** exponent)


def _update(w, g, ax, *, lambd, weight_decay, maximize, foreach, eta_tensor, mu_tensor) -> None:
    """One ASGD step of the arrays in place, elementwise (``eta_tensor`` and ``mu_tensor``: the 0-d
    state of before the step)."""
    if maximize:
        g = -g
    w, g = _decayed_as_real(w, g, weight_decay, foreach)  # a complex parameter as real pairs
    scalar = w.dtype.type
    ax = _as_real(ax)
    # torch's ops in its order, rounded as its kernels (float32 add(alpha=) and addcmul one
    # fused multiply-add each); its foreach step folds the decay into the gradient
    if foreach:
        g = fused_scaled_add(g, w, scalar(lambd))
        fused_addcmul(w, -g, eta_tensor.astype(w.dtype), 1, out=w)
        fused_addcmul(ax, w - ax, mu_tensor.astype(w.dtype), 1, out=ax)
    else:
        eta = float(eta_tensor)
        w *= 1 - lambd * eta
        fused_scaled_add(w, g, scalar(-eta), out=w)
        if float(mu_tensor) != 1:
            ax += (w - ax) * mu_tensor.astype(w.dtype)
        else:
            ax[...] = w
