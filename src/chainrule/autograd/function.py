"""Function (the user-facing op definition) and Node (its recorded instance in the graph).

Every differentiable op — built in or written by a user — is a ``Function`` subclass with a
``forward`` and a ``backward`` side by side. Calling ``Fn.apply(...)`` runs ``forward`` and, when
grad mode is on and an input requires grad, records a ``Node`` — the ``ctx`` that forward saw,
which also is the output's ``grad_fn``. Its class is named like torch's (``MulBackward0``,
``MyFnBackward``) and it exposes ``next_functions`` as ``(node, output_nr)`` pairs.

Two flavours share this one mechanism:

* user subclasses (torch semantics): ``forward(ctx, *args)`` receives Tensors, runs with grad
  mode off and returns Tensors;
* built-in ops (``_array_forward = True``): ``forward(ctx, *arrays, **params)`` works on raw
  arrays, which keeps the per-op cost low. Arrays passed to ``ctx.save_for_backward`` that are
  an input's or the output's are saved as that Tensor, so a rule can differentiate through them.

Either way ``backward(ctx, *grad_outputs)`` receives Tensors and returns one gradient (or None)
per forward input, written with chainrule ops so that ``create_graph=True`` records it too.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import re
import threading
import warnings
import weakref
from collections import OrderedDict

import numpy as np

from .. import _opmath, _torch_function
from .._backend import autocast_hook, contiguous_strides, is_gpu_array, on_one_device, refuse_device_params
from .._dtype import NO_WIDE_UNSIGNED_KERNEL, WIDE_UNSIGNED, c_type_name, refuse_wide_unsigned
from .._hook_handle import RemovableHandle
from .grad_mode import is_grad_enabled, no_grad
from .grad_mode import state as _grad_state

_ndarray = np.ndarray
_generic = np.generic
_asarray = np.asarray

# torch is silent about IEEE results (x / 0, log(0), overflow to inf); NumPy warns. Built-in ops
# run with NumPy's warnings off, and only while they run: the user's own NumPy error state is
# never changed. NumPy >= 2 keeps that state in a context variable, and setting it directly costs
# a fraction of entering np.errstate (which does the same plus argument handling) on every op.
try:
    from numpy._core._ufunc_config import _extobj_contextvar as numpy_errstate
    from numpy._core._ufunc_config import _make_extobj

    QUIET = _make_extobj(all="ignore")
except ImportError:  # NumPy 1.x: the same through np.errstate
    class _ErrstateVar:
        @staticmethod
        def get() -> dict:
            return np.geterr()

        @staticmethod
        def set(state):
            token = np.errstate(**(state or {"all": "ignore"}))
            token.__enter__()
            return token

        @staticmethod
        def reset(token) -> None:
            token.__exit__(None, None, None)

    numpy_errstate, QUIET = _ErrstateVar(), None

__all__ = ["Function", "FunctionCtx", "Node", "AccumulateGrad", "once_differentiable"]

# the Tensor class, set by chainrule._methods: autograd sits below tensor.py and does not import it
_Tensor = None
_make_tensor = None  # its fast constructor, Tensor._make, bound once (not per op)
# True inside an inference_mode block, where _make_tensor marks inference tensors: apply's inline
# construction of its one output (which skips _make_tensor) must not run then
making_inference_tensors = False

# the recorder of the profiler now recording (set by autograd.profiler), else None: the one check
# the op hot path pays for profiling. It hands each apply to the recorder, which times it and
# calls apply again, answering that inner call with RUN_UNRECORDED (run on, unrecorded).
active_profiler = None
# how many vmaps are recording their slice 0's ops (_vmap_batched): rules then run Tensor ops, whose
# applies the record sees, not their raw-array shortcuts (on_arrays)
tracing_ops = 0
# the running vmaps' frames, innermost last (_vmap_frames._frames, the one list, handed over by
# _methods): non-empty while a vmap runs its function, recording slice 0 or running slice by slice
vmap_frames: list = []
traced_elementwise = None  # its hook for an elementwise op that is no Function (a comparison): (op, args, out)
traced_constant = None  # its hook for a tensor the engine makes that every slice's run makes the same (a seed)
# its hook for an op along one dim whose indices no Function computes (sort, topk, argmax):
# (op, its arguments by name) -> the op's result, or None for the op to run on unrecorded
traced_call = None
traced_write = None  # its hook for an in-place op's plain write of its result into a tensor: (tensor, result)
# its hook for slice 0's random draw (dropout's mask, _vmap_frames.slice_draw): (the batch's draw or None, slice 0's)
traced_draw = None
# its answer, for a tensor, to which operands the recorded elementwise op that made it read (None: no such op)
traced_operands = None
# its hook for an array a node's rule recomputed in place of one the node kept, same values (a norm's x̂ once
# its output, which shared x̂'s buffer, was written in place): (node, the kept attribute's name, the array)
traced_recomputed = None
# its hook for a copy an in-place op's node keeps of the tensor it writes (its saved input's old value): (copy, tensor)
traced_copy = None
RUN_UNRECORDED = object()
# what runs each op instead while a forward-AD level or saved-tensor hooks are active (set by
# autograd.forward_ad), else None: the one check the op hot path pays for both
active_extension = None
# the dispatcher of torch's __torch_dispatch__ layer while a TorchDispatchMode is entered or a
# wrapper subclass instance is alive (set by utils._python_dispatch), else None: the one check the
# op hot path pays for it. It runs below the
# profiler (which times the op, dispatch included) and above forward AD and the forward itself; it
# answers RUN_UNDISPATCHED for an op it leaves alone
active_dispatch = None
RUN_UNDISPATCHED = object()
# node_dispatch(node, grads): while active_dispatch is set, what the engine asks before a node's rule
# runs; a node whose gradients or saved tensors are wrapper subclasses goes to their
# __torch_dispatch__ as one backward op, anything else is answered RUN_UNDISPATCHED
node_dispatch = None
# factory_dispatch(name, factory, args, kwargs): what torch.ones/zeros/empty/full and the backward's
# implicit seed ask while active_dispatch is set; the innermost mode's handler (or a wrapper's among
# args) makes the tensor, or RUN_UNDISPATCHED
factory_dispatch = None
# argument_dispatch(name, op, args, kwargs): an op function whose integer or bool argument (index, mask, target)
# is a wrapper subclass asks this before reading it: the wrapper's handler answers aten.<name>, the gradient
# recorded over the handler's real argument (utils._python_dispatch), or RUN_UNDISPATCHED; an optional fifth
# argument, ``record``, is the op that recording runs (one writing no argument the handler's run wrote)
argument_dispatch = None
# (op class, input, {name: value}): the arguments of the next op's call as the user wrote them where
# its params keep them normalised (softmax(-1), view(-1), squeeze()), which a dispatch mode shows as
# given; an op function notes them just before applying the op, only while active_dispatch is set
# (note_given), and the dispatcher takes them for that op, or drops them at the next op it sees; the
# input is held by a weak reference, so a note no op took does not keep its tensor alive
given_arguments = None
# (out, op): set by an op function's ``out=`` front while active_dispatch is set, around the call that
# computes the result; the dispatcher hands the op ``op`` runs as (add's add, matmul's mm) to a mode as
# torch's out overload with ``out=`` (aten.add.out), and takes the note, so later ops see none
pending_out = None
# dispatched_indices(values): the indices a mode's or a wrapper's handler returned beside ``values`` for an
# op torch answers with (values, indices) (sort, topk, ...: utils._python_dispatch), else None
dispatched_indices = None


def note_given(cls, input, **values) -> None:
    global given_arguments
    given_arguments = (cls, weakref.ref(input), values)


# inplace_dispatch(fn, self, args, kwargs, run_inplace): what an in-place method (``x.add_(y)``) asks
# while active_dispatch is set; the mode or a wrapper's handler runs it as ``aten.add_.Tensor``
inplace_dispatch = None
# method_dispatch(name, method, self, args): what an in-place method writing through no op of its name
# (``copy_``, ``fill_``, ``zero_``) asks while active_dispatch is set; a mode sees it as ``aten.<name>``
method_dispatch = None
# inplace_view_dispatch(name, method, view, self, args, shown): an in-place view (``t_``, ``transpose_``) of a
# wrapper subclass without a mode, to its handler as torch's one op; (the view over self's placeholder, as
# autograd records it, and its strides)
inplace_view_dispatch = None
# composite_dispatch(name, composite, args, kwargs): a call chainrule computes from several ops that torch
# runs as one aten op (addmm with beta/alpha), asked while active_dispatch is set; a mode sees the one op
composite_dispatch = None
# setitem_dispatch(input, key, value): ``input[key] = value`` while active_dispatch is set; under a mode
# it writes through torch's ops (select/slice, copy_/fill_, index_put_), else RUN_UNDISPATCHED
setitem_dispatch = None
# getitem_dispatch(input, key): ``input[key]`` for a tuple key while active_dispatch is set; under a mode a
# key of ints and slices over several dims reads through torch's select/slice per dim, else RUN_UNDISPATCHED
getitem_dispatch = None
# alias_wrapper(wrapper, node): a wrapper subclass instance's alias with ``node`` as its grad_fn (set by
# utils._python_dispatch, which saves a wrapper output a node's rule reads as an alias without one)
alias_wrapper = None
# set by autograd.forward_ad: copy_tangent(source, target) gives a saved output, brought back by
# _with_grad_fn, its output's tangent (called only while active_extension is set)
copy_tangent = None

# ``_opmath.run`` once a half-precision or float8 dtype is loaded or a CPU autocast region has opened,
# else None: the one check the op hot path pays for low-precision semantics until then. Once set, an
# op still runs its forward directly unless a region is open or an input is of such a dtype
# (``_low_precision``): ``run`` changes nothing else, so a float32 op after a bfloat16 one pays no more
opmath_hook = None


def _saved_version(tensor) -> int:
    """The version a saved tensor is recorded at; an inference tensor's counter refuses the read
    with torch's "cannot be saved for backward" error (``tensor._version`` says another thing)."""
    box = tensor._vbox
    return 0 if box is None else box[0]


def _set_opmath_hook(hook) -> None:
    global opmath_hook
    opmath_hook = hook


_opmath.hook_setters.append(_set_opmath_hook)
_opmath.is_grad_enabled = is_grad_enabled  # the autocast cache keeps no cast made under no_grad


def _low_precision(arrays: list) -> bool:
    """Whether one of an op's arrays is float16, bfloat16 or a float8 type (ml_dtypes' are of kind
    'V'): the inputs ``_opmath.run`` widens, rounds back or refuses. Outside an autocast region, an op
    on none of them runs exactly its forward there."""
    for array in arrays:
        if getattr(array, "itemsize", 4) < 4 and array.dtype.kind in "fV":
            return True
    return False


class FunctionCtx:
    """The type of the ``ctx`` a Function's ``forward``/``backward`` receive, under torch's name:
    libraries annotate with it (GPyTorch's ``ctx: FunctionCtx``) and test ``isinstance`` on it.
    Every ctx chainrule hands out (a recorded Node, or the stand-ins used when nothing is
    recorded) derives from it; the methods live on those classes."""

    __slots__ = ()


