"""chainrule.backends: torch.backends' flags, so scripts can set them as they do for torch.

chainrule runs on NumPy (and CuPy for a GPU): there is no cuDNN, MPS, oneDNN or TF32 path, so
the ``is_available()`` answers are False and the settable flags (``cudnn.benchmark``,
``cudnn.deterministic``, ``cuda.matmul.allow_tf32``, ...) are kept with torch's defaults but
change no computation; chainrule's kernels are deterministic on the CPU already.
"""

from . import cpu, cuda, cudnn, mkl, mkldnn, mps, openmp  # noqa: F401

__all__ = ["cpu", "cuda", "cudnn", "mkl", "mkldnn", "mps", "openmp"]
