"""The suite's CI time (session 42): what CI leaves out of a slow case list is still covered, and
the long profile (``CHAINRULE_LONG_TESTS=1``) still runs every case."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.ops import _cuda_conv
from tests import _profile
from tests.cuda import test_conv_kernels as conv_kernels

torch = pytest.importorskip("torch")


def test_nvcc_compiles_every_tiling_a_convolution_reaches_in_ci(monkeypatch):
    monkeypatch.setattr(_profile, "LONG", False)
    chosen = conv_kernels.sm_90_tilings()
    assert chosen == conv_kernels.sm_90_tilings() == conv_kernels.SM_90_TILINGS  # fixed on every run
    reached = {(np.float32, _cuda_conv.tile["float"]), (np.float32, "tf32"), (np.float64, _cuda_conv.tile["double"])}
    assert reached <= set(chosen)
    alternatives = [case for case in chosen if case not in reached]
    assert len(alternatives) == 1 and alternatives[0] in conv_kernels.DTYPES_AND_TILES
    assert len(chosen) < len(conv_kernels.DTYPES_AND_TILES)
    monkeypatch.setattr(_profile, "LONG", True)
    assert conv_kernels.sm_90_tilings() == conv_kernels.DTYPES_AND_TILES
