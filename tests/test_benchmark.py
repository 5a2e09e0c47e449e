"""The benchmark workloads run and do what they claim; the report names the machine and keeps
machines apart (timings are never asserted)."""

import json

import numpy as np
import pytest

import chainrule
from chainrule import benchmark

# the full-size scalar chain takes seconds; its own test below runs a short one. The training
# workloads step twice in test_training_workload_changes_the_parameters, conv2d in its GEMM-fraction test
TRAINED = {"mlp_step": "Sequential", "transformer_step": "TransformerEncoderLayer", "lstm_lm_step": "LanguageModel"}
QUICK = [name for name in benchmark.WORKLOADS if name not in ("scalar_chain", "conv2d", *TRAINED)]


@pytest.mark.parametrize("name", QUICK)
def test_each_workload_steps_on_chainrule(name):
    step = getattr(benchmark, name)(chainrule)
    step()
    step()


def _closure(step):
    return {c.cell_contents.__class__.__name__: c.cell_contents for c in step.__closure__}


@pytest.mark.parametrize("name,model", TRAINED.items())
def test_training_workload_changes_the_parameters(name, model):
    chainrule.manual_seed(0)
    step = getattr(benchmark, name)(chainrule)
    # the closure's optimizer owns the model; reach it through the step's cells
    params = list(_closure(step)[model].parameters())
    before = [p.detach().clone() for p in params]
    step()
    step()  # a second step: the optimizer's state from the first is read back
    changed = [not np.allclose(b.numpy(), a.detach().numpy()) for b, a in zip(before, params)]
    # an embedding row no token used keeps its value, but every parameter tensor moves
    assert all(changed)


def test_scalar_chain_backward_reaches_the_leaf():
    step = benchmark.scalar_chain(chainrule, nodes=2000)
    step()
    x = _closure(step)["Tensor"]
    assert x.grad.item() == pytest.approx(0.999 ** 1000, rel=1e-4)


def test_run_workload_reports_the_median_pair_ratio_when_torch_is_installed():
    pytest.importorskip("torch")
    result = benchmark.run_workload("op_overhead", reps=3, warmup=1)
    assert result["chainrule_ms"] > 0 and result["torch_ms"] > 0
    assert result["ratio_q1"] <= result["ratio"] <= result["ratio_q3"]
    assert "ratio" in benchmark.format_table([result])


def test_conv2d_reports_its_fraction_of_the_gemm():
    result = benchmark.run_workload("conv2d", reps=1, warmup=0, gemm_gflops=100.0)
    assert result["fraction_of_gemm"] == pytest.approx(result["chainrule_gflops"] / 100.0)
    assert "% of the GEMM" in benchmark.format_table([result])


def test_machine_names_cpu_blas_and_threads():
    info = benchmark.machine()
    assert info["processor"] and info["cpus"] >= 1
    assert info["blas_threads"] >= 1
    assert info["blas"] and info["blas"][0]["internal_api"]
    text = benchmark.format_machine(info)
    assert "BLAS:" in text and "threads:" in text and info["numpy"] in text


def test_forced_openblas_core_type_is_warned_about():
    info = dict(benchmark.machine(), OPENBLAS_CORETYPE="Prescott")
    assert any("OPENBLAS_CORETYPE=Prescott" in w for w in benchmark.machine_warnings(info))
    assert "WARNING: OPENBLAS_CORETYPE=Prescott" in benchmark.format_machine(info)


def test_more_threads_than_idle_cores_is_warned_about():
    # 2 threads on 2 cpus with a load of 6: no core is idle, the pairs' ratios are not the code's
    busy = dict(benchmark.machine(), cpus=2, blas_threads=2, load_average=6.0)
    warnings = benchmark.machine_warnings(busy)
    assert any("load average is 6.0 on 2 cpus" in w for w in warnings)
    assert "WARNING: the 1-minute load average is 6.0" in benchmark.format_machine(busy)
    quiet = dict(busy, load_average=0.2)
    assert not any("load average" in w for w in benchmark.machine_warnings(quiet))
    one_thread = dict(busy, blas_threads=1)  # one thread fits the core the load leaves
    assert not any("load average" in w for w in benchmark.machine_warnings(one_thread))
    unknown = dict(busy, load_average=None)  # a platform without a load average
    assert not any("load average" in w for w in benchmark.machine_warnings(unknown))


def test_runs_are_recorded_per_machine_and_compared_only_within_one(tmp_path):
    path = str(tmp_path / "results.json")
    here = benchmark.machine()
    # another kernel than this machine's own (the test machine may itself run SkylakeX)
    kernel = "Haswell" if here["blas"][0].get("architecture") == "SkylakeX" else "SkylakeX"
    other = dict(here, blas=[dict(here["blas"][0], architecture=kernel)])
    assert benchmark.machine_key(here) != benchmark.machine_key(other)
    result = {"workload": "mlp_step", "ratio": 1.0}
    assert benchmark.record({"date": "d1", "machine": here, "results": [result]}, path) is None
    assert benchmark.record({"date": "d2", "machine": other, "results": [result]}, path) is None
    previous = benchmark.record({"date": "d3", "machine": here, "results": [dict(result, ratio=0.9)]}, path)
    assert previous["date"] == "d1"
    assert "| mlp_step | 1.00 | 0.90 |" in benchmark.format_comparison([dict(result, ratio=0.9)], previous)
    with open(path) as f:
        store = json.load(f)
    assert sorted(len(m["runs"]) for m in store["machines"].values()) == [1, 2]
