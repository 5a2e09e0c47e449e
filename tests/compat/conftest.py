"""Fixtures shared by the compatibility tests."""
import pytest


@pytest.fixture
def per_slice_ops(monkeypatch):
    """The names of the ops vmap's replay ran once per slice (no batching rule), and "replay failed"
    where it ran the function slice by slice."""
    from chainrule import _vmap_batched

    found = []
    replay = _vmap_batched.replay

    def counted(trace, *args, **kwargs):
        out = replay(trace, *args, **kwargs)
        found.extend(["replay failed"] if out is None else [trace.ops[i][0].__name__ for i in trace.per_slice])
        return out

    monkeypatch.setattr(_vmap_batched, "replay", counted)
    return found
