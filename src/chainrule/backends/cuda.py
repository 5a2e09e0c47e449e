"""torch.backends.cuda: matmul precision flags and the attention-kernel switches.

chainrule's CUDA path is CuPy's, which computes float32 matmuls in float32, so the TF32 and
reduced-precision flags are kept (torch's defaults) but change nothing.

``conv.implicit_gemm`` is chainrule's own: it sends 1-d and 2-d float32/float64 convolutions on
CuPy to the implicit-GEMM kernels of ``ops/_cuda_conv.py`` instead of im2col + cuBLAS. Off by
default until a GPU run has checked and timed them; ``CHAINRULE_CUDA_CONV=implicit_gemm`` turns it
on from the environment (docs/gpu.md).
"""

from __future__ import annotations

from ..ops import _cuda_conv


class _MatmulFlags:
    allow_tf32 = False
    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True


matmul = _MatmulFlags()


class _ConvFlags:
    @property
    def implicit_gemm(self) -> bool:
        return _cuda_conv.enabled

    @implicit_gemm.setter
    def implicit_gemm(self, value: bool) -> None:
        _cuda_conv.set_enabled(value)


conv = _ConvFlags()

_sdp_enabled = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def is_built() -> bool:
    """Whether this build has CUDA support: True when CuPy is installed."""
    from .._backend import _cupy

    return _cupy() is not None


def enable_flash_sdp(enabled: bool) -> None:
    _sdp_enabled["flash"] = bool(enabled)


def enable_mem_efficient_sdp(enabled: bool) -> None:
    _sdp_enabled["mem_efficient"] = bool(enabled)


def enable_math_sdp(enabled: bool) -> None:
    _sdp_enabled["math"] = bool(enabled)


def enable_cudnn_sdp(enabled: bool) -> None:
    _sdp_enabled["cudnn"] = bool(enabled)


def flash_sdp_enabled() -> bool:
    return _sdp_enabled["flash"]


def mem_efficient_sdp_enabled() -> bool:
    return _sdp_enabled["mem_efficient"]


def math_sdp_enabled() -> bool:
    return _sdp_enabled["math"]


def cudnn_sdp_enabled() -> bool:
    return _sdp_enabled["cudnn"]
