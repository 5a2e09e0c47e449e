"""torch._foreach_* (list-at-a-time ops of optimizer code) against torch 2.13."""

import numpy as np
import pytest

import chainrule
from chainrule.ops import foreach

torch = pytest.importorskip("torch")

SHAPES = [(3,), (2, 4), ()]
UNARY_POSITIVE = {"acos", "asin", "log", "log10", "log2", "rsqrt", "sqrt", "erfc", "lgamma", "reciprocal"}


def _arrays(seed, low=-2.0, high=2.0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(low, high, shape).astype(np.float32) for shape in SHAPES]


def _lists(arrays):
    return [chainrule.tensor(a) for a in arrays], [torch.tensor(a) for a in arrays]


def _same(ours, theirs, rtol=1e-6):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype.itemsize == b.dtype.itemsize and tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("name", foreach._UNARY)
def test_unary_ops_and_their_in_place_forms(name):
    low, high = (0.1, 0.9) if name in UNARY_POSITIVE else (-2.0, 2.0)
    ours, theirs = _lists(_arrays(1, low, high))
    result = getattr(chainrule, f"_foreach_{name}")(ours)
    assert isinstance(result, tuple)
    _same(result, getattr(torch, f"_foreach_{name}")(theirs))
    assert getattr(chainrule, f"_foreach_{name}_")(ours) is ours
    getattr(torch, f"_foreach_{name}_")(theirs)
    _same(ours, theirs)


OTHERS = {
    "number": lambda lib: 1.5,
    "numbers": lambda lib: [0.5, 2, -1.25],
    "tensor": lambda lib: lib.tensor(0.75),
    "tensors": lambda lib: [lib.tensor(a) for a in _arrays(2, 0.5, 1.5)],
}


@pytest.mark.parametrize("kind", OTHERS)
@pytest.mark.parametrize("name", foreach._BINARY)
def test_binary_ops_take_every_form_of_operand(name, kind):
    ours, theirs = _lists(_arrays(3, 0.2, 2.0))
    _same(getattr(chainrule, f"_foreach_{name}")(ours, OTHERS[kind](chainrule)),
          getattr(torch, f"_foreach_{name}")(theirs, OTHERS[kind](torch)))
    assert getattr(chainrule, f"_foreach_{name}_")(ours, OTHERS[kind](chainrule)) is ours
    getattr(torch, f"_foreach_{name}_")(theirs, OTHERS[kind](torch))
    _same(ours, theirs)


@pytest.mark.parametrize("name,kind", [("add", "number"), ("add", "numbers"), ("add", "tensor"), ("add", "tensors"),
                                       ("sub", "number"), ("sub", "numbers"), ("sub", "tensors")])
def test_add_and_sub_with_alpha_where_torch_takes_one(name, kind):
    # torch's number overloads take no alpha keyword at all
    keywords = {} if kind in ("number", "numbers") else {"alpha": -0.5}
    ours, theirs = _lists(_arrays(4))
    _same(getattr(chainrule, f"_foreach_{name}")(ours, OTHERS[kind](chainrule), **keywords),
          getattr(torch, f"_foreach_{name}")(theirs, OTHERS[kind](torch), **keywords))
    getattr(chainrule, f"_foreach_{name}_")(ours, OTHERS[kind](chainrule), **keywords)
    getattr(torch, f"_foreach_{name}_")(theirs, OTHERS[kind](torch), **keywords)
    _same(ours, theirs)


def test_pow_with_a_number_base():
    ours, theirs = _lists(_arrays(5))
    _same(chainrule._foreach_pow(2.0, ours), torch._foreach_pow(2.0, theirs))


@pytest.mark.parametrize("value", [2.0, [0.5, -1.0, 3.0], "tensor"])
@pytest.mark.parametrize("name", ["addcmul", "addcdiv"])
def test_addcmul_and_addcdiv_take_one_value_or_one_per_tensor(name, value):
    ours, theirs = _lists(_arrays(6))
    ours1, theirs1 = _lists(_arrays(7))
    ours2, theirs2 = _lists(_arrays(8, 0.5, 2.0))
    our_value = chainrule.tensor([0.5, -1.0, 3.0]) if value == "tensor" else value
    their_value = torch.tensor([0.5, -1.0, 3.0]) if value == "tensor" else value
    _same(getattr(chainrule, f"_foreach_{name}")(ours, ours1, ours2, our_value),
          getattr(torch, f"_foreach_{name}")(theirs, theirs1, theirs2, their_value))
    getattr(chainrule, f"_foreach_{name}_")(ours, ours1, ours2, our_value)
    getattr(torch, f"_foreach_{name}_")(theirs, theirs1, theirs2, their_value)
    _same(ours, theirs)


