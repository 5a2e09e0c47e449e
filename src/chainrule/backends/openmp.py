"""torch.backends.openmp: chainrule has no OpenMP kernels of its own (BLAS threads are NumPy's)."""


def is_available() -> bool:
    return False
