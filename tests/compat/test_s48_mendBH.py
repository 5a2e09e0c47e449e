"""Lane mendBH (session 48): first-order gradients through a ``__torch_dispatch__`` wrapper subclass
(a LoggingTensor: unwraps, runs the op, rewraps) are the plain tensors' and torch's: in-place methods
record their node on the wrapper and bump its version; ops whose rule reads what the forward found
(max-pool and sort indices, median/mode/kthvalue positions, shrink masks) take it from the op the
handler ran, not from the wrapper's placeholder."""
import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

from ._dispatch_checks import logging_tensor as _logging_tensor  # noqa: E402

_CLASSES = {lib: _logging_tensor(lib) for lib in (real_torch, chainrule)}


def _gradients(lib, fn, arrays, wrap: bool):
    """d/d(inputs) of sum(fn(*inputs) * fixed weights), as NumPy arrays; each input wrapped in the
    LoggingTensor when ``wrap`` (the gradient read from inside the wrapper)."""
    logging_tensor, _ = _CLASSES[lib]
    leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
    inputs = [logging_tensor(t) if wrap else t for t in leaves]
    out = fn(lib, *inputs)
    outs = [o for o in (out if isinstance(out, (tuple, list)) else (out,))
            if isinstance(o, lib.Tensor) and o.dtype.is_floating_point]
    total = 0
    for k, o in enumerate(outs):
        weight = lib.tensor(np.random.default_rng(k).standard_normal(tuple(o.shape)))
        total = total + (o * (logging_tensor(weight) if wrap else weight)).sum()
    grads = lib.autograd.grad(total, inputs)
    return [np.asarray(getattr(g, "elem", g).detach().tolist(), dtype=np.float64) for g in grads]


