"""Just enough of CuPy to run chainrule's fused kernels on the CPU, for CI, which has no GPU.

The CUDA C of the kernels (``_cuda_kernels.row_kernel_source``, ``multi_tensor_source`` and ``ELEMENTWISE``) is compiled
with the host C++ compiler against a small emulation of the CUDA execution model: every thread of
a block is a fiber (``ucontext``) on one OS thread, ``__syncthreads`` is a barrier over the block,
``__shfl_down_sync`` an exchange through a buffer behind a barrier over the warp, ``__shared__``
memory a static shared by the block's threads. Blocks run one after another. Everything else (array creation, moveaxis,
sums) is NumPy, and arrays are NumPy arrays. So a logic error in a kernel (a wrong index, a
missing barrier, a reduction over the wrong lanes) fails here as it would on a GPU; what only a
GPU can show (speed, NVRTC's dialect, float rounding of its intrinsics) waits for one.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np

from chainrule.ops import _cuda_kernels as kernels

COMPILER = shutil.which("g++")

_RUNTIME = r"""
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>
#include <ucontext.h>
using std::exp; using std::log; using std::sqrt; using std::erf; using std::tanh;

// The block's threads are fibers (ucontext) taking turns on one OS thread: a barrier yields until
// every participant has arrived, so the interleaving is the one barriers allow, at little cost.
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

static void yield_fiber() { swapcontext(&fibers[current], &scheduler); }

struct Barrier {
    unsigned participants = 0, arrived = 0;
    unsigned long generation = 0;
    void wait() {
        unsigned long seen = generation;
        if (++arrived == participants) { arrived = 0; ++generation; return; }
        while (generation == seen) yield_fiber();
    }
};
static Barrier block_barrier;
static std::vector<Barrier> warp_barriers;
static std::vector<double> shuffle_buffer;

#define __device__
#define __global__
#define __forceinline__ inline
#define __shared__ static

inline void __syncthreads() { block_barrier.wait(); }

template <typename T> T __shfl_down_sync(unsigned, T value, int offset) {
    unsigned lane = threadIdx.x & 31, base = threadIdx.x - lane;
    Barrier& warp = warp_barriers[threadIdx.x >> 5];
    shuffle_buffer[threadIdx.x] = (double)value;
    warp.wait();
    T result = lane + offset < 32 ? (T)shuffle_buffer[base + lane + offset] : value;
    warp.wait();
    return result;
}

inline float __int_as_float(int bits) { float f; std::memcpy(&f, &bits, 4); return f; }
inline double __longlong_as_double(long long bits) { double d; std::memcpy(&d, &bits, 8); return d; }

static void fiber_entry() {
    kernel_body();
    fiber_done[current] = 1;
}

