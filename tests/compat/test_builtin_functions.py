"""torch's C++ functions do not bind as methods when a class body stores them (``act = torch.tanh``
and ``self.act(x)`` calls ``tanh(x)``); its Python functions (``F.relu``, ``torch.einsum``) do.
chainrule's public functions behave as torch's of the same name, checked name by name."""

from __future__ import annotations

import copy
import pickle

import pytest

import chainrule
import chainrule.nn.functional as F

torch = pytest.importorskip("torch")

_NAMESPACES = [("", chainrule, torch), ("nn.functional", F, torch.nn.functional),
               ("linalg", chainrule.linalg, torch.linalg), ("fft", chainrule.fft, torch.fft),
               ("special", chainrule.special, torch.special)]


def _binds(function) -> bool:
    class Holder:
        stored = function

    return Holder().stored is not function


def _public_functions(ours, theirs):
    for name in sorted(set(dir(ours)) & set(dir(theirs))):
        if name.startswith("_"):
            continue
        mine, real = getattr(ours, name), getattr(theirs, name)
        if callable(mine) and callable(real) and not isinstance(mine, type) and not isinstance(real, type):
            yield name, mine, real


@pytest.mark.parametrize("label, ours, theirs", _NAMESPACES, ids=[n or "torch" for n, _, _ in _NAMESPACES])
def test_binding_in_a_class_body_matches_torch(label, ours, theirs):
    differ = [name for name, mine, real in _public_functions(ours, theirs) if _binds(mine) != _binds(real)]
    assert differ == []


def test_a_module_storing_torch_functions_as_class_attributes_runs_them():
    class Block(chainrule.nn.Module):
        act = chainrule.tanh
        norm = chainrule.linalg.vector_norm

        def forward(self, x):
            return self.norm(self.act(x))

    class TorchBlock(torch.nn.Module):
        act = torch.tanh
        norm = torch.linalg.vector_norm

        def forward(self, x):
            return self.norm(self.act(x))

    x = [[0.5, -1.0], [2.0, 0.25]]
    assert Block()(chainrule.tensor(x)).item() == pytest.approx(TorchBlock()(torch.tensor(x)).item(), rel=1e-6)


def test_a_builtin_pickles_and_copies_as_itself_and_keeps_its_signature():
    import inspect

    for function in (chainrule.tanh, chainrule.linalg.inv, F.conv2d, chainrule.detach):
        assert pickle.loads(pickle.dumps(function)) is function
        assert copy.deepcopy(function) is function
    assert list(inspect.signature(chainrule.sum).parameters)[:3] == ["input", "dim", "keepdim"]
    assert chainrule.tanh.__name__ == "tanh" and chainrule.tanh.__module__ == "chainrule"


def test_modes_receive_the_public_builtin_itself():
    from chainrule.overrides import TorchFunctionMode

    received = []

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            received.append(func)
            return func(*args, **(kwargs or {}))

    x, signal, kernel = chainrule.ones(2), chainrule.ones(1, 1, 3), chainrule.ones(1, 1, 2)
    with Record():
        chainrule.tanh(x)
        F.conv1d(signal, kernel)
    assert received[0] is chainrule.tanh and received[1] is F.conv1d
