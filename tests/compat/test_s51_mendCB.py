"""s51 mendCB: what a TorchDispatchMode sees during ``.backward()``, continued from mendBV. Each node torch runs as
one aten backward op reaches the mode as that op with torch's arguments (``threshold_backward``,
``_softmax_backward_data``, ``native_layer_norm_backward``, ``embedding_dense_backward``, ``nll_loss_backward``,
``convolution_backward``, ``gelu_backward``, ``mse_loss_backward``, ...), after the ``aten.detach`` of a saved result
torch's unpack shows; a mean's gradient divides by its count as ``div.Scalar``; a one-dim reduction's gradient
unsqueezes at the dim as given. Each logged sequence is recorded live from torch."""

import contextlib

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from chainrule.utils import _python_dispatch  # noqa: E402
from tests.compat._dispatch_checks import PassingMode as _Pass  # noqa: E402
from tests.compat._dispatch_checks import assert_a_passing_mode_keeps  # noqa: E402
from tests.compat.test_s45_mendAI import _logged  # noqa: E402


def _backward(program):
    def run(lib, a):
        out = program(lib, a)
        (out.sum() if out.dim() else out).backward()
    return run


def _F(lib):
    return lib.nn.functional


def _x(a):
    return a["x"].requires_grad_()


def _layer(lib, make):
    lib.manual_seed(0)
    return make(lib.nn)


