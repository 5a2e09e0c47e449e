"""Large NumPy work on more than one core.

NumPy's ufuncs and copies release the GIL but run on one core, while the matrix products beside
them use every BLAS thread: at training sizes the single-threaded copies around a convolution, or
the exp and log of a 10,000-class softmax, take as long as the GEMMs. ``over_rows`` cuts such work
along its first axis and runs the pieces at once, one per thread of chainrule's thread budget
(``set_num_threads``, fitted to the idle cores at import). Each row is computed by the same code
on the same values as it would be in one piece, so the result is bit-identical.

Only array-level code that writes disjoint rows belongs here: no Python objects are shared
between the pieces and no graph is recorded.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from . import _config

# Below this many elements per piece, handing a piece to a thread (about 20 µs) costs more
# than the piece saves.
MIN_ELEMENTS_PER_PIECE = 1 << 17

_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()
_inside_piece = threading.local()


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chainrule-numpy")
            _pool_workers = workers
        return _pool


def pieces(rows: int, elements: int) -> int:
    """How many pieces ``over_rows`` cuts ``rows`` rows holding ``elements`` elements into."""
    if getattr(_inside_piece, "active", False):
        return 1  # a piece that splits again would wait on the pool it is running in
    return max(1, min(_config.thread_budget(), rows, elements // MIN_ELEMENTS_PER_PIECE))


def _run_piece(work, start: int, stop: int) -> None:
    _inside_piece.active = True
    try:
        work(start, stop)
    finally:
        _inside_piece.active = False


def over_rows(work, rows: int, elements: int) -> None:
    """Call ``work(start, stop)`` over ``range(rows)``: once when the job (``elements`` elements
    in all) is small, else in one piece per thread, the calling thread taking the first. Returns
    when every piece is done; the first exception raised by a piece is raised here."""
    # (below two pieces' worth, ``pieces`` would say one: skip asking it, this runs per small op)
    count = 1 if elements < 2 * MIN_ELEMENTS_PER_PIECE else pieces(rows, elements)
    if count == 1:
        work(0, rows)
        return
    bounds = [rows * i // count for i in range(count + 1)]
    pool = _executor(count - 1)
    futures = [pool.submit(_run_piece, work, bounds[i], bounds[i + 1]) for i in range(1, count)]
    try:
        _run_piece(work, bounds[0], bounds[1])
    finally:
        for future in futures:
            future.result()
