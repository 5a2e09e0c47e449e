"""s48 mendBG: what a TorchDispatchMode sees, continued from mendAX. nn.GRU and nn.RNN (and a float64 or
projected nn.LSTM) as torch's CPU layers compose them (the zero state, unbind, the sequence's input projection,
per step the cell's hidden linear, unsafe_split, add_, sigmoid_/tanh_/relu and autograd's detaches, stack,
cat of the directions), a float32 nn.LSTM as oneDNN's aten.mkldnn_rnn_layer per layer and direction with the
three detaches of its saved results, where the mode saw chainrule's one fused lstm/gru/rnn op; in-place views (transpose_, t_, squeeze_, unsqueeze_, swapaxes_) as
torch's one aten.<view>_ op."""

import contextlib

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from tests.compat._dispatch_checks import PassingMode as _Pass  # noqa: E402
from tests.compat._dispatch_checks import assert_a_handler_edit_reaches, assert_a_passing_mode_keeps  # noqa: E402
from tests.compat.test_s45_mendAI import _logged  # noqa: E402


def _without_grad(lib, program):
    with lib.no_grad():
        return program()


# ---- nn.GRU / nn.RNN: torch's CPU composition, step by step
LAYERS = {
    "gru": lambda lib, a: lib.nn.GRU(4, 2)(a["x3"]),
    "gru_batch_first": lambda lib, a: lib.nn.GRU(4, 2, batch_first=True)(a["x3"]),
    "gru_batch_first_state": lambda lib, a: lib.nn.GRU(4, 2, batch_first=True)(a["x3"], a["y"][:, :2].unsqueeze(0)),
    "gru_without_bias": lambda lib, a: lib.nn.GRU(4, 3, bias=False)(a["x3"], a["m"][:, :3].unsqueeze(0)),
    "gru_two_layers_bidirectional": lambda lib, a: lib.nn.GRU(4, 2, num_layers=2, bidirectional=True)(a["x3"]),
    "gru_unbatched": lambda lib, a: lib.nn.GRU(4, 2)(a["x3"][0]),
    "gru_no_grad": lambda lib, a: _without_grad(lib, lambda: lib.nn.GRU(4, 2)(a["x3"])),
    "rnn": lambda lib, a: lib.nn.RNN(4, 2)(a["x3"]),
    "lstm_init_without_bias": lambda lib, a: lib.nn.LSTM(2, 3, bias=False, num_layers=2),
    "lstm": lambda lib, a: lib.nn.LSTM(4, 2)(a["x3"]),
    "lstm_batch_first": lambda lib, a: lib.nn.LSTM(4, 2, batch_first=True)(a["x3"]),
    "lstm_two_layers_bidirectional": lambda lib, a: lib.nn.LSTM(4, 2, num_layers=2, bidirectional=True)(a["x3"]),
    "lstm_unbatched": lambda lib, a: lib.nn.LSTM(4, 2)(a["x3"][1]),
    "lstm_state": lambda lib, a: lib.nn.LSTM(4, 3)(a["x3"], (a["m"][:, :3].unsqueeze(0), a["m"][:, 1:].unsqueeze(0))),
    "lstm_eval_no_grad": lambda lib, a: _without_grad(lib, lambda: lib.nn.LSTM(4, 2).eval()(a["x3"])),
    "lstm_projection": lambda lib, a: lib.nn.LSTM(4, 3, proj_size=2)(a["x3"]),
    "lstm_float64_batch_first": lambda lib, a: lib.nn.LSTM(4, 2, batch_first=True, bidirectional=True).double()(
        a["x3"].double()),
    "rnn_relu_unbatched": lambda lib, a: lib.nn.RNN(4, 2, nonlinearity="relu")(a["x3"][0]),
    "rnn_two_layers_bidirectional": lambda lib, a: lib.nn.RNN(4, 2, num_layers=2, bidirectional=True)(a["x3"]),
    "rnn_batch_first": lambda lib, a: lib.nn.RNN(4, 3, batch_first=True)(a["x3"], a["y"].unsqueeze(0)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_a_mode_sees_a_gru_or_rnn_layer_as_torch_composes_it(name):
    assert _logged(chainrule, LAYERS[name]) == _logged(real_torch, LAYERS[name])


def _layered(lib, kind, mode, batch_first, bidirectional, with_state, batched=True):
    lib.manual_seed(0)
    kinds = {"gru": lib.nn.GRU, "rnn": lib.nn.RNN, "lstm": lib.nn.LSTM,
             "rnn_relu": lambda *a, **k: lib.nn.RNN(*a, nonlinearity="relu", **k),
             "lstm_projection": lambda *a, **k: lib.nn.LSTM(*a, proj_size=3, **k)}
    module = kinds[kind](3, 4, num_layers=2, batch_first=batch_first, bidirectional=bidirectional)
    rng = np.random.default_rng(1)
    shape = ((5, 6, 3) if batch_first else (6, 5, 3)) if batched else (6, 3)
    x = lib.tensor(rng.standard_normal(shape), dtype=lib.float32, requires_grad=True)
    layers = 4 if bidirectional else 2
    state_shape = (layers, 5) if batched else (layers,)
    h = lib.tensor(rng.standard_normal(state_shape + (3 if kind == "lstm_projection" else 4,)), dtype=lib.float32,
                   requires_grad=True)
    c = lib.tensor(rng.standard_normal(state_shape + (4,)), dtype=lib.float32, requires_grad=True)
    state = ((h, c) if kind.startswith("lstm") else h) if with_state else None
    with mode:
        out, h_n = module(x, state)
    if kind.startswith("lstm"):
        h_n = h_n[0] * h_n[1].sum(-1, keepdim=True)
    (out.pow(2).sum() + (h_n * 3).sin().sum()).backward()
    grads = [x.grad] + ([h.grad] if with_state else []) + ([c.grad] if with_state and kind.startswith("lstm") else [])
    return [out.detach().numpy(), h_n.detach().numpy()] + [g.numpy() for g in grads] + \
        [p.grad.numpy() for p in module.parameters()]


@pytest.mark.parametrize("with_state", [False, True], ids=["zeros", "state"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one_way", "bidirectional"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_first", "batch_first"])
@pytest.mark.parametrize("kind", ["gru", "rnn", "rnn_relu", "lstm", "lstm_projection"])
def test_a_gru_or_rnn_under_a_passing_mode_keeps_values_and_gradients(kind, batch_first, bidirectional, with_state):
    ours = _layered(chainrule, kind, _Pass(), batch_first, bidirectional, with_state)
    plain = _layered(chainrule, kind, contextlib.nullcontext(), batch_first, bidirectional, with_state)
    theirs = _layered(real_torch, kind, contextlib.nullcontext(), batch_first, bidirectional, with_state)
    assert len(ours) == len(plain) == len(theirs)
    for got, without, expected in zip(ours, plain, theirs):
        # (the composed layer rounds as torch's CPU composition, the fused one in its own order)
        np.testing.assert_allclose(got, without, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["gru", "rnn", "lstm"])
def test_an_unbatched_gru_or_rnn_under_a_passing_mode_keeps_values_and_gradients(kind):
    ours = _layered(chainrule, kind, _Pass(), False, True, True, batched=False)
    theirs = _layered(real_torch, kind, contextlib.nullcontext(), False, True, True, batched=False)
    for got, expected in zip(ours, theirs):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["GRU", "RNN", "LSTM"])
def test_a_gru_or_rnn_under_a_mode_records_torchs_graph_and_gradchecks(kind):
    rng = np.random.default_rng(2)
    layer = getattr(chainrule.nn, kind)(2, 3, bidirectional=True, batch_first=True).double()
    x = chainrule.tensor(rng.standard_normal((2, 3, 2)), requires_grad=True)
    h = chainrule.tensor(rng.standard_normal((2, 2, 3)), requires_grad=True)

    c = chainrule.tensor(rng.standard_normal((2, 2, 3)), requires_grad=True)

    def run(x, h, c):
        with _Pass():
            out, h_n = layer(x, (h, c) if kind == "LSTM" else h)
        h_n = h_n[0] * h_n[1] if kind == "LSTM" else h_n
        return out.sum(2) + h_n.sin().sum(0).sum(1, keepdim=True)

    assert chainrule.autograd.gradcheck(run, (x, h, c))
    with _Pass():
        out, h_n = layer(x, (h, c) if kind == "LSTM" else h)
    t_layer = getattr(real_torch.nn, kind)(2, 3, bidirectional=True, batch_first=True).double()
    t_h, t_c = real_torch.tensor(h.detach().numpy()), real_torch.tensor(c.detach().numpy())
    t_out, t_h_n = t_layer(real_torch.tensor(x.detach().numpy()), (t_h, t_c) if kind == "LSTM" else t_h)
    if kind == "LSTM":
        h_n, t_h_n = h_n[0], t_h_n[0]
    assert (out.grad_fn.name(), h_n.grad_fn.name()) == (t_out.grad_fn.name(), t_h_n.grad_fn.name())


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_a_layer_under_a_mode_with_dropout_between_layers_drops_what_torch_drops(kind):
    def run(lib, mode):
        lib.manual_seed(5)
        module = getattr(lib.nn, kind)(3, 4, num_layers=3, dropout=0.5)
        x = lib.tensor(np.random.default_rng(6).standard_normal((4, 2, 3)), dtype=lib.float32)
        with mode:
            return module(x)[0].detach().numpy()

    np.testing.assert_allclose(run(chainrule, _Pass()), run(real_torch, contextlib.nullcontext()),
                               rtol=1e-5, atol=1e-6)


# ---- in-place views: torch's one aten.<view>_ op, the handler's func running it
VIEWS = {
    "transpose_": lambda lib, a: (a["x3"] * 1).transpose_(0, 1),
    "transpose__recorded": lambda lib, a: (a["x3"].requires_grad_() * 1).transpose_(2, 0),
    "t_": lambda lib, a: (a["x"] * 1).t_(),
    "squeeze__dim": lambda lib, a: a["x3"][:, :1].clone().squeeze_(1),
    "squeeze__all": lambda lib, a: a["x3"][:1].clone().squeeze_(),
    "squeeze__dims": lambda lib, a: a["x3"][:1].clone().squeeze_((0, 1)),
    "unsqueeze_": lambda lib, a: (a["x"].requires_grad_() * 1).unsqueeze_(1),
    "swapaxes_": lambda lib, a: (a["x"] * 1).swapaxes_(0, 1),
    "swapdims_": lambda lib, a: (a["x3"] * 1).swapdims_(2, 1),
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_a_mode_sees_an_inplace_view_as_torch_shows_it(name):
    assert _logged(chainrule, VIEWS[name]) == _logged(real_torch, VIEWS[name])


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_an_inplace_view_under_a_passing_mode_keeps_its_result_and_gradient(name):
    def run(lib, mode):
        x = lib.tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
        y = x * 1
        with mode:
            out = {"t_": lambda: y[0].t_(), "unsqueeze_": lambda: y.unsqueeze_(1),
                   "squeeze__dim": lambda: y[:, :1].squeeze_(1), "squeeze__all": lambda: y[:1].squeeze_(),
                   "squeeze__dims": lambda: y[:1].squeeze_((0, 1)), "swapdims_": lambda: y.swapdims_(2, 1),
                   }.get(name, lambda: y.transpose_(0, 2))()
        assert out is y or out.shape != y.shape or name.startswith(("t_", "squeeze"))
        (out * chainrule_or_torch_arange(lib, out)).sum().backward()
        return out.detach().numpy(), x.grad.numpy(), out.grad_fn.name()

    ours, plain = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext())
    theirs = run(real_torch, contextlib.nullcontext())
    for got, without, expected in zip(ours[:2], plain[:2], theirs[:2]):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_array_equal(got, expected)
    assert ours[2:] == plain[2:] == theirs[2:]


def chainrule_or_torch_arange(lib, like):
    return lib.arange(like.numel(), dtype=like.dtype).reshape(like.shape)


# ---- cat's dim as the call gave it (torch's lstm joins its directions along -1)
CATS = {
    "negative": lambda lib, a: lib.cat([a["x"], a["y"]], -1),
    "negative_first": lambda lib, a: lib.cat([a["x"], a["y"]], dim=-2),
    "positive": lambda lib, a: lib.cat([a["x3"], a["x3"]], 2),
}


@pytest.mark.parametrize("name", sorted(CATS))
def test_a_mode_sees_cats_dim_as_given(name):
    assert _logged(chainrule, CATS[name]) == _logged(real_torch, CATS[name])


# ---- schema rows: logsumexp's dims as given, adaptive average pooling (and mode='area') as
# _adaptive_avg_pool2d/3d with its output size, group norm's saved statistics as torch's two detaches
SCHEMAS = {
    "logsumexp": lambda lib, a: lib.logsumexp(a["x"], 1),
    "logsumexp_negative_keepdim": lambda lib, a: a["x3"].logsumexp(dim=(-1, 0), keepdim=True),
    "logsumexp_recorded": lambda lib, a: (a["x"].requires_grad_() * 1).logsumexp(-1),
    "interpolate_area": lambda lib, a: lib.nn.functional.interpolate(a["img"], size=(3, 3), mode="area"),
    "interpolate_area_1d": lambda lib, a: lib.nn.functional.interpolate(a["x3"], size=3, mode="area"),
    "adaptive_avg_pool2d": lambda lib, a: lib.nn.functional.adaptive_avg_pool2d(a["img"], (None, 3)),
    "adaptive_avg_pool3d": lambda lib, a: lib.nn.functional.adaptive_avg_pool3d(a["img"], 2),
    "adaptive_avg_pool_module_unbatched": lambda lib, a: lib.nn.AdaptiveAvgPool2d((2, 3))(a["img"][0]),
    "adaptive_avg_pool_global": lambda lib, a: lib.nn.functional.adaptive_avg_pool2d(a["img"], 1),
    "group_norm_module": lambda lib, a: lib.nn.GroupNorm(1, 2)(a["img"]),
    "group_norm_recorded": lambda lib, a: lib.nn.functional.group_norm(a["img"].requires_grad_(), 2),
    "group_norm_not_recorded": lambda lib, a: lib.nn.functional.group_norm(a["img"], 2, a["bias"][:2]),
    "group_norm_no_grad": lambda lib, a: _without_grad(lib, lambda: lib.nn.GroupNorm(2, 2)(a["img"])),
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_a_mode_sees_the_op_with_torchs_schema(name):
    assert _logged(chainrule, SCHEMAS[name]) == _logged(real_torch, SCHEMAS[name])


@pytest.mark.parametrize("name", ["logsumexp", "adaptive_avg_pool", "group_norm"])
def test_under_a_passing_mode_the_value_and_gradient_stay(name):
    program = {
        "logsumexp": lambda lib, x: (x.logsumexp(dim=(-1, 0), keepdim=True) * 2).sum(),
        "adaptive_avg_pool": lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, (3, 2)).pow(2).sum(),
        "group_norm": lambda lib, x: (lib.nn.functional.group_norm(x, 2) * lib.arange(5.0)).sum(),
    }[name]
    assert_a_passing_mode_keeps(program, (2, 4, 5, 5) if name != "logsumexp" else (3, 4, 5), seed=3)


@pytest.mark.parametrize("op,edit,program", [
    ("aten.logsumexp.default", lambda args: (args[0], [0], *args[2:]), lambda lib, x: x.logsumexp(1)),
    ("aten._adaptive_avg_pool2d.default", lambda args: (args[0], [2, 1]),
     lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, 3)),
])
def test_a_handler_that_edits_the_args_gets_what_it_asked_for(op, edit, program):
    assert_a_handler_edit_reaches(op, edit, program, (2, 3, 5, 4))
