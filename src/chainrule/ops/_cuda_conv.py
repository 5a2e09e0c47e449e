"""Implicit-GEMM convolution kernels for CuPy: conv's three array maps without im2col columns.

On an H200 the im2col path of ``ops/conv.py`` spent the bench conv's time (64→64 3×3 on
(64, 64, 56, 56): 3.97 ms forward and backward, torch 0.97) moving memory, not multiplying: the
columns are 462 MB for that shape, then the col2im slab adds and the layout copies; TF32 GEMMs
changed nothing. Each map here is one GEMM whose operand tiles are gathered from the NCHW tensors
straight into shared memory, so the columns never exist:

* ``conv_forward``   y = C(x, w): M = N·OH·OW output positions, N = O/g, K = C/g·KH·KW,
  A[m, k] = x[n, c, oh·s − p + kh·d, ow·s − p + kw·d] (0 in the padding), B[k, o] = w[o, c, kh, kw].
* ``conv_input``     x̄ = Cᵀ(g, w) (also conv_transpose): M = N·H·W input positions, N = C/g,
  K = O/g·KH·KW, A[m, k] = g[n, o, (h + p − kh·d)/s, (w + p − kw·d)/s] where the division is exact
  and in range (else 0), B[k, c] = w[o, c, kh, kw].
* ``conv_weight``    w̄ = C_w(x, g), computed transposed so that the long side is the tile's 128:
  M = C/g·KH·KW, N = O/g, K = N·OH·OW split over grid-z slices; each slice writes its partial
  filter gradient and one CuPy sum adds them (deterministic, unlike atomicAdd).

The kernels share one tile scheme: a 128×64 block tile, BK = 16, each thread an 8×8 (128 threads,
float32) or 8×4 (256 threads, float64) micro-tile whose rows and columns are strided (so its
shared-memory reads are conflict-free broadcasts and its output writes coalesce along m); the next
K slab's global loads are issued into registers before the current slab's multiply (one shared
buffer, two barriers per slab); see ``TILES``. FP32 (or FP64) FMAs on the CUDA cores: the numbers
are torch's with ``torch.backends.cudnn.allow_tf32 = False``. No warp intrinsics, so the CPU
emulation of the tests (``tests/cuda/test_conv_kernels.py``) runs every line of the kernels.

The ``tf32`` tiling (float32 only) runs the same gathers into the same tiles, rounded to TF32 as
they are stored, and multiplies them on the tensor cores with PTX's ``mma.m16n8k8`` (eight warps,
each 32×32 of the block tile): torch's arithmetic for a convolution with ``allow_tf32 = True``,
its default. It is taken where ``tensor_cores`` and torch's flag allow it; ``tensor_cores`` stays
off until a GPU run has checked and timed it (the CPU emulation implements the two PTX
instructions from PTX's documented fragment layout; nvcc and NVRTC compile it for sm_90).

On by default since the 2026-12-04 H200 run (all 39 kernel checks against im2col and the CPU within
tolerance; the bench conv 2.78 ms against im2col's 4.32): ``ops/conv.py`` calls these for real CuPy
arrays of 1-d and 2-d convolutions in float32 or float64 (3-d stays on im2col).
``chainrule.backends.cuda.conv.implicit_gemm = False`` or ``CHAINRULE_CUDA_CONV=im2col`` turns them off;
``chainrule.backends.cuda.conv.tensor_cores = True`` or ``CHAINRULE_CUDA_CONV=tf32`` turns the TF32 tiling on.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np

from .._backend import array_module

__all__ = ["enabled", "set_enabled", "tensor_cores", "set_tensor_cores", "round_to_tf32", "eligible", "conv_forward",
           "conv_input", "conv_weight", "kernel_source", "KERNEL_NAMES", "NVRTC_OPTIONS", "BLOCK_M", "BLOCK_N",
           "BLOCK_K", "TILES", "tile"]

ENV_VAR = "CHAINRULE_CUDA_CONV"
_ENV_CHOICES = ("implicit_gemm", "im2col", "tf32")


def _choice_from_env() -> str:
    value = os.environ.get(ENV_VAR, "").strip().lower() or "implicit_gemm"
    if value in _ENV_CHOICES:
        return value
    warnings.warn(f"{ENV_VAR} must be one of {', '.join(_ENV_CHOICES)}, got {value!r}; using implicit_gemm",
                  stacklevel=2)
    return "implicit_gemm"


# read by ops/conv.py on every conv: a module global, so the switch costs one lookup when off
enabled = _choice_from_env() != "im2col"
# Whether float32 convolutions take the TF32 tensor-core tiling where torch's
# ``backends.cudnn.allow_tf32`` (default True, as cuDNN's convolutions in torch) allows it. Off by
# default until a GPU run has checked and timed it (``CHAINRULE_CUDA_CONV=tf32`` turns it on):
# every line runs in the CPU emulation of the tests, and nvcc compiles it for sm_90.
tensor_cores = _choice_from_env() == "tf32"


def set_enabled(value: bool) -> None:
    """Turn the implicit-GEMM kernels on or off (``chainrule.backends.cuda.conv.implicit_gemm``)."""
    global enabled
    if not isinstance(value, bool):
        raise TypeError(f"conv.implicit_gemm must be a bool, got {type(value).__name__}")
    enabled = value


def set_tensor_cores(value: bool) -> None:
    """Let float32 convolutions use the TF32 tiling (``chainrule.backends.cuda.conv.tensor_cores``)."""
    global tensor_cores
    if not isinstance(value, bool):
        raise TypeError(f"conv.tensor_cores must be a bool, got {type(value).__name__}")
    tensor_cores = value


def _tf32_allowed() -> bool:
    """torch's switch for TF32 in convolutions, ``backends.cudnn.allow_tf32`` (read where the
    user sets it; backends sits above ops, so it is looked up, not imported)."""
    cudnn = sys.modules.get("chainrule.backends.cudnn")
    return bool(getattr(cudnn, "allow_tf32", True))


BLOCK_M, BLOCK_N, BLOCK_K = 128, 64, 16
KERNEL_NAMES = ("conv_forward", "conv_input", "conv_weight")

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

# Two thread tilings of the 128×64 block tile: name -> (threads per block, micro-tile columns);
# each thread owns 8 rows. Per k, an 8×4 micro-tile reads 12 shared-memory words for 32 FMAs, an
# 8×8 one 16 for 64: on an H200 SM (128 FP32 lanes, one 128-byte shared-memory wavefront per
# clock) the 8×4 tiling is bound by shared memory at 2/3 of the FMA rate, the 8×8 one is not.
# On an H200 (2026-12-04, the bench conv, gpu_profile.py's forward / forward and backward): 8×4
# 0.63 / 2.18 ms, 8×8 0.62 / 2.07, 8×4×2 0.62 / 2.15, 8×8×2 0.62 / 2.07, 8×8v 0.54 / 1.95,
# 8×8v2 0.56 / 2.01; all within tolerance of the CPU maps there. ``tile`` picks each dtype's.
TILES = {"8x4": (256, 4), "8x8": (128, 8), "8x4x2": (256, 4), "8x8x2": (128, 8), "8x8v": (128, 8),
         "8x8v2": (128, 8), "tf32": (256, 8)}
# tilings with two shared-memory buffers (one barrier per K slab instead of two); float32 only:
# float64's two buffers would pass the 48 KB of static shared memory
_STAGES = {"8x4x2": 2, "8x8x2": 2, "8x8v2": 2, "tf32": 2}
# tilings whose threads own runs of four rows and columns, read as float4 (float32 8×8 only)
_VECTOR = {"8x8v", "8x8v2"}
# tilings whose products run on the tensor cores in TF32 (float32 only): each thread holds the
# accumulator fragments of its warp's mma products, 4 rows × 8 columns (the others own 8 rows)
_MMA = {"tf32"}
# (C type, tiling) -> the blocks per SM that __launch_bounds__ asks registers for (sm_90, no
# spills): float32 8×8 fits 4 (≤ 128 registers, 16 warps), 8×4 3 (80 registers, 24 warps);
# float64 8×4 fits 2 (≤ 128), and 8×8 spills at any useful count, so float64 has no 8×8
_BLOCKS_PER_SM = {("float", "8x8"): 4, ("float", "8x4"): 3, ("float", "8x8x2"): 4, ("float", "8x4x2"): 3,
                  ("float", "8x8v"): 3, ("float", "8x8v2"): 3, ("float", "tf32"): 2, ("double", "8x4"): 2}
tile = {"float": "8x8v", "double": "8x4"}

KERNELS = r"""
typedef CTYPE T;
#define BM 128
#define BN 64
#define BK 16
#define TM TM_VALUE
#define TN TN_VALUE
#define THREADS THREADS_VALUE
#define MIN_BLOCKS MIN_BLOCKS_VALUE
// shared-memory buffers per tile: 1 (store, barrier, multiply, barrier per slab) or 2 (the next
// slab is stored into the other buffer while this one is multiplied: one barrier per slab)
#define STAGES STAGES_VALUE
#define VECTOR VECTOR_VALUE
// 1: the multiply runs on the tensor cores in TF32 (float32 only, sm_80 and later)
#define MMA MMA_VALUE
#if MMA
// Eight warps as 4 (along m) × 2 (along n), each owning a 32×32 piece of the block tile as 2 × 4
// products of PTX's mma.m16n8k8 (TF32 in, float32 accumulate). The tiles hold TF32 bit patterns,
// rounded once as they are stored. A is m-major with rows of BK + 4 words, B k-major with rows of
// BN + 8: both strides make a warp's fragment reads (8 rows × 4 k, or 4 k × 8 columns) hit 32
// different banks, and A's row stores go out as 16-byte vectors.
typedef unsigned S;
typedef S ATileRow[BK + 4];
typedef S BTileRow[BN + 8];
static_assert(sizeof(ATileRow) % 16 == 0 && (BK * BM / THREADS) % 4 == 0,
              "store_rows writes A rows as 16-byte vectors: each row and each thread's run must stay aligned");
