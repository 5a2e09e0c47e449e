"""Session 46, lane progCI: what the learning-to-learn, Shampoo and NF4 corpus programs' neighbourhood
turned up, each compared with torch on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_BOUNDARIES = [1.0, 2.0, 3.0]


def _outcome(lib, boundaries, values, sorter):
    try:
        found = lib.searchsorted(lib.tensor(boundaries), lib.tensor(values), sorter=sorter(lib))
    except Exception as error:  # noqa: BLE001  (the type and words are what is compared)
        return type(error).__name__, str(error)
    return "ok", found.numpy().tolist()


@pytest.mark.parametrize("boundaries, values, sorter", [
    ([3.0, 1.0, 2.0], [1.5, 3.0], lambda lib: lib.tensor([1, 2, 0])),                       # valid
    ([[3.0, 1.0], [2.0, 4.0]], [[2.0], [3.0]], lambda lib: lib.tensor([[1, 0], [0, 1]])),   # batched
    (_BOUNDARIES, [1.5], lambda lib: lib.tensor([0.0, 1.0, 2.0])),                           # float sorter
    (_BOUNDARIES, [1.5], lambda lib: lib.tensor([0, 1, 2], dtype=lib.int32)),                # int32 sorter
    (_BOUNDARIES, [1.5], lambda lib: lib.tensor([0, 1, 2], dtype=lib.uint8)),                # uint8 sorter
    (_BOUNDARIES, [1.5], lambda lib: lib.tensor([0, 1])),                                    # short
    (_BOUNDARIES, [1.5], lambda lib: lib.tensor([[0, 1, 2]])),                               # extra dim
    (_BOUNDARIES, [1.5], lambda lib: lib.tensor([0, 1, 5])),                                 # past the end
    (_BOUNDARIES, [1.5], lambda lib: lib.tensor([0, -1, 2])),                                # negative
    (_BOUNDARIES, [1.5], lambda lib: lib.tensor([0.0, 1.0])),                                # size before dtype
    ([[1.0, 2.0], [3.0, 4.0]], 1.0, lambda lib: lib.tensor([0, 1])),                         # sorter before 0-d
    ([[1.0, 2.0], [3.0, 4.0]], 1.0, lambda lib: lib.tensor([[0, 1], [1, 0]])),               # then the 0-d input
    (1.0, [1.5], lambda lib: lib.tensor(0)),                                                 # 0-d both
    ([], [1.5], lambda lib: lib.tensor([], dtype=lib.int64)),                                # empty
    (_BOUNDARIES, [1.5], lambda lib: lib.tensor([], dtype=lib.float32)),                     # empty, short
])
def test_searchsorted_sorter_checks_as_torch(boundaries, values, sorter):
    """torch checks sorter's size, then that it is int64, then its range, in words chainrule used
    to merge into one message (and an out-of-range index was NumPy's ValueError)."""
    expected = _outcome(torch, boundaries, values, sorter)
    assert _outcome(chainrule, boundaries, values, sorter) == expected


def test_searchsorted_sorter_matches_torch_on_random_permutations():
    rng = np.random.RandomState(0)
    for batch in ((), (3,), (2, 2)):
        seq = rng.randn(*batch, 6).astype(np.float32)
        values = rng.randn(*batch, 4).astype(np.float32)
        sorter = np.argsort(seq, axis=-1)
        for side in ("left", "right"):
            got = chainrule.searchsorted(chainrule.tensor(seq), chainrule.tensor(values), side=side,
                                         sorter=chainrule.tensor(sorter))
            want = torch.searchsorted(torch.tensor(seq), torch.tensor(values), side=side,
                                      sorter=torch.tensor(sorter))
            assert got.dtype == chainrule.int64
            np.testing.assert_array_equal(got.numpy(), want.numpy())


_UNSIGNED_WIDE = ["uint16", "uint32", "uint64"]
_BIT_OPS = {
    "lshift": lambda lib, a: a << 2,
    "rshift": lambda lib, a: a >> 2,
    "lshift_tensor": lambda lib, a: a << a,
    "rlshift": lambda lib, a: 2 << a,
    "rrshift": lambda lib, a: 64 >> a,
    "ilshift": lambda lib, a: a.__ilshift__(1),
    "irshift": lambda lib, a: a.__irshift__(1),
    "bitwise_left_shift": lambda lib, a: lib.bitwise_left_shift(a, 1),
    "bitwise_right_shift_": lambda lib, a: a.bitwise_right_shift_(1),
    "shift_out": lambda lib, a: lib.bitwise_left_shift(a, 1, out=lib.empty(2, dtype=a.dtype)),
    "shift_empty": lambda lib, a: a[:0] << 1,
    "shift_0d_by_int32": lambda lib, a: a[0] << lib.tensor([1, 2], dtype=lib.int32),
    "invert": lambda lib, a: ~a,
    "bitwise_not_": lambda lib, a: a.bitwise_not_(),
    "bitwise_not_empty": lambda lib, a: lib.bitwise_not(a[:0]),
    "logical_not": lambda lib, a: lib.logical_not(a),
    "and": lambda lib, a: a & 3,        # these three torch has for the wide unsigned types
    "or": lambda lib, a: a | a,
    "xor": lambda lib, a: a ^ 1,
}


def _bit_outcome(lib, dtype, op):
    a = lib.tensor([1, 5], dtype=getattr(lib, dtype))
    try:
        out = _BIT_OPS[op](lib, a)
    except Exception as error:  # noqa: BLE001  (the type and words are what is compared)
        return type(error).__name__, str(error)
    return "ok", out.tolist(), str(out.dtype).rsplit(".", 1)[-1]


@pytest.mark.parametrize("dtype", _UNSIGNED_WIDE + ["uint8", "int16", "int64", "bool"])
@pytest.mark.parametrize("op", sorted(_BIT_OPS))
def test_shifts_and_nots_refuse_the_wide_unsigned_types_as_torch(op, dtype):
    """torch has no lshift/rshift/bitwise_not/logical_not kernel for uint16/32/64 (NF4 packing uses
    uint8, which it has); chainrule computed them with NumPy."""
    assert _bit_outcome(chainrule, dtype, op) == _bit_outcome(torch, dtype, op)
