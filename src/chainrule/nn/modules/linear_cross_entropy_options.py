"""torch.nn.modules.linear_cross_entropy_options: the options of the batch-chunked linear cross entropy."""

from __future__ import annotations

import dataclasses

__all__ = ["LinearCrossEntropyOptions"]


@dataclasses.dataclass(frozen=True)
class LinearCrossEntropyOptions:
    """torch.nn.LinearCrossEntropyOptions: how torch's batch-chunked ``linear_cross_entropy`` splits
    the batch (never materialising the whole logits tensor). chainrule accepts the options and runs
    the reference computation (the same loss and gradients, without the memory saving)."""

    allow_retain_graph: bool = False
    batch_chunk_size: int | None = None
    chunking_method: str | None = "auto"
    acc_policy: str = "auto"
    acc_dtype: object = None
