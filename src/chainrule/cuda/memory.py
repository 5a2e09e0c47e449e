"""Peak GPU memory for chainrule.cuda: CuPy's memory pool counts the bytes in use
(``used_bytes``) and held (``total_bytes``) but keeps no peak, which ``max_memory_allocated``
needs.

The method: install an allocator (``cupy.cuda.set_allocator``) that forwards every request to the
default pool's ``malloc`` and then reads the pool's counters. Both counters grow only inside a
``malloc`` (a free lowers ``used_bytes``; only ``free_all_blocks`` lowers ``total_bytes``), so their
maxima are always reached right after one, and reading them there gives the exact peak, not a
sample of it. The cost is one Python call per allocation the pool serves.
"""

from __future__ import annotations

__all__ = ["PeakTracker"]


class PeakTracker:
    """Peak ``used_bytes`` and ``total_bytes`` of a CuPy memory pool since install or reset."""

    def __init__(self) -> None:
        self.module = None
        self.allocated = 0
        self.reserved = 0

    @property
    def installed(self) -> bool:
        return self.module is not None

    def install(self, cp) -> None:
        """Route ``cp``'s allocations through ``self.malloc``; once per module, and only where the
        module offers a pool and ``set_allocator`` (the CPU stand-in and test doubles may not)."""
        if self.module is cp:
            return
        set_allocator = getattr(getattr(cp, "cuda", None), "set_allocator", None)
        get_pool = getattr(cp, "get_default_memory_pool", None)
        if set_allocator is None or get_pool is None:
            return
        pool = get_pool()
        self.module = cp
        self.reset(pool)

        pool_malloc, used_bytes, total_bytes = pool.malloc, pool.used_bytes, pool.total_bytes

        def malloc(size: int):  # on every allocation: comparisons, not max() calls
            memory = pool_malloc(size)
            used = used_bytes()
            if used > self.allocated:
                self.allocated = used
            total = total_bytes()
            if total > self.reserved:
                self.reserved = total
            return memory

        set_allocator(malloc)

    def reset(self, pool) -> None:
        """Start counting again from the pool's present usage."""
        if pool is not None:
            self.allocated, self.reserved = int(pool.used_bytes()), int(pool.total_bytes())

    def peak_allocated(self, pool) -> int:
        return max(self.allocated, int(pool.used_bytes()))

    def peak_reserved(self, pool) -> int:
        return max(self.reserved, int(pool.total_bytes()))
