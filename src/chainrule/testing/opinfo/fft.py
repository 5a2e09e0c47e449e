"""torch.fft and stft/istft, compared with torch (values and gradients, even and odd lengths, every
norm, n/s crop and zero-pad) and gradchecked in float64/complex128."""

from __future__ import annotations

import dataclasses

from .complex import crandn
from .core import OpCase, OpInfo, noncontig, randn

NORMS = (None, "ortho", "forward")


def _c2c(name: str):
    fn = f"fft.{name}"

    def samples():
        f = lambda lib, z, **kw: getattr(lib.fft, name)(z, **kw)  # noqa: E731
        cases = [OpCase(f"{name}_even_{norm}", lambda lib, z, norm=norm: f(lib, z, norm=norm), [crandn(3, 6)])
                 for norm in NORMS]
        cases += [
            OpCase(f"{name}_odd", lambda lib, z: f(lib, z, dim=0), [crandn(5, 2)]),
            OpCase(f"{name}_real_input_n_pad", lambda lib, x: f(lib, x, n=9), [randn(2, 7)]),
            OpCase(f"{name}_n_crop_noncontig", lambda lib, z: f(lib, z, n=3), [noncontig(crandn(4, 5))]),
        ]
        return cases

    return OpInfo(fn, "fft", samples)


def _c2c_nd(name: str, two: bool):
    def samples():
        f = lambda lib, z, **kw: getattr(lib.fft, name)(z, **kw)  # noqa: E731
        cases = [OpCase(f"{name}_{norm}", lambda lib, z, norm=norm: f(lib, z, norm=norm), [crandn(2, 3, 4)])
                 for norm in NORMS]
        cases.append(OpCase(f"{name}_s", lambda lib, x: f(lib, x, s=(4, 3)), [randn(2, 3, 5)]))
        if not two:
            cases.append(OpCase(f"{name}_dims", lambda lib, z: f(lib, z, dim=(0, 2)), [crandn(3, 2, 5)]))
        return cases

    return OpInfo(f"fft.{name}", "fft", samples)


def _r2c(name: str, nd: bool):
    def samples():
        f = lambda lib, x, **kw: getattr(lib.fft, name)(x, **kw)  # noqa: E731
        shape = (2, 4, 6) if nd else (3, 8)
        cases = [OpCase(f"{name}_even_{norm}", lambda lib, x, norm=norm: f(lib, x, norm=norm), [randn(*shape)])
                 for norm in NORMS]
        odd = (3, 5, 7) if nd else (2, 7)
        cases.append(OpCase(f"{name}_odd", lambda lib, x: f(lib, x), [randn(*odd)]))
        if nd:
            cases.append(OpCase(f"{name}_s", lambda lib, x: f(lib, x, s=(3, 5)), [randn(2, 4, 6)]))
        else:
            cases.append(OpCase(f"{name}_n", lambda lib, x: f(lib, x, n=5, dim=0), [randn(6, 3)]))
        return cases

    return OpInfo(f"fft.{name}", "fft", samples)


def _c2r(name: str, nd: bool):
    def samples():
        f = lambda lib, z, **kw: getattr(lib.fft, name)(z, **kw)  # noqa: E731
        shape = (2, 3, 4) if nd else (3, 5)
        cases = [OpCase(f"{name}_{norm}", lambda lib, z, norm=norm: f(lib, z, norm=norm), [crandn(*shape)])
                 for norm in NORMS]
        if nd:
            cases.append(OpCase(f"{name}_s_odd", lambda lib, z: f(lib, z, s=(3, 7)), [crandn(2, 3, 4)]))
        else:
            cases.append(OpCase(f"{name}_n_odd", lambda lib, z: f(lib, z, n=7), [crandn(2, 5)]))
            cases.append(OpCase(f"{name}_n_crop", lambda lib, z: f(lib, z, n=4, dim=0), [crandn(5, 2)]))
        return cases

    return OpInfo(f"fft.{name}", "fft", samples)


