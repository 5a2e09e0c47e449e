"""set_printoptions changes repr(tensor) exactly as torch's does."""

import numpy as np
import pytest
import torch

import chainrule

OPTION_CASES = [
    {"precision": 2},
    {"precision": 7},
    {"threshold": 5},
    {"threshold": 5, "edgeitems": 1},
    {"edgeitems": 0, "threshold": 3},
    {"linewidth": 40},
    {"profile": "short"},
    {"profile": "full"},
    {"sci_mode": True},
    {"sci_mode": False},
    {"profile": "short", "precision": 5},
]
VALUES = [
    "[1.12345, -2.5, 3.0]",
    "[[0.000012345, 1.5], [1e6, 2.0]]",
    "list(range(10))",
    "[[i * 0.37 for i in range(12)] for _ in range(9)]",
    "[1.0, 2.0, 3.0]",
    "[12345678.9, 0.1]",
    "[[[1.5, 2.25], [3.0, 4.0]], [[5.5, 6.0], [7.0, 8.125]]] * 2",
    "2.718281828",
    "[float('nan'), float('inf'), -1.5]",
    "list(range(2000))",
]


@pytest.fixture
def restore_printoptions():
    yield
    torch.set_printoptions(profile="default")
    chainrule.set_printoptions(profile="default")


@pytest.mark.parametrize("options", OPTION_CASES, ids=[str(o) for o in OPTION_CASES])
def test_repr_under_printoptions_matches_torch(options, restore_printoptions):
    torch.set_printoptions(**options)
    chainrule.set_printoptions(**options)
    for source in VALUES:
        for dtype in ("float32", "float64"):
            value = eval(source)
            expected = repr(torch.tensor(value, dtype=getattr(torch, dtype))).replace("torch.", "chainrule.")
            assert repr(chainrule.tensor(value, dtype=getattr(chainrule, dtype))) == expected, (options, source)
    ints = np.arange(30).reshape(5, 6)
    assert repr(chainrule.tensor(ints)) == repr(torch.tensor(ints))


def test_profile_default_restores_and_options_are_reported(restore_printoptions):
    chainrule.set_printoptions(precision=1, threshold=4, edgeitems=1, linewidth=50, sci_mode=True)
    assert chainrule.get_printoptions() == {"precision": 1, "threshold": 4, "edgeitems": 1, "linewidth": 50,
                                             "sci_mode": True}
    chainrule.set_printoptions(profile="default")
    assert chainrule.get_printoptions() == torch._tensor_str.get_printoptions()
    assert repr(chainrule.tensor([1.12345])) == "tensor([1.1235])"


def test_printoptions_context_restores(restore_printoptions):
    with chainrule._format.printoptions(precision=1):
        assert repr(chainrule.tensor([1.26])) == "tensor([1.3])"
    assert repr(chainrule.tensor([1.26])) == "tensor([1.2600])"


def test_unknown_profile_raises(restore_printoptions):
    with pytest.raises(ValueError, match="profile must be one of"):
        chainrule.set_printoptions(profile="tiny")
