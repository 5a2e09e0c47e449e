"""Shape ops. The view family (view, reshape, expand, transpose, permute, squeeze, unsqueeze,
flatten, unflatten) returns NumPy views that share the input's version counter, as torch's views
share storage; their gradients undo the reshaping.
"""

from __future__ import annotations

import math
import numbers
import operator
import re
import weakref
from collections.abc import Sequence

import numpy as np

from .. import _dtype, _layout, _torch_function
from .._backend import array_module, autocast_hook, broadcast_refusal, is_gpu_array, strided_view
from .._opmath import cpu_autocast_policy
from ..autograd import function as _function_module
from ..autograd.function import (
    _NULL_CTX,
    Function,
    InputView,
    SavedValue,
    as_uint64,
    ctx_value,
    input_sizes,
    kept_value,
    name_node,
    unwatched_on_plain_arrays,
)
from ..autograd.grad_mode import (
    INFERENCE_VERSION,
    INFERENCE_WRITE,
    DetachedInference,
    is_grad_enabled,
    is_inference_mode_enabled,
)
from ..autograd.profiler import composite_range
from ..storage import note_strided_view, storage_root
from ..tensor import Size, Tensor, _int_sequence, _wrap_dim, honours_out
from ._arg_parser import _as_int, _fits_int64, check_as, check_float, check_int, int_list, out_rule
from .elementwise import SPARSE_COO_TYPES, _cast
from .memory_format import (
    channels_last,
    channels_last_strides,
    copy_preserving_format,
    full_in_suggested_format,
    in_suggested_format,
    relaid_as_suggested,
    strided_empty,
    suggests_channels_last,
    torch_contiguous_strides,
)
from .reduce import sum_to_shape
from .second_order import depending_on

# the functions whose chainrule.<name> takes torch's out=, with torch's rule for the out's dtype
# (ops/_arg_parser.py namespace_with_out; chainrule/__init__.py wraps them)
__out_functions__ = {"tril": "same", "triu": "same"}
__all__ = ["reshape", "view", "view_as", "reshape_as", "expand", "expand_as", "broadcast_to",
           "transpose", "swapaxes", "swapdims", "permute", "t", "squeeze", "unsqueeze", "flatten",
           "unflatten", "movedim", "broadcast_tensors", "broadcast_shapes", "atleast_1d",
           "atleast_2d", "ravel", "clone", "contiguous", "cat", "concat", "concatenate", "stack",
           "unbind", "split", "chunk", "tile", "flip", "fliplr", "flipud", "roll", "tril", "triu",
           "narrow", "select", "hstack", "vstack", "dstack", "column_stack", "atleast_3d",
           "tensor_split", "hsplit", "vsplit", "pad"]
__not_methods__ = {"cat", "concat", "concatenate", "stack", "broadcast_tensors", "broadcast_shapes",
                   "hstack", "vstack", "dstack", "column_stack", "pad", "atleast_1d", "atleast_2d", "atleast_3d"}
# Tensor-only methods (torch has no torch.repeat; torch.unfold is nn.functional's im2col)
# Tensor.split names its size argument split_size where torch.split says split_size_or_sections
__tensor_methods__ = {"repeat": "repeat", "unfold": "unfold", "split": "_split_method", "flip": "_flip_method"}


def _mark_view(out: Tensor, base: Tensor) -> Tensor:
    """Make ``out`` share ``base``'s version counter when it shares its memory (an empty one always:
    torch's reshape of an empty tensor is a view whatever its strides, and so is ours)."""
    xp = array_module(out)
    # a reshape either views its input or copies it, so the cheap bounds test is exact here
    if xp.may_share_memory(out._data, base._data) if out._data.size else True:
        _share(out, base)
    return out


def _shape_arg(shape, op: str) -> tuple:
    return _int_sequence(shape, op)


def _spread_or_keyword(spread: tuple, keyword, name: str, op: str) -> tuple:
    """torch takes a shape spread (``x.view(2, 3)``) or as one argument, by keyword too
    (``torch.reshape(x, shape=(2, 3))``, ``x.permute(dims=(1, 0))``): the spread form of either."""
    if keyword is None:
        return spread
    if spread:
        raise TypeError(f"{op}() got multiple values for argument '{name}'")
    if isinstance(keyword, int):
        raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, not int")
    return (keyword,)


def _infer_shape(shape: tuple, numel: int, op: str) -> tuple:
    """Resolve one -1 and check the element count, with torch's error messages, checked dimension
    by dimension as torch's infer_size does (a second -1 or a negative size, whichever comes first)."""
    # the common shape, no -1, no negative size and the right count, passes on three C-level scans
    # (every view and reshape, and their backward, comes here); any other is looked at size by size
    if -1 not in shape and (not shape or min(shape) >= 0) and math.prod(shape) == numel:
        return shape
    known = 1
    inferred = None
    for index, s in enumerate(shape):
        if s == -1:
            if inferred is not None:
                raise RuntimeError("only one dimension can be inferred")
            inferred = index
        elif s >= 0:
            known *= s
        else:
            raise RuntimeError(f"invalid shape dimension {s} at index {index} of shape {list(shape)}")
    if inferred is not None:
        if known == 0 and numel == 0:
            raise RuntimeError(f"cannot reshape tensor of 0 elements into shape {list(shape)} because the "
                               "unspecified dimension size -1 can be any value and is ambiguous")
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = (*shape[:inferred], numel // known, *shape[inferred + 1:])
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


class Reshape(Function):
    _array_forward = True
    saved_attributes = {"_saved_self_sym_sizes": input_sizes(0)}  # torch's grad_fn._saved_* names
    node_name = "ViewBackward0"
    label = "view"
    rule = "reshapes the gradient back to the input's shape"

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        out = x.reshape(shape)
        if not out.size and type(out) is np.ndarray and out.ndim:
            # torch's view of an empty tensor keeps its strides for the same shape, else gives the
            # contiguous strides of the new one
            x = strided_empty(x)
            return strided_view(out, out.shape, x.strides if out.shape == x.shape
                                else torch_contiguous_strides(out.shape, out.itemsize))
        if 1 in out.shape and type(out) is np.ndarray and out.size and not (
                x.flags.c_contiguous and 1 not in x.shape) and np.may_share_memory(out, x):
            # only a size-1 dim's stride is free in a view; torch's is computeStride's, NumPy's its own.
            # (Not looked at for a row-major input without size-1 dims: its strides are the contiguous
            # ones, and NumPy's reshape of it gives every dim of the new shape the contiguous stride,
            # computeStride's too; a 0-d input's view keeps NumPy's, as computeStride gives none.)
            strides = _view_strides(x.shape, x.strides, out.shape)
            if strides is not None and strides != out.strides:
                out = strided_view(out, out.shape, strides)
        return out

    @staticmethod
    def backward(ctx, grad):
        shape = ctx.input_shape
        if type(grad) is Tensor and not _torch_function.flags.modes_live and grad._data.size == math.prod(shape):
            # what grad.reshape runs for a plain tensor with no mode on: its dispatch wrapper and
            # signature check would pass a tuple of ints straight through, and the input's shape
            # (ints, no -1) needs no inference once the sizes agree
            if unwatched_on_plain_arrays(grad):
                return _reshaped_gradient(grad, shape)
            return _reshape_to(grad, shape)
        return grad.reshape(shape)


def _reshaped_gradient(grad: Tensor, shape: tuple) -> Tensor:
    """``_reshape_to(grad, shape)`` in a plain backward (nothing records, nothing watches the ops, a
    NumPy or GPU gradient): the same forwards on the same array, and the result a view of ``grad``
    as there, without applying the node-less ops around them (one per view node of the graph)."""
    data = grad._data
    if data.size and not _viewable(data, shape):  # (UnsafeView of a Clone: a copy, no view)
        return Tensor._make(Reshape.forward(_NULL_CTX, Clone.forward(_NULL_CTX, data), shape))
    out = Tensor._make(Reshape.forward(_NULL_CTX, data, shape))
    if out._data.size and (type(data) is np.ndarray or data.flags.c_contiguous):  # (as _reshape_to)
        return _share(out, grad)
    return _mark_view(out, grad)


def _view_strides(old_shape: tuple, old_strides: tuple, new_shape: tuple):
    """The strides torch's view gives ``new_shape`` over ``old_shape``/``old_strides`` (ATen's
    ``computeStride``: the dims grouped into chunks contiguous in memory, each chunk's strides
    from its innermost), or None where it would refuse to view."""
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base_stride = old_strides[-1] if old_strides else 1
    tensor_numel = view_numel = 1
    for tensor_d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[tensor_d]
        if tensor_d == 0 or (old_shape[tensor_d - 1] != 1
                             and old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base_stride = old_strides[tensor_d - 1]
                tensor_numel = view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


class UnsafeView(Reshape):
    node_name = "UnsafeViewBackward0"
    label = "view"
    rule = "reshapes the gradient back to the input's shape"


class SqueezeView(Reshape):
    """squeeze's node: a reshape, whose backward recorded under create_graph is torch's, not a view:
    the dropped size-1 dims put back one unsqueeze at a time, lowest first (torch's unsqueeze_to)."""

    node_name = "SqueezeBackward0"
    label = "squeeze"

    @staticmethod
    def forward(ctx, x, shape, dims):
        ctx.dims = dims
        return Reshape.forward(ctx, x, shape)

    @staticmethod
    def backward(ctx, grad):
        if not is_grad_enabled():  # nothing records: the cheaper reshape gives the same gradient
            return Reshape.backward(ctx, grad)
        for dim in ctx.dims:
            grad = unsqueeze(grad, dim)
        return grad


class UnsqueezeView(Reshape):
    """unsqueeze's node: a reshape, whose backward recorded under create_graph is torch's squeeze(dim)."""

    node_name = "UnsqueezeBackward0"
    label = "unsqueeze"

    @staticmethod
    def forward(ctx, x, shape, dim):
        ctx.dim = dim
        return Reshape.forward(ctx, x, shape)

    @staticmethod
    def backward(ctx, grad):
        if not is_grad_enabled():  # nothing records: the cheaper reshape gives the same gradient
            return Reshape.backward(ctx, grad)
        return squeeze(grad, ctx.dim)  # the dim as given (torch's node saves a negative one so)


def reshape(input: Tensor, *sizes, shape=None) -> Tensor:
    """torch.reshape: a view when the strides allow it, a copy otherwise."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.reshape(*sizes, shape=shape)  # sparse: its method answers (kept sparse or refused, as torch)
    sizes = _spread_or_keyword(sizes, shape, "shape", "reshape")
    given = _shape_arg(sizes, "reshape")
    shape = _infer_shape(given, input._data.size, "reshape")
    if _function_module.active_dispatch is not None:  # (a mode shows view's shape as given: -1 kept)
        _function_module.note_given(Reshape, input, given_shape=given)
    return _reshape_to(input, shape)


def _reshape_to(input: Tensor, shape: tuple, view: type = Reshape, **arguments) -> Tensor:
    """reshape's recording for a ``shape`` of ints already resolved against ``input``'s size (no -1):
    what chainrule's own calls with a known shape run, the arguments' parsing skipped. ``view``: the
    node of a viewable input (with its ``arguments``), a reshape's unless squeeze or unsqueeze."""
    if input._data.size and not _viewable(input._data, shape):
        return UnsafeView.apply(Clone.apply(input), shape=shape)  # torch's graph: a contiguous clone, viewed
    out = view.apply(input, shape=shape, **arguments)
    row_major = input._data.flags.c_contiguous
    if not row_major:
        name_node(out, "ReshapeAliasBackward0", saved=Reshape.saved_attributes)  # torch views a non-contiguous input with _reshape_alias
    if out._data.size and (type(out._data) is np.ndarray or row_major and is_gpu_array(out._data)):
        # (Reshape's forward of a viewable input is a view of it, and CuPy's reshape of row-major
        # memory always one: no memory test needed)
        return _share(out, input)
    out = _mark_view(out, input)
    return out if input._numpy_empty_strides is None else _keep_empty_strides(out, input)


def reshaped(input: Tensor, shape: tuple) -> Tensor:
    """``input.reshape(shape)`` as chainrule's ops call it with a shape of ints they computed from
    ``input``'s size (no -1): straight to the recording when nothing would dispatch the call (a
    plain tensor, no mode on), which skips the dispatch wrapper, the signature check and the
    shape's parsing; else the method, as before."""
    if type(input) is Tensor and not _torch_function.flags.modes_live:
        return _reshape_to(input, shape)
    return input.reshape(shape)


def viewed(input: Tensor, shape: tuple) -> Tensor:
    """``input.view(shape)`` as chainrule's ops call it with a shape of ints they computed from
    ``input``'s size (no -1), by the same shortcut as ``reshaped``."""
    if type(input) is Tensor and not _torch_function.flags.modes_live:
        return _view_to(input, shape)
    return input.view(shape)


def _viewable(array, shape: tuple) -> bool:
    """Whether ``array``'s strides can express ``shape`` without a copy (NumPy's own test)."""
    if (type(array) is np.ndarray or is_gpu_array(array)) and array.flags.c_contiguous:
        return True  # (row-major memory takes any shape of its size, which the caller has checked)
    probe = array.view()
    try:
        probe.shape = shape
    except AttributeError:
        return False
    return True


def view(input: Tensor, *sizes, size=None, dtype=None) -> Tensor:
    """torch.Tensor.view: never copies; raises if the strides cannot express the new shape.
    ``view(dtype)`` reads the same memory as another dtype."""
    if sizes and (size is not None or dtype is not None):
        keyword = "size" if dtype is None else "dtype"
        given = ", ".join([type(s).__name__ for s in sizes] + [f"{keyword}={type(size if dtype is None else dtype).__name__}"])
        raise TypeError(f"view() received an invalid combination of arguments - got ({given}), but expected one of:\n"
                        " * (torch.dtype dtype)\n * (tuple of ints size)\n")
    sizes = _spread_or_keyword(sizes, size if dtype is None else dtype, "size" if dtype is None else "dtype", "view")
    if len(sizes) == 1 and isinstance(sizes[0], _dtype.dtype):
        return _view_as_dtype(input, sizes[0])
    given = _shape_arg(sizes, "view")
    shape = _infer_shape(given, input._data.size, "view")
    if _function_module.active_dispatch is not None:  # (a mode shows the shape as given: -1 kept)
        _function_module.note_given(Reshape, input, given_shape=given)
    return _view_to(input, shape)


def _view_to(input: Tensor, shape: tuple) -> Tensor:
    """view's recording for a ``shape`` of ints already resolved against ``input``'s size (no -1):
    what chainrule's own calls with a known shape run, the arguments' parsing skipped."""
    if not _viewable(input._data, shape):
        raise RuntimeError(
            "view size is not compatible with input tensor's size and stride (at least one dimension spans "
            "across two contiguous subspaces). Use .reshape(...) instead.")
    out = _share(Reshape.apply(input, shape=shape), input)
    return out if input._numpy_empty_strides is None else _keep_empty_strides(out, input)


def _view_as_dtype(input: Tensor, dtype) -> Tensor:
    """torch.Tensor.view(dtype): the same memory read as another dtype (a bit reinterpretation);
    with a different element size the last dim shrinks or grows. As in torch, never recorded."""
    if input._conj_bit:  # (torch refuses it for any dtype, its own included)
        raise RuntimeError("torch.Tensor.view is not supported for conjugate view tensors when converting to a "
                           "different dtype.")
    data = input._data
    source, target = _dtype.TORCH_SCALAR_NAMES.get(input.dtype.name), _dtype.TORCH_SCALAR_NAMES.get(dtype.name)
    old_size, new_size = data.dtype.itemsize, dtype.itemsize
    if old_size != new_size:
        what = f"to view {source} as {target} (different element sizes)"
        if data.ndim == 0:
            raise RuntimeError(f"self.dim() cannot be 0 {what}")
        # torch's checks in its order: a wider element needs the last dim to split evenly, then
        # (either way) a unit last stride, then the offset and the other strides in wide elements
        ratio = new_size // old_size
        strides = input.stride()
        if ratio and data.shape[-1] % ratio:
            raise RuntimeError(f"self.size(-1) must be divisible by {ratio} {what}, but got {data.shape[-1]}")
        if strides[-1] != 1:
            raise RuntimeError(f"self.stride(-1) must be 1 {what}, but got {strides[-1]}")
        if ratio and input.storage_offset() % ratio:
            raise RuntimeError(f"self.storage_offset() must be divisible by {ratio} {what}, but got "
                               f"{input.storage_offset()}")
        for d, stride in enumerate(strides[:-1]):
            if ratio and stride % ratio:
                raise RuntimeError(f"self.stride({d}) must be divisible by {ratio} {what}, but got {stride}")
    # torch's result shares the memory and the version counter but is no view to autograd: no
    # _base, _is_view() False, even for the same dtype; views of it stay outside autograd too
    out = Tensor._make(data.view(dtype.np))
    box = input._vbox
    if (box is INFERENCE_VERSION or box is INFERENCE_WRITE) and not is_inference_mode_enabled():
        out._vbox = [0]  # (torch: of an inference tensor, outside inference_mode, a plain tensor of its own counter)
    else:
        out._version_box = input._version_box
    out._nondifferentiable_view = True
    return out if old_size != new_size or input._numpy_empty_strides is None else _keep_empty_strides(out, input)


def _share(self: Tensor, base: Tensor, differentiable: bool = True) -> Tensor:
    """``self`` views ``base``'s memory: one version counter, and base's root as its base (a view
    of a view hangs off the first base, as in torch). A view made while recording is tracked,
    weakly, by its root, so that an in-place op giving the root a new graph can rebuild the view's
    graph from it (ops/index.py ``refresh_views``), or one under no_grad moving the root's version
    (an optimizer's step on a leaf) makes torch regenerate it. A bit reinterpretation (``view(dtype)``), and any view of
    one, is a view outside autograd, as torch's: an in-place op on it is one on a plain tensor."""
    box = base._vbox  # (the counter's slot read directly where the _version_box property would return it as is)
    if box is None:  # (the property's first use, inline: base's counter made, at version 0, and shared)
        box = base._vbox = [0]
        self._vbox = box
    elif box is INFERENCE_VERSION or box is INFERENCE_WRITE or type(box) is DetachedInference:
        # torch: a view of an inference tensor is an inference tensor that is no view to autograd
        # (``_is_view()`` False, no grad_fn, not requiring grad), whatever the grad mode it is made in;
        # its own counter as the base's: saving it for backward raises torch's "cannot be saved" error,
        # a write goes through _version_box (refused outside inference mode)
        self._vbox = INFERENCE_VERSION
        self._grad_fn = None
        self._requires_grad = False
        differentiable = False
    else:
        self._vbox = box
    root = base if base._base is None else base._base
    self._base = root
    if base._conj_bit and self._data.dtype.kind == "c":  # a complex view of a conj view is one too (not .real/.imag)
        self._conj_bit = True
    if not differentiable or base._nondifferentiable_view:
        self._nondifferentiable_view = True
        return self
    if type(base._view_state) is InputView:  # a view of a Function's input returned as-is: refused alike
        self._view_state = base._view_state
    made_without_grad = type(base._view_state) is MadeWithoutGrad
    if not is_grad_enabled():
        if root._requires_grad or root._data.dtype.kind in _DIFFERENTIABLE_KINDS:
            # torch: it requires grad with its root, has no edge, and refuses use after a write
            self._view_state = MadeWithoutGrad(is_inference_mode_enabled(), self._vbox[0], made_without_grad)
            self._requires_grad = root._requires_grad
            if root.grad_fn is not None or not root._requires_grad:  # its root may join the graph
                _track_view(root, self)
        return self
    if made_without_grad:  # a view of one made under no_grad is refused with it
        self._view_state = MadeWithoutGrad(base._view_state.inference, self._vbox[0], True)
    if base._multi_output_view:  # torch refuses in-place writes to every view of a multi-output view too
        self._multi_output_view = True
    _track_view(root, self)
    return self


def torch_empty_slice(x, key, out):
    """``out``, the empty result of the basic read ``x[key]``, placed where torch places it: NumPy
    leaves an empty slice's data pointer where the read starts counting (``x[5:]`` of 5 elements at
    x's first element), torch moves it by ``start * stride`` as for any slice, and users read that
    (``storage_offset()``, ``as_strided``'s default offset and its bounds error). ``out`` as it is
    for a non-basic key, an empty ``x`` (whose NumPy strides are not torch's), or a place NumPy
    cannot point at (past the end of the storage, which torch allows for an empty tensor)."""
    if type(x) is not np.ndarray or type(out) is not np.ndarray or out.size or not x.size:
        return out
    keys = key if isinstance(key, tuple) else (key,)
    for k in keys:
        basic = k is None or k is Ellipsis or (isinstance(k, slice) and (k.step is None or k.step > 0)) or (
            isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)))
        if not basic:
            return out
    consumed = sum(1 for k in keys if k is not None and k is not Ellipsis)
    dim, moved = 0, 0
    for k in keys:
        if k is None:
            continue
        if k is Ellipsis:
            dim += x.ndim - consumed
            continue
        size = x.shape[dim]
        start = k.indices(size)[0] if isinstance(k, slice) else int(k) % size  # (slice: torch's clamped start)
        moved += start * x.strides[dim]
        dim += 1
    root, _ = storage_root(x)
    if type(root) is not np.ndarray or not root.flags.c_contiguous:
        return out
    place = x.__array_interface__["data"][0] - root.__array_interface__["data"][0] + moved
    if not 0 <= place <= root.nbytes:
        return out
    try:
        placed = np.ndarray(out.shape, out.dtype, buffer=root, offset=place, strides=out.strides)
    except (TypeError, ValueError):  # (a dtype NumPy cannot lay over raw bytes)
        return out
    if not out.flags.writeable:
        placed.flags.writeable = False
    return placed


