"""chainrule.utils.checkpoint: torch.utils.checkpoint's API.

torch's activation checkpointing trades compute for memory: it drops a segment's activations in
the forward pass and recomputes them during backward. With ``use_reentrant=False`` the segment is
recorded as usual but the tensors its nodes save are packed into empty holders (saved_tensors_hooks);
the backward's first read of one reruns the segment, with the forward's RNG states (the CPU's and
those of the inputs' GPUs), to fill them, and stops once all are filled (torch's early stop). The
rerun's side effects are torch's too: a BatchNorm in the segment updates its running statistics a
second time (pytorch/pytorch#96136). The reentrant form, torch's default when ``use_reentrant`` is
not given, is torch's CheckpointFunction below.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref

from .. import _torch_function
from ..autograd import Function, backward, engine
from ..autograd.grad_mode import enable_grad, no_grad
from ..autograd.graph import saved_tensors_hooks
from ..tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointError", "CheckpointFunction", "check_backward_validity",
           "detach_variable", "get_device_states", "noop_context_fn", "set_checkpoint_debug_enabled",
           "set_checkpoint_early_stop", "set_device_states"]

# torch's switches for its non-reentrant checkpoint: early stop is honoured, debug is accepted
_enable_checkpoint_early_stop: bool | None = None  # None: each checkpoint decides (torch stops early)
_checkpoint_debug_enabled: bool | None = None


class CheckpointError(RuntimeError):
    """torch.utils.checkpoint.CheckpointError: raised when a recomputation does not give back the
    tensors the original forward saved."""


# torch's _debug_tip_msg, which ends its CheckpointErrors (its advice names torch's own switches)
_DEBUG_TIP = """
Tip: To see a more detailed error message, either pass `debug=True` to
`torch.utils.checkpoint.checkpoint(...)` or wrap the code block
with `with torch.utils.checkpoint.set_checkpoint_debug_enabled(True):` to
enable checkpoint\u2011debug mode globally.

If this error occurs under torch.compile with automatic_dynamic_shapes enabled,
it may be because the recomputation selected a different compiled graph than the
forward pass (e.g., a dynamic graph instead of the original static graph).
To fix this, either:
  - Use torch._dynamo.mark_dynamic() to explicitly mark varying dimensions as
    dynamic upfront, avoiding the static-to-dynamic transition.
  - Call torch._C._dynamo.eval_frame._set_lru_cache(False) to disable LRU cache
    reordering, which can change which graph is checked first between forward
    and recompute.
See https://github.com/pytorch/pytorch/issues/166926 for more details and
workaround examples.
"""
_DETERMINISM_CHECKS = ("default", "none")  # torch's _allowed_determinism_checks_to_fns, in its order


def noop_context_fn():
    """The default ``context_fn`` of ``checkpoint``: two null context managers (forward, recompute)."""
    return contextlib.nullcontext(), contextlib.nullcontext()


def checkpoint(function, *args, use_reentrant=None, context_fn=noop_context_fn, determinism_check: str = "default",
               debug: bool = False, early_stop: bool = True, preserve_rng_state: bool = True, **kwargs):
    """``function(*args, **kwargs)``, differentiable as usual (see the module doc on memory). With
    ``use_reentrant=True`` it is torch's reentrant form, CheckpointFunction: its node is
    CheckpointFunctionBackward, and with no input that requires grad its output requires none
    (torch warns that the gradients will be None). Without ``use_reentrant`` torch warns and takes
    the reentrant form, so a checkpoint whose inputs need no grad leaves its parameters' grads None."""
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. Starting in "
                      "PyTorch 2.9, calling checkpoint without use_reentrant will raise an exception. "
                      "use_reentrant=False is recommended, but if you need to preserve the current default behavior, "
                      "you can pass use_reentrant=True. Refer to docs for more details on the differences between the "
                      "two variants.", UserWarning, stacklevel=_torch_function.user_stacklevel())
        use_reentrant = True
    if use_reentrant:
        if kwargs:
            raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
        # (torch's identity checks: an explicit context_fn=None, or debug=0/None, is refused too)
        if context_fn is not noop_context_fn or debug is not False:
            raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
        return CheckpointFunction.apply(function, preserve_rng_state, *args)
    if (_checkpoint_debug_enabled if _checkpoint_debug_enabled is not None else debug) and \
            context_fn is not noop_context_fn:
        raise ValueError("debug=True is incompatible with non-default context_fn")
    if determinism_check not in _DETERMINISM_CHECKS:
        raise ValueError(f"determinism_check should be one of {list(_DETERMINISM_CHECKS)}, "
                         f"but got {determinism_check}")
    forward_context, recompute_context = context_fn()
    # as torch's, the global switch (set_checkpoint_early_stop) overrides the call's, read at the forward
    early_stop = early_stop if _enable_checkpoint_early_stop is None else _enable_checkpoint_early_stop
    frame = _RecomputeFrame(function, args, kwargs, preserve_rng_state, recompute_context, early_stop,
                            determinism_check == "default")
    with saved_tensors_hooks(frame.pack, frame.unpack), forward_context:
        return function(*args, **kwargs)


