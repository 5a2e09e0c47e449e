"""torch.backends.cpu: the CPU capability NumPy dispatches to."""

from __future__ import annotations


def get_cpu_capability() -> str:
    """The best SIMD extension NumPy's build found on this CPU, in torch's words
    ("AVX512", "AVX2", or "DEFAULT")."""
    import numpy as np

    features = getattr(np._core._multiarray_umath, "__cpu_features__", None) if hasattr(np, "_core") else None
    if features is None:
        return "DEFAULT"
    if features.get("AVX512F"):
        return "AVX512"
    if features.get("AVX2"):
        return "AVX2"
    return "DEFAULT"
