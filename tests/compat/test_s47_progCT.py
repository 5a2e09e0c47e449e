"""s47 progCT: ``torch.cov`` / ``torch.corrcoef`` / ``Tensor.cov`` refuse a bool input with torch's
RuntimeError (chainrule cast it to the default float dtype and answered), after the dimension check and
before the weights' checks, as torch orders them; the other dtypes still agree with torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

ROWS = np.array([[1, 0, 1, 1], [0, 0, 1, 0]])
DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float32", "float64", "complex64"]


def _outcome(lib, call):
    try:
        value = call(lib)
    except Exception as error:  # noqa: BLE001  (the outcome compared is the exception's type and words)
        return type(error).__name__, str(error)
    return "ok", value.resolve_conj().numpy() if value.is_complex() else value.numpy()


def _check_same(call):
    expected, got = _outcome(torch, call), _outcome(chainrule, call)
    assert got[0] == expected[0], (got, expected)
    if expected[0] == "ok":
        assert got[1].dtype == expected[1].dtype
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-6, atol=1e-6)
    else:
        assert got[1] == expected[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ["2d", "1d", "3d"])
@pytest.mark.parametrize("function", ["cov", "corrcoef", "method"])
def test_cov_corrcoef_dtypes_and_bool_refusal_match_torch(function, shape, dtype):
    data = {"2d": ROWS, "1d": ROWS[0], "3d": ROWS.reshape(2, 2, 2)}[shape]

    def call(lib):
        x = lib.tensor(data.astype(bool) if dtype == "bool" else data, dtype=getattr(lib, dtype))
        if function == "method":
            return x.cov()
        return getattr(lib, function)(x)

    _check_same(call)


@pytest.mark.parametrize("weights", ["fweights_bool", "aweights_bool", "fweights_int", "aweights_float"])
def test_cov_bool_input_refused_before_the_weights(weights):
    def call(lib):
        kind, dtype = weights.split("_")
        w = lib.tensor([1, 0, 2, 1], dtype=getattr(lib, {"bool": "bool", "int": "int64", "float": "float32"}[dtype]))
        return lib.cov(lib.tensor(ROWS.astype(bool)), **{kind: w})

    _check_same(call)
    _check_same(lambda lib: lib.cov(lib.tensor(ROWS, dtype=lib.float32),
                                    fweights=lib.tensor([True, False, True, True])))


@pytest.mark.parametrize("bidirectional", [True, False, 2, 0, 1.0, None, "yes"])
@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_rnn_repr_shows_bidirectional_as_given(mode, bidirectional):
    """torch's extra_repr prints ``bidirectional=<the value given>`` unless it is False (chainrule
    printed ``bidirectional=True`` for any truthy value and nothing for 0 or None)."""
    def build(lib):
        try:
            return repr(getattr(lib.nn, mode)(2, 3, bidirectional=bidirectional))
        except Exception as error:  # noqa: BLE001  (the outcome compared is the exception's type)
            return type(error).__name__

    assert build(chainrule) == build(torch)
