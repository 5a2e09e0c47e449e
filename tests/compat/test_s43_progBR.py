"""Differences from torch 2.13 found around the corpus programs deep_kernel_learning,
vrnn_sequence_vae and esim_nli (lane progBR), each compared with torch itself.

* Dropout of an integer or bool tensor: torch draws the noise into ``empty_like(input)`` and
  scales it in place, so with 0 < p < 1 in training it refuses the input ("result type Float
  can't be cast to the desired output type Long"; alpha dropout's bool noise is promoted to Long
  first), and with p = 1 it multiplies by a zero of the input's dtype. chainrule returned a float
  tensor (dropout), the input's integer values (alpha dropout), or refused p = 1 in place.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_DROPOUTS = ["dropout", "dropout1d", "dropout2d", "alpha_dropout", "feature_alpha_dropout"]
_NON_FLOAT = ["int64", "int32", "uint8", "bool"]


def _call(lib, name, dtype, p, inplace):
    x = lib.ones(2, 3, 4, dtype=getattr(lib, dtype))
    return getattr(lib.nn.functional, name)(x, p, True, inplace)


def _outcome(lib, *args):
    try:
        result = _call(lib, *args)
    except RuntimeError as error:
        return "RuntimeError", str(error)
    return str(result.dtype).split(".")[-1], tuple(result.shape), result.numpy().tolist()


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("dtype", _NON_FLOAT)
@pytest.mark.parametrize("name", _DROPOUTS)
def test_dropout_of_an_integer_tensor_refuses_a_mask_as_torch(name, dtype, inplace):
    expected = _outcome(torch, name, dtype, 0.5, inplace)
    assert expected[0] == "RuntimeError"  # torch refuses it: the case this test is about
    assert _outcome(chainrule, name, dtype, 0.5, inplace) == expected


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("dtype", _NON_FLOAT)
@pytest.mark.parametrize("name", _DROPOUTS)
def test_dropout_of_an_integer_tensor_with_p_one_keeps_its_dtype(name, dtype, inplace):
    expected = _outcome(torch, name, dtype, 1.0, inplace)
    assert expected[0] == dtype
    assert _outcome(chainrule, name, dtype, 1.0, inplace) == expected


def test_dropout_refusal_leaves_the_input_and_the_generator_untouched():
    x = chainrule.arange(6)
    chainrule.manual_seed(0)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        chainrule.nn.functional.dropout(x, 0.5, True, inplace=True)
    assert x.tolist() == list(range(6))
    after_refusal = chainrule.rand(3)
    chainrule.manual_seed(0)
    assert chainrule.equal(after_refusal, chainrule.rand(3))


@pytest.mark.parametrize("call", ["module", "torch.dropout", "native_dropout"])
def test_every_dropout_entry_point_refuses_an_integer_tensor(call):
    def run(lib):
        x = lib.ones(3, dtype=lib.long)
        if call == "module":
            return lib.nn.Dropout(0.5)(x)
        if call == "torch.dropout":
            return lib.dropout(x, 0.5, True)
        return lib.native_dropout(x, 0.5, True)

    with pytest.raises(RuntimeError) as theirs:
        run(torch)
    with pytest.raises(RuntimeError) as ours:
        run(chainrule)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", ["dropout", "alpha_dropout"])
def test_float_dropout_with_p_one_is_unchanged(name):
    data = np.array([[-1.5, 0.0, 2.0]], dtype=np.float32)
    ours = chainrule.tensor(data, requires_grad=True)
    theirs = torch.tensor(data, requires_grad=True)
    out_ours = getattr(chainrule.nn.functional, name)(ours, 1.0, True)
    out_theirs = getattr(torch.nn.functional, name)(theirs, 1.0, True)
    assert out_ours.grad_fn.name() == out_theirs.grad_fn.name()
    assert np.array_equal(np.signbit(out_ours.detach().numpy()), np.signbit(out_theirs.detach().numpy()))
    out_ours.sum().backward()
    out_theirs.sum().backward()
    assert np.array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_rnnbase_refuses_an_unknown_mode_with_torchs_value_error():
    """``nn.RNNBase`` (ESIM's ``Seq2SeqEncoder`` asserts ``issubclass(rnn_type, nn.RNNBase)``) built
    directly with a mode it does not know: torch's ValueError after its size checks, where chainrule
    raised a bare KeyError from its gate table."""
    with pytest.raises(ValueError, match="Unrecognized RNN mode: FOO") as theirs:
        torch.nn.RNNBase("FOO", 3, 4)
    with pytest.raises(ValueError, match="Unrecognized RNN mode: FOO"):
        chainrule.nn.RNNBase("FOO", 3, 4)
    assert str(theirs.value) == "Unrecognized RNN mode: FOO"
    # the size checks come first in both
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        torch.nn.RNNBase("FOO", 3, 0)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        chainrule.nn.RNNBase("FOO", 3, 0)
    assert type(chainrule.nn.RNNBase("RNN_TANH", 3, 4)).__name__ == type(torch.nn.RNNBase("RNN_TANH", 3, 4)).__name__


def _recurrent_outcome(lib, cls, bias, model_dtype, state_dtype, packed, bidirectional, cell_dtype=None):
    lib.manual_seed(0)
    module = getattr(lib.nn, cls)(4, 3, num_layers=2, bias=bias, bidirectional=bidirectional)
    module = module.to(getattr(lib, model_dtype))
    states = 4 if bidirectional else 2
    h0 = lib.zeros(states, 2, 3, dtype=getattr(lib, state_dtype))
    c0 = lib.zeros(states, 2, 3, dtype=getattr(lib, cell_dtype or model_dtype))
    x = lib.ones(3, 2, 4, dtype=getattr(lib, model_dtype))
    if packed:
        x = lib.nn.utils.rnn.pack_padded_sequence(x, [3, 2])
    try:
        output = module(x, (h0, c0) if cls == "LSTM" else h0)[0]
    except RuntimeError as error:
        return "RuntimeError", str(error)
    values = output.data if packed else output
    return str(values.dtype).split(".")[-1], values.detach().numpy()


_STATE_CASES = [(model, state) for model, state in [("float32", "float64"), ("float64", "float32"),
                                                    ("float32", "int64"), ("float32", "bool"),
                                                    ("float32", "float16"), ("float64", "float64")]]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize(("model_dtype", "state_dtype"), _STATE_CASES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cls", ["RNN", "GRU", "LSTM"])
def test_recurrent_layer_refuses_an_initial_state_of_another_dtype_as_torch(cls, bias, model_dtype, state_dtype,
                                                                            packed, bidirectional):
    """A VRNN-style ``self.rnn(x, h)`` with ``h`` of another dtype than the weights: torch refuses it
    at its first matmul by weight_hh (addmm's or mm's words, oneDNN's for a float32 LSTM), where
    chainrule ran the layer in the weights' dtype."""
    theirs = _recurrent_outcome(torch, cls, bias, model_dtype, state_dtype, packed, bidirectional)
    ours = _recurrent_outcome(chainrule, cls, bias, model_dtype, state_dtype, packed, bidirectional)
    if theirs[0] == "RuntimeError":
        assert ours == theirs
    else:
        assert ours[0] == theirs[0]
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell_dtype", ["float64", "bfloat16", "int32"])
def test_onednn_lstm_refuses_a_cell_state_of_another_dtype_as_torch(cell_dtype):
    theirs = _recurrent_outcome(torch, "LSTM", True, "float32", "float32", False, False, cell_dtype)
    assert theirs[0] == "RuntimeError"
    assert _recurrent_outcome(chainrule, "LSTM", True, "float32", "float32", False, False, cell_dtype) == theirs
