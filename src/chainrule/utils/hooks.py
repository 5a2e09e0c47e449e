"""torch.utils.hooks: where libraries import ``RemovableHandle`` from (the handle every ``register_*_hook`` returns)."""

from .._hook_handle import RemovableHandle

__all__ = ["RemovableHandle"]
