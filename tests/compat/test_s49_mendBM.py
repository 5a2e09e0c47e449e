"""Lane mendBM (session 49): ops through a ``__torch_dispatch__`` wrapper subclass (torch's test LoggingTensor:
unwraps, runs the op, rewraps) give the plain tensors' and torch's values: the indices sort/topk/median/
kthvalue/mode/cummax/cummin return beside their values are the ones the handler's run of the op found (as
torch, the handler's, wrapped), not ones found on the wrapper's placeholder; and a handler's call of those
overloads returns torch's (values, indices) pair, under a TorchDispatchMode as for a wrapper."""
import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

from ._dispatch_checks import logging_tensor as _logging_tensor  # noqa: E402

_CLASSES = {lib: _logging_tensor(lib) for lib in (real_torch, chainrule)}
_LIBS = (real_torch, chainrule)


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _ties(*shape, seed=0):  # few distinct values: mode, cummax ties
    return np.random.default_rng(seed).integers(0, 3, shape).astype(np.float64)


def _plain(t):
    return np.asarray(getattr(t, "elem", t).detach().tolist())


# ---- ops torch answers with (values, indices)
_WITH_INDICES = {
    "sort": lambda lib, x: x.sort(-1),
    "sort_descending_dim0": lambda lib, x: x.sort(0, descending=True),
    "sort_stable": lambda lib, x: lib.sort(x, dim=1, stable=True),
    "topk": lambda lib, x: x.topk(2),
    "topk_smallest_dim0": lambda lib, x: x.topk(3, 0, largest=False),
    "median_dim": lambda lib, x: x.median(-1),
    "median_keepdim": lambda lib, x: x.median(0, keepdim=True),
    "kthvalue": lambda lib, x: x.kthvalue(2, 0),
    "kthvalue_keepdim": lambda lib, x: x.kthvalue(3, -1, True),
    "mode": lambda lib, x: x.mode(-1),
    "cummax": lambda lib, x: x.cummax(-1),
    "cummin": lambda lib, x: x.cummin(0),
}
_INPUTS = {"ties": _ties, "randn": _randn}


@pytest.mark.parametrize("values", sorted(_INPUTS))
@pytest.mark.parametrize("case", sorted(_WITH_INDICES))
def test_the_indices_of_an_op_through_a_wrapper_are_the_handlers_as_torchs(case, values):
    x = _INPUTS[values](5, 6)
    found = {}
    for lib in _LIBS:
        logging_tensor, _ = _CLASSES[lib]
        out = _WITH_INDICES[case](lib, logging_tensor(lib.tensor(x, requires_grad=True)))
        found[lib] = [(type(o).__name__, o.dtype == lib.int64, _plain(o)) for o in out]
    plain = _WITH_INDICES[case](chainrule, chainrule.tensor(x))
    for (kind, is_long, ours), (their_kind, theirs_long, theirs), mine in zip(found[chainrule], found[real_torch],
                                                                            plain):
        assert (kind, is_long) == (their_kind, theirs_long) == ("LoggingTensor", is_long)
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(ours, _plain(mine))


@pytest.mark.parametrize("case", sorted(_WITH_INDICES))
def test_the_indices_through_a_wrapper_route_the_gradient_as_the_plain_ops(case):
    """sum(values * w) + the values gathered again at the returned indices: the indices must be the
    real ones for the gradient to be the plain tensor's (and torch's)."""
    x = _randn(5, 6, seed=3)
    grads = []
    for lib, wrap in ((chainrule, False), (chainrule, True), (real_torch, True)):
        logging_tensor, _ = _CLASSES[lib]
        leaf = lib.tensor(x, requires_grad=True)
        source = logging_tensor(leaf) if wrap else leaf
        values, indices = _WITH_INDICES[case](lib, source)
        dim = 0 if case in ("sort_descending_dim0", "topk_smallest_dim0", "kthvalue", "cummin", "median_keepdim") else -1
        kept = lib.tensor(_plain(indices))  # (plain: the index the handler found, read out of its wrapper)
        kept = kept if kept.dim() == leaf.dim() else kept.unsqueeze(dim)
        weight = lib.tensor(np.random.default_rng(1).standard_normal(tuple(values.shape)))
        total = (values * weight).sum() + (source.gather(dim, kept) * 2.0).sum()
        (grad,) = lib.autograd.grad(total, [source])
        grads.append(_plain(grad))
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[1], grads[2], rtol=1e-12, atol=1e-12)


