"""Session 44, lane progBV (listen_attend_spell, retinanet_focal_anchors, music_transformer_relative):
what writing the lane's programs found, each checked against torch 2.13 on the same inputs."""

import math
import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


_CONVERSIONS = {
    "float": float,
    "complex": complex,
    "math.isnan": math.isnan,
    "percent format": lambda x: "%.3f" % x,  # noqa: UP031  (the idiom under test)
    "int": int,
    "item": lambda x: x.item(),
    "float of a detached": lambda x: float(x.detach()),
}


def _warnings_of(lib, convert):
    x = lib.ones(1, requires_grad=True) * 2
    was = lib.is_warn_always_enabled()
    lib.set_warn_always(True)  # torch's TORCH_WARN_ONCE may have fired earlier in this process
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            convert(x)
            convert(x)
    finally:
        lib.set_warn_always(was)
    return [(w.category, str(w.message), w.filename) for w in caught]


@pytest.mark.parametrize("conversion", list(_CONVERSIONS))
def test_scalar_of_a_recorded_tensor_warns_as_torch_under_warn_always(conversion):
    """``epoch_cls += float(classification_loss)`` (yhenon's RetinaNet): torch's warning ends in
    "(Triggered internally at .../python_variable_methods.cpp:822.)" and, being TORCH_WARN_ONCE,
    repeats at every call under set_warn_always(True); chainrule's had no tail and never repeated."""
    convert = _CONVERSIONS[conversion]
    expected = _warnings_of(torch, convert)
    got = _warnings_of(chainrule, convert)
    assert got == expected
    assert all(filename == __file__ for _, _, filename in got)
