"""Benchmarks: chainrule against PyTorch CPU on identical float32 workloads, in one run.

Each workload is written once against the shared torch/chainrule API (``lib`` is either module)
and returns a ``step`` callable. After a warm-up the two libraries alternate (A B A B ...), so
drift in the machine's speed hits both alike; we report each one's median time and the ratio
chainrule / torch (lower is better) as the median of the per-pair ratios, with the spread of
those ratios, so a noisy machine shows as a wide spread rather than a wrong number. Peak memory is
measured in child processes, one per library, as the growth of the resident set over the
workload's steady state.

Results depend on the machine more than on anything else (the CPU, the BLAS library and the core
kernel it chose, the thread counts), so every report starts with those, and ``--record`` appends
the run to ``benchmarks/results.json`` under a key naming the machine: runs from different
machines are never compared as one.

Run with ``chainrule bench`` or ``python benchmarks/run.py``.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from ._config import idle_cores

# gemm first: conv2d reports its speed as a fraction of the GEMM measured in the same run
WORKLOADS = ["gemm", "mlp_step", "cnn_step", "conv2d", "conv1d_step", "gru_step", "op_overhead",
             "transformer_step", "lstm_lm_step", "scalar_chain"]
# issue 15's targets: the most chainrule/torch may take, as a ratio of median times
TARGETS = {"mlp_step": 1.0, "cnn_step": 1.0, "conv2d": 1.0, "conv1d_step": 1.0, "gru_step": 1.0,
           "op_overhead": 1.2, "transformer_step": 1.0, "lstm_lm_step": 1.0, "scalar_chain": 1.5}
CONV2D_GEMM_FRACTION_TARGET = 0.6


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
    return chained_ops_step(lib.from_numpy(_data(16)).requires_grad_(True))


def chained_ops_step(x):
    """The op_overhead step on leaf ``x`` (any library, any device): OVERHEAD_OPS small ops."""

    def step():
        y = x
        for _ in range(OVERHEAD_OPS // 3):
            y = (y * 0.9 + 0.1).tanh()
        x.grad = None
        y.sum().backward()

    return step


def transformer_step(lib):
    """One post-norm transformer encoder block (d_model 128, 4 heads, feed-forward 512, causal),
    batch 32 × seq 64, regression to a fixed target, AdamW step."""
    nn = lib.nn
    lib.manual_seed(0)
    # dropout 0: the two libraries' random streams differ, and dropout is not what is measured
    model = nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0, batch_first=True)
    x, target = lib.from_numpy(_data(32, 64, 128)), lib.from_numpy(_data(32, 64, 128, seed=1))
    mask = lib.from_numpy(np.triu(np.full((64, 64), -np.inf, dtype=np.float32), 1))
    optimizer = lib.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad()
        loss = lib.nn.functional.mse_loss(model(x, src_mask=mask), target)
        loss.backward()
        optimizer.step()

    return step


LM_VOCAB, LM_SEQ, LM_BATCH = 10_000, 35, 20


def lstm_lm_step(lib):
    """Word-level LSTM language model (vocab 10k, embedding 64, hidden 128), seq 35 × batch 20,
    next-token cross-entropy over the vocabulary, SGD step."""
    nn = lib.nn
    lib.manual_seed(0)

    class LanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(LM_VOCAB, 64)
            self.lstm = nn.LSTM(64, 128)
            self.decoder = nn.Linear(128, LM_VOCAB)

        def forward(self, tokens):
            out, _ = self.lstm(self.embedding(tokens))
            return self.decoder(out).reshape(-1, LM_VOCAB)

    model = LanguageModel()
    tokens = np.random.default_rng(2).integers(0, LM_VOCAB, (LM_SEQ + 1, LM_BATCH))
    x, y = lib.from_numpy(tokens[:-1]), lib.from_numpy(tokens[1:].reshape(-1))
    return _train_step(lib, model, x, y, lib.optim.SGD(model.parameters(), lr=0.1))


SCALAR_CHAIN_NODES = 100_000


def scalar_chain(lib, nodes: int = SCALAR_CHAIN_NODES):
    """A chain of 100,000 scalar ops (y = y·0.999 + 0.001, repeated) from one leaf, then backward:
    nothing but graph building and the engine's walk."""
    x = lib.tensor(1.0, requires_grad=True)

    def step():
        y = x
        for _ in range(nodes // 2):
            y = y * 0.999 + 0.001
        x.grad = None
        y.backward()

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
    # torch gets the threads NumPy's BLAS has, so both run on the same cores
    torch.set_num_threads(_blas_threads())
    return torch


def _blas_threads() -> int:
    from ._config import get_num_threads

    return get_num_threads()


def _time(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def run_workload(name: str, reps: int, warmup: int = 3, gemm_gflops: float | None = None) -> dict:
    """Time one workload on chainrule and torch, interleaved; ``gemm_gflops`` (NumPy's GEMM
    speed measured in the same run) lets conv2d report the fraction of it that it reaches."""
    import chainrule

    torch = _load_torch()
    build = globals()[name]
    libs = {"chainrule": chainrule}
    if torch is not None:
        libs["torch"] = torch
    steps = {label: build(lib) for label, lib in libs.items()}
    # Both libraries live in this one process, and torch brings ~150k Python objects that every
    # full garbage collection would walk during chainrule's graph-heavy steps (a cost no
    # chainrule program pays). Freezing what exists now keeps the collector to the objects the
    # steps themselves make, for both libraries alike.
    gc.collect()
    gc.freeze()
    try:
        for step in steps.values():
            for _ in range(warmup):
                step()
        times = {label: [] for label in steps}
        for _ in range(reps):
            for label, step in steps.items():  # interleaved: A B A B ...
                times[label].append(_time(step))
    finally:
        gc.unfreeze()
    result = {"workload": name, "reps": reps}
    for label, ts in times.items():
        result[f"{label}_ms"] = statistics.median(ts) * 1e3
    if "torch" in times:
        # each chainrule run against the torch run right after it: a slow moment of the machine
        # hits both halves of a pair, so the median of the pair ratios is steadier than a ratio
        # of medians; the quartiles show how noisy the run was
        pairs = sorted(a / b for a, b in zip(times["chainrule"], times["torch"]))
        result["ratio"] = statistics.median(pairs)
        result["ratio_q1"], result["ratio_q3"] = pairs[len(pairs) // 4], pairs[(3 * len(pairs)) // 4]
    flops = {"conv2d": CONV2D_FLOPS, "gemm": GEMM_FLOPS}.get(name)
    if flops:
        for label in times:
            result[f"{label}_gflops"] = flops / (result[f"{label}_ms"] / 1e3) / 1e9
    if name == "conv2d" and gemm_gflops:
        result["gemm_gflops"] = gemm_gflops
        result["fraction_of_gemm"] = result["chainrule_gflops"] / gemm_gflops
    if name == "op_overhead":
        for label in times:
            result[f"{label}_us_per_op"] = result[f"{label}_ms"] * 1e3 / OVERHEAD_OPS
    if name == "scalar_chain":
        for label in times:
            result[f"{label}_us_per_op"] = result[f"{label}_ms"] * 1e3 / SCALAR_CHAIN_NODES
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
    if "peak_growth_mib" in out.get("chainrule", {}) and "peak_growth_mib" in out.get("torch", {}):
        out["peak_ratio"] = out["chainrule"]["peak_growth_mib"] / max(out["torch"]["peak_growth_mib"], 1e-9)
    return out


# ---------------------------------------------------------------- the machine
def machine() -> dict:
    """What the numbers depend on: CPU, BLAS library and kernel, thread counts, versions."""
    import chainrule

    cpu = _cpu_info()
    info = {"processor": cpu["model"], "cpus": os.cpu_count(), "cpu_features": cpu["features"],
            "python": platform.python_version(), "numpy": np.__version__, "chainrule": chainrule.__version__,
            "blas": _blas_info(), "blas_threads": _blas_threads(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "load_average": _load_average()}
    torch = _load_torch()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # no load average on this platform
        return None


def machine_key(info: dict) -> str:
    """The key runs are stored under: same key, same kind of machine and set-up."""
    blas = info["blas"][0] if info["blas"] else {}
    blas_text = " ".join(str(blas.get(k)) for k in ("internal_api", "version", "architecture") if blas.get(k))
    return (f"{info['processor']} | {info['cpus']} cpus | {blas_text or 'BLAS unknown'} | "
            f"{info['blas_threads']} threads")


_FEATURES = ("avx512f", "avx2", "fma", "avx", "sse4_2", "neon", "asimd", "sve")


def _cpu_info() -> dict:
    model, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "cpu model") and model in ("", platform.processor()):
                    model = value.strip()
                if key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"model": model or "unknown", "features": [f for f in _FEATURES if f in flags]}


def _blas_info() -> list[dict]:
    """NumPy's BLAS: library, version, the core kernel it picked (OpenBLAS 'architecture'), threads."""
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas" and "numpy" in p.get("filepath", "")]
        pools = pools or [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            return [{k: p.get(k) for k in keys} for p in pools]
    try:  # without threadpoolctl: the build's record of the library (no kernel, no threads)
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return [{"internal_api": blas.get("name"), "version": blas.get("version")}]
    except Exception:  # noqa: BLE001 - show_config's layout is not a stable API
        return []


def machine_warnings(info: dict) -> list[str]:
    warnings = []
    coretype = info.get("OPENBLAS_CORETYPE")
    if coretype:
        warnings.append(f"OPENBLAS_CORETYPE={coretype} forces OpenBLAS's {coretype} kernel instead of the "
                        "one it would pick for this CPU; unset it for numbers that mean this machine")
    kernels = [str(b.get("architecture") or "") for b in info["blas"]]
    if "avx512f" in info["cpu_features"] and any(k in ("Haswell", "Zen", "Sandybridge", "Prescott") for k in kernels):
        warnings.append(f"the CPU has AVX-512 but OpenBLAS runs its {'/'.join(kernels)} kernel: "
                        "GEMM speed may be half of what the machine can do")
    if info.get("torch_threads") is not None and info["torch_threads"] != info["blas_threads"]:
        warnings.append(f"torch runs {info['torch_threads']} threads against chainrule's "
                        f"{info['blas_threads']}: the ratios compare different core counts")
    load = info.get("load_average")
    if load is not None and info["blas_threads"] > idle_cores(info["cpus"], load):
        # OpenBLAS's threads wait for each other at the end of every GEMM, so one thread in a time
        # slice stalls the GEMM: on 2 busy cores mlp_step's steps took 100-270 ms for 2-5 (session 13)
        warnings.append(f"the 1-minute load average is {load:.1f} on {info['cpus']} cpus: fewer idle cores "
                        f"than the {info['blas_threads']} threads asked for, so the ratios measure the "
                        "other processes as much as chainrule")
    return warnings


def format_machine(info: dict) -> str:
    blas = "; ".join(", ".join(f"{k} {v}" for k, v in b.items() if v is not None) for b in info["blas"])
    lines = [f"machine: {info['processor']}, {info['cpus']} cpus ({' '.join(info['cpu_features']) or 'no SIMD flags read'})",
             f"BLAS: {blas or 'unknown'}",
             f"threads: chainrule/BLAS {info['blas_threads']}, torch {info.get('torch_threads', '–')}; "
             f"1-minute load average {'–' if info.get('load_average') is None else info['load_average']}",
             f"versions: python {info['python']}, numpy {info['numpy']}, chainrule {info['chainrule']}, "
             f"torch {info.get('torch', 'not installed')}"]
    lines += [f"WARNING: {w}" for w in machine_warnings(info)]
    return "\n".join(lines)


# ---------------------------------------------------------------- reports
def format_table(results: list[dict]) -> str:
    lines = ["| workload | chainrule | torch | ratio (q1–q3) | target | extra |", "|---|---|---|---|---|---|"]
    for r in results:
        extra = ""
        if "chainrule_gflops" in r:
            extra = f"{r['chainrule_gflops']:.0f} vs {r.get('torch_gflops', float('nan')):.0f} GFLOP/s"
        if "fraction_of_gemm" in r:
            extra += (f", {100 * r['fraction_of_gemm']:.0f} % of the GEMM's {r['gemm_gflops']:.0f} "
                      f"(target ≥ {100 * CONV2D_GEMM_FRACTION_TARGET:.0f} %)")
        if "chainrule_us_per_op" in r:
            extra = f"{r['chainrule_us_per_op']:.2f} vs {r.get('torch_us_per_op', float('nan')):.2f} µs/op"
        ratio = f"{r['ratio']:.2f} ({r['ratio_q1']:.2f}–{r['ratio_q3']:.2f})" if "ratio" in r else "–"
        target = f"≤ {TARGETS[r['workload']]}" if r["workload"] in TARGETS else "–"
        torch_ms = f"{r['torch_ms']:.2f} ms" if "torch_ms" in r else "–"
        lines.append(f"| {r['workload']} | {r['chainrule_ms']:.2f} ms | {torch_ms} | {ratio} | {target} | {extra} |")
    return "\n".join(lines)


def format_memory(memory: dict) -> str:
    lines = ["| workload | chainrule peak MiB | torch peak MiB | ratio (target ≤ 1.5) |", "|---|---|---|---|"]
    for name, m in memory.items():
        ours = m.get("chainrule", {}).get("peak_growth_mib")
        theirs = m.get("torch", {}).get("peak_growth_mib")
        ratio = f"{m['peak_ratio']:.2f}" if "peak_ratio" in m else "–"
        lines.append(f"| {name} | {'–' if ours is None else f'{ours:.1f}'} | "
                     f"{'–' if theirs is None else f'{theirs:.1f}'} | {ratio} |")
    return "\n".join(lines)


RESULTS_PATH = os.path.join("benchmarks", "results.json")


def record(report: dict, path: str = RESULTS_PATH) -> dict | None:
    """Append ``report`` to the results file under its machine's key; return the previous run on
    the same machine (None if this is the first), the only one it may be compared with."""
    try:
        with open(path) as f:
            store = json.load(f)
    except FileNotFoundError:
        store = {}
    store.setdefault("machines", {})
    key = machine_key(report["machine"])
    entry = store["machines"].setdefault(key, {"machine": report["machine"], "runs": []})
    previous = entry["runs"][-1] if entry["runs"] else None
    entry["machine"] = report["machine"]
    entry["runs"].append({k: v for k, v in report.items() if k != "machine"})
    with open(path, "w") as f:
        json.dump(store, f, indent=1)
        f.write("\n")
    return previous


def format_comparison(results: list[dict], previous: dict) -> str:
    before = {r["workload"]: r for r in previous.get("results", [])}
    lines = [f"| workload | ratio then ({previous.get('date', '?')}) | ratio now |", "|---|---|---|"]
    for r in results:
        if "ratio" in r and "ratio" in before.get(r["workload"], {}):
            lines.append(f"| {r['workload']} | {before[r['workload']]['ratio']:.2f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


DEFAULT_REPS = {"mlp_step": 60, "cnn_step": 20, "conv2d": 10, "conv1d_step": 60, "gru_step": 20,
                "op_overhead": 60, "gemm": 20, "transformer_step": 20, "lstm_lm_step": 20, "scalar_chain": 5}
# steps for the peak-memory children: enough to reach the steady state (optimizer moments exist)
MEMORY_STEPS = {"mlp_step": 30, "cnn_step": 30, "conv2d": 5, "conv1d_step": 30, "gru_step": 10,
                "op_overhead": 30, "transformer_step": 10, "lstm_lm_step": 10, "scalar_chain": 3}


def set_threads(threads: int) -> None:
    """Run both libraries on ``threads`` threads (BLAS pools through threadpoolctl, torch's pool)."""
    from ._config import set_num_threads

    set_num_threads(threads)
    torch = _load_torch()
    if torch is not None:
        torch.set_num_threads(threads)


def main(workloads=None, reps=None, memory: bool = True, out: str | None = None,
         memory_steps: int = 1000, record_to: str | None = None, note: str | None = None) -> list[dict]:
    workloads = [w for w in WORKLOADS if w in (workloads or WORKLOADS)]  # gemm before conv2d
    info = machine()
    print(format_machine(info), flush=True)
    print()
    results = []
    gemm_gflops = None
    for name in workloads:
        r = run_workload(name, reps or DEFAULT_REPS[name], gemm_gflops=gemm_gflops)
        if name == "gemm":
            gemm_gflops = r["chainrule_gflops"]
        results.append(r)
        ratio = f"  ratio {r['ratio']:.2f}" if "ratio" in r else ""
        print(f"{name:16s} chainrule {r['chainrule_ms']:9.3f} ms"
              + (f"  torch {r['torch_ms']:9.3f} ms" if "torch_ms" in r else "") + ratio, flush=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": info,
              "load_average": info["load_average"], "results": results}
    if note:
        report["note"] = note
    if memory:
        report["memory"] = {name: measure_memory(name, MEMORY_STEPS[name]) for name in workloads if name in MEMORY_STEPS}
        report["memory"]["mlp_step_flatness"] = measure_memory("mlp_step", memory_steps)
        for key, value in report["memory"].items():
            print(f"memory {key}: {json.dumps(value)}", flush=True)
    print()
    print(format_table(results))
    if memory:
        print()
        print(format_memory(report["memory"]))
    if out:
        with open(out, "w") as f:
            json.dump(report, f, indent=2)
        print(f"\nwrote {out}")
    if record_to:
        previous = record(report, record_to)
        print(f"\nrecorded under {machine_key(info)!r} in {record_to}")
        if previous:
            print("the previous run on this machine:")
            print(format_comparison(results, previous))
    return results
