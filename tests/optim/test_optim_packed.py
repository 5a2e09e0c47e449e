"""Optimizer steps on many small parameters: those of one dtype and step count are updated once over
their concatenation (``optim.optimizer.in_few_updates``). That must give the bits of one update per
parameter, and torch's values (to float32's precision, as in test_optim_blocks)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.optim import optimizer as optimizer_module

torch = pytest.importorskip("torch")

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, foreach=True)),
    ("AdamW", dict(lr=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.01)),
    ("Adadelta", dict(weight_decay=0.01)),
    ("Adamax", dict(lr=0.01, weight_decay=0.01)),
    ("RAdam", dict(lr=0.01, weight_decay=0.01)),
    ("NAdam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.01)),
    ("NAdam", dict(lr=0.01, foreach=True)),
    ("Rprop", dict(lr=0.01)),
    ("Rprop", dict(lr=0.01, maximize=True)),
]

# 0-d, 1-d and 2-d parameters below the packing size, and one above it
SHAPES = [(), (7,), (3, 5), (100,), (optimizer_module.PACKED_SIZE + 3,), (1,), (4, 4)]


def _run(lib, name, kwargs, dtype, arrays):
    weights, gradients = arrays
    params = [lib.nn.Parameter(lib.tensor(w)) for w in weights]
    # two groups; the third parameter skips every other step, so its step count falls behind
    optimizer = getattr(lib.optim, name)([{"params": params[:4]}, {"params": params[4:], "lr": 0.003}], **kwargs)
    for step, gradient_set in enumerate(gradients):
        for index, (param, gradient) in enumerate(zip(params, gradient_set)):
            param.grad = None if index == 2 and step % 2 else lib.tensor(gradient)
        optimizer.step()
    return [param.detach().numpy() for param in params]


def _arrays(dtype):
    generator = np.random.default_rng(0)

    def values():
        out = []
        for shape in SHAPES:
            real = generator.standard_normal(shape)
            out.append((real + 1j * generator.standard_normal(shape) if dtype.startswith("complex") else real)
                       .astype(dtype))
        return out

    return values(), [values() for _ in range(4)]


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
@pytest.mark.parametrize("name, kwargs", CASES)
def test_a_packed_step_is_the_per_parameter_step_and_torchs(name, kwargs, dtype, monkeypatch):
    arrays = _arrays(dtype)
    monkeypatch.setattr(optimizer_module, "PACKED_COUNT", 2)  # pack these few parameters too
    packed = _run(chainrule, name, kwargs, dtype, arrays)
    monkeypatch.setattr(optimizer_module, "PACKED_SIZE", -1)  # nothing packed: one update per parameter
    one_by_one = _run(chainrule, name, kwargs, dtype, arrays)
    for ours, alone in zip(packed, one_by_one):
        assert ours.tobytes() == alone.tobytes()
    expected = _run(torch, name, kwargs, dtype, arrays)
    for ours, theirs in zip(packed, expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1)), ("Adam", dict(lr=0.1)), ("Rprop", dict(lr=0.1))])
def test_parameters_sharing_memory_are_updated_one_after_the_other_as_torchs(name, kwargs, monkeypatch):
    # overlapping views of one storage: the second update reads what the first wrote (torch's for-loop)
    monkeypatch.setattr(optimizer_module, "PACKED_COUNT", 2)  # two parameters would be packed
    def run(lib):
        storage = lib.tensor(np.linspace(-1, 1, 12, dtype=np.float32))
        first, second = storage[:8], storage[4:]
        first.requires_grad_(), second.requires_grad_()
        optimizer = getattr(lib.optim, name)([first, second], foreach=False, **kwargs)
        for step in range(3):
            first.grad = lib.full((8,), 0.5 - step, dtype=lib.float32)
            second.grad = lib.full((8,), step - 0.25, dtype=lib.float32)
            optimizer.step()
        return storage.detach().numpy()

    np.testing.assert_allclose(run(chainrule), run(torch), rtol=1e-6, atol=1e-7)
