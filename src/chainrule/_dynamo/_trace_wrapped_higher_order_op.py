"""chainrule._dynamo._trace_wrapped_higher_order_op: the indexing mode torch's mask builders enter.

In torch, ``TransformGetItemToIndex`` is a TorchFunctionMode that turns ``tensor[i]`` with
integer or 0-d tensor indices into ``aten.index`` so that a compiled ``score_mod``/``mask_mod``
records an index op instead of turning a 0-d tensor into a Python number. Eagerly the values are
the same: chainrule already indexes by a 0-d integer tensor without reading it as a number (so
``chainrule.vmap`` can batch it), so entering the mode changes nothing here, as in eager torch
apart from the result being a copy rather than a view.
"""

from __future__ import annotations

__all__ = ["TransformGetItemToIndex"]


class TransformGetItemToIndex:
    """A context manager: ``with TransformGetItemToIndex(): mask = mask_mod(b, h, q, kv)``."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        return None
