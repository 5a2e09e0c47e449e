"""The benchmark workloads run and do what they claim (timings are never asserted)."""

import numpy as np
import pytest

import chainrule
from chainrule import benchmark


@pytest.mark.parametrize("name", benchmark.WORKLOADS)
def test_each_workload_steps_on_chainrule(name):
    step = getattr(benchmark, name)(chainrule)
    step()
    step()


def test_training_workload_changes_the_parameters():
    chainrule.manual_seed(0)
    step = benchmark.mlp_step(chainrule)
    # the closure's optimizer owns the model; reach it through the step's cells
    cells = {c.cell_contents.__class__.__name__: c.cell_contents for c in step.__closure__}
    before = [p.detach().clone() for p in cells["Sequential"].parameters()]
    step()
    after = list(cells["Sequential"].parameters())
    assert all(not np.allclose(b.numpy(), a.detach().numpy()) for b, a in zip(before, after))


def test_run_workload_reports_ratio_when_torch_is_installed():
    pytest.importorskip("torch")
    result = benchmark.run_workload("op_overhead", reps=2, warmup=1)
    assert result["chainrule_ms"] > 0 and result["torch_ms"] > 0
    assert result["ratio"] == pytest.approx(result["chainrule_ms"] / result["torch_ms"])
    assert "ratio" in benchmark.format_table([result])
