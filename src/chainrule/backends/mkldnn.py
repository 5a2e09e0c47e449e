"""torch.backends.mkldnn (oneDNN): chainrule has no oneDNN, but follows the kernels torch's CPU
dispatch picks, and ``enabled = False`` turns the oneDNN ones off there as in torch (gelu takes
ATen's formula; a convolution its slow kernel's rounding and refusals: ops.cpu_features.onednn_enabled)."""

from contextlib import contextmanager

enabled = True
deterministic = False
allow_tf32 = True
fp32_precision = "none"


def is_available() -> bool:
    return False


@contextmanager
def flags(enabled: bool = False, deterministic: bool = False, allow_tf32: bool = True, fp32_precision: str = "none"):
    """Sets the switches for the block and puts them back after (torch.backends.mkldnn.flags: the
    way to change them once torch.backends.disable_global_flags() has frozen bare assignments)."""
    names = ("enabled", "deterministic", "allow_tf32", "fp32_precision")
    before = tuple(globals()[name] for name in names)
    globals().update(zip(names, (enabled, deterministic, allow_tf32, fp32_precision)))
    try:
        yield
    finally:
        globals().update(zip(names, before))
