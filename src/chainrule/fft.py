"""chainrule.fft: torch.fft's discrete Fourier transforms, with gradients (see ops/fft.py)."""

from __future__ import annotations

from .ops.fft import (  # noqa: F401
    FFT_FUNCTIONS,
    fft,
    fft2,
    fftfreq,
    fftn,
    fftshift,
    hfft,
    hfft2,
    hfftn,
    ifft,
    ifft2,
    ifftn,
    ifftshift,
    ihfft,
    ihfft2,
    ihfftn,
    irfft,
    irfft2,
    irfftn,
    rfft,
    rfft2,
    rfftfreq,
    rfftn,
)

__all__ = list(FFT_FUNCTIONS)
del FFT_FUNCTIONS

# bound by the __future__ import; dir(torch.fft) has no such name
del annotations
