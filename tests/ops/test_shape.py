"""Shape ops: views, joins, splits, copies (repeat, flip, roll, tril), unfold and pad, checked
against torch (forward, gradients), by gradcheck/gradgradcheck, for views sharing memory and
version counters, and for torch's errors.

The sample-table cases (torch agreement, gradcheck, gradgradcheck) are registry entries in
``chainrule/testing/opinfo/shape.py``, run by ``test_op_db.py``; the tests here are the hand-written ones.
"""

import numpy as np
import pytest

import chainrule

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the oracle is optional
    torch = F = None


def _pad(lib, *args, **kwargs):
    return (F.pad if lib is torch else chainrule.pad)(*args, **kwargs)


# ---------------------------------------------------------------- views share memory and version
VIEW_FNS = [
    ("view", lambda x: x.view(4, 6)),
    ("reshape", lambda x: x.reshape(-1)),
    ("transpose", lambda x: x.transpose(0, 1)),
    ("permute", lambda x: x.permute(2, 1, 0)),
    ("squeeze", lambda x: x.unsqueeze(0).squeeze(0)),
    ("unsqueeze", lambda x: x.unsqueeze(1)),
    ("flatten", lambda x: x.flatten(1)),
    ("unflatten", lambda x: x.unflatten(2, (2, 2))),
    ("expand", lambda x: x[:1].expand(3, 3, 4)),
    ("narrow", lambda x: x.narrow(2, 1, 2)),
    ("select", lambda x: x.select(1, 2)),
    ("split", lambda x: x.split(1)[1]),
    ("chunk", lambda x: x.chunk(3, 2)[0]),
    ("unbind", lambda x: x.unbind(2)[3]),
    ("tensor_split", lambda x: x.tensor_split(2, 1)[1]),
    ("movedim", lambda x: x.movedim(0, 2)),
    ("unfold", lambda x: x.unfold(2, 2, 2)),
    ("getitem", lambda x: x[1, :, ::2]),
]


@pytest.mark.parametrize("fn", [f for _, f in VIEW_FNS], ids=[n for n, _ in VIEW_FNS])
def test_views_share_memory_and_version(fn):
    x = chainrule.arange(24.0).reshape(2, 3, 4).clone()
    v = fn(x)
    assert np.shares_memory(v.numpy(), x.numpy())
    before = v._version
    x.add_(1)
    assert v._version == before + 1
    if torch is not None:
        tx = torch.arange(24.0).reshape(2, 3, 4).clone()
        tv = fn(tx)
        np.testing.assert_array_equal(v.numpy(), tv.numpy() + 1)


def test_writing_through_view_bumps_base_version():
    x = chainrule.zeros(3, 4)
    row = x.select(0, 1)
    row.fill_(2.0)
    assert x._version == 1 and x.tolist()[1] == [2.0] * 4


def test_view_refuses_incompatible_strides():
    x = chainrule.arange(12.0).reshape(3, 4).t()
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        x.view(12)
    if torch is not None:
        with pytest.raises(RuntimeError):
            torch.arange(12.0).reshape(3, 4).t().view(12)
    assert x.reshape(12).tolist() == torch.arange(12.0).reshape(3, 4).t().reshape(12).tolist()


def test_copies_do_not_alias():
    x = chainrule.arange(6.0).reshape(2, 3)
    for y in (x.flip(0), x.repeat(1, 1), x.roll(1, 1), x.tril(), chainrule.pad(x, (0, 0))):
        assert not np.shares_memory(y.numpy(), x.numpy())


def test_overlapping_unfold_windows_are_written_in_row_major_order():
    # as torch writes them (MemOverlap::TooHard): location i, in k windows, is incremented k times
    x = chainrule.arange(6.0)
    x.unfold(0, 3, 1).add_(1)
    assert x.tolist() == [1.0, 3.0, 5.0, 6.0, 6.0, 6.0]
    with pytest.raises(RuntimeError, match="single memory location"):  # an expanded view stays refused
        chainrule.zeros(1).expand(3).add_(1)
    y = chainrule.arange(6.0)
    y.unfold(0, 2, 2).mul_(2)
    assert y.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


def test_unfold_gradient_sums_overlaps():
    x = chainrule.ones(5, requires_grad=True)
    x.unfold(0, 3, 1).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0, 2.0, 1.0]


