"""Benchmarks: chainrule against PyTorch CPU on identical float32 workloads, in one run.

Each workload is written once against the shared torch/chainrule API (``lib`` is either module)
and returns a ``step`` callable. After a warm-up the two libraries alternate (A B A B ...), so
drift in the machine's speed hits both alike; we report each one's median time and the ratio
chainrule / torch (lower is better). Peak memory is measured in child processes, one per library,
as the growth of the resident set over the workload's steady state.

Run with ``chainrule bench`` or ``python benchmarks/run.py``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

WORKLOADS = ["mlp_step", "cnn_step", "conv2d", "conv1d_step", "gru_step", "op_overhead", "gemm"]
TARGETS = {"mlp_step": 1.1, "cnn_step": 1.5, "conv2d": 1.5, "conv1d_step": 1.5, "gru_step": 2.0,
           "op_overhead": 2.0}


def _data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _labels(n, classes=10, seed=1):
    return np.random.default_rng(seed).integers(0, classes, n)


def _train_step(lib, model, x, y, optimizer):
    loss_fn = lib.nn.functional.cross_entropy

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def mlp_step(lib):
    """MLP 784-256-256-10, ReLU, batch 128, cross-entropy, backward, SGD step."""
    nn = lib.nn
    lib.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    x, y = lib.from_numpy(_data(128, 784)), lib.from_numpy(_labels(128))
    return _train_step(lib, model, x, y, lib.optim.SGD(model.parameters(), lr=0.01))


def cnn_step(lib):
    """LeNet-like on (64, 1, 28, 28), cross-entropy, SGD step."""
    nn = lib.nn
    lib.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(800, 120), nn.ReLU(), nn.Linear(120, 10))
    x, y = lib.from_numpy(_data(64, 1, 28, 28)), lib.from_numpy(_labels(64))
    return _train_step(lib, model, x, y, lib.optim.SGD(model.parameters(), lr=0.01))


def conv2d(lib):
    """Conv2d 32→64, 3×3, padding 1 on (32, 32, 32, 32): forward + backward to input and weight."""
    lib.manual_seed(0)
    conv = lib.nn.Conv2d(32, 64, 3, padding=1, bias=False)
    x = lib.from_numpy(_data(32, 32, 32, 32)).requires_grad_(True)

    def step():
        x.grad = None
        conv.weight.grad = None
        conv(x).sum().backward()

    return step


CONV2D_FLOPS = 3 * 2 * 32 * 64 * 32 * 32 * 32 * 9


def conv1d_step(lib):
    """The MNIST-1D CNN (three Conv1d, 25 channels, stride 2) on batch 100, Adam step."""
    nn = lib.nn
    lib.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(1, 25, 5, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(125, 10))
    x, y = lib.from_numpy(_data(100, 1, 40)), lib.from_numpy(_labels(100))
    return _train_step(lib, model, x, y, lib.optim.Adam(model.parameters(), lr=1e-2))


def gru_step(lib):
    """The MNIST-1D bidirectional GRU(1, 6) over 40 steps, batch 100, Adam step."""
    nn = lib.nn
    lib.manual_seed(0)

    class GRUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(1, 6, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(480, 10)

        def forward(self, x):
            out, _ = self.gru(x.unsqueeze(-1))
            return self.fc(out.flatten(1))

    model = GRUNet()
    x, y = lib.from_numpy(_data(100, 40)), lib.from_numpy(_labels(100))
    return _train_step(lib, model, x, y, lib.optim.Adam(model.parameters(), lr=1e-2))


OVERHEAD_OPS = 200


def op_overhead(lib):
    """200 chained small elementwise ops (mul, add, tanh) on 16 elements, then backward."""
    x = lib.from_numpy(_data(16)).requires_grad_(True)

    def step():
        y = x
        for _ in range(OVERHEAD_OPS // 3):
            y = (y * 0.9 + 0.1).tanh()
        x.grad = None
        y.sum().backward()

    return step


def gemm(lib):
    """1024×1024 float32 matmul: the machine's practical ceiling for everything above."""
    a = lib.from_numpy(_data(1024, 1024))
    b = lib.from_numpy(_data(1024, 1024, seed=1))
    return lambda: a @ b


GEMM_FLOPS = 2 * 1024 ** 3


def _load_torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    return torch