class Node(FunctionCtx):
    """A recorded op in the backward graph (torch's ``grad_fn``)."""

    # Slots for what every recorded op sets; the rarely set attributes (hooks, anomaly traceback,
    # several outputs) are class-level defaults instead, so a node is built with few stores
    # (``_make_node`` bypasses ``__init__``), and one that sets them gets its ``__dict__``.
    __slots__ = ("next_functions", "needs_input_grad", "_input_meta", "_saved", "_saved_versions",
                 "_freed", "_sequence_number", "_topological_nr", "__dict__", "__weakref__")

    _num_outputs = 1
    # set on a node given any hook, a retained output or a CPU scalar input among device tensors:
    # the engine's walk then takes the general path for it, and tests this one flag instead of
    # five attributes per node
    _hooked = False
    # the positions of the 0-d CPU inputs of an op on device tensors (torch takes them as
    # scalars), whose gradients the engine moves back to the CPU; None for every other node
    _host_inputs = None
    _tensor_hooks = None
    _retained = None
    _pre_hooks = None
    _post_hooks = None
    _non_differentiable = None
    _dirty = None
    # a custom Function's node called with arguments that are not Tensors: the positions of the
    # Tensor arguments, which alone have edges (its backward still returns one value per argument)
    _tensor_positions = None
    _traceback = None
    _metadata = None
    _output_meta = None
    _forward_cls = None
    # the positions in _saved of this node's own outputs (see _saved_output), or None
    _saved_outputs = None
    # the positions in _saved of an in-place op's operands that are the tensor it wrote (x.mul_(x)'s
    # other): torch saved that tensor, so its version error names this node (see _methods._save_original)
    _overwritten_operands = None
    # the unpack hook of saved_tensors_hooks when this node's saved tensors were packed, else None
    _unpack_hook = None
    # torch's _saved_* names in the order its node saves them, for saved_tensors_hooks to pack in
    # that order (see graph._pack_in_torch_order), else None: the saved tensors in their own order
    torch_pack_order = None
    # how many packed values at the end of _saved are no saved tensor of the rule's (a norm's packed
    # statistics): unpacked with the others, not handed to the rule
    _packed_extras = 0
    _saved_for_forward = None
    # torch's _saved_<name> attributes of this node's op (see SavedValue), None when undeclared
    _torch_saved = None
    # those that name a tensor kept on ctx, not saved (see _keeps_ctx_tensors)
    _ctx_tensors = ()
    # what a composite op keeps for those names (see name_node's ``kept``), None when nothing
    torch_kept = None
    # what the explainer prints for this node, set from its Function's class attributes
    label = None
    rule = None
    formula = None

    def __init__(self) -> None:
        self._saved = ()
        self._freed = False
        self._sequence_number = _next_sequence_number()
        self._topological_nr = None

    @property
    def metadata(self) -> dict:
        """A dict for users' annotations, as torch's ``grad_fn.metadata``."""
        if self._metadata is None:
            self._metadata = {}
        return self._metadata

    # -- the ctx API that forward uses -------------------------------------------------
    def save_for_backward(self, *tensors) -> None:
        self._saved = tensors

    def save_for_forward(self, *tensors) -> None:
        """Tensors a user Function's ``jvp`` reads as ``ctx.saved_tensors`` (forward AD)."""
        self._saved_for_forward = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable = tensors

    def mark_dirty(self, *tensors) -> None:
        """The inputs forward wrote in place: chainrule bumps versions in its in-place ops; the
        mark says an output that is such an input is no view of it (see as_input_view)."""
        self._dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self.__dict__["_materialize"] = bool(value)

    @property
    def saved_values(self) -> tuple:
        """What forward saved, as ``saved_tensors`` gives it: built-in ops' rules read this name,
        since their nodes, like torch's, have no ``saved_tensors`` (torchviz tells a custom
        Function's node by that attribute and draws what it holds)."""
        if self._freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved tensors "
                "after they have already been freed). Saved intermediate values of the graph are freed "
                "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
                "backward through the graph a second time or if you need to access saved tensors after "
                f"calling backward.\n(chainrule: the saved tensors of {self.name()})"
            )
        versions = self._saved_versions
        if versions is not None:
            for tensor, version in zip(self._saved, versions):
                if tensor is not None and version is not None and (
                        0 if tensor._vbox is None else tensor._vbox[0]) != version:
                    raise _modified_in_place(self, tensor, version)
        if self._unpack_hook is not None:  # packed by saved_tensors_hooks: unpacked on each access
            return _unpack_saved(self)
        if self._saved_outputs is not None and _grad_state.enabled:
            # create_graph: the rule's ops record, so each saved output needs its place in the graph
            return _with_grad_fn(self._saved, self._saved_outputs, self)
        return self._saved

    saved_tensors = saved_values  # a user Function's ctx.saved_tensors

    # -- graph introspection ---------------------------------------------------------
    @classmethod
    def name(cls) -> str:
        return cls.__name__

    def _sequence_nr(self) -> int:
        """torch's creation number of this node: among the nodes ready to run, the backward runs
        the highest first (AccumulateGrad's is the largest 64-bit value, so a leaf's runs at once)."""
        return self._sequence_number

    def register_hook(self, fn):
        """Post-hook: ``fn(grad_inputs, grad_outputs)`` after this node's backward runs; what it
        returns (if not None) replaces the gradients the node passes on."""
        if self._post_hooks is None:
            self._post_hooks = OrderedDict()
            self._hooked = True
        return _keep_hook(self._post_hooks, fn)

    def register_prehook(self, fn):
        """Pre-hook: ``fn(grad_outputs)`` before backward; may return replacement grads."""
        if self._pre_hooks is None:
            self._pre_hooks = OrderedDict()
            self._hooked = True
        return _keep_hook(self._pre_hooks, fn)

    def _register_tensor_hook(self, output_nr: int, fn):
        if self._tensor_hooks is None:
            self._tensor_hooks = {}
            self._hooked = True
        return _keep_hook(self._tensor_hooks.setdefault(output_nr, OrderedDict()), fn)

    def apply_backward(self, grad_outputs: tuple) -> tuple:
        """Run this node's rule; subclasses for built-in nodes override nothing else."""
        return self._forward_cls.backward(self, *grad_outputs)

    def __call__(self, *grad_outputs):
        return self.apply_backward(grad_outputs)

    def __repr__(self) -> str:
        # a C++ node's repr shows its type's name, the last part of name() (CopySlices, NotImplemented)
        return f"<{self.name().rpartition('::')[2]} object at {hex(id(self))}>"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("_torch_saved")
        for name in declared or ():
            _add_saved_name(cls, name)
            _add_saved_name(cls, "_raw" + name)

    def __dir__(self):
        # torch's saved names in place of the node's own bookkeeping (_saved_versions, ...):
        # torchviz draws every attribute dir() lists under the _saved_ prefix; the names answered
        # by a _SavedName are listed only where this node declares them (below)
        names = [n for n in super().__dir__() if not n.startswith("_saved_")
                 and (not n.startswith("_raw_saved_") or type(inspect.getattr_static(self, n, None)) is not _SavedName)]
        declared = type(self)._torch_saved
        if declared is not None:  # (an undeclared node lists none: _SAVED_NAMES are guesses by position)
            names += declared
            names += ["_raw" + n for n, v in declared.items() if type(v) is SavedValue and v.tensor]
        return sorted(names)


# torch's names for a node's saved inputs (by position among its inputs) and its saved output,
# for an op that declares no saved_attributes
_SAVED_NAMES = {"_saved_self": 0, "_saved_other": 1, "_saved_mat2": 1, "_saved_exponent": 1,
                "_saved_result": "result"}


class _SavedName:
    """torch's ``grad_fn._saved_<name>`` (and ``_raw_saved_<name>``) of a node, found from what the
    node already keeps, so recording pays nothing for them. A class attribute that reads the
    node's declaration when asked, rather than a ``__getattr__`` on Node: a class with
    ``__getattr__`` makes every attribute read of its instances take CPython's slow path (no
    specialised slot read), and the engine and every rule read node attributes. Non-data, so a
    value stored on the node itself (a user Function's ``ctx._saved_x = ...``) still wins."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, node, owner=None):
        name = self.name
        if node is None:  # (the class itself has no such attribute, as before)
            raise AttributeError(f"type object '{owner.__name__}' has no attribute '{name}'")
        if name.startswith("_saved_"):
            declared = type(node)._torch_saved
            if declared is None:  # an op without a declaration: its inputs by position, its output
                if name in _SAVED_NAMES:
                    return _operand_of(_saved_by_name(node, _SAVED_NAMES[name]))
            elif name in declared:
                value = declared[name]
                if type(value) is not SavedValue:
                    return value
                if value.tensor and node._freed:  # torch's error for every saved tensor, computed ones too
                    if (value.undefined is not None and value.undefined(node)) or _saved_none(node, value.position):
                        return None  # (torch's error is for the defined ones: an undefined one reads None)
                    node.saved_values  # noqa: B018 - the property raises it
                return _operand_of(value.read(node))
        else:
            declared = type(node)._torch_saved
            value = None if declared is None else declared.get(name[4:])
            if type(value) is SavedValue and value.tensor:
                if not value.sequence:
                    return SavedTensor(node, value)
                if node._freed:  # torch's error for a list of saved tensors, read as a whole
                    node.saved_values  # noqa: B018 - the property raises it
                return tuple([SavedTensor(node, value, k) for k in range(len(value.read(node)))])
        raise AttributeError(f"'{type(node).__name__}' object has no attribute '{name}'")


def _saved_none(node, position) -> bool:
    """Whether the forward saved None at ``position`` of ``save_for_backward``: its recorded version
    is None, kept after the saved tensors are freed (not known where saved_tensors_hooks packed them)."""
    versions = node._saved_versions
    return position is not None and versions is not None and position < len(versions) and versions[position] is None


def _add_saved_name(cls, name: str) -> None:
    if name not in cls.__dict__:
        setattr(cls, name, _SavedName(name))


for _name in _SAVED_NAMES:  # an undeclared node's guesses: on Node, for every node class
    _add_saved_name(Node, _name)


def _saved_by_name(node, which):
    """The saved output (``which == "result"``), or the saved tensor that is the node's input
    ``which``: the one whose gradient edge is the node's edge ``which`` (or the only saved input
    of a one-input node); AttributeError where the node saved no such tensor."""
    raw = node._saved
    saved = node.saved_values  # torch's error once the graph is freed
    outputs = node._saved_outputs or ()
    if which == "result":
        if len(outputs) == 1:
            return saved[outputs[0]]
    else:
        candidates = [i for i, s in enumerate(raw) if i not in outputs and isinstance(s, _Tensor)]
        edges = node.next_functions
        if which < len(edges) and edges[which][0] is not None:
            for i in candidates:
                if _edge(raw[i]) == edges[which]:
                    return saved[i]
        elif which == 0 and len(edges) == 1 and len(candidates) == 1:
            return saved[candidates[0]]
    label = "_saved_result" if which == "result" else f"the saved input {which}"
    raise AttributeError(f"'{type(node).__name__}' object has no attribute for {label}: this node did not save it")


class SavedValue:
    """How one of torch's ``grad_fn._saved_<name>`` values is read from what a node keeps.

    A Function declares ``saved_attributes = {"_saved_self": saved(0), "_saved_dim":
    ctx_value("dim"), "_saved_alpha": 1, ...}``: torch's names, each a SavedValue or a constant.
    Nothing runs when the op is recorded; the value is made when someone reads the attribute."""

    __slots__ = ("read", "slot", "tensor", "undefined", "position", "reads_strides", "sequence")

    def __init__(self, read, slot=None, tensor: bool = False, undefined=None, position=None,
                 reads_strides: bool = False, sequence: bool = False) -> None:
        self.read = read  # read(node) -> the value
        # the position in ctx.save_for_backward of the saved tensor read as is (its reads can be
        # hooked through _raw_saved_<name>), else None
        self.slot = slot
        # the position in ctx.save_for_backward it is read from (as is or through a function), else None
        self.position = slot if position is None else position
        self.tensor = tensor or slot is not None  # a tensor (or None): torch lists _raw_saved_<name>
        # undefined(node): True where torch's node keeps an undefined tensor there, which reads
        # None even once the graph is freed (its saved tensors' error is for defined ones)
        self.undefined = undefined
        # True where the value is read from saved tensors' strides, which torch keeps as numbers
        # that outlive the graph: release_saved keeps them (see SAVED_STRIDES_ON_RELEASE)
        self.reads_strides = reads_strides
        # True where the value is a tuple of tensors (or None), torch's list of saved tensors: its
        # _raw_saved_<name> is a tuple of SavedTensors, one per entry (a None one unpacks to None)
        self.sequence = sequence


def _always(node) -> bool:
    return True


def absent_tensor() -> SavedValue:
    """A tensor torch's node keeps undefined (a norm's missing weight): None, also once the
    graph is freed, with its ``_raw_saved_<name>`` listed."""
    return SavedValue(lambda node: None, tensor=True, undefined=_always)


def _keeps_ctx_tensors(declared) -> tuple:
    """The tensors torch saves that an op's node keeps other than through save_for_backward
    (``ctx.index`` of index_select): backward without retain_graph marks such a node freed even
    where it saved nothing else, as torch's node releases every saved variable."""
    return tuple(v for v in (declared or {}).values()
                 if type(v) is SavedValue and v.tensor and v.position is None and v.undefined is not _always)


