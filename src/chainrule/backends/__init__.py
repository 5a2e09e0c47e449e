"""chainrule.backends: torch.backends' flags, so scripts can set them as they do for torch.

chainrule runs on NumPy (and CuPy for a GPU): there is no cuDNN, MPS, oneDNN or TF32 path, so
the ``is_available()`` answers are False and the settable flags (``cudnn.benchmark``,
``cudnn.deterministic``, ``cuda.matmul.allow_tf32``, ...) are kept with torch's defaults but
change no computation; chainrule's kernels are deterministic on the CPU already.
"""

from . import cpu, cuda, cudnn, mha, mkl, mkldnn, mps, openmp, quantized  # noqa: F401

__all__ = ["cpu", "cuda", "cudnn", "mha", "mkl", "mkldnn", "mps", "openmp", "quantized"]

from contextlib import contextmanager  # noqa: E402

# torch forbids bare assignment to the backend flags after disable_global_flags() (its test
# suite's guard) unless inside __allow_nonbracketed_mutation(); chainrule's flags change no
# computation, so the state is kept and reported but assignments are not refused
__allow_nonbracketed_mutation_flag = True


def disable_global_flags() -> None:
    global __allow_nonbracketed_mutation_flag
    __allow_nonbracketed_mutation_flag = False


def flags_frozen() -> bool:
    return not __allow_nonbracketed_mutation_flag


@contextmanager
def __allow_nonbracketed_mutation():
    """Lets bare flag assignments through for the block (monai's set_determinism sets
    ``cudnn.deterministic`` inside it)."""
    global __allow_nonbracketed_mutation_flag
    old = __allow_nonbracketed_mutation_flag
    __allow_nonbracketed_mutation_flag = True
    try:
        yield
    finally:
        __allow_nonbracketed_mutation_flag = old
