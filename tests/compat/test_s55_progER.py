"""Session 55, lane progER: what the RETRO, PairNorm/DropEdge GCN and Gated PixelCNN programs
found, compared with torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("shape, pad", [
    ((3, 6, 4), (-2, -2)),          # the last dim cropped to nothing
    ((2, 8, 5), (0, 0, -4, -4)),    # a middle dim cropped to nothing
    ((2, 8, 5), (0, 0, -3, 3)),     # RETRO's causal shift: crop in front, zeros behind
    ((2, 8, 5), (-1, -1, -2, 0)),   # crops only: a clone of the cropped view
])
def test_constant_pad_crop_strides_values_and_grad(shape, pad):
    # torch's constant_pad_nd clones the cropped view when every pad is <= 0; an empty clone
    # keeps the view's strides (an empty tensor counts as dense), where a NumPy copy zeroes them
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(data, requires_grad=True)
        y = lib.nn.functional.pad(x, pad)
        y.sum().backward()
        results.append((tuple(y.shape), y.stride(), y.detach().numpy().copy(), x.grad.numpy().copy(),
                        type(y.grad_fn).__name__ if lib is torch else y.grad_fn.name()))
    (t_shape, t_stride, t_val, t_grad, t_name), (c_shape, c_stride, c_val, c_grad, c_name) = results
    assert (c_shape, c_stride, c_name) == (t_shape, t_stride, t_name)
    np.testing.assert_array_equal(c_val, t_val)
    np.testing.assert_array_equal(c_grad, t_grad)
