"""scripts/gpu_check.py, the prepared GPU check, in its dry-run mode on the CPU (CI has no GPU):
every section runs and reports, and a failing device or section is reported, never raised."""

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_runs_every_section_and_writes_the_summary(gpu_check, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu_check.main(["--dry-run", "--limit", "12", "--reps", "1"]) == 0
    text = (tmp_path / "gpu_check.txt").read_text()
    assert text == capsys.readouterr().out
    assert "SECTION FAILED" not in text and "FAIL " not in text
    for title in ("== environment", "== registry", "== training step", "== host transfers", "== fused kernels",
                  "== fused dispatch", "== benchmarks"):
        assert title in text
    assert "passed 12, failed 0" in text
    assert "12 of 12 within" in text
    assert "device cpu: the device-only checks are skipped" in text
    for model in ("MLP", "CNN", "GRU", "LSTM", "Transformer"):
        # on the CPU every array is a host array, so the count itself means nothing here
        assert re.search(rf"{model}: \d+ host transfers in one step", text)
    assert "| transformer_step |" in text
    results = (tmp_path / "gpu_check.json").read_text()
    assert '"passed": 12' in results


def _real_gpu() -> bool:
    try:
        import cupy
    except ImportError:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver
        return False


@pytest.mark.skipif(_real_gpu(), reason="a real GPU is here: device='cuda' works")
def test_a_device_that_fails_is_counted_case_by_case(gpu_check, capsys):
    # without a GPU, device='cuda' fails in every case: each failure is reported, the script goes on
    gpu_check.main(["--dry-run", "--device", "cuda", "--limit", "3", "--sections", "registry,models"])
    text = capsys.readouterr().out
    assert "passed 0, failed 3" in text and "FAIL    3 × CudaUnavailableError: device='cuda' needs CuPy" in text
    assert text.count("   FAIL ") == 1 + 5  # the registry's failures grouped by error, then each model
    assert "done in" in text


def test_a_section_that_raises_is_reported_and_the_rest_still_run(gpu_check, monkeypatch, capsys):
    def broken(report, options):
        raise KeyError("missing piece")

    monkeypatch.setitem(gpu_check.SECTIONS, "environment", broken)
    gpu_check.main(["--dry-run", "--limit", "2", "--sections", "environment,registry"])
    text = capsys.readouterr().out
    assert "SECTION FAILED: KeyError: 'missing piece'" in text and "passed 2, failed 0" in text


def test_host_transfer_counter_sees_conversions_of_the_watched_array_type(gpu_check):
    counter = gpu_check.HostTransferCounter(np.ndarray)
    watched, other = np.ones(3), [1.0]

    def step():
        watched.tolist()
        watched[:1].item()
        other.copy()
        float(watched[:1].reshape(()))  # seen through sys.monitoring (Python >= 3.12) only
        return "result"

    assert counter.run(step) == "result"
    expected = ["tolist", "item"] + (["float"] if hasattr(sys, "monitoring") else [])
    assert [call.split(" at ")[0] for call in counter.calls] == expected
    assert __file__ in counter.calls[0]
    assert sys.getprofile() is None


def test_standin_runs_the_cuda_path_on_the_cpu(gpu_check, capsys):
    from chainrule import _backend

    if not hasattr(_backend, "use_standin_cuda"):
        pytest.skip("this seam has no CuPy stand-in")
    gpu_check.main(["--dry-run", "--standin", "--device", "cuda", "--limit", "5",
                    "--sections", "environment,registry,transfers"])
    text = capsys.readouterr().out
    assert "gpu: chainrule stand-in" in text and "5 cases from" in text and "on cuda against cpu" in text
    assert "MLP: 0 host transfers in one step; the stand-in counted" in text
    # clip_grad_norm_ then each optimizer: torch's own host reads only (Adafactor's norms, GradScaler's found_inf)
    for optimizer, torchs in (("Adam", 0), ("SGD momentum", 0), ("Adafactor", 4), ("GradScaler+AdamW", 1)):
        assert f"   clip_grad_norm_ + {optimizer}: {torchs} host transfers in one step, torch's {torchs}\n" in text
    assert not _backend.cuda_module() or "standin" not in _backend.cuda_module().__name__  # switched back off


def test_standin_runs_the_later_parts_on_the_cuda_path(gpu_check, capsys):
    gpu_check.main(["--dry-run", "--standin", "--sections", "later"])
    text = capsys.readouterr().out
    for check in ("fused cross-entropy and layer norm", "multi-tensor Adam", "randperm and multinomial on the device",
                  "load map_location", "autocast float16 step", "train --nprocs 2 on the device"):
        assert f"   ok   {check}: " in text
    assert "FAIL" not in text and "0 host transfers" in text


def test_standin_runs_what_sessions_8_to_11_added_on_the_cuda_path(gpu_check, capsys):
    gpu_check.main(["--dry-run", "--standin", "--sections", "recent"])
    text = capsys.readouterr().out
    for check in ("mixed-precision norms float16", "mixed-precision norms bfloat16", "float16 batch norm",
                  "autocast conv and norms", "LSTM proj_size", "packed recurrent layers", "recurrent argument checks",
                  "torch.normal overloads", "out= on the matmul family", "second order", "writes through views"):
        assert f"   ok   {check}: " in text
    assert "FAIL" not in text and "in ['float16', 'float16', 'float32', 'float32']" in text


def test_standin_runs_collectives_ddp_and_cuda_random_streams():
    # its own process: section 7 starts MPI (a world of size 1), which must not outlive the check
    import subprocess

    pytest.importorskip("mpi4py", reason='the collectives need mpi4py: pip install "chainrule[mpi]"')
    result = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--standin", "--sections", "distributed"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("CUDA random streams", "collectives on cuda tensors", "DDP step on cuda"):
        assert f"   ok   {check}: " in result.stdout, result.stdout
    assert "FAIL" not in result.stdout and "0 host transfers" in result.stdout


def test_without_a_gpu_a_real_run_says_so_and_exits_2(gpu_check, capsys, monkeypatch, tmp_path):
    import types

    import chainrule

    # CuPy installed, but without a driver (as on a CPU machine): every runtime call fails
    def no_driver():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version")

    fake = types.SimpleNamespace(__version__="14.2.0", cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDeviceCount=no_driver, runtimeGetVersion=lambda: 13020, driverGetVersion=lambda: 0)))
    monkeypatch.setattr(gpu_check, "_cupy", lambda: fake)
    monkeypatch.setattr(chainrule.cuda, "is_available", lambda: False)
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu_check.main(["--sections", "environment,registry,models"]) == 2
    text = capsys.readouterr().out
    assert "no GPU: CuPy 14.2.0 sees no device (RuntimeError: cudaErrorInsufficientDriver" in text
    assert "== registry" not in text and "Traceback" not in text  # nothing else ran into the same error
    assert '"no_gpu"' in (tmp_path / "gpu_check.json").read_text()
    # a dry run on 'cuda' still runs every section (the harness check), and says the same at the end
    assert gpu_check.main(["--dry-run", "--device", "cuda", "--limit", "1", "--sections", "registry"]) == 2
    assert "no GPU: " in capsys.readouterr().out


