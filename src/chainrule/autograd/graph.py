"""torch.autograd.graph: the recorded graph's nodes and edges, and hooks on what it saves.

- ``Node`` is the class of every ``grad_fn`` (``isinstance(y.grad_fn, Node)``), ``GradientEdge``
  and ``get_gradient_edge`` name the place a gradient flows into (``autograd.grad`` takes one as
  an input), ``increment_version`` bumps a tensor's in-place counter.
- ``saved_tensors_hooks(pack_hook, unpack_hook)``: while active, each tensor a recorded op saves
  for its backward is handed to ``pack_hook`` and the node keeps what it returns; the backward
  reads it back through ``unpack_hook``. Built-in ops save arrays internally, so the hooks see
  Tensors only while some hooks are active (the pack runs as the op returns, in
  ``forward_ad._run``, which ops reach through ``function.active_extension``): no op pays
  anything otherwise. ``save_on_cpu``, ``allow_mutation_on_saved_tensors`` and
  ``disable_saved_tensors_hooks`` are built on them.
- ``register_multi_grad_hook(tensors, fn, mode)``: one call per backward pass with the
  gradients of all the tensors (``"all"``, after the pass), or with the first to arrive (``"any"``).
"""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

from . import engine as _engine
from . import forward_ad as _forward_ad
from . import function as _function
from .function import Node
from .grad_mode import no_grad

__all__ = ["Node", "GradientEdge", "get_gradient_edge", "increment_version", "saved_tensors_hooks",
           "save_on_cpu", "disable_saved_tensors_hooks", "register_multi_grad_hook",
           "allow_mutation_on_saved_tensors", "region_activation_memory_budget"]


def region_activation_memory_budget(budget: float) -> contextlib.AbstractContextManager[None]:
    """torch.autograd.graph.region_activation_memory_budget: the activation-memory budget (a ratio in
    [0, 1]) torch.compile's partitioner applies to the forward traced in the block. chainrule's compile
    runs eagerly and keeps every activation, so the block changes nothing; the budget is checked as
    torch checks it. torch raises RuntimeError when the block runs outside a compiled region; here a
    compiled region runs eagerly too, so a model written for torch.compile is not refused."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float)):
        raise TypeError(f"torch.autograd.graph.region_activation_memory_budget: expects a float, got "
                        f"{type(budget).__name__}")
    if not 0.0 <= budget <= 1.0:
        raise ValueError(f"torch.autograd.graph.region_activation_memory_budget: must be in [0, 1], got {budget}")
    return contextlib.nullcontext()


class GradientEdge(NamedTuple):
    """Where a gradient enters the graph: ``node`` and which of its outputs (``output_nr``)."""

    node: Any
    output_nr: int
    ownership_token: Any = None


def get_gradient_edge(tensor) -> GradientEdge:
    """The edge a gradient for ``tensor`` flows into: its ``grad_fn`` (or, for a leaf, its
    AccumulateGrad node) and its output number. It stays valid after ``tensor`` is written in
    place, so ``autograd.grad(out, edge)`` still gives the gradient at the old value."""
    if not tensor.requires_grad:
        raise RuntimeError("It is not possible to get the gradient edge for a Tensor that does not require "
                           "gradients")
    if tensor.grad_fn is not None:
        return GradientEdge(tensor.grad_fn, tensor._output_nr)
    return GradientEdge(tensor._get_accumulator(), 0)


def increment_version(tensor) -> None:
    """Bump the in-place version counter of ``tensor`` (or of each tensor of an iterable), as an
    in-place write would, so a backward that saved it raises."""
    tensors = (tensor,) if isinstance(tensor, _function._Tensor) else tuple(tensor)
    for t in tensors:
        t._bump_version()


# ---------------------------------------------------------------- saved tensors hooks

_hooks_stack: list = []  # (pack_hook, unpack_hook) of each active saved_tensors_hooks, innermost last
_disabled_message: str | None = None  # set by disable_saved_tensors_hooks


def _pack_outputs(out) -> None:
    """Pack the saved tensors of the node that just made ``out`` with the innermost hooks."""
    outputs = out if isinstance(out, tuple) else (out,)
    Tensor = _function._Tensor
    node = next((o.grad_fn for o in outputs if isinstance(o, Tensor) and o.grad_fn is not None), None)
    if node is None or not node._saved or node._unpack_hook is not None:
        return
    pack_hook, unpack_hook = _hooks_stack[-1]
    own_outputs = node._saved_outputs or ()
    packed = list(node._saved)

    def pack(i, saved):
        # torch saves a number as a number: no hook (nor for a cached number operand, ops/elementwise._constant)
        if saved is None or getattr(saved, "_wrapped_number", False) or id(saved) in _function.constant_numbers:
            return
        # torch hands pack_hook the tensor itself: for a saved output, the output (with its grad_fn)
        tensor = saved
        if i in own_outputs:
            tensor = next((o for o in outputs if isinstance(o, Tensor) and o.grad_fn is node
                           and o._output_nr == saved._output_nr), saved)
        # the original's place in the graph is kept beside what pack returns (an output's is its node)
        packed[i] = _function._PackedSaved(pack_hook(tensor), original=None if i in own_outputs else saved)

    order = node.torch_pack_order
    extras, left = _pack_in_torch_order(node, order, pack, pack_hook) if order is not None and node._torch_saved \
        else ((), ())
    for i, saved in enumerate(node._saved):
        if packed[i] is saved and i not in left:
            pack(i, saved)
    node._saved = tuple(packed) + extras
    node._packed_extras = len(extras)
    node._saved_versions = None  # torch checks no versions through hooks: unpack's result is used
    node._unpack_hook = unpack_hook


def _pack_in_torch_order(node, order: tuple, pack, pack_hook) -> tuple:
    """Pack a node's saved tensors in the order torch's node saves them (``torch_pack_order``: its
    _saved_* names): a name read from a saved tensor packs that one; one the node computes when read
    (a norm's mean and 1/σ, which torch's node saves as results) packs its value, returned as packed
    extras, which each unpack of the node's saved tensors unpacks too, as torch's backward does. A
    name torch keeps undefined packs nothing (its saved tensor, a norm's unit weight, is left as it
    is). Returns the packed extras and the positions of the saved tensors left unpacked."""
    declared = node._torch_saved
    extras, left = [], []
    for name in order:
        value = declared.get(name)
        if value is None:
            continue
        if value.undefined is not None and value.undefined(node):
            if value.slot is not None:
                left.append(value.slot)
            continue
        if value.slot is not None:
            pack(value.slot, node._saved[value.slot])
            continue
        with no_grad():
            tensor = value.read(node)
        if tensor is not None:
            extras.append(_function._PackedSaved(pack_hook(tensor)))
    return tuple(extras), left


class saved_tensors_hooks:
    """Context manager: ``pack_hook(tensor)`` on each tensor saved for backward while active,
    ``unpack_hook(packed)`` (which must return a Tensor) each time the backward reads it. Nested
    contexts: the innermost hooks apply."""

    def __init__(self, pack_hook, unpack_hook) -> None:
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self):
        if _disabled_message is not None:
            raise RuntimeError(_disabled_message)
        _hooks_stack.append((self.pack_hook, self.unpack_hook))
        _forward_ad.set_packer(_pack_outputs)
        return self

    def __exit__(self, *exc) -> None:
        _hooks_stack.pop()
        if not _hooks_stack:
            _forward_ad.set_packer(None)


class save_on_cpu(saved_tensors_hooks):
    """Saved tensors are kept in host memory and moved back to their device when the backward
    needs them (on the CPU, a pass-through). ``pin_memory`` is accepted; host arrays here are
    plain ones."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda") -> None:
        def pack_to_cpu(tensor):
            return tensor.device, tensor.cpu()

        def unpack_from_cpu(packed):
            device, tensor = packed
            return tensor.to(device)

        super().__init__(pack_to_cpu, unpack_from_cpu)