@pytest.mark.parametrize("weight", [0.25, [0.1, 0.5, 0.9], "tensors"])
def test_lerp_with_a_weight_a_weight_per_tensor_or_weight_tensors(weight):
    ours, theirs = _lists(_arrays(9))
    our_ends, their_ends = _lists(_arrays(10))
    our_w, their_w = (_lists(_arrays(11, 0, 1)) if weight == "tensors" else (weight, weight))
    _same(chainrule._foreach_lerp(ours, our_ends, our_w), torch._foreach_lerp(theirs, their_ends, their_w))
    chainrule._foreach_lerp_(ours, our_ends, our_w)
    torch._foreach_lerp_(theirs, their_ends, their_w)
    _same(ours, theirs)


def test_norm_max_clone_copy_and_zero():
    ours, theirs = _lists(_arrays(12))
    for order in (2, 1, float("inf")):
        _same(chainrule._foreach_norm(ours, order), torch._foreach_norm(theirs, order))
    _same(chainrule._foreach_max(ours), torch._foreach_max(theirs))
    clones = chainrule._foreach_clone(ours)
    _same(clones, theirs)
    assert all(c is not t for c, t in zip(clones, ours))
    sources, their_sources = _lists(_arrays(13))
    assert chainrule._foreach_copy_(ours, sources) is ours
    torch._foreach_copy_(theirs, their_sources)
    _same(ours, theirs)
    chainrule._foreach_zero_(ours)
    assert all(not t.any() for t in ours)


def test_out_of_place_results_are_differentiable():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    y = chainrule.tensor([3.0], requires_grad=True)
    tx, ty = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([3.0], requires_grad=True)
    (a, b) = chainrule._foreach_mul(chainrule._foreach_exp([x, y]), [2.0, -1.0])
    (ta, tb) = torch._foreach_mul(torch._foreach_exp([tx, ty]), [2.0, -1.0])
    (a.sum() + b.sum()).backward()
    (ta.sum() + tb.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("call", [
    lambda lib: lib._foreach_add([], 1),
    lambda lib: lib._foreach_add([lib.ones(2), lib.ones(3)], [lib.ones(2)]),
    lambda lib: lib._foreach_mul([lib.ones(2), lib.ones(3)], [1.0, 2.0, 3.0]),
    lambda lib: lib._foreach_div_([lib.ones(2, dtype=lib.int64)], 2),
    # addcdiv/addcmul's packed scalars: 1-D, contiguous, one per tensor
    lambda lib: lib._foreach_addcdiv([lib.ones(2)] * 2, [lib.ones(2)] * 2, [lib.ones(2)] * 2, lib.tensor(0.5)),
    lambda lib: lib._foreach_addcmul([lib.ones(2)] * 2, [lib.ones(2)] * 2, [lib.ones(2)] * 2, lib.ones(3)),
    lambda lib: lib._foreach_addcmul([lib.ones(2)] * 2, [lib.ones(2)] * 2, [lib.ones(2)] * 2, lib.ones(2, 2)[:, 1]),
    lambda lib: lib._foreach_addcdiv([lib.ones(2)] * 2, [lib.ones(2)] * 2, [lib.ones(2)] * 2, lib.ones(1, 2)),
])
def test_refusals_in_torchs_words(call):
    with pytest.raises(RuntimeError) as theirs:
        call(torch)
    with pytest.raises(RuntimeError) as ours:
        call(chainrule)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("alpha", [1, 2])
@pytest.mark.parametrize("numbers", [1, [1.0]])
def test_alpha_with_numbers_is_refused_as_in_torch(numbers, alpha):
    with pytest.raises(TypeError):
        torch._foreach_add([torch.ones(2)], numbers, alpha=alpha)
    with pytest.raises(TypeError):
        chainrule._foreach_add([chainrule.ones(2)], numbers, alpha=alpha)
