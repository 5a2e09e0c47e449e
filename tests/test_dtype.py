"""dtypes: torch's names and aliases, promote_types/result_type and actual op output dtypes over
a matrix of dtype pairs, 0-d tensors and Python scalars; the default dtype."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

import chainrule

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def _name(dtype) -> str:
    return str(dtype).split(".")[-1]


def test_names_and_aliases():
    for alias, name in [("float", "float32"), ("double", "float64"), ("half", "float16"),
                        ("long", "int64"), ("int", "int32"), ("short", "int16")]:
        assert getattr(chainrule, alias) is getattr(chainrule, name)
        assert _name(getattr(torch, alias)) == name
    for name in NAMES:
        ours, ref = getattr(chainrule, name), getattr(torch, name)
        assert repr(ours) == repr(ref).replace("torch", "chainrule")
        assert ours.is_floating_point == ref.is_floating_point
        assert ours.is_signed == ref.is_signed
        assert ours.itemsize == ref.itemsize


@pytest.mark.parametrize("a,b", list(itertools.product(NAMES, NAMES)))
def test_promote_types_matches_torch(a, b):
    ours = chainrule.promote_types(getattr(chainrule, a), getattr(chainrule, b))
    assert ours.name == _name(torch.promote_types(getattr(torch, a), getattr(torch, b)))


def _operand(lib, name, kind):
    if kind == "scalar":
        return {"bool": True, "int64": 3, "float32": 2.5}[name]
    value = [1, 0, 1] if kind == "dim" else 1
    return lib.tensor(value, dtype=getattr(lib, name))


OPERANDS = [(n, k) for n in NAMES for k in ("dim", "0d")] + [(n, "scalar") for n in ("bool", "int64", "float32")]


def _outputs(lib, x, y):
    out = [_name(lib.result_type(x, y))]
    for op in (lambda: x + y, lambda: y * x, lambda: lib.div(x, y), lambda: x > y,
               lambda: lib.where(lib.tensor(True), x, y) if not isinstance(y, (bool, int, float)) else x + y):
        try:
            out.append(_name(op().dtype))
        except (RuntimeError, TypeError) as exc:
            out.append(type(exc).__name__)
    return out


@pytest.mark.parametrize("a", NAMES)
def test_result_type_and_op_dtypes_match_torch(a):
    for kind in ("dim", "0d"):
        for b, b_kind in OPERANDS:
            ours = _outputs(chainrule, _operand(chainrule, a, kind), _operand(chainrule, b, b_kind))
            ref = _outputs(torch, _operand(torch, a, kind), _operand(torch, b, b_kind))
            assert ours == ref, (a, kind, b, b_kind)


@pytest.mark.parametrize("a", NAMES)
def test_sub_with_bool_errors_like_torch(a):
    for b, b_kind in OPERANDS:
        results = []
        for lib in (chainrule, torch):
            try:
                results.append(_name((_operand(lib, a, "dim") - _operand(lib, b, b_kind)).dtype))
            except RuntimeError as exc:
                results.append(str(exc).split(".")[0])
        assert results[0] == results[1], (a, b, b_kind)


def test_float_math_on_integers_uses_default_dtype():
    for lib in (chainrule, torch):
        i = lib.tensor([1, 4], dtype=lib.int32)
        assert _name(i.sqrt().dtype) == "float32"
        assert _name((i / 2).dtype) == "float32"
        assert _name((i // 2).dtype) == "int32"
        assert _name((i * 2.5).dtype) == "float32"


def test_default_dtype_and_set_default_dtype():
    assert chainrule.get_default_dtype() is chainrule.float32
    assert chainrule.tensor([1.5]).dtype is chainrule.float32
    assert chainrule.ones(2).dtype is chainrule.float32
    chainrule.set_default_dtype(chainrule.float64)
    try:
        assert chainrule.get_default_dtype() is chainrule.float64
        assert chainrule.tensor([1.5]).dtype is chainrule.float64
        assert chainrule.zeros(2).dtype is chainrule.float64
        assert chainrule.arange(3.0).dtype is chainrule.float64
        assert chainrule.rand(2).dtype is chainrule.float64
        assert (chainrule.tensor([1, 2]) / 2).dtype is chainrule.float64
        assert (chainrule.ones(2, dtype=chainrule.float32) * 2.5).dtype is chainrule.float32
        assert chainrule.result_type(chainrule.tensor(1), 2.5) is chainrule.float64
        assert repr(chainrule.tensor([1.5])) == "tensor([1.5000])"
        assert repr(chainrule.tensor([1.5], dtype=chainrule.float32)) == "tensor([1.5000], dtype=chainrule.float32)"
    finally:
        chainrule.set_default_dtype(chainrule.float32)
    for lib in (chainrule, torch):
        with pytest.raises(TypeError, match="floating"):
            lib.set_default_dtype(lib.int64)


def test_python_types_as_dtypes():
    for lib in (chainrule, torch):
        assert _name(lib.tensor([1, 2], dtype=float).dtype) == "float64"
        assert _name(lib.tensor([1.5, 2], dtype=int).dtype) == "int64"
        assert _name(lib.zeros(2, dtype=bool).dtype) == "bool"
        assert _name(lib.ones(2).to(float).dtype) == "float64"


def test_numpy_dtype_round_trip():
    for name in NAMES:
        d = getattr(chainrule, name)
        t = chainrule.from_numpy(np.zeros(2, dtype=name if name != "bool" else np.bool_))
        assert t.dtype is d
        assert t.numpy().dtype == d.np


def _number_or_tensor(lib, y):
    return y if not isinstance(y, (bool, int, float)) else lib.tensor(y)


MORE_OPS = {
    "pow": lambda l, x, y: x ** y,
    "maximum": lambda l, x, y: l.maximum(x, _number_or_tensor(l, y)),
    "atan2": lambda l, x, y: l.atan2(x, _number_or_tensor(l, y)),
    "remainder": lambda l, x, y: x % y,
    "floor_divide": lambda l, x, y: x // y,
    "fmod": lambda l, x, y: l.fmod(x, y),
    "bitwise_and": lambda l, x, y: x & y,
    "logical_and": lambda l, x, y: l.logical_and(x, _number_or_tensor(l, y)),
    "eq": lambda l, x, y: x == y,
    "rsub": lambda l, x, y: y - x,
    "rdiv": lambda l, x, y: y / x,
    "clamp": lambda l, x, y: l.clamp(x, min=y),
    "where": lambda l, x, y: l.where(l.tensor([True, False, True]), x, y),
    "hypot": lambda l, x, y: l.hypot(x, _number_or_tensor(l, y)),
    "xlogy": lambda l, x, y: l.xlogy(x, y),
    "addcmul": lambda l, x, y: l.addcmul(x, x, _number_or_tensor(l, y)),
}


@pytest.mark.parametrize("op", list(MORE_OPS))
def test_more_op_dtypes_match_torch_where_torch_accepts_them(op):
    fn = MORE_OPS[op]
    checked = 0
    for a in NAMES:
        for kind in ("dim", "0d"):
            for b, b_kind in OPERANDS:
                if op == "pow" and a == "bool" and b == "bool":
                    continue  # torch keeps bool ** True as bool; chainrule computes it in int8
                try:
                    ref = fn(torch, _operand(torch, a, kind), _operand(torch, b, b_kind))
                except (RuntimeError, TypeError, NotImplementedError):
                    continue  # chainrule may be more permissive than torch here
                ours = fn(chainrule, _operand(chainrule, a, kind), _operand(chainrule, b, b_kind))
                assert _name(ours.dtype) == _name(ref.dtype), (a, kind, b, b_kind)
                np.testing.assert_allclose(ours.numpy().astype(float), ref.numpy().astype(float), rtol=1e-3)
                checked += 1
    assert checked > 50


@pytest.mark.parametrize("method", ["long", "int", "short", "bool", "byte"])
def test_casting_a_tensor_that_requires_grad_to_an_integer_or_bool_dtype_records_nothing(method):
    # torch: only floating and complex tensors require grad, so (x * 10).long() is a plain tensor whose
    # .numpy() works (chainrule's used to record a ToCopyBackward0 node and refuse .numpy())
    values = [1.5, -2.25, 0.0]
    ours = getattr(chainrule.tensor(values, requires_grad=True) * 10, method)()
    theirs = getattr(torch.tensor(values, requires_grad=True) * 10, method)()
    assert ours.requires_grad is theirs.requires_grad is False and ours.grad_fn is None
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_complex_to_bool_tests_the_whole_value_without_warning():
    values = [1j, 0j, 0.5j, 2 + 0j]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = chainrule.tensor(values).bool()
        via_to = chainrule.tensor(values).to(chainrule.bool)
    expected = torch.tensor(values).bool().numpy()
    np.testing.assert_array_equal(ours.numpy(), expected)
    np.testing.assert_array_equal(via_to.numpy(), expected)
    assert chainrule.tensor(1j).bool().item() is True