def _strides_kept(declared) -> dict:
    """The node class attributes that make release_saved keep the saved tensors' strides where a
    declared value reads them (see SAVED_STRIDES_ON_RELEASE)."""
    if any(type(v) is SavedValue and v.reads_strides for v in (declared or {}).values()):
        return {"torch_kept": SAVED_STRIDES_ON_RELEASE}
    return {}


def _defines_ctx_tensor(node) -> bool:
    # (an undefined one, where torch's node keeps none, leaves a second backward possible)
    return any(v.undefined is None or not v.undefined(node) for v in node._ctx_tensors)


def saved(position: int, then=None, needed: int | None = None, undefined=None) -> SavedValue:
    """The tensor the forward passed to ``save_for_backward`` at ``position`` (None where it
    saved None, or where the input ``needed`` needs no gradient: torch keeps a tensor only for
    the gradients it serves), through ``then`` (e.g. ``Tensor.t``) when given; raises torch's
    error once the graph is freed or the tensor was modified in place. ``undefined(node)``:
    True where torch keeps no tensor there (None, also once freed) though the backward reads one."""
    def absent(node) -> bool:  # torch keeps no tensor there: None, also once the graph is freed
        return (needed is not None and not node.needs_input_grad[needed]) or (undefined is not None and undefined(node))

    def read(node):
        if absent(node):
            return None
        value = node.saved_values[position]
        return value if then is None or value is None else then(value)

    return SavedValue(read, position if then is None else None, tensor=True, undefined=absent, position=position)


def ctx_value(name: str, convert=None, tensor: bool = False) -> SavedValue:
    """An attribute the forward set on ctx (``ctx.dim``), through ``convert`` when given;
    ``tensor``: it gives a tensor (or None)."""
    def read(node):
        value = getattr(node, name)
        return value if convert is None else convert(value)

    # (a tensor torch keeps undefined, None, reads None also once the graph is freed)
    return SavedValue(read, tensor=tensor, undefined=(lambda node: read(node) is None) if tensor else None)


def input_sizes(position: int) -> SavedValue:
    """The shape of the input at ``position`` (torch's ``_saved_self_sym_sizes``), kept by every
    node as its input metadata."""
    return SavedValue(lambda node: tuple(node._input_meta[position][0]))


