"""Session 38, machA lane: quantized layers on CPUs without AVX512-VNNI.

There torch's x86 engine runs every quantized linear and convolution on fbgemm's AVX2 kernels,
which add each neighbouring pair of uint8 x int8 products saturated to int16; chainrule replays
that saturation where this CPU's features say torch runs it, and adds exactly elsewhere.
"""

from __future__ import annotations

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")]


def test_vnni_query_matches_torchs():
    assert chainrule.cpu._is_vnni_supported() is torch.cpu._is_vnni_supported()


def test_onednn_default_qconfig_warns_as_torch_at_the_callers_line():
    def caught(lib):
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            lib.ao.quantization.get_default_qconfig("onednn")
        return [(w.category, str(w.message), w.filename) for w in records]

    theirs = caught(torch)
    assert caught(chainrule) == theirs
    assert bool(theirs) is not torch.cpu._is_vnni_supported()  # torch warns exactly where VNNI is missing
    assert all(filename == __file__ for _, _, filename in theirs)
