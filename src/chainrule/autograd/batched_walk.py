"""The batched backward walk: one reverse pass whose cotangents carry a leading batch dim, for
``jacrev``, ``autograd.functional.jacobian`` and ``autograd.grad(..., is_grads_batched=True)``
(see batched_grad.py for why).

It walks the recorded graph as the engine does — reverse topological order, fan-out summed
before a node runs, only the nodes on a path to a requested input — but never writes ``.grad``.
A node whose Function class has a rule in ``batched_grad.BATCHED_RULES`` runs it once; any other
node runs its ordinary backward once per row (the engine's ``_call_rule``) and the rows are
stacked: always exact, so the table only decides the speed. As in the engine, the walk (not the
rules) reduces a broadcast gradient to its input's shape — here ``(B,) + input shape``, the batch
dim kept — and casts it to the input's dtype.

Under ``create_graph`` the walk records, as the engine's does: the rules run with grad mode on
(they are Tensor ops, like the ordinary ones), and so do the walk's own sums, casts and stacks.
An inner Jacobian under an outer transform (a Hessian) is then one graph whose tensors carry the
batch dim, and the outer walk differentiates that one graph with batched rows — not one recorded
backward per row, each graph carrying all of the outer walk's rows, mostly zeros.

Hooks on the graph, anomaly mode, the profiler, forward AD or an unusual argument take the
one-backward-per-row path (``batched_backward`` returns None), which is exact for all of them.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_module, gpu_in_use, has_expanded_dims, writeable
from . import batched_grad as _batched_grad
from . import engine as _engine
from . import function as _function
from .batched_grad import BATCHED_RULES, CatRows, StackRows, UnstackRows
from .function import AccumulateGrad, _anomaly
from .grad_mode import state as _grad_state

__all__ = ["batched_backward", "jacobian_rows", "has_batched_rules"]


def batched_backward(outputs, inputs, grad_outputs, retain_graph: bool, create_graph: bool = False):
    """The gradients of ``outputs`` with respect to ``inputs`` for a batch of cotangents, in one
    reverse walk: ``grad_outputs[i]`` has shape ``(B,) + outputs[i].shape`` (or is None for an
    output that takes no part), and input j's gradient comes back with shape
    ``(B,) + inputs[j].shape``, or None where no output reaches it. Nothing is accumulated into
    ``.grad``; the saved tensors of the nodes that ran are freed unless ``retain_graph``. Under
    ``create_graph`` the walk is recorded, so the gradients can be differentiated again.

    Returns None, having run nothing, when the graph needs the engine's general path (hooks,
    anomaly mode, the profiler, forward AD, an unusual argument): the caller then runs one
    backward per row, which also raises torch's errors for invalid arguments.
    """
    Tensor = _function._Tensor
    if _anomaly.enabled or _function.active_extension is not None or (
            _function.active_profiler is not None and not getattr(_function.active_profiler, "walks_batched", False)):
        return None  # (vmap's watcher stands where the profiler does: it lets the walk's ops pass)
    pairs = [(out, g) for out, g in zip(outputs, grad_outputs) if g is not None]
    if not pairs or not inputs:
        return None
    batch = pairs[0][1]._data.shape[0] if pairs[0][1]._data.ndim else None
    for out, g in pairs:
        if (type(out) is not Tensor or not out._requires_grad or type(g) is not Tensor or g._data.ndim == 0
                or g._data.shape != (batch,) + out._data.shape):
            return None
    for x in inputs:
        if type(x) is not Tensor or not x._requires_grad:
            return None

    targets = {}  # (id(node), output_nr) -> the indices of the inputs whose gradient arrives there
    accumulators = []  # a leaf's AccumulateGrad, kept alive for the walk (see engine._run_backward)
    for i, x in enumerate(inputs):
        if x.grad_fn is None:
            accumulators.append(x._get_accumulator())
            key = (id(accumulators[-1]), 0)
        else:
            key = (id(x.grad_fn), x._output_nr)
        targets.setdefault(key, []).append(i)
    buffers = {}
    roots = []
    for out, g in pairs:
        node = out.grad_fn if out.grad_fn is not None else out._get_accumulator()
        output_nr = out._output_nr if out.grad_fn is not None else 0
        _add_to_buffer(buffers, node, output_nr, g if create_graph else Tensor._make(g._data))
        roots.append(node)
    order = _engine._topological_order(roots)
    needed = _engine._needed_nodes(order, targets)
    for node in order:
        if id(node) not in needed:
            continue
        if node._hooked or (type(node) is AccumulateGrad and node.variable._hooks):
            return None
    for node in order:  # a freed graph or a changed saved tensor raises torch's error, as the engine's
        versions = node._saved_versions
        if id(node) in needed and (node._freed or versions is not None
                                   and not _engine._versions_match(node._saved, versions)):
            node.saved_values  # noqa: B018 - the property raises torch's error

    captured = [None] * len(inputs)
    # the walk runs as the engine's: grad mode off unless it records, NumPy's warnings off, a user
    # Function's rule with the caller's NumPy error state
    _engine._callers_errstate.append(_function.numpy_errstate.get())
    quiet = _function.numpy_errstate.set(_function.QUIET)
    previous = _grad_state.enabled
    _grad_state.enabled = create_graph
    on_gpus = gpu_in_use()
    try:
        for node in order:
            if id(node) not in needed:
                continue
            grads = buffers.pop(id(node), None)
            if grads is None:
                continue
            if on_gpus:
                _engine._follow_gradient(grads)
            for output_nr, g in enumerate(grads):
                for index in targets.get((id(node), output_nr), ()):
                    captured[index] = g
            if type(node) is AccumulateGrad or not any(
                    child is not None and id(child) in needed for child, _ in node.next_functions):
                continue
            result = _run_node(node, grads, batch)
            if not retain_graph and (node._saved or node.torch_kept is not None or node._ctx_tensors):
                _function.release_saved(node)
            for (child, child_nr), g in zip(node.next_functions, result):
                if child is not None and g is not None and id(child) in needed:
                    _add_to_buffer(buffers, child, child_nr, g)
    finally:
        _grad_state.enabled = previous
        _function.numpy_errstate.reset(quiet)
        _engine._callers_errstate.pop()
    return _owned(captured, [g._data for _, g in pairs], create_graph)


def _owned(captured: list, seeds: list, create_graph: bool) -> tuple:
    """The gradients, each in writeable memory of its own: a rule may hand one array to two
    inputs (add's), return a broadcast view (sum's), or pass the caller's cotangent through (an
    identity), and torch's results are fresh tensors. A recorded gradient is copied by a
    recorded clone."""
    taken = {id(_root(seed)) for seed in seeds}
    result = []
    for g in captured:
        if g is not None:
            array = g._data
            root = _root(array)
            if id(root) in taken or not writeable(array) or has_expanded_dims(array):
                g = g.clone() if create_graph else type(g)._make(array.copy())
                root = g._data
            taken.add(id(root))
        result.append(g)
    return tuple(result)


def _root(array):
    """The array that owns ``array``'s memory."""
    while array.base is not None:
        array = array.base
    return array


