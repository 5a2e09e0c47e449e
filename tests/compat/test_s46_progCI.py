"""Session 46, lane progCI: what the learning-to-learn, Shampoo and NF4 corpus programs' neighbourhood
turned up, each compared with torch on the same inputs."""

from __future__ import annotations

import warnings

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


def _loaded_state(lib, param_dtype):
    """A custom optimizer's state of every kind (Shampoo keeps int counters beside its statistics),
    saved and loaded into a fresh optimizer over a parameter of ``param_dtype``."""
    dtype = getattr(lib, param_dtype)
    grad = dtype.is_floating_point or dtype.is_complex
    p = lib.nn.Parameter(lib.ones(2, dtype=dtype), requires_grad=grad)
    opt = lib.optim.SGD([p], lr=0.1)
    opt.state[p].update({"i64": lib.tensor([3, 4]), "b": lib.tensor([True, False]),
                         "u8": lib.tensor([7], dtype=lib.uint8), "c": lib.tensor([1 + 2j]),
                         "f16": lib.tensor([1.5], dtype=lib.float16), "step": lib.tensor(3),
                         "lst": [lib.tensor([1, 2]), (lib.tensor(1),)],
                         "d": {"x": lib.tensor([1]), "step": lib.tensor([2])}})
    state_dict = opt.state_dict()
    q = lib.nn.Parameter(lib.ones(2, dtype=dtype), requires_grad=grad)
    fresh = lib.optim.SGD([q], lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh.load_state_dict(state_dict)

    def show(v):
        if isinstance(v, (list, tuple)):
            return [show(x) for x in v]
        if isinstance(v, dict):
            return {k: show(x) for k, x in v.items()}
        return str(v.dtype).rsplit(".", 1)[-1], v.tolist()

    return ({k: show(v) for k, v in fresh.state[q].items()},
            sorted({(w.category.__name__, str(w.message)) for w in caught}))


@pytest.fixture
def warn_always():
    before = (torch.is_warn_always_enabled(), chainrule.is_warn_always_enabled())
    torch.set_warn_always(True)
    chainrule.set_warn_always(True)
    yield
    torch.set_warn_always(before[0])
    chainrule.set_warn_always(before[1])


@pytest.mark.parametrize("param_dtype", ["float32", "float64", "bfloat16", "complex64", "int64"])
def test_optimizer_load_state_dict_casts_every_state_tensor_as_torch(param_dtype, warn_always):
    """torch casts every loaded state tensor but ``step`` to a floating-point parameter's dtype,
    integer, bool and complex ones too (chainrule cast floating ones only)."""
    assert _loaded_state(chainrule, param_dtype) == _loaded_state(torch, param_dtype)


def test_complex_to_real_cast_warns_in_torch_words(warn_always):
    for lib in (torch, chainrule):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lib.tensor([1 + 2j]).to(lib.float32)
        if lib is torch:
            expected = [(w.category, str(w.message)) for w in caught]
    assert [(w.category, str(w.message)) for w in caught] == expected
    assert len(expected) == 1
