"""The implicit-GEMM convolution kernels (``ops/_cuda_conv.py``), proven without a GPU.

1. Compile checks: the exact CUDA C handed to CuPy, for each dtype and thread tiling, compiled
   for sm_90 (the H200) by nvcc through ptxas, with no register spills and the tiling's blocks per
   SM fitting (skipped without nvcc); and by NVRTC, CuPy's own compiler, where its wheel is
   installed (``cupy-cuda13x[ctk]`` brings it).
2. CPU emulation: the same source compiled by g++ against a shim of the CUDA execution model
   (every thread of a block a fiber on one OS thread, ``__syncthreads`` a barrier over the
   block, ``__shared__`` a static the block's threads share, blocks one after another over a 3-d
   grid), loaded with ctypes and run through ``_cuda_conv``'s own Python launchers on NumPy
   arrays, against chainrule's CPU convolution maps for a table of geometries, and a whole
   program (backward and double backward) through ``ops/conv.py``'s branch against torch
   (skipped without g++). A wrong index, a tile edge, a missing barrier fails here as on a GPU.
   The same comparisons run the real kernels where CuPy has a GPU (the ``gpu`` cases).
3. The GPU scripts' conv parts (``gpu_check``'s table and network, ``gpu_profile``'s tilings) on
   the emulated kernels.
4. Dispatch: ``ops/conv.py`` leaves the CPU, the stand-in and the flag-off paths alone; the flag
   and ``CHAINRULE_CUDA_CONV`` parse.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import mmap
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule.ops import _cuda_conv, conv
from chainrule.ops.conv import _Geometry
from tests._profile import in_ci

NVCC = shutil.which("nvcc")
GXX = shutil.which("g++")

# ---------------------------------------------------------------- 1. nvcc and NVRTC for sm_90

DTYPES_AND_TILES = [(np.float32 if ctype == "float" else np.float64, tile) for ctype, tile in _cuda_conv._BLOCKS_PER_SM]
DTYPE_TILE_IDS = [f"{np.dtype(dtype).name}-{tile}" for dtype, tile in DTYPES_AND_TILES]


def _sm_90_kind(dtype_and_tile) -> tuple:
    """The tilings a convolution reaches without a named tile (each dtype's in ``_cuda_conv.tile``,
    and ``tf32`` with tensor cores on) are each their own kind; gpu_profile's alternatives one kind."""
    dtype, tile = dtype_and_tile
    ctype = _cuda_conv._CTYPES[np.dtype(dtype)]
    return (ctype, tile) if tile in (_cuda_conv.tile[ctype], "tf32") else ("profiled alternative",)


def sm_90_tilings() -> list:
    """The tilings nvcc compiles in this profile. nvcc through ptxas took 7.6 to 20.8 s a tiling (116 s
    for all 8, one pytest process on the loaded 2-core machine): CI compiles every tiling a convolution reaches and one
    of the alternatives only gpu_profile.py selects; CHAINRULE_LONG_TESTS=1 compiles all of them."""
    kinds = {_sm_90_kind(case) for case in DTYPES_AND_TILES}
    return in_ci(DTYPES_AND_TILES, len(kinds), seed=42, key=_sm_90_kind)


SM_90_TILINGS = sm_90_tilings()


@pytest.mark.skipif(NVCC is None, reason="needs NVIDIA's CUDA compiler (nvcc)")
@pytest.mark.parametrize("dtype, tile", SM_90_TILINGS,
                         ids=[f"{np.dtype(dtype).name}-{tile}" for dtype, tile in SM_90_TILINGS])
