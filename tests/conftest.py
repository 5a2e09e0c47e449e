"""The suite's two profiles. CI runs the fixed budget; ``CHAINRULE_LONG_TESTS=1`` adds the tests
marked ``long``: the same checks over more cases, or oracle runs whose result is pinned another way
(torch's runs of the program corpus, whose calibration digests are checked in every profile). Big
case lists choose their CI subset with tests/_profile.py's ``in_ci``."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from tests._assert_rewrite_cache import share_the_rewrites
from tests._profile import LONG


def pytest_configure(config):
    config.addinivalue_line("markers", "long: runs only with CHAINRULE_LONG_TESTS=1 (the long profile)")
    config.addinivalue_line("markers", "pairwise_in_ci(seed, strength=2): CI runs few cases covering every pair "
                            "(strength 3: triple) of parameters' values, CHAINRULE_LONG_TESTS=1 all (tests/_profile.py)")
    _idle_openmp_threads_sleep()
    if not hasattr(config, "workerinput"):  # once, in the process that starts pytest-xdist's workers
        _compile_chainrule_for_every_interpreter()
    else:  # each worker rewrites its share of the test modules' asserts for all of them
        share_the_rewrites(config)


def _idle_openmp_threads_sleep():
    """torch's OpenMP threads (GNU libgomp: intra-op kernels and MKL) spin on a core after each
    parallel region before they sleep; with two pytest-xdist workers on two cores, each worker's
    spinning threads take the core the other worker runs on. ``OMP_WAIT_POLICY=PASSIVE`` has them
    sleep at once: the same thread count and the same split of the work (the same bits), without the
    spin. Set here, before any interpreter of the suite loads libgomp (this process, the workers it
    starts and every process they start inherit it); a value already in the environment is kept."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _compile_chainrule_for_every_interpreter():
    """Under ``PYTHONDONTWRITEBYTECODE=1`` (the CI machine's environment) no interpreter writes
    bytecode, so each one the suite starts (MPI ranks and launchers, the program corpus, CLI runs,
    fresh-process checks, each pytest-xdist worker) compiled chainrule's source again: about 3 s of
    CPU each on the 2-core machine. Python still reads the bytecode it finds in ``__pycache__``
    (ignored by git), so one compile of the package here serves them all; a source file changed
    later is compiled again on import, as always."""
    if not sys.flags.dont_write_bytecode:
        return  # the first interpreter to import chainrule writes its bytecode
    import compileall

    spec = importlib.util.find_spec("chainrule")
    if spec is not None and spec.submodule_search_locations:
        compileall.compile_dir(Path(list(spec.submodule_search_locations)[0]), quiet=1)


def pytest_collection_finish(session):
    """What collection built (every module, torch's test databases) lives to the end of the worker:
    frozen, the automatic full collections during the tests walk only what the tests made. (A test
    that freezes the heap itself goes through tests/_heap.py's frozen_heap, which leaves this freeze.)"""
    import gc

    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    if LONG:
        return
    skip = pytest.mark.skip(reason="long profile: set CHAINRULE_LONG_TESTS=1")
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(skip)
    _run_pairwise_covers_in_ci(config, items)


def _run_pairwise_covers_in_ci(config, items):
    """A test marked ``pairwise_in_ci(seed)`` runs in CI only the cases of its parameters' product
    that cover every pair of two parameters' values (tests/_profile.py's ``pairwise_in_ci``); the
    others are deselected (not skipped: the long profile, CHAINRULE_LONG_TESTS=1, runs them all,
    under the same ids). Asking for one case by its id still runs it: it covers its own pairs."""
    groups: dict[tuple, list] = {}
    for item in items:
        mark = item.get_closest_marker("pairwise_in_ci")
        if mark is not None and hasattr(item, "callspec"):
            key = (item.parent.nodeid, item.originalname, mark.kwargs["seed"], mark.kwargs.get("strength", 2))
            groups.setdefault(key, []).append(item)
    if not groups:
        return
    from tests._profile import pairwise_in_ci

    kept = {id(item) for (_, _, seed, strength), group in groups.items()
            for item in pairwise_in_ci(group, seed, strength)}
    dropped = [item for group in groups.values() for item in group if id(item) not in kept]
    dropped_ids = {id(item) for item in dropped}
    items[:] = [item for item in items if id(item) not in dropped_ids]
    config.hook.pytest_deselected(items=dropped)


