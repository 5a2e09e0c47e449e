"""torch.backends.cuda: matmul precision flags and the attention-kernel switches.

chainrule's CUDA path is CuPy's, which computes float32 matmuls in float32, so the TF32 and
reduced-precision flags are kept (torch's defaults) but change nothing.

``conv.implicit_gemm`` is chainrule's own: it sends 1-d and 2-d float32/float64 convolutions on
CuPy to the implicit-GEMM kernels of ``ops/_cuda_conv.py`` instead of im2col + cuBLAS. On by
default since an H200 run checked and timed them; ``CHAINRULE_CUDA_CONV=im2col`` turns it off from
the environment (docs/gpu.md). ``conv.tensor_cores`` (off until a GPU run has timed it;
``CHAINRULE_CUDA_CONV=tf32``) lets float32 convolutions use those kernels' TF32 tensor-core tiling
wherever ``cudnn.allow_tf32`` (torch's switch, default True) allows it.
"""

from __future__ import annotations

import contextlib
import warnings

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

    @property
    def tensor_cores(self) -> bool:
        return _cuda_conv.tensor_cores

    @tensor_cores.setter
    def tensor_cores(self, value: bool) -> None:
        _cuda_conv.set_tensor_cores(value)


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


def is_flash_attention_available() -> bool:
    """False: chainrule has one attention implementation, torch's MATH composition."""
    return False


@contextlib.contextmanager
def sdp_kernel(enable_flash: bool = True, enable_math: bool = True, enable_mem_efficient: bool = True,
               enable_cudnn: bool = True):
    """torch.backends.cuda.sdp_kernel (deprecated in torch for nn.attention.sdpa_kernel): sets the four
    switches inside the block and restores them after; with one implementation, they change nothing."""
    warnings.warn("`torch.backends.cuda.sdp_kernel()` is deprecated. In the future, this context manager will be "
                  "removed. Please see `torch.nn.attention.sdpa_kernel()` for the new context manager, with updated "
                  "signature.", FutureWarning, stacklevel=3)
    saved = dict(_sdp_enabled)
    _sdp_enabled.update(flash=bool(enable_flash), math=bool(enable_math), mem_efficient=bool(enable_mem_efficient),
                        cudnn=bool(enable_cudnn))
    try:
        yield {}
    finally:
        _sdp_enabled.update(saved)


def __getattr__(name: str):
    if name == "SDPBackend":  # torch.backends.cuda.SDPBackend is nn.attention's; imported on first use
        from ..nn.attention import SDPBackend

        return SDPBackend
    raise AttributeError(f"module 'chainrule.backends.cuda' has no attribute '{name}'")
