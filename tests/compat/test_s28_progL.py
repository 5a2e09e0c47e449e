"""Session 28, lane progL: chainrule bugs found around the modern-architecture programs
(llama2c_model, timm_convnext_training, swin_window_attention, clip_contrastive, dgcnn_edgeconv),
each checked against torch 2.13."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _error(lib, call):
    try:
        call(lib)
    except Exception as e:  # noqa: BLE001  (the class is what is compared)
        return type(e), str(e)
    return None


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool", "bfloat16", "uint8"])
def test_view_as_complex_of_a_non_float_names_half_among_the_supported_types(dtype):
    # Meta's llama RoPE calls view_as_complex(x.float().reshape(...)); without the .float() torch
    # refuses the dtype and lists half among the ones it takes, as its message says exactly
    def call(lib):
        return lib.view_as_complex(lib.zeros(3, 2, dtype=getattr(lib, dtype)))

    expected = _error(torch, call)
    assert expected is not None and expected[0] is RuntimeError
    assert _error(chainrule, call) == expected


def test_view_as_complex_of_float16_says_complex32_has_no_storage():
    # torch views float16 pairs as complex32; chainrule names that dtype but cannot store it, so it
    # raises the NotImplementedError every complex32 tensor gets, not a claim that half is refused
    assert torch.view_as_complex(torch.zeros(3, 2, dtype=torch.float16)).dtype == torch.complex32
    with pytest.raises(NotImplementedError, match="ComplexHalf"):
        chainrule.view_as_complex(chainrule.zeros(3, 2, dtype=chainrule.float16))
    with pytest.raises(NotImplementedError, match="ComplexHalf"):
        chainrule.zeros(3, dtype=chainrule.complex32)