def _stft_window(lib, n, dtype):
    return lib.hann_window(n, dtype=dtype)


OPS = [
    _c2c("fft"), _c2c("ifft"),
    _c2c_nd("fft2", True), _c2c_nd("ifft2", True), _c2c_nd("fftn", False), _c2c_nd("ifftn", False),
    _r2c("rfft", False), _r2c("ihfft", False), _r2c("rfft2", True), _r2c("rfftn", True), _r2c("ihfft2", True),
    _r2c("ihfftn", True),
    _c2r("irfft", False), _c2r("hfft", False), _c2r("irfft2", True), _c2r("irfftn", True), _c2r("hfft2", True),
    _c2r("hfftn", True),
    OpInfo("fft.fftfreq", "fft", lambda: [
        OpCase("fftfreq", lambda lib: lib.fft.fftfreq(7, 0.5), []),
        OpCase("fftfreq_even", lambda lib: lib.fft.fftfreq(8, dtype=lib.float64), []),
    ], supports_autograd=False),
    OpInfo("fft.rfftfreq", "fft", lambda: [
        OpCase("rfftfreq", lambda lib: lib.fft.rfftfreq(7, 2.0), []),
        OpCase("rfftfreq_even", lambda lib: lib.fft.rfftfreq(8), []),
    ], supports_autograd=False),
    OpInfo("fft.fftshift", "fft", lambda: [
        OpCase("fftshift", lambda lib, x: lib.fft.fftshift(x), [randn(3, 5)]),
        OpCase("fftshift_dim", lambda lib, z: lib.fft.fftshift(z, dim=-1) * 2, [crandn(4, 5)]),
    ]),
    OpInfo("fft.ifftshift", "fft", lambda: [
        OpCase("ifftshift", lambda lib, x: lib.fft.ifftshift(x), [randn(3, 5)]),
        OpCase("ifftshift_dims", lambda lib, x: lib.fft.ifftshift(x, dim=(0, 1)), [randn(4, 5)]),
    ]),
    OpInfo("stft", "fft", lambda: [
        OpCase("stft", lambda lib, x: lib.stft(x, 8, return_complex=True), [randn(40)]),
        OpCase("stft_hann_hop", lambda lib, x: x.stft(8, hop_length=3, win_length=6, return_complex=True,
                                                       window=_stft_window(lib, 6, x.dtype)), [randn(2, 30)]),
        OpCase("stft_no_center_normalized", lambda lib, x: lib.stft(x, 7, center=False, normalized=True,
                                                                     return_complex=True), [randn(25)]),
        OpCase("stft_constant_pad_twosided", lambda lib, x: lib.stft(x, 8, pad_mode="constant", onesided=False,
                                                                      return_complex=True), [randn(24)]),
    ], methods=("stft",)),
    OpInfo("istft", "fft", lambda: [
        OpCase("istft", lambda lib, z: lib.istft(z, 8, window=_stft_window(lib, 8, z.real.dtype)), [crandn(5, 9)]),
        OpCase("istft_length_batched", lambda lib, z: z.istft(8, hop_length=2, length=20), [crandn(2, 5, 9)]),
        OpCase("istft_roundtrip", lambda lib, x: lib.istft(lib.stft(x, 8, window=_stft_window(lib, 8, x.dtype),
                                                                    return_complex=True), 8,
                                                           window=_stft_window(lib, 8, x.dtype), length=32),
               [randn(32)]),
    ], methods=("istft",)),
]



def _one_gradgradcheck(entry: OpInfo) -> OpInfo:
    """The transforms (stft and istft too, in their signal) are linear: their second derivatives are zero, so one
    gradgradcheck per entry checks the double-backward wiring; the rest keep gradcheck only (suite time)."""
    samples = entry.samples

    def thinned():
        cases = samples()
        return cases[:1] + [dataclasses.replace(c, gradgradcheck=False) for c in cases[1:]]

    return dataclasses.replace(entry, samples=thinned)


op_db = [_one_gradgradcheck(entry) for entry in OPS]
