"""Session 53, lane fuzzCA: what the module-configuration fuzzer (tests/fuzz/test_module_configs.py)
found, each fix pinned against torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(build):
    """``build(lib)`` on torch and on chainrule: (torch's result, chainrule's)."""
    return build(torch), build(chainrule)


def _numpy(t):
    return t.detach().numpy()


# ---------------------------------------------------------------- a transposed convolution's empty output
@pytest.mark.parametrize("dims, channels, kwargs, shape", [
    (2, 1, {"kernel_size": (3, 2), "stride": 3, "dilation": (1, 2), "output_padding": (1, 2), "padding": 2},
     (3, 1, 1, 5)),
    (2, 3, {"kernel_size": (3, 2), "padding": 2, "groups": 3}, (3, 3, 6, 3)),
    (1, 1, {"kernel_size": 3, "padding": 2}, (3, 1, 2)),
    (3, 3, {"kernel_size": 1, "stride": 3, "dilation": 2, "output_padding": (0, 1, 1), "padding": (0, 1, 1),
            "groups": 3}, (1, 3, 1, 2, 1)),
])
def test_conv_transpose_with_a_zero_output_size_is_empty_in_float32(dims, channels, kwargs, shape):
    # torch's float32 dispatch (oneDNN) builds an empty output where a size is exactly 0; the slow
    # float64 kernels refuse it ("Output size is too small"), as chainrule did for both
    def run(lib):
        lib.manual_seed(0)
        module = getattr(lib.nn, f"ConvTranspose{dims}d")(channels, channels, **kwargs)
        x = lib.ones(shape, requires_grad=True)
        y = module(x)
        (y * 2).sum().backward()
        return y, x.grad, module.weight.grad, module.bias.grad
    theirs, ours = _both(run)
    assert 0 in theirs[0].shape
    for t, o in zip(theirs, ours):
        assert tuple(o.shape) == tuple(t.shape) and o.dtype == getattr(chainrule, str(t.dtype).split(".")[-1])
        np.testing.assert_array_equal(_numpy(o), _numpy(t))
    assert ours[0].grad_fn.name() == theirs[0].grad_fn.name()


@pytest.mark.parametrize("padding", [2, 3])
def test_conv_transpose_zero_output_is_still_refused_in_float64_and_a_negative_one_always(padding):
    for dtype, pad in (("float64", 2), ("float32", padding + 1)):
        for lib in (torch, chainrule):
            module = lib.nn.ConvTranspose2d(1, 2, (3, 2), padding=pad).to(getattr(lib, dtype))
            with pytest.raises(RuntimeError):
                module(lib.ones(3, 1, 1, 5, dtype=getattr(lib, dtype)))


# ---------------------------------------------------------------- F.group_norm's one value per group
@pytest.mark.parametrize("shape, groups", [((1, 1), 1), ((1, 2), 2), ((1, 3, 1, 1), 3), ((1, 4), 2), ((2, 1), 1),
                                           ((1, 2, 1), 1), ((0, 2), 2)])
def test_group_norm_refuses_a_group_of_one_value_as_torch(shape, groups):
    def run(lib):
        x = lib.from_numpy(np.arange(float(np.prod(shape))).reshape(shape))
        try:
            return lib.nn.GroupNorm(groups, shape[1]).double()(x)
        except ValueError as error:
            return str(error)
    theirs, ours = _both(run)
    if isinstance(theirs, str):
        assert ours == theirs
    else:
        np.testing.assert_allclose(_numpy(ours), _numpy(theirs))


def test_top_level_group_norm_keeps_no_such_check():
    # torch.group_norm is the op without F.group_norm's Python check: one value a group normalises to 0
    theirs, ours = _both(lambda lib: lib.group_norm(lib.ones(1, 2), 2))
    np.testing.assert_array_equal(_numpy(ours), _numpy(theirs))


def test_group_norm_zero_groups_divides_by_zero_as_torch():
    for lib in (torch, chainrule):
        with pytest.raises(ZeroDivisionError):
            lib.nn.functional.group_norm(lib.ones(2, 2), 0)


# ---------------------------------------------------------------- pixel/channel shuffle keep channels-last
@pytest.mark.parametrize("make, shape", [
    (lambda lib: lib.nn.PixelShuffle(2), (2, 8, 3, 2)),
    (lambda lib: lib.nn.PixelShuffle(1), (1, 2, 2, 3)),
    (lambda lib: lib.nn.PixelUnshuffle(2), (2, 2, 4, 6)),
    (lambda lib: lib.nn.ChannelShuffle(2), (2, 4, 3, 2)),
    (lambda lib: lib.nn.PixelShuffle(2), (8, 3, 2)),  # unbatched: contiguous
])
def test_shuffles_write_a_channels_last_output_for_channels_last_input(make, shape):
    values = np.random.default_rng(0).standard_normal(shape).astype(np.float32)

    def run(lib):
        x = lib.from_numpy(values.copy())
        if x.ndim == 4:
            x = x.contiguous(memory_format=lib.channels_last)
        x.requires_grad_(True)
        y = make(lib)(x)
        y.backward(lib.from_numpy(np.arange(y.numel(), dtype=np.float32).reshape(tuple(y.shape))))
        return y, x.grad
    (y_t, g_t), (y_o, g_o) = _both(run)
    assert y_o.stride() == y_t.stride() and g_o.stride() == g_t.stride()
    np.testing.assert_array_equal(_numpy(y_o), _numpy(y_t))
    np.testing.assert_array_equal(_numpy(g_o), _numpy(g_t))


# ---------------------------------------------------------------- instance norm of an empty batch
@pytest.mark.parametrize("affine, track", [(True, True), (True, False), (False, True), (False, False)])
def test_instance_norm_of_an_empty_batch_as_torch(affine, track, recwarn):
    # with affine parameters torch's kernel reads element 0 of their per-sample repeat: an IndexError;
    # without, the output is empty and the running statistics NaN (the mean of no samples), no warning
    def run(lib):
        module = lib.nn.InstanceNorm1d(2, affine=affine, track_running_stats=track)
        try:
            out = module(lib.ones(0, 2, 3))
        except IndexError as error:
            return str(error)
        return [out] + [b for b in (module.running_mean, module.running_var) if b is not None]
    theirs, ours = _both(run)
    if isinstance(theirs, str):
        assert ours == theirs
    else:
        for t, o in zip(theirs, ours, strict=True):
            np.testing.assert_array_equal(_numpy(o), _numpy(t))
    assert not [w for w in recwarn if "chainrule" in w.filename or "numpy" in w.filename]


def test_functional_instance_norm_with_only_a_bias_and_an_empty_batch_raises_index_error():
    for lib in (torch, chainrule):
        with pytest.raises(IndexError, match="index 0 out of range"):
            lib.nn.functional.instance_norm(lib.ones(0, 2, 3), bias=lib.ones(2))


# ---------------------------------------------------------------- avg_pool3d refuses a kernel past the input
@pytest.mark.parametrize("shape, kernel, padding, ceil_mode", [
    ((2, 1, 3, 2), 2, 1, True), ((3, 2, 1, 3, 2), (2, 2, 2), 1, False), ((2, 2, 2, 3, 1), 2, 0, True),
    ((2, 1, 3, 2), (1, 2, 2), 0, False), ((2, 2, 2, 2), 2, 1, False),
])
def test_avg_pool3d_refuses_an_input_smaller_than_its_kernel_even_padded(shape, kernel, padding, ceil_mode):
    def run(lib):
        x = lib.from_numpy(np.arange(float(np.prod(shape))).reshape(shape))
        try:
            return lib.nn.AvgPool3d(kernel, padding=padding, ceil_mode=ceil_mode)(x)
        except RuntimeError as error:
            return str(error)
    theirs, ours = _both(run)
    if isinstance(theirs, str):
        assert ours == theirs
    else:
        np.testing.assert_allclose(_numpy(ours), _numpy(theirs))


def test_avg_pool2d_still_takes_a_padded_kernel_past_the_input():
    theirs, ours = _both(lambda lib: lib.nn.AvgPool2d(2, padding=1)(lib.ones(1, 1, 1, 3)))
    np.testing.assert_allclose(_numpy(ours), _numpy(theirs))


# ---------------------------------------------------------------- a circular pad that only crops is a fresh tensor
@pytest.mark.parametrize("pads", [(-1, 0, -1, 0), (-1, 0, 0, 0), (0, 0, -1, 0), (0, -1, 0, 0), (1, 0, -1, 0)])
def test_circular_pad_that_crops_copies_as_torch(pads):
    # torch's circular pad writes a new tensor; chainrule returned the cropped view, aliasing the input
    def run(lib):
        x = lib.arange(16.0).reshape(1, 2, 4, 2).requires_grad_()
        y = lib.nn.CircularPad2d(pads)(x)
        y.backward(lib.arange(float(y.numel())).reshape(y.shape))
        base = lib.zeros(1, 2, 4, 2)
        lib.nn.CircularPad2d(pads)(base).add_(1)
        return y, x.grad, base
    (y_t, g_t, base_t), (y_o, g_o, base_o) = _both(run)
    assert y_o.stride() == y_t.stride()
    np.testing.assert_array_equal(_numpy(y_o), _numpy(y_t))
    np.testing.assert_array_equal(_numpy(g_o), _numpy(g_t))
    np.testing.assert_array_equal(_numpy(base_o), _numpy(base_t))  # the input left alone


# ---------------------------------------------------------------- max_pool3d of an unbatched channels-last input
@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
@pytest.mark.parametrize("module", [lambda lib: lib.nn.MaxPool3d(2, stride=1, padding=1, dilation=(2, 2, 1)),
                                    lambda lib: lib.nn.MaxPool3d(2, return_indices=True),
                                    lambda lib: lib.nn.AvgPool3d(2)])
def test_max_pool3d_refuses_an_unbatched_input_strided_channels_last(layout, module):
    def run(lib):
        x = lib.from_numpy(np.random.default_rng(1).standard_normal((2, 3, 3, 3)).astype(np.float32))
        if layout == "channels_last":
            x = x.contiguous(memory_format=lib.channels_last)  # the 2-d format of a 4-d tensor
        try:
            out = module(lib)(x)
        except RuntimeError as error:
            return str(error)
        return out[0] if isinstance(out, tuple) else out
    theirs, ours = _both(run)
    if isinstance(theirs, str):
        assert ours == theirs
    else:
        np.testing.assert_allclose(_numpy(ours), _numpy(theirs))
