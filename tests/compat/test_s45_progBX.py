"""Session 45, lane progBX: what the InfoGAN / SSD / Linformer-Nystrom corpus programs' probes found.

index_fill's refusal of a value tensor that is not 0-d is torch's RuntimeError.
"""

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (chainrule, torch)


def _outcome(lib, case):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = case(lib)
        except Exception as error:  # noqa: BLE001  (the exception is the result compared)
            result = ("raises", type(error).__name__, str(error))
        else:
            if hasattr(value, "shape"):
                value = (str(value.dtype).split(".")[-1], tuple(value.shape), value.tolist(),
                         value.requires_grad, value.is_leaf)
            result = ("returns", value)
    return result, [(w.category.__name__, str(w.message)) for w in caught]


INDEX_FILL_CASES = {
    "1-d value": lambda l: l.zeros(3).index_fill_(0, l.tensor([1]), l.tensor([2.0])),
    "2-d value": lambda l: l.zeros(3).index_fill_(0, l.tensor([1]), l.tensor([[2.0]])),
    "out of place 1-d value": lambda l: l.zeros(3).index_fill(0, l.tensor([1]), l.tensor([2.0])),
    "function 1-d value": lambda l: l.index_fill(l.zeros(3), 0, l.tensor([1]), l.tensor([2.0])),
    "1-d value requiring grad": lambda l: l.zeros(3, requires_grad=True).index_fill(
        0, l.tensor([1]), l.tensor([2.0], requires_grad=True)),
    "0-d value": lambda l: l.zeros(2, 3).index_fill_(1, l.tensor([0, 2]), l.tensor(-1.5)),
    "number value": lambda l: l.zeros(4).index_fill_(0, l.tensor([1, 3]), 2),
}


@pytest.mark.parametrize("name", list(INDEX_FILL_CASES))
def test_index_fill_value_checks_match_torch(name):
    ours, theirs = (_outcome(lib, INDEX_FILL_CASES[name]) for lib in LIBS)
    assert ours == theirs
