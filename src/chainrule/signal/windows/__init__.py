"""torch.signal.windows: window functions with SciPy's conventions — symmetric by default
(``sym=True``), periodic with ``sym=False`` — unlike torch.hann_window and friends (periodic by
default, in ``ops/windows.py``). Each is torch's composition (a linspace through elementwise ops, in
the requested dtype), so float32 windows round as torch's do; ``requires_grad`` makes the linspace a
leaf, as torch's."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ... import _dtype, _layout
from ...ops import creation, elementwise, reduce, special_functions
from ...tensor import Tensor

__all__ = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine", "general_hamming",
           "hamming", "hann", "kaiser", "nuttall"]


def _checks(function: str, M: int, dtype, layout):
    """torch's checks, in its order; the dtype to compute in. As torch's, only a float32 or float64
    dtype object is one: anything else (a name, a NumPy dtype, a list) is refused by its words."""
    dtype = _dtype.get_default_dtype() if dtype is None else dtype
    if M < 0:
        raise ValueError(f"{function} requires non-negative window length, got M={M}")
    if layout is not None and layout is not _layout.strided:
        raise ValueError(f"{function} is implemented for strided tensors only, got: {layout}")
    if dtype not in (_dtype.float32, _dtype.float64):
        raise ValueError(f"{function} expects float32 or float64 dtypes, got: {dtype}")
    return dtype


def _linspace(start, end, M: int, dtype, device, requires_grad: bool) -> Tensor:
    return creation.linspace(start, end, M, dtype=dtype, device=device, requires_grad=requires_grad)


def exponential(M: int, *, center: float | None = None, tau: float = 1.0, sym: bool = True, dtype=None,
                layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """exp(-|n - center| / tau), center (M - 1)/2 (M/2 when ``sym=False``): the Poisson window."""
    dtype = _checks("exponential", M, dtype, layout)
    if tau <= 0:
        raise ValueError(f"Tau must be positive, got: {tau} instead.")
    if sym and center is not None:
        raise ValueError("Center must be None for symmetric windows")
    if M == 0:
        return creation.empty((0,), dtype=dtype, device=device, requires_grad=requires_grad)
    if center is None:
        center = (M if not sym and M > 1 else M - 1) / 2.0
    constant = 1 / tau
    k = _linspace(-center * constant, (-center + (M - 1)) * constant, M, dtype, device, requires_grad)
    return elementwise.exp(-elementwise.abs(k))


def cosine(M: int, *, sym: bool = True, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """sin(π (n + 1/2) / M): the sine window."""
    dtype = _checks("cosine", M, dtype, layout)
    if M == 0:
        return creation.empty((0,), dtype=dtype, device=device, requires_grad=requires_grad)
    constant = math.pi / (M + 1 if not sym and M > 1 else M)
    k = _linspace(0.5 * constant, (0.5 + (M - 1)) * constant, M, dtype, device, requires_grad)
    return elementwise.sin(k)


def gaussian(M: int, *, std: float = 1.0, sym: bool = True, dtype=None, layout=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """exp(-(n - (M - 1)/2)² / (2 std²))."""
    dtype = _checks("gaussian", M, dtype, layout)
    if std <= 0:
        raise ValueError(f"Standard deviation must be positive, got: {std} instead.")
    if M == 0:
        return creation.empty((0,), dtype=dtype, device=device, requires_grad=requires_grad)
    start = -(M if not sym and M > 1 else M - 1) / 2.0
    constant = 1 / (std * math.sqrt(2))
    k = _linspace(start * constant, (start + (M - 1)) * constant, M, dtype, device, requires_grad)
    return elementwise.exp(-k ** 2)


def kaiser(M: int, *, beta: float = 12.0, sym: bool = True, dtype=None, layout=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """I0(β sqrt(1 - (2n/(M-1) - 1)²)) / I0(β), I0 the modified Bessel function of order 0."""
    dtype = _checks("kaiser", M, dtype, layout)
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got: {beta} instead.")
    if M == 0:
        return creation.empty((0,), dtype=dtype, device=device, requires_grad=requires_grad)
    if M == 1:
        return creation.ones((1,), dtype=dtype, device=device, requires_grad=requires_grad)
    beta_t = creation.tensor(beta, dtype=dtype, device=device)
    constant = 2.0 * beta_t / (M if not sym else M - 1)
    end = elementwise.minimum(beta_t, -beta_t + (M - 1) * constant)
    k = _linspace(-beta_t, end, M, dtype, device, requires_grad)
    return special_functions.i0(elementwise.sqrt(beta_t * beta_t - k ** 2)) / special_functions.i0(beta_t)


def general_cosine(M, *, a: Iterable, sym: bool = True, dtype=None, layout=None, device=None,
                   requires_grad: bool = False) -> Tensor:
    """Σᵢ (-1)ⁱ aᵢ cos(2π i n / (M - 1)): the cosine-sum windows (hann, hamming, blackman, nuttall)."""
    dtype = _checks("general_cosine", M, dtype, layout)
    if M == 0:
        return creation.empty((0,), dtype=dtype, device=device, requires_grad=requires_grad)
    if M == 1:
        return creation.ones((1,), dtype=dtype, device=device, requires_grad=requires_grad)
    if not isinstance(a, Iterable):
        raise TypeError("Coefficients must be a list/tuple")
    if not a:
        raise ValueError("Coefficients cannot be empty")
    constant = 2 * math.pi / (M if not sym else M - 1)
    k = _linspace(0, (M - 1) * constant, M, dtype, device, requires_grad)
    a_i = creation.tensor([(-1) ** i * w for i, w in enumerate(a)], device=device, dtype=dtype,
                          requires_grad=requires_grad)
    i = creation.arange(a_i.shape[0], dtype=dtype, device=device, requires_grad=requires_grad)
    return reduce.sum(a_i.unsqueeze(-1) * elementwise.cos(i.unsqueeze(-1) * k), 0)


def general_hamming(M, *, alpha: float = 0.54, sym: bool = True, dtype=None, layout=None, device=None,
                    requires_grad: bool = False) -> Tensor:
    """alpha - (1 - alpha) cos(2πn / (M - 1))."""
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def hamming(M: int, *, sym: bool = True, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """general_hamming with alpha 0.54."""
    return general_hamming(M, sym=sym, dtype=dtype, layout=layout, device=device, requires_grad=requires_grad)


def hann(M: int, *, sym: bool = True, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """general_hamming with alpha 0.5."""
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def blackman(M: int, *, sym: bool = True, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """general_cosine with a = (0.42, 0.5, 0.08)."""
    dtype = _checks("blackman", M, dtype, layout)
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def nuttall(M: int, *, sym: bool = True, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """general_cosine with Nuttall's four coefficients."""
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym, dtype=dtype, layout=layout,
                          device=device, requires_grad=requires_grad)


def bartlett(M: int, *, sym: bool = True, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """1 - |2n/(M - 1) - 1|: the triangle."""
    dtype = _checks("bartlett", M, dtype, layout)
    if M == 0:
        return creation.empty((0,), dtype=dtype, device=device, requires_grad=requires_grad)
    if M == 1:
        return creation.ones((1,), dtype=dtype, device=device, requires_grad=requires_grad)
    constant = 2 / (M if not sym else M - 1)
    k = _linspace(-1, -1 + (M - 1) * constant, M, dtype, device, requires_grad)
    return 1 - elementwise.abs(k)
