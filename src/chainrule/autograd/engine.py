"""The backward engine: one iterative walk of the graph in torch's order.

A node runs once every node consuming its outputs has run; among the nodes ready, the newest
(highest sequence number, a leaf's AccumulateGrad before all) runs first, as torch's ready queue
orders them — so hooks fire in torch's order, and a custom Function's backward that differentiates
an older part of the graph runs before that part's saved tensors are released.

For each node, gradients arriving from every consumer are summed first (fan-out), then the
node's rule maps them to one gradient per input. The engine — not the rules — reduces a
broadcast gradient back to its input's shape (``sum_to_shape``), casts it to the input's dtype,
and reports a rule that returns a gradient of the wrong shape, naming the node.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from heapq import heappop, heappush
from typing import TYPE_CHECKING

import numpy as np

from .. import _sum_order, _torch_function
from .._backend import (
    array_module,
    contiguous_strides,
    dense_non_overlapping,
    follow_device,
    gpu_in_use,
    strided_view,
    writeable,
)
from .._config import warn_once
from .._dtype import parser_type_name
from . import function as _function
from .engine_options import _flags as _engine_flags
from .function import ACCUMULATE_GRAD_PRIORITY, AccumulateGrad, Function, _anomaly, ctx_value, input_sizes
from .grad_mode import state as _grad_state

if TYPE_CHECKING:
    from ..tensor import Tensor

__all__ = ["backward", "grad", "run_backward", "sum_to_shape"]


def _tensor_cls():
    return _function._Tensor


def _as_tuple(x):
    if x is None:
        return ()
    if isinstance(x, (tuple, list)) and not _is_gradient_edge(x):
        return tuple(x)
    return (x,)


def _seed_tuple(gradients) -> tuple:
    """The seeds as torch's _tensor_or_tensors_to_tuple takes them: one Tensor, None, or a
    sequence — a bare Python number raises tuple()'s TypeError ("'float' object is not
    iterable"), as torch's does."""
    if gradients is None:
        return ()
    if isinstance(gradients, _tensor_cls()):
        return (gradients,)
    return tuple(gradients)


def _root_grads(outputs, grad_outputs, create_graph: bool):
    """Seed gradients: ones for scalar outputs, the user's ``gradient`` otherwise."""
    Tensor = _tensor_cls()
    grads = []
    for i, out in enumerate(outputs):
        g = grad_outputs[i] if i < len(grad_outputs) else None
        if g is None:
            if not out._requires_grad:  # (torch seeds nothing for it: the engine then refuses it)
                grads.append(None)
                continue
            if out._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if out._data.dtype.kind == "c":
                raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got "
                                   f"{_np_to_dtype(out._data.dtype)}")
            g = Tensor._make(np.ones_like(out._data))
            if _function.active_dispatch is not None:  # a mode, or a wrapper subclass output, makes it
                made = _function.factory_dispatch("ones_like", _ones_like, (out,), {  # (torch's kwargs)
                    "pin_memory": False, "memory_format": sys.modules["chainrule"].preserve_format})
                g = g if made is _function.RUN_UNDISPATCHED else made
            if _function.tracing_ops:  # the same ones for every slice of a vmap that records its ops
                _function.traced_constant(g)
        elif not isinstance(g, Tensor):
            raise TypeError(f"gradients can be either Tensors or None, but got {type(g).__name__}")
        if g._data.shape != out._data.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of torch.Size({list(g.shape)}) and "
                f"output[{i}] has a shape of torch.Size({list(out.shape)})."
            )
        if not create_graph and g._requires_grad:
            g = g.detach()
        grads.append(g)
    return grads


def _ones_like(tensor, *, pin_memory=False, memory_format=None, **kwargs):
    """The implicit seed of a scalar output (torch's ``aten.ones_like``, which dispatch modes see); a handler
    that asks for other kwargs (dtype=, device=) gets chainrule.ones_like's answer."""
    if kwargs or pin_memory:
        return sys.modules["chainrule"].ones_like(tensor, pin_memory=pin_memory, memory_format=memory_format, **kwargs)
    return _tensor_cls()._make(np.ones_like(tensor._data))


