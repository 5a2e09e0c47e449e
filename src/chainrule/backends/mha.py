"""torch.backends.mha: the switch for MultiheadAttention's and TransformerEncoderLayer's fast path.

With it on (torch's default) those modules follow torch's fast path where its conditions hold:
a causal hint without a mask is dropped and a query whose every key is masked comes out NaN, as
torch's fused kernels give them; off, they always run the composed path.
"""

_is_fastpath_enabled: bool = True


def get_fastpath_enabled() -> bool:
    """Whether the fast path of TransformerEncoder and MultiheadAttention is enabled (it runs only
    where its conditions on the inputs hold)."""
    return _is_fastpath_enabled


def set_fastpath_enabled(value: bool) -> None:
    """Sets whether the fast path is enabled."""
    global _is_fastpath_enabled
    _is_fastpath_enabled = value
