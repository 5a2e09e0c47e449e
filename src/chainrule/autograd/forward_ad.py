"""torch.autograd.forward_ad: forward-mode automatic differentiation with dual tensors.

Inside ``dual_level()``, ``make_dual(x, t)`` pairs a primal with a tangent, and every op applied
to it returns its output with the output's tangent J·t attached, computed at once (eagerly);
``unpack_dual(y)`` reads it back. As in torch there is one level at a time, and leaving it drops
every tangent.

The tangent of a built-in op comes from the op's own backward rule, by the identity

    J·t = d/du ⟨Jᵀu, t⟩

``Jᵀu`` is the op's vector-Jacobian product with a cotangent ``u``, which the rules compute with
differentiable ops, linearly in ``u``; differentiating ⟨Jᵀu, t⟩ with respect to ``u`` (one more
backward pass, through the rule's recorded graph) gives ``J·t`` exactly. So every op with a
differentiable backward has forward AD, with no second rule to keep in step. An op whose rule is
not differentiable in ``u`` raises rather than return a wrong tangent. A user ``Function`` runs
its own ``jvp`` staticmethod, reading what forward gave ``ctx.save_for_forward``, as in torch.

Outside a level nothing here runs: ``function.active_extension`` is None, the one check an op
pays. While a level (or ``graph.saved_tensors_hooks``) is active it names ``_run``, which each
op calls instead; ``_run`` switches itself off while the op, its tangent and any pack hook run,
so the ops those run are plain ones.
"""

from __future__ import annotations

import weakref
from collections import namedtuple

import numpy as np

from .. import _dtype
from .._backend import array_module
from . import engine as _engine
from . import function as _function
from . import profiler as _profiler
from .grad_mode import state as _grad_state

__all__ = ["dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual",
           "UnpackedDualTensor"]

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])


class _Level:
    """One forward-AD level: the tangent of each dual tensor, keyed by the tensor's id and held
    with a weak reference to it, so a dead tensor's entry goes and its id is never misread."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.tangents = {}

    def tangent_of(self, tensor):
        entry = self.tangents.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            base = tensor._base
            if base is None or tensor._nondifferentiable_view:
                return None
            # a view made before its base had a tangent reads its elements of the base's (torch
            # derives a view's forward gradient from its base's on demand)
            return _elements_of_base_tangent(tensor, base, self.tangent_of(base))
        return entry[1]

    def set_tangent(self, tensor, tangent) -> None:
        key = id(tensor)
        tangents = self.tangents

        def forget(ref, key=key, tangents=tangents):
            entry = tangents.get(key)
            if entry is not None and entry[0] is ref:
                del tangents[key]

        tangents[key] = (weakref.ref(tensor, forget), tangent)


_level: _Level | None = None
# graph.saved_tensors_hooks' packer while some are active (set through set_packer), else None
_packer = None


def _refresh() -> None:
    """Route ops through ``_run`` exactly while a level or saved-tensor hooks are active; the
    fast paths of + - * / (which skip Function.apply when nothing is recorded) step aside
    meanwhile, as they do for the profiler."""
    active = _level is not None or _packer is not None
    was = _function.active_extension is not None
    _function.active_extension = _run if active else None
    if active and _keep_general_operators not in _profiler.recording_switches:
        _profiler.recording_switches.append(_keep_general_operators)  # (after the operators' switch)
    if active != was and _function.active_profiler is None:
        for switch in _profiler.recording_switches:
            switch(active)


def _keep_general_operators(recording: bool) -> None:
    """A profiler stopping while ops route through ``_run`` has just put the fast paths back:
    they stay off until the level and the hooks are gone."""
    if not recording and _function.active_extension is not None:
        for switch in _profiler.recording_switches:
            if switch is not _keep_general_operators:
                switch(True)


def set_packer(packer) -> None:
    """Called by graph.saved_tensors_hooks: ``packer(outputs)`` packs the saved tensors of the
    node that made ``outputs``; None when no hooks are active."""
    global _packer
    _packer = packer
    _refresh()


# ---------------------------------------------------------------- levels

def enter_dual_level() -> int:
    """Start a forward-AD level and return its index (one level at a time, as torch)."""
    global _level
    if _level is not None:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _level = _Level(0)
    _refresh()
    return _level.index


def exit_dual_level(*, level: int | None = None) -> None:
    """End the level: every tangent made in it is dropped."""
    global _level
    if level is None:
        level = -1 if _level is None else _level.index
    if level < 0:
        raise RuntimeError("Dual level must be a positive number.")
    if _level is None or level != _level.index:
        raise RuntimeError("Trying to exit a forward AD level that was not the last one that was created. "
                           "This is not supported.")
    _level.tangents.clear()
    _level = None
    _refresh()


class dual_level:
    """Context manager (or decorator) for one forward-AD level: ``with dual_level(): ...``."""

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, *exc) -> None:
        exit_dual_level()

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with dual_level():
                return fn(*args, **kwargs)

        return wrapper


def _the_level(level, where: str) -> _Level:
    """The active level ``level`` names (None: the current one), or torch's error."""
    if level is None:
        level = -1 if _level is None else _level.index
    if level < 0:
        raise RuntimeError(f"Trying to {where} for forward AD but no level exists, make sure to "
                           "enter_dual_level() first.")
    if _level is None or level != _level.index:
        raise RuntimeError("Trying to access a forward AD level with an invalid index. This index was either "
                           "not created or is already deleted.")
    return _level