def _topological_order(roots):
    """Nodes reachable from ``roots``, every consumer before the nodes it feeds (iterative DFS).

    Nodes hash by identity, so the visited set holds them directly (no ``id()`` per edge); a
    node with one input (or one edge besides constants) — most of a long chain — is descended
    into without an iterator.
    """
    order = []
    visited = set()
    add = visited.add
    for root in roots:
        if root is None or root in visited:
            continue
        add(root)
        stack = [(root, iter(root.next_functions))]
        push = stack.append
        while stack:
            node, children = stack[-1]
            for child, _ in children:
                if child is not None and child not in visited:
                    add(child)
                    if not child.next_functions:  # a leaf's AccumulateGrad: finished at once
                        order.append(child)
                        continue
                    # walk down a run of single-input nodes in a loop, no stack entry each
                    while True:
                        edges = child.next_functions
                        if len(edges) == 1:
                            grandchild = edges[0][0]
                        elif len(edges) == 2 and edges[1][0] is None:  # x * constant
                            grandchild = edges[0][0]
                        elif len(edges) == 2 and edges[0][0] is None:  # constant * x
                            grandchild = edges[1][0]
                        else:
                            break
                        if grandchild is None or grandchild in visited:
                            break
                        push((child, _DONE))
                        add(grandchild)
                        child = grandchild
                    push((child, iter(child.next_functions)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _topological_nr(node) -> int:
    """torch's ``Node::topological_nr``: the length of the longest path from ``node`` to a node with
    no edges (a leaf's AccumulateGrad has 0). A path from X to Y gives X a larger number than Y, so
    a walk toward Y never needs to follow X's edges when X's number is below Y's. Computed when first
    asked for and kept in the node's slot (a node's edges do not change once it is in a graph), so
    each node is numbered once however many walks pass through it."""
    nr = node._topological_nr
    if nr is not None:
        return nr
    stack = [node]
    push = stack.append
    while stack:
        top = stack[-1]
        if top._topological_nr is not None:  # (pushed twice, numbered since)
            stack.pop()
            continue
        longest = -1
        waiting = False
        for child, _ in top.next_functions:
            if child is not None:
                nr = child._topological_nr
                if nr is None:
                    push(child)
                    waiting = True
                elif nr > longest:
                    longest = nr
        if not waiting:
            top._topological_nr = longest + 1
            stack.pop()
    return node._topological_nr


def _pruned_dependencies(roots, min_topo: int):
    """``_dependencies`` for a walk toward nodes numbered ``min_topo`` or more (grad or
    backward with non-leaf ``inputs``): a node numbered below cannot lead to them, so its edges
    are not followed — torch's compute_dependencies with min_topo_nr. A nested grad inside a long
    graph (a divergence at each step of an ODE solve) then walks only the graph built since its
    inputs, not their whole history. Only numbered nodes are left unexpanded: the inputs' history
    is numbered (to find ``min_topo``), the graph built above it need not be."""
    dependencies = {}
    stack = []
    for root in roots:
        count = dependencies.get(root)
        if count is None:
            dependencies[root] = 1
            stack.append(root)
        else:
            dependencies[root] = count + 1
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        nr = node._topological_nr
        if nr is not None and nr < min_topo:
            continue
        for child, _ in node.next_functions:
            if child is not None:
                count = dependencies.get(child)
                if count is None:
                    dependencies[child] = 1
                    push(child)
                else:
                    dependencies[child] = count + 1
    return dependencies


def _pruned_order(roots, min_topo: int):
    """``_topological_order`` of the nodes not numbered below ``min_topo`` (see _pruned_dependencies):
    the only ones that can lie on a path to the inputs. The same walk, runs of single-input nodes
    included, with a numbered node below ``min_topo`` treated as absent."""
    order = []
    visited = set()
    add = visited.add
    for root in roots:
        if root is None or root in visited:
            continue
        add(root)
        stack = [(root, iter(root.next_functions))]
        push = stack.append
        while stack:
            node, children = stack[-1]
            for child, _ in children:
                if child is not None and child not in visited and (
                        (nr := child._topological_nr) is None or nr >= min_topo):
                    add(child)
                    if not child.next_functions:
                        order.append(child)
                        continue
                    while True:
                        edges = child.next_functions
                        if len(edges) == 1:
                            grandchild = edges[0][0]
                        elif len(edges) == 2 and edges[1][0] is None:
                            grandchild = edges[0][0]
                        elif len(edges) == 2 and edges[0][0] is None:
                            grandchild = edges[1][0]
                        else:
                            break
                        if grandchild is None or grandchild in visited or (
                                (nr := grandchild._topological_nr) is not None and nr < min_topo):
                            break
                        push((child, _DONE))
                        add(grandchild)
                        child = grandchild
                    push((child, iter(child.next_functions)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _dependencies(roots):
    """For each node reachable from ``roots``, how many edges lead into it — from the nodes of
    the graph and from the roots themselves (one per output the backward starts at, as torch's
    GraphRoot has): a node runs once that many have been released."""
    dependencies = {}
    stack = []
    for root in roots:
        count = dependencies.get(root)
        if count is None:
            dependencies[root] = 1
            stack.append(root)
        else:
            dependencies[root] = count + 1
    pop, push = stack.pop, stack.append
    while stack:
        for child, _ in pop().next_functions:
            if child is not None:
                count = dependencies.get(child)
                if count is None:
                    dependencies[child] = 1
                    push(child)
                else:
                    dependencies[child] = count + 1
    return dependencies


def _release(node, dependencies, ready, following):
    """One more edge into ``node`` has been followed: when it was the last, ``node`` is ready — the
    next to run if nothing else waits (returned as ``following``), else queued. Returns the new
    ``following``."""
    left = dependencies[node] - 1
    dependencies[node] = left
    if left == 0:
        if following is None and not ready:
            return node
        if following is not None:
            _push_ready(ready, following)
            following = None
        _push_ready(ready, node)
    return following


# The ready queue, ordered as torch's std::priority_queue orders it by sequence number. Only
# AccumulateGrad nodes tie, and the order tied ones leave the heap in — the order leaves' hooks
# fire — follows from the heap's exact layout. heapq (in C) keeps the same layout as libstdc++'s
# push_heap/pop_heap: a pop sinks the hole to a leaf along the better child (the right one on a
# tie), then lifts the last element from there; a push lifts while strictly better than the
# parent. So entries must compare only by priority, tied ones as equivalent (neither less than
# the other): a node's entry is (-sequence number, node), and a tied leaf's (-priority, NaN,
# node) with a NaN of its own — two distinct NaNs are unequal and neither is less than the other,
# so a tuple comparison stops at them and never compares the nodes.

_NAN = float("nan")


def _ready_entry(node) -> tuple:
    """``node``'s entry in the ready heap (see above)."""
    priority = node._sequence_number
    if priority == ACCUMULATE_GRAD_PRIORITY:
        return (-priority, -_NAN, node)  # (negating makes a new NaN object)
    return (-priority, node)


def _push_ready(heap, node) -> None:
    heappush(heap, _ready_entry(node))


def _pop_ready(heap):
    return heappop(heap)[-1]


_DONE = iter(())  # an exhausted iterator: a node whose only child has already been descended into


_callers_errstate = []  # the NumPy error state of each (nested) backward call's caller
_queued_callbacks = []  # per (nested) backward call, what queue_callback asked to run at its end
_given_inputs = []  # per (nested) backward call, whether it was asked for chosen inputs (grad, backward(inputs=))


def queue_callback(callback) -> None:
    """Run ``callback()`` when the backward pass now running ends (torch's
    ``Variable._execution_engine.queue_callback``; graph.register_multi_grad_hook uses it)."""
    if not _queued_callbacks:
        raise RuntimeError("Final callbacks can only be installed during backward pass.")
    _queued_callbacks[-1].append(callback)


def is_checkpoint_valid() -> bool:
    """torch.autograd._is_checkpoint_valid: False inside a backward pass asked for chosen inputs
    (``grad``, ``backward(inputs=)``), which a reentrant checkpoint's own backward cannot serve."""
    return not (_given_inputs and _given_inputs[-1])


def run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs=None,
                 allow_unused=False, accumulate=True):
    """The walk, with NumPy's floating-point warnings off throughout (torch is silent about
    inf and NaN in gradients): one switch per backward call rather than one per node."""
    _callers_errstate.append(_function.numpy_errstate.get())
    quiet = _function.numpy_errstate.set(_function.QUIET)
    callbacks = []
    _queued_callbacks.append(callbacks)
    _given_inputs.append(bool(inputs))
    try:
        result = _run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs, allow_unused, accumulate)
    finally:
        _function.numpy_errstate.reset(quiet)
        _callers_errstate.pop()
        _queued_callbacks.pop()
        _given_inputs.pop()
    for callback in callbacks:
        callback()
    return result


def _run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs, allow_unused, accumulate):
    """Shared by ``backward`` and ``grad``.

    With ``accumulate`` (``backward``), leaf gradients go into ``.grad`` (only ``inputs``' if
    given); otherwise (``grad``) the gradients for ``inputs`` are returned and no ``.grad`` changes.
    """
    Tensor = _tensor_cls()
    outputs = _as_tuple(outputs)
    explicit = grad_outputs is not None
    grad_outputs = _seed_tuple(grad_outputs)
    if retain_graph is None:
        retain_graph = create_graph
    if explicit and len(grad_outputs) < len(outputs):
        # torch's _make_grads checks the pairs zip() makes, then its engine counts both sides
        if all(isinstance(out, Tensor) for out in outputs[:len(grad_outputs)]):
            _root_grads(outputs[:len(grad_outputs)], grad_outputs, create_graph)
        raise RuntimeError(f"got {len(outputs)} tensors and {len(grad_outputs)} gradients")
    for i, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"backward: output {i} is a {type(out).__name__}, expected a Tensor")
    # torch makes (and checks) every seed before its engine looks at any output's node
    seeds = _root_grads(outputs, grad_outputs, create_graph)
    for i, out in enumerate(outputs):
        # (a view made under no_grad of a tensor requiring grad requires grad through its base but has
        # neither a grad_fn nor an AccumulateGrad: torch's gradient_edge finds no node for it)
        if not out._requires_grad or out.grad_fn is None and out._get_accumulator() is None:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn"
            )
    # gradients user code can see (the caller's `gradient=`, what hooks received, retained
    # .grad): a leaf's .grad must never share memory with them, so they are copied, not stolen
    exposed = {id(g) for g in grad_outputs if g is not None}
    inputs = _as_tuple(inputs)
    for i, t in enumerate(inputs):
        if _is_gradient_edge(t) and not accumulate:
            continue  # graph.GradientEdge: the gradient flowing into (node, output_nr)
        if not isinstance(t, Tensor):
            raise TypeError(f"inputs[{i}] is a {type(t).__name__}, expected a Tensor")
        if accumulate:
            # torch's backward(inputs=) retains each input's grad in turn (the ones before a refused input
            # stay retained): retain_grad's refusal
            t.retain_grad()
        elif not t._requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    if create_graph and accumulate:
        _warn_reference_cycle_once()  # (torch warns once its checks of the call passed, not for a refused one)

    # Where each requested input's gradient is captured: at its leaf's AccumulateGrad node, or
    # at the (grad_fn, output_nr) slot of a non-leaf before that node's rule runs.
    targets = {}
    # a leaf's AccumulateGrad is held only weakly by its tensor: keep the ones keyed here alive
    # for the walk, or a freed one's id can be reused by another leaf's (grad(g, x) would
    # then return g's seed as x's gradient)
    accumulators = []
    # the smallest topological number among the inputs' nodes (0 when one is a leaf, as
    # torch's compute_min_topological_nr): the walk need not go below it
    min_topo = None
    for i, t in enumerate(inputs):
        if _is_gradient_edge(t):
            accumulators.append(t.node)  # (kept alive for the walk, like a leaf's accumulator)
            key = (id(t.node), t.output_nr)
            min_topo = 0
        elif t.grad_fn is None:
            accumulators.append(t._get_accumulator())
            key = (id(accumulators[-1]), 0)
            min_topo = 0
        else:
            fn = t.grad_fn
            key = (id(fn), t._output_nr)
            if min_topo != 0:
                nr = _topological_nr(fn)
                min_topo = nr if min_topo is None or nr < min_topo else min_topo
        targets.setdefault(key, []).append(i)
    captured = [None] * len(inputs)

    buffers = {}
    roots = []
    for out, g in zip(outputs, seeds):
        node = out.grad_fn if out.grad_fn is not None else out._get_accumulator()
        _add_to_buffer(buffers, node, out._output_nr if out.grad_fn is not None else 0, g,
                       create_graph)
        roots.append(node)

    lone_root = roots[0] if len(roots) == 1 else None
    # (below 2 only edgeless nodes could be skipped: the plain walks)
    pruned = min_topo is not None and min_topo > 1
    dependencies = _pruned_dependencies(roots, min_topo) if pruned else _dependencies(roots)
    needed = running = capture_nodes = None
    if inputs:
        running = set()
        order = _pruned_order(roots, min_topo) if pruned else _topological_order(roots)
        needed = _needed_nodes(order, targets, running, accumulate)
        if not accumulate:
            capture_nodes = {key[0] for key in targets}
    # A freed graph or a saved tensor changed in place raises when the walk reaches the node, as
    # torch's unpack does: the nodes it ran before keep their effects (hooks called, leaves' .grad
    # accumulated, their saved tensors freed).
    # torch's order: among the nodes whose consumers have all run, the newest (highest sequence
    # number) runs first. A node that becomes ready while none waits runs next without the
    # queue (every link of a chain); otherwise the ready ones wait in `ready`, a heap kept as
    # torch's std::priority_queue keeps it, so leaves' hooks fire in torch's order as well.
    ready = []
    following = None  # the next node to run, when it became ready with `ready` empty
    for root in roots:
        following = _release(root, dependencies, ready, following)

    previous = _grad_state.enabled
    _grad_state.enabled = create_graph
    # a recording profiler times each node's evaluation as one range (the ops its rule runs nest inside)
    profiler = _function.active_profiler
    dispatching = _function.active_dispatch is not None  # rules then run through _call_rule
    node_range = None
    on_gpus = gpu_in_use()
    following_grads = None  # `following`'s gradients when they were handed over without `buffers`
    try:
        while True:
            if following is not None:
                node = following
                following = None
                grads = following_grads
                following_grads = None
            elif ready:
                node = heappop(ready)[-1]
                grads = None
            else:
                break
            if needed is not None and id(node) not in needed:
                if node is lone_root:
                    # torch evaluates a lone output's node though no input lies beyond it (its graph
                    # root): the tensor hooks and retain_grad of that output run, then the walk stops
                    if grads is None:
                        grads = buffers.pop(node, None) or [None] * node._num_outputs
                    _call_pre_hooks(node, grads, exposed, node_hooks=False)
                continue  # (nothing beyond it is needed either: its inputs are never released)
            if grads is None:
                grads = buffers.pop(node, None)
            if grads is None:
                # every edge into it carried None (an undefined gradient): as torch's engine, it
                # runs all the same — its hooks see None, a built-in rule passes None on
                # (_call_rule), a user's Function gets zeros or None, its saved tensors are freed
                grads = [None] * node._num_outputs
            if profiler is not None:
                node_range = profiler.evaluate_function(node, node_range)
            if on_gpus:  # the node's rule (and the .grad sum) run on its gradient's GPU
                _follow_gradient(grads)
            is_leaf_sink = type(node) is AccumulateGrad
            hooked = node._hooked  # (read once: only a hooked node's hooks run before its second test)
            # (a leaf's tensor hooks are kept on its tensor, not on the node)
            if capture_nodes is not None and id(node) in capture_nodes:
                if id(node) not in running:
                    # torch's capture at a node that does not run: the tensors' hooks and
                    # retain_grad run, the gradient they leave is captured, the node's own
                    # pre-hooks and rule do not run
                    if hooked or is_leaf_sink and node.variable._hooks:
                        grads = _call_pre_hooks(node, grads, exposed, node_hooks=False)
                    _capture(node, grads, targets, captured)
                    continue
                # a node that runs on (another requested input lies beyond it): torch captures
                # the gradient as it arrived, before any hook
                _capture(node, grads, targets, captured)
            if hooked or is_leaf_sink and node.variable._hooks:
                grads = _call_pre_hooks(node, grads, exposed)
            if is_leaf_sink:
                if accumulate and (not inputs or (id(node), 0) in targets):
                    # (a leaf that stopped requiring grad since the graph was made, by detach_() or
                    # requires_grad_(False): torch's AccumulateGrad adds nothing; its post-hooks run)
                    if grads[0] is not None and node.variable._requires_grad:
                        _accumulate(node.variable, grads[0], create_graph, exposed, buffers)
                    if node.variable._post_accumulate_grad_hooks:
                        for hook in list(node.variable._post_accumulate_grad_hooks.values()):
                            hook(node.variable)
                if hooked and node._post_hooks:
                    for hook in list(node._post_hooks.values()):  # (an AccumulateGrad passes nothing on)
                        result = hook((), tuple(grads))
                        if result is not None:
                            _checked_hook_result(hook, result, ())
                continue
            if needed is not None and id(node) not in running:
                continue
            versions = node._saved_versions
            if versions is not None or node._freed:
                # torch's node unpacks every saved tensor before its formula, whether the formula
                # reads it or not: a freed or changed one raises here (its pre-hooks have run)
                if node._freed:
                    node.saved_values  # noqa: B018 - the property raises torch's error
                for tensor, version in zip(node._saved, versions):
                    if tensor is not None and version is not None and (
                            0 if tensor._vbox is None else tensor._vbox[0]) != version:
                        node.saved_values  # noqa: B018 - the property raises torch's error
            forward_cls = node._forward_cls
            if (len(grads) != 1 or grads[0] is None or not forward_cls._array_forward
                    or hooked or _anomaly.enabled or dispatching):
                result = _call_rule(node, grads, retain_graph, exposed)
                metas = None  # (_call_rule fixed each gradient's shape and dtype)
            else:
                # the common node — a built-in op, one output, no hooks — without _call_rule: the
                # same steps inline, and a gradient of its input's exact shape and dtype goes
                # straight into the child's buffer (anything else through _fixed_gradient)
                result = forward_cls.backward(node, grads[0])
                if not retain_graph:
                    if node.torch_kept is not None:
                        _function.release_saved(node)
                    elif node._saved:  # release_saved's steps for a node that kept nothing else
                        node._saved = ()
                        node._freed = True
                    elif node._ctx_tensors:
                        _function.release_saved(node)
                if type(result) is not tuple:
                    result = (result,)
                if len(result) != len(node.next_functions):
                    result = _checked_count(node, result)
                metas = node._input_meta
            for i, (child, child_nr) in enumerate(node.next_functions):
                if child is None:
                    continue
                g = result[i]
                if g is not None:
                    if metas is not None:
                        meta = metas[i]
                        # (a dtype is compared by identity first: NumPy's == on two dtypes costs a call)
                        if type(g) is not Tensor or g._data.shape != meta[0] or (
                                g._data.dtype is not meta[1] and g._data.dtype != meta[1]):
                            g = _fixed_gradient(node, i, g, meta)
                    if child._num_outputs == 1 and child not in buffers:
                        if following is None and not ready and dependencies[child] == 1:
                            # its only gradient, and it runs next (a link of a chain): handed over
                            # directly, as _release's steps below would have made it `following`
                            dependencies[child] = 0
                            following = child
                            following_grads = [g]
                            continue
                        buffers[child] = [g]
                    else:
                        _add_to_buffer(buffers, child, child_nr, g, create_graph)
                left = dependencies[child] - 1  # (_release's steps, inline: this runs per edge)
                dependencies[child] = left
                if left == 0:
                    if following is None and not ready:
                        following = child
                    else:
                        if following is not None:
                            heappush(ready, _ready_entry(following))
                            if following_grads is not None:  # (it waits in the heap: its gradients in buffers)
                                buffers[following] = following_grads
                                following_grads = None
                            following = None
                        priority = child._sequence_number  # (_ready_entry's steps, inline)
                        heappush(ready, (-priority, child) if priority != ACCUMULATE_GRAD_PRIORITY
                                 else (-priority, -_NAN, child))
    finally:
        _grad_state.enabled = previous
        if node_range is not None:
            profiler.end(node_range)

    if accumulate:
        return None
    for i, g in enumerate(captured):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"The differentiated Tensor at index {i} appears to not have been used in "
                "the graph. Set allow_unused=True if this is the desired behavior."
            )
    return tuple(captured)


