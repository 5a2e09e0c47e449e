"""nn.LSTM with a projection (proj_size, Sak et al. 2014) vs torch: parameters, outputs, states
and every gradient with torch's weights loaded, packed batches, errors, checkpoints."""

import numpy as np
import pytest

import chainrule
from chainrule.nn.utils import rnn as ours_rnn
from chainrule.ops import rnn as rnn_ops

torch = pytest.importorskip("torch")
torch_rnn = torch.nn.utils.rnn

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

I, H, P, T, B = 3, 5, 2, 6, 4
TOLERANCE = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-10)}


def _pair(dtype="float64", **kw):
    """A torch LSTM with a projection and chainrule's, holding torch's (random) weights."""
    theirs = torch.nn.LSTM(I, H, proj_size=P, dtype=getattr(torch, dtype), **kw)
    ours = chainrule.nn.LSTM(I, H, proj_size=P, dtype=getattr(chainrule, dtype), **kw)
    ours.load_state_dict({k: chainrule.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return ours, theirs


def _forward_backward(lib, module, x, hx):
    """(output, h_n, c_n) and the gradients of the input, the given initial state and every
    parameter (named_parameters' order) of a loss that weighs each output differently."""
    xt = lib.tensor(x, requires_grad=True)
    states = [lib.tensor(s, requires_grad=True) for s in hx] if hx is not None else None
    output, (h_n, c_n) = module(xt, tuple(states) if states else None)
    rng = np.random.default_rng(11)
    weights = [lib.tensor(rng.standard_normal(tuple(t.shape)).astype(x.dtype)) for t in (output, h_n, c_n)]
    loss = (output.sin() * weights[0]).sum() + (h_n * weights[1]).sum() + (c_n * c_n * weights[2]).sum()
    loss.backward()
    grads = [xt.grad] + [s.grad for s in states or []] + [p.grad for _, p in module.named_parameters()]
    return [t.detach().numpy() for t in (output, h_n, c_n, *grads)]


CONFIGS = [
    dict(),
    dict(bidirectional=True),
    dict(num_layers=2),
    dict(num_layers=3, bidirectional=True),
    dict(num_layers=2, batch_first=True, bias=False),
    dict(num_layers=2, bidirectional=True, batch_first=True),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("kw", CONFIGS, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "default" for c in CONFIGS])
def test_outputs_states_and_gradients_match_torch(kw, unbatched, with_state, dtype):
    ours, theirs = _pair(dtype, **kw)
    rng = np.random.default_rng(0)
    shape = (T, I) if unbatched else ((B, T, I) if kw.get("batch_first") else (T, B, I))
    x = rng.standard_normal(shape).astype(dtype)
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    batch = () if unbatched else (B,)
    hx = None
    if with_state:
        hx = (rng.standard_normal((layers, *batch, P)).astype(dtype),
              rng.standard_normal((layers, *batch, H)).astype(dtype))
    mine = _forward_backward(chainrule, ours, x, hx)
    reference = _forward_backward(torch, theirs, x, hx)
    directions = 2 if kw.get("bidirectional") else 1
    assert mine[0].shape == reference[0].shape and mine[0].shape[-1] == directions * P
    assert mine[1].shape == (layers, *batch, P) and mine[2].shape == (layers, *batch, H)
    assert len(mine) == len(reference)
    for got, expected in zip(mine, reference):
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_packed_batch_matches_torch(enforce_sorted, bidirectional, with_state):
    lengths = [5, 4, 3, 1] if enforce_sorted else [3, 5, 1, 4]
    ours, theirs = _pair("float64", num_layers=2, batch_first=True, bidirectional=bidirectional)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((len(lengths), max(lengths), I))
    layers = 4 if bidirectional else 2
    h0 = rng.standard_normal((layers, len(lengths), P))
    c0 = rng.standard_normal((layers, len(lengths), H))
    results = []
    for lib, rnn, module in ((chainrule, ours_rnn, ours), (torch, torch_rnn, theirs)):
        xt = lib.tensor(x, requires_grad=True)
        states = [lib.tensor(s, requires_grad=True) for s in (h0, c0)]
        packed = rnn.pack_padded_sequence(xt, lengths, batch_first=True, enforce_sorted=enforce_sorted)
        output, (h_n, c_n) = module(packed, tuple(states) if with_state else None)
        padded, _ = rnn.pad_packed_sequence(output, batch_first=True)
        (padded.sin().sum() + (h_n * h_n).sum() + c_n.cos().sum()).backward()
        grads = [xt.grad] + ([s.grad for s in states] if with_state else [])
        results.append([output.data, padded, h_n, c_n, *grads] + [p.grad for _, p in module.named_parameters()])
    for got, expected in zip(*results):
        np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_dropout_between_layers():
    # p = 1 zeroes the whole input of the second layer: a dropout that is deterministic, so the
    # training-mode forward and gradients compare with torch's; p = 0.5 only in training
    ours, theirs = _pair("float64", num_layers=2, dropout=1.0)
    x = np.random.default_rng(4).standard_normal((T, B, I))
    for got, expected in zip(_forward_backward(chainrule, ours, x, None), _forward_backward(torch, theirs, x, None)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    lstm = chainrule.nn.LSTM(I, H, num_layers=2, dropout=0.5, proj_size=P)
    xt = chainrule.tensor(x.astype(np.float32))
    lstm.eval()
    a, _ = lstm(xt)
    np.testing.assert_array_equal(a.detach().numpy(), lstm(xt)[0].detach().numpy())
    lstm.train()
    assert not np.allclose(a.detach().numpy(), lstm(xt)[0].detach().numpy())


def test_parameters_names_and_init_as_torch():
    theirs = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P)
    ours = chainrule.nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P)
    assert ours._flat_weights_names == theirs._flat_weights_names
    assert ours._all_weights == theirs._all_weights
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert [[tuple(w.shape) for w in ws] for ws in ours.all_weights] == \
        [[tuple(w.shape) for w in ws] for ws in theirs.all_weights]
    assert [tuple(w.shape) for w in ours._flat_weights] == [tuple(w.shape) for w in theirs._flat_weights]
    assert repr(ours) == repr(theirs)
    assert tuple(ours.weight_hr_l1_reverse.shape) == (P, H) and tuple(ours.weight_hh_l1.shape) == (4 * H, P)
    no_bias = (chainrule.nn.LSTM(I, H, bias=False, proj_size=P), torch.nn.LSTM(I, H, bias=False, proj_size=P))
    assert no_bias[0]._flat_weights_names == no_bias[1]._flat_weights_names
    assert repr(no_bias[0]) == repr(no_bias[1])
    # reset_parameters: U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) for every weight, W_hr included
    big = chainrule.nn.LSTM(8, 400, proj_size=100)
    bound = 1 / np.sqrt(400)
    for name, p in big.named_parameters():
        values = p.detach().numpy()
        assert np.abs(values).max() <= bound, name
        assert np.abs(values).max() > 0.9 * bound, name  # spread over the whole interval


@pytest.mark.parametrize("proj_size", [3, np.int64(3), "tensor"])
def test_integer_proj_size_values_as_torch(proj_size):
    def value(lib):
        return lib.tensor(3) if isinstance(proj_size, str) else proj_size
    ours, theirs = chainrule.nn.LSTM(I, 4, proj_size=value(chainrule)), torch.nn.LSTM(I, 4, proj_size=value(torch))
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert ours.proj_size == 3
    for zero in (0, 0.0, False):  # a zero of any type disables the projection, as in torch
        assert "weight_hr_l0" not in dict(chainrule.nn.LSTM(I, 4, proj_size=zero).named_parameters())


@pytest.mark.parametrize("proj_size", [5, 6, -1, 2.5, 2.0, True, None, "3", (2, 2), float("nan")])
def test_bad_proj_size_raises_torch_exception_type(proj_size):
    with pytest.raises(Exception) as expected:
        torch.nn.LSTM(I, 5, proj_size=proj_size)
    with pytest.raises(expected.type, match="proj_size"):
        chainrule.nn.LSTM(I, 5, proj_size=proj_size)


def test_proj_size_errors_name_the_rule():
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        chainrule.nn.LSTM(I, 5, proj_size=5)
    with pytest.raises(ValueError, match="proj_size should be a positive integer or zero"):
        chainrule.nn.LSTM(I, 5, proj_size=-2)
    with pytest.raises(TypeError, match="proj_size should be of type int, got: float"):
        chainrule.nn.LSTM(I, 5, proj_size=2.5)


@pytest.mark.parametrize("batched", [True, False])
def test_wrong_initial_states_raise_as_torch(batched):
    ours, theirs = _pair("float32", num_layers=2)
    batch = (B,) if batched else ()
    x = np.zeros((T, *batch, I), np.float32)
    good_h, good_c = (2, *batch, P), (2, *batch, H)
    cases = [((2, *batch, H), good_c),  # h0 hidden_size wide instead of proj_size
             (good_h, (2, *batch, P)),  # c0 proj_size wide instead of hidden_size
             ((1, *batch, P), good_c),  # one layer's state for two layers
             ((2, P), good_c) if batched else ((2, 1, P), good_c)]  # the other batchedness
    for h_shape, c_shape in cases:
        outcomes = []
        for lib, module in ((chainrule, ours), (torch, theirs)):
            with pytest.raises(Exception) as caught:
                module(lib.tensor(x), (lib.zeros(h_shape), lib.zeros(c_shape)))
            outcomes.append(caught.value)
        mine, reference = outcomes
        assert type(mine) is type(reference)
        assert str(mine) == str(reference)


def test_gradcheck_and_gradgradcheck_float64():
    lstm = chainrule.nn.LSTM(2, 3, proj_size=2, num_layers=2, bidirectional=True, dtype=chainrule.float64)
    rng = np.random.default_rng(3)
    x = chainrule.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    h0 = chainrule.tensor(rng.standard_normal((4, 2, 2)), requires_grad=True)
    c0 = chainrule.tensor(rng.standard_normal((4, 2, 3)), requires_grad=True)

    def fn(x, h0, c0, w_hr, w_hr_last, w_hh):
        output, (h_n, c_n) = lstm(x, (h0, c0))
        return output, h_n, c_n

    inputs = [x, h0, c0, lstm.weight_hr_l0, lstm.weight_hr_l1_reverse, lstm.weight_hh_l1]
    assert chainrule.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
    single = chainrule.nn.LSTM(2, 3, proj_size=1, dtype=chainrule.float64)
    inputs = [x, single.weight_hr_l0, single.weight_hh_l0]
    assert chainrule.autograd.gradgradcheck(lambda x, *w: single(x)[0], inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_second_order_gradients_match_torch():
    # a gradient penalty: the create_graph path (the layer's step composition) with W_hr
    ours, theirs = _pair("float64", bidirectional=True)
    x = np.random.default_rng(5).standard_normal((4, 3, I))
    results = []
    for lib, module in ((chainrule, ours), (torch, theirs)):
        xt = lib.tensor(x, requires_grad=True)
        params = list(module.parameters())
        output, (h_n, c_n) = module(xt)
        first = lib.autograd.grad((output * output).sum() + h_n.sum() + c_n.sum(), [xt] + params, create_graph=True)
        penalty = sum((g * g).sum() for g in first)
        results.append(lib.autograd.grad(penalty, [xt] + params))
    for got, expected in zip(*results):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, np.array([3, 1, 2])])