def _autocast_state(device_type: str = "cpu") -> dict:
    """The autocast settings of ``device_type`` at a checkpointed forward (torch's _get_autocast_kwargs),
    which its rerun restores so the recomputed tensors are the saved ones (bfloat16 inside a region)."""
    from .. import amp

    return {"enabled": amp.is_autocast_enabled(device_type), "dtype": amp.get_autocast_dtype(device_type),
            "cache_enabled": amp.is_autocast_cache_enabled()}


def _infer_device_type(*args) -> str:
    """torch's _infer_device_type: the device type of the first tensor argument not on the CPU, else 'cpu'
    where a tensor is on it, else the default device type ('cuda')."""
    types = [a.device.type for a in args if isinstance(a, Tensor)]
    return next((kind for kind in types if kind != "cpu"), "cpu" if types else "cuda")


def _autocast_states(*args) -> tuple:
    """(the inputs' device type, its autocast settings or None where it has no autocast, the CPU's): what
    a rerun restores, as torch's CheckpointFunction and non-reentrant checkpoint keep them."""
    from .. import amp

    device_type = _infer_device_type(*args)
    device_state = _autocast_state(device_type) if amp.is_autocast_available(device_type) else None
    return device_type, device_state, _autocast_state()


@contextlib.contextmanager
def _autocast_restored(states: tuple):
    """The autocast settings a checkpointed forward ran under, the inputs' device's then the CPU's."""
    from .. import amp

    device_type, device_state, cpu_state = states
    device_context = amp.autocast(device_type, **device_state) if device_state is not None else contextlib.nullcontext()
    with device_context, amp.autocast("cpu", **cpu_state):
        yield


def _metadata(tensor) -> dict:
    return {"shape": tensor.shape, "dtype": tensor.dtype, "device": tensor.device}


class _StopRecomputation(Exception):
    """Raised inside a rerun once every saved tensor is back (torch's early stop)."""


class _Holder:
    """What a checkpointed node saves in place of a tensor: filled by the rerun."""

    __slots__ = ("recomputed", "metadata", "__weakref__")

    def __init__(self, metadata=None) -> None:
        self.recomputed = None
        self.metadata = metadata  # what determinism_check="default" compares the rerun's tensor with


