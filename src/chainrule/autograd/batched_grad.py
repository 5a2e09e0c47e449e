"""Batched gradients: one reverse walk whose cotangents carry a leading batch dim (``jacrev``,
``autograd.functional.jacobian``, ``autograd.grad(..., is_grads_batched=True)``), and the row
stacking those paths share.

A Jacobian's rows are B vector-Jacobian products through the same graph. Run as B backward
passes, each node's rule does B matrix-vector products where one matrix-matrix product would do
(``jacrev`` of a 2,048-output linear layer: 2,048 GEMVs against one GEMM). ``batched_backward``
walks the graph once instead, with every gradient of shape ``(B,) + shape``:

- a node whose Function class has a rule in ``BATCHED_RULES`` runs it once on the batched
  gradient (the rules live beside the ops, in ``ops/batched_rules.py``; autograd imports no ops);
- any other node runs its ordinary backward once per row and the rows are stacked: always exact,
  so the table only decides the speed.

As in the engine, the walk (not the rules) reduces a broadcast gradient to its input's shape —
here ``(B,) + input shape``, the batch dim kept — and casts it to the input's dtype.

The walk serves plain first-order passes. A graph with hooks, anomaly mode, the profiler,
forward AD, ``create_graph=True`` or a ``GradientEdge`` among the inputs takes the one-backward-
per-row path (``batched_backward`` returns None), which is exact for all of them.
"""

from __future__ import annotations

import numpy as np

from .._backend import array_module, gpu_in_use, writeable
from . import engine as _engine
from . import function as _function
from .function import AccumulateGrad, Function, _anomaly
from .grad_mode import state as _grad_state

__all__ = ["BATCHED_RULES", "register_batched_rule", "broadcasting_rule", "batched_backward", "batched_grad"]

# Function class -> rule(node, grad): ``grad`` is the node's output gradient with a leading batch
# dim B; the rule returns one gradient per input (or None), each with the same leading dim B and
# otherwise the input's shape or one broadcastable to it, or NotImplemented to have this node run
# row by row. Keyed by the exact class: a subclass may change the backward.
BATCHED_RULES: dict = {}


def register_batched_rule(*functions):
    """Decorator: ``rule`` is the batched backward of each Function class in ``functions``."""
    def register(rule):
        for function in functions:
            BATCHED_RULES[function] = rule
        return rule

    return register


def broadcasting_rule(node, grad):
    """The node's own backward, for a rule that is elementwise in the gradient (the gradient
    times factors computed from the saved values, which have the output's shape or broadcast to
    it): a leading batch dim on the gradient broadcasts through it unchanged."""
    return node._forward_cls.backward(node, grad)


def batched_backward(outputs, inputs, grad_outputs, retain_graph: bool):
    """The gradients of ``outputs`` with respect to ``inputs`` for a batch of cotangents, in one
    reverse walk: ``grad_outputs[i]`` has shape ``(B,) + outputs[i].shape`` (or is None for an
    output that takes no part), and input j's gradient comes back with shape
    ``(B,) + inputs[j].shape``, or None where no output reaches it. Nothing is accumulated into
    ``.grad``; the saved tensors of the nodes that ran are freed unless ``retain_graph``.

    Returns None, having run nothing, when the graph needs the engine's general path (hooks,
    anomaly mode, the profiler, forward AD, an unusual argument): the caller then runs one
    backward per row, which also raises torch's errors for invalid arguments.
    """
    Tensor = _function._Tensor
    if _anomaly.enabled or _function.active_profiler is not None or _function.active_extension is not None:
        return None
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
        _add_to_buffer(buffers, node, output_nr, Tensor._make(g._data))
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
            node.saved_tensors  # noqa: B018 - the property raises torch's error

    captured = [None] * len(inputs)
    # the walk runs as the engine's: grad mode off, NumPy's warnings off, a user Function's rule
    # with the caller's NumPy error state
    _engine._callers_errstate.append(_function.numpy_errstate.get())
    quiet = _function.numpy_errstate.set(_function.QUIET)
    previous = _grad_state.enabled
    _grad_state.enabled = False
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
            if not retain_graph and node._saved:
                node._saved = ()
                node._freed = True
            for (child, child_nr), g in zip(node.next_functions, result):
                if child is not None and g is not None and id(child) in needed:
                    _add_to_buffer(buffers, child, child_nr, g)
    finally:
        _grad_state.enabled = previous
        _function.numpy_errstate.reset(quiet)
        _engine._callers_errstate.pop()
    return _owned(captured, [g._data for _, g in pairs])