#define A_SLAB_ROWS BM
#define A_AT(tile, k, m) (tile)[m][k]
// thread t of warp w = t / 32 owns rows (w / 2)·32 + lane/4 + 16·(i/2) + 8·(i%2), i < 4, and
// columns (w % 2)·32 + 2·(lane % 4) + 8·(j/2) + j%2, j < 8: the accumulator fragments of its warp's
// products (PTX ISA, "Matrix Fragments for mma.m16n8k8")
#define THREAD_TM ((((int)threadIdx.x >> 5) >> 1) * 32 + (((int)threadIdx.x & 31) >> 2))
#define THREAD_TN ((((int)threadIdx.x >> 5) & 1) * 32 + (((int)threadIdx.x & 3) << 1))
#define ROW_OF(tm, i) ((tm) + ((i) >> 1) * 16 + ((i) & 1) * 8)
#define COL_OF(tn, j) ((tn) + ((j) >> 1) * 8 + ((j) & 1))
#define STORED(v) to_tf32(v)
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
// (the CPU emulation of the tests supplies these two with the same semantics)
__device__ __forceinline__ unsigned to_tf32(float v) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return r;
}
// (c0, c1, c2, c3) += A · B for one m16n8k8 product: a, b and c in PTX's fragment layout
__device__ __forceinline__ void mma_tf32(float& c0, float& c1, float& c2, float& c3, const unsigned* a,
                                         const unsigned* b) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif
