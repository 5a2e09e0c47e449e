"""Session 51, lane progEB: what the ulmfit_awd_lstm program found, each compared with torch."""
import numpy as np
import pytest

import chainrule

real_torch = pytest.importorskip("torch")


def _weights(lstm):
    return {name: getattr(lstm, name).detach().numpy().copy() for name in lstm._flat_weights_names}


def _delete_then_run(library, weights, how, x):
    lstm = library.nn.LSTM(3, 4, num_layers=2)
    lstm.load_state_dict({name: library.tensor(value) for name, value in weights.items()})
    if how == "parameters dict":  # salesforce/awd-lstm-lm's WeightDrop._setup
        del lstm._parameters["weight_hh_l0"]
    else:
        delattr(lstm, "weight_hh_l1")
    lstm.register_parameter("weight_hh_l0_raw", library.nn.Parameter(library.ones(16, 4)))
    output, (h, c) = lstm(library.tensor(x))
    return output.detach().numpy(), h.detach().numpy(), [name for name, _ in lstm.named_parameters()]


@pytest.mark.parametrize("how", ["parameters dict", "delattr"])
def test_rnn_weight_deleted_from_module_still_runs_as_torch(how):
    # torch's forward reads its _flat_weights list, which a deletion does not touch: the deleted
    # weight is still the one the LSTM runs on
    real_torch.manual_seed(0)
    weights = _weights(real_torch.nn.LSTM(3, 4, num_layers=2))
    x = np.random.RandomState(0).randn(5, 2, 3).astype(np.float32)
    expected = _delete_then_run(real_torch, weights, how, x)
    got = _delete_then_run(chainrule, weights, how, x)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-5, atol=1e-6)
    assert got[2] == expected[2]


def test_rnn_weight_written_after_deletion_is_the_one_used():
    # fastai's WeightDropout: delattr, then a plain tensor set before each forward
    results = []
    for library in (real_torch, chainrule):
        library.manual_seed(0)
        gru = library.nn.GRU(2, 3)
        raw = gru.weight_hh_l0.detach().clone()
        delattr(gru, "weight_hh_l0")
        gru.weight_hh_l0 = raw * 0.5
        out, _ = gru(library.ones(4, 1, 2))
        gru.weight_hh_l0 = raw * 0.0
        out_zero, _ = gru(library.ones(4, 1, 2))
        results.append((out.detach().numpy(), out_zero.detach().numpy(), len(gru._flat_weights)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-5, atol=1e-6)
    assert results[1][2] == results[0][2]


def _refusal(library, mode, name, how, packed):
    library.manual_seed(0)
    rnn = getattr(library.nn, mode)(2, 2, num_layers=2)
    if how == "deleted, then .float()":
        del rnn._parameters[name]
        rnn.float()  # rebuilds torch's list from the attributes: the deleted weight is None there
    else:
        setattr(rnn, name, None)
    x = library.ones(3, 1, 2)
    if packed:
        x = library.nn.utils.rnn.pack_padded_sequence(x, [3])
    with pytest.raises(Exception) as info:
        rnn(x)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("how", ["deleted, then .float()", "set to None"])
@pytest.mark.parametrize(("mode", "name"), [("LSTM", "weight_hh_l0"), ("GRU", "weight_ih_l0"), ("RNN", "bias_hh_l1")])
def test_rnn_missing_weight_refused_as_torch(mode, name, how, packed):
    expected_type, expected_message = _refusal(real_torch, mode, name, how, packed)
    got_type, got_message = _refusal(chainrule, mode, name, how, packed)
    assert got_type.__name__ == expected_type.__name__
    assert got_message == expected_message


def test_rnn_weight_set_again_after_none_runs_as_torch():
    results = []
    for library in (real_torch, chainrule):
        library.manual_seed(0)
        lstm = library.nn.LSTM(2, 2, num_layers=2)
        keep = lstm.weight_hh_l1.detach().clone()
        lstm.weight_hh_l1 = None
        lstm.weight_hh_l1 = library.nn.Parameter(keep)
        results.append(lstm(library.ones(3, 1, 2))[0].detach().numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-6)
