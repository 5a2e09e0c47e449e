"""Complex numbers: building them (complex, polar), taking them apart (real, imag, angle,
view_as_real), conjugation, and the views between a complex tensor and its (..., 2) float pairs.

Gradients follow torch's convention: for a real loss L, the gradient of z = x + iy is
∂L/∂x + i·∂L/∂y (the conjugate Wirtinger derivative). Holomorphic ops get it from their real
rule through ``elementwise.conjugate_rule``; the ops here are not holomorphic and state theirs.

chainrule conjugates eagerly: ``conj()`` returns a new array (torch returns a lazily conjugated
view), which the shared version counter keeps the conjugate of its input across in-place writes to
either (``tensor.ConjugateViews``). The result carries ``_conj_bit`` so that what torch decides by its conj bit still matches:
``is_conj()`` is True, ``view_as_real`` refuses it, ``resolve_conj`` returns an unmarked copy, and
``conj()`` of it (whose data is the original's again) is unmarked. Views, ``detach()``, a Parameter
and a saved copy of a marked tensor keep the bit, as torch's do. The bit is set by the public
``conj``/``mH``/``H``/``adjoint()`` and where torch's own result is a conj view (ifft of a real
input, ihfft, ConjBackward0's gradient); chainrule's internal conjugations use
``elementwise._conj``, which never sets it.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from .._backend import array_module
from .._opmath import cpu_autocast_policy
from ..autograd import function as _function
from ..autograd.function import Function, saved
from ..storage import note_strided_view, storage_root
from ..tensor import Tensor, _check_tensor, honours_out
from .elementwise import _conj, _conj_view, _float_input, where, zeros_like_tensor
from .memory_format import preserved_layout, unary_layout

__all__ = ["real", "imag", "view_as_real", "view_as_complex", "conj", "conj_physical", "resolve_conj",
           "resolve_neg", "is_conj", "is_neg", "angle", "polar", "complex", "isreal"]
# real and imag are properties on Tensor (assignable), bound in _methods.py
__not_methods__ = {"polar", "complex", "view_as_real", "view_as_complex", "real", "imag"}
# torch.complex(re, im, out=...) and the others' out= (see namespace_with_out)
__out_functions__ = {"complex": "same_scalar_object", "polar": "same_scalar_object",
                     "conj_physical": "same_elementwise"}


class Real(Function):
    # torch's real is view_as_real(z).select(-1, 0): its node is SelectBackward0; one node here
    # (vmap's batched rules know it as elementwise) under the name users read
    _array_forward = True
    node_name = "SelectBackward0"
    label = "real"
    rule = "the gradient becomes the real part of the input's gradient (∂/∂x = 1, ∂/∂y = 0)"
    formula = "{0}.real"

    @staticmethod
    def forward(ctx, z):
        return z.real

    @staticmethod
    def backward(ctx, grad):
        return grad  # the engine casts it to the input's complex dtype: grad + 0i


class Imag(Function):
    _array_forward = True
    node_name = "SelectBackward0"  # view_as_real(z).select(-1, 1) in torch, as Real's
    label = "imag"
    rule = "the gradient becomes the imaginary part of the input's gradient (grad·i)"
    formula = "{0}.imag"

    @staticmethod
    def forward(ctx, z):
        return z.imag

    @staticmethod
    def backward(ctx, grad):
        return grad * 1j


def _complex_only(z, op: str) -> None:
    _check_tensor(z, op, "input", 1)
    if z._data.dtype.kind != "c":
        raise RuntimeError(f"{op} is not implemented for tensors with non-complex dtypes.")


def real(input: Tensor) -> Tensor:
    """torch.real: the real parts as a view (the tensor itself when it is real)."""
    _check_tensor(input, "real", "input", 1)
    if input._data.dtype.kind != "c":
        return input
    if input._conj_bit:  # torch's: the real parts of the conj of it (ConjBackward0), a tensor with no bit
        return _view_as_real(_conj_view(input, shared=True)).select(-1, 0)
    return Real.apply(input)._share(input)  # a view: one version counter


def imag(input: Tensor) -> Tensor:
    """torch.imag: the imaginary parts as a view; torch refuses it for a real tensor."""
    _complex_only(input, "imag")
    return Imag.apply(input)._share(input)  # a view: one version counter


class ViewAsReal(Function):
    _array_forward = True
    node_name = "ViewAsRealBackward0"
    label = "view_as_real"
    rule = "the (..., 2) gradient pairs viewed back as complex numbers"
    formula = "view_as_real({0})"

    @staticmethod
    def forward(ctx, z):
        xp = array_module(z)
        # a complex element is its real and imaginary parts side by side: the real parts' view
        # with one more axis of stride itemsize/2 covers any strides (a transposed z too)
        part = z.real
        pairs = xp.lib.stride_tricks.as_strided(part, shape=z.shape + (2,), strides=part.strides + (z.itemsize // 2,))
        note_strided_view(pairs, storage_root(z)[0])  # z's storage (CuPy's as_strided gives no base)
        return pairs

    @staticmethod
    def backward(ctx, grad):
        return view_as_complex(grad.contiguous())


class ViewAsComplex(Function):
    _array_forward = True
    node_name = "ViewAsComplexBackward0"
    label = "view_as_complex"
    rule = "the complex gradient viewed as (..., 2) real pairs"
    formula = "view_as_complex({0})"

    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        # NumPy and CuPy re-view a dtype when the last axis is contiguous, whatever the others
        return x.view(xp.complex64 if x.dtype.itemsize == 4 else xp.complex128)[..., 0]

    @staticmethod
    def backward(ctx, grad):
        return _view_as_real(grad)


def view_as_real(input: Tensor) -> Tensor:
    """torch.view_as_real: a complex tensor as a float view with a last dim of 2 (real, imag)."""
    _check_tensor(input, "view_as_real", "input", 1)
    if input._data.dtype.kind != "c":
        raise RuntimeError("view_as_real is only supported for complex tensors")
    if input._conj_bit:
        raise RuntimeError("view_as_real doesn't work on unresolved conjugated tensors.  To resolve the conjugate "
                           "tensor so you can view it as real, use self.resolve_conj(); however, be warned that "
                           "the resulting tensor will NOT alias the original.")
    return _view_as_real(input)


def _view_as_real(input: Tensor) -> Tensor:
    """view_as_real for chainrule's own callers (backward passes, views of a tensor's parts): conj()'s
    eager result holds its values, so the refusal of torch's lazy conjugation does not apply."""
    return ViewAsReal.apply(input)._share(input)  # a view: one version counter