def _time(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def run_workload(name: str, reps: int, warmup: int = 3) -> dict:
    import chainrule

    torch = _load_torch()
    build = globals()[name]
    libs = {"chainrule": chainrule}
    if torch is not None:
        libs["torch"] = torch
    steps = {label: build(lib) for label, lib in libs.items()}
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {label: [] for label in steps}
    for _ in range(reps):
        for label, step in steps.items():  # interleaved: A B A B ...
            times[label].append(_time(step))
    result = {"workload": name, "reps": reps}
    for label, ts in times.items():
        result[f"{label}_ms"] = statistics.median(ts) * 1e3
    if "torch_ms" in result:
        result["ratio"] = result["chainrule_ms"] / result["torch_ms"]
    if name == "conv2d":
        for label in times:
            result[f"{label}_gflops"] = CONV2D_FLOPS / (result[f"{label}_ms"] / 1e3) / 1e9
    if name == "gemm":
        for label in times:
            result[f"{label}_gflops"] = GEMM_FLOPS / (result[f"{label}_ms"] / 1e3) / 1e9
    if name == "op_overhead":
        for label in times:
            result[f"{label}_us_per_op"] = result[f"{label}_ms"] * 1e3 / OVERHEAD_OPS
    return result


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _peak_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    # writing 5 to clear_refs resets the peak resident set (VmHWM) on Linux
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def memory_child(library: str, name: str, steps: int) -> dict:
    """Run inside a child process: peak RSS growth during ``steps`` of a workload.

    The baseline is taken right after importing the library, so the growth counts the model,
    the data and everything the steps allocate — including memory an allocator keeps cached.
    """
    if library == "torch":
        lib = _load_torch()
    else:
        import chainrule as lib
    baseline = _rss_kib()
    _reset_peak()
    step = globals()[name](lib)
    rss = []
    for i in range(steps):
        step()
        if i in (steps // 10, steps - 1):
            rss.append(_rss_kib())
    return {"peak_growth_mib": (_peak_kib() - baseline) / 1024, "rss_at_10pct_mib": rss[0] / 1024,
            "rss_at_end_mib": rss[-1] / 1024}


def measure_memory(name: str, steps: int) -> dict:
    out = {}
    env = dict(os.environ)
    for library in ("chainrule", "torch"):
        if library == "torch" and _load_torch() is None:
            continue
        proc = subprocess.run(
            [sys.executable, "-c",
             f"import json, chainrule.benchmark as b; print(json.dumps(b.memory_child({library!r}, {name!r}, {steps})))"],
            capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            out[library] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
            continue
        out[library] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def machine() -> dict:
    import chainrule

    info = {"python": platform.python_version(), "numpy": np.__version__, "chainrule": chainrule.__version__,
            "cpus": os.cpu_count(), "processor": _cpu_name()}
    torch = _load_torch()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def format_table(results: list[dict]) -> str:
    lines = ["| workload | chainrule | torch | ratio | target | extra |", "|---|---|---|---|---|---|"]
    for r in results:
        extra = ""
        if "chainrule_gflops" in r:
            extra = f"{r['chainrule_gflops']:.0f} vs {r.get('torch_gflops', float('nan')):.0f} GFLOP/s"
        if "chainrule_us_per_op" in r:
            extra = f"{r['chainrule_us_per_op']:.1f} vs {r.get('torch_us_per_op', float('nan')):.1f} µs/op"
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "–"
        target = f"≤ {TARGETS[r['workload']]}" if r["workload"] in TARGETS else "–"
        torch_ms = f"{r['torch_ms']:.2f} ms" if "torch_ms" in r else "–"
        lines.append(f"| {r['workload']} | {r['chainrule_ms']:.2f} ms | {torch_ms} | {ratio} | {target} | {extra} |")
    return "\n".join(lines)


DEFAULT_REPS = {"mlp_step": 60, "cnn_step": 20, "conv2d": 10, "conv1d_step": 60, "gru_step": 20,
                "op_overhead": 60, "gemm": 20}


def main(workloads=None, reps=None, memory: bool = True, out: str | None = None,
         memory_steps: int = 1000) -> list[dict]:
    workloads = workloads or WORKLOADS
    results = []
    for name in workloads:
        r = run_workload(name, reps or DEFAULT_REPS[name])
        results.append(r)
        ratio = f"  ratio {r['ratio']:.2f}" if "ratio" in r else ""
        print(f"{name:12s} chainrule {r['chainrule_ms']:9.3f} ms"
              + (f"  torch {r['torch_ms']:9.3f} ms" if "torch_ms" in r else "") + ratio, flush=True)
    report = {"machine": machine(), "results": results}
    if memory:
        report["memory"] = {
            "cnn_step": measure_memory("cnn_step", 30),
            "mlp_step_flatness": measure_memory("mlp_step", memory_steps),
        }
        for key, value in report["memory"].items():
            print(f"memory {key}: {json.dumps(value)}", flush=True)
    print()
    print(format_table(results))
    if out:
        with open(out, "w") as f:
            json.dump(report, f, indent=2)
        print(f"\nwrote {out}")
    return results
