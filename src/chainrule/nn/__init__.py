"""chainrule.nn: Module, Parameter, the layers, ``functional``, ``init`` and ``utils``."""

from . import functional, init, parallel, utils  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules.loss import *  # noqa: F401,F403
from .modules.module import Module  # noqa: F401
from .modules.rnn import *  # noqa: F401,F403
from .parameter import Buffer, Parameter  # noqa: F401
