"""Hostile dtype / device / requires_grad arguments of the creation functions, against torch 2.13.

torch's argument parser takes a dtype only as a torch dtype or a Python type (float, int, bool,
complex) and requires_grad only as a bool: a name ('float32'), a NumPy dtype or an int flag is a
TypeError naming the function and the argument, before anything is created. One table of
creation functions x hostile values, run on both libraries; errors must agree in class (and in the
argument they name), results in dtype and requires_grad.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

FACTORIES = {
    "zeros": lambda lib, **k: lib.zeros(3, **k),
    "ones": lambda lib, **k: lib.ones(3, **k),
    "empty": lambda lib, **k: lib.empty(3, **k),
    "full": lambda lib, **k: lib.full((3,), 1.0, **k),
    "arange": lambda lib, **k: lib.arange(3, **k),
    "linspace": lambda lib, **k: lib.linspace(0, 1, 3, **k),
    "logspace": lambda lib, **k: lib.logspace(0, 1, 3, **k),
    "eye": lambda lib, **k: lib.eye(2, **k),
    "rand": lambda lib, **k: lib.rand(3, **k),
    "randn": lambda lib, **k: lib.randn(3, **k),
    "randint": lambda lib, **k: lib.randint(0, 5, (3,), **k),
    "randperm": lambda lib, **k: lib.randperm(3, **k),
    "tensor": lambda lib, **k: lib.tensor([1, 2], **k),
    "as_tensor": lambda lib, **k: lib.as_tensor([1, 2], **{a: b for a, b in k.items() if a != "requires_grad"}),
    "zeros_like": lambda lib, **k: lib.zeros_like(lib.ones(2, 3), **k),
    "ones_like": lambda lib, **k: lib.ones_like(lib.ones(2, 3), **k),
    "empty_like": lambda lib, **k: lib.empty_like(lib.ones(2, 3), **k),
    "full_like": lambda lib, **k: lib.full_like(lib.ones(2, 3), 2.0, **k),
    "rand_like": lambda lib, **k: lib.rand_like(lib.ones(2, 3), **k),
    "randn_like": lambda lib, **k: lib.randn_like(lib.ones(2, 3), **k),
    "new_zeros": lambda lib, **k: lib.ones(2, 3).new_zeros(2, **k),
    "new_ones": lambda lib, **k: lib.ones(2, 3).new_ones(2, **k),
    "new_full": lambda lib, **k: lib.ones(2, 3).new_full((2,), 3.0, **k),
    "new_empty": lambda lib, **k: lib.ones(2, 3).new_empty(2, **k),
    "new_tensor": lambda lib, **k: lib.ones(2, 3).new_tensor([1, 2], **k),
    "to": lambda lib, **k: lib.ones(2, 3).to(**{a: b for a, b in k.items() if a != "requires_grad"}),
}
HOSTILE = {
    "dtype": ["float32", "torch.float32", np.float32, np.dtype("float32"), float, int, bool, complex, 3, None,
              object],
    "device": ["cpu", "cpu:0", 0, -1, "cuda:x", "gpu", 1.5, None],
    "requires_grad": [True, 1, "yes", None, 0.0, np.bool_(True)],
}


def _outcome(lib, factory, argument, value):
    try:
        result = FACTORIES[factory](lib, **{argument: value})
    except Exception as error:  # the class, and the argument named, are what is compared
        text = str(error)
        named = [name for name in HOSTILE if f"'{name}'" in text or f"{name}=" in text]
        return type(error).__name__, named
    return str(result.dtype).split(".")[-1], result.requires_grad


@pytest.mark.parametrize("factory", sorted(FACTORIES))
def test_creation_arguments_are_parsed_like_torch(factory):
    mismatches = []
    for argument, values in HOSTILE.items():
        for value in values:
            expected = _outcome(torch, factory, argument, value)
            got = _outcome(chainrule, factory, argument, value)
            if got != expected:
                mismatches.append(f"{factory}({argument}={value!r}): torch {expected}, chainrule {got}")
    assert not mismatches, "\n".join(mismatches)


def test_the_error_names_the_function_the_argument_and_the_type():
    with pytest.raises(TypeError, match=r"^zeros\(\): argument 'dtype' must be torch.dtype, not str$"):
        chainrule.zeros(3, dtype="float32")
    with pytest.raises(TypeError, match=r"argument 'dtype' must be torch.dtype, not numpy.dtypes.Float32DType"):
        chainrule.tensor([1.0], dtype=np.dtype("float32"))
    with pytest.raises(TypeError, match=r"^ones_like\(\): argument 'requires_grad' must be bool, not numpy.bool$"):
        chainrule.ones_like(chainrule.ones(2), requires_grad=np.bool_(True))
    with pytest.raises(TypeError, match=r"^arange\(\) received an invalid combination of arguments - got \(int, dtype=type"):
        chainrule.arange(3, dtype=np.float32)
    with pytest.raises(NotImplementedError, match="\"arange_cpu\" not implemented for 'Bool'"):
        chainrule.arange(3, dtype=chainrule.bool)


def _error(call, *args):
    try:
        call(*args)
    except Exception as error:  # the class and text are what is compared
        return type(error).__name__, str(error)
    return None


def test_tensor_type_refuses_python_and_numpy_types_as_torch():
    for value in (float, np.float32, 3):
        expected = _error(torch.ones(2).type, value)
        assert expected is not None and _error(chainrule.ones(2).type, value) == expected
    x = chainrule.ones(2)
    assert x.type(chainrule.float64).dtype is chainrule.float64 and x.type("torch.LongTensor").dtype is chainrule.int64
