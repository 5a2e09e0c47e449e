"""vmap's batched run: the function's ops for the first slice, replayed once on the whole batch.

torch's vmap runs the function once, on tensors that carry the batch dimension, through a
batching rule per op. chainrule's vmap runs the function on slice 0 as before, while this module
records every op it applies (the forward's and the backward's of a ``grad`` inside: the engine's
rules are ops too), each operand's provenance, and each op's grad mode. When the record is
complete — every operand an op's output, a slice of a mapped input (batched), or a tensor the
vmap holds unbatched (an unmapped input, a tensor the function closes over, a factory's) — the
ops are replayed once on the batched values, in order, and vmap returns the replay's results:
the function's Python runs once, and each op runs once on the batch (one GEMM for a linear, as
torch's). The slices' runs agree op by op, since vmap refuses what could make them differ (a
batched value read as a Python number, a random op under randomness="error").

Each op class has a rule (``_RULES``) that applies it to the batched values, the batch dim in
front; an op without one runs once per slice and its results are stacked (torch's "fallback",
without its warning: the numbers are the per-slice ones). Anything the record cannot vouch for
stops the replay, and vmap runs the remaining slices one by one as before: a user Function, an
in-place write, an operand of unknown origin (a rule's raw array), a parameter that is no plain
value, a result whose shape or values disagree with slice 0's, a batched value chainrule's own code
read as a Python number (``_vmap_frames.note_value_read``: an index key's integer). A batched value
that no recorded op made (argmax's, which is no Function) could steer the function's Python unseen:
there vmap checks the replay against the last slice's own run (``unrecorded_batched``).
"""

from __future__ import annotations

import functools

import numpy as np

from .autograd import function as _function
from .autograd.grad_mode import is_grad_enabled, set_grad_enabled
from .ops import random as _random

__all__ = ["Trace", "active", "agrees", "has_vmap_staticmethod", "record_user_call", "replay", "start", "stop",
           "unrecorded_batched"]

active = None  # the Trace of the innermost vmap running its slice 0, or None


class _Stop(Exception):
    """The record cannot be replayed: vmap runs the remaining slices one by one."""


def _data_key(array):
    """What tells two tensors over the very same values: a NumPy array's memory, shape, strides (a
    size-1 dim's, which no element steps along, as 0) and dtype (one array wrapped anew is another
    object), else the array object."""
    if type(array) is np.ndarray:
        shape = array.shape
        strides = array.strides if 1 not in shape else tuple(0 if n == 1 else step
                                                             for n, step in zip(shape, array.strides))
        return (array.__array_interface__["data"][0], shape, strides, array.dtype.str)
    return id(array)


def _version(t) -> tuple:
    box = t._vbox
    return (None, 0) if box is None else (id(box), box[0])


class Trace:
    """The ops one vmap's slice 0 applied, in order, and the provenance of its inputs."""

    def __init__(self, frame) -> None:
        self.frame = frame
        self.ok = True
        self.ops: list = []  # (cls, inputs, params, outputs, grad mode, inputs' versions)
        self.made: dict[int, tuple] = {}  # id(output) -> (output, its version when made, the op's index)
        self.keep: list = []  # every tensor named, so that its id stays its own while the trace lives
        self.states: list = []  # per op, the default generator's state before it (randomness="same"), or None
        self.by_data = {_data_key(piece._data): piece for piece, _, dim in frame._origins.values()
                        if dim is not None and isinstance(piece, _function._Tensor)}
        self.mapped_inputs: set = set()  # ids of the batched inputs, which no op may read whole
        # data key -> each (op index, output, position in its node's saved values, node type) that kept it
        self.saved_at: dict = {}
        self.replayed: dict[int, tuple] = {}  # op index -> its replayed outputs
        self.node_of: dict[int, tuple] = {}  # id(an output's node) -> (node, op index, output)
        self.per_slice: dict[int, list] = {}  # op index -> each slice's outputs, for an op run per slice
        # id, or its array's key -> a tensor every slice's run makes alike (a seed)
        self.constants: dict = {}
        # id(a tensor vmap handed the function) -> its version before the function ran
        self.given = {key: _version(entry[0]) for key, entry in frame._origins.items()
                      if isinstance(entry[0], _function._Tensor)}
        self.muted = 0  # inside an op recorded as one call (_note_call): its own ops are not recorded
        self.internal: dict = {}  # id -> a batched value such a call made inside (its 0-d input's reshape)
        self.earlier: dict = {}  # id -> the versions an op's output had before a recorded in-place write
        self.unbatched: dict = {}  # data key -> a tensor the vmap holds unbatched whose array an op read (_note_arrays)

    def generator_state(self):
        """Under randomness="same", the default generator's state before an op runs (``record``):
        an op the replay runs per slice draws from it for every slice, as slice 0's run drew."""
        return _random.default_generator.get_state() if self.frame.randomness == "same" else None

    def record(self, cls, inputs, params, out, state=None) -> None:
        if self.muted:
            return
        outs = out if isinstance(out, tuple) else (out,)
        Tensor = _function._Tensor
        if not all(isinstance(o, Tensor) for o in outs) or not all(isinstance(t, Tensor) for t in inputs) or \
                "AsStrided" in cls.__name__:  # (a view by storage offsets: the slice's, not the batch's)
            self.ok = False
            return
        index = len(self.ops)
        if any(type(value) is np.ndarray for value in params.values()):
            self._note_arrays(params)
        self.ops.append((cls, inputs, params, outs, is_grad_enabled(), tuple(_version(t) for t in inputs)))
        self.states.append(state)
        for k, o in enumerate(outs):
            self.made[id(o)] = (o, _version(o), index)
            self.by_data.setdefault(_data_key(o._data), o)  # (the first: a later view of it is not replayed yet)
            # (a write's tensor still has the node of the op that made it, which is that op's)
            node = o._grad_fn if not isinstance(cls, _Written) else None
            if node is not None:
                self.node_of[id(node)] = (node, index, k)
            if node is not None and k == o._output_nr:
                # what its node keeps for the rule (tanh's float64 output, log_softmax's softmax): the
                # replayed node keeps the batch's, at the same place
                kept = [(("saved", position), item) for position, item in enumerate(getattr(node, "_saved", ()))]
                kept += [(("attr", name), item) for name, item in getattr(node, "__dict__", {}).items()]
                for where, item in kept:
                    array = getattr(item, "_data", item)
                    if type(array) is np.ndarray:
                        self.saved_at.setdefault(_data_key(array), []).append((index, k, where, type(node)))
        self.keep.append(outs)

    def _note_arrays(self, params: dict) -> None:
        """Keep each tensor the vmap holds unbatched (a factory's made inside the function, one it
        closes over) whose array an op reads as a parameter (index_select's index): the replay
        reads that array as unbatched, though the tensor is gone by then."""
        frame = self.frame
        held = {_data_key(t._data): t for tensors in (frame._made, frame._closed_over)
                for t in list(tensors.values())}
        for value in params.values():
            t = held.get(_data_key(value)) if type(value) is np.ndarray else None
            if t is not None and frame.surely_unbatched(t):
                self.unbatched[_data_key(value)] = t
                self.keep.append(t)


def start(frame):
    """Begin recording slice 0's ops for ``frame``'s vmap; returns what ``stop`` restores. A vmap
    begun while another records (a nested one) stops that record: the inner vmap's own run is not
    an op the outer replay can repeat."""
    global active
    previous = active
    if previous is not None:
        previous.ok = False
    active = Trace(frame)
    _function.tracing_ops += 1
    _function.traced_constant = _note_constant
    _function.traced_elementwise = _note_elementwise
    _function.traced_call = _note_call
    _function.traced_write = _note_write
    _function.traced_draw = _note_draw
    _function.traced_operands = _elementwise_operands
    _function.traced_recomputed = _note_recomputed
    _function.traced_copy = _note_copy
    return previous, active


def _note_constant(t, by_data: bool = True) -> None:
    """``t`` is the same for every slice's run; ``by_data``: so is any tensor over its very array
    (not where an op writes its result into that array: index_add_into's zeros)."""
    if active is not None:
        active.constants[id(t)] = t
        if by_data:
            active.constants[_data_key(t._data)] = t  # (a tensor over its very array has its values)


class _ElementwiseCall:
    """The record's stand-in class for an elementwise op that is no Function (a comparison): the
    op's Python function, called on the replay's values, numbers kept in their places."""

    __module__ = "chainrule._vmap_batched"

    def __init__(self, op, template) -> None:
        self.op, self.template = op, template
        self.__name__ = getattr(op, "__name__", "elementwise")


def _note_elementwise(op, args, out) -> None:
    if active is None or not active.ok:
        return
    tensors = tuple(a for a in args if isinstance(a, _function._Tensor))
    template = tuple(None if isinstance(a, _function._Tensor) else a for a in args)
    active.record(_ElementwiseCall(op, template), tensors, {}, out)


class _AlongDimCall:
    """The record's stand-in class for an op along one dim whose indices no Function computes
    (sort, topk, kthvalue, median, mode, max/min by dim, argmax, argmin): the public op and its
    arguments but the input, which the replay calls on the batch, the dim moved behind the batch dim."""

    __module__ = "chainrule._vmap_batched"

    def __init__(self, op, arguments: dict) -> None:
        self.op, self.arguments = op, arguments
        self.__name__ = op.__name__


def _note_call(op, arguments: dict):
    """``op`` called with ``arguments`` (ops/reduce.py's ``_traced``) recorded as one op where its
    dim is an int (argmax's and argmin's also None: the flattened slice), its own Functions
    unrecorded (their indices are arrays the record never saw made); None where the op is to run
    on as usual (inside that call, or a call the record cannot stand for)."""
    trace = active
    dim = arguments.get("dim")
    if trace is None or not trace.ok or trace.muted or not isinstance(arguments["input"], _function._Tensor) or \
            arguments.get("other") is not None or \
            not (type(dim) is int or (dim is None and op.__name__ in ("argmax", "argmin", "median", "nanmedian"))):
        return None
    batched = trace.frame._batched
    before = set(batched.keys())
    trace.muted += 1
    try:
        out = op(**arguments)
    finally:
        trace.muted -= 1
    trace.internal.update((key, batched.get(key)) for key in set(batched.keys()) - before)
    arguments = dict(arguments)
    given = arguments.pop("input")
    trace.record(_AlongDimCall(op, arguments), (given,), {}, out)
    return out


class _UserCall:
    """The record's stand-in class for a user autograd.Function with ``generate_vmap_rule = True``:
    the Function and its positional arguments but the tensors, which the replay fills in for each
    slice (the Function's forward once per slice; torch's runs it once on the batch)."""

    __module__ = "chainrule._vmap_batched"

    def __init__(self, cls, template) -> None:
        self.cls, self.template = cls, template
        self.__name__ = cls.__name__

    def apply(self, *tensors, **kwargs):
        given = iter(tensors)
        return self.cls.apply(*[next(given) if a is None else a for a in self.template], **kwargs)


