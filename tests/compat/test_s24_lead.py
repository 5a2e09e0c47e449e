"""Session 24 (lead): small compatibility fixes, each checked against torch."""

import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

# (shape, key) pairs whose result is empty and has a size-1 dim that None added: torch gives that
# dim the stride a contiguous layout would, NumPy gives it 0
EMPTY_NEW_AXIS_CASES = [
    ((0, 3), (Ellipsis, None)),
    ((0, 3), None),
    ((0, 3), (None, Ellipsis, None)),
    ((4, 5), (slice(5, None), None)),
    ((3, 4), (slice(None), slice(3, 3), None)),
    ((2, 0, 3), (Ellipsis, None)),
]


@pytest.mark.parametrize("shape,key", EMPTY_NEW_AXIS_CASES)
def test_new_axis_of_an_empty_result_has_torchs_stride(shape, key):
    count = 1
    for size in shape:
        count *= size
    expected = torch.arange(float(count)).reshape(shape)[key]
    got = cr.arange(float(count)).reshape(shape)[key]
    assert tuple(got.shape) == tuple(expected.shape)
    assert got.stride() == expected.stride()
    assert got.storage_offset() == expected.storage_offset()
