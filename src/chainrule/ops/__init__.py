"""Op families; each module holds forwards and their derivative rules side by side.

The package is also torch.ops: ``chainrule.ops.aten.add.Tensor``, ``chainrule.ops.mylib.foo`` for
operators defined through chainrule.library, and ``chainrule.ops.load_library``. Any attribute that
is not one of the op-family modules is a namespace (see namespaces.py); a module here not yet
imported is imported, so ``from chainrule.ops import shape`` keeps finding the module.
"""

import importlib.util as _importlib_util


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _importlib_util.find_spec(f"{__name__}.{name}") is not None:
        return _import_module(name)
    from . import namespaces

    if name in ("load_library", "loaded_libraries"):
        return getattr(namespaces, name)
    return namespaces.namespace(name)


def _import_module(name: str):
    import importlib

    return importlib.import_module(f"{__name__}.{name}")