def _owned(captured: list, seeds: list) -> tuple:
    """The gradients, each in writeable memory of its own: a rule may hand one array to two
    inputs (add's), return a broadcast view (sum's), or pass the caller's cotangent through (an
    identity), and torch's results are fresh tensors."""
    taken = {id(_root(seed)) for seed in seeds}
    result = []
    for g in captured:
        if g is not None:
            array = g._data
            root = _root(array)
            if id(root) in taken or not writeable(array) or any(
                    stride == 0 and size > 1 for stride, size in zip(array.strides, array.shape)):
                g = type(g)._make(array.copy())
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
    rule = BATCHED_RULES.get(node._forward_cls) if len(grads) == 1 and grads[0] is not None else None
    if rule is not None:
        result = rule(node, grads[0])
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
    dtypes), each input's rows stacked; the graph is kept for the rows after the first."""
    Tensor = _function._Tensor
    rows = [_engine._call_rule(node, [None if g is None else Tensor._make(g._data[b]) for g in grads],
                               retain_graph=True)
            for b in range(batch)]
    stacked = []
    for i, meta in enumerate(node._input_meta):
        column = [row[i] for row in rows]
        present = [g for g in column if g is not None]
        if not present:
            stacked.append(None)
            continue
        xp = array_module(present[0]._data)
        zeros = None
        arrays = []
        for g in column:
            if g is None:  # a rule that gave this input no gradient for some rows only
                zeros = xp.zeros(meta[0], meta[1]) if zeros is None else zeros
                arrays.append(zeros)
            else:
                arrays.append(g._data)
        stacked.append(Tensor._make(xp.stack(arrays)))
    return stacked


def _fixed_batched_gradient(node, i: int, g, meta: tuple, batch: int):
    """A rule's batched gradient for input ``i`` as a Tensor of shape ``(batch,) + shape`` and the
    input's dtype: dims it broadcast over (leading ones, size-1 ones) summed, the batch dim kept."""
    Tensor = _function._Tensor
    shape, dtype = meta
    if not isinstance(g, Tensor):
        g = Tensor._make(np.asarray(g))
    data = g._data
    if data.shape != (batch,) + shape:
        inner = data.shape[1:]
        if data.ndim == 0 or data.shape[0] != batch or not _engine._broadcastable_to(shape, inner):
            raise RuntimeError(
                f"{node.name()}: its batched rule returned a gradient of shape {tuple(data.shape)} for input "
                f"{i} of shape {tuple(shape)}; expected the batch dim {batch} followed by a shape that "
                "broadcasts to the input's")
        lead = len(inner) - len(shape)
        dims = tuple(range(1, 1 + lead)) + tuple(
            1 + lead + k for k, size in enumerate(shape) if size == 1 and inner[lead + k] != 1)
        xp = array_module(data)
        data = (xp.sum(data, axis=dims) if dims else data).reshape((batch,) + shape)
    if data.dtype != dtype:
        if data.dtype.kind == "c" and dtype.kind != "c":
            data = data.real  # a real input's gradient is the real part, as the engine's
        data = data.astype(dtype)
    return g if data is g._data else Tensor._make(data)


def _add_to_buffer(buffers, node, output_nr: int, grad) -> None:
    """Add a batched gradient for ``node``'s output ``output_nr`` to the ones waiting for it
    (fan-out sums a fresh array: a rule may hand the same tensor to two inputs)."""
    slots = buffers.get(id(node))
    if slots is None:
        slots = buffers[id(node)] = [None] * node._num_outputs
    previous = slots[output_nr]
    slots[output_nr] = grad if previous is None else type(grad)._make(previous._data + grad._data)


def jacobian_rows(output, inputs, chunk_size=None):
    """d output / d inputs as rows: for each input a Tensor of shape ``(output.numel(),) +
    input.shape`` (None where the output does not reach it), by ``batched_backward`` with the
    identity's rows as cotangents, ``chunk_size`` rows per walk (all at once when None); the
    graph is kept. None when the graph needs the one-backward-per-row path."""
    Tensor = _function._Tensor
    count = output._data.size
    step = count if chunk_size is None else max(1, min(int(chunk_size), count))
    chunks = [(start, min(start + step, count)) for start in range(0, count, step)]
    xp = array_module(output._data)
    pieces = [[] for _ in inputs]
    for start, stop in chunks:
        seeds = xp.zeros((stop - start, count), dtype=output._data.dtype)
        seeds[xp.arange(stop - start), xp.arange(start, stop)] = 1
        seeds = Tensor._make(seeds.reshape((stop - start,) + output._data.shape))
        found = batched_backward((output,), inputs, (seeds,), retain_graph=True)
        if found is None:
            return None
        for j, g in enumerate(found):
            pieces[j].append(g)
    rows = []
    for x, per_chunk in zip(inputs, pieces):
        if all(g is None for g in per_chunk):
            rows.append(None)
            continue
        arrays = [g._data if g is not None else xp.zeros((stop - start,) + x._data.shape, x._data.dtype)
                  for g, (start, stop) in zip(per_chunk, chunks)]
        rows.append(Tensor._make(arrays[0] if len(arrays) == 1 else xp.concatenate(arrays)))
    return rows