def record_user_call(trace, cls, args, kwargs, out, state) -> None:
    """Record a user Function with ``generate_vmap_rule = True`` applied to ``args`` (see _UserCall)."""
    Tensor = _function._Tensor
    template = tuple(None if isinstance(a, Tensor) else a for a in args)
    if any(a is None for a in args):  # (a None argument would be taken for a tensor's place)
        trace.ok = False
        return
    trace.record(_UserCall(cls, template), tuple(a for a in args if isinstance(a, Tensor)), kwargs, out, state)


class _Written:
    """The record's stand-in class for an in-place op's write of its result (an op's output) into
    a tensor an op made (cross_entropy's ``masked_fill_`` of its smoothing term): from there on the
    tensor's replay value is the result's. Also an in-place op's node's copy of the tensor it is about
    to write (``_note_copy``): the copy's replay value is the tensor's then."""

    __module__ = "chainrule._vmap_batched"
    __name__ = "written"


def _note_write(t, result) -> None:
    trace = active
    if trace is None or not trace.ok or trace.muted:
        return
    made, was = trace.made.get(id(result)), trace.made.get(id(t))
    if made is None or made[0] is not result or was is None or was[0] is not t or id(t) in trace.given:
        trace.ok = False  # (a write into an input, or of a value the record never saw made)
        return
    # (the version an op read it at before the write, the write's bump undone: where the tensor was made
    # with no counter yet, (None, 0), an op reading it before the write first gave it one)
    trace.earlier.setdefault(id(t), set()).update((was[1], (id(t._vbox), t._vbox[0] - 1)))
    trace.record(_Written(), (result,), {}, t)


def _note_copy(copy, t) -> None:
    """``copy``, a node's copy of ``t`` before an in-place write into ``t``: its replay value is t's now."""
    trace = active
    if trace is None or not trace.ok or trace.muted:
        return
    trace.record(_Written(), (t,), {}, copy)


def _note_recomputed(node, name: str, array) -> None:
    """``node``'s rule recomputed ``array`` for its kept attribute ``name`` (the same values): the replay
    reads the replayed node's kept one for it, as for the kept one itself."""
    trace = active
    found = trace.node_of.get(id(node)) if trace is not None and trace.ok and not trace.muted else None
    if found is not None and found[0] is node and type(array) is np.ndarray:
        trace.saved_at.setdefault(_data_key(array), []).append((found[1], found[2], ("attr", name), type(node)))
        trace.keep.append(array)  # (its memory stays its own while the trace lives)


class _Drawn:
    """The record's stand-in class for a random draw of each slice's shape under randomness="different"
    (dropout's mask, ``_vmap_frames.slice_draw``): slice 0 drew the whole batch's, which the replay takes."""

    __module__ = "chainrule._vmap_batched"
    __name__ = "drawn"

    def __init__(self, batch) -> None:
        self.batch = batch


def _note_draw(batch, mask) -> None:
    """Slice 0's random ``mask``: under randomness="same" (``batch`` None) a constant of the record,
    every slice's draw slice 0's, as torch's one draw; else row 0 of the batch's draw ``batch``."""
    trace = active
    if trace is None or not trace.ok or trace.muted:
        return
    if batch is None:
        _note_constant(_function._make_tensor(mask))
    else:
        trace.record(_Drawn(batch), (), {}, _function._make_tensor(mask))


def stop(token) -> Trace:
    global active
    previous, trace = token
    active = previous
    _function.tracing_ops -= 1
    return trace


# ---------------------------------------------------------------- the replay

class _Value:
    """An op operand during the replay: ``data`` the batched value (batch dim first) when
    ``batched``, else the unbatched tensor itself."""

    __slots__ = ("data", "batched")

    def __init__(self, data, batched: bool) -> None:
        self.data, self.batched = data, batched


_PLAIN = (type(None), bool, int, float, complex, str, type(Ellipsis), slice)
# parameters that are plain values too: dtypes, devices, a convolution's or a pooling's geometry
# (kernel, stride, padding and the spatial shapes, which the batch does not change)
_PLAIN_NAMES = frozenset({"dtype", "device", "_Geometry", "_PoolGeometry", "ResamplePlan"})


def replay(trace: Trace, flat_args, flat_dims, outputs, size: int):
    """The batched outputs (batch dim first, one per tensor in ``outputs``, slice 0's results), or
    None where the record cannot be replayed."""
    if not trace.ok:
        return None
    frame = trace.frame
    values: dict[int, _Value] = {}
    for leaf, dim in zip(flat_args, flat_dims):
        if isinstance(leaf, _function._Tensor) and dim is None:
            values[id(leaf)] = _Value(leaf, False)
        elif isinstance(leaf, _function._Tensor):
            trace.mapped_inputs.add(id(leaf))
    for piece_id, (_piece, batched, dim) in frame._origins.items():
        if dim is not None:
            values[piece_id] = _Value(batched.movedim(dim, 0) if dim else batched, True)
    trace.keep.append(list(frame._origins.values()))
    try:
        return _run(trace, values, outputs, size)
    except Exception:  # noqa: BLE001 - _Stop, or an op refusing the batch: the slices run one by one
        return None
    finally:
        _batch_dim_behind.clear()


def _resolve(trace: Trace, values: dict, t, version) -> _Value:
    """The replay's value for operand ``t`` (its version when the op read it: ``version``)."""
    if id(t) in trace.mapped_inputs:
        raise _Stop  # a mapped input read whole (not a slice of it): no replay can stand for that
    found = values.get(id(t))
    given = trace.given.get(id(t))
    if given is not None and version is not None and version != given:
        raise _Stop  # a mapped or unmapped input written in place before this read
    made = trace.made.get(id(t))
    if made is not None and made[0] is t:
        # (a counter first made after the op, still at 0, counts no write: max_pool's output's)
        if version is not None and version != made[1] and not (made[1] == (None, 0) and version[1] == 0) and \
                not _shares_counter(trace.ops[made[2]], t, version) and version not in trace.earlier.get(id(t), ()):
            raise _Stop  # written in place between the op that made it and this read
        if found is None:
            raise _Stop
        return found
    if found is not None:
        return found
    if t._base.__class__ is _function._Promoted:
        return _promoted(trace, values, t, version)
    frame = trace.frame
    if trace.constants.get(id(t)) is t or (frame.surely_unbatched(t) and t.grad_fn is None) or (
            t.grad_fn is None and _data_key(t._data) in trace.constants) or (
            t._data.ndim == 0 and t.grad_fn is None and not t.requires_grad and (
                t._wrapped_number or id(t) in _function.constant_numbers)):
        # (a Python number an op wraps: slice 0's number, the same for every slice, since a batched
        # value cannot become a Python number inside vmap)
        return _Value(t, False)
    # another tensor over a known one's very array: a detached alias (grad's fresh leaf), or a saved
    # output unpacked for its rule (on the node that made it)
    other = trace.by_data.get(_data_key(t._data))
    if other is not None and (t.grad_fn is None or t.grad_fn is other.grad_fn):
        known = values.get(id(other))
        if known is not None:
            if t.grad_fn is not None:
                return known
            data = known.data.detach()
            if t.requires_grad:
                data.requires_grad_(True)
            return _Value(data, known.batched)
    item = _kept_by_replayed_node(trace, t._data)
    if t.grad_fn is None and item is not None:
        item = item if isinstance(item, _function._Tensor) else _function._make_tensor(item)
        return _Value(item.detach() if item.requires_grad else item, True)
    if t.grad_fn is not None and isinstance(item, _function._Tensor) and item.grad_fn is not None:
        # a saved input unpacked with its graph, made inside a call recorded as one op (median()'s
        # flattened input): the replayed node's, the batch's with its graph
        return _Value(item, True)
    raise _Stop


def _promoted(trace: Trace, values: dict, t, version) -> _Value:
    """The replay's value for ``t``, a mixed-dtype op's promoted operand (``promoted_operand``: the
    operand's array cast, its edge, no node of its own; Abs's backward's complex ``z / where(...)``):
    the operand's replay value promoted the same way, so the replayed op's node has its edge too."""
    from .ops.elementwise import _promoted as promoted

    source = _resolve(trace, values, t._base.source, version)
    if not source.batched:
        return _Value(t, False)  # (slice 0's stand-in: every slice's alike)
    with set_grad_enabled(True):  # (recorded: a stand-in with the operand's edge, never a cast node)
        return _Value(promoted(source.data, t.dtype, True), True)


def _kept_by_replayed_node(trace: Trace, array):
    """What a replayed node keeps where slice 0's node kept ``array`` (a Tensor or an array, batch
    dim first: the first such node replayed on the batch), or None."""
    size = trace.frame.batch_size
    for index, k, where, node_type in trace.saved_at.get(_data_key(array), ()):
        if index not in trace.replayed:
            continue
        if index in trace.per_slice:  # each slice's own node kept its own: stacked
            items = [_kept_by(outs[k]._grad_fn, node_type, where) for outs in trace.per_slice[index]]
            if all(type(getattr(item, "_data", item)) is np.ndarray for item in items):
                found = np.stack([getattr(item, "_data", item) for item in items])
                if found.shape == (size, *array.shape) and found.dtype == array.dtype:
                    return found
            continue
        item = _kept_by(trace.replayed[index][k]._grad_fn, node_type, where)
        found = getattr(item, "_data", item)
        if type(found) is np.ndarray and array.ndim and trace.ops[index][0].__name__ in _ROWS_FOLDED and \
                found.shape == (size * array.shape[0], *array.shape[1:]):
            item = found = found.reshape((size, *array.shape))  # (the batch's rows, slice by slice)
        if type(found) is np.ndarray and found.shape == (size, *array.shape) and found.dtype == array.dtype:
            return item
    return None


def _kept_by(node, node_type, where):
    """What ``node`` (of ``node_type``, or torch's name for it: ``name_node``'s same-layout subclass; else
    None) keeps at ``where``: ("saved", position) or ("attr", name)."""
    if not isinstance(node, node_type):
        return None
    kind, at = where
    if kind == "saved":
        return node._saved[at] if len(node._saved) > at else None
    return getattr(node, "__dict__", {}).get(at)


def _shares_counter(op, t, version) -> bool:
    """Whether ``t``, an output of ``op``, only took on the version counter of one of its inputs
    after the op (a view sharing it: linear's weight.t(), a reshape), unchanged since the op read it."""
    box = t._vbox
    for operand, (box_id, count) in zip(op[1], op[5]):
        if operand._vbox is box and version[1] == count and box_id in (None, id(box)):
            return True
    return False


