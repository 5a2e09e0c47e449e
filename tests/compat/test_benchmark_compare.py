"""benchmark.Compare (torch.utils.benchmark's table of many Measurements), printed as torch prints it."""

import pytest

from chainrule.utils import benchmark

torch = pytest.importorskip("torch")
import torch.utils.benchmark as torch_benchmark  # noqa: E402
from torch.utils.benchmark.utils.common import TaskSpec as TorchTaskSpec  # noqa: E402

# (stmt, label, sub_label, description, num_threads, env, per-block seconds): two labels, two
# thread counts, two envs, a missing cell, a repeated TaskSpec (pooled), tight and spread times
CASES = [
    ("torch.bmm(x, y)", "matmul", "bmm", "10x64", 1, None, [8.1e-3, 8.0e-3, 8.2e-3, 8.05e-3]),
    ("torch.matmul(x, y)", "matmul", "matmul", "10x64", 1, None, [7.9e-3, 9.5e-3, 6.1e-3, 12.0e-3]),
    ("torch.bmm(x, y)", "matmul", "bmm", "10x128", 1, None, [2.31e-2, 2.29e-2]),
    ("torch.bmm(x, y)", "matmul", "bmm", "10x64", 4, None, [3.3e-3, 3.1e-3, 3.2e-3]),
    ("torch.bmm(x, y)", "matmul", "bmm", "10x64", 1, None, [8.3e-3, 8.4e-3]),
    ("x.relu()", "unary", None, "n=4", 1, "env A", [1.234e-6, 1.251e-6, 1.262e-6]),
    ("x.relu()", "unary", None, "n=4", 1, "env B", [2.02e-6, 2.5e-6, 1.7e-6, 3.1e-6]),
    ("x.sigmoid()", "unary", "sigmoid", "n=8", 1, "env A", [4.5e-7, 4.4e-7]),
]


def _measurements(module, spec_type):
    return [module.Measurement(number_per_run=10, raw_times=list(times),
                               task_spec=spec_type(stmt=stmt, setup="pass", label=label, sub_label=sub_label,
                                                   description=description, num_threads=threads, env=env))
            for stmt, label, sub_label, description, threads, env, times in CASES]


def _both(configure=lambda compare: None):
    ours = benchmark.Compare(_measurements(benchmark, benchmark.TaskSpec))
    theirs = torch_benchmark.Compare(_measurements(torch_benchmark.utils.common, TorchTaskSpec))
    configure(ours)
    configure(theirs)
    return str(ours), str(theirs)


@pytest.mark.parametrize("configure", [
    lambda compare: None,
    lambda compare: compare.trim_significant_figures(),
    lambda compare: compare.highlight_warnings(),
    lambda compare: compare.colorize(),
    lambda compare: compare.colorize(rowwise=True),
    lambda compare: (compare.trim_significant_figures(), compare.highlight_warnings(), compare.colorize()),
], ids=["plain", "trimmed", "warnings", "columnwise", "rowwise", "all"])
def test_compare_prints_torchs_table(configure):
    ours, theirs = _both(configure)
    assert ours == theirs


def test_print_writes_the_table_and_a_newline(capsys):
    benchmark.Compare(_measurements(benchmark, benchmark.TaskSpec)).print()
    torch_benchmark.Compare(_measurements(torch_benchmark.utils.common, TorchTaskSpec)).print()
    ours_and_theirs = capsys.readouterr().out
    assert ours_and_theirs[:len(ours_and_theirs) // 2] == ours_and_theirs[len(ours_and_theirs) // 2:]


def test_measurement_row_name_env_figures_and_merge_match_torch():
    ours = _measurements(benchmark, benchmark.TaskSpec)
    theirs = _measurements(torch_benchmark.utils.common, TorchTaskSpec)
    for mine, torchs in zip(ours, theirs):
        assert (mine.as_row_name, mine.env, mine.significant_figures) == (
            torchs.as_row_name, torchs.env, torchs.significant_figures)
    merged, torch_merged = benchmark.Measurement.merge(ours), torch_benchmark.Measurement.merge(theirs)
    assert len(merged) == len(torch_merged) == len(CASES) - 1  # the repeated bmm TaskSpec pools its times
    for mine, torchs in zip(merged, torch_merged):
        assert mine.number_per_run == torchs.number_per_run == 1
        assert mine.times == pytest.approx(torchs.times)


def test_timer_measurements_go_into_a_table():
    results = [benchmark.Timer(stmt=stmt, setup="x = torch.ones(8)", label="ops", sub_label=name,
                               description="8").timeit(20) for name, stmt in (("add", "x + x"), ("mul", "x * x"))]
    lines = str(benchmark.Compare(results)).splitlines()
    assert lines[0].startswith("[") and " ops " in lines[0]
    assert lines[2].startswith("1 threads: ")
    assert [line.split("|")[0].strip() for line in lines[3:5]] == ["add", "mul"]
    assert lines[-1].startswith("Times are in ")


def test_refuses_what_is_not_a_measurement_in_torchs_words():
    with pytest.raises(ValueError) as ours:
        benchmark.Compare([1.5])
    with pytest.raises(ValueError) as theirs:
        torch_benchmark.Compare([1.5])
    assert str(ours.value) == str(theirs.value)
