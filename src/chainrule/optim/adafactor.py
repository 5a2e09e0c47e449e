"""Adafactor (torch.optim.Adafactor): Adam-like steps whose second moment of a matrix is kept
factored, as one row and one column statistic (memory O(m + n) instead of O(m·n))."""

from __future__ import annotations

import math

from .. import _dtype
from .._backend import array_module
from .optimizer import (
    Optimizer,
    _check_range,
    _params_with_grad,
    _start_state,
    _step_tensor,
    check_one_element,
)

__all__ = ["Adafactor"]


class Adafactor(Optimizer):
    """torch.optim.Adafactor(params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0)."""

    _step_is_tensor = True  # a loaded step number becomes a float32 tensor, as torch's __setstate__
    _sparse_gradient_error = "Adafactor does not support sparse gradients"

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8, eps: tuple = (None, 1e-3),
                 d: float = 1.0, weight_decay: float = 0.0, *, foreach=None, maximize: bool = False) -> None:
        check_one_element(lr, "lr")
        _check_range(lr, "Learning rate should be >= 0 but is")
        _check_range(beta2_decay, "beta2_decay should be <= 0 but is", None, 0.0, True, True)
        if eps[0] is not None:  # None: the dtype's machine epsilon
            _check_range(eps[0], "epsilon1 should be >= 0 but is")
        _check_range(eps[1], "epsilon2 should be >= 0 but is")
        _check_range(d, "Clipping threshold d should be >= 1 but is", 1.0)
        _check_range(weight_decay, "weight_decay should be >= 0 but is")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _step_group(self, group: dict) -> None:
        lr, beta2_decay, d, weight_decay = group["lr"], group["beta2_decay"], group["d"], group["weight_decay"]
        eps1, eps2 = group["eps"]
        if any(p.is_complex() for p in _params_with_grad(group)):
            # torch's factored second moment has no complex form; it refuses before updating the group
            raise RuntimeError("Adafactor does not support complex parameters (view_as_real gives a real "
                               "parameter it can optimize)")
        if any(p.numel() == 0 for p in _params_with_grad(group)):
            # torch's step size divides by the parameter's RMS, sqrt(numel): an empty one is Python's
            # ZeroDivisionError there, refused here before the group's state changes
            raise ZeroDivisionError("float division by zero")
        for p in _params_with_grad(group):
            w = p._data
            xp = array_module(w)
            g = -p.grad._data if group["maximize"] else p.grad._data
            state = self.state[p]
            if "step" not in state:
                _start_state(state)
                if g.ndim > 1:
                    state["row_var"] = p.new_zeros(tuple(g.shape[:-1]) + (1,))
                    state["col_var"] = p.new_zeros(tuple(g.shape[:-2]) + (1, g.shape[-1]))
                else:
                    state["variance"] = p.new_zeros(tuple(g.shape))
            step = _step_tensor(state)
            floor = float(_dtype.finfo_of(w.dtype).eps) if eps1 is None else eps1
            one_minus_beta2 = step ** beta2_decay
            rho = min(lr, 1 / math.sqrt(step))
            # the step is relative to the parameter's RMS, at least eps2
            alpha = max(eps2, float(xp.linalg.norm(w.ravel())) / math.sqrt(w.size)) * rho
            if weight_decay != 0:
                w *= 1 - lr * weight_decay
            if g.ndim > 1:
                row_var, col_var = state["row_var"]._data, state["col_var"]._data
                row_var += one_minus_beta2 * ((g * g).mean(-1, keepdims=True) - row_var)
                col_var += one_minus_beta2 * ((g * g).mean(-2, keepdims=True) - col_var)
                # V ≈ R C / mean(R): the rank-one factorisation of the second moment
                var_estimate = (row_var @ col_var) / xp.maximum(row_var.mean(-2, keepdims=True), floor)
            else:
                variance = state["variance"]._data
                variance += one_minus_beta2 * (g * g - variance)
                var_estimate = variance.copy()
            update = g / xp.sqrt(xp.maximum(var_estimate, floor * floor))
            denom = max(1.0, float(xp.linalg.norm(update.ravel())) / (math.sqrt(max(update.size, 1)) * d))
            w -= (alpha / denom) * update.astype(w.dtype)
            p._bump_version()