def _follow_gradient(grads) -> None:
    """Make the GPU of a node's incoming gradient CuPy's current device (_backend.follow_device):
    the nodes of a graph over two GPUs alternate between them."""
    for g in grads:
        if g is not None:
            if type(g._data) is not np.ndarray:
                follow_device(g._data)
            return


def _is_gradient_edge(x) -> bool:
    """Whether ``x`` is a graph.GradientEdge (a named tuple whose first field is a node)."""
    return type(x) is not tuple and isinstance(x, tuple) and hasattr(x, "output_nr") and x.node is not None


def _needed_nodes(order, targets, running=None, accumulate: bool = False):
    """Nodes on some path from the outputs to a requested input (others need not run); the ones
    among them whose rule runs go into ``running`` when given. As torch's engine: backward(inputs=)
    runs a requested non-leaf input's node (its hooks fire; the input's .grad is its retained
    grad), grad() only captures the gradient reaching it and runs its rule when another requested
    input lies beyond it."""
    target_nodes = {key[0] for key in targets}
    needed = set()
    for node in reversed(order):
        beyond = any(child is not None and id(child) in needed for child, _ in node.next_functions)
        if beyond or id(node) in target_nodes:
            needed.add(id(node))
            if running is not None and (beyond or accumulate):
                running.add(id(node))
    return needed


