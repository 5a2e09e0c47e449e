"""chainrule against torch on one CUDA GPU: issue 12's four workloads, in one run.

Each workload is built once per library on the device, warmed up, then timed step by step with the
two libraries interleaved (A B A B ...), so both see the same clocks and the same neighbours. A
step is timed by CUDA events recorded before and after it and waited on (``Event.elapsed_time``),
which counts the host's Python time too whenever the GPU waits for it; the median over the
repetitions is reported, with TFLOP/s from each workload's matmul/convolution FLOPs. The MLP step
also reports each library's peak GPU memory (``max_memory_allocated`` after a reset), torch's
from its caching allocator, chainrule's from CuPy's pool (see ``cuda/memory.py``).

``device='cpu'`` and ``size='small'`` run the same code on the CPU with small shapes and
perf_counter timing, so the benchmark is tested in CI, where there is no GPU.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from .benchmark import OVERHEAD_OPS, chained_ops_step

__all__ = ["WORKLOADS", "TARGETS", "MEMORY_TARGET", "DEFAULT_REPS", "run_cuda_benchmarks", "format_table",
           "format", "gpu_description"]

WORKLOADS = ["mlp_step", "conv2d", "transformer_step", "op_overhead"]
# issue 12's ceilings for chainrule's time over torch's, and for its peak memory in the MLP step
TARGETS = {"mlp_step": 1.3, "conv2d": 2.0, "transformer_step": 2.0, "op_overhead": 3.0}
MEMORY_TARGET = 1.5
DEFAULT_REPS = {"mlp_step": 20, "conv2d": 20, "transformer_step": 10, "op_overhead": 50}
WARMUP = 3

SIZES = {
    "full": {"mlp": (4096, 4096, 4), "conv": (64, 64, 56, 56, 64), "transformer": (32, 256, 512, 8)},
    "small": {"mlp": (16, 32, 4), "conv": (2, 4, 8, 8, 4), "transformer": (2, 8, 16, 2)},
}


def _randn(*shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _on(lib, array: np.ndarray, device: str):
    return lib.from_numpy(array).to(device)


def mlp_step(lib, device: str, size: str):
    """4 × (Linear(width) + ReLU), batch × width input, cross-entropy over width classes, SGD step."""
    batch, width, layers = SIZES[size]["mlp"]
    nn = lib.nn
    lib.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(layers) for m in (nn.Linear(width, width), nn.ReLU())]).to(device)
    x = _on(lib, _randn(batch, width), device)
    y = _on(lib, np.random.default_rng(1).integers(0, width, batch), device)
    optimizer = lib.optim.SGD(model.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        lib.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    # forward 2·batch·width² per layer; backward twice that (input and weight gradients)
    return step, 3 * layers * 2 * batch * width * width


def conv2d(lib, device: str, size: str):
    """Conv2d(c, c, 3, padding=1) on (n, c, h, w), forward and backward to input and weight."""
    n, c, h, w, c_out = SIZES[size]["conv"]
    lib.manual_seed(0)
    conv = lib.nn.Conv2d(c, c_out, 3, padding=1, bias=False).to(device)
    x = _on(lib, _randn(n, c, h, w), device).requires_grad_(True)

    def step():
        x.grad = None
        conv.weight.grad = None
        conv(x).sum().backward()

    return step, 3 * 2 * n * c_out * h * w * c * 9


def transformer_step(lib, device: str, size: str):
    """One TransformerEncoderLayer (batch_first, feed-forward 4·d_model, no dropout): forward,
    mean-square loss, backward, AdamW step."""
    batch, seq, d_model, heads = SIZES[size]["transformer"]
    lib.manual_seed(0)
    layer = lib.nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model, dropout=0.0,
                                           batch_first=True).to(device)
    x = _on(lib, _randn(batch, seq, d_model), device)
    optimizer = lib.optim.AdamW(layer.parameters(), lr=1e-4)

    def step():
        optimizer.zero_grad()
        layer(x).pow(2).mean().backward()
        optimizer.step()

    # per token: q, k, v and output projections 8·d², feed-forward 16·d²; attention 4·seq·d
    forward = batch * seq * (24 * d_model * d_model + 4 * seq * d_model)
    return step, 3 * forward


def op_overhead(lib, device: str, size: str):
    """200 chained small elementwise ops (mul, add, tanh) on 16 elements, then backward."""
    return chained_ops_step(_on(lib, _randn(16), device).requires_grad_(True)), 0


def _load_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


class _Timer:
    """Times one call of a step: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, lib, device: str) -> None:
        self.lib, self.on_gpu = lib, device.startswith("cuda")

    def __call__(self, step) -> float:
        """Seconds one ``step()`` takes, to the end of the GPU work it queued."""
        if not self.on_gpu:
            start = time.perf_counter()
            step()
            return time.perf_counter() - start
        start, end = self.lib.cuda.Event(enable_timing=True), self.lib.cuda.Event(enable_timing=True)
        self.lib.cuda.synchronize()
        start.record()
        step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    def peak_bytes(self, step) -> int | None:
        """Peak GPU memory allocated while ``step()`` runs, counting what was alive before it."""
        if not self.on_gpu:
            return None
        self.lib.cuda.synchronize()
        self.lib.cuda.reset_peak_memory_stats()
        step()
        self.lib.cuda.synchronize()
        return int(self.lib.cuda.max_memory_allocated())


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