def input_strides(position: int, saved_position: int | None = None, then=None) -> SavedValue:
    """The element strides of the input at ``position`` (torch's ``_saved_self_sym_strides``),
    which torch keeps only while that input needs a gradient (``()`` otherwise): read from the
    tensor saved at ``saved_position`` (through ``then``), else from the input itself when it is
    a leaf, else those of a contiguous tensor of its shape (the node keeps no more)."""
    def read(node):
        if not node.needs_input_grad[position]:
            return ()
        if saved_position is not None and node._freed:
            kept = node.torch_kept  # (a node whose saved_tensors_hooks packed them kept none)
            strides = None if kept is None else kept.get(_SAVED_STRIDES)
            if strides is not None and strides[saved_position] is not None:
                steps, itemsize = strides[saved_position]
                return tuple(step // itemsize for step in steps)
        tensor = None if saved_position is None else node.saved_values[saved_position]
        if tensor is None:
            fn = node.next_functions[position][0]
            tensor = fn.variable if type(fn) is AccumulateGrad else None
        elif then is not None:
            tensor = then(tensor)
        if tensor is not None:
            return tuple(tensor.stride())
        return contiguous_strides(node._input_meta[position][0])

    return SavedValue(read, reads_strides=saved_position is not None)


def kept_value(key: str, tensor: bool = False, sequence: bool = False) -> SavedValue:
    """The value a composite op handed ``name_node`` as ``kept[key]`` (``tensor``: a tensor or None;
    ``sequence``: a tuple of those, see SavedValue)."""
    def read(node):
        return node.torch_kept[key]

    # (None stays None once the graph is freed: an undefined tensor, which torch reads as None then too)
    return SavedValue(read, tensor=tensor, undefined=(lambda node: read(node) is None) if tensor else None,
                      sequence=sequence)


class _ReleasedTensor:
    """What stays of a kept tensor once backward frees the graph: its sizes and strides, which
    torch's ``_saved_*_sym_sizes`` attributes still answer, and not its data."""

    __slots__ = ("shape", "dtype", "_strides")

    def __init__(self, tensor) -> None:
        self.shape, self.dtype, self._strides = tensor.shape, tensor.dtype, tensor.stride()

    def stride(self) -> tuple:
        return self._strides


def _holds_tensor(kept: dict) -> bool:
    return any(isinstance(v, _Tensor) or (isinstance(v, (tuple, list)) and _holds_tensor(dict(enumerate(v))))
               for v in kept.values())


def _released(value):
    if isinstance(value, (tuple, list)):
        return type(value)(_released(v) for v in value)
    return _ReleasedTensor(value) if isinstance(value, _Tensor) else value


# the key under which a node keeps its saved tensors' strides once they are freed
_SAVED_STRIDES = "saved tensors' strides"
# the class-level ``torch_kept`` of a node with stride attributes read from saved tensors (a
# product's ``_saved_self_sym_strides``): not None, so the engine frees it through release_saved,
# which keeps the strides (never written: release_saved gives the node its own dict)
SAVED_STRIDES_ON_RELEASE: dict = {}


def _raw_strides(tensor) -> tuple:
    """A saved tensor's strides as its array has them (bytes, item size), a product's backward
    step cheap: tensor.stride() only where it answers otherwise (a wrapper's, an empty array's)."""
    data = tensor._data
    if tensor._wrapper_strides is None and data.size:
        return data.strides, data.itemsize
    return tensor.stride(), 1


def release_saved(node) -> None:
    """Free what ``node`` saved for its backward, as torch does after a walk without
    retain_graph: its saved tensors, and the tensors a composite op kept for torch's
    ``_saved_*`` names (else those would hold activations alive until the graph is dropped)."""
    saved, kept = node._saved, node.torch_kept
    # a node that kept only sizes and flags (an upsample's) frees nothing: torch's walks it again
    if saved or (kept is not None and _holds_tensor(kept)) or _defines_ctx_tensor(node):
        node._freed = True
    node._saved = ()
    if kept is SAVED_STRIDES_ON_RELEASE:
        if saved and node._unpack_hook is None:
            node.torch_kept = {_SAVED_STRIDES: tuple([None if t is None else _raw_strides(t) for t in saved])}
    elif kept is not None:
        node.torch_kept = {key: _released(value) for key, value in kept.items()}


def as_uint64(value: int) -> int:
    """A negative index as torch's C++ node reports it (``ignore_index=-100`` reads
    18446744073709551516): the int64 seen as unsigned."""
    return value & 0xFFFFFFFFFFFFFFFF


class SavedTensor:
    """torch's ``grad_fn._raw_saved_<name>``: one saved tensor of a node, whose reads can go
    through hooks (``register_hooks(pack_hook, unpack_hook)``, as saved_tensors_hooks does for
    every saved tensor of a region)."""

    __slots__ = ("_node", "_value", "_entry")

    def __init__(self, node, value: SavedValue, entry: int | None = None) -> None:
        self._node = node
        self._value = value
        self._entry = entry  # the position in a list of saved tensors (SavedValue.sequence), else None

    def unpack(self):
        value = self._value.read(self._node)
        return value if self._entry is None else value[self._entry]

    @property
    def data(self):
        return self.unpack().detach()

    def register_hooks(self, pack_hook, unpack_hook) -> None:
        if not callable(pack_hook) or not callable(unpack_hook):
            raise TypeError("register_hooks(): expected pack_hook and unpack_hook to be callables")
        node = self._node
        if node._freed:
            node.saved_values  # noqa: B018 - the property raises torch's error
        slot = self._value.slot
        if slot is not None and type(node._saved[slot]) is _PackedSaved:
            raise RuntimeError("Calling register_hooks on a saved tensor whose hooks have already been set. "
                               "Hint: only one pair of hooks is allowed at a time.")
        tensor = self.unpack()  # checks the version; a saved output comes with its grad_fn
        if tensor is None:
            raise RuntimeError("Calling register_hooks on a saved tensor with value None is forbidden")
        if slot is None:
            raise RuntimeError(f"{node.name()}: this saved value is computed from what the node keeps when it is "
                               "read, so there is nothing to pack; register_hooks works on the saved tensors the "
                               "backward reads")
        own_output = node._saved_outputs is not None and slot in node._saved_outputs
        packed = _PackedSaved(pack_hook(tensor), unpack_hook, None if own_output else tensor)
        saved = list(node._saved)
        saved[slot] = packed
        node._saved = tuple(saved)
        if node._saved_versions is not None:  # as for saved_tensors_hooks: unpack's result is used
            versions = list(node._saved_versions)
            versions[slot] = None
            node._saved_versions = tuple(versions)
        if node._unpack_hook is None:  # route reads through _unpack_saved; each slot has its hook
            node._unpack_hook = _unpack_hook_missing


def _unpack_hook_missing(packed):
    raise RuntimeError("a saved tensor was packed without an unpack hook")


class AccumulateGrad(Node):
    """The sink node of a leaf tensor: adds the arriving gradient to ``variable.grad``."""

    __slots__ = ("variable",)
    label = "accumulate"
    rule = "adds the arriving gradient to the leaf's .grad"

    @classmethod
    def name(cls) -> str:
        return "torch::autograd::AccumulateGrad"  # torch's name() for its C++ node

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {hex(id(self))}>"

    def __init__(self, variable) -> None:
        Node.__init__(self)
        self.variable = variable
        self._sequence_number = ACCUMULATE_GRAD_PRIORITY
        self.next_functions = ()
        self.needs_input_grad = ()
        self._input_meta = ()
        self._saved_versions = None


def _keep_hook(hooks: OrderedDict, fn) -> RemovableHandle:
    """Enter ``fn`` in ``hooks`` under a new handle's id (torch's tables of hooks, which the
    handle removes it from)."""
    handle = RemovableHandle(hooks)
    hooks[handle.id] = fn
    return handle


class _NoInputNeedsGrad:
    """``needs_input_grad`` of an unrecorded op: False at every index."""

    def __getitem__(self, index) -> bool:
        return False

    def __iter__(self):
        return iter(())

    def __bool__(self) -> bool:
        return False


class _NullCtx(FunctionCtx):
    """Stands in for a Node when nothing is recorded: saving is free and nothing is kept."""

    needs_input_grad = _NoInputNeedsGrad()
    recording = False

    def save_for_backward(self, *tensors) -> None:
        pass

    def save_for_forward(self, *tensors) -> None:
        pass

    def mark_non_differentiable(self, *tensors) -> None:
        pass

    def mark_dirty(self, *tensors) -> None:
        pass

    def set_materialize_grads(self, value) -> None:
        pass


_NULL_CTX = _NullCtx()


def _edge(tensor):
    """The (node, output_nr) edge through which a gradient reaches ``tensor``."""
    fn = tensor.grad_fn
    if fn is not None:
        return (fn, tensor._output_nr)
    if tensor._requires_grad:
        return (tensor._get_accumulator(), 0)
    return (None, 0)


@property
def _no_saved_tensors(node):
    """A built-in op's node has no ``saved_tensors``, as torch's C++ nodes (its _saved_<name>
    attributes give what it saved)."""
    raise AttributeError(f"'{type(node).__name__}' object has no attribute 'saved_tensors'")


@property
def _no_saved_variables(node):
    """Nor the deprecated ``saved_variables``."""
    raise AttributeError(f"'{type(node).__name__}' object has no attribute 'saved_variables'")


def _not_callable(node, *grad_outputs):
    raise TypeError(f"'{type(node).__name__}' object is not callable")


def _ctx_to_save(ctx):
    """torch's ``ctx.to_save``: what forward passed save_for_backward, while forward runs; None
    before that and once forward has returned (torch clears it then)."""
    return (ctx._saved or None) if ctx._output_meta is None else None


def _ctx_dirty_tensors(ctx):
    return ctx._dirty if ctx._output_meta is None else None


def _ctx_non_differentiable(ctx):
    return ctx._non_differentiable if ctx._output_meta is None else None


def _ctx_saved_variables(ctx):
    """torch's deprecated ``ctx.saved_variables`` (still in code written for torch 0.3, e.g. NAFNet's
    LayerNormFunction): saved_tensors, empty while forward runs."""
    warnings.warn("'saved_variables' is deprecated; use 'saved_tensors'", DeprecationWarning,
                  stacklevel=_torch_function.user_stacklevel())
    return () if ctx._output_meta is None else ctx.saved_tensors


# the attributes torch's user-Function ctx (THPFunction) has beyond the ctx methods: on a user
# Function's node and on the ctx its forward sees when nothing is recorded (requires_grad is
# torch's legacy constant True)
_USER_CTX_ATTRIBUTES = {
    "to_save": property(_ctx_to_save), "dirty_tensors": property(_ctx_dirty_tensors),
    "non_differentiable": property(_ctx_non_differentiable), "requires_grad": property(lambda ctx: True),
    "saved_variables": property(_ctx_saved_variables),
}


class FunctionMeta(type):
    """Creates, for each Function subclass, the Node class its graph nodes are instances of."""

    def __init__(cls, name, bases, namespace) -> None:
        super().__init__(name, bases, namespace)
        node_name = namespace.get("node_name") or (
            name + ("Backward0" if getattr(cls, "_array_forward", False) else "Backward")
        )
        label, rule, formula = getattr(cls, "label", None), getattr(cls, "rule", None), getattr(cls, "formula", None)
        if rule is None and not cls.__module__.startswith("chainrule."):
            # a user's Function: the explainer still says whose rule runs
            label = label or name
            rule = f"custom rule ({node_name} runs the backward written by the user)"
        if "apply" not in namespace and "Function" in globals():
            # a built-in op's apply goes straight to the array hot path (one call less per op)
            cls.apply = _ARRAY_APPLY if cls._array_forward else Function.__dict__["apply"]
        # a user's backward is checked as torch's PyNode checks a Python Function's (engine), and
        # its node, torch's BackwardCFunction, cannot be called as a built-in op's node can
        cls._written_by_user = not cls.__module__.startswith("chainrule.")
        # torch's kernel name where it has none for uint16/32/64 (checked by _apply_array_op); set
        # on every class, so a subclass of such an op (AddScaled of Add) is looked up for itself
        module = cls.__module__
        cls._wide_unsigned_kernel = (NO_WIDE_UNSIGNED_KERNEL.get(f"{module[14:]}.{name}")
                                     if module.startswith("chainrule.ops.") else None)
        overrides = ({"__call__": _not_callable, **_USER_CTX_ATTRIBUTES} if cls._written_by_user
                     else {"saved_tensors": _no_saved_tensors, "saved_variables": _no_saved_variables})
        # torch's C++ nodes (torch::autograd::NotImplemented) are named in full by name() only
        type_name = node_name.rpartition("::")[2]
        if type_name != node_name:
            overrides["name"] = classmethod(lambda _cls: node_name)
        cls._node_cls = type(type_name, (Node,), {"__slots__": (), "_forward_cls": cls, **overrides,
                                                  "__module__": cls.__module__, "label": label,
                                                  "rule": rule, "formula": formula,
                                                  "_torch_saved": getattr(cls, "saved_attributes", None),
                                                  "torch_pack_order": getattr(cls, "torch_pack_order", None),
                                                  "_ctx_tensors": _keeps_ctx_tensors(getattr(cls, "saved_attributes", None)),
                                                  **_strides_kept(getattr(cls, "saved_attributes", None))})


class Function(metaclass=FunctionMeta):
    """Base class for differentiable operations; subclass it exactly as ``torch.autograd.Function``.

    >>> class Square(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * grad
    """

    _array_forward = False
    # the explainer's text for this op's node: a short op name, the one-line local rule, and an
    # optional expression template ({0}, {1} the inputs' labels, {attr} an attribute kept on ctx)
    label: str | None = None
    rule: str | None = None
    formula: str | None = None
    # torch's name for the op where the explainer's label is not it (Add's "+" is torch's add): the
    # name its mixed-device error gives
    torch_name: str | None = None
    # a built-in op's torch names for what its node saved: {"_saved_self": saved(0), ...} (see
    # SavedValue); read lazily from the node, never computed when the op runs
    saved_attributes: dict | None = None
    # keyword arguments of a built-in op that are host arrays by design on a device too (a packed
    # batch's lengths, which torch keeps on the CPU); any other host array there is a CPU tensor
    # among CUDA ones, refused (_backend.on_one_device)
    host_params: frozenset = frozenset()
    # aten's name of an op torch defines no derivative for (without_derivative), which its node's
    # error names; None for every op that has one (an attribute here so that looking it up never misses)
    _derivative_op: str | None = None
    # the ctx attributes a built-in op's forward computes from its inputs' values and keeps for the
    # rule (x̂ and 1/σ, a softmax): over a wrapper subclass the forward runs on the wrapper's
    # placeholder, so the node is recorded without them (None) and the rule recomputes them from
    # what it saved, on the values the wrapper's handler gives it
    forward_state: tuple[str, ...] = ()
    # True where the op's params are computed from its input's values before it applies (sort's and
    # median's ``index``): a wrapper's handler calling the op on its inner tensors runs torch's op anew
    # on them, which computes them from the values (_python_dispatch._as_given)
    params_from_values: bool = False

    def __init__(self, *args, **kwargs) -> None:
        # pre-0.4 scripts built an instance per call (``relu = MyReLU(); relu(x)``); torch still
        # lets them build it, with this warning, and refuses the call below
        warnings.warn(f"{self.__class__} should not be instantiated. Methods on autograd functions are all "
                      "static, so you should invoke them on the class itself. Instantiating an autograd "
                      "function will raise an error in a future version of PyTorch.",
                      DeprecationWarning, stacklevel=2)

    def __call__(self, *args, **kwargs):
        raise RuntimeError("Legacy autograd function with non-static forward method is deprecated. Please use "
                           "new-style autograd function with static forward method. (Example: "
                           "https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement the backward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        return None

    @staticmethod
    def jvp(ctx, *grad_inputs):
        raise NotImplementedError("You must implement the jvp function for custom autograd.Function to use it "
                                  "with forward mode AD.")

    # torch.func.vmap support, declared as torch's: a ``vmap`` staticmethod, or this flag. chainrule's
    # vmap runs forward once per slice either way; the declaration is what torch's vmap requires.
    generate_vmap_rule = False

    @staticmethod
    def vmap(info, in_dims, *args):
        raise NotImplementedError("To use autograd.Function with vmap, you must either override the vmap "
                                  "staticmethod or set generate_vmap_rule=True.")

    @classmethod
    def apply(cls, *args, **kwargs):
        if cls._array_forward:
            return _apply_array_op(cls, *args, **kwargs)
        if func_transforms.active and not cls.__module__.startswith("chainrule."):
            _refuse_if_not_written_for_transforms(cls)
        if not _is_default_setup(cls):
            args, kwargs = _with_defaults(cls.forward, args, kwargs)
        return _apply_user_function(cls, args, kwargs)


def without_derivative(op: str) -> type:
    """The base of a built-in op's Function where torch defines no derivative (``op``: aten's name,
    as torch's error gives it, ``"aten::heaviside"``): the op's node is recorded as torch's is, and
    its backward raises torch's RuntimeError instead of returning a wrong (zero) gradient. The
    subclass gives its forward and its node's name::

        class Heaviside(without_derivative("aten::heaviside")):
            @staticmethod
            def forward(ctx, x, values): ...
    """
    def backward(ctx, *grad_outputs):
        # (an in-place method's node names its own op, aten::heaviside_: _methods sets it on the node)
        raise RuntimeError(f"derivative for {getattr(ctx, '_derivative_op', op)} is not implemented")

    # (the explainer's text, which each op's own label and rule replace)
    return FunctionMeta("WithoutDerivative", (Function,), {
        "__module__": __name__, "_array_forward": True, "backward": staticmethod(backward), "_derivative_op": op,
        "label": op.rpartition("::")[2], "rule": "none: torch defines no derivative, and backward raises"})


_NO_EDGE = (None, 0)


def _make_node(cls, inputs) -> Node:
    """The node of a recorded op: its edges, which inputs need a gradient, and their metadata.

    This runs for every recorded op, and in a long graph each allocated container also costs
    the cyclic garbage collector a visit, so the tuples are built directly (no lists), the
    common ``needs_input_grad`` values are shared constants, and ``__init__`` is bypassed. The
    one- and two-input cases (nearly every op) look up each edge and metadata inline: each
    Python call removed here is removed from every recorded op.
    """
    node = _new_node(cls._node_cls)
    node._saved = ()
    node._freed = False
    node._sequence_number = _next_sequence_number()
    node._topological_nr = None  # (numbered by the engine when a walk needs it: engine._topological_nr)
    node._saved_versions = None
    n = len(inputs)
    if n == 2:
        a, b = inputs
        if a is not None and b is not None:
            fn = a._grad_fn if a._base is None else a.grad_fn  # (a view's may wait to be regenerated)
            if fn is not None:
                edge_a, need_a = (fn, a._output_nr), True
            elif a._requires_grad:
                edge_a, need_a = (a._get_accumulator(), 0), True
            else:
                edge_a, need_a = _NO_EDGE, False
            fn = b._grad_fn if b._base is None else b.grad_fn
            if fn is not None:
                edge_b, need_b = (fn, b._output_nr), True
            elif b._requires_grad:
                edge_b, need_b = (b._get_accumulator(), 0), True
            else:
                edge_b, need_b = _NO_EDGE, False
            node.next_functions = (edge_a, edge_b)
            node.needs_input_grad = _NEEDS_TWO[need_a][need_b]
            array = a._data
            meta_a = (array.shape, array.dtype)
            meta_a = _SHARED_META.get(meta_a) or _share_meta(meta_a)
            array = b._data
            meta_b = (array.shape, array.dtype)
            meta_b = _SHARED_META.get(meta_b) or _share_meta(meta_b)
            node._input_meta = (meta_a, meta_b)
            if a._base is not None or b._base is not None:  # (a view, or a promoted operand)
                node._input_meta = _source_meta(inputs, node._input_meta)
            if _anomaly.enabled:
                node._traceback = _user_stack()
            return node
    elif n == 1:
        (a,) = inputs
        if a is not None:
            fn = a._grad_fn if a._base is None else a.grad_fn
            # a one-input op records only when its input requires grad: the edge always exists
            node.next_functions = ((fn, a._output_nr) if fn is not None else (a._get_accumulator(), 0),)
            node.needs_input_grad = _NEEDS_ONE
            array = a._data
            meta_a = (array.shape, array.dtype)
            node._input_meta = (_SHARED_META.get(meta_a) or _share_meta(meta_a),)
            if a._base is not None:  # (a view, or a promoted operand)
                node._input_meta = _source_meta(inputs, node._input_meta)
            if _anomaly.enabled:
                node._traceback = _user_stack()
            return node
    # three or more inputs (addmm, a convolution with bias, ...): the same steps as above in a loop
    edges = []
    needs = []
    meta = []
    based = False
    for t in inputs:
        if t is None:
            edges.append(_NO_EDGE)
            needs.append(False)
            meta.append(None)
            continue
        if t._base is None:
            fn = t._grad_fn
        else:
            fn = t.grad_fn
            based = True
        if fn is not None:
            edges.append((fn, t._output_nr))
            needs.append(True)
        elif t._requires_grad:
            edges.append((t._get_accumulator(), 0))
            needs.append(True)
        else:
            edges.append(_NO_EDGE)
            needs.append(False)
        array = t._data
        meta_t = (array.shape, array.dtype)
        meta.append(_SHARED_META.get(meta_t) or _share_meta(meta_t))
    node.next_functions = tuple(edges)
    node.needs_input_grad = _NEEDS_ONE if needs == [True] else tuple(needs)
    node._input_meta = _source_meta(inputs, tuple(meta)) if based else tuple(meta)
    if _anomaly.enabled:
        node._traceback = _user_stack()
    return node


class _Promoted:
    """The ``_base`` of a promoted operand (see ``promoted_operand``): the tensor it stands for."""
    __slots__ = ("source",)

    def __init__(self, source) -> None:
        self.source = source


def promoted_operand(tensor, cast, recorded: bool = False):
    """``tensor`` cast (``cast(array)``: its array in the promoted dtype) as an operand of a recorded op of mixed dtypes (``a * b``,
    float32 and float64), with no node of its own: torch's TensorIterator computes in the promoted
    dtype and its node's edge goes to the operand itself (``MulBackward0``'s next function is the
    float32 leaf's ``AccumulateGrad``, not a ``ToCopyBackward0``), the engine casting the gradient
    back to the operand's dtype. The stand-in has the cast array and the operand's edge, and
    ``_make_node`` records the operand's dtype as the input's, so the engine casts the gradient to it.
    ``recorded``: another operand requires grad, so the op's node may save this one, which torch
    saves in its own dtype (``_saved_other`` of ``float32 * int64`` is the int64 tensor): a stand-in
    with no edge, whose source the node's ``_saved_<name>`` gives and whose version is the operand's.

    None where no stand-in is made and the caller casts as before: no node will be recorded (no
    operand requires grad, grad mode is off) and no dispatch mode watches, or forward AD watches ops
    (it sees the cast)."""
    requires_grad = tensor._requires_grad
    if not (requires_grad or recorded) or not _grad_state.enabled or active_extension is not None:
        if active_dispatch is None or active_extension is not None:
            return None
        # a dispatch mode, nothing recorded: torch's TensorIterator casts inside the op, which the mode
        # sees with the operand as it is (the stand-in's _base names it: utils._python_dispatch shows it)
        stand_in = _Tensor._make(cast(tensor._data))
        stand_in._base = _Promoted(tensor)
        return stand_in
    fn = tensor.grad_fn
    stand_in = _Tensor._make(cast(tensor._data), fn, tensor._output_nr if fn is not None else 0)
    stand_in._requires_grad = requires_grad
    stand_in._vbox = tensor._version_box  # written in place later, the operand is still caught as saved
    stand_in._base = _Promoted(tensor)
    if fn is None and requires_grad:  # a leaf: its own accumulator (held here until the op's node holds it)
        stand_in._held = tensor._get_accumulator()
        stand_in._accumulator = tensor._accumulator
    return stand_in


def _operand_of(value):
    """A saved value as a node's ``_saved_<name>`` gives it: a promoted operand's stand-in is the
    operand itself (torch saved ``a`` of ``a * b``, float32, not a float64 copy), a Python number's
    0-d tensor the number in its own dtype (``_saved_other`` of ``x * 2`` is torch's int64 2)."""
    if isinstance(value, _Tensor):
        if value._base.__class__ is _Promoted:
            return value._base.source
        if value._wrapped_number and "_wrapped_value" in value.__dict__:
            return wrapped_number(value.__dict__["_wrapped_value"])
        number = constant_numbers.get(id(value))
        if number is not None:
            return wrapped_number(number)
    return value


# the number each cached 0-d operand (ops/elementwise._constant, alive while cached) was made from,
# by the tensor's id: torch's node saves it as a wrapped number of the number's own dtype
constant_numbers: dict = {}


def wrapped_number(number):
    """A Python number as torch's node keeps it (``_saved_other``): a 0-d CPU tensor of the
    number's own dtype (bool, int64, float64 or complex128; uint64 for an int beyond int64)."""
    if isinstance(number, (bool, np.bool_)):
        kind = np.bool_
    elif isinstance(number, (int, np.integer)):
        kind = np.uint64 if number > 9223372036854775807 else np.int64
    elif isinstance(number, (complex, np.complexfloating)):
        kind = np.complex128
    else:
        kind = np.float64
    return _Tensor._make(np.asarray(number, dtype=kind))


def _source_meta(inputs, meta: tuple) -> tuple:
    """``meta`` with each promoted operand's entry its source's (shape, dtype): the gradient the
    engine passes on is cast to the operand's dtype."""
    fixed = None
    for i, t in enumerate(inputs):
        if t is not None and t._base.__class__ is _Promoted:
            fixed = fixed or list(meta)
            source = t._base.source._data
            fixed[i] = (source.shape, source.dtype)
    return meta if fixed is None else tuple(fixed)


_new_node = object.__new__
# torch numbers nodes in the order they are made; its backward runs the newest ready node first
_next_sequence_number = itertools.count().__next__
ACCUMULATE_GRAD_PRIORITY = 2**64 - 1  # torch's UINT64_MAX: a leaf's accumulation runs as soon as it is ready
_COMMON_VERSIONS = {v: v for v in ((0,), (None,), (0, 0), (0, None), (None, 0), (0, 0, 0))}
_NEEDS_TWO = {False: {False: (False, False), True: (False, True)},
              True: {False: (True, False), True: (True, True)}}
_NEEDS_ONE = (True,)


def _share_meta(meta: tuple) -> tuple:
    """Remember ``meta`` as the shared tuple for its value (a miss of ``_SHARED_META``): a graph
    holds one ``(shape, dtype)`` per recorded input, and shared ones are not new objects for the
    garbage collector to visit."""
    if len(_SHARED_META) > 4096:  # bounded, like the operand constants
        _SHARED_META.clear()
    _SHARED_META[meta] = meta
    return meta


_SHARED_META: dict = {}


def _user_stack() -> list:
    """The forward call stack, minus chainrule's own trailing frames: it ends at the user's line."""
    import os
    import traceback

    frames = traceback.extract_stack()
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    while len(frames) > 1 and frames[-1].filename.startswith(package):
        frames.pop()
    return traceback.format_list(frames)


class _Anomaly:
    __slots__ = ("enabled", "check_nan")

    def __init__(self) -> None:
        self.enabled = False
        self.check_nan = True  # torch's answer while the mode is off


_anomaly = _Anomaly()


def _device_error_name(cls) -> str:
    """The op a mixed-device error names: torch's name, else the explainer's label, else the class's."""
    return getattr(cls, "torch_name", None) or getattr(cls, "label", None) or cls.__name__


def _apply_array_op(cls, *inputs, **params):
    """Hot path for built-in ops: forward on arrays, record a node only if a gradient can flow.

    One- and two-input ops (nearly all) take unrolled steps, without a loop or a comprehension.
    """
    if active_profiler is not None:
        out = active_profiler.record_op(cls, inputs, params)
        if out is not RUN_UNRECORDED:
            return out
    if active_dispatch is not None:
        out = active_dispatch(cls, inputs, params)
        if out is not RUN_UNDISPATCHED:
            return out
    if active_extension is not None:
        return active_extension(cls, inputs, params)
    if opmath_hook is not None and autocast_hook.cpu_dtype is not None:
        inputs = _opmath.cast_inputs_for_cpu_autocast(cls, inputs)
    make = _make_tensor
    n = len(inputs)
    if n == 2:
        a, b = inputs
        arrays = [a._data, b._data]
        # (grad mode is a thread-local, slower to read than a slot: read only when it decides)
        record = (a._requires_grad or b._requires_grad) and _grad_state.enabled
        on_cpu = type(arrays[0]) is _ndarray and type(arrays[1]) is _ndarray
    elif n == 1:
        arrays = [inputs[0]._data]
        record = inputs[0]._requires_grad and _grad_state.enabled
        on_cpu = type(arrays[0]) is _ndarray
    else:
        record = False
        if _grad_state.enabled:
            for t in inputs:
                if t._requires_grad:
                    record = True
                    break
        arrays = [t._data for t in inputs]
        on_cpu = True
        for array in arrays:
            if type(array) is not _ndarray:
                on_cpu = False
                break
    host_inputs = None
    if not on_cpu:  # a device array: check every input is on its device (and run there)
        if record:  # (a 0-d CPU input joins as a device scalar; its gradient goes back to the CPU)
            if n == 2:  # (not both: then it would be on the CPU)
                host_inputs = (0,) if type(arrays[0]) is _ndarray else (1,) if type(arrays[1]) is _ndarray else None
            elif _ndarray in map(type, arrays):
                host_inputs = tuple(i for i, array in enumerate(arrays) if type(array) is _ndarray)
        arrays = on_one_device(arrays, _device_error_name(cls), params, cls.host_params)
    if cls._wide_unsigned_kernel is not None and arrays[0].dtype in WIDE_UNSIGNED:
        refuse_wide_unsigned("", arrays[0], cls._wide_unsigned_kernel)
    if record and n >= 2 and (n > 2 or arrays[0] is arrays[1]) and _shares_an_array(arrays, inputs):
        # two tensors over one array (x and x.detach()): a view of it each, so the arrays forward
        # saves still tell which input they were (the rule's graph under create_graph goes to it)
        arrays = [array if k == 0 else array.view() for k, array in enumerate(arrays)]
    ctx = _make_node(cls, inputs) if record else _NULL_CTX
    if host_inputs is not None:
        ctx._host_inputs = host_inputs
        ctx._hooked = True  # (the general path of the walk, whose _fixed_gradient moves them)
    # forward runs with NumPy's warnings off (torch is silent on x / 0), and NumPy's broadcast
    # ValueError becomes torch's RuntimeError
    quiet = numpy_errstate.set(QUIET)
    try:
        # (after a low-precision use: one or two NumPy inputs of 4 bytes or more, the common float32
        # op, are answered without a call)
        if opmath_hook is None or autocast_hook.cpu_dtype is None and (
                on_cpu and 0 < n <= 2 and arrays[0].itemsize >= 4 and arrays[-1].itemsize >= 4
                or not _low_precision(arrays)):
            # (no keywords, the common case, and one or two arrays: a plain call, with no tuple or
            # dict to unpack)
            if params:
                out = cls.forward(ctx, *arrays, **params)
            elif n == 2:
                out = cls.forward(ctx, arrays[0], arrays[1])
            elif n == 1:
                out = cls.forward(ctx, arrays[0])
            else:
                out = cls.forward(ctx, *arrays)
        else:  # casts arrays in place, so saved arrays still resolve to the inputs below
            out = opmath_hook(cls, ctx, arrays, params)
    except ValueError as error:
        raise broadcast_error(error, arrays) from None
    except TypeError:
        # CPU inputs with a CUDA index or mask among the keyword arguments: CuPy refused the host
        # math; torch's error is the mixed-device one (looked for only now: the CPU path stays free)
        if on_cpu and params:
            refuse_device_params(params, _device_error_name(cls))
        raise
    finally:
        numpy_errstate.reset(quiet)
    data = out
    if type(data) is not _ndarray and type(data) is not tuple and isinstance(data, _generic):
        data = _asarray(data)  # NumPy's 0-d math returns scalars (`out` stays: saved arrays are matched to it)
    if (type(data) is _ndarray or not on_cpu and type(data) is not tuple) and not making_inference_tensors:
        # the common one output (a CPU or GPU array): Tensor._make's stores inline (a call fewer per op)
        outputs = _new_node(_Tensor)
        outputs._data = data
        outputs._output_nr = 0
        outputs._grad = None
        outputs._vbox = None
        outputs._base = None
        if not record:
            outputs._requires_grad = False
            outputs._grad_fn = None
            return outputs
        outputs._requires_grad = True
        outputs._grad_fn = ctx
    elif not record:
        if type(out) is tuple:
            return tuple(make(o) for o in out)
        return make(out)
    elif type(out) is tuple:
        non_diff = ctx._non_differentiable
        ctx._num_outputs = len(out)
        ctx._output_meta = tuple((o.shape, o.dtype) for o in out)
        outputs = tuple(
            make(o) if non_diff is not None and any(o is n for n in non_diff)
            else make(o, ctx, i)
            for i, o in enumerate(out)
        )
    else:
        outputs = make(out, ctx, 0)
    node = ctx
    saved = node._saved
    if saved:
        if n <= 3 and type(out) is not tuple:
            # the common case, inline: each saved array is an input's (the first match) or the output
            resolved = []
            output_positions = None
            for s in saved:
                if s is None:
                    resolved.append(None)
                elif s is arrays[0]:
                    resolved.append(inputs[0])
                elif n >= 2 and s is arrays[1]:
                    resolved.append(inputs[1])
                elif n == 3 and s is arrays[2]:  # addmm, a convolution with bias
                    resolved.append(inputs[2])
                elif s is out:
                    output_positions = (output_positions or ()) + (len(resolved),)
                    resolved.append(_saved_output(outputs))
                else:  # a fresh array: the general path wraps it
                    resolved = None
                    break
            if resolved is not None:
                saved = node._saved = tuple(resolved)
            else:
                saved, output_positions = _resolve_saved(saved, arrays, inputs, out, outputs)
                node._saved = saved
        else:
            saved, output_positions = _resolve_saved(saved, arrays, inputs, out, outputs)
            node._saved = saved
        if output_positions is not None:
            # (stored only when there are some: the class default is None, and a node whose
            # attribute is set gets a __dict__, one more object per node)
            node._saved_outputs = output_positions
        # (a tensor without a version counter object, _vbox None, is at version 0)
        if len(saved) == 2:  # the common binary op, without a generator
            t0, t1 = saved
            versions = (None if t0 is None else 0 if t0._vbox is None else t0._vbox[0],
                        None if t1 is None else 0 if t1._vbox is None else t1._vbox[0])
        elif len(saved) == 1:
            t0 = saved[0]
            versions = (None if t0 is None else 0 if t0._vbox is None else t0._vbox[0],)
        else:
            versions = tuple(None if t is None else _saved_version(t) for t in saved)
        # mostly all zeros: one shared tuple then, not one more object per node
        node._saved_versions = _COMMON_VERSIONS.get(versions, versions)
    return outputs


_ARRAY_APPLY = classmethod(_apply_array_op)


def broadcast_error(error: ValueError, arrays) -> Exception:
    """NumPy's broadcast ValueError as torch's RuntimeError naming the mismatched sizes; any
    other ValueError is returned unchanged (to be re-raised)."""
    if "broadcast" not in str(error):
        return error
    return _broadcast_clash([a.shape for a in arrays if hasattr(a, "shape")]) or error


def _broadcast_clash(shapes) -> RuntimeError | None:
    """torch's error for operands whose ``shapes`` do not broadcast, or None when they do.

    torch's TensorIterator broadcasts its operands one at a time, in their order (``where``'s
    condition, self, other; ``addcmul``'s self, tensor1, tensor2), each against the shape of those
    before it, comparing sizes from the last dim backwards: the clash it names is the first one in
    that walk (tensor a: the shape so far, tensor b: the operand)."""
    common: tuple = ()
    for shape in shapes:
        ndim = max(len(common), len(shape))
        so_far = (1,) * (ndim - len(common)) + tuple(common)
        operand = (1,) * (ndim - len(shape)) + tuple(shape)
        merged = list(so_far)
        for dim in range(ndim - 1, -1, -1):
            a, b = so_far[dim], operand[dim]
            if a != b and a != 1 and b != 1:
                return RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b ({b}) at "
                                    f"non-singleton dimension {dim}")
            merged[dim] = b if a == 1 else a
        common = tuple(merged)
    return None


def check_broadcast_in_order(*operands) -> None:
    """Raise torch's broadcast error for ``operands`` (tensors; numbers and None are skipped) as
    torch's TensorIterator would name it. For ops composed of several steps (lerp, addcmul), whose
    first step would otherwise meet the clash between two operands in another order."""
    first = None
    for t in operands:  # (the common case, one shape, in a single cheap pass: optimizers call addcmul_)
        if isinstance(t, _Tensor):
            if first is None:
                first = t._data.shape
            elif t._data.shape != first:
                clash = _broadcast_clash([t._data.shape for t in operands if isinstance(t, _Tensor)])
                if clash is not None:
                    raise clash
                return


def _shares_an_array(arrays, inputs) -> bool:
    """Whether two different input tensors hold the very same array object."""
    if len(arrays) == 2:
        return arrays[0] is arrays[1] and inputs[0] is not inputs[1]
    for i in range(len(arrays)):
        for j in range(i):
            if arrays[i] is arrays[j] and inputs[i] is not inputs[j]:
                return True
    return False


def _resolve_saved(saved, arrays, inputs, out, outputs):
    """Map arrays forward saved back to the input/output Tensors they came from (outputs as
    ``_saved_output`` keeps them); returns them and the outputs' positions among them (or None)."""
    Tensor = _Tensor
    resolved = []
    output_positions = []
    out_list = out if type(out) is tuple else (out,)
    outputs_list = outputs if type(outputs) is tuple else (outputs,)
    for s in saved:
        if s is None:
            resolved.append(None)
            continue
        for a, t in zip(arrays, inputs):
            if s is a:
                resolved.append(t)
                break
        else:
            for o, t in zip(out_list, outputs_list):
                if s is o:
                    output_positions.append(len(resolved))
                    resolved.append(_saved_output(t))
                    break
            else:
                resolved.append(s if isinstance(s, Tensor) else Tensor._make(s))
    return tuple(resolved), tuple(output_positions) or None


def _saved_output(output):
    """What a node keeps of an output its rule reads (tanh's, exp's, softmax's): the output's
    data and version counter, without its grad_fn. Keeping the output itself would make a cycle
    (output -> node -> output), and a graph dropped without a backward pass, a forward outside
    no_grad say, would then wait for the cyclic garbage collector, its arrays with it, instead of
    being freed at once. torch's SavedVariable drops the grad_fn for the same reason."""
    box = output._vbox
    if box is None:  # one counter for both, so writing the output in place is still caught
        box = output._vbox = [0]
    saved = _new_node(_Tensor)  # Tensor._make's fields, without its checks: this runs per recorded op
    saved._data = output._data
    saved._requires_grad = False
    saved._grad_fn = None  # (the slot: a fresh tensor has no view state for the property to update)
    saved._output_nr = output._output_nr
    saved._grad = None
    saved._vbox = box
    saved._base = None
    return saved


def _with_grad_fn(saved: tuple, positions: tuple, node) -> tuple:
    """``saved`` with each output at ``positions`` given back its place in the graph: ``node``,
    which is alive (its rule is running), as torch's SavedVariable unpacks an output."""
    unpacked = list(saved)
    for i in positions:
        kept = saved[i]
        if kept._wrapper_strides is not None:  # a wrapper subclass's output: its values are in it
            output = alias_wrapper(kept, node)
            output._requires_grad = True
            unpacked[i] = output
            continue
        output = _Tensor._make(kept._data, node, kept._output_nr)
        output._vbox = kept._vbox
        if active_extension is not None:  # forward over reverse: the output's tangent comes along
            copy_tangent(kept, output)
        unpacked[i] = output
    return tuple(unpacked)


def run_intercepted(cls, inputs, params, user_function: bool):
    """Run an op that an observer standing where the profiler does (the profiler itself,
    ``add_graph``'s recorder) took over: a user Function or a built-in op, recorded as usual."""
    if user_function:
        return _apply_user_function(cls, inputs, params)
    return _apply_array_op(cls, *inputs, **params)


def _apply_user_function(cls, args, kwargs, ctx_seen=None):
    """torch semantics for user Functions: forward gets Tensors, under no_grad. ``ctx_seen``, a
    list, receives the ctx forward saw (forward AD runs the Function's ``jvp`` on it)."""
    if active_profiler is not None:
        out = active_profiler.record_op(cls, args, kwargs, user_function=True)
        if out is not RUN_UNRECORDED:
            return out
    if active_extension is not None:
        return active_extension(cls, args, kwargs, user_function=True)
    Tensor = _Tensor
    tensor_args = [a if isinstance(a, Tensor) else None for a in args]
    record = _grad_state.enabled and any(t is not None and t._requires_grad for t in tensor_args)
    node = _make_user_node(cls, tensor_args) if record else _UserNullCtx(tensor_args)
    previous = _grad_state.enabled
    _grad_state.enabled = False
    try:
        if _is_default_setup(cls):
            out = cls.forward(node, *args, **kwargs)
        else:  # torch's functorch-style Function: forward takes no ctx, setup_context fills it
            out = cls.forward(*args, **kwargs)
            cls.setup_context(node, args, out)
    finally:
        _grad_state.enabled = previous
    if ctx_seen is not None:
        ctx_seen.append(node)
    is_tuple = isinstance(out, tuple)
    out_list = out if is_tuple else (out,)
    rebased = _mark_dirty(node, args, out_list, record) if node._dirty else ()
    if not record:
        node._output_meta = ()  # (forward has returned: torch's to_save & co. read None from now on)
        dirty = node._dirty or ()
        results = [_output_without_history(o, args, dirty) for o in out_list]
        return tuple(results) if is_tuple else results[0]
    node._num_outputs = len(out_list)
    node._output_meta = tuple((o._data.shape, o._data.dtype) if isinstance(o, Tensor) else ((), None)
                              for o in out_list)
    non_diff = node._non_differentiable or ()
    results = []
    for i, o in enumerate(out_list):
        if not isinstance(o, Tensor):
            results.append(o)
            continue
        if any(o is n for n in non_diff) or o._data.dtype.kind in "biu":
            # as torch's: an integer or bool output (roi_pool's argmax) is never differentiable
            results.append(_output_without_history(o, args, node._dirty or ()))
            continue
        if any(o is d for d in rebased):
            # an input forward wrote in place and marked dirty: torch returns that very tensor, its
            # history now this node's output (a view's write recorded on its base, as CopySlices)
            _rebase_history(o, node, i)
            results.append(o)
            continue
        if any(o is a for a in args):
            # forward returned an input unchanged: give the output its own identity (torch does
            # too), a view of that input
            source = o
            o = Tensor._make(o._data)
            as_input_view(o, source, several=len(out_list) > 1)
        o._requires_grad = True
        o.grad_fn = node
        o._output_nr = i
        results.append(o)
    saved = node._saved
    if saved:
        for i, t in enumerate(saved):
            # torch checks what was saved once forward has run, and only when it records
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {i} is of type "
                                f"{c_type_name(t)}")
        positions = tuple(i for i, t in enumerate(saved) if isinstance(t, Tensor) and t.grad_fn is node)
        if positions:
            saved = tuple(_saved_output(t) if i in positions else t for i, t in enumerate(saved))
            node._saved_outputs = positions
        node._saved_versions = tuple(_saved_version(t) if isinstance(t, Tensor) else None for t in saved)
        node._saved = tuple(saved)
    return tuple(results) if is_tuple else results[0]