def _capture(node, grads, targets, captured) -> None:
    """grad(): the gradients reaching ``node`` that were asked for, into ``captured``."""
    for output_nr in range(len(grads)):
        for index in targets.get((id(node), output_nr), ()):
            captured[index] = grads[output_nr]


def _add_to_buffer(buffers, node, output_nr, grad, create_graph):
    """Add a gradient for ``node``'s output ``output_nr`` to the ones waiting for it; the
    buffers are keyed by node (nodes hash by identity), as the dependency counts are."""
    slots = buffers.get(node)
    if slots is None:
        slots = [None] * node._num_outputs
        slots[output_nr] = grad
        buffers[node] = slots
        return
    previous = slots[output_nr]
    if previous is None:
        slots[output_nr] = grad
    elif previous._sparse_layout or grad._sparse_layout:
        # a table looked up twice in one graph (nn.Embedding(sparse=True)), a CSR leaf read twice: torch's
        # InputBuffer adds old + new with the sparse add, never in place
        slots[output_nr] = _sum_with_sparse(previous, grad)
    elif (create_graph or _function.tracing_ops or _function.active_dispatch is not None or _is_wrapper(grad)
          or _is_wrapper(previous)):
        # (a wrapper subclass keeps its values inside: its __torch_dispatch__ sums them; a dispatch mode
        # sees torch's InputBuffer sum, aten.add.Tensor; a vmap recording its ops sees the sum: _vmap_batched)
        slots[output_nr] = previous + grad
    else:
        # fan-out: a fresh array, never in place — a rule may hand the same tensor to two inputs
        total = previous._data + grad._data
        if total.strides != previous._data.strides and previous is not grad:
            total = _summed_in_place_layout(previous._data, grad._data, total)
        slots[output_nr] = type(grad)._make(total)


def _summed_in_place_layout(first, second, total):
    """``total`` (``first + second``, NumPy's layout) laid out as torch's InputBuffer leaves the sum of
    two gradients: added in place into the first where it is dense and non-overlapping, so in its
    strides, size-1 dims' included (a leaf's AccumulateGrad then takes it over as it is). Any other
    ``first`` keeps NumPy's layout."""
    if total.shape != first.shape or total.dtype != first.dtype or not dense_non_overlapping(first):
        return total
    laid_out = array_module(first).empty_like(first)  # (order "K": first's stride order)
    if laid_out.strides != first.strides:
        # NumPy picks a size-1 dim's stride itself: give it the first's, as the in-place sum keeps them.
        # Strides that differ on a longer dim (a first with negative strides) would address other
        # elements: NumPy's layout stays then
        for size, mine, theirs in zip(first.shape, laid_out.strides, first.strides):
            if size != 1 and mine != theirs:
                return total
        laid_out = strided_view(laid_out, first.shape, first.strides)
    np.add(first, second, out=laid_out)
    return laid_out


def _call_pre_hooks(node, grads, exposed, node_hooks: bool = True):
    """Tensor hooks (and retain_grad) for the tensors this node produced, then node pre-hooks
    (unless ``node_hooks`` is false: the node does not run)."""
    if type(node) is AccumulateGrad:
        hooks = node.variable._hooks
        if hooks:
            g = grads[0]
            for hook in list(hooks.values()):
                exposed.add(id(g))
                result = hook(g)
                if result is not None:
                    _note_kept(result, exposed)
                    g = result
            grads = [g]
    else:
        if node._tensor_hooks:
            for output_nr, hooks in node._tensor_hooks.items():
                g = grads[output_nr]  # (None when no gradient reached this output: torch's hooks see None)
                for hook in list(hooks.values()):
                    exposed.add(id(g))
                    result = hook(g)
                    if result is not None:
                        _note_kept(result, exposed)
                        g = result
                grads[output_nr] = g
        if node._retained:
            for output_nr, ref in node._retained.items():
                tensor = ref()
                g = grads[output_nr]
                if tensor is not None and g is not None:
                    # a non-leaf's retained grad is torch's contiguous clone of the gradient, then
                    # accumulates out of place: it never aliases (nor is a view of) a gradient the
                    # walk goes on using, e.g. the one a view of this tensor received
                    current = tensor._grad
                    if current is None:
                        if g._sparse_layout and not g.is_sparse:
                            # torch's hook asks a compressed gradient for a contiguous clone, which it refuses
                            raise RuntimeError("unsupported memory format option Contiguous")
                        # (a sparse gradient has no memory format: cloned, as torch's)
                        tensor._grad = g.clone() if g.is_contiguous() or g.is_sparse else g.contiguous()
                    else:
                        tensor._grad = current + g
    if node_hooks and node._pre_hooks:
        for hook in list(node._pre_hooks.values()):
            exposed.update(id(g) for g in grads)
            result = hook(tuple(grads))
            if result is not None:
                grads = list(_checked_hook_result(hook, result, tuple(grads)))
    return grads


def _note_kept(result, exposed) -> None:
    """A hook's returned gradient that something besides the walk still holds (the hook kept it) is
    not to be taken over as a leaf's ``.grad``, which a later backward adds into in place: torch's
    AccumulateGrad copies a gradient whose use count says it is shared."""
    if sys.getrefcount(result) > 3:  # (the caller's name, this argument, getrefcount's)
        exposed.add(id(result))


def _call_rule(node, grads, retain_graph, exposed=None):
    received = grads  # (a post-hook sees these: torch's None for an undefined gradient, not the zeros the rule gets)
    for g in grads:
        if g is None:
            if not node._forward_cls._written_by_user and all(g is None for g in grads):
                # torch's built-in nodes answer undefined gradients with undefined ones, rule unrun
                return _undefined_gradients(node, grads, retain_graph, exposed)
            if getattr(node, "_materialize", True):  # ctx.set_materialize_grads(False) keeps the Nones
                grads = _materialize_grads(node, grads)
            break
    # the walk runs with NumPy's warnings off (see run_backward); a user Function's backward is
    # user code and gets the caller's NumPy error state back
    forward_cls = node._forward_cls
    user_state = None if forward_cls._array_forward else _function.numpy_errstate.set(_callers_errstate[-1])
    try:
        result = _function.RUN_UNDISPATCHED
        if _function.active_dispatch is not None and forward_cls._array_forward:
            result = _function.node_dispatch(node, grads)
        if result is _function.RUN_UNDISPATCHED:
            result = forward_cls.backward(node, *grads)
    except Exception:
        if _anomaly.enabled:
            _warn_forward_traceback(node)
        raise
    finally:
        if user_state is not None:
            _function.numpy_errstate.reset(user_state)
    if not retain_graph and (node._saved or node.torch_kept is not None or node._ctx_tensors):
        _function.release_saved(node)
    if type(result) is not tuple:
        result = (result,)
    if forward_cls._written_by_user or node._tensor_positions is not None:
        result = _python_function_gradients(node, result)  # (one value per argument of apply)
    edges = node.next_functions
    if len(result) != len(edges):
        result = _checked_count(node, result)
    fixed = []
    for i, g in enumerate(result):
        meta = node._input_meta[i]
        if g is None or meta is None or edges[i][0] is None:
            fixed.append(None)
            continue
        fixed.append(_fixed_gradient(node, i, g, meta))
    if node._post_hooks:
        fixed = tuple(fixed)
        for hook in list(node._post_hooks.values()):
            if exposed is not None:
                exposed.update(id(g) for g in fixed)
            result = hook(fixed, tuple(received))
            if result is not None:  # the hook's gradients replace the ones the node passes on
                fixed = _checked_hook_result(hook, result, fixed)
    return fixed