#else
typedef T S;
// A and B both k-major (the CUDA-core multiply reads a row of each per k)
#if VECTOR
#define PAD 4
#else
#define PAD 1
#endif
typedef S ATileRow[BM + PAD];
typedef S BTileRow[BN + PAD];
#define A_SLAB_ROWS BK
#define A_AT(tile, k, m) (tile)[k][m]
// thread (tm, tn) = (t % ROW_STEP, t / ROW_STEP) owns rows ROW_OF(tm, i) and columns
// COL_OF(tn, j) of the block tile
#define ROW_STEP (BM / TM)
#define COL_STEP (BN / TN)
#define THREAD_TM ((int)threadIdx.x % ROW_STEP)
#define THREAD_TN ((int)threadIdx.x / ROW_STEP)
#if VECTOR
// (8×8 float32 only) rows 4·tm + i and BM/2 + 4·tm + i, columns likewise, i < 4: each thread
// reads its a and b of one k as four 16-byte loads, not sixteen 4-byte ones (6 shared-memory
// wavefronts a warp instead of 16); the padding keeps every row 16-byte aligned
#define ROW_OF(tm, i) ((i) < 4 ? 4 * (tm) + (i) : BM / 2 + 4 * (tm) + (i) - 4)
#define COL_OF(tn, j) ((j) < 4 ? 4 * (tn) + (j) : BN / 2 + 4 * (tn) + (j) - 4)
#else
// strided rows and columns: a warp's reads of one k are conflict-free broadcasts; one padding
// column: the k-fast stores of conv_weight's tiles hit different banks
#define ROW_OF(tm, i) ((tm) + ROW_STEP * (i))
#define COL_OF(tn, j) ((tn) + COL_STEP * (j))
#endif
#define STORED(v) (v)
#endif

#if MMA
// acc += As · Bs over one BK slab: BK / 8 steps of the warp's 2 × 4 products
__device__ __forceinline__ void multiply_slab(const ATileRow* As, const BTileRow* Bs, T (*acc)[TN], int tm, int tn) {
    const int group = tm & 31, lane_in_group = (tn & 31) >> 1;
    const int m_base = tm - group, n_base = tn - 2 * lane_in_group;
#pragma unroll
    for (int k = 0; k < BK; k += 8) {
        unsigned a[2][4], b[4][2];
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) {
            const int row = m_base + 16 * mi + group;
            a[mi][0] = As[row][k + lane_in_group];
            a[mi][1] = As[row + 8][k + lane_in_group];
            a[mi][2] = As[row][k + lane_in_group + 4];
            a[mi][3] = As[row + 8][k + lane_in_group + 4];
        }
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
            const int column = n_base + 8 * ni + group;
            b[ni][0] = Bs[k + lane_in_group][column];
            b[ni][1] = Bs[k + lane_in_group + 4][column];
        }
#pragma unroll
        for (int mi = 0; mi < 2; ++mi)
#pragma unroll
            for (int ni = 0; ni < 4; ++ni)
                mma_tf32(acc[2 * mi][2 * ni], acc[2 * mi][2 * ni + 1], acc[2 * mi + 1][2 * ni],
                         acc[2 * mi + 1][2 * ni + 1], a[mi], b[ni]);
    }
}
#else
// acc += As · Bs over one BK slab
__device__ __forceinline__ void multiply_slab(const ATileRow* As, const BTileRow* Bs, T (*acc)[TN], int tm, int tn) {
#pragma unroll
    for (int k = 0; k < BK; ++k) {
#if VECTOR
        const float4 a_lo = *reinterpret_cast<const float4*>(&As[k][4 * tm]);
        const float4 a_hi = *reinterpret_cast<const float4*>(&As[k][BM / 2 + 4 * tm]);
        const float4 b_lo = *reinterpret_cast<const float4*>(&Bs[k][4 * tn]);
        const float4 b_hi = *reinterpret_cast<const float4*>(&Bs[k][BN / 2 + 4 * tn]);
        const T a[TM] = {a_lo.x, a_lo.y, a_lo.z, a_lo.w, a_hi.x, a_hi.y, a_hi.z, a_hi.w};
        const T b[TN] = {b_lo.x, b_lo.y, b_lo.z, b_lo.w, b_hi.x, b_hi.y, b_hi.z, b_hi.w};
#else
        T a[TM], b[TN];
#pragma unroll
        for (int i = 0; i < TM; ++i) a[i] = As[k][ROW_OF(tm, i)];
#pragma unroll
        for (int j = 0; j < TN; ++j) b[j] = Bs[k][COL_OF(tn, j)];
#endif
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
    }
}
#endif