class MadeWithoutGrad:
    """The state of a view made under no_grad or inference_mode of a root that requires grad, or
    of a view of such a view: as torch, it requires grad but has no gradient edge of its own, and
    once its root's version moves (an in-place write anywhere on the memory, even under no_grad)
    reading its grad_fn, using it in a recorded op, or writing it in place with grad enabled is
    refused: which graph it should have is ambiguous."""

    __slots__ = ("inference", "version", "of_a_view", "leaf")

    def __init__(self, inference: bool, version: int, of_a_view: bool) -> None:
        self.inference, self.version, self.of_a_view = inference, version, of_a_view
        self.leaf = False  # made a leaf by requires_grad_(): then it has its own accumulator

    def grad_fn(self, view: Tensor):
        if view._base._requires_grad and view._vbox[0] != self.version:
            raise self.refusal(view, "its base or another view of its base has been")
        return view._grad_fn

    def assigned(self, view: Tensor) -> None:
        # unlike a stale view's state, a grad_fn set on it does not end this one: it stays a view made
        # without grad, so torch's refusal still applies after its base moves on
        return None

    def accumulator(self, view: Tensor):
        if self.leaf:
            return view._leaf_accumulator()
        self.grad_fn(view)
        return None  # torch's edge to such a view is empty: its gradient goes nowhere

    def refusal(self, view: Tensor, modified: str) -> RuntimeError:
        node = view._grad_fn
        if node is not None and self.of_a_view:
            name = re.sub(r"Backward\d*$", "", type(node).__name__)
            subject = f"Output {view._output_nr} of {name} is a view of a view which was created in"
        else:
            subject = "A view was created in"
        if self.inference:
            mode, where, block = "inference mode", "in normal mode", "inference_mode"
        else:
            mode, where, block = "no_grad mode", "with grad mode enabled", "no_grad"
        return RuntimeError(
            f"{subject} {mode} and {modified} modified inplace {where}. Given that this use case is "
            "ambiguous and error-prone, it is forbidden. You can clarify your code by moving both the view "
            f"and the inplace either both inside the {block} block (if you don't want the inplace to be "
            "tracked) or both outside (if you want the inplace to be tracked).")


_DIFFERENTIABLE_KINDS = _dtype.FLOAT_KINDS + "c"


def _track_view(root: Tensor, view: Tensor) -> None:
    views = root._live_views
    if views is None:
        root._live_views = [weakref.ref(view)]
        return
    views.append(weakref.ref(view))
    count = len(views)
    if count >= 16 and not count & (count - 1):  # at each power of two drop the dead: amortised O(1)
        views[:] = [ref for ref in views if ref() is not None]


def view_as(input: Tensor, other: Tensor) -> Tensor:
    """view_as(input, other) -> Tensor

    ``input`` viewed with ``other``'s shape; ``input.view(other.size())`` (torch.Tensor.view_as)."""
    return view(input, tuple(other.shape))


def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    """reshape_as(input, other) -> Tensor

    ``input`` reshaped to ``other``'s shape, a view where possible (torch.Tensor.reshape_as)."""
    return reshape(input, tuple(other.shape))


def ravel(input: Tensor) -> Tensor:
    """ravel(input) -> Tensor

    ``input`` as a 1-d tensor: a view when it is contiguous, else a contiguous copy (torch.ravel)."""
    # torch's contiguous() then view(-1): a copy of a non-contiguous input, never a view of it
    return name_node(reshape(contiguous(input), -1), "ViewBackward0", saved=Reshape.saved_attributes)


@composite_range("aten::flatten", 3)
def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """flatten(input, start_dim=0, end_dim=-1) -> Tensor

    ``input`` with dims ``start_dim`` to ``end_dim`` merged into one, a view where possible
    (torch.flatten)."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.flatten(start_dim, end_dim)  # sparse: its method answers (kept sparse or refused, as torch)
    start_dim = check_int(start_dim, "flatten", "start_dim")
    end_dim = check_int(end_dim, "flatten", "end_dim")
    ndim = input._data.ndim
    if ndim == 0:
        _wrap_dim(start_dim, ndim, "flatten")  # a 0-d tensor takes dims -1 and 0 only
        _wrap_dim(end_dim, ndim, "flatten")
        return reshape(input, 1)
    start = _wrap_dim(start_dim, ndim, "flatten")
    end = _wrap_dim(end_dim, ndim, "flatten")
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if start == end:
        return input  # nothing to flatten: torch returns the input itself, with no node
    shape = input._data.shape
    new_shape = shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]
    return reshape(input, new_shape)


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    """unflatten(input, dim, sizes) -> Tensor

    ``input`` with dim ``dim`` split into dims of the given ``sizes`` (one may be -1) (torch.unflatten)."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.unflatten(dim, sizes)  # sparse: its method answers (kept sparse or refused, as torch)
    dim = check_int(dim, "unflatten", "dim")
    sizes = int_list(sizes, "unflatten", "sizes", sized=False)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    if input._data.ndim == 0:  # torch's dim check fails inside its kernel, and says so
        raise RuntimeError(f"unflatten got an unexpected error:\nDimension specified as {dim} but tensor has no dimensions")
    d = _wrap_dim(dim, input._data.ndim, "unflatten")
    shape = input._data.shape
    try:
        sizes = _infer_shape(sizes, shape[d], "unflatten")
    except RuntimeError as error:
        # torch rewords only infer_size's count mismatch (naming the wrapped dim); its other errors
        # (two -1s, a negative size, an ambiguous -1 on an empty dim) it passes on as "unexpected"
        if "is invalid for input of size" not in str(error):
            raise RuntimeError(f"unflatten got an unexpected error:\n{error}") from None
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {d} "
                           f"({shape[d]}) in the input tensor") from None
    return reshape(input, shape[:d] + sizes + shape[d + 1:])


