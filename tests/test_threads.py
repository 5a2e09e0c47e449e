"""The default BLAS thread count: fitted to the cores other processes leave idle, never over a
count the user set."""

import pytest

import chainrule
from chainrule import _config

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.mark.parametrize("cpus,load,expected", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 7.0, 1), (16, 3.2, 13), (1, 0.0, 1), (4, 0.5, 3),
])
def test_idle_cores(cpus, load, expected):
    assert _config.idle_cores(cpus, load) == expected


@pytest.fixture
def fresh(monkeypatch):
    """A process that has set no thread count yet, restored afterwards."""
    original = chainrule.get_num_threads()
    for name in ("_thread_budget", "_requested_threads"):  # (set_num_threads records them)
        monkeypatch.setattr(_config, name, getattr(_config, name))
    monkeypatch.setattr(_config, "_blas_limits", None)
    for name in ("CHAINRULE_NUM_THREADS", *_config._THREAD_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    chainrule.set_num_threads(original)


def test_busy_machine_gets_the_idle_cores(fresh):
    fresh.setattr(_config.os, "cpu_count", lambda: 2)
    fresh.setattr(_config.os, "getloadavg", lambda: (1.1, 1.0, 1.0))
    assert _config.fit_threads_to_idle_cores() == 1
    assert chainrule.get_num_threads() == 1


def test_quiet_machine_keeps_the_count(fresh):
    fresh.setattr(_config.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    before = chainrule.get_num_threads()
    assert _config.fit_threads_to_idle_cores() is None
    assert chainrule.get_num_threads() == before


def test_a_users_blas_variable_wins(fresh):
    fresh.setattr(_config.os, "getloadavg", lambda: (50.0, 50.0, 50.0))
    fresh.setenv("OPENBLAS_NUM_THREADS", "2")
    assert _config.fit_threads_to_idle_cores() is None


def test_an_earlier_set_num_threads_wins(fresh):
    chainrule.set_num_threads(1)
    fresh.setattr(_config.os, "getloadavg", lambda: (50.0, 50.0, 50.0))
    assert _config.fit_threads_to_idle_cores() is None
    assert chainrule.get_num_threads() == 1


def test_chainrule_num_threads_sets_the_count(fresh):
    fresh.setenv("CHAINRULE_NUM_THREADS", "1")
    assert _config.fit_threads_to_idle_cores() == 1
    assert chainrule.get_num_threads() == 1
    for bad in ("two", "0", "-3"):
        fresh.setenv("CHAINRULE_NUM_THREADS", bad)
        with pytest.warns(RuntimeWarning, match="CHAINRULE_NUM_THREADS must be a positive integer"):
            _config.fit_threads_to_idle_cores()  # ignored: the default fitting runs instead