@cpu_autocast_policy("float32")
def view_as_complex(input: Tensor) -> Tensor:
    """torch.view_as_complex: a float tensor whose last dim is 2 (stride 1) viewed as complex numbers."""
    _check_tensor(input, "view_as_complex", "input", 1)
    data = input._data
    half = input.dtype is _dtype.float16
    if not half and (data.dtype.kind != "f" or data.dtype.itemsize not in (4, 8)):
        raise RuntimeError("view_as_complex is only supported for half, float and double tensors, but got a tensor "
                           f"of scalar type: {_dtype.scalar_name(input.dtype)}")
    # torch checks the layout before it makes the view, so a float16 tensor gets the layout's error first
    if data.ndim == 0:
        raise RuntimeError("Input tensor must have one or more dimensions")
    if data.shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    # (a wrapper subclass's strides are its own, not those of the placeholder beneath)
    strides, itemsize = (data.strides, data.itemsize) if input._wrapper_strides is None else \
        (input._wrapper_strides, 1)
    if data.size and strides[-1] != itemsize:  # an empty tensor's strides say nothing
        raise RuntimeError("Tensor must have a last dimension with stride 1")
    if data.size and any(s % (2 * itemsize) for s, n in zip(strides[:-1], data.shape[:-1]) if n > 1):
        raise RuntimeError("Tensor must have a stride divisible by 2 for all but last dimension")
    if data.size and input.storage_offset() % 2:
        raise RuntimeError("Tensor must have a storage_offset divisible by 2")
    if half:
        # torch views float16 pairs as complex32, a dtype chainrule names but cannot store
        raise NotImplementedError('"tensor storage" not implemented for \'ComplexHalf\' (chainrule has no complex32 '
                                  "tensors)")
    return ViewAsComplex.apply(input)._share(input)  # a view: one version counter




