"""Adam and AdamW (torch.optim.Adam / AdamW), with amsgrad and maximize."""

from __future__ import annotations

import numpy as np

from .._backend import array_module
from .._opmath import (
    add_number,
    divide_by_number,
    fused_addcdiv,
    fused_addcmul,
    fused_lerp,
    half_precision,
    multiply_by_number,
)
from ..ops import _cuda_kernels
from ..ops.creation import zeros_like
from ..ops.elementwise import fused_scaled_add, maximum
from ..tensor import Tensor
from .optimizer import (
    Optimizer,
    _check_adam_args,
    _check_fused_flags,
    _params_with_grad,
    _step_tensor,
    _wrapper_gradient,
    _zero_state,
    in_few_updates,
)

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """torch.optim.Adam: bias-corrected first and second moments; L2 weight decay added to the gradient."""
    _complex_lr_refusal = "overflow"

    _step_is_tensor = True  # a loaded step number becomes a float32 tensor, as torch's __setstate__
    _sparse_gradient_error = "Adam does not support sparse gradients, please consider SparseAdam instead"

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, fused=None,
                 decoupled_weight_decay: bool = False) -> None:
        decoupled = decoupled_weight_decay or self._decoupled
        _check_tensor_hyper_parameters(self, lr, betas, foreach, capturable)
        _check_adam_args(self, lr, eps, betas, weight_decay, l2_weight_decay=not decoupled)
        if not (all(isinstance(beta, float) for beta in betas[:2]) or all(isinstance(beta, Tensor) for beta in betas[:2])):
            # torch's fused and foreach kernels take both as floats or both as tensors (an int is refused too)
            raise ValueError(f"{type(self).__name__}: betas must be either both floats or both Tensors, got {betas!r}")
        # a 1-element tensor beta is kept 0-d, as torch squeezes it
        betas = tuple(beta.squeeze() if isinstance(beta, Tensor) and beta.dim() != 0 else beta for beta in betas)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled)
        _check_fused_flags(fused, foreach, differentiable)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        """torch's foreach step refuses a tensor lr or beta unless capturable, as its constructor does:
        a group's own foreach=True or tensor lr, which that check did not see, reaches the step
        (RuntimeError for lr, ValueError for a beta; a group with no gradient returns first)."""
        if not group.get("foreach") or group.get("capturable") or not any(True for _ in _params_with_grad(group)):
            return
        if isinstance(group["lr"], Tensor):
            raise RuntimeError("lr as a Tensor is not supported for capturable=False and foreach=True")
        for name, beta in zip(("beta1", "beta2"), group["betas"]):
            if isinstance(beta, Tensor):
                raise ValueError(f"{name} as a Tensor is not supported for capturable=False and foreach=True")

    def _step_group(self, group: dict) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        decoupled = group.get("decoupled_weight_decay", self._decoupled)
        on_gpu = []  # (param, state, step) of the parameters the fused CuPy kernels update
        differentiable = bool(group.get("differentiable"))
        plain_numbers = not any(isinstance(v, Tensor) for v in (lr, beta1, beta2))
        numbers_for: dict = {}  # (step, torch_rounding): the update's numbers, one dict for each
        rows = []  # (numbers, arrays) per parameter
        stepped = []
        for p in _params_with_grad(group):
            w = _as_real(p._data)
            xp = array_module(w)
            state = self.state[p]
            if "exp_avg" not in state:
                _zero_state(state, p._data, "exp_avg", "exp_avg_sq")  # complex state for a complex parameter
                if amsgrad:
                    state["max_exp_avg_sq"] = Tensor._make(xp.zeros_like(p._data))
            step = _step_tensor(state)
            if xp is not np and _cuda_kernels.available(w) and w is p._data:  # the fused kernels take real arrays
                on_gpu.append((p, state, step))
                continue
            # float32 as torch's kernels round it (add(alpha=), lerp and addcmul each one fused
            # multiply-add), float16/bfloat16 each op computed in float32 and rounded once; a
            # differentiable step too (its float betas take the same kernels, only its last step
            # differs). float64 keeps NumPy's roundings: see _opmath.fused_lerp
            torch_rounding = (w.dtype == np.float32 or half_precision(w.dtype)) and plain_numbers
            numbers = numbers_for.get((step, torch_rounding))
            if numbers is None:
                numbers = numbers_for[step, torch_rounding] = dict(
                    lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, decoupled=decoupled,
                    maximize=maximize, torch_rounding=torch_rounding, step=step, differentiable=differentiable)
            arrays = (w, _as_real(p.grad._data), _as_real(state["exp_avg"]._data),
                      _as_real(state["exp_avg_sq"]._data), _as_real(state["max_exp_avg_sq"]._data) if amsgrad else None)
            rows.append((numbers, arrays))
            stepped.append(p)
        if plain_numbers:
            in_few_updates(_update, rows, written=(0, 2, 3, 4))
        else:  # (tensor hyperparameters: the arrays whole)
            for numbers, arrays in rows:
                _update(*arrays, **numbers)
        for p in stepped:
            p._bump_version()
        if on_gpu:
            # CuPy: fused kernels update w, m, v (, max v) together. torch's foreach/fused Adam is
            # one multi-tensor launch over the group (the default on CUDA); foreach=False asks for
            # its for-loop, one launch per parameter. Same update either way.
            kernel = _cuda_kernels.adam_step if group.get("foreach") is False and not group.get("fused") \
                else _cuda_kernels.adam_multi_tensor_step
            params, states, steps = zip(*on_gpu)
            kernel([p._data for p in params], [p.grad._data for p in params], [s["exp_avg"]._data for s in states],
                   [s["exp_avg_sq"]._data for s in states], list(steps), lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                   weight_decay=weight_decay, decoupled=decoupled, maximize=maximize,
                   max_exp_avg_sqs=[s["max_exp_avg_sq"]._data for s in states] if amsgrad else None)
            for p in params:
                p._bump_version()


    def _step_wrapper(self, p: Tensor, group: dict) -> None:
        """torch's single-tensor Adam step in tensor ops, for a wrapper subclass parameter (its handler
        runs each op on the values it holds; its moments are made by its handler too)."""
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        decoupled = group.get("decoupled_weight_decay", self._decoupled)
        state = self.state[p]
        if "exp_avg" not in state:
            names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if group["amsgrad"] else ("exp_avg", "exp_avg_sq")
            state.update({name: zeros_like(p) for name in names})
        step = _step_tensor(state)
        grad = _wrapper_gradient(p, group, decoupled=decoupled)
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        second = state["exp_avg_sq"]
        if group["amsgrad"]:
            second = state["max_exp_avg_sq"] = maximum(state["max_exp_avg_sq"], second)
        denom = (second.sqrt() / (1 - beta2 ** step) ** 0.5).add_(eps)
        p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - beta1 ** step))


