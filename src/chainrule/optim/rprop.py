"""Rprop (torch.optim.Rprop): per-element step sizes grown while the gradient keeps its sign and
shrunk when it flips; only the gradient's sign moves the parameter."""

from __future__ import annotations

from .._backend import array_module
from ..tensor import Tensor
from .adam import _as_real
from .optimizer import (
    Optimizer,
    _check_hyper_parameters,
    _params_with_grad,
    _start_state,
    _step_tensor,
    _wrapper_gradient,
    in_few_updates,
)

__all__ = ["Rprop"]


class Rprop(Optimizer):
    """torch.optim.Rprop(params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50))."""
    _complex_lr_refusal = "overflow"

    _step_is_tensor = True  # a loaded step number becomes a float32 tensor, as torch's __setstate__
    _sparse_gradient_error = "Rprop does not support sparse gradients"

    def __init__(self, params, lr: float = 1e-2, etas: tuple = (0.5, 1.2), step_sizes: tuple = (1e-6, 50), *,
                 capturable: bool = False, foreach=None, maximize: bool = False, differentiable: bool = False) -> None:
        _check_hyper_parameters(self, lr=lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:  # (NaN fails too) torch's check, word for word
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _step_group(self, group: dict) -> None:
        eta_minus, eta_plus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        numbers = dict(eta_minus=eta_minus, eta_plus=eta_plus, step_size_min=step_size_min,
                       step_size_max=step_size_max, maximize=group["maximize"])
        rows, stepped = [], []
        for p in _params_with_grad(group):
            state = self.state[p]
            if "prev" not in state:
                _start_state(state)
                state["prev"] = p.new_zeros(tuple(p.shape))
                lr = float(group["lr"])
                # a complex parameter's step size is lr in both parts, as torch's complex(lr, lr)
                state["step_size"] = p.new_full(tuple(p.shape), complex(lr, lr) if p.is_complex() else lr)
            _step_tensor(state)
            rows.append((numbers, (p._data, p.grad._data, state["prev"]._data, state["step_size"]._data)))
            stepped.append(p)
        in_few_updates(_update, rows, written=(0, 2, 3))
        for p in stepped:
            p._bump_version()

    def _step_wrapper(self, p: Tensor, group: dict) -> None:
        eta_minus, eta_plus = group["etas"]
        state = self.state[p]
        if "prev" not in state:
            _start_state(state)
            state["prev"] = p.new_zeros(tuple(p.shape))
            state["step_size"] = p.new_full(tuple(p.shape), float(group["lr"]))
        _step_tensor(state)
        grad = _wrapper_gradient(p, group)
        agreement = grad.mul(state["prev"]).sign()
        # torch writes eta_plus / eta_minus / 1 by sign; masks times numbers give the same values exactly
        factor = (agreement.gt(0).to(p.dtype) * eta_plus + agreement.lt(0).to(p.dtype) * eta_minus
                  + agreement.eq(0).to(p.dtype))
        state["step_size"].mul_(factor).clamp_(*group["step_sizes"])
        grad = grad.masked_fill(agreement.lt(0), 0)
        p.addcmul_(grad.sign(), state["step_size"], value=-1)
        state["prev"].copy_(grad)


def _update(w, g, prev, step_size, *, eta_minus, eta_plus, step_size_min, step_size_max, maximize) -> None:
    """One Rprop step of the arrays in place, elementwise."""
    xp = array_module(w)
    if maximize:
        g = -g
    # a complex parameter as real pairs, as torch: each part keeps its own sign and step size
    w, g = _as_real(w), _as_real(g)
    prev, step_size = _as_real(prev), _as_real(step_size)
    # same sign as last step: grow the step; flipped: shrink it and skip this element once
    agreement = xp.sign(g * prev)
    factor = xp.where(agreement > 0, eta_plus, xp.where(agreement < 0, eta_minus, 1.0)).astype(w.dtype)
    step_size *= factor
    xp.clip(step_size, step_size_min, step_size_max, out=step_size)
    g = xp.where(agreement < 0, 0, g).astype(w.dtype)
    w -= xp.sign(g) * step_size
    prev[...] = g
