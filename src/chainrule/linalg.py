"""chainrule.linalg: torch.linalg's namespace.

The functions live with the other linear-algebra ops in ``ops/linalg.py`` (norm, vector_norm,
matrix_norm, inv, det, slogdet, solve, cross, matrix_power, multi_dot, ...) and, for the
decompositions, in ``ops/decompositions.py`` (its ``linalg_<name>`` functions, and
``matrix_exp``); this module exposes them under torch.linalg's names.
"""

from __future__ import annotations

import inspect

from . import _torch_function
from .ops import decompositions as _decompositions
from .ops import linalg as _ops_linalg

# torch.linalg name -> its function in ops/decompositions.py (whose top-level namesakes, torch.svd,
# torch.qr, torch.cholesky and torch.cross, have other signatures)
_DECOMPOSITIONS = {
    name.removeprefix("linalg_"): getattr(_decompositions, name)
    for name in dir(_decompositions) if name.startswith("linalg_")
} | {"matrix_exp": _decompositions.matrix_exp}


class _LinAlgError(RuntimeError):
    """torch.linalg.LinAlgError: a RuntimeError for singular or non-positive-definite input. Named
    as torch's class is (``torch._C._LinAlgError``), which tracebacks and ``type(e).__name__`` show."""


_LinAlgError.__module__ = "chainrule._C"  # where torch defines it; chainrule._C exports it too
LinAlgError = _LinAlgError


# top-level torch functions ops/linalg.py defines that torch.linalg does not have (its vander and
# diagonal are other functions): torch.mm is no torch.linalg.mm, so they stay out of this namespace
_TOP_LEVEL_ONLY = {"diag", "geqrf", "ormqr", "vander", "diagonal", "addbmm", "addmm", "addmv", "addr", "baddbmm",
                   "bmm", "cdist", "chain_matmul", "dot", "einsum", "ger", "inner", "inverse", "kron", "logdet", "mm",
                   "mv", "outer", "pdist", "tensordot", "trace", "vdot"}


def linalg_diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1):
    """torch.linalg.diagonal: torch.diagonal of the last two dims of a batch of matrices (torch.diagonal's
    own defaults are dims 0 and 1); ``offset`` and the dims are keyword-only, as in torch."""
    return _ops_linalg.diagonal(A, offset, dim1, dim2)


# torch.linalg functions whose top-level namesakes have other signatures or defaults
_LINALG_ONLY = {"diagonal": linalg_diagonal}


def _public_function(name: str):
    """The public function ``name`` defined in ops/linalg.py, or None (helpers and imports are not
    part of torch.linalg)."""
    obj = getattr(_ops_linalg, name, None)
    if name.startswith("_") or name in _TOP_LEVEL_ONLY or not inspect.isfunction(obj) \
            or obj.__module__ != _ops_linalg.__name__:
        return None
    return obj


# name -> (function, its public face): the face as last made for that function, so that an attribute
# access (``torch.linalg.svd(...)`` in a loop) does not build torch's signature check again each time
_FACES: dict = {}


def __getattr__(name: str):
    # looked up at call time, so functions added to ops/linalg.py appear here without an edit
    function = _DECOMPOSITIONS.get(name) or _LINALG_ONLY.get(name) or _public_function(name)
    if function is not None:
        if not _torch_function.wired:  # the package is still wiring itself: the op as defined
            return function
        face = _FACES.get(name)
        if face is None or face[0] is not function:
            # the top level's wrapper where it has one (torch.linalg.matmul is torch.matmul's), else its own
            face = _FACES[name] = (function, _torch_function.dispatching(function, "torch.linalg",
                                                                        home=(__name__, name), builtin=True))
        return face[1]
    raise AttributeError(f"module 'chainrule.linalg' has no attribute '{name}'")


def __dir__() -> list:
    return sorted({name for name in dir(_ops_linalg) if _public_function(name)} | set(_DECOMPOSITIONS)
                  | set(_LINALG_ONLY) | {"LinAlgError"})
