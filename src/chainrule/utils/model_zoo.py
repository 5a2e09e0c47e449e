"""torch.utils.model_zoo: the old home of ``load_url``, now torch.hub's ``load_state_dict_from_url``
(torchvision still imports ``tqdm`` from here)."""

from __future__ import annotations

from ..hub import load_state_dict_from_url as load_url
from ..hub import tqdm

__all__ = ["load_url", "tqdm"]
