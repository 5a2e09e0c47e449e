"""Compared with torch 2.13: refusals of bad arguments worded as torch's parser words them (the
probe tools/torch_bad_arguments_trial.py), the calls those signatures must keep taking, and random_ as
a method only, its arguments checked by the signature table alone."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def outcome(lib, call):
    """What ``call(lib, x)`` does on a float32 (2, 3) tensor ``x`` of ``lib``: ("ok", its result as a
    list) or (the exception's type name, its message)."""
    x = lib.arange(6, dtype=lib.float32).reshape(2, 3)
    try:
        result = call(lib, x)
    except Exception as error:  # noqa: BLE001 - any refusal is compared
        return type(error).__name__, str(error)
    if isinstance(result, (tuple, list)):
        return "ok", [item.tolist() if hasattr(item, "tolist") else item for item in result]
    return "ok", result.tolist() if hasattr(result, "tolist") else result


def assert_alike(call) -> None:
    """``call`` raises the same exception type and message on torch and chainrule, or gives the same result."""
    assert outcome(chainrule, call) == outcome(torch, call)


# functions and methods that had no signature in the table: Python's words, or an op's own error, before
BAD_ARGUMENTS = {
    "diag(x, 1.5)": lambda L, x: L.diag(x, 1.5),
    "diagonal(x, [0, 1])": lambda L, x: L.diagonal(x, [0, 1]),
    "flip('a')": lambda L, x: L.flip("a"),
    "dropout(x, [0, 1])": lambda L, x: L.dropout(x, [0, 1]),
    "index_add(x, 1.5)": lambda L, x: L.index_add(x, 1.5),
    "select(x, [0, 1])": lambda L, x: L.select(x, [0, 1]),
    "searchsorted(x, no_such_keyword=1)": lambda L, x: L.searchsorted(x, no_such_keyword=1),
    "round(x, 1.5)": lambda L, x: L.round(x, 1.5),
    "median(x, None)": lambda L, x: L.median(x, None),
    "histogram(x, 1.5)": lambda L, x: L.histogram(x, 1.5),
    "lstm('a')": lambda L, x: L.lstm("a"),
    "ctc_loss(x, 1.5)": lambda L, x: L.ctc_loss(x, 1.5),
    "nan_to_num(x, [0, 1])": lambda L, x: L.nan_to_num(x, [0, 1]),
    "broadcast_to(x, 1.5)": lambda L, x: L.broadcast_to(x, 1.5),
    "hstack(x, no_such_keyword=1)": lambda L, x: L.hstack(x, no_such_keyword=1),
    "qr(None)": lambda L, x: L.qr(None),
    "svd('a')": lambda L, x: L.svd("a"),
    "poisson(x, 1.5)": lambda L, x: L.poisson(x, 1.5),
    "spmm('a')": lambda L, x: L.spmm("a"),
    "to_dlpack(None)": lambda L, x: L.to_dlpack(None),
    "x.tril(1.5)": lambda L, x: x.tril(1.5),
    "x.gcd(1.5)": lambda L, x: x.gcd(1.5),
    "x.mv([0, 1])": lambda L, x: x.mv([0, 1]),
    "x.new_zeros('a')": lambda L, x: x.new_zeros("a"),
    "x.new_ones(x, x)": lambda L, x: x.new_ones(x, x),
    "x.uniform_('a')": lambda L, x: x.uniform_("a"),
    "x.unsqueeze_(None)": lambda L, x: x.unsqueeze_(None),
    "x.bitwise_left_shift(x, x)": lambda L, x: x.bitwise_left_shift(x, x),
    "x.nonzero(1)": lambda L, x: x.nonzero(1),
    "x.nonzero(x, x)": lambda L, x: x.nonzero(x, x),
    "x.is_contiguous(1)": lambda L, x: x.is_contiguous(1),
    "x.copy_(x, x, x)": lambda L, x: x.copy_(x, x, x),
    # torch's module functions of no arguments are METH_NOARGS: CPython's words, naming torch
    "get_default_dtype(1)": lambda L, x: L.get_default_dtype(1),
    "is_grad_enabled(a=1)": lambda L, x: L.is_grad_enabled(a=1),
    "clear_autocast_cache('a')": lambda L, x: L.clear_autocast_cache("a"),
    "is_anomaly_enabled(x, x)": lambda L, x: L.is_anomaly_enabled(x, x),
    "is_autocast_enabled(x, 1.5)": lambda L, x: L.is_autocast_enabled(x, 1.5),
    "get_autocast_dtype(None)": lambda L, x: L.get_autocast_dtype(None),
    # a lone visible signature's keywords are looked at whatever the count of arguments
    "addmv(x, no_such_keyword=1)": lambda L, x: L.addmv(x, no_such_keyword=1),
    "addbmm(x, beta=1)": lambda L, x: L.addbmm(x, beta=1),
    "x.addcmul(no_such_keyword=1)": lambda L, x: x.addcmul(no_such_keyword=1),
    # the methods torch writes in Python: Python's words, naming Tensor.<method>
    "x.unique(no_such_keyword=1)": lambda L, x: x.unique(no_such_keyword=1),
    "x.dim_order(1)": lambda L, x: x.dim_order(1),
    "x.is_shared(x, x)": lambda L, x: x.is_shared(x, x),
    "x.unique('a')": lambda L, x: x.unique("a"),
    "x.unique_consecutive(None)": lambda L, x: x.unique_consecutive(None),
    # torch's Python functions handing their tensors to a _VF function, whose parser names no op
    "meshgrid(x, 'a')": lambda L, x: L.meshgrid(x, "a"),
    "cartesian_prod(x, None)": lambda L, x: L.cartesian_prod(x, None),
    "block_diag('a')": lambda L, x: L.block_diag("a"),
    "atleast_1d('a')": lambda L, x: L.atleast_1d("a"),
    "atleast_3d(None)": lambda L, x: L.atleast_3d(None),
    "x.norm(*[x] * 9)": lambda L, x: x.norm(*[x] * 9),
    # index_put's indices, from_numpy (METH_O: CPython's words), gradient's seven overloads
    "index_put(x, 1.5)": lambda L, x: L.index_put(x, 1.5),
    "x.index_put([0, 1], x)": lambda L, x: x.index_put([0, 1], x),
    "x.index_put_((None,), x)": lambda L, x: x.index_put_((None,), x),
    "from_numpy(x, 1)": lambda L, x: L.from_numpy(x, 1),
    "from_numpy(array=x)": lambda L, x: L.from_numpy(array=x),
    "gradient(x, 1.5)": lambda L, x: L.gradient(x, 1.5),
    "gradient(x, spacing='a')": lambda L, x: L.gradient(x, spacing="a"),
    "gradient(x, spacing=[1, 'a'])": lambda L, x: L.gradient(x, spacing=[1, "a"]),
    "gradient(x, no_such_keyword=1)": lambda L, x: L.gradient(x, no_such_keyword=1),
    "x.as_subclass('a')": lambda L, x: x.as_subclass("a"),
    "x.as_subclass(no_such_keyword=1)": lambda L, x: x.as_subclass(no_such_keyword=1),
    "x.as_subclass(x, x)": lambda L, x: x.as_subclass(x, x),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_arguments_are_refused_as_torch_refuses_them(case):
    assert_alike(BAD_ARGUMENTS[case])


# calls the new signatures must keep taking, with torch's results
TAKEN = {
    "diag(x, 1)": lambda L, x: L.diag(x, 1),
    "flip(x, dims=[0])": lambda L, x: L.flip(x, dims=[0]),
    "dropout(x, 0.0, True)": lambda L, x: L.dropout(x, 0.0, True),
    "select(x, dim=1, index=-1)": lambda L, x: L.select(x, dim=1, index=-1),
    "searchsorted(x, x, right=True)": lambda L, x: L.searchsorted(x, x, right=True),
    "round(x / 7, decimals=2)": lambda L, x: L.round(x / 7, decimals=2),
    "median(x, 1, keepdim=True)": lambda L, x: L.median(x, 1, keepdim=True),
    "nansum(x, dim=(0, 1), dtype=float64)": lambda L, x: L.nansum(x, dim=(0, 1), dtype=L.float64),
    "swapaxes(x, axis0=0, axis1=1)": lambda L, x: L.swapaxes(x, axis0=0, axis1=1),
    "poisson(x, None)": lambda L, x: L.poisson(x * 0, None),
    "poisson(x, generator)": lambda L, x: L.poisson(x * 0, L.Generator().manual_seed(0)),
    "spmm(x, x.T)": lambda L, x: L.spmm(x, x.T),
    "x.tril(diagonal=-1)": lambda L, x: x.tril(diagonal=-1),
    "x.new_zeros((2,), dtype=int64)": lambda L, x: x.new_zeros((2,), dtype=L.int64),
    "x.new_ones(2, 1)": lambda L, x: x.new_ones(2, 1),
    "x.uniform_(from=1, to=1)": lambda L, x: x.uniform_(**{"from": 1.0, "to": 1.0}),
    "x.requires_grad_(requires_grad=False)": lambda L, x: x.requires_grad_(requires_grad=False).requires_grad,
    "x.nonzero(as_tuple=True)": lambda L, x: x.nonzero(as_tuple=True),
    "x.is_contiguous(memory_format=channels_last)": lambda L, x: x.is_contiguous(memory_format=L.channels_last),
    "x.copy_(2.5)": lambda L, x: x.copy_(2.5),
    "x.copy_(True)": lambda L, x: x.copy_(True),
    "x.to(int32).copy_(7)": lambda L, x: x.to(L.int32).copy_(7),
    "x.copy_(x.flip(0), non_blocking=True)": lambda L, x: x.copy_(x.flip(0), non_blocking=True),
    "is_autocast_enabled('cpu')": lambda L, x: L.is_autocast_enabled("cpu"),
    "get_autocast_dtype('cpu')": lambda L, x: str(L.get_autocast_dtype("cpu")).rpartition(".")[2],
    "x.bitwise_left_shift(1) of int64": lambda L, x: x.long().bitwise_left_shift(1),
    "x.index_put((tensor([1]),), x[0])": lambda L, x: x.index_put((L.tensor([1]),), x[0]),
    "index_put_(x, [mask], tensor(1.))": lambda L, x: L.index_put_(x, [x > 2], L.tensor(1.0)),
    "from_numpy(x.numpy())": lambda L, x: L.from_numpy(x.numpy()),
    "x.as_subclass(cls=Tensor)": lambda L, x: x.as_subclass(cls=L.Tensor),
    "gradient(x, spacing=2.0, dim=(0, 1))": lambda L, x: L.gradient(x ** 2, spacing=2.0, dim=(0, 1)),
    "gradient(x, spacing=[1.0, 2.0])": lambda L, x: L.gradient(x ** 2, spacing=[1.0, 2.0]),
    "gradient(x, spacing=[tensor], dim=1)": lambda L, x: L.gradient(x ** 2, spacing=[L.tensor([0.0, 1.0, 3.0])], dim=1),
    "gradient(x, dim=[0], edge_order=1)": lambda L, x: L.gradient(x ** 2, dim=[0], edge_order=1),
}


@pytest.mark.parametrize("case", TAKEN)
def test_calls_the_signatures_take_give_torch_results(case):
    assert_alike(TAKEN[case])


class IndexLike:
    """An object with __index__ that is no int: torch's parser takes it in an int list or for a SymInt,
    not for a plain int."""

    def __index__(self) -> int:
        return 1


def test_random_is_a_method_only_as_in_torch():
    assert hasattr(torch, "random_") is False
    assert hasattr(chainrule, "random_") is False
    assert callable(chainrule.Tensor.random_)


RANDOM_CALLS = {
    "x.random_(index_like)": lambda L, x: x.random_(IndexLike()),
    "x.random_(0, index_like)": lambda L, x: x.random_(0, IndexLike()),
    "x.unsqueeze(index_like)": lambda L, x: x.unsqueeze(IndexLike()),
    "x.random_(0, 1.5)": lambda L, x: x.random_(0, 1.5),
    "x.random_(1, 2, 3)": lambda L, x: x.random_(1, 2, 3),
    "x.random_(1, from=1)": lambda L, x: x.random_(1, **{"from": 1}),
    "x.random_(from=1)": lambda L, x: x.random_(**{"from": 1}),
    "x.random_(None, 5)": lambda L, x: x.random_(None, 5),
    "x.random_(3, 4)": lambda L, x: x.random_(3, 4),
    "x.random_(from=3, to=4)": lambda L, x: x.random_(**{"from": 3, "to": 4}),
    "x.random_(np.int64(1))": lambda L, x: x.random_(np.int64(1)),
    "x.random_(tensor(1))": lambda L, x: x.random_(L.tensor(1)),
    "zeros(index_like)": lambda L, x: L.zeros(IndexLike()),
    # a SymInt parameter takes it, as an int list does
    "x.tril(index_like)": lambda L, x: x.tril(IndexLike()),
    "x.select(0, index_like)": lambda L, x: x.select(0, IndexLike()),
    "narrow(x, 0, index_like, 1)": lambda L, x: L.narrow(x, 0, IndexLike(), 1),
}


@pytest.mark.parametrize("case", RANDOM_CALLS)
def test_random_arguments_are_taken_and_refused_as_by_torch(case):
    assert_alike(RANDOM_CALLS[case])


def _node_and_edges(lib, p: float, keepdim: bool):
    """pairwise_distance's node, its edges' nodes, and the gradient of x1 (fixed inputs)."""
    x1 = lib.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=lib.float64, requires_grad=True)
    x2 = lib.tensor([[1.0, 1.0, 1.0], [-1.0, 0.5, 0.0]], dtype=lib.float64)
    distance = lib.nn.functional.pairwise_distance(x1, x2, p=p, keepdim=keepdim)
    node = distance.grad_fn
    distance.sum().backward()
    return node.name(), type(node).__name__, len(node.next_functions), x1.grad.flatten().tolist()


@pytest.mark.parametrize("p, keepdim", [(2.0, False), (1.0, True), (3.0, False)])
def test_pairwise_distance_records_torchs_norm_node(p, keepdim):
    ours, theirs = _node_and_edges(chainrule, p, keepdim), _node_and_edges(torch, p, keepdim)
    assert ours[:3] == theirs[:3]
    assert ours[3] == pytest.approx(theirs[3])


def _no_derivative_outcome(lib, make):
    """The node ``make(lib)`` records and what a backward through it raises."""
    lib.manual_seed(0)
    output = make(lib)
    node = output.grad_fn
    try:
        output.sum().backward()
    except RuntimeError as error:
        return node.name(), type(node).__name__, str(error)
    return node.name(), type(node).__name__, "no error"


def _ctc_gradient(lib):
    log_probs = lib.randn(5, 2, 4, dtype=lib.float64).log_softmax(2).detach().requires_grad_()
    targets = lib.tensor([[1, 2], [1, 3]])
    loss = lib.nn.functional.ctc_loss(log_probs, targets, [5, 5], [2, 2])
    (gradient,) = lib.autograd.grad(loss, log_probs, create_graph=True)
    return gradient


def _ldl_factor(lib):
    A = lib.tensor([[4.0, 1.0], [1.0, 3.0]], requires_grad=True)
    return lib.linalg.ldl_factor_ex(A).LD


def _ldl_solve(lib):
    A = lib.tensor([[4.0, 1.0], [1.0, 3.0]])
    LD, pivots = lib.linalg.ldl_factor(A)
    return lib.linalg.ldl_solve(LD.requires_grad_(), pivots, lib.ones(2, 1))


# the ops torch defines no derivative for: a node is recorded, and a backward through it raises
WITHOUT_DERIVATIVE = {
    "bernoulli(x, p)": lambda L: L.bernoulli(L.full((3,), 0.5, requires_grad=True), 0.5),
    "native_channel_shuffle": lambda L: L.native_channel_shuffle(L.ones(1, 4, 2, requires_grad=True), 2),
    "ctc_loss's gradient": _ctc_gradient,
    "scatter(reduce='multiply')": lambda L: L.ones(3, requires_grad=True).scatter(
        0, L.tensor([0, 1]), L.full((2,), 2.0), reduce="multiply"),
    "heaviside": lambda L: L.heaviside(L.tensor([-1.0, 0.0, 2.0], requires_grad=True), L.tensor([0.5])),
    "linalg.ldl_factor_ex": _ldl_factor,
    "linalg.ldl_solve": _ldl_solve,
}


@pytest.mark.parametrize("case", WITHOUT_DERIVATIVE)
def test_ops_without_derivative_keep_their_nodes_and_refuse_backward_as_torch(case):
    # torch 2.13 names each node torch::autograd::NotImplemented in full (its type: the last part)
    assert _no_derivative_outcome(chainrule, WITHOUT_DERIVATIVE[case]) == _no_derivative_outcome(
        torch, WITHOUT_DERIVATIVE[case])