class _RecomputeFrame:
    """One non-reentrant checkpoint call: the holders its nodes saved, in the order they saved
    them, and what the rerun needs (the function, its inputs, the RNG state at the forward)."""

    def __init__(self, function, args: tuple, kwargs: dict, preserve_rng_state: bool, recompute_context,
                 early_stop: bool = True, check_metadata: bool = True) -> None:
        from ..ops import random as random_ops

        self.early_stop, self.check_metadata = early_stop, check_metadata
        self.function, self.args, self.kwargs = function, args, kwargs
        self.rng_state = random_ops.get_rng_state() if preserve_rng_state else None
        # the generators of the inputs' GPUs too, as torch's (a dropout on 'cuda' draws from them)
        self.devices, self.device_states = get_device_states(*args) if preserve_rng_state else ([], [])
        self.recompute_context = recompute_context
        self.autocast_states = _autocast_states(*args)
        self.holders: list = []  # weak: a holder whose node was freed needs no refill

    def pack(self, tensor) -> _Holder:
        holder = _Holder(_metadata(tensor) if self.check_metadata else None)
        self.holders.append(weakref.ref(holder))
        return holder

    def unpack(self, holder: _Holder):
        if holder.recomputed is None:
            saved = self.recompute()
            if holder.recomputed is None:
                raise CheckpointError("torch.utils.checkpoint: A different number of tensors was saved during the "
                                      f"original forward and recomputation.\nNumber of tensors saved during forward: "
                                      f"{len(self.holders)}\nNumber of tensors saved during recomputation: {saved}.\n"
                                      f"{_DEBUG_TIP}")
            if self.check_metadata:
                self.check_recomputed_metadata()
        return holder.recomputed

    def check_recomputed_metadata(self) -> None:
        """torch's determinism_check="default": every refilled tensor has the shape, dtype and
        device the forward saved, else a CheckpointError naming each by its position."""
        mismatched = ""
        for index, ref in enumerate(self.holders):
            holder = ref()
            if holder is None or holder.recomputed is None:
                continue
            recomputed = _metadata(holder.recomputed)
            if recomputed != holder.metadata:
                mismatched += (f"tensor at position {index}:\nsaved metadata: {holder.metadata}\n"
                               f"recomputed metadata: {recomputed}\n")
        if mismatched:
            raise CheckpointError("torch.utils.checkpoint: Recomputed values for the following tensors have different "
                                  f"metadata than during the forward pass.\n{mismatched}.\n{_DEBUG_TIP}")

    def forget(self) -> None:
        """Empty the holders when the backward pass ends: another pass over a retained graph
        reruns the function, as torch's does."""
        for ref in self.holders:
            holder = ref()
            if holder is not None:
                holder.recomputed = None

    def recompute(self) -> int:
        """Rerun the function with recording on, on the original inputs, putting each tensor it
        saves into the next holder; the count it saved. Unpacked, each takes the place in the
        forward's graph of the tensor it stands for (as any saved tensor through hooks does), so a
        backward with create_graph=True differentiates through the forward's nodes, as torch's."""
        from ..ops import random as random_ops

        early_stop = self.early_stop
        holders = iter(self.holders)
        remaining = sum(ref() is not None for ref in self.holders)
        saved = 0

        def fill(tensor):
            nonlocal remaining, saved
            saved += 1
            holder = next(holders, lambda: None)()
            if holder is not None:
                holder.recomputed = tensor
                remaining -= 1
                if early_stop and remaining == 0:
                    raise _StopRecomputation
            return tensor

        with contextlib.suppress(RuntimeError):  # (outside a backward pass there is no end to wait for)
            engine.queue_callback(self.forget)

        with random_ops.fork_rng(devices=self.devices, enabled=self.rng_state is not None):
            if self.rng_state is not None:
                random_ops.set_rng_state(self.rng_state)
                set_device_states(self.devices, self.device_states)
            try:
                with enable_grad(), _autocast_restored(self.autocast_states), self.recompute_context, \
                        saved_tensors_hooks(fill, lambda packed: packed):
                    self.function(*self.args, **self.kwargs)
            except _StopRecomputation:
                pass
        return saved


def checkpoint_sequential(functions, segments: int, input, use_reentrant=None, **kwargs):
    """Run ``functions`` (a Sequential or a list of modules) on ``input`` one after another, as
    torch's: all but the last of ``segments`` equal runs go through ``checkpoint``, so the reentrant
    form (torch's default, with a warning) leaves those runs' parameters without grads when
    ``input`` needs none."""
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should be passed "
                      "explicitly. In version 2.9 we will raise an exception if use_reentrant is not passed. "
                      "use_reentrant=False is recommended, but if you need to preserve the current default behavior, "
                      "you can pass use_reentrant=True. Refer to docs for more details on the differences between the "
                      "two variants.", UserWarning, stacklevel=_torch_function.user_stacklevel())
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    functions = list(functions.children()) if hasattr(functions, "children") else list(functions)

    def run(start: int, end: int):
        def forward(value):
            for function in functions[start:end]:
                value = function(value)
            return value
        return forward

    segment_size = len(functions) // segments  # as torch's: zero segments divide by zero, negative ones checkpoint nothing
    end = 0
    for start in range(0, segment_size * (segments - 1), segment_size):
        end = start + segment_size
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, preserve_rng_state=preserve)
    return run(end, len(functions))(input)


