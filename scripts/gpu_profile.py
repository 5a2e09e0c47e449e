"""Where the GPU time of two benchmark workloads goes, for tuning on a lent GPU machine.

    python scripts/gpu_profile.py        # prints to stdout; also $OUT/gpu_profile.txt if $OUT is set

1. conv2d (the bench's 64→64 3×3 on (64, 64, 56, 56)): forward alone, forward + backward, on
   im2col with CuPy's float32 GEMMs, the same in TF32 (what torch's cuDNN convolutions use by
   default, ``torch.backends.cudnn.allow_tf32``), and with the implicit-GEMM kernels
   (``chainrule.backends.cuda.conv.implicit_gemm``, on by default) in each of their thread
   tilings (the TF32 tensor-core one, ``conv.tensor_cores``, among them), then each kernel alone
   (the data gradient both ways) in the default and the TF32 tiling, timed with CUDA events;
   torch beside it, with and without TF32.
2. transformer_step: the step's GPU time against the host time to queue it, and its Python profile.
3. op_overhead (200 chained small ops, forward and backward): the Python profile of chainrule's
   step on the device, by own time, and one bare CuPy elementwise launch for scale.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

import chainrule  # noqa: E402
from chainrule import benchmark_cuda as bench  # noqa: E402
from chainrule.ops import _cuda_conv  # noqa: E402

LINES: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    LINES.append(text)


def gpu_ms(lib, fn, reps: int = 20) -> float:
    for _ in range(3):
        fn()
    lib.cuda.synchronize()
    start, end = lib.cuda.Event(enable_timing=True), lib.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / reps


def conv_phases(lib, label: str) -> None:
    n, c, h, w, o = bench.SIZES["full"]["conv"]
    lib.manual_seed(0)
    conv = lib.nn.Conv2d(c, o, 3, padding=1, bias=False).to("cuda")
    x = lib.from_numpy(bench._randn(n, c, h, w)).to("cuda").requires_grad_(True)

    def forward():
        with lib.no_grad():
            conv(x)

    def both():
        x.grad = None
        conv.weight.grad = None
        conv(x).sum().backward()

    flops = 2 * n * o * h * w * c * 9
    f, fb = gpu_ms(lib, forward), gpu_ms(lib, both)
    say(f"   {label}: forward {f:.2f} ms ({flops / f / 1e9:.1f} TFLOP/s), forward+backward {fb:.2f} ms "
        f"({3 * flops / fb / 1e9:.1f} TFLOP/s)")


def implicit_gemm_phases() -> None:
    """conv_phases with the implicit-GEMM kernels on, in each float32 thread tiling
    (``ops/_cuda_conv.py``'s ``TILES``); the switch and the tiling are restored after."""
    saved, saved_tile = chainrule.backends.cuda.conv.implicit_gemm, dict(_cuda_conv.tile)
    chainrule.backends.cuda.conv.implicit_gemm = True
    try:
        for name, (threads, _) in _cuda_conv.TILES.items():
            _cuda_conv.tile["float"] = name
            conv_phases(chainrule, f"chainrule, implicit-GEMM kernels, {name} micro-tiles ({threads} threads)")
    finally:
        chainrule.backends.cuda.conv.implicit_gemm = saved
        _cuda_conv.tile.update(saved_tile)


def conv_kernel_phases() -> None:
    """Each implicit-GEMM kernel of the bench conv alone, in float32's default tiling and in the
    TF32 one: the forward, the data gradient by the input kernel and by the forward kernel on the
    flipped filter (``input_by_forward``), and the filter gradient (its slices' sum included)."""
    import cupy

    from chainrule.ops.conv import _Geometry

    n, c, h, w, o = bench.SIZES["full"]["conv"]
    geo = _Geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1, (h, w))
    rng = np.random.default_rng(0)
    x = cupy.asarray(rng.standard_normal((n, c, h, w), dtype=np.float32))
    weight = cupy.asarray(rng.standard_normal((o, c, 3, 3), dtype=np.float32))
    grad = cupy.asarray(rng.standard_normal((n, o, h, w), dtype=np.float32))
    flops = 2 * n * o * h * w * c * 9
    saved, saved_tile = _cuda_conv.input_by_forward, dict(_cuda_conv.tile)
    try:
        for tiling in (saved_tile["float"], "tf32"):
            _cuda_conv.tile["float"] = tiling
            timings = {"forward": lambda: _cuda_conv.conv_forward(x, weight, geo),
                       "filter gradient": lambda: _cuda_conv.conv_weight(x, grad, geo, weight.shape)}
            for flag, name in ((False, "data gradient, input kernel"), (True, "data gradient, forward kernel")):
                _cuda_conv.input_by_forward = flag
                ms = gpu_ms(chainrule, lambda: _cuda_conv.conv_input(grad, weight, geo, c))
                say(f"   implicit GEMM ({tiling}) {name}: {ms:.3f} ms ({flops / ms / 1e9:.1f} TFLOP/s)")
            _cuda_conv.input_by_forward = saved
            for name, fn in timings.items():
                ms = gpu_ms(chainrule, fn)
                say(f"   implicit GEMM ({tiling}) {name}: {ms:.3f} ms ({flops / ms / 1e9:.1f} TFLOP/s)")
    finally:
        _cuda_conv.input_by_forward = saved
        _cuda_conv.tile.update(saved_tile)


