"""RNN / LSTM / GRU and their cells refuse bad arguments at the forward as torch does: the same
exception type, and torch's message where it names the problem (dtypes, state sizes, lengths)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcomes(build):
    """(exception or None, result) of ``build(lib)`` on torch, then on chainrule."""
    results = []
    for lib in (torch, chainrule):
        try:
            results.append((None, build(lib)))
        except Exception as error:  # the exception itself is compared
            results.append((error, None))
    return results


SAME_MESSAGE = {
    "LSTM: h0 and c0 as a bare tensor": lambda lib: lib.nn.LSTM(3, 4)(lib.zeros(2, 1, 3), lib.zeros(1, 1, 4)),
    "LSTM: (h0,) alone": lambda lib: lib.nn.LSTM(3, 4)(lib.zeros(2, 1, 3), (lib.zeros(1, 1, 4),)),
    "LSTM: an empty sequence": lambda lib: lib.nn.LSTM(3, 4)(lib.zeros(0, 2, 3)),
    "GRU: an empty unbatched sequence": lambda lib: lib.nn.GRU(3, 4)(lib.zeros(0, 3)),
    "LSTMCell: h0 too wide": lambda lib: lib.nn.LSTMCell(3, 4)(lib.zeros(2, 3), (lib.zeros(2, 5), lib.zeros(2, 4))),
    "LSTMCell: c0 of another batch": lambda lib: lib.nn.LSTMCell(3, 4)(lib.zeros(2, 3), (lib.zeros(2, 4),
                                                                                        lib.zeros(3, 4))),
    "GRUCell: h0 too wide": lambda lib: lib.nn.GRUCell(3, 4)(lib.zeros(2, 3), lib.zeros(2, 5)),
    "RNNCell: h0 of another batch": lambda lib: lib.nn.RNNCell(3, 4)(lib.zeros(2, 3), lib.zeros(3, 4)),
    "GRUCell: 1-D input, 2-D h0": lambda lib: lib.nn.GRUCell(3, 4)(lib.zeros(3), lib.zeros(1, 4)),
    "GRUCell: 1-D h0 of another batch": lambda lib: lib.nn.GRUCell(3, 4)(lib.zeros(2, 3), lib.zeros(4)),
    "LSTMCell: 3-D c0": lambda lib: lib.nn.LSTMCell(3, 4)(lib.zeros(2, 3), (lib.zeros(2, 4), lib.zeros(1, 2, 4))),
    "RNNCell: 3-D h0": lambda lib: lib.nn.RNNCell(3, 4)(lib.zeros(2, 3), lib.zeros(1, 2, 4)),
    "GRU(proj_size=2)": lambda lib: lib.nn.GRU(3, 4, proj_size=2),
    "RNN(proj_size=0)": lambda lib: lib.nn.RNN(3, 4, proj_size=0),
}


@pytest.mark.parametrize("case", SAME_MESSAGE)
def test_error_type_and_message_as_torch(case):
    (theirs, _), (ours, _) = _outcomes(SAME_MESSAGE[case])
    assert theirs is not None and ours is not None
    assert type(ours) is type(theirs)
    assert str(ours) == str(theirs)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("input_dtype", ["float64", "int64"])
def test_input_of_another_dtype_than_the_weights_is_refused(name, input_dtype):
    # no silent float32 -> float64 upcast through the layer, and no NumPy casting error for ints
    (theirs, _), (ours, _) = _outcomes(lambda lib: getattr(lib.nn, name)(3, 4)(
        lib.zeros(2, 1, 3, dtype=getattr(lib, input_dtype))))
    assert type(ours) is type(theirs) is ValueError
    assert str(ours) == str(theirs).replace("torch.", "chainrule.")
    module = getattr(chainrule.nn, name)(3, 4, dtype=chainrule.float64)
    out = module(chainrule.zeros(2, 1, 3, dtype=chainrule.float64))[0]
    assert out.dtype == chainrule.float64


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cell_input_of_another_dtype_than_the_weights_is_refused(name):
    (theirs, _), (ours, _) = _outcomes(lambda lib: getattr(lib.nn, name)(3, 4)(lib.zeros(2, 3, dtype=lib.float64)))
    assert type(ours) is type(theirs) is RuntimeError
    assert str(ours) == str(theirs) == "mat1 and mat2 must have the same dtype, but got Double and Float"


def test_unknown_option_of_rnn_and_gru_is_a_type_error():
    for cls in (chainrule.nn.RNN, chainrule.nn.GRU):
        with pytest.raises(TypeError, match="unexpected keyword argument 'projection'"):
            cls(3, 4, projection=2)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_empty_batch_runs_as_torch(name):
    results = []
    for lib in (torch, chainrule):
        module = getattr(lib.nn, name)(3, 4, num_layers=2, bidirectional=True)
        x = lib.zeros(5, 0, 3, requires_grad=True)
        output, hidden = module(x)
        states = hidden if isinstance(hidden, tuple) else (hidden,)
        (output.sum() + sum(s.sum() for s in states)).backward()
        results.append([tuple(output.shape)] + [tuple(s.shape) for s in states] + [tuple(x.grad.shape)]
                       + [float(np.abs(p.grad.numpy()).sum()) for p in module.parameters()])
    assert results[0] == results[1]
