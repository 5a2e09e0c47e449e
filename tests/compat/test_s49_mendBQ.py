"""Lane mendBQ (session 49): an integer or bool argument (an index, a mask, a target) that is a
``__torch_dispatch__`` wrapper subclass (torch's test LoggingTensor: unwraps, runs the op, rewraps) gives the
plain tensors' and torch's values and gradients. Its values live in the subclass, the array beneath is a
zero placeholder: the op reaches the wrapper's handler as torch's aten op (embedding, nll_loss_forward,
index.Tensor, gather, masked_select, ...), and the gradient is recorded over the index the handler handed its
run, not over the placeholder (which picked row 0 everywhere, silently). A mixed-dtype operand that is a
wrapper (``x * mask``, float32 wrapper times float64) reaches the handler too (its promoted stand-in was a
cast of the placeholder), and ``torch.tensor(wrapper)`` copies it through the handler as torch does."""
import warnings

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

from ._dispatch_checks import logging_tensor as _logging_tensor  # noqa: E402
from .test_s19_subclasses import pair_class  # noqa: E402

_LIBS = (real_torch, chainrule)

_rng = np.random.default_rng(0)
_W = _rng.standard_normal((6, 4))
_X = _rng.standard_normal((3, 5))
_MASK = _rng.standard_normal((3, 5)) > 0
_IDX = np.array([[1, 3, 5], [2, 0, 4]])
_IDX1 = np.array([4, 0, 2])
_TARGET = np.array([1, 3, 0])
_GATHER = np.array([[0, 4, 1], [2, 2, 3], [1, 0, 0]])

# name: (program(lib, float tensor, wrapped argument), float input, integer or bool argument)
_CASES = {
    "embedding": (lambda lib, w, i: lib.nn.functional.embedding(i, w), _W, _IDX),
    "embedding_padding_idx": (lambda lib, w, i: lib.nn.functional.embedding(i, w, padding_idx=3), _W, _IDX),
    "embedding_scale_grad_by_freq": (lambda lib, w, i: lib.nn.functional.embedding(i, w, scale_grad_by_freq=True),
                                     _W, np.array([1, 1, 4])),
    "nll_loss": (lambda lib, x, t: lib.nn.functional.nll_loss(x.log_softmax(-1), t), _X, _TARGET),
    "nll_loss_none": (lambda lib, x, t: lib.nn.functional.nll_loss(x.log_softmax(-1), t, reduction="none"), _X,
                      _TARGET),
    "cross_entropy": (lambda lib, x, t: lib.nn.functional.cross_entropy(x, t), _X, _TARGET),
    "cross_entropy_ignore_index": (lambda lib, x, t: lib.nn.functional.cross_entropy(x, t, ignore_index=3), _X,
                                   _TARGET),
    "cross_entropy_label_smoothing": (lambda lib, x, t: lib.nn.functional.cross_entropy(x, t, label_smoothing=0.1),
                                      _X, _TARGET),
    "getitem": (lambda lib, w, i: w[i], _W, _IDX),
    "getitem_columns": (lambda lib, w, i: w[:, i[1:]], _W, _IDX1),
    "getitem_mask": (lambda lib, x, m: x[m], _X, _MASK),
    "gather": (lambda lib, x, i: x.gather(1, i), _X, _GATHER),
    "index_select": (lambda lib, w, i: w.index_select(0, i), _W, _IDX1),
    "take_along_dim": (lambda lib, x, i: lib.take_along_dim(x, i, 1), _X, _GATHER),
    "take": (lambda lib, x, i: x.take(i), _X, _GATHER),
    "scatter": (lambda lib, x, i: x.scatter(1, i, x[:, :3] * 2), _X, _GATHER),
    "scatter_add": (lambda lib, x, i: x.scatter_add(1, i, x[:, :3] * 2), _X, _GATHER),
    "scatter_reduce": (lambda lib, x, i: x.scatter_reduce(1, i, x[:, :3] * 2, "amax"), _X, _GATHER),
    "index_add": (lambda lib, w, i: w.index_add(0, i, w[:3] * 2), _W, _IDX1),
    "index_add_alpha": (lambda lib, w, i: w.index_add(0, i, w[:3] * 2, alpha=-0.5), _W, _IDX1),
    "index_copy": (lambda lib, w, i: w.index_copy(0, i, w[:3] * 2), _W, _IDX1),
    "index_fill": (lambda lib, w, i: w.index_fill(0, i, 1.5), _W, _IDX1),
    "index_put": (lambda lib, w, i: w.index_put((i,), w[:3] * 2), _W, _IDX1),
    "index_put_accumulate": (lambda lib, w, i: w.index_put((i,), w[:3] * 2, accumulate=True), _W, _IDX1),
    "put": (lambda lib, x, i: x.put(i, x[0, :3] * 2), _X, _IDX1),
    "multi_margin_loss": (lambda lib, x, t: lib.nn.functional.multi_margin_loss(x, t), _X, _TARGET),
    "multi_margin_loss_p2_sum": (lambda lib, x, t: lib.nn.functional.multi_margin_loss(x, t, p=2, reduction="sum"),
                                 _X, _TARGET),
    "masked_fill": (lambda lib, x, m: x.masked_fill(m, 2.0), _X, _MASK),
    "masked_select": (lambda lib, x, m: x.masked_select(m), _X, _MASK),
    "masked_scatter": (lambda lib, x, m: x.masked_scatter(m, x * 3), _X, _MASK),
    "where": (lambda lib, x, m: lib.where(m, x, -x), _X, _MASK),
    "mul_by_bool_mask": (lambda lib, x, m: x * m, _X, _MASK),
    "mul_by_int": (lambda lib, x, i: x[:, :3] * i, _X, _GATHER),
    "add_float32_wrapper": (lambda lib, x, i: x[:, :3] + i.float(), _X, _GATHER),
}


