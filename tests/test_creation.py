"""Creation functions and random tensors, compared with torch (values, shape, dtype, flags)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import chainrule


def _describe(lib, fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            t = fn(lib)
        except Exception as exc:  # the error type is part of the API
            return ("error", type(exc).__name__)
    return (tuple(t.shape), str(t.dtype).split(".")[-1], t.detach().numpy().tolist(), t.requires_grad, t.is_leaf)


CASES = {
    "zeros varargs": lambda l: l.zeros(2, 3),
    "zeros tuple": lambda l: l.zeros((2, 3)),
    "zeros list": lambda l: l.zeros([2, 3]),
    "zeros Size": lambda l: l.zeros(l.ones(2, 3).shape),
    "zeros 0-d": lambda l: l.zeros(()),
    "zeros empty": lambda l: l.zeros(0, 3),
    "zeros size kw": lambda l: l.zeros(size=(2, 3)),
    "ones size kw": lambda l: l.ones(size=[2]),
    "empty size kw": lambda l: l.zeros_like(l.empty(size=(1, 2))),
    "rand size kw": lambda l: l.zeros_like(l.rand(size=(2,))),
    "randn size kw": lambda l: l.zeros_like(l.randn(size=(2,))),
    "new_zeros size kw": lambda l: l.ones(1, dtype=l.int32).new_zeros(size=(2,)),
    "arange keywords": lambda l: l.arange(start=1, end=4, step=1),
    "full keywords": lambda l: l.full(size=(2,), fill_value=1.0),
    "zeros int32": lambda l: l.zeros(2, dtype=l.int32),
    "ones requires_grad": lambda l: l.ones(3, requires_grad=True),
    "ones int requires_grad": lambda l: l.ones(3, dtype=l.int64, requires_grad=True),
    "full int": lambda l: l.full((2, 2), 3),
    "full float": lambda l: l.full((2, 2), 3.5),
    "full bool": lambda l: l.full((2,), True),
    "full dtype": lambda l: l.full([2], 1, dtype=l.float64),
    "full tensor value": lambda l: l.full((2,), l.tensor(3.0)),
    "empty shape": lambda l: l.zeros_like(l.empty(2, 3)),
    "negative size": lambda l: l.zeros(-1),
    "arange int": lambda l: l.arange(5),
    "arange start end": lambda l: l.arange(2, 7),
    "arange float step": lambda l: l.arange(0, 1, 0.1),
    "arange float": lambda l: l.arange(1.0, 4.0),
    "arange negative step": lambda l: l.arange(5, 0, -1),
    "arange fractional": lambda l: l.arange(-3, 3, 0.7),
    "arange dtype": lambda l: l.arange(5, dtype=l.float64),
    "arange tensor bound": lambda l: l.arange(l.tensor(3)),
    "arange empty": lambda l: l.arange(0),
    "arange wrong sign": lambda l: l.arange(0, 5, -1),
    "arange zero step": lambda l: l.arange(0, 5, 0),
    "linspace": lambda l: l.linspace(0, 1, 5),
    "linspace one": lambda l: l.linspace(0, 1, 1),
    "linspace zero": lambda l: l.linspace(0, 1, 0),
    "linspace int dtype": lambda l: l.linspace(0, 10, 5, dtype=l.int64),
    "linspace negative": lambda l: l.linspace(0, 1, -1),
    "logspace": lambda l: l.logspace(0, 2, 3),
    "eye": lambda l: l.eye(3),
    "eye rect": lambda l: l.eye(2, 3, dtype=l.int64),
    "eye negative": lambda l: l.eye(-1),
    "tensor ints": lambda l: l.tensor([1, 2]),
    "tensor mixed": lambda l: l.tensor([1, 2.5]),
    "tensor bool": lambda l: l.tensor([True, False]),
    "tensor bool int": lambda l: l.tensor([True, 2]),
    "tensor empty": lambda l: l.tensor([]),
    "tensor nested empty": lambda l: l.tensor([[], []]),
    "tensor scalar": lambda l: l.tensor(3.0),
    "tensor numpy float64": lambda l: l.tensor(np.array([1.0, 2.0])),
    "tensor numpy int32": lambda l: l.tensor(np.array([1, 2], dtype=np.int32)),
    "tensor numpy scalar": lambda l: l.tensor(np.float64(2.0)),
    "tensor numpy int scalar": lambda l: l.tensor(np.int32(2)),
    "tensor list numpy scalars": lambda l: l.tensor([np.float64(1.0), 2.0]),
    "tensor list np int32 and int": lambda l: l.tensor([np.int32(1), 2]),
    "tensor list of 0-d tensors": lambda l: l.tensor([l.tensor(1.0), l.tensor(2.0)]),
    "tensor list of float64 tensors": lambda l: l.tensor([l.tensor(1.0, dtype=l.float64), l.tensor(2.0, dtype=l.float64)]),
    "tensor from tensor": lambda l: l.tensor(l.ones(2)),
    "tensor requires_grad": lambda l: l.tensor([1.0, 2.0], requires_grad=True),
    "tensor int requires_grad": lambda l: l.tensor([1, 2], requires_grad=True),
    "tensor ragged": lambda l: l.tensor([[1, 2], [3]]),
    "tensor string": lambda l: l.tensor("abc"),
    "tensor overflow": lambda l: l.tensor([300], dtype=l.uint8),
    "tensor big int": lambda l: l.tensor([2 ** 40]),
    "as_tensor list": lambda l: l.as_tensor([1, 2]),
    "as_tensor dtype": lambda l: l.as_tensor([1, 2], dtype=l.float32),
    "from_numpy": lambda l: l.from_numpy(np.arange(3)),
    "from_numpy float16": lambda l: l.from_numpy(np.arange(3, dtype=np.float16)),
    "from_numpy list": lambda l: l.from_numpy([1, 2]),
    "zeros_like": lambda l: l.zeros_like(l.ones(2, dtype=l.int32)),
    "ones_like requires_grad": lambda l: l.ones_like(l.ones(2), requires_grad=True),
    "full_like int": lambda l: l.full_like(l.ones(2, dtype=l.int32), 2.7),
    "full_like float": lambda l: l.full_like(l.ones(2), 7),
    "empty_like": lambda l: l.zeros_like(l.empty_like(l.ones(2, 3, dtype=l.float64))),
    "new_ones": lambda l: l.ones(2, dtype=l.float64).new_ones(3),
    "new_ones tuple": lambda l: l.ones(2, dtype=l.float64).new_ones((3, 2)),
    "new_zeros": lambda l: l.ones(2, dtype=l.int32).new_zeros(2, 2),
    "new_full": lambda l: l.ones(2, dtype=l.int32).new_full((2,), 3),
    "new_full float": lambda l: l.ones(2, dtype=l.float64).new_full((2,), 3),
    "new_tensor": lambda l: l.ones(2, dtype=l.float64).new_tensor([1, 2]),
    "new_tensor int": lambda l: l.ones(2, dtype=l.int32).new_tensor([1.5, 2]),
    "new_tensor requires_grad": lambda l: l.ones(2).new_tensor([1.0, 2.0], requires_grad=True),
    "new_empty": lambda l: l.zeros_like(l.ones(2, dtype=l.int32).new_empty(3)),
    "scalar_tensor": lambda l: l.scalar_tensor(3),
    "rand shape": lambda l: l.zeros_like(l.rand(2, 3)),
    "rand dtype": lambda l: l.zeros_like(l.rand(2, dtype=l.float64)),
    "rand int": lambda l: l.rand(2, dtype=l.int64),
    "randn tuple": lambda l: l.zeros_like(l.randn((2, 3))),
    "randint": lambda l: l.zeros_like(l.randint(3, (4,))),
    "randint low high": lambda l: l.zeros_like(l.randint(1, 3, (4,))),
    "randint size kw": lambda l: l.zeros_like(l.randint(0, 3, size=(4,))),
    "randint dtype": lambda l: l.zeros_like(l.randint(0, 3, (2,), dtype=l.int32)),
    "randint empty range": lambda l: l.randint(3, 1, (4,)),
    "randperm sorted": lambda l: l.randperm(5).sort().values,
    "rand_like": lambda l: l.zeros_like(l.rand_like(l.ones(2, dtype=l.float64))),
    "randn_like": lambda l: l.zeros_like(l.randn_like(l.ones(2, 2))),
    "randint_like": lambda l: l.zeros_like(l.randint_like(l.ones(2), 3)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_creation_matches_torch(name):
    ours = _describe(chainrule, CASES[name])
    ref = _describe(torch, CASES[name])
    if ours[0] == "error" or ref[0] == "error":
        assert ours == ref
    else:
        assert ours[:2] == ref[:2] and ours[3:] == ref[3:]
        np.testing.assert_allclose(np.asarray(ours[2], dtype=float), np.asarray(ref[2], dtype=float), rtol=1e-6)


def test_error_messages():
    with pytest.raises(RuntimeError, match="Trying to create tensor with negative dimension -1"):
        chainrule.zeros(2, -1)
    with pytest.raises(RuntimeError, match="upper bound and lower bound inconsistent with step sign"):
        chainrule.arange(0, 5, -1)
    with pytest.raises(ValueError, match=r"expected sequence of length 2 at dim 1 \(got 1\)"):
        chainrule.tensor([[1, 2], [3]])
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        chainrule.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="without overflow"):
        chainrule.tensor([300], dtype=chainrule.uint8)


def test_tensor_copies_and_as_tensor_shares():
    a = np.zeros(3, dtype=np.float32)
    t = chainrule.tensor(a)
    s = chainrule.as_tensor(a)
    f = chainrule.from_numpy(a)
    a[0] = 5
    assert t.tolist()[0] == 0 and s.tolist()[0] == 5 and f.tolist()[0] == 5
    f.add_(1)
    assert a.tolist() == [6.0, 1.0, 1.0]
    x = chainrule.ones(2)
    assert chainrule.as_tensor(x) is x
    assert chainrule.as_tensor(x, dtype=chainrule.float64).dtype is chainrule.float64


def test_manual_seed_reproduces_streams():
    chainrule.manual_seed(123)
    first = [chainrule.rand(3).tolist(), chainrule.randn(2, 2).tolist(), chainrule.randint(0, 10, (4,)).tolist(),
             chainrule.randperm(6).tolist()]
    chainrule.manual_seed(123)
    second = [chainrule.rand(3).tolist(), chainrule.randn(2, 2).tolist(), chainrule.randint(0, 10, (4,)).tolist(),
              chainrule.randperm(6).tolist()]
    assert first == second
    chainrule.manual_seed(124)
    assert chainrule.rand(3).tolist() != first[0]


def test_generator_is_independent_and_seedable():
    g1 = chainrule.Generator().manual_seed(7)
    g2 = chainrule.Generator()
    assert g2.manual_seed(7) is g2
    chainrule.manual_seed(0)
    a = chainrule.randn(4, generator=g1)
    chainrule.rand(10)  # the default stream does not disturb g2
    b = chainrule.randn(4, generator=g2)
    assert a.tolist() == b.tolist()
    assert g1.initial_seed() == 7
    state = g1.get_state()
    after = chainrule.rand(3, generator=g1).tolist()
    g1.set_state(state)
    assert chainrule.rand(3, generator=g1).tolist() == after


def test_random_distributions_are_plausible():
    chainrule.manual_seed(0)
    u = chainrule.rand(20000)
    n = chainrule.randn(20000)
    i = chainrule.randint(-2, 3, (20000,))
    assert 0 <= u.min().item() and u.max().item() < 1 and abs(u.mean().item() - 0.5) < 0.02
    assert abs(n.mean().item()) < 0.03 and abs(n.std().item() - 1) < 0.03
    assert set(i.tolist()) == {-2, -1, 0, 1, 2}
    assert sorted(chainrule.randperm(50).tolist()) == list(range(50))


def test_creation_functions_take_torchs_layout_argument():
    import chainrule

    for make in (lambda **kw: chainrule.zeros(2, 3, **kw), lambda **kw: chainrule.ones(2, **kw),
                 lambda **kw: chainrule.empty(2, **kw), lambda **kw: chainrule.full((2,), 1.0, **kw),
                 lambda **kw: chainrule.arange(3, **kw), lambda **kw: chainrule.eye(2, **kw),
                 lambda **kw: chainrule.linspace(0, 1, 3, **kw), lambda **kw: chainrule.rand(2, **kw),
                 lambda **kw: chainrule.randn(2, **kw), lambda **kw: chainrule.zeros_like(chainrule.ones(2), **kw)):
        assert make(layout=chainrule.strided).layout is chainrule.strided
        with pytest.raises(NotImplementedError, match="only layout=chainrule.strided"):
            make(layout=chainrule.sparse_coo)
