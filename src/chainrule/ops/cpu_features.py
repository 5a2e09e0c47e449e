"""What this CPU offers, as NumPy's build read it: the flags on which torch's CPU dispatch and oneDNN
pick a kernel (and with it an order of summation or the words of a refusal) that chainrule follows."""

from __future__ import annotations

import sys

import numpy as np

# (as torch.backends.cpu reads them: a NumPy without ``_core`` reports nothing, taken as absent)
FEATURES: dict = (getattr(np._core._multiarray_umath, "__cpu_features__", None) if hasattr(np, "_core") else None) or {}

# AVX-512 F, BW, VL and DQ: the subsets torch's AVX512 kernels are built for, and oneDNN's avx512_core,
# which its bfloat16 kernels need (torch's mkldnn_bf16_device_check; the avx2_vnni_2 it also accepts is
# not reported by NumPy, and is taken as absent)
AVX512_CORE = all(FEATURES.get(name) for name in ("AVX512F", "AVX512BW", "AVX512VL", "AVX512DQ"))
# oneDNN's float16 kernels (torch's mkldnn_fp16_device_check)
AVX512_FP16 = bool(FEATURES.get("AVX512FP16"))


def onednn_enabled() -> bool:
    """torch.backends.mkldnn.enabled (torch's userEnabledMkldnn): False sends every op whose CPU
    dispatch would pick oneDNN (gelu, convolution) to ATen's own kernel. Read where the user sets
    it; backends sits above ops, so it is looked up, not imported."""
    mkldnn = sys.modules.get("chainrule.backends.mkldnn")
    return bool(getattr(mkldnn, "enabled", True))