def _plain(t):
    return np.asarray(getattr(t, "elem", t).detach().tolist())


def _run(lib, name, wrap):
    """(value, the float input's gradient, the ops the handler saw in the forward, the result's class)."""
    program, values, argument = _CASES[name]
    logging_tensor, log = _logging_tensor(lib)
    x = lib.tensor(values, requires_grad=True)
    given = lib.tensor(argument)
    if wrap:
        given = logging_tensor(given)
    out = program(lib, x, given)
    forward_log = list(log)
    weight = lib.tensor(np.random.default_rng(1).standard_normal(tuple(out.shape)))
    grad, = lib.autograd.grad((out * weight).sum(), [x])
    return _plain(out), _plain(grad), forward_log, type(out).__name__


@pytest.mark.parametrize("name", sorted(_CASES))
def test_a_wrapper_index_mask_or_target_gives_the_plain_values_and_gradient(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, grad, _, kind = _run(chainrule, name, True)
        plain_value, plain_grad, _, _ = _run(chainrule, name, False)
        torch_value, torch_grad, _, torch_kind = _run(real_torch, name, True)
    assert kind == torch_kind == "LoggingTensor"
    np.testing.assert_allclose(value, plain_value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, plain_grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(value, torch_value, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad, torch_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(_CASES))
def test_the_handler_sees_the_forward_as_torchs_aten_ops(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seen = _run(chainrule, name, True)[2]
        torch_seen = _run(real_torch, name, True)[2]
    if name == "take_along_dim":  # (torch's composite shows its gather; chainrule's one op, as given)
        torch_seen = ["aten.take_along_dim.default"]
    elif name in ("scatter_reduce", "index_add_alpha"):  # (torch's amax rule saves the result: a detach)
        torch_seen = [op for op in torch_seen if op != "aten.detach.default"]
    assert seen == torch_seen


def test_torch_tensor_of_a_wrapper_copies_its_values_through_its_handler():
    found = {}
    for lib in _LIBS:
        logging_tensor, log = _logging_tensor(lib)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            made = lib.tensor(logging_tensor(lib.tensor(_IDX1)), dtype=lib.float64)
        found[lib] = (type(made).__name__, made.dtype == lib.float64, _plain(made).tolist(), log)
    assert found[chainrule] == found[real_torch]
    assert found[chainrule][2] == _IDX1.tolist()


def test_a_mixed_dtype_operand_wrapper_reaches_its_handler_and_its_gradient_reads_its_values():
    found = []
    for lib in _LIBS:
        logging_tensor, log = _logging_tensor(lib)
        x = lib.tensor(_X, requires_grad=True)
        scale = logging_tensor(lib.tensor(_X * 2, dtype=lib.float32, requires_grad=True))
        out = x * scale
        seen = list(log)
        gx, gs = lib.autograd.grad(out.sum(), [x, scale])
        found.append((type(out).__name__, out.dtype == lib.float64, seen, _plain(out), _plain(gx), _plain(gs),
                      gs.dtype == lib.float32))
    (kind, is_double, seen, value, gx, gs, is_float), theirs = found[1], found[0]
    assert (kind, is_double, seen, is_float) == theirs[:3] + (theirs[6],) == ("LoggingTensor", True,
                                                                                ["aten.mul.Tensor"], True)
    np.testing.assert_allclose(value, theirs[3], rtol=1e-6)
    np.testing.assert_allclose(gx, theirs[4], rtol=1e-6)  # (the float32 operand's values, not its placeholder)
    np.testing.assert_allclose(gs, theirs[5], rtol=1e-6)


@pytest.mark.parametrize("call", [
    lambda lib, x, t: lib.nn.functional.nll_loss(x, t), lambda lib, x, t: lib.nn.functional.embedding(t, x.T),
    lambda lib, x, t: x.gather(1, t[:, None]), lambda lib, x, t: x.T[t]],
    ids=["nll_loss", "embedding", "gather", "getitem"])
def test_a_gradient_through_an_index_whose_handler_runs_the_op_twice_is_refused(call):
    """A handler running the op once per inner tensor (torch's TwoTensor): which run's index would the
    gradient take? Refused, not taken from one of them."""
    pair = pair_class(chainrule)
    target = pair(chainrule.tensor([0, 2]), chainrule.tensor([1, 1]))
    x = chainrule.tensor(_X[:2], requires_grad=True)
    made = call(chainrule, x.detach(), target)  # (without a gradient each half is its own)
    expected = [call(chainrule, x.detach(), chainrule.tensor(half)) for half in ([0, 2], [1, 1])]
    np.testing.assert_allclose(_plain(made.first), _plain(expected[0]))
    np.testing.assert_allclose(_plain(made.second), _plain(expected[1]))
    with pytest.raises(NotImplementedError, match="wrapper subclass index or target"):
        call(chainrule, x, target)


_INTEGER_KERNELS = {
    "floor_divide_number": lambda lib, i, j: i // 2,
    "floor_divide_tensor": lambda lib, i, j: i // j,
    "remainder_number": lambda lib, i, j: i % 3,
    "remainder_tensor": lambda lib, i, j: i % j,
    "fmod_number": lambda lib, i, j: lib.fmod(i, 3),
    "div_trunc": lambda lib, i, j: i.div(j, rounding_mode="trunc"),
    "div_floor_number": lambda lib, i, j: lib.div(i, 2, rounding_mode="floor"),
}


@pytest.mark.parametrize("name", sorted(_INTEGER_KERNELS))
def test_an_integer_kernel_of_a_wrapper_runs_in_its_handler(name):
    """Integer remainder and floor division compute on the arrays, no Function recording them: over a
    wrapper that was its placeholder (``idx % n`` gave zeros, ``idx % idx`` raised ZeroDivisionError)."""
    found = {}
    for lib in _LIBS:
        logging_tensor, log = _logging_tensor(lib)
        i = logging_tensor(lib.tensor([7, -5, 4, 0]))
        j = logging_tensor(lib.tensor([3, 2, -3, 5]))
        made = _INTEGER_KERNELS[name](lib, i, j)
        found[lib] = (type(made).__name__, _plain(made).tolist(), [op.rsplit(".", 1)[0] for op in log])
    assert found[chainrule] == found[real_torch]