def test_kernels_compile_for_sm_90_without_spills(dtype, tile, tmp_path):
    source = _cuda_conv.kernel_source(dtype, tile)
    assert "#include" not in source and "std::" not in source  # NVRTC has no host headers
    path = tmp_path / "conv.cu"
    path.write_text(source)
    # CuPy's RawModule options (-std=c++17), as the existing kernels' compile test; -cubin runs
    # ptxas, so the sm_90 register and shared-memory limits are checked too
    result = subprocess.run([NVCC, "-std=c++17", "-cubin", "-arch=sm_90", "--resource-usage", "-Werror",
                             "all-warnings", "-o", str(tmp_path / "conv.cubin"), str(path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    usage = dict(re.findall(r"Compiling entry function '(\w+)'.*?\n(.*?Used \d+ registers.*?)\n",
                            result.stdout + result.stderr, re.S))
    assert sorted(usage) == sorted(_cuda_conv.KERNEL_NAMES)
    for name, text in usage.items():
        assert "0 bytes spill stores, 0 bytes spill loads" in text, (name, text)
        registers = int(re.search(r"Used (\d+) registers", text).group(1))
        smem = int(re.search(r"(\d+) bytes smem", text).group(1))
        # the tiling's blocks per SM fit: registers (65536 per SM) and static shared memory
        _, threads, _, min_blocks = _cuda_conv._tile(dtype, tile)
        assert registers * threads * min_blocks <= 65536 and smem <= 48 * 1024, (name, text)


def _nvrtc_library():
    """NVRTC from the ``nvidia-cuda-nvrtc`` wheel (what ``cupy-cuda13x[ctk]`` installs), or None."""
    import glob
    import importlib.util

    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        found = sorted(glob.glob(f"{root}/**/libnvrtc.so*", recursive=True))
        if found:
            return ctypes.CDLL(found[0])
    return None


@pytest.mark.parametrize("dtype, tile", DTYPES_AND_TILES, ids=DTYPE_TILE_IDS)
def test_kernels_compile_with_nvrtc_as_cupy_compiles_them(dtype, tile):
    """CuPy's RawModule compiles with NVRTC, which has no host headers and not all of nvcc's
    implicit includes: the same source through NVRTC's C API, with the module's options."""
    nvrtc = _nvrtc_library()
    if nvrtc is None:
        pytest.skip("needs NVRTC (pip install nvidia-cuda-nvrtc, or CuPy's [ctk] extra)")
    program = ctypes.c_void_p()
    assert nvrtc.nvrtcCreateProgram(ctypes.byref(program), _cuda_conv.kernel_source(dtype, tile).encode(), b"conv.cu",
                                    0, None, None) == 0
    options = [o.encode() for o in (*_cuda_conv.NVRTC_OPTIONS, "-arch=sm_90")]
    status = nvrtc.nvrtcCompileProgram(program, len(options), (ctypes.c_char_p * len(options))(*options))
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(program, log)
    cubin_size = ctypes.c_size_t()
    nvrtc.nvrtcGetCUBINSize(program, ctypes.byref(cubin_size))
    nvrtc.nvrtcDestroyProgram(ctypes.byref(program))
    assert status == 0, log.value.decode()
    assert cubin_size.value > 0


# ---------------------------------------------------------------- 2. the CPU emulation

_SHIM = r"""
#include <functional>
#include <vector>
#include <ucontext.h>

// The block's threads are fibers (ucontext) taking turns on one OS thread; a barrier yields
// until every thread of the block has arrived, so the interleaving is one the barriers allow.
struct dim3_ { unsigned x = 0, y = 0, z = 0; };
static std::vector<dim3_> fiber_thread_index;
static std::vector<ucontext_t> fibers;
static std::vector<std::vector<char>> fiber_stacks;
static std::vector<char> fiber_done;
static ucontext_t scheduler;
static unsigned current = 0;
static std::function<void()> kernel_body;
static dim3_ blockIdx, blockDim, gridDim;
#define threadIdx (fiber_thread_index[current])

struct Barrier {
    unsigned participants = 0, arrived = 0;
    unsigned long generation = 0;
    void wait() {
        unsigned long seen = generation;
        if (++arrived == participants) { arrived = 0; ++generation; return; }
        while (generation == seen) swapcontext(&fibers[current], &scheduler);
    }
};
static Barrier block_barrier;

#define __device__
#define __global__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
#define __launch_bounds__(...)
inline void __syncthreads() { block_barrier.wait(); }

// The TF32 tilings' two PTX instructions. cvt.rna.tf32.f32: round to the nearest TF32 (10
// mantissa bits), ties away from zero, as a float32 bit pattern with the low 13 bits clear.
struct __attribute__((aligned(16))) uint4 { unsigned x, y, z, w; };
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline unsigned to_tf32(float v) {
    unsigned bits;
    __builtin_memcpy(&bits, &v, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7fffffffu;  // NaN
    if ((bits & 0x7f800000u) != 0x7f800000u) bits += 0x1000u;  // (adding to the magnitude: ties away)
    return bits & 0xffffe000u;
}
// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 is warp-collective: every lane puts its
// fragments on the warp's table, waits for the other 31, reads the whole A (16×8) and B (8×8)
// back through PTX's fragment layout, adds its own four products, and waits again before the
// table is reused. A lane missing from the call, or a fragment in the wrong register, shows.
struct WarpTable { unsigned a[32][4], b[32][2]; };
static std::vector<WarpTable> warp_tables;
static std::vector<Barrier> warp_barriers;
inline float tf32_value(unsigned bits) { float v; __builtin_memcpy(&v, &bits, 4); return v; }
inline void mma_tf32(float& c0, float& c1, float& c2, float& c3, const unsigned* a, const unsigned* b) {
    const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    WarpTable& table = warp_tables[warp];
    for (int r = 0; r < 4; ++r) table.a[lane][r] = a[r];
    for (int r = 0; r < 2; ++r) table.b[lane][r] = b[r];
    warp_barriers[warp].wait();
    // A[row][k] is in lane (row % 8)·4 + k % 4, register (row / 8) + 2·(k / 4); B[k][col] in lane
    // col·4 + k % 4, register k / 4; this lane's C[i] is at row lane/4 + 8·(i / 2), column 2·(lane % 4) + i % 2
    float* c[4] = {&c0, &c1, &c2, &c3};
    float out[4];
    for (int i = 0; i < 4; ++i) {
        const unsigned row = lane / 4 + 8 * (i / 2), col = 2 * (lane % 4) + i % 2;
        float sum = *c[i];
        for (unsigned k = 0; k < 8; ++k)
            sum += tf32_value(table.a[(row % 8) * 4 + k % 4][row / 8 + 2 * (k / 4)]) *
                   tf32_value(table.b[col * 4 + k % 4][k / 4]);
        out[i] = sum;
    }
    warp_barriers[warp].wait();
    for (int i = 0; i < 4; ++i) *c[i] = out[i];
}

static void fiber_entry() { kernel_body(); fiber_done[current] = 1; }

static void launch(unsigned gx, unsigned gy, unsigned gz, unsigned block, std::function<void()> body) {
    kernel_body = body;
    gridDim = {gx, gy, gz};
    blockDim = {block, 1, 1};
    fiber_thread_index.assign(block, dim3_());
    fibers.assign(block, ucontext_t());
    fiber_stacks.assign(block, std::vector<char>(1 << 16));
    block_barrier = Barrier{block};
    warp_tables.assign((block + 31) / 32, WarpTable());
    warp_barriers.assign((block + 31) / 32, Barrier{32});
    for (unsigned bz = 0; bz < gz; ++bz) for (unsigned by = 0; by < gy; ++by) for (unsigned bx = 0; bx < gx; ++bx) {
        blockIdx = {bx, by, bz};
        fiber_done.assign(block, 0);
        for (unsigned t = 0; t < block; ++t) {
            fiber_thread_index[t].x = t;
            getcontext(&fibers[t]);
            fibers[t].uc_stack.ss_sp = fiber_stacks[t].data();
            fibers[t].uc_stack.ss_size = fiber_stacks[t].size();
            fibers[t].uc_link = &scheduler;
            makecontext(&fibers[t], fiber_entry, 0);
        }
        for (bool running = true; running;) {
            running = false;
            for (current = 0; current < block; ++current)
                if (!fiber_done[current]) { running = true; swapcontext(&scheduler, &fibers[current]); }
        }
    }
}
"""

_GEOMETRY = ("int N, int C, int H, int W, int O, int OH, int OW, int KH, int KW, int sh, int sw, int ph, int pw, "
             "int dh, int dw, int groups")
_GEOMETRY_ARGS = "N, C, H, W, O, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, groups"
_LAUNCHERS = {
    "conv_forward": ("const T* x, const T* wmat, T* y", "x, wmat, y", ""),
    "conv_input": ("const T* grad, const T* wmat, T* dx", "grad, wmat, dx", ""),
    "conv_weight": ("const T* x, const T* grad, T* partial", "x, grad, partial", ", int k_chunk"),
}


def _launcher(name: str) -> str:
    pointers, pointer_args, extra = _LAUNCHERS[name]
    extra_arg = extra.split()[-1] if extra else ""
    call_extra = f", {extra_arg}" if extra else ""
    return (f'extern "C" void launch_{name}(unsigned gx, unsigned gy, unsigned gz, unsigned block, {pointers}, '
            f"{_GEOMETRY}{extra}) {{\n"
            f"    launch(gx, gy, gz, block, [&] {{ {name}({pointer_args}, {_GEOMETRY_ARGS}{call_extra}); }});\n}}\n")


class _EmulatedFunction:
    """A compiled kernel as CuPy's RawModule hands it out: called with (grid, block, args)."""

    def __init__(self, library, name: str, dtype) -> None:
        self.launcher = getattr(library, f"launch_{name}")
        self.dtype = np.dtype(dtype)
        self.launches = 0

    def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
        assert len(grid) == 3 and len(block) == 1 and block[0] == _cuda_conv._threads(self.dtype)[0]
        assert all(0 < d for d in grid) and grid[1] <= 65535 and grid[2] <= 65535
        c_args = []
        for a in args:
            if isinstance(a, np.ndarray):
                # CuPy would pass a strided array's base pointer as it is: the kernels need contiguous ones
                assert a.flags.c_contiguous and a.dtype == self.dtype, (a.flags, a.dtype)
                c_args.append(ctypes.c_void_p(a.ctypes.data))
            else:
                assert isinstance(a, np.int32), f"pass C ints as np.int32, got {type(a).__name__}"
                c_args.append(ctypes.c_int(int(a)))
        self.launcher(*(ctypes.c_uint(d) for d in grid), ctypes.c_uint(block[0]), *c_args)
        self.launches += 1


def _build(source: str, build_dir) -> ctypes.CDLL:
    text = "\n".join([_SHIM, source, *(_launcher(name) for name in _cuda_conv.KERNEL_NAMES)])
    path = build_dir / f"conv_{hashlib.sha256(text.encode()).hexdigest()[:16]}.so"
    if not path.exists():
        # built under this process's own names, then renamed: pytest-xdist workers share the
        # directory, and one never loads another's half-written library
        cpp = path.with_suffix(f".{os.getpid()}.cpp")
        cpp.write_text(text)
        partial = path.with_suffix(f".{os.getpid()}.so")
        result = subprocess.run([GXX, "-std=c++20", "-O2", "-shared", "-fPIC", "-w", str(cpp), "-o", str(partial)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        os.replace(partial, path)
    return ctypes.CDLL(str(path))


def _emulated_kernels(tmp_path_factory):
    """``_cuda_conv._function`` for the emulated kernels of the module's real source, in the
    dtype's current tiling (``_cuda_conv.tile``), each built at first use."""
    # one directory for all pytest-xdist workers (their base temps share a parent), so each
    # library is compiled once per run, not once per worker
    root = tmp_path_factory.getbasetemp()
    build_dir = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "conv_kernels"
    build_dir.mkdir(exist_ok=True)
    libraries = {}

    def function(dtype, name):
        key = (np.dtype(dtype), _cuda_conv._tile(dtype)[0])
        if key not in libraries:
            libraries[key] = _build(_cuda_conv.kernel_source(dtype), build_dir)
        return _EmulatedFunction(libraries[key], name, dtype)

    function.libraries = libraries  # (the fenced test builds its own functions over them)
    return function


@pytest.fixture(scope="module")
def emulated(emulated_or_none):
    if emulated_or_none is None:
        pytest.skip("needs g++ for the CPU emulation")
    return emulated_or_none


def _geometry(kernel, stride, pad_lo, pad_hi, dilation, groups, in_shape, out_shape=None):
    return _Geometry(kernel, stride, pad_lo, pad_hi, dilation, groups, in_shape, out_shape)


# (name, N, C, O, geometry): tile edges, several blocks along M and N, K not a multiple of 16
CASES = [
    ("3x3 p1", 2, 3, 5, _geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1, (9, 11))),
    ("stride 2", 2, 4, 6, _geometry((3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1, (10, 9))),
    ("dilation 2", 1, 3, 4, _geometry((3, 3), (1, 1), (2, 2), (2, 2), (2, 2), 1, (12, 12))),
    ("groups 2", 2, 6, 4, _geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 2, (8, 8))),
    ("depthwise x2", 2, 5, 10, _geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 5, (7, 9))),
    ("asymmetric pad", 2, 3, 4, _geometry((4, 2), (1, 1), (1, 0), (2, 1), (1, 1), 1, (6, 7))),
    ("1x1, O > 64", 3, 20, 70, _geometry((1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 1, (6, 5))),
    ("7x7 s2 p3", 1, 3, 8, _geometry((7, 7), (2, 2), (3, 3), (3, 3), (1, 1), 1, (15, 15))),
    ("odd tiles", 3, 7, 66, _geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1, (13, 11))),
    ("N=1", 1, 2, 3, _geometry((2, 2), (1, 1), (0, 0), (0, 0), (1, 1), 1, (3, 4))),
    ("mixed stride, dilation", 2, 4, 5, _geometry((3, 2), (2, 3), (1, 2), (1, 2), (1, 2), 1, (11, 13))),
    ("long K, C/g > 64", 1, 70, 6, _geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1, (5, 6))),
    ("no padding, stride 3", 2, 3, 4, _geometry((3, 3), (3, 3), (0, 0), (0, 0), (1, 1), 1, (10, 11))),
    # conv_transpose2d(stride 2, padding 1, output_padding 1): in_shape positions no output reaches
    ("transpose output_padding", 2, 3, 4, _geometry((3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1, (8, 10), (4, 5))),
    ("conv1d", 2, 4, 6, _geometry((5,), (2,), (2,), (2,), (1,), 1, (37,))),
    ("conv1d dilated groups", 3, 4, 4, _geometry((3,), (1,), (3,), (1,), (2,), 2, (20,))),
    # hyena_long_conv's short filter: depthwise Conv1d(k=3, padding=2)
    ("depthwise conv1d p2", 2, 6, 6, _geometry((3,), (1,), (2,), (2,), (1,), 6, (10,))),
    # padding past d·(k − 1): the stride-1 data gradient is no forward convolution, the input kernel takes it
    ("1x1 p1", 2, 3, 4, _geometry((1, 1), (1, 1), (1, 1), (1, 1), (1, 1), 1, (5, 6))),
]


def _axis_kind(values, what):
    if all(v == 1 for v in values):
        return f"{what} 1"
    return f"{what} > 1" if len(set(values)) == 1 else f"mixed {what}"


def geometry_kinds(case) -> list[str]:
    """What a kernel does differently for this case's geometry: its rank, its stride, dilation,
    groups and padding kinds, input no window reaches, and the sizes that take more than one tile."""
    _, n, c, o, geo = case
    reach = [d * (k - 1) for d, k in zip(geo.dilation, geo.kernel)]
    pads = (*geo.pad_lo, *geo.pad_hi)
    kinds = [f"conv{len(geo.kernel)}d", _axis_kind(geo.stride, "stride"), _axis_kind(geo.dilation, "dilation"),
             "groups 1" if geo.groups == 1 else "depthwise" if geo.groups == c else "grouped"]
    if not any(pads):
        kinds.append("no padding")
    elif geo.pad_lo == geo.pad_hi:
        kinds.append("symmetric padding")
    else:
        kinds.append("asymmetric padding")
    if any(p > r for p, r in zip(geo.pad_lo, reach)) or any(p > r for p, r in zip(geo.pad_hi, reach)):
        kinds.append("padding past the kernel's reach")
    if any((size + lo + hi - r - 1) % s for size, lo, hi, r, s in zip(geo.in_shape, geo.pad_lo, geo.pad_hi, reach,
                                                                        geo.stride)):
        kinds.append("input positions no window reaches")  # a transposed convolution's output_padding
    kinds.append("several row blocks" if n * math.prod(geo.out_shape) > _cuda_conv.BLOCK_M else "one row block")
    if o // geo.groups > _cuda_conv.BLOCK_N:
        kinds.append("several column blocks")
    if c // geo.groups * math.prod(geo.kernel) > 4 * _cuda_conv.BLOCK_K:
        kinds.append("long K")
    if n == 1:
        kinds.append("batch 1")
    return kinds


def _variant_kinds(kernel: str, variant: str, case) -> list[tuple]:
    """A kernels test's kinds: every case by name; every compiled kernel (dtype and tiling) with
    each variant (data-gradient path, fence side) and each geometry kind; each variant with each
    geometry kind."""
    geometry = geometry_kinds(case)
    return [("case", case[0]), (kernel, variant), *((kernel, kind) for kind in geometry),
            *((variant, kind) for kind in geometry)]


# (case, (dtype, tile), kernel id) for every case on every compiled kernel
_KERNEL_CASES = [(case, dtype_and_tile, kernel) for case in CASES
                 for dtype_and_tile, kernel in zip(DTYPES_AND_TILES, DTYPE_TILE_IDS, strict=True)]
MATCH_ALL = [(*entry, by_forward) for entry in _KERNEL_CASES for by_forward in (True, False)]
FENCED_ALL = [(*entry, side) for entry in _KERNEL_CASES for side in ("after", "before")]


def match_kinds(entry) -> list[tuple]:
    return _variant_kinds(entry[2], "input-by-forward" if entry[3] else "input-kernel", entry[0])


def fenced_kinds(entry) -> list[tuple]:
    return _variant_kinds(entry[2], f"fenced {entry[3]}", entry[0])


def match_cases() -> list:
    """The comparisons with the CPU maps this profile runs: in CI a quarter of them, or more where
    covering every kind takes more (tests/_profile.py's in_ci); CHAINRULE_LONG_TESTS=1 runs all."""
    return in_ci(MATCH_ALL, 72, seed=41, kinds=match_kinds)


def fenced_cases() -> list:
    """The fenced runs this profile makes, chosen as ``match_cases``."""
    return in_ci(FENCED_ALL, 72, seed=41, kinds=fenced_kinds)


MATCH_CASES, FENCED_CASES = match_cases(), fenced_cases()


def _arrays(n, c, o, geo, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *geo.in_shape)).astype(dtype)
    w = rng.standard_normal((o, c // geo.groups, *geo.kernel)).astype(dtype)
    grad = rng.standard_normal((n, o, *geo.out_shape)).astype(dtype)
    return x, w, grad


def _assert_close(got, want, dtype, what, tolerance=None):
    assert got.shape == want.shape and got.dtype == want.dtype and got.flags.c_contiguous, what
    scale = max(float(np.abs(want).max()), 1.0)
    error = float(np.abs(got - want).max()) / scale
    tolerance = tolerance or (1e-12 if dtype == np.float64 else 1e-5)
    assert error <= tolerance, f"{what}: max error {error:.3g} (relative to {scale:.3g})"
    return error


# A TF32 tiling's result is the float32 maps of its operands rounded to TF32, up to the order of
# float32 accumulation (the tensor cores' is unspecified): 1e-4 of the output's scale is far
# below TF32's own rounding of the operands (~1e-3), so an operand left unrounded, or rounded
# toward zero, fails; against the unrounded float32 maps the result must lie within TF32's error.
TF32_TOLERANCE, TF32_AGAINST_FLOAT32 = 1e-4, 5e-3


def _assert_maps_close(got, want_of, operands, dtype, tile, what):
    """``got`` against ``want_of(*operands)``; for a TF32 tiling against the maps of the TF32
    operands, and within TF32's error of the float32 maps."""
    if tile not in _cuda_conv._MMA:
        return _assert_close(got, want_of(*operands), dtype, what)
    _assert_close(got, want_of(*operands), dtype, f"{what} (TF32 against float32)", TF32_AGAINST_FLOAT32)
    return _assert_close(got, want_of(*map(_cuda_conv.round_to_tf32, operands)), dtype, f"{what} (TF32)", TF32_TOLERANCE)


def _assert_three_maps(arrays, geo, c, dtype, tile, name, to_device=np.asarray, to_host=np.asarray):
    """The kernels' forward, data gradient and filter gradient of host ``arrays`` (x, w, grad)
    against the CPU maps."""
    x, w, grad = arrays
    dx, dw, dgrad = map(to_device, arrays)
    _assert_maps_close(to_host(_cuda_conv.conv_forward(dx, dw, geo)),
                       lambda x, w: np.ascontiguousarray(conv._conv(x, w, geo)), (x, w), dtype, tile, f"{name} forward")
    _assert_maps_close(to_host(_cuda_conv.conv_input(dgrad, dw, geo, c)),
                       lambda grad, w: np.ascontiguousarray(conv._conv_input(grad, w, geo, c)), (grad, w), dtype, tile,
                       f"{name} input gradient")
    _assert_maps_close(to_host(_cuda_conv.conv_weight(dx, dgrad, geo, w.shape)),
                       lambda x, grad: conv._conv_weight(x, grad, geo, w.shape), (x, grad), dtype, tile,
                       f"{name} filter gradient")


@pytest.fixture(scope="module")
def device(request, emulated_or_none):
    """(kernel getter, array module, to-host): the real kernels on a GPU (the next GPU run's
    ``pytest tests/cuda``), or the emulated ones on NumPy."""
    if request.param == "gpu":
        if not chainrule.cuda.is_available():
            pytest.skip("needs CuPy and a CUDA GPU")
        import cupy

        return _cuda_conv._function, cupy, cupy.asnumpy
    if emulated_or_none is None:
        pytest.skip("needs g++ for the CPU emulation")
    return emulated_or_none, np, np.asarray


@pytest.fixture(scope="module")
def emulated_or_none(tmp_path_factory):
    return None if GXX is None else _emulated_kernels(tmp_path_factory)


# the real kernels on a GPU take every case in every profile (a GPU run is where they are proven);
# the emulated ones take this profile's share
_DEVICE_AND_MATCH_CASES = [("gpu", entry) for entry in MATCH_ALL] + [("emulated", entry) for entry in MATCH_CASES]


@pytest.mark.parametrize("device, case, dtype, tile, input_by_forward",
                         [(where, case, dtype, tile, by_forward)
                          for where, (case, (dtype, tile), _, by_forward) in _DEVICE_AND_MATCH_CASES],
                         ids=[f"{where}-{case[0]}-{kernel}-{'input-by-forward' if by_forward else 'input-kernel'}"
                              for where, (case, _, kernel, by_forward) in _DEVICE_AND_MATCH_CASES],
                         indirect=["device"])
def test_kernels_match_the_cpu_maps(case, dtype, tile, input_by_forward, device, monkeypatch):
    function, xp, to_host = device
    name, n, c, o, geo = case
    monkeypatch.setattr(_cuda_conv, "_function", function)
    # a stride-1 data gradient runs the forward kernel on the flipped filter, or the input kernel
    monkeypatch.setattr(_cuda_conv, "input_by_forward", input_by_forward)
    monkeypatch.setitem(_cuda_conv.tile, _cuda_conv._CTYPES[np.dtype(dtype)], tile)
    _assert_three_maps(_arrays(n, c, o, geo, dtype), geo, c, dtype, tile, name, xp.asarray, to_host)


@pytest.mark.skipif(GXX is None, reason="needs g++ for the CPU emulation")
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_filter_gradient_slices_sum_to_the_whole(dtype, emulated, monkeypatch):
    """Short slices (16 output positions each, the last one ragged) over several groups: the
    grid-z split and the partial sums."""
    monkeypatch.setattr(_cuda_conv, "_function", emulated)
    monkeypatch.setattr(_cuda_conv, "_MIN_SLICE", _cuda_conv.BLOCK_K)
    n, c, o = 3, 4, 6
    geo = _geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 2, (5, 7))
    slices, length = _cuda_conv._slices(n * 35, 1, 2)
    assert slices > 1 and length % _cuda_conv.BLOCK_K == 0 and (slices - 1) * length < n * 35 < slices * length
    x, _, grad = _arrays(n, c, o, geo, dtype, seed=1)
    _assert_close(_cuda_conv.conv_weight(x, grad, geo, (o, c // 2, 3, 3)),
                  conv._conv_weight(x, grad, geo, (o, c // 2, 3, 3)), dtype, "sliced filter gradient")


# A kernel that reads or writes past its arrays is the first thing a real GPU would stop with
# ("an illegal memory access was encountered", the whole CUDA context lost). NumPy arrays sit
# inside larger heap blocks, where a stray access goes unnoticed, so here every array a launch
# gets is copied next to a page the process may not touch: on one side for one launch, on the
# other side for a second. A stray access is then a segmentation fault (the test process dies:
# a failure, not a pass) and the two launches must agree with the CPU maps.
_PAGE = mmap.PAGESIZE


def _mprotect(address: int, length: int, protection: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    if libc.mprotect(ctypes.c_void_p(address), ctypes.c_size_t(length), protection) != 0:
        raise OSError(ctypes.get_errno(), "mprotect failed")


class _Fenced:
    """A copy of ``array`` against a no-access page: just after its last byte (``side`` "after")
    or just before its first ("before")."""

    def __init__(self, array: np.ndarray, side: str) -> None:
        data_pages = -(-max(array.nbytes, 1) // _PAGE)
        self.buffer = mmap.mmap(-1, (data_pages + 2) * _PAGE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.buffer))
        offset = (data_pages + 1) * _PAGE - array.nbytes if side == "after" else _PAGE
        self.array = np.frombuffer(self.buffer, array.dtype, array.size, offset).reshape(array.shape)
        self.array[...] = array
        self.guard = self.base + ((data_pages + 1) * _PAGE if side == "after" else 0)
        _mprotect(self.guard, _PAGE, 0)  # PROT_NONE

    def release(self) -> None:
        _mprotect(self.guard, _PAGE, mmap.PROT_READ | mmap.PROT_WRITE)


class _FencedFunction(_EmulatedFunction):
    """An emulated kernel whose every array argument lies against a no-access page."""

    side = "after"

    def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
        fenced = [_Fenced(a, self.side) if isinstance(a, np.ndarray) else None for a in args]
        try:
            super().__call__(grid, block, tuple(a if f is None else f.array for a, f in zip(args, fenced)))
            for a, f in zip(args, fenced):
                if f is not None:
                    a[...] = f.array  # the output comes back; the inputs are unchanged
        finally:
            for f in fenced:
                if f is not None:
                    f.release()


@pytest.mark.skipif(GXX is None or not sys.platform.startswith("linux"), reason="needs g++ and mprotect")
@pytest.mark.parametrize("case, dtype, tile, side", [(case, dtype, tile, side) for case, (dtype, tile), _, side in FENCED_CASES],
                         ids=[f"{case[0]}-{kernel}-{side}" for case, _, kernel, side in FENCED_CASES])
def test_kernels_touch_nothing_outside_their_arrays(case, dtype, tile, side, emulated, monkeypatch):
    monkeypatch.setitem(_cuda_conv.tile, _cuda_conv._CTYPES[np.dtype(dtype)], tile)
    emulated(dtype, "conv_forward")  # builds the library for this tiling
    library = emulated.libraries[(np.dtype(dtype), _cuda_conv._tile(dtype)[0])]
    fenced = type("Fenced", (_FencedFunction,), {"side": side})
    monkeypatch.setattr(_cuda_conv, "_function", lambda dt, name: fenced(library, name, dt))
    name, n, c, o, geo = case
    _assert_three_maps(_arrays(n, c, o, geo, dtype, seed=2), geo, c, dtype, tile, f"{name}, fenced {side}")


def test_a_tiling_float64_cannot_take_is_refused():
    with pytest.raises(ValueError, match="no '8x8' tiling for float64; expected one of"):
        _cuda_conv.kernel_source(np.float64, "8x8")
    with pytest.raises(ValueError, match="no '4x4' tiling for float32"):
        _cuda_conv.kernel_source(np.float32, "4x4")


def test_slices_fill_the_grid_and_stay_within_its_limits():
    # the bench conv: 576 filter rows, 64 columns, one group, 64·56·56 output positions
    slices, length = _cuda_conv._slices(64 * 56 * 56, 5, 1)
    assert 150 <= slices <= 260 and length % _cuda_conv.BLOCK_K == 0 and slices * length >= 64 * 56 * 56
    assert _cuda_conv._slices(100, 1, 1) == (1, 112)  # too short to split
    slices, _ = _cuda_conv._slices(10**7, 1, 60000)
    assert slices * 60000 <= 65535


@pytest.mark.skipif(GXX is None, reason="needs g++ for the CPU emulation")
def test_the_emulation_catches_a_missing_barrier(emulated, tmp_path, monkeypatch):
    """Without the barrier after the multiply, a fast thread overwrites the shared tiles others
    still read: the emulation must see it, or its passing proves nothing about the barriers."""
    source = _cuda_conv.kernel_source(np.float64)
    broken = source.replace("multiply_slab(As, Bs, acc, tm, tn);\n        __syncthreads();",
                            "multiply_slab(As, Bs, acc, tm, tn);")
    assert broken.count("multiply_slab(As, Bs, acc, tm, tn);\n        __syncthreads();") == 0 and broken != source
    library = _build(broken, tmp_path)
    monkeypatch.setattr(_cuda_conv, "_function", lambda dtype, name: _EmulatedFunction(library, name, dtype))
    name, n, c, o, geo = CASES[-5]  # long K: many slabs
    x, w, _ = _arrays(n, c, o, geo, np.float64)
    got = _cuda_conv.conv_forward(x, w, geo)
    assert np.abs(got - conv._conv(x, w, geo)).max() > 1e-3


@pytest.mark.skipif(GXX is None, reason="needs g++ for the CPU emulation")
def test_empty_batch_and_channels_need_no_launch(emulated, monkeypatch):
    calls = []
    monkeypatch.setattr(_cuda_conv, "_function", lambda dtype, name: calls.append(name))
    geo = _geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1, (5, 5))
    x, w, grad = _arrays(0, 3, 4, geo, np.float32)
    assert _cuda_conv.conv_forward(x, w, geo).shape == (0, 4, 5, 5)
    assert _cuda_conv.conv_input(grad, w, geo, 3).shape == (0, 3, 5, 5)
    dw = _cuda_conv.conv_weight(x, grad, geo, w.shape)
    assert dw.shape == w.shape and not dw.any() and not calls


def _program(lib, x, weights, create_graph: bool):
    """A small network as a user writes it (strided, dilated-grouped and transposed convolutions,
    a conv1d over its rows, biases), its loss, and the gradients of the input and every weight;
    with ``create_graph`` also a gradient penalty's gradients (double backward through conv)."""
    F = lib.nn.functional
    x = lib.tensor(x, requires_grad=True)
    params = [lib.tensor(w, requires_grad=True) for w in weights]
    w1, b1, w2, w3, b3, w4 = params
    h = F.relu(F.conv2d(x, w1, b1, stride=2, padding=1))
    h = F.conv2d(h, w2, padding=2, dilation=2, groups=2)
    h = F.conv_transpose2d(h, w3, b3, stride=2, padding=1, output_padding=1)
    rows = h.reshape(h.shape[0], h.shape[1], -1)
    loss = F.conv1d(rows, w4, stride=3, padding=(2,)).tanh().square().sum()
    grads = lib.autograd.grad(loss, [x, *params], create_graph=create_graph)
    if create_graph:
        penalty = sum((g * g).sum() for g in grads[:2])
        grads = lib.autograd.grad(penalty, [x, *params])
    return [loss.detach().numpy()] + [g.detach().numpy() for g in grads]


@pytest.mark.skipif(GXX is None, reason="needs g++ for the CPU emulation")
@pytest.mark.parametrize("create_graph", [False, True], ids=["backward", "double backward"])
def test_a_whole_program_on_the_emulated_kernels_matches_torch(create_graph, emulated, monkeypatch):
    """Every convolution of the program (forward, both gradients, and under double backward the
    maps' own gradients) runs on the emulated kernels through ops/conv.py's branch, as it would on
    a GPU with the switch on; torch computes the same program."""
    torch = pytest.importorskip("torch")
    calls = []

    def counted(dtype, name):
        calls.append(name)
        return emulated(dtype, name)

    monkeypatch.setattr(_cuda_conv, "_function", counted)
    monkeypatch.setattr(_cuda_conv, "enabled", True)
    monkeypatch.setattr(_cuda_conv, "eligible", lambda geo, *arrays: len(geo.kernel) <= 2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 11, 10))
    weights = [rng.standard_normal(shape) * 0.3 for shape in
               ((8, 3, 3, 3), (8,), (6, 4, 3, 3), (6, 4, 3, 3), (4,), (5, 4, 4))]
    ours = _program(chainrule, x, weights, create_graph)
    expected = _program(torch, x, weights, create_graph)
    assert set(calls) == set(_cuda_conv.KERNEL_NAMES)
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------- 3. the GPU scripts' conv parts

@pytest.mark.skipif(GXX is None, reason="needs g++ for the CPU emulation")
def test_a_float32_program_on_the_tf32_tiling_is_within_tf32_error_of_torch(emulated, monkeypatch):
    """With ``conv.tensor_cores`` on, a float32 program's every convolution (backward and double
    backward) takes the TF32 tiling through ops/conv.py, and its loss and gradients stay within
    TF32's error of torch's float64 ones (and are not the FP32 tiling's numbers)."""
    torch = pytest.importorskip("torch")
    tilings = []

    def counted(dtype, name):
        tilings.append(_cuda_conv._tile(dtype)[0])
        return emulated(dtype, name)

    monkeypatch.setattr(_cuda_conv, "_function", counted)
    monkeypatch.setattr(_cuda_conv, "enabled", True)
    monkeypatch.setattr(_cuda_conv, "eligible", lambda geo, *arrays: len(geo.kernel) <= 2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 11, 10)).astype(np.float32)
    weights = [(rng.standard_normal(shape) * 0.3).astype(np.float32) for shape in
               ((8, 3, 3, 3), (8,), (6, 4, 3, 3), (6, 4, 3, 3), (4,), (5, 4, 4))]
    fp32 = _program(chainrule, x, weights, create_graph=True)
    assert tilings and set(tilings) == {_cuda_conv.tile["float"]}
    monkeypatch.setattr(_cuda_conv, "tensor_cores", True)
    tilings.clear()
    tf32 = _program(chainrule, x, weights, create_graph=True)
    assert len(tilings) > 3 and set(tilings) == {"tf32"}
    expected = _program(torch, x.astype(np.float64), [w.astype(np.float64) for w in weights], create_graph=True)
    for got, plain, want in zip(tf32, fp32, expected, strict=True):
        scale = max(1.0, float(np.abs(want).max()))
        assert float(np.abs(got - want).max()) / scale < 1e-2
        assert float(np.abs(plain - want).max()) / scale < 1e-4
    assert any(not np.array_equal(a, b) for a, b in zip(tf32, fp32))


@pytest.mark.skipif(GXX is None, reason="needs g++ for the CPU emulation")
def test_gpu_check_geometry_table_passes_on_the_emulated_kernels(emulated, monkeypatch):
    """scripts/gpu_check.py's conv section, with the emulated kernels as the device's: the
    comparison the next GPU run makes (all but the bench-sized geometry)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check_for_conv", script)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    monkeypatch.setattr(_cuda_conv, "_function", emulated)
    errors, failed = gpu_check._conv_checks(_cuda_conv, conv, np, np.asarray, small=True)
    assert failed == [] and len(errors) == 3 * (len(gpu_check.CONV_GEOMETRIES) - 1)
    assert max(errors.values()) < 1e-5
    # the TF32 tiling against the maps of its rounded operands (float32 geometries only)
    monkeypatch.setattr(_cuda_conv, "tensor_cores", True)
    errors, failed = gpu_check._conv_checks(_cuda_conv, conv, np, np.asarray, small=True, tf32=True)
    float32_rows = [g for g in gpu_check.CONV_GEOMETRIES if g[-1] == "float32" and not g[0].startswith("bench")]
    assert failed == [] and len(errors) == 3 * len(float32_rows) and all("(tf32)" in name for name in errors)
    assert max(errors.values()) < gpu_check.CONV_TOLERANCE["float32"]
    monkeypatch.setattr(_cuda_conv, "tensor_cores", False)
    # its network with the switch on against off, the kernels taking every map when on
    from chainrule.backends import cuda

    calls = []
    monkeypatch.setattr(_cuda_conv, "_function", lambda dtype, name: calls.append(name) or emulated(dtype, name))
    monkeypatch.setattr(_cuda_conv, "enabled", False)
    monkeypatch.setattr(_cuda_conv, "eligible", lambda geo, *arrays: len(geo.kernel) <= 2)
    off = gpu_check._conv_program("cpu", False, cuda)
    assert calls == []
    on = gpu_check._conv_program("cpu", True, cuda)
    assert set(calls) == set(_cuda_conv.KERNEL_NAMES) and len(on) == len(off) > 1 + 11  # loss, grads, second
    for a, b in zip(on, off):
        assert np.abs(a - b).max() <= 1e-4 * max(1.0, np.abs(b).max())


def test_gpu_profile_times_every_float32_tiling_with_the_switch_on(monkeypatch):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_profile.py"
    spec = importlib.util.spec_from_file_location("gpu_profile_for_conv", script)
    gpu_profile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_profile)
    seen = []
    monkeypatch.setattr(gpu_profile, "conv_phases", lambda lib, label: seen.append(
        (label, _cuda_conv.enabled, _cuda_conv._tile(np.float32)[0])))
    before = dict(_cuda_conv.tile)
    gpu_profile.implicit_gemm_phases()
    assert [(enabled, tile) for _, enabled, tile in seen] == [(True, name) for name in _cuda_conv.TILES]
    assert [label.split(", ")[-1] for label, _, _ in seen] == [
        f"{name} micro-tiles ({threads} threads)" for name, (threads, _) in _cuda_conv.TILES.items()]
    assert _cuda_conv.enabled is True and _cuda_conv.tile == before


# ---------------------------------------------------------------- 4. dispatch and the flag


class _FakeCupy:
    """A module whose ``ndarray`` is NumPy's: what ``eligible`` sees when CuPy is imported."""

    ndarray = np.ndarray


def test_eligible_only_for_real_cupy_arrays_in_1d_2d_float(monkeypatch):
    geo2 = CASES[0][4]
    x, w, _ = _arrays(2, 3, 5, geo2, np.float32)
    monkeypatch.delitem(__import__("sys").modules, "cupy", raising=False)
    assert not _cuda_conv.eligible(geo2, x, w)  # CuPy not imported: no CuPy array exists
    monkeypatch.setitem(__import__("sys").modules, "cupy", _FakeCupy)
    assert _cuda_conv.eligible(geo2, x, w)
    assert not _cuda_conv.eligible(geo2, x, w.astype(np.float64))  # mixed dtypes
    assert not _cuda_conv.eligible(geo2, x.astype(np.float16), w.astype(np.float16))
    geo3 = _geometry((1, 1, 1), (1, 1, 1), (0, 0, 0), (0, 0, 0), (1, 1, 1), 1, (2, 2, 2))
    assert not _cuda_conv.eligible(geo3, np.zeros((1, 1, 2, 2, 2), np.float32), np.zeros((1, 1, 1, 1, 1), np.float32))
    # positions past 2^30 (int indices in the kernels) stay on im2col; broadcast views: no memory
    big = _geometry((1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 1, (2**14, 2**14))
    for n, expected in ((4, True), (5, False)):
        huge = np.broadcast_to(np.zeros(1, np.float32), (n, 1, 2**14, 2**14))
        assert _cuda_conv.eligible(big, huge, np.zeros((1, 1, 1, 1), np.float32)) is expected
    with chainrule._backend.use_standin_cuda():
        standin = chainrule.randn(2, 3, 9, 11, device="cuda")._data
        assert not _cuda_conv.eligible(geo2, standin, standin)


def test_conv_takes_the_kernels_only_when_enabled_and_eligible(monkeypatch):
    calls = []
    monkeypatch.setattr(_cuda_conv, "conv_forward", lambda *a: calls.append("forward"))
    monkeypatch.setattr(_cuda_conv, "conv_input", lambda *a: calls.append("input"))
    monkeypatch.setattr(_cuda_conv, "conv_weight", lambda *a: calls.append("weight"))
    x = chainrule.randn(2, 3, 9, 11, requires_grad=True)
    w = chainrule.randn(5, 3, 3, 3, requires_grad=True)
    for flag in (False, True):  # on the CPU, on or off
        monkeypatch.setattr(_cuda_conv, "enabled", flag)
        chainrule.nn.functional.conv2d(x, w, padding=1).sum().backward()
        chainrule.nn.functional.conv_transpose2d(x, w.transpose(0, 1), padding=1).sum().backward()
        with chainrule._backend.use_standin_cuda():
            xs, ws = x.detach().to("cuda").requires_grad_(), w.detach().to("cuda").requires_grad_()
            chainrule.nn.functional.conv2d(xs, ws, padding=1).sum().backward()
    assert calls == []
    # enabled and eligible (eligible stubbed: no CuPy here): every map goes to the kernels
    monkeypatch.setattr(_cuda_conv, "enabled", True)
    monkeypatch.setattr(_cuda_conv, "eligible", lambda geo, *arrays: True)
    geo = CASES[0][4]
    a, b, grad = _arrays(2, 3, 5, geo, np.float32)
    conv._conv(a, b, geo)
    conv._conv_input(grad, b, geo, 3)
    conv._conv_weight(a, grad, geo, b.shape)
    assert calls == ["forward", "input", "weight"]


def test_the_flag_and_environment_variable(monkeypatch):
    from chainrule.backends import cuda

    assert _cuda_conv.enabled is True  # on since the 2026-12-04 H200 run checked and timed the kernels
    assert cuda.conv.implicit_gemm is True
    monkeypatch.setattr(_cuda_conv, "enabled", False)
    cuda.conv.implicit_gemm = True
    assert _cuda_conv.enabled is True and cuda.conv.implicit_gemm is True
    cuda.conv.implicit_gemm = False
    assert _cuda_conv.enabled is False
    with pytest.raises(TypeError, match="implicit_gemm must be a bool"):
        cuda.conv.implicit_gemm = "yes"
    for value, expected in (("implicit_gemm", "implicit_gemm"), (" IMPLICIT_GEMM ", "implicit_gemm"),
                            ("im2col", "im2col"), ("", "implicit_gemm"), ("tf32", "tf32")):
        monkeypatch.setenv(_cuda_conv.ENV_VAR, value)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _cuda_conv._choice_from_env() == expected
    monkeypatch.setenv(_cuda_conv.ENV_VAR, "cudnn")
    with pytest.warns(UserWarning, match="CHAINRULE_CUDA_CONV must be one of implicit_gemm, im2col, tf32"):
        assert _cuda_conv._choice_from_env() == "implicit_gemm"


def test_the_tensor_core_switch_and_torch_allow_tf32_pick_the_float32_tiling(monkeypatch):
    from chainrule.backends import cuda, cudnn

    # off until a GPU run has timed the TF32 tiling; torch's allow_tf32 defaults to True for convolutions
    assert _cuda_conv.tensor_cores is False and cuda.conv.tensor_cores is False and cudnn.allow_tf32 is True
    assert _cuda_conv._tile(np.float32)[0] == _cuda_conv.tile["float"] != "tf32"
    monkeypatch.setattr(_cuda_conv, "tensor_cores", False)
    cuda.conv.tensor_cores = True
    assert _cuda_conv.tensor_cores is True
    assert _cuda_conv._tile(np.float32)[0] == "tf32"
    assert _cuda_conv._tile(np.float64)[0] == _cuda_conv.tile["double"]  # TF32 is for float32 only
    assert _cuda_conv._tile(np.float32, "8x4")[0] == "8x4"  # a named tiling is taken as named
    monkeypatch.setattr(cudnn, "allow_tf32", False)  # the user's torch.backends.cudnn.allow_tf32 = False
    assert _cuda_conv._tile(np.float32)[0] == _cuda_conv.tile["float"]
    with pytest.raises(TypeError, match="tensor_cores must be a bool"):
        cuda.conv.tensor_cores = 1
    with pytest.raises(ValueError, match="no 'tf32' tiling for float64"):
        _cuda_conv.kernel_source(np.float64, "tf32")


def test_round_to_tf32_rounds_to_nearest_ties_away_and_keeps_specials():
    one_ulp = 2.0 ** -10  # TF32's mantissa spacing at 1
    values = np.array([1.0, 1 + one_ulp / 2, 1 + one_ulp / 4, 1 + 3 * one_ulp / 4, -(1 + one_ulp / 2),
                       1 + one_ulp + one_ulp / 2, np.inf, -np.inf, 0.0, -0.0, 3.0e38], dtype=np.float32)
    got = _cuda_conv.round_to_tf32(values)
    want = np.array([1.0, 1 + one_ulp, 1.0, 1 + one_ulp, -(1 + one_ulp), 1 + 2 * one_ulp, np.inf, -np.inf, 0.0, -0.0,
                     np.float32(3.0e38)], dtype=np.float32)
    want[-1] = _cuda_conv.round_to_tf32(want[-1:])[0]
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[9]) and got.dtype == np.float32
    assert np.isnan(_cuda_conv.round_to_tf32(np.array([np.nan], np.float32))).all()
    assert (_cuda_conv.round_to_tf32(np.float32(np.pi) * np.ones(3, np.float32)).view(np.uint32) & 0x1FFF == 0).all()


@pytest.mark.skipif(GXX is None or not sys.platform.startswith("linux"), reason="needs g++ and mprotect")
def test_the_fence_catches_a_read_past_the_input(tmp_path):
    """A forward kernel reading one element further than it should must die on the fence (in a
    child process: the fault ends the process), or the fenced test's passing proves nothing."""
    source = _cuda_conv.kernel_source(np.float64)
    load = "v = x_group[((long long)c * H + ih) * W + iw];"
    assert source.count(load) == 1
    broken = tmp_path / "broken.cu"
    broken.write_text(source.replace(load, load.replace("+ iw]", "+ iw + 1]")))
    child = f"""
import numpy as np
from pathlib import Path
from chainrule.ops import _cuda_conv
from tests.cuda import test_conv_kernels as t
library = t._build(Path({str(broken)!r}).read_text(), Path({str(tmp_path)!r}))
_cuda_conv._function = lambda dtype, name: t._FencedFunction(library, name, dtype)
name, n, c, o, geo = t.CASES[0]
x, w, _ = t._arrays(n, c, o, geo, np.float64)
_cuda_conv.conv_forward(x, w, geo)
print("no fault")
"""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "src"), str(root), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300, env=env,
                            cwd=root)
    assert result.returncode == -11, (result.returncode, result.stdout, result.stderr[-2000:])
