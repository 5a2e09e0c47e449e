"""chainrule.utils.checkpoint: torch.utils.checkpoint's API, computing the ordinary way.

torch's activation checkpointing trades compute for memory: it drops a segment's activations in
the forward pass and recomputes them during backward. chainrule keeps the activations (the
graph records them as usual), so ``checkpoint`` gives the same values and the same gradients as
torch's but saves no memory.
"""

from __future__ import annotations

__all__ = ["checkpoint", "checkpoint_sequential"]


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check: str = "default",
               debug: bool = False, preserve_rng_state: bool = True, **kwargs):
    """``function(*args, **kwargs)``, differentiable as usual (see the module doc on memory)."""
    return function(*args, **kwargs)


def checkpoint_sequential(functions, segments: int, input, use_reentrant=None, **kwargs):
    """Run ``functions`` (a Sequential or a list of modules) on ``input`` one after another;
    ``segments`` only groups the recomputation in torch, so it changes nothing here."""
    if segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be at least 1, got {segments}")
    for function in (list(functions.children()) if hasattr(functions, "children") else list(functions)):
        input = function(input)
    return input
