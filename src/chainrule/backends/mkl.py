"""torch.backends.mkl: whether NumPy's BLAS is Intel MKL (asked through threadpoolctl)."""


def is_available() -> bool:
    """True when NumPy is linked against MKL; False when it is not or threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return False
    return any(pool.get("internal_api") == "mkl" for pool in threadpool_info())
