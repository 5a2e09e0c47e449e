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

docs/extending.md ("The layer below") lists what differs from torch: ``args``/``kwargs`` are the
chainrule op's, some ops show another overload or no decomposition, only some factory functions
reach the mode, and the backward is shown as the ops chainrule's rules run.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import numpy as np

from .._backend import contiguous_strides
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
}


class DispatchedOverload(OpOverload):
    """The ``func`` a handler receives: one chainrule op as the aten overload torch would name.

    Calling it runs the op below the current mode. It compares and hashes equal to the overload
    of the same name in ``torch.ops.aten`` (``func == torch.ops.aten.mul.Tensor``), as overloads
    compare by their qualified name."""

    def __init__(self, op_class, op_name: str, overload_name: str) -> None:
        super().__init__("aten", op_name, overload_name, self._run_op)
        self._op_class = op_class

    def _run_op(self, *args, **kwargs):
        from_aten = getattr(self._op_class, "from_aten_arguments", None)
        if from_aten is not None:
            args, kwargs = from_aten(args, kwargs)
        pending = _pending.stack[-1] if getattr(_pending, "stack", None) else None
        if (pending is not None and pending.record and pending.output is None
                and pending.op_class is self._op_class and len(args) == len(pending.inputs)
                and all(a is b for a, b in zip(args, pending.inputs))):
            # the handler runs the op on its own inputs: this is the call autograd records
            with enable_grad():
                pending.output = _function._apply_array_op(self._op_class, *args, **kwargs)
            return pending.output
        return _function._apply_array_op(self._op_class, *args, **kwargs)


_overloads: dict = {}


def _aten_arguments(op_class, inputs, params) -> tuple:
    """(args, kwargs) as torch's overload takes them: an op whose node keeps an argument as a
    parameter rather than an input (where's condition) places it as torch does."""
    to_aten = getattr(op_class, "to_aten_arguments", None)
    if to_aten is not None:
        return to_aten(inputs, params)
    return tuple(inputs), dict(params)


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


# ---- the dispatcher
class _PendingOp:
    """One op handed to a handler: what autograd records around it."""

    __slots__ = ("op_class", "inputs", "record", "output")

    def __init__(self, op_class, inputs, record: bool) -> None:
        self.op_class = op_class
        self.inputs = inputs
        self.record = record
        self.output = None


_pending = threading.local()


def _dispatch(op_class, inputs, params):
    """``function.active_dispatch``: hand the op to the innermost mode, else to the
    ``__torch_dispatch__`` of a wrapper subclass among its inputs, else leave it alone."""
    if _mode_stack:
        return _to_mode(op_class, inputs, params)
    if _live_wrappers:
        for t in inputs:
            if t is not None and getattr(type(t), "__torch_dispatch__", None) is not None:
                return _to_subclass(op_class, inputs, params)
    return _function.RUN_UNDISPATCHED


def _is_recording(inputs) -> bool:
    return is_grad_enabled() and any(t is not None and t._requires_grad for t in inputs)


def _to_mode(op_class, inputs, params):
    """The mode's handler runs with the mode popped and below autograd (grad mode off); then the
    handler's result gets the node recorded for the op, so gradients flow through it."""
    record = _is_recording(inputs)
    pending = _PendingOp(op_class, inputs, record)
    stack = getattr(_pending, "stack", None)
    if stack is None:
        stack = _pending.stack = []
    stack.append(pending)
    try:
        with _pop_mode_temporarily() as mode, _below_autograd():
            types = _dispatch_types(inputs) if _live_wrappers else ()
            result = mode.__torch_dispatch__(overload_of(op_class), types, *_aten_arguments(op_class, inputs, params))
    finally:
        stack.pop()
    if not record:
        return result
    recorded = pending.output
    if recorded is None:  # the handler never ran the op on its inputs: record it now, below the modes
        with _disable_current_modes():
            recorded = _function._apply_array_op(op_class, *inputs, **params)
    if result is recorded:
        return result
    return _attach(result, recorded)


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
        kind = type(t)
        if isinstance(t, _function._Tensor) and getattr(kind, "__torch_dispatch__", None) is not None and kind not in kinds:
            kinds.append(kind)
    return tuple(sorted(kinds, key=lambda kind: -len(kind.__mro__)))


