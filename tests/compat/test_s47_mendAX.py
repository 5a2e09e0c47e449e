"""s47 mendAX: what a TorchDispatchMode sees, continued from mendAS/mendAV. RNNCell, LSTMCell and GRUCell as
torch's CPU cells compose them (zeros, t/addmm, add_, unsafe_split, the gates' sigmoid_/tanh_, mul, add_)
where the mode saw chainrule's own fused lstm/gru op; autograd keeping an op's result (tanh, sigmoid, relu,
exp, _softmax, ...) as torch's aten.detach after it, and an in-place op's overwritten input (sin_, mul_ by a
tensor that needs a gradient, ...) as aten.clone before it; unsafe_split/unsafe_chunk as torch's one
aten.unsafe_split.Tensor; nn.init.uniform_/normal_ (every module's reset) as aten.uniform_/aten.normal_."""

import contextlib

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from chainrule.utils import _python_dispatch  # noqa: E402
from tests.compat._dispatch_checks import PassingMode as _Pass  # noqa: E402
from tests.compat.test_s45_mendAI import _logged  # noqa: E402

# ---- RNN cells: the module's init (empty, uniform_) and torch's composition of one step
CELLS = {
    "lstm_cell": lambda lib, a: lib.nn.LSTMCell(3, 2)(a["x"]),
    "lstm_cell_hx": lambda lib, a: lib.nn.LSTMCell(3, 3)(a["x"], (a["y"], a["y"] * 2)),
    "lstm_cell_without_bias": lambda lib, a: lib.nn.LSTMCell(3, 3, bias=False)(a["x"], (a["y"], a["y"])),
    "lstm_cell_unbatched": lambda lib, a: lib.nn.LSTMCell(3, 2)(a["x"][0]),
    "gru_cell": lambda lib, a: lib.nn.GRUCell(3, 2)(a["x"]),
    "gru_cell_hx": lambda lib, a: lib.nn.GRUCell(3, 3)(a["x"], a["y"]),
    "gru_cell_unbatched": lambda lib, a: lib.nn.GRUCell(3, 2, bias=False)(a["x"][1]),
    "rnn_cell": lambda lib, a: lib.nn.RNNCell(3, 2)(a["x"]),
    "rnn_cell_relu_unbatched": lambda lib, a: lib.nn.RNNCell(3, 2, nonlinearity="relu")(a["x"][0]),
    "rnn_cell_hx": lambda lib, a: lib.nn.RNNCell(3, 3)(a["x"], a["y"]),
    "lstm_cell_no_grad": lambda lib, a: _without_grad(lib, lambda: lib.nn.LSTMCell(3, 2)(a["x"])),
    "gru_cell_no_grad": lambda lib, a: _without_grad(lib, lambda: lib.nn.GRUCell(3, 2)(a["x"])),
}


def _without_grad(lib, program):
    with lib.no_grad():
        return program()


@pytest.mark.parametrize("name", sorted(CELLS))
def test_a_mode_sees_an_rnn_cell_as_torch_composes_it(name):
    assert _logged(chainrule, CELLS[name]) == _logged(real_torch, CELLS[name])


def _stepped(lib, cell, mode, batched, with_state):
    lib.manual_seed(0)
    module = {"lstm": lib.nn.LSTMCell, "gru": lib.nn.GRUCell, "rnn": lib.nn.RNNCell}[cell](3, 4)
    rng = np.random.default_rng(1)
    x = lib.tensor(rng.standard_normal((5, 3) if batched else (3,)), dtype=lib.float32, requires_grad=True)
    shape = (5, 4) if batched else (4,)
    h = lib.tensor(rng.standard_normal(shape), dtype=lib.float32, requires_grad=True)
    c = lib.tensor(rng.standard_normal(shape), dtype=lib.float32, requires_grad=True)
    state = None if not with_state else (h, c) if cell == "lstm" else h
    with mode:
        out = module(x, state)
        out = out[0] * out[1] if cell == "lstm" else out
    (out.pow(2) + out).sum().backward()
    grads = [x.grad] + ([h.grad] if with_state else []) + ([c.grad] if with_state and cell == "lstm" else [])
    return [out.detach().numpy()] + [g.numpy() for g in grads] + [p.grad.numpy() for p in module.parameters()]