def _make_user_node(cls, tensor_args: list) -> Node:
    """A custom Function's node, as torch's: an edge for each Tensor argument only (so
    ``next_functions`` and a node hook's ``grad_inputs`` skip a module, a number, a string or None
    passed to ``apply``), while ``ctx.needs_input_grad`` has an entry for every argument.
    ``tensor_args`` holds None where an argument is not a Tensor."""
    if None not in tensor_args:
        return _make_node(cls, tensor_args)
    positions = tuple(i for i, t in enumerate(tensor_args) if t is not None)
    node = _make_node(cls, [tensor_args[i] for i in positions])
    needs = [False] * len(tensor_args)
    for edge_index, position in enumerate(positions):
        needs[position] = node.needs_input_grad[edge_index]
    node.needs_input_grad = tuple(needs)
    node._tensor_positions = positions
    return node


def _output_without_history(output, args, dirty):
    """A custom Function's output that gets no node (nothing was recorded, or it is marked
    non-differentiable), as torch's ``set_history`` hands it back: an input that requires grad as a
    detached alias (the input keeps its own history and flag), a new tensor that requires grad
    detached in place, an input returned unchanged as a fresh alias of it, anything else as it is."""
    if not isinstance(output, _Tensor):
        return output
    is_input = any(output is a for a in args)
    if output._requires_grad:
        if is_input:
            return output.detach()
        if output._base is None:
            output.detach_()
        return output
    if is_input and not any(output is d for d in dirty):
        with no_grad():
            return output.view_as(output)
    return output


