"""``chainrule bench --device cuda``: the GPU benchmark's table, or one line naming the extras."""

from __future__ import annotations

import json

import pytest

from chainrule import _backend, benchmark_cuda, cli


def test_without_a_gpu_one_line_names_the_extras(monkeypatch, capsys):
    monkeypatch.setattr(_backend, "cuda_available", lambda: False)
    assert cli.main(["bench", "--device", "cuda"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and captured.out == ""
    assert err.startswith("chainrule bench: error: --device cuda needs CuPy and a CUDA GPU")
    assert "chainrule[cuda12]" in err and "chainrule[cuda13]" in err


def test_with_a_gpu_runs_the_cuda_benchmark(monkeypatch, capsys, tmp_path):
    # the GPU run made small and on the CPU (the path benchmark_cuda's own tests use in CI)
    calls = []
    real = benchmark_cuda.run_cuda_benchmarks

    def on_the_cpu(workloads, reps):
        calls.append((workloads, reps))
        return real(workloads, reps, device="cpu", size="small", warmup=1)

    monkeypatch.setattr(_backend, "cuda_available", lambda: True)
    monkeypatch.setattr(benchmark_cuda, "run_cuda_benchmarks", on_the_cpu)
    # chainrule alone (torch's import costs seconds; tests/cuda/test_benchmark_cuda.py runs both)
    monkeypatch.setattr(benchmark_cuda, "_load_torch", lambda: None)
    out_json = tmp_path / "cuda.json"
    assert cli.main(["bench", "--device", "cuda", "mlp_step", "op_overhead", "--reps", "2",
                     "--json", str(out_json)]) == 0
    assert calls == [(["mlp_step", "op_overhead"], 2)]
    out = capsys.readouterr().out
    assert out.startswith("GPU: ") and "| workload | chainrule | torch |" in out
    assert "| mlp_step |" in out and "| op_overhead |" in out
    results = json.loads(out_json.read_text())
    assert [r["workload"] for r in results] == ["mlp_step", "op_overhead"]
    assert all(r["chainrule_ms"] > 0 for r in results)


@pytest.mark.parametrize("workload", ["gemm", "cnn_step"])
def test_cpu_only_workloads_are_refused_on_cuda(monkeypatch, capsys, workload):
    monkeypatch.setattr(_backend, "cuda_available", lambda: True)
    assert cli.main(["bench", "--device", "cuda", workload]) == 2
    assert f"not {workload}" in capsys.readouterr().err