def batched_grad(grad, outputs: tuple, inputs: tuple, grad_outputs, retain_graph, create_graph, allow_unused,
                 materialize_grads):
    """``autograd.grad(..., is_grads_batched=True)``: each grad_output's first dim is a batch, and
    each gradient gets the same first dim, the vector-Jacobian products of its rows.

    torch vmaps one backward over the batch; so does ``batched_backward`` here, for a plain
    (``create_graph=False``) pass. Otherwise (or where that walk declines the graph) it is one
    backward per batch element, the graph retained between them (the caller's ``retain_graph``
    applies after the last): the same numbers, B backwards' time. An input no output reaches gets
    None (``allow_unused``) or, with ``materialize_grads``, zeros of its own unbatched shape, as
    torch's. ``grad`` is the unbatched ``autograd.grad``; ``outputs``, ``inputs`` and a given
    ``grad_outputs`` are tuples.
    """
    grad_outputs = (None,) * len(outputs) if grad_outputs is None else grad_outputs
    if len(grad_outputs) != len(outputs):  # the unbatched call raises torch's message
        return grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused=allow_unused)
    sizes = []
    for i, (g, out) in enumerate(zip(grad_outputs, outputs)):
        if g is None:
            if out.dim() == 0:
                raise ValueError("vmap(vjp, in_dims=0, ...)(<inputs>): Got in_dim=0 for some input, but that "
                                 "input is a Tensor of dimensionality 0 so expected in_dim to satisfy "
                                 "0 <= in_dim < 0.")
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        if g.dim() == 0 or tuple(g.shape[1:]) != tuple(out.shape):
            raise RuntimeError(
                "If `is_grads_batched=True`, we interpret the first dimension of each grad_output as the batch "
                "dimension. The sizes of the remaining dimensions are expected to match the shape of "
                f"corresponding output, but a mismatch was detected: grad_output[{i}] has a shape of "
                f"torch.Size({list(g.shape[1:])}) and output[{i}] has a shape of torch.Size({list(out.shape)}). "
                "If you only want some tensors in `grad_output` to be considered batched, consider using vmap.")
        sizes.append(g.shape[0])
    if len(set(sizes)) > 1:
        raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                         f"{sizes} for the mapped dimension")
    batch = sizes[0] if sizes else 0
    if batch == 0:
        raise IndexError("index 0 is out of bounds for dimension 0 with size 0")
    if retain_graph is None:
        retain_graph = create_graph
    unused_allowed = bool(allow_unused) or materialize_grads
    if not create_graph:
        found = batched_backward(outputs, inputs, grad_outputs, retain_graph)
        if found is not None:
            for i, g in enumerate(found):
                if g is None and not unused_allowed:
                    raise RuntimeError(
                        f"One of the differentiated Tensors (inputs[{i}]) appears to not have been used in "
                        "the graph. Set allow_unused=True if this is the desired behavior.")
            return tuple(g if g is not None else x.new_zeros(tuple(x.shape)) if materialize_grads else None
                         for g, x in zip(found, inputs))
    rows = [grad(outputs, inputs, [g[b] for g in grad_outputs], retain_graph=retain_graph or b < batch - 1,
                 create_graph=create_graph, allow_unused=unused_allowed) for b in range(batch)]
    result = []
    for j, x in enumerate(inputs):
        per_row = [row[j] for row in rows]
        if per_row[0] is None:
            result.append(x.new_zeros(tuple(x.shape)) if materialize_grads else None)
        else:
            result.append(StackRows.apply(*per_row))
    return tuple(result)


class StackRows(Function):
    """Rows stacked along a new first dim: the Jacobian's (functional.jacobian), the batched
    gradients' (batched_grad). torch.stack's job (hence its node name), kept here so that autograd
    imports no ops.
    """

    node_name = "StackBackward0"
    label = "stack"
    rule = "each input gets its own slice of the gradient"
    formula = None
    _array_forward = True

    @staticmethod
    def forward(ctx, *rows):
        return array_module(rows[0]).stack(rows)

    @staticmethod
    def backward(ctx, grad):
        return grad.unbind(0)
