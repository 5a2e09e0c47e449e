"""NumPy's ``axis=`` and ``keepdims=`` for ``dim=`` and ``keepdim=``, as torch's argument parser takes them.

torch's C++-bound functions accept ``x.max(axis=1)``, ``torch.std(x, axis=0, keepdims=True)``: the
parser renames the keyword. Functions written in Python on torch's side (``torch.norm``,
``F.softmax``, ``torch.split``, ``Tensor.unique``) and parameters named otherwise (``flip``'s and
``roll``'s ``dims``) do not. ``PUBLIC_NAMES`` lists chainrule's public functions that torch 2.13
gives the aliases (tests/ops/test_numpy_names.py checks each against torch); the package wiring
wraps just those public names, so ops calling each other internally pay nothing, and the wrapper
itself only looks at its keywords when a call passes some.

sum, mean, cumsum and cumprod take ``axis``/``keepdims`` in their own signatures
(``reduce._numpy_names``), free for the hot ``sum``; this module gives the rest the same rule.
"""

from __future__ import annotations

import functools
import inspect

ALIASES = {"axis": "dim", "keepdims": "keepdim"}

# by namespace: the torch module (chainrule's top level, the Tensor methods of the same names,
# linalg, special, nn.functional, fft) whose functions of these names take the aliases
PUBLIC_NAMES = {
    "torch": (
        "max", "min", "argmax", "argmin", "amax", "amin", "aminmax", "prod", "any", "all", "logsumexp",
        "var_mean", "std_mean", "std", "var", "softmax", "log_softmax", "median", "nanmedian", "mode", "nansum",
        "nanmean", "count_nonzero", "cummax", "cummin", "logcumsumexp", "sort", "argsort", "topk", "kthvalue",
        "squeeze", "unsqueeze", "cat", "stack", "concat", "concatenate", "chunk", "unbind", "index_select",
        "gather", "diff", "narrow", "select", "nanquantile", "quantile", "scatter", "scatter_add", "index_fill",
        "cross", "renorm", "trapezoid", "take_along_dim", "tensor_split", "unflatten", "repeat_interleave",
        "cumulative_trapezoid", "trapz", "cosine_similarity",
        "index_add", "index_copy", "index_reduce", "scatter_reduce", "select_scatter", "slice_scatter",
        "split_with_sizes", "unsafe_chunk", "unsafe_split", "gradient", "frobenius_norm", "nuclear_norm",
        "pairwise_distance",
    ),
    "linalg": ("norm", "vector_norm", "vecdot", "cross", "matrix_norm"),
    "special": ("logsumexp", "softmax", "log_softmax"),
    "nn.functional": ("cosine_similarity",),
    # every transform of torch.fft is C++-bound: HF modeling_fnet's fftn loops torch.fft.fft(out, axis=axis)
    "fft": (
        "fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2", "irfft2", "hfft2", "ihfft2",
        "fftn", "ifftn", "rfftn", "irfftn", "hfftn", "ihfftn", "fftshift", "ifftshift",
    ),
    # Tensor methods alone: the in-place ones, and those written in Tensor's class body (which
    # install() takes for torch's Python-level methods and leaves)
    "Tensor": (
        "index_add", "index_add_", "index_copy_", "index_fill_", "index_reduce_", "scatter_", "scatter_add_",
        "scatter_reduce", "scatter_reduce_", "split_with_sizes", "squeeze_", "unsqueeze_",
    ),
}

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

# one wrapper per function, so a function public under two names (torch.logsumexp and
# torch.special.logsumexp) stays one object under both
_WRAPPERS: dict = {}


def accepts_numpy_names(fn):
    """``fn`` also taking ``axis=`` for its ``dim`` and ``keepdims=`` for its ``keepdim``."""
    if getattr(fn, "_takes_numpy_names", False):
        return fn
    if fn in _WRAPPERS:
        return _WRAPPERS[fn]
    parameters = inspect.signature(fn).parameters
    # where each renamed parameter sits positionally: given there too, the alias is a second value
    positions = {name: (i if parameters[name].kind in _POSITIONAL else None)
                 for i, name in enumerate(parameters) if name in ALIASES.values()}
    if not positions:
        raise TypeError(f"{fn.__qualname__} has no dim or keepdim parameter for numpy's names to name")
    op = fn.__name__

    def rename(args: tuple, kwargs: dict) -> None:
        for alias, name in ALIASES.items():
            if alias not in kwargs:
                continue
            position = positions.get(name, -1)
            if position == -1 or name in kwargs or (position is not None and len(args) > position):
                raise TypeError(f"{op}() got an unexpected keyword argument '{alias}'")
            kwargs[name] = kwargs.pop(alias)

    @functools.wraps(fn)
    def taking_numpy_names(*args, **kwargs):
        if kwargs and ("axis" in kwargs or "keepdims" in kwargs):
            rename(args, kwargs)
        return fn(*args, **kwargs)

    taking_numpy_names._takes_numpy_names = True
    _WRAPPERS[fn] = taking_numpy_names
    return taking_numpy_names


def install_methods(tensor_class, names) -> None:
    """Wrap ``tensor_class``'s methods ``names``, which torch's parser binds (PUBLIC_NAMES["Tensor"])."""
    for name in names:
        setattr(tensor_class, name, accepts_numpy_names(tensor_class.__dict__[name]))


def install(module, names, tensor_class=None) -> None:
    """Wrap ``module``'s functions ``names`` and, given ``tensor_class``, its methods of the same names."""
    for name in names:
        setattr(module, name, accepts_numpy_names(getattr(module, name)))
        method = tensor_class.__dict__.get(name) if tensor_class is not None else None
        # (a method torch writes in Python, Tensor.unflatten, binds as Python does: no NumPy names)
        if method is not None and inspect.isfunction(method) and method.__qualname__ != f"Tensor.{name}":
            setattr(tensor_class, name, accepts_numpy_names(method))
