"""torch's top-level spellings of the nn ops: torch.batch_norm, torch.layer_norm, torch.embedding, ...

They are the same ops as torch.nn.functional's, with ATen's argument order and flags (weight
before the running statistics, ``train`` for ``training``, ``padding_idx=-1`` for none, the cuDNN
switches, which change nothing here), so each is a one-line call of the functional form.
"""

from __future__ import annotations

from ..tensor import Tensor
from . import dropout as _dropout
from . import embedding as _embedding
from . import normalization as _normalization

__all__ = ["batch_norm", "instance_norm", "layer_norm", "group_norm", "embedding", "dropout", "alpha_dropout",
           "feature_dropout"]
__not_methods__ = set(__all__)


def batch_norm(input: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
               running_var: Tensor | None, training: bool, momentum: float, eps: float,
               cudnn_enabled: bool = True) -> Tensor:
    """torch.batch_norm: F.batch_norm with the affine parameters first."""
    return _normalization.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                  running_var: Tensor | None, use_input_stats: bool, momentum: float, eps: float,
                  cudnn_enabled: bool = True) -> Tensor:
    """torch.instance_norm: F.instance_norm with the affine parameters first."""
    return _normalization.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats,
                                        momentum, eps)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5, cudnn_enable: bool = True) -> Tensor:
    """torch.layer_norm: F.layer_norm."""
    return _normalization.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5, cudnn_enabled: bool = True) -> Tensor:
    """torch.group_norm: F.group_norm."""
    return _normalization.group_norm(input, num_groups, weight, bias, eps)


def embedding(weight: Tensor, indices: Tensor, padding_idx: int = -1, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Tensor:
    """torch.embedding: F.embedding with the weight first; a negative padding_idx means none."""
    return _embedding.embedding(indices, weight, padding_idx if padding_idx >= 0 else None)


def dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """torch.dropout: F.dropout."""
    return _dropout.dropout(input, p, train)


def alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """torch.alpha_dropout: F.alpha_dropout."""
    return _dropout.alpha_dropout(input, p, train)


def feature_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """torch.feature_dropout: one draw per (sample, channel) of an (N, C, *) input."""
    return _dropout.feature_dropout(input, p, train)
