"""torch.nn.attention: the scaled-dot-product-attention backend selector.

chainrule has one attention implementation (scaled_dot_product_attention composed from matmul
and softmax), so ``sdpa_kernel`` checks its argument as torch does and sets the backend switches
(``torch.backends.cuda.flash_sdp_enabled()`` and the others) for its block; the one thing they
change is whether an explicit mask may come with ``is_causal=True`` (torch's CPU flash kernel).
"""

from __future__ import annotations

import contextlib
import enum

__all__ = ["SDPBackend", "sdpa_kernel"]


class SDPBackend(enum.IntEnum):
    """torch.nn.attention.SDPBackend, with torch's values."""

    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """Context manager selecting attention backends (a SDPBackend or a list of them), raising torch's
    AssertionError for anything else."""
    if not isinstance(backends, (list, SDPBackend)):
        raise AssertionError(f"Backend must be an instance of SDPBackend or a list of SDPBackend instances, "
                             f"got {type(backends).__name__}")
    if isinstance(backends, list) and not all(isinstance(b, SDPBackend) for b in backends):
        raise AssertionError("Backend must be an instance of SDPBackend or a list of SDPBackend instances, got "
                             f"a list holding {sorted({type(b).__name__ for b in backends})}")
    from ...backends import cuda as sdp_switches

    chosen = set(backends) if isinstance(backends, list) else {backends}
    saved = dict(sdp_switches._sdp_enabled)
    # as torch, the block turns on exactly the backends named (torch.backends.cuda.flash_sdp_enabled()
    # and the others read them), and the switches come back after it
    sdp_switches._sdp_enabled.update(flash=SDPBackend.FLASH_ATTENTION in chosen, math=SDPBackend.MATH in chosen,
                                     mem_efficient=SDPBackend.EFFICIENT_ATTENTION in chosen,
                                     cudnn=SDPBackend.CUDNN_ATTENTION in chosen)
    try:
        yield {}
    finally:
        sdp_switches._sdp_enabled.update(saved)