def conj(input: Tensor) -> Tensor:
    """torch.conj: the complex conjugate (the tensor itself when it is real).

    torch returns a lazily conjugated view; chainrule conjugates now, into memory of its own that
    shares ``input``'s version counter, which keeps the two conjugate: a write into either reaches
    the other (tensor.ConjugateViews). The result carries torch's conj bit flipped from ``input``'s
    (``is_conj()`` True, or False for the conjugate of a conj view). chainrule's own code conjugates
    with ``elementwise._conj``, which sets no bit."""
    return _conj_view(input, shared=True)


class ConjPhysical(Function):
    _array_forward = True
    node_name = "ConjPhysicalBackward0"
    label = "conj_physical"
    rule = "conjugates the gradient, in new memory (no conj bit, unlike conj's)"
    formula = "conj_physical({0})"

    @staticmethod
    def forward(ctx, z):
        # torch writes the conjugate into empty_like(z): z's strides where z is dense, size-1 dims' too
        out = array_module(z).conj(z)
        return out if z.flags.c_contiguous and 1 not in z.shape else preserved_layout(out, z)

    @staticmethod
    def backward(ctx, grad):
        return _conj(grad)  # torch's rule is grad.conj_physical(): no conj view


def conj_physical(input: Tensor) -> Tensor:
    """torch.conj_physical: the conjugate in new memory (what chainrule's conj does too), no conj bit."""
    if input._data.dtype.kind != "c":
        return input
    return ConjPhysical.apply(input)


def resolve_conj(input: Tensor) -> Tensor:
    """torch.resolve_conj: the input itself, or for conj()'s result an unmarked copy (CloneBackward0)."""
    if not input._conj_bit:
        return input
    return input.clone()


def resolve_neg(input: Tensor) -> Tensor:
    """torch.resolve_neg: the input itself, as chainrule never holds a lazy negation."""
    return input


def is_conj(input: Tensor) -> bool:
    """True for conj()'s result (torch's lazily conjugated view), False otherwise."""
    return input._conj_bit


def is_neg(input: Tensor) -> bool:
    """False: chainrule never holds a lazily negated view."""
    return False


class Angle(Function):
    _array_forward = True
    node_name = "AngleBackward0"
    label = "angle"
    rule = "∂/∂z = i·z/|z|² for complex z (0 at 0); zero gradient for real inputs"
    formula = "angle({0})"

    @staticmethod
    def forward(ctx, z):
        xp = array_module(z)
        ctx.save_for_backward(z)
        if z.dtype.kind == "c":
            y = xp.angle(z)
        else:  # torch: pi for negative numbers, 0 otherwise, NaN kept
            y = xp.where(z < 0, z.dtype.type(3.141592653589793), xp.where(z != z, z, z.dtype.type(0)))
        return y if z.flags.c_contiguous else unary_layout(y, z)  # (torch's unary layout: where's is NumPy's)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_values
        if z._data.dtype.kind != "c":
            return zeros_like_tensor(grad)
        # angle = atan2(y, x): ∂/∂x = -y/|z|², ∂/∂y = x/|z|², so grad·(-y + ix)/|z|² = grad·iz/|z|²
        magnitude2 = z.real * z.real + z.imag * z.imag
        zero = magnitude2 == 0
        return where(zero, 0.0, grad * (z * 1j) / where(zero, 1.0, magnitude2))


@honours_out
def angle(input: Tensor) -> Tensor:
    """torch.angle: the argument of each element in radians (π for negative reals, 0 otherwise)."""
    _check_tensor(input, "angle", "input", 1)
    if input._data.dtype.kind not in "fc":
        input = _float_input(input)
    return Angle.apply(input)


