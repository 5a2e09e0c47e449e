"""torch.nn.utils.stateless.functional_call (the older home of torch.func.functional_call)."""

from __future__ import annotations

__all__ = ["functional_call"]


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights: bool = True,
                    strict: bool = False):
    """Call ``module`` with the given tensors in place of its parameters and buffers (by name);
    the module is left as it was. Same as ``chainrule.func.functional_call``."""
    from ...func import functional_call as _functional_call

    return _functional_call(module, parameters_and_buffers, args, kwargs, tie_weights=tie_weights, strict=strict)
