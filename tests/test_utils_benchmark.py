"""chainrule.utils.benchmark (torch.utils.benchmark's Timer and Measurement), against torch's."""

import re

import pytest

import chainrule
from chainrule.utils import benchmark

torch = pytest.importorskip("torch")
import torch.utils.benchmark as torch_benchmark  # noqa: E402

# block times with a spread (a warning), without one, and a single block: every form of the print
RAW_TIMES = [[0.0031, 0.0024, 0.0042, 0.0029, 0.0050, 0.0027], [2.0e-6, 2.01e-6, 2.02e-6, 1.99e-6], [1.5]]


def _printed(measurement) -> list[str]:
    # the first line names the class and its address, which differ by design
    return repr(measurement).splitlines()[1:]


@pytest.mark.parametrize("raw_times", RAW_TIMES, ids=["spread", "tight", "one"])
@pytest.mark.parametrize("spec", [dict(stmt="f(x)", setup="pass"),
                                  dict(stmt="a = 1\nb = a + 1", setup="x = 2", sub_label="int"),
                                  dict(stmt="g()", setup="x = 1\ny = 2", label="Relu", sub_label="float",
                                       description="n=4", num_threads=4)], ids=["stmt", "multiline", "labelled"])
def test_measurement_statistics_and_print_match_torch(raw_times, spec):
    ours = benchmark.Measurement(number_per_run=10, raw_times=raw_times, task_spec=benchmark.TaskSpec(**spec))
    theirs = torch_benchmark.Measurement(number_per_run=10, raw_times=raw_times,
                                         task_spec=torch_benchmark.utils.common.TaskSpec(**spec))
    assert ours.times == pytest.approx(theirs.times)
    assert (ours.median, ours.mean, ours.iqr) == pytest.approx((theirs.median, theirs.mean, theirs.iqr))
    assert ours.has_warnings == theirs.has_warnings and ours.title == theirs.title
    assert ours.stmt == theirs.stmt and ours.num_threads == theirs.num_threads
    assert _printed(ours) == _printed(theirs)
    assert re.fullmatch(r"<chainrule\.utils\.benchmark\.Measurement object at 0x[0-9a-f]+>", repr(ours).splitlines()[0])


def test_timeit_runs_the_statement_in_the_given_globals_after_a_warm_up():
    calls = []
    timer = benchmark.Timer(stmt="calls.append(torch.ones(2).sum().item())", globals={"calls": calls})
    measurement = timer.timeit(300)
    assert len(calls) == 3 + 300  # a warm-up of number // 100 runs, then the timed block
    assert calls[0] == 2.0  # `torch` inside stmt is chainrule, as torch's Timer puts torch there
    assert measurement.number_per_run == 300 and len(measurement.raw_times) == 1
    assert measurement.times[0] == pytest.approx(measurement.raw_times[0] / 300)
    assert measurement.median > 0
    assert _printed(measurement)[0] == "calls.append(torch.ones(2).sum().item())"
    assert _printed(measurement)[2] == "  1 measurement, 300 runs , 1 thread"


def test_setup_runs_once_and_stmt_is_dedented():
    timer = benchmark.Timer(stmt="""
        y = x * 2
        """, setup="x = chainrule.arange(3)", globals={"chainrule": chainrule})
    assert timer.timeit(5).stmt == "y = x * 2"


def test_blocked_autorange_spends_at_least_min_run_time_in_blocks_of_one_size():
    measurement = benchmark.Timer(stmt="sum(range(50))").blocked_autorange(min_run_time=0.05)
    assert sum(measurement.raw_times) >= 0.05
    assert measurement.number_per_run >= 1 and len(measurement.times) == len(measurement.raw_times)


def test_adaptive_autorange_stops_at_max_run_time():
    seen = []
    measurement = benchmark.Timer(stmt="sum(range(50))").adaptive_autorange(
        threshold=0.0, max_run_time=0.05, callback=lambda number, spent: seen.append((number, spent)))
    # an impossible threshold: only the time limit ends it
    assert sum(measurement.raw_times) > 0.05 and len(seen) == len(measurement.raw_times)


def test_what_torch_refuses_is_refused_alike():
    with pytest.raises(ValueError, match="only a `str` stmt"):
        benchmark.Timer(stmt=lambda: None)
    with pytest.raises(ValueError, match="global_setup is C\\+\\+ only"):
        benchmark.Timer(stmt="pass", global_setup="#include <x>")
    with pytest.raises(NotImplementedError, match="blocked_autorange"):
        benchmark.Timer().autorange()
    with pytest.raises(ValueError, match="Invalid language `fortran`"):
        benchmark.Timer(language="fortran")
    # torch compiles C++ statements; chainrule has no C++ frontend and says so
    with pytest.raises(NotImplementedError, match="no C\\+\\+ frontend"):
        benchmark.Timer("x * y;", language=benchmark.Language.CPP)
    assert [m.name for m in benchmark.Language] == [m.name for m in torch_benchmark.Language]
