"""What the programs memn2n_babi, gaussian_splatting_2d and unfold_patch_ops led to, session 35
(lane progAW), each case checked against torch 2.13 on the same inputs.

1. ``F.fold``/``nn.Fold`` refuse an input that is not 2-d or 3-d with col2im's own words, checked
   after the kernel, stride, dilation and padding, as torch checks them."""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _error(case, lib):
    with pytest.raises(Exception) as caught:
        case(lib)
    return type(caught.value).__name__, str(caught.value)


# --- 1. fold's rank check ----------------------------------------------------------------------
FOLD_REFUSALS = {
    "1-d input": lambda lib: lib.nn.functional.fold(lib.ones(4), 3, 2),
    "0-d input": lambda lib: lib.nn.functional.fold(lib.tensor(1.0), 3, 2),
    "4-d input": lambda lib: lib.nn.functional.fold(lib.ones(1, 4, 4, 1), 3, 2),
    "4-d input with an empty batch": lambda lib: lib.nn.functional.fold(lib.ones(0, 4, 4, 1), 3, 2),
    "nn.Fold on a 4-d input": lambda lib: lib.nn.Fold(3, 2)(lib.ones(1, 4, 4, 1)),
    "1-d input with an empty output size": lambda lib: lib.nn.functional.fold(lib.ones(4), 0, 2),
    # the geometry is checked before the rank
    "1-d input and a zero stride": lambda lib: lib.nn.functional.fold(lib.ones(4), 3, 2, stride=0),
    "1-d input and a 3-d output size": lambda lib: lib.nn.functional.fold(lib.ones(4), (3, 3, 3), 2),
    "3-d input with no channels": lambda lib: lib.nn.functional.fold(lib.ones(1, 0, 4), 3, 2),
}


@pytest.mark.parametrize("name", list(FOLD_REFUSALS))
def test_fold_refuses_an_input_of_the_wrong_rank_in_torchs_words(name):
    case = FOLD_REFUSALS[name]
    assert _error(case, chainrule) == _error(case, torch)
