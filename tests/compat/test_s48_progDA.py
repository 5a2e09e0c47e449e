"""Lane progDA (session 48): a convolution refuses mismatched dtypes in torch's words.

torch's CPU dispatch sends a convolution to oneDNN or to its slow kernels by dtype and geometry
(ConvParams::use_mkldnn), and the two refuse a weight or bias of another dtype differently: oneDNN
with 'Input type (torch.FloatTensor) and weight type (torch.DoubleTensor) should be the same or
input should be a MKLDNN tensor and weight is a dense tensor', the slow kernels with 'expected
scalar type Float but found Double', a complex input with 'Input type (...) should be the same',
and all but the complex one only after the shape checks.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from tests._profile import in_ci

torch = pytest.importorskip("torch")


def _outcome(module, call):
    try:
        value = call(module)
    except Exception as error:  # noqa: BLE001 - the type and words are what is compared
        return type(error).__name__, str(error)
    return "ok", value


def _with_threads(n, call):
    """Run ``call`` with torch's and chainrule's thread counts at ``n``, then restore both (and
    chainrule's record of a count set: set_num_threads makes it torch's intra-op count from then on)."""
    old_torch, old_chainrule = torch.get_num_threads(), chainrule.get_num_threads()
    old_requested = chainrule._config._requested_threads
    torch.set_num_threads(n)
    chainrule.set_num_threads(n)
    try:
        return call()
    finally:
        torch.set_num_threads(old_torch)
        chainrule.set_num_threads(old_chainrule)
        chainrule._config._requested_threads = old_requested


def _ones(module, shape, dtype):
    return module.from_numpy(np.ones(shape)).to(getattr(module, dtype))


# (dims, batch, channels, spatial size, kernel, stride, dilation, groups): the single-batch small
# convolutions torch keeps on its slow kernels, and the ones it sends to oneDNN (batch > 1, kernel
# over 3x3, large input, stride, dilation, groups)
GEOMETRIES = [
    (2, 1, 4, 5, 3, 1, 1, 1), (2, 2, 4, 5, 1, 1, 1, 1), (2, 16, 4, 5, 1, 1, 1, 1), (2, 1, 4, 8, 5, 1, 1, 1),
    (2, 1, 4, 80, 3, 1, 1, 1), (2, 1, 4, 5, 3, 2, 1, 1), (2, 1, 4, 6, 3, 1, 2, 1), (2, 1, 4, 5, 3, 1, 1, 2),
    (1, 1, 4, 9, 5, 1, 1, 1), (1, 2, 4, 9, 3, 1, 1, 1), (3, 1, 4, 4, 2, 1, 1, 1), (3, 2, 4, 4, 2, 1, 1, 1),
]
DTYPES = [("float32", "float64", None), ("float32", "float32", "float64"), ("float64", "float32", None),
          ("bfloat16", "float32", None), ("float32", "int64", None), ("complex64", "float32", None),
          ("complex64", "complex64", "float32")]


# CI: a quarter of the 336 combinations, every geometry, dtype triple, direction and thread count
# among them, and every dtype triple with each direction (tests/_profile.py); the long profile all
MISMATCHES = in_ci([(geometry, transposed, dtypes, threads) for geometry in GEOMETRIES
                    for transposed in (False, True) for dtypes in DTYPES for threads in (1, 2)],
                   84, seed=48, kinds=lambda case: [("geometry", case[0]), ("dtypes", case[2], case[1]),
                                                    ("threads", case[3])])


@pytest.mark.parametrize("geometry, transposed, dtypes, threads", MISMATCHES)
def test_a_conv_dtype_mismatch_is_refused_in_torchs_words(geometry, transposed, dtypes, threads):
    nd, n, c, size, k, stride, dilation, groups = geometry
    x_dtype, w_dtype, b_dtype = dtypes
    name = f"conv_transpose{nd}d" if transposed else f"conv{nd}d"
    x_shape = (n, c) + (size,) * nd
    w_shape = ((c, 4 // groups) if transposed else (4, c // groups)) + (k,) * nd

    def call(module):
        bias = None if b_dtype is None else _ones(module, (4,), b_dtype)
        getattr(module.nn.functional, name)(_ones(module, x_shape, x_dtype), _ones(module, w_shape, w_dtype),
                                            bias, stride=stride, dilation=dilation, groups=groups)

    expected = _with_threads(threads, lambda: _outcome(torch, call))
    assert _with_threads(threads, lambda: _outcome(chainrule, call)) == expected


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32"), ("float32", "complex64"),
                                    ("complex64", "float32")])
def test_the_shape_is_checked_before_the_dtype_except_for_a_complex_input(transposed, dtypes):
    x_dtype, w_dtype = dtypes
    w_shape = (5, 4, 3, 3)  # wrong for the 3-channel input either way round

    def call(module):
        function = module.nn.functional.conv_transpose2d if transposed else module.nn.functional.conv2d
        function(_ones(module, (2, 3, 6, 6), x_dtype), _ones(module, w_shape, w_dtype))

    expected = _outcome(torch, call)
    assert expected[0] == "RuntimeError"
    assert _outcome(chainrule, call) == expected


def test_a_module_called_on_double_input_names_both_types():
    layer = chainrule.nn.Conv2d(3, 4, 3, bias=False)
    reference = torch.nn.Conv2d(3, 4, 3, bias=False)
    x = np.ones((2, 3, 8, 8))
    expected = _outcome(torch, lambda module: reference(torch.from_numpy(x)))
    got = _outcome(chainrule, lambda module: layer(chainrule.from_numpy(x)))
    assert got == expected
    expected = _outcome(torch, lambda module: reference.double()(torch.from_numpy(x).float()))
    got = _outcome(chainrule, lambda module: layer.double()(chainrule.from_numpy(x).float()))
    assert got == expected
    assert "should be the same or input should be a MKLDNN tensor" in got[1]


@pytest.mark.parametrize("name", ["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("dtypes", [("float32", "float64", None), ("float64", "float32", None),
                                    ("float32", "float32", "float64")])
def test_an_empty_batch_reads_no_kernel_and_keeps_the_input_dtype(name, dtypes):
    x_dtype, w_dtype, b_dtype = dtypes
    w_shape = (3, 4, 3, 3) if name == "conv_transpose2d" else (4, 3, 3, 3)

    def run(module):
        weight = _ones(module, w_shape, w_dtype).requires_grad_()
        bias = None if b_dtype is None else _ones(module, (4,), b_dtype)
        try:
            out = getattr(module.nn.functional, name)(_ones(module, (0, 3, 5, 5), x_dtype), weight, bias)
        except RuntimeError as error:
            return str(error)
        out.sum().backward()
        return str(out.dtype).split(".")[-1], tuple(out.shape), str(weight.grad.dtype).split(".")[-1], \
            float(weight.grad.abs().sum())

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("dtypes", [("int64", "float32"), ("int64", "int32"), ("float32", "int64"),
                                    ("float32", "bool"), ("float64", "complex128"), ("float32", "float64")])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_the_slow_transpose_kernels_add_a_bias_that_casts_back_to_the_output(nd, dtypes):
    x_dtype, b_dtype = dtypes

    def call(module):
        out = getattr(module.nn.functional, f"conv_transpose{nd}d")(
            _ones(module, (1, 3) + (4,) * nd, x_dtype), _ones(module, (3, 4) + (2,) * nd, x_dtype),
            module.full((4,), 0.5).to(getattr(module, b_dtype)))
        return str(out.dtype).split(".")[-1], out.flatten()[:3].tolist()

    expected = _with_threads(1, lambda: _outcome(torch, call))
    assert _with_threads(1, lambda: _outcome(chainrule, call)) == expected
