"""torch._higher_order_ops.cond: ``cond_op``, the operator ``torch.cond`` runs.

Wrapper subclasses (torch's TwoTensor) compare the ``func`` their ``__torch_dispatch__`` receives
with it. Here ``cond`` takes its branch eagerly and never reaches a handler, so no ``func`` is
ever ``cond_op``; calling it is calling ``torch.cond``.
"""

from __future__ import annotations

from ..ops.compat import cond

__all__ = ["cond", "cond_op"]

cond_op = cond
