"""chainrule._parallel: large NumPy work cut into rows over the thread budget."""

import threading

import numpy as np
import pytest

from chainrule import _config, _parallel


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setattr(_config, "_thread_budget", 2)


def test_pieces_small_job_stays_whole(two_threads):
    assert _parallel.pieces(1000, 1000) == 1
    assert _parallel.pieces(1, 10**8) == 1  # one row cannot be cut


def test_pieces_large_job_uses_the_budget(two_threads):
    assert _parallel.pieces(700, 7_000_000) == 2


def test_over_rows_is_bit_identical_and_runs_on_two_threads(two_threads):
    x = np.random.default_rng(0).standard_normal((700, 1000)).astype(np.float32)
    out = np.empty_like(x)
    seen = set()

    def work(start, stop):
        seen.add(threading.get_ident())
        np.exp(x[start:stop], out=out[start:stop])

    _parallel.over_rows(work, 700, x.size)
    np.testing.assert_array_equal(out, np.exp(x))
    assert len(seen) == 2


def test_over_rows_covers_every_row_once(two_threads):
    hits = np.zeros(1001, dtype=np.int64)

    def work(start, stop):
        hits[start:stop] += 1

    _parallel.over_rows(work, 1001, 10**7)
    assert (hits == 1).all()


def test_a_piece_that_splits_again_runs_whole(two_threads):
    inner_counts = []

    def work(start, stop):
        inner_counts.append(_parallel.pieces(stop - start, 10**8))

    _parallel.over_rows(work, 10, 10**8)
    assert inner_counts == [1, 1]


def test_an_error_in_a_piece_reaches_the_caller(two_threads):
    def work(start, stop):
        if start > 0:
            raise ValueError("piece failed")

    with pytest.raises(ValueError, match="piece failed"):
        _parallel.over_rows(work, 10, 10**8)


def test_set_num_threads_sets_the_budget(monkeypatch):
    pytest.importorskip("threadpoolctl")
    for name in ("_blas_limits", "_thread_budget", "_requested_threads"):  # (set_num_threads records them)
        monkeypatch.setattr(_config, name, getattr(_config, name))
    before = _config.get_num_threads()
    try:
        _config.set_num_threads(1)
        assert _config.thread_budget() == 1
    finally:
        _config.set_num_threads(before)
    assert _config.thread_budget() == before