// B[k, n] of a dense row-major (K, cols) matrix into regs, thread t taking column t % BN and rows
// t / BN + 4 r (coalesced along n)
__device__ __forceinline__ void load_dense(const T* __restrict__ b, int k0, int n0, int K, int cols, T* regs) {
    const int n = n0 + (int)threadIdx.x % BN;
    const int k_first = k0 + (int)threadIdx.x / BN;
#pragma unroll
    for (int r = 0; r < BK * BN / THREADS; ++r) {
        const int k = k_first + r * (THREADS / BN);
        regs[r] = (k < K && n < cols) ? b[(long long)k * cols + n] : (T)0;
    }
}

__device__ __forceinline__ void store_dense(BTileRow* Bs, const T* regs) {
#pragma unroll
    for (int r = 0; r < BK * BN / THREADS; ++r)
        Bs[(int)threadIdx.x / BN + r * (THREADS / BN)][(int)threadIdx.x % BN] = STORED(regs[r]);
}

// A tiles of the forward and the data gradient: thread t takes row t % BM and the 8 consecutive
// k from (t / BM) * 8, so one division finds (channel, kh, kw) and the rest are increments
#define A_ROW ((int)threadIdx.x % BM)
#define A_K_FIRST (((int)threadIdx.x / BM) * (BK * BM / THREADS))
#define A_LOADS (BK * BM / THREADS)

__device__ __forceinline__ void store_rows(ATileRow* As, const T* regs) {
#if MMA
    // the row's A_LOADS consecutive k as 16-byte vectors (m-major tile)
#pragma unroll
    for (int r = 0; r < A_LOADS; r += 4)
        *reinterpret_cast<uint4*>(&As[A_ROW][A_K_FIRST + r]) =
            make_uint4(to_tf32(regs[r]), to_tf32(regs[r + 1]), to_tf32(regs[r + 2]), to_tf32(regs[r + 3]));
#else
#pragma unroll
    for (int r = 0; r < A_LOADS; ++r) As[A_K_FIRST + r][A_ROW] = regs[r];
#endif
}

__device__ __forceinline__ void zero_tile(T (*acc)[TN]) {
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0;
}

// the K loop of the forward and the data gradient: A rows gathered by load_a(k0) into a_regs,
// B a dense (K, cols) matrix; the next slab's loads are in flight during this slab's multiply
template <class LoadA>
__device__ __forceinline__ void gemm_slabs(LoadA& load_a, const T* __restrict__ b_group, int K, int n0, int cols,
                                           ATileRow* As, BTileRow* Bs, T (*acc)[TN],
                                           const T* a_regs, T* b_regs, int tm, int tn) {
    load_a(0);
    load_dense(b_group, 0, n0, K, cols, b_regs);
#if STAGES == 2
    store_rows(As, a_regs);
    store_dense(Bs, b_regs);
    __syncthreads();
    int stage = 0;
    for (int k0 = 0; k0 < K; k0 += BK) {
        const bool more = k0 + BK < K;
        if (more) {
            load_a(k0 + BK);
            load_dense(b_group, k0 + BK, n0, K, cols, b_regs);
        }
        multiply_slab(As + stage * A_SLAB_ROWS, Bs + stage * BK, acc, tm, tn);
        // the other buffer was last read before the previous barrier: free to fill
        if (more) {
            store_rows(As + (stage ^ 1) * A_SLAB_ROWS, a_regs);
            store_dense(Bs + (stage ^ 1) * BK, b_regs);
        }
        __syncthreads();
        stage ^= 1;
    }
#else
    for (int k0 = 0; k0 < K; k0 += BK) {
        store_rows(As, a_regs);
        store_dense(Bs, b_regs);
        __syncthreads();
        if (k0 + BK < K) {
            load_a(k0 + BK);
            load_dense(b_group, k0 + BK, n0, K, cols, b_regs);
        }
        multiply_slab(As, Bs, acc, tm, tn);
        __syncthreads();
    }
#endif
}

