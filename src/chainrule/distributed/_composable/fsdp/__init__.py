"""torch.distributed._composable.fsdp: the old import path of ``fully_shard`` and ``FSDPModule``
(opacus's PrivacyEngine imports ``FSDPModule`` from here)."""

from ...fsdp import (  # noqa: F401
                     CPUOffloadPolicy,
                     FSDPModule,
                     MixedPrecisionPolicy,
                     OffloadPolicy,
                     fully_shard,
                     register_fsdp_forward_method,
)