def _undefined_gradients(node, grads, retain_graph, exposed) -> tuple:
    """A built-in node none of whose outputs received a gradient: None for every input, as
    torch's generated nodes return when no gradient is defined; its saved tensors are still
    freed and its post-hooks still run (they may not replace a None)."""
    if not retain_graph and (node._saved or node.torch_kept is not None or node._ctx_tensors):
        _function.release_saved(node)
    fixed = (None,) * len(node.next_functions)
    for hook in list(node._post_hooks.values() if node._post_hooks else ()):
        if exposed is not None:
            exposed.update(id(g) for g in grads)
        result = hook(fixed, tuple(grads))
        if result is not None:
            fixed = _checked_hook_result(hook, result, fixed)
    return fixed


def _checked_hook_result(hook, result, values: tuple, name: str | None = None) -> tuple:
    """What a node post-hook returned in place of ``values``, checked as torch checks it: a tuple
    of as many values, each None where the original was, else of the original's size and type.
    The errors name the hook (``name``, else its ``__name__``)."""
    name = name or getattr(hook, "__name__", type(hook).__name__)
    if type(result) is not tuple:
        raise TypeError(f"expected tuple, but hook returned '{type(result).__name__}'")
    if len(result) != len(values):
        raise RuntimeError(f"hook '{name}' has returned an incorrect number of values (got {len(result)}, but "
                           f"expected {len(values)})")
    for value, new in zip(values, result):
        if new is None:
            continue
        if value is None:
            raise RuntimeError("can't replace a None gradient with a non-None value")
        if not isinstance(new, _tensor_cls()):
            raise TypeError(f"expected Variable, but hook returned '{type(new).__name__}'")
        if new.dtype != value.dtype:
            raise RuntimeError(f"hook '{name}' has changed the type of value (was {value.type()} got {new.type()})")
        if new.shape != value.shape:
            raise RuntimeError(f"hook '{name}' has changed the size of value")
    return result


def _checked_count(node, result: tuple, n_inputs: int | None = None) -> tuple:
    """A rule's gradients, one per input (``n_inputs``, else one per edge): trailing Nones beyond
    the inputs are dropped, any other count raises, naming the node."""
    if n_inputs is None:
        n_inputs = len(node.next_functions)
    if len(result) > n_inputs and all(r is None for r in result[n_inputs:]):
        return result[:n_inputs]
    raise RuntimeError(
        f"function {node.name()} returned an incorrect number of gradients "
        f"(expected {n_inputs}, got {len(result)})"
    )


def _python_function_gradients(node, result: tuple) -> tuple:
    """A Function applied through its Python ``apply`` (a user's, or one of chainrule's given
    arguments that are not Tensors): its gradients as torch's PyNode takes a Python Function's,
    one value per argument of ``apply`` (trailing Nones beyond them dropped), checked in one pass
    that names the first mistake: None wherever the argument was not a Tensor (alpha, a flag),
    else None or a Tensor — never a number, an array or a list, which the engine would otherwise
    turn into a tensor. Returns the values at the Tensor arguments' positions, which alone have
    edges."""
    n_args = len(node.needs_input_grad)
    if len(result) != n_args:
        result = _checked_count(node, result, n_args)
    positions = node._tensor_positions  # (None: every argument was a Tensor)
    Tensor = _tensor_cls()
    for position, g in enumerate(result):
        if g is None:
            continue
        if positions is not None and position not in positions:
            raise RuntimeError(f"function {node.name()} returned a gradient different than None at position "
                               f"{position + 1}, but the corresponding forward input was not a Variable")
        if not isinstance(g, Tensor):
            raise RuntimeError(f"expected Variable or None (got {parser_type_name(g)})")
    return result if positions is None else tuple(result[i] for i in positions)


def _fixed_gradient(node, i: int, g, meta: tuple):
    """Input ``i``'s gradient as a Tensor of the input's shape (a broadcast one summed back)
    and dtype; under anomaly mode, checked to be finite."""
    Tensor = _tensor_cls()
    if type(g) is not Tensor and not isinstance(g, Tensor):
        g = Tensor._make(np.asarray(g))
    if node._host_inputs is not None and i in node._host_inputs and type(g._data) is not np.ndarray:
        # a 0-d CPU input of a device op gets its gradient on the CPU (torch's validate_outputs
        # moves a 0-dim gradient to its input's device)
        g = g.to("cpu")
    shape, dtype = meta
    if g._data.shape != shape:
        g = _reduce_to_shape(node, i, g, shape)
    if g._data.dtype != dtype:
        if g._data.dtype.kind == "c" and dtype.kind != "c":
            g = g.real  # a real input's gradient is the real part (torch's convention for C -> R casts)
        # (a wrapper subclass's values live in it, not in its placeholder: its handler casts it, aten._to_copy;
        # a vmap recording its ops follows the cast in an op, which its replay runs on the batch)
        g = g.to(dtype=_np_to_dtype(dtype)) if _grad_state.enabled or g._wrapper_strides is not None or \
            _function.tracing_ops else Tensor._make(g._data.astype(dtype))
    if _anomaly.enabled and _anomaly.check_nan:
        _check_nan(node, i, g)
    return g


def _versions_match(saved: tuple, versions: tuple) -> bool:
    """Whether every saved tensor is still at the version it was saved at."""
    for tensor, version in zip(saved, versions):
        # (a tensor without a version counter object, _vbox None, is at version 0)
        if tensor is not None and version is not None and (
                0 if tensor._vbox is None else tensor._vbox[0]) != version:
            return False
    return True


def _materialize_grads(node, grads):
    """Missing output gradients as zeros (torch's materialize_grads default), on the device of
    the gradients that did arrive."""
    Tensor = _tensor_cls()
    xp = array_module(*(g._data for g in grads if g is not None))
    filled = [
        g if g is not None else Tensor._make(xp.zeros(_output_shape(node, i), dtype=_output_dtype(node, i)))
        for i, g in enumerate(grads)
    ]
    if _function.active_dispatch is not None:  # (a mode sees torch's split/unbind formulas make them: node_dispatch)
        node.materialized = tuple(g for g, given in zip(filled, grads) if given is None)
    return filled


def _reduce_to_shape(node, index, grad, shape):
    if not _broadcastable_to(shape, grad._data.shape):
        raise RuntimeError(  # torch's words (its engine's validate_outputs), naming the node
            f"Function {node.name()} returned an invalid gradient at index {index} - got "
            f"{list(grad.shape)} but expected shape compatible with {list(shape)}"
        )
    return sum_to_shape(grad, shape)


class SumToSize(Function):
    """Sum a broadcast gradient back to the shape it was broadcast from.

    The engine's own op (it undoes broadcasting for every rule), so it lives here rather than
    in ``ops``: autograd sits below the ops and imports none of them. Recorded (under
    ``create_graph``) it is torch's ``at::sum_to``: a sum over the reduced dims kept as size 1
    (``SumBackward1``), then a view dropping the leading ones (``ViewBackward0``).
    """

    node_name = "SumBackward1"
    label = "sum_to_size"
    rule = "expands the gradient back over the summed dims"
    formula = None
    _array_forward = True
    saved_attributes = {"_saved_dim": ctx_value("dims"), "_saved_keepdim": True,
                        "_saved_self_sym_sizes": input_sizes(0)}

    @staticmethod
    def forward(ctx, x, shape, keep_leading=False):
        ctx.shape = x.shape
        lead = x.ndim - len(shape)
        dims = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1
        )
        ctx.dims = dims
        if not dims:
            return x.reshape(shape)
        out = None
        if x.dtype in _sum_order.REPLAYED and type(x) is np.ndarray:  # torch's sum_to_size: its sum, in its order
            out = _sum_order.sum_dims(x, dims, True)
        if out is None:
            # (np.sum of an ndarray is this add.reduce, reached through two Python-level wrappers)
            out = _add_reduce(x, dims, None, None, True) if type(x) is np.ndarray else array_module(x).sum(
                x, axis=dims, keepdims=True)
        return out if keep_leading else out.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.expand(ctx.shape)