class Expand(Function):
    label = "expand"
    rule = "sums the gradient over the broadcast dims"
    _array_forward = True
    saved_attributes = {"_saved_self_sym_sizes": input_sizes(0)}

    @staticmethod
    def forward(ctx, x, shape):
        xp = array_module(x)
        ctx.input_shape = x.shape
        if not x.size:  # (an empty array's strides, as torch's, for the expanded view to keep)
            x = strided_empty(x)
        lead = len(shape) - x.ndim
        repeats = not (shape[lead:] == x.shape and all(size == 1 for size in shape[:lead]))
        if type(x) is np.ndarray:
            # torch's strides (inferExpandGeometry): a repeated dim's 0, every other dim's its own,
            # a new size-1 dim's the extent of the dims inside it (NumPy gives both 0); read-only
            # where repeated, as broadcast_to's, writable otherwise (torch writes through
            # x.expand(1, *x.shape) as through x)
            return strided_view(x, shape, _expanded_strides(x, shape), writeable=not repeats)
        return xp.broadcast_to(x, shape) if repeats else x[(None,) * lead]

    @staticmethod
    def backward(ctx, grad):
        # an expanded element is used once per copy: sum the copies' gradients
        return sum_to_shape(grad, ctx.input_shape)


def _expanded_strides(x, shape: tuple) -> tuple:
    """The byte strides of ``x`` expanded to ``shape``, as torch's ``inferExpandGeometry`` gives them."""
    strides = [0] * len(shape)
    lead = len(shape) - x.ndim
    for i in range(len(shape) - 1, -1, -1):
        d = i - lead
        size = x.shape[d] if d >= 0 else 1
        if d >= 0:
            stride = x.strides[d]
        else:
            stride = shape[i + 1] * strides[i + 1] if i + 1 < len(shape) else 0  # (a 0-d input: 0, as torch)
        strides[i] = 0 if size != shape[i] else stride
    return tuple(strides)


def expand(input: Tensor, *sizes, size=None, implicit: bool = False) -> Tensor:
    """torch.Tensor.expand: -1 keeps a dim; new leading dims may be added. Returns a view.
    (``implicit`` marks, for torch's tracer, an expand that broadcasting inserted: nothing to do here.)"""
    sizes = _shape_arg(_spread_or_keyword(sizes, size, "size", "expand"), "expand")
    target = expanded_shape(input._data.shape, sizes, input._data.dtype)
    # the same shape still gives a new view with its own node, as torch's ExpandBackward0
    return _share(Expand.apply(input, shape=target), input)


def expanded_shape(shape: tuple, sizes: tuple, dtype) -> tuple:
    """The shape ``expand(*sizes)`` gives a tensor of ``shape`` and ``dtype`` (which the first error
    names), or torch's error, as its infer_expand_geometry: the ops that expand an operand before
    computing (addmm's input) check it here without recording an expand."""
    if len(sizes) < len(shape):
        raise RuntimeError(
            f"expand({_dtype.type_string(dtype)}{{{list(shape)}}}, size={list(sizes)}): "
            f"the number of sizes provided ({len(sizes)}) must be greater or equal to the "
            f"number of dimensions in the tensor ({len(shape)})"
        )
    lead = len(sizes) - len(shape)
    target = list(sizes)
    for i in reversed(range(len(sizes))):  # torch's infer_expand_geometry checks from the last dim
        s = sizes[i]
        if i < lead:
            if s == -1:  # (any other negative size reaches the element count below)
                raise RuntimeError(
                    f"The expanded size of the tensor ({s}) isn't allowed in a leading, non-existing dimension {i}")
            continue
        current = shape[i - lead]
        if s == -1:
            s = target[i] = current
        if current != s and current != 1:
            raise RuntimeError(
                f"The expanded size of the tensor ({s}) must match the existing size ({current}) at "
                f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(shape)}"
            )
    if min(target, default=0) < 0 or math.prod(target) >= 2**63:
        _check_numel(target)
    return tuple(target)


def _check_numel(sizes: list) -> None:
    """torch's element count of a shape, as its TensorImpl computes it: the sizes multiplied as
    unsigned 64-bit integers (a negative size is a huge one), refused once the product overflows
    or exceeds int64 (a zero after an overflow does not undo it)."""
    count, overflowed = 1, False
    for size in sizes:
        count *= size % 2**64
        overflowed |= count >= 2**64
        count %= 2**64
    if overflowed or count >= 2**63:
        raise RuntimeError("numel: integer multiplication overflow")


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    """expand_as(input, other) -> Tensor

    ``input`` broadcast to ``other``'s shape as a view (torch.Tensor.expand_as)."""
    return expand(input, tuple(other.shape))


def broadcast_to(input: Tensor, *sizes, size=None) -> Tensor:
    """torch.broadcast_to (``x.broadcast_to(2, 3)`` as a method, as torch's)."""
    sizes = _spread_or_keyword(sizes, size, "size", "broadcast_to")
    return expand(input, *sizes)


def broadcast_shapes(*shapes) -> tuple:
    """broadcast_shapes(*shapes) -> Size

    The shape that tensors of the given ``shapes`` broadcast to together (torch.broadcast_shapes)."""
    # torch._refs._broadcast_shapes, its walk and its texts: None is skipped, an int is a 1-d shape
    shapes = tuple((s,) if isinstance(s, numbers.Integral) else s for s in shapes if s is not None)
    if not shapes:
        return Size([])
    for shape in shapes:
        if not isinstance(shape, Sequence):
            raise RuntimeError(f"Input shapes should be of type ints, a tuple of ints, or a list of ints, got {shape}")
    common = [1] * max(len(shape) for shape in shapes)
    for position, shape in enumerate(shapes):
        for i in range(-1, -1 - len(shape), -1):
            if shape[i] == common[i]:
                continue
            if common[i] == 1:
                if shape[i] < 0:
                    raise ValueError("Attempting to broadcast a dimension with negative length!")
                common[i] = shape[i]
            if shape[i] != 1 and common[i] != shape[i]:
                raise RuntimeError(f"Attempting to broadcast a dimension of length {shape[i]} at {i}! Mismatching "
                                   f"argument at index {position} had {shape}; but expected shape should be "
                                   f"broadcastable to {common}")
    return Size(common)


def _infer_size(a: tuple, b: tuple) -> tuple:
    """torch's infer_size (ExpandUtils.cpp): the broadcast of two shapes, a mismatch reported at the
    rightmost dim where it occurs, numbered in the result."""
    ndim = max(len(a), len(b))
    result = [0] * ndim
    for i in range(ndim - 1, -1, -1):
        offset = ndim - 1 - i
        size_a = a[len(a) - 1 - offset] if len(a) - 1 - offset >= 0 else 1
        size_b = b[len(b) - 1 - offset] if len(b) - 1 - offset >= 0 else 1
        if size_a != size_b and size_a != 1 and size_b != 1:
            raise RuntimeError(f"The size of tensor a ({size_a}) must match the size of tensor b ({size_b}) at "
                               f"non-singleton dimension {i}")
        result[i] = size_b if size_a == 1 else size_a
    return tuple(result)


def broadcast_tensors(*tensors) -> tuple:
    """broadcast_tensors(*tensors) -> tuple of Tensors

    The ``tensors`` broadcast to their common shape, as views (torch.broadcast_tensors). Each
    argument is a tensor: a list or tuple of them is refused, as torch's ``TensorList`` parser does."""
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {_dtype.parser_type_name(t)}")
    # torch's expand_outplace: the shapes folded left to right by infer_size
    shape = tuple(tensors[0].shape) if tensors else ()
    for t in tensors[1:]:
        shape = _infer_size(shape, tuple(t.shape))
    shape = Size(shape)
    # torch hands back a tensor already of the broadcast shape itself, no view and no node
    return tuple(t if t.shape == shape else expand(t, shape) for t in tensors)


class Permute(Function):
    label = "permute"
    rule = "applies the inverse permutation to the gradient"
    _array_forward = True
    # the dims as given (negative ones as the C++ node's unsigned)
    saved_attributes = {"_saved_dims": SavedValue(lambda node: tuple(as_uint64(d) for d in getattr(node, "given_dims",
                                                                                                   node.dims)))}

    @staticmethod
    def forward(ctx, x, dims):
        xp = array_module(x)
        ctx.dims = dims
        if not x.size:  # (an empty array's strides, as torch's, for the view to permute)
            x = strided_empty(x)
        return xp.transpose(x, dims)

    @staticmethod
    def backward(ctx, grad):
        dims = ctx.dims
        return permute(grad, tuple(sorted(range(len(dims)), key=dims.__getitem__)))


class Transpose(Function):
    label = "transpose"
    rule = "transposes the gradient back"
    formula = "{0}ᵀ"
    _array_forward = True
    # the dims as given: torch's node saves a negative one as its C++ unsigned
    saved_attributes = {"_saved_dim0": ctx_value("swap", lambda swap: as_uint64(swap[0])),
                        "_saved_dim1": ctx_value("swap", lambda swap: as_uint64(swap[1]))}

    @staticmethod
    def forward(ctx, x, dim0, dim1):
        xp = array_module(x)
        ctx.swap = (dim0, dim1)
        if not x.size:  # (an empty array's strides, as torch's, for the view to swap)
            x = strided_empty(x)
        if type(x) is np.ndarray:  # (the method np.swapaxes calls, without its two Python frames)
            return x.swapaxes(dim0, dim1) if x.ndim else x.view()
        return xp.swapaxes(x, dim0, dim1) if x.ndim else x.view()

    @staticmethod
    def backward(ctx, grad):
        if type(grad) is Tensor and unwatched_on_plain_arrays(grad):
            # transpose's steps in a plain backward, without applying a node-less op around the
            # array: the same swap, and the result a view of ``grad`` as there
            ndim = grad._data.ndim
            dim0, dim1 = ctx.swap
            swapped = Transpose.forward(_NULL_CTX, grad._data, _wrap_dim(dim0, ndim, "transpose"),
                                        _wrap_dim(dim1, ndim, "transpose"))
            return _share(Tensor._make(swapped), grad)
        if type(ctx).__name__ == "TBackward0":  # t()'s node: torch's rule is grad.t(), recorded as t
            return name_node(transpose(grad, *ctx.swap), "TBackward0", saved=_T_SAVED)
        return transpose(grad, *ctx.swap)


def permute(input: Tensor, *spread_dims, dims=None) -> Tensor:
    """permute(input, dims) -> Tensor

    A view of ``input`` with its dims reordered as ``dims`` (torch.permute)."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.permute(*spread_dims) if dims is None else input.permute(dims)  # sparse: its method answers (kept sparse or refused, as torch)
    if not spread_dims and dims is None:
        raise TypeError('permute() missing 1 required positional arguments: "dims"')
    dims = _int_sequence(_spread_or_keyword(spread_dims, dims, "dims", "permute"), "permute", "dims")
    ndim = input._data.ndim
    if len(dims) != ndim:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {ndim} is not equal "
            f"to len(dims) = {len(dims)}"
        )
    wrapped = []
    for d in dims:  # one at a time, as torch: a repeat is reported before a later dim out of range
        wrapped.append(_wrap_dim(d, ndim, "permute"))
        if wrapped[-1] in wrapped[:-1]:
            raise RuntimeError("permute(): duplicate dims are not allowed.")
    given, dims = dims, tuple(wrapped)
    view = _share(Permute.apply(input, dims=dims), input)
    if view._grad_fn is not None and dims != tuple(given):
        view._grad_fn.given_dims = given
    return view if input._numpy_empty_strides is None else _keep_empty_strides(view, input, dims)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """transpose(input, dim0, dim1) -> Tensor

    A view of ``input`` with dims ``dim0`` and ``dim1`` swapped (torch.transpose)."""
    ndim = input._data.ndim
    # a 0-d tensor takes dims -1 and 0 and still gets a (trivial) view node, as in torch
    first, second = _wrap_dim(dim0, ndim, "transpose"), _wrap_dim(dim1, ndim, "transpose")  # torch's checks
    view = _share(Transpose.apply(input, dim0=int(dim0), dim1=int(dim1)), input)  # (NumPy swaps negative dims too)
    if input._numpy_empty_strides is None:
        return view
    order = list(range(ndim))
    if ndim:
        order[first], order[second] = second, first
    return _keep_empty_strides(view, input, order)


def _keep_empty_strides(result: Tensor, input: Tensor, order=None) -> Tensor:
    """``result`` (a copy, a view of the same shape, or a permutation by ``order``, of the empty
    ``input``) with the strides torch's keeps: the zeros of an empty NumPy array's that made ``input``
    (tensor.py ``stride``), which a fresh empty array cannot tell from the contiguous ones. A view of
    another shape gets the contiguous strides, as torch's (its computeStride of no elements)."""
    shape, strides = input._numpy_empty_strides
    if shape == input._data.shape and not result._data.size and (order is not None or result._data.shape == shape):
        result._numpy_empty_strides = (result._data.shape, strides if order is None else
                                       tuple(strides[d] for d in order))
    return result


def swapaxes(input: Tensor, axis0: int, axis1: int) -> Tensor:
    """torch.swapaxes: ``transpose`` under NumPy's parameter names."""
    return transpose(input, axis0, axis1)


def swapdims(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """torch.swapdims: ``transpose`` under another name."""
    return transpose(input, dim0, dim1)


def t(input: Tensor) -> Tensor:
    """torch.t: transpose of a <= 2-D tensor."""
    if input._data.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input._data.ndim}D")
    # dims wrapped here: transpose now records them as given, and a traced t() is transpose(x, 0, 1)
    last = input._data.ndim - 1 if input._data.ndim else 0
    if _function_module.active_dispatch is not None:  # (a mode sees aten.t, not the transpose it runs)
        _function_module.note_given(Transpose, input, t=True)
    return name_node(transpose(input, 0, last), "TBackward0", saved=_T_SAVED)  # a view node even for 0-d and 1-d, as torch


# t()'s node has no _saved_* names. One dict for every call: name_node keys its renamed classes
# by the dict's identity, so a dict made per call made a new class per call (9 us each, never freed)
_T_SAVED: dict = {}


