"""torch.random and torch.types as modules of their own, against torch 2.13."""

import typing

import pytest
import torch
import torch.random
import torch.types

import chainrule
import chainrule.random
import chainrule.types
from chainrule.ops import random as random_ops

LIBS = [pytest.param(chainrule, id="chainrule"), pytest.param(torch, id="torch")]
TORCH_RANDOM_NAMES = ["Generator", "default_generator", "fork_rng", "get_rng_state", "initial_seed", "manual_seed",
                      "seed", "set_rng_state", "thread_safe_generator"]


def test_random_is_a_module_with_torchs_public_names():
    public = {n for n in dir(torch.random) if not n.startswith("_") and n not in ("TYPE_CHECKING", "contextlib",
                                                                                   "torch", "warnings")}
    assert public == set(TORCH_RANDOM_NAMES)
    assert all(hasattr(chainrule.random, name) for name in TORCH_RANDOM_NAMES)
    assert chainrule.random.__name__ == "chainrule.random"
    assert chainrule.random.default_generator is random_ops.default_generator


@pytest.mark.parametrize("lib", LIBS)
def test_seeding_and_state_round_trip(lib):
    generator = lib.random.manual_seed(1234)
    assert isinstance(generator, lib.Generator) and lib.random.initial_seed() == 1234
    state = lib.random.get_rng_state()
    first = lib.rand(3)
    lib.random.set_rng_state(state)
    assert lib.equal(first, lib.rand(3))
    assert isinstance(lib.random.seed(), int)
    assert lib.random.thread_safe_generator() is None


@pytest.mark.parametrize("lib", LIBS)
def test_fork_rng_puts_the_state_back_even_when_the_block_raises(lib):
    lib.random.manual_seed(7)
    expected = lib.rand(2)
    lib.random.manual_seed(7)
    with lib.random.fork_rng(devices=[]):
        lib.rand(5)
    assert lib.equal(lib.rand(2), expected)
    lib.random.manual_seed(7)
    with pytest.raises(ZeroDivisionError), lib.random.fork_rng(devices=[]):
        lib.rand(5)
        1 / 0  # noqa: B018
    assert lib.equal(lib.rand(2), expected)
    lib.random.manual_seed(7)
    with lib.random.fork_rng(devices=[], enabled=False):
        lib.rand(5)
    assert not lib.equal(lib.rand(2), expected)


class _FakeDeviceGenerator:
    _seed, _offset, _stream = 0, 0, None


def test_fork_rng_over_every_device_warns_once_when_there_are_several(monkeypatch):
    monkeypatch.setattr(random_ops, "_cuda_device_count", lambda: 2)
    monkeypatch.setattr(random_ops, "cuda_default_generator", lambda index: _FakeDeviceGenerator())
    monkeypatch.setattr(random_ops, "_fork_rng_warned_already", False)
    with pytest.warns(UserWarning, match="^CUDA reports that you have 2 available devices, and you have used fork_rng "
                                         "without explicitly specifying which devices are being used."):
        with chainrule.random.fork_rng():
            pass
    with chainrule.random.fork_rng():  # torch warns only the first time
        pass


def test_types_aliases_match_torchs():
    for name in ("_int", "_float", "_bool", "_complex", "_str", "_bytes"):
        assert getattr(chainrule.types, name) is getattr(torch.types, name)
    assert chainrule.types._dtype is chainrule.dtype and chainrule.types._device is chainrule.device
    assert chainrule.types._layout is chainrule.layout
    assert chainrule.types.Number == torch.types.Number
    assert chainrule.types._Number == torch.types._Number
    assert typing.get_args(chainrule.types.Device)[1:] == typing.get_args(torch.types.Device)[1:]  # str, int, None
    assert typing.get_args(chainrule.types._size)[1:] == typing.get_args(torch.types._size)[1:]


@pytest.mark.parametrize("lib", [torch, chainrule])
def test_symbolic_size_types_are_the_top_level_classes(lib):
    # torch.types names torch.SymInt (not int): a plain size is no instance of it
    for name in ("SymInt", "SymFloat", "SymBool"):
        assert getattr(lib.types, name) is getattr(lib, name)
    assert not isinstance(3, lib.types.SymInt) and not isinstance(2.5, lib.types.SymFloat)
    assert lib.types.py_sym_types == (lib.SymInt, lib.SymFloat, lib.SymBool)


def test_a_number_annotation_is_a_scalar_in_an_inferred_schema():
    def ours(x: chainrule.Tensor, alpha: chainrule.types.Number) -> chainrule.Tensor: ...

    def theirs(x: torch.Tensor, alpha: torch.types.Number) -> torch.Tensor: ...

    assert chainrule.library.infer_schema(ours, mutates_args=()) == \
        torch.library.infer_schema(theirs, mutates_args=()) == "(Tensor x, Scalar alpha) -> Tensor"
