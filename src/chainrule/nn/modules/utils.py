"""Argument helpers torch code imports from ``torch.nn.modules.utils``: _single, _pair, _triple."""

from __future__ import annotations

import collections.abc
from itertools import repeat

from ...ops import creation as _creation
from ...ops._arg_parser import checked_signature

__all__: list[str] = []

# torch's modules build their parameters with torch.empty, whose argument parser words a size that is no
# int (Linear(3, 2.5): "empty(): argument 'size' failed to unpack the object at pos 2 with error ..."):
# the modules here call the public empty's checked form (ops' own empty skips the check)
_checked_empty = checked_signature(_creation.empty, ("chainrule", "empty"))


def _ntuple(n: int, name: str = "parse"):
    def parse(x):
        if isinstance(x, collections.abc.Iterable) and not isinstance(x, str):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")
