"""torch.backends.cpu: the CPU capability NumPy dispatches to."""

from __future__ import annotations


def get_cpu_capability() -> str:
    """The best SIMD extension NumPy's build found on this CPU, in torch's words
    ("AVX512", "AVX2", or "DEFAULT")."""
    from ..ops.cpu_features import FEATURES

    if FEATURES.get("AVX512F"):
        return "AVX512"
    if FEATURES.get("AVX2"):
        return "AVX2"
    return "DEFAULT"
