"""nn.utils: gradient clipping, flat parameter vectors, packed sequences (``rnn``), weight norm,
``skip_init``."""

from . import rnn  # noqa: F401
from .clip_grad import (  # noqa: F401
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from .convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
from .weight_norm import remove_weight_norm, weight_norm  # noqa: F401


def skip_init(module_cls, *args, **kwargs):
    """torch.nn.utils.skip_init: build ``module_cls(*args, **kwargs)``. torch skips the weight
    initialisation by building on the meta device; chainrule has no meta device, so the module is
    initialised as usual — callers re-initialise it themselves either way."""
    return module_cls(*args, **kwargs)
