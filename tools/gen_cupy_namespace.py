"""Record real CuPy's public surface into ``src/chainrule/_cupy_surface.py``.

The CuPy stand-in (``chainrule/_standin.py``) is NumPy underneath, so without a list of what
CuPy really has, an op calling a name, keyword, ufunc method or ndarray attribute CuPy lacks
passes CI and fails on the GPU. This script reads that list off an installed CuPy: it needs no
GPU and no driver (only module attributes, signatures and docstrings are read). Run it with a
Python that has CuPy installed, e.g.::

    /tmp/cupyvenv/bin/python tools/gen_cupy_namespace.py

Keywords come from ``inspect.signature`` for Python-defined functions and from the first line
of the docstring for Cython ones (which carry ``name(params)`` there); a function with
``**kwargs``, or whose parameters neither source gives, is recorded with no keyword list, and the
stand-in then checks only that the name exists.
"""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
from pathlib import Path

import cupy
import cupy.cuda.runtime
import cupyx
import cupyx.scipy.special
import numpy

OUTPUT = Path(__file__).resolve().parents[1] / "src" / "chainrule" / "_cupy_surface.py"

UFUNC_METHODS = ("reduce", "accumulate", "outer", "reduceat", "at")
NAMESPACES = {
    "cupy": cupy,
    "cupy.linalg": cupy.linalg,
    "cupy.fft": cupy.fft,
    "cupy.random": cupy.random,
    "cupy.lib.stride_tricks": cupy.lib.stride_tricks,
    "cupyx": cupyx,
    "cupyx.scipy.special": cupyx.scipy.special,
    "cupy.cuda": cupy.cuda,
    "cupy.cuda.runtime": cupy.cuda.runtime,
}
# classes whose attributes (and method keywords) chainrule's device code reaches for
CLASSES = {
    "ndarray": cupy.ndarray,
    "random.Generator": cupy.random.Generator,
    "cuda.Device": cupy.cuda.Device,
    "cuda.Stream": cupy.cuda.Stream,
    "cuda.Event": cupy.cuda.Event,
    "cuda.MemoryPool": cupy.cuda.MemoryPool,
    "cuda.PinnedMemoryPool": cupy.cuda.PinnedMemoryPool,
    "ElementwiseKernel": cupy.ElementwiseKernel,
    "ReductionKernel": cupy.ReductionKernel,
    "RawKernel": cupy.RawKernel,
    "RawModule": cupy.RawModule,
}
# constructors and calls whose keywords live only in the class docstring or the call's prose
CONSTRUCTORS = ("ElementwiseKernel", "ReductionKernel", "RawKernel", "RawModule", "cuda.Event", "cuda.Stream",
                "cuda.Device", "cuda.MemoryPool")
# the documented keywords of the kernels' __call__ (their docstrings say ``*args, **kwargs``)
KERNEL_CALL_KEYWORDS = {
    "ElementwiseKernel": ("size", "block_size"),
    "ReductionKernel": ("out", "axis", "keepdims", "stream"),
    "RawKernel": ("grid", "block", "args", "shared_mem"),
}

_DTYPES = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float16", "float32",
           "float64", "complex64", "complex128")


def _unallocated(shape: tuple, dtype) -> cupy.ndarray:
    """A cupy.ndarray over an address nothing is read from or written to: enough for CuPy's Python
    level checks, which run before any kernel launch (that launch then fails without a driver)."""
    from cupy.cuda import memory

    dtype = numpy.dtype(dtype)
    size = max(int(numpy.prod(shape)) * dtype.itemsize, 8)
    return cupy.ndarray(shape, dtype, memptr=memory.MemoryPointer(memory.UnownedMemory(0x10000000, size, None, 0), 0))


def _scatter_dtypes(name: str) -> frozenset:
    """The dtypes ``cupy.<name>.at`` takes: its scatter kernels check the dtype (TypeError: the
    CUDA atomics exist for a few types) before launching, so the check is probed without a GPU."""
    taken = set()
    for dtype in _DTYPES:
        try:
            getattr(cupy, name).at(_unallocated((4,), dtype), _unallocated((3,), "int64"), _unallocated((3,), dtype))
        except TypeError:
            continue
        except Exception:  # noqa: S110 (past the dtype check: the launch fails without a driver)
            pass
        taken.add(dtype)
    return frozenset(taken)


