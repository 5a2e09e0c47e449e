"""Session 26, lane progH: what the pytorch.org tutorial programs (tests/programs/tutorial_*,
bilstm_crf, nlp_tutorials) found, each checked against torch."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _lstm_output_node(lib, dtype, **kwargs):
    lib.manual_seed(0)
    lstm = lib.nn.LSTM(3, 4, **kwargs).to(dtype)
    out, (h_n, c_n) = lstm(lib.randn(5, 2, 3).to(dtype))
    return out.grad_fn.name(), h_n.grad_fn.name(), [f.name() for f, _ in out.grad_fn.next_functions if f][:2]


@pytest.mark.parametrize("kwargs", [{}, {"bidirectional": True}, {"num_layers": 2}, {"proj_size": 2}])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_lstm_output_node_is_named_as_torch_names_it(dtype, kwargs):
    # the Sequence Models tutorial prints an LSTM's output: grad_fn=<MkldnnRnnLayerBackward0> in torch
    # (float32/bfloat16 on the CPU, no projection); the fused node now carries that name
    ours = _lstm_output_node(chainrule, getattr(chainrule, dtype), **kwargs)
    theirs = _lstm_output_node(torch, getattr(torch, dtype), **kwargs)
    if "proj_size" in kwargs:  # torch leaves oneDNN for a projection: a composition, not one node
        assert theirs[0] == "StackBackward0" and ours[0] == "LstmBackward0"
    else:
        assert ours[0] == theirs[0]
        assert ours[2] == theirs[2]


def test_lstm_output_repr_names_torchs_node():
    chainrule.manual_seed(0)
    out, _ = chainrule.nn.LSTM(3, 3)(chainrule.randn(5, 1, 3))
    assert repr(out).endswith("grad_fn=<MkldnnRnnLayerBackward0>)")


def test_lstm_cell_is_not_named_after_onednn():
    # torch's LSTMCell is a composition (MulBackward0 / AddBackward0), never the oneDNN layer
    h, c = chainrule.nn.LSTMCell(3, 4)(chainrule.randn(2, 3))
    assert h.grad_fn.name() != "MkldnnRnnLayerBackward0" and c.grad_fn.name() != "MkldnnRnnLayerBackward0"


def test_float64_lstm_keeps_its_own_node_name():
    out, _ = chainrule.nn.LSTM(3, 4).double()(chainrule.randn(5, 2, 3, dtype=chainrule.float64))
    assert out.grad_fn.name() == "LstmBackward0"
