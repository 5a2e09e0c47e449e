"""torch.__config__: what the library was built with, as text.

Libraries read it to pick code paths (PyTorch Geometric looks for ``USE_MKL=OFF`` in ``show()`` at
import). chainrule is Python on NumPy, so the text describes that build in torch's layout: a
``Build settings:`` line with torch's keys, each answered for chainrule (no MKL, MKL-DNN, CUDA
libraries or OpenMP of its own; the GPU, where there is one, is reached through CuPy).
"""

from __future__ import annotations

import importlib.util
import os
import platform

import numpy as np

__all__ = ["show", "parallel_info"]

_BUILD_SETTINGS = {
    "BLAS_INFO": "numpy", "LAPACK_INFO": "numpy", "USE_CUDNN": "OFF", "USE_MKL": "OFF",
    "USE_MKLDNN": "OFF", "USE_MPI": "OFF", "USE_NCCL": "OFF", "USE_OPENMP": "OFF", "USE_ROCM": "OFF",
}


def show() -> str:
    """torch.__config__.show: the build's components and settings, one ``  - `` line each."""
    from .version import __version__

    # CUDA comes at run time with CuPy, when it is installed
    cuda = {"USE_CUDA": "1" if importlib.util.find_spec("cupy") is not None else "0"}
    settings = ", ".join(f"{key}={value}" for key, value in (_BUILD_SETTINGS | cuda).items())
    lines = ["chainrule built with:",
             f"  - Python {platform.python_version()}",
             f"  - NumPy {np.__version__} (every CPU kernel; the GPU, if any, through CuPy)",
             f"  - Build settings: {settings}, CHAINRULE_VERSION={__version__}, "]
    return "\n".join(lines) + "\n"


def parallel_info() -> str:
    """torch.__config__.parallel_info: how work is spread over threads: NumPy's BLAS pool, and
    chainrule's own pool that splits large elementwise work by rows (``_parallel``)."""
    from ._config import get_num_interop_threads, get_num_threads

    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    env = "".join(f"\t{name} : {os.environ.get(name, '[not set]')}\n" for name in names)
    return (f"ATen/Parallel:\n\tat::get_num_threads() : {get_num_threads()}\n"
            f"\tat::get_num_interop_threads() : {get_num_interop_threads()}\n"
            f"os.cpu_count() : {os.cpu_count()}\nEnvironment variables:\n{env}"
            "ATen parallel backend: chainrule's thread pool (large elementwise work split by rows)\n")