def test_a_case_that_makes_its_own_index_tensor_runs_on_the_device(gpu_check):
    # gather's case builds its index tensor inside fn: the harness puts it on the device as well
    from chainrule._backend import use_standin_cuda

    cases, _ = gpu_check.registry_cases(None)
    case = next(c for c in cases if gpu_check._case_id(c).startswith("gather["))
    cpu_out, cpu_grads = gpu_check.run_case(case, "cpu")
    with use_standin_cuda():
        out, grads = gpu_check.run_case(case, "cuda")
    gpu_check._compare(case, out, cpu_out, "output")
    gpu_check._compare(case, grads, cpu_grads, "gradient of input")
    assert chainrule_default_device() is None


def chainrule_default_device():
    from chainrule._backend import default_device

    return default_device.device


# ---- the programs section: judged by calibration, known failures last ----

def _fake_programs(gpu_check, monkeypatch, names, finals, torch_fails_too=()):
    """The programs section over a fake harness: ``run_program`` records each call and returns a
    clean run printing ``finals[name]`` (or exit 1 for a name in ``torch_fails_too``); the real
    calibration check judges it against a one-key band [0, 1]."""
    harness = gpu_check._program_harness()
    calls = []

    def fake_run(program, backend, seed=0, timeout=0, *, standin_cuda=False, default_device=None, extra_env=None):
        calls.append((program, backend, default_device, extra_env))
        if program in torch_fails_too:
            return harness.Result(program, backend, seed, 1, "", "RuntimeError: mixed devices", 1.0, None)
        stdout = f"FINAL loss={finals[program]}\n"
        return harness.Result(program, backend, seed, 0, stdout, "", 1.0, harness.parse_final(stdout))

    band = {"loss": {"low": 0.0, "high": 1.0, "tolerance": 0.01}}
    expected = {name: {"line_shapes": ["FINAL loss=#"], "fixed_integers": [[None]], "final": band,
                       "torch_seconds": [float(len(name))]} for name in names}
    monkeypatch.setattr(harness, "run_program", fake_run)
    monkeypatch.setattr(gpu_check, "_program_harness", lambda: harness)
    monkeypatch.setattr(gpu_check, "TORCH_FAILS_TOO", {name: "a CPU tensor of its own" for name in torch_fails_too})
    monkeypatch.setattr(gpu_check, "DRY_RUN_PROGRAMS", tuple(names))
    real_loads = gpu_check.json.loads
    monkeypatch.setattr(gpu_check.json, "loads", lambda text: expected if '"line_shapes"' in text else real_loads(text))
    return calls


