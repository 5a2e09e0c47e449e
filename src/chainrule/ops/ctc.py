"""ctc_loss: the connectionist temporal classification loss, by the forward-backward algorithm.

One Function computes every sample's negative log-likelihood ``-log p(target | log_probs)`` with the
alpha (forward) recursion in log space over the blank-extended target ``l'`` = (blank, l1, blank,
l2, ..., blank), vectorised over the batch and the target positions, stepping through time. Its
backward runs the beta recursion and gives torch's gradient for ``log_probs``:
``exp(lp) - exp(log Σ_{s: l'_s = c} α_t(s) β_t(s) + nll - lp)``, which is the gradient with respect
to the logits of a ``log_softmax`` producing ``lp`` (the two differ by ``exp(lp)``, a term the
log_softmax's backward removes), and zero past each sample's input length. As torch's, it is not
differentiable again. The reductions are composed with chainrule ops (``mean`` divides each loss
by its target length first), so their nodes are torch's.
"""

from __future__ import annotations

import numpy as np

from .._backend import array_module
from ..autograd import function as _function
from ..autograd.function import Function, without_derivative
from ..tensor import Tensor
from ._arg_parser import check_as, check_bool, check_int, int_list
from .elementwise import refuse_kernel
from .loss import _check_reduction

__all__ = ["ctc_loss"]
__not_methods__ = set(__all__)

# at::Reduction, the int F.ctc_loss hands torch.ctc_loss
_REDUCTION_ENUM = {"none": 0, "mean": 1, "sum": 2}


def _extended_labels(targets, target_lengths, blank: int, xp):
    """(N, 2·max_len + 1) blank-extended targets, and where the two-back skip is allowed."""
    batch = target_lengths.shape[0]
    longest = int(target_lengths.max()) if batch else 0
    width = 2 * longest + 1
    labels = xp.full((batch, width), blank, dtype=np.int64)
    # a padded target's tail may hold anything (-1, say): read as blank, it is never used
    in_target = xp.arange(longest)[None, :] < target_lengths[:, None]
    labels[:, 1::2] = xp.where(in_target, targets[:, :longest], blank)
    previous = xp.full((batch, width), blank, dtype=np.int64)
    previous[:, 2:] = labels[:, :-2]
    # torch's kernels test only that the label two back differs: a blank in the targets (an invalid
    # label) may still be skipped to, and a blank position never (its two-back is a blank too)
    skip = labels != previous
    skip[:, :2] = False
    return labels, skip


def _logsumexp3(a, b, c, xp):
    return xp.logaddexp(xp.logaddexp(a, b), c)


def _shift(x, by: int, xp):
    """x moved ``by`` places right along the last axis, -inf in front."""
    out = xp.full(x.shape, -np.inf, dtype=x.dtype)
    out[..., by:] = x[..., :-by]
    return out