def _is_differentiable_dtype(tensor) -> bool:
    return tensor._data.dtype.kind in "fc"


def make_dual(tensor, tangent, *, level: int | None = None):
    """A view of ``tensor`` carrying ``tangent`` (same shape) as its forward gradient."""
    Tensor = _function._Tensor
    for name, value in (("tensor", tensor), ("tangent", tangent)):
        if not isinstance(value, Tensor):
            raise TypeError(f"make_dual(): argument '{name}' must be Tensor, not {type(value).__name__}")
    dual = _the_level(level, "create a dual Tensor")
    if not _is_differentiable_dtype(tensor):
        raise ValueError(f"Expected primal to be floating point or complex, but got: {_torch_name(tensor)}")
    if not _is_differentiable_dtype(tangent):
        raise ValueError(f"Expected tangent to be floating point or complex, but got: {_torch_name(tangent)}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError("Trying to set a forward gradient that has a different size than that of the original "
                           f"Tensor, this is not supported. Tensor is of size {list(tensor.shape)} while the given "
                           f"forward gradient is of size {list(tangent.shape)}.")
    if tangent.device != tensor.device:
        raise RuntimeError(f"make_dual: the tangent is on {tangent.device} and the primal on {tensor.device}; "
                           "expected both on one device")
    result = _plain(lambda: tensor.view_as(tensor))
    dual.set_tangent(result, tangent)
    return result