def step_profile(workload: str, reps: int = 10) -> None:
    """A bench workload's step on the GPU: its time by CUDA events, the host time to queue it
    (when the two are close, the step waits on Python, not on the GPU), and the Python profile."""
    step, _ = getattr(bench, workload)(chainrule, "cuda", "full")
    total = gpu_ms(chainrule, step, reps)
    chainrule.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        step()
    queued = (time.perf_counter() - start) / reps * 1e3
    chainrule.cuda.synchronize()
    say(f"   {workload}: {total:.2f} ms a step on the GPU's clock, {queued:.2f} ms to queue it on the host")
    say_profile(step, reps, 25)


def say_profile(step, reps: int, rows: int) -> None:
    """The Python profile of ``reps`` steps on the device, by own time, its first ``rows`` rows."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(reps):
        step()
    chainrule.cuda.synchronize()
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(rows)
    for line in text.getvalue().splitlines():
        if line.strip():
            say("   " + line[:160])


def guarded(fn, *args) -> None:
    """Run one part; a failure is printed and the profile goes on to the next part."""
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - a failed part must not hide the rest of the profile
        import traceback

        say("   FAILED " + traceback.format_exc()[-1500:])


def main() -> int:
    import cupy
    from cupy._core import _routines_linalg as cublas_settings

    say(f"chainrule GPU profile: {bench.gpu_description()}")
    say("== conv2d 64→64 3×3 on (64, 64, 56, 56)")
    saved = chainrule.backends.cuda.conv.implicit_gemm
    chainrule.backends.cuda.conv.implicit_gemm = False
    try:
        conv_phases(chainrule, "chainrule, im2col, float32 GEMMs")
    finally:
        chainrule.backends.cuda.conv.implicit_gemm = saved
    implicit_gemm_phases()
    guarded(conv_kernel_phases)
    before = cublas_settings.get_compute_type(np.float32)
    cublas_settings.set_compute_type(np.float32, cublas_settings.COMPUTE_TYPE_TF32)
    chainrule.backends.cuda.conv.implicit_gemm = False
    try:
        conv_phases(chainrule, "chainrule, im2col, TF32 GEMMs")
    finally:
        cublas_settings.set_compute_type(np.float32, before)
        chainrule.backends.cuda.conv.implicit_gemm = saved
    torch = bench._load_torch()
    if torch is not None and torch.cuda.is_available():
        say(f"   torch cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}")
        conv_phases(torch, "torch")
        torch.backends.cudnn.allow_tf32 = False
        conv_phases(torch, "torch without TF32")
        torch.backends.cudnn.allow_tf32 = True
    say("== transformer_step: where its time goes")
    guarded(step_profile, "transformer_step")
    say("== op_overhead: 200 chained ops, forward and backward")
    step, _ = bench.op_overhead(chainrule, "cuda", "full")
    say(f"   chainrule step: {gpu_ms(chainrule, step, 20):.2f} ms")
    a = cupy.ones(16, dtype=cupy.float32)
    cupy.cuda.Device().synchronize()
    start = time.perf_counter()
    for _ in range(2000):
        cupy.add(a, a)
    cupy.cuda.Device().synchronize()
    say(f"   one bare cupy.add launch: {(time.perf_counter() - start) / 2000 * 1e6:.1f} µs")
    say_profile(step, 10, 30)
    out = os.environ.get("OUT")
    if out:
        Path(out, "gpu_profile.txt").write_text("\n".join(LINES) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
