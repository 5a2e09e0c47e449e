"""Lane mendBB (session 47): gradients of gradients through a ``__torch_dispatch__`` wrapper subclass
(create_graph=True), compared with torch's."""
import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

from ._dispatch_checks import logging_tensor  # noqa: E402


def _classes(lib):
    """torch's test wrappers, written against ``lib``: a LoggingTensor (one inner tensor, each op
    logged) and a TwoTensor (two inner tensors, each op run on both)."""
    tree_map = lib.utils._pytree.tree_map
    LoggingTensor, log = logging_tensor(lib)

    class TwoTensor(lib.Tensor):
        @staticmethod
        def __new__(cls, a, b):
            made = lib.Tensor._make_wrapper_subclass(cls, a.shape, strides=a.stride(), dtype=a.dtype,
                                                     device=a.device, requires_grad=a.requires_grad)
            made.a, made.b = a, b
            return made

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out_a = func(*tree_map(lambda t: t.a if isinstance(t, TwoTensor) else t, args), **kwargs)
            out_b = func(*tree_map(lambda t: t.b if isinstance(t, TwoTensor) else t, args), **kwargs)
            if isinstance(out_a, lib.Tensor):
                return TwoTensor(out_a, out_b)
            if isinstance(out_a, (tuple, list)):
                return type(out_a)(TwoTensor(x, y) if isinstance(x, lib.Tensor) else x for x, y in zip(out_a, out_b))
            return out_a

    return LoggingTensor, TwoTensor, log


_CLASSES = {lib: _classes(lib) for lib in (real_torch, chainrule)}


def _wrap(lib, kind, array):
    logging_tensor, two_tensor, _ = _CLASSES[lib]
    t = lib.tensor(array)
    return logging_tensor(t) if kind == "logging" else two_tensor(t, t * 2)


def _inner(kind, t):
    """What a wrapper holds, as NumPy arrays (TwoTensor: both of its tensors)."""
    parts = (t.elem,) if kind == "logging" else (t.a, t.b)
    return [np.asarray(p.detach().tolist()) for p in parts]


_FUNCTIONS = {
    "tanh": lambda lib, x, w: x.tanh().sum(),
    "exp": lambda lib, x, w: (x * w).exp().sum(),
    "mul": lambda lib, x, w: (x * x * w).sum(),
    "matmul": lambda lib, x, w: (x @ w.t()).pow(2).sum(),
    "sum": lambda lib, x, w: x.sum() ** 3 + (w * x).sum(),
    "sigmoid": lambda lib, x, w: x.sigmoid().pow(2).sum(),
    "relu": lambda lib, x, w: (lib.nn.functional.linear(x, w).relu() ** 2).mean(),
    "softmax": lambda lib, x, w: (lib.softmax(x, -1) ** 2).sum(),
    "div_sqrt": lambda lib, x, w: (x / (x * x + 1).sqrt()).sum(),
    "layer_norm": lambda lib, x, w: (lib.nn.functional.layer_norm(x, (3,)) * x).sum(),
    "cross_entropy": lambda lib, x, w: lib.nn.functional.cross_entropy(x @ w.t(), lib.tensor([0, 1, 1, 0])),
}


def _second_order(lib, kind, name, wrap_weight):
    rng = np.random.default_rng(5)
    x = _wrap(lib, kind, rng.standard_normal((4, 3))).requires_grad_()
    w_values = rng.standard_normal((4, 3) if name in ("exp", "mul", "sum") else (2, 3))
    w = (_wrap(lib, kind, w_values) if wrap_weight else lib.tensor(w_values)).requires_grad_()
    gx, gw = lib.autograd.grad(_FUNCTIONS[name](lib, x, w) + (w ** 3).sum(), (x, w), create_graph=True)
    hx, hw = lib.autograd.grad((gx * gx).sum() + (gw * gw).sum(), (x, w))
    return gx, gw, hx, hw