def unpack_dual(tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """``(primal, tangent)``: a view of ``tensor`` without its tangent, and the tangent (None when
    it has none, or outside a level)."""
    if _level is None or (level is not None and level != _level.index):
        return UnpackedDualTensor(tensor, None)
    tangent = _level.tangent_of(tensor)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    primal = _plain(lambda: tensor.view_as(tensor))
    _level.set_tangent(primal, None)  # a view of tensor that does not share its tangent (torch's _fw_primal)
    return UnpackedDualTensor(primal, tangent)


def _torch_name(tensor) -> str:
    return f"torch.{tensor.dtype.name}" if hasattr(tensor.dtype, "name") else str(tensor.dtype)


def _plain(make):
    """``make()`` with ops running plainly (no tangent, no packing)."""
    previous = _function.active_extension
    _function.active_extension = None
    try:
        return make()
    finally:
        _function.active_extension = previous


def carries_tangent(tensor) -> bool:
    """Whether ``tensor`` is a dual tensor of the active level: for an op whose unrecorded path
    skips its Function (and so its tangent) unless an input requires grad."""
    return _level is not None and _level.tangent_of(tensor) is not None


def tangent_of_write(target, value, write):
    """For an unrecorded in-place write of ``value`` into ``target`` (``x[key] = v``, which
    writes arrays directly): under forward AD, when either carries a tangent, the out-of-place
    result of ``write()`` — whose tangent the write gives ``target`` (see ``move_tangent``);
    else None."""
    if _level is None or (_level.tangent_of(target) is None and _level.tangent_of(value) is None):
        return None
    return write()


def _elements_of_base_tangent(view, base, base_tangent):
    """The view's elements of ``base_tangent`` (a tensor sharing its memory), when that tangent is
    laid out as base itself is; else None."""
    if base_tangent is None:
        return None
    Tensor = _function._Tensor
    data, base_data, tangent_data = view._data, base._data, base_tangent._data
    if not (type(data) is type(base_data) is type(tangent_data) is np.ndarray) or \
            tangent_data.strides != base_data.strides or tangent_data.shape != base_data.shape or \
            tangent_data.itemsize != base_data.itemsize or tangent_data.size == 0:
        return None
    offset = data.__array_interface__["data"][0] - base_data.__array_interface__["data"][0]
    if offset < 0 or offset % tangent_data.itemsize:
        return None
    as_strided = np.lib.stride_tricks.as_strided
    first = offset // tangent_data.itemsize
    start = as_strided(tangent_data, shape=(first + 1,), strides=(tangent_data.itemsize,))[first:]
    return Tensor._make(as_strided(start, shape=data.shape, strides=data.strides))


def write_tangent(source, target) -> None:
    """An in-place op wrote ``source`` (its out-of-place result) into ``target``: ``source``'s
    tangent (zeros when it has none) is written into ``target``'s, in place, so that a base and
    its views, whose tangents share memory as their values do, see the write (torch's in-place
    formulas update ``self_t`` in place). A view of a base without a tangent first gives its base
    a zero one."""
    if _level is None:
        return
    new = _level.tangent_of(source)
    old = _level.tangent_of(target)
    if old is None and new is not None and target._base is not None and not target._nondifferentiable_view:
        base = target._base
        if _level.tangent_of(base) is None and type(base._data) is np.ndarray:
            _level.set_tangent(base, _function._Tensor._make(np.zeros_like(base._data)))
            old = _level.tangent_of(target)
    # (a tangent in a graph, forward over reverse, takes the new one whole, keeping its graph)
    if old is None or old.shape != target.shape or type(old._data) is not np.ndarray \
            or not old._data.flags.writeable or _expanded(old._data) or old._requires_grad \
            or new is not None and new._requires_grad:
        move_tangent(source, target)
        return
    if new is None:
        old._data[...] = 0
    else:
        old._data[...] = new._data


def _expanded(array) -> bool:
    return any(stride == 0 and size > 1 for stride, size in zip(array.strides, array.shape))


def move_tangent(source, target) -> None:
    """An in-place op wrote ``source`` (its out-of-place result) into ``target``: the tangent
    follows the value (none if ``source`` has none)."""
    if _level is None:
        return
    tangent = _level.tangent_of(source)
    if tangent is not None:
        _level.set_tangent(target, tangent)
    else:
        _level.tangents.pop(id(target), None)


# ---------------------------------------------------------------- the per-op path

def _run(cls, inputs, params, user_function: bool = False):
    """What ``Function.apply`` runs while a level or saved-tensor hooks are active."""
    _function.active_extension = None
    try:
        if user_function:
            return _run_user_function(cls, inputs, params)
        tangents = None
        if _level is not None:
            tangents = [_level.tangent_of(x) for x in inputs]
            if not any(t is not None for t in tangents):
                tangents = None
        if tangents is None:
            out = _function._apply_array_op(cls, *inputs, **params)
        else:
            out = _jvp_of_array_op(cls, inputs, params, tangents)
        if _packer is not None:
            _packer(out)
        return out
    finally:
        _function.active_extension = _run if (_level is not None or _packer is not None) else None


def _cpp_name(dtype) -> str:
    return _dtype._CPP_TYPE_NAMES.get(dtype.name, dtype.name)


# torch's refusal, per product op, of a tangent whose dtype is not the other operand's: its formula
# multiplies each tangent by the other primal (mat1_p.mm(mat2_t) + mat1_t.mm(mat2_p), the second
# operand's term computed first) in a kernel that takes one dtype. Elementwise formulas promote instead.
_PRODUCT_REFUSALS = {
    "MmBackward0": lambda a, b: f"expected m1 and m2 to have the same dtype, but got: {_cpp_name(a)} != {_cpp_name(b)}",
    "AddmmBackward0": lambda a, b: f"expected m1 and m2 to have the same dtype, but got: {_cpp_name(a)} != "
                                   f"{_cpp_name(b)}",
    "MvBackward0": lambda m, v: "addmv input tensors must have the same dtype, but got "
                                f"{_dtype.scalar_name(v)}, {_dtype.scalar_name(m)}, and {_dtype.scalar_name(v)}",
    "DotBackward0": lambda a, b: "dot : expected both vectors to have same dtype, but found "
                                 f"{_dtype.scalar_name(a)} and {_dtype.scalar_name(b)}",
    **dict.fromkeys(("BmmBackward0", "ConvolutionBackward0"),
                    lambda a, b: f"expected scalar type {_dtype.scalar_name(a)} but found {_dtype.scalar_name(b)}"),
}


def _refuse_mixed_product_tangent(cls, inputs, tangents) -> None:
    """torch's error where a product's tangent has another dtype than the operand it multiplies."""
    name = getattr(cls, "node_name", None) or cls.__name__
    if name == "MatmulBackward0" and len(inputs) == 2:  # matmul's kernel, by the operands' dims
        ranks = (inputs[0]._data.ndim, inputs[1]._data.ndim)
        name = ("DotBackward0" if ranks == (1, 1) else "MvBackward0" if ranks == (2, 1) else
                "MmBackward0" if max(ranks) <= 2 else "BmmBackward0")
    message = _PRODUCT_REFUSALS.get(name)
    if message is None:
        return
    first = 1 if name == "AddmmBackward0" else 0  # addmm's bias is added, not multiplied
    (a, b), (ta, tb) = inputs[first:first + 2], tangents[first:first + 2]
    if tb is not None and tb.dtype is not a.dtype:
        raise RuntimeError(message(a.dtype, tb.dtype))
    if ta is not None and ta.dtype is not b.dtype:
        raise RuntimeError(message(ta.dtype, b.dtype))


def _jvp_of_array_op(cls, inputs, params, tangents):
    """Run a built-in op on dual inputs: its output as without forward AD, with tangents.

    The op is recorded, whatever the grad mode, so its rule can be differentiated: an input
    carrying a tangent but not requiring grad is replaced by a detached alias that does (sharing
    data and version counter), and afterwards the output loses what the caller would not have
    had — the node altogether when nothing was to be recorded, else the aliases' edges.
    """
    _refuse_mixed_product_tangent(cls, inputs, tangents)
    recording = _grad_state.enabled and any(x._requires_grad for x in inputs)
    stand_ins = list(inputs)
    aliased = set()
    for i, (x, t) in enumerate(zip(inputs, tangents)):
        if t is not None and not x._requires_grad:
            alias = x.detach()
            alias._requires_grad = True
            stand_ins[i] = alias
            aliased.add(i)
    keep_graph = _grad_state.enabled and (recording or any(t is not None and t._requires_grad for t in tangents))
    previous = _grad_state.enabled
    _grad_state.enabled = True
    try:
        out = _function._apply_array_op(cls, *stand_ins, **params)
        outputs = out if type(out) is tuple else (out,)
        differentiable = [o for o in outputs if o.grad_fn is not None and _is_differentiable_dtype(o)]
        pushed = ()
        if differentiable:
            pushed = _pushforward(differentiable, stand_ins, tangents, keep_graph)
            if getattr(cls, "node_name", None) == "ToCopyBackward0":  # torch's rule for a cast: self_t.to(dtype)
                pushed = [p if p.dtype is o.dtype else p.to(o.dtype) for p, o in zip(pushed, differentiable)]
    finally:
        _grad_state.enabled = previous
    node = next((o.grad_fn for o in outputs if o.grad_fn is not None), None)
    if node is not None:
        if not recording:
            for o in outputs:
                o.grad_fn = None
                o._requires_grad = False
        elif aliased:
            node.next_functions = tuple(_function._NO_EDGE if i in aliased else edge
                                        for i, edge in enumerate(node.next_functions))
            node.needs_input_grad = tuple(False if i in aliased else need
                                          for i, need in enumerate(node.needs_input_grad))
    for o, tangent in zip(differentiable, pushed):
        viewed = _view_tangent(cls, params, inputs, tangents, out, o)
        # (the view is kept where it reads the tangent's values the rule gave: an as_strided
        # addressing its input's storage reads other elements of a tangent laid out otherwise)
        keep = viewed is not None and viewed.shape == tangent.shape and np.array_equal(viewed._data, tangent._data)
        _level.set_tangent(o, viewed if keep else tangent)
    if node is not None:
        _tangents_to_saved_outputs(node, outputs)
    return out


def _view_tangent(cls, params, inputs, tangents, out, output):
    """For an output that is a view of the op's first input, the same view of that input's
    tangent (None otherwise, or where the tangent cannot be viewed so): torch's rule for a view
    op, which makes an in-place write into the view's tangent land in its base's."""
    first, tangent = inputs[0], tangents[0]
    # (the op's caller marks its output a view (_base) after this runs: told here by the memory;
    # an op writing its input's array, as IndexPut does for x[key] = v, returns that very array)
    if (tangent is None or type(output._data) is not np.ndarray or type(first._data) is not np.ndarray
            or output._data.dtype != first._data.dtype or tangent._data.dtype != first._data.dtype
            or output._data is first._data or not np.may_share_memory(output._data, first._data)):
        return None
    try:
        viewed = _function._apply_array_op(cls, tangent, *inputs[1:], **params)
    except (RuntimeError, ValueError, TypeError):
        return None
    if type(viewed) is tuple:
        viewed = viewed[next(i for i, o in enumerate(out) if o is output) if type(out) is tuple else 0]
    if viewed.shape != output.shape or not np.may_share_memory(viewed._data, tangent._data):
        return None
    return viewed


def _tangents_to_saved_outputs(node, outputs) -> None:
    """The node keeps its saved outputs as separate tensors (_saved_output): they carry the
    outputs' tangents too, for a backward run under this level (forward over reverse)."""
    if getattr(node, "_saved_outputs", None) is None:
        return
    for i in node._saved_outputs:
        kept = node._saved[i]
        source = next((o for o in outputs if isinstance(o, _function._Tensor) and o.grad_fn is node
                       and o._output_nr == getattr(kept, "_output_nr", None)), None)
        if source is not None:
            _copy_tangent(source, kept)


def _copy_tangent(source, target) -> None:
    tangent = None if _level is None else _level.tangent_of(source)
    if tangent is not None:
        _level.set_tangent(target, tangent)


_function.copy_tangent = _copy_tangent


def _pushforward(outputs, inputs, tangents, keep_graph: bool) -> list:
    """J·t for each output by d/du ⟨Jᵀu, t⟩ (for complex values, Re ⟨J*u, t⟩): one backward pass through the op's node recorded
    with cotangents ``u`` requiring grad, then one backward pass of the contraction with respect
    to ``u``.

    The first pass must give the op's own (partial) derivatives, while its inputs may depend on
    each other upstream (inside a backward, g and x in g * x): so the node's edges to the inputs
    carrying tangents lead, for that pass, to fresh leaves, where the walk stops — one per input
    position, so x * x gets both of its terms.
    """
    Tensor = _function._Tensor
    node = outputs[0].grad_fn
    edges = node.next_functions
    ends, ends_tangents, cut = [], [], list(edges)
    for i, (x, t) in enumerate(zip(inputs, tangents)):
        if t is not None:
            end = Tensor._make(x._data)
            end._requires_grad = True
            cut[i] = (end._get_accumulator(), 0)
            ends.append(end)
            ends_tangents.append(t)
    node.next_functions = tuple(cut)
    try:
        return _contract(outputs, ends, ends_tangents, keep_graph)
    finally:
        node.next_functions = edges


def _contract(outputs, inputs, tangents, keep_graph: bool) -> list:
    Tensor = _function._Tensor
    # Jᵀu is linear in u, so d/du ⟨Jᵀu, t⟩ is the same at every u: ones keep u off the points a
    # rule treats specially (a masked sign, log|u| at u = 0), where its recorded graph need not
    # carry the derivative
    cotangents = _cotangents(outputs, "ones_like", tangents)
    try:
        pulled = _engine.grad(outputs, inputs, cotangents, retain_graph=True, create_graph=True, allow_unused=True)
    except RuntimeError as refusal:
        # a rule that refuses a cotangent its loss could not give (eig's eigenvectors fixed only
        # up to a phase: Im diag(Vᴴ u) must vanish) accepts zeros, which meet any linear condition
        cotangents = _cotangents(outputs, "zeros_like", tangents)
        try:
            pulled = _engine.grad(outputs, inputs, cotangents, retain_graph=True, create_graph=True,
                                  allow_unused=True)
        except RuntimeError:
            raise refusal from None
    total = None
    for g, t in zip(pulled, tangents):
        if g is None:
            continue
        if not g._requires_grad:
            # not recorded: a zero Jacobian, or a rule computed without differentiable ops
            if bool((g._data != 0).any()):
                raise NotImplementedError(
                    f"forward AD: the backward of {type(outputs[0].grad_fn).__name__} is not differentiable "
                    "with respect to its incoming gradient, so its Jacobian-vector product cannot be derived "
                    "from it")
            continue
        if g._data.dtype.kind == "c" or t._data.dtype.kind == "c":
            # complex: backward gives the adjoint J*u under the real inner product Re Σ conj(a)·b,
            # and torch's gradient of a real scalar in complex u is ∂/∂Re u + i ∂/∂Im u, so the
            # gradient of Re Σ conj(J*u)·t = Re Σ conj(u)·Jt is Jt itself. Re(conj(g)·t) = Re g·Re t + Im g·Im t:
            # no conj (the public one would mark what it makes; the ops' own sit above autograd)
            term = (g.real * t.real).sum()
            if g._data.dtype.kind == "c" and t._data.dtype.kind == "c":
                term = term + (g.imag * t.imag).sum()
        else:
            term = (g * t).sum()
        total = term if total is None else total + term
    if total is None:
        found = [None] * len(outputs)
    else:
        found = _engine.grad([total], cotangents, retain_graph=keep_graph, create_graph=keep_graph,
                             allow_unused=True)
    return [Tensor._make(o._data * 0) if f is None else f for f, o in zip(found, outputs)]


def _cotangents(outputs, fill: str, tangents=()) -> list:
    """One cotangent per output, all ones or all zeros, requiring grad; of the output's dtype
    promoted with the tangents' (the pushed tangent takes the cotangent's dtype: a float64
    tangent of a float32 primal stays float64, as torch's formulas keep it)."""
    Tensor = _function._Tensor
    wider = [t._data.dtype for t in tangents if t is not None]
    cotangents = []
    for o in outputs:
        kind = o._data.dtype.kind  # (of the same kind only: a complex tangent of a real output's input stays out)
        same_kind = [dtype for dtype in wider if dtype.kind == kind]
        dtype = array_module(o._data).result_type(o._data.dtype, *same_kind) if same_kind else o._data.dtype
        u = Tensor._make(getattr(array_module(o._data), fill)(o._data, dtype=dtype))
        u._requires_grad = True
        cotangents.append(u)
    return cotangents


def users_jvp(cls, ctx, tangents):
    """A user Function's ``jvp`` on the ctx its forward filled (one tangent per input)."""
    # in jvp, ctx.saved_tensors are what forward gave save_for_forward (torch's rule)
    kept = {name: getattr(ctx, name) for name in ("_saved", "_saved_versions", "_saved_outputs")
            if hasattr(ctx, name)}
    ctx._saved = ctx._saved_for_forward or ()
    if "_saved_versions" in kept:
        ctx._saved_versions = None
        ctx._saved_outputs = None
    try:
        return cls.jvp(ctx, *tangents)
    finally:
        for name, value in kept.items():
            setattr(ctx, name, value)


def _run_user_function(cls, args, kwargs):
    """A user Function: forward as usual, then its ``jvp`` when an argument carries a tangent."""
    Tensor = _function._Tensor
    tangents = None
    if _level is not None:
        tangents = [_level.tangent_of(a) if isinstance(a, Tensor) else None for a in args]
        if not any(t is not None for t in tangents):
            tangents = None
    if tangents is None:
        out = _function._apply_user_function(cls, args, kwargs)
        if _packer is not None:
            _packer(out)
        return out
    if cls.jvp is _function.Function.jvp:
        raise NotImplementedError("You must implement the jvp function for custom autograd.Function to use it "
                                  "with forward mode AD.")
    seen = []
    out = _function._apply_user_function(cls, args, kwargs, seen)
    ctx = seen[0]
    # as torch's: a floating input without a tangent gets zeros (None under
    # ctx.set_materialize_grads(False)), an integer or bool one None
    materialize = getattr(ctx, "_materialize", True)
    full = [None if not isinstance(a, Tensor) or not _is_differentiable_dtype(a) else t if t is not None
            else Tensor._make(a._data * 0) if materialize else None for a, t in zip(args, tangents)]
    try:
        result = users_jvp(cls, ctx, full)
    finally:
        ctx._saved_for_forward = None
    outputs = out if isinstance(out, tuple) else (out,)
    results = result if isinstance(result, tuple) else (result,)
    if len(results) != len(outputs):
        raise RuntimeError(f"{cls.__name__}.jvp returned {len(results)} tangents for {len(outputs)} outputs; "
                           "expected one per output")
    for o, t in zip(outputs, results):
        if isinstance(o, Tensor) and t is not None:
            if tuple(t.shape) != tuple(o.shape):
                raise RuntimeError(f"{cls.__name__}.jvp: the tangent of an output of shape {list(o.shape)} has "
                                   f"shape {list(t.shape)}; expected the output's shape")
            _level.set_tangent(o, t)
    _tangents_to_saved_outputs(ctx, outputs)
    if _packer is not None:
        _packer(out)
    return out
