"""The CuPy stand-in for tests without a GPU (see ``chainrule._standin``).

It lives in the base layer beside ``_backend``, which switches it on as the 'cuda' device;
this is its public name for tests and scripts.
"""

from .._standin import *  # noqa: F403
from .._standin import __all__  # noqa: F401