def _run_node(node, grads, batch: int) -> list:
    """One node's input gradients for batched output gradients: its batched rule's when it has
    one, else its backward row by row, stacked."""
    rule = BATCHED_RULES.get(node._forward_cls)
    if rule is not None:
        result = rule(node, *grads)
        if result is not NotImplemented:
            if type(result) is not tuple:
                result = (result,)
            edges = node.next_functions
            if len(result) != len(edges):
                result = _engine._checked_count(node, result)
            fixed = []
            for i, g in enumerate(result):
                meta = node._input_meta[i]
                if g is None or meta is None or edges[i][0] is None:
                    fixed.append(None)
                else:
                    fixed.append(_fixed_batched_gradient(node, i, g, meta, batch))
            return fixed
    return _row_by_row(node, grads, batch)


def _row_by_row(node, grads, batch: int) -> list:
    """The node's ordinary backward once per row of the batched gradients (the engine's
    ``_call_rule``: missing gradients materialised, results fixed to their inputs' shapes and
    dtypes), each input's rows stacked (recorded when the walk records); the graph is kept for
    the rows after the first."""
    Tensor = _function._Tensor
    recording = _grad_state.enabled
    if recording:  # each batched gradient split into its rows by one recorded node
        per_row = [(None,) * batch if g is None else UnstackRows.apply(g) for g in grads]
    else:
        per_row = [(None,) * batch if g is None else tuple(Tensor._make(row) for row in g._data) for g in grads]
    rows = [_engine._call_rule(node, [split[b] for split in per_row], retain_graph=True) for b in range(batch)]
    stacked = []
    for i, meta in enumerate(node._input_meta):
        column = [row[i] for row in rows]
        present = [g for g in column if g is not None]
        if not present:
            stacked.append(None)
            continue
        xp = array_module(present[0]._data)
        zeros = None
        if any(g is None for g in column):  # a rule that gave this input no gradient for some rows only
            zeros = Tensor._make(xp.zeros(meta[0], meta[1]))
        column = [zeros if g is None else g for g in column]
        stacked.append(StackRows.apply(*column) if recording
                       else Tensor._make(xp.stack([g._data for g in column])))
    return stacked


