"""torch.SymInt, torch.SymFloat, torch.SymBool: the types of the symbolic sizes torch.compile and
export trace with (an int, float or bool whose operations are recorded on a graph node).

chainrule's compile runs eagerly, so sizes are always plain ints and no value is ever one of
these; libraries still name them in ``isinstance`` checks beside ``int`` (kornia's
``isinstance(height, torch.SymInt)`` in ``pyrdown``), which must then answer False.
"""

from __future__ import annotations

__all__ = ["SymBool", "SymFloat", "SymInt", "sym_float", "sym_int", "sym_ite", "sym_max", "sym_min", "sym_not",
           "sym_sqrt", "sym_sum"]


class _SymbolicValue:
    def __init__(self, node) -> None:
        # the graph node the value's operations would be recorded on; chainrule records none
        self.node = node

    def __repr__(self) -> str:
        return repr(self.node)


class SymInt(_SymbolicValue):
    """An int whose operations are recorded symbolically (never made by chainrule)."""


class SymFloat(_SymbolicValue):
    """A float whose operations are recorded symbolically (never made by chainrule)."""


class SymBool(_SymbolicValue):
    """A bool whose operations are recorded symbolically (never made by chainrule)."""


# ---------------------------------------------------------------- torch.sym_*: size arithmetic that
# tracing code writes instead of int()/max()/... so that a symbolic size would stay symbolic; on the
# plain numbers chainrule always has they are the Python operations, with torch's promotions and checks

def _number_types() -> tuple:
    import numpy as np

    return (np.integer, np.floating, int, float), (np.floating, float)


def sym_int(a):
    """torch.sym_int: ``int(a)`` (a SymFloat would be truncated)."""
    return int(a)


def sym_float(a):
    """torch.sym_float: ``float(a)``."""
    if hasattr(a, "__sym_float__"):
        return a.__sym_float__()
    return float(a)


def _extremum(a, b, pick):
    every, floating = _number_types()
    for value in (a, b):
        if not isinstance(value, every):
            raise AssertionError(f"expected {every}, got {type(value)}")
    # unlike the builtin, a float on either side makes the answer a float (max(1, 1.0) is 1.0 both ways)
    return float(pick(a, b)) if isinstance(a, floating) or isinstance(b, floating) else pick(a, b)


def sym_max(a, b):
    """torch.sym_max: the larger of two numbers, a float if either is one."""
    return _extremum(a, b, max)


def sym_min(a, b):
    """torch.sym_min: the smaller of two numbers, a float if either is one."""
    return _extremum(a, b, min)


def sym_not(a):
    """torch.sym_not: ``not a``."""
    if hasattr(a, "__sym_not__"):
        return a.__sym_not__()
    return not a


def sym_sqrt(a):
    """torch.sym_sqrt: ``math.sqrt(a)``."""
    import math

    return math.sqrt(a)


def sym_sum(*args):
    """torch.sym_sum: the sum of numbers given as ``sym_sum([a, b, c])`` or ``sym_sum(a, b, c)``."""
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = args[0]
    return sum(args)


def sym_ite(b, t, f):
    """torch.sym_ite: ``t if b else f``, for a bool condition and branches of one type."""
    if not isinstance(b, (SymBool, bool)):
        raise AssertionError(f"expected SymBool or bool, got {type(b)}")
    if type(t) is not type(f):
        raise AssertionError(f"type mismatch: {type(t)} vs {type(f)}")
    return t if b else f
