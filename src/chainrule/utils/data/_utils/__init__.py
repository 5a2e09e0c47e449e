"""torch.utils.data._utils: the private package libraries import ``default_collate`` from
(``torch.utils.data._utils.collate``, opacus's DP data loader); chainrule's collate module under that name."""

import sys

from .. import collate as collate

sys.modules[f"{__name__}.collate"] = collate