def _fixed_batched_gradient(node, i: int, g, meta: tuple, batch: int):
    """A rule's batched gradient for input ``i`` as a Tensor of shape ``(batch,) + shape`` and the
    input's dtype: dims it broadcast over (leading ones, size-1 ones) summed, the batch dim kept
    (by recorded ops when the walk records)."""
    Tensor = _function._Tensor
    shape, dtype = meta
    if not isinstance(g, Tensor):
        g = Tensor._make(np.asarray(g))
    if _grad_state.enabled or _function.tracing_ops:  # (a vmap recording its ops sees these too)
        return _recorded_fix(node, i, g, shape, dtype, batch)
    data = g._data
    if data.shape != (batch,) + shape:
        dims = _broadcast_dims(node, i, data.shape, shape, batch)
        xp = array_module(data)
        data = (xp.sum(data, axis=dims) if dims else data).reshape((batch,) + shape)
    if data.dtype != dtype:
        if data.dtype.kind == "c" and dtype.kind != "c":
            data = data.real  # a real input's gradient is the real part, as the engine's
        data = data.astype(dtype)
    return g if data is g._data else Tensor._make(data)


def _recorded_fix(node, i: int, g, shape: tuple, dtype, batch: int):
    """``_fixed_batched_gradient`` in recorded Tensor ops."""
    if tuple(g.shape) != (batch,) + shape:
        dims = _broadcast_dims(node, i, tuple(g.shape), shape, batch)
        g = (g.sum(dims) if dims else g).reshape((batch,) + shape)
    if g._data.dtype != dtype:
        if g._data.dtype.kind == "c" and dtype.kind != "c":
            g = g.real
        g = g.to(dtype=_engine._np_to_dtype(dtype))
    return g


def _broadcast_dims(node, i: int, got: tuple, shape: tuple, batch: int) -> tuple:
    """The dims of a batched gradient of shape ``got`` to sum for an input of shape ``shape``:
    leading ones beyond the batch dim and size-1 ones it broadcast along; raises, naming the
    node, when ``got`` is not the batch dim followed by a shape that broadcasts to the input's."""
    inner = got[1:]
    if not got or got[0] != batch or not _engine._broadcastable_to(shape, inner):
        raise RuntimeError(
            f"{node.name()}: its batched rule returned a gradient of shape {got} for input "
            f"{i} of shape {tuple(shape)}; expected the batch dim {batch} followed by a shape that "
            "broadcasts to the input's")
    lead = len(inner) - len(shape)
    return tuple(range(1, 1 + lead)) + tuple(
        1 + lead + k for k, size in enumerate(shape) if size == 1 and inner[lead + k] != 1)


