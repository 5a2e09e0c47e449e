"""s48 mendBG: what a TorchDispatchMode sees, continued from mendAX. nn.GRU and nn.RNN (and a float64 or
projected nn.LSTM) as torch's CPU layers compose them (the zero state, unbind, the sequence's input projection,
per step the cell's hidden linear, unsafe_split, add_, sigmoid_/tanh_/relu and autograd's detaches, stack,
cat of the directions), a float32 nn.LSTM as oneDNN's aten.mkldnn_rnn_layer per layer and direction with the
three detaches of its saved results, where the mode saw chainrule's one fused lstm/gru/rnn op; in-place views (transpose_, t_, squeeze_, unsqueeze_, swapaxes_) as
torch's one aten.<view>_ op."""

import contextlib
import re

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from chainrule.utils import _python_dispatch  # noqa: E402
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


# ---- a 0-d tensor's format (torch's detach, then _local_scalar_dense), the random *_like factories with
# a generator or bounds as torch's overloads (randint_like.low_dtype, .generator, .Tensor, ...)
def _generator_shown(lines):
    # (a Generator's repr carries its address)
    return [re.sub(r"<(torch|chainrule)\._C\.Generator object at 0x[0-9a-f]+>", "<Generator>", line) for line in lines]


FACTORIES = {
    "format": lambda lib, a: f"{a['x'][0, 0]:.2f}",
    "format_of_a_sum": lambda lib, a: format(a["x"].sum(), "e"),
    "rand_like_generator": lambda lib, a: lib.rand_like(a["x"], generator=lib.Generator().manual_seed(1)),
    "randn_like_generator_dtype": lambda lib, a: lib.randn_like(a["x"], generator=lib.Generator(), dtype=lib.float64),
    "rand_like_device": lambda lib, a: lib.rand_like(a["x"], device="cpu"),
    "randint_like_high": lambda lib, a: lib.randint_like(a["x"], 5),
    "randint_like_high_keyword": lambda lib, a: lib.randint_like(a["x"], high=5, dtype=lib.int64),
    "randint_like_low_high": lambda lib, a: lib.randint_like(a["x"], 2, 5),
    "randint_like_tensor_high": lambda lib, a: lib.randint_like(a["x"], lib.tensor(5)),
    "randint_like_generator": lambda lib, a: lib.randint_like(a["x"], 5, generator=lib.Generator()),
    "randint_like_low_high_generator": lambda lib, a: lib.randint_like(a["x"], -3, 5, generator=lib.Generator()),
    "randint_like_memory_format": lambda lib, a: lib.randint_like(a["img"], 9, memory_format=lib.preserve_format,
                                                                  device="cpu"),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_a_mode_sees_a_factory_or_format_as_torch_shows_it(name):
    assert _generator_shown(_logged(chainrule, FACTORIES[name])) == _generator_shown(_logged(real_torch,
                                                                                              FACTORIES[name]))


@pytest.mark.parametrize("name", ["rand_like", "randn_like", "randint_like", "randint_like_low"])
def test_a_random_like_under_a_passing_mode_draws_what_it_draws_without_one(name):
    def run(mode):
        generator = chainrule.Generator().manual_seed(7)
        x = chainrule.zeros(3, 4, dtype=chainrule.float64)
        with mode:
            if name.startswith("randint_like"):
                bounds = (-4, 9) if name.endswith("low") else (9,)
                out = chainrule.randint_like(x, *bounds, generator=generator, requires_grad=False)
            else:
                out = getattr(chainrule, name)(x, generator=generator, requires_grad=True)
        return out.detach().numpy(), out.requires_grad, out.dtype

    ours, plain = run(_Pass()), run(contextlib.nullcontext())
    np.testing.assert_array_equal(ours[0], plain[0])
    assert ours[1:] == plain[1:]


def test_format_under_a_passing_mode_gives_the_number():
    x = chainrule.tensor(2.0 / 3, requires_grad=True)
    with _Pass():
        shown = f"{x * 3:.4f}|{x:e}"
    assert shown == f"{real_torch.tensor(2.0) :.4f}|{real_torch.tensor(2.0 / 3):e}"


def test_a_handler_that_edits_randint_likes_bound_gets_what_it_asked_for():
    class Edit(_python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if str(func) == "aten.randint_like.default":
                args = (args[0], 1)
            return func(*args, **(kwargs or {}))

    with Edit():
        out = chainrule.randint_like(chainrule.zeros(4, 5), 100)
    assert (out.numpy() == 0).all()


# ---- alpha dropout: ATen's _dropout_impl (empty_like, bernoulli_, add.Scalar, mul_/add_ by numbers, mul, add_)
ALPHA_DROPOUT = {
    "functional": lambda lib, a: lib.nn.functional.alpha_dropout(a["x"], 0.5, training=True),
    "functional_p": lambda lib, a: lib.nn.functional.alpha_dropout(a["x3"], 0.2, training=True),
    "functional_inplace": lambda lib, a: lib.nn.functional.alpha_dropout(a["x"] * 1, 0.3, True, True),
    "module": lambda lib, a: lib.nn.AlphaDropout(0.4)(a["x"]),
    "recorded": lambda lib, a: lib.nn.functional.alpha_dropout(a["x"].requires_grad_(), 0.5, True),
    "eval": lambda lib, a: lib.nn.AlphaDropout(0.4).eval()(a["x"]),
}


@pytest.mark.parametrize("name", sorted(ALPHA_DROPOUT))
def test_a_mode_sees_alpha_dropout_as_aten_composes_it(name):
    assert _logged(chainrule, ALPHA_DROPOUT[name]) == _logged(real_torch, ALPHA_DROPOUT[name])


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("p", [0.5, 0.2])
def test_alpha_dropout_under_a_passing_mode_draws_and_rounds_as_torch(p, inplace):
    def run(lib, mode):
        lib.manual_seed(3)
        x = lib.tensor(np.random.default_rng(0).standard_normal((4, 5)), dtype=lib.float32, requires_grad=True)
        with mode:
            out = lib.nn.functional.alpha_dropout(x * 1, p, training=True, inplace=inplace)
        (out * lib.arange(5.0)).sum().backward()
        return out.detach().numpy(), x.grad.numpy()

    ours, plain = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext())
    theirs = run(real_torch, contextlib.nullcontext())
    for got, without, expected in zip(ours, plain, theirs):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_array_equal(got, expected)


# ---- fill_diagonal_: ATen's as_strided view of the diagonal and its fill_ (the wrapped one's of a tall
# matrix); as_strided with its storage offset shown where given
DIAGONALS = {
    "square": lambda lib, a: lib.zeros(3, 3).fill_diagonal_(2.0),
    "cube": lambda lib, a: lib.zeros(3, 3, 3).fill_diagonal_(1),
    "wide": lambda lib, a: lib.zeros(2, 5).fill_diagonal_(-1.5),
    "tall_wrapped": lambda lib, a: lib.zeros(7, 3).fill_diagonal_(2.0, wrap=True),
    "tall_not_wrapped": lambda lib, a: lib.zeros(7, 3).fill_diagonal_(2.0),
    "of_a_view": lambda lib, a: lib.zeros(4, 5)[1:].fill_diagonal_(1),
    "recorded": lambda lib, a: (a["x"].requires_grad_() * 1).fill_diagonal_(0),
    "as_strided": lambda lib, a: a["x"].as_strided((2, 2), (1, 2)),
    "as_strided_offset": lambda lib, a: a["x"].as_strided((2, 2), (1, 2), 1),
}


@pytest.mark.parametrize("name", sorted(DIAGONALS))
def test_a_mode_sees_fill_diagonal_as_aten_composes_it(name):
    assert _logged(chainrule, DIAGONALS[name]) == _logged(real_torch, DIAGONALS[name])


@pytest.mark.parametrize("shape,wrap", [((4, 4), False), ((7, 3), True), ((7, 3), False), ((2, 5), True),
                                        ((3, 3, 3), False)])
def test_fill_diagonal_under_a_passing_mode_writes_and_differentiates_as_torch(shape, wrap):
    def run(lib, mode):
        x = lib.tensor(np.arange(float(np.prod(shape))).reshape(shape), requires_grad=True)
        y = x * 2
        with mode:
            out = y.fill_diagonal_(-1.0, wrap=wrap)
        assert out is y
        (y * y).sum().backward()
        return y.detach().numpy(), x.grad.numpy(), y.grad_fn.name()

    ours, plain = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext())
    theirs = run(real_torch, contextlib.nullcontext())
    for got, without, expected in zip(ours[:2], plain[:2], theirs[:2]):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_array_equal(got, expected)
    assert ours[2] == theirs[2]


