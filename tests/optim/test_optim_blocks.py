"""Optimizer steps on parameters larger than a block (``optim.optimizer.BLOCK_SIZE``): updated block
by block, they must give the bits of the whole-array update, and torch's values (to float32's
precision: ``sqrt`` and the fused multiply-add's rare near-ties leave a few last bits apart)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.optim import optimizer as optimizer_module

torch = pytest.importorskip("torch")

CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, foreach=True)),
    ("AdamW", dict(lr=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, foreach=True)),
    ("Adadelta", dict(weight_decay=0.01)),
    ("Adamax", dict(lr=0.01, weight_decay=0.01)),
    ("NAdam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.01)),
    ("NAdam", dict(lr=0.01, foreach=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.01)),
    ("RAdam", dict(lr=0.01, foreach=True)),
    ("ASGD", dict(lr=0.01, t0=2)),
    ("ASGD", dict(lr=0.01, foreach=True, weight_decay=0.01)),
]


def _run(lib, name, kwargs, weights, gradients):
    param = lib.nn.Parameter(lib.tensor(weights))
    optimizer = getattr(lib.optim, name)([param], **kwargs)
    for gradient in gradients:
        param.grad = lib.tensor(gradient)
        optimizer.step()
    return param.detach().numpy()


@pytest.mark.parametrize("dtype", ["float32", "complex64"])
@pytest.mark.parametrize("name, kwargs", CASES)
def test_a_step_in_blocks_is_the_whole_array_step_and_torchs(name, kwargs, dtype, monkeypatch):
    generator = np.random.default_rng(0)
    # 2 blocks and a part of one (as real pairs, a complex parameter has twice its elements)
    shape = (3, (2 * optimizer_module.BLOCK_SIZE + 1001) // 3)

    def values():
        real = generator.standard_normal(shape).astype(np.float32)
        return real if dtype == "float32" else (real + 1j * generator.standard_normal(shape)).astype(np.complex64)

    weights, gradients = values(), [values() for _ in range(3)]
    in_blocks = _run(chainrule, name, kwargs, weights, gradients)
    monkeypatch.setattr(optimizer_module, "BLOCK_SIZE", 10**9)
    whole = _run(chainrule, name, kwargs, weights, gradients)
    assert in_blocks.tobytes() == whole.tobytes()
    expected = _run(torch, name, kwargs, weights, gradients)
    np.testing.assert_allclose(in_blocks, expected, rtol=1e-5, atol=1e-6)