@pytest.mark.parametrize("wrap_weight", [False, True])
@pytest.mark.parametrize("name", sorted(_FUNCTIONS))
@pytest.mark.parametrize("kind", ["logging", "two"])
def test_second_order_gradient_through_wrapper_subclass_is_torchs(kind, name, wrap_weight):
    # chainrule raised "element 0 of tensors does not require grad and does not have a grad_fn": the
    # backward over wrappers ran as one handler op with nothing recorded, even under create_graph
    ours = _second_order(chainrule, kind, name, wrap_weight)
    theirs = _second_order(real_torch, kind, name, wrap_weight)
    for mine, expected in zip(ours, theirs):
        assert type(mine).__name__ == type(expected).__name__
        if type(expected).__name__ != "Tensor":
            for a, b in zip(_inner(kind, mine), _inner(kind, expected)):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        else:
            np.testing.assert_allclose(np.asarray(mine.detach().tolist()), np.asarray(expected.detach().tolist()),
                                       rtol=1e-10, atol=1e-12)
    assert ours[0].requires_grad and ours[0].grad_fn is not None


def _third_order(lib, kind):
    x = _wrap(lib, kind, np.random.default_rng(6).standard_normal((2, 3))).requires_grad_()
    g1, = lib.autograd.grad((x.sin() * x).sum(), x, create_graph=True)
    g2, = lib.autograd.grad(g1.sum(), x, create_graph=True)
    g3, = lib.autograd.grad((g2 * g2).sum(), x)
    return g1, g2, g3


@pytest.mark.parametrize("kind", ["logging", "two"])
def test_third_order_gradient_through_wrapper_subclass_is_torchs(kind):
    for mine, expected in zip(_third_order(chainrule, kind), _third_order(real_torch, kind)):
        for a, b in zip(_inner(kind, mine), _inner(kind, expected)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_first_order_backward_over_wrappers_still_one_handler_op_per_node():
    # without create_graph nothing is recorded: each node's backward still reaches the handler as one op
    logging_tensor, _, log = _CLASSES[chainrule]
    x = logging_tensor(chainrule.tensor([0.5, -1.0, 2.0])).requires_grad_()
    y = x.tanh().sum()
    log.clear()
    g, = chainrule.autograd.grad(y, x)
    assert "aten.tanh_backward.default" in log
    assert g.grad_fn is None and not g.requires_grad
    np.testing.assert_allclose(g.elem.numpy(), 1 - np.tanh([0.5, -1.0, 2.0]) ** 2, rtol=1e-6)


_FIRST_ORDER = {
    "layer_norm": lambda lib, x, w: (lib.nn.functional.layer_norm(x, (3,)) * x).sum(),
    "layer_norm_affine": lambda lib, x, w: (lib.nn.functional.layer_norm(x, (3,), w[0], w[1]) ** 2).sum(),
    "log_softmax": lambda lib, x, w: lib.nn.functional.log_softmax(x, -1)[:, 0].sum(),
    "cross_entropy": lambda lib, x, w: lib.nn.functional.cross_entropy(x, lib.tensor([0, 1, 2, 0])),
    "batch_norm": lambda lib, x, w: (lib.nn.functional.batch_norm(x, None, None, training=True) * x).sum(),
    "gelu": lambda lib, x, w: (lib.nn.functional.gelu(x) ** 2).sum(),
    "silu": lambda lib, x, w: (lib.nn.functional.silu(x) ** 2).sum(),
    "instance_norm": lambda lib, x, w: (lib.nn.functional.instance_norm(x.reshape(2, 2, 3)) * x.reshape(2, 2, 3)).sum(),
}


def _first_order(lib, kind, name):
    rng = np.random.default_rng(7)
    x = _wrap(lib, kind, rng.standard_normal((4, 3))).requires_grad_()
    w = lib.tensor(rng.standard_normal((2, 3))).requires_grad_()
    return lib.autograd.grad(_FIRST_ORDER[name](lib, x, w), x)[0]


@pytest.mark.parametrize("name", sorted(_FIRST_ORDER))
@pytest.mark.parametrize("kind", ["logging", "two"])
def test_gradient_of_op_keeping_forward_statistics_over_wrapper_is_torchs(kind, name):
    # the node was recorded by running the forward on the wrapper's placeholder (zeros): the x-hat,
    # 1/sigma and softmax it kept were the placeholder's, and the gradient was wrong (layer_norm's by 140x)
    for a, b in zip(_inner(kind, _first_order(chainrule, kind, name)), _inner(kind, _first_order(real_torch, kind, name))):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
