"""A test that collects garbage to see what its own code freed need not walk the whole heap: late in a
pytest-xdist worker it holds about half a million objects, and one full ``gc.collect()`` took seconds
(machine loaded). Frozen first, a collection walks only what was made since; what existed before
cannot be what the test frees."""
import contextlib
import gc


@contextlib.contextmanager
def frozen_heap():
    """The heap as it stands frozen for the block (``gc.collect()`` inside walks only what is newer).
    Where something froze the heap already (tests/conftest.py, after collection), the block's freeze
    is left for it to undo: ``gc.unfreeze()`` would thaw that too. What it freezes then stays frozen,
    so the young generations' garbage is collected first rather than kept for the worker's life."""
    already = gc.get_freeze_count()
    if already:
        gc.collect(1)
    gc.freeze()
    try:
        yield
    finally:
        if not already:
            gc.unfreeze()