@pytest.fixture(autouse=True)
def _torch_distributions_validation_restored():
    """Real ``torch.compile`` turns torch.distributions' argument validation off for the whole
    process; tests that compare with torch after one that compiled (in the same worker) would see
    torch skip its checks. Put the setting back after every test that may have changed it."""
    import sys

    torch = sys.modules.get("torch")
    distributions = getattr(torch, "distributions", None) if torch is not None else None
    saved = getattr(getattr(distributions, "Distribution", None), "_validate_args", None)
    yield
    if saved is not None and distributions.Distribution._validate_args is not saved:
        distributions.Distribution.set_default_validate_args(saved)


def switches() -> tuple | None:
    """The process-wide switches a test may turn and must turn back: the op hot path's dispatch
    checks (a live ``__torch_dispatch__`` wrapper instance or an entered mode sets
    ``active_dispatch``, and every later op and backward rule then takes the slower, dispatching
    path), torch-function modes, grad and inference mode, the default dtype, anomaly detection,
    deterministic algorithms, an autocast region and a running vmap (the switches fused paths such as
    F.rms_norm's ask before they run). None until chainrule is imported. (``opmath_hook`` is none of
    them: it stays set by design once float16 or bfloat16 is used, so no path may ask it to choose.)"""
    function = sys.modules.get("chainrule.autograd.function")
    if function is None:
        return None
    from chainrule import _config, _dtype, _torch_function, _vmap_frames
    from chainrule._backend import autocast_hook
    from chainrule.autograd import grad_mode

    flags = _torch_function.flags
    return (("active_dispatch", function.active_dispatch is not None),
            ("active_profiler", function.active_profiler is not None),
            ("active_extension", function.active_extension is not None),
            ("torch_function modes", len(_torch_function.mode_stack), flags.modes_live, flags.arguments_off,
             flags.mode_dispatch_off),
            ("grad mode", grad_mode.state.enabled, grad_mode.state.inference),
            ("default dtype", _dtype._default_float),
            ("anomaly mode", function._anomaly.enabled, function._anomaly.check_nan),
            ("deterministic", _config._deterministic["mode"], _config._deterministic["warn_only"]),
            ("autocast region", str(autocast_hook.cpu_dtype), autocast_hook.cast is not None),
            ("vmap", function.tracing_ops, len(_vmap_frames._frames)))


_switches_before = pytest.StashKey[tuple]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Note the switches (``switches``) before the test and its fixtures, to fail it after their
    teardown if it leaves one turned: the tests after it in the same pytest-xdist worker would run
    other paths than users do, and pass or fail by their order. A fixture that turns a switch for
    its tests must be function-scoped. (Two hooks rather than an autouse fixture: no fixture
    machinery per test.)"""
    before = switches()
    if before is not None:
        item.stash[_switches_before] = before


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    before = item.stash.get(_switches_before, None)
    if before is not None:
        judge_switches(before, item.nodeid)


def judge_switches(before: tuple, nodeid: str) -> None:
    """Fail ``nodeid`` (after turning back what can be) where ``switches()`` differs from ``before``.
    A wrapper subclass instance that only a reference cycle keeps alive (a node of its graph holding
    it) is the collector's to free, as in a user's program: collected here before judging."""
    after = switches()
    if after == before:
        return
    if after[0] != before[0]:
        import gc

        for generation in (1, 2):  # (the young generations first: a full collection takes far longer)
            gc.collect(generation)
            after = switches()
            if after == before:
                return
    _restore_what_can_be(before)
    changed = "; ".join(f"{then[0]}: {then[1:]} -> {now[1:]}" for then, now in zip(before, after) if then != now)
    pytest.fail(f"{nodeid} left process-wide state changed ({changed}); restore it in the test "
                "(a fixture or try/finally), or drop the references that keep a wrapper subclass alive",
                pytrace=False)


def _restore_what_can_be(before: tuple) -> None:
    """Turn back the plain switches among ``before`` (not entered modes or live instances), so that
    one failing test does not fail the rest of its worker's tests too."""
    from chainrule import _config, _dtype
    from chainrule.autograd import function, grad_mode

    state = dict((entry[0], entry[1:]) for entry in before)
    grad_mode.state.enabled, grad_mode.state.inference = state["grad mode"]
    _dtype.set_default_dtype(state["default dtype"][0])
    function._anomaly.enabled, function._anomaly.check_nan = state["anomaly mode"]
    _config._deterministic["mode"], _config._deterministic["warn_only"] = state["deterministic"]
