"""torch.distributed.algorithms.join: training on uneven inputs without hanging.

Ranks run out of inputs at different iterations. Inside ``with Join([joinables]):`` a rank that
has run out (has *joined*) stays in ``__exit__`` and, once per iteration of the ranks still
training, runs each joinable's ``JoinHook.main_hook``, which issues the same collectives those
ranks issue (DDP's gradient all-reduces, with zeros), so nobody waits for a partner that left.
The iterations are counted by one all-reduce: every training rank's first joinable calls
``Join.notify_join_context`` in each iteration and contributes 1, every joined rank contributes
0; when the sum is 0 all ranks have joined and each runs its ``post_hook(is_last_joiner)``.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

from ... import ones, zeros
from .. import distributed_c10d as c10d

# after this many iterations spent shadowing others, a joined rank warns about the skew (torch's)
UNEVEN_INPUT_WARN_THRESHOLD = 1000


class JoinHook:
    """What a joinable does on a rank that has joined. ``main_hook`` runs once for every
    iteration of the ranks still training (it must issue their collectives); ``post_hook`` runs
    once when all have joined, ``is_last_joiner`` True on the ranks that joined last."""

    def main_hook(self) -> None:
        """Shadow one training iteration's collectives (default: nothing)."""

    def post_hook(self, is_last_joiner: bool) -> None:
        """Clean up after all ranks joined, e.g. take the last joiner's state (default: nothing)."""


class _JoinConfig(NamedTuple):
    """How a joinable is set up by the Join that holds it; the first joinable communicates."""

    enable: bool
    throw_on_early_termination: bool
    is_first_joinable: bool

    @staticmethod
    def construct_disabled_join_config() -> _JoinConfig:
        return _JoinConfig(enable=False, throw_on_early_termination=False, is_first_joinable=False)


class Joinable(ABC):
    """A class whose per-iteration collectives a joined rank can shadow (torch's ``Joinable``):
    subclasses call ``Joinable.__init__``, give ``join_hook(**kwargs)``, ``join_device`` and
    ``join_process_group``, and call ``Join.notify_join_context(self)`` once per iteration
    before their collectives."""

    @abstractmethod
    def __init__(self) -> None:
        super().__init__()
        self._join_config = _JoinConfig.construct_disabled_join_config()

    @abstractmethod
    def join_hook(self, **kwargs) -> JoinHook:
        """The hook that shadows this joinable's collectives; ``kwargs`` are those given to Join."""

    @property
    @abstractmethod
    def join_device(self):
        """The device the join all-reduces run on."""

    @property
    @abstractmethod
    def join_process_group(self) -> Any:
        """The process group the joinable communicates over."""


class Join:
    """Context manager for uneven inputs (torch's ``Join``).

    ``joinables`` share one process group; ``kwargs`` go to every ``join_hook``. With
    ``enable=False`` it does nothing. With ``throw_on_early_termination=True`` the first rank to
    run out raises RuntimeError and so do all the others, in the iteration where it happened.
    """

    def __init__(self, joinables: list[Joinable], enable: bool = True, throw_on_early_termination: bool = False,
                 **kwargs) -> None:
        if len(joinables) == 0:
            raise ValueError("The join context manager requires at least one joinable")
        self._joinables = joinables
        self._join_hooks = [joinable.join_hook(**kwargs) for joinable in self._joinables]
        self._enable = enable
        self._throw_on_early_termination = throw_on_early_termination
        self._set_joinable_configs()
        self._extract_dist_info()

    def _set_joinable_configs(self) -> None:
        for position, joinable in enumerate(self._joinables):
            joinable._join_config = _JoinConfig(enable=self._enable,
                                                throw_on_early_termination=self._throw_on_early_termination,
                                                is_first_joinable=position == 0)

    def _extract_dist_info(self) -> None:
        process_group, device = None, None
        for joinable in self._joinables:
            if process_group is None:
                process_group = joinable.join_process_group
            elif process_group != joinable.join_process_group:
                raise ValueError("Using join context manager with multiple process groups")
            if device is None:
                device = joinable.join_device
        self._process_group = process_group
        self._rank = c10d.get_rank(self._process_group)
        self._device = device

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if not self._enable or exc_type is not None:
            return  # an exception from the block propagates as it is
        _complete_notification(self._joinables[0])
        is_last_joiner = True
        shadowed = 0
        while self._get_num_nonjoined_procs() != 0:
            if shadowed > UNEVEN_INPUT_WARN_THRESHOLD:
                warnings.warn(f"Detected uneven input skew of greater than {UNEVEN_INPUT_WARN_THRESHOLD}. This "
                              f"means that rank {self._rank} has at least {UNEVEN_INPUT_WARN_THRESHOLD} fewer "
                              "inputs than other currently-active ranks. This level of skew could lead to "
                              "performance degradation during training.", stacklevel=2)
            if self._throw_on_early_termination:
                self._notify_procs_to_terminate()
            for join_hook in self._join_hooks:
                join_hook.main_hook()
            is_last_joiner = False
            shadowed += 1
        for join_hook in self._join_hooks:
            join_hook.post_hook(is_last_joiner)

    def _get_num_nonjoined_procs(self) -> float:
        # this rank's 0 meets the 1 of each rank still training (notify_join_context)
        count = zeros(1, device=self._device)
        c10d.all_reduce(count, group=self._process_group)
        return count.item()

    def _notify_procs_to_terminate(self) -> None:
        # meets the training ranks' "should throw" all-reduce, so every rank raises
        c10d.all_reduce(ones(1, device=self._device), group=self._process_group)
        raise RuntimeError(f"Rank {self._rank} exhausted all inputs.")

    @staticmethod
    def notify_join_context(joinable: Joinable):
        """Called by ``joinable`` once per iteration, before its collectives: tells the joined
        ranks that this rank still trains. Returns the async all-reduce's Work (``result()[0]``
        counts the ranks still training) for the first joinable of an enabled Join, else
        None. With ``throw_on_early_termination`` raises RuntimeError when some rank has joined."""
        if not hasattr(joinable, "_join_config"):
            raise AssertionError(f"Check that the {type(joinable)} constructor calls the ``Joinable`` constructor")
        join_config = joinable._join_config
        if not join_config.is_first_joinable or not join_config.enable:
            return None
        device, process_group = joinable.join_device, joinable.join_process_group
        _complete_notification(joinable)
        still_training = ones(1, device=device)
        work = c10d.all_reduce(still_training, group=process_group, async_op=True)
        # held until the next call: MPI writes into the tensor, which must outlive the request
        # even when the caller drops the Work (torch's tutorial Counter does)
        joinable._join_notification = work
        if join_config.throw_on_early_termination:
            some_rank_joined = zeros(1, device=device)
            c10d.all_reduce(some_rank_joined, group=process_group)
            if some_rank_joined.item():
                _complete_notification(joinable)
                raise RuntimeError("Detected at least one rank that exhausted inputs. Throwing across all ranks.")
        return work


def _complete_notification(joinable: Joinable) -> None:
    """Wait for the joinable's last notify_join_context all-reduce, if one is outstanding."""
    work = getattr(joinable, "_join_notification", None)
    if work is not None:
        work.wait()
        joinable._join_notification = None
