"""The GPU benchmark's code path, run on the CPU with small shapes (CI has no GPU): every workload
builds and times on both libraries, the table reports times, ratios and failures."""

import pytest

import chainrule
from chainrule import benchmark_cuda


@pytest.fixture(scope="module")
def cpu_results():
    torch = pytest.importorskip("torch")
    return benchmark_cuda.run_cuda_benchmarks(reps=1, device="cpu", size="small", warmup=1,
                                              libs={"chainrule": chainrule, "torch": torch})


def test_every_workload_times_both_libraries(cpu_results):
    assert [r["workload"] for r in cpu_results] == benchmark_cuda.WORKLOADS
    for r in cpu_results:
        assert not [key for key in r if key.endswith("_error")], r
        assert r["chainrule_ms"] > 0 and r["torch_ms"] > 0
        assert r["ratio"] == pytest.approx(r["chainrule_ms"] / r["torch_ms"])
    by_name = {r["workload"]: r for r in cpu_results}
    # the small MLP: 4 layers of 16×32 @ 32×32, three matmuls each way
    assert by_name["mlp_step"]["flops"] == 3 * 4 * 2 * 16 * 32 * 32
    assert by_name["mlp_step"]["chainrule_tflops"] > 0
    assert by_name["op_overhead"]["chainrule_us_per_op"] == pytest.approx(by_name["op_overhead"]["chainrule_ms"] * 5)


def test_table_has_a_row_per_workload_with_its_target(cpu_results):
    table = benchmark_cuda.format(cpu_results)
    for name, target in benchmark_cuda.TARGETS.items():
        assert f"| {name} |" in table and f"≤ {target}" in table
    assert "TFLOP/s" in table and "µs/op" in table


def test_a_failing_library_is_reported_not_raised():
    class Broken:
        def __getattr__(self, name):
            raise RuntimeError(f"no {name} here")

    results = benchmark_cuda.run_cuda_benchmarks(["op_overhead"], reps=1, device="cpu", size="small", warmup=0,
                                                 libs={"chainrule": chainrule, "torch": Broken()})
    assert "chainrule_ms" in results[0] and "ratio" not in results[0]
    assert results[0]["torch_error"] == "RuntimeError: no from_numpy here"
    assert "- op_overhead torch: RuntimeError: no from_numpy here" in benchmark_cuda.format_table(results)
    with pytest.raises(ValueError, match="unknown workloads"):
        benchmark_cuda.run_cuda_benchmarks(["nope"])


def test_gpu_description_names_the_libraries():
    text = benchmark_cuda.gpu_description()
    assert text.startswith("GPU: ") and "NumPy" in text
