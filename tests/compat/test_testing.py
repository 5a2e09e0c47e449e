"""testing.assert_close: torch's default tolerances, what it accepts and how it reports."""

import pytest
import torch

import chainrule


def _messages(actual, expected, **kwargs):
    """The AssertionError messages of torch and chainrule for the same comparison."""
    out = []
    for lib in (torch, chainrule):
        make = (lambda v, lib=lib: lib.tensor(v[0], dtype=getattr(lib, v[1])) if isinstance(v, tuple) else v)
        with pytest.raises(AssertionError) as raised:
            lib.testing.assert_close(make(actual), make(expected), **kwargs)
        out.append(str(raised.value))
    return out


@pytest.mark.parametrize("actual,expected,kwargs", [
    (([1.0, 2.0, 3.0], "float32"), ([1.0, 2.5, 3.0], "float32"), {}),
    (([1, 2, 3], "int64"), ([1, 2, 4], "int64"), {}),
    (([[1.0, 2.0], [3.0, 4.0]], "float64"), ([[1.0, 2.0], [3.0, 4.1]], "float64"), {}),
    (([1.0, 2.0], "float32"), ([1.1, 2.0], "float32"), {"rtol": 0.01, "atol": 0.0}),
    (1.0, 1.1, {}),
])
def test_failure_messages_match_torch(actual, expected, kwargs):
    mine, theirs = _messages(actual, expected, **kwargs)
    assert mine == theirs


def test_attribute_mismatches_are_reported():
    with pytest.raises(AssertionError, match="attribute 'shape' do not match"):
        chainrule.testing.assert_close(chainrule.zeros(3), chainrule.zeros(2))
    with pytest.raises(AssertionError, match="attribute 'dtype' do not match"):
        chainrule.testing.assert_close(chainrule.zeros(3), chainrule.zeros(3, dtype=chainrule.float64))
    chainrule.testing.assert_close(chainrule.zeros(3), chainrule.zeros(3, dtype=chainrule.float64), check_dtype=False)


def test_default_tolerances_are_torch_s():
    for lib in (torch, chainrule):
        lib.testing.assert_close(lib.tensor([1.0]), lib.tensor([1.0 + 9e-6]))  # within atol=1e-5 for float32
        with pytest.raises(AssertionError):
            lib.testing.assert_close(lib.tensor([1.0], dtype=lib.float64), lib.tensor([1.0 + 9e-6], dtype=lib.float64))


def test_nested_containers_nan_and_custom_message():
    a = {"w": chainrule.tensor([1.0, float("nan")]), "b": [chainrule.tensor(2.0), 3]}
    b = {"w": chainrule.tensor([1.0, float("nan")]), "b": [chainrule.tensor(2.0), 3]}
    with pytest.raises(AssertionError, match=r"item \['w'\]"):
        chainrule.testing.assert_close(a, b)
    chainrule.testing.assert_close(a, b, equal_nan=True)
    with pytest.raises(AssertionError, match="^custom$"):
        chainrule.testing.assert_close(chainrule.tensor(1.0), chainrule.tensor(2.0), msg="custom")
    with pytest.raises(TypeError, match="No comparison pair"):
        chainrule.testing.assert_close(chainrule.tensor([1.0]), 1.0)
    with pytest.raises(ValueError, match="Both 'rtol' and 'atol'"):
        chainrule.testing.assert_close(chainrule.tensor(1.0), chainrule.tensor(1.0), rtol=0.1)


def test_make_tensor_shapes_dtypes_ranges_and_layouts_as_torch():
    from chainrule.testing import make_tensor

    for dtype_name in ("float32", "float64", "int64", "int32", "uint8", "bool"):
        ours = make_tensor(3, 4, dtype=getattr(chainrule, dtype_name))
        theirs = torch.testing.make_tensor(3, 4, dtype=getattr(torch, dtype_name), device="cpu")
        assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype.name == str(theirs.dtype).split(".")[1]
    values = make_tensor((200,), dtype=chainrule.float32, low=-1.0, high=2.0).numpy()
    assert values.min() >= -1.0 and values.max() < 2.0
    ints = make_tensor(500, dtype=chainrule.int64).numpy()
    assert ints.min() >= -9 and ints.max() <= 9
    assert (make_tensor(500, dtype=chainrule.uint8, exclude_zero=True).numpy() != 0).all()
    t = make_tensor(2, 3, dtype=chainrule.float32, noncontiguous=True, requires_grad=True)
    assert not t.is_contiguous() and t.requires_grad and t.is_leaf
    with pytest.raises(ValueError, match="`low` must be less than `high`"):
        make_tensor(2, dtype=chainrule.float32, low=2, high=1)