class disable_saved_tensors_hooks:
    """Context manager under which entering ``saved_tensors_hooks`` raises RuntimeError with
    ``error_message`` (for features that cannot work with them); entering it while hooks are
    active raises the same."""

    def __init__(self, error_message: str) -> None:
        self.error_message = error_message
        self._previous = None

    def __enter__(self):
        global _disabled_message
        if _hooks_stack:
            raise RuntimeError(self.error_message)
        self._previous = _disabled_message
        _disabled_message = self.error_message
        return self

    def __exit__(self, *exc) -> None:
        global _disabled_message
        _disabled_message = self._previous


class allow_mutation_on_saved_tensors(saved_tensors_hooks):
    """Context manager under which a tensor saved for backward may be written in place: the
    backward uses the value it had when saved. torch clones on the write; this clones when the
    tensor is saved (the same values and gradients, at the cost of the copy for every saved
    tensor). The clone is recorded when grad mode is on, so a double backward still reaches the
    original tensor."""

    def __init__(self) -> None:
        def pack(tensor):
            if tensor.grad_fn is not None and _saved_by_own_node(tensor):
                with no_grad():
                    return tensor.clone()
            return tensor.clone()

        super().__init__(pack, lambda tensor: tensor)


def _saved_by_own_node(tensor) -> bool:
    """Whether ``tensor`` is an output its own node saves (cloning it in grad mode would make a
    node that points at the node saving it; the backward restores an output's place itself)."""
    fn = tensor.grad_fn
    return fn._saved_outputs is not None and any(
        s is not None and getattr(s, "_output_nr", None) == tensor._output_nr for s in fn._saved)


# ---------------------------------------------------------------- multi-grad hooks

class _MultiHandle:
    def __init__(self, handles) -> None:
        self._handles = handles

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def register_multi_grad_hook(tensors, fn, *, mode: str = "all"):
    """Call ``fn`` once per backward pass that reaches any of ``tensors``: with ``mode="all"``,
    ``fn(grads)`` after the pass, ``grads`` holding each tensor's gradient (None for one the pass
    did not reach); with ``mode="any"``, ``fn(grad)`` with the first gradient to arrive."""
    if mode not in ("all", "any"):
        raise ValueError(f"Expects mode to be one of ('all', 'any') but got {mode}")
    tensors = tuple(tensors)
    for i, t in enumerate(tensors):
        if not isinstance(t, _function._Tensor) or not t.requires_grad:
            raise RuntimeError(f"register_multi_grad_hook: tensors[{i}] does not require grad; every tensor must")
    handles = []
    if mode == "all":
        grads = [None] * len(tensors)
        pending = [False]

        def fire() -> None:
            seen = tuple(grads)
            grads[:] = [None] * len(tensors)
            pending[0] = False
            fn(seen)

        def hook_for(i):
            def hook(grad):
                grads[i] = grad
                if not pending[0]:
                    pending[0] = True
                    _engine.queue_callback(fire)

            return hook
    else:
        fired = [False]

        def rearm() -> None:
            fired[0] = False

        def hook_for(i):
            def hook(grad):
                if not fired[0]:
                    fired[0] = True
                    _engine.queue_callback(rearm)
                    fn(grad)

            return hook

    for i, t in enumerate(tensors):
        handles.append(t.register_hook(hook_for(i)))
    return _MultiHandle(handles)