def _add_to_buffer(buffers, node, output_nr: int, grad) -> None:
    """Add a batched gradient for ``node``'s output ``output_nr`` to the ones waiting for it
    (fan-out sums a fresh array: a rule may hand the same tensor to two inputs)."""
    slots = buffers.get(id(node))
    if slots is None:
        slots = buffers[id(node)] = [None] * node._num_outputs
    previous = slots[output_nr]
    if previous is None:
        slots[output_nr] = grad
    else:
        slots[output_nr] = previous + grad if _grad_state.enabled or _function.tracing_ops else \
            type(grad)._make(previous._data + grad._data)


def has_batched_rules(outputs) -> bool:
    """Whether every node behind ``outputs`` is a leaf or an op with a batched rule: a built-in
    op, whose own backward is recorded under create_graph, so the graph may be differentiated
    twice (jacfwd's columns by the double-vjp walk) and both walks run batched."""
    roots = [out.grad_fn for out in outputs if out.grad_fn is not None]
    return all(type(node) is AccumulateGrad or getattr(node, "_forward_cls", None) in BATCHED_RULES
               for node in _engine._topological_order(roots))


# the most elements a batched gradient gets when jacobian_rows picks the chunk size (256 MiB in float32)
_AUTO_CHUNK_ELEMENTS = 1 << 26


def jacobian_rows(output, inputs, chunk_size=None, create_graph: bool = False):
    """d output / d inputs as rows: for each input a Tensor of shape ``(output.numel(),) +
    input.shape`` (None where the output does not reach it), by ``batched_backward`` with the
    identity's rows as cotangents, ``chunk_size`` rows per walk; the graph is kept. Under
    ``create_graph`` the rows are recorded (one graph with a batch dim, the chunks joined by a
    recorded concatenation). None when the graph needs the one-backward-per-row path.

    Without a ``chunk_size``, as many rows as keep each batched gradient under
    ``_AUTO_CHUNK_ELEMENTS`` (all of them for most graphs): a wide graph's B-row gradients would
    otherwise outgrow the Jacobian itself (torch's vmap takes all rows at once)."""
    Tensor = _function._Tensor
    if output._data.dtype.kind == "c":
        return None  # the row-by-row path refuses a complex output with torch's error
    count = output._data.size
    if chunk_size is None:
        # (an input with no edge, a constant such as predict's weight under jacrev(argnums=2), gets none)
        widest = max((math.prod(meta[0]) for node in _engine._topological_order([output.grad_fn])
                      for meta, (child, _) in zip(node._input_meta, node.next_functions)
                      if meta is not None and child is not None), default=1)
        chunk_size = max(1, _AUTO_CHUNK_ELEMENTS // max(widest, output._data.size, 1))
    step = max(1, min(int(chunk_size), count))
    chunks = [(start, min(start + step, count)) for start in range(0, count, step)]
    xp = array_module(output._data)
    pieces = [[] for _ in inputs]
    for start, stop in chunks:
        seeds = xp.zeros((stop - start, count), dtype=output._data.dtype)
        seeds[xp.arange(stop - start), xp.arange(start, stop)] = 1
        seeds = Tensor._make(seeds.reshape((stop - start,) + output._data.shape))
        if _function.tracing_ops:  # the same rows for every slice of a vmap that records its ops
            _function.traced_constant(seeds)
        found = batched_backward((output,), inputs, (seeds,), retain_graph=True, create_graph=create_graph)
        if found is None:
            return None
        for j, g in enumerate(found):
            pieces[j].append(g)
    rows = []
    for x, per_chunk in zip(inputs, pieces):
        if all(g is None for g in per_chunk):
            rows.append(None)
            continue
        per_chunk = [g if g is not None else Tensor._make(xp.zeros((stop - start,) + x._data.shape, x._data.dtype))
                     for g, (start, stop) in zip(per_chunk, chunks)]
        if len(per_chunk) == 1:
            rows.append(per_chunk[0])
        elif create_graph:
            rows.append(CatRows.apply(*per_chunk))
        else:
            rows.append(Tensor._make(xp.concatenate([g._data for g in per_chunk])))
    return rows


_batched_grad.walk = batched_backward