def _map_params(trace: Trace, values: dict, params: dict) -> tuple:
    """(params with each tensor replaced by its replay value, whether any is batched)."""
    batched = False

    def mapped(value):
        nonlocal batched
        if isinstance(value, _function._Tensor):
            found = _resolve(trace, values, value, None)
            batched = batched or found.batched
            return found
        if isinstance(value, _function.Node):  # an earlier op's node (nll_loss's backward reads the loss's)
            found = trace.node_of.get(id(value))
            if found is None or found[0] is not value:
                raise _Stop
            _, index, k = found
            if index in trace.per_slice:
                batched = True
                return _SliceNode(value, [outs[k]._grad_fn for outs in trace.per_slice[index]])
            if trace.replayed.get(index) is not trace.ops[index][3]:
                cls, inputs, forward_params, _outs, _mode, versions = trace.ops[index]
                if cls.__name__ not in _NODES_READ:
                    raise _Stop  # a batched op's node, which no rule here reads
                batched = True  # its backward's rule reads the forward's batched operands and parameters
                return _BatchedNode([_resolve(trace, values, t, v) for t, v in zip(inputs, versions)],
                                    _map_params(trace, values, forward_params)[0])
            return value
        if type(value) is np.ndarray:  # a known tensor's array (embedding's indices), or one a node kept
            found = _known_array(trace, values, value)
            lead = 0
            while found is None and lead < value.ndim and (value.strides[lead] == 0 or value.shape[lead] == 1):
                # one broadcast along new leading dims (a node's index, the same for each row of
                # jacrev's batched walk): the known array's replay value broadcast alike
                lead += 1
                base = value[(0,) * lead]
                found = _known_array(trace, values, base)
                if found is not None and found.batched:
                    found = _Value(np.broadcast_to(found.data.reshape((found.data.shape[0],) + (1,) * lead + base.shape),
                                                   (found.data.shape[0], *value.shape)), True)
                elif found is not None:
                    found = _Value(value, False)
            if found is None:
                raise _Stop
            batched = batched or found.batched
            return found
        if type(value).__name__ in _PLAIN_NAMES:  # (before a tuple's items: a ResamplePlan's arrays are plain)
            return value
        if isinstance(value, (tuple, list)):
            return type(value)(mapped(v) for v in value)
        if isinstance(value, _PLAIN) or isinstance(value, np.dtype) or (
                isinstance(value, type) and issubclass(value, np.generic)):  # (a dtype as NumPy's type: sum's)
            return value
        raise _Stop

    return {key: mapped(value) for key, value in params.items()}, batched


def _known_array(trace: Trace, values: dict, array):
    """The replay's value (a _Value over an array) of a known tensor's very array, or of one a
    replayed node kept where slice 0's node kept ``array``, or of a constant's (a fill number's, the
    same for every slice); None for an array the record never saw."""
    key = _data_key(array)
    if key in trace.constants:
        return _Value(array, False)
    other = trace.by_data.get(key)
    known = values.get(id(other)) if other is not None else None
    if known is not None and isinstance(known.data, _function._Tensor):
        return _Value(known.data._data, known.batched)
    item = _kept_by_replayed_node(trace, array)
    item = getattr(item, "_data", item)  # (a kept tensor's array)
    if type(item) is np.ndarray:
        return _Value(item, True)
    held = trace.unbatched.get(key)
    # (the array of a tensor the vmap holds unbatched, unwritten: a factory's index made inside the function)
    return _Value(array, False) if held is not None and _version(held)[1] == 0 else None


class _BatchedNode:
    """A node parameter whose op the replay ran by a rule on the batch: that op's operands and
    parameters (_Values where batched), for its backward's rule (nll_loss's reads the targets)."""

    __slots__ = ("operands", "params")

    def __init__(self, operands, params) -> None:
        self.operands, self.params = operands, params


class _SliceNode:
    """A node parameter of an op run per slice: each slice's own node."""

    __slots__ = ("first", "nodes")

    def __init__(self, first, nodes) -> None:
        self.first, self.nodes = first, nodes


def _unwrap(value, index=None):
    """A parameter's value for the op: the batched tensor (or its slice ``index``), or the unbatched."""
    if isinstance(value, _Value):
        if index is not None and value.batched:
            return value.data[index] if type(value.data) is np.ndarray else value.data.select(0, index)
        return value.data
    if isinstance(value, _SliceNode):
        if index is None:
            raise _Stop
        return value.nodes[index]
    if isinstance(value, _BatchedNode):
        raise _Stop  # (no op but its backward's rule reads it)
    if isinstance(value, (tuple, list)):
        return type(value)(_unwrap(v, index) for v in value)
    if isinstance(value, dict):
        return {key: _unwrap(v, index) for key, v in value.items()}
    return value


def _run(trace: Trace, values: dict, outputs, size: int):
    apply = _function._apply_array_op
    for (cls, inputs, params, outs, grad_mode, versions), state in zip(trace.ops, trace.states):
        if isinstance(cls, _Drawn):  # (slice 0 drew the batch's)
            values[id(outs[0])] = _Value(_function._make_tensor(cls.batch), True)
            trace.replayed[len(trace.replayed)] = (values[id(outs[0])].data,)
            continue
        operands = [_resolve(trace, values, t, v) for t, v in zip(inputs, versions)]
        mapped, params_batched = _map_params(trace, values, params)
        if not params_batched and not any(v.batched for v in operands):
            # unbatched operands only: every slice's op gives slice 0's result
            for o in outs:
                values[id(o)] = _Value(o, False)
            trace.replayed[len(trace.replayed)] = outs
            continue
        with set_grad_enabled(grad_mode):
            result = None
            if isinstance(cls, _ElementwiseCall):
                rule = _call_elementwise
            elif isinstance(cls, _AlongDimCall):
                rule = _call_along_dim
            elif isinstance(cls, _Written):
                rule = _written
            elif isinstance(cls, _UserCall):
                rule = None
            elif cls.__module__.startswith("chainrule."):
                rule = _RULES.get(cls.__name__, _RULES_BY_BASE.get(cls.__mro__[1].__name__))
            else:  # (a user Function: recorded only with its own vmap staticmethod)
                rule = _user_function
            if rule is not None and (not params_batched or rule in _BATCHED_PARAMS):
                result = rule(cls, operands, _unwrap(mapped) if rule not in _BATCHED_PARAMS else mapped, outs, size)
            if result is None:  # torch's fallback: the op once per slice, stacked
                per_slice = []
                if isinstance(cls, (_ElementwiseCall, _AlongDimCall, _Written)) or rule is _user_function:
                    raise _Stop
                # (a user Function with generate_vmap_rule: its forward and backward once per slice, as
                # the slices' own runs would call them; torch's runs them on the batch)
                run = cls.apply if isinstance(cls, _UserCall) else functools.partial(apply, cls)
                for i in range(size):
                    if state is not None:  # randomness="same": every slice draws what slice 0 drew
                        _random.default_generator.set_state(state)
                    args = [v.data.select(0, i) if v.batched else v.data for v in operands]
                    out = run(*args, **_unwrap(mapped, i))
                    per_slice.append(out if isinstance(out, tuple) else (out,))
                result = tuple(_stack_rows([row[k] for row in per_slice]) for k in range(len(outs)))
                trace.per_slice[len(trace.replayed)] = per_slice
        result = result if isinstance(result, tuple) else (result,)
        if len(result) != len(outs):
            raise _Stop
        for o, r in zip(outs, result):
            if tuple(r.shape) != (size, *o.shape) or r.dtype != o.dtype:
                raise _Stop  # a rule that does not give slice 0's shape: not replayed
            values[id(o)] = _Value(r, True)
        trace.replayed[len(trace.replayed)] = result
    found = []
    for out in outputs:
        value = _resolve(trace, values, out, _version(out))
        if value.batched and not agrees(value.data, out, 0):
            raise _Stop
        found.append(value)
    return found


def _elementwise_operands(t):
    """The operands of the recorded elementwise op (its batching rule broadcasts them) that made ``t``, or
    None (``_vmap_frames.physical_strides``' walk back to torch's layout)."""
    trace = active
    made = trace.made.get(id(t)) if trace is not None else None
    if made is None or made[0] is not t:
        return None
    cls, inputs = trace.ops[made[2]][:2]
    if isinstance(cls, _ElementwiseCall) or (isinstance(cls, type) and cls.__module__.startswith("chainrule.") and
                                             _RULES.get(cls.__name__) is _elementwise):
        return inputs
    return None


def unrecorded_batched(trace: Trace) -> bool:
    """Whether slice 0's run made a batched value that no recorded op made (an op that is no
    Function: argmax), nor a tensor over a recorded one's very array (grad's detached result): the
    record cannot tell whether its value steered the function's Python."""
    made, by_data, internal = trace.made, trace.by_data, trace.internal
    return any(made.get(key, (None,))[0] is not t and _data_key(t._data) not in by_data and internal.get(key) is not t
               for key, t in trace.frame._batched.items())


def _stack_rows(rows):
    from .autograd.batched_grad import StackRows

    return StackRows.apply(*rows)


def agrees(batched, single, index: int) -> bool:
    """Whether the replay's slice ``index`` is that slice's own result (``single``), up to the last
    bits a batched kernel changes: a check against a replay that computes something else."""
    a, b = batched._data, single._data
    if type(a) is not np.ndarray or type(b) is not np.ndarray:
        return True
    a = a[index]
    if a.dtype.kind not in "fc":
        return bool(np.array_equal(a, b))
    scale = float(np.max(np.abs(b), initial=0.0, where=np.isfinite(b)))
    return bool(np.allclose(a, b, rtol=1e-3, atol=1e-4 * scale + 1e-6, equal_nan=True))


# ---------------------------------------------------------------- batching rules
# rule(cls, operands, params, outs, size) -> the op's results with the batch dim in front, or None
# for the per-slice fallback. ``operands`` are _Values; ``params`` hold no batched tensor.

def _logical_rank(value: _Value) -> int:
    return value.data.dim() - 1 if value.batched else value.data.dim()


def _padded(value: _Value, rank: int):
    """The operand for a broadcasting op, its logical dims padded to ``rank`` behind the batch
    dim (an unbatched one as it is: broadcasting aligns it from the right)."""
    if not value.batched:
        return value.data
    missing = rank - _logical_rank(value)
    if missing <= 0:
        return value.data
    data = value.data
    if data._base.__class__ is _function._Promoted:  # (a promoted operand, no view of its own: its source's)
        from .ops.elementwise import _promoted as promoted

        source = _padded(_Value(data._base.source, True), rank)
        with set_grad_enabled(True):
            return promoted(source, data.dtype, True)
    return data.reshape((data.shape[0],) + (1,) * missing + tuple(data.shape[1:]))


# id(a replay value read back transposed) -> (it, the value before: its batch dim last): mv's of mapped
# vectors, whose batch dim torch's rule leaves behind until an op moves it to the front
_batch_dim_behind: dict[int, tuple] = {}


def _elementwise(cls, operands, params, outs, size):
    behind = _batch_dim_behind.get(id(operands[0].data)) if len(operands) == 1 else None
    if behind is not None and behind[0] is operands[0].data:
        # a unary op keeps the batch dim where it is in torch's rule (addmv's alpha·mv: MulBackward1 under
        # the PermuteBackward0 that finally moves it to the front); a binary op's moves it first
        inner = _function._apply_array_op(cls, behind[1], **params)
        out = inner.permute(1, 0)
        _batch_dim_behind[id(out)] = (out, inner)
        return out
    rank = max(_logical_rank(v) for v in operands)
    return _function._apply_array_op(cls, *[_padded(v, rank) for v in operands], **params)


