"""Every fused kernel's CUDA C compiled for a real GPU (sm_90, the H200 the GPU check runs on)
with NVIDIA's own compiler, where ``nvcc`` is installed; CI machines of this project have it.

The emulation in ``emulated_cupy`` checks the kernels' logic with g++, which accepts host C++
that a device compiler refuses (host-only functions, ``std::`` math, headers NVRTC does not
have) and knows nothing of register or shared-memory limits. This compiles the same sources for
the device, through ``ptxas`` to a cubin, so such an error fails in CI instead of on the first
GPU run. The ElementwiseKernel operations are wrapped the way CuPy wraps them: each parameter
bound by name per element (inputs as const references, outputs as references), raw parameters
indexed by the caller, scalars passed by value, the type placeholders typedef'd per kernel.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from chainrule.ops import _cuda_kernels as kernels

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="needs NVIDIA's CUDA compiler (nvcc)")

# CuPy's names for scalar parameter types, as C types
_SCALARS = {"float64": "double", "float32": "float", "int64": "long long", "int32": "int", "bool": "bool"}

# what CuPy's raw parameters offer that the kernels use: element access by a flat index
_RAW_ARRAY = r"""
template <typename E> struct RawArray {
    E* data;
    __device__ E& operator[](long long k) const { return data[k]; }
};
"""


def _parameters(spec: str) -> list[tuple[bool, str, str]]:
    """'T x, raw T lse, float64 lr' -> [(raw, type, name), ...]"""
    out = []
    for item in spec.split(","):
        words = item.split()
        raw = words[0] == "raw"
        out.append((raw, *words[raw:]))
    return out


def elementwise_as_cuda(name: str, spec: tuple, ctype: str) -> str:
    """One ElementwiseKernel as a CUDA kernel of its own namespace, bound as CuPy binds it."""
    inputs, outputs, operation = spec
    arguments, bindings = [], []
    for is_output, params in ((False, _parameters(inputs)), (True, _parameters(outputs))):
        for raw, type_name, param in params:
            if type_name in _SCALARS:
                arguments.append(f"{'' if is_output else 'const '}{_SCALARS[type_name]} {param}")
            elif raw:
                arguments.append(f"RawArray<{type_name}> {param}")
            else:
                arguments.append(f"{type_name}* _raw_{param}")
                bindings.append(f"{'' if is_output else 'const '}{type_name} &{param} = _raw_{param}[i];")
    return (f"namespace elementwise_{name} {{\n"
            f"typedef {ctype} T;\ntypedef long long S;\n"
            f'extern "C" __global__ void chainrule_{name}_{ctype}({", ".join(arguments)}, long long _size) {{\n'
            f"    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < _size;\n"
            f"         i += (long long)blockDim.x * gridDim.x) {{\n"
            f"        {' '.join(bindings)}\n        {operation};\n    }}\n}}\n}}\n")


def _sources(dtype) -> dict[str, str]:
    ctype = "double" if np.dtype(dtype) == np.float64 else "float"
    return {
        "row kernels": kernels.row_kernel_source(dtype),
        "multi-tensor Adam": kernels.multi_tensor_source(dtype),
        "elementwise kernels": _RAW_ARRAY + "".join(
            elementwise_as_cuda(name, spec, ctype) for name, spec in kernels.ELEMENTWISE.items()),
    }


def _compile(source: str, tmp_path, stem: str) -> subprocess.CompletedProcess:
    path = tmp_path / f"{stem}.cu"
    path.write_text(source)
    # -cubin runs ptxas too, so register and shared-memory limits of sm_90 are checked as well
    return subprocess.run([NVCC, "-std=c++17", "-cubin", "-arch=sm_90", "-Werror", "all-warnings",
                           "-o", str(path.with_suffix(".cubin")), str(path)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_every_kernel_compiles_for_sm_90(dtype, tmp_path):
    for what, source in _sources(dtype).items():
        stem = re.sub(r"\W+", "_", what)
        result = _compile(source, tmp_path, stem)
        assert result.returncode == 0, f"{what} ({np.dtype(dtype)}) failed to compile for sm_90:\n{result.stderr}"
        assert (tmp_path / f"{stem}.cubin").stat().st_size > 0


def test_kernel_sources_need_no_header_nvrtc_lacks():
    """CuPy compiles RawModule and ElementwiseKernel code with NVRTC, which has the device math
    functions built in but none of the host's C++ headers."""
    for dtype in (np.float32, np.float64):
        for what, source in _sources(dtype).items():
            assert "#include" not in source, what
            assert "std::" not in source, what


def test_the_check_catches_what_only_a_device_compiler_refuses(tmp_path):
    """A host-only call inside a kernel: g++ (the emulation) accepts it, nvcc must refuse it, or
    the test above proves nothing."""
    spec = ("T x", "T y", "y = x; printf_host_only(x)")
    source = ("void printf_host_only(float) {}\n" + _RAW_ARRAY +
              elementwise_as_cuda("broken", spec, "float"))
    result = _compile(source, tmp_path, "broken")
    assert result.returncode != 0
    assert "__host__ function" in result.stderr and "printf_host_only" in result.stderr
