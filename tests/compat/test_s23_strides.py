"""Strides, memory formats, views and aliasing as torch has them (tools/torch_strides_trial.py's finds)."""

import pytest

import chainrule as cr


def test_clone_of_channels_last_tensor_is_a_copy():
    x = cr.arange(24.0).reshape(1, 2, 3, 4).contiguous(memory_format=cr.channels_last)
    for memory_format in (None, cr.preserve_format, cr.channels_last):
        c = x.clone() if memory_format is None else x.clone(memory_format=memory_format)
        c.zero_()
        assert float(x.sum()) == 276.0
        assert c.stride() == (24, 1, 8, 2)