PROGRAMS = {
    # one aten op per node, with torch's arguments
    "relu": lambda lib, a: lib.relu(_x(a)),
    "tanh": lambda lib, a: _x(a).tanh(),
    "sigmoid": lambda lib, a: _x(a).sigmoid(),
    "exp": lambda lib, a: _x(a).exp(),
    "softmax": lambda lib, a: lib.softmax(_x(a), 1) * a["y"],
    "softmax_negative_dim": lambda lib, a: _x(a).softmax(-1) * a["y"],
    "log_softmax": lambda lib, a: _x(a).log_softmax(-1) * a["y"],
    "gelu": lambda lib, a: _F(lib).gelu(_x(a)),
    "gelu_tanh": lambda lib, a: _F(lib).gelu(_x(a), approximate="tanh"),
    "silu": lambda lib, a: _F(lib).silu(_x(a)),
    "softplus": lambda lib, a: _F(lib).softplus(_x(a), 2.0),
    "layer_norm": lambda lib, a: _layer(lib, lambda nn: nn.LayerNorm(3))(_x(a)),
    "layer_norm_plain": lambda lib, a: _F(lib).layer_norm(a["x3"].requires_grad_(), (3, 4)),
    "embedding": lambda lib, a: _layer(lib, lambda nn: nn.Embedding(10, 3))(lib.tensor([1, 2, 1])),
    "embedding_padding": lambda lib, a: _F(lib).embedding(lib.tensor([[1, 2], [0, 1]]), a["emb"].requires_grad_(),
                                                        padding_idx=1),
    "cross_entropy": lambda lib, a: _F(lib).cross_entropy(_x(a), a["tgt"]),
    "cross_entropy_sum": lambda lib, a: _F(lib).cross_entropy(_x(a), a["tgt"], reduction="sum"),
    "nll_weighted": lambda lib, a: _F(lib).nll_loss(_x(a), a["tgt"], weight=lib.ones(3, dtype=lib.float32), ignore_index=2),
    "mse": lambda lib, a: _F(lib).mse_loss(_x(a), a["y"]),
    "mse_none": lambda lib, a: _F(lib).mse_loss(_x(a), a["y"], reduction="none"),
    "conv": lambda lib, a: _layer(lib, lambda nn: nn.Conv2d(2, 3, 3))(a["img"].requires_grad_()),
    "conv_padded_strided": lambda lib, a: _F(lib).conv2d(a["img"].requires_grad_(), a["w"].requires_grad_(),
                                                         stride=2, padding=1),
    "conv_weight_only": lambda lib, a: _F(lib).conv2d(a["img"], a["w"].requires_grad_(), a["bias"]),
    "max_pool": lambda lib, a: _F(lib).max_pool2d(a["img"].requires_grad_(), 2),
    # a linear's AddmmBackward0 / MmBackward0 as torch's t and mm, the bias summed over the rows, the weight's t;
    # AccumulateGrad stealing the gradients (detach) as torch's
    "linear": lambda lib, a: _layer(lib, lambda nn: nn.Linear(3, 4))(_x(a)),
    "linear_no_bias": lambda lib, a: _layer(lib, lambda nn: nn.Linear(3, 4, bias=False))(_x(a)),
    "linear_3d": lambda lib, a: _F(lib).linear(a["x3"].requires_grad_(), a["m"].requires_grad_(), a["bias"]),
    "linear_input_only": lambda lib, a: _F(lib).linear(_x(a), a["lw"], a["lb"]),
    "linear_bias_only": lambda lib, a: _F(lib).linear(a["x"], a["lw"], a["lb"].requires_grad_()),
    "mlp": lambda lib, a: _F(lib).cross_entropy(_layer(lib, lambda nn: nn.Sequential(
        nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 3)))(a["x"]), a["tgt"]),
    "conv_net": lambda lib, a: _F(lib).cross_entropy(_layer(lib, lambda nn: nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(75, 3)))(a["img"].requires_grad_()),
        lib.tensor([1])),
    # a 2-d matmul's MmBackward0, t's and unsqueeze's backward as torch's t, squeeze
    "matmul_2d": lambda lib, a: _x(a) @ a["m"].requires_grad_(),
    "matmul_2d_input_only": lambda lib, a: lib.matmul(_x(a), a["m"]),
    "t_backward": lambda lib, a: _x(a).t() * a["y"].t(),
    "unsqueeze_backward": lambda lib, a: _x(a).unsqueeze(-1) * a["x3"][..., :1],
    # mean's count as a Scalar; one reduced dim unsqueezed as given
    "mean": lambda lib, a: _x(a).mean(),
    "mean_dim": lambda lib, a: a["x3"].requires_grad_().mean(1),
    "mean_negative_dim": lambda lib, a: _x(a).mean(-1),
    "sum_negative_dim": lambda lib, a: _x(a).sum(-1),
    "sum_two_dims": lambda lib, a: a["x3"].requires_grad_().sum((-1, 0)),
    # chains: each node's op in the engine's order
    "relu_chain": lambda lib, a: (lib.relu(_x(a)) * 2).tanh().sigmoid(),
    "layer_norm_gelu": lambda lib, a: _F(lib).gelu(_F(lib).layer_norm(_x(a), (3,))).softmax(-1) * a["y"],
    "conv_relu_pool": lambda lib, a: _F(lib).max_pool2d(lib.relu(_F(lib).conv2d(
        a["img"].requires_grad_(), a["w"], padding=1)), 2).mean(),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_mode_sees_torchs_backward_ops(name):
    program = _backward(PROGRAMS[name])
    assert _logged(chainrule, program) == _logged(real_torch, program)


def _gradients(lib, mode, program, dtype, seed: int = 5):
    """program's inputs' gradients (forward and backward run inside ``mode``), as arrays."""
    rng = np.random.default_rng(seed)
    x = lib.tensor(rng.standard_normal((2, 3, 6, 6)), dtype=dtype, requires_grad=True)
    w = lib.tensor(rng.standard_normal((4, 3, 3, 3)) * 0.3, dtype=dtype, requires_grad=True)
    e = lib.tensor(rng.standard_normal((7, 6)), dtype=dtype, requires_grad=True)
    with mode:
        out = program(lib, x, w, e)
        out.backward()
    return [t.grad.numpy().copy() for t in (x, w, e) if t.grad is not None]