_SIGNATURE_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w+)\((.*)\)(?:\s*->.*)?\s*$")


def _split_top_level(params: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in params:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts]


def _keywords_from_text(params: str):
    """The keyword-capable parameter names of a ``name(params)`` docstring line; None when it takes
    ``**kwargs`` (anything goes) or cannot be read."""
    names, positional_only = [], False
    for part in _split_top_level(params.replace("\\*", "*")):
        head = part.split("=", 1)[0].split(":", 1)[0].strip()
        if head == "/":
            positional_only = True  # everything so far was positional-only
            names.clear()
            continue
        if head == "*" or head.startswith("*") and not head.startswith("**"):
            continue
        if head.startswith("**"):
            return None
        name = head.split()[-1] if head else ""  # Cython's typed ``int axis`` -> ``axis``
        if not name.isidentifier():
            return None
        if name != "self":
            names.append(name)
    del positional_only
    return tuple(names)


def _docstring_keywords(obj):
    doc = inspect.getdoc(obj) or ""
    for line in doc.splitlines()[:3]:
        match = _SIGNATURE_LINE.match(line)
        if match:
            return _keywords_from_text(match.group(2))
    return None


def _documented_arguments(obj) -> tuple:
    """The names an ``Args:`` section documents (for a class whose signature line says ``**kwargs``)."""
    doc = inspect.getdoc(obj) or ""
    section = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    return tuple(re.findall(r"^    (\w+) \(", section, flags=re.MULTILINE))


def keywords_of(obj):
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return _docstring_keywords(obj)
    names = []
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            return None
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY) and parameter.name != "self":
            names.append(parameter.name)
    if any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values()) and not names:
        # a wrapper's (*args, **kwargs) is caught above; (*args) alone: the docstring may say more
        return _docstring_keywords(obj) or ()
    return tuple(names)


class _Probe:
    """A stand-in argument with no attributes: a ufunc method CuPy implements fails on it with an
    AttributeError or a CUDA error, one it does not implement raises NotImplementedError first
    (CuPy's ``ufunc.reduce`` is only add/multiply, ``accumulate`` add/multiply, ``reduceat`` add,
    ``at`` the ufuncs with a scatter op), so no GPU is needed to tell them apart."""


def _ufunc_methods(ufunc) -> frozenset:
    supported = set()
    for method, args in (("reduce", (_Probe(),)), ("accumulate", (_Probe(),)), ("reduceat", (_Probe(), None)),
                         ("at", (_Probe(), None, None)), ("outer", (_Probe(), _Probe()))):
        try:
            getattr(ufunc, method)(*args)
        except NotImplementedError:
            continue
        except Exception:  # noqa: S110 (it got past CuPy's "not supported yet" check)
            pass
        supported.add(method)
    return frozenset(supported)


def public_names(namespace) -> list[str]:
    return sorted(n for n in dir(namespace) if not n.startswith("_"))