// y (N, O, OH, OW) = x (N, C, H, W) ⋆ w; wmat is w as (groups, C/g·KH·KW, O/g), contiguous.
// grid (ceil(N·OH·OW / BM), ceil(O/g / BN), groups)
extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS)
conv_forward(const T* __restrict__ x, const T* __restrict__ wmat, T* __restrict__ y,
             int N, int C, int H, int W, int O, int OH, int OW, int KH, int KW,
             int sh, int sw, int ph, int pw, int dh, int dw, int groups) {
    __shared__ __align__(16) ATileRow As[STAGES * A_SLAB_ROWS];
    __shared__ __align__(16) BTileRow Bs[STAGES * BK];
    const int g = blockIdx.z, Cg = C / groups, Og = O / groups, KK = KH * KW, K = Cg * KK, L = OH * OW;
    const int M = N * L, m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
    const int tm = THREAD_TM, tn = THREAD_TN;
    // this thread's output position of the A tile, fixed for the whole K loop
    const int a_m = m0 + A_ROW;
    const bool a_valid = a_m < M;
    int ih0 = 0, iw0 = 0, sample = 0;
    if (a_valid) {
        sample = a_m / L;
        const int p = a_m - sample * L, oh = p / OW, ow = p - oh * OW;
        ih0 = oh * sh - ph;
        iw0 = ow * sw - pw;
    }
    const T* x_group = x + ((long long)sample * C + (long long)g * Cg) * H * W;
    const T* b_group = wmat + (long long)g * K * Og;
    T acc[TM][TN];
    zero_tile(acc);
    T a_regs[A_LOADS], b_regs[BK * BN / THREADS];
    auto load_a = [&](int k0) {
        int k = k0 + A_K_FIRST;
        int c = k / KK, rem = k - c * KK, kh = rem / KW, kw = rem - kh * KW;
#pragma unroll
        for (int r = 0; r < A_LOADS; ++r) {
            T v = 0;
            const int ih = ih0 + kh * dh, iw = iw0 + kw * dw;
            if (a_valid && k < K && ih >= 0 && ih < H && iw >= 0 && iw < W)
                v = x_group[((long long)c * H + ih) * W + iw];
            a_regs[r] = v;
            ++k;
            if (++kw == KW) { kw = 0; if (++kh == KH) { kh = 0; ++c; } }
        }
    };
    gemm_slabs(load_a, b_group, K, n0, Og, As, Bs, acc, a_regs, b_regs, tm, tn);
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int m = m0 + ROW_OF(tm, i);
        if (m >= M) continue;
        const int s = m / L, p = m - s * L;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int o = n0 + COL_OF(tn, j);
            if (o < Og) y[((long long)s * O + (long long)g * Og + o) * L + p] = acc[i][j];
        }
    }
}

// dx (N, C, H, W) = Cᵀ(grad (N, O, OH, OW), w); wmat is w as (groups, O/g·KH·KW, C/g), contiguous.
// grid (ceil(N·H·W / BM), ceil(C/g / BN), groups)
extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS)
conv_input(const T* __restrict__ grad, const T* __restrict__ wmat, T* __restrict__ dx,
           int N, int C, int H, int W, int O, int OH, int OW, int KH, int KW,
           int sh, int sw, int ph, int pw, int dh, int dw, int groups) {
    __shared__ __align__(16) ATileRow As[STAGES * A_SLAB_ROWS];
    __shared__ __align__(16) BTileRow Bs[STAGES * BK];
    const int g = blockIdx.z, Cg = C / groups, Og = O / groups, KK = KH * KW, K = Og * KK, L = OH * OW;
    const int HW = H * W, M = N * HW, m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
    const int tm = THREAD_TM, tn = THREAD_TN;
    // this thread's input position (h, w) shifted by the padding, fixed for the whole K loop
    const int a_m = m0 + A_ROW;
    const bool a_valid = a_m < M;
    int hp = 0, wp = 0, sample = 0;
    if (a_valid) {
        sample = a_m / HW;
        const int q = a_m - sample * HW, h = q / W;
        hp = h + ph;
        wp = q - h * W + pw;
    }
    const T* grad_group = grad + ((long long)sample * O + (long long)g * Og) * L;
    const T* b_group = wmat + (long long)g * K * Cg;
    T acc[TM][TN];
    zero_tile(acc);
    T a_regs[A_LOADS], b_regs[BK * BN / THREADS];
    auto load_a = [&](int k0) {
        int k = k0 + A_K_FIRST;
        int o = k / KK, rem = k - o * KK, kh = rem / KW, kw = rem - kh * KW;
#pragma unroll
        for (int r = 0; r < A_LOADS; ++r) {
            T v = 0;
            // output (oh, ow) reads input (h, w) through offset (kh, kw) iff h + p - kh·d = oh·s
            const int th = hp - kh * dh, tw = wp - kw * dw;
            if (a_valid && k < K && th >= 0 && tw >= 0) {
                const int oh = th / sh, ow = tw / sw;
                if (oh * sh == th && ow * sw == tw && oh < OH && ow < OW)
                    v = grad_group[((long long)o * OH + oh) * OW + ow];
            }
            a_regs[r] = v;
            ++k;
            if (++kw == KW) { kw = 0; if (++kh == KH) { kh = 0; ++o; } }
        }
    };
    gemm_slabs(load_a, b_group, K, n0, Cg, As, Bs, acc, a_regs, b_regs, tm, tn);
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int m = m0 + ROW_OF(tm, i);
        if (m >= M) continue;
        const int s = m / HW, q = m - s * HW;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int c = n0 + COL_OF(tn, j);
            if (c < Cg) dx[((long long)s * C + (long long)g * Cg + c) * HW + q] = acc[i][j];
        }
    }
}