def complex(real: Tensor, imag: Tensor) -> Tensor:
    """torch.complex: real + i·imag from two float tensors of one dtype (broadcast)."""
    _check_tensor(real, "complex", "real", 1)
    _check_tensor(imag, "complex", "imag", 2)
    if real.dtype is _dtype.float16 and imag.dtype is _dtype.float16:
        raise TypeError("complex: two Half tensors make a ComplexHalf (complex32) tensor, which chainrule does "
                        "not have (NumPy has no complex32); cast them to float32 first for complex64")
    for t in (real, imag):
        if t._data.dtype.kind != "f" or t._data.dtype.itemsize not in (4, 8):
            raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got "
                               f"{_dtype.scalar_name(real.dtype)} and "
                               f"{_dtype.scalar_name(imag.dtype)}")
    if real._data.dtype != imag._data.dtype:
        raise RuntimeError(f"Expected object of scalar type {_dtype.scalar_name(real.dtype)} but got scalar type "
                           f"{_dtype.scalar_name(imag.dtype)} for second argument")
    return ComplexOp.apply(real, imag)


class ComplexOp(Function):
    _array_forward = True
    node_name = "ComplexBackward0"
    label = "complex"
    rule = "∂/∂re = Re(grad), ∂/∂im = Im(grad)"
    formula = "complex({0}, {1})"

    @staticmethod
    def forward(ctx, re, im):
        xp = array_module(re)
        # the parts side by side, viewed as complex: exact, where re + 1j·im would make inf·1j a NaN
        pairs = xp.stack(xp.broadcast_arrays(re, im), axis=-1)
        return pairs.view(xp.complex64 if re.dtype.itemsize == 4 else xp.complex128)[..., 0]

    @staticmethod
    def backward(ctx, grad):
        return (real(grad) if ctx.needs_input_grad[0] else None,
                imag(grad) if ctx.needs_input_grad[1] else None)


class Polar(Function):
    label = "polar"
    # torch's polar_backward, from the result z: sgn(z) is 0 where r = 0, so r gets no gradient there
    rule = "∂/∂r = Re(conj(g)·sgn(z)), ∂/∂θ = Re(conj(g)·i·z)"
    formula = "polar({0}, {1})"
    _array_forward = True
    saved_attributes = {"_saved_result": saved(0)}

    @staticmethod
    def forward(ctx, r, theta):
        xp = array_module(r)
        with np.errstate(all="ignore"):
            z = ComplexOp.forward(ctx, r * xp.cos(theta), r * xp.sin(theta))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_values
        grad_conj = _conj(grad)
        return (grad_conj * z.sgn()).real if ctx.needs_input_grad[0] else None, \
            (grad_conj * (z * 1j)).real if ctx.needs_input_grad[1] else None


@cpu_autocast_policy("float32")
def polar(abs: Tensor, angle: Tensor) -> Tensor:
    """torch.polar: abs·(cos(angle) + i·sin(angle)), with torch's gradient (none for abs where it is 0)."""
    _check_tensor(abs, "polar", "abs", 1)
    _check_tensor(angle, "polar", "angle", 2)
    names = _dtype.scalar_name(abs.dtype), _dtype.scalar_name(angle.dtype)
    if not set(names) <= {"Half", "Float", "Double"}:
        raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got {names[0]} and {names[1]}")
    if names[0] != names[1]:
        raise RuntimeError(f"Expected object of scalar type {names[0]} but got scalar type {names[1]} for second argument")
    if names[0] == "Half":
        raise NotImplementedError("\"polar_cpu\" not implemented for 'Half'")
    return Polar.apply(abs, angle)


def isreal(input: Tensor) -> Tensor:
    """torch.isreal: True where the imaginary part is zero (everywhere, for a real tensor)."""
    if input._data.dtype.kind != "c":
        return Tensor._make(array_module(input).ones(input._data.shape, dtype=bool))
    if _function.active_dispatch is not None:  # (the imaginary parts are read: a wrapper's handler answers)
        made = _function.argument_dispatch("isreal", isreal, (input,), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    return Tensor._make(input._data.imag == 0)