def movedim(input: Tensor, source, destination) -> Tensor:
    """torch.movedim: move dims ``source`` to positions ``destination``; the rest keep their order."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.movedim(source, destination)  # sparse: its method answers (kept sparse or refused, as torch)
    ndim = input._data.ndim
    source = list(int_list(source, "movedim", "source"))  # torch's parser: an int or ints, within int64
    destination = list(int_list(destination, "movedim", "destination"))
    if len(source) != len(destination):
        raise RuntimeError(
            f"movedim: Invalid source or destination dims: source ({source} dims) should contain "
            f"the same number of dims as destination ({destination} dims)")
    for name, dims in (("source", source), ("destination", destination)):
        wrapped = [_wrap_dim(d, ndim, "movedim") for d in dims]
        if len(set(wrapped)) != len(wrapped):
            raise RuntimeError(f"movedim: repeated dim in `{name}` ({dims})")
    if ndim == 0:  # a 0-d tensor takes dims -1 and 0, and moving them changes nothing
        return permute(input, ())
    order = [d for d in range(ndim) if d not in [_wrap_dim(s, ndim) for s in source]]
    for dest, src in sorted(zip([_wrap_dim(d, ndim) for d in destination], [_wrap_dim(s, ndim) for s in source])):
        order.insert(dest, src)
    return permute(input, tuple(order))


def squeeze(input: Tensor, dim=None, *more_dims) -> Tensor:
    """Remove size-1 dims (all, one, or a tuple of them, which torch's method also takes spread:
    ``x.squeeze(0, 2)``); other dims are left alone."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.squeeze(dim, *more_dims)  # sparse: its method answers (kept sparse or refused, as torch)
    if more_dims:
        dim = (dim, *more_dims)
    if isinstance(dim, np.integer):  # a NumPy int is an int to torch's parser (the cache keys on Python ints)
        dim = int(dim)
    shape = input._data.shape
    if dim is None:
        dims = tuple(i for i, s in enumerate(shape) if s == 1)
    else:
        dims = (_unique_dims(dim, len(shape), "squeeze") if isinstance(dim, (tuple, list))
                else (_wrap_dim(dim, len(shape), "squeeze"),))  # 0-d takes -1 and 0
        dims = tuple(d for d in dims if shape and shape[d] == 1)
    # torch's overloads: squeeze() / squeeze(int) / squeeze(tuple)
    overload = 0 if dim is None else 1 if isinstance(dim, int) else 2
    key = (overload, None if dim is None else dim if overload == 1 else tuple(dim))
    saved = _SQUEEZE_SAVED.get(key) or _SQUEEZE_SAVED.setdefault(key, _squeeze_saved(*key))
    if _function_module.active_dispatch is not None:  # (a mode sees which overload was called)
        _function_module.note_given(SqueezeView, input, given_dims=dim)
    result = name_node(_reshape_to(input, tuple(s for i, s in enumerate(shape) if i not in dims), SqueezeView,
                                   dims=tuple(sorted(dims))), f"SqueezeBackward{overload}", saved=saved)
    data, array = result._data, input._data
    if type(data) is np.ndarray and type(array) is np.ndarray and 1 in data.shape and data.size \
            and np.may_share_memory(data, array):
        # torch's squeeze drops dims and keeps the others' strides (a view's own, for a size-1 one too)
        strides = tuple(st for i, st in enumerate(array.strides) if i not in dims)
        if data.strides != strides:
            result._data = strided_view(data, data.shape, strides)
    return result


def _squeeze_saved(overload: int, dim) -> dict:
    """torch's _saved_* of a squeeze node: the input's sizes and, but for squeeze(), the dim(s)
    as given (a negative one as the C++ node's unsigned)."""
    if overload == 0:
        return Reshape.saved_attributes
    return {"_saved_dim": _as_unsigned(dim) if overload == 1 else tuple(_as_unsigned(d) for d in dim),
            "_saved_self_sym_sizes": input_sizes(0)}


# one declaration per distinct dim argument (name_node makes a node class per declaration)
_SQUEEZE_SAVED: dict = {}


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """unsqueeze(input, dim) -> Tensor

    A view of ``input`` with a size-1 dim inserted at ``dim`` (torch.unsqueeze)."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.unsqueeze(dim)  # sparse in, sparse out, as the method
    ndim = input._data.ndim
    d = _wrap_dim(dim, ndim + 1, "unsqueeze")
    shape = input._data.shape
    # torch's _saved_dim is the dim as given (a negative one as the C++ node's unsigned)
    given = int(dim)
    saved = _UNSQUEEZE_SAVED.get(given) or _UNSQUEEZE_SAVED.setdefault(given, {"_saved_dim": as_uint64(given)})
    result = _reshape_to(input, shape[:d] + (1,) + shape[d:], UnsqueezeView, dim=given)
    if result._grad_fn is not None:  # (name_node leaves an unrecorded output as it is)
        name_node(result, "UnsqueezeBackward0", label="unsqueeze", saved=saved)
    data, array = result._data, input._data
    if type(data) is not np.ndarray or type(array) is not np.ndarray:
        return result
    kept = input._numpy_empty_strides
    if kept is not None and kept[0] == shape:  # (an empty NumPy array's, transformed as torch's unsqueeze does)
        result._numpy_empty_strides = (data.shape, kept[1][:d] + (shape[d] * kept[1][d] if d < ndim else 1,) + kept[1][d:])
        return result
    if not data.size:  # torch's strides over an empty tensor's (NumPy's are zeros)
        array = strided_empty(array)
    # torch's strides: the input's (NumPy's reshape redoes a size-1 dim's), and for the new dim
    # the extent of the dim it goes before (1 at the end); a view's only (memory tested last: the
    # strides mostly agree already)
    stride = array.shape[d] * array.strides[d] if d < ndim else array.itemsize
    strides = array.strides[:d] + (stride,) + array.strides[d:]
    if data.strides != strides and (not data.size or np.may_share_memory(data, array)):
        result._data = strided_view(data, data.shape, strides)
    return result


# torch's _saved_dim of unsqueeze, one declaration per dim (name_node makes a node class per one)
_UNSQUEEZE_SAVED: dict = {}


def _each_at_least(one, tensors: tuple, op: str):
    """torch.atleast_Nd's calling forms: one tensor gives a tensor; several, or one tuple or list
    of them, give a tuple; no argument gives ()."""
    if len(tensors) == 1 and isinstance(tensors[0], Tensor):
        return one(tensors[0])
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    elif len(tensors) == 1:
        check_as(op, tensors[0])  # (refused: neither a tensor nor a list)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {_dtype.parser_type_name(t)}")
    return tuple(one(t) for t in tensors)


def atleast_1d(*tensors):
    """torch.atleast_1d: a 0-d tensor as shape (1,), others as they are."""
    return _each_at_least(_atleast_1d, tensors, "atleast_1d")


def atleast_2d(*tensors):
    """torch.atleast_2d: 0-d -> (1, 1), (n,) -> (1, n), others as they are."""
    return _each_at_least(_atleast_2d, tensors, "atleast_2d")


def _atleast_1d(input: Tensor) -> Tensor:
    return reshape(input, 1) if input._data.ndim == 0 else input


def _atleast_2d(input: Tensor) -> Tensor:
    if input._data.ndim >= 2:
        return input
    if input._data.ndim:
        return unsqueeze(input, 0)
    return name_node(reshape(input, (1, 1)), "ViewBackward0")


class Clone(Function):
    label = "clone"
    rule = "passes the gradient through unchanged"
    _array_forward = True

    @staticmethod
    def forward(ctx, x, channels_last: bool = False, preserve_format: bool = False):
        if preserve_format:
            return copy_preserving_format(x)
        if channels_last:
            # channels-last: the same (N, C, ...) shape over memory laid out (N, ..., C), as torch's;
            # always a copy (ascontiguousarray would hand a channels-last input's own memory back)
            xp = array_module(x)
            out = xp.moveaxis(xp.moveaxis(x, 1, -1).copy(), -1, 1)
            if not out.size and type(out) is np.ndarray:  # NumPy zeroes an empty copy's strides; torch's are kept
                out = strided_view(out, out.shape, channels_last_strides(out.shape, out.itemsize))
            return out
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


# torch.channels_last is for 4-d tensors, torch.channels_last_3d for 5-d
_CHANNELS_LAST_RANK = {"channels_last": 4, "channels_last_3d": 5}


def _channels_last_rank(input: Tensor, memory_format) -> int | None:
    """The rank ``memory_format`` asks for when it is a channels-last format (else None), after
    checking ``input`` has it, as torch does (with torch's message word for word, whichever op
    asks: a program that prints it prints what torch prints)."""
    rank = _CHANNELS_LAST_RANK.get(getattr(memory_format, "_name", None))
    if rank is not None and input._data.ndim != rank:
        raise RuntimeError(f"required rank {rank} tensor to use {memory_format._name} format")
    return rank


def is_channels_last(array) -> bool:
    """Whether ``array`` (N, C, ...) is laid out channels-last in memory: (N, ..., C) C-contiguous."""
    return array.ndim >= 3 and array_module(array).moveaxis(array, 1, -1).flags.c_contiguous


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    """A copy that stays in the graph (gradient passes through unchanged); channels-last when
    ``memory_format`` asks for it. preserve_format (the default) keeps a dense input's strides
    (a transposed or channels-last one's), and gives any other dense strides in its stride order, as torch's."""
    if _channels_last_rank(input, memory_format):
        return Clone.apply(input, channels_last=True)
    if getattr(memory_format, "_name", "preserve_format") != "preserve_format":
        return Clone.apply(input)
    result = Clone.apply(input, preserve_format=True)
    return result if input._numpy_empty_strides is None else _keep_empty_strides(result, input)


def contiguous(input: Tensor, memory_format=None) -> Tensor:
    """``input`` itself when already laid out as ``memory_format`` asks (C-contiguous by default,
    or channels-last), else a copy in that layout, in the graph."""
    if _channels_last_rank(input, memory_format):
        if is_channels_last(input._data) and (input._data.size or input.is_contiguous(memory_format=memory_format)):
            return input  # (an empty tensor is channels-last by its strides, which NumPy's flags ignore)
        return Clone.apply(input, channels_last=True)
    if input._data.flags.c_contiguous:
        return input
    return Clone.apply(input)


def _as_unsigned(dim: int) -> int:
    """A dim as torch's C++ node keeps it (``_saved_dim`` of split, unbind and stack): unsigned 64-bit."""
    return dim % (1 << 64)


class Cat(Function):
    label = "cat"
    rule = "slices the gradient back into the pieces"
    _array_forward = True
    saved_attributes = {"_saved_dim": SavedValue(lambda node: as_uint64(getattr(node, "given_dim", node.dim)))}

    @staticmethod
    def forward(ctx, *arrays, dim, skipped=()):
        xp = array_module(*arrays)
        ctx.dim = dim
        ctx.skipped = skipped
        joined = [a for i, a in enumerate(arrays) if i not in skipped]
        ctx.sizes = [a.shape[dim] for a in joined]
        out = xp.concatenate(joined, axis=dim)
        # torch's cat output is channels-last where every input suggests it, else contiguous
        # whatever the inputs' layouts (NumPy follows theirs)
        if out.ndim in (4, 5) and all(a.ndim == out.ndim and suggests_channels_last(a) for a in arrays):
            return channels_last(out)
        return xp.asarray(out, order="C")

    @staticmethod
    def backward(ctx, grad):
        # each input gets back its own slab of the gradient; a skipped legacy empty (0,) input
        # gets an empty gradient, as in torch (its .grad is set, not left None)
        xp = array_module(grad)
        slabs = iter(split(grad, ctx.sizes, ctx.dim))
        return tuple(Tensor._make(xp.zeros((0,), grad._data.dtype)) if i in ctx.skipped else next(slabs)
                     for i in range(len(ctx.sizes) + len(ctx.skipped)))


def _tensor_list(tensors, op: str) -> list:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}(): argument 'tensors' must be tuple of Tensors, not {type(tensors).__name__}")
    if len(tensors) == 0:
        if op == "cat":
            raise ValueError("torch.cat(): expected a non-empty list of Tensors")
        raise RuntimeError(f"{op} expects a non-empty TensorList")
    for position, item in enumerate(tensors):
        if not isinstance(item, Tensor):
            raise TypeError(f"expected Tensor as element {position} in argument 0, but got {type(item).__name__}")
    return list(tensors)


@out_rule("cat")
def cat(tensors, dim: int = 0, *, out=None) -> Tensor:
    """torch.cat: join along an existing dim; all other dims must match; dtypes promote."""
    every = _tensor_list(tensors, "cat")
    if every[0].__class__ in SPARSE_COO_TYPES and out is None:
        return every[0]._cat(every, dim)  # sparse in, sparse out, as torch
    # torch skips legacy empty 1-D tensors of shape (0,) when joining (they still get a gradient)
    skipped = tuple(i for i, t in enumerate(every) if t._data.ndim == 1 and t._data.shape[0] == 0)
    all_skipped = len(skipped) == len(every)
    if all_skipped:
        skipped = skipped[1:]
    tensors = [t for i, t in enumerate(every) if i not in skipped]
    ref = tensors[0]
    if ref._data.ndim == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    # with nothing but legacy empties torch joins them without looking at dim
    d = 0 if all_skipped else _wrap_dim(dim, ref._data.ndim, "cat")
    for i, t in enumerate(tensors):
        if t._data.ndim != ref._data.ndim:
            raise RuntimeError(
                f"Tensors must have same number of dimensions: got {ref._data.ndim} and {t._data.ndim}")
        for k, (a, b) in enumerate(zip(ref._data.shape, t._data.shape)):
            if k != d and a != b:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {d}. Expected size {a} but got "
                    f"size {b} for tensor number {i} in the list.")
    first = every[0]._data.dtype
    for t in every:
        if t._data.dtype is not first:
            dtype = _dtype.result_type(*every)  # the skipped empties count in the promotion, as in torch
            every = [_cast(t, dtype) for t in every]
            break
    if _function_module.active_dispatch is not None and dim != d:  # (a mode sees the dim as given: cat(xs, -1))
        _function_module.note_given(Cat, every[0], given_dim=dim)
    return _keep_given_dim(Cat.apply(*every, dim=d, skipped=skipped), dim)


concat = concatenate = cat