class CheckpointFunction(Function):
    """torch's reentrant checkpoint as a Function: ``CheckpointFunction.apply(run_function,
    preserve_rng_state, *args)``. Unlike ``checkpoint`` above, this one does what torch's does:
    forward runs ``run_function`` without recording, and backward runs it again with recording
    on and backpropagates through that second graph (so activations are not kept between the
    passes). ``preserve_rng_state`` restores the CPU generator, and those of the inputs' GPUs,
    before the rerun so random ops draw the same numbers."""

    label = "checkpoint"
    rule = "reruns the segment with recording on and backpropagates through that second graph"

    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        from ..ops import random as random_ops  # the generator lives in the op package

        check_backward_validity(args)
        ctx.run_function = run_function
        ctx.preserve_rng_state = preserve_rng_state
        ctx.autocast_states = _autocast_states(*args)
        if preserve_rng_state:
            ctx.forward_rng_state = random_ops.get_rng_state()
            ctx.forward_devices, ctx.forward_device_states = get_device_states(*args)
        ctx.inputs = [None if isinstance(a, Tensor) else a for a in args]
        ctx.tensor_indices = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.save_for_backward(*[a for a in args if isinstance(a, Tensor)])
        with no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx, *grad_outputs):
        from ..autograd.engine import is_checkpoint_valid
        from ..ops import random as random_ops

        if not is_checkpoint_valid():
            raise RuntimeError("When use_reentrant=True, torch.utils.checkpoint is incompatible with .grad() or passing "
                               "an `inputs` parameter to .backward(). To resolve this error, you can either set "
                               "use_reentrant=False, or call .backward() without passing the `inputs` argument.")
        inputs = list(ctx.inputs)
        for index, tensor in zip(ctx.tensor_indices, ctx.saved_values):
            inputs[index] = tensor
        detached = detach_variable(tuple(inputs))
        devices = ctx.forward_devices if ctx.preserve_rng_state else []
        with random_ops.fork_rng(devices=devices, enabled=ctx.preserve_rng_state):
            if ctx.preserve_rng_state:
                random_ops.set_rng_state(ctx.forward_rng_state)
                set_device_states(devices, ctx.forward_device_states)
            with enable_grad(), _autocast_restored(ctx.autocast_states):
                outputs = ctx.run_function(*detached)
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        pairs = [(out, grad) for out, grad in zip(outputs, grad_outputs) if isinstance(out, Tensor)
                 and out.requires_grad]
        if not pairs:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not necessary")
        backward([out for out, _ in pairs], [grad for _, grad in pairs])
        return (None, None) + tuple(x.grad if isinstance(x, Tensor) else None for x in detached)


def detach_variable(inputs: tuple) -> tuple:
    """Each tensor of ``inputs`` detached, keeping its ``requires_grad`` (a fresh leaf for a rerun);
    other items as they are. Only a tuple is accepted, as torch."""
    if not isinstance(inputs, tuple):
        raise RuntimeError(f"Only tuple of tensors is supported. Got Unsupported input type: {type(inputs).__name__}")
    out = []
    for item in inputs:
        if isinstance(item, Tensor):
            leaf = item.detach()
            leaf.requires_grad = item.requires_grad
            item = leaf
        out.append(item)
    return tuple(out)


def check_backward_validity(inputs) -> None:
    """Warn, as torch, when no tensor among ``inputs`` requires grad (the checkpoint then gives None
    gradients)."""
    if not any(x.requires_grad for x in inputs if isinstance(x, Tensor)):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=2)


def get_device_states(*args) -> tuple[list[int], list[Tensor]]:
    """The GPU indices of the tensors among ``args`` (nested in lists, tuples, dicts too) and each
    device's generator state, for ``set_device_states`` to put back before a rerun."""
    from ..ops import random as random_ops
    from ._pytree import tree_leaves

    # each device once, as torch's set of them (its ints iterate in ascending order)
    indices = sorted({leaf.get_device() for leaf in tree_leaves(args)
                      if isinstance(leaf, Tensor) and leaf.device.type not in ("cpu", "meta")})
    return indices, [random_ops.cuda_default_generator(i).get_state() for i in indices]


def set_device_states(devices, states, *, device_type=None) -> None:
    """Restore the generator state of each GPU in ``devices`` from ``states`` (get_device_states')."""
    from ..ops import random as random_ops

    for index, state in zip(devices, states):
        random_ops.cuda_default_generator(index).set_state(state)


@contextlib.contextmanager
def set_checkpoint_early_stop(enable: bool):
    """torch's switch for stopping a non-reentrant recomputation once the needed tensors exist;
    set for the block and restored after (chainrule recomputes nothing, so it changes no result)."""
    global _enable_checkpoint_early_stop
    previous = _enable_checkpoint_early_stop
    _enable_checkpoint_early_stop = enable
    try:
        yield
    finally:
        _enable_checkpoint_early_stop = previous


@contextlib.contextmanager
def set_checkpoint_debug_enabled(enabled: bool | None):
    """torch's override of ``checkpoint(debug=)`` for the block (None defers to each call); set and
    restored as torch's, and read by nobody here since there is no recomputation to trace."""
    global _checkpoint_debug_enabled
    previous = _checkpoint_debug_enabled
    _checkpoint_debug_enabled = enabled
    try:
        yield
    finally:
        _checkpoint_debug_enabled = previous
