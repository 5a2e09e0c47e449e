"""nn.SyncBatchNorm: batch normalisation whose statistics are taken over the whole global
batch, across every process of the group, in data-parallel training.

Each rank sums its part of the batch; the sums travel through a differentiable all-reduce
(``ops.collective.AllReduceSum``), so the output and the gradients on every rank are those of
one BatchNorm over the concatenated batch. Mean and variance are taken in two passes (the sum,
then the squared deviations from the global mean), which keeps float32 accurate.

Unlike torch (GPU-only), this runs on the CPU: chainrule's process groups are MPI. Out of
training mode, or without a process group of two or more ranks, it is BatchNorm.
"""

from __future__ import annotations

from ... import distributed as dist
from ...autograd.grad_mode import no_grad
from ...distributed.nn.functional import _sum_over_ranks
from ...ops.collective import AllReduceSum
from ...ops.creation import tensor as _tensor
from ...ops.shape import cat
from ...tensor import Tensor
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over (N, C, *) with statistics synchronised over ``process_group``'s ranks."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None, *,
                 bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def _syncs(self) -> bool:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return False
        return dist.get_world_size(self.process_group) > 1

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        if input.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: expected input with {self.num_features} channels (dim 1), got shape "
                             f"{tuple(input.shape)}")
        if not self._syncs():
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, self.num_features] + [1] * (input.dim() - 2)
        over_ranks = _sum_over_ranks(self.process_group)
        count = _tensor([input.numel() // self.num_features], dtype=input.dtype, device=input.device)
        sums = AllReduceSum.apply(cat([input.sum(dims), count]), sum_over_ranks=over_ranks)
        total = float(sums[-1].item())
        mean = sums[:-1] / total
        centered = input - mean.view(shape)
        var = AllReduceSum.apply((centered * centered).sum(dims), sum_over_ranks=over_ranks) / total
        out = centered / (var + self.eps).sqrt().view(shape)
        if self.weight is not None:
            out = out * self.weight.view(shape)
        if self.bias is not None:
            out = out + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running_stats(mean, var, total)
        return out

    def _update_running_stats(self, mean: Tensor, var: Tensor, total: float) -> None:
        momentum = self._momentum_for_this_batch()
        with no_grad():
            unbiased = var * (total / max(total - 1.0, 1.0))
            self.running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
            self.running_var.mul_(1 - momentum).add_(unbiased.detach() * momentum)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every BatchNorm*D replaced by a SyncBatchNorm sharing its parameters
        and running statistics (the module itself when it is one)."""
        output = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            output = cls(module.num_features, module.eps, module.momentum, module.affine,
                         module.track_running_stats, process_group)
            if module.affine:
                output.weight = module.weight
                output.bias = module.bias
            output.running_mean = module.running_mean
            output.running_var = module.running_var
            output.num_batches_tracked = module.num_batches_tracked
            output.training = module.training
            if hasattr(module, "qconfig"):
                output.qconfig = module.qconfig
        for name, child in module.named_children():
            output.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return output