def test_grad_fn_names():
    x = chainrule.ones(3, 4, requires_grad=True)
    assert type(x.view(12).grad_fn).__name__ == "ViewBackward0"
    assert type(x.flip(0).grad_fn).__name__ == "FlipBackward0"
    assert type(x.repeat(2, 1).grad_fn).__name__ == "RepeatBackward0"
    assert type(x.unfold(1, 2, 1).grad_fn).__name__ == "UnfoldBackward0"
    assert type(chainrule.pad(x, (1, 1)).grad_fn).__name__ == "ConstantPadNdBackward0"


def test_pad_is_not_a_method_and_unfold_repeat_are():
    assert not hasattr(chainrule.Tensor, "pad")
    assert hasattr(chainrule.Tensor, "repeat") and hasattr(chainrule.Tensor, "unfold")
    assert not hasattr(chainrule, "repeat")


def test_tril_inplace():
    x = chainrule.ones(3, 3)
    x.tril_()
    assert x.tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]


# ---------------------------------------------------------------- errors (type and message like torch's)
ERRORS = [
    ("view_bad_size", lambda lib: lib.ones(2, 3).view(4), RuntimeError, "invalid for input of size 6"),
    ("reshape_two_infer", lambda lib: lib.ones(2, 3).reshape(-1, -1), RuntimeError, "only one dimension can be inferred"),
    ("expand_bad", lambda lib: lib.ones(2, 3).expand(4, 3), RuntimeError, "must match the existing size"),
    ("expand_fewer", lambda lib: lib.ones(2, 3).expand(3), RuntimeError, "must be greater or equal"),
    ("permute_len", lambda lib: lib.ones(2, 3).permute(0), RuntimeError, "number of dimensions"),
    ("permute_dup", lambda lib: lib.ones(2, 3).permute(0, 0), RuntimeError, "duplicate dims"),
    ("transpose_dim", lambda lib: lib.ones(2, 3).transpose(0, 2), IndexError, "Dimension out of range"),
    ("t_3d", lambda lib: lib.ones(2, 3, 4).t(), RuntimeError, "expects a tensor with <= 2 dimensions"),
    ("unsqueeze_dim", lambda lib: lib.ones(2, 3).unsqueeze(4), IndexError, "Dimension out of range"),
    ("squeeze_dim", lambda lib: lib.ones(2, 3).squeeze(-3), IndexError, "Dimension out of range"),
    ("flatten_order", lambda lib: lib.ones(2, 3, 4).flatten(2, 1), RuntimeError, "start_dim cannot come after end_dim"),
    ("unflatten_sizes", lambda lib: lib.ones(2, 6).unflatten(1, (4, 2)), RuntimeError, "don't multiply up"),
    ("movedim_dup", lambda lib: lib.movedim(lib.ones(2, 3, 4), (0, 0), (1, 2)), RuntimeError, "movedim"),
    ("movedim_len", lambda lib: lib.movedim(lib.ones(2, 3, 4), (0, 1), (1,)), RuntimeError, "movedim"),
    ("cat_ndim", lambda lib: lib.cat([lib.ones(2, 3), lib.ones(3)]), RuntimeError, "same number of dimensions"),
    ("cat_sizes", lambda lib: lib.cat([lib.ones(2, 3), lib.ones(2, 4)]), RuntimeError, "Sizes of tensors must match"),
    ("cat_0d", lambda lib: lib.cat([lib.tensor(1.0), lib.tensor(2.0)]), RuntimeError, "zero-dimensional tensor"),
    ("cat_empty_list", lambda lib: lib.cat([]), ValueError, "non-empty list"),
    ("stack_empty_list", lambda lib: lib.stack([]), RuntimeError, "stack expects a non-empty TensorList"),
    ("cat_tensor", lambda lib: lib.cat(lib.ones(2)), TypeError, "must be tuple of Tensors"),
    ("stack_shapes", lambda lib: lib.stack([lib.ones(2, 3), lib.ones(3, 2)]), RuntimeError, "stack expects each tensor to be equal size"),
    ("split_sizes", lambda lib: lib.ones(5).split([2, 2]), RuntimeError, "split_with_sizes expects split_sizes to sum exactly to 5"),
    ("chunk_zero", lambda lib: lib.ones(5).chunk(0), RuntimeError, "chunk expects `chunks` to be greater than 0"),
    ("repeat_fewer", lambda lib: lib.ones(2, 3).repeat(2), RuntimeError, "Number of dimensions of repeat dims"),
    ("flip_dup", lambda lib: lib.flip(lib.ones(2, 3), (0, -2)), RuntimeError, "appears multiple times"),
    ("fliplr_1d", lambda lib: lib.fliplr(lib.ones(3)), RuntimeError, "Input must be >= 2-d"),
    ("flipud_0d", lambda lib: lib.flipud(lib.tensor(1.0)), RuntimeError, "Input must be >= 1-d"),
    ("roll_align", lambda lib: lib.roll(lib.ones(2, 3), (1, 2), (0,)), RuntimeError, "shifts and dimensions must align"),
    ("tril_1d", lambda lib: lib.tril(lib.ones(3)), RuntimeError, "tril: input tensor must have at least 2 dimensions"),
    ("triu_1d", lambda lib: lib.triu(lib.ones(3)), RuntimeError, "triu: input tensor must have at least 2 dimensions"),
    ("narrow_start", lambda lib: lib.ones(2, 3).narrow(1, 4, 1), IndexError, "start out of range"),
    ("narrow_length", lambda lib: lib.ones(2, 3).narrow(1, 1, 3), RuntimeError, r"start \(1\) \+ length \(3\) exceeds"),
    ("select_index", lambda lib: lib.ones(2, 3).select(1, 3), IndexError, "select\\(\\): index 3 out of range"),
    ("unfold_size", lambda lib: lib.ones(2, 3).unfold(1, 4, 1), RuntimeError, "maximum size for tensor at dimension 1 is 3"),
    ("unfold_step", lambda lib: lib.ones(2, 3).unfold(1, 2, 0), RuntimeError, "step is 0 but must be > 0"),
    ("tensor_split_zero", lambda lib: lib.tensor_split(lib.ones(3), 0), RuntimeError, "number of sections must be larger than 0"),
    ("pad_odd", lambda lib: _pad(lib, lib.ones(2, 3), (1, 1, 1)), RuntimeError, "Padding length must be divisible by 2"),
    ("pad_too_long", lambda lib: _pad(lib, lib.ones(2, 3), (1,) * 6), RuntimeError, "less than or equal to two times"),
    ("pad_negative_size", lambda lib: _pad(lib, lib.ones(2, 3), (-2, -2)), RuntimeError, "negative"),
    ("pad_mode", lambda lib: _pad(lib, lib.ones(2, 3), (1, 1), mode="wrap"), NotImplementedError, "Unrecognised padding mode wrap"),
    ("pad_reflect_size", lambda lib: _pad(lib, lib.ones(1, 2, 3), (3, 3), mode="reflect"), RuntimeError, "Padding size should be less than the corresponding input dimension"),
    ("pad_reflect_dims", lambda lib: _pad(lib, lib.ones(3), (1, 1), mode="reflect"), NotImplementedError, "Padding size 2 is not supported for 1D input"),
    ("pad_reflect_value", lambda lib: _pad(lib, lib.ones(1, 3), (1, 1), mode="reflect", value=2.0), RuntimeError, "doesn't take in value argument"),
    ("pad_circular_wrap", lambda lib: _pad(lib, lib.ones(1, 2, 3), (4, 1), mode="circular"), RuntimeError, "wrapping around more than once"),
]