template <typename F> void launch(unsigned grid, unsigned block, F body) {
    kernel_body = body;
    blockDim.x = block;
    gridDim.x = grid;
    fiber_thread_index.assign(block, dim3_());
    fibers.assign(block, ucontext_t());
    fiber_stacks.assign(block, std::vector<char>(1 << 16));
    shuffle_buffer.assign(block, 0.0);
    block_barrier = Barrier{block};
    warp_barriers.assign(block / 32, Barrier{32});
    for (unsigned b = 0; b < grid; ++b) {
        blockIdx.x = b;
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

# one launcher per kernel, compiled with the sources that define it
_LAUNCHERS = {
    "softmax_rows": r"""
extern "C" void launch_softmax_rows(unsigned grid, unsigned block, const T* x, T* y, long long cols, int log_output) {
    launch(grid, block, [&] { softmax_rows(x, y, cols, log_output); });
}
""",
    "cross_entropy_rows": r"""
extern "C" void launch_cross_entropy_rows(unsigned grid, unsigned block, const T* x, const long long* target, T* loss,
                                          T* lse, long long cols, long long ignore_index) {
    launch(grid, block, [&] { cross_entropy_rows(x, target, loss, lse, cols, ignore_index); });
}
""",
    "layer_norm_rows": r"""
extern "C" void launch_layer_norm_rows(unsigned grid, unsigned block, const T* x, const T* weight, const T* bias, T* y,
                                       T* mean, T* rstd, long long cols, double eps, int has_weight, int has_bias) {
    launch(grid, block, [&] { layer_norm_rows(x, weight, bias, y, mean, rstd, cols, eps, has_weight, has_bias); });
}
""",
    "adam_multi_tensor": r"""
extern "C" void launch_adam_multi_tensor(unsigned grid, unsigned block, const long long* table, int tensors,
                                         long long total, double lr, double beta1, double beta2, double eps,
                                         double weight_decay, double bias_correction1, double bias_correction2_sqrt,
                                         int decoupled, int maximize) {
    launch(grid, block, [&] { adam_multi_tensor(table, tensors, total, lr, beta1, beta2, eps, weight_decay,
                                                bias_correction1, bias_correction2_sqrt, decoupled, maximize); });
}
""",
    "adam_multi_tensor_amsgrad": r"""
extern "C" void launch_adam_multi_tensor_amsgrad(unsigned grid, unsigned block, const long long* table, int tensors,
                                                 long long total, double lr, double beta1, double beta2, double eps,
                                                 double weight_decay, double bias_correction1,
                                                 double bias_correction2_sqrt, int decoupled, int maximize) {
    launch(grid, block, [&] { adam_multi_tensor_amsgrad(table, tensors, total, lr, beta1, beta2, eps, weight_decay,
                                                        bias_correction1, bias_correction2_sqrt, decoupled, maximize); });
}
""",
    "layer_norm_backward_rows": r"""
extern "C" void launch_layer_norm_backward_rows(unsigned grid, unsigned block, const T* grad, const T* x, const T* mean,
                                                const T* rstd, const T* weight, T* grad_x, long long cols, int has_weight) {
    launch(grid, block, [&] { layer_norm_backward_rows(grad, x, mean, rstd, weight, grad_x, cols, has_weight); });
}
""",
}

_SCALAR_TYPES = {"float64": ("double", ctypes.c_double), "float32": ("float", ctypes.c_float),
                 "int32": ("int", ctypes.c_int), "int64": ("long long", ctypes.c_longlong),
                 "bool": ("bool", ctypes.c_bool)}
_ARRAY_TYPES = {"T": "T", "S": "long long"}  # the kernels' type placeholders; S is always int64 here


def _params(spec: str) -> list[tuple[bool, str, str]]:
    """'T x, raw T lse, float64 lr' -> [(raw, type, name), ...]."""
    out = []
    for item in spec.split(","):
        words = item.split()
        raw = words[0] == "raw"
        out.append((raw, *words[raw:]))
    return out


def _elementwise_wrapper(name: str, spec: tuple) -> str:
    """A C++ loop over i running ``spec``'s operation, as CuPy's ElementwiseKernel would."""
    inputs, outputs, operation = spec
    args, bindings = ["long long n"], []
    for is_output, params in ((False, _params(inputs)), (True, _params(outputs))):
        for raw, type_name, param in params:
            if type_name in _SCALAR_TYPES:
                args.append(f"{_SCALAR_TYPES[type_name][0]} {param}")
            elif raw:
                args.append(f"{_ARRAY_TYPES[type_name]}* {param}")
            else:
                c_type = _ARRAY_TYPES[type_name]
                args.append(f"{c_type}* {param}_array")
                bindings.append(f"{c_type}{'&' if is_output else ''} {param} = {param}_array[i];")
    return (f'extern "C" void elementwise_{name}({", ".join(args)}) {{\n'
            f"    for (long long i = 0; i < n; ++i) {{ {' '.join(bindings)} {{ {operation}; }} }}\n}}\n")  # CuPy adds the semicolon too


class EmulatedCupy(types.ModuleType):
    """NumPy under CuPy's name, with RawModule and ElementwiseKernel compiled for the CPU."""

    def __init__(self, build_dir: Path) -> None:
        super().__init__("emulated_cupy")
        self.build_dir = build_dir
        self.libraries: dict = {}
        self.ndarray = np.ndarray
        self.asnumpy = np.asarray

    @staticmethod
    def asarray(a, dtype=None):
        """A copy, as a host-to-device transfer makes one: a test's host array and its "device"
        copy must not be one object, or a kernel updating in place would update the expected values too."""
        return np.array(a, dtype=dtype)

    def __getattr__(self, name):
        return getattr(np, name)

    def library(self, row_source: str):
        """The row kernels of ``row_source`` and every ElementwiseKernel, compiled for one dtype."""
        ctype = "double" if "typedef double T;" in row_source else "float"
        launchers = [text for name, text in _LAUNCHERS.items() if f"void {name}(" in row_source]
        source = "\n".join([_RUNTIME, row_source, *launchers] +
                           [_elementwise_wrapper(name, spec) for name, spec in kernels.ELEMENTWISE.items()])
        key = hashlib.sha256(source.encode()).hexdigest()[:16]
        if key not in self.libraries:
            path = self.build_dir / f"kernels_{ctype}_{key}.so"
            cpp = path.with_suffix(".cpp")
            cpp.write_text(source)
            subprocess.run([COMPILER, "-std=c++17", "-O1", "-shared", "-fPIC", "-w", str(cpp),
                            "-o", str(path)], check=True, capture_output=True, text=True)
            self.libraries[key] = ctypes.CDLL(str(path))
        return self.libraries[key]

    def RawModule(self, code: str):  # noqa: N802 (CuPy's name)
        library = self.library(code)
        return types.SimpleNamespace(get_function=lambda name: _RawFunction(library, name))

    def ElementwiseKernel(self, in_params: str, out_params: str, operation: str, name: str):  # noqa: N802
        return _ElementwiseFunction(self, name.removeprefix("chainrule_"), in_params, out_params)


def _c_argument(value):
    if isinstance(value, np.ndarray):
        assert value.flags.c_contiguous, "the kernels are given C-contiguous arrays"
        return ctypes.c_void_p(value.ctypes.data)
    if isinstance(value, np.floating):
        return ctypes.c_double(value) if value.dtype == np.float64 else ctypes.c_float(value)
    if isinstance(value, np.integer):
        return ctypes.c_longlong(value) if value.dtype == np.int64 else ctypes.c_int(value)
    raise TypeError(f"RawKernel argument {value!r}: pass NumPy scalars with an explicit C type, as CuPy needs")


class _RawFunction:
    def __init__(self, library, name: str) -> None:
        self.launcher = getattr(library, f"launch_{name}")

    def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
        assert len(grid) == len(block) == 1 and block[0] % 32 == 0 and block[0] <= 1024
        self.launcher(ctypes.c_uint(grid[0]), ctypes.c_uint(block[0]), *[_c_argument(a) for a in args])


class _ElementwiseFunction:
    def __init__(self, cupy: EmulatedCupy, name: str, in_params: str, out_params: str) -> None:
        self.cupy, self.name = cupy, name
        self.inputs, self.outputs = _params(in_params), _params(out_params)

    def __call__(self, *args):
        inputs, outputs = list(args[:len(self.inputs)]), list(args[len(self.inputs):])
        arrays = [a for (raw, t, _), a in zip(self.inputs, inputs) if not raw and t not in _SCALAR_TYPES]
        shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
        dtype = next(a.dtype for (raw, t, _), a in zip(self.inputs, inputs) if t == "T")
        if not outputs:
            outputs = [np.empty(shape, dtype) for _ in self.outputs]
        library = self.cupy.library(kernels.row_kernel_source(dtype))
        c_args = [ctypes.c_longlong(int(np.prod(shape)))]
        write_back = []  # CuPy indexes strided arrays itself; the C loop gets contiguous copies
        for (raw, type_name, _), value in zip(self.inputs + self.outputs, inputs + outputs):
            if type_name in _SCALAR_TYPES:
                c_args.append(_SCALAR_TYPES[type_name][1](value))
            else:
                array = value if raw else np.broadcast_to(value, shape)
                if not array.flags.c_contiguous and not raw:
                    array = np.ascontiguousarray(array)
                    write_back.append((value, array))
                assert array.flags.c_contiguous and array.dtype == (np.int64 if type_name == "S" else dtype)
                c_args.append(ctypes.c_void_p(array.ctypes.data))
        getattr(library, f"elementwise_{self.name}")(*c_args)
        for value, array in write_back:
            if value.flags.writeable and value.shape == shape:
                value[...] = array
        return outputs[0] if len(outputs) == 1 else tuple(outputs)
