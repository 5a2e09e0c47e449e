"""torch.SymInt, torch.SymFloat, torch.SymBool: the types of the symbolic sizes torch.compile and
export trace with (an int, float or bool whose operations are recorded on a graph node).

chainrule's compile runs eagerly, so sizes are always plain ints and no value is ever one of
these; libraries still name them in ``isinstance`` checks beside ``int`` (kornia's
``isinstance(height, torch.SymInt)`` in ``pyrdown``), which must then answer False.
"""

from __future__ import annotations

__all__ = ["SymBool", "SymFloat", "SymInt"]


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