@out_rule("cat")
def stack(tensors, dim: int = 0, *, out=None) -> Tensor:
    """torch.stack: join along a new dim; all shapes must be equal."""
    tensors = _tensor_list(tensors, "stack")
    if tensors[0].__class__ in SPARSE_COO_TYPES and out is None:
        return tensors[0]._stack(tensors, dim)  # sparse in, sparse out, as torch
    shape = tensors[0]._data.shape
    d = _wrap_dim(dim, len(shape) + 1, "stack")
    for i, t in enumerate(tensors):
        if t._data.shape != shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 and "
                f"{list(t._data.shape)} at entry {i}")
    return Stack.apply(*tensors, dim=d, given_dim=dim, dtype=_dtype.result_type(*tensors).np)


class Stack(Function):
    """torch.stack as torch records it: one StackBackward0 node with an edge straight to each input
    (no per-input unsqueeze, no cast node for an input of another dtype — its gradient comes back
    in its own dtype, cast by the engine as for any input)."""

    _array_forward = True
    node_name = "StackBackward0"
    label = "stack"
    rule = "hands each input its slice of the gradient along the new dim"
    saved_attributes = {"_saved_dim": ctx_value("given_dim", _as_unsigned)}

    @staticmethod
    def forward(ctx, *arrays, dim, given_dim, dtype):
        ctx.dim, ctx.given_dim = dim, given_dim
        xp = array_module(*arrays)
        same = [a if a.dtype == dtype else _dtype.cast_array(a, dtype) for a in arrays]
        ndim = same[0].ndim
        if dim < ndim and ndim in (4, 5) and type(same[0]) is np.ndarray \
                and all(a.ndim == ndim and suggests_channels_last(a) for a in same):
            # torch stacks along an existing dim as a view of their cat, which is channels-last
            # for channels-last inputs (Cat.forward)
            joined = channels_last(xp.concatenate(same, axis=dim))
            shape = joined.shape[:dim] + (len(same), joined.shape[dim] // len(same)) + joined.shape[dim + 1:]
            strides = _view_strides(joined.shape, joined.strides, shape)
            if strides is not None:
                return strided_view(joined, shape, strides)
        # C order whatever the inputs' layouts (NumPy follows theirs): torch's stack output is otherwise contiguous
        return xp.asarray(xp.stack(same, axis=dim), order="C")

    @staticmethod
    def backward(ctx, grad):
        return unbind(grad, ctx.dim)


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """torch.split: equal chunks of ``split_size`` (last may be smaller) or explicit sizes."""
    if tensor.__class__ in SPARSE_COO_TYPES:
        return tensor.split(split_size_or_sections, dim)  # sparse: its method refuses, as torch
    if isinstance(split_size_or_sections, Tensor):
        # torch's Tensor.split reads a one-element tensor as int(size); any other is no list of ints
        if split_size_or_sections.numel() != 1:
            raise TypeError("split_with_sizes(): argument 'split_sizes' (position 2) must be tuple of ints, not Tensor")
        split_size_or_sections = int(split_size_or_sections.item())
    if tensor._data.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    if isinstance(split_size_or_sections, int):  # torch's parser: within int64 (ValueError beyond)
        check_as("split", tensor, split_size_or_sections, dim)
    elif isinstance(split_size_or_sections, (tuple, list)) or not isinstance(split_size_or_sections, Tensor):
        # anything but an int goes to torch's split_with_sizes, whose parser takes ints only
        check_as("split_with_sizes", tensor, split_size_or_sections, dim)
        split_size_or_sections = int_list(split_size_or_sections, "split_with_sizes", "split_sizes", sized=False)
    if isinstance(split_size_or_sections, int) and split_size_or_sections < 0:
        raise RuntimeError(f"split expects split_size be non-negative, but got split_size={split_size_or_sections}")
    d = _wrap_dim(dim, tensor._data.ndim, "split")
    length = tensor._data.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0 and length:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {length}")
        # an empty dim still splits into one empty piece, as torch
        sizes = ([size] * (length // size) + ([length % size] if length % size else [])) or [0] if size else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes):
            raise RuntimeError(f"split_with_sizes expects split_sizes have only non-negative entries, but got "
                               f"split_sizes={sizes}")
        if sum(sizes) != length:  # the dimension as the caller gave it (-1 stays -1), as torch's
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {length} (input tensor's size "
                f"at dimension {int(dim)}), but got split_sizes={sizes}")
    if isinstance(split_size_or_sections, int):
        pieces = Split.apply(tensor, sizes=sizes, dim=d, given_dim=dim, split_size=split_size_or_sections)
    else:
        pieces = SplitWithSizes.apply(tensor, sizes=sizes, dim=d, given_dim=dim, split_size=tuple(sizes))
    return _share_pieces(pieces, tensor)


def _split_method(self: Tensor, split_size, dim: int = 0) -> tuple:
    return split(self, split_size, dim)


_split_method.__name__, _split_method.__qualname__ = "split", "Tensor.split"  # named as torch's in errors


def _share_pieces(pieces, input: Tensor) -> tuple:
    """The outputs of a multi-output view function (unbind, split) made views of ``input``, marked as
    such when recorded: torch refuses to write them, or any view of them, in place."""
    for piece in pieces:
        _share(piece, input)
        if piece._grad_fn is not None:
            piece._multi_output_view = True
    return pieces


class Split(Function):
    """torch.split / chunk with one size: one node whose outputs, views of the input, are
    numbered 0..n-1 as torch's (so a consumer's edge says which piece it took)."""

    _array_forward = True
    node_name = "SplitBackward0"
    label = "split"
    rule = "joins the pieces' gradients back along dim (zeros for a piece not used)"
    saved_attributes = {"_saved_dim": ctx_value("given_dim", _as_unsigned), "_saved_self_sym_sizes": input_sizes(0),
                        "_saved_split_size": ctx_value("split_size")}

    @staticmethod
    def forward(ctx, x, sizes, dim, given_dim, split_size):
        ctx.dim, ctx.given_dim, ctx.split_size = dim, given_dim, split_size
        lead = (slice(None),) * dim
        pieces, start = [], 0
        for size in sizes:
            key = lead + (slice(start, start + size),)
            pieces.append(torch_empty_slice(x, key, x[key]) if not size else x[key])
            start += size
        return tuple(pieces)

    @staticmethod
    def backward(ctx, *grads):
        if _joinable_on_arrays(grads, ctx.dim):
            # cat's steps in a plain backward, without applying a node-less op around the arrays
            return Tensor._make(Cat.forward(_NULL_CTX, *[g._data for g in grads], dim=ctx.dim))
        return cat(list(grads), ctx.dim)


def _joinable_on_arrays(grads: tuple, dim: int) -> bool:
    """Whether ``cat(grads, dim)`` would only join the arrays, unrecorded and unwatched: plain
    tensors over NumPy arrays, or GPU arrays of one GPU, of one dtype and rank (no legacy empty (0,)
    one, which cat skips), of one shape but along ``dim`` (else cat raises torch's error, which it
    then does)."""
    first = grads[0]
    if type(first) is not Tensor or not unwatched_on_plain_arrays(first):
        return False
    kind = type(first._data)
    gpu = None if kind is np.ndarray else first._data.device.id
    dtype, shape = first._data.dtype, first._data.shape
    if not 0 <= dim < len(shape) or (len(shape) == 1 and shape[0] == 0):
        return False
    for g in grads:
        if type(g) is not Tensor:
            return False
        array = g._data
        if type(array) is not kind or array.dtype is not dtype or len(array.shape) != len(shape) or (
                array.shape[:dim] != shape[:dim] or array.shape[dim + 1:] != shape[dim + 1:]) or (
                len(shape) == 1 and array.shape[0] == 0) or (gpu is not None and array.device.id != gpu):
            return False
    return True


class SplitWithSizes(Split):
    node_name = "SplitWithSizesBackward0"
    saved_attributes = {"_saved_dim": ctx_value("given_dim", _as_unsigned), "_saved_self_sym_sizes": input_sizes(0),
                        "_saved_split_sizes": ctx_value("split_size")}


class Unbind(Function):
    """torch.unbind: one node whose outputs, the input's slices along dim, are numbered 0..n-1."""

    _array_forward = True
    node_name = "UnbindBackward0"
    label = "unbind"
    rule = "stacks the slices' gradients back along dim (zeros for a slice not used)"
    saved_attributes = {"_saved_dim": ctx_value("given_dim", _as_unsigned)}

    @staticmethod
    def forward(ctx, x, dim, given_dim):
        ctx.dim, ctx.given_dim = dim, given_dim
        lead = (slice(None),) * dim
        # the trailing Ellipsis keeps a 1-d input's slices 0-d views of it (a bare integer index
        # gives NumPy scalars, copies that a later write to the input would not reach)
        return tuple(x[lead + (i, Ellipsis)] for i in range(x.shape[dim]))

    @staticmethod
    def backward(ctx, *grads):
        return stack(list(grads), ctx.dim)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """torch.chunk: at most ``chunks`` pieces of ceil(size / chunks)."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.chunk(chunks, dim)  # sparse: its method answers (kept sparse or refused, as torch)
    if input._data.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = _wrap_dim(dim, input._data.ndim, "chunk")
    length = input._data.shape[d]
    chunks = int(chunks)  # a NumPy int too: the size computed from it goes to split, which takes Python ints
    size = -(-length // chunks) if length else 0
    # (torch's chunk splits along the dim as given, which its node keeps)
    if size == 0:
        return tuple(split(input, [0] * chunks if length == 0 else [length], dim))
    return split(input, size, dim)


def unbind(input: Tensor, dim: int = 0) -> tuple:
    """torch.unbind: the slices along ``dim``, each without that dim."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.unbind(dim)  # sparse: its method keeps the pieces sparse, as torch
    if input._data.ndim == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    d = _wrap_dim(dim, input._data.ndim, "unbind")
    return _share_pieces(Unbind.apply(input, dim=d, given_dim=dim), input)


def atleast_3d(*tensors):
    """torch.atleast_3d: 0-d -> (1, 1, 1), (n,) -> (1, n, 1), (m, n) -> (m, n, 1)."""
    return _each_at_least(_atleast_3d, tensors, "atleast_3d")


def _atleast_3d(input: Tensor) -> Tensor:
    shape = input._data.shape
    if len(shape) >= 3:
        return input
    if not shape:
        return name_node(reshape(input, (1, 1, 1)), "ViewBackward0")
    # torch's compositions (their strides and graph): unsqueeze(0).unsqueeze(-1) of 1-D, unsqueeze(-1) of 2-D
    return unsqueeze(unsqueeze(input, 0) if len(shape) == 1 else input, -1)


# ---------------------------------------------------------------- copies: repeat, flip, roll, tril
class Repeat(Function):
    label = "repeat"
    rule = "sums the gradient over the repeated copies"
    _array_forward = True
    saved_attributes = {"_saved_repeats": ctx_value("repeats"), "_saved_self_sym_sizes": input_sizes(0)}

    @staticmethod
    def forward(ctx, x, repeats):
        xp = array_module(x)
        padded = (1,) * (len(repeats) - x.ndim) + x.shape
        ctx.input_shape = x.shape
        ctx.padded = padded
        ctx.repeats = repeats
        return xp.tile(x.reshape(padded), repeats)

    @staticmethod
    def backward(ctx, grad):
        # each input element appears once per tile, summed as torch's repeat_backward sums it (so a
        # recorded backward has its nodes): the new leading dims one at a time, then the gradient
        # viewed as (r0, s0, r1, s1, ...), without the axes of repeats of 1, summed over the tile axes
        if 0 in ctx.repeats:
            return grad.new_zeros(ctx.input_shape)
        leading = len(ctx.repeats) - len(ctx.input_shape)
        for _ in range(leading):
            grad = grad.sum(0)
        grad_size, tile_dims = [], []
        for repeat, size in zip(ctx.repeats[leading:], ctx.input_shape):
            if repeat != 1:
                tile_dims.append(len(grad_size))
                grad_size.append(repeat)
            grad_size.append(size)
        return grad.reshape(grad_size).sum(tile_dims) if tile_dims else grad


def repeat(input: Tensor, *sizes, repeats=None) -> Tensor:
    """torch.Tensor.repeat: tile the tensor ``sizes[i]`` times along dim i (new leading dims allowed)."""
    sizes = _shape_arg(_spread_or_keyword(sizes, repeats, "repeats", "repeat"), "repeat")
    if len(sizes) < input._data.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of "
                           "dimensions of tensor")
    # torch checks the result's sizes: a negative repeat of an empty dim makes an empty dim
    padded = (1,) * (len(sizes) - input._data.ndim) + input._data.shape
    result = [n * r for n, r in zip(padded, sizes)]
    if any(n < 0 for n in result):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(result)}: {result}")
    return Repeat.apply(input, repeats=tuple(max(r, 0) for r in sizes))


def tile(input: Tensor, *spread_dims, dims=None) -> Tensor:
    """torch.tile: like repeat, but fewer ``dims`` than the tensor's are padded with leading 1s
    (torch's method also takes them spread: ``x.tile(2, 2)``)."""
    dims = _spread_or_keyword(spread_dims, dims, "dims", "tile")
    dims = dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims
    dims = (dims,) if isinstance(dims, int) else tuple(int(d) for d in dims)
    dims = (1,) * (input._data.ndim - len(dims)) + dims
    return repeat(input, dims)


def _unique_dims(dims, ndim: int, op: str) -> tuple:
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    wrapped = tuple(_wrap_dim(d, ndim, op) for d in dims)
    for d in wrapped:
        if wrapped.count(d) > 1:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    return wrapped


def _given_dims(node) -> tuple:
    return tuple(as_uint64(d) for d in getattr(node, "given_dims", node.dims))


class Flip(Function):
    label = "flip"
    rule = "flips the gradient back"
    _array_forward = True
    # torch's names; the dims as given (a negative one as the C++ node's unsigned)
    saved_attributes = {"_saved_dims": SavedValue(_given_dims)}

    @staticmethod
    def forward(ctx, x, dims):
        xp = array_module(x)
        ctx.dims = dims
        # order="K" keeps the input's layout, as torch's flip does for non-contiguous inputs
        return xp.flip(x, dims).copy(order="K") if dims else x.copy(order="K")

    @staticmethod
    def backward(ctx, grad):
        # a permutation of the elements: flip the gradient back
        return flip(grad, ctx.dims)


def _flip_dims(value, position: int | None, method: bool = False) -> tuple:
    """flip's ``dims`` parsed as torch's ``IntArrayRef`` argument: a tuple or list of ints; a lone
    int only where the Tensor method took it positionally (``x.flip(1)``), the function refusing it
    with torch's TypeError. ``position`` counts from 1 as torch names it (None: given by keyword)."""
    argument = "'dims'" if position is None else f"'dims' (position {position})"
    if not isinstance(value, (tuple, list)):
        if method and position is not None and not isinstance(value, (bool, np.bool_)):
            try:
                return (operator.index(value),)
            except TypeError:
                pass
        raise TypeError(f"flip(): argument {argument} must be tuple of ints, not {_dtype.parser_type_name(value)}")
    dims = []
    for i, item in enumerate(value):
        try:
            # torch's parser checks only the first element's type for a bool
            if i == 0 and isinstance(item, (bool, np.bool_)):
                raise TypeError
            dims.append(operator.index(item))
        except TypeError:
            if i == 0:
                raise TypeError(f"flip(): argument {argument} must be tuple of ints, but found element of type "
                                f"{_dtype.parser_type_name(item)} at pos 0") from None
            raise TypeError(f"flip(): argument 'dims' failed to unpack the object at pos {i + 1} with error "
                            f'"type must be tuple of ints,but got {_dtype.parser_type_name(item)}"') from None
    return tuple(dims)


def flip(input: Tensor, *args, **kwargs) -> Tensor:
    """flip(input, dims) -> Tensor

    torch.flip: reverse the order along ``dims``, a tuple or list of ints (a copy, as in torch).
    (``dims`` is taken apart from ``*args`` only to name its position in torch's errors.)"""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.flip(*args, **kwargs)  # sparse: its method answers (kept sparse or refused, as torch)
    if len(args) > 1:
        raise TypeError(f"flip() takes 2 positional arguments but {len(args) + 1} were given")
    if args and "dims" in kwargs:
        raise TypeError("flip() got multiple values for argument 'dims'")
    if args:
        dims = _flip_dims(args[0], position=2)
    elif "dims" in kwargs:
        dims = _flip_dims(kwargs.pop("dims"), position=None)
    else:
        raise TypeError('flip() missing 1 required positional arguments: "dims"')
    if kwargs:
        raise TypeError(f"flip() got an unexpected keyword argument '{next(iter(kwargs))}'")
    return _flip(input, dims)


def _flip_method(self: Tensor, *dims, **kwargs) -> Tensor:
    """Tensor.flip: as torch.flip, but the dims may also come as several ints or one
    (``x.flip(0, 1)``, ``x.flip(1)``), as torch's method takes them."""
    if "dims" in kwargs:
        if dims:
            raise TypeError("flip() got multiple values for argument 'dims'")
        dims = _flip_dims(kwargs.pop("dims"), position=None)
    elif not dims:
        if not kwargs:
            raise TypeError('flip() missing 1 required positional arguments: "dims"')
    else:
        dims = _flip_dims(dims[0] if len(dims) == 1 else dims, position=1, method=True)
    if kwargs:
        raise TypeError(f"flip() got an unexpected keyword argument '{next(iter(kwargs))}'")
    return _flip(self, dims)


def _flip(input: Tensor, dims: tuple) -> Tensor:
    given = dims
    dims = _unique_dims(dims, input._data.ndim, "flip")
    out = Flip.apply(input, dims=dims if input._data.ndim else ())
    if out._grad_fn is not None:
        out._grad_fn.given_dims = given
    return out


def fliplr(input: Tensor) -> Tensor:
    """torch.fliplr: flip dim 1 of a tensor with at least 2 dims."""
    if input._data.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, (1,))


