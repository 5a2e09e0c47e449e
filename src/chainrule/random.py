"""chainrule.random: torch.random, the random-number state of the CPU generator (and, for
``manual_seed``/``seed``/``fork_rng``, of every CUDA device's). The generators themselves live with
the random ops (chainrule.ops.random); this module is torch's public face for them."""

from __future__ import annotations

from .ops.random import (
    Generator,
    default_generator,
    fork_rng,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)

__all__ = ["Generator", "default_generator", "fork_rng", "get_rng_state", "initial_seed", "manual_seed", "seed",
           "set_rng_state", "thread_safe_generator"]


def thread_safe_generator() -> Generator | None:
    """torch.random.thread_safe_generator: the generator of the DataLoader thread worker calling it,
    None elsewhere (random ops then use the default generator). chainrule's DataLoader runs its
    workers as processes, never threads, so this is always None."""
    return None

# bound by the __future__ import; dir(torch.random) has no such name
del annotations