// partial[slice] (O, C/g·KH·KW) = the filter gradient over the slice's output positions
// [slice·k_chunk, (slice + 1)·k_chunk) of the N·OH·OW; rows (c, kh, kw) in w's order.
// grid (ceil(C/g·KH·KW / BM), ceil(O/g / BN), groups · slices), z = slice · groups + group
extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS)
conv_weight(const T* __restrict__ x, const T* __restrict__ grad, T* __restrict__ partial,
            int N, int C, int H, int W, int O, int OH, int OW, int KH, int KW,
            int sh, int sw, int ph, int pw, int dh, int dw, int groups, int k_chunk) {
    __shared__ __align__(16) ATileRow As[STAGES * A_SLAB_ROWS];
    __shared__ __align__(16) BTileRow Bs[STAGES * BK];
    // each row's (channel offset, kh·d, kw·d), found once per block
    __shared__ long long row_offset[BM];
    __shared__ int row_dh[BM], row_dw[BM];
    const int g = blockIdx.z % groups, slice = blockIdx.z / groups;
    const int Cg = C / groups, Og = O / groups, KK = KH * KW, Mrows = Cg * KK, L = OH * OW;
    const int k_begin = slice * k_chunk, k_end = k_begin + k_chunk < N * L ? k_begin + k_chunk : N * L;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
    const int tm = THREAD_TM, tn = THREAD_TN;
    for (int r = threadIdx.x; r < BM; r += THREADS) {
        const int m = m0 + r;
        if (m < Mrows) {
            const int c = m / KK, rem = m - c * KK, kh = rem / KW;
            row_offset[r] = ((long long)g * Cg + c) * H * W;
            row_dh[r] = kh * dh;
            row_dw[r] = (rem - kh * KW) * dw;
        } else {
            row_offset[r] = -1;
        }
    }
    __syncthreads();
    // both tiles k-fast: thread t takes k = t % BK (consecutive output positions, so the loads
    // coalesce along ow) and rows / columns t / BK + 16 r
    const int k_lane = (int)threadIdx.x % BK, row_lane = (int)threadIdx.x / BK;
    T acc[TM][TN];
    zero_tile(acc);
    T a_regs[BK * BM / THREADS], b_regs[BK * BN / THREADS];
    auto load = [&](int k0) {
        const int k = k0 + k_lane;
        const bool k_valid = k < k_end;
        int sample = 0, p = 0, ih0 = 0, iw0 = 0;
        if (k_valid) {
            sample = k / L;
            p = k - sample * L;
            const int oh = p / OW;
            ih0 = oh * sh - ph;
            iw0 = (p - oh * OW) * sw - pw;
        }
        const T* x_sample = x + (long long)sample * C * H * W;
#pragma unroll
        for (int r = 0; r < BK * BM / THREADS; ++r) {
            const int row = row_lane + r * (THREADS / BK);
            const long long offset = row_offset[row];
            T v = 0;
            if (k_valid && offset >= 0) {
                const int ih = ih0 + row_dh[row], iw = iw0 + row_dw[row];
                if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = x_sample[offset + (long long)ih * W + iw];
            }
            a_regs[r] = v;
        }
        const T* grad_sample = grad + ((long long)sample * O + (long long)g * Og) * L + p;
#pragma unroll
        for (int r = 0; r < BK * BN / THREADS; ++r) {
            const int o = n0 + row_lane + r * (THREADS / BK);
            b_regs[r] = (k_valid && o < Og) ? grad_sample[(long long)o * L] : (T)0;
        }
    };
    auto store = [&](int stage) {
#pragma unroll
        for (int r = 0; r < BK * BM / THREADS; ++r)
            A_AT(As + stage * A_SLAB_ROWS, k_lane, row_lane + r * (THREADS / BK)) = STORED(a_regs[r]);
#pragma unroll
        for (int r = 0; r < BK * BN / THREADS; ++r)
            Bs[stage * BK + k_lane][row_lane + r * (THREADS / BK)] = STORED(b_regs[r]);
    };
    load(k_begin);
#if STAGES == 2
    store(0);
    __syncthreads();
    int stage = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
        const bool more = k0 + BK < k_end;
        if (more) load(k0 + BK);
        multiply_slab(As + stage * A_SLAB_ROWS, Bs + stage * BK, acc, tm, tn);
        if (more) store(stage ^ 1);  // the other buffer was last read before the previous barrier
        __syncthreads();
        stage ^= 1;
    }
#else
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
        store(0);
        __syncthreads();
        if (k0 + BK < k_end) load(k0 + BK);
        multiply_slab(As, Bs, acc, tm, tn);
        __syncthreads();
    }
#endif
    T* out = partial + (long long)slice * O * Mrows;
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int m = m0 + ROW_OF(tm, i);
        if (m >= Mrows) continue;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int o = n0 + COL_OF(tn, j);
            if (o < Og) out[((long long)g * Og + o) * Mrows + m] = acc[i][j];
        }
    }
}
"""


def round_to_tf32(a):
    """float32 ``a`` (NumPy or CuPy) rounded as the TF32 tiling rounds its operands
    (``cvt.rna.tf32.f32``: 10 mantissa bits, ties away from zero; inf and NaN kept): the TF32
    tiling's maps equal the float32 maps of the rounded operands up to the order of summation."""
    xp = array_module(a)
    bits = xp.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    finite = (bits & np.uint32(0x7F800000)) != np.uint32(0x7F800000)
    return xp.where(finite, (bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000), bits).view(np.float32)