def _call_elementwise(call, operands, params, outs, size):
    rank = max(_logical_rank(v) for v in operands)
    padded = iter([_padded(v, rank) for v in operands])
    return call.op(*[next(padded) if a is None else a for a in call.template])


def _call_along_dim(call, operands, params, outs, size):
    """sort, topk, kthvalue, median, mode, max/min by dim, argmax, argmin of each slice: the op on
    the batch along the dim behind the batch dim (a 0-d slice made a row of one; argmax's, argmin's
    and median's dim=None along each flattened slice), as torch's batching rules run them."""
    (x,) = operands
    arguments = dict(call.arguments)
    dim, rank, data = arguments.get("dim"), _logical_rank(x), x.data
    if dim is None and call.op.__name__ == "median":  # (median(): each flattened slice's)
        from .ops.reduce import median_of_rows

        return median_of_rows(data.reshape((size, -1)))
    if dim is None and call.op.__name__ == "nanmedian":
        from .ops.statistics import nanmedian_of_rows

        return nanmedian_of_rows(data.reshape((size, -1)))
    if dim is None:
        data = data.reshape((size, -1))
        arguments.update(dim=1, keepdim=False)
    elif rank == 0:
        data = data.reshape((size, 1))
        arguments["dim"] = 1
    else:
        arguments["dim"] = dim % rank + 1
    out = call.op(data, **arguments)
    # (a result of the batched shape as it is: its node keeps the indices the backward reads)
    found = tuple(r if tuple(r.shape) == (size, *o.shape) else r.reshape((size, *o.shape))
                  for r, o in zip(out if isinstance(out, tuple) else (out,), outs))
    return found if isinstance(out, tuple) else found[0]


def _all_extreme(cls, operands, params, outs, size):
    """max() / min() of each slice: max / min along each flattened slice, as torch's batching rule runs
    them (max.dim's node, MaxBackward0: differentiated outside the vmap the gradient goes to the
    returned index alone, where max()'s own splits it among ties)."""
    from .ops.reduce import max as largest
    from .ops.reduce import min as smallest

    (x,) = operands
    if not x.batched or params.get("keepdim") or params.get("dims") != tuple(range(_logical_rank(x))):
        return None
    return (largest if params.get("largest") else smallest)(x.data.reshape((size, -1)), dim=1).values


def _masked_filled(cls, operands, params, outs, size):
    """masked_fill of a batched input by a number at a mask (batched or not): the mask broadcast
    behind the batch dim, as the input's dims are."""
    (x,) = operands
    mask, value = params.get("mask"), params.get("value")
    if not x.batched or not isinstance(mask, _Value) or (isinstance(value, _Value) and value.batched):
        return None
    rank = max(_logical_rank(x), _logical_rank(mask))
    return _function._apply_array_op(cls, _padded(x, rank), mask=_padded(mask, rank),
                                     value=value.data if isinstance(value, _Value) else value)


def _written(cls, operands, params, outs, size):
    """The tensor an in-place op wrote: its result's batched value."""
    return operands[0].data


def _along_index(cls, operands, params, outs, size):
    """Gather's and its adjoint's (ScatterAlong's) op at each slice's indices (arrays its node kept,
    batched): along the dim behind the batch dim, the batch dim in front of the indices too."""
    (x,) = operands
    index, dim = params.get("index"), params.get("dim")
    rank = _logical_rank(x)
    if not isinstance(index, _Value) or type(index.data) is not np.ndarray or type(dim) is not int or not rank:
        return None
    index = index.data if index.batched else np.broadcast_to(index.data, (size, *index.data.shape))
    new = dict(params, index=index, dim=dim % rank + 1)
    if "shape" in params:
        new["shape"] = (size, *params["shape"])
    return _function._apply_array_op(cls, _whole(x, size), **new)


def _where(cls, operands, params, outs, size):
    """where(condition, a, b), its condition a parameter: all three broadcast, batch dims in front."""
    condition = params["condition"]
    if not isinstance(condition, _Value):
        return None
    rank = max(_logical_rank(v) for v in (*operands, condition))
    return _function._apply_array_op(cls, *[_padded(v, rank) for v in operands],
                                     **dict(params, condition=_padded(condition, rank)))


def _dim_shifted(cls, operands, params, outs, size):
    """An op along ``dim`` of its operands (softmax, log_softmax, their backward, whose kept
    softmax may come batched too), an unbatched one expanded along the batch."""
    rank = _logical_rank(operands[0])
    kept = params.get("softmax")
    if isinstance(kept, _Value):
        data = kept.data if kept.batched else np.broadcast_to(kept.data, (size, *kept.data.shape))
        if data.shape[1:] != operands[0].data.shape[-rank:] if rank else data.shape != (size,):
            return None
        params = dict(params, softmax=data)
    elif kept is not None:
        return None
    dim = params.get("dim")
    if not isinstance(dim, int) or not all(_logical_rank(v) == rank for v in operands):
        return None
    return _function._apply_array_op(cls, *[_whole(v, size) for v in operands],
                                     **{**params, "dim": dim % max(rank, 1) + 1})


def _reshaped(cls, operands, params, outs, size):
    """reshape, view, unsqueeze, squeeze: the batch dim in front of slice 0's result shape."""
    (x,) = operands
    new = dict(params, shape=(size, *outs[0].shape))
    if "dim" in params:
        if not isinstance(params["dim"], int):
            return None
        new["dim"] = params["dim"] % max(outs[0].dim(), 1) + 1
    if "dims" in params:  # (squeeze's: dims of its input)
        dims, rank = params["dims"], _logical_rank(x)
        if not isinstance(dims, tuple) or not all(isinstance(d, int) for d in dims):
            return None
        new["dims"] = tuple(d % max(rank, 1) + 1 for d in dims)
    out = _function._apply_array_op(cls, x.data, **new)
    made = outs[0].grad_fn
    if made is not None and made.name() == "SqueezeBackward4" and cls.__name__ == "UnsafeView":
        # a vector's product squeezed in place (matmul's squeeze_(0)): torch's batched squeeze_ of dim 1
        out = _function.name_node(out, "SqueezeBackward5", saved=_SQUEEZED_DIM_1)
    return out


_SQUEEZED_DIM_1 = {"_saved_dim": (1,), "_saved_self_sym_sizes": _function.input_sizes(0)}


def _plain_key(key) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, slice, type(None), type(Ellipsis))) and not isinstance(k, bool) for k in items)


def _batched_key(key) -> tuple:
    return (slice(None),) + (key if isinstance(key, tuple) else (key,))


def _indexed(cls, operands, params, outs, size):
    """x[key] for a key of ints, slices, None and Ellipsis: the batch dim kept in front."""
    (x,) = operands
    key = params.get("key")
    if params.get("mode") != "assign" or not _plain_key(key):
        return None
    return _function._apply_array_op(cls, x.data, **dict(params, key=_batched_key(key)))


def _advanced_key(key, shape: tuple, size: int):
    """x[key] of each slice (x's slice ``shape``) for a key with index arrays (_Values, some batched) as
    one read of the batch: (the batch's key, an index of the batch in front of the others, and where
    the batch's result puts the indexed dims: ``(at, count)`` to move dims 1..count to behind ``at``
    other dims, or None), or None where the key is no such (a mask, a nested item)."""
    items = key if type(key) is tuple else (key,)
    arrays = [k for k in items if isinstance(k, _Value)]
    if not arrays or any(type(k.data) is not np.ndarray or k.data.dtype.kind not in "iu" for k in arrays) or not all(
            isinstance(k, (_Value, int, slice, type(None), type(Ellipsis))) and not isinstance(k, bool) for k in items):
        return None
    rank = max(k.data.ndim - k.batched for k in arrays)
    found = [np.arange(size).reshape((size,) + (1,) * rank)]
    for k in items:
        if isinstance(k, _Value) and k.batched:
            data = k.data
            found.append(data.reshape((size,) + (1,) * (rank + 1 - data.ndim) + data.shape[1:]))
        else:
            found.append(k.data if isinstance(k, _Value) else k)
    indexed = [position for position, k in enumerate(items) if isinstance(k, (_Value, int))]
    if indexed[0] == 0 or indexed != list(range(indexed[0], indexed[-1] + 1)):
        return tuple(found), None  # (NumPy puts the indexed dims in front for both reads)
    consumed = sum(1 for k in items if k is not None and k is not Ellipsis)
    before = sum(len(shape) - consumed if k is Ellipsis else 1 for k in items[:indexed[0]])
    return tuple(found), (before, rank)


def _moved_back(value, moved, size: int):
    """The batch's read with the indexed dims where each slice's read has them (``_advanced_key``)."""
    if moved is None:
        return value
    before, rank = moved
    order = [0, *range(1 + rank, 1 + rank + before), *range(1, 1 + rank), *range(1 + rank + before, value.dim())]
    return value.permute(*order) if order != sorted(order) else value


def _advanced_indexed(cls, operands, params, outs, size):
    """x[key] of each slice with index arrays in the key (the batch's or one for all): one read of the
    batch, an index of the batch in front of the key's arrays, as torch's batching rule of index."""
    (x,) = operands
    found = _advanced_key(params.get("key"), _slice_shape(x), size)
    if found is None:
        return _indexed(cls, operands, _unwrap(params), outs, size) if not _batched_in(params) else None
    key, moved = found
    from .ops.index import _scatter_mode

    out = _function._apply_array_op(cls, _whole(x, size), key=key, mode=_scatter_mode(key, False))
    return _moved_back(out, moved, size)


def _advanced_scattered(cls, operands, params, outs, size):
    """The adjoint of x[key] with index arrays in the key: each slice's gradient added at its key in
    zeros of the batch's shape, one scatter (the batch's read's layout first, ``_advanced_key``)."""
    (grad,) = operands
    shape = params.get("shape")
    found = _advanced_key(params.get("key"), tuple(shape), size) if isinstance(shape, tuple) else None
    if found is None:
        return _scattered(cls, operands, _unwrap(params), outs, size) if not _batched_in(params) else None
    key, moved = found
    from .ops.index import _scatter_mode

    g = _whole(grad, size)
    if moved is not None:  # (the slices' layout back to the batch's read's: the inverse permutation)
        before, rank = moved
        order = [0, *range(1 + rank, 1 + rank + before), *range(1, 1 + rank), *range(1 + rank + before, g.dim())]
        g = g.permute(*np.argsort(order).tolist())
    return _function._apply_array_op(cls, g, key=key, shape=(size, *shape), mode=_scatter_mode(key, False))


def _slice_shape(value: _Value) -> tuple:
    return tuple(value.data.shape[1:]) if value.batched else tuple(value.data.shape)


def _batched_in(params) -> bool:
    items = params.get("key")
    return any(isinstance(k, _Value) and k.batched for k in (items if type(items) is tuple else (items,)))


def _scattered(cls, operands, params, outs, size):
    """The adjoint of x[key]: the gradient put at key of zeros of the batched shape."""
    (grad,) = operands
    key = params.get("key")
    if params.get("mode") != "assign" or not _plain_key(key) or _logical_rank(grad) != grad.data.dim() - 1:
        return None
    return _function._apply_array_op(cls, grad.data, **dict(params, key=_batched_key(key),
                                                            shape=(size, *params["shape"])))


