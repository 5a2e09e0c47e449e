"""SparseAdam (torch.optim.SparseAdam): Adam for embedding tables, updating only the rows a step's
gradient touches.

It steps on the sparse COO gradients of ``nn.Embedding(sparse=True)`` and
``nn.EmbeddingBag(sparse=True)`` and, as torch's, refuses a dense one. The rows a gradient touches
are the ones its indices name (chainrule also stores the gradient densely, as all its sparse values).
"""

from __future__ import annotations

import math

from .._backend import array_module
from ..sparse import SparseCOOTensor
from .optimizer import Optimizer, _check_range, _params_with_grad, check_one_element

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    """torch.optim.SparseAdam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False): per
    touched row, m += (1-β₁)(g-m), v += (1-β₂)(g²-v), w -= lr·√(1-β₂ᵗ)/(1-β₁ᵗ) · m / (√v + ε)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 maximize: bool = False) -> None:
        # torch's SparseAdam wants lr and eps strictly positive
        check_one_element(lr, "lr")
        _check_range(lr, "Invalid learning rate", 0.0, None, False)
        _check_range(eps, "Invalid epsilon value", 0.0, None, False)
        _check_range(betas[0], "Invalid beta parameter at index 0", 0.0, 1.0)
        _check_range(betas[1], "Invalid beta parameter at index 1", 0.0, 1.0)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, maximize=maximize))
        where = [[i, j] for i, group in enumerate(self.param_groups) for j, p in enumerate(group["params"])]
        sparse = [index for index, p in zip(where, self._all_params()) if p.is_sparse]
        complex_ = [index for index, p in zip(where, self._all_params()) if p.is_complex()]
        if sparse:
            raise ValueError(f"Sparse params at indices {sparse}: SparseAdam requires dense parameter tensors")
        if complex_:
            raise ValueError(f"Complex params at indices {complex_}: SparseAdam does not support complex parameters")

    def _all_params(self) -> list:
        return [p for group in self.param_groups for p in group["params"]]

    def _step_group(self, group: dict) -> None:
        lr, (beta1, beta2), eps, maximize = group["lr"], group["betas"], group["eps"], group["maximize"]
        for p in _params_with_grad(group):
            w = p._data
            xp = array_module(w)
            grad = p.grad
            if not grad.is_sparse:
                raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead")
            g = -grad._data if maximize else grad._data
            rows = _touched_rows(xp, grad)
            state = self.state[p]
            if "exp_avg" not in state:
                # torch's SparseAdam counts its steps in a Python int (the others keep a float32 tensor)
                state["step"] = 0
                state["exp_avg"], state["exp_avg_sq"] = p.new_zeros(tuple(p.shape)), p.new_zeros(tuple(p.shape))
            state["step"] += 1
            step = state["step"]
            if rows.size == 0:
                continue
            m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
            g_rows = g[rows]
            m[rows] += (1 - beta1) * (g_rows - m[rows])
            v[rows] += (1 - beta2) * (g_rows * g_rows - v[rows])
            step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
            # torch's order: -step_size · (m / (sqrt(v) + eps)), then added to the parameter's rows
            w[rows] += (m[rows] / (xp.sqrt(v[rows]) + eps)) * w.dtype.type(-step_size)
            p._bump_version()


def _touched_rows(xp, grad: SparseCOOTensor):
    """The sorted, unique indices along dim 0 that the sparse gradient updates."""
    return xp.unique(grad._indices()._data[0]) if grad._data.ndim else xp.zeros(0, dtype=int)