def _tile(dtype, tile_name: str | None = None) -> tuple[str, int, int, int]:
    """(tile name, threads per block, micro-tile columns, blocks per SM) for ``dtype``: the named
    tiling, else the TF32 one for float32 where ``tensor_cores`` and torch's allow_tf32 let it,
    else the dtype's in ``tile``."""
    ctype = _CTYPES[np.dtype(dtype)]
    name = tile_name or ("tf32" if ctype == "float" and tensor_cores and _tf32_allowed() else tile[ctype])
    if (ctype, name) not in _BLOCKS_PER_SM:
        allowed = tuple(t for c, t in _BLOCKS_PER_SM if c == ctype)
        raise ValueError(f"_cuda_conv: no {name!r} tiling for {np.dtype(dtype).name}; expected one of {allowed}")
    return (name, *TILES[name], _BLOCKS_PER_SM[ctype, name])


def kernel_source(dtype, tile_name: str | None = None) -> str:
    """The CUDA C handed to CuPy's RawModule for ``dtype`` (float32 or float64) and a tiling of
    ``TILES`` (default: the dtype's in ``tile``)."""
    name, threads, columns, min_blocks = _tile(dtype, tile_name)
    return (KERNELS.replace("CTYPE", _CTYPES[np.dtype(dtype)]).replace("TN_VALUE", str(columns))
            .replace("THREADS_VALUE", str(threads)).replace("MIN_BLOCKS_VALUE", str(min_blocks))
            .replace("STAGES_VALUE", str(_STAGES.get(name, 1))).replace("VECTOR_VALUE", str(int(name in _VECTOR)))
            .replace("MMA_VALUE", str(int(name in _MMA))).replace("TM_VALUE", "4" if name in _MMA else "8"))


_modules: dict = {}
NVRTC_OPTIONS = ("-std=c++17",)


def _function(dtype, name: str):
    """The compiled kernel ``name`` for ``dtype`` in its current tiling: one RawModule per dtype
    and tiling, compiled at first use (CuPy caches the binary on disk). A callable
    ``(grid, block, args)``; the block must have the tiling's thread count (``_threads``)."""
    key = (_CTYPES[np.dtype(dtype)], _tile(dtype)[0])
    if key not in _modules:
        import cupy

        _modules[key] = cupy.RawModule(code=kernel_source(dtype), options=NVRTC_OPTIONS)
    return _modules[key].get_function(name)


def _threads(dtype) -> tuple:
    return (_tile(dtype)[1],)


# ---------------------------------------------------------------- dispatch
# The kernels count positions (N·H·W, N·OH·OW, and a tile's start past them) in int and take
# element offsets in long long: positions up to 2^30 leave int room for the tile and slice ends.
_POSITION_LIMIT = 2**30


def eligible(geo, *arrays) -> bool:
    """Whether the kernels take this convolution: real CuPy arrays (not the seam's stand-in) of
    one dtype, float32 or float64, a 1-d or 2-d geometry, at most 2^30 input and output
    positions, and a grid within CUDA's (groups ≤ 65535)."""
    cupy = sys.modules.get("cupy")  # a CuPy array means CuPy is imported; no import attempt per call
    if cupy is None or len(geo.kernel) > 2:
        return False
    dtype = arrays[0].dtype
    if dtype not in _CTYPES:
        return False
    for a in arrays:
        if not isinstance(a, cupy.ndarray) or a.dtype != dtype:
            return False
    n = arrays[0].shape[0]
    return (geo.groups <= 65535 and n * math.prod(geo.in_shape) <= _POSITION_LIMIT
            and n * math.prod(geo.out_shape) <= _POSITION_LIMIT)


def _dims_2d(geo):
    """The geometry as 2-d (a 1-d convolution is a 2-d one with H = KH = 1): (H, W), (OH, OW),
    (KH, KW), stride, pad_lo, dilation."""
    pad = (0,) * (2 - len(geo.kernel))
    one = (1,) * (2 - len(geo.kernel))
    return (one + geo.in_shape, one + geo.out_shape, one + geo.kernel, one + geo.stride, pad + geo.pad_lo,
            one + geo.dilation)


def _scalars(n: int, c: int, o: int, geo) -> tuple:
    (h, w), (oh, ow), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _dims_2d(geo)
    return tuple(np.int32(v) for v in (n, c, h, w, o, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, geo.groups))


def conv_forward(x, w, geo):
    """y = C(x, w): x (N, C, *S), w (O, C/g, *K) → y (N, O, *out), C-contiguous."""
    xp = array_module(x)
    n, c = x.shape[:2]
    o, g = w.shape[0], geo.groups
    y = xp.empty((n, o, *geo.out_shape), dtype=x.dtype)
    rows, cols, depth = n * math.prod(geo.out_shape), o // g, (c // g) * math.prod(geo.kernel)
    if y.size == 0 or depth == 0:
        y[...] = 0
        return y
    # B = w as (g, C/g·K, O/g): the kernel reads it row by row, coalesced along O/g
    w_matrix = xp.ascontiguousarray(w.reshape(g, cols, depth).transpose(0, 2, 1))
    grid = (math.ceil(rows / BLOCK_M), math.ceil(cols / BLOCK_N), g)
    arguments = (xp.ascontiguousarray(x), w_matrix, y, *_scalars(n, c, o, geo))
    _function(x.dtype, "conv_forward")(grid, _threads(x.dtype), arguments)
    return y


