"""torch.masked: reductions and normalizations that ignore the elements a boolean ``mask`` leaves out.

Each function takes torch's arguments (``input, dim, *, keepdim, dtype, mask``); the mask broadcasts
to the input. The masked-out elements are replaced by the operation's identity (0 for sum, 1 for
prod, -inf for amax/logsumexp/softmax, +inf for amin/softmin, NaN for median) before the ordinary
chainrule op runs, so a fully masked-out slice gives what torch gives (the identity, or NaN for
mean/var/std/median, a NaN row for softmax) and the masked-out elements get a zero gradient.
``MaskedTensor`` (a prototype in torch) is not provided.
"""

from __future__ import annotations

from ._ops import (
                   amax,
                   amin,
                   argmax,
                   argmin,
                   cumprod,
                   cumsum,
                   log_softmax,
                   logaddexp,
                   logsumexp,
                   mean,
                   median,
                   norm,
                   normalize,
                   prod,
                   softmax,
                   softmin,
                   std,
                   sum,
                   var,
)

__all__ = ["amax", "amin", "argmax", "argmin", "cumprod", "cumsum", "log_softmax", "logaddexp", "logsumexp", "mean",
           "median", "norm", "normalize", "prod", "softmax", "softmin", "std", "sum", "var"]
