"""chainrule.jit.annotations: the typing names torch.jit.annotations re-exports.

Model code written to be scriptable imports its annotations from here (timm's densenet does
``from torch.jit.annotations import List``). They are the ``typing`` objects themselves, as in
torch; TorchScript's own type classes have no use without a compiler and are not provided.
"""

from typing import Any, Dict, List, Optional, Tuple, Union  # noqa: UP035  (torch re-exports these objects)

__all__ = ["Any", "Dict", "List", "Optional", "Tuple", "Union",
           "BroadcastingList1", "BroadcastingList2", "BroadcastingList3"]


class BroadcastingListCls:
    """``BroadcastingList2[int]``: TorchScript reads it as "an int or a list of 2 ints"; eagerly
    the subscript is None, as torch's is."""

    def __getitem__(self, types):
        return None


BroadcastingList1 = BroadcastingList2 = BroadcastingList3 = BroadcastingListCls()