class _AdjointGeometry:
    """The geometry under which a stride-1 convolution's data gradient is a forward convolution:
    the output gradient (spatial ``out_shape``) convolved with the flipped, transposed filter,
    padded by d·(k − 1) − pad_lo on the low side, gives back ``in_shape``."""

    __slots__ = ("kernel", "stride", "pad_lo", "dilation", "groups", "in_shape", "out_shape")

    def __init__(self, geo) -> None:
        self.kernel, self.stride, self.dilation, self.groups = geo.kernel, geo.stride, geo.dilation, geo.groups
        self.pad_lo = tuple(d * (k - 1) - p for d, k, p in zip(geo.dilation, geo.kernel, geo.pad_lo))
        self.in_shape, self.out_shape = geo.out_shape, geo.in_shape


# Whether a stride-1 data gradient runs conv_forward on the flipped filter rather than the
# conv_input kernel, whose gather tests each tap for divisibility by the stride (two integer
# divisions per element); read per call, so gpu_profile.py can time both.
input_by_forward = True


def _adjoint_filter(w, groups: int):
    """w (O, C/g, *K) as the filter of the adjoint convolution: (C, O/g, *K), each group's block
    transposed and every tap flipped."""
    o, cg, kernel = w.shape[0], w.shape[1], w.shape[2:]
    blocks = w.reshape(groups, o // groups, cg, *kernel).swapaxes(1, 2)
    flipped = blocks[(Ellipsis, *(slice(None, None, -1),) * len(kernel))]
    return array_module(w).ascontiguousarray(flipped).reshape(groups * cg, o // groups, *kernel)


def conv_input(grad, w, geo, c: int):
    """x̄ = Cᵀ(grad, w): grad (N, O, *out), w (O, C/g, *K) → (N, C, *in_shape), C-contiguous."""
    if input_by_forward and all(s == 1 for s in geo.stride) and all(
            d * (k - 1) >= p for d, k, p in zip(geo.dilation, geo.kernel, geo.pad_lo)):
        return conv_forward(grad, _adjoint_filter(w, geo.groups), _AdjointGeometry(geo))
    xp = array_module(grad)
    n, o = grad.shape[:2]
    g = geo.groups
    kernel_size = math.prod(geo.kernel)
    cg = c // g
    dx = xp.empty((n, c, *geo.in_shape), dtype=grad.dtype)
    if dx.size == 0 or o == 0:
        dx[...] = 0
        return dx
    # B = w as (g, O/g·K, C/g), rows (o, kh, kw)
    w_matrix = xp.ascontiguousarray(w.reshape(g, o // g, cg, kernel_size).transpose(0, 1, 3, 2))
    grid = (math.ceil(n * math.prod(geo.in_shape) / BLOCK_M), math.ceil(cg / BLOCK_N), g)
    arguments = (xp.ascontiguousarray(grad), w_matrix, dx, *_scalars(n, c, o, geo))
    _function(grad.dtype, "conv_input")(grid, _threads(grad.dtype), arguments)
    return dx


# The filter gradient's K (N·OH·OW: 200704 for the bench conv) is cut into slices so the grid
# has about this many blocks (the H200 has 132 SMs), each slice at least _MIN_SLICE long so its
# partial sum is worth its write; the partials, (slices, O, C/g·K), are summed by one reduction.
_TARGET_BLOCKS = 1024
_MIN_SLICE = 16 * BLOCK_K


def _slices(k_total: int, blocks: int, groups: int) -> tuple[int, int]:
    """(slices, slice length): the length a multiple of BLOCK_K, slices · groups within grid-z."""
    wanted = min(math.ceil(_TARGET_BLOCKS / blocks), math.ceil(k_total / _MIN_SLICE), 65535 // groups)
    length = BLOCK_K * math.ceil(math.ceil(k_total / max(wanted, 1)) / BLOCK_K)
    return math.ceil(k_total / length), length


def conv_weight(x, grad, geo, w_shape: tuple):
    """w̄ = C_w(x, grad): x (N, C, *S), grad (N, O, *out) → (O, C/g, *K), C-contiguous."""
    xp = array_module(x)
    n, c = x.shape[:2]
    o, cg = w_shape[0], w_shape[1]
    g = geo.groups
    rows = cg * math.prod(geo.kernel)
    k_total = n * math.prod(geo.out_shape)
    if k_total == 0 or rows == 0 or o == 0:
        return xp.zeros(w_shape, dtype=x.dtype)
    blocks = math.ceil(rows / BLOCK_M) * math.ceil(o // g / BLOCK_N) * g
    slices, length = _slices(k_total, blocks, g)
    partial = xp.empty((slices, o, rows), dtype=x.dtype)
    grid = (math.ceil(rows / BLOCK_M), math.ceil(o // g / BLOCK_N), g * slices)
    arguments = (xp.ascontiguousarray(x), xp.ascontiguousarray(grad), partial, *_scalars(n, c, o, geo),
                 np.int32(length))
    _function(x.dtype, "conv_weight")(grid, _threads(x.dtype), arguments)
    # the slices' partials summed in a fixed order: deterministic, unlike atomicAdd
    out = partial[0] if slices == 1 else partial.sum(axis=0)
    return out.reshape(w_shape)