class CtcLoss(Function):
    """Per-sample CTC negative log-likelihoods (N,) of log_probs (T, N, C)."""

    _array_forward = True
    node_name = "CtcLossBackward0"
    label = "ctc_loss"
    rule = "∂/∂lp = exp(lp) - exp(log Σ_{s: l'ₛ = c} αβ + nll - lp), zero past each input length"
    formula = "ctc_loss({0})"

    @staticmethod
    def forward(ctx, log_probs, targets, input_lengths, target_lengths, blank, zero_infinity):
        xp = array_module(log_probs)
        steps, batch, _ = log_probs.shape
        labels, skip = _extended_labels(targets, target_lengths, blank, xp)
        width = labels.shape[1]
        rows = xp.arange(batch)[:, None]
        # the extended positions each sample uses: 2·target_length + 1
        used = xp.arange(width)[None, :] < (2 * target_lengths + 1)[:, None]
        emissions = log_probs[:, rows, labels]  # (T, N, width): lp at each extended label
        alpha = xp.full((steps, batch, width), -np.inf, dtype=log_probs.dtype)
        if steps:
            alpha[0, :, :2] = emissions[0, :, :2]
            alpha[0] = xp.where(used, alpha[0], -np.inf)
        for t in range(1, steps):
            prev = alpha[t - 1]
            two_back = xp.where(skip, _shift(prev, 2, xp), -np.inf)
            alpha[t] = xp.where(used, _logsumexp3(prev, _shift(prev, 1, xp), two_back, xp) + emissions[t], -np.inf)
        last = xp.clip(input_lengths - 1, 0, None)
        final = alpha[last, xp.arange(batch)]  # (N, width): α at each sample's last step
        end = 2 * target_lengths
        ends = xp.logaddexp(final[xp.arange(batch), end],
                            xp.where(end > 0, final[xp.arange(batch), xp.maximum(end - 1, 0)], -np.inf))
        nll = -ends
        nll = xp.where(input_lengths == 0, xp.where(target_lengths == 0, 0.0, np.inf), nll).astype(log_probs.dtype)
        ctx.saved = (log_probs, alpha, emissions, labels, skip, used, input_lengths, nll)
        ctx.save_for_backward(log_probs)  # the tensor, for the gradient's (refusing) node
        ctx.zero_infinity = zero_infinity
        if zero_infinity:
            return xp.where(xp.isinf(nll), 0.0, nll).astype(log_probs.dtype)
        return nll

    @staticmethod
    def backward(ctx, grad):
        log_probs, alpha, emissions, labels, skip, used, input_lengths, nll = ctx.saved
        xp = array_module(log_probs)
        steps, batch, classes = log_probs.shape
        width = labels.shape[1]
        batch_index = xp.arange(batch)
        end = 2 * ((used.sum(1) - 1) // 2)
        # β_t(s): the log-probability of the rest of l' from s at t, emission at t included (as torch's)
        beta = xp.full((steps, batch, width), -np.inf, dtype=log_probs.dtype)
        skip_ahead = xp.zeros_like(skip)
        skip_ahead[:, :-2] = skip[:, 2:]
        for t in range(steps - 1, -1, -1):
            is_last = input_lengths - 1 == t
            # a path ends on the last blank or on the last label
            start = xp.full((batch, width), -np.inf, dtype=log_probs.dtype)
            start[batch_index, end] = 0.0
            start[batch_index[end > 0], end[end > 0] - 1] = 0.0
            if t + 1 < steps:
                nxt = beta[t + 1]
                ahead1 = xp.full(nxt.shape, -np.inf, dtype=nxt.dtype)
                ahead1[:, :-1] = nxt[:, 1:]
                ahead2 = xp.full(nxt.shape, -np.inf, dtype=nxt.dtype)
                ahead2[:, :-2] = nxt[:, 2:]
                step = _logsumexp3(nxt, ahead1, xp.where(skip_ahead, ahead2, -np.inf), xp)
            else:
                step = xp.full((batch, width), -np.inf, dtype=log_probs.dtype)
            inside = (t < input_lengths)[:, None]
            beta[t] = xp.where(used & inside, xp.where(is_last[:, None], start, step) + emissions[t], -np.inf)
        # log Σ_{s: l'_s = c} α β, per class: accumulate exp(αβ + nll) (≤ 1, so no overflow) class by class
        occupancy = xp.zeros((steps, batch, classes), dtype=log_probs.dtype)
        normalised = xp.exp(alpha + beta + nll[None, :, None])
        for s in range(width):
            occupancy[:, batch_index, labels[:, s]] += normalised[:, :, s]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_occupancy = xp.log(occupancy)
        gradient = xp.exp(log_probs) - xp.exp(log_occupancy - log_probs)
        inside = (xp.arange(steps)[:, None] < input_lengths[None, :])[:, :, None]
        gradient = xp.where(inside, gradient, 0.0)
        if ctx.zero_infinity:
            gradient = xp.where(xp.isinf(nll)[None, :, None], 0.0, gradient)
        (log_probs_tensor,) = ctx.saved_values
        return CtcGradient.apply(grad, log_probs_tensor, gradient=gradient.astype(log_probs.dtype))


class CtcGradient(without_derivative("aten::_ctc_loss_backward")):
    """The CTC gradient times grad_output. torch has no derivative for it (aten::_ctc_loss_backward):
    a second backward through it raises, as torch's does, rather than return a wrong (zero) one."""

    node_name = "torch::autograd::NotImplemented"  # (recorded under create_graph)
    label = "ctc_loss_backward"
    rule = "none: torch defines no derivative of the CTC gradient, and a second backward raises"

    @staticmethod
    def forward(ctx, grad, log_probs, *, gradient):
        return gradient * grad.reshape(1, -1, 1)


def _lengths(value, name: str, xp) -> np.ndarray:
    if isinstance(value, Tensor):
        return xp.asarray(value._data, dtype=np.int64).reshape(-1)
    # torch's parser: a tuple or list of ints within int64 (a single int, a str, None: TypeError)
    return xp.asarray(int_list(value, "ctc_loss", name, sized=False), dtype=np.int64).reshape(-1)


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """F.ctc_loss: CTC loss of log-probabilities (T, N, C) (or (T, C)) against targets.

    ``targets`` is padded (N, S) or the concatenation of every target (sum(target_lengths),);
    ``input_lengths`` and ``target_lengths`` are (N,) tensors or sequences. ``reduction='mean'``
    divides each loss by its target length and averages; ``zero_infinity`` turns the infinite losses
    of impossible alignments (and their gradients) into zeros.
    """
    _check_reduction(reduction)
    # torch.ctc_loss's two overloads take both lengths as tensors or both as int lists (a tensor beside a
    # list, or floats in a list: its TypeError listing both); the tensor one wants integral tensors first
    check_as("ctc_loss", log_probs, targets, input_lengths, target_lengths, blank, _REDUCTION_ENUM[reduction],
             zero_infinity)
    for name, value in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if isinstance(value, Tensor) and value._data.dtype.kind not in "iu":
            raise RuntimeError(f"{name} must be integral")
    blank = check_int(blank, "ctc_loss", "blank")
    zero_infinity = check_bool(zero_infinity, "ctc_loss", "zero_infinity")
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch(
            "ctc_loss.Tensor" if isinstance(input_lengths, Tensor) else "ctc_loss.IntList", ctc_loss,
            (log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    xp = array_module(log_probs._data)
    # torch's order: log_probs of any other dim count than 3 gets a batch dim (a 0-d one cannot),
    # then its kernel's dtypes (half and bfloat16 kept, as tests/test_bfloat16.py documents), then the dims
    if log_probs.dim() == 0:
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    if log_probs._data.dtype.kind in "biuc":
        refuse_kernel(log_probs, "ctc_loss_cpu")
    unbatched = log_probs.dim() != 3
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    if lp.dim() != 3:
        raise RuntimeError(f"Expected 3-dimensional tensor, but got {lp.dim()}-dimensional tensor for argument #1 "
                           "'log_probs' (while checking arguments for ctc_loss_allocate_outputs)")
    steps, batch, classes = lp.shape
    inputs = _lengths(input_lengths, "input_lengths", xp)
    lengths = _lengths(target_lengths, "target_lengths", xp)
    if not 0 <= blank < classes:
        raise RuntimeError("blank must be in label range")
    if inputs.shape[0] != batch:
        raise RuntimeError("input_lengths must be of size batch_size")
    if lengths.shape[0] != batch:
        raise RuntimeError("target_lengths must be of size batch_size")
    for name, values, most in (("input_lengths", inputs, steps), ("target_lengths", lengths, None)):
        if isinstance(values, np.ndarray) and values.size:
            if values.min() < 0:
                raise RuntimeError(f"Expected {name} to have value at least 0, but got value {int(values.min())} "
                                   "(while checking arguments for ctc_loss_allocate_outputs)")
            if most is not None and values.max() > most:
                raise RuntimeError(f"Expected {name} to have value at most {most}, but got value "
                                   f"{int(values.max())} (while checking arguments for ctc_loss_allocate_outputs)")
    target_array = targets._data.astype(np.int64)
    longest = int(lengths.max()) if batch else 0
    if target_array.ndim == 2 and not unbatched:
        if target_array.shape[0] != batch:
            raise RuntimeError(
                f"Expected tensor to have size {batch} at dimension 0, but got size {target_array.shape[0]} for "
                "argument #2 'targets' (while checking arguments for ctc_loss_allocate_outputs)")
        if target_array.shape[1] < longest:
            raise RuntimeError(
                f"Expected tensor to have size at least {longest} at dimension 1, but got size "
                f"{target_array.shape[1]} for argument #2 'targets' (while checking arguments for "
                "ctc_loss_allocate_outputs)"
            )
        padded = target_array
    else:
        flat = target_array.reshape(-1)
        total = int(lengths.sum())
        if flat.shape[0] != total:
            raise RuntimeError(
                f"Expected tensor to have size {total} at dimension 0, but got size {flat.shape[0]} for argument "
                "#2 'targets' (while checking arguments for ctc_loss_allocate_outputs)"
            )
        # the concatenated layout, laid out padded: row n holds flat[start_n : start_n + length_n]
        starts = xp.concatenate((xp.zeros(1, dtype=np.int64), xp.cumsum(lengths)[:-1]))
        columns = xp.arange(max(longest, 1))[None, :]
        padded = flat[xp.minimum(starts[:, None] + columns, max(total - 1, 0))] if total else \
            xp.zeros((batch, max(longest, 1)), dtype=np.int64)
    nll = CtcLoss.apply(lp, targets=padded, input_lengths=inputs, target_lengths=lengths, blank=blank,
                        zero_infinity=zero_infinity)
    if unbatched:
        nll = nll.reshape(())
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    divisor = Tensor._make(xp.maximum(lengths, 1).astype(log_probs._data.dtype))
    return (nll / (divisor.reshape(()) if unbatched else divisor)).mean()
