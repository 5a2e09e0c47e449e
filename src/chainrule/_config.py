"""Process-wide settings torch keeps at the top level: BLAS threads, determinism, matmul
precision, and ``compile``.

Threads: chainrule's parallelism is NumPy's BLAS, so ``set_num_threads`` limits the BLAS pools
through threadpoolctl (``pip install "chainrule[threads]"``). Without threadpoolctl the call
warns that it cannot take effect and changes nothing. There is no inter-op pool: the inter-op
setting is recorded and returned, and controls nothing.

The default thread count is fitted to the cores other processes leave idle, once, at import
(``fit_threads_to_idle_cores``): OpenBLAS splits every GEMM statically between its threads and
spins while it waits for the slowest, so a thread that shares its core with a busy process stalls
all of them (docs/performance.md measures it). A count set by the user — ``set_num_threads``,
``CHAINRULE_NUM_THREADS`` or the BLAS/OpenMP variables — always wins.
"""

from __future__ import annotations

import functools
import os
import warnings

from . import _torch_function

__all__ = ["set_num_threads", "get_num_threads", "set_num_interop_threads", "get_num_interop_threads",
           "use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
           "is_deterministic_algorithms_warn_only_enabled", "set_float32_matmul_precision",
           "get_float32_matmul_precision", "compile", "set_warn_always", "is_warn_always_enabled",
           "set_flush_denormal", "set_deterministic_debug_mode", "get_deterministic_debug_mode"]

_THREADS_MISSING = ("chainrule.set_num_threads needs threadpoolctl to limit NumPy's BLAS threads: "
                    'pip install "chainrule[threads]"')
_blas_limits = None  # the threadpoolctl limiter in force; kept alive so the limit holds
_thread_budget = None  # get_num_threads() as last set or seen, for the hot paths that split work
_requested_threads = None  # the count set_num_threads was given (torch's intra-op count from then on)
_interop_threads = os.cpu_count() or 1
_deterministic = {"mode": False, "warn_only": False}
_matmul_precision = "highest"


