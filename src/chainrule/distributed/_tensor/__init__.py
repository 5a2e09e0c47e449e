"""torch.distributed._tensor: the old import path of ``torch.distributed.tensor``, kept by torch as a
redirect (opacus imports ``torch.distributed._tensor.experimental``)."""

import sys
from importlib import import_module

from ..tensor import *  # noqa: F401,F403
from ..tensor import __all__  # noqa: F401

# the same module objects under the old names, as torch's shim registers them
for _old, _new in (("experimental", "tensor.experimental"), ("device_mesh", "device_mesh")):
    sys.modules[f"{__name__}.{_old}"] = import_module(f"chainrule.distributed.{_new}")
