"""Muon: momentum, then Newton–Schulz orthogonalisation of each 2-d update (torch.optim.Muon, torch 2.9+)."""

from __future__ import annotations

import math

from .._backend import array_module
from .._opmath import fused_lerp, fused_multiply_add_float32
from ..ops.linalg import addmm
from ..tensor import Tensor
from .optimizer import Optimizer, _check_range, _params_with_grad, check_one_element

__all__ = ["Muon"]

# torch's constants (Keller Jordan's Muon): the quintic's coefficients, chosen for the largest slope at zero
EPS = 1e-7
DEFAULT_A = 3.4445
DEFAULT_B = -4.7750
DEFAULT_C = 2.0315
DEFAULT_NS_STEPS = 5


def _bfloat16_addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta: float, alpha: float = 1.0) -> Tensor:
    """beta·input + alpha·(mat1 @ mat2) of bfloat16 matrices as torch's CPU kernel computes it: all in
    float32, rounded to bfloat16 once (rounding the product first moves Muon's update by a few %)."""
    return addmm(input.float(), mat1.float(), mat2.float(), beta=beta, alpha=alpha).bfloat16()


def _zeropower_via_newtonschulz(grad: Tensor, ns_coefficients: tuple, ns_steps: int, eps: float) -> Tensor:
    """About U Vᵀ of grad = U S Vᵀ (singular values pushed into roughly (0.5, 1.5)): ``ns_steps``
    iterations of X ← a X + (b XXᵀ + c (XXᵀ)²) X on the wide orientation of X, in bfloat16, after
    scaling X to Frobenius norm (an upper bound of the spectral norm) at most 1 — torch's steps."""
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(grad.shape) != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = ns_coefficients
    tall = grad.shape[0] > grad.shape[1]
    ortho = grad.bfloat16()
    if tall:  # the Gram matrix of the short side is the smaller one
        ortho = ortho.T
    ortho = ortho / ortho.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = ortho @ ortho.T
        gram_update = _bfloat16_addmm(gram, gram, gram, beta=b, alpha=c)
        ortho = _bfloat16_addmm(ortho, gram_update, ortho, beta=a)
    return ortho.T if tall else ortho


def _adjust_lr(lr: float, adjust_lr_fn: str | None, shape: tuple) -> float:
    """The update's scale for an (A, B) matrix: sqrt(max(1, A/B)) ('original', Keller Jordan's), or
    0.2 sqrt(max(A, B)) ('match_rms_adamw', Moonshot's: the update's RMS matches AdamW's)."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


class Muon(Optimizer):
    """torch.optim.Muon, for the 2-d weights of hidden layers (biases, embeddings and other
    parameters go to another optimizer, such as AdamW). Per step, with g the gradient:
    B ← μB + (1-μ)g (torch's lerp), the update is the lerp of g toward B by μ (nesterov) or B,
    orthogonalised by Newton–Schulz in bfloat16; then θ ← (1 - lr·wd)θ - adjust_lr(lr)·update.
    bfloat16 needs ml_dtypes (``pip install "chainrule[bf16]"``; the first step says so without it)."""

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_coefficients: tuple = (DEFAULT_A, DEFAULT_B, DEFAULT_C),
                 eps: float = EPS, ns_steps: int = DEFAULT_NS_STEPS, adjust_lr_fn: str | None = None) -> None:
        check_one_element(lr, "lr")
        _check_range(lr, "Learning rate should be >= 0 but is")
        _check_range(momentum, "momentum should be >= 0 but is")
        _check_range(weight_decay, "weight decay should be >= 0 but is")
        if adjust_lr_fn is not None and adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon only supports 2D parameters whereas we found a parameter with size: "
                                     f"{p.size()}")

    def _step_group(self, group: dict) -> None:
        lr = float(group["lr"])
        momentum = group["momentum"]
        params = list(_params_with_grad(group))
        for p in params:  # torch checks every parameter before it updates any
            if p.dtype.is_complex:
                raise RuntimeError("Muon does not support complex parameters")
            if p.grad.is_sparse:
                raise RuntimeError("Muon does not support sparse gradients")
        for p in params:
            w, g = p._data, p.grad._data
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = Tensor._make(array_module(g).zeros_like(g))
            buf = state["momentum_buffer"]._data
            fused_lerp(buf, g, 1 - momentum, out=buf)
            update = Tensor._make(fused_lerp(g, buf, momentum) if group["nesterov"] else buf)
            update = _zeropower_via_newtonschulz(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
            adjusted_lr = _adjust_lr(lr, group["adjust_lr_fn"], tuple(p.shape))
            w *= w.dtype.type(1 - lr * group["weight_decay"])
            w[...] = _fused_multiply_add(update._data.astype(w.dtype), -adjusted_lr, w)
            p._bump_version()


def _fused_multiply_add(x, y, z):
    """x·y + z rounded once, as torch's vectorised CPU add with alpha computes it: a
    float32 product is exact in float64, so one float64 multiply-add and one rounding back give the
    fused result (the last bit of Muon's bfloat16 rounding depends on it). Other dtypes: x·y + z."""
    if x.dtype.itemsize == 4 and x.dtype.kind == "f":
        return fused_multiply_add_float32(x, float(x.dtype.type(y)), z)
    return x * x.dtype.type(y) + z