def test_a_device_run_is_judged_by_its_band_with_no_cpu_rerun(gpu_check, monkeypatch, capsys, tmp_path):
    """A FINAL value inside the band is 'same' however far from a CPU run it is (a device run is one
    more draw); outside it, 'differs'. Each program runs once, on the device, and never on the CPU."""
    calls = _fake_programs(gpu_check, monkeypatch, ["inside", "outside", "edge"],
                           {"inside": 0.9, "outside": 1.5, "edge": 1.0})
    monkeypatch.setenv("OUT", str(tmp_path))
    gpu_check.main(["--dry-run", "--standin", "--sections", "programs"])
    text = capsys.readouterr().out
    assert "   ok   inside: same, 1.0 s: FINAL loss=0.9" in text and "   ok   edge: same" in text
    assert "   FAIL outside: differs, 1.0 s: loss=1.5 outside the band [0, 1]" in text
    assert "programs: 2 same, 1 differs of 3" in text and "cpu" not in text.split("== whole programs")[-1].lower()
    assert sorted(name for name, *_ in calls) == ["edge", "inside", "outside"]
    assert {(backend, device, env) for _, backend, device, env in calls} == {("chainrule", "cuda", None)}
    results = (tmp_path / "gpu_check.json").read_text()
    assert '"cpu_final"' not in results and '"differs": 1' in results


def test_programs_that_fail_as_torch_does_run_last_and_are_the_ones_left_when_the_budget_ends(gpu_check):
    import json

    expected = json.loads((Path(SCRIPT).parents[1] / "tests" / "programs" / "expected.json").read_text())
    order = gpu_check.program_order(list(expected), expected)
    known = [name in gpu_check.TORCH_FAILS_TOO for name in order]
    assert sorted(order) == sorted(expected) and known == sorted(known)  # every unknown before every known
    first_known = known.index(True)
    for group in (order[:first_known], order[first_known:]):
        seconds = [min(expected[name]["torch_seconds"]) for name in group]
        assert seconds == sorted(seconds)  # fastest first within each group


def test_programs_not_started_within_the_budget_are_reported_not_run(gpu_check, monkeypatch, capsys):
    calls = _fake_programs(gpu_check, monkeypatch, ["a", "bb", "known"], {"a": 0.5, "bb": 0.5},
                           torch_fails_too=("known",))
    monkeypatch.setattr(gpu_check, "DRY_RUN_PROGRAMS", ("a", "bb", "known"))
    gpu_check.main(["--dry-run", "--standin", "--sections", "programs", "--programs-seconds", "-1"])
    text = capsys.readouterr().out
    assert "programs: 3 not run of 3" in text and calls == []
    gpu_check.main(["--dry-run", "--standin", "--sections", "programs"])
    text = capsys.readouterr().out
    assert "   ok   known: fails as torch does, 1.0 s: RuntimeError: mixed devices (a CPU tensor of its own)" in text
    assert "programs: 2 same, 1 fails as torch does of 3" in text
