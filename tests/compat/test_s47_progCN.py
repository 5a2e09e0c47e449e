"""s47 progCN: gaps found by the gqa_sdpa_rope / vits_monotonic_alignment_search / predictive_coding_network
corpus programs, each compared with torch."""

import warnings

import pytest
import torch as real_torch

import chainrule

LAYOUTS = {
    "pairs": lambda lib, dt: lib.ones(3, 2).to(dt),
    "last_dim_3": lambda lib, dt: lib.ones(3, 3).to(dt),
    "zero_dim": lambda lib, dt: lib.ones(()).to(dt),
    "last_stride_2": lambda lib, dt: lib.ones(2, 3).to(dt).t(),
    "odd_row_stride": lambda lib, dt: lib.ones(3, 3).to(dt)[:, :2],
    "odd_offset": lambda lib, dt: lib.ones(7).to(dt)[1:].view(3, 2),
}


def _outcome(lib, dtype, layout):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's experimental-ComplexHalf warning
        try:
            out = lib.view_as_complex(LAYOUTS[layout](lib, getattr(lib, dtype)))
        except Exception as error:  # noqa: BLE001 - the error is what is compared
            return type(error).__name__, str(error).split("\n")[0]
    return "ok", str(out.dtype).split(".")[-1], tuple(out.shape)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_view_as_complex_checks_the_layout_in_torchs_order(dtype, layout):
    """torch checks the layout (dims, last dim of 2, strides, offset) before it makes the view, so a float16
    tensor with a bad layout gets the layout's error; chainrule raised its no-complex32 error first, and said
    'last dimension of size 2' for a 0-d tensor where torch says it needs one or more dimensions."""
    expected = _outcome(real_torch, dtype, layout)
    got = _outcome(chainrule, dtype, layout)
    if dtype == "float16" and layout == "pairs":
        # the one case torch answers with a complex32 view, which chainrule cannot store
        assert expected == ("ok", "complex32", (3,))
        assert got[0] == "NotImplementedError" and "ComplexHalf" in got[1]
    else:
        assert got == expected
