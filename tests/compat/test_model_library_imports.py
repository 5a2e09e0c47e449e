"""What a model library (timm 1.0) calls while it is imported, reproduced without the library.

timm's layer and model files decorate functions with ``@torch.fx.wrap``, import ``List`` from
``torch.jit.annotations``, declare scriptable signatures of ``forward`` with
``@torch.jit._overload_method`` before the real one, mark a Module with ``@torch.jit.interface``,
annotate empty lists with ``torch.jit.annotate`` and import ``HASH_REGEX`` and ``urlparse`` from
``torch.hub``. Each must answer as torch 2.13 does, or ``import timm`` stops
(docs/compatibility-trials.md, session 13).
"""

import importlib.util
import sys
import typing
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _import_file(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])
def test_fx_wrap_at_module_level_returns_the_function_and_by_name_the_name(lib, tmp_path, monkeypatch):
    source = tmp_path / "layers_with_leaves.py"
    source.write_text(
        "import lib_under_test as lib\n"
        "@lib.fx.wrap\n"
        "def rotate_half(x):\n"
        "    return -x\n"
        "def scale(x):\n"
        "    return 2 * x\n"
        "registered = lib.fx.wrap('scale')\n")
    monkeypatch.setitem(sys.modules, "lib_under_test", lib)
    module = _import_file(source, f"layers_with_leaves_{lib.__name__}")
    assert module.rotate_half.__name__ == "rotate_half" and module.rotate_half(3) == -3
    assert module.registered == "scale"


def test_fx_wrap_refuses_what_torch_refuses_with_its_messages():
    def inside_a_function():
        return chainrule.fx.wrap(len), torch.fx.wrap(len)

    for lib in (torch, chainrule):
        with pytest.raises(NotImplementedError, match="^wrap must be called at the top level of a module$"):
            lib.fx.wrap(len)  # the test function's frame is not a module's
        with pytest.raises(RuntimeError, match="^Unsupported type for global function! Must be either a "
                                               "callable or string name$"):
            lib.fx.wrap(3)
    with pytest.raises(NotImplementedError):
        inside_a_function()


def test_jit_annotations_are_the_typing_names_and_broadcasting_lists_subscript_to_none():
    from torch.jit import annotations as theirs

    from chainrule.jit import annotations as ours

    for name in ("Any", "Dict", "List", "Optional", "Tuple", "Union"):
        assert getattr(ours, name) is getattr(theirs, name) is getattr(typing, name)
    for name in ("BroadcastingList1", "BroadcastingList2", "BroadcastingList3"):
        assert getattr(ours, name)[int] is getattr(theirs, name)[int] is None


def _dense_layer(lib):
    # timm's DenseLayer: two signature declarations, then the forward that runs
    class DenseLayer(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = lib.nn.Conv2d(4, 2, 1)

        @lib.jit._overload_method
        def forward(self, x):
            # type: (List[Tensor]) -> (Tensor)
            pass

        @lib.jit._overload_method
        def forward(self, x):  # noqa: F811
            # type: (Tensor) -> (Tensor)
            pass

        def forward(self, x):  # noqa: F811
            features = [x] if isinstance(x, lib.Tensor) else x
            return self.conv(lib.cat(features, 1))

    return DenseLayer()


def test_overload_method_declarations_leave_the_real_forward_running():
    theirs, ours = _dense_layer(torch), _dense_layer(chainrule)
    ours.load_state_dict({k: chainrule.from_numpy(v.numpy()) for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 3)).astype(np.float32)
    expected = theirs([torch.from_numpy(x), torch.from_numpy(x)]).detach().numpy()
    got = ours([chainrule.from_numpy(x), chainrule.from_numpy(x)]).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert ours(chainrule.ones(1, 4, 2, 2)).shape == theirs(torch.ones(1, 4, 2, 2)).shape
    assert chainrule.jit._overload(len) is len


def test_jit_annotate_returns_the_value():
    value = []
    assert chainrule.jit.annotate(list[chainrule.Tensor], value) is value
    assert torch.jit.annotate(list[torch.Tensor], []) == []


with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # torch's, checked on chainrule's below

    @torch.jit.interface
    class _TorchModuleInterface(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pass


def test_jit_interface_returns_the_class_with_torchs_warning_and_checks():
    # torch compiles the interface from source at import (above, at module level); eagerly the class
    # is what matters, and the same class comes back
    assert issubclass(_TorchModuleInterface, torch.nn.Module)

    class ModuleInterface(chainrule.nn.Module):
        def forward(self, x):
            pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert chainrule.jit.interface(ModuleInterface) is ModuleInterface
    assert [(w.category, str(w.message)) for w in caught] == [
        (DeprecationWarning, "`torch.jit.interface` is deprecated. Please use `torch.compile` instead.")]

    class Base:
        pass

    class Derived(Base):
        pass

    class DerivedModule(ModuleInterface):
        pass

    for lib in (torch, chainrule):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with pytest.raises(RuntimeError, match="^interface must be applied to a class$"):
                lib.jit.interface(3)
            for subclass in (Derived, DerivedModule):
                with pytest.raises(RuntimeError, match=r"^TorchScript interface does not support inheritance yet\. "
                                                       r"Please directly inherit from 'object' or 'nn\.Module'\.$"):
                    lib.jit.interface(subclass)


def test_hub_hash_regex_and_urlparse_as_torch_hub():
    from chainrule.hub import HASH_REGEX, urlparse

    url = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    filename = urlparse(url).path.rsplit("/", 1)[-1]
    assert filename == torch.hub.urlparse(url).path.rsplit("/", 1)[-1]
    assert HASH_REGEX.search(filename).group(1) == torch.hub.HASH_REGEX.search(filename).group(1) == "f37072fd"
    assert HASH_REGEX.pattern == torch.hub.HASH_REGEX.pattern