def _rows_matmul(cls, operands, params, outs, size, rows_at: int, weights_from: int):
    """An op whose operand ``rows_at`` is matrix rows (the one batched operand) and whose others
    (from ``weights_from``) unbatched: the batch folded into the rows, one GEMM as torch's."""
    rows = operands[rows_at]
    if not rows.batched or any(v.batched for k, v in enumerate(operands) if k != rows_at) or \
            _logical_rank(rows) != 2:
        return None
    data = rows.data
    folded = data.reshape((data.shape[0] * data.shape[1], data.shape[2]))
    args = [v.data for v in operands]
    args[rows_at] = folded
    out = _function._apply_array_op(cls, *args, **params)
    if isinstance(out, tuple):
        if len(out) != 1:
            return None
        out = out[0]
    if cls.__name__ == "Mm":  # torch's rule views its mm's rows back without a view (UnsafeViewBackward0)
        from .ops.shape import UnsafeView

        return UnsafeView.apply(out, shape=(size, *outs[0].shape))
    return out.reshape((size, *outs[0].shape))


def _addmm(cls, operands, params, outs, size):
    """bias + x Wᵀ as torch's batching rule of addmm records it. With x batched alone: bias * 1
    (MulBackward1; a batched bias then viewed to meet the rows) added to the one GEMM of the batch's
    rows viewed back (UnsafeViewBackward0 over MmBackward0); with the bias batched alone, to the
    one unbatched product (MmBackward0). With the weight batched (an ensemble's
    stacked Linears, torch.func.stack_module_state): ``bias * 1`` viewed with a rows dim, plus one
    batched matmul."""
    from .ops.elementwise import MulNumber
    from .ops.linalg import matmul
    from .ops.linear import Mm

    bias, rows, weight = operands
    if params:
        return None
    bias_rank = _logical_rank(bias)
    if weight.batched:
        if _logical_rank(rows) != 2 or _logical_rank(weight) != 2 or bias_rank > 2:
            return None
        scaled = MulNumber.apply(bias.data, number=1)
        if bias.batched:
            scaled = scaled.view(size, *(1,) * (2 - bias_rank), *scaled.shape[1:])
        return scaled + matmul(rows.data, weight.data)
    if bias_rank > 1 or _logical_rank(rows) != 2:
        return None
    if rows.batched:
        product = _rows_matmul(Mm, [rows, weight], {}, outs, size, 0, 1)
    else:  # (the bias batched alone: the one unbatched product, every slice's)
        product = Mm.apply(rows.data, weight.data)
    if product is None:
        return None
    scaled = MulNumber.apply(bias.data, number=1)
    if bias.batched:
        scaled = scaled.view(size, *(1,) * (2 - bias_rank), *scaled.shape[1:])
    return scaled + product


def _weight_transposed(cls, operands, params, outs, size):
    """A linear's weight.t() of each slice of a stacked weight: the two dims behind the batch dim
    swapped (torch's TransposeBackward0)."""
    (w,) = operands
    if _logical_rank(w) != 2:
        return None
    return w.data.transpose(1, 2)


def _mm(cls, operands, params, outs, size):
    if operands[1].batched:
        return _matmul(cls, operands, params, outs, size)
    return _rows_matmul(cls, operands, params, outs, size, 0, 1)


def _linear_backward(cls, operands, params, outs, size):
    """A linear's gradients (G W, Gᵀ x, Σ G over rows) for batched rows G (and x, or W): x's is one
    GEMM of all the batch's rows (a batched product where W is stacked); W's and the bias's are each
    slice's own (a batched product, a sum over each slice's rows), as torch's batching rules of mm
    and sum make them."""
    from .ops.linalg import matmul

    needs = tuple(params.get("needs", ()))
    grad = operands[0]
    if len(needs) != 3 or not grad.batched or _logical_rank(grad) != 2:
        return None
    matrices = iter(operands[1:])
    x = next(matrices) if needs[1] else None
    w = next(matrices) if needs[0] else None
    if (w is not None and _logical_rank(w) != 2) or (x is not None and _logical_rank(x) != 2):
        return None
    g = grad.data
    found = []
    if needs[0]:
        if w.batched:  # (stacked weights: each slice's G W, one batched product)
            found.append(matmul(g, w.data))
        else:
            found.append(_rows_matmul(cls, [grad, w], {"needs": (True, False, False)}, outs[:1], size, 0, 1))
            if found[0] is None:
                return None
    if needs[1]:
        found.append(matmul(g.transpose(1, 2), x.data))
    if needs[2]:
        found.append(g.sum(1))
    return tuple(found)


def _matmul(cls, operands, params, outs, size):
    """a @ b with either or both batched: a 1-d operand made a matrix (a row for a, a column for
    b), the logical ranks padded alike, one batched product, the added dims dropped. One batched
    vector times an unbatched matrix is the one GEMM of its rows, as torch's rule runs it."""
    from .ops.linalg import matmul

    a, b = operands
    if not a.batched and not b.batched:
        return None
    a_rank, b_rank = _logical_rank(a), _logical_rank(b)
    if params or a_rank == 0 or b_rank == 0:
        return None
    if a.batched and not b.batched and b_rank <= 2:
        out = matmul(a.data, b.data)
    elif b.batched and not a.batched and a_rank == 2 and b_rank == 1:
        # a matrix times mapped vectors: one mm against their transpose, read back transposed (torch's
        # rule: PermuteBackward0 over MmBackward0, the result in the mm's column-major layout)
        product = a.data.mm(b.data.permute(1, 0))
        out = product.permute(1, 0)
        _batch_dim_behind[id(out)] = (out, product)
    else:
        x = a.data.unsqueeze(-2) if a_rank == 1 else a.data
        y = b.data.unsqueeze(-1) if b_rank == 1 else b.data
        rank = max(max(a_rank, 2), max(b_rank, 2))
        x = _padded(_Value(x, a.batched), rank) if a.batched else x
        y = _padded(_Value(y, b.batched), rank) if b.batched else y
        out = matmul(x, y)
        if b_rank == 1:
            out = out.squeeze(-1)
        if a_rank == 1:
            out = out.squeeze(-1 if b_rank == 1 else -2)
    shape = (size, *outs[0].shape)
    return out if tuple(out.shape) == shape else out.reshape(shape)  # (no view over torch's result node)


def _dot(cls, operands, params, outs, size):
    """dot of two vectors, one or both mapped, as torch's batching rules record it: mapped rows against a
    plain vector are mv(rows, vector.t()) (MvBackward0); a plain vector first, its row times the rows'
    transpose squeezed in place (SqueezeBackward4 over MmBackward0); both mapped, matmul's bmm of a row
    and a column, squeezed twice."""
    from .ops.linalg import matmul

    a, b = operands
    if params or _logical_rank(a) != 1 or _logical_rank(b) != 1:
        return None
    if not b.batched:
        return a.data.mv(b.data.t())
    if not a.batched:
        return a.data.unsqueeze(0).mm(b.data.t()).squeeze_(0)
    return matmul(a.data.unsqueeze(1), b.data.unsqueeze(2)).squeeze(-1).squeeze(-1)


def _stacked(cls, operands, params, outs, size):
    """Rows stacked along a new first dim: along the dim behind the batch."""
    from .ops.shape import stack

    return stack([v.data if v.batched else v.data.expand(size, *v.data.shape) for v in operands], dim=1)


def _permuted(cls, operands, params, outs, size):
    """permute(dims) behind the batch dim."""
    (x,) = operands
    dims = params.get("dims")
    if not isinstance(dims, (tuple, list)) or not all(isinstance(d, int) for d in dims):
        return None
    return _function._apply_array_op(cls, x.data, dims=(0, *(d % max(len(dims), 1) + 1 for d in dims)))


def _reduced(cls, operands, params, outs, size):
    """sum / mean (nansum, logsumexp, amax, prod along a dim) over ``dims`` (each slice's; all of them for
    dim=None): over the dims behind the batch."""
    (x,) = operands
    dims = params.get("dims")
    if not isinstance(dims, tuple) or not all(isinstance(d, int) for d in dims):
        return None
    rank = _logical_rank(x)
    if not rank:
        # torch's rule for a 0-d slice: the batch made a column (UnsqueezeBackward0), reduced along it
        # by the dim overload (SumBackward1), a kept dim squeezed away (SqueezeBackward1)
        from .ops.reduce import MeanDim, SumDim

        cls = {"Sum": SumDim, "Mean": MeanDim}.get(cls.__name__, cls)
        out = _function._apply_array_op(cls, x.data.unsqueeze(-1), **dict(params, dims=(1,)))
        return out.squeeze(-1) if params.get("keepdim") else out
    if cls.__name__ in ("Sum", "Mean"):
        # a slice's whole sum or mean is the batch's over its dims: torch's dim overload (SumBackward1)
        from .ops.reduce import MeanDim, SumDim

        cls = SumDim if cls.__name__ == "Sum" else MeanDim
    return _function._apply_array_op(cls, x.data,
                                     **dict(params, dims=tuple(d % rank + 1 for d in dims) if rank else ()))


def _multiplied(cls, operands, params, outs, size):
    """prod of each whole slice as torch's batching rule runs it: the slice flattened (a view of the
    batch's rows, ViewBackward0, where a slice is no row already) and multiplied along its row (the dim
    overload, ProdBackward1). Over a dim, as the other reductions (``_reduced``)."""
    from .ops.reduce import ProdDim

    if cls.__name__ != "Prod":
        return _reduced(cls, operands, params, outs, size)
    (x,) = operands
    data = x.data if _logical_rank(x) == 1 else x.data.reshape((size, -1))
    return _function._apply_array_op(ProdDim, data, dims=(1,), keepdim=False, dtype=params.get("dtype"))


def _expanded(cls, operands, params, outs, size):
    """expand to slice 0's result shape: behind the batch dim, the operand's dims padded in front. As
    torch's rule, the batch is viewed with those dims (ViewBackward0, none added too) before expand."""
    (x,) = operands
    data = x.data
    if data._base.__class__ is _function._Promoted:  # (a promoted operand has no view of its own)
        return _function._apply_array_op(cls, _padded(x, outs[0].dim()), **dict(params, shape=(size, *outs[0].shape)))
    missing = outs[0].dim() - _logical_rank(x)
    viewed = data.view(data.shape[0], *(1,) * missing, *data.shape[1:])
    return _function._apply_array_op(cls, viewed, **dict(params, shape=(size, *outs[0].shape)))


def _summed_to(cls, operands, params, outs, size):
    """sum_to_size (the engine's reduction of a broadcast gradient) of each slice: to the target
    shape padded with 1s behind the batch dim, so that the batch dim is kept."""
    (x,) = operands
    shape = params.get("shape")
    lead = _logical_rank(x) - len(shape)
    if lead < 0:
        return None
    out = _function._apply_array_op(cls, x.data, **dict(params, shape=(size, *(1,) * lead, *shape), keep_leading=True))
    return out.reshape((size, *outs[0].shape))