def flipud(input: Tensor) -> Tensor:
    """torch.flipud: flip dim 0 of a tensor with at least 1 dim."""
    if input._data.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, (0,))


def _rolled_channels_last(x, shifts, dims) -> bool:
    """Whether torch's roll of ``x`` along ``dims`` is channels-last: torch rolls one dim at a time
    as the cat of two narrows of it (the last ``shift`` elements, then the rest), and cat's output
    is channels-last when both pieces suggest it, so a piece of length 0 (a shift by a multiple of
    the dim's size, a size-1 batch rolled) makes it contiguous. (The flattened roll is contiguous.)"""
    shifts = (shifts,) if isinstance(shifts, int) else shifts
    dims = (dims,) if isinstance(dims, int) else dims
    for shift, d in zip(shifts, dims):
        size = x.shape[d]
        start = (size - shift) % size if size else 0
        before = (slice(None),) * (d % x.ndim)
        if not (suggests_channels_last(x[(*before, slice(start, size))])
                and suggests_channels_last(x[(*before, slice(0, start))])):
            return False
    return True


class Roll(Function):
    label = "roll"
    rule = "rolls the gradient back"
    _array_forward = True
    # torch's names: the dims as given, () without them, and the shifts as a tuple
    saved_attributes = {"_saved_dims": SavedValue(lambda node: tuple(as_uint64(d) for d in getattr(node, "given_dims", ()))),
                        "_saved_shifts": SavedValue(lambda node: tuple(as_uint64(s) for s in (
                            (node.shifts,) if isinstance(node.shifts, int) else node.shifts)))}

    @staticmethod
    def forward(ctx, x, shifts, dims):
        xp = array_module(x)
        ctx.shifts = shifts
        ctx.dims = dims
        rolled = xp.roll(x, shifts, axis=dims)
        if dims is not None and x.ndim in (4, 5) and _rolled_channels_last(x, shifts, dims):
            return channels_last(rolled)
        return xp.asarray(rolled, order="C")

    @staticmethod
    def backward(ctx, grad):
        # roll back by the opposite shifts
        shifts = -ctx.shifts if isinstance(ctx.shifts, int) else tuple(-s for s in ctx.shifts)
        if _function_module.active_dispatch is not None:  # (a mode sees torch's roll(grad, -shifts, dims as given))
            _function_module.note_given(Roll, grad, given_dims=getattr(ctx, "given_dims", ctx.dims))
        return Roll.apply(grad, shifts=shifts, dims=ctx.dims)


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """torch.roll: shift elements cyclically along ``dims``; without dims, over the flattened tensor."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.roll(shifts, dims)  # sparse: its method answers (kept sparse or refused, as torch)
    shifts = int_list(shifts, "roll", "shifts", position=2)
    if not shifts:
        raise RuntimeError("`shifts` required")
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        return Roll.apply(input, shifts=shifts[0], dims=None)
    dims = int_list(dims, "roll", "dims", position=3)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    if input._data.size == 0:  # torch returns an empty tensor as it is, without checking dims
        return Roll.apply(input, shifts=0, dims=None)
    if input._data.ndim == 0:
        raise IndexError(f"Dimension specified as {dims[0]} but tensor has no dimensions")
    given = dims
    dims = tuple(_wrap_dim(d, input._data.ndim, "roll") for d in dims)
    if _function_module.active_dispatch is not None:  # (a mode sees the dims as given: roll(x, [1], [-1]))
        _function_module.note_given(Roll, input, given_dims=given)
    out = Roll.apply(input, shifts=shifts, dims=dims)
    if out._grad_fn is not None:
        out._grad_fn.given_dims = given
    return out


class Tril(Function):
    label = "tril"
    rule = "keeps the gradient's lower triangle"
    _array_forward = True
    saved_attributes = {"_saved_diagonal": ctx_value("diagonal", as_uint64)}

    @staticmethod
    def forward(ctx, x, diagonal, upper):
        xp = array_module(x)
        ctx.diagonal = diagonal
        ctx.upper = upper
        out = xp.triu(x, diagonal) if upper else xp.tril(x, diagonal)
        return xp.asarray(out, order="C")  # torch's tril/triu output is contiguous

    @staticmethod
    def backward(ctx, grad):
        # the kept triangle passes its gradient, the zeroed one gets none
        return Tril.apply(grad, diagonal=ctx.diagonal, upper=ctx.upper)


class Triu(Tril):
    """Tril's rule under its own class, so the node is named TriuBackward0 as in torch."""

    label = "triu"
    rule = "keeps the gradient's upper triangle"


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """torch.tril: keep the lower triangle (on and below ``diagonal``) of the last two dims."""
    diagonal = check_int(diagonal, "tril", "diagonal", position=2)
    if input._data.ndim < 2:
        raise RuntimeError("tril: input tensor must have at least 2 dimensions")
    return Tril.apply(input, diagonal=diagonal, upper=False)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """torch.triu: keep the upper triangle (on and above ``diagonal``) of the last two dims."""
    diagonal = check_int(diagonal, "triu", "diagonal", position=2)
    if input._data.ndim < 2:
        raise RuntimeError("triu: input tensor must have at least 2 dimensions")
    return Triu.apply(input, diagonal=diagonal, upper=True)


# ---------------------------------------------------------------- views: narrow, select, unfold
def narrow(input: Tensor, dim: int, start, length: int) -> Tensor:
    """torch.narrow: the view ``input[..., start:start + length, ...]`` along ``dim``."""
    if input._data.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    length = check_int(length, "narrow", "length")
    if not isinstance(start, Tensor):
        start = check_int(start, "narrow", "start")
    if length < 0:  # torch checks the length before the dim
        raise RuntimeError("narrow(): length must be non-negative.")
    d = _wrap_dim(dim, input._data.ndim, "narrow")
    size = input._data.shape[d]
    if isinstance(start, Tensor) and (start._data.ndim != 0 or start._data.dtype.kind not in "iu"):
        raise RuntimeError("start must be an 0-dim integral Tensor.")
    start = int(start)
    if not -size <= start <= size:
        raise IndexError(f"start out of range (expected to be in range of [{-size}, {size}], but got {start})")
    if start < 0:
        start += size
    if start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    # always a SliceBackward0 in torch, even when the slice keeps the whole dim (which the read
    # here makes an alias, whose node keeps torch's values for it)
    sliced = input[(slice(None),) * d + (slice(start, start + length),)]
    if start == 0 and length == size:
        return name_node(sliced, "SliceBackward0", saved=_WHOLE_SLICE_SAVED,
                         kept={"dim": dim, "end": length, "sizes": tuple(input._data.shape)})
    return _keep_given_dim(name_node(sliced, "SliceBackward0"), dim)


# narrow's SliceBackward0 where it keeps the whole dim: the dim as given (a negative one as the C++
# node's unsigned), start 0, end the dim's size
_WHOLE_SLICE_SAVED = {"_saved_dim": SavedValue(lambda node: as_uint64(node.torch_kept["dim"])),
                      "_saved_end": kept_value("end"), "_saved_self_sym_sizes": kept_value("sizes"),
                      "_saved_start": 0, "_saved_step": 1}


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """torch.select: the view ``input[..., index, ...]`` along ``dim`` (that dim removed)."""
    if input._data.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, input._data.ndim, "select")
    size = input._data.shape[d]
    index = check_int(index, "select", "index")
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size "
                         f"{list(input._data.shape)} at dimension {d}")
    return _keep_given_dim(input[(slice(None),) * d + (index,)], dim)


def _keep_given_dim(out: Tensor, dim) -> Tensor:
    """``out``, its node keeping a negative ``dim`` as given: torch's ``_saved_dim`` reports it (as
    the C++ node's unsigned), where the node's own reads the dim it ran along."""
    if dim < 0 and out._grad_fn is not None:
        out._grad_fn.given_dim = dim
    return out


class Unfold(Function):
    label = "unfold"
    rule = "adds each window's gradient back into the slice it read (overlaps summed)"
    _array_forward = True
    # the dimension as given (a negative one as the C++ node's unsigned)
    saved_attributes = {"_saved_dimension": SavedValue(lambda node: as_uint64(getattr(node, "given_dimension",
                                                                                      node.params[0]))),
                        "_saved_self_sym_sizes": input_sizes(0),
                        "_saved_size": ctx_value("params", lambda params: params[1]),
                        "_saved_step": ctx_value("params", lambda params: params[2])}

    @staticmethod
    def forward(ctx, x, dim, size, step):
        xp = array_module(x)
        ctx.input_shape = x.shape
        ctx.params = (dim, size, step)
        count = (x.shape[dim] - size) // step + 1
        shape = x.shape[:dim] + (count,) + x.shape[dim + 1:] + (size,)
        strides = x.strides[:dim] + (x.strides[dim] * step,) + x.strides[dim + 1:] + (x.strides[dim],)
        # overlapping windows alias memory: read-only, so in-place writes raise as in torch
        if xp is not np:  # CuPy has no read-only arrays, and its as_strided gives no base: note x's storage
            windows = xp.lib.stride_tricks.as_strided(x, shape, strides)
            note_strided_view(windows, storage_root(x)[0])
            return windows
        writeable = x.flags.writeable and (step >= size or count <= 1)  # (one window overlaps nothing)
        return xp.lib.stride_tricks.as_strided(x, shape, strides, writeable=writeable)

    @staticmethod
    def backward(ctx, grad):
        return UnfoldBackward.apply(grad, shape=ctx.input_shape, params=ctx.params)


class UnfoldBackward(Function):
    """The adjoint of unfold: window k's gradient adds into the strided slice it read (overlaps sum)."""

    _array_forward = True
    node_name = "UnfoldBackwardBackward0"
    label = "unfold_backward"
    rule = ("unfolds the gradient into the same windows (unfold's backward, recorded as an op under "
            "create_graph)")

    @staticmethod
    def forward(ctx, grad, shape, params):
        xp = array_module(grad)
        dim, size, step = params
        ctx.params = params
        out = xp.zeros(shape, dtype=grad.dtype)
        count = grad.shape[dim]
        lead = (slice(None),) * dim
        # one vectorised add per window offset (size of them), never one per element
        for k in range(size):
            out[lead + (slice(k, k + (count - 1) * step + 1, step),)] += grad[..., k]
        return out

    @staticmethod
    def backward(ctx, grad):
        dim, size, step = ctx.params
        return Unfold.apply(grad, dim=dim, size=size, step=step)