def _mark_dirty(ctx, args, out_list, record: bool) -> tuple:
    """torch's steps for the tensors forward marked dirty (written in place): each one's version
    moves on, a tensor that is no input is warned about, a leaf that requires grad is refused
    (forward has run: as in torch, its write stays), and every one must be among the outputs.
    Returns the dirty tensors whose history the outputs rebase (none when not recording); a dirty
    view's version moves with the write recorded on its base instead (see _rebase_history)."""
    dirty = ctx._dirty
    for tensor in dirty:
        if not (record and _rebases_through_base(tensor)):
            tensor._version_box[0] += 1
    for tensor in dirty:
        if any(tensor is o for o in out_list):
            if not any(tensor is a for a in args):
                warnings.warn("ctx.mark_dirty() received a tensor that was not an input. Only input Tensors that "
                              "have been mutated should be passed to ctx.mark_dirty().", stacklevel=4)
            elif record and tensor.grad_fn is None and tensor._requires_grad:
                raise RuntimeError("a leaf Variable that requires grad has been used in an in-place operation.")
    for tensor in dirty:
        if not any(tensor is o for o in out_list):
            raise RuntimeError("Some elements marked as dirty during the forward method were not returned as output. "
                               "The inputs that are modified inplace must all be outputs of the Function.")
    return dirty if record else ()