def run_workload(name: str, reps: int, device: str = "cuda", size: str = "full", libs: dict | None = None,
                 warmup: int = WARMUP) -> dict:
    """One workload on each library in ``libs`` (default chainrule and torch when importable);
    a library that fails to build or run is reported with its error instead of a time."""
    import chainrule

    if libs is None:
        torch = _load_torch()
        libs = {"chainrule": chainrule, **({"torch": torch} if torch is not None else {})}
    build = globals()[name]
    result: dict = {"workload": name, "reps": reps, "device": device}
    steps, timers = {}, {}
    for label, lib in libs.items():
        try:
            steps[label], flops = build(lib, device, size)
            timers[label] = _Timer(lib, device)
            for _ in range(warmup):
                steps[label]()
            result["flops"] = flops
        except Exception as exc:  # reported in the table; the other library still runs
            result[f"{label}_error"] = _error(exc)
            steps.pop(label, None)
    times: dict = {label: [] for label in steps}
    for _ in range(reps):
        for label in list(steps):  # interleaved: A B A B ...
            try:
                times[label].append(timers[label](steps[label]))
            except Exception as exc:
                result[f"{label}_error"] = _error(exc)
                del steps[label]
    for label, ts in times.items():
        if ts and label in steps:
            result[f"{label}_ms"] = statistics.median(ts) * 1e3
            if result.get("flops"):
                result[f"{label}_tflops"] = result["flops"] / (result[f"{label}_ms"] / 1e3) / 1e12
            if name == "op_overhead":
                result[f"{label}_us_per_op"] = result[f"{label}_ms"] * 1e3 / OVERHEAD_OPS
    if "chainrule_ms" in result and "torch_ms" in result:
        result["ratio"] = result["chainrule_ms"] / result["torch_ms"]
    if name == "conv2d":
        result["precision"] = {label: _conv_precision(lib, device) for label, lib in libs.items()}
    if name == "mlp_step":
        for label in steps:
            try:
                peak = timers[label].peak_bytes(steps[label])
            except Exception as exc:
                result[f"{label}_memory_error"] = _error(exc)
                continue
            if peak is not None:
                result[f"{label}_peak_mib"] = peak / 2**20
        if result.get("torch_peak_mib") and "chainrule_peak_mib" in result:
            result["memory_ratio"] = result["chainrule_peak_mib"] / result["torch_peak_mib"]
    return result