def _transformer_block(lib, x, w, e):
    F = lib.nn.functional
    h = F.embedding(lib.tensor([[1, 2, 3], [4, 5, 6]]), e)  # (2, 3, 6)
    h = F.layer_norm(h, (6,))
    attention = (h @ h.transpose(-2, -1) / 2.0).softmax(-1)
    h = h + F.gelu(attention @ h)
    return h.log_softmax(-1).mean() + F.mse_loss(h, h.detach() * 0.5)


GRADIENT_PROGRAMS = {
    "conv_net": lambda lib, x, w, e: lib.nn.functional.cross_entropy(
        lib.nn.functional.max_pool2d(lib.relu(lib.nn.functional.conv2d(x, w, padding=1)), 2).flatten(1)[:, :5],
        lib.tensor([1, 3])),
    "activations": lambda lib, x, w, e: (lib.nn.functional.silu(x).tanh().sigmoid() + lib.nn.functional.elu(x)
                                         + lib.nn.functional.leaky_relu(x) + lib.nn.functional.softplus(x)
                                         + lib.nn.functional.logsigmoid(x) + lib.nn.functional.hardtanh(x)).mean(),
    "transformer_block": _transformer_block,
    "mlp": lambda lib, x, w, e: lib.nn.functional.linear(lib.nn.functional.gelu(lib.nn.functional.linear(
        e, w.reshape(4, 27)[:, :6].contiguous(), w.reshape(-1)[:4])), w.reshape(27, 4)[:3]).pow(2).mean(),
    "linear_batch": lambda lib, x, w, e: (lib.nn.functional.linear(x.flatten(2), e[:, :6].t() @ e[:, :6].repeat(1, 6),
                                                                   e[0]) * x.flatten(2)[..., :6]).mean(),
    "nll_weighted": lambda lib, x, w, e: lib.nn.functional.nll_loss(
        e.log_softmax(1), lib.tensor([0, 5, 2, 2, 1, 0, 3]), weight=lib.arange(1.0, 7.0, dtype=e.dtype), ignore_index=2),
}


