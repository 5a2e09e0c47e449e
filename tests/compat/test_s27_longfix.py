"""Session 27, long-profile lane: the failures ``CHAINRULE_LONG_TESTS=1`` found, each compared with torch.

* ``x[key] = v`` with an out-of-range index that chainrule turns into a basic one (a 0-d tensor, a
  NumPy integer) and a tensor value: torch's IndexError words, not NumPy's;
* an in-place op on a view with no elements of a 0-d base (``x.unsqueeze(0).narrow(0, 1, 0).add_(t)``)
  writes nothing, as in torch, instead of failing to expand;
* padding with negative and too-large amounts: torch's result, or its error class and message.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    try:
        return "returned", call(lib)
    except Exception as error:  # noqa: BLE001  (the class and message are what is compared)
        return type(error).__name__, str(error)


# ---------------------------------------------------------------- setitem's out-of-range words
SETITEM_KEYS = {
    "tensor0": lambda L: L.tensor(5),
    "tuple_tensor0": lambda L: (L.tensor(-4),),
    "int32_tensor0": lambda L: L.tensor(3, dtype=L.int32),
    "numpy_int": lambda L: np.int64(5),
    "numpy_int_negative": lambda L: np.int32(-4),
    "int": lambda L: 5,
    "slice_then_tensor0": lambda L: (slice(None), L.tensor(4)),
    "slice_then_numpy_int": lambda L: (slice(None), np.int64(4)),
    "tensor0_ellipsis": lambda L: (L.tensor(3), Ellipsis),
}
SETITEM_VALUES = {
    "scalar": lambda L, x: 1.0,
    "tensor1": lambda L, x: L.tensor([1.0]),
    "tensor0": lambda L, x: L.tensor(2.0),
    "tensor11": lambda L, x: L.ones(1, 1),
    "own_slice": lambda L, x: x[:1],
}


@pytest.mark.parametrize("shape", [(3,), (2, 3)])
@pytest.mark.parametrize("value", sorted(SETITEM_VALUES))
@pytest.mark.parametrize("key", sorted(SETITEM_KEYS))
def test_setitem_out_of_range_words(key, value, shape):
    def call(L):
        x = L.zeros(shape)
        x[SETITEM_KEYS[key](L)] = SETITEM_VALUES[value](L, x)
        return x.tolist()

    assert _outcome(chainrule, call) == _outcome(torch, call)


def test_setitem_out_of_range_tensor0_message():
    x = chainrule.zeros(1)
    with pytest.raises(IndexError, match=r"^index 3 is out of bounds for dimension 0 with size 1$"):
        x[(chainrule.tensor(3),)] = chainrule.tensor([1.0])


# ---------------------------------------------------------------- in-place ops on an empty view of a 0-d base
VIEWS = {
    "unsqueeze0_narrow_end": lambda t: t.unsqueeze(0).narrow(0, 1, 0),
    "unsqueeze_last_narrow_start": lambda t: t.unsqueeze(-1).narrow(0, 0, 0),
    "two_empty_dims": lambda t: t.unsqueeze(0).unsqueeze(0).narrow(1, 0, 0).narrow(0, 0, 0),
}
WRITES = {
    "add_broadcast": lambda L, v: v.add_(L.tensor(0.5, dtype=L.float64)),
    "add_empty": lambda L, v: v.add_(L.ones(tuple(v.shape), dtype=L.float64)),
    "mul_": lambda L, v: v.mul_(2.0),
    "copy_": lambda L, v: v.copy_(L.tensor(3.0, dtype=L.float64)),
    "setitem": lambda L, v: v.__setitem__(Ellipsis, 1.5),
    "zero_": lambda L, v: v.zero_(),
}


@pytest.mark.parametrize("write", sorted(WRITES))
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_inplace_on_empty_view_of_0d_base(view, write):
    def call(L):
        leaf = L.tensor(1.5, dtype=L.float64, requires_grad=True)
        base = leaf * 1
        v = VIEWS[view](base)
        WRITES[write](L, v)
        (base * 3 + v.sum()).backward()
        return (base.item(), tuple(v.shape), leaf.grad.item(), base._version,
                type(base.grad_fn).__name__.split("::")[-1], type(v.grad_fn).__name__)

    ours, theirs = _outcome(chainrule, call), _outcome(torch, call)
    assert ours == theirs
    assert ours[1][:3] == (1.5, tuple(VIEWS[view](torch.zeros(())).shape), 3.0)