@pytest.mark.parametrize("with_state", [False, True], ids=["zeros", "state"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_an_rnn_cell_under_a_passing_mode_keeps_values_and_gradients(cell, batched, with_state):
    ours = _stepped(chainrule, cell, _Pass(), batched, with_state)
    plain = _stepped(chainrule, cell, contextlib.nullcontext(), batched, with_state)
    theirs = _stepped(real_torch, cell, contextlib.nullcontext(), batched, with_state)
    assert len(ours) == len(plain) == len(theirs)
    for got, without, expected in zip(ours, plain, theirs):
        # (the composed cell rounds as torch's CPU composition, the fused one in its own order)
        np.testing.assert_allclose(got, without, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_an_lstm_cell_under_a_mode_records_torchs_graph_and_gradchecks():
    rng = np.random.default_rng(2)
    cell = chainrule.nn.LSTMCell(2, 3).double()
    x = chainrule.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    h = chainrule.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    c = chainrule.tensor(rng.standard_normal((2, 3)), requires_grad=True)

    def step(x, h, c):
        with _Pass():
            out = cell(x, (h, c))
        return out[0] + out[1].sin()

    assert chainrule.autograd.gradcheck(step, (x, h, c))
    with _Pass():
        hy, cy = cell(x, (h, c))
    t_cell = real_torch.nn.LSTMCell(2, 3).double()
    t_hy, t_cy = t_cell(real_torch.tensor(x.detach().numpy()), (real_torch.tensor(h.detach().numpy()),
                                                               real_torch.tensor(c.detach().numpy())))
    assert (hy.grad_fn.name(), cy.grad_fn.name()) == (t_hy.grad_fn.name(), t_cy.grad_fn.name())


# ---- autograd's saved tensors: a kept result is torch's detach after the op, an overwritten input its
# clone before the in-place op; neither where nothing is recorded
def _unary(name):
    def program(lib, a):
        w = a["x"].abs().requires_grad_() * 1
        getattr(w, name)()
    return program


SAVED = {name + suffix: _unary(name + suffix)
         for name in ("tanh", "sigmoid", "relu", "exp", "exp2", "expm1", "sqrt", "rsqrt", "reciprocal", "tan",
                      "sin", "sinh", "abs", "log", "erf", "atan", "neg")
         for suffix in ("", "_")}
SAVED.update({
    "softmax_log_softmax": lambda lib, a: [lib.nn.functional.softmax(a["x"].requires_grad_(), 1),
                                           lib.nn.functional.log_softmax(a["x"], 1)],
    "cumprod_norm": lambda lib, a: [a["x"].requires_grad_().cumprod(0), a["x"].norm()],
    "mul__by_a_tensor_needing_a_gradient": lambda lib, a: (a["x"] * 1).mul_(a["y"].requires_grad_()),
    "mul__of_a_tensor_needing_a_gradient": lambda lib, a: (a["x"].requires_grad_() * 1).mul_(a["y"]),
    "mul__by_a_number": lambda lib, a: (a["x"].requires_grad_() * 1).mul_(2),
    "not_recorded": lambda lib, a: [a["x"].tanh(), a["x"].sigmoid_(), a["y"].sin_()],
    "under_no_grad": lambda lib, a: _without_grad(lib, lambda: [(a["x"].requires_grad_() * 1).exp_(),
                                                                a["x"].relu(), (a["x"] * 1).sin_()]),
    "mlp": lambda lib, a: lib.nn.functional.cross_entropy(lib.nn.functional.linear(a["x"], a["lw"].requires_grad_())
                                                          .relu(), a["tgt"]),
})


@pytest.mark.parametrize("name", sorted(SAVED))
def test_a_mode_sees_what_autograd_saves_as_torch_shows_it(name):
    assert _logged(chainrule, SAVED[name]) == _logged(real_torch, SAVED[name])


def _two_modes_logged(lib, program):
    lines = []
    base = real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch \
        else _python_dispatch.TorchDispatchMode

    def logging(tag):
        class Log(base):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                lines.append(f"{tag} {func}")
                return func(*args, **(kwargs or {}))
        return Log()

    x = lib.ones(2, 3, requires_grad=True)
    with logging("outer"), logging("inner"):
        y = program(x)
    y.sum().backward()
    return lines, x.grad.numpy()


@pytest.mark.parametrize("program", [lambda x: x.tanh(), lambda x: (x * 1).sigmoid_(), lambda x: (x * 1).sin_()],
                         ids=["tanh", "sigmoid_", "sin_"])
def test_each_of_two_modes_sees_autograds_saving_once(program):
    (lines, grad), (t_lines, t_grad) = _two_modes_logged(chainrule, program), _two_modes_logged(real_torch, program)
    assert lines == t_lines
    np.testing.assert_allclose(grad, t_grad, rtol=1e-6)


# ---- unsafe_split / unsafe_chunk: torch's one aten.unsafe_split.Tensor, dim left out at 0
SPLITS = {
    "unsafe_chunk": lambda lib, a: a["x"].unsafe_chunk(3, 1),
    "unsafe_chunk_uneven": lambda lib, a: lib.unsafe_chunk(a["x3"], 3, -1),
    "unsafe_chunk_dim_0": lambda lib, a: a["x3"].unsafe_chunk(2),
    "unsafe_split": lambda lib, a: lib.unsafe_split(a["x3"], 2, 1),
    "unsafe_split_dim_0": lambda lib, a: a["x"].unsafe_split(1),
    "unsafe_split_recorded": lambda lib, a: [piece.sigmoid_() for piece in
                                             (a["x"].requires_grad_() * 1).unsafe_split(2, 1)],
}


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_a_mode_sees_unsafe_split_as_torch_shows_it(name):
    assert _logged(chainrule, SPLITS[name]) == _logged(real_torch, SPLITS[name])


def test_unsafe_chunk_under_a_mode_keeps_its_pieces_and_gradient():
    def run(lib, mode):
        x = lib.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
        with mode:
            pieces = x.unsafe_chunk(3, 1)
        sum((piece * (i + 1)).pow(2).sum() for i, piece in enumerate(pieces)).backward()
        return [piece.detach().numpy() for piece in pieces], x.grad.numpy(), pieces[0].grad_fn.name()

    ours, plain, theirs = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext()), \
        run(real_torch, contextlib.nullcontext())
    assert ours[2] == plain[2] == theirs[2]
    for got, without, expected in zip(ours[0] + [ours[1]], plain[0] + [plain[1]], theirs[0] + [theirs[1]]):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_array_equal(got, expected)


# ---- nn.init.uniform_ / normal_: torch's tensor.uniform_(a, b) / normal_(mean, std), the same draws
INITS = {
    "uniform_default": lambda lib, a: lib.nn.init.uniform_(a["x"]),
    "uniform": lambda lib, a: lib.nn.init.uniform_(a["x"], -2, 3),
    "uniform_upper_default": lambda lib, a: lib.nn.init.uniform_(a["x"], 0.5),
    "normal_default": lambda lib, a: lib.nn.init.normal_(a["x"]),
    "normal": lambda lib, a: lib.nn.init.normal_(a["x"], 1, 2.5),
    "kaiming_uniform": lambda lib, a: lib.nn.init.kaiming_uniform_(a["lw"], a=5 ** 0.5),
    "xavier_normal": lambda lib, a: lib.nn.init.xavier_normal_(a["x"]),
    "linear": lambda lib, a: lib.nn.Linear(3, 2),
    "embedding": lambda lib, a: lib.nn.Embedding(4, 2),
    "lstm": lambda lib, a: lib.nn.LSTM(2, 3),
    "gru_cell": lambda lib, a: lib.nn.GRUCell(2, 3, bias=False),
}


@pytest.mark.parametrize("name", sorted(INITS))
def test_a_mode_sees_an_init_as_torch_shows_it(name):
    assert _logged(chainrule, INITS[name]) == _logged(real_torch, INITS[name])


@pytest.mark.parametrize("init", ["uniform_", "normal_"])
def test_an_init_under_a_passing_mode_draws_what_it_draws_without_one(init):
    def run(lib, mode):
        lib.manual_seed(3)
        weight = lib.nn.Parameter(lib.empty(4, 5))
        with mode:
            out = getattr(lib.nn.init, init)(weight, -0.5, 2.0)
        assert out is weight and weight.requires_grad
        return weight.detach().numpy().copy(), weight._version

    ours, plain = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext())
    theirs = run(real_torch, contextlib.nullcontext())
    np.testing.assert_array_equal(ours[0], plain[0])
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6)
    assert ours[1] == plain[1]