def _elementwise_kept(cls, operands, params, outs, size):
    """An elementwise op with an array its forward's node kept (gelu's backward, its Φ(x)): the
    operands and the array all with the batch dim in front, of slice 0's result shape behind it."""
    new = {}
    for name, value in params.items():
        if isinstance(value, _Value):
            value = value.data if value.batched else np.broadcast_to(value.data, (size, *value.data.shape))
            if value.shape[1:] != tuple(outs[0].shape):
                return None
        new[name] = value
    args = [_whole(v, size) for v in operands]
    if any(tuple(a.shape[1:]) != tuple(outs[0].shape) for a in args):
        return None
    return _function._apply_array_op(cls, *args, **new)


def _embedding(cls, operands, params, outs, size):
    """Rows of an unbatched weight at batched indices: one lookup, the batch dims in front; rows of
    a batched weight: one lookup in the slices' tables stacked."""
    (weight,) = operands
    indices = params.get("indices")
    if not isinstance(indices, _Value) or type(indices.data) is not np.ndarray:
        return None
    if not weight.batched:
        if not indices.batched:
            return None
        return _function._apply_array_op(cls, weight.data, **dict(params, indices=indices.data))
    # each slice's own weight: the slices' rows one table of B·V rows, each slice's indices offset by b·V
    if params.get("padding_idx") is not None or params.get("sparse") or _logical_rank(weight) != 2:
        return None
    rows = weight.data.shape[1]
    index = indices.data if indices.batched else np.broadcast_to(indices.data, (size, *indices.data.shape))
    index = np.where(index < 0, index + rows, index)
    offset = index + (np.arange(size) * rows).reshape((size,) + (1,) * (index.ndim - 1))
    out = _function._apply_array_op(cls, weight.data.reshape((-1, weight.data.shape[2])), **dict(params, indices=offset))
    return out.reshape((size, *outs[0].shape))


def _embedding_backward(cls, operands, params, outs, size):
    """Each slice's weight gradient (its rows scatter-added at its indices): the slices' indices
    offset by ``b * num_rows``, one scatter-add into (B * num_rows) rows."""
    (grad,) = operands
    indices, rows = params.get("indices"), params.get("num_rows")
    if not isinstance(indices, _Value) or params.get("padding_idx") is not None or not isinstance(rows, int):
        return None
    index = indices.data if indices.batched else np.broadcast_to(indices.data, (size, *indices.data.shape))
    offset = index + (np.arange(size) * rows).reshape((size,) + (1,) * (index.ndim - 1))
    out = _function._apply_array_op(cls, _whole(grad, size), indices=offset, num_rows=size * rows, padding_idx=None)
    return out.reshape((size, *outs[0].shape))


def _whole(value: _Value, size: int):
    """An operand with the batch dim in front, an unbatched one expanded along it."""
    return value.data if value.batched else value.data.expand(size, *value.data.shape)


def _per_slice_reduced(loss, reduction: str, size: int, denominator=None):
    """An unreduced loss (batch dim in front) reduced over each slice's elements, as torch's
    batching rules of the losses reduce it (``mean(-1)`` / ``sum(-1)`` of the flattened slices)."""
    if reduction == "none":
        return loss
    flat = loss.reshape((size, -1))
    if reduction == "sum":
        return flat.sum(1)
    return flat.mean(1) if denominator is None else flat.sum(1) / denominator


def _pointwise_loss(cls, operands, params, outs, size):
    """mse_loss, smooth_l1_loss, huber_loss, soft_margin_loss: the unreduced loss of the batch, reduced per slice."""
    reduction = params.get("reduction")
    if reduction not in ("none", "mean", "sum"):
        return None
    x, t = (_whole(v, size) for v in operands)
    return _per_slice_reduced(_function._apply_array_op(cls, x, t, **{**params, "reduction": "none"}), reduction, size)


def _pointwise_loss_backward(cls, operands, params, outs, size):
    """mse_loss's, smooth_l1_loss's, huber_loss's and soft_margin_loss's gradient: elementwise on the batch, a reduced loss's one number a slice broadcast
    over that slice, and 'mean' over each slice's element count."""
    reduction = params.get("reduction")
    if reduction not in ("none", "mean", "sum"):
        return None
    grad, x, t = (_whole(v, size) for v in operands)
    if reduction != "none":
        grad = grad.reshape((size,) + (1,) * (x.dim() - 1))
    numel = params.get("numel")
    numel = x.numel() // size if numel is None else numel
    return _function._apply_array_op(cls, grad, x, t, **{**params, "numel": numel})


def _nll_rows(size: int, x: _Value, target: _Value):
    """nll_loss's input and target with the batch folded into the rows: (B·N, C, d...) and
    (B·N, d...), a (C,) slice's batch (B, C) and (B,); the class dim is 1 either way."""
    data, targets = _whole(x, size), _whole(target, size)
    if _logical_rank(x) >= 2:
        data = data.reshape((-1, *data.shape[2:]))
        targets = targets.reshape((-1, *targets.shape[2:]))
    return data, targets


def _nll_counted(size: int, targets, weight, ignore_index: int, dtype):
    """Each target's weight in the mean (its class's weight, 1 without weights; 0 when ignored),
    batch dim in front (B, N·d...), as an array."""
    t = targets._data.reshape((size, -1))
    valid = t != ignore_index
    if weight is None:
        return valid.astype(dtype)
    w = weight._data
    return np.where(valid, w[np.where(valid, t, 0)], 0).astype(dtype, copy=False)


def _nll_loss(cls, operands, params, outs, size):
    """nll_loss of log-probabilities (cross_entropy's after its log_softmax): the unreduced losses
    of the batch's rows folded together, reduced per slice ('mean' by each slice's summed target
    weights, as torch's decomposition under vmap divides)."""
    (x,) = operands
    target, weight = params.get("target"), params.get("weight")
    reduction, ignore_index = params.get("reduction"), params.get("ignore_index")
    if params.get("log_softmax") or not isinstance(target, _Value) or reduction not in ("none", "mean", "sum") or \
            (weight is not None and (not isinstance(weight, _Value) or weight.batched)) or \
            type(x.data._data) is not np.ndarray:
        return None
    data, targets = _nll_rows(size, x, target)
    weight = None if weight is None else weight.data
    loss = _function._apply_array_op(cls, data, target=targets, weight=weight, ignore_index=ignore_index,
                                     reduction="none", log_softmax=False)
    denominator = None
    if reduction == "mean":
        counted = _nll_counted(size, targets, weight, ignore_index, data._data.dtype)
        denominator = _function._make_tensor(counted.sum(1))
    return _per_slice_reduced(loss.reshape((size, -1)) if reduction != "none" else loss.reshape(
        (size, *outs[0].shape)), reduction, size, denominator)


def _nll_loss_backward(cls, operands, params, outs, size):
    """nll_loss's input gradient for a batch its forward's rule ran: ``-g A`` with ``A`` each row's
    target class weight at its class (divided by the slice's summed weights for 'mean'), +0.0 elsewhere."""
    node = params.get("loss")
    if not isinstance(node, _BatchedNode) or len(operands) != 2:
        return None
    grad, x = operands
    (forward_x,) = node.operands
    target, weight = node.params["target"], node.params["weight"]
    reduction, ignore_index = node.params["reduction"], node.params["ignore_index"]
    data, targets = _nll_rows(size, forward_x, target)
    dtype = data._data.dtype
    weight = None if weight is None else weight.data
    counted = _nll_counted(size, targets, weight, ignore_index, dtype)  # (B, N·d...)
    t = targets._data
    negated = np.zeros(data.shape, dtype)
    np.put_along_axis(negated, np.expand_dims(np.where(t != ignore_index, t, 0), 1),
                      -np.expand_dims(counted.reshape(t.shape), 1), axis=1)
    g = _whole(grad, size)
    if reduction == "none":
        per_target = g.reshape(t.shape)
    else:
        if reduction == "mean":  # (a slice with every target ignored gets no gradient, not 0/0's)
            totals = counted.sum(1)
            g = g / _function._make_tensor(np.where(totals == 0, 1, totals).astype(dtype, copy=False))
        per_target = g.reshape((size, 1)).expand(size, counted.shape[1]).reshape(t.shape)
    found = per_target.unsqueeze(1) * _function._make_tensor(negated) + 0.0  # (-0.0 to torch's +0.0)
    return found.reshape((size, *outs[0].shape))


def _folded(value: _Value, size: int, spatial: int):
    """A conv's or pool's operand, (B, N, C, *S) with the batch folded into N: (B·N, C, *S); a slice
    without N, (C, *S), makes (B, C, *S) a batch of B."""
    data = _whole(value, size)
    if data.dim() - 1 == spatial + 2:
        return data.reshape((-1, *data.shape[2:]))
    return data if data.dim() - 1 == spatial + 1 else None


def _convolution(cls, operands, params, outs, size):
    """conv (or its input gradient, conv_transpose) of a batched input by an unbatched filter: the
    batch folded into the input's N, one convolution, as torch's batching rule runs it."""
    x, w, *bias = operands
    if not x.batched or w.batched or any(b.batched for b in bias):
        return None
    folded = _folded(x, size, len(params["geo"].kernel))
    if folded is None:
        return None
    out = _function._apply_array_op(cls, folded, w.data, *(b.data for b in bias), **params)
    return out.reshape((size, *outs[0].shape))


def _conv_weight(cls, operands, params, outs, size):
    """The filter gradient of each slice (its input ⋆ its output gradient): the slices side by side
    as groups of one grouped filter gradient, as torch's batching rule of convolution_backward."""
    from .ops.conv import _Geometry

    geo, w_shape = params["geo"], tuple(params["w_shape"])
    spatial = len(geo.kernel)
    parts = []
    for value in operands:
        data = _whole(value, size)
        if data.dim() - 1 == spatial + 1:  # (C, *S) slices: N of 1
            data = data.unsqueeze(1)
        elif data.dim() - 1 != spatial + 2:
            return None
        # (B, N, C, *S) -> (N, B·C, *S): slice b's channels are group b's
        parts.append(data.transpose(0, 1).reshape((data.shape[1], -1, *data.shape[3:])))
    grouped = _Geometry(geo.kernel, geo.stride, geo.pad_lo, geo.pad_hi, geo.dilation, geo.groups * size, geo.in_shape,
                        geo.out_shape)
    out = _function._apply_array_op(cls, *parts, geo=grouped, w_shape=(size * w_shape[0], *w_shape[1:]))
    return out.reshape((size, *w_shape))


def _pooled(cls, operands, params, outs, size):
    """max pooling (and its backward, with the input and maxima its node kept, batched): over the
    last dims, whatever the dims before them, so the batch dim rides along in front."""
    if not all(v.batched for v in operands):
        return None
    new = {}
    for name, value in params.items():
        if isinstance(value, _Value):
            if not value.batched:
                return None
            value = value.data
        new[name] = value
    return _function._apply_array_op(cls, *(v.data for v in operands), **new)