def _check_positive(value, op: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise RuntimeError(f"{op} expects a positive integer, got {value!r}")
    return value


def set_num_threads(num: int) -> None:
    """Limit the BLAS thread pools NumPy uses (torch.set_num_threads)."""
    global _blas_limits, _requested_threads
    num_threads = num
    _check_positive(num_threads, "set_num_threads")
    _requested_threads = num_threads
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        warnings.warn(_THREADS_MISSING + "; the thread count is unchanged", stacklevel=2)
        return
    _blas_limits = threadpool_limits(limits=num_threads, user_api="blas")
    _set_thread_budget(num_threads)


def _set_thread_budget(threads: int | None) -> None:
    global _thread_budget
    _thread_budget = threads


def thread_budget() -> int:
    """The thread count chainrule's own parallel NumPy work may use: the BLAS pool's size,
    remembered (asking threadpoolctl each time costs about a millisecond)."""
    if _thread_budget is None:
        _set_thread_budget(get_num_threads())
    return _thread_budget


def torch_intra_op_threads() -> int:
    """The thread count torch's CPU kernels split their work between (``at::get_num_threads``), for
    the kernels whose float32 rounding depends on it (batch norm's channels-last statistics): the
    count given to set_num_threads, else OMP_NUM_THREADS or MKL_NUM_THREADS, else the machine's
    physical cores, as torch's default (cpuinfo's core count, all of the machine's)."""
    if _requested_threads is not None:
        return _requested_threads
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return _physical_cores()


@functools.cache
def _physical_cores() -> int:
    """(read once: the listing costs tens of microseconds, and batch norm asks on every step)"""
    cores = set()
    try:
        for cpu in os.listdir("/sys/devices/system/cpu"):
            topology = f"/sys/devices/system/cpu/{cpu}/topology"
            if cpu[3:].isdigit() and os.path.isdir(topology):
                with open(f"{topology}/physical_package_id") as package, open(f"{topology}/core_id") as core:
                    cores.add((package.read().strip(), core.read().strip()))
    except OSError:
        cores = set()
    return len(cores) or os.cpu_count() or 1


def get_num_threads() -> int:
    """Threads of NumPy's BLAS pool (the largest if several are loaded); without threadpoolctl,
    the CPU count, which is what OpenBLAS and MKL start with."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.cpu_count() or 1
    counts = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(counts) if counts else 1


# a user's thread setting, in the environment, that the default must not override
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def idle_cores(cpus: int, load: float) -> int:
    """The cores a machine with ``cpus`` cores and a 1-minute load average of ``load`` (runnable
    processes, ours not yet among them) leaves free; at least one."""
    return max(1, min(cpus, cpus - int(load + 0.5)))


def fit_threads_to_idle_cores() -> int | None:
    """Limit the BLAS pools to the idle cores when other processes keep some busy; returns the
    limit set, or None when it left the count alone (a quiet machine, a user's own setting,
    no load average or no threadpoolctl). ``CHAINRULE_NUM_THREADS=n`` sets n threads instead."""
    global _blas_limits
    requested = os.environ.get("CHAINRULE_NUM_THREADS")
    if requested:
        try:
            threads = _check_positive(int(requested), "CHAINRULE_NUM_THREADS")
        except (ValueError, RuntimeError):
            # a typo in the environment must not stop `import chainrule`: say so, and fit as usual
            warnings.warn(f"CHAINRULE_NUM_THREADS must be a positive integer, got {requested!r}; ignoring it",
                          RuntimeWarning, stacklevel=2)
        else:
            set_num_threads(threads)
            return threads
    if _blas_limits is not None or any(name in os.environ for name in _THREAD_VARIABLES):
        return None
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return None
    cpus = os.cpu_count() or 1
    threads = idle_cores(cpus, load)
    if threads >= cpus:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None  # nothing to act with; only an explicit set_num_threads call warns
    _blas_limits = threadpool_limits(limits=threads, user_api="blas")
    _set_thread_budget(threads)
    return threads


def set_num_interop_threads(num: int) -> None:
    """Recorded for ``get_num_interop_threads``; chainrule has no inter-op thread pool."""
    global _interop_threads
    _interop_threads = _check_positive(num, "set_num_interop_threads")


def get_num_interop_threads() -> int:
    return _interop_threads


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Recorded; chainrule's kernels are deterministic (NumPy's CPU BLAS gives the same bits run to
    run for the same thread count), so there is nothing to switch. The ops torch refuses in this mode
    on the CPU (max_unpool, put_ without accumulate: a repeated index keeps an unspecified value) are
    refused as torch refuses them (``alert_not_deterministic``), so a script portable to torch stays so."""
    _deterministic["mode"] = bool(mode)
    _deterministic["warn_only"] = bool(warn_only)


def alert_not_deterministic(caller: str) -> None:
    """torch's alertNotDeterministic: in deterministic mode, ``caller`` (torch's kernel name) raises
    RuntimeError, or warns under ``warn_only=True``, in torch's words."""
    if not _deterministic["mode"]:
        return
    issue = ("file an issue at https://github.com/pytorch/pytorch/issues to help us prioritize adding "
             "deterministic support for this operation.")
    if _deterministic["warn_only"]:
        warnings.warn(f"{caller} does not have a deterministic implementation, but you set "
                      f"'torch.use_deterministic_algorithms(True, warn_only=True)'. You can {issue}", UserWarning,
                      stacklevel=3)
        return
    raise RuntimeError(f"{caller} does not have a deterministic implementation, but you set "
                       "'torch.use_deterministic_algorithms(True)'. You can turn off determinism just for this "
                       "operation, or you can use the 'warn_only=True' option, if that's acceptable for your "
                       f"application. You can also {issue}")


def are_deterministic_algorithms_enabled() -> bool:
    return _deterministic["mode"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _deterministic["warn_only"]


_DEBUG_MODES = {"default": 0, "warn": 1, "error": 2}


def set_deterministic_debug_mode(debug_mode) -> None:
    """torch.set_deterministic_debug_mode: 0/'default' off, 1/'warn' warn-only, 2/'error' raise — the
    same switch as use_deterministic_algorithms."""
    if isinstance(debug_mode, str):
        if debug_mode not in _DEBUG_MODES:
            raise RuntimeError(f"invalid value of debug_mode, expected one of `default`, `warn`, `error`, but got "
                               f"{debug_mode}")
        debug_mode = _DEBUG_MODES[debug_mode]
    elif not isinstance(debug_mode, int):
        raise TypeError(f"debug_mode must be str or int, but got {type(debug_mode)}")
    if debug_mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got {debug_mode}")
    use_deterministic_algorithms(debug_mode != 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode() -> int:
    if not _deterministic["mode"]:
        return 0
    return 1 if _deterministic["warn_only"] else 2


def set_float32_matmul_precision(precision: str) -> None:
    """Recorded: 'highest', 'high' or 'medium'. chainrule's float32 matmuls are always computed
    in float32 ('highest'); the lower settings would allow TF32/bfloat16, which it has no path for."""
    global _matmul_precision
    if precision not in ("highest", "high", "medium"):
        raise ValueError(f"set_float32_matmul_precision: expected 'highest', 'high' or 'medium', got {precision!r}")
    _matmul_precision = precision


def get_float32_matmul_precision() -> str:
    return _matmul_precision


_warn_always = False


def set_warn_always(b: bool) -> None:
    """torch.set_warn_always: torch's warn-once warnings then warn on every call. chainrule's warnings
    go through Python's ``warnings``, whose filters decide repetition; the flag is kept for scripts
    that read it back."""
    global _warn_always
    _warn_always = bool(b)


def is_warn_always_enabled() -> bool:
    return _warn_always


_warned_once: set = set()


def warn_once(message: str, category: type = UserWarning, site: str | None = None) -> None:
    """torch's TORCH_WARN_ONCE: ``message`` is given once per process whatever the warnings filters
    (Python's default filter would repeat it at every new call site), and on every call under
    set_warn_always(True). Points at the first frame outside chainrule. A message that names its
    arguments passes its ``site``: torch's once is spent by the first of its messages."""
    if _warn_always:  # (torch's warn-always warns without spending the once: off again, it still warns)
        warnings.warn(message, category, stacklevel=_torch_function.user_stacklevel())
        return
    once = message if site is None else site
    if once in _warned_once:
        return
    _warned_once.add(once)
    warnings.warn(message, category, stacklevel=_torch_function.user_stacklevel())


def set_flush_denormal(mode: bool) -> bool:
    """torch.set_flush_denormal: False, "not supported here" — NumPy has no switch for the CPU's
    flush-to-zero mode, so subnormal floats stay subnormal (torch returns True where it can set it)."""
    return False


fit_threads_to_idle_cores()
