"""graykode/nlp-tutorial's Seq2Seq(Attention) builds ``nn.RNN(..., dropout=0.5)`` with one layer:
torch warns that dropout acts only between stacked layers. The same warning, for each recurrent
module, and none where the layers are stacked or dropout is zero."""

from __future__ import annotations

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")

CASES = [("RNN", {"dropout": 0.5}), ("LSTM", {"dropout": 1}), ("GRU", {"dropout": 0.25, "num_layers": 1}),
         ("LSTM", {"dropout": 0.5, "num_layers": 2}), ("GRU", {"dropout": 0.0})]


def _warnings_of(lib, name, kwargs):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        getattr(lib.nn, name)(4, 8, **kwargs)
    return [(w.category, str(w.message)) for w in seen]


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_single_layer_dropout_warning_matches_torch(name, kwargs):
    assert _warnings_of(chainrule, name, kwargs) == _warnings_of(torch, name, kwargs)


def test_the_warning_is_given_for_the_one_layer_case():
    assert "but got dropout=0.5 and num_layers=1" in _warnings_of(chainrule, "RNN", {"dropout": 0.5})[0][1]
