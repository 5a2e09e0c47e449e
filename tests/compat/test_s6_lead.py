"""Session 6 fixes against torch: Tensor.view(dtype), torch's scalar-type names in messages, and
complex parameters in the optimisers that update them as real pairs."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(fn):
    return fn(torch), fn(chainrule)


@pytest.mark.parametrize("source, target", [("float32", "int32"), ("float32", "float16"), ("float32", "float64"),
                                            ("int16", "int64"), ("float64", "uint8"), ("bool", "int8")])
def test_view_as_dtype_reinterprets_the_bits_as_torch(source, target):
    values = np.array([[1.5, -2.0, 3.0, 0.25, 0.0, -0.0, 7.0, 1e-3]])
    theirs, ours = _both(lambda lib: lib.tensor(values).to(getattr(lib, source)).view(getattr(lib, target)))
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype.name == str(theirs.dtype).split(".")[-1]
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_view_as_dtype_shares_memory_and_is_not_recorded():
    x = chainrule.zeros(2, requires_grad=True)
    bits = x.detach().view(chainrule.int32)
    bits[0] = 1065353216  # the bits of 1.0f
    assert x.tolist() == [1.0, 0.0]
    viewed = x.view(chainrule.int32)
    assert not viewed.requires_grad and viewed.grad_fn is None


@pytest.mark.parametrize("make", [
    lambda lib: lib.ones(4, 2).t().view(lib.float16),
    lambda lib: lib.ones(4, 3).view(lib.float64),
    lambda lib: lib.tensor(1.0).view(lib.float16),
])
def test_view_as_dtype_errors_as_torch(make):
    messages = []
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError) as error:
            make(lib)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_mean_of_an_integer_tensor_names_torchs_scalar_type(dtype):
    messages = []
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError) as error:
            lib.ones(2, dtype=getattr(lib, dtype)).mean()
        messages.append(str(error.value).splitlines()[0])
    assert messages[0] == messages[1]


@pytest.mark.parametrize("name, kwargs", [
    ("RMSprop", {"lr": 0.01}), ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True}),
    ("Adagrad", {"lr": 0.1}), ("Adamax", {"lr": 0.05}), ("NAdam", {"lr": 0.05}), ("RAdam", {"lr": 0.05}),
])
def test_complex_parameters_update_as_real_pairs_as_torch(name, kwargs):
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    target = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    results = []
    for lib in (torch, chainrule):
        p = lib.nn.Parameter(lib.tensor(start, dtype=lib.complex128))
        goal = lib.tensor(target, dtype=lib.complex128)
        optimizer = getattr(lib.optim, name)([p], **kwargs)
        for _ in range(5):
            optimizer.zero_grad()
            ((p - goal).abs() ** 2).sum().backward()
            optimizer.step()
        results.append(p.detach().numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-10, atol=1e-12)
