"""tests/conftest.py's guard: a test that leaves a process-wide switch turned fails, named, and the
plain switches are turned back for the tests after it; a wrapper subclass instance that only a
reference cycle keeps alive is collected, not blamed."""

import pytest

import chainrule
from tests.compat.test_s19_subclasses import make_pair
from tests.conftest import judge_switches, switches


def _judged(turn) -> str | None:
    """The guard's message for a test body ``turn`` (None: passed)."""
    before = switches()
    turn()
    try:
        judge_switches(before, "tests/x.py::test_turns")
    except pytest.fail.Exception as failure:
        return str(failure)
    return None


@pytest.mark.parametrize("turn, says", [
    (lambda: chainrule.set_default_dtype(chainrule.float64), "default dtype"),
    (lambda: chainrule.set_grad_enabled(False), "grad mode"),
    (lambda: chainrule.autograd.set_detect_anomaly(True), "anomaly mode"),
    (lambda: chainrule.use_deterministic_algorithms(True, warn_only=True), "deterministic"),
], ids=["default dtype", "grad mode", "anomaly mode", "deterministic"])
def test_a_switch_left_turned_fails_the_test_by_name_and_is_turned_back(turn, says):
    before = switches()
    message = _judged(turn)
    assert message is not None and message.startswith(f"tests/x.py::test_turns left process-wide state changed ({says}:")
    assert switches() == before


def _without_dispatch() -> None:
    if switches()[0] != ("active_dispatch", False):
        pytest.skip("a dispatch mode or a wrapper instance is live here already")


def test_a_wrapper_instance_kept_alive_fails_the_test():
    _without_dispatch()
    kept = []
    message = _judged(lambda: kept.append(make_pair(chainrule)))
    assert message is not None and "(active_dispatch: (False,) -> (True,))" in message
    kept.clear()


def test_a_wrapper_instance_only_a_cycle_keeps_is_collected_not_blamed():
    def cycle():
        pair = make_pair(chainrule)
        pair.itself = pair

    _without_dispatch()
    assert _judged(cycle) is None
    assert switches()[0] == ("active_dispatch", False)