def unfold(input: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """torch.Tensor.unfold: a view of all windows of ``size`` along ``dimension``, ``step`` apart,
    as a new last dim. The gradient sums back over overlapping windows."""
    size, step = check_int(size, "unfold", "size"), check_int(step, "unfold", "step")
    scalar = input._data.ndim == 0
    if scalar:  # a 0-d tensor unfolds as a vector of one, and its one window is the result: (size,)
        input = reshape(input, 1)
    d = _wrap_dim(dimension, input._data.ndim, "unfold")
    length = input._data.shape[d]
    if size > length:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {length} but size is {size}")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    out = _share(Unfold.apply(input, dim=d, size=int(size), step=int(step)), input)
    if out._grad_fn is not None:
        out._grad_fn.given_dimension = dimension
    return select(out, 0, 0) if scalar else out


# ---------------------------------------------------------------- joining and splitting
@honours_out
def hstack(tensors) -> Tensor:
    """torch.hstack: cat along dim 1, or dim 0 for 1-D tensors (0-d ones become 1-D)."""
    tensors = [_atleast_1d(t) for t in _tensor_list(tensors, "hstack")]
    return cat(tensors, 0 if tensors[0]._data.ndim == 1 else 1)


@honours_out
def vstack(tensors) -> Tensor:
    """torch.vstack: cat along dim 0 after making every tensor at least 2-D."""
    return cat([_atleast_2d(t) for t in _tensor_list(tensors, "vstack")], 0)


@honours_out
def dstack(tensors) -> Tensor:
    """torch.dstack: cat along dim 2 after making every tensor at least 3-D."""
    return cat([_atleast_3d(t) for t in _tensor_list(tensors, "dstack")], 2)


@honours_out
def column_stack(tensors) -> Tensor:
    """torch.column_stack: 0-d and 1-D tensors become columns, then cat along dim 1."""
    tensors = _tensor_list(tensors, "column_stack")
    return cat([reshape(t, (t._data.size, 1)) if t._data.ndim <= 1 else t for t in tensors], 1)


def _split_points(op: str, indices_or_sections, **by_kind):
    """torch names a split's argument by its kind (``sections=3``, ``indices=[1, 4]``, tensor_split's
    ``tensor_indices_or_sections=t``); positionally it is one argument, chainrule's ``indices_or_sections``."""
    given = {name: value for name, value in by_kind.items() if value is not None}
    if len(given) + (indices_or_sections is not None) != 1:
        positional = [] if indices_or_sections is None else [type(indices_or_sections).__name__]
        names = ", ".join(["Tensor", *positional, *(f"{name}={type(value).__name__}" for name, value in given.items())])
        raise TypeError(f"{op}() received an invalid combination of arguments - got ({names}), but expected one "
                        "of sections=int or indices=tuple of ints")
    value = indices_or_sections if indices_or_sections is not None else next(iter(given.values()))
    # then the kinds torch's parser takes, before any work: an int, a tuple of ints, or a tensor
    if isinstance(value, Tensor) and op == "tensor_split":  # (the others take a 0-d integer one as an int)
        if value._data.dtype != np.int64:
            raise RuntimeError("tensor_split expected tensor_indices_or_sections to have dtype of long, but got "
                               f"{_dtype.scalar_name(value.dtype)}")
        if value._data.ndim > 1:
            raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
                               f"one-dimensional tensor, but got a tensor with {value._data.ndim} dims")
        return value
    as_int = _as_int(value)
    if as_int is not None:
        if not _fits_int64(as_int):
            raise ValueError("Overflow when unpacking long long")
        return as_int
    if isinstance(value, (list, tuple)) and (not value or _as_int(value[0]) is not None):
        return list(int_list(value, op, "indices"))
    raise TypeError(f"{op}() received an invalid combination of arguments - got (Tensor, {type(value).__name__}), "
                    "but expected one of:\n * (Tensor input, int sections)\n * (Tensor input, tuple of ints indices)")


def tensor_split(input: Tensor, indices_or_sections=None, dim: int = 0, *, sections=None, indices=None,
                 tensor_indices_or_sections=None) -> tuple:
    """torch.tensor_split: ``n`` near-equal views (the first ``size % n`` one longer), or views
    cut at the given indices."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.tensor_split(indices_or_sections, dim)  # sparse: its method answers (kept sparse or refused, as torch)
    indices_or_sections = _split_points("tensor_split", indices_or_sections, sections=sections, indices=indices,
                                        tensor_indices_or_sections=tensor_indices_or_sections)
    if input._data.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
    d = _wrap_dim(dim, input._data.ndim, "tensor_split")
    length = input._data.shape[d]
    if isinstance(indices_or_sections, Tensor):
        indices_or_sections = (int(indices_or_sections.item()) if indices_or_sections._data.ndim == 0
                               else indices_or_sections.tolist())
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {sections}")
        size, extra = divmod(length, sections)
        bounds = np.cumsum([0] + [size + 1] * extra + [size] * (sections - extra)).tolist()
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [length]
    lead = (slice(None),) * d
    # (torch's pieces are at::slice's: a SliceBackward0 each, one keeping the whole dim too)
    return tuple(name_node(input[lead + (slice(start, max(start, stop)),)], "SliceBackward0")
                 for start, stop in zip(bounds[:-1], bounds[1:]))


def hsplit(input: Tensor, indices_or_sections=None, *spread_indices, sections=None, indices=None) -> tuple:
    """torch.hsplit: tensor_split along dim 1 (dim 0 for 1-D); sections must divide evenly."""
    if spread_indices:  # torch's method takes its indices spread: x.hsplit(1, 3)
        indices_or_sections = (indices_or_sections, *spread_indices)
    indices_or_sections = _split_points("hsplit", indices_or_sections, sections=sections, indices=indices)
    dim = 0 if input._data.ndim == 1 else 1
    return _even_split(input, indices_or_sections, dim, "hsplit")


def vsplit(input: Tensor, indices_or_sections=None, *spread_indices, sections=None, indices=None) -> tuple:
    """torch.vsplit: tensor_split along dim 0 of a tensor with at least 2 dims."""
    if spread_indices:  # torch's method takes its indices spread: x.vsplit(1, 3)
        indices_or_sections = (indices_or_sections, *spread_indices)
    indices_or_sections = _split_points("vsplit", indices_or_sections, sections=sections, indices=indices)
    if input._data.ndim < 2:
        raise RuntimeError(f"torch.vsplit requires a tensor with at least 2 dimension, but got a tensor "
                           f"with {input._data.ndim} dimensions!")
    return _even_split(input, indices_or_sections, 0, "vsplit")


def _even_split(input: Tensor, indices_or_sections, dim: int, op: str) -> tuple:
    if input._data.ndim == 0:
        raise RuntimeError(f"torch.{op} requires a tensor with at least 1 dimension, but got a tensor with 0 dimensions!")
    if not isinstance(indices_or_sections, (int, np.integer, list, tuple, Tensor)):
        raise TypeError(f"{op}() received an invalid combination of arguments - got (Tensor, "
                        f"{type(indices_or_sections).__name__}), but expected one of:\n * (Tensor input, int sections)\n"
                        f" * (Tensor input, tuple of ints indices)")
    # a size that does not divide evenly (0 included) is refused before tensor_split sees it
    if isinstance(indices_or_sections, int) and (indices_or_sections == 0
                                                 or input._data.shape[dim] % indices_or_sections):
        raise RuntimeError(
            f"torch.{op} attempted to split along dimension {dim}, but the size of the dimension "
            f"{input._data.shape[dim]} is not divisible by the split_size {indices_or_sections}!")
    return tensor_split(input, indices_or_sections, dim)


# ---------------------------------------------------------------- padding
class ConstantPad(Function):
    _array_forward = True
    node_name = "ConstantPadNdBackward0"
    label = "pad"
    rule = "crops the padding off the gradient (and zero-pads where the input was cropped)"
    # torch's pad as F.pad was given it, last dim first (else read off the widths), a negative
    # one as the C++ node's unsigned
    saved_attributes = {"_saved_pad": SavedValue(lambda node: tuple(as_uint64(w) for w in (
        node.pad if node.pad is not None else (w for pair in reversed(node.widths) for w in pair))))}

    @staticmethod
    def forward(ctx, x, widths, value, pad=None):
        # widths: one (before, after) pair per dim, first dim first; negative entries crop
        ctx.widths, ctx.pad = widths, pad
        out_shape = tuple(n + a + b for n, (a, b) in zip(x.shape, widths))
        src = tuple(slice(max(-a, 0), n - max(-b, 0)) for n, (a, b) in zip(x.shape, widths))
        if all(a <= 0 and b <= 0 for a, b in widths):
            # torch crops and clones: the copy keeps the input's stride order (a transposed or
            # channels-last input stays so, a strided slice comes back dense, an empty crop keeps
            # the input's strides as torch's clone of an empty tensor does)
            cropped = x[src]
            return copy_preserving_format(cropped) if cropped.size == 0 else cropped.copy(order="K")
        # torch's constant_pad_nd lays its output out as the input suggests (channels-last or contiguous)
        out = full_in_suggested_format(out_shape, value, x.dtype, x)
        dst = tuple(slice(max(a, 0), m - max(b, 0)) for m, (a, b) in zip(out_shape, widths))
        out[dst] = x[src]
        return out

    @staticmethod
    def backward(ctx, grad):
        # the adjoint of padding is cropping (and of cropping, zero-padding): pad by the negation
        return ConstantPad.apply(grad, widths=tuple((-a, -b) for a, b in ctx.widths), value=0)


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """torch.nn.functional.pad: ``pad`` = (left, right, top, bottom, ...) for the last dim first.

    ``constant`` fills with ``value`` (negative pads crop); ``reflect`` mirrors without repeating
    the edge (pads must be smaller than the dim), ``replicate`` repeats the edge, ``circular``
    wraps around. The non-constant modes pad the last 1-3 dims of a batched (or unbatched) input.
    """
    pad = int_list(pad, "pad", "pad", sized=False, position=2)
    if autocast_hook.cpu_dtype is not None and (mode == "replicate" or (mode == "reflect" and len(pad) <= 4)):
        return _pad_in_float32(input, pad, mode, value)
    if value is not None:
        value = check_float(value, "pad", "value", position=4)  # torch._C._nn.pad(input, pad, mode, value)
    return padded(input, pad, mode, value)


def padded(input: Tensor, pad: list, mode: str, value) -> Tensor:
    """``pad`` after its argument checks; ``value`` may be complex here (``constant_pad_nd``'s Scalar)."""
    ndim = input._data.ndim
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(pad)} and input of dimension {ndim}")
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    k = len(pad) // 2
    shape = input._data.shape
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(k)]  # pairs[i] pads dim ndim - 1 - i

    if mode == "constant":
        for i, (a, b) in enumerate(pairs):  # torch crops (narrows) by the negative pads first
            if shape[ndim - 1 - i] + min(a, 0) + min(b, 0) < 0:
                raise RuntimeError("narrow(): length must be non-negative.")
        for i, (a, b) in enumerate(pairs):
            d = ndim - 1 - i
            if shape[d] + a + b < 0:
                raise RuntimeError(
                    f"The input size {shape[d]}, plus negative padding {a} and {b} resulted in a negative "
                    f"output size, which is invalid. Check dimension {d} of your input.")
        if value is not None and any(p > 0 for p in pad):
            # torch fills the new border by fill_, which refuses a value the dtype cannot hold (nan or
            # inf for an integer tensor, 300 for int8, 1e6 for float16); a pad that only crops fills nothing
            value = _dtype.checked_scalar(value, input.dtype)
        widths = tuple([(0, 0)] * (ndim - k) + pairs[::-1])
        return ConstantPad.apply(input, widths=widths, value=0 if value is None else value, pad=tuple(pad))
    # torch's order for the other modes: the value, the supported ranks, then its kernel's own checks
    if value is not None and value != 0:
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if k not in (1, 2, 3) or ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {ndim}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    if mode != "circular":
        return _reflect_or_replicate(input, pairs, mode)
    return _circular(input, pairs)


def _circular_composed(input: Tensor, pairs: list, out_shape: tuple) -> Tensor:
    """Circular padding as ATen's _pad_circular composes it, run where a dispatch mode or wrapper subclass
    watches the ops: new_empty, the cropped core copied into its slice of the output, then per padded dim
    (the last first) the left and the right border copied from the output's other end."""
    shape, ndim = input._data.shape, input._data.ndim

    def sliced(t, dim, start, stop):  # (aten.slice.Tensor, a whole dim's too)
        made = _function_module.composite_dispatch("slice.Tensor", _slice_of, (t, dim, start, stop), {})
        return _slice_of(t, dim, start, stop) if made is _function_module.RUN_UNDISPATCHED else made

    out = _function_module.factory_dispatch("new_empty", _new_empty, (input, list(out_shape)),
                                            {"dtype": input.dtype, "layout": _layout.strided, "device": input.device})
    if out is _function_module.RUN_UNDISPATCHED:
        out = _new_empty(input, list(out_shape))
    out_slice, in_slice = out, input
    for i, (a, b) in enumerate(pairs):
        dim = ndim - 1 - i
        out_slice = sliced(out_slice, dim, max(a, 0), out_shape[dim] - max(b, 0))
        in_slice = sliced(in_slice, dim, max(-a, 0), shape[dim] - max(-b, 0))
    out_slice.copy_(in_slice)
    for i, (a, b) in enumerate(pairs):
        dim, size = ndim - 1 - i, out_shape[ndim - 1 - i]
        if a > 0:
            sliced(out, dim, 0, a).copy_(sliced(out, dim, size - a - max(b, 0), size - max(b, 0)))
        if b > 0:
            sliced(out, dim, size - b, size).copy_(sliced(out, dim, max(a, 0), max(a, 0) + b))
    return out


def _slice_of(t: Tensor, dim: int, start: int, stop: int) -> Tensor:
    return t[(slice(None),) * dim + (slice(start, stop),)]


def _new_empty(input: Tensor, size: list, *, dtype=None, layout=None, device=None) -> Tensor:
    """aten.new_empty's func for circular padding's output: uninitialised, input's dtype and device."""
    return input.new_empty(size, dtype=dtype)