def _check(fn, arrays):
    plain = _gradients(chainrule, fn, arrays, wrap=False)
    wrapped = _gradients(chainrule, fn, arrays, wrap=True)
    torch_wrapped = _gradients(real_torch, fn, arrays, wrap=True)
    for p, w, t in zip(plain, wrapped, torch_wrapped):
        np.testing.assert_allclose(w, p, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(w, t, rtol=1e-6, atol=1e-9)


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _unit(*shape, seed=0):  # inside (-1, 1): acos, asin, atanh
    return np.random.default_rng(seed).uniform(-0.9, 0.9, shape)


def _positive(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


# ---- in-place methods: the node goes on the wrapper, as torch's autograd above the handler puts it
_INPLACE_UNARY = {
    "exp_": _randn, "neg_": _randn, "sin_": _randn, "cos_": _randn, "tanh_": _randn, "sigmoid_": _randn,
    "sqrt_": _positive, "rsqrt_": _positive, "log_": _positive, "log2_": _positive, "reciprocal_": _positive,
    "square_": _randn, "abs_": _randn, "cosh_": _randn, "sinh_": _randn, "acos_": _unit, "asin_": _unit,
    "atan_": _randn, "expm1_": _randn, "erf_": _randn, "relu_": _randn, "ceil_": _randn,
}


@pytest.mark.parametrize("method", sorted(_INPLACE_UNARY))
def test_an_inplace_unary_method_through_a_wrapper_gives_the_plain_gradient(method):
    _check(lambda lib, x: getattr(x * 1.5, method)() * x, [_INPLACE_UNARY[method](3, 4)])


_INPLACE_BINARY = {
    "add_": lambda lib, x, y: (x * 1.0).add_(y, alpha=2.0),
    "mul_": lambda lib, x, y: (x * 1.0).mul_(y),
    "mul_self": lambda lib, x, y: (x * y).mul_(x * 1.0),
    "div_": lambda lib, x, y: (x * 1.0).div_(y.exp()),
    "clamp_": lambda lib, x, y: (x * 1.0).clamp_(-0.5, 0.5) * y,
    "clamp_tensor_": lambda lib, x, y: (x * 1.0).clamp_(max=y),
    "lerp_": lambda lib, x, y: (x * 1.0).lerp_(y, 0.3),
    "xlogy_": lambda lib, x, y: (x * 1.0).xlogy_(y.exp()),
    "hypot_": lambda lib, x, y: (x * 1.0).hypot_(y),
    "copysign_": lambda lib, x, y: (x * 1.0).copysign_(y),
    "pow_": lambda lib, x, y: (x.exp() * 1.0).pow_(y),
    "fill_": lambda lib, x, y: (x * 1.0).fill_(2.0) * y,
    "fill_tensor_": lambda lib, x, y: (x * 1.0).fill_(y[0, 0] * 2.0) * x,
    "zero_": lambda lib, x, y: (x * 1.0).zero_() + x * y,
    "copy_": lambda lib, x, y: (x * 1.0).copy_(y * 3.0) * x,
    "fill_diagonal_": lambda lib, x, y: (x * 1.0).fill_diagonal_(3.0) * y,
}


@pytest.mark.parametrize("case", sorted(_INPLACE_BINARY))
def test_an_inplace_binary_method_through_a_wrapper_gives_the_plain_gradient(case):
    _check(_INPLACE_BINARY[case], [_randn(3, 4), _randn(3, 4, seed=1)])


def test_an_inplace_method_on_a_wrapper_bumps_its_version_and_takes_the_node():
    logging_tensor, _ = _CLASSES[chainrule]
    for lib in (real_torch, chainrule):
        logging_tensor, _ = _CLASSES[lib]
        y = logging_tensor(lib.tensor(_randn(3), requires_grad=True)) * 2.0
        before = y._version
        y.exp_()
        assert (y._version - before, type(y.grad_fn).__name__) == (1, "ExpBackward0"), lib.__name__


def test_an_inplace_method_on_a_wrapper_leaf_that_requires_grad_is_refused_as_torch():
    messages = []
    for lib in (real_torch, chainrule):
        logging_tensor, _ = _CLASSES[lib]
        leaf = logging_tensor(lib.tensor(_randn(3), requires_grad=True))
        with pytest.raises(RuntimeError) as caught:
            leaf.exp_()
        messages.append(str(caught.value))
    assert messages[1] == messages[0]


def test_an_inplace_method_saving_self_shows_the_handler_a_clone_before_the_write():
    logs = []
    for lib in (real_torch, chainrule):
        logging_tensor, log = _CLASSES[lib]
        y = logging_tensor(lib.tensor(_randn(3), requires_grad=True)) * 2.0
        del log[:]
        y.sin_()
        logs.append(list(log))
    assert logs[1] == logs[0]



# ---- ops whose rule reads what the forward found on the values: the handler's run of the op gives it
_FOUND_BY_THE_FORWARD = {
    "sort": lambda lib, x: x.sort(-1)[0],
    "sort_descending": lambda lib, x: x.sort(0, descending=True)[0],
    "topk": lambda lib, x: x.topk(2)[0],
    "median_dim": lambda lib, x: x.median(-1)[0],
    "median_all": lambda lib, x: x.median(),
    "kthvalue": lambda lib, x: x.kthvalue(2, 0, True)[0],
    "mode": lambda lib, x: x.mode(-1)[0],
    "cummax": lambda lib, x: x.cummax(-1)[0],
    "cummin": lambda lib, x: x.cummin(0)[0],
    "max_pool2d": lambda lib, x: lib.nn.functional.max_pool2d(x[None], 2, 1),
    "max_pool1d": lambda lib, x: lib.nn.functional.max_pool1d(x[None], 2),
    "hardshrink": lambda lib, x: lib.nn.functional.hardshrink(x, 0.6),
    "softshrink": lambda lib, x: lib.nn.functional.softshrink(x, 0.4),
    "group_norm": lambda lib, x: lib.nn.functional.group_norm(x.reshape(2, 4, 2), 2),
}


@pytest.mark.parametrize("case", sorted(_FOUND_BY_THE_FORWARD))
def test_an_op_whose_rule_reads_the_forwards_findings_gives_the_plain_gradient_through_a_wrapper(case):
    _check(_FOUND_BY_THE_FORWARD[case], [_randn(4, 4)])


@pytest.mark.parametrize("case", ["sort", "topk", "median_dim", "median_all", "kthvalue", "cummax", "cummin"])
def test_an_op_picking_values_by_their_order_gives_torchs_values_through_a_wrapper(case):
    values = []
    for lib in (real_torch, chainrule):
        logging_tensor, _ = _CLASSES[lib]
        out = _FOUND_BY_THE_FORWARD[case](lib, logging_tensor(lib.tensor(_randn(4, 4), requires_grad=True)))
        assert type(out).__name__ == "LoggingTensor"
        values.append(np.asarray(out.elem.detach().tolist()))
    np.testing.assert_array_equal(values[1], values[0])


def test_an_lstm_cell_through_a_wrapper_gives_the_plain_gradient():
    _check(lambda lib, x, h, c, w_ih, w_hh: lib.lstm_cell(x, (h, c), w_ih, w_hh),
           [_randn(2, 3), _randn(2, 4, seed=1), _randn(2, 4, seed=2), _randn(16, 3, seed=3), _randn(16, 4, seed=4)])