def _transposed(cls, operands, params, outs, size):
    """transpose(dim0, dim1) of each slice: the dims behind the batch dim swapped."""
    (x,) = operands
    rank, dim0, dim1 = _logical_rank(x), params.get("dim0"), params.get("dim1")
    if not rank or type(dim0) is not int or type(dim1) is not int:
        return None
    return _function._apply_array_op(cls, x.data, dim0=dim0 % rank + 1, dim1=dim1 % rank + 1)


def _cloned(cls, operands, params, outs, size):
    """clone of each slice (a channels-last one per slice: its layout is the slice's 4-d or 5-d)."""
    if params.get("channels_last"):
        return None
    return _function._apply_array_op(cls, operands[0].data, **params)


def _split(cls, operands, params, outs, size):
    """split / chunk of each slice along its (wrapped) dim: along the dim behind the batch dim."""
    dim = params.get("dim")
    if type(dim) is not int or dim < 0:
        return None
    return _function._apply_array_op(cls, operands[0].data, **dict(params, dim=dim + 1))


def _concatenated(cls, operands, params, outs, size):
    """cat of each slice's tensors along their (wrapped) dim: along the dim behind the batch dim, an
    unbatched tensor expanded along the batch."""
    dim = params.get("dim")
    if type(dim) is not int or dim < 0 or params.get("skipped") or any(_logical_rank(v) <= dim for v in operands):
        return None
    return _function._apply_array_op(cls, *(_whole(v, size) for v in operands), **dict(params, dim=dim + 1))


def _scale_shifted(cls, operands, params, outs, size):
    """x · scale + shift (eval-mode batch norm's), broadcast as an elementwise op; an unbatched x
    expanded along the batch, since the op writes a result of x's shape where it can."""
    rank = max(_logical_rank(v) for v in operands)
    x, scale, shift = (_padded(v, rank) for v in operands)
    if not operands[0].batched:
        x = x.expand(size, *(1,) * (rank - x.dim()), *x.shape)
    return _function._apply_array_op(cls, x, scale, shift)


def _gradient_against(cls, operands, params, outs, size):
    """A norm's bias passed on with its gradient recorded against the op's input (kept): the bias
    expanded along the batch, the kept tensors the batch's."""
    kept = params.get("kept")
    if not isinstance(kept, tuple) or not all(isinstance(v, _Value) for v in kept):
        return None
    return _function._apply_array_op(cls, _whole(operands[0], size), kept=tuple(v.data for v in kept),
                                     node=params.get("node"))


def _layer_norm(cls, operands, params, outs, size):
    """Layer norm with its affine map of a batched input by an unbatched weight and bias: over the
    same trailing dims, the batch more rows (its node keeps the batch's x̂ and 1/σ, ``_ROWS_FOLDED``)."""
    x, w, b = operands
    if not x.batched or w.batched or b.batched:
        return None
    return _function._apply_array_op(cls, x.data, w.data, b.data,
                                     **dict(params, dims=tuple(d + 1 for d in params["dims"])))


def _layer_norm_backward(cls, operands, params, outs, size):
    """Layer norm's (dx, dw, db) of each slice, with an unbatched weight: dx of all the batch's rows
    in one op (the rows' x̂ and 1/σ, batched parameters); dw = Σ g·x̂ and db = Σ g over each slice's
    rows, as torch's batching rule keeps the weight's and bias's gradients per slice. x̂ is a kept
    array, no function of x here: where the gradients are themselves differentiated with respect to
    x (grad mode on, x requiring a gradient), the op runs per slice, its node differentiating them."""
    grad, x, w = operands
    needs, xhat, invstd = params.get("needs"), params.get("xhat"), params.get("invstd")
    if w.batched or params.get("mean") is not None or not isinstance(xhat, _Value) or \
            not isinstance(invstd, _Value) or ((needs[1] or needs[2]) and is_grad_enabled() and x.data.requires_grad):
        return None
    d = w.data.numel()
    rows = [v.data if v.batched else np.broadcast_to(v.data, (size, *v.data.shape)) for v in (xhat, invstd)]
    if rows[0].shape[-1] != d or rows[0].shape[:-1] != rows[1].shape[:-1]:
        return None
    xhat, invstd = (np.ascontiguousarray(r).reshape((-1, r.shape[-1])) for r in rows)
    g = _whole(grad, size)
    found = []
    if needs[0]:
        found.append(_function._apply_array_op(cls, g, _whole(x, size), w.data, xhat=xhat, invstd=invstd,
                                               dims=tuple(k + 1 for k in params["dims"]), eps=params["eps"],
                                               needs=(True, False, False))[0])
    per_slice = g.reshape((size, -1, d))
    if needs[1]:
        found.append((per_slice * _function._make_tensor(xhat.reshape((size, -1, d)))).sum(1).reshape(
            (size, *w.data.shape)))
    if needs[2]:
        found.append(per_slice.sum(1).reshape((size, *w.data.shape)))
    return tuple(found)


def _along_dim(cls, operands, params, outs, size):
    """An op along one ``dim`` of its one operand (cumsum, its adjoint, logcumsumexp, unfold): along the
    dim behind the batch dim, as torch's batching rules run them."""
    (x,) = operands
    dim, rank = params.get("dim"), _logical_rank(x)
    if type(dim) is not int or not rank or not x.batched:
        return None
    return _function._apply_array_op(cls, x.data, **dict(params, dim=dim % rank + 1))


def _along_dims(cls, operands, params, outs, size):
    """An op along ``dims`` of its one operand (flip, the FFTs): along those dims behind the batch dim."""
    (x,) = operands
    dims, rank = params.get("dims"), _logical_rank(x)
    if not isinstance(dims, tuple) or not all(type(d) is int for d in dims) or (dims and not rank):
        return None
    return _function._apply_array_op(cls, x.data, **dict(params, dims=tuple(d % rank + 1 for d in dims)))


def _rolled(cls, operands, params, outs, size):
    """roll of each slice: along its dims behind the batch dim; without dims (the flattened slice), each
    slice's flattened row rolled, as torch's batching rule rolls them."""
    (x,) = operands
    dims, shifts, rank = params.get("dims"), params.get("shifts"), _logical_rank(x)
    if dims is None and type(shifts) is int and x.batched:
        rows = x.data.reshape(size, -1)
        return _function._apply_array_op(cls, rows, shifts=shifts, dims=(1,)).reshape(x.data.shape)
    if not isinstance(dims, tuple) or not all(type(d) is int for d in dims) or not rank:
        return None
    return _function._apply_array_op(cls, x.data, **dict(params, dims=tuple(d % rank + 1 for d in dims)))


def _triangle(cls, operands, params, outs, size):
    """tril / triu of each slice: of the last two dims, which the batch dim in front leaves in place."""
    (x,) = operands
    if _logical_rank(x) < 2:
        return None
    return _function._apply_array_op(cls, x.data, **params)


def _widths_padded(cls, operands, params, outs, size):
    """constant / reflect / replicate / circular padding (and the adjoint's fold) of each slice by
    its widths per dim: no width along the batch dim in front."""
    (x,) = operands
    widths = params.get("widths")
    if not isinstance(widths, tuple) or len(widths) != _logical_rank(x) or not x.batched:
        return None
    out = _function._apply_array_op(cls, x.data, **dict(params, widths=((0, 0), *widths)))
    if params.get("mode") == "circular":
        from .ops.shape import ModePad, named_as_slice_copies

        if cls is ModePad:  # (the node F.pad names outside vmap; not the adjoint's)
            return named_as_slice_copies(out)
    return out


def _scatter_added(cls, operands, params, outs, size):
    """scatter_add of each slice's src at its index (batched or not) along ``dim``: along the dim
    behind the batch dim, the batch dim in front of the index too (one scatter, as torch's rule)."""
    x, src = operands
    index, dim, rank = params.get("index"), params.get("dim"), _logical_rank(x)
    if not isinstance(index, _Value) or type(index.data) is not np.ndarray or type(dim) is not int or not rank or \
            index.data.ndim - index.batched != rank:
        return None
    index = index.data if index.batched else np.broadcast_to(index.data, (size, *index.data.shape))
    return _function._apply_array_op(cls, _whole(x, size), _whole(src, size), index=index, dim=dim % rank + 1)


def _folded_along(data, dim: int):
    """(B, ..., n at dim + 1, ...) -> (B·n, ...): each slice's slabs along ``dim``, one after another."""
    moved = data.movedim(dim + 1, 1)
    return moved.reshape((-1, *moved.shape[2:]))


def _index_slabs(cls, operands, params, outs, size):
    """index_select / index_add (and index_select's adjoint) of each slice's slabs along ``dim`` at
    a 1-d index: along the dim behind the batch dim for an unbatched index; for a batched one, the
    slices' slabs folded into one dim and each slice's index offset by ``b·n`` (one op on the batch)."""
    index, dim, rank = params.get("index"), params.get("dim"), _logical_rank(operands[0])
    if not isinstance(index, _Value) or type(index.data) is not np.ndarray or type(dim) is not int or not rank or \
            index.data.ndim != 1 + index.batched:
        return None
    args = [_whole(v, size) for v in operands]
    if cls.__name__ == "IndexAddInto":  # (it adds into its first operand, zeros: the batch's own)
        args[0] = _function._make_tensor(np.zeros((size, *outs[0].shape), outs[0]._data.dtype))
    if not index.batched:
        return _function._apply_array_op(cls, *args, **dict(params, index=index.data, dim=dim % rank + 1))
    dim %= rank
    rows = args[0].shape[dim + 1]
    flat = np.where(index.data < 0, index.data + rows, index.data) + (np.arange(size) * rows)[:, None]
    out = _function._apply_array_op(cls, *(_folded_along(a, dim) for a in args),
                                    **dict(params, index=flat.reshape(-1), dim=0))
    shape = list(outs[0].shape)
    n = shape.pop(dim)
    return out.reshape((size, n, *shape)).movedim(1, dim + 1)


def _resampled(cls, operands, params, outs, size):
    """interpolate's resampling (and its adjoint) of each slice along its spatial axes: along the
    same axes behind the batch dim (the plan's arrays follow from the slice's shapes alone)."""
    (x,) = operands
    plan = params.get("plan")
    if not x.batched or type(plan).__name__ != "ResamplePlan":
        return None
    shifted = type(plan)((axis + 1, *rest) for axis, *rest in plan)
    return _function._apply_array_op(cls, x.data, **dict(params, plan=shifted))


def _unfold_backward(cls, operands, params, outs, size):
    """unfold's adjoint of each slice (its windows added back along ``dim``): behind the batch dim."""
    (grad,) = operands
    dim, window, step = params.get("params", (None, None, None))
    if not grad.batched or type(dim) is not int or dim < 0:
        return None
    return _function._apply_array_op(cls, grad.data, shape=(size, *params["shape"]), params=(dim + 1, window, step))


def _solved(cls, operands, params, outs, size):
    """linalg.solve's A X = B of each slice (its matrices, behind any batch dims): A and B padded to
    one rank behind the batch dim, one batched solve (torch's rule broadcasts them alike)."""
    if params or any(_logical_rank(v) < 2 for v in operands):
        return None
    rank = max(_logical_rank(v) for v in operands)
    return _function._apply_array_op(cls, *(_padded(v, rank) for v in operands))