def test_a_handler_that_changes_uniform_s_bounds_gets_what_it_asked_for():
    def run(lib):
        class Edit(real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch
                   else _python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if str(func) == "aten.uniform_.default":
                    args = (args[0], 5.0, 5.0)
                return func(*args, **(kwargs or {}))

        with Edit():
            module = lib.nn.RNNCell(2, 3)
        return [p.detach().numpy() for p in module.parameters()]

    for ours, theirs in zip(run(chainrule), run(real_torch)):
        np.testing.assert_array_equal(ours, theirs)
        assert (ours == 5.0).all()


# ---- instance norm (F and modules): at::instance_norm's repeat of the parameters and statistics, view to
# (1, N·C, *), batch norm's reserve and native_batch_norm, the statistics' means copied back through an alias
INSTANCE_NORM = {
    "functional": lambda lib, a: lib.nn.functional.instance_norm(a["img"]),
    "functional_affine": lambda lib, a: lib.nn.functional.instance_norm(a["x3"], weight=a["bias"], bias=a["bias"]),
    "functional_statistics": lambda lib, a: lib.nn.functional.instance_norm(a["x3"], lib.zeros(3), lib.ones(3)),
    "functional_eval": lambda lib, a: lib.nn.functional.instance_norm(a["x3"], lib.zeros(3), lib.ones(3),
                                                                      use_input_stats=False, eps=1e-3),
    "functional_transposed": lambda lib, a: lib.nn.functional.instance_norm(a["x3"].transpose(1, 2)),
    "module": lambda lib, a: lib.nn.InstanceNorm2d(2)(a["img"]),
    "module_affine": lambda lib, a: lib.nn.InstanceNorm1d(3, affine=True)(a["x3"]),
    "module_tracking": lambda lib, a: lib.nn.InstanceNorm1d(3, affine=True, track_running_stats=True)(a["x3"]),
    "module_tracking_eval": lambda lib, a: lib.nn.InstanceNorm1d(3, track_running_stats=True).eval()(a["x3"]),
    "module_unbatched": lambda lib, a: lib.nn.InstanceNorm1d(3)(a["x3"][0]),
}


@pytest.mark.parametrize("name", sorted(INSTANCE_NORM))
def test_a_mode_sees_instance_norm_as_torch_composes_it(name):
    assert _logged(chainrule, INSTANCE_NORM[name]) == _logged(real_torch, INSTANCE_NORM[name])


def _instance_normed(lib, train, tracking, mode):
    lib.manual_seed(0)
    module = lib.nn.InstanceNorm2d(3, affine=True, track_running_stats=tracking, momentum=0.3)
    module.train(train)
    with lib.no_grad():
        module.weight.copy_(lib.tensor([0.5, 1.5, -1.0]))
        module.bias.copy_(lib.tensor([0.1, -0.2, 0.3]))
        if tracking:
            module.running_mean.copy_(lib.tensor([0.2, 0.0, -0.1]))
            module.running_var.copy_(lib.tensor([1.5, 0.5, 2.0]))
    x = lib.tensor(np.random.default_rng(8).standard_normal((2, 3, 4, 5)), dtype=lib.float32, requires_grad=True)
    with mode:
        out = module(x) * module(x.transpose(2, 3).contiguous().transpose(2, 3) * 2 + 1)
    out.pow(2).sum().backward()
    found = [out.detach().numpy(), x.grad.numpy(), module.weight.grad.numpy(), module.bias.grad.numpy()]
    return found + ([module.running_mean.numpy(), module.running_var.numpy()] if tracking else [])


@pytest.mark.parametrize("train,tracking", [(True, False), (True, True), (False, True)])
def test_instance_norm_under_a_passing_mode_keeps_values_gradients_and_statistics(train, tracking):
    ours = _instance_normed(chainrule, train, tracking, _Pass())
    plain = _instance_normed(chainrule, train, tracking, contextlib.nullcontext())
    theirs = _instance_normed(real_torch, train, tracking, contextlib.nullcontext())
    for got, without, expected in zip(ours, plain, theirs):
        np.testing.assert_allclose(got, without, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_instance_norm_under_a_mode_gradchecks():
    rng = np.random.default_rng(9)
    x = chainrule.tensor(rng.standard_normal((2, 3, 5)), requires_grad=True)
    weight = chainrule.tensor(rng.standard_normal(3), requires_grad=True)
    bias = chainrule.tensor(rng.standard_normal(3), requires_grad=True)

    def normed(x, weight, bias):
        with _Pass():
            return chainrule.nn.functional.instance_norm(x, weight=weight, bias=bias)

    assert chainrule.autograd.gradcheck(normed, (x, weight, bias))


# ---- circular F.pad: ATen's _pad_circular, new_empty, the core's slices and copy_, then each border's
CIRCULAR = {
    "2d": lambda lib, a: lib.nn.functional.pad(a["img"], (1, 1, 1, 1), mode="circular"),
    "2d_cropping": lambda lib, a: lib.nn.functional.pad(a["img"], (2, -1, 0, 3), mode="circular"),
    "1d": lambda lib, a: lib.nn.functional.pad(a["x3"], (1, 2), mode="circular"),
    "1d_unbatched": lambda lib, a: lib.nn.functional.pad(a["x"], (3, 0), mode="circular"),
    "3d": lambda lib, a: lib.nn.functional.pad(a["img"].unsqueeze(0), (1, 0, 0, 1, 1, 1), mode="circular"),
    "recorded": lambda lib, a: lib.nn.functional.pad(a["x3"].requires_grad_(), (1, 2), mode="circular"),
    "module": lambda lib, a: lib.nn.CircularPad2d((0, 1, 2, 0))(a["img"]),
}


@pytest.mark.parametrize("name", sorted(CIRCULAR))
def test_a_mode_sees_circular_padding_as_torch_composes_it(name):
    assert _logged(chainrule, CIRCULAR[name]) == _logged(real_torch, CIRCULAR[name])


@pytest.mark.parametrize("shape,pad", [((3, 4, 5), (1, 2)), ((2, 3, 4, 5), (2, -1, 0, 3)),
                                       ((1, 2, 3, 4, 5), (1, 0, 0, 1, 1, 1)), ((3, 4, 5), (0, 0, 3, 3))])
def test_circular_padding_under_a_passing_mode_keeps_values_and_gradients(shape, pad):
    def run(lib, mode):
        x = lib.tensor(np.random.default_rng(10).standard_normal(shape), dtype=lib.float32, requires_grad=True)
        with mode:
            out = lib.nn.functional.pad(x, pad, mode="circular")
        (out.pow(2) * lib.arange(out.shape[-1], dtype=lib.float32)).sum().backward()
        return out.detach().numpy(), x.grad.numpy()

    ours, plain = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext())
    theirs = run(real_torch, contextlib.nullcontext())
    for got, without, expected in zip(ours, plain, theirs):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_circular_padding_under_a_mode_gradchecks():
    x = chainrule.tensor(np.random.default_rng(11).standard_normal((1, 2, 3, 4)), requires_grad=True)

    def padded(x):
        with _Pass():
            return chainrule.nn.functional.pad(x, (2, 1, -1, 2), mode="circular")

    assert chainrule.autograd.gradcheck(padded, (x,))