def test_fill_diagonal_under_a_mode_refuses_as_torch_before_writing():
    for lib in (chainrule, real_torch):
        with pytest.raises(RuntimeError, match="all dimensions of input must be of equal length"):
            with (_Pass() if lib is chainrule else contextlib.nullcontext()):
                lib.zeros(2, 3, 4).fill_diagonal_(1)


# ---- cross_entropy's label smoothing: its two scalings as torch's aten.mul.Scalar (the smoothing term's
# first), the kept targets counted first; an integer sum without a dtype argument shown without one
SMOOTHING = {
    "sum": lambda lib, a: lib.nn.functional.cross_entropy(a["x"], a["tgt"], label_smoothing=0.1, reduction="sum"),
    "none": lambda lib, a: lib.nn.functional.cross_entropy(a["x"].requires_grad_(), a["tgt"], label_smoothing=0.25,
                                                           reduction="none"),
    "weighted_sum": lambda lib, a: lib.nn.functional.cross_entropy(a["x"], a["tgt"], a["bias"], label_smoothing=0.2,
                                                                   reduction="sum"),
    "bool_sum": lambda lib, a: (a["x"] > 0).sum(),
    "bool_sum_dim": lambda lib, a: (a["x"] > 0).sum(1),
    "int_sum_dtype": lambda lib, a: a["idx"].sum(dtype=lib.int64),
    "bool_sum_dim_dtype": lambda lib, a: (a["x"] > 0).sum(0, dtype=lib.int32),
}


@pytest.mark.parametrize("name", sorted(SMOOTHING))
def test_a_mode_sees_label_smoothing_and_integer_sums_as_torch_shows_them(name):
    assert _logged(chainrule, SMOOTHING[name]) == _logged(real_torch, SMOOTHING[name])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_label_smoothing_under_a_passing_mode_keeps_value_and_gradient(reduction):
    target = [1, 0, 4, 2]
    assert_a_passing_mode_keeps(lambda lib, x: lib.nn.functional.cross_entropy(
        x, lib.tensor(target), label_smoothing=0.15, reduction=reduction).sum(), (4, 5), seed=6)
