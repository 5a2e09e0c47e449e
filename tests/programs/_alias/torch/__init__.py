"""``import torch`` answered by chainrule, for running the corpus programs unchanged.

This directory goes first on PYTHONPATH of a program's process (and so of every process it
starts, DataLoader workers included). Importing it replaces itself in ``sys.modules`` with
``chainrule`` and installs a meta-path finder that answers ``torch.X`` with the already-imported
``chainrule.X``: one module object under two names, so ``torch.nn.Module is chainrule.nn.Module``
and no chainrule module is ever executed twice. ``torch.__version__`` answers the torch release
whose API chainrule follows (``chainrule.version.torch_api_version``), as libraries read it.
"""

import importlib
import importlib.abc
import importlib.util
import sys

import chainrule

_PREFIX = "torch"


class _ChainruleAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``torch.X`` as ``chainrule.X``; ``torch.X`` that chainrule lacks is not found."""

    def __init__(self) -> None:
        self._original_specs = {}

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(_PREFIX + "."):
            return None
        target_name = "chainrule" + fullname[len(_PREFIX):]
        try:
            if importlib.util.find_spec(target_name) is None:
                return None
        except ModuleNotFoundError:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module("chainrule" + spec.name[len(_PREFIX):])
        self._original_specs[spec.name] = module.__spec__
        _alias_imported_modules(but=spec.name)
        return module

    def get_code(self, fullname):
        # ``python -m torch.distributed.run`` (torchrun's module form): runpy asks the loader for the
        # code and runs it as __main__, so hand it chainrule's module's code
        target_name = "chainrule" + fullname[len(_PREFIX):]
        return importlib.util.find_spec(target_name).loader.get_code(target_name)

    def exec_module(self, module) -> None:
        # importlib stamped the alias spec on the shared module; chainrule's own spec goes back
        # so that chainrule's relative imports and reloads keep seeing their real package.
        for alias_name, original_spec in list(self._original_specs.items()):
            if module.__spec__ is not None and module.__spec__.name == alias_name:
                module.__spec__ = original_spec
                del self._original_specs[alias_name]


def _alias_imported_modules(but: str = "") -> None:
    """Enter every chainrule module already imported under its torch name too. importlib binds a
    module it loads through a finder as an attribute of its parent package, which would shadow
    what the package binds to that name: ``torch.autograd.gradcheck`` is the function, yet
    ``from torch.autograd.gradcheck import gradcheck`` loaded through the finder would rebind it
    to the module. A module found in ``sys.modules`` is not rebound, as in torch."""
    for name, module in list(sys.modules.items()):
        if name.startswith("chainrule."):
            alias = _PREFIX + name[len("chainrule"):]
            if alias != but:
                sys.modules.setdefault(alias, module)


_alias_imported_modules()
if not any(isinstance(finder, _ChainruleAlias) for finder in sys.meta_path):
    sys.meta_path.insert(0, _ChainruleAlias())
sys.modules[_PREFIX] = chainrule
# Under this alias torch.__version__ is the torch release whose API chainrule follows, not chainrule's own
# 0.1.0: libraries choose code paths by it (PyG, skorch, DeepXDE, einx, x-transformers refuse or fall back
# below 2.x). chainrule.version.torch_api_version names it; chainrule's own version is the package metadata's.
chainrule.__version__ = chainrule.version.__version__ = chainrule.torch_version.TorchVersion(
    chainrule.version.torch_api_version)
