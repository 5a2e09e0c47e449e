"""torch._tensor_str: the print options and the body formatter under torch's module path.

Tensor subclasses written for torch format their values with it (PyTorch Geometric's ``Index`` and
``EdgeIndex`` call ``torch._tensor_str._tensor_str(data, indent)`` in their ``__repr__``); the
formatting itself is ``_format``'s.
"""

from __future__ import annotations

from ._format import PRINT_OPTS, array_body, format_tensor, get_printoptions, printoptions, set_printoptions

__all__ = ["PRINT_OPTS", "get_printoptions", "printoptions", "set_printoptions"]


def _tensor_str(self, indent: int) -> str:
    """The bracketed values of ``self`` as ``repr`` prints them inside ``tensor(...)``, continuation
    lines indented by ``indent``; ``[]`` for an empty tensor."""
    if self.numel() == 0:
        return "[]"
    return array_body(self._data, indent)


def _str(self, *, tensor_contents=None) -> str:
    """The whole ``repr`` of ``self``: ``tensor(...)`` with its suffixes."""
    return format_tensor(self)