def _normalized(cls, operands, params, outs, size):
    """A layer norm without affine map (x̂ over ``dims``) of each slice: over the same dims behind
    the batch dim (its node keeps the batch's x̂ and 1/σ, batch dim in front)."""
    (x,) = operands
    dims, rank = params.get("dims"), _logical_rank(x)
    if not x.batched or params.get("stats") is not None or not isinstance(dims, tuple) or \
            not all(type(d) is int for d in dims) or not rank:
        return None
    return _function._apply_array_op(cls, x.data, **dict(params, dims=tuple(d % rank + 1 for d in dims)))


def _normalized_backward(cls, operands, params, outs, size):
    """The gradient of a layer norm without affine map (``_normalized``'s) of each slice: over its
    dims behind the batch dim, with the x̂ and 1/σ the batch's forward node kept."""
    grad, x = operands
    dims, rank = params.get("dims"), _logical_rank(x)
    kept = [params.get("xhat"), params.get("invstd")]
    if params.get("mean") is not None or not isinstance(dims, tuple) or not all(type(d) is int for d in dims) or \
            not rank or not all(isinstance(v, _Value) and v.batched and type(v.data) is np.ndarray for v in kept):
        return None
    xhat, invstd = (v.data for v in kept)
    if xhat.shape != (size, *outs[0].shape) or invstd.ndim != xhat.ndim:
        return None
    return _function._apply_array_op(cls, _whole(grad, size), _whole(x, size), xhat=xhat, invstd=invstd,
                                     dims=tuple(d % rank + 1 for d in dims), eps=params.get("eps"))


def _passed_on(cls, operands, params, outs, size):
    """A gradient recorded against saved tensors with derivative zero in them (``depending_on``'s
    node, under torch's name): the batch's gradient passed on, each saved tensor as it is."""
    grad, *tensors = operands
    return _function._apply_array_op(cls, _whole(grad, size), *(v.data for v in tensors), **params)


def _sampled(cls, operands, params, outs, size):
    """bernoulli's sample recorded against probabilities that require grad: the batch's sample (the
    comparison of the batch's draw, which the replay ran) on the batch's probabilities."""
    sample = params.get("sample")
    if not isinstance(sample, _Value) or not sample.batched or type(sample.data) is not np.ndarray:
        return None
    return _function._apply_array_op(cls, _whole(operands[0], size), sample=sample.data)


def _normal_sampled(cls, operands, params, outs, size):
    """normal's sample from a tensor mean and/or std (recorded for its node): the batch's sample (the
    batch's draw plus the mean, ops the replay ran) on the batch's operands."""
    sample = params.get("sample")
    if not isinstance(sample, _Value) or not sample.batched or type(sample.data) is not np.ndarray:
        return None
    return _function._apply_array_op(cls, *[_whole(v, size) for v in operands], **dict(params, sample=sample.data))


def has_vmap_staticmethod(cls) -> bool:
    """Whether a user's autograd.Function has its own batching rule (torch's ``vmap``
    staticmethod), which the replay runs on the batch (``_user_function``)."""
    return cls.vmap is not _function.Function.vmap and not cls.generate_vmap_rule


def _user_function(cls, operands, params, outs, size):
    """A user Function's ``vmap`` staticmethod, as torch's vmap calls it: ``(info, in_dims, *args)``
    with each batched argument's batch dim 0 (None for an unbatched one), giving ``(output,
    out_dims)``; each output's batch dim moved to the front (an unbatched one expanded)."""
    from .library.operators import VmapInfo

    if params:
        return None
    in_dims = tuple(0 if v.batched else None for v in operands)
    out, out_dims = cls.vmap(VmapInfo(size, "error"), in_dims, *(v.data for v in operands))
    results = out if isinstance(out, tuple) else (out,)
    dims = out_dims if isinstance(out_dims, tuple) else (out_dims,) * len(results)
    if len(dims) != len(results) or not all(isinstance(r, _function._Tensor) for r in results):
        return None
    found = tuple(r.expand(size, *r.shape) if d is None else r.movedim(d, 0) if d else r
                  for r, d in zip(results, dims))
    return found if isinstance(out, tuple) else found[0]


# rules that take parameters the replay batched (as _Values)
_BATCHED_PARAMS = frozenset({_where, _dim_shifted, _nll_loss, _nll_loss_backward, _pooled, _elementwise_kept,
                             _embedding, _embedding_backward, _along_index, _masked_filled, _layer_norm_backward,
                             _gradient_against, _normalized_backward, _scatter_added, _index_slabs, _sampled,
                             _normal_sampled, _advanced_indexed, _advanced_scattered})
# ops whose node a later op reads as a parameter (nll_loss's backward), replayed by a rule
_NODES_READ = frozenset({"_NllLoss"})
# ops whose rule runs the batch as more rows of the op (batch-major), so that what their node keeps
# per row (layer norm's x̂ and 1/σ, (rows, D)) is each slice's rows one after another
_ROWS_FOLDED = frozenset({"LayerNorm"})
_ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Neg", "Exp", "Log", "Tanh", "Sigmoid", "Relu", "Sin", "Cos", "Sqrt",
                "Rsqrt", "Abs", "Maximum", "Minimum", "Square", "Reciprocal", "Log1p", "Expm1", "Softplus",
                "PowScalar", "TanhBackward", "SigmoidBackward", "Threshold", "ReluBackward", "Pow", "RSub", "Gelu",
                "ScaledBy", "ToCopy", "Real", "Imag", "Conj", "InternalConj", "Clamp", "ClampByTensors",
                "ClampMinByTensor", "ClampMaxByTensor", "Round", "RoundDecimals", "Sign", "Mish", "MulNumber", "DivNumber",
                "AddScaled", "SubScaled", "TanhAdjoint", "SigmoidAdjoint",
                # (session 62: the elementwise ops a sweep of the op registry's samples found run per slice)
                "Asin", "Acos", "Atan", "Tan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Exp2", "Log2", "Log10",
                "Floor", "Ceil", "Trunc", "Frac", "Sinc", "Erf", "Erfc", "Erfinv", "Lgamma", "Digamma", "Polygamma",
                "I0", "SpecialI1", "SpecialI0E", "SpecialI1E", "SpecialNdtri", "SpecialLogNdtr", "SpecialErfcx",
                "SpecialEntr", "Logit", "Elu", "Celu", "LeakyRelu", "Hardtanh", "Hardsigmoid", "Hardswish",
                "Hardshrink", "Softshrink", "Silu", "LogSigmoid", "_LogSigmoid", "RPowScalar", "Atan2", "Hypot",
                "Logaddexp", "Xlogy", "SpecialXlog1Py", "Copysign", "Fmax", "Fmin", "Igamma", "Igammac",
                "Remainder", "RoundedDiv")
# elementwise backward ops whose operands (the gradient, the input) and kept arrays are one shape
_ELEMENTWISE_ADJOINTS = ("SiluBackward", "SoftplusAdjoint", "LogSigmoidAdjoint")
_RULES = {name: _elementwise for name in _ELEMENTWISE}
_RULES.update({name: _elementwise_kept for name in _ELEMENTWISE_ADJOINTS})
_RULES.update({"Where": _where, "Reshape": _reshaped, "UnsqueezeView": _reshaped, "SqueezeView": _reshaped,
               "UnsafeView": _reshaped, "Select": _indexed, "Slice": _indexed, "Index": _advanced_indexed,
               "Unsqueeze": _indexed, "Alias": _indexed,
               "SelectScatter": _scattered, "SliceScatter": _scattered, "IndexScatter": _advanced_scattered, "Addmm": _addmm, "Mm": _mm,
               "WeightT": _weight_transposed,
               "LinearBackward": _linear_backward, "Matmul": _matmul, "StackRows": _stacked, "LogSoftmax": _dim_shifted,
               "Softmax": _dim_shifted, "LogSoftmaxBackward": _dim_shifted, "SoftmaxBackward": _dim_shifted,
               "Expand": _expanded, "SumToSize": _summed_to, "SumToScalar": _summed_to, "Mv": _matmul, "Dot": _dot,
               "Permute": _permuted, "Sum": _reduced, "SumDim": _reduced, "Mean": _reduced, "MeanDim": _reduced,
               "_MseLoss": _pointwise_loss, "_MseLossBackward": _pointwise_loss_backward,
               "_SmoothL1Loss": _pointwise_loss, "_SmoothL1LossBackward": _pointwise_loss_backward,
               "_HuberLoss": _pointwise_loss, "_HuberLossBackward": _pointwise_loss_backward,
               "_SoftMarginLoss": _pointwise_loss, "_SoftMarginLossBackward": _pointwise_loss_backward, "_NllLoss": _nll_loss,
               "_IndexClassLossBackward": _nll_loss_backward, "Convolution": _convolution, "ConvInput": _convolution,
               "ConvWeight": _conv_weight, "MaxPool": _pooled, "MaxPool3D": _pooled, "FirstMaxScatter": _pooled,
               "WindowScatter": _pooled, "WindowGather": _pooled, "GeluBackward": _elementwise_kept,
               "Embedding": _embedding, "EmbeddingDenseBackward": _embedding_backward, "Gather": _along_index,
               "ScatterAlong": _along_index, "MaskedFill": _masked_filled, "AmaxAll": _all_extreme,
               "AminAll": _all_extreme, "Amax": _reduced, "Amin": _reduced, "Nansum": _reduced, "Logsumexp": _reduced,
               "Prod": _multiplied, "ProdDim": _multiplied,
               "LayerNorm": _layer_norm, "LayerNormBackward": _layer_norm_backward, "Transpose": _transposed,
               "Clone": _cloned, "Split": _split, "SplitWithSizes": _split, "Cat": _concatenated, "Bmm": _matmul,
               "FusedScaleShift": _scale_shifted, "GradientAgainst": _gradient_against, "Cumsum": _along_dim,
               "Logcumsumexp": _along_dim, "Cumprod": _along_dim, "Roll": _rolled, "Tril": _triangle, "Triu": _triangle,
               "LayerNormalize": _normalized,
               "LayerNormalizeBackward": _normalized_backward, "Flip": _along_dims, "ModePad": _widths_padded,
               "ModePadAdjoint": _widths_padded, "ConstantPad": _widths_padded, "Solve": _solved, "R2C": _along_dims, "C2C": _along_dims,
               "C2R": _along_dims, "Unfold": _along_dim,
               "UnfoldBackward": _unfold_backward,
               "Resample": _resampled, "ResampleAdjoint": _resampled,
               "ScatterAdd": _scatter_added, "IndexAdd": _index_slabs, "IndexAddInto": _index_slabs,
               "IndexSelect": _index_slabs, "BernoulliSample": _sampled, "BernoulliFloatSample": _sampled,
               "NormalTensorFloat": _normal_sampled, "NormalFloatTensor": _normal_sampled,
               "NormalTensorTensor": _normal_sampled})
# rules of the classes made at run time under torch's node names (second_order's), by their base class
_RULES_BY_BASE = {"DependsOn": _passed_on}
