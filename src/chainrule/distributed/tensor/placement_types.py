"""chainrule.distributed.tensor.placement_types: how a DTensor lies on one mesh dimension.

``Shard(dim)`` splits the tensor along ``dim``, ``Replicate()`` holds it whole on every rank,
``Partial(reduce_op)`` holds per-rank values still to be reduced. Equal placements compare
and hash equal, and print as torch prints them (``S(0)``, ``R``, ``P(sum)``).
"""

from __future__ import annotations

import operator

__all__ = ["Placement", "Shard", "Replicate", "Partial"]


class Placement:
    """The base class of placements; each kind answers only to its own ``is_*`` question."""

    def is_shard(self, dim: int | None = None) -> bool:
        return False

    def is_replicate(self) -> bool:
        return False

    def is_partial(self, reduce_op: str | None = None) -> bool:
        return False


class Shard(Placement):
    def __init__(self, dim: int) -> None:
        try:
            self.dim = operator.index(dim)
        except TypeError:
            raise TypeError(f"__init__(): incompatible constructor arguments. The following argument types are "
                            f"supported:\n    1. Shard(dim: int)\n\nInvoked with: {dim!r}") from None

    def is_shard(self, dim: int | None = None) -> bool:
        return dim is None or dim == self.dim

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.dim == self.dim

    def __hash__(self) -> int:
        return hash((Shard, self.dim))

    def __repr__(self) -> str:
        return f"Shard(dim={self.dim})"

    def __str__(self) -> str:
        return f"S({self.dim})"


class Replicate(Placement):
    def is_replicate(self) -> bool:
        return True

    def __eq__(self, other) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(Replicate)

    def __repr__(self) -> str:
        return "Replicate()"

    def __str__(self) -> str:
        return "R"


class Partial(Placement):
    def __init__(self, reduce_op: str = "sum") -> None:
        self.reduce_op = reduce_op

    def is_partial(self, reduce_op: str | None = None) -> bool:
        return reduce_op is None or reduce_op == self.reduce_op

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.reduce_op == self.reduce_op

    def __hash__(self) -> int:
        return hash((Partial, self.reduce_op))

    def __repr__(self) -> str:
        return f"Partial({self.reduce_op})"

    def __str__(self) -> str:
        return f"P({self.reduce_op})"
