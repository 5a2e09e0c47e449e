"""L-BFGS (torch.optim.LBFGS): quasi-Newton steps from a limited history of curvature pairs.

The algorithm is torch's (itself after minFunc): one ``step(closure)`` runs up to ``max_iter``
iterations; each builds a direction with the two-loop recursion over the last ``history_size``
pairs (s = x_{k+1} - x_k, y = g_{k+1} - g_k), then moves along it by a fixed ``lr`` or by a
strong-Wolfe line search (cubic interpolation, zoom phase). All parameters are handled as one
flat vector in their own dtype, so float32 runs round as torch's do; a complex parameter enters
it as its real and imaginary parts (view_as_real), as in torch, so the line search's dot products
and comparisons stay real.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable

import numpy as np

from .. import _sum_order
from .._backend import array_module
from .._dtype import checked_scalar
from ..autograd.grad_mode import enable_grad, no_grad
from ..ops.elementwise import fused_scaled_add
from ..tensor import Tensor
from .optimizer import Optimizer, _as_number, _check_hyper_parameters

__all__ = ["LBFGS"]


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1, f1'=g1) and (x2, f2, f2'=g2), clipped to
    ``bounds`` (the interval between x1 and x2 by default); the midpoint if the cubic has none, or
    if a NaN slope (a gradient that overflowed at a trial point) leaves it undefined, as torch's."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if not d2_square >= 0:
        return (low + high) / 2.0
    d2 = np.sqrt(d2_square)
    if x1 <= x2:
        minimiser = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        minimiser = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(minimiser, low), high)


def _strong_wolfe(evaluate, t, d, loss, grad, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """A step ``t`` along ``d`` meeting the strong Wolfe conditions
    f(t) <= f(0) + c1 t f'(0) and |f'(t)| <= c2 |f'(0)|.

    ``evaluate(t)`` returns (loss, flat gradient) at x + t d. Phase one grows ``t`` until the
    conditions hold or a bracket around a minimiser is found; phase two ("zoom") shrinks the
    bracket by cubic interpolation. Returns (loss, grad, t, evaluations)."""
    d_norm = np.abs(d).max()
    new_loss, new_grad = evaluate(t)
    evaluations = 1
    new_gtd = new_grad.dot(d)
    prev_t, prev_loss, prev_grad, prev_gtd = 0, loss, grad.copy(), gtd
    done = False
    iteration = 0
    bracket = bracket_loss = bracket_grad = bracket_gtd = None
    while iteration < max_ls:
        if new_loss > loss + c1 * t * gtd or (iteration > 1 and new_loss >= prev_loss):
            bracket, bracket_loss = [prev_t, t], [prev_loss, new_loss]
            bracket_grad, bracket_gtd = [prev_grad, new_grad.copy()], [prev_gtd, new_gtd]
            break
        if abs(new_gtd) <= -c2 * gtd:
            bracket, bracket_loss, bracket_grad = [t], [new_loss], [new_grad]
            done = True
            break
        if new_gtd >= 0:
            bracket, bracket_loss = [prev_t, t], [prev_loss, new_loss]
            bracket_grad, bracket_gtd = [prev_grad, new_grad.copy()], [prev_gtd, new_gtd]
            break
        # extrapolate: the next trial lies between 1.01 t and 10 t
        next_t = _cubic_interpolate(prev_t, prev_loss, prev_gtd, t, new_loss, new_gtd,
                                    bounds=(t + 0.01 * (t - prev_t), t * 10))
        prev_t, prev_loss, prev_grad, prev_gtd = t, new_loss, new_grad.copy(), new_gtd
        t = next_t
        new_loss, new_grad = evaluate(t)
        evaluations += 1
        new_gtd = new_grad.dot(d)
        iteration += 1
    if iteration == max_ls:
        bracket, bracket_loss, bracket_grad = [0, t], [loss, new_loss], [grad, new_grad]

    # zoom: keep a bracket [low, high] with f(low) <= f(high) until the conditions hold
    insufficient_progress = False
    low, high = (0, 1) if bracket_loss[0] <= bracket_loss[-1] else (1, 0)
    while not done and iteration < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_loss[0], bracket_gtd[0],
                               bracket[1], bracket_loss[1], bracket_gtd[1])
        # a trial too close to an end of the bracket makes little progress: move it inward
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insufficient_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        new_loss, new_grad = evaluate(t)
        evaluations += 1
        new_gtd = new_grad.dot(d)
        iteration += 1
        if new_loss > loss + c1 * t * gtd or new_loss >= bracket_loss[low]:
            bracket[high], bracket_loss[high] = t, new_loss
            bracket_grad[high], bracket_gtd[high] = new_grad.copy(), new_gtd
            low, high = (0, 1) if bracket_loss[0] <= bracket_loss[1] else (1, 0)
        else:
            if abs(new_gtd) <= -c2 * gtd:
                done = True
            elif new_gtd * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_loss[high] = bracket[low], bracket_loss[low]
                bracket_grad[high], bracket_gtd[high] = bracket_grad[low], bracket_gtd[low]
            bracket[low], bracket_loss[low] = t, new_loss
            bracket_grad[low], bracket_gtd[low] = new_grad.copy(), new_gtd
    return bracket_loss[low], bracket_grad[low], bracket[low], evaluations


class LBFGS(Optimizer):
    """torch.optim.LBFGS(params, lr=1, max_iter=20, max_eval=max_iter*5//4, tolerance_grad=1e-7,
    tolerance_change=1e-9, history_size=100, line_search_fn=None | 'strong_wolfe').

    ``step(closure)`` needs a closure that zeroes the gradients, computes the loss, calls
    ``backward()`` and returns the loss. One parameter group only, as in torch."""

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None) -> None:
        _check_hyper_parameters(self, ("lr",), lr=lr)  # torch's step adds with alpha=lr
        for name, value in (("max_iter", max_iter), ("tolerance_grad", tolerance_grad),
                            ("tolerance_change", tolerance_change)):
            _as_number("LBFGS", name, value)
        if max_eval is not None:
            _as_number("LBFGS", "max_eval", max_eval)
        # torch takes any history_size here and fails at a later step, with list index errors
        if not isinstance(history_size, numbers.Integral):
            raise TypeError(f"LBFGS: history_size must be an int, got {type(history_size).__name__} {history_size!r}")
        if history_size < 1:
            raise ValueError(f"LBFGS: history_size must be at least 1 (the curvature pairs kept), got {history_size}")
        if line_search_fn not in (None, "strong_wolfe"):
            # torch raises this only at the first step; failing at construction loses nothing
            raise RuntimeError(f"LBFGS: only line_search_fn='strong_wolfe' or None is supported, got {line_search_fn!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size,
                        line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    # ---- the parameters as one flat vector
    def _flat_grad(self) -> np.ndarray:
        xp = array_module(self._params[0])
        views = []
        for p in self._params:
            view = xp.zeros(p._data.size, p._data.dtype) if p.grad is None else p.grad._data.reshape(-1)
            if view.dtype.kind == "c":  # view_as_real: each value's real part, then its imaginary part
                view = xp.ascontiguousarray(view).view(view.real.dtype)
            views.append(view)
        return xp.concatenate(views)

    def _add_to_params(self, step: float, direction: np.ndarray) -> None:
        # torch adds with alpha=step: a finite step beyond a parameter's dtype (lr=1e308 in
        # float32) raises its overflow error before any parameter changes
        for p in self._params:
            checked_scalar(float(step), p.dtype)
        offset = 0
        for p in self._params:
            data = p._data
            size = data.size * (2 if data.dtype.kind == "c" else 1)
            part = direction[offset:offset + size]
            if type(data) is np.ndarray and type(part) is np.ndarray and part.dtype == data.dtype \
                    and data.dtype.kind == "f":  # torch's add(alpha=step): one fused multiply-add, in float32 too
                fused_scaled_add(data, part.reshape(data.shape), data.dtype.type(step), out=data)
            else:
                update = step * part
                if data.dtype.kind == "c":  # the pairs of view_as_real back into complex values
                    update = array_module(data).ascontiguousarray(update.astype(data.real.dtype)).view(data.dtype)
                data += update.reshape(data.shape).astype(data.dtype)
            p._bump_version()
            offset += size

    def _set_params(self, saved: list) -> None:
        for p, data in zip(self._params, saved):
            p._data[...] = data
            p._bump_version()

    def _evaluate_at(self, closure: Callable, saved: list, t: float, *, d: np.ndarray) -> tuple:
        """Loss and flat gradient at x + t d, leaving the parameters at x."""
        self._add_to_params(t, d)
        with enable_grad():
            value = closure()
        loss = float(value)  # read outside grad mode, as torch's: no "requires_grad ... to a scalar" warning
        grad = self._flat_grad()
        self._set_params(saved)
        return loss, grad

    def step(self, closure: Callable):
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss of the first closure call."""
        if closure is None:
            raise RuntimeError("LBFGS.step() needs a closure that recomputes the loss and its gradients")
        # torch is silent where the iteration overflows to inf or nan (a huge lr); NumPy would warn
        with no_grad(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._step(closure)

    def _step(self, closure: Callable):
        group = self.param_groups[0]
        lr, max_iter, max_eval = float(group["lr"]), group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size, line_search_fn = group["history_size"], group["line_search_fn"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with enable_grad():
            first_loss = closure()
        loss = float(first_loss)
        evaluations = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if flat_grad.size == 0:  # every parameter empty: torch's max of the gradient refuses it
            raise RuntimeError("max(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
                               "reduction dim with the 'dim' argument.")
        if np.abs(flat_grad).max() <= tolerance_grad:
            return first_loss

        # the state holds Tensors, as torch's (a state dict loads across): the iteration runs on arrays
        d, t = _arrays(state.get("d")), _arrays(state.get("t"))
        old_dirs, old_steps, rho = _arrays(state.get("old_dirs")), _arrays(state.get("old_stps")), _arrays(state.get("ro"))
        h_diag, prev_flat_grad = _arrays(state.get("H_diag")), _arrays(state.get("prev_flat_grad"))
        prev_loss = state.get("prev_loss")
        alpha = None
        iteration = 0
        while iteration < max_iter:
            iteration += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_steps, rho, h_diag = [], [], [], 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y.dot(s)
                if ys > 1e-10:  # keep only pairs with positive curvature
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_steps.pop(0)
                        rho.pop(0)
                    old_dirs.append(y)
                    old_steps.append(s)
                    rho.append(1.0 / ys)
                    h_diag = ys / y.dot(y)  # the initial inverse-Hessian scale s'y / y'y
                # two-loop recursion: d = -H g with H built from the stored pairs
                alpha = [None] * len(old_dirs)
                q = -flat_grad
                # (torch's q.add_(y, alpha=-al) and r.add_(s, alpha=al - be): fused multiply-adds)
                for i in range(len(old_dirs) - 1, -1, -1):
                    alpha[i] = old_steps[i].dot(q) * rho[i]
                    q = _add_scaled(q, old_dirs[i], -alpha[i])
                d = q * h_diag
                for i in range(len(old_dirs)):
                    beta = old_dirs[i].dot(d) * rho[i]
                    d = _add_scaled(d, old_steps[i], alpha[i] - beta)
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            # the first step ever is scaled by 1/|g|_1 so its length is at most lr
            # (later steps: lr itself, an int lr staying an int in the state, as torch's)
            t = min(1.0, 1.0 / _abs_sum(flat_grad)) * lr if state["n_iter"] == 1 else \
                (group["lr"] if isinstance(group["lr"], numbers.Real) else lr)
            gtd = flat_grad.dot(d)
            if gtd > -tolerance_change:  # not a descent direction: stop
                break

            step_evaluations = 0
            if line_search_fn == "strong_wolfe":
                saved = [p._data.copy() for p in self._params]
                loss, flat_grad, t, step_evaluations = _strong_wolfe(
                    functools.partial(self._evaluate_at, closure, saved, d=d), t, d, loss, flat_grad, gtd,
                    max_ls=max_eval - evaluations)
                self._add_to_params(t, d)
            else:
                self._add_to_params(t, d)
                if iteration != max_iter:
                    with enable_grad():
                        value = closure()
                    loss = float(value)
                    flat_grad = self._flat_grad()
                    step_evaluations = 1
            evaluations += step_evaluations
            state["func_evals"] += step_evaluations

            if iteration == max_iter or evaluations >= max_eval:
                break
            if np.abs(flat_grad).max() <= tolerance_grad:
                break
            if np.abs(d * t).max() <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break

        if alpha is not None and "al" not in state:
            state["al"] = [None] * history_size  # torch's scratch list of the two-loop recursion's alphas
        if alpha is not None:
            state["al"][:len(alpha)] = _tensors(alpha)
        if isinstance(group["lr"], Tensor):  # torch's step length is then a tensor of lr's dtype
            t = np.asarray(t, dtype=group["lr"]._data.dtype)
        state.update(d=_tensors(d), t=_tensors(t), old_dirs=_tensors(old_dirs), old_stps=_tensors(old_steps),
                     ro=_tensors(rho), H_diag=_tensors(h_diag), prev_flat_grad=_tensors(prev_flat_grad),
                     prev_loss=prev_loss)
        return first_loss


def _abs_sum(flat):
    """torch's ``flat.abs().sum()``, summed in its order where ``_sum_order`` replays it (the first
    step's length 1/|g|_1 decides every later iterate's last bits)."""
    magnitudes = np.abs(flat)
    if magnitudes.dtype in _sum_order.REPLAYED and type(magnitudes) is np.ndarray:
        total = _sum_order.sum_dims(magnitudes, (0,), False)
        if total is not None:
            return magnitudes.dtype.type(total)
    return magnitudes.sum()


def _add_scaled(a, b, alpha):
    """torch's ``a.add(b, alpha=alpha)`` of two flat host vectors, ``alpha`` rounded to their dtype
    (on a device, its own a + alpha·b, alpha left there unread)."""
    if type(a) is np.ndarray and type(b) is np.ndarray and a.dtype == b.dtype and a.dtype.kind == "f":
        return fused_scaled_add(a, b, a.dtype.type(alpha))
    return a + alpha * b


def _arrays(value):
    """State read back for the iteration: Tensors (and lists of them) as their arrays."""
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, list):
        return [_arrays(v) for v in value]
    return value


def _tensors(value):
    """The iteration's arrays and NumPy scalars as the Tensors torch keeps in the state (Python
    numbers, torch's int H_diag and t, stay numbers)."""
    if isinstance(value, (np.ndarray, np.generic)) or (value is not None and hasattr(value, "__cuda_array_interface__")):
        return Tensor._make(value if not isinstance(value, np.generic) else np.asarray(value))
    if isinstance(value, list):
        return [_tensors(v) for v in value]
    return value
