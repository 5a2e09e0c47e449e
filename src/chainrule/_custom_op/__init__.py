"""torch._custom_op: torch's first custom-operator package, whose ``impl.get_ctx`` fake kernels
still call (torch's own custom_op_db does); the rest is torch.library's (chainrule.library)."""

from . import impl  # noqa: F401  (torch._custom_op.impl is reached as an attribute)