def _to_subclass(op_class, inputs, params):
    """Each wrapper class's ``__torch_dispatch__`` in turn until one answers (not NotImplemented),
    below autograd; the op's node, recorded on the wrappers, goes on the result it returned."""
    func = overload_of(op_class)
    types = _dispatch_types(inputs)
    with _below_autograd():
        for kind in types:
            result = kind.__torch_dispatch__(func, types, *_aten_arguments(op_class, inputs, params))
            if result is not NotImplemented:
                break
        else:
            raise _no_handler_answered(func, types)
    if _is_recording(inputs):
        _record_on_wrappers(op_class, inputs, params, result)
    return result


def _no_handler_answered(func, types) -> TypeError:
    listed = "".join(f"\n  - tensor subclass {kind}" for kind in types)
    return TypeError(f"Multiple dispatch failed for 'torch._ops.{func}'; all __torch_dispatch__ handlers "
                     f"returned NotImplemented:\n{listed}\n\nFor more information, try re-running with "
                     "TORCH_LOGS=not_implemented")


def _record_on_wrappers(op_class, inputs, params, result) -> None:
    """Record the op's node as autograd above ``__torch_dispatch__`` does: the forward runs once
    more on the wrappers' own arrays (placeholders: their values live in the subclass) only for
    the node and what it saves; the node then goes on the handler's result in place, which stays
    the wrapper the handler returned, and stands for the output the rule reads."""
    previous = _function.active_dispatch
    _function.active_dispatch = None
    try:
        with enable_grad():
            recorded = _function._apply_array_op(op_class, *inputs, **params)
    finally:
        _function.active_dispatch = previous
    results = result if isinstance(result, (tuple, list)) else (result,)
    recorded = recorded if isinstance(recorded, tuple) else (recorded,)
    node = next((r.grad_fn for r in recorded if r.grad_fn is not None), None)
    if node is None:
        return
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
            saved[i] = results[saved[i]._output_nr]
        node._saved = tuple(saved)
        node._saved_outputs = None


def _make_wrapper_subclass(cls, size, strides=None, storage_offset=None, memory_format=None, dtype=None,
                           layout=None, device=None, pin_memory=False, requires_grad=False, **dispatch_policies):
    """torch.Tensor._make_wrapper_subclass: a ``cls`` instance with ``size`` and ``dtype`` and no
    values of its own; its class keeps them (an inner tensor, say) and its ``__torch_dispatch__``
    answers every op on it. chainrule gives it a zero-strided placeholder array of that shape and
    dtype (no memory), reporting ``strides`` (contiguous ones by default) and ``storage_offset`` as
    given; ``device`` and the dispatch policies are accepted as given."""
    from .. import _dtype
    from ..tensor import Tensor

    global _live_wrappers
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
        if not _live_wrappers:
            _function.active_dispatch = _dispatch
            if not _mode_stack:
                _switch_fast_paths(True)
        _live_wrappers += 1
        weakref.finalize(out, _wrapper_gone)
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
    backward through its handler too, op by op); other nodes run their rule as usual."""
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
    func = backward_overload_of(type(node))
    nodes = getattr(_pending, "nodes", None)
    if nodes is None:
        nodes = _pending.nodes = []
    nodes.append(node)
    try:
        with _below_autograd():
            for kind in types:
                result = kind.__torch_dispatch__(func, types, args, {})
                if result is not NotImplemented:
                    return tuple(result)
    finally:
        nodes.pop()
    raise _no_handler_answered(func, types)


_function.node_dispatch = _dispatch_node


_factory_overloads: dict = {}


def _dispatch_factory(name: str, factory, args: tuple, kwargs: dict):
    """``function.factory_dispatch``: a call that makes a tensor (``torch.ones``; the backward's seed,
    ``aten.ones_like``) to the innermost mode, else to a wrapper subclass among ``args``, as
    ``aten.<name>`` (``"ones"`` is ``aten.ones.default``, ``"empty.memory_format"`` names its
    overload); ``func(*args, **kwargs)`` calls ``factory`` below the mode."""
    func = _factory_overloads.get(name)
    if func is None:
        op_name, _, overload_name = name.partition(".")
        func = _factory_overloads[name] = OpOverload("aten", op_name, overload_name or "default", factory)
    types = _dispatch_types(args) if _live_wrappers else ()
    if _mode_stack:
        with _pop_mode_temporarily() as mode, _below_autograd():
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


class InplaceOverload(OpOverload):
    """The ``func`` a handler gets for an in-place method (``aten.add_.Tensor``): calling it runs
    the method below the mode. Called on the tensor the method was called on, it runs under the
    caller's grad mode, so the write is recorded above the mode as without one."""

    def __init__(self, function, run_inplace, op_name: str, overload_name: str) -> None:
        super().__init__("aten", op_name, overload_name, self._run_method)
        self._function = function
        self._run_inplace = run_inplace

    def _run_method(self, target, *args, **kwargs):
        targets = getattr(_pending, "inplace", None)
        if targets and targets[-1][0] is target:
            with set_grad_enabled(targets[-1][1]):
                return self._run_inplace(target, self._function, *args, **kwargs)
        return self._run_inplace(target, self._function, *args, **kwargs)