def _rebases_through_base(tensor) -> bool:
    """Whether a dirty ``tensor`` is a view whose write is recorded on its base (torch's CopySlices)."""
    return tensor._base is not None and not tensor._nondifferentiable_view


def _modified_in_place(node, tensor, expected: int) -> RuntimeError:
    """torch's error for a tensor ``node`` saved that changed in place since: named by its type and
    sizes and, as torch's, by the node that made it (``node`` itself for a saved output, else the
    tensor's grad_fn now; none for a leaf), without "Backward" before a digit and a trailing 0
    (ExpBackward0: Exp, SumBackward1: Sum1, TBackward1: T1; CopyBackwards kept, as torch's). The message is
    torch's to the letter: scripts print it and match on it."""
    position = next(i for i, saved in enumerate(node._saved) if saved is tensor)
    if tensor._base.__class__ is _Promoted:  # a promoted operand: torch saved (and names) the operand
        tensor = tensor._base.source
    producer = node if (node._saved_outputs and position in node._saved_outputs
                        or node._overwritten_operands and position in node._overwritten_operands) else tensor.grad_fn
    which = "" if producer is None else \
        f", which is output {tensor._output_nr} of {re.sub(r'Backward(0$|(?=[0-9]))', '', producer.name())},"
    hint = ("the backtrace further above shows the operation that failed to compute its gradient. The variable "
            "in question was changed in there or anywhere later. Good luck!") if _anomaly.enabled else (
        "enable anomaly detection to find the operation that failed to compute its gradient, with "
        "torch.autograd.set_detect_anomaly(True, check_nan=False).")
    return RuntimeError(f"one of the variables needed for gradient computation has been modified by an inplace "
                        f"operation: [{_type_text(tensor)} {list(tensor.shape)}]{which} is at version "
                        f"{tensor._version}; expected version {expected} instead. Hint: {hint}")


# the eight dtypes whose tensors torch's C++ toString() prints by their legacy Python name
_LEGACY_TYPE_SCALARS = {"Byte", "Char", "Short", "Int", "Long", "Half", "Float", "Double"}


def _type_text(tensor) -> str:
    """A tensor's type as torch's toString() gives it: 'torch.FloatTensor' for the legacy dtypes,
    else the dispatch key and scalar name, 'CPUBoolType', 'CPUBFloat16Type', 'CPUComplexFloatType'."""
    from .. import _dtype

    scalar = _dtype.scalar_name(tensor.dtype)
    if scalar in _LEGACY_TYPE_SCALARS:
        return tensor.type()
    return f"{'CUDA' if tensor.is_cuda else 'CPU'}{scalar}Type"


# set by chainrule._methods: record_view_write(view, value) records ``view``'s new values ``value``
# (a tensor in the graph) on view's base, as an in-place op on a view is recorded, and gives the
# view its regenerated history (autograd imports no ops)
record_view_write = None


def _rebase_history(tensor, node, output_nr: int) -> None:
    """``tensor``, written in place by a custom Function, becomes output ``output_nr`` of ``node``:
    the same Python object, with the node as its grad_fn (its retained grad moves along, as torch's);
    a view is written through its base instead, whose graph then holds the node."""
    if _rebases_through_base(tensor):
        written = _make_tensor(tensor._data, node, output_nr)
        written._requires_grad = True
        record_view_write(tensor, written)
        return
    old = tensor.grad_fn
    tensor.grad_fn = node
    tensor._output_nr = output_nr
    tensor._requires_grad = True
    if old is not None and old._retained and tensor._retains_grad:
        old._retained = {nr: ref for nr, ref in old._retained.items() if ref() is not tensor} or None
        if node._retained is None:
            node._retained = {}
            node._hooked = True
        node._retained[output_nr] = weakref.ref(tensor)


class InputView:
    """The view state (``Tensor._view_state``) of a custom Function's output that is one of its
    inputs returned as-is, and of the views of such an output: torch makes it a view of the input
    and refuses to write it in place while recording, since autograd's rebuilding of a written
    view's graph would replace the Function's own backward."""

    __slots__ = ("several",)

    def __init__(self, several: bool) -> None:
        self.several = several  # the Function returned several outputs: torch's multi-view wording

    @staticmethod
    def grad_fn(view):
        return view._grad_fn

    @staticmethod
    def assigned(view) -> None:
        return None

    @staticmethod
    def accumulator(view):
        return view._leaf_accumulator()

    def refusal(self, view) -> RuntimeError:
        maker = re.sub(r"Backward\d*$", "", type(view._grad_fn).__name__)
        if self.several:
            why = ("This view is the output of a function that returns multiple views. Such functions do not allow "
                   "the output views to be modified inplace. You should replace the inplace operation by an "
                   "out-of-place one.")
        else:
            why = ("This view was created inside a custom Function (or because an input was returned as-is) and the "
                   "autograd logic to handle view+inplace would override the custom backward associated with the "
                   "custom Function, leading to incorrect gradients. This behavior is forbidden. You can fix this "
                   "by cloning the output of the custom Function.")
        return RuntimeError(f"Output {view._output_nr} of {maker} is a view and is being modified inplace. {why}")


_INPUT_VIEW = {False: InputView(False), True: InputView(True)}


def as_input_view(output, input, several: bool = False) -> None:
    """Make ``output``, a new tensor on ``input``'s memory that a Function returned for it, a view
    of ``input`` as torch does: one version counter, ``input``'s root as its ``_base``, and no
    writing in place while recording (InputView)."""
    output._version_box = input._version_box
    output._base = input if input._base is None else input._base
    output._view_state = _INPUT_VIEW[several]


_RENAMED_NODES: dict = {}


def name_node(output, name: str, *, label: str | None = None, rule: str | None = None,
              formula: str | None = None, saved: dict | None = None, kept: dict | None = None):
    """Give ``output.grad_fn`` torch's node name for the composite op that produced it.

    A composite op (``addmm`` = ``mm`` + ``add``) records
    the nodes of its parts; torch records one node named after the op, and users read that name
    (``type(y.grad_fn).__name__``, graph drawings). The node keeps its rule and edges; only its
    class is swapped for a same-layout subclass carrying torch's name. ``label``, ``rule`` and
    ``formula`` replace the explainer's text inherited from the last part, where the composite
    op's own words say more truthfully what the node does. Outputs without a node (nothing
    required grad) are returned unchanged; so are tuples, element by element.

    ``saved`` declares the node's torch ``_saved_*`` names (see SavedValue); ``kept`` holds what
    the composite's parts did not save but torch's one node does (its inputs, its arguments),
    for ``saved`` to read through ``kept_value``.
    """
    if type(output) is tuple:
        for o in output:
            name_node(o, name, label=label, rule=rule, formula=formula, saved=saved, kept=kept)
        return output
    fn = output.grad_fn
    if fn is not None and kept is not None:
        fn.torch_kept = kept
    # torch's C++ nodes (torch::autograd::CopyBackwards) are named in full by name() only: their
    # type's __name__ is the last part, as users read it (type(y.grad_fn).__name__ == "CopyBackwards")
    type_name = name.rpartition("::")[2]
    if fn is None or (type(fn).__name__ == type_name and type(fn).name() == name and label is None and rule is None
                      and formula is None and saved is None):
        return output
    cls = type(fn)
    key = (cls, name, label, rule, formula, None if saved is None else id(saved))
    renamed = _RENAMED_NODES.get(key)
    if renamed is None:
        text = {k: v for k, v in (("label", label), ("rule", rule), ("formula", formula)) if v is not None}
        # the part's torch names do not describe the composite op's node: undeclared unless given
        text["_torch_saved"] = saved if saved is not None or name == cls.__name__ else None
        if saved is not None:
            text["_ctx_tensors"] = _keeps_ctx_tensors(saved)
        if type_name != name:
            text["name"] = classmethod(lambda _cls: name)
        renamed = _RENAMED_NODES[key] = type(type_name, (cls,), {"__slots__": (), "__module__": cls.__module__,
                                                                 **text})
    fn.__class__ = renamed
    return output


def _is_default_setup(cls) -> bool:
    return cls.setup_context is Function.setup_context


class _RunningTransforms(threading.local):
    """How many torch.func transforms are running in this thread (func.py counts them; torch's
    transform stack is per thread too), and how many of those map over a batch (vmap; jacfwd,
    which torch builds on vmap)."""

    def __init__(self) -> None:
        self.active = 0
        self.batching = 0


func_transforms = _RunningTransforms()


_TRANSFORMS_DOC = "For more details, please see https://pytorch.org/docs/main/notes/extending.func.html"