@pytest.mark.parametrize("name", sorted(GRADIENT_PROGRAMS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_under_a_passing_mode_the_backward_gives_the_same_bits(name, dtype):
    program = GRADIENT_PROGRAMS[name]
    ours = _gradients(chainrule, _Pass(), program, getattr(chainrule, dtype))
    plain = _gradients(chainrule, contextlib.nullcontext(), program, getattr(chainrule, dtype))
    theirs = _gradients(real_torch, contextlib.nullcontext(), program, getattr(real_torch, dtype))
    assert len(ours) == len(plain) == len(theirs)
    for got, without, expected in zip(ours, plain, theirs):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_allclose(got, expected, rtol=1e-4 if dtype == "float32" else 1e-10, atol=1e-6)


def _editing(lib, op: str, edit, seen: list):
    base = real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch else _python_dispatch.TorchDispatchMode

    class Edit(base):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if str(func) == op:
                seen.append(op)
                args, kwargs = edit(lib, list(args), kwargs)
            return func(*args, **kwargs)

    return Edit()


def _scale(position, factor):
    def edit(lib, args, kwargs):
        args[position] = args[position] * factor
        return args, kwargs
    return edit


def _set(position, value):
    def edit(lib, args, kwargs):
        args[position] = value
        return args, kwargs
    return edit


EDITS = {
    "threshold": ("aten.threshold_backward.default", _set(2, 0.5), lambda lib, x, w, e: lib.relu(x).sum()),
    "tanh": ("aten.tanh_backward.default", _scale(0, 3), lambda lib, x, w, e: x.tanh().sum()),
    "sigmoid": ("aten.sigmoid_backward.default", _scale(1, 0.5), lambda lib, x, w, e: (x.sigmoid() * x).sum()),
    "softmax": ("aten._softmax_backward_data.default", _set(2, 2),
                lambda lib, x, w, e: (x.softmax(-1) * x.detach()).sum()),
    "log_softmax": ("aten._log_softmax_backward_data.default", _scale(0, -1),
                    lambda lib, x, w, e: (x.log_softmax(1) * x.detach()).sum()),
    "gelu": ("aten.gelu_backward.default", lambda lib, args, kwargs: (args, {"approximate": "tanh"}),
             lambda lib, x, w, e: lib.nn.functional.gelu(x).sum()),
    "silu": ("aten.silu_backward.default", _scale(1, 2), lambda lib, x, w, e: lib.nn.functional.silu(x).sum()),
    "layer_norm": ("aten.native_layer_norm_backward.default", _scale(0, 2),
                   lambda lib, x, w, e: (lib.nn.functional.layer_norm(e, (6,), w[0, 0, 0, :3].repeat(2), w[0, 0, 1, :3].repeat(2))
                                         * e.detach()).sum()),
    "embedding": ("aten.embedding_dense_backward.default", _set(3, 2),
                  lambda lib, x, w, e: lib.nn.functional.embedding(lib.tensor([[1, 2], [2, 6]]), e).sum()),
    "nll_loss": ("aten.nll_loss_backward.default", _set(4, 2),
                 lambda lib, x, w, e: lib.nn.functional.nll_loss(e, lib.tensor([0, 5, 2, 2, 1, 0, 3]))),
    "convolution": ("aten.convolution_backward.default", _scale(0, 2),
                    lambda lib, x, w, e: (lib.nn.functional.conv2d(x, w, padding=1) * 0.1).sum()),
    "mse_loss": ("aten.mse_loss_backward.default", _set(3, 2),
                 lambda lib, x, w, e: lib.nn.functional.mse_loss(x, x.detach() * 0.5)),
    "max_pool": ("aten.max_pool2d_with_indices_backward.default", _scale(0, 4),
                 lambda lib, x, w, e: lib.nn.functional.max_pool2d(x, 2).sum()),
    "leaky_relu": ("aten.leaky_relu_backward.default", _set(2, 0.5),
                   lambda lib, x, w, e: lib.nn.functional.leaky_relu(x).sum()),
    "elu": ("aten.elu_backward.default", _set(1, 2.0), lambda lib, x, w, e: lib.nn.functional.elu(x).sum()),
    "linear_bias": ("aten.sum.dim_IntList", _scale(0, 3), lambda lib, x, w, e: (lib.nn.functional.linear(
        e, w.reshape(4, 27)[:, :6].contiguous(), w.reshape(-1)[:4]) * e[:, :4].detach()).sum()),
    "linear_weight": ("aten.mm.default", _scale(0, -1), lambda lib, x, w, e: (lib.nn.functional.linear(
        e.detach(), w.reshape(4, 27)[:, :6].contiguous(), e[0, :4].detach()) * e[:, :4].detach()).sum()),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_handler_that_edits_a_backward_op_gets_what_it_asked_for(name):
    op, edit, program = EDITS[name]
    results = []
    for lib in (chainrule, real_torch):
        seen = []
        grads = _gradients(lib, _editing(lib, op, edit, seen), program, lib.float64)
        assert seen == [op]
        results.append(grads)
    ours, theirs = results
    plain = _gradients(chainrule, contextlib.nullcontext(), program, chainrule.float64)
    assert len(ours) == len(theirs)
    for got, expected in zip(ours, theirs):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert not all(np.allclose(got, without) for got, without in zip(ours, plain))  # (the edit changed a gradient)


def test_a_backward_op_reaches_every_mode_of_the_stack_once():
    def run(lib):
        logs = ([], [])
        base = real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch else \
            _python_dispatch.TorchDispatchMode

        class Log(base):
            def __init__(self, log):
                super().__init__()
                self.log = log

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                self.log.append(str(func))
                return func(*args, **(kwargs or {}))

        x = lib.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
        with Log(logs[0]), Log(logs[1]):
            lib.relu(x).softmax(-1).mul(x.detach()).sum().backward()
        return logs, x.grad.numpy()

    (ours, our_grad), (theirs, their_grad) = run(chainrule), run(real_torch)
    for our_log, their_log in zip(ours, theirs):  # (each mode: the backward ops, in torch's order)
        assert [op for op in our_log if "backward" in op] == [op for op in their_log if "backward" in op] == [
            "aten._softmax_backward_data.default", "aten.threshold_backward.default"]
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-12)


def test_a_backward_under_create_graph_keeps_its_rules_ops_and_second_order():
    def run(lib, mode):
        x = lib.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
        with mode:
            (g,) = lib.autograd.grad(lib.nn.functional.gelu(x).softmax(-1).mul(x).sum(), x, create_graph=True)
            (gg,) = lib.autograd.grad(g.sum(), x)
        return g.detach().numpy(), gg.numpy()

    for got, without, expected in zip(run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext()),
                                      run(real_torch, contextlib.nullcontext())):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_allclose(got, expected, rtol=1e-10)


VECTOR_MATRIX = {
    "vector_matrix": lambda lib, a: a["bias"] @ a["m"],
    "vector_matrix_recorded": lambda lib, a: a["bias"].requires_grad_() @ a["m"],
    "vector_matrix_function": lambda lib, a: lib.matmul(a["lb"], a["lw"]),
    "vector_matrix_backward": _backward(lambda lib, a: a["bias"].requires_grad_() @ a["m"].requires_grad_()),
}


@pytest.mark.parametrize("name", sorted(VECTOR_MATRIX))
def test_a_vector_matrix_product_ends_with_torchs_squeeze_(name):
    assert _logged(chainrule, VECTOR_MATRIX[name]) == _logged(real_torch, VECTOR_MATRIX[name])


def test_a_vector_matrix_product_under_a_passing_mode_keeps_its_value_and_gradient():
    assert_a_passing_mode_keeps(lambda lib, x: (x[0] @ lib.arange(12.0).reshape(4, 3) / 10).sin().sum(), (2, 4),
                                seed=3)


BATCH_OF_ONE = {
    # torch squeezes a batch of one under any mode; here where the bmm that follows is the same (not folded)
    "lhs_batch_of_one": lambda lib, a: a["b1"][:1] @ a["b2"][:, :3, :],
    "rhs_batch_of_one_transposed_lhs": lambda lib, a: a["b1"].transpose(1, 2) @ a["b2"][:1, :2, :],
    "lhs_batch_of_one_recorded_rhs": lambda lib, a: a["b1"][:1] @ a["b2"][:, :3, :].requires_grad_(),
}


@pytest.mark.parametrize("name", sorted(BATCH_OF_ONE))
def test_a_batch_of_one_is_squeezed_under_a_mode_as_torch(name):
    assert _logged(chainrule, BATCH_OF_ONE[name]) == _logged(real_torch, BATCH_OF_ONE[name])


@pytest.mark.parametrize("shapes", [((1, 3, 4), (5, 4, 2)), ((1, 30, 40), (8, 40, 50)), ((5, 3, 4), (1, 4, 2)),
                                    ((8, 30, 40), (1, 40, 50))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_batch_of_one_under_a_passing_mode_keeps_its_bits(shapes, dtype):
    def run(lib, mode):
        rng = np.random.default_rng(sum(shapes[0]) + 3 * sum(shapes[1]))
        a = lib.tensor(rng.standard_normal(shapes[0]), dtype=getattr(lib, dtype)).mT.contiguous().mT
        b = lib.tensor(rng.standard_normal(shapes[1]), dtype=getattr(lib, dtype), requires_grad=True)
        with mode:
            out = a @ b
            (out * out).sum().backward()
        return out.detach().numpy(), b.grad.numpy()

    ours, plain, theirs = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext()), run(
        real_torch, contextlib.nullcontext())
    for got, without, expected in zip(ours, plain, theirs):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_allclose(got, expected, rtol=1e-4 if dtype == "float32" else 1e-10, atol=1e-4)