_inplace_overloads: dict = {}


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
    types = _dispatch_types(tensors) if _live_wrappers else ()
    if not _mode_stack and not types:
        return _function.RUN_UNDISPATCHED
    overload_name = _inplace_overload_name(name, args, kwargs)
    key = (function, overload_name)
    func = _inplace_overloads.get(key)
    if func is None:
        func = _inplace_overloads[key] = InplaceOverload(function, run_inplace, name + "_", overload_name)
    targets = getattr(_pending, "inplace", None)
    if targets is None:
        targets = _pending.inplace = []
    targets.append((target, is_grad_enabled()))
    try:
        if _mode_stack:
            with _pop_mode_temporarily() as mode, _below_autograd():
                mode.__torch_dispatch__(func, types, (target, *args), kwargs)
            return target
        with _below_autograd():
            for kind in types:
                if kind.__torch_dispatch__(func, types, (target, *args), kwargs) is not NotImplemented:
                    return target
    finally:
        targets.pop()
    raise _no_handler_answered(func, types)


_function.inplace_dispatch = _dispatch_inplace

# methods whose in-place overload is not the ``.Tensor`` of one with arguments: torch's schema names
# it (lerp_ by its weight: ``.Scalar`` for a number, ``.Tensor`` for a tensor)
_INPLACE_OVERLOAD_NAMES = {"addcmul": "default", "addcdiv": "default"}


def _inplace_overload_name(name: str, args: tuple, kwargs: dict) -> str:
    if name == "lerp":
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        return "Tensor" if isinstance(weight, _function._Tensor) else "Scalar"
    return _INPLACE_OVERLOAD_NAMES.get(name) or ("Tensor" if args else "default")


def _into_wrapper_by_copy(function, target, args: tuple, kwargs: dict):
    """An in-place op built from a lambda (``F.threshold_``, ``F.hardtanh(inplace=True)``) on a wrapper
    subclass, whose values live in its attributes, outside a mode and with no gradient to record: the
    op runs out of place (its handler answers it) and ``copy_`` writes the result in (its handler too)."""
    if _mode_stack or not _live_wrappers or target._wrapper_strides is None or (is_grad_enabled() and any(
            isinstance(t, _function._Tensor) and t.requires_grad for t in (target, *args, *kwargs.values()))):
        return _function.RUN_UNDISPATCHED
    return target.copy_(function(target, *args, **kwargs))


def _bind_wrapper_constructor() -> None:
    from ..tensor import Tensor

    Tensor._make_wrapper_subclass = staticmethod(_make_wrapper_subclass)


_bind_wrapper_constructor()
