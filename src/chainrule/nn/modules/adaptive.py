"""AdaptiveLogSoftmaxWithLoss (Grave et al., 2016, "Efficient softmax approximation for GPUs"):
a softmax over many classes split into a frequent head and rarer tail clusters.

The head scores the ``cutoffs[0]`` most frequent classes plus one entry per cluster; cluster ``i``
scores its own classes through a low-rank projection (``in_features / div_value**(i+1)`` wide). A
class's log-probability is its head entry's, or its cluster's head entry plus its score inside the
cluster. Parameter names and shapes are torch's, so its state dicts load.
"""

from __future__ import annotations

import collections

from ..._naming import in_torchs_words
from ...tensor import Tensor
from .. import functional as F
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = collections.namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """torch.nn.AdaptiveLogSoftmaxWithLoss(in_features, n_classes, cutoffs, div_value=4.0,
    head_bias=False). ``forward(input, target)`` returns ``(output, loss)``: each row's target
    log-probability and the mean negative log-likelihood; ``log_prob`` and ``predict`` score every class."""

    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0, head_bias: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__()
        cutoffs = list(cutoffs)
        if not cutoffs:
            raise in_torchs_words(ValueError("cutoffs should be a sequence of length larger than 0"))
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise in_torchs_words(ValueError("cutoffs should be a sequence of unique, positive integers sorted in an "
                                             "increasing order, where each value is between 1 and n_classes-1"))
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        factory = {"device": device, "dtype": dtype}
        self.head = Linear(in_features, self.head_size, bias=head_bias, **factory)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            width = int(in_features // (div_value ** (i + 1)))
            size = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, width, bias=False, **factory),
                                        Linear(width, size, bias=False, **factory)))

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for projection in self.tail:
            for layer in projection:
                layer.reset_parameters()

    def forward(self, input: Tensor, target: Tensor) -> _ASMoutput:
        if target.dim() == 1:
            if input.size(0) != target.size(0):
                raise RuntimeError("Input and target should have the same size in the batch dimension.")
            if input.dim() != 2:
                raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with size "
                                   f"{input.size()}")
        elif target.dim() == 0:
            if input.dim() != 1:
                raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with size "
                                   f"{input.size()}")
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        batched = target.dim() > 0
        x = input if batched else input.unsqueeze(0)
        t = target if batched else target.unsqueeze(0)
        bounds = [0] + self.cutoffs
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.n_classes):
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                               f"[{int(t.min())}, {int(t.max())}] were found. ")
        # which head entry each row reads: its class in the shortlist, else its cluster's entry
        head_entry = t.clone()
        output = x.new_zeros(t.shape[0])
        for i in range(1, len(bounds) - 1):
            rows = ((t >= bounds[i]) & (t < bounds[i + 1])).nonzero().reshape(-1)
            if rows.numel() == 0:
                continue
            head_entry = head_entry.index_fill(0, rows, self.shortlist_size + i - 1)
            scores = F.log_softmax(self.tail[i - 1](x.index_select(0, rows)), dim=1)
            inside = scores.gather(1, (t.index_select(0, rows) - bounds[i]).unsqueeze(1)).squeeze(1)
            output = output.index_copy(0, rows, inside)
        head_logprob = F.log_softmax(self.head(x), dim=1)
        output = output + head_logprob.gather(1, head_entry.unsqueeze(1)).squeeze(1)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _full_log_prob(self, input: Tensor, head_output: Tensor) -> Tensor:
        # written slice by slice into one buffer, as torch does: the result's node is CopySlices
        out = input.new_empty((head_output.size(0), self.n_classes))
        head_logprob = F.log_softmax(head_output, dim=1)
        out[:, :self.shortlist_size] = head_logprob[:, :self.shortlist_size]
        for i, (start, stop) in enumerate(zip(self.cutoffs, self.cutoffs[1:])):
            cluster_logprob = F.log_softmax(self.tail[i](input), dim=1)
            out[:, start:stop] = cluster_logprob + head_logprob[:, self.shortlist_size + i].unsqueeze(1)
        return out

    def log_prob(self, input: Tensor) -> Tensor:
        """Log-probabilities of every class, (N, n_classes) for (N, in_features); torch takes no 1-D input
        here (an IndexError), unlike ``forward``."""
        return self._full_log_prob(input, self.head(input))

    def predict(self, input: Tensor) -> Tensor:
        """The most likely class of each row (argmax of log_prob). As torch, the tail clusters are scored
        only for the rows whose head argmax is a cluster: a shortlist word that beats every cluster's
        total probability beats every word inside them."""
        head_output = self.head(input)
        output = head_output.argmax(dim=1)
        not_in_shortlist = output >= self.shortlist_size
        if not bool(not_in_shortlist.any()):
            return output
        if bool(not_in_shortlist.all()):
            return self._full_log_prob(input, head_output).argmax(dim=1)
        log_prob = self._full_log_prob(input[not_in_shortlist], head_output[not_in_shortlist])
        output[not_in_shortlist] = log_prob.argmax(dim=1)
        return output