def _conv_precision(lib, device: str) -> str:
    """The arithmetic a float32 convolution of ``lib`` runs in on ``device``: TF32 where torch's
    cuDNN (``backends.cudnn.allow_tf32``, default True) or chainrule's TF32 tiling
    (``backends.cuda.conv.tensor_cores`` and the same flag) takes it, else FP32."""
    if not device.startswith("cuda"):
        return "FP32"
    allowed = bool(lib.backends.cudnn.allow_tf32)
    if lib.__name__ == "chainrule":
        conv = lib.backends.cuda.conv
        allowed = allowed and conv.implicit_gemm and conv.tensor_cores
    return "TF32" if allowed else "FP32"


def run_cuda_benchmarks(workloads=None, reps=None, device: str = "cuda", size: str = "full",
                        libs: dict | None = None, warmup: int = WARMUP) -> list[dict]:
    """Each workload (default: all four) on chainrule and torch, ``reps`` timed steps each
    (an int for all, a dict by workload, or None for ``DEFAULT_REPS``)."""
    workloads = list(workloads or WORKLOADS)
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        raise ValueError(f"run_cuda_benchmarks: unknown workloads {unknown}; expected some of {WORKLOADS}")
    results = []
    for name in workloads:
        count = reps.get(name, DEFAULT_REPS[name]) if isinstance(reps, dict) else (reps or DEFAULT_REPS[name])
        results.append(run_workload(name, count, device, size, libs, warmup))
    return results


def gpu_description() -> str:
    """The GPU's model and the libraries' versions, as the table's heading prints them."""
    import chainrule

    if chainrule.cuda.is_available():
        parts = [f"GPU: {chainrule.cuda.get_device_name(0)}"]
    else:
        parts = ["GPU: none (CuPy is missing or sees no device)"]
    try:
        import cupy

        parts.append(f"CuPy {cupy.__version__}")
    except ImportError:
        parts.append("CuPy not installed")
    torch = _load_torch()
    if torch is not None:
        cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
        parts.append(f"torch {torch.__version__} ({cuda})")
    parts.append(f"NumPy {np.__version__}")
    return ", ".join(parts)


def _ms(result: dict, label: str) -> str:
    if f"{label}_ms" in result:
        tflops = f" ({result[f'{label}_tflops']:.3g} TFLOP/s)" if f"{label}_tflops" in result else ""
        return f"{result[f'{label}_ms']:.2f} ms{tflops}"
    return "failed" if f"{label}_error" in result else "–"


def format_table(results: list[dict]) -> str:
    """A markdown table: times with TFLOP/s, ratio against the issue's ceiling, notes (peak memory
    of the MLP step, µs per op, the conv's arithmetic: FP32 or TF32), and any error below it."""
    lines = ["| workload | chainrule | torch | ratio | target | notes |", "|---|---|---|---|---|---|"]
    errors = []
    for r in results:
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "–"
        memory = ""
        if "chainrule_peak_mib" in r:
            memory = f"{r['chainrule_peak_mib']:.0f} vs {r.get('torch_peak_mib', float('nan')):.0f} MiB"
            if "memory_ratio" in r:
                memory += f" ({r['memory_ratio']:.2f}, target ≤ {MEMORY_TARGET})"
        if "chainrule_us_per_op" in r:
            memory = f"{r['chainrule_us_per_op']:.1f} vs {r.get('torch_us_per_op', float('nan')):.1f} µs/op"
        if "precision" in r:
            memory = "precision " + " vs ".join(r["precision"].values())
        lines.append(f"| {r['workload']} | {_ms(r, 'chainrule')} | {_ms(r, 'torch')} | {ratio} | "
                     f"≤ {TARGETS[r['workload']]} | {memory} |")
        errors += [f"{r['workload']} {key[:-6]}: {value}" for key, value in r.items() if key.endswith("_error")]
    return "\n".join(lines + [f"- {e}" for e in errors])


format = format_table


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="chainrule vs torch on a CUDA GPU (issue 12's workloads)")
    parser.add_argument("workloads", nargs="*", help=f"some of {WORKLOADS} (default: all)")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    args = parser.parse_args(argv)
    print(gpu_description())
    print(format_table(run_cuda_benchmarks(args.workloads or None, args.reps, args.device, args.size)))


if __name__ == "__main__":
    main()