def main() -> None:
    names, keywords, ufuncs = {}, {}, {}
    for label, namespace in NAMESPACES.items():
        names[label] = public_names(namespace)
        for name in names[label]:
            value = getattr(namespace, name)
            if isinstance(value, cupy.ufunc):
                if label == "cupy":
                    ufuncs[name] = (value.nin, value.nout, _ufunc_methods(value))
                kws = _docstring_keywords(value)
            elif inspect.isclass(value) or inspect.ismodule(value):
                continue
            elif callable(value):
                kws = keywords_of(value)
            else:
                continue
            if kws is not None:
                keywords[f"{label}.{name}"] = kws
    attributes = {}
    for label, cls in CLASSES.items():
        attributes[label] = sorted(n for n in dir(cls) if not n.startswith("_") or n in (
            "__dlpack__", "__dlpack_device__", "__cuda_array_interface__", "__array_ufunc__", "__array_function__"))
        for name in attributes[label]:
            member = getattr(cls, name, None)
            if callable(member) and not inspect.isclass(member):
                kws = keywords_of(member)
                if kws is not None:
                    keywords[f"{label}.{name}"] = kws
    for label in CONSTRUCTORS:
        cls = CLASSES[label]
        kws = _docstring_keywords(cls) or _docstring_keywords(cls.__init__) or _documented_arguments(cls) or None
        if kws is not None:
            keywords[f"{label}()"] = kws
    for label, kws in KERNEL_CALL_KEYWORDS.items():
        keywords[f"{label}.__call__"] = kws
    ufunc_methods = {m: keywords_of(getattr(cupy.add, m)) for m in UFUNC_METHODS}

    header = f'''"""CuPy {cupy.__version__}'s public surface, as the GPU machine has it: the names of its namespaces,
the attributes of ``cupy.ndarray`` and the other classes chainrule's device code touches, each
function's keyword parameters, and its ufuncs with whether ``ufunc.at`` works for them.

Generated: do not edit. Regenerate with a Python that has CuPy installed (no GPU needed)::

    /tmp/cupyvenv/bin/python tools/gen_cupy_namespace.py

The CuPy stand-in (``chainrule._standin``) refuses what is not here, as real CuPy would.
"""

# ruff: noqa: E501

'''
    body = [
        f"VERSION = {cupy.__version__!r}",
        f"NUMPY_VERSION = {sys.modules['numpy'].__version__!r}",
        "",
        "# public names of each namespace",
        "NAMES = " + _literal({k: frozenset(v) for k, v in names.items()}),
        "",
        "# public attributes of the classes the device code uses",
        "ATTRIBUTES = " + _literal({k: frozenset(v) for k, v in attributes.items()}),
        "",
        "# 'namespace.function' (or 'Class.method', 'Class()' for a constructor) -> the parameters it takes",
        "# by keyword; a function missing here takes **kwargs or has no readable signature",
        "KEYWORDS = " + _literal(keywords),
        "",
        "# ufunc name -> (nin, nout, the methods CuPy implements for it: reduce/accumulate only for add and",
        "# multiply, reduceat only for add, at only where a scatter kernel backs it; the others raise",
        "# NotImplementedError on the GPU)",
        "UFUNCS = " + _literal(ufuncs),
        "",
        "# ufunc name -> the dtypes its ufunc.at takes (a scatter kernel on CUDA atomics; TypeError for others)",
        "SCATTER_DTYPES = " + _literal({name: _scatter_dtypes(name) for name, spec in sorted(ufuncs.items())
                                         if "at" in spec[2]}),
        "",
        "# keywords of the ufunc methods (None: **kwargs)",
        "UFUNC_METHODS = " + _literal(ufunc_methods),
        "",
    ]
    OUTPUT.write_text(header + "\n".join(body))
    print(f"wrote {OUTPUT} (CuPy {cupy.__version__}: {sum(map(len, names.values()))} names, "
          f"{len(keywords)} keyword lists, {len(ufuncs)} ufuncs)")


def _literal(value, indent: int = 4) -> str:
    """A Python literal of dicts, tuples and frozensets, sorted, so that regenerating from the same
    CuPy gives the same file (a frozenset's own repr follows string hashing, which varies per run)."""
    if isinstance(value, dict):
        pad = " " * indent
        items = [f"{pad}{key!r}: {_literal(value[key], indent + 4)}," for key in sorted(value)]
        return "{\n" + "\n".join(items) + "\n" + " " * (indent - 4) + "}"
    if isinstance(value, frozenset):
        body = textwrap.fill(", ".join(repr(v) for v in sorted(value)), width=110,
                             initial_indent=" " * indent, subsequent_indent=" " * indent)
        return "frozenset({\n" + body + "\n" + " " * (indent - 4) + "})"
    if isinstance(value, tuple) and any(isinstance(v, frozenset) for v in value):
        inline = (("frozenset({" + ", ".join(repr(x) for x in sorted(v)) + "})") if isinstance(v, frozenset)
                  else repr(v) for v in value)
        return "(" + ", ".join(inline) + ")"
    return repr(value)


if __name__ == "__main__":
    main()