def _refuse_if_not_written_for_transforms(cls) -> None:
    """torch's conditions for a user Function under torch.func: a ``setup_context`` (forward
    without ctx), and under vmap a ``vmap`` staticmethod or ``generate_vmap_rule = True``, not both."""
    if _is_default_setup(cls):
        raise RuntimeError("In order to use an autograd.Function with functorch transforms (vmap, grad, jvp, "
                           f"jacrev, ...), it must override the setup_context staticmethod. {_TRANSFORMS_DOC}")
    if not func_transforms.batching:
        return
    overridden = cls.vmap is not Function.vmap
    if cls.generate_vmap_rule and overridden:
        raise RuntimeError(f"You tried to vmap over {cls.__name__}, but it has both generate_vmap_rule=True and an "
                           "overridden vmap staticmethod. Please set generate_vmap_rule=False or delete the "
                           f"overridden vmap staticmethod to avoid ambiguity. {_TRANSFORMS_DOC}")
    if not cls.generate_vmap_rule and not overridden:
        raise RuntimeError(f"You tried to vmap over {cls.__name__}, but it does not have vmap support. Please "
                           "override and implement the vmap staticmethod or set generate_vmap_rule=True. "
                           f"{_TRANSFORMS_DOC}")


@functools.cache
def _signature(forward) -> tuple:
    """``forward``'s signature, how many positional parameters it has, and whether it takes ``*args``."""
    signature = inspect.signature(forward)
    kinds = [p.kind for p in signature.parameters.values()]
    positional = sum(kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                     for kind in kinds)
    return signature, positional, inspect.Parameter.VAR_POSITIONAL in kinds


def _with_defaults(forward, args: tuple, kwargs: dict) -> tuple:
    """``(args, kwargs)`` bound to ``forward``'s signature with its defaults filled in, as torch
    binds them for a Function with ``setup_context``: its ``inputs`` (and ``jvp``'s tangents, the
    ``vmap`` rule's in_dims) then count a defaulted argument too."""
    signature, positional, takes_more = _signature(forward)
    if not kwargs and (len(args) == positional or takes_more and len(args) > positional):
        return args, kwargs  # every positional parameter given (binding, which costs, changes nothing)
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.args, bound.kwargs


class _UserNullCtx(FunctionCtx):
    """The ctx a user Function's forward sees when nothing is recorded (attributes allowed)."""

    _saved_for_forward = None
    _dirty = None
    _non_differentiable = None
    _output_meta = None  # () once forward has returned (as a recorded node's, for torch's to_save & co.)
    locals().update(_USER_CTX_ATTRIBUTES)

    def __init__(self, tensor_args) -> None:
        # torch's: whether each input requires grad, grad mode or not (nothing is recorded either way)
        self.needs_input_grad = tuple(t is not None and t._requires_grad for t in tensor_args)
        self._saved = ()

    def save_for_backward(self, *tensors) -> None:
        self._saved = tensors

    def save_for_forward(self, *tensors) -> None:
        self._saved_for_forward = tensors

    @property
    def saved_tensors(self):
        return self._saved

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable = tensors

    def mark_dirty(self, *tensors) -> None:
        self._dirty = tensors

    def set_materialize_grads(self, value) -> None:
        self._materialize = bool(value)  # (forward AD's jvp reads it: None for a missing tangent)


class _PackedSaved:
    """A saved tensor as saved_tensors_hooks' pack hook returned it, with the original tensor's
    place in the graph (its node and output number, or a leaf's accumulator), which torch's
    SavedVariable keeps beside the packed value; the engine frees it with the node's other saved
    tensors. (As in torch, no in-place check is made on packed tensors: what the unpack hook
    returns is what the backward uses.)"""

    __slots__ = ("packed", "unpack", "grad_fn", "output_nr", "requires_grad", "accumulator")

    def __init__(self, packed, unpack=None, original=None) -> None:
        self.packed = packed
        self.unpack = unpack  # this tensor's own unpack hook (SavedTensor.register_hooks), else None
        # a node's own saved output has none here (its node is the one reading it: _with_grad_fn)
        self.grad_fn = original.grad_fn if original is not None else None
        self.output_nr = original._output_nr if original is not None else 0
        self.requires_grad = original is not None and original._requires_grad
        self.accumulator = None
        if self.requires_grad and self.grad_fn is None:
            accumulator = original._get_accumulator()
            # weakly, as torch: the packed value must not keep the leaf (the accumulator's variable) alive
            self.accumulator = None if accumulator is None else weakref.ref(accumulator)


def _unpack_saved(node) -> tuple:
    """A packed node's saved tensors, each through the unpack hook (called on every access, as
    torch's), each put back in the original tensor's place in the graph (a hook returning
    ``t.detach()`` or a copy still differentiates twice, as torch's); saved outputs get theirs
    under create_graph."""
    unpack = node._unpack_hook
    unpacked = tuple(None if s is None else (s.unpack or unpack)(s.packed) if type(s) is _PackedSaved else s
                     for s in node._saved)
    for i, t in enumerate(unpacked):
        if node._saved[i] is not None and not isinstance(t, _Tensor):
            raise TypeError(f"{node.name()}: the unpack hook of saved_tensors_hooks returned a "
                            f"{type(t).__name__}, expected a Tensor")
    if node._packed_extras:  # (unpacked as torch's backward unpacks them; the rule does not read them)
        unpacked = unpacked[:-node._packed_extras]
    own_outputs = node._saved_outputs or ()
    unpacked = tuple(_in_original_place(t, s) if type(s) is _PackedSaved and i not in own_outputs else t
                     for i, (t, s) in enumerate(zip(unpacked, node._saved)))
    if own_outputs and _grad_state.enabled:
        return _with_grad_fn(unpacked, own_outputs, node)
    return unpacked


def _in_original_place(tensor, packed: _PackedSaved):
    """The unpack hook's values, as torch's SavedVariable::unpack makes them: a new tensor on their
    memory and version counter, with the original's node (or leaf accumulator) whatever graph the
    hook's tensor had. A subclass instance comes back as the hook made it."""
    if type(tensor) is not _Tensor:
        return tensor
    placed = _Tensor._make(tensor._data, packed.grad_fn, packed.output_nr)
    placed._vbox = tensor._version_box
    if packed.grad_fn is None and packed.requires_grad:
        placed._requires_grad = True
        accumulator = packed.accumulator() if packed.accumulator is not None else None
        if accumulator is not None:
            placed._accumulator = weakref.ref(accumulator)
    return placed


def once_differentiable(backward):
    """Decorator for a backward that is not itself differentiable: runs it with grad mode off.

    As torch's: when the graph of the backward is being recorded (grad mode on, a gradient
    requiring grad), the results still require grad, hanging from an ``Error`` node that raises
    if a second differentiation reaches it."""

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        previous = _grad_state.enabled
        _grad_state.enabled = False
        try:
            outputs = backward(ctx, *grads)
        finally:
            _grad_state.enabled = previous
        if not previous or not any(isinstance(g, _Tensor) and g._requires_grad for g in grads):
            return outputs
        several = isinstance(outputs, tuple)
        detached = [o.detach().requires_grad_() if isinstance(o, _Tensor) else o
                    for o in (outputs if several else (outputs,))]
        errored = DelayedError.apply(*detached)
        return errored if several else errored[0]

    return wrapper


class DelayedError(Function):
    """torch's ``Error`` node: the once_differentiable backward's results, recorded so that
    differentiating them again fails there rather than silently giving no gradient."""

    node_name = "Error"
    label = "once_differentiable"
    rule = "none: differentiating a @once_differentiable backward's results again raises"

    @staticmethod
    def forward(ctx, *tensors):
        return tuple(t.detach() if isinstance(t, _Tensor) else t for t in tensors)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("trying to differentiate twice a function that was marked with @once_differentiable")


def on_arrays_when_unrecorded(derivative, recorded_node: str | None = None, layout=None):
    """An operator-only rule expression ``derivative(g, x, y)`` evaluated on the raw arrays
    when nothing is recorded.

    In a plain backward() a rule's Tensor ops record nothing, so each one only wraps its array:
    tanh's g * (1 - y * y) is three wrapped products where NumPy needs three ufunc calls. The
    same expression on the arrays is the same ufuncs in the same order (NEP 50 keeps the dtype
    for Python numbers), so the result is identical; under create_graph (and forward AD, which
    differentiates rules) the Tensor ops run and record. It is one rule, evaluated two ways, so
    the choice lives here rather than in the op. Half precision keeps the Tensor ops, which
    compute in float32 as torch does. ``recorded_node``: torch's name for the node the Tensor ops'
    result gets (the array path records nothing, so it pays nothing for the name). ``layout(out,
    g, x, y)``: the array result laid out as the Tensor ops lay theirs out, where NumPy's layout
    can differ from it (an elementwise rule's size-1 dims); None for a rule whose arrays need none.
    """
    if layout is None:
        def rule(g, x, y):
            if not on_arrays(g):
                out = derivative(g, x, y)
                return out if recorded_node is None else name_node(out, recorded_node)
            return _Tensor._make(derivative(g._data, None if x is None else x._data, None if y is None else y._data))
    else:
        def rule(g, x, y):
            if not on_arrays(g):
                out = derivative(g, x, y)
                return out if recorded_node is None else name_node(out, recorded_node)
            g, x, y = g._data, None if x is None else x._data, None if y is None else y._data
            return _Tensor._make(layout(derivative(g, x, y), g, x, y))

    return rule


def on_arrays(grad) -> bool:
    """Whether a rule may compute on ``grad``'s raw array, as ``on_arrays_when_unrecorded`` does:
    nothing records now, ``grad`` is not half precision (whose Tensor ops compute in float32), and no
    dispatch mode is entered (it sees the rule's ops, as torch's modes see the backward's)."""
    dtype = grad._data.dtype
    return not _grad_state.enabled and dtype.itemsize >= 4 and dtype.kind in "fc" and active_dispatch is None and \
        not tracing_ops


def unwatched_on_arrays(grad) -> bool:
    """``on_arrays(grad)``, and nothing watches the ops a rule would run (no profiler or flop
    counter, no forward-AD extension, no CPU autocast region): a rule may then call its array
    kernel directly instead of applying a node-less op around it. (Not ``opmath_hook``: set for good
    once a half-precision dtype is used, it changes nothing for ``grad``'s float32 or wider array,
    the operands' dtype in these rules, outside a region.)"""
    return (on_arrays(grad) and active_profiler is None and active_extension is None
            and autocast_hook.cpu_dtype is None)


def nothing_watches() -> bool:
    """Whether nothing but its caller would see an unrecorded op run now: no dispatch mode, profiler
    or flop counter, extension (forward AD, saved-tensor hooks), CPU autocast region or running vmap
    (recording slice 0's ops, ``tracing_ops``, or running its slices one by one, ``vmap_frames``;
    vmap's batch watcher in the profiler's place sees both too, but a frame is asked for itself). A
    fused path that computes on the arrays what a composite of ops would compute asks it, and
    ``is_recording`` (nothing records), before it skips the composite. Not ``opmath_hook``: set for
    good once a half-precision dtype is used, it is no switch that is turned back, and asking it
    would make a float32 result's path depend on what ran before in the process."""
    return (active_dispatch is None and active_profiler is None and active_extension is None
            and autocast_hook.cpu_dtype is None and not tracing_ops and not vmap_frames)


def unwatched_on_plain_arrays(grad) -> bool:
    """``unwatched_on_arrays(grad)`` for a gradient over a NumPy array or a GPU array (CuPy's or the
    stand-in's) with no autocast region to cast it: a rule may call its array forwards directly.
    What the unrecorded apply would add on the GPU is only on_one_device's check and making the
    arrays' GPU current, which the walk has done for the node (engine._follow_gradient)."""
    data = grad._data
    if type(data) is not _ndarray and (autocast_hook.cast is not None or not is_gpu_array(data)):
        return False
    return unwatched_on_arrays(grad)


def is_recording(*tensors) -> bool:
    """Whether an op on ``tensors`` would be recorded now: grad mode is on and one of them
    (None entries skipped) requires grad. Code outside autograd/ asks this (never the grad mode
    itself) when it must choose before any Function runs, e.g. a plain in-place write or a node."""
    if not _grad_state.enabled:
        return False
    return any(t is not None and t._requires_grad for t in tensors)