def _circular(input: Tensor, pairs: list) -> Tensor:
    """Circular padding as torch's _pad_circular: negative pads crop first, and the wrapped
    borders copy the cropped core. torch checks each padded dim (the first first), then copies
    slices, whose own checks refuse some pads (see _refuse_circular_copies)."""
    shape, ndim = input._data.shape, input._data.ndim
    for d, (a, b) in zip(range(ndim - len(pairs), ndim), pairs[::-1]):
        if a > shape[d] or b > shape[d]:
            raise RuntimeError("Padding value causes wrapping around more than once.")
        if shape[d] + a + b < 0:
            raise RuntimeError("Negative padding value is resulting in an empty dimension")
    cores = [shape[ndim - 1 - i] - max(-a, 0) - max(-b, 0) for i, (a, b) in enumerate(pairs)]
    wrapped_once = all(core >= max(a, b, 0) for core, (a, b) in zip(cores, pairs))
    if not wrapped_once:
        _refuse_circular_copies(shape, pairs)
    out_shape = shape[:ndim - len(pairs)] + tuple(shape[d] + a + b for d, (a, b) in
                                                  zip(range(ndim - len(pairs), ndim), pairs[::-1]))
    if 0 in out_shape:
        # no element to write (even where the core is cropped past its end, torch copies empty slices)
        x = input
        for i in range(len(pairs)):
            x = narrow(x, ndim - 1 - i, 0, 0)
        widths = tuple((n, 0) if d >= ndim - len(pairs) else (0, 0) for d, n in enumerate(out_shape))
        return ConstantPad.apply(x, widths=widths, value=0)
    if not wrapped_once:
        # a border wider than the cropped core: torch copies it from output elements it has not
        # written yet (uninitialised memory, or those the same copy writes, in its order): refused
        raise RuntimeError("Padding value causes wrapping around more than once.")
    if _function_module.active_dispatch is not None:
        return _circular_composed(input, pairs, out_shape)
    x = input
    widths = [(0, 0)] * ndim
    for i, ((a, b), core) in enumerate(zip(pairs, cores)):
        d = ndim - 1 - i
        if a < 0 or b < 0:
            x = narrow(x, d, max(-a, 0), core)
        widths[d] = (max(a, 0), max(b, 0))
    # (only crops: still a fresh tensor, as torch's copy into a new one; the cropped view would alias the input)
    return named_as_slice_copies(ModePad.apply(x, widths=tuple(widths), mode="circular"))


def named_as_slice_copies(out: Tensor) -> Tensor:
    """Circular padding's ModePad node named as torch's last node: torch's graph is its slice copies,
    a CopySlices per copy over SliceBackward0s (_circular_composed records them, at 9-22x this one
    node's fwd+bwd time), of which the user reads the last."""
    from .index import COPY_SLICES

    return name_node(out, COPY_SLICES, label="pad (circular)", rule=_CIRCULAR_RULE)


_CIRCULAR_RULE = ("circular padding, one node for torch's slice copies: adds each padded border's gradient "
                  "back onto the cells it copied, then crops")


def _torch_slice(array, dim: int, start: int, end: int):
    """``array`` sliced along ``dim`` as torch's Tensor.slice reads the bounds: a negative one
    counts from the end once, then both are clamped into the dim (an end before the start is it)."""
    size = array.shape[dim]
    start, end = start + size if start < 0 else start, end + size if end < 0 else end
    start = min(max(start, 0), size)
    end = min(max(end, start), size)
    return array[(slice(None),) * dim + (slice(start, end),)]


def _check_copy(written, read) -> None:
    """torch's checks of ``written.copy_(read)``, in its order: a partial overlap, then the broadcast."""
    from .index import _refuse_overlap

    _refuse_overlap(written, read)
    shape = list(written.shape)
    for i in range(len(shape) - 1, -1, -1):  # (one ndim here)
        a, b = shape[i], read.shape[i]
        if a != b and a != 1 and b != 1:
            raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b ({b}) at "
                               f"non-singleton dimension {i}")
        shape[i] = b if a == 1 else a
    if tuple(shape) != written.shape:
        raise broadcast_refusal(written.shape, shape)


def _refuse_circular_copies(shape: tuple, pairs: list) -> None:
    """Where a border is wider than the cropped core, replay torch's slice copies on a stand-in
    output and raise where one of them does (a slice of a core cropped past its end has another
    length than its destination's; a border read from memory overlapping the border written)."""
    ndim = len(shape)
    out_shape = list(shape)
    for i, (a, b) in enumerate(pairs):
        out_shape[ndim - 1 - i] += a + b
    out, source = np.empty(out_shape, dtype=bool), np.empty(shape, dtype=bool)
    written, read = out, source
    for i, (a, b) in enumerate(pairs):
        d = ndim - 1 - i
        written = _torch_slice(written, d, max(a, 0), out_shape[d] - max(b, 0))
        read = _torch_slice(read, d, max(-a, 0), shape[d] - max(-b, 0))
    _check_copy(written, read)
    for i, (a, b) in enumerate(pairs):
        d, n = ndim - 1 - i, out_shape[ndim - 1 - i]
        if a > 0:
            _check_copy(_torch_slice(out, d, 0, a), _torch_slice(out, d, n - a - max(b, 0), n - max(b, 0)))
        if b > 0:
            _check_copy(_torch_slice(out, d, n - b, n), _torch_slice(out, d, max(a, 0), max(a, 0) + b))


# torch's CPU autocast runs reflection_pad1d/2d and replication_pad1d/2d/3d in float32 (not 3-d reflection)
_pad_in_float32 = cpu_autocast_policy("float32")(pad)


def _reflect_or_replicate(input: Tensor, pairs: list, mode: str) -> Tensor:
    """torch reads output position j at input index j - left, mirrored (reflect) or clamped
    (replicate) into the input: so the positive pads apply to the whole input, then the negative
    ones crop the result."""
    shape, ndim, k = input._data.shape, input._data.ndim, len(pairs)
    _check_mode_pad_sizes(shape, pairs, mode)
    widths = [(0, 0)] * ndim
    for i, (a, b) in enumerate(pairs):
        widths[ndim - 1 - i] = (max(a, 0), max(b, 0))
    if _function_module.active_dispatch is not None and all(a >= 0 and b >= 0 for a, b in pairs):
        # (a dispatch mode sees torch's reflection_pad<k>d / replication_pad<k>d with the pad as given)
        _function_module.note_given(ModePad, input, pad=tuple(side for pair in pairs for side in pair))
    elif _function_module.active_dispatch is not None and (made := _function_module.composite_dispatch(
            f"{'reflection' if mode == 'reflect' else 'replication'}_pad{k}d", _cropping_pad(mode),
            (input, [side for pair in pairs for side in pair]), {})) is not _function_module.RUN_UNDISPATCHED:
        return made  # (a negative pad: torch's one op too, where chainrule pads then crops)
    out = ModePad.apply(input, widths=tuple(widths), mode=mode)
    kept = {"padding": tuple(w for pair in pairs for w in pair), "self": input}
    if any(a < 0 or b < 0 for a, b in pairs):
        if out.grad_fn is not None:  # the pad's own node, under the crop named below, keeps them too
            out.grad_fn.torch_kept = kept
        for i, (a, b) in enumerate(pairs):
            d = ndim - 1 - i
            start = max(-a, 0)
            out = narrow(out, d, start, out._data.shape[d] - start - max(-b, 0))
        # torch's padding kernels write the output whole, laid out as the input suggests
        out = Clone.apply(out, channels_last=suggests_channels_last(input._data))
    return name_node(out, f"{'Reflection' if mode == 'reflect' else 'Replication'}Pad{k}DBackward0",
                     saved=_MODE_PAD_SAVED, kept=kept)


def _reflect_cropping(input: Tensor, pad: list) -> Tensor:
    """aten.reflection_pad<k>d's func under a dispatch mode, for a pad with a negative side."""
    return _reflect_or_replicate(input, [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)], "reflect")


def _replicate_cropping(input: Tensor, pad: list) -> Tensor:
    """aten.replication_pad<k>d's func under a dispatch mode, for a pad with a negative side."""
    return _reflect_or_replicate(input, [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)], "replicate")


def _cropping_pad(mode: str):
    return _reflect_cropping if mode == "reflect" else _replicate_cropping


def _check_mode_pad_sizes(shape: tuple, pairs: list, mode: str) -> None:
    """torch's reflection_pad{k}d / replication_pad{k}d checks, in their order: only a batch dim
    may be empty, a reflected border must be narrower than its dim, some output dim must be
    positive, then allocating the output refuses a negative one."""
    ndim, k = len(shape), len(pairs)
    if any(n == 0 for n in shape[1 if ndim == k + 2 else 0:]):
        raise RuntimeError(f"Expected {k + 1}D or {k + 2}D (batch mode) tensor with possibly 0 batch size and other "
                           f"non-zero dimensions for input, but got: {list(shape)}")
    if mode == "reflect":
        for i, (a, b) in enumerate(pairs):  # width (argument #4), height (#6), depth (#8)
            if a >= shape[ndim - 1 - i] or b >= shape[ndim - 1 - i]:
                raise RuntimeError(
                    f"Argument #{4 + 2 * i}: Padding size should be less than the corresponding input dimension, "
                    f"but got: padding ({a}, {b}) at dimension {ndim - 1 - i} of input {list(shape)}")
    sizes = [shape[ndim - 1 - i] for i in range(k)]  # W, H, D
    outs = [n + a + b for n, (a, b) in zip(sizes, pairs)]
    if all(out < 1 for out in outs):
        if k == 1:
            raise RuntimeError(f"input (W: {sizes[0]}) is too small. Calculated output W: {outs[0]}")
        if k == 2:
            space = " " if mode == "replicate" else ""
            raise RuntimeError(f"input (H: {sizes[1]}, W: {sizes[0]}{space}) is too small. "
                               f"Calculated output H: {outs[1]} W: {outs[0]}")
        raise RuntimeError(f"input (D: {sizes[2]} H: {sizes[1]}, W: {sizes[0]}) is too small. "
                           f"Calculated output D: {outs[2]} H: {outs[1]} W: {outs[0]}")
    if any(out < 0 for out in outs):
        if mode == "reflect" and k == 2:  # (its kernel resizes the output: the byte count overflows)
            raise RuntimeError("numel: integer multiplication overflow")
        out_shape = list(shape[:ndim - k]) + outs[::-1]
        first = next(n for n in out_shape if n < 0)
        raise RuntimeError(f"Trying to create tensor with negative dimension {first}: {out_shape}")


# torch's reflection/replication pad nodes keep the input and the pad as given
_MODE_PAD_SAVED = {"_saved_padding": kept_value("padding"), "_saved_self": kept_value("self", tensor=True)}


_NUMPY_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class ModePad(Function):
    """reflect / replicate / circular padding: one np.pad pass forward; the adjoint folds the
    padded borders back onto the slices they copied (vectorised slice adds, per padded dim)."""

    _array_forward = True
    node_name = "PadBackward0"
    label = "pad"
    rule = ("reflect/replicate/circular padding: adds each padded border's gradient back onto the cells "
            "it copied, then crops")

    @staticmethod
    def forward(ctx, x, widths, mode):
        xp = array_module(x)
        ctx.widths = widths
        ctx.mode = mode
        padded = xp.pad(x, widths, mode=_NUMPY_PAD_MODE[mode])
        if mode == "circular":  # torch's circular pad copies slices into a contiguous output
            return xp.ascontiguousarray(padded)
        return in_suggested_format(padded, x)  # torch's reflection/replication kernels: as the input suggests

    @staticmethod
    def backward(ctx, grad):
        folded = ModePadAdjoint.apply(grad, widths=ctx.widths, mode=ctx.mode)
        kept = getattr(ctx, "torch_kept", None)
        if not kept:  # circular: slice copies in torch, whose gradient has no edge to the input
            return folded
        # torch's Reflection/ReplicationPad*BackwardBackward0 take self: the second order's (zero) edge
        k = len(kept["padding"]) // 2
        folded = depending_on(folded, kept["self"],
                              node=f"{'Reflection' if ctx.mode == 'reflect' else 'Replication'}Pad{k}DBackwardBackward0")
        # torch's reflection/replication backward kernels lay the gradient out as the input suggests
        return relaid_as_suggested(folded, kept["self"])


class ModePadAdjoint(Function):
    _array_forward = True
    node_name = "PadBackwardBackward0"
    label = "pad_backward"
    rule = "pads the gradient the same way (pad's backward, recorded as an op under create_graph)"

    @staticmethod
    def forward(ctx, grad, widths, mode):
        xp = array_module(grad)
        ctx.widths = widths
        ctx.mode = mode
        out = grad
        for d, (a, b) in enumerate(widths):
            if a or b:
                out = _fold_dim(out, d, a, b, mode)
        return xp.ascontiguousarray(out)  # _fold_dim works on moved axes

    @staticmethod
    def backward(ctx, grad):
        # the adjoint of the adjoint is the padding itself
        return ModePad.apply(grad, widths=ctx.widths, mode=ctx.mode)


def _fold_dim(g: np.ndarray, d: int, a: int, b: int, mode: str) -> np.ndarray:
    """Sum the padded borders of ``g`` along dim ``d`` back into the core they were copied from."""
    xp = array_module(g)
    g = xp.moveaxis(g, d, 0)
    n = g.shape[0] - a - b
    core = g[a:a + n].copy()
    left, right = g[:a], g[a + n:]
    if mode == "reflect":
        # out[j] = in[a - j] (j < a); out[a + n + k] = in[n - 2 - k]
        core[1:a + 1] += left[::-1]
        core[n - 1 - b:n - 1] += right[::-1]
    elif mode == "replicate":
        core[0] += left.sum(axis=0)
        core[n - 1] += right.sum(axis=0)
    else:
        # circular: out[j] = in[n - a + j]; out[a + n + k] = in[k]
        core[n - a:] += left
        core[:b] += right
    return xp.moveaxis(core, 0, d)