class SumToScalar(SumToSize):
    """``sum_to_shape`` to a 0-d shape, recorded: torch's at::sum_to takes ``sum()`` there."""

    node_name = "SumBackward0"
    saved_attributes = {"_saved_self_sym_sizes": input_sizes(0)}


_add_reduce = np.add.reduce


def sum_to_shape(input: Tensor, shape) -> Tensor:
    """Reduce ``input`` by summation to ``shape``, which it must be broadcastable from."""
    shape = tuple(shape)
    if input._data.shape == shape:
        return input
    if not (input._requires_grad and _grad_state.enabled) and _function.active_dispatch is None:
        return SumToSize.apply(input, shape=shape)  # (a plain backward: one node-less step)
    # (as torch's at::sum_to, which a dispatch mode sees: sum.dim_IntList kept as size 1, then a view)
    if not shape:
        return SumToScalar.apply(input, shape=shape)
    summed = SumToSize.apply(input, shape=shape, keep_leading=True)
    return summed.view(shape) if summed._data.ndim != len(shape) else summed


def _broadcastable_to(shape, target) -> bool:
    if len(shape) > len(target):
        return False
    for s, t in zip(reversed(shape), reversed(target)):
        if s != 1 and s != t:
            return False
    return True


def _output_shape(node, i):
    return node._output_meta[i][0]


def _output_dtype(node, i):
    return node._output_meta[i][1]


def _np_to_dtype(np_dtype):
    from .._dtype import from_numpy_dtype

    return from_numpy_dtype(np_dtype)


def _warn_forward_traceback(node) -> None:
    """torch's anomaly mode on an error in ``node``'s backward: the error goes on as it was, and the
    forward call that made the node is told in a warning, not in the error's message."""
    if node._traceback:
        warnings.warn(f"Error detected in {node.name()}. Traceback of forward call that caused the error:\n"
                      + "".join(node._traceback[-4:]), stacklevel=3)


def _check_nan(node, index, grad):
    """torch's anomaly check of a backward result: NaN (an infinite gradient is let through, as torch's)."""
    if array_module(grad._data).isnan(grad._data).any():
        _warn_forward_traceback(node)
        raise RuntimeError(f"Function '{node.name()}' returned nan values in its {index}th output.")


def _in_leaf_layout(grad, leaf, copy: bool):
    """torch's gradient layout contract (AccumulateGrad): a new ``.grad`` of a dense, non-overlapping
    leaf is laid out as the leaf, size-1 dims' strides included (``clone_obey_contract``: a permuted,
    unsqueezed or channels-last weight gets a gradient laid out alike), any other leaf's row-major.
    ``grad`` itself when it may be taken over (``copy`` False) and already complies: for a dense leaf,
    the leaf's strides on every dim longer than 1 and no zero stride on the others
    (``obeys_layout_contract``); for any other leaf, row-major (size-1 dims' strides free, as torch's
    ``is_contiguous``)."""
    if leaf.flags.c_contiguous and grad.flags.c_contiguous and 1 not in leaf.shape:
        return grad.copy() if copy else grad
    xp = array_module(grad)
    if not dense_non_overlapping(leaf):
        if grad.flags.c_contiguous:
            return grad.copy() if copy else grad
        return xp.ascontiguousarray(grad)
    leaf_size, grad_size = leaf.itemsize, grad.itemsize  # (a leaf's grad_dtype may be another dtype)
    if not copy and all(stride * leaf_size == leaf_stride * grad_size if n != 1 else stride != 0
                        for n, stride, leaf_stride in zip(grad.shape, grad.strides, leaf.strides)):
        return grad
    if grad.strides == leaf.strides and grad_size == leaf_size:
        laid_out = grad.copy(order="K")  # (copy()'s default order is C: keep the leaf's)
    else:
        laid_out = xp.empty_like(leaf, dtype=grad.dtype)  # order "K": the leaf's stride order
        xp.copyto(laid_out, grad)
    # a size-1 dim's stride addresses nothing, and NumPy chooses its own: the leaf's, as torch's
    # new_empty_strided(leaf's strides)
    strides = tuple(leaf_stride // leaf_size * grad_size if n == 1 else stride
                    for n, stride, leaf_stride in zip(leaf.shape, laid_out.strides, leaf.strides))
    return laid_out if strides == laid_out.strides else strided_view(laid_out, laid_out.shape, strides)