@pytest.mark.parametrize("fn,exc,match", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_like_torch(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn(chainrule)
    if torch is not None:
        with pytest.raises(exc):
            fn(torch)


@pytest.mark.skipif(torch is None, reason="needs torch as the oracle")
def test_meshgrid_shapes_warning_and_errors_match_torch():
    # MAE/ViT 2-D sin-cos position embeddings and YOLO grids build their coordinates with meshgrid
    for lib in (chainrule, torch):
        a, b = lib.arange(3.0), lib.arange(2.0)
        assert [tuple(g.shape) for g in lib.meshgrid(a, b, indexing="xy")] == [(2, 3), (2, 3)]
        assert [tuple(g.shape) for g in lib.meshgrid([a, b, a], indexing="ij")] == [(3, 2, 3)] * 3
        # torch warns once a process (TORCH_WARN_ONCE): an earlier test in this worker may have had it
        warn_always = lib.is_warn_always_enabled()
        lib.set_warn_always(True)
        try:
            with pytest.warns(UserWarning, match="indexing argument"):
                lib.meshgrid(a, b)
        finally:
            lib.set_warn_always(warn_always)
        for args, kwargs in [((lib.ones(2, 2), a), {"indexing": "ij"}), ((a, lib.arange(2)), {"indexing": "ij"}),
                             ((a, b), {"indexing": "yx"}), ((), {"indexing": "ij"})]:
            with pytest.raises(RuntimeError):
                lib.meshgrid(*args, **kwargs)
    gx, gy = chainrule.meshgrid(chainrule.arange(3.0), chainrule.arange(2.0), indexing="xy")
    tx, ty = torch.meshgrid(torch.arange(3.0), torch.arange(2.0), indexing="xy")
    np.testing.assert_array_equal(gx.numpy(), tx.numpy())
    np.testing.assert_array_equal(gy.numpy(), ty.numpy())


# found by tests/fuzz/test_hostile_args.py: torch's error (class, and which check comes first)
@pytest.mark.parametrize("call, exc", [
    (lambda lib: lib.zeros(()).chunk(2, 0), RuntimeError),  # was IndexError (tuple index)
    (lambda lib: lib.zeros(3).split(-1, 3), RuntimeError),  # the split size before the dim
    (lambda lib: lib.zeros(3).split([2, 2, -1]), RuntimeError),  # negative sizes (summing to 3)
    (lambda lib: lib.zeros(1, 2).squeeze((1, -1)), RuntimeError),  # a repeated dim
    (lambda lib: lib.stack([lib.zeros(2), lib.zeros(3)], 6), IndexError),  # the dim before the shapes
    (lambda lib: lib.zeros(2).unflatten(5, ()), RuntimeError),  # empty sizes before the dim
    (lambda lib: lib.zeros(()).roll(1, 0), IndexError),  # a 0-d tensor has no dim to roll
    (lambda lib: lib.zeros(3).narrow(3, -1, -1), RuntimeError),  # the length before the dim
    (lambda lib: lib.zeros(2, 1).repeat(2, -1, 0), RuntimeError),
    (lambda lib: lib.softmax(lib.tensor([1, 2]), 0), NotImplementedError),  # no integer softmax
    (lambda lib: lib.nn.functional.pad(lib.zeros(1, 1, 1), [2, -2]), RuntimeError),  # the crop alone is empty
    (lambda lib: lib.nn.functional.pad(lib.zeros(1, 0, 4), [1, 1], mode="replicate"), RuntimeError),
    (lambda lib: lib.nn.functional.pad(lib.zeros(2, 1, 2, 0), [0, -2], mode="circular"), NotImplementedError),
    (lambda lib: lib.nn.functional.interpolate(lib.zeros(2, 3), size=2), NotImplementedError),
    (lambda lib: lib.nn.functional.interpolate(lib.zeros(2, 3, 4), size=2, scale_factor=2.0, mode="bilinear"),
     ValueError),  # both sizes before the rank
    (lambda lib: lib.nn.functional.interpolate(lib.zeros(2, 3, 4), scale_factor=-1.0), RuntimeError),
    (lambda lib: lib.nn.functional.interpolate(lib.zeros(2, 0, 4), size=2, mode="linear"), RuntimeError),
])
def test_hostile_arguments_raise_like_torch(call, exc):
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        with pytest.raises(exc):
            call(lib)


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.movedim(x.sum(), 0, -1),  # a 0-d tensor
    lambda lib, x: lib.cat([x[0].float(), lib.zeros(0, dtype=lib.float64)]),  # skipped empties promote
    lambda lib, x: x[:0].roll((4, 5), (2, 2)),  # an empty tensor: no dims checked
    lambda lib, x: x[:0].repeat(2, -1, 1),  # a negative repeat of an empty dim
    lambda lib, x: lib.softmax(lib.zeros(0, dtype=lib.int64), 0),  # an empty integer softmax
    lambda lib, x: lib.nn.functional.pad(x[None], [-2, 2], mode="reflect"),  # positions read from the whole input
    lambda lib, x: lib.nn.functional.pad(x[None], [1, -2], mode="replicate"),
])
def test_hostile_arguments_compute_like_torch(call):
    if torch is None:
        pytest.skip("needs torch as the oracle")
    x = np.arange(12.0).reshape(3, 4)
    ours, theirs = call(chainrule, chainrule.tensor(x)), call(torch, torch.tensor(x))
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_unfold_of_a_scalar_and_permute_check_order_like_torch():
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        x = lib.tensor(5.0)
        assert tuple(x.unfold(0, 1, 1).shape) == (1,) and tuple(x.unfold(0, 0, 1).shape) == (0,)
        with pytest.raises(RuntimeError, match="duplicate dims"):  # reported before the dim out of range
            lib.zeros(1, 2, 3).permute(2, -1, 3)
        with pytest.raises(ValueError, match="more than 1 value per channel"):  # before the channel count
            lib.nn.BatchNorm1d(2)(lib.zeros(1, 3))


def test_one_dim_reflect_and_replicate_pads_need_an_output():
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        for mode in ("reflect", "replicate"):
            with pytest.raises(RuntimeError, match="too small"):
                lib.nn.functional.pad(lib.zeros(3, 4), [-2, -2], mode=mode)
