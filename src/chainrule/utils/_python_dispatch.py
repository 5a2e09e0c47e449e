"""torch's ``torch.utils._python_dispatch``: ``TorchDispatchMode``, the layer below autograd.

A ``TorchDispatchMode`` entered with ``with`` sees every op run inside the block as
``mode.__torch_dispatch__(func, types, args, kwargs)``: ``func`` is the op as an aten overload
(``str(func) == "aten.addmm.default"``), calling ``func(*args, **kwargs)`` runs it below the mode,
and what the handler returns is the op's result. Autograd sits above the mode: the op's node is
recorded around the handler, so a handler that changes a result changes the forward value while
the op's gradient rule stays the op's own, as in torch.

How chainrule places it. Built-in ops are ``Function`` classes applied by
``autograd.function._apply_array_op``; while a mode is entered, ``function.active_dispatch``
names ``_dispatch`` below, and every such op is handed to the innermost mode. The mode is off
(popped) while its own handler runs, so ``func(...)`` inside reaches the next mode down, or the op.

A wrapper subclass (``Tensor._make_wrapper_subclass`` and a classmethod ``__torch_dispatch__``)
gets every op on it the same way while any instance is alive, autograd recording above it, and each
backward node over wrappers as one backward op (``aten.threshold_backward.default``).

``args``/``kwargs`` are torch's schema's for the ops ``_ATEN_SCHEMAS`` lists (the op's own elsewhere).
docs/extending.md ("The layer below") lists what differs from torch: some ops show another overload
or no decomposition, only some factory functions reach the mode, and the backward is shown as the
ops chainrule's rules run.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from types import FunctionType

import numpy as np

from .._backend import array_module, contiguous_strides
from ..autograd import function as _function
from ..autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from ..autograd.profiler import _op_name, recording_switches
from ..ops.namespaces import OpOverload

__all__ = ["DispatchedOverload", "InplaceOverload", "TorchDispatchMode", "is_traceable_wrapper_subclass", "return_and_correct_aliasing",
           "transform_subclass"]

# the grad mode of the code that called into a handler (None outside handlers): a handler runs below
# autograd (grad mode off); enable_reentrant_dispatch gives it back, as torch's TLS snapshot does
_handler_caller = threading.local()


@contextlib.contextmanager
def _below_autograd():
    outer = getattr(_handler_caller, "grad_enabled", None)
    _handler_caller.grad_enabled = is_grad_enabled()
    try:
        with no_grad():
            yield
    finally:
        _handler_caller.grad_enabled = outer


@contextlib.contextmanager
def reentrant_dispatch():
    """torch.overrides.enable_reentrant_dispatch: inside a handler, ops record gradients again as
    they would have where the handler was called (torch restores the dispatcher's state from there)."""
    caller = getattr(_handler_caller, "grad_enabled", None)
    with set_grad_enabled(caller) if caller is not None else contextlib.nullcontext():
        yield


_mode_stack: list = []


class TorchDispatchMode:
    """Base class of dispatch modes: override ``__torch_dispatch__(self, func, types, args=(),
    kwargs=None)`` and enter the mode with ``with``. Modes nest; the innermost sees an op first."""

    def __init__(self, _dispatch_key=None) -> None:
        self._dispatch_key = _dispatch_key
        self.old_dispatch_mode_flags: list = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        raise NotImplementedError()

    def __enter__(self):
        _push_mode(self)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        _pop_mode()

    @classmethod
    def push(cls, *args, **kwargs):
        """torch's ``push``: build the mode and return it, ready for ``with``."""
        return cls(*args, **kwargs)

    @classmethod
    def is_infra_mode(cls) -> bool:
        return False


def _get_current_dispatch_mode():
    """The innermost entered mode, or None."""
    return _mode_stack[-1] if _mode_stack else None


def _get_current_dispatch_mode_stack() -> list:
    """The entered modes, outermost first (a copy)."""
    return list(_mode_stack)


def _push_mode(mode) -> None:
    was_empty = not _mode_stack
    _mode_stack.append(mode)
    _function.active_dispatch = _dispatch
    if was_empty and not _live_wrappers:
        _switch_fast_paths(True)


def _pop_mode(k=None):
    """Take the innermost mode off the stack and return it."""
    if not _mode_stack:
        raise AssertionError("Trying to pop from an empty mode stack")
    mode = _mode_stack.pop()
    if not _mode_stack and not _live_wrappers:
        _function.active_dispatch = None
        _switch_fast_paths(False)
    return mode


@contextlib.contextmanager
def _pop_mode_temporarily(k=None):
    """Off the stack for the block, the innermost mode comes back after it (what a handler runs in).
    The dispatcher stays installed meanwhile (it finds the stack empty and steps aside), so a
    handler's every op does not switch the operators' fast paths off and on again."""
    if not _mode_stack:
        raise AssertionError("Trying to pop from an empty mode stack")
    mode = _mode_stack.pop()
    try:
        yield mode
    finally:
        _mode_stack.append(mode)
        if _function.active_dispatch is None:
            # the last wrapper subclass instance went while the stack was empty, and with it the
            # dispatcher: the mode is back, so must the dispatcher be
            _function.active_dispatch = _dispatch
            _switch_fast_paths(True)


@contextlib.contextmanager
def _disable_current_modes():
    """All modes off the stack for the block, back in their order after it."""
    modes = []
    while _mode_stack:
        modes.append(_pop_mode())
    try:
        yield list(reversed(modes))
    finally:
        for mode in reversed(modes):
            _push_mode(mode)


class _DisableTorchDispatch:
    """torch._C._DisableTorchDispatch: ops inside the block skip the dispatch layer (the modes)."""

    def __enter__(self):
        self._modes = _disable_current_modes()
        self._modes.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._modes.__exit__(*exc)


def _switch_fast_paths(on: bool) -> None:
    """+ - * / have a one-ufunc path that skips Function.apply when nothing is recorded; it steps
    aside while a mode is entered (as for the profiler), unless another observer already holds it."""
    if _function.active_profiler is None and _function.active_extension is None:
        for switch in recording_switches:
            switch(on)


def _keep_general_operators(recording: bool) -> None:
    """A profiler or forward-AD level ending inside a mode has just put the fast paths back: they
    stay off while a mode is entered."""
    if not recording and (_mode_stack or _live_wrappers):
        for switch in recording_switches:
            if switch is not _keep_general_operators:
                switch(True)


recording_switches.append(_keep_general_operators)


def is_traceable_wrapper_subclass(t) -> bool:
    """Whether ``t`` is a tensor subclass that says how to flatten itself (``__tensor_flatten__``
    and ``__tensor_unflatten__``), as torch's check for wrapper subclasses."""
    from ..tensor import Tensor

    return (isinstance(t, Tensor) and type(t) is not Tensor
            and hasattr(t, "__tensor_flatten__") and hasattr(t, "__tensor_unflatten__"))


def transform_subclass(t, callback, outer_size=None, outer_stride=None):
    """Rebuild wrapper subclass ``t`` with ``callback(name, inner)`` applied to each inner tensor."""
    attrs, ctx = t.__tensor_flatten__()
    inner = {name: callback(name, getattr(t, name)) for name in attrs}
    return type(t).__tensor_unflatten__(inner, ctx, outer_size or t.size(), outer_stride or t.stride())


def return_and_correct_aliasing(func, args, kwargs, out):
    """torch's helper makes a wrapper subclass's outputs alias its inputs as ``func``'s schema
    says; chainrule's views already share their base's array, so ``out`` comes back unchanged."""
    return out


# ---- the aten overloads handed to handlers
# op (as the profiler names it, from the node) -> (aten op name, overload name) where the node's name
# is not torch's op or its overload is not "default"
_ATEN_NAMES: dict[str, tuple[str, str]] = {
    "add": ("add", "Tensor"), "sub": ("sub", "Tensor"), "r_sub": ("rsub", "Tensor"), "mul": ("mul", "Tensor"),
    "div": ("div", "Tensor"), "pow": ("pow", "Tensor_Tensor"), "transpose": ("transpose", "int"),
    "eq": ("eq", "Tensor"), "ne": ("ne", "Tensor"), "lt": ("lt", "Tensor"), "le": ("le", "Tensor"),
    "gt": ("gt", "Tensor"), "ge": ("ge", "Tensor"), "flatten": ("flatten", "using_ints"),
    "squeeze": ("squeeze", "dims"), "where": ("where", "self"), "split": ("split", "Tensor"),
    "select": ("select", "int"), "slice": ("slice", "Tensor"), "softmax": ("_softmax", "default"),
    "log_softmax": ("_log_softmax", "default"), "nll_loss": ("nll_loss_forward", "default"),
    "log_softmax_backward_data": ("_log_softmax_backward_data", "default"), "to_copy": ("_to_copy", "default"),
    "rsub": ("rsub", "Scalar"),  # (RSub, number - tensor: torch shows rsub.Scalar(tensor, number))
    # (torch's conj and conj_physical are composite: a complex tensor reaches the mode as their kernels)
    "conj": ("_conj", "default"), "conj_physical": ("_conj_physical", "default"),
    "fft_c2c": ("_fft_c2c", "default"), "fft_r2c": ("_fft_r2c", "default"), "fft_c2r": ("_fft_c2r", "default"),
}


class DispatchedOverload(OpOverload):
    """The ``func`` a handler receives: one chainrule op as the aten overload torch would name.

    Calling it runs the op below the current mode. It compares and hashes equal to the overload
    of the same name in ``torch.ops.aten`` (``func == torch.ops.aten.mul.Tensor``), as overloads
    compare by their qualified name."""

    def __init__(self, op_class, op_name: str, overload_name: str, schema_args: bool = False) -> None:
        super().__init__("aten", op_name, overload_name, self._run_op)
        self._op_class = op_class
        self._schema_args = schema_args  # (args and kwargs are torch's schema's: _ATEN_SCHEMAS)

    def _run_op(self, *args, **kwargs):
        if self._schema_args:
            internal = _as_given(self, args, kwargs)
            if internal is None:  # the handler changed an argument: torch's overload runs what it asked for
                return _as_op_result(self, _aten_callable(self._op_name, self._overloadname)(*args, **kwargs))
            args, kwargs = internal
        else:
            from_aten = getattr(self._op_class, "from_aten_arguments", None)
            if from_aten is not None:
                args, kwargs = from_aten(args, kwargs)
        pending = _pending.stack[-1] if getattr(_pending, "stack", None) else None
        if _mode_stack and pending is not None and pending.given is not None and pending.op_class is self._op_class \
                and args and isinstance(args[0], _function._Tensor):
            # (an outer mode, which the run reaches next and which takes the note, sees the call as written too:
            # softmax(-1), t())
            _function.given_arguments = (self._op_class, weakref.ref(args[0]), pending.given)
        if (pending is not None and pending.record and pending.output is None
                and pending.op_class is self._op_class and len(args) == len(pending.inputs)
                and all(a is b for a, b in zip(args, pending.inputs))):
            # the handler runs the op on its own inputs: this is the call autograd records
            with enable_grad():
                pending.output = out = _function._apply_array_op(self._op_class, *args, **kwargs)
        else:
            out = _function._apply_array_op(self._op_class, *args, **kwargs)
        if f"{self._op_name}.{self._overloadname}" in _WITH_INDICES:
            return out, _indices_of(kwargs)
        return out


_overloads: dict = {}


def _aten_arguments(op_class, inputs, params) -> tuple:
    """(args, kwargs) as torch's overload takes them: an op whose node keeps an argument as a
    parameter rather than an input (where's condition) places it as torch does."""
    to_aten = getattr(op_class, "to_aten_arguments", None)
    if to_aten is not None:
        return to_aten(inputs, params)
    return tuple(_operand(t) for t in inputs), dict(params)


def _operand(t):
    """An op's input as torch's dispatcher hands it: a mixed-dtype operand as it was, not its promoted
    stand-in (function.promoted_operand; torch's TensorIterator casts inside the op)."""
    base = getattr(t, "_base", None)
    return base.source if base.__class__ is _function._Promoted else t


def _handler_call(op_class, inputs, params) -> tuple:
    """(func, args, kwargs) a handler gets for the op: the overload and arguments of torch's aten
    schema where ``_ATEN_SCHEMAS`` knows the op's, else the op's own (``_aten_arguments``)."""
    schema = _ATEN_SCHEMAS.get(op_class.__name__)
    given = _function.given_arguments
    if given is not None:
        _function.given_arguments = None
    if schema is not None:
        if given is not None and given[0] is op_class and inputs and given[1]() is inputs[0]:
            # (the schema shows them; the op runs on its own params)
            shown = schema(inputs, {**params, **given[2]})
        else:
            shown = schema(inputs, params)
        if shown is not None:
            name, args, kwargs = shown
            return _schema_overload(op_class, name), args, kwargs
    return overload_of(op_class), *_aten_arguments(op_class, inputs, params)


def overload_of(op_class) -> DispatchedOverload:
    """The aten overload a chainrule op class is shown as (built once per class)."""
    overload = _overloads.get(op_class)
    if overload is None:
        stem = _op_name(op_class).split("::", 1)[1]
        # (a class shown as one of several overloads of its op says which: lerp's Scalar and Tensor,
        # RSubTensors' rsub.Tensor beside RSub's rsub.Scalar)
        op_name, overload_name = _ATEN_NAMES.get(stem, (stem, "default"))
        overload_name = getattr(op_class, "aten_overload", overload_name)
        overload = _overloads[op_class] = DispatchedOverload(op_class, op_name, overload_name)
    return overload



# ---- torch's aten schemas: the overload, args and kwargs torch's dispatcher hands a handler
# Each entry turns an op's inputs and parameters into (overload, args, kwargs) as torch 2.13 passes
# them: positional arguments up to the last one given, defaults left out, dims as lists, dtypes and
# memory formats as chainrule's objects; None shows the op's own (for a form without a schema).
# A handler that calls ``func`` with what it got (tensors swapped for others, as wrapper subclasses
# do) runs the op itself; one that changed any other argument gets torch.ops.aten's overload of
# that name run on what it asked for.
_INT64_MAX = 9223372036854775807


def _dims(params) -> list | None:
    given = params.get("given_dims", params["dims"])  # (as the call gave them: note_given; None as torch's nanmean)
    return None if given is None else list(given)


def _all_dims(inputs, params) -> bool:
    return not params.get("keepdim") and tuple(params["dims"]) == tuple(range(inputs[0].ndim))


def _trailing(args: tuple, defaults: tuple) -> tuple:
    """``args`` without the trailing ones equal to their default (``defaults`` aligned at the end)."""
    args = list(args)
    for default in reversed(defaults):
        if args and type(args[-1]) is type(default) and args[-1] == default:
            args.pop()
        else:
            break
    return tuple(args)


def _torch_dtype(np_dtype):
    from .. import _dtype

    return None if np_dtype is None else _dtype.to_dtype(np_dtype)


def _as_number(value):
    """A Python number for a 0-d array or a wrapped-number tensor (torch shows the Scalar)."""
    data = getattr(value, "_data", value)
    return np.asarray(data).item()


def _binary(name: str, overload: str = "Tensor"):
    def show(inputs, params):  # (the overload as the caller noted it: mean's backward divides by a Scalar)
        a, b = _operand(inputs[0]), _operand(inputs[1])
        if getattr(b, "_wrapped_number", False):
            b = b.__dict__.get("_wrapped_value", b)
            b = _as_number(b) if isinstance(b, _function._Tensor) else b
        kwargs = {"alpha": params["alpha"]} if params.get("alpha", 1) != 1 else {}
        return (name, params.get("given_overload", overload)), (a, b), kwargs
    return show


def _reduction(name: str, dim_overload: str, with_dtype: bool = False):
    def show(inputs, params):
        dtype = params.get("shown_dtype", params.get("dtype")) if with_dtype else None
        kwargs = {"dtype": _torch_dtype(dtype)} if dtype is not None else {}
        if "given_dims" not in params and _all_dims(inputs, params):
            return (name, "default"), (inputs[0],), kwargs
        return (name, dim_overload), _trailing((inputs[0], _dims(params), bool(params["keepdim"])), (False,)), kwargs
    return show


def _prod(inputs, params):
    """prod.default over every element, prod.dim_int over the one dim the call gave; the dtype only
    where the call gave one."""
    dtype = params.get("shown_dtype", params.get("dtype"))
    kwargs = {"dtype": _dtype_object(dtype)} if dtype is not None else {}
    if params.get("given_dim") is None:
        return ("prod", "default"), (inputs[0],), kwargs
    return ("prod", "dim_int"), _trailing((inputs[0], params["given_dim"], bool(params["keepdim"])), (False,)), kwargs


def _dtype_object(dtype):
    """chainrule's dtype object for a dtype given either way (a NumPy dtype or chainrule's)."""
    from .. import _dtype

    return _dtype.to_dtype(dtype)


def _extreme_all(inputs, params):
    if not _all_dims(inputs, params):
        return None
    return ("max" if params["largest"] else "min", "default"), (inputs[0],), {}


def _extreme_dims(inputs, params):
    args = _trailing((inputs[0], _dims(params), bool(params["keepdim"])), (False,))
    return ("amax" if params["largest"] else "amin", "default"), args, {}


def _extreme_dim(name: str):
    def show(inputs, params):
        return (name, "dim"), _trailing((inputs[0], params["dim"], bool(params["keepdim"])), (False,)), {}
    return show


def _spread(name: str):
    def show(inputs, params):
        if _all_dims(inputs, params) and params["correction"] == 1:
            return (name, "correction"), (inputs[0],), {}
        kwargs = {"correction": params["correction"]}
        if params["keepdim"]:
            kwargs["keepdim"] = True
        return (name, "correction"), (inputs[0], _dims(params)), kwargs
    return show


def _norm(inputs, params):
    x, order = inputs[0], params.get("given_ord", params["ord"])
    if "given_dims" not in params and _all_dims(inputs, params):
        return ("linalg_vector_norm", "default"), _trailing((x, order), (2,) if "given_ord" in params else (2.0,)), {}
    return ("linalg_vector_norm", "default"), _trailing((x, order, _dims(params), bool(params["keepdim"])), (False,)), {}


def _single_axis(key, ndim: int):
    """(dim, item) where ``key`` indexes one dim with ``item`` and takes every other whole; a lone key
    indexes dim 0 (``x[:]`` is torch's slice(x, 0, 0, INT64_MAX))."""
    if not isinstance(key, tuple):
        return 0, key
    items = key
    if sum(item is Ellipsis for item in items) > 1:
        return None
    if Ellipsis in items:
        at = next(i for i, item in enumerate(items) if item is Ellipsis)
        items = items[:at] + (slice(None),) * (ndim - len(items) + 1) + items[at + 1:]
    picked = [(dim, item) for dim, item in enumerate(items) if not (isinstance(item, slice) and item == slice(None))]
    return picked[0] if len(picked) == 1 else None


def _select(inputs, params):
    picked = _single_axis(params["key"], inputs[0].ndim)
    if picked is None or not isinstance(picked[1], (int, np.integer)) or isinstance(picked[1], bool):
        return None
    return ("select", "int"), (inputs[0], picked[0], int(picked[1])), {}


def _slice(inputs, params):
    picked = _single_axis(params["key"], inputs[0].ndim)
    if picked is None or not isinstance(picked[1], slice):
        return None
    dim, item = picked
    start = 0 if item.start is None else item.start
    stop = _INT64_MAX if item.stop is None else item.stop
    return ("slice", "Tensor"), _trailing((inputs[0], dim, start, stop, 1 if item.step is None else item.step), (1,)), {}


def _slice_backward(inputs, params):
    """A slice's gradient put back (SliceScatter) as torch's slice_backward(grad, input_sizes, dim, start, end, step)."""
    shape = params["shape"]
    picked = _single_axis(params["key"], len(shape))
    if picked is None or not isinstance(picked[1], slice):
        return None
    dim, item = picked
    start = 0 if item.start is None else item.start
    stop = _INT64_MAX if item.stop is None else item.stop
    return ("slice_backward", "default"), (inputs[0], list(shape), dim, start, stop,
                                           1 if item.step is None else item.step), {}


def _select_backward(inputs, params):
    """A select's gradient put back (SelectScatter) as torch's select_backward(grad, input_sizes, dim, index)."""
    shape = params["shape"]
    picked = _single_axis(params["key"], len(shape))
    if picked is None or not isinstance(picked[1], (int, np.integer)) or isinstance(picked[1], bool):
        return None
    return ("select_backward", "default"), (inputs[0], list(shape), picked[0], int(picked[1])), {}


def _max_unpool(inputs, params):
    """max_unpool2d's write (FlatScatter assigning a batch's planes) as torch's max_unpool2d(input, indices,
    output_size), 3-d's as max_unpool3d(input, indices, output_size, stride, padding) where max_unpool3d noted those
    (given_stride, given_padding); batched or not."""
    plane = tuple(params["plane_shape"])
    if not params.get("assign") or len(plane) not in (2, 3) or inputs[0].ndim not in (len(plane) + 1, len(plane) + 2):
        return None
    args = (inputs[0], _function._Tensor._make(params["indices"]), list(plane))
    if len(plane) == 2:
        return ("max_unpool2d", "default"), args, {}
    if "given_stride" not in params:
        return None
    return ("max_unpool3d", "default"), (*args, params["given_stride"], params["given_padding"]), {}


def _roll(inputs, params):
    """roll as torch's schema takes it: the shifts and dims as lists, the dims as given (none for a flat roll)."""
    shifts = params["shifts"]
    shifts = [shifts] if isinstance(shifts, int) else list(shifts)
    dims = params.get("given_dims", params["dims"])
    return ("roll", "default"), (inputs[0], shifts) if dims is None else (inputs[0], shifts, list(dims)), {}


def _unsqueeze_by_key(inputs, params):
    """``x[:, None]``, ``x[..., None]``: one new axis among whole dims, torch's unsqueeze at its place."""
    key = params["key"]
    items = key if isinstance(key, tuple) else (key,)
    if sum(item is None for item in items) != 1 or sum(item is Ellipsis for item in items) > 1 or not all(
            item is None or item is Ellipsis or (isinstance(item, slice) and item == slice(None)) for item in items):
        return None
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + (slice(None),) * (inputs[0].ndim - len(items) + 2) + items[at + 1:]
    return ("unsqueeze", "default"), (inputs[0], items.index(None)), {}


def _diagonal(inputs, params):
    offset, dim1, dim2 = params.get("given_dims") or (params["offset"], params["dim1"], params["dim2"])
    return ("diagonal", "default"), _trailing((inputs[0], offset, dim1, dim2), (0, 0, 1)), {}


def _index(inputs, params):
    key = params["key"]
    if params.get("mode") != "rows" or not isinstance(key, np.ndarray) or key.dtype.kind not in "iub":
        return None
    return ("index", "Tensor"), (inputs[0], [_function._Tensor._make(key)]), {}


def _clone(inputs, params):
    if params.get("preserve_format"):
        return ("clone", "default"), (inputs[0],), {}
    import chainrule

    layout = chainrule.channels_last if params.get("channels_last") else chainrule.contiguous_format
    return ("clone", "default"), (inputs[0],), {"memory_format": layout}


def _to_copy(inputs, params):
    """A cast or copy as torch's _to_copy: its kwargs those of the ``Tensor.to`` overload the call matched
    (noted as to_overload: dtype_layout adds the layout and device, to.device the device)."""
    kwargs = {"dtype": _torch_dtype(params["dtype"])}
    overload = params.get("to_overload")
    if overload == "dtype_layout":
        from .._layout import strided

        kwargs["layout"] = strided
    if overload in ("dtype_layout", "device"):
        kwargs["device"] = inputs[0].device
    format_name = params.get("memory_format")
    if format_name is not None:
        import chainrule

        kwargs["memory_format"] = getattr(chainrule, format_name)
    return ("_to_copy", "default"), (inputs[0],), kwargs


def _split(inputs, params):
    size, dim = params["split_size"], params["given_dim"]
    if isinstance(size, (int, np.integer)):
        return ("split", "Tensor"), _trailing((inputs[0], int(size), dim), (0,)), {}
    return ("split_with_sizes", "default"), _trailing((inputs[0], list(size), dim), (0,)), {}


def _cat(inputs, params):
    if params.get("skipped"):
        return None
    return ("cat", "default"), _trailing((list(inputs), params.get("given_dim", params["dim"])), (0,)), {}


def _convolution(inputs, params):
    geo = params["geo"]
    if geo.pad_lo != geo.pad_hi:
        return None
    x, weight, bias = (*inputs, None)[:3]
    return ("convolution", "default"), (x, weight, bias, list(geo.stride), list(geo.pad_lo), list(geo.dilation),
                                        False, [0] * len(geo.kernel), geo.groups), {}


def _transposed_convolution(inputs, params):
    """conv_transpose's forward (ConvInput: the input gradient of the convolution whose input has the
    transpose's output shape) as torch's convolution(transposed=True), the output padding recovered."""
    geo = params["geo"]
    if geo.pad_lo != geo.pad_hi:
        return None
    x, weight, bias = (*inputs, None)[:3]
    output_padding = [n - ((m - 1) * s - 2 * p + dl * (k - 1) + 1) for n, m, s, p, dl, k in zip(
        geo.in_shape, geo.out_shape, geo.stride, geo.pad_lo, geo.dilation, geo.kernel)]
    return ("convolution", "default"), (x, weight, bias, list(geo.stride), list(geo.pad_lo), list(geo.dilation),
                                        True, output_padding, geo.groups), {}


def _max_pool(inputs, params):
    geo = params["geo"]
    n = len(geo.kernel)
    stride = [] if geo.stride_defaulted else list(geo.stride)  # (a stride given, the kernel's too, is shown)
    args = (inputs[0], list(geo.kernel), stride, list(geo.padding), list(geo.dilation), bool(geo.ceil_mode))
    name = f"max_pool{n}d_with_indices"
    return (name, "default"), _trailing(args, ([], [0] * n, [1] * n, False)), {}


def _avg_pool(inputs, params):
    """avg_pool2d/3d(self, kernel_size, stride=[], padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None) as torch's F passes them: a defaulted stride as [] (1-d's unit-height geometry
    has its stride given), trailing defaults left out."""
    geo = params["geo"]
    n = len(geo.kernel)
    stride = [] if geo.stride_defaulted else list(geo.stride)
    args = (inputs[0], list(geo.kernel), stride, list(geo.padding), bool(geo.ceil_mode),
            bool(params["count_include_pad"]), params["divisor_override"])
    return (f"avg_pool{n}d", "default"), _trailing(args, ([], [0] * n, False, True, None)), {}


def _layer_norm(inputs, params):
    x = inputs[0]
    shape = [x.shape[d] for d in params["dims"]]
    return ("native_layer_norm", "default"), (x, shape, None, None, params["eps"]), {}


def _affine_layer_norm(inputs, params):
    x, weight, bias = inputs
    shape = [x.shape[d] for d in params["dims"]]
    return ("native_layer_norm", "default"), (x, shape, weight, bias, params["eps"]), {}


def _constant_pad(inputs, params):
    """F.pad's constant mode: torch's constant_pad_nd(input, pad, value) with F.pad's float value."""
    pad, value = params.get("pad"), params["value"]
    if pad is None:
        return None
    if "given_value" in params:  # torch.constant_pad_nd's Scalar as given, left out where it is the default 0
        return ("constant_pad_nd", "default"), _trailing((inputs[0], list(pad), params["given_value"]), (0,)), {}
    return ("constant_pad_nd", "default"), (inputs[0], list(pad), value if isinstance(value, complex) else float(value)), {}


def _mode_pad(inputs, params):
    """F.pad's reflect and replicate modes (with the pad noted as given: note_given)."""
    pad = params.get("pad")
    if pad is None or params["mode"] not in ("reflect", "replicate"):
        return None
    kind = "reflection" if params["mode"] == "reflect" else "replication"
    return (f"{kind}_pad{len(pad) // 2}d", "default"), (inputs[0], list(pad)), {}


def _embedding(inputs, params):
    indices = params["indices"]
    padding = -1 if params["padding_idx"] is None else params["padding_idx"]
    args = (inputs[0], _function._Tensor._make(indices), padding, bool(params["scale_grad_by_freq"]), bool(params["sparse"]))
    return ("embedding", "default"), _trailing(args, (-1, False, False)), {}


_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _nll_loss(inputs, params):
    if params.get("log_softmax") or params.get("target") is None:
        return None
    x, target = inputs[0], params["target"]
    return ("nll_loss_forward", "default"), (x, target, params["weight"], _REDUCTIONS[params["reduction"]],
                                             params["ignore_index"]), {}


def _masked_fill(inputs, params):
    return ("masked_fill", "Scalar"), (inputs[0], params["mask"], _as_number(params["value"])), {}


def _masked_fill_tensor(inputs, params):
    return ("masked_fill", "Tensor"), (inputs[0], params["mask"], inputs[1]), {}


def _gather(inputs, params):
    return ("gather", "default"), (inputs[0], _given_dim(params), _function._Tensor._make(params["index"])), {}


def _scatter_add_into(inputs, params):
    """gather's backward (ScatterAddInto, into the zeros it was given) as torch's scatter_add(zeros, dim, index, grad)."""
    return ("scatter_add", "default"), (inputs[0], _given_dim(params), _function._Tensor._make(params["index"]),
                                        inputs[1]), {}


def _shape_arg(name: str, key: str, given_key: str = ""):
    def show(inputs, params):
        return (name, "default"), (inputs[0], list(params.get(given_key) or params[key])), {}
    return show


def _given_dim(params):
    given = params.get("given_dim")
    return params["dim"] if given is None else given


def _squeeze(inputs, params):
    if "given_dims" in params:  # squeeze(), squeeze(dim), squeeze(dims) as called
        given = params["given_dims"]
        if given is None:
            return ("squeeze", "default"), (inputs[0],), {}
        if isinstance(given, (tuple, list)):
            return ("squeeze", "dims"), (inputs[0], list(given)), {}
        return ("squeeze", "dim"), (inputs[0], given), {}
    dims = list(params["dims"])
    if len(dims) == 1:
        return ("squeeze", "dim"), (inputs[0], dims[0]), {}
    return ("squeeze", "dims"), (inputs[0], dims), {}


def _as_called(inputs, params):
    """The call as the op function noted it (note_given's aten_call): ops whose params keep a
    derived form of what was given (topk's index for k, index_select's array for the index)."""
    return params.get("aten_call")


def _mkldnn_rnn_layer(inputs, params):
    """A oneDNN LSTM layer (ops.rnn's _LSTMOneDNN) as torch's CPU lstm runs it, where the module noted its
    (num_layers, has_biases, bidirectional, batch_first, train): mode 2 is oneDNN's LSTM."""
    call = params.get("onednn_call")
    if call is None:
        return None
    x, w_ih, w_hh, b_ih, b_hh, h0, c0 = inputs
    if params.get("shown_biases") is not None:  # (a layer without biases: torch's zeros of the weights' shapes)
        b_ih, b_hh = params["shown_biases"]
    return ("mkldnn_rnn_layer", "default"), (x, w_ih, w_hh, b_ih, b_hh, h0, c0, params["reverse"], [], 2,
                                             w_hh.shape[1], *call), {}


def _clamp(inputs, params):
    """clamp.default, or clamp_min/clamp_max.default where the call was one of those (its one bound)."""
    one_bound = params.get("one_bound")
    if one_bound is not None:
        return (f"clamp_{one_bound}", "default"), (inputs[0], params[one_bound]), {}
    return ("clamp", "default"), _trailing((inputs[0], params["min"], params["max"]), (None, None)), {}


def _clamp_by_tensors(inputs, params):
    """clamp.Tensor with the bounds the call gave (an absent one's stand-in constant shown as None)."""
    bounds = tuple(bound if given else None for bound, given in zip(inputs[1:], params.get("given", (True, True))))
    return ("clamp", "Tensor"), _trailing((inputs[0], *bounds), (None, None)), {}


def _adaptive_avg_pool(inputs, params):
    """Adaptive average pooling (ops.pool's SeparableLinear, one averaging matrix per spatial dim) as torch's
    _adaptive_avg_pool2d/3d with the output size; its transpose (the backward) in its own form."""
    if params["transpose"]:
        return None
    matrices = params["matrices"]
    return (f"_adaptive_avg_pool{len(matrices)}d", "default"), (inputs[0], [int(m.shape[1]) for m in matrices]), {}


def _sum_to_size(inputs, params):
    """The engine's broadcast reduction as torch's at::sum_to runs it: the leading dims and those broadcast
    from 1 summed, kept as size 1 (the view dropping the leading ones follows)."""
    shape, given = params["shape"], inputs[0].shape
    lead = len(given) - len(shape)
    dims = [*range(lead), *(lead + i for i, size in enumerate(shape) if size == 1 and given[lead + i] != 1)]
    return ("sum", "dim_IntList"), (inputs[0], dims, True), {}


def _mse_loss(inputs, params):
    reduction = _REDUCTIONS[params["reduction"]]
    return ("mse_loss", "default"), (*inputs, reduction) if reduction != 1 else tuple(inputs), {}


_ATEN_SCHEMAS = {
    "Add": _binary("add"), "AddScaled": _binary("add"), "Sub": _binary("sub"), "Mul": _binary("mul"),
    "Div": _binary("div"),
    "PowScalar": lambda inputs, params: (("pow", "Tensor_Scalar"), (inputs[0], params["exponent"]), {}),
    "Sum": _reduction("sum", "dim_IntList", True), "SumDim": _reduction("sum", "dim_IntList", True),
    "Mean": _reduction("mean", "dim", True), "MeanDim": _reduction("mean", "dim", True),
    "AmaxAll": _extreme_all, "AminAll": _extreme_all, "Amax": _extreme_dims, "Amin": _extreme_dims,
    "MaxDim": _extreme_dim("max"), "MinDim": _extreme_dim("min"), "Var": _spread("var"), "Std": _spread("std"),
    "Norm": _norm, "Prod": _prod, "ProdDim": _prod,
    "Logcumsumexp": lambda inputs, params: (("logcumsumexp", "default"),
                                            (inputs[0], params.get("given_dim", params["dim"])), {}),
    "Logsumexp": lambda inputs, params: (("logsumexp", "default"),
                                         _trailing((inputs[0], _dims(params), bool(params["keepdim"])), (False,)), {}),
    "Softmax": lambda inputs, params: (("_softmax", "default"), (inputs[0], _given_dim(params), False), {}),
    "LogSoftmax": lambda inputs, params: (("_log_softmax", "default"), (inputs[0], _given_dim(params), False), {}),
    "Transpose": lambda inputs, params: ((("t", "default"), (inputs[0],), {}) if params.get("t") else
                                         (("transpose", "int"), (inputs[0], params["dim0"], params["dim1"]), {})),
    "Reshape": _shape_arg("view", "shape", "given_shape"), "UnsafeView": lambda inputs, params: params.get("aten_call") or _shape_arg("_unsafe_view", "shape")(inputs, params), "Expand": _shape_arg("expand", "shape"),
    "Permute": _shape_arg("permute", "dims"), "Repeat": _shape_arg("repeat", "repeats"),
    "UnsqueezeView": lambda inputs, params: (("unsqueeze", "default"), (inputs[0], params["dim"]), {}),
    "SqueezeView": _squeeze,
    "Clone": _clone, "ToCopy": _to_copy, "Split": _split, "SplitWithSizes": _split, "Cat": _cat,
    "Stack": lambda inputs, params: (("stack", "default"), _trailing((list(inputs), params["given_dim"]), (0,)), {}),
    "Unbind": lambda inputs, params: (("unbind", "int"), _trailing((inputs[0], params["given_dim"]), (0,)), {}),
    "Alias": lambda inputs, params: (("alias", "default"), (inputs[0],), {}),
    "ConstantPad": _constant_pad, "ModePad": _mode_pad,
    "Select": _select, "Slice": _slice, "SliceScatter": _slice_backward, "SelectScatter": _select_backward,
    "Index": _index, "Gather": _gather, "FlatScatter": _max_unpool, "Unsqueeze": _unsqueeze_by_key,
    "Diagonal": _diagonal, "Roll": _roll, "ScatterAddInto": _scatter_add_into,
    "Where": lambda inputs, params: (("where", "self"), (params["condition"], *map(_operand, inputs)), {}),
    "MaskedFill": _masked_fill, "MaskedFillTensor": _masked_fill_tensor,
    "Clamp": _clamp, "ClampByTensors": _clamp_by_tensors,
    "ClampMinByTensor": lambda inputs, params: (("clamp_min", "Tensor"), tuple(inputs), {}),
    "ClampMaxByTensor": lambda inputs, params: (("clamp_max", "Tensor"), tuple(inputs), {}),
    "Softplus": lambda inputs, params: (("softplus", "default"), _trailing((inputs[0], params["beta"], params["threshold"]),
                                                                           (1, 20)), {}),
    "SumToSize": _sum_to_size, "SumToScalar": lambda inputs, params: (("sum", "default"), (inputs[0],), {}),
    "Gelu": lambda inputs, params: (("gelu", "default"), (inputs[0],),
                                    {} if params["approximate"] == "none" else {"approximate": params["approximate"]}),
    # (a bound torch's Python wrapper passes as a float is shown though it equals the schema's int default)
    "Elu": lambda inputs, params: (("elu", "default"), _trailing(
        (inputs[0], params["alpha"], params["scale"], params["input_scale"]), (1, 1, 1)), {}),
    "Celu": lambda inputs, params: (("celu", "default"), _trailing((inputs[0], params["alpha"]), (1.0,)), {}),
    "Hardtanh": lambda inputs, params: (("hardtanh", "default"), _trailing(
        (inputs[0], params["min_val"], params["max_val"]), (-1, 1)), {}),
    "LeakyRelu": lambda inputs, params: (("rrelu_with_noise", "default"), _trailing(
        (inputs[0], *params["rrelu_call"]), (1.0 / 8, 1.0 / 3)), {}) if "rrelu_call" in params else (
        ("leaky_relu", "default"), _trailing((inputs[0], params["negative_slope"]), (0.01,)), {}),
    "LogSigmoid": lambda inputs, params: (("log_sigmoid_forward", "default"), (inputs[0],), {}),
    "Convolution": _convolution, "ConvInput": _transposed_convolution, "MaxPool": _max_pool, "MaxPool3D": _max_pool, "AvgPool": _avg_pool, "AvgPool3D": _avg_pool,
    "LayerNormalize": _layer_norm,
    "LayerNorm": _affine_layer_norm, "Embedding": _embedding,
    "_NllLoss": _nll_loss, "_MseLoss": _mse_loss, "_LSTMOneDNN": _mkldnn_rnn_layer,
    "SeparableLinear": _adaptive_avg_pool,
    # (values and indices, as torch's: found inside the op, so a handler's run finds them on its values)
    "AdaptiveMaxPool": lambda inputs, params: (("adaptive_max_pool2d", "default"), (inputs[0], list(params["sizes"])), {}),
    "AdaptiveMaxPool3D": lambda inputs, params: (("adaptive_max_pool3d", "default"),
                                                 (inputs[0], list(params["sizes"])), {}),
    "FractionalMaxPool": lambda inputs, params: (("fractional_max_pool2d", "default"), (
        inputs[0], list(params["kernel"]), list(params["sizes"]), params["samples"]), {}),
    "FractionalMaxPool3D": lambda inputs, params: (("fractional_max_pool3d", "default"), (
        inputs[0], list(params["kernel"]), list(params["sizes"]), params["samples"]), {}),
    "AsStrided": lambda inputs, params: (("as_strided", "default"), (
        inputs[0], list(params["size"]), list(params["stride"]),
        *((params["storage_offset"],) if params.get("offset_given", True) else ())), {}),
    **dict.fromkeys(("IndexSelect", "Scatter", "ScatterValue", "ScatterAdd", "TopkValues", "SortValues",
                     "SortStableValues", "Cumsum", "Cumprod", "ScaledBy", "DivNumber", "MedianAll", "MedianDim",
                     "NanmedianAll", "NanmedianDim", "KthvalueValues", "ModeValues", "Cummax", "Cummin"), _as_called),
}

_schema_overloads: dict = {}


def _schema_overload(op_class, name: tuple) -> DispatchedOverload:
    key = (op_class, name)
    overload = _schema_overloads.get(key)
    if overload is None:
        overload = _schema_overloads[key] = DispatchedOverload(op_class, *name, schema_args=True)
    return overload


def _copied(value):
    """A handler's own copy of the arguments: lists and dicts it edits in place leave the shown ones."""
    if isinstance(value, (list, tuple)):
        copy = [_copied(item) for item in value]
        return copy if isinstance(value, list) else tuple(copy)
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    return value


def _handed(func, args, kwargs) -> tuple:
    """What the handler gets: its own copies of a schema-form call's lists and dicts; an op shown in its
    own form gets its params as they are (BatchNorm's stats dict, which its forward fills, is read after)."""
    if getattr(func, "_schema_args", False):
        return _copied(args), _copied(kwargs)
    return args, kwargs


def _swaps(given, shown, swapped: dict) -> bool:
    """Whether ``given`` is ``shown`` with at most its tensors swapped for others (noted in
    ``swapped``, by the shown tensor's id)."""
    if isinstance(shown, _function._Tensor):
        if not isinstance(given, _function._Tensor):
            return False
        if given is not shown:
            swapped[id(shown)] = given
        return True
    if isinstance(shown, (list, tuple)):
        return (isinstance(given, (list, tuple)) and len(given) == len(shown)
                and all(_swaps(g, s, swapped) for g, s in zip(given, shown)))
    if isinstance(shown, dict):
        return (isinstance(given, dict) and given.keys() == shown.keys()
                and all(_swaps(given[key], shown[key], swapped) for key in shown))
    if type(given) is not type(shown):
        return False
    try:
        return bool(given == shown)
    except (TypeError, ValueError):
        return given is shown


def _as_given(overload, args, kwargs):
    """The op's own (inputs, params) for a call of ``overload`` with the arguments its handler got,
    tensors swapped or not; None where another argument changed (or no handler is running the op)."""
    stack = getattr(_pending, "stack", None)
    pending = stack[-1] if stack else None
    if pending is None or pending.shown is None or pending.shown[0] is not overload:
        return None
    swapped: dict = {}
    if not (_swaps(args, pending.shown[1], swapped) and _swaps(kwargs, pending.shown[2], swapped)):
        return None
    if not swapped:
        return tuple(pending.inputs), dict(pending.params)
    if pending.op_class.params_from_values:
        return None  # (its params were computed from the values of the tensors swapped out)
    # (a tensor can stand at several places: x * x, cat([x, x]))
    held = [t for t in pending.inputs if t is not None]
    held += [value for value in pending.params.values() if isinstance(value, _function._Tensor)]
    if not set(swapped) <= {id(t) for t in held}:
        return None  # a tensor the op keeps as an array (index's key) was swapped
    inputs = tuple(swapped.get(id(t), t) if t is not None else t for t in pending.inputs)
    params = {key: swapped.get(id(value), value) if isinstance(value, _function._Tensor) else value
              for key, value in pending.params.items()}
    return inputs, params


# overloads whose torch result is a tuple where chainrule's op gives its first item alone (max.dim's
# indices, the pooling indices, layer norm's statistics, nll's total weight are its parameters or
# not kept): a changed call gives what the op would have
_FIRST_OF_RESULT = {"max.dim", "min.dim", "native_layer_norm.default", "nll_loss_forward.default",
                    "log_sigmoid_forward.default",
                    "topk.default", "sort.default", "sort.stable", "median.default", "median.dim",
                    "kthvalue.default", "mode.default", "cummax.default", "cummin.default",
                    *(f"max_pool{n}d_with_indices.default" for n in (1, 2, 3))}
# overloads torch answers with (values, indices) where chainrule's op (a Gather: _select_along) gives the
# values and keeps the indices as its ``index`` parameter: a handler's call gets torch's pair, and the
# dispatcher hands the op the values and the op function the indices the handler returned
# (_split_indices, taken by dispatched_indices): a wrapper's are its inner tensor's, not its placeholder's
_WITH_INDICES = frozenset(("sort.default", "sort.stable", "topk.default", "median.dim", "nanmedian.dim",
                           "kthvalue.default",
                           "mode.default", "cummax.default", "cummin.default", "max.dim", "min.dim"))


def _indices_of(params):
    """The indices tensor torch's overload returns beside the values, from a Gather op's own parameters."""
    index, dim = params["index"], params["dim"]
    if index.ndim and not params["keepdim"]:
        index = index.squeeze(dim)
    return _function._Tensor._make(index.astype(np.int64, copy=False))


def _split_indices(func, result):
    """A handler's answer to an overload of _WITH_INDICES: the values, the op's output; the indices
    are kept for the op function (dispatched_indices) beside a weak reference to those values."""
    if (f"{func._op_name}.{func._overloadname}" not in _WITH_INDICES or not isinstance(result, (tuple, list))
            or len(result) != 2):
        return result
    _pending.indices = weakref.ref(result[0]), result[1]
    return result[0]


def dispatched_indices(values):
    """The indices the handler returned with ``values`` (what a dispatched op of _WITH_INDICES gave its
    caller), taken once; None where ``values`` came from no handler."""
    kept = getattr(_pending, "indices", None)
    if kept is None:
        return None
    _pending.indices = None
    return kept[1] if kept[0]() is values else None


_function.dispatched_indices = dispatched_indices


def _as_op_result(overload, result):
    if f"{overload._op_name}.{overload._overloadname}" in _WITH_INDICES and isinstance(result, tuple):
        return tuple(result)
    if f"{overload._op_name}.{overload._overloadname}" not in _FIRST_OF_RESULT or not isinstance(result, tuple):
        return result
    params = handled_op_parameters()
    if overload._op_name.startswith("max_pool") and params is not None and params.get("return_indices"):
        return tuple(result)
    return result[0]


def _aten_callable(op_name: str, overload_name: str):
    """torch.ops.aten's overload (what users call), or this module's stand-in for one it lacks."""
    from ..ops.namespaces import _aten_overloads

    overload = _aten_overloads(op_name).get(overload_name)
    if overload is not None:
        return overload
    stand_in = _ATEN_STAND_INS.get(f"{op_name}.{overload_name}")
    if stand_in is None:
        raise NotImplementedError(f"chainrule cannot run aten.{op_name}.{overload_name} with changed arguments")
    return stand_in


def _chainrule():
    import chainrule

    return chainrule


def _stand_in_convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    import chainrule

    functional = chainrule.nn.functional
    n = input.ndim - 2
    if transposed:
        run = getattr(functional, f"conv_transpose{n}d")
        return run(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return getattr(functional, f"conv{n}d")(input, weight, bias, stride, padding, dilation, groups)


def _stand_in_max_pool(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    import chainrule

    n = len(kernel_size) if isinstance(kernel_size, (list, tuple)) else input.ndim - 2
    run = getattr(chainrule.nn.functional, f"max_pool{n}d")
    return run(input, kernel_size, list(stride) or None, padding, dilation, ceil_mode=ceil_mode, return_indices=True)


def _stand_in_avg_pool(input, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    import chainrule

    n = len(kernel_size) if isinstance(kernel_size, (list, tuple)) else input.ndim - 2
    run = getattr(chainrule.nn.functional, f"avg_pool{n}d")
    return run(input, kernel_size, list(stride) or None, padding, ceil_mode, count_include_pad, divisor_override)


def _stand_in_native_layer_norm(input, normalized_shape, weight, bias, eps):
    import chainrule

    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    mean = input.mean(dims, keepdim=True)
    rstd = (input.var(dims, keepdim=True, correction=0) + eps).rsqrt()
    return chainrule.nn.functional.layer_norm(input, normalized_shape, weight, bias, eps), mean, rstd


def _stand_in_nll_loss_forward(input, target, weight, reduction, ignore_index):
    import chainrule

    kind = {0: "none", 1: "mean", 2: "sum"}[reduction]
    loss = chainrule.nn.functional.nll_loss(input, target, weight, ignore_index=ignore_index, reduction=kind)
    kept = target != ignore_index
    total = (kept.to(input.dtype) if weight is None else weight[target.clamp(min=0)] * kept).sum()
    return loss, total


def _stand_in_index(input, indices):
    return input[tuple(indices)]


def _stand_in_linalg_vector_norm(input, ord=2, dim=None, keepdim=False, *, dtype=None):
    import chainrule

    return chainrule.linalg.vector_norm(input, ord, dim, keepdim, dtype=dtype)


_ATEN_STAND_INS = {
    "convolution.default": _stand_in_convolution, "native_layer_norm.default": _stand_in_native_layer_norm,
    "nll_loss_forward.default": _stand_in_nll_loss_forward, "index.Tensor": _stand_in_index,
    "linalg_vector_norm.default": _stand_in_linalg_vector_norm,
    "slice_backward.default": lambda grad, input_sizes, dim, start, end, step: _chainrule().zeros(
        input_sizes, dtype=grad.dtype).slice_scatter(grad, dim, start, end, step),
    "max_unpool2d.default": lambda input, indices, output_size: _chainrule().ops.pool.FlatScatter.apply(
        input, indices=indices._data, plane_shape=tuple(output_size), assign=True, follow_layout=True),
    "max_unpool3d.default": lambda input, indices, output_size, stride, padding: _chainrule().ops.pool.FlatScatter.apply(
        input, indices=indices._data, plane_shape=tuple(output_size), assign=True, follow_layout=False),
    "select_backward.default": lambda grad, input_sizes, dim, index: _chainrule().zeros(
        input_sizes, dtype=grad.dtype).select_scatter(grad, dim, index),
    "elu.default": lambda input, alpha=1, scale=1, input_scale=1: _chainrule().ops.activation.Elu.apply(
        input, alpha=alpha, scale=scale, input_scale=input_scale),
    "celu.default": lambda input, alpha=1.0: _functional().celu(input, alpha),
    "hardtanh.default": lambda input, min_val=-1, max_val=1: _functional().hardtanh(input, min_val, max_val),
    "leaky_relu.default": lambda input, negative_slope=0.01: _functional().leaky_relu(input, negative_slope),
    "log_sigmoid_forward.default": lambda input: _functional().logsigmoid(input),
    "split_with_sizes.default": lambda input, sizes, dim=0: input.split(list(sizes), dim),
    "unbind.int": lambda input, dim=0: input.unbind(dim),
    "rrelu_with_noise.default": lambda input, noise, lower=1.0 / 8, upper=1.0 / 3, training=False: _functional().rrelu(
        input, lower, upper, training),
    "roll.default": lambda input, shifts, dims=(): input.roll(shifts, list(dims) or None),
    "scatter_add.default": lambda input, dim, index, src: input.scatter_add(dim, index, src),
    "diagonal.default": lambda input, offset=0, dim1=0, dim2=1: input.diagonal(offset, dim1, dim2),
    "squeeze_.dim": lambda input, dim: input.squeeze(dim),
    "repeat.default": lambda input, repeats: input.repeat(*repeats),
    "constant_pad_nd.default": lambda input, pad, value=0: _chainrule().constant_pad_nd(input, pad, value),
    **{f"max_pool{n}d_with_indices.default": _stand_in_max_pool for n in (1, 2, 3)},
    **{f"avg_pool{n}d.default": _stand_in_avg_pool for n in (2, 3)},
    "logsumexp.default": lambda input, dim, keepdim=False: _chainrule().logsumexp(input, dim, keepdim),
    "sort.stable": lambda input, *, stable, dim=-1, descending=False: _chainrule().sort(
        input, stable=stable, dim=dim, descending=descending),
    "_adaptive_avg_pool2d.default": lambda input, size: _chainrule().nn.functional.adaptive_avg_pool2d(input, list(size)),
    "_adaptive_avg_pool3d.default": lambda input, size: _chainrule().nn.functional.adaptive_avg_pool3d(input, list(size)),
    "adaptive_max_pool2d.default": lambda input, size: _chainrule().nn.functional.adaptive_max_pool2d(
        input, list(size), return_indices=True),
    "adaptive_max_pool3d.default": lambda input, size: _chainrule().nn.functional.adaptive_max_pool3d(
        input, list(size), return_indices=True),
    **{f"fractional_max_pool{n}d.default": lambda input, kernel_size, output_size, random_samples, n=n: getattr(
        _chainrule().nn.functional, f"fractional_max_pool{n}d")(input, list(kernel_size), list(output_size),
                                                                 return_indices=True, _random_samples=random_samples)
       for n in (2, 3)},
}



def handled_op_parameters() -> dict | None:
    """The chainrule op's own parameters for the op whose handler is running (None outside one):
    what the schema's arguments leave out (max.dim's indices, found with the values)."""
    stack = getattr(_pending, "stack", None)
    return stack[-1].params if stack else None


# ---- the dispatcher
class _PendingOp:
    """One op handed to a handler: what autograd records around it."""

    __slots__ = ("op_class", "inputs", "params", "record", "output", "shown", "runs", "forward", "given")

    def __init__(self, op_class, inputs, record: bool, params=None) -> None:
        self.op_class = op_class
        self.inputs = inputs
        self.params = params
        self.record = record
        self.output = None
        self.shown = None  # (func, args, kwargs) handed to the handler
        self.runs = 0  # (a wrapper's handler: how often it ran the op on plain tensors)
        self.forward = None  # (the node of its one run, what the forward found: see _run_for_wrappers)
        self.given = None  # (the arguments as the caller wrote them, function.given_arguments: shown again outside)


_pending = threading.local()


def _dispatch(op_class, inputs, params):
    """``function.active_dispatch``: hand the op to the innermost mode, else to the
    ``__torch_dispatch__`` of a wrapper subclass among its inputs, else leave it alone."""
    if _mode_stack:
        return _to_mode(op_class, inputs, params)
    if _live_wrappers:
        for t in inputs:
            if t is not None and (getattr(type(t), "__torch_dispatch__", None) is not None or (
                    t._base.__class__ is _function._Promoted and getattr(
                        type(t._base.source), "__torch_dispatch__", None) is not None)):
                # (a mixed-dtype operand's stand-in: its handler gets the wrapper it stands for, _operand)
                return _to_subclass(op_class, inputs, params)
        for value in params.values():
            if value.__class__ is not _function._Tensor and isinstance(value, _function._Tensor) and getattr(
                    type(value), "__torch_dispatch__", None) is not None:
                # a wrapper the op keeps as a parameter (nll_loss's target): its handler runs the op on its values
                return _to_subclass(op_class, inputs, params)
        stack = getattr(_pending, "stack", None)
        if stack and stack[-1].op_class is op_class and stack[-1].record:
            return _run_for_wrappers(stack[-1], inputs, params)
    return _function.RUN_UNDISPATCHED


def _run_for_wrappers(pending, inputs, params):
    """A wrapper's handler runs the op handed to it on plain tensors (its inner ones): run it recording,
    on stand-ins that require grad over the same arrays, so its node keeps what the forward found on
    the real values (max-pool and sort indices, shrink masks, ...); _record_on_wrappers gives that to the
    node it records over the wrappers, whose placeholders hold no values. A handler running the op more
    than once (one per inner tensor) gives none: which run's would be the wrapper's? Nor one recording
    its own gradients (enable_reentrant_dispatch), whose op runs as it asked."""
    pending.runs += 1
    if pending.runs > 1 or is_grad_enabled():
        pending.forward = None
        return _function.RUN_UNDISPATCHED
    Tensor = _function._Tensor
    stand_ins = []
    for t in inputs:
        if t is not None:
            t = Tensor._make(t._data)
            t._requires_grad = t._data.dtype.kind in "fc"
        stand_ins.append(t)
    previous = _function.active_dispatch
    _function.active_dispatch = None
    try:
        with enable_grad():
            out = _function._apply_array_op(pending.op_class, *stand_ins, **params)
    finally:
        _function.active_dispatch = previous
    outs = out if isinstance(out, tuple) else (out,)
    pending.forward = next((o.grad_fn for o in outs if o.grad_fn is not None), None), stand_ins, outs
    made = tuple(Tensor._make(o._data) for o in outs)
    return made if isinstance(out, tuple) else made[0]


def _is_recording(inputs) -> bool:
    return is_grad_enabled() and any(t is not None and t._requires_grad for t in inputs)


def _to_mode(op_class, inputs, params):
    """The mode's handler runs with the mode popped and below autograd (grad mode off); then the
    handler's result gets the node recorded for the op, so gradients flow through it."""
    record = _is_recording(inputs)
    pending = _PendingOp(op_class, inputs, record, params)
    given = _function.given_arguments
    pending.shown = func, args, kwargs = _handler_call(op_class, inputs, params)
    if given is not None and given[0] is op_class and inputs and given[1]() is inputs[0]:
        pending.given = given[2]
    stack = getattr(_pending, "stack", None)
    if stack is None:
        stack = _pending.stack = []
    stack.append(pending)
    try:
        with _pop_mode_temporarily() as mode, _below_autograd():
            types = _dispatch_types(inputs) if _live_wrappers else ()
            if func._op_name not in _CONJ_FALLTHROUGH:
                _show_conj_resolved(mode, types, inputs)
            handed = func, args, kwargs
            note = _function.pending_out
            if note is not None and func._op_name in _OUT_OPS.get(note[1], (note[1],)):
                _function.pending_out = None  # (taken: the ops the handler runs, or later ones, are plain)
                handed = _out_form(func, args, kwargs, note)
            result = mode.__torch_dispatch__(handed[0], types, *_handed(*handed))
    finally:
        stack.pop()
    if not record:
        return _split_indices(func, result)
    pair = _split_indices(func, result) is not result
    if pair:
        result, indices = result
    recorded = pending.output
    if recorded is None:  # the handler never ran the op on its inputs: record it now, below the modes
        with _disable_current_modes():
            recorded = _function._apply_array_op(op_class, *inputs, **params)
    if result is not recorded:
        result = _attach(result, recorded)
    if pair:  # (the indices go with the values the op gives)
        _pending.indices = weakref.ref(result), indices
    if func._op_name in _SAVES_RESULT and getattr(_handler_caller, "grad_enabled", None) is None:
        _show_saved(result, types)  # (autograd saves once, above every mode: not where a handler runs the op)
    return result


# ---- out=: the op computing an out= call's result, handed to a mode as torch's out overload
# an out= function's name -> the aten ops that compute its result where those are named otherwise
_OUT_OPS = {"matmul": ("mm", "bmm", "dot", "mv"), "take_along_dim": ("gather",), "divide": ("div",),
            "true_divide": ("div",), "multiply": ("mul",), "subtract": ("sub",), "clip": ("clamp",),
            "norm": ("linalg_vector_norm",), "vector_norm": ("linalg_vector_norm",), "nanmean": ("nansum",)}
# torch 2.13's out overload of a functional one where it is not "out" (of "default") or "<overload>_out"
_OUT_OVERLOADS = {
    **dict.fromkeys(("add.Tensor", "sub.Tensor", "mul.Tensor", "div.Tensor", "copysign.Tensor", "ldexp.Tensor",
                     "all.dim", "any.dim", "max.other", "min.other", "mean.dim", "norm.ScalarOpt_dim", "std.dim",
                     "var.dim"), "out"),
    "div.Tensor_mode": "out_mode", "all.default": "all_out", "any.default": "all_out", "max.default": "unary_out",
    "min.default": "unary_out", "mean.default": "dtype_out", "norm.ScalarOpt_dim_dtype": "dtype_out",
    "prod.dim_int": "int_out", "sum.dim_IntList": "IntList_out", "xlogy.Tensor": "OutTensor",
    "xlogy.Scalar_Other": "OutScalar_Other", "xlogy.Scalar_Self": "OutScalar_Self",
    "max.dim": "dim_max", "min.dim": "dim_min", "median.dim": "dim_values", "nanmedian.dim": "dim_values",
    **dict.fromkeys(("sort.default", "topk.default", "mode.default", "kthvalue.default"), "values"),
}
# the keywords torch 2.13's out overload of a (values, indices) op names its two outs by, where not these
_OUT_NAMES = {"max.dim_max": ("max", "max_values"), "min.dim_min": ("min", "min_indices"),
              "aminmax.out": ("min", "max")}
_VALUES_AND_INDICES = ("values", "indices")

class OutOverload(OpOverload):
    """The ``func`` a handler receives for the op computing an ``out=`` call's result
    (``aten.add.out``): calling it with the arguments handed runs the op as ``functional`` (the
    plain overload) would; the out= front writes the result into ``out`` afterwards."""

    def __init__(self, functional: OpOverload) -> None:
        name = f"{functional._op_name}.{functional._overloadname}"
        overload = _OUT_OVERLOADS.get(name, "out" if functional._overloadname == "default"
                                      else f"{functional._overloadname}_out")
        super().__init__("aten", functional._op_name, overload, self._run_op)
        self._functional = functional

    def _run_op(self, *args, out=None, **kwargs):
        functional = self._functional
        if out is None and (f"{functional._op_name}.{functional._overloadname}" in _WITH_INDICES
                            or f"{self._op_name}.{self._overloadname}" in _OUT_NAMES):
            names = _OUT_NAMES.get(f"{self._op_name}.{self._overloadname}", _VALUES_AND_INDICES)
            if all(name in kwargs for name in names):  # (the two outs as handed: kept for a mode further out)
                out = tuple(kwargs.pop(name) for name in names)
        stack = getattr(_pending, "stack", None)
        shown = stack[-1].shown if stack else None
        restored = shown is not None and shown[0] is self._functional and "dtype" in shown[2] and "dtype" not in kwargs
        if restored:
            kwargs["dtype"] = shown[2]["dtype"]  # (the dtype the front put in from out's, not shown: _out_form)
        previous = _function.pending_out
        # (a mode further out sees the op as this one's out overload too, a restored dtype again unshown)
        _function.pending_out = None if out is None else (out, self._functional._op_name, restored)
        try:
            return self._functional(*args, **kwargs)
        finally:
            _function.pending_out = previous


def _out_form(func, args, kwargs, note) -> tuple:
    """(func, args, kwargs) as torch hands an out= call's op: its out overload, ``out=`` last among
    the kwargs; a ``dtype`` the out= front took from ``out`` (sum's, the note's third entry) is not
    shown, as torch's is given none; one the caller gave is, even where it is out's."""
    overload = func.__dict__.get("_out_form")  # (kept on the plain overload: overloads compare by name)
    if overload is None:
        overload = func._out_form = OutOverload(func)
    out = note[0]
    if isinstance(out, (tuple, list)):  # (values, indices) outs, each under its own keyword
        names = _OUT_NAMES.get(f"{overload._op_name}.{overload._overloadname}", _VALUES_AND_INDICES)
        return overload, args, {**kwargs, **dict(zip(names, out))}
    if note[2] and kwargs.get("dtype") is not None and kwargs["dtype"] == out.dtype:
        kwargs = {key: value for key, value in kwargs.items() if key != "dtype"}
    return overload, args, {**kwargs, "out": out}


# aten ops torch's Conjugate key lets through to the mode with a conjugated input as it is (ConjugateFallback.cpp's
# fallthroughs: views, tensor utilities, the BLAS products); any other op's conjugated inputs are resolved first
_CONJ_FALLTHROUGH = frozenset((
    "view", "_unsafe_view", "_reshape_alias", "t", "transpose", "permute", "expand", "select", "slice", "split",
    "split_with_sizes", "unbind", "squeeze", "unsqueeze", "unfold", "alias", "as_strided", "diagonal", "detach",
    "_conj", "_conj_physical", "_neg_view", "view_as_real", "view_as_complex", "clone", "copy_", "resolve_conj",
    "resolve_neg", "empty_like", "full_like", "mm", "addmm", "bmm", "baddbmm", "dot", "vdot",
    "linalg_solve_triangular"))


def _resolved_conj(tensor):
    """aten.clone's func for a conjugated input torch's fallback resolves: chainrule's conj() is already an
    eager copy, so its values without the bit."""
    return _function._Tensor._make(tensor._data.copy())


_RESOLVE_CONJ = OpOverload("aten", "clone", "default", _resolved_conj)


def _written_back(target, written):
    """aten.copy_'s func for an in-place op on a conjugated view: torch's fallback copies the clone it wrote
    back into the view; chainrule's op wrote the view itself, so nothing is left to copy."""
    return target


_CONJ_WRITTEN_BACK = OpOverload("aten", "copy_", "default", _written_back)


def _show_conj_resolved(mode, types, inputs) -> None:
    """torch's Conjugate fallback, as a mode sees it: each input with the conj bit cloned (the clone
    resolving it) before the op, in argument order."""
    for t in inputs:
        if t is not None and t._conj_bit:
            mode.__torch_dispatch__(_RESOLVE_CONJ, types, (t,), {})


# ops whose recorded node keeps its result for the backward (derivatives.yaml's ``result``): torch's
# autograd saves it as a detached alias, which a mode sees as aten.detach right after the op
_SAVES_RESULT = frozenset(("tanh", "sigmoid", "relu", "exp", "exp2", "expm1", "sqrt", "rsqrt", "reciprocal", "tan",
                           "_softmax", "_log_softmax", "cumprod", "logsumexp", "linalg_vector_norm", "prod",
                           "mkldnn_rnn_layer"))
# in-place activations whose node keeps the result (torch's is_result backward) where the out-of-place op's keeps
# its input
_INPLACE_SAVES_RESULT = frozenset(("leaky_relu", "elu", "celu", "rrelu_with_noise"))
# in-place ops whose node keeps the input as it was (``self``): torch's autograd saves a clone of it,
# which a mode sees as aten.clone right before the op
_SAVES_SELF_INPLACE = frozenset(("sin", "cos", "sinh", "cosh", "abs", "log", "log2", "log10", "log1p", "erf", "atan",
                                 "asin", "acos", "asinh", "acosh", "atanh", "logit", "erfinv", "lgamma", "digamma", "hardtanh"))


def _detach_for_saving(tensor):
    return tensor.detach()


_DETACH = OpOverload("aten", "detach", "default", _detach_for_saving)


def _clone_for_saving(tensor):
    return tensor.clone()


_CLONE = OpOverload("aten", "clone", "default", _clone_for_saving)


def _show_saved(output, types, func=_DETACH) -> None:
    """What torch's autograd does to keep a tensor for a recorded op's backward, shown to the innermost
    mode: aten.detach of a saved result, aten.clone of an input an in-place op overwrites."""
    if _mode_stack and isinstance(output, (tuple, list)):  # (each result a multi-output node keeps)
        for item in output:
            _show_saved(item, types, func)
    elif _mode_stack and isinstance(output, _function._Tensor):
        with _pop_mode_temporarily() as mode, _below_autograd():
            mode.__torch_dispatch__(func, types, (output,), {})


def _saved_by_inplace(name: str, target, args: tuple):
    """What a recorded in-place ``target.<name>(*args)`` keeps for its backward that a mode sees: "result"
    (detached after it), "self" (cloned before it: the input the op overwrites), or None."""
    stem = name[:-1]
    if stem in _SAVES_RESULT or stem in _INPLACE_SAVES_RESULT:
        return "result" if target._requires_grad else None
    if stem in _SAVES_SELF_INPLACE:
        return "self" if target._requires_grad else None
    if stem == "mul" and args and isinstance(args[0], _function._Tensor) and args[0]._requires_grad:
        return "self"  # (self is other's gradient factor)
    return None


def _attach(result, recorded):
    """``result``'s values with ``recorded``'s place in the graph (its node and output number)."""
    make = _function._make_tensor
    if isinstance(result, (tuple, list)):
        recorded = recorded if isinstance(recorded, (tuple, list)) else (recorded,)
        return tuple(_attach(r, o) for r, o in zip(result, recorded))
    node = recorded.grad_fn
    if node is None:
        return result
    return make(result._data, node, recorded._output_nr)


# ---- wrapper subclasses
# how many wrapper subclass instances are alive: while any is, ops look for one among their inputs
_live_wrappers = 0


def _dispatch_types(inputs) -> tuple:
    """The classes among ``inputs`` with their own ``__torch_dispatch__``, subclasses first."""
    kinds = []
    for t in inputs:
        t = _operand(t)
        kind = type(t)
        if isinstance(t, _function._Tensor) and getattr(kind, "__torch_dispatch__", None) is not None and kind not in kinds:
            kinds.append(kind)
    return tuple(sorted(kinds, key=lambda kind: -len(kind.__mro__)))


def _to_subclass(op_class, inputs, params):
    """Each wrapper class's ``__torch_dispatch__`` in turn until one answers (not NotImplemented),
    below autograd; the op's node, recorded on the wrappers, goes on the result it returned."""
    pending = _PendingOp(op_class, inputs, _is_recording(inputs), params)
    pending.shown = func, args, kwargs = _handler_call(op_class, inputs, params)
    types = _dispatch_types((*inputs, *(value for value in params.values() if isinstance(value, _function._Tensor))))
    stack = getattr(_pending, "stack", None)
    if stack is None:
        stack = _pending.stack = []
    stack.append(pending)
    try:
        with _below_autograd():
            for kind in types:
                result = kind.__torch_dispatch__(func, types, *_handed(func, args, kwargs))
                if result is not NotImplemented:
                    break
            else:
                raise _no_handler_answered(func, types)
    finally:
        stack.pop()
    result = _split_indices(func, result)
    if pending.record and pending.output is not None and not _dispatch_types(inputs):
        # a wrapper among the params alone (nll_loss's target): the handler ran the op, recording, on the op's
        # own inputs and the wrapper's values (DispatchedOverload._run_op), the node autograd keeps
        if pending.runs != 1:  # (which run's target would the gradient take?)
            raise _refused_gradient(func._op_name, types, pending.runs)
        _take_node(result, pending.output)
    elif pending.record:
        _record_on_wrappers(op_class, inputs, params, result, pending.forward)
    return result


def _refused_gradient(op_name: str, types: tuple, runs: int) -> NotImplementedError:
    return NotImplementedError(
        f"{op_name}(): a gradient through a wrapper subclass index or target ({types[0].__name__}) whose handler "
        f"ran the op {runs} times is not supported (one run's values would be the gradient's)")


def _take_node(result, recorded) -> None:
    """``result`` (the handler's answer) made ``recorded``'s output in place: its node and output number."""
    results = result if isinstance(result, (tuple, list)) else (result,)
    recorded = recorded if isinstance(recorded, (tuple, list)) else (recorded,)
    for out, ran in zip(results, recorded):
        if isinstance(out, _function._Tensor) and isinstance(ran, _function._Tensor) and ran.grad_fn is not None \
                and out is not ran:
            out._grad_fn = ran.grad_fn
            out._output_nr = ran._output_nr
            out._requires_grad = True


def _no_handler_answered(func, types) -> TypeError:
    listed = "".join(f"\n  - tensor subclass {kind}" for kind in types)
    return TypeError(f"Multiple dispatch failed for 'torch._ops.{func}'; all __torch_dispatch__ handlers "
                     f"returned NotImplemented:\n{listed}\n\nFor more information, try re-running with "
                     "TORCH_LOGS=not_implemented")


def _record_on_wrappers(op_class, inputs, params, result, forward=None) -> None:
    """Record the op's node as autograd above ``__torch_dispatch__`` does: the forward runs once
    more on the wrappers' own arrays (placeholders: their values live in the subclass) only for
    the node and what it saves; the node then goes on the handler's result in place, which stays
    the wrapper the handler returned, and stands for the output the rule reads. What the forward
    found on the values (``forward``: the node of the handler's one run of the op, _run_for_wrappers)
    replaces what it found on the placeholders: the ctx attributes, and saved tensors that are
    neither an input nor an output."""
    previous = _function.active_dispatch
    _function.active_dispatch = None
    try:
        with enable_grad():
            try:
                recorded = _function._apply_array_op(op_class, *inputs, **params)
            except Exception as error:
                # the forward refused the placeholders' zeros (a singular matrix for inv/solve/cholesky/lu): record
                # over the values the handler handed its run (copies, so its inner tensors are not touched)
                recorded = _record_over_handed_values(op_class, inputs, params, forward, error)
    finally:
        _function.active_dispatch = previous
    results = result if isinstance(result, (tuple, list)) else (result,)
    recorded = recorded if isinstance(recorded, tuple) else (recorded,)
    node = next((r.grad_fn for r in recorded if r.grad_fn is not None), None)
    if node is None:
        return
    if forward is not None and forward[0] is not None and type(forward[0]) is type(node):
        _take_forward_state(node, inputs, *forward)
    else:
        for name in op_class.forward_state:  # (computed from the placeholders: the rule recomputes them)
            if name in node.__dict__:
                setattr(node, name, None)
    saved = node._saved
    if saved and any(t is not None and t._base.__class__ is _function._Promoted and t._base.source._wrapper_strides
                     is not None for t in saved if isinstance(t, _function._Tensor)):
        # a mixed-dtype operand saved as its promoted stand-in, a cast of the wrapper's placeholder: the rule
        # gets the wrapper itself (torch saves the operand in its own dtype), whose values its handler has
        node._saved = tuple(t._base.source if isinstance(t, _function._Tensor) and t._base.__class__
                            is _function._Promoted and t._base.source._wrapper_strides is not None else t
                            for t in saved)
    for out, placeholder in zip(results, recorded):
        if out is None or placeholder.grad_fn is None or any(out is t for t in inputs):
            continue  # (an input handed back is not made an output of the op)
        out._grad_fn = node
        out._output_nr = placeholder._output_nr
        out._requires_grad = True
    positions = getattr(node, "_saved_outputs", None)
    if positions:
        saved = list(node._saved)
        for i in positions:
            # (an alias without the grad_fn: the output itself, whose grad_fn is the node, made a
            # cycle that kept it, and the dispatcher, alive until a garbage collection; the rule
            # gets it back in the graph under create_graph, as a plain saved output: _with_grad_fn)
            saved[i] = _wrapper_alias(results[saved[i]._output_nr])
        node._saved = tuple(saved)


def _record_over_handed_values(op_class, inputs, params, forward, error: Exception):
    """The op recorded over the wrappers among ``inputs`` as _record_on_wrappers does, each wrapper's array for
    the run a copy of the values its handler handed the op (``forward``'s stand-ins), its placeholder back after;
    the forward's own error where the handler's run left none (it ran the op more than once, or not at all)."""
    if forward is None:
        raise error
    stand_ins = forward[1]
    swapped = []
    try:
        for t, stand_in in zip(inputs, stand_ins):
            if t is not None and t._wrapper_strides is not None and stand_in is not None \
                    and stand_in._data.shape == t._data.shape:
                swapped.append((t, t._data))
                t._data = stand_in._data.copy()
        if not swapped:
            raise error
        return _function._apply_array_op(op_class, *inputs, **params)
    finally:
        for t, placeholder in swapped:
            t._data = placeholder


def _take_forward_state(node, inputs, ran, stand_ins, outs) -> None:
    """``node``, recorded over wrappers' placeholders, takes from ``ran`` (the same op run by the
    handler on the real values, over ``stand_ins`` giving ``outs``) its ctx attributes and the saved
    tensors it made itself (indices, masks): those are the real forward's."""
    for name, value in ran.__dict__.items():
        if not name.startswith("_saved"):
            setattr(node, name, value)
    saved, theirs = node._saved, ran._saved
    if not saved or not theirs or len(saved) != len(theirs):
        return
    own = set(getattr(node, "_saved_outputs", None) or ())
    mine = list(saved)
    for i, (s, t) in enumerate(zip(saved, theirs)):
        if i in own or t is None or any(t is x for x in stand_ins) or any(t is o for o in outs) or any(
                s is x for x in inputs):
            continue
        mine[i] = t
    node._saved = tuple(mine)


# what a wrapper's alias does not take over: its own place in the graph and what hangs on it
_NOT_ALIASED = frozenset({"_hooks", "_post_accumulate_grad_hooks", "_accumulator", "_retains_grad", "_name",
                          "_live_views", "_view_state"})


def _wrapper_alias(wrapper, grad_fn=None):
    """A second instance of ``wrapper``'s class over the same contents (its attributes, the
    subclass's inner tensors among them, shared), with ``grad_fn`` as its node and the same
    version counter; it counts as a live wrapper while it lives."""
    from ..tensor import Tensor

    alias = Tensor._make.__func__(type(wrapper), wrapper._data, grad_fn, wrapper._output_nr)
    alias.__dict__.update({k: v for k, v in wrapper.__dict__.items() if k not in _NOT_ALIASED})
    if wrapper._vbox is None:
        wrapper._vbox = [0]
    alias._vbox = wrapper._vbox
    _count_live_wrapper(alias)
    return alias


def _count_live_wrapper(wrapper) -> None:
    """Count ``wrapper`` among the live wrapper-subclass instances until it is collected: while any
    lives, ops go through the dispatcher (active_dispatch) and the fast paths stand aside."""
    global _live_wrappers
    if not _live_wrappers:
        _function.active_dispatch = _dispatch
        if not _mode_stack:
            _switch_fast_paths(True)
    _live_wrappers += 1
    weakref.finalize(wrapper, _wrapper_gone)


_function.alias_wrapper = _wrapper_alias


def _make_wrapper_subclass(cls, size, strides=None, storage_offset=None, memory_format=None, dtype=None,
                           layout=None, device=None, pin_memory=False, requires_grad=False, **dispatch_policies):
    """torch.Tensor._make_wrapper_subclass: a ``cls`` instance with ``size`` and ``dtype`` and no
    values of its own; its class keeps them (an inner tensor, say) and its ``__torch_dispatch__``
    answers every op on it. chainrule gives it a zero-strided placeholder array of that shape and
    dtype (no memory), reporting ``strides`` (contiguous ones by default) and ``storage_offset`` as
    given; ``device`` and the dispatch policies are accepted as given."""
    from .. import _dtype
    from ..tensor import Tensor

    if not (isinstance(cls, type) and issubclass(cls, Tensor)):
        raise TypeError(f"cls must be a type (got {cls})")
    dt = _dtype.to_dtype(dtype) if dtype is not None else _dtype.get_default_dtype()
    placeholder = np.broadcast_to(np.zeros((), dtype=dt.np), tuple(int(n) for n in size))
    out = Tensor._make.__func__(cls, placeholder)
    out._set_requires_grad(requires_grad)
    out._wrapper_strides = tuple(int(step) for step in strides) if strides is not None \
        else contiguous_strides(placeholder.shape)
    if storage_offset:
        out._wrapper_storage_offset = int(storage_offset)
    if getattr(cls, "__torch_dispatch__", None) is not None:
        _count_live_wrapper(out)
    return out


def _wrapper_gone() -> None:
    """The last wrapper instance gone (and no mode entered), ops stop looking for one."""
    global _live_wrappers
    _live_wrappers -= 1
    if not _live_wrappers and not _mode_stack:
        _function.active_dispatch = None
        _switch_fast_paths(False)




# the backward of a node as one op: node name -> torch's backward aten op where it has one
# (others are "<op>_backward.default", after the forward op's name)
_BACKWARD_NAMES: dict[str, str] = {
    "ReluBackward0": "threshold_backward", "TanhBackward0": "tanh_backward", "SigmoidBackward0": "sigmoid_backward",
    "LogSoftmaxBackward0": "_log_softmax_backward_data", "SoftmaxBackward0": "_softmax_backward_data",
    "NllLossBackward0": "nll_loss_backward", "ConvolutionBackward0": "convolution_backward",
    "GeluBackward0": "gelu_backward", "SiluBackward0": "silu_backward",
    "MaxPool2DWithIndicesBackward0": "max_pool2d_with_indices_backward",
    "MaxPool3DWithIndicesBackward0": "max_pool3d_with_indices_backward",
    "AdaptiveMaxPool2DBackward0": "adaptive_max_pool2d_backward",
    "AdaptiveMaxPool3DBackward0": "adaptive_max_pool3d_backward",
}


class BackwardOverload(OpOverload):
    """The ``func`` a wrapper subclass's handler gets for a node's backward: called with the
    incoming gradients and then the node's saved tensors (unwrapped, say), it runs the node's
    rule on those and returns one gradient per input (None where none flows)."""

    def __init__(self, node_class, op_name: str) -> None:
        super().__init__("aten", op_name, "default", self._run_rule)
        self._node_class = node_class

    def _run_rule(self, *args):
        node = _pending.nodes[-1]
        if type(node) is not self._node_class:
            raise RuntimeError(f"{self}: called outside the backward of a {self._node_class.__name__} node")
        grads, saved = args[:node._num_outputs], args[node._num_outputs:]
        result = node._forward_cls.backward(_node_with_saved(node, saved), *grads)
        return result if type(result) is tuple else (result,)


def _node_with_saved(node, saved):
    """A copy of ``node`` whose rule reads ``saved`` instead of what it saved."""
    copy = object.__new__(type(node))
    for klass in type(node).__mro__:
        for slot in klass.__dict__.get("__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(node, slot):
                setattr(copy, slot, getattr(node, slot))
    copy.__dict__.update(node.__dict__)
    copy._saved = tuple(saved)
    copy._saved_versions = None
    copy._saved_outputs = None
    copy._freed = False
    return copy


_backward_overloads: dict = {}


def backward_overload_of(node_class) -> BackwardOverload:
    overload = _backward_overloads.get(node_class)
    if overload is None:
        name = node_class.__name__
        op_name = _BACKWARD_NAMES.get(name) or _op_name(node_class._forward_cls).split("::", 1)[1] + "_backward"
        overload = _backward_overloads[node_class] = BackwardOverload(node_class, op_name)
    return overload


def _dispatch_node(node, grads):
    """``function.node_dispatch``: a node whose gradients or saved tensors include a wrapper
    subclass goes to its ``__torch_dispatch__`` as one backward op (torch runs a wrapper's
    backward through its handler too, op by op); other nodes run their rule as usual. Under
    ``create_graph`` that backward op is itself recorded (_HandledOp), so the gradients it gives
    can be differentiated again."""
    if _mode_stack and not is_grad_enabled():
        result = _node_to_mode(node, grads)
        if result is not _function.RUN_UNDISPATCHED:
            return result
    if not _live_wrappers:
        return _function.RUN_UNDISPATCHED
    # looked for among what the node holds, not what saved_values gives: that would run a
    # saved_tensors_hooks unpack hook once more for every node while a wrapper lives anywhere
    # (torch unpacks once, in the rule); one that unpacks a plain tensor into a wrapper is not seen
    if not _dispatch_types([t for t in (*grads, *node._saved) if t is not None]):
        return _function.RUN_UNDISPATCHED
    saved = tuple(node.saved_values) if node._saved else ()
    args = (*grads, *saved)
    types = _dispatch_types([t for t in args if t is not None])
    if not types:
        return _function.RUN_UNDISPATCHED
    if is_grad_enabled() and any(t is not None and t._requires_grad for t in args):
        def on_plain(*args):  # the rule itself, on the handler's (unwrapped) tensors
            return node._forward_cls.backward(_node_with_saved(node, args[len(grads):]), *args[:len(grads)])

        return _handled_op(functools.partial(_node_on_handlers, node), on_plain,
                           backward_overload_of(type(node))._op_name, args)
    return _node_on_handlers(node, types, args)


def _node_on_handlers(node, types: tuple, args: tuple) -> tuple:
    """The handlers' answer to ``node``'s backward op on ``args`` (its gradients, then what it saved)."""
    func = backward_overload_of(type(node))
    nodes = getattr(_pending, "nodes", None)
    if nodes is None:
        nodes = _pending.nodes = []
    nodes.append(node)
    try:
        with _below_autograd():
            return _first_answer(func, types, args)
    finally:
        nodes.pop()


def _first_answer(func, types: tuple, args: tuple) -> tuple:
    for kind in types:
        result = kind.__torch_dispatch__(func, types, args, {})
        if result is not NotImplemented:
            return tuple(result) if isinstance(result, (tuple, list)) else (result,)
    raise _no_handler_answered(func, types)


def _handled_op(on_handlers, on_plain, name: str, args: tuple) -> tuple:
    """``on_handlers(types, args)`` (an op the handlers answer, one result per gradient, None where
    none flows) recorded as an op of ``args``; ``on_plain(*args)`` computes the same on the tensors
    a handler unwraps them to, for its backward."""
    positions = []  # (which results are not None: _HandledOp's outputs, then how many there are)
    found = iter(_HandledOp.apply(on_handlers, on_plain, name, positions, *args))
    count = positions.pop()
    return tuple(next(found) if i in positions else None for i in range(count))


class _HandledOp(_function.Function):
    """A wrapper subclass's backward op (one node's rule: _node_on_handlers) run under
    ``create_graph``, recorded as an op of its inputs (the gradients and the saved tensors, whose own
    nodes lead back to the forward), so the gradients it gives have a grad_fn. Its backward is one
    more op handed to the handlers (``aten.<op>_backward_backward``), which runs the rule again on
    the unwrapped tensors and differentiates it there by autograd; under ``create_graph`` that op is
    recorded the same way, so every order of derivative has one."""

    label = "backward op"
    rule = "the vector-Jacobian product of the backward op, by running it again under autograd"

    @staticmethod
    def forward(ctx, on_handlers, on_plain, name, positions, *args):
        given = tuple(i for i, t in enumerate(args) if t is not None)
        result = on_handlers(_dispatch_types([args[i] for i in given]), args)
        ctx.on_plain, ctx.name, ctx.num_args, ctx.given = on_plain, name, len(args), given
        ctx.positions = tuple(i for i, g in enumerate(result) if g is not None)
        positions += (*ctx.positions, len(result))
        ctx.save_for_backward(*(args[i] for i in given))
        return tuple(result[i] for i in ctx.positions)

    @staticmethod
    def backward(ctx, *vectors):
        kept = tuple(ctx.saved_values)
        on_plain = functools.partial(_vjp_on_plain, ctx.on_plain, ctx.num_args, ctx.given, ctx.positions,
                                     len(vectors))
        name = ctx.name + "_backward"
        func = OpOverload("aten", name, "default", on_plain)

        def on_handlers(types, args):
            with _below_autograd():
                return _first_answer(func, types, args)

        args = (*vectors, *kept)
        if is_grad_enabled() and any(t is not None and t._requires_grad for t in args):
            found = _handled_op(on_handlers, on_plain, name, args)
        else:
            found = on_handlers(_dispatch_types([t for t in args if t is not None]), args)
        grads = [None] * ctx.num_args
        for i, g in zip(ctx.given, found):
            grads[i] = g
        return (None, None, None, None, *grads)


def _vjp_on_plain(on_plain, num_args: int, given: tuple, positions: tuple, num_vectors: int, *args) -> tuple:
    """The vector-Jacobian product of ``on_plain`` at the inputs ``args[num_vectors:]`` (those at
    ``given`` of its ``num_args``) along ``args[:num_vectors]`` (one per result at ``positions``): one
    gradient per input, None where none flows; differentiable again when grad mode is on."""
    from ..autograd import grad

    vectors, inputs = args[:num_vectors], args[num_vectors:]
    again = is_grad_enabled()
    with enable_grad():
        leaves = [t if again and t._requires_grad else
                  t.detach().requires_grad_(t.dtype.is_floating_point or t.dtype.is_complex) for t in inputs]
        full = [None] * num_args
        for i, t in zip(given, leaves):
            full[i] = t
        result = on_plain(*full)
        result = result if isinstance(result, (tuple, list)) else (result,)
        pairs = [(result[p], v) for p, v in zip(positions, vectors)
                 if result[p] is not None and result[p]._requires_grad and v is not None]
        wanted = [t for t in leaves if t._requires_grad]
        found = iter(grad([o for o, _ in pairs], wanted, [v for _, v in pairs], allow_unused=True,
                          create_graph=again) if pairs and wanted else ())
    return tuple(next(found, None) if t._requires_grad else None for t in leaves)


# ---- a node's backward under a mode: torch's one aten backward op where derivatives.yaml has one
# node name -> (aten op, args, kwargs) from the incoming gradient and the node's torch-named saved values
# (grad_fn._saved_*, which chainrule's nodes give as torch's do), as torch's generated node calls the op;
# None where the node runs another form (its rule's ops reach the mode one by one)
def _signed(value) -> int:
    """A saved int torch keeps as uint64 (``_saved_dim`` of -1, ``_saved_ignore_index`` of -100) as given."""
    value = int(value)
    return value - (1 << 64) if value >= 1 << 63 else value


def _output_mask(node) -> list:
    """Which of a three-gradient backward op's results (input, weight, bias) the node's inputs need."""
    return [*node.needs_input_grad, False, False][:3]


def _softmax_call(name: str):
    def call(node, grad):
        result = node._saved_result
        return name, (grad, result, _signed(node._saved_dim), result.dtype), {}
    return call


def _layer_norm_backward_call(node, grad):
    return "native_layer_norm_backward", (grad, node._saved_input, list(node._saved_normalized_shape),
                                          node._saved_result1, node._saved_result2, node._saved_weight,
                                          node._saved_bias, _output_mask(node)), {}


def _embedding_backward_call(node, grad):
    if node._saved_sparse:
        return None
    return "embedding_dense_backward", (grad, node._saved_indices, node._saved_weight_sym_argsize_0,
                                        _signed(node._saved_padding_idx), node._saved_scale_grad_by_freq), {}


def _nll_loss_backward_call(node, grad):
    return "nll_loss_backward", (grad, node._saved_self, node._saved_target, node._saved_weight, node._saved_reduction,
                                 _signed(node._saved_ignore_index), node._saved_total_weight), {}


def _convolution_backward_call(node, grad):
    input = node._saved_input
    if input is None:  # kept only for the weight's gradient: torch's op, not asked for it, reads only its shape
        shape, dtype = node._input_meta[0]
        input = _function._Tensor._make(array_module(grad._data).zeros(shape, dtype))
    return "convolution_backward", (
        grad, input, node._saved_weight, list(node._saved_bias_sym_sizes_opt), list(node._saved_stride),
        list(node._saved_padding), list(node._saved_dilation), node._saved_transposed,
        list(node._saved_output_padding), node._saved_groups, _output_mask(node)), {}


def _mse_loss_backward_call(node, grad):
    if node.needs_input_grad[1]:  # (torch calls it once more, target and self swapped, for the target)
        return None
    return "mse_loss_backward", (grad, node._saved_self, node._saved_target, node._saved_reduction), {}


def _max_pool_backward_call(node, grad):
    return f"max_pool{len(node._saved_kernel_size)}d_with_indices_backward", (
        grad, node._saved_self, list(node._saved_kernel_size), list(node._saved_stride), list(node._saved_padding),
        list(node._saved_dilation), node._saved_ceil_mode, node._saved_result1), {}


def _written_result(node):
    """The tensor an in-place activation wrote (its node's weak ``written``, _run_inplace_named's), which torch's node
    keeps as its result; AttributeError where it is gone (the node's rule is shown as it runs)."""
    result = node.written()
    if result is None:
        raise AttributeError("written")
    return result


def _elu_backward_of_result(node, grad, celu: bool = False):
    alpha, scale, input_scale = node.params
    if celu:  # (torch's celu_ passes elu_backward scale 1 and input_scale 1 / alpha)
        scale = 1
    return "elu_backward", (grad, alpha, scale, input_scale, True, _written_result(node)), {}


_BACKWARD_CALLS = {
    "ReluBackward0": lambda node, grad: ("threshold_backward", (grad, node._saved_result, 0), {}),
    "TanhBackward0": lambda node, grad: ("tanh_backward", (grad, node._saved_result), {}),
    "SigmoidBackward0": lambda node, grad: ("sigmoid_backward", (grad, node._saved_result), {}),
    "SoftmaxBackward0": _softmax_call("_softmax_backward_data"),
    "LogSoftmaxBackward0": _softmax_call("_log_softmax_backward_data"),
    "GeluBackward0": lambda node, grad: ("gelu_backward", (grad, node._saved_self), {} if node._saved_approximate == "none"
                                         else {"approximate": node._saved_approximate}),
    "SiluBackward0": lambda node, grad: ("silu_backward", (grad, node._saved_self), {}),
    "LeakyReluBackward0": lambda node, grad: ("leaky_relu_backward",
                                              (grad, node._saved_self, node._saved_negative_slope, False), {}),
    "HardtanhBackward0": lambda node, grad: ("hardtanh_backward", (grad, node._saved_self, node._saved_min_val,
                                                                   node._saved_max_val), {}),
    "SoftplusBackward0": lambda node, grad: ("softplus_backward", (grad, node._saved_self, node._saved_beta,
                                                                   node._saved_threshold), {}),
    "LogSigmoidBackward0": lambda node, grad: ("log_sigmoid_backward", (grad, node._saved_self, node._saved_buffer), {}),
    "EluBackward0": lambda node, grad: ("elu_backward", (grad, node._saved_alpha, node._saved_scale,
                                                         node._saved_input_scale, False, node._saved_self), {}),
    # the in-place forms: torch's node computes from the result it wrote
    "LeakyReluBackward1": lambda node, grad: ("leaky_relu_backward", (grad, _written_result(node),
                                                                      node._saved_negative_slope, True), {}),
    "EluBackward1": _elu_backward_of_result,
    "RreluWithNoiseBackward0": lambda node, grad: ("rrelu_with_noise_backward", (grad, node._saved_self,
                                                                                 *node.rrelu_call, False, False), {}),
    "RreluWithNoiseBackward1": lambda node, grad: ("rrelu_with_noise_backward", (grad, _written_result(node),
                                                                                 *node.rrelu_call, False, True), {}),
    "CeluBackward1": functools.partial(_elu_backward_of_result, celu=True),
    "NativeLayerNormBackward0": _layer_norm_backward_call,
    "EmbeddingBackward0": _embedding_backward_call,
    "NllLossBackward0": _nll_loss_backward_call,
    "ConvolutionBackward0": _convolution_backward_call,
    "MseLossBackward0": _mse_loss_backward_call,
    "MaxPool2DWithIndicesBackward0": _max_pool_backward_call,
    "MaxPool3DWithIndicesBackward0": _max_pool_backward_call,
    **{f"AdaptiveMaxPool{n}DBackward0": lambda node, grad, n=n: (
        f"adaptive_max_pool{n}d_backward", (grad, node._saved_self, node._saved_result1), {}) for n in (2, 3)},
}
# backward ops torch answers with (input's, weight's, bias's) gradient, None where the output mask says
_THREE_GRADIENTS = frozenset(("native_layer_norm_backward", "convolution_backward"))


def _vjp_of(forward, grad, *inputs) -> tuple:
    """The gradients of ``forward(*inputs)`` against ``grad`` at the floating tensors among ``inputs`` (None
    elsewhere): a backward op a handler called with changed arguments, computed from what it asked for."""
    from ..autograd import grad as _grad

    with enable_grad():
        leaves = [t.detach().requires_grad_() if isinstance(t, _function._Tensor) and t.dtype.is_floating_point else t
                  for t in inputs]
        wanted = [t for t in leaves if isinstance(t, _function._Tensor) and t._requires_grad]
        found = iter(_grad(forward(*leaves), wanted, grad, allow_unused=True))
    return tuple(next(found) if isinstance(t, _function._Tensor) and t._requires_grad else None for t in leaves)


def _functional():
    return _chainrule().nn.functional


def _layer_norm_backward(grad, input, normalized_shape, mean, rstd, weight, bias, output_mask):
    """native_layer_norm_backward from the rows' mean and 1/σ given: dx = rstd (ĝ - mean ĝ - x̂ mean(ĝ x̂)), ĝ = g γ."""
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    leading = tuple(range(input.ndim - len(normalized_shape)))
    xhat = (input - mean) * rstd
    g_hat = grad * weight if weight is not None else grad
    grad_x = rstd * (g_hat - g_hat.mean(dims, keepdim=True) - xhat * (g_hat * xhat).mean(dims, keepdim=True))
    grad_w = (grad * xhat).sum(leading) if output_mask[1] else None
    grad_b = grad.sum(leading) if output_mask[2] else None
    return grad_x if output_mask[0] else None, grad_w, grad_b


def _embedding_dense_backward(grad, indices, num_weights, padding_idx, scale_grad_by_freq):
    lib = _chainrule()
    flat = indices.reshape(-1)
    rows = grad.reshape(-1, grad.shape[-1])
    if scale_grad_by_freq:
        rows = rows / lib.bincount(flat, minlength=num_weights)[flat].unsqueeze(1).to(rows.dtype)
    if padding_idx >= 0:
        rows = rows.masked_fill((flat == padding_idx).unsqueeze(1), 0)
    return lib.zeros(num_weights, grad.shape[-1], dtype=grad.dtype).index_add(0, flat, rows)


def _convolution_backward(grad, input, weight, bias_sizes, stride, padding, dilation, transposed, output_padding,
                          groups, output_mask):
    lib = _chainrule()
    bias = lib.zeros(list(bias_sizes), dtype=weight.dtype) if output_mask[2] else None

    def run(input, weight, bias):
        n = input.ndim - 2
        if transposed:
            return getattr(_functional(), f"conv_transpose{n}d")(input, weight, bias, stride, padding, output_padding,
                                                                 groups, dilation)
        return getattr(_functional(), f"conv{n}d")(input, weight, bias, stride, padding, dilation, groups)

    found = _vjp_of(run, grad, input, weight, bias)
    return tuple(g if wanted else None for g, wanted in zip(found, output_mask))


_REDUCTION_NAMES = {0: "none", 1: "mean", 2: "sum"}
# torch's backward ops run on what a handler that changed their arguments asked for
_BACKWARD_STAND_INS = {
    "threshold_backward": lambda grad, self, threshold: _chainrule().where(self <= threshold, 0, grad),
    "tanh_backward": lambda grad, output: grad * (1 - output * output),
    "sigmoid_backward": lambda grad, output: grad * (1 - output) * output,
    "_softmax_backward_data": lambda grad, output, dim, input_dtype: (
        output * (grad - (grad * output).sum(dim, keepdim=True))).to(input_dtype),
    "_log_softmax_backward_data": lambda grad, output, dim, input_dtype: (
        grad - output.exp() * grad.sum(dim, keepdim=True)).to(input_dtype),
    "gelu_backward": lambda grad, self, *, approximate="none": _vjp_of(
        lambda x: _functional().gelu(x, approximate=approximate), grad, self)[0],
    "silu_backward": lambda grad, self: _vjp_of(_functional().silu, grad, self)[0],
    "leaky_relu_backward": lambda grad, self, negative_slope, self_is_result: _chainrule().where(
        self > 0, grad, grad * negative_slope),
    "hardtanh_backward": lambda grad, self, min_val, max_val: _chainrule().where(
        (self <= min_val) | (self >= max_val), 0, grad),
    "softplus_backward": lambda grad, self, beta, threshold: _vjp_of(
        lambda x: _functional().softplus(x, beta, threshold), grad, self)[0],
    "log_sigmoid_backward": lambda grad, self, buffer: _vjp_of(_functional().logsigmoid, grad, self)[0],
    "rrelu_with_noise_backward": lambda grad, self, noise, lower, upper, training, self_is_result: _chainrule().where(
        self > 0, grad, grad * ((lower + upper) / 2)),
    "elu_backward": lambda grad, alpha, scale, input_scale, is_result, self_or_result: _chainrule().where(
        self_or_result > 0, grad * scale, grad * (alpha * scale * input_scale) * (self_or_result * input_scale).exp()),
    "native_layer_norm_backward": _layer_norm_backward,
    "embedding_dense_backward": _embedding_dense_backward,
    "nll_loss_backward": lambda grad, self, target, weight, reduction, ignore_index, total_weight: _vjp_of(
        lambda x: _functional().nll_loss(x, target, weight, ignore_index=ignore_index,
                                         reduction=_REDUCTION_NAMES[reduction]), grad, self)[0],
    "convolution_backward": _convolution_backward,
    "mse_loss_backward": lambda grad, self, target, reduction: _vjp_of(
        lambda x: _functional().mse_loss(x, target, reduction=_REDUCTION_NAMES[reduction]), grad, self)[0],
    **{f"max_pool{n}d_with_indices_backward":
       lambda grad, self, kernel_size, stride, padding, dilation, ceil_mode, indices, n=n: _vjp_of(
           lambda x: getattr(_functional(), f"max_pool{n}d")(x, kernel_size, stride or None, padding, dilation,
                                                              ceil_mode), grad, self)[0] for n in (2, 3)},
    **{f"adaptive_max_pool{n}d_backward": lambda grad, self, indices, n=n: _vjp_of(
        lambda x: getattr(_functional(), f"adaptive_max_pool{n}d")(x, list(indices.shape[-n:])), grad, self)[0]
       for n in (2, 3)},
}


def _column_major(sizes, strides) -> bool:
    return strides[0] == 1 and strides[1] == sizes[0]


def _product_gradients(grad, mat1, mat1_meta, mat2, mat2_meta, needs, mat2_first: bool) -> tuple:
    """torch's mm_mat1_backward and mm_mat2_backward, op by op (t and mm): the gradient of a column-major
    matrix made as the transpose of a row-major product."""
    def conj(t):  # torch's conj() (a real tensor itself), not the public method a user may override
        from ..ops.elementwise import _conj_view
        return _conj_view(t)

    def of_mat2():
        return grad.t().mm(conj(mat1)).t() if _column_major(*mat2_meta) else conj(mat1.t()).mm(grad)

    grad_mat1 = grad_mat2 = None
    if needs[1] and mat2_first:  # (MmBackward0 takes mat2's first, AddmmBackward0 mat1's: derivatives.yaml's order)
        grad_mat2 = of_mat2()
    if needs[0]:
        grad_mat1 = conj(mat2).mm(grad.t()).t() if _column_major(*mat1_meta) else grad.mm(conj(mat2.t()))
    if needs[1] and not mat2_first:
        grad_mat2 = of_mat2()
    return grad_mat1, grad_mat2


class _ColumnSums(_function.Function):
    """A linear's one-row bias gradient, G (rows, n) summed over its rows as (1, n): torch's engine reduces it
    so (sum.dim_IntList(G, [0], True), then a view), here by the adds of the fused rule's column sums."""

    _array_forward = True
    label = "sum"
    rule = "copies the gradient to every row"

    @staticmethod
    def forward(ctx, g):
        from ..ops.linear import _column_sums

        ctx.rows = g.shape[0]
        return _column_sums(g).reshape(1, -1)

    @staticmethod
    def backward(ctx, grad):
        return grad.expand(ctx.rows, grad.shape[1])


_ATEN_SCHEMAS["_ColumnSums"] = lambda inputs, params: (("sum", "dim_IntList"), (inputs[0], [0], True), {})


def _linear_product_backward(node, grad, mat2_transposed: bool):
    """A linear's AddmmBackward0 or MmBackward0 (ops.linear's, whose rule is one fused op), or a 2-d matmul's
    MmBackward0, as torch's formulas run: each matrix's gradient through t and mm, then a bias of one row's
    summed over the rows. The fused linear rule (``mat2_transposed``) takes torch's operand order for every
    layout (ops.linear._operand_orders), so its products are these ops' (the same bits); a 2-d matmul's rule
    only G Bᵀ and Aᵀ G, so a column-major matrix's gradient (torch's transposed order) runs the rule, its ops
    shown as they are."""
    with_bias = len(node.next_functions) == 3
    needs = node.needs_input_grad[1:] if with_bias else node.needs_input_grad
    prefix = "_saved_mat1" if with_bias else "_saved_self"
    mat1_meta = (getattr(node, prefix + "_sym_sizes"), getattr(node, prefix + "_sym_strides"))
    mat2_meta = (node._saved_mat2_sym_sizes, node._saved_mat2_sym_strides)
    if not mat2_transposed and ((needs[0] and _column_major(*mat1_meta)) or (needs[1] and _column_major(*mat2_meta))):
        return _function.RUN_UNDISPATCHED
    grad_mat1, grad_mat2 = _product_gradients(grad, getattr(node, prefix) if needs[1] else None,
                                              mat1_meta, node._saved_mat2 if needs[0] else None, mat2_meta, needs,
                                              not with_bias)
    if not with_bias:
        return grad_mat1, grad_mat2
    grad_bias = None
    if node.needs_input_grad[0]:
        grad_bias = grad
        if len(node._input_meta[0][0]) == 1:
            grad_bias = _ColumnSums.apply(grad).view(node._input_meta[0][0])
    return grad_bias, grad_mat1, grad_mat2


def _backward_decompositions() -> dict:
    """forward op class (or node name) -> its node's backward as torch's formula runs it op by op, where chainrule's
    rule is one fused op or other ops: (node, grad) -> one gradient per input."""
    from ..ops import linalg, linear, pool

    fused = functools.partial(_linear_product_backward, mat2_transposed=True)
    return {linear.Addmm: fused, linear.Mm: fused,
            linalg.Mm: functools.partial(_linear_product_backward, mat2_transposed=False),
            linalg.Bmm: _bmm_backward,
            "TBackward0": lambda node, grad: (grad.t(),),
            "AliasBackward0": lambda node, grad: (grad,),  # (torch's node returns the gradient: no op)
            pool.FlatScatter: _max_unpool_backward,
            "SqueezeBackward4": _unsqueezed_back, "SqueezeBackward1": _unsqueezed_back,
            "UnsqueezeBackward0": _squeezed_back}


def _max_unpool_backward(node, grad):
    """A max unpool's backward (MaxUnpool2DBackward0/3D) as torch's max_pool_double_backward runs it: the indices
    and the gradient (made contiguous) flattened per plane, gathered, viewed as the indices (the rule's gather:
    the same values); a 1-d unpool's indices (torch's run through its 2-d op) run the rule."""
    indices = _function._Tensor._make(node.indices)
    planes = node.plane_ndim
    if indices.ndim <= planes:
        return _function.RUN_UNDISPATCHED
    lead = tuple(indices.shape[:indices.ndim - planes])  # (batch and channels; an unbatched 3-d input's channels)
    flat = indices.view(*lead, -1)
    gathered = grad.contiguous().view(*lead, -1).gather(-1, flat)
    return (gathered.view(tuple(indices.shape)),)


def _bmm_backward(node, grad):
    """BmmBackward0 as torch's formulas run: mat2's gradient self.transpose(1, 2).conj().bmm(grad) first, then
    self's grad.bmm(mat2.transpose(1, 2).conj()) (the rule's products of the same operands: the same bits)."""
    from ..ops.elementwise import _conj_view

    needs = node.needs_input_grad
    grad_self = grad_mat2 = None
    if needs[1]:
        grad_mat2 = _conj_view(node._saved_self.transpose(1, 2)).bmm(grad)
    if needs[0]:
        grad_self = grad.bmm(_conj_view(node._saved_mat2.transpose(1, 2)))
    return grad_self, grad_mat2


def _unsqueezed_back(node, grad):
    """SqueezeBackward4 of one dim of size 1 (a vector-matrix product's squeeze_ of its row), SqueezeBackward1
    (squeeze.dim: max_pool1d's unit height): torch's unsqueeze_to, the dim put back, wrapped as it wraps it."""
    shape = node._input_meta[0][0]
    dim = _signed(node._saved_dim)
    if grad.ndim + 1 != len(shape) or not -len(shape) <= dim < len(shape) or shape[dim] != 1:
        return _function.RUN_UNDISPATCHED
    return (grad.unsqueeze(dim % len(shape)),)


def _squeezed_back(node, grad):
    """UnsqueezeBackward0 of one new dim: torch's grad.squeeze(dim) (a key of several Nones runs the rule)."""
    if grad.ndim != len(node._input_meta[0][0]) + 1:
        return _function.RUN_UNDISPATCHED
    return (grad.squeeze(_signed(node._saved_dim)),)


_DECOMPOSED: dict = {}


class _NodeCall:
    """One node's backward handed to a mode as a backward op: what its func runs when called as shown."""

    __slots__ = ("node", "grads", "args", "kwargs")

    def __init__(self, node, grads, args, kwargs) -> None:
        self.node, self.grads, self.args, self.kwargs = node, grads, args, kwargs


class NodeOverload(OpOverload):
    """The ``func`` a mode gets for a node's backward shown as torch's backward op
    (``aten.threshold_backward.default``): called with the arguments shown (tensors swapped or not for
    the same ones) it runs the node's rule, below this mode; with others it runs torch's op on them."""

    def __init__(self, op_name: str) -> None:
        super().__init__("aten", op_name, "default", self._run)

    def _run(self, *args, **kwargs):
        calls = getattr(_pending, "node_calls", None)
        call = calls[-1] if calls else None
        swapped: dict = {}
        if (call is None or not _swaps(args, call.args, swapped) or not _swaps(kwargs, call.kwargs, swapped)
                or swapped):
            return _BACKWARD_STAND_INS[self._op_name](*args, **kwargs)
        if _mode_stack:  # the next mode down sees the same op
            grads = _hand_node(call.node, call.grads, self, args, kwargs)
        else:
            grads = call.node._forward_cls.backward(call.node, *call.grads)
        grads = grads if type(grads) is tuple else (grads,)
        if self._op_name in _THREE_GRADIENTS:
            return (*grads, None, None)[:3]
        return grads[0]


_node_overloads: dict = {}


def _hand_node(node, grads, func, args, kwargs) -> tuple:
    """The innermost mode's answer to ``func(*args, **kwargs)``, a node's backward op: one gradient per input of
    the node (None where none flows)."""
    calls = getattr(_pending, "node_calls", None)
    if calls is None:
        calls = _pending.node_calls = []
    calls.append(_NodeCall(node, grads, args, kwargs))
    try:
        with _pop_mode_temporarily() as mode, _below_autograd():
            types = _dispatch_types([t for t in (*args, *kwargs.values()) if isinstance(t, _function._Tensor)]) \
                if _live_wrappers else ()
            result = mode.__torch_dispatch__(func, types, _copied(args), _copied(kwargs))
    finally:
        calls.pop()
    count = len(node.next_functions)
    found = list(result) if isinstance(result, (tuple, list)) else [result]
    return tuple((found + [None] * count)[:count])


def _differentiable_grads(node, grads):
    """The gradients of a node's outputs that can carry one: an integer or bool output (a max pool's indices)
    never does, and torch's backward op takes no gradient for it (the engine fills one with zeros)."""
    if len(grads) > 1:
        meta = getattr(node, "_output_meta", None)
        if meta and len(meta) == len(grads):
            kept = tuple(g for g, (_, dtype) in zip(grads, meta) if dtype is None or np.dtype(dtype).kind not in "biu")
            if kept:
                return kept
    return grads


def _zeros_shown(like, scalar: bool):
    """Zeros of ``like``'s shape and dtype as torch's backward formulas make them, which a mode sees: aten.zeros of the
    shape (split_backward), or of shape () expanded to it (unbind_backward); ``like`` itself where no mode answers."""
    from .._layout import strided

    kwargs = {"dtype": like.dtype, "layout": strided, "device": like.device}
    made = _function.factory_dispatch("zeros", _zeros_of_size, ([] if scalar else list(like.shape),), kwargs)
    if made is _function.RUN_UNDISPATCHED:
        return like
    return made.expand(tuple(like.shape)) if scalar else made


def _zeros_of_size(size, *, dtype=None, layout=None, device=None):
    return _chainrule().zeros(size, dtype=dtype, layout=layout, device=device)


# nodes whose torch formula fills a missing output gradient with zeros it makes (the engine has already filled them:
# node.materialized holds those), shown as it makes them: True where as zeros(()) expanded
_ZERO_FILLING = {"SplitBackward0": False, "SplitWithSizesBackward0": False, "UnbindBackward0": True}


def _node_to_mode(node, grads):
    """A node's backward under a mode (not recording): torch's unpack of a saved result shown as its
    aten.detach, then the node as torch's backward op where ``_BACKWARD_CALLS`` names one."""
    filled = getattr(node, "materialized", None)
    if filled:
        node.materialized = None
        scalar = _ZERO_FILLING.get(node.name())
        if scalar is not None:
            grads = [_zeros_shown(g, scalar) if any(g is zeros for zeros in filled) else g for g in grads]
            return node._forward_cls.backward(node, *grads)
    declared = type(node)._torch_saved
    if declared and "_saved_result" in declared and not node._freed:
        _show_saved(node._saved_result, ())
    elif getattr(node, "written", None) is not None and node.written() is not None and not node._freed:
        _show_saved(node.written(), ())  # (an in-place activation's result: _written_result)
    make = _BACKWARD_CALLS.get(node.name())
    grads = _differentiable_grads(node, grads)
    if make is None or len(grads) != 1 or grads[0] is None:
        if not _DECOMPOSED:
            _DECOMPOSED.update(_backward_decompositions())
        decomposed = _DECOMPOSED.get(node._forward_cls) or _DECOMPOSED.get(node.name())
        if decomposed is None or len(grads) != 1 or grads[0] is None:
            return _function.RUN_UNDISPATCHED
        try:
            return decomposed(node, grads[0])
        except AttributeError:  # a node of that name that keeps another form
            return _function.RUN_UNDISPATCHED
    try:
        with _disable_current_modes():  # (a saved value made from others, layer norm's mean, is no op of the walk)
            shown = make(node, grads[0])
    except AttributeError:  # a node of that name that keeps another form (embedding's scaled by frequency)
        shown = None
    if shown is None:
        return _function.RUN_UNDISPATCHED
    name, args, kwargs = shown
    func = _node_overloads.get(name)
    if func is None:
        func = _node_overloads[name] = NodeOverload(name)
    return _hand_node(node, grads, func, args, kwargs)


_function.node_dispatch = _dispatch_node


# factory -> {name: overload}, held weakly: a function made afresh for each call (a closure) goes with
# its entry, where a dict would keep every one and grow without end under a long-running mode
_factory_overloads = weakref.WeakKeyDictionary()


def _factory_call(name: str, factory, weakly: bool):
    """The func of a factory call: ``factory`` run on what the handler gives, after any outer mode (the one below
    the handler's, still on the stack) has seen the call as torch's redispatch shows it to each mode in turn;
    held weakly where the overload is kept (a cached overload keeps no closure alive)."""
    ref = weakref.ref(factory) if weakly else (lambda factory=factory: factory)

    def run(*args, **kwargs):
        held = ref()
        if held is None:
            raise RuntimeError("this aten overload's chainrule function is gone (made for a call that has ended)")
        if _mode_stack:
            return _dispatch_factory(name, held, args, kwargs)
        return held(*args, **kwargs)

    return run


def _dispatch_factory(name: str, factory, args: tuple, kwargs: dict):
    """``function.factory_dispatch``: a call that makes a tensor (``torch.ones``; the backward's seed,
    ``aten.ones_like``) to the innermost mode, else to a wrapper subclass among ``args``, as
    ``aten.<name>`` (``"ones"`` is ``aten.ones.default``, ``"empty.memory_format"`` names its
    overload); ``func(*args, **kwargs)`` calls ``factory`` below the mode."""
    # (one overload per name and factory: the backward's seed and torch.ones_like are both aten.ones_like,
    # and each func runs its own; a bound method or other callable gets a fresh one, not kept)
    kept = _factory_overloads.setdefault(factory, {}) if type(factory) is FunctionType else None
    func = kept.get(name) if kept is not None else None
    if func is None:
        op_name, _, overload_name = name.partition(".")
        func = OpOverload("aten", op_name, overload_name or "default", _factory_call(name, factory, kept is not None))
        if kept is not None:
            kept[name] = func
    types = _dispatch_types(args) if _live_wrappers else ()
    if _mode_stack:
        with _pop_mode_temporarily() as mode, _below_autograd():
            if func._op_name not in _CONJ_FALLTHROUGH:  # (a comparison's conjugated operands: torch's clones)
                _show_conj_resolved(mode, types, [t for t in args if isinstance(t, _function._Tensor)])
            note = _function.pending_out
            if note is not None and func._op_name in _OUT_OPS.get(note[1], (note[1],)):
                _function.pending_out = None  # (an unrecorded op computing an out= call's result: bitwise_and's)
                func, args, kwargs = _out_form(func, args, kwargs, note)
            return mode.__torch_dispatch__(func, types, args, kwargs)
    with _below_autograd():
        for kind in types:
            result = kind.__torch_dispatch__(func, types, args, kwargs)
            if result is not NotImplemented:
                return result
    if types:
        raise _no_handler_answered(func, types)
    return _function.RUN_UNDISPATCHED


_function.factory_dispatch = _dispatch_factory


def _dispatch_wrapper_arguments(name: str, op, args: tuple, kwargs: dict, record=None):
    """``function.argument_dispatch``: a call of ``op`` (aten.<name>'s signature) one of whose integer or bool
    arguments (an index, a mask, a target) is a wrapper subclass, whose values live in its attributes: the
    op function must not read the placeholder beneath. The handler answers ``aten.<name>`` with the
    arguments as given, its ``func`` running ``op`` on what it hands it (torch's op runs inside the handler).
    Where a gradient is recorded, ``op`` runs once more, recording, on the caller's tensors that require
    grad, each other argument the one the handler handed its call (the real index), and that node goes on
    the handler's result, as _record_on_wrappers does for an op's inputs (``record``, where given, runs in
    ``op``'s place there: one that writes an argument, batch norm's running statistics, writes it once, in the
    handler's run). RUN_UNDISPATCHED where no wrapper
    handler runs (a mode is active, or no wrapper is among the arguments)."""
    if _mode_stack:
        return _function.RUN_UNDISPATCHED
    flat = [t for a in (*args, *kwargs.values()) for t in (a if isinstance(a, (tuple, list)) else (a,))
            if isinstance(t, _function._Tensor)]
    types = _dispatch_types(flat)
    if not types:
        return _function.RUN_UNDISPATCHED
    handed = []

    def run(*inner_args, **inner_kwargs):
        handed.append((inner_args, inner_kwargs))
        return op(*inner_args, **inner_kwargs)

    op_name, _, overload_name = name.partition(".")
    func = OpOverload("aten", op_name, overload_name or "default", run)
    with _below_autograd():
        for kind in types:
            result = kind.__torch_dispatch__(func, types, args, kwargs)
            if result is not NotImplemented:
                break
        else:
            raise _no_handler_answered(func, types)
    if not (is_grad_enabled() and any(t._requires_grad for t in flat)):
        return result
    if len(handed) != 1:  # (which run's index would the wrapper's gradient take?)
        raise _refused_gradient(op_name, types, len(handed))
    inner_args, inner_kwargs = handed[0]

    def outer_or_inner(outer, inner):
        if not (isinstance(outer, _function._Tensor) and outer._requires_grad):
            return inner
        if outer._wrapper_strides is not None and isinstance(inner, _function._Tensor) and inner is not outer \
                and inner._wrapper_strides is None and inner.shape == outer.shape:
            # a wrapper that requires grad: the run records on its values (the ones the handler handed its
            # call), its gradient going back to the wrapper (an op reading its array reads no placeholder)
            return _WrapperValues.apply(outer, values=inner._data)
        return outer

    previous = _function.active_dispatch
    _function.active_dispatch = None
    try:
        with enable_grad():
            mixed = [outer_or_inner(a, b) for a, b in zip(args, inner_args)]
            mixed_kwargs = {key: outer_or_inner(value, inner_kwargs.get(key, value)) for key, value in kwargs.items()}
            recorded = (op if record is None else record)(*mixed, **mixed_kwargs)
    finally:
        _function.active_dispatch = previous
    results = result if isinstance(result, (tuple, list)) else (result,)
    recorded = recorded if isinstance(recorded, (tuple, list)) else (recorded,)
    for out, placeholder in zip(results, recorded):
        if not isinstance(out, _function._Tensor) or not isinstance(placeholder, _function._Tensor):
            continue
        node = placeholder.grad_fn
        if node is None or out.grad_fn is not None or any(out is t for t in flat):
            continue
        out._grad_fn = node
        out._output_nr = placeholder._output_nr
        out._requires_grad = True
        positions = getattr(node, "_saved_outputs", None)
        if positions and out._wrapper_strides is not None:  # (the values are the handler's, not the recorded run's)
            saved = list(node._saved)
            for i in positions:
                if saved[i] is placeholder:
                    saved[i] = _wrapper_alias(out)
            node._saved = tuple(saved)
    return result


_function.argument_dispatch = _dispatch_wrapper_arguments


class _WrapperValues(_function.Function):
    """A wrapper subclass that requires grad, as a plain tensor of the values its handler handed an op's
    run (argument_dispatch records the op over them, not over the wrapper's zero placeholder)."""

    _array_forward = True
    label = "wrapper values"
    rule = "∂/∂a = 1 (the values the wrapper holds)"

    @staticmethod
    def forward(ctx, wrapper, values):
        return values

    @staticmethod
    def backward(ctx, grad):
        return grad

_composite_overloads: dict = {}


def _dispatch_composite(name: str, composite, args: tuple, kwargs: dict):
    """``function.composite_dispatch``: a call chainrule computes from several ops (``addmm`` with
    ``beta``/``alpha``) to the innermost mode as torch's one ``aten.<name>`` with the arguments as
    given; the handler's ``func(*args, **kwargs)`` runs ``composite`` below the mode under the caller's
    grad mode (its ops recorded as without a mode, so a handler that returns func's result keeps the
    gradient). Without a mode, RUN_UNDISPATCHED: a wrapper subclass sees the composite's ops."""
    if not _mode_stack:
        return _function.RUN_UNDISPATCHED
    key = (name, composite)
    func = _composite_overloads.get(key)
    if func is None:
        op_name, _, overload_name = name.partition(".")
        func = _composite_overloads[key] = OpOverload("aten", op_name, overload_name or "default",
                                                      _reentrant(composite))
    types = _dispatch_types(args) if _live_wrappers else ()
    note = _function.pending_out
    if note is not None and func._op_name in _OUT_OPS.get(note[1], (note[1],)):
        _function.pending_out = None  # (taken: the composite's own ops are plain)
        func, args, kwargs = _composite_out_form(func, composite, args, kwargs, note)
    with _pop_mode_temporarily() as mode, _below_autograd():
        result = mode.__torch_dispatch__(func, types, args, kwargs)
    kept = _COMPOSITE_SAVES.get(name)
    if (kept is not None and isinstance(result, (tuple, list)) and getattr(_handler_caller, "grad_enabled", None) is None
            and _is_recording([a for a in args if isinstance(a, _function._Tensor)])):
        _show_saved([result[i] for i in kept], types)  # (autograd saves them once, above every mode)
    return result


def _composite_out_form(func, composite, args: tuple, kwargs: dict, note) -> tuple:
    """An out= call of a composite (nansum's, aminmax's) as torch hands it: its out overload, the out(s)
    among the kwargs; a ``dtype`` the out= front took from ``out`` is not shown, but the composite still
    computes in it."""
    hidden = kwargs.get("dtype")
    shown = _out_form(func, args, kwargs, note)
    if hidden is None or "dtype" in shown[2]:
        return shown

    def run(*inner_args, **inner_kwargs):
        return func(*inner_args, **{"dtype": hidden, **inner_kwargs})

    overload = OutOverload(OpOverload("aten", func._op_name, func._overloadname, run))
    return overload, shown[1], shown[2]


# composites whose recorded node keeps some of its results for the backward (derivatives.yaml's result1,
# result2): torch's autograd saves each as a detached alias, a mode's aten.detach after the op
_COMPOSITE_SAVES = {"native_group_norm": (1, 2)}


def _reentrant(composite):
    def run(*args, **kwargs):
        with reentrant_dispatch():
            return composite(*args, **kwargs)
    return run


_function.composite_dispatch = _dispatch_composite


class InplaceOverload(OpOverload):
    """The ``func`` a handler gets for an in-place method (``aten.add_.Tensor``): calling it runs
    the method below the mode. Called on the tensor the method was called on, it runs under the
    caller's grad mode, so the write is recorded above the mode as without one."""

    def __init__(self, function, run_inplace, op_name: str, overload_name: str) -> None:
        super().__init__("aten", op_name, overload_name, self._run_method)
        self._function = weakref.ref(function)  # (held weakly: see _inplace_overloads)
        self._run_inplace = run_inplace

    def _run_method(self, target, *args, **kwargs):
        function = self._function()
        if function is None:
            raise RuntimeError(f"{self}: its chainrule function is gone (made for a call that has ended)")
        targets = getattr(_pending, "inplace", None)
        if targets:
            targets[-1][2].append((args, kwargs))  # (what the handler handed: an index wrapper's values)
        if targets and targets[-1][0] is target:
            with set_grad_enabled(targets[-1][1]):
                return self._run_inplace(target, function, *args, **kwargs)
        return self._run_inplace(target, function, *args, **kwargs)


# function -> {overload name: overload}, held weakly as _factory_overloads (fill_diagonal_'s function is
# made afresh at each call: a dict kept each one)
_inplace_overloads = weakref.WeakKeyDictionary()


def _dispatch_inplace(function, target, args: tuple, kwargs: dict, run_inplace):
    """``function.inplace_dispatch``: ``target.<name>_(*args)`` to the innermost mode, else to a
    wrapper subclass among the tensors, as ``aten.<name>_.Tensor`` (``.default`` without arguments,
    else as _inplace_overload_name says).
    The method's own name comes from ``function`` (the out-of-place op); one built from a lambda
    (``fill_``, ``copy_``) is left alone, its inner op reaching the mode. The method returns
    ``target``, written in place, whatever the handler returns."""
    name = getattr(function, "__name__", "")
    if not name.isidentifier() or getattr(function, "copies", False):  # (copy_'s inner op reaches the mode)
        return _into_wrapper_by_copy(function, target, args, kwargs)
    tensors = [target, *args, *kwargs.values()]
    if _live_wrappers and name == "_index_put":  # (the indices, a tuple, may hold a wrapper)
        tensors += [t for a in args[:1] for t in a]
    types = _dispatch_types(tensors) if _live_wrappers else ()
    if not _mode_stack and not types:
        return _function.RUN_UNDISPATCHED
    if name == "clamp" and kwargs:  # (torch's schema takes min and max by position: clamp_(min=0) is clamp_(x, 0))
        args, kwargs = _trailing((*args, *(kwargs.get(bound) for bound in ("min", "max")[len(args):])), (None,)), {}
    if name == "_index_put":  # torch's index_put_(self, indices, values, accumulate=False): a list of indices
        indices, values, accumulate = (*args, *(kwargs.get(k) for k in ("indices", "values", "accumulate")[len(args):]))[:3]
        name, args, kwargs = "index_put", _trailing((list(indices), values, bool(accumulate)), (False,)), {}
    if name in _INPLACE_SCHEMA_DEFAULTS and not kwargs:  # (torch shows no trailing argument equal to its default)
        args = _trailing(args, _INPLACE_SCHEMA_DEFAULTS[name])
    overload_name = _inplace_overload_name(name, args, kwargs)
    kept = _inplace_overloads.setdefault(function, {})
    func = kept.get(overload_name)
    if func is None:
        func = kept[overload_name] = InplaceOverload(function, run_inplace, name + "_", overload_name)
    return _inplace_to_handler(func, types, target, args, kwargs)


def _inplace_to_handler(func, types: tuple, target, args: tuple, kwargs: dict):
    """``target.<method>(*args, **kwargs)`` as ``func`` to the innermost mode, else to the wrapper
    subclasses' handlers (``types``); ``func`` called on ``target`` runs under the caller's grad mode."""
    targets = getattr(_pending, "inplace", None)
    if targets is None:
        targets = _pending.inplace = []
    handed = []
    targets.append((target, is_grad_enabled(), handed))
    try:
        if _mode_stack:
            saves = _saved_by_inplace(func._op_name, target, args) \
                if is_grad_enabled() and getattr(_handler_caller, "grad_enabled", None) is None else None
            if saves == "self":
                _show_saved(target, types, _CLONE)
            with _pop_mode_temporarily() as mode, _below_autograd():
                resolves = func._op_name not in _CONJ_FALLTHROUGH
                if resolves:
                    _show_conj_resolved(mode, types, [t for t in (target, *args) if isinstance(t, _function._Tensor)])
                mode.__torch_dispatch__(func, types, (target, *args), kwargs)
                if resolves and target._conj_bit:  # (torch's fallback wrote a resolved clone: copied back into the view)
                    mode.__torch_dispatch__(_CONJ_WRITTEN_BACK, types, (target, target), {})
            if saves == "result":
                _show_saved(target, types)
            return target
        indexed = _wrapper_arguments(args, kwargs, False)
        if indexed and target._wrapper_strides is None and not _wrapper_arguments(args, kwargs, True):
            # the handler's run writes target itself, recorded under the caller's grad mode over what it handed
            recording = indexed = None
        else:
            # (an index wrapper's values live in it: the node is recorded over the ones the handler hands its
            # call, on a copy of target as it was, after the write; otherwise before it, as torch's autograd)
            recording = _inplace_node_on_wrapper(func, target, args, kwargs, record=not indexed)
        version = target._version_box[0]
        with _below_autograd():
            answered = any(kind.__torch_dispatch__(func, types, (target, *args), kwargs) is not NotImplemented
                           for kind in types)
        if not answered:
            raise _no_handler_answered(func, types)
        if indexed and recording is not None:
            if len(handed) != 1:  # (which run's index would the gradient take?)
                raise _refused_gradient(func._op_name, types, len(handed))
            given_args, given_kwargs = handed[0]
            recording = _inplace_node_on_wrapper(func, target, _inner_indices(args, given_args),
                                                 _inner_indices(kwargs, given_kwargs), original=recording[2])
        if recording is not None:
            # (a plain target the handler's run wrote has had its bump: a wrapper's went to its inner tensor)
            _rebase_wrapper(target, *recording, bump=target._version_box[0] == version)
        return target
    finally:
        targets.pop()


def _wrapper_arguments(args: tuple, kwargs: dict, requiring_grad: bool) -> bool:
    """Whether an argument (or an item of a list of them) is a wrapper subclass that requires grad, or (False)
    one that needs none: an index whose values live in it, its array a placeholder."""
    return any(isinstance(t, _function._Tensor) and t._wrapper_strides is not None and t._requires_grad is requiring_grad
               for a in (*args, *kwargs.values()) for t in (a if isinstance(a, (tuple, list)) else (a,)))


def _inner_indices(given, handed):
    """``given`` (args or kwargs) with each wrapper that needs no gradient replaced by what the handler handed
    its call in its place (items of lists too)."""
    def inner(outer, their):
        if isinstance(outer, (tuple, list)) and isinstance(their, (tuple, list)) and len(outer) == len(their):
            return type(outer)(inner(a, b) for a, b in zip(outer, their))
        if isinstance(outer, _function._Tensor) and outer._wrapper_strides is not None and not outer._requires_grad:
            return their
        return outer

    if isinstance(given, dict):
        return {key: inner(value, handed.get(key, value)) for key, value in given.items()}
    return tuple(inner(a, b) for a, b in zip(given, handed))


def _inplace_node_on_wrapper(func, target, args: tuple, kwargs: dict, record: bool = True, original=None):
    """What autograd above ``__torch_dispatch__`` records for an in-place ``target.<op>_(*args)`` on a
    wrapper subclass, before the handler writes: the out-of-place op's node over the wrappers (run on
    their placeholders, as _record_on_wrappers does) and, where the rule keeps ``self``, a clone of
    target as it was (the handler makes it: torch's autograd clones it too); None when nothing records.
    A leaf that requires grad is refused first, as torch refuses it. ``record`` False: only that check and
    the clone, (None, None, clone) where something would record; ``original``: that clone, made earlier."""
    function = func._function() if isinstance(func, InplaceOverload) else None
    if function is None or not is_grad_enabled():
        return None
    tensors = [t for t in (target, *args, *kwargs.values()) if isinstance(t, _function._Tensor)]
    if not any(t._requires_grad for t in tensors):
        return None
    if target._requires_grad and target._grad_fn is None and target._base is None:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    on_copy = getattr(function, "reads_copy", None)  # (an op of several nodes, which reads a copy of self)
    if not record:
        return None, None, _wrapper_before_write(target)
    if original is None and on_copy is not None:
        original = _wrapper_before_write(target)
    previous = _function.active_dispatch
    if on_copy is None:
        _function.active_dispatch = None
    try:
        # (an op of several nodes records through the handler: its inner nodes save what they computed
        # (addr_'s vec1 column, read by vec2's gradient), which on the placeholders would be zeros)
        with enable_grad():
            recorded = on_copy(original, *args, **kwargs) if on_copy is not None else function(
                target if original is None else original, *args, **kwargs)
    finally:
        _function.active_dispatch = previous
    node = recorded.grad_fn if isinstance(recorded, _function._Tensor) else None
    if node is None:
        return None
    for name in getattr(node._forward_cls, "forward_state", ()):  # (from the placeholders: the rule recomputes them)
        if name in node.__dict__:
            setattr(node, name, None)
    if original is None and node._saved and any(s is target for s in node._saved):
        original = _wrapper_before_write(target)
    return node, recorded._output_nr, original


def _wrapper_before_write(target):
    """A copy of wrapper ``target`` as it is, made by its handler (aten.clone), in target's place in the graph."""
    with _below_autograd():
        original = target.clone()
    original._grad_fn = target._grad_fn
    original._output_nr = target._output_nr
    original._requires_grad = target._requires_grad
    return original


def _rebase_wrapper(target, node, output_nr: int, original, bump: bool = True) -> None:
    """The handler wrote ``target`` in place: bump its version and make ``node`` its grad_fn, as
    _methods._inplace does for a plain tensor; the node's saved ``self`` is the clone of it as it was,
    its saved result target as it is now."""
    if bump:
        target._version_box[0] += 1
    saved = list(node._saved or ())
    if saved:
        outputs = getattr(node, "_saved_outputs", None) or ()
        for i, s in enumerate(saved):
            if i in outputs:
                saved[i] = _wrapper_alias(target)  # (an alias: target itself would hold its own node)
            elif s is target:
                saved[i] = original
        node._saved = tuple(saved)
        node._saved_versions = tuple(None if s is None else _function._saved_version(s) for s in saved)
    old = target._grad_fn
    target._grad_fn = node
    op = getattr(node._forward_cls, "_derivative_op", None)
    if op is not None:  # an op without a derivative: torch's error names the in-place one (aten::heaviside_)
        node._derivative_op = op + "_"
    target._output_nr = output_nr
    target._requires_grad = True
    if target._retains_grad:
        target._move_retained_grad(old)


_function.inplace_dispatch = _dispatch_inplace

_method_overloads: dict = {}


def _call_method(target, method, *args, **kwargs):
    return method(target, *args, **kwargs)


def _dispatch_method(name: str, method, target, args: tuple):
    """``function.method_dispatch``: an in-place method that writes through no op of its own name
    (``copy_``, ``fill_``, ``zero_``, ``fill_diagonal_``) to the innermost mode as ``aten.<name>``
    (``"fill_.Scalar"`` names its overload, else ``.default``), as torch's one op; the handler's
    ``func(target, *args)`` calls ``method`` below the mode, under the caller's grad mode. Without a
    mode, RUN_UNDISPATCHED (a wrapper subclass gets the write through ``factory_dispatch``)."""
    if not _mode_stack:
        return _function.RUN_UNDISPATCHED
    key = (name, method)
    func = _method_overloads.get(key)
    if func is None:
        op_name, _, overload_name = name.partition(".")
        func = _method_overloads[key] = InplaceOverload(method, _call_method, op_name, overload_name or "default")
    types = _dispatch_types((target, *args)) if _live_wrappers else ()
    return _inplace_to_handler(func, types, target, args, {})


_function.method_dispatch = _dispatch_method


def _dispatch_inplace_view(name: str, method, view, target, args: tuple, shown: tuple):
    """``function.inplace_view_dispatch``: ``target.t_()`` (transpose_, squeeze_, unsqueeze_, swapaxes_ and
    swapdims_ as torch's transpose_) on wrapper subclass ``target`` without a mode, to its handler as torch's
    one op (``aten.transpose_.default``), whose ``func(inner, *args)`` runs the method on what it unwraps. What
    the method makes target: ``view`` over target's placeholder (recorded as autograd above the handler
    records it, under the caller's grad mode), with the strides the view gives a tensor of target's."""
    from ..ops.compat import empty_strided

    func = _method_overloads.get((name, method))
    if func is None:
        op_name, _, overload_name = name.partition(".")
        func = _method_overloads[(name, method)] = InplaceOverload(method, _call_method, op_name,
                                                                    overload_name or "default")
    types = _dispatch_types((target,))
    previous = _function.active_dispatch
    _function.active_dispatch = None
    try:
        recorded = view(target, *args)
        like = empty_strided(tuple(target._data.shape), target._wrapper_strides, dtype=target.dtype)
        strides = tuple(view(like, *args).stride())
    finally:
        _function.active_dispatch = previous
    with _below_autograd():
        answered = any(kind.__torch_dispatch__(func, types, (target, *shown), {}) is not NotImplemented
                       for kind in types)
    if not answered:
        raise _no_handler_answered(func, types)
    return recorded, strides


_function.inplace_view_dispatch = _dispatch_inplace_view

def _dispatch_setitem(input, key, value):
    """``function.setitem_dispatch``: ``input[key] = value`` under a mode, written as torch's indexing
    writes it, each op reaching the mode: a number lifted into a 0-d tensor of input's dtype
    (``aten.lift_fresh``); a key of ints and slices through ``select.int``/``slice.Tensor`` (and ``unsqueeze``
    for None) one dim at a time, then ``copy_`` (``fill_`` for a 0-d value; ``view`` and ``expand`` of a
    value of another shape first); one index or mask tensor through ``index_put_([key], value)``.
    Without a mode, a key of tensors one of which is a wrapper subclass (its values live in it) is written by
    ``index_put_`` too, which its handler answers. RUN_UNDISPATCHED without a mode, or for another key
    (written as chainrule writes it)."""
    Tensor = _function._Tensor
    items = key if type(key) is tuple else (key,)
    if not _mode_stack:
        if not (_live_wrappers and items and all(isinstance(item, Tensor) for item in items)
                and any(item._wrapper_strides is not None for item in items)):
            return _function.RUN_UNDISPATCHED
        key = items if len(items) > 1 else items[0]
    if isinstance(key, Tensor) and key.dtype.is_floating_point is False and key._data.ndim:
        indexed = True
    elif not _mode_stack and type(key) is tuple:  # (tensors, one a wrapper: above)
        indexed = True
    elif _basic_items(items) and input._data.ndim:
        indexed = False
    else:
        return _function.RUN_UNDISPATCHED
    if not isinstance(value, Tensor):
        if not isinstance(value, (bool, int, float, complex)):
            return _function.RUN_UNDISPATCHED
        from ..ops.creation import _lift_fresh
        from ..ops.elementwise import _as_operand

        made = Tensor._make(_as_operand(value, input.dtype, input)._data)  # (as setitem reads a number)
        lifted = _dispatch_factory("lift_fresh", _lift_fresh, (made,), {})
        value = made if lifted is _function.RUN_UNDISPATCHED else lifted
    if indexed:
        input.index_put_(key if type(key) is tuple else (key,), value)
        return None
    view = _walk(input, items)
    if tuple(view._data.shape) == tuple(value._data.shape):
        view.copy_(value)
    elif value._data.ndim == 0:
        view.fill_(value)
    else:
        shape = value._data.shape
        kept = next((i for i, size in enumerate(shape) if size != 1), len(shape))
        value = value.view(list(shape[kept:]))
        if tuple(value._data.shape) != tuple(view._data.shape):
            value = value.expand(list(view._data.shape))
        view.copy_(value)
    return None


_function.setitem_dispatch = _dispatch_setitem


def _basic_items(items: tuple) -> bool:
    return (all(type(item) in (int, slice) or item is Ellipsis or item is None for item in items)
            and sum(item is Ellipsis for item in items) <= 1)


def _walk(input, items: tuple):
    """``input[items]`` for a key of ints, slices, None and one Ellipsis, read one dim at a time as
    torch's indexing does (``select.int``, ``slice.Tensor``, ``unsqueeze``; a whole slice reads nothing)."""
    view = input
    dim = 0
    given = sum(item is not None and item is not Ellipsis for item in items)
    for item in items:
        if item is Ellipsis:
            dim += input._data.ndim - given
        elif item is None:
            view = view.unsqueeze(dim)
            dim += 1
        elif type(item) is int:  # (as x[..., i] reads it: torch's select, and its IndexError's words)
            view = view[(slice(None),) * dim + (item,)]
        else:
            if item != slice(None):
                view = view[(slice(None),) * dim + (item,)]
            dim += 1
    return view


def _dispatch_getitem(input, key: tuple):
    """``function.getitem_dispatch``: ``input[key]`` for a tuple key under a mode; one of ints and
    slices over several dims is read one dim at a time (``_walk``), as torch's indexing shows it, where
    chainrule reads it as one op. RUN_UNDISPATCHED without a mode or for another key."""
    if not _mode_stack or not _basic_items(key) or not input._data.ndim or sum(
            item is not Ellipsis and not (type(item) is slice and item == slice(None)) for item in key) < 2:
        return _function.RUN_UNDISPATCHED
    return _walk(input, key)


_function.getitem_dispatch = _dispatch_getitem

# methods whose in-place overload is not the ``.Tensor`` of one with arguments: torch's schema names
# it (lerp_ by its weight: ``.Scalar`` for a number, ``.Tensor`` for a tensor)
# the schema defaults of in-place activations' trailing arguments (a float 1.0 is not elu_'s int 1: shown)
_INPLACE_SCHEMA_DEFAULTS = {"leaky_relu": (0.01,), "elu": (1, 1, 1), "celu": (1.0,), "hardtanh": (-1, 1),
                            "rrelu_with_noise": (1.0 / 8, 1.0 / 3)}
_INPLACE_OVERLOAD_NAMES = {"addcmul": "default", "addcdiv": "default", "index_put": "default"}
# the in-place ops whose one overload in torch is .default (torch.ops.aten.<name>_.overloads() in torch 2.13),
# which take arguments: addr_(vec1, vec2) is aten.addr_.default, not .Tensor
_INPLACE_DEFAULT_ONLY = frozenset((
    "addbmm", "addmm", "addmv", "addr", "arctan2", "atan2", "baddbmm", "cauchy", "celu", "cumprod", "cumsum", "elu",
    "exponential", "fill_diagonal", "gcd", "hardtanh", "leaky_relu", "geometric", "heaviside", "hypot", "igamma", "igammac", "index_add",
    "index_copy", "index_reduce", "lcm", "ldexp", "log_normal", "logical_and", "logical_or", "logical_xor", "logit",
    "masked_scatter", "mvlgamma", "nan_to_num", "nextafter", "normal", "polygamma", "put", "renorm", "rrelu_with_noise",
    "scatter_add",
    "tril", "triu", "uniform"))


def _inplace_overload_name(name: str, args: tuple, kwargs: dict) -> str:
    if name == "lerp":
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        return "Tensor" if isinstance(weight, _function._Tensor) else "Scalar"
    if name == "masked_fill":  # (by its value: a number is .Scalar)
        value = args[1] if len(args) > 1 else kwargs.get("value")
        return "Tensor" if isinstance(value, _function._Tensor) else "Scalar"
    if name in ("clamp", "clamp_min", "clamp_max"):  # (.Tensor where a bound is a tensor)
        return "Tensor" if any(isinstance(bound, _function._Tensor) for bound in args) else "default"
    if name in _INPLACE_DEFAULT_ONLY:
        return "default"
    return _INPLACE_OVERLOAD_NAMES.get(name) or ("Tensor" if args else "default")


def _into_wrapper_by_copy(function, target, args: tuple, kwargs: dict):
    """An in-place op built from a lambda (``F.threshold_``, ``F.hardtanh(inplace=True)``) on a wrapper
    subclass, whose values live in its attributes, outside a mode: the op runs out of place (its handler
    answers it; on a clone where a gradient is recorded, as the op may save its input) and ``copy_`` writes
    the result in (its handler too), where the write went into the wrapper's placeholder."""
    if _mode_stack or not _live_wrappers or target._wrapper_strides is None or (
            is_grad_enabled() and target._requires_grad and target._grad_fn is None):
        return _function.RUN_UNDISPATCHED  # (a leaf that requires grad: _inplace refuses it)
    source = target
    if target._requires_grad and is_grad_enabled():  # (the op may save its input, which copy_ then writes)
        source = target.clone()
    return target.copy_(function(source, *args, **kwargs))


def _bind_wrapper_constructor() -> None:
    from ..tensor import Tensor

    Tensor._make_wrapper_subclass = staticmethod(_make_wrapper_subclass)


_bind_wrapper_constructor()
