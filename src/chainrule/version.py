"""torch.version: the versions scripts print beside their results (``torch.version.cuda``).

``cuda`` is the CUDA runtime version CuPy runs on ("13.0"), or None without CuPy and a GPU —
what a CPU-only torch build answers. It is looked up on first access, because finding it
initialises CUDA.
"""

from __future__ import annotations

__all__ = ["__version__", "hip", "debug", "git_version", "torch_api_version"]  # and cuda, looked up on first access

__version__ = "0.1.0"
# the torch release whose API (names, defaults, errors, random streams) chainrule follows; what
# ``torch.__version__`` answers where ``import torch`` is answered by chainrule (tests/programs/_alias)
torch_api_version = "2.13.0"
hip = None
debug = False
git_version = "unknown"


def _cuda_runtime_version() -> str | None:
    from . import cuda as _cuda

    cp = _cuda._runtime()
    if cp is None or not hasattr(cp.cuda, "runtime") or not hasattr(cp.cuda.runtime, "runtimeGetVersion"):
        return None
    encoded = int(cp.cuda.runtime.runtimeGetVersion())  # 13000 for CUDA 13.0
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def __getattr__(name: str):
    if name == "cuda":
        value = _cuda_runtime_version()
        globals()["cuda"] = value
        return value
    raise AttributeError(f"module 'chainrule.version' has no attribute {name!r}")