def test_step_composition_is_the_fused_forward_with_projection(reverse, lengths):
    # the second-order rule differentiates _layer_steps: with W_hr it must still be the forward
    rng = np.random.default_rng(7)
    shapes = ((3, 3, 4), (4 * H, 4), (4 * H, P), (4 * H,), (4 * H,), (3, P), (3, H), (P, H))
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr = (chainrule.tensor(rng.standard_normal(s)) for s in shapes)
    fused = rnn_ops.recurrent_layer("LSTM", x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse=reverse, lengths=lengths,
                                    w_hr=w_hr)
    steps = rnn_ops._layer_steps("LSTM", x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, reverse=reverse, lengths=lengths)
    assert [tuple(t.shape) for t in fused] == [(3, 3, P), (3, P), (3, H)]
    for a, b in zip(fused, steps):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="recurrent_layer: a projection \\(w_hr\\) is an LSTM's alone"):
        rnn_ops.recurrent_layer("GRU", x, w_ih[:3 * H], w_hh[:3 * H], None, None, h0, w_hr=w_hr)


def test_torch_checkpoint_loads_into_chainrule(tmp_path):
    theirs = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P)
    path = tmp_path / "lstm_proj.pt"
    torch.save(theirs.state_dict(), path)
    ours = chainrule.nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P)
    ours.load_state_dict(chainrule.load(path))
    x = np.random.default_rng(6).standard_normal((T, B, I)).astype(np.float32)
    output, (h_n, c_n) = ours(chainrule.tensor(x))
    with torch.no_grad():
        expected, (expected_h, expected_c) = theirs(torch.tensor(x))
    for got, want in ((output, expected), (h_n, expected_h), (c_n, expected_c)):
        np.testing.assert_allclose(got.detach().numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    # a checkpoint of an LSTM without projection does not fit one with it
    with pytest.raises(RuntimeError, match="weight_hr_l0"):
        ours.load_state_dict(chainrule.nn.LSTM(I, H, num_layers=2, bidirectional=True).state_dict())


def test_onnx_export_refuses_a_projection():
    pytest.importorskip("onnx")
    lstm = chainrule.nn.LSTM(I, H, proj_size=P)
    with pytest.raises(NotImplementedError, match="onnx.export: .*proj_size"):
        chainrule.onnx.export(lstm, chainrule.randn(T, B, I), None)


def test_lstm_function_takes_the_projection_weights_of_flat_weights():
    # torch.lstm tells a projection from h0 narrower than c0; weight_hr is last per (layer, direction)
    ours, theirs = _pair("float64", num_layers=2, bidirectional=True, bias=False)
    rng = np.random.default_rng(8)
    x, h0, c0 = rng.standard_normal((T, B, I)), rng.standard_normal((4, B, P)), rng.standard_normal((4, B, H))
    expected = torch.lstm(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)), theirs._flat_weights, False, 2, 0.0,
                          False, True, False)
    got = chainrule.lstm(chainrule.tensor(x), (chainrule.tensor(h0), chainrule.tensor(c0)), ours._flat_weights, False,
                         2, 0.0, False, True, False)
    assert len(got) == len(expected) == 3
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-10)
