"""chainrule.fft: torch.fft's names. chainrule has no complex dtype, which every FFT returns, so
each function raises NotImplementedError naming itself rather than being absent."""

from __future__ import annotations

_FFT_FUNCTIONS = {
    "fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2", "rfftn",
    "irfftn", "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn", "fftfreq", "rfftfreq",
    "fftshift", "ifftshift",
}


def __getattr__(name: str):
    if name in _FFT_FUNCTIONS:
        raise NotImplementedError(f"chainrule.fft.{name} is not implemented: FFTs produce complex "
                                  "tensors and chainrule has no complex dtype")
    raise AttributeError(f"module 'chainrule.fft' has no attribute '{name}'")
