"""torch.backends.mkldnn (oneDNN): chainrule has no oneDNN, but follows the kernels torch's CPU
dispatch picks, and ``enabled = False`` turns the oneDNN ones off there as in torch (gelu takes
ATen's formula; a convolution its slow kernel's rounding and refusals: ops.cpu_features.onednn_enabled)."""

enabled = True


def is_available() -> bool:
    return False