def _update(w, g, exp_avg, exp_avg_sq, max_sq, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
            torch_rounding, step, differentiable) -> None:
    """One Adam step of the (real) arrays in place, elementwise in torch's order and roundings."""
    xp = array_module(w)
    if maximize:
        g = -g
    if weight_decay != 0:
        if decoupled:
            multiply_by_number(w, 1 - lr * weight_decay, out=w)
        elif torch_rounding:
            g = fused_scaled_add(g, w, w.dtype.type(weight_decay))
        else:
            g = g + weight_decay * w
    # m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2
    if torch_rounding:
        fused_lerp(exp_avg, g, 1 - beta1, out=exp_avg)
        multiply_by_number(exp_avg_sq, beta2, out=exp_avg_sq)
        fused_addcmul(exp_avg_sq, g, g, 1 - beta2, out=exp_avg_sq)
    else:
        exp_avg += (1 - beta1) * (g - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (g * g)
    if max_sq is not None:
        xp.maximum(max_sq, exp_avg_sq, out=max_sq)
        denom = xp.sqrt(max_sq)
    else:
        denom = xp.sqrt(exp_avg_sq)
    if differentiable:
        # torch's differentiable step reads the float32 step tensor: its bias corrections and
        # step size are float32 0-d tensors, and it divides by them in one fold
        step32 = np.float32(step)
        # (a number divided by a tensor is the tensor's reciprocal times the number)
        one = np.float32(1)
        step_size_neg = -((one / (one - np.float32(beta1) ** step32)) * np.float32(lr))
        bias_correction2_sqrt = np.sqrt(one - np.float32(beta2) ** step32)
        denom /= (bias_correction2_sqrt * step_size_neg).astype(w.dtype)
        denom += ((one / step_size_neg) * np.float32(eps)).astype(w.dtype)
        w += exp_avg / denom
    else:
        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        if torch_rounding:  # torch's addcdiv_(exp_avg, denom, value=-step_size): (value·m) / denom
            denom = add_number(divide_by_number(denom, bias_correction2_sqrt), eps)
            fused_addcdiv(w, exp_avg, denom, -(lr / bias_correction1), out=w)
        else:
            denom /= bias_correction2_sqrt
            denom += eps
            w -= (lr / bias_correction1) * (exp_avg / denom)


def _check_tensor_hyper_parameters(optimizer: Optimizer, lr, betas, foreach, capturable) -> None:
    """torch's foreach Adam reads a tensor lr or beta as a scalar only when capturable: it refuses them
    with foreach=True otherwise (chainrule's step could take them; the error is torch's API)."""
    if not foreach or capturable:
        return
    owner = type(optimizer).__name__
    if isinstance(lr, Tensor):
        raise ValueError(f"{owner}: lr as a Tensor is not supported for capturable=False and foreach=True "
                         "(pass a float lr, or foreach=False)")
    for index, beta in enumerate(betas if isinstance(betas, (tuple, list)) else ()):
        if isinstance(beta, Tensor):
            raise ValueError(f"{owner}: betas[{index}] as a Tensor is not supported for capturable=False and "
                             "foreach=True (pass float betas, or foreach=False)")


def _real_moments(w, g, exp_avg, exp_avg_sq, *, lr, beta1, beta2, weight_decay, decoupled, maximize):
    """The start NAdam's and RAdam's steps share with Adam's, in torch's roundings: the gradient
    negated for ``maximize``, complex arrays as real pairs, weight decay (decoupled: the weight scaled;
    otherwise added to the gradient as one fused multiply-add), then ``m = lerp(m, g, 1 - beta1)`` and
    ``v = beta2·v + (1 - beta2)·g²`` in place. Returns the real views ``(w, g, exp_avg, exp_avg_sq)``."""
    if maximize:
        g = -g
    w, g = _as_real(w), _as_real(g)
    if weight_decay != 0:
        if decoupled:
            multiply_by_number(w, 1 - lr * weight_decay, out=w)
        else:
            g = fused_scaled_add(g, w, w.dtype.type(weight_decay))
    exp_avg, exp_avg_sq = _as_real(exp_avg), _as_real(exp_avg_sq)
    fused_lerp(exp_avg, g, 1 - beta1, out=exp_avg)
    multiply_by_number(exp_avg_sq, beta2, out=exp_avg_sq)
    fused_addcmul(exp_avg_sq, g, g, 1 - beta2, out=exp_avg_sq)
    return w, g, exp_avg, exp_avg_sq


def _as_real(array):
    """A complex array as its (real, imaginary) pairs: torch's Adam updates a complex parameter as
    view_as_real of it, so each part gets its own second moment (g·g of a complex g would mix them)."""
    if array.dtype.kind != "c":
        return array
    # as view_as_real, a trailing pair axis: viewed through it, any layout (a transposed or strided
    # parameter, a 0-d one) can change its itemsize in place and writes through
    return array[..., None].view(array.real.dtype)


def _decayed_as_real(w, g, weight_decay, foreach) -> tuple:
    """(w, g + weight_decay·w) with a complex parameter as real pairs, as torch: its for-loop adds the
    decay to the complex gradient, then views both as real (a complex product and sum, rounded
    twice), its foreach step views them first (real: one fused multiply-add)."""
    if weight_decay != 0 and not foreach:
        g = fused_scaled_add(g, w, w.dtype.type(weight_decay))
    w, g = _as_real(w), _as_real(g)
    if weight_decay != 0 and foreach:
        g = fused_scaled_add(g, w, w.dtype.type(weight_decay))
    return w, g


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay ``w -= lr * weight_decay * w``."""
    _complex_lr_refusal = "cast"

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach=None, capturable: bool = False, differentiable: bool = False, fused=None) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused, decoupled_weight_decay=True)