def test_a_wrapper_with_no_grad_gives_the_handlers_indices_too():
    x = _randn(4, 5, seed=2)
    found = []
    for lib in _LIBS:
        logging_tensor, _ = _CLASSES[lib]
        with lib.no_grad():
            out = logging_tensor(lib.tensor(x)).sort(-1)
        found.append((type(out.indices).__name__, _plain(out.indices)))
    assert found[1][0] == found[0][0] == "LoggingTensor"
    np.testing.assert_array_equal(found[1][1], found[0][1])


def test_the_handler_sees_one_call_of_the_op_with_indices_as_torch():
    logs = []
    for lib in _LIBS:
        logging_tensor, log = _CLASSES[lib]
        x = logging_tensor(lib.tensor(_randn(4, 5), requires_grad=True))
        del log[:]
        x.topk(2)
        x.median(0)
        x.cummax(1)
        logs.append(list(log))
    assert logs[1] == logs[0]


@pytest.mark.parametrize("case", sorted(_WITH_INDICES) + ["max_dim", "min_dim"])
def test_a_mode_gets_torchs_values_and_indices_from_the_overload(case):
    """torch's aten.sort/topk/... return (values, indices) to a TorchDispatchMode's handler; chainrule's
    returned the values alone."""
    fn = {"max_dim": lambda lib, x: x.max(1), "min_dim": lambda lib, x: x.min(0)}.get(case) or _WITH_INDICES[case]
    x = _ties(5, 6, seed=4)
    seen, outs = [], []
    for lib in _LIBS:
        returned = []

        class Recording(lib.utils._python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None, returned=returned):
                out = func(*args, **(kwargs or {}))
                returned.append((str(func), type(out).__name__,
                                 [_plain(o).tolist() for o in out] if isinstance(out, tuple) else None))
                return out

        leaf = lib.tensor(x, requires_grad=True)
        with Recording():
            out = fn(lib, leaf)
        seen.append(returned)
        outs.append([_plain(o) for o in out])
    assert seen[1] == seen[0]
    for ours, theirs in zip(outs[1], outs[0]):
        np.testing.assert_array_equal(ours, theirs)


# ---- ops composed over sort / a median: argsort is torch's sort's indices, nanmedian one op with its indices
def _with_nan(*shape, seed=0):
    x = _randn(*shape, seed=seed)
    x[0, 1] = x[2, 3] = np.nan
    return x


_COMPOSED = {
    "argsort": lambda lib, x: (x.argsort(-1),),
    "argsort_descending_dim0": lambda lib, x: (lib.argsort(x, 0, descending=True),),
    "argsort_stable": lambda lib, x: (lib.argsort(x, dim=1, stable=True),),
    "nanmedian_dim": lambda lib, x: tuple(x.nanmedian(1)),
    "nanmedian_keepdim": lambda lib, x: tuple(lib.nanmedian(x, 0, keepdim=True)),
    "nanmedian_all": lambda lib, x: (x.nanmedian(),),
    "masked_median": lambda lib, x: (lib.masked.median(x, 1, mask=lib.tensor(np.arange(30).reshape(5, 6) % 4 > 0)),),
}


@pytest.mark.parametrize("case", sorted(_COMPOSED))
def test_an_op_composed_over_sort_or_a_median_through_a_wrapper_gives_torchs_values_and_gradient(case):
    x = _with_nan(5, 6, seed=5) if "median" in case else _ties(5, 6, seed=5)
    values, grads, log_calls = [], [], []
    for lib, wrap in ((chainrule, False), (chainrule, True), (real_torch, True)):
        logging_tensor, log = _CLASSES[lib]
        leaf = lib.tensor(x, requires_grad=True)
        source = logging_tensor(leaf) if wrap else leaf
        del log[:]
        out = _COMPOSED[case](lib, source)
        log_calls.append(list(log))
        values.append([(type(o).__name__, _plain(o)) for o in out])
        floating = [o for o in out if o.dtype.is_floating_point]
        if floating:
            weight = lib.tensor(np.random.default_rng(1).standard_normal(tuple(floating[0].shape)))
            (grad,) = lib.autograd.grad((floating[0] * weight).nansum(), [source])
            grads.append(_plain(grad))
    plain, ours, theirs = values
    assert [kind for kind, _ in ours] == [kind for kind, _ in theirs] == ["LoggingTensor"] * len(theirs)
    for (_, mine), (_, wrapped), (_, torch_wrapped) in zip(plain, ours, theirs):
        np.testing.assert_array_equal(wrapped, mine)
        np.testing.assert_array_equal(wrapped, torch_wrapped)
    if grads:
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads[1], grads[2], rtol=1e-12, atol=1e-12)
    if case.startswith(("argsort", "nanmedian_dim", "nanmedian_keepdim")):
        assert log_calls[1] == log_calls[2]  # (aten.sort / aten.nanmedian.dim, as torch)