def _contract_strides(grad, leaf) -> tuple:
    """The byte strides of torch's ``clone_obey_contract`` copy of ``grad`` for ``leaf``: the leaf's
    where it is dense and non-overlapping, a fresh row-major tensor's otherwise."""
    if dense_non_overlapping(leaf):
        return tuple(stride // leaf.itemsize * grad.itemsize for stride in leaf.strides)
    return tuple(stride * grad.itemsize for stride in contiguous_strides(grad.shape))


def _sole_view(array, owner=None) -> bool:
    """Whether ``array`` is a dense view of all of an array that nothing else references, as a
    weight's gradient transposed twice (linear's TBackward0) or a permuted one: stealing it is as
    safe as stealing its base, and saves a copy (torch's AccumulateGrad takes over any view that
    complies with the layout contract). ``owner``: the base Tensor of the gradient's Tensor view
    (its ops ran as Tensor ops, under a dispatch mode), whose array may hold the base as well when
    nothing but the gradient holds that Tensor."""
    base = array.base
    # its references: the view's, the local name, getrefcount's argument (and the owner's array's)
    held = 3
    if owner is not None and sys.getrefcount(owner) == 3:  # (the gradient's _base, the argument, getrefcount's)
        data = owner._data
        if data is base:
            held = 5  # (and the owner's, and the name ``data``)
        elif data.base is base and sys.getrefcount(data) == 3:
            held = 4  # (and the owner's array's: a view nothing else holds)
    return (type(base) is type(array) and base.base is None and base.size == array.size
            and (array.flags.c_contiguous or dense_non_overlapping(array)) and sys.getrefcount(base) == held)


def _accumulate(variable, grad, create_graph, exposed=(), buffers=None):
    """Add ``grad`` into ``variable.grad``: steal the array when nothing else holds it (a sparse one: when
    no other node's gradients waiting in ``buffers`` hold it)."""
    Tensor = _tensor_cls()
    wanted = variable._grad_dtype
    if wanted is not False and wanted is not None and grad.dtype is not wanted:
        grad = grad.to(wanted)  # torch's grad_dtype: the leaf keeps its gradient in that dtype
    current = variable._grad
    if grad._sparse_layout or (current is not None and current._sparse_layout):
        variable._grad = _accumulate_sparse(current, grad, create_graph, buffers)
        return
    if current is None:
        # (a wrapper subclass's gradient is kept as its handler made it: its values live in the subclass)
        if _is_wrapper(grad):
            variable._grad = grad
            return
        if create_graph:
            # torch's AccumulateGrad keeps a recorded copy (CopyBackwards) under create_graph, never
            # the graph's own value: a weight's gradient is no transposed view then, and a library's
            # p.grad.detach_() (torch-optimizer's Adahessian) or in-place update touches only .grad
            copied = grad.clone()
            if not variable._data.size or dense_non_overlapping(variable._data):
                # (torch's clone_obey_contract copies into new_empty_strided for a dense leaf, an empty one
                # counting as dense; for any other one it clones, row-major: CloneBackward0, as recorded)
                copied = _function.name_node(copied, "torch::autograd::CopyBackwards")
                copied._version_box[0] = 1  # (the copy_ into it: torch's .grad is at version 1)
            # (laid out as torch's clone_obey_contract lays it out: the leaf's strides, or row-major)
            if copied._data.strides != _contract_strides(copied._data, variable._data):
                copied._data = _in_leaf_layout(copied._data, variable._data, copy=True)
            variable._grad = copied
            if variable._numpy_empty_strides is not None:
                _empty_leaf_layout(copied, variable)
            return
        array = grad._data
        # Stealing is safe only if no other tensor or view shares this array (its references:
        # the tensor's slot, the local name, getrefcount's argument) and user code never saw it.
        taken = id(array)  # (not the array: a second reference would fail the count below)
        if ((array.base is not None and not _sole_view(array, grad._base)) or sys.getrefcount(array) > 3
                or not writeable(array) or id(grad) in exposed):
            array = _in_leaf_layout(array, variable._data, copy=True)
            if _function.active_dispatch is not None:
                _show_accumulated(grad, variable, stolen=False)
        else:
            if _engine_flags.grad_layout_enforced:
                array = _in_leaf_layout(array, variable._data, copy=False)
            if _function.active_dispatch is not None:
                _show_accumulated(grad, variable, stolen=True)
        variable._grad = Tensor._make(array)
        leaf = variable._data
        if id(array) != taken and (leaf.flags.c_contiguous or not leaf.size or dense_non_overlapping(leaf)):
            # torch's clone_obey_contract copies a gradient it cannot take over into new_empty_strided
            # for a dense leaf: that .grad starts at version 1 (a clone, for any other leaf, at 0)
            variable._grad._vbox = [1]
        if variable._numpy_empty_strides is not None:
            _empty_leaf_layout(variable._grad, variable)
        if grad._conj_bit and array.strides == grad._data.strides:
            # torch keeps a conj view from ConjBackward0 (or a view of one) as .grad when its layout is
            # the leaf's, bit and all; one in another layout (expanded) it clones, which resolves the bit
            variable._grad._conj_bit = True
    elif create_graph or _is_wrapper(current) or _is_wrapper(grad):
        variable._grad = current + grad
        _check_layout_contract(variable._grad, variable)
    else:
        # a plain backward adds in place, as torch's ``variable_grad += new_grad`` under no grad mode: a
        # .grad made under create_graph keeps its grad_fn (CopyBackwards) and is the same tensor
        if _function.active_dispatch is not None and _function.factory_dispatch(
                "add_.Tensor", _added_into, (current, grad), {}) is not _function.RUN_UNDISPATCHED:
            return  # (a mode sees torch's in-place aten.add_ into the gradient; its func adds)
        np.add(current._data, grad._data, out=current._data)
        current._version_box[0] += 1
        _check_layout_contract(current, variable)


def _empty_leaf_layout(grad, leaf) -> None:
    """An empty leaf made from a NumPy array reports that array's strides (zeros where NumPy zeroes
    them); torch counts any empty tensor as dense, so a new ``.grad`` that breaks the layout contract
    (``obeys_layout_contract``: the leaf's strides on dims longer than 1, no zero stride on the others)
    takes the leaf's strides (``clone_obey_contract``'s new_empty_strided)."""
    kept = leaf._numpy_empty_strides
    if kept[0] != leaf._data.shape or leaf._data.size:
        return
    if not all(stride == leaf_stride if n != 1 else stride != 0
               for n, stride, leaf_stride in zip(kept[0], grad.stride(), kept[1])):
        grad._numpy_empty_strides = kept


def _check_layout_contract(grad, variable) -> None:
    """torch's CHECK_RESULT of a gradient added into ``.grad``: once a process, a warning when the sum is
    not laid out as the leaf (a dense leaf's strides on its dims longer than 1, no zero stride on the
    others; row-major for any other leaf), as a .grad the user assigned in another layout."""
    array, leaf = grad._data, variable._data
    if array.flags.c_contiguous and array.strides == leaf.strides and array.itemsize == leaf.itemsize:
        return  # (the common case, said quickly: a row-major .grad of a row-major leaf)
    if dense_non_overlapping(leaf):
        strides = [stride // array.itemsize for stride in array.strides]
        leaf_strides = [stride // leaf.itemsize for stride in leaf.strides]
        if all(stride == leaf_stride if n != 1 else stride != 0
               for n, stride, leaf_stride in zip(array.shape, strides, leaf_strides)):
            return
    elif array.flags.c_contiguous or grad.is_contiguous():
        return
    warn_once(f"grad and param do not obey the gradient layout contract. This is not an error, but may impair "
              f"performance.\ngrad.sizes() = {list(grad.shape)}, strides() = {list(grad.stride())}\n"
              f"param.sizes() = {list(variable.shape)}, strides() = {list(variable.stride())}",
              site="gradient layout contract")


def _show_accumulated(grad, variable, stolen: bool) -> None:
    """What a dispatch mode sees of AccumulateGrad's first gradient for a leaf (torch's accumulateGrad): the
    stolen gradient's ``aten.detach``, or clone_obey_contract's ``new_empty_strided`` in the leaf's strides and
    ``copy_``. Shown only: ``.grad`` is the array the engine took, as without a mode."""
    if stolen:
        _function.factory_dispatch("detach", _detached, (grad,), {})
        return
    leaf = variable._data
    if not dense_non_overlapping(leaf):
        return
    chainrule = sys.modules["chainrule"]
    empty = _function.factory_dispatch(
        "new_empty_strided", _new_empty_strided,
        (grad, list(leaf.shape), [stride // leaf.itemsize for stride in leaf.strides]),
        {"dtype": variable.dtype, "layout": chainrule.strided, "device": variable.device})
    if isinstance(empty, _tensor_cls()):
        _function.factory_dispatch("copy_", _copied_into, (empty, grad), {})


def _detached(tensor):
    return _tensor_cls()._make(tensor._data)


def _new_empty_strided(tensor, size, stride, **kwargs):
    return sys.modules["chainrule"].empty_strided(size, stride, **kwargs)


def _added_into(target, source):
    np.add(target._data, source._data, out=target._data)
    target._version_box[0] += 1
    return target


def _copied_into(target, source):
    np.copyto(target._data, source._data)
    return target


def _is_wrapper(tensor) -> bool:
    """Whether ``tensor``'s class answers ops through ``__torch_dispatch__`` (a wrapper subclass)."""
    cls = type(tensor)
    # chainrule's own Tensor class defines no __torch_dispatch__ (tests/test_s28_perf.py checks it),
    # so a plain tensor is answered at once: the lookup's miss would cost an AttributeError raised
    # and cleared inside getattr, on every fan-out sum and every leaf's accumulation
    return cls is not _function._Tensor and getattr(cls, "__torch_dispatch__", None) is not None


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None,
             inputs=None):
    """torch.autograd.backward: accumulate gradients of ``tensors`` into the leaves' ``.grad``.

    ``grad_variables`` is torch's deprecated name for ``grad_tensors``."""
    if grad_variables is not None:
        if grad_tensors is not None:
            raise RuntimeError("'grad_tensors' and 'grad_variables' (deprecated) arguments both passed "
                               "to backward(). Please only use 'grad_tensors'.")
        grad_tensors = grad_variables
    if inputs is not None:
        # torch's backward takes any iterable (model.parameters()), without grad's dict reading
        inputs = (inputs,) if isinstance(inputs, _tensor_cls()) or _is_gradient_edge(inputs) else tuple(inputs)
        if len(inputs) == 0:
            raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
    if _function.func_transforms.active:
        # torch.func's transforms differentiate by their own calls; a .grad accumulated inside one
        # would mix levels, so torch refuses it
        raise RuntimeError("backward() called inside a functorch transform. This is not supported, please use "
                           "functorch.grad or functorch.vjp instead or call backward() outside of functorch "
                           "transforms.")
    run_backward(tensors, grad_tensors, retain_graph, create_graph, inputs=inputs, accumulate=True)


_reference_cycle_warned = False


def _warn_reference_cycle_once() -> None:
    """torch's warning for backward(create_graph=True), once per process as torch's engine warns it
    (each leaf's .grad keeps a graph that holds the leaf)."""
    global _reference_cycle_warned
    if _reference_cycle_warned:
        return
    _reference_cycle_warned = True
    warnings.warn("Using backward() with create_graph=True will create a reference cycle between the parameter "
                  "and its gradient which can cause a memory leak. We recommend using autograd.grad when creating "
                  "the graph to avoid this. If you have to use this function, make sure to reset the .grad fields "
                  "of your parameters to None after use to break the cycle and avoid the leak.", UserWarning,
                  stacklevel=_torch_function.user_stacklevel())


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """torch.autograd.grad: the gradients of ``outputs`` w.r.t. ``inputs``; ``.grad`` is untouched.

    ``inputs`` is one Tensor, any iterable of them (``model.parameters()``, ``params.values()``)
    or a dict, whose gradients come back as a dict with its keys, as torch's.
    ``only_inputs`` is accepted for torch's positional order (torch ignores it too)."""
    named = inputs if type(inputs) is dict else None
    inputs = _input_tuple(inputs)
    result = _grad(outputs, inputs, grad_outputs, retain_graph, create_graph, only_inputs, allow_unused,
                   is_grads_batched, materialize_grads)
    return result if named is None else dict(zip(named.keys(), result, strict=True))


def _input_tuple(inputs) -> tuple:
    """torch.autograd.grad's reading of ``inputs``: one Tensor or GradientEdge, a dict's values, or
    the items of any other iterable (a generator is read once, here); another Mapping is refused."""
    if isinstance(inputs, _tensor_cls()) or _is_gradient_edge(inputs):
        return (inputs,)
    if type(inputs) is dict:
        return tuple(inputs.values())
    if isinstance(inputs, Mapping):
        raise TypeError(f"`inputs` argument to `grad()` must be a dict, not {type(inputs).__name__}. "
                        "Other Mapping types are not supported.")
    return tuple(inputs)


def _grad(outputs, inputs: tuple, grad_outputs, retain_graph, create_graph, only_inputs, allow_unused,
          is_grads_batched, materialize_grads):
    overridable = (*_as_tuple(outputs), *inputs)
    if _torch_function.has_torch_function(overridable):  # torch's: a subclass's handler (or a mode) runs it
        return _torch_function.handle_torch_function(
            grad, overridable, outputs, inputs, grad_outputs=grad_outputs, retain_graph=retain_graph,
            create_graph=create_graph, only_inputs=only_inputs, allow_unused=allow_unused,
            is_grads_batched=is_grads_batched, materialize_grads=materialize_grads)
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    if is_grads_batched:
        from .batched_grad import batched_grad  # one unbatched grad per batch row

        return batched_grad(grad, _as_tuple(outputs), inputs,
                            None if grad_outputs is None else _seed_tuple(grad_outputs),
                            retain_graph, create_graph, allow_unused, materialize_grads)
    if allow_unused is None:
        allow_unused = materialize_grads
    if not inputs:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    result = run_backward(outputs, grad_outputs, retain_graph, create_graph,
                          inputs=inputs, allow_unused=allow_unused, accumulate=False)
    if materialize_grads:  # torch's zeros_like(input, requires_grad=create_graph)
        Tensor = _tensor_cls()
        result = tuple(
            g if g is not None else Tensor._make(array_module(t).zeros_like(t._data)).requires_grad_(bool(create_graph))
            for g, t in zip(result, inputs)
        )
    return result


def _accumulate_sparse(current, grad, create_graph=False, buffers=None):
    """torch's AccumulateGrad where a sparse COO gradient is involved (nn.Embedding(sparse=True)):
    the first one is stolen (unmarked coalesced) or cloned (flag kept) as torch's, a second sparse one is
    merged in (``_merged_entries``; appended where either one's values are not contiguous, as torch's sparse
    add does), a dense
    one added to a sparse one gives a dense sum, and a sparse one is added into a dense ``.grad`` in
    place. A compressed one: see ``_accumulate_compressed``."""
    if not (grad.is_sparse or current is not None and current.is_sparse):
        return _accumulate_compressed(current, grad, create_graph)
    if current is None:
        indices, values, coalesced = grad._coo
        # (torch steals it only where nothing else holds its indices: here the _coo tuple, the name and
        # getrefcount's argument; ValuesBackward0's share the input's, for one)
        if (indices.flags.c_contiguous and values.flags.c_contiguous and sys.getrefcount(indices) <= 3
                and not _waiting_elsewhere(grad, buffers)):
            # torch steals it: a new sparse tensor over the same parts, made unchecked, so marked coalesced only
            # where it has fewer than two entries
            grad._coo = (indices, values, indices.shape[1] < 2)
            return grad
        # torch keeps a clone (coalesced flag kept) of one another holder shares (AddBackward0 hands its
        # gradient to both operands) or whose parts are not contiguous (a fan-out sum's narrowed indices)
        xp = array_module(values)
        return type(grad)._from_parts(xp.array(indices, order="C"), xp.array(values, order="C"), tuple(grad.shape),
                                      coalesced)
    if not current.is_sparse:
        np.add(current._data, grad._data, out=current._data)
        current._version_box[0] += 1
        return current
    return _sum_with_sparse(current, grad)


def _waiting_elsewhere(grad, buffers) -> bool:
    """Whether another node's gradients, still waiting, hold ``grad`` (a rule handed it to two edges)."""
    return buffers is not None and any(grad is held for slots in buffers.values() for held in slots)


def _accumulate_compressed(current, grad, create_graph):
    """torch's AccumulateGrad where a compressed gradient or ``.grad`` is involved (a CSR leaf's, from
    to_dense, values or torch.sparse.mm): a first CSR gradient is kept (a copy, as torch clones it), a CSC one
    refused as torch's layout check refuses it; a later one is added into ``.grad`` in place by its ``add_``
    (CSR + CSR over both patterns; a strided gradient into a CSR ``.grad`` refused in torch's words), out of
    place under create_graph."""
    if current is None:
        if grad._layout_name != "SparseCsr":  # (torch's check asks the gradient for its contiguity)
            raise RuntimeError(f"Sparse {grad._layout_name[len('Sparse'):].upper()} tensors do not have is_contiguous")
        return grad.clone()
    if create_graph or current._requires_grad:
        return current + grad
    return current.add_(grad)


def _sum_with_sparse(first, second):
    """``first + second`` where one or both are sparse COO, as torch's add gives it: a fresh
    dense sum when either is dense, else the two entry lists merged (``_merged_entries``;
    appended where either one's values are not contiguous, as torch's sparse add does). Neither
    operand is changed: the engine's fan-out buffer sums with it too. A compressed one's sum is its
    ``+`` (CSR + CSR is CSR over both patterns, as torch's)."""
    if not (first.is_sparse or second.is_sparse):
        return first + second
    if not (first.is_sparse and second.is_sparse):
        return _tensor_cls()._make(first._data + second._data)
    if second._nnz() == 0:
        return first
    if first._nnz() == 0:
        return second
    (indices, values, coalesced), (more_indices, more_values, more_coalesced) = first._coo, second._coo
    if not (values.flags.c_contiguous and more_values.flags.c_contiguous):
        # torch's add_out_sparse_non_contiguous: the entries appended, uncoalesced
        xp = array_module(values)
        return type(first)._from_parts(xp.concatenate([indices, more_indices], axis=1),
                                       xp.concatenate([values, more_values]), tuple(first.shape), False)
    merged_indices, merged_values = _merged_entries(indices, values, more_indices, more_values)
    return type(first)._from_parts(merged_indices, merged_values, tuple(first.shape),
                                   coalesced and more_coalesced, strides_kept=True)


def _merged_entries(indices, values, more_indices, more_values):
    """torch's sparse add (add_out_sparse_contiguous): one merge walk over both entry lists, sorted
    or not, taking the entry with the smaller index and summing the two when their indices are
    equal, so its result has torch's entries in torch's order. A Python loop over the entries: it
    runs only when a sparse gradient meets another (a table looked up twice in one graph)."""
    xp = array_module(values)
    ours = [tuple(column) for column in indices.T.tolist()]
    theirs = [tuple(column) for column in more_indices.T.tolist()]
    i = j = 0
    picked = []  # (entry of ours or -1, entry of theirs or -1)
    while i < len(ours) or j < len(theirs):
        if j == len(theirs) or (i < len(ours) and ours[i] < theirs[j]):
            picked.append((i, -1))
            i += 1
        elif i == len(ours) or theirs[j] < ours[i]:
            picked.append((-1, j))
            j += 1
        else:
            picked.append((i, j))
            i += 1
            j += 1
    picked = np.asarray(picked)
    from_ours, from_theirs = picked[:, 0] >= 0, picked[:, 1] >= 0
    # torch's sum fills room for both lists' entries and narrows it to those it made: indices with fewer
    # columns than that room (equal indices summed) are not contiguous, as torch's
    room = xp.empty((indices.shape[0], indices.shape[1] + more_indices.shape[1]), dtype=indices.dtype)
    merged_indices = room[:, :len(picked)]
    xp.copyto(merged_indices, xp.where(xp.asarray(from_ours)[None], indices[:, picked[:, 0]],
                                       more_indices[:, picked[:, 1]]))
    merged_values = xp.zeros((len(picked),) + values.shape[1:], dtype=values.dtype)
    merged_values[from_ours] += values[picked[from_ours, 0]]
    merged_values[from_theirs] += more_values[picked[from_theirs, 1]]
    return merged_indices, merged_values
