"""Session 44, lane mendAE: while a wrapper subclass instance lives (even one only a reference cycle
holds, until the collector runs), every op takes its general path; what the general paths give must be
what the fast ones give, as torch's: CopySlices graphs, reflected operators, saved-tensor hooks."""

import gc
import importlib

import numpy as np
import pytest

import chainrule
from chainrule import _methods
from chainrule.autograd import function as _function

torch = pytest.importorskip("torch")


class _Dead(chainrule.Tensor):
    """A wrapper subclass whose instances refer to themselves: dropped, they wait for the collector."""

    @staticmethod
    def __new__(cls, inner):
        return chainrule.Tensor._make_wrapper_subclass(cls, inner.shape, dtype=inner.dtype)

    def __init__(self, inner):
        self.inner = inner
        self.me = self  # the reference cycle

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return NotImplemented


@pytest.fixture
def dead_wrapper_in_a_cycle():
    """One dropped wrapper instance, held only by its own cycle (no gc.collect: the collector is off
    for the test, so it is still there); the dispatcher, installed for it, puts ops on their general paths."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        _Dead(chainrule.ones(2))
        assert _function.active_dispatch is not None
        yield
    finally:
        if was_enabled:
            gc.enable()


def _tree(fn, depth):
    if fn is None:
        return None
    if depth == 0:
        return fn.name()
    return fn.name(), [_tree(child, depth - 1) for child, _ in fn.next_functions]


# ------------------------------------------------------------ in-place ops on views: one CopySlices node
_VIEW_WRITES = {
    "select_mul_scalar": lambda b, c: b[0].mul_(2),
    "select_mul_tensor": lambda b, c: b[0].mul_(c[0]),
    "column_copy": lambda b, c: b[:, 1].copy_(c[:, 0]),
    "narrow_add_alpha": lambda b, c: b.narrow(0, 1, 2).add_(c[1:], alpha=2),
    "select_clamp": lambda b, c: b.select(1, 0).clamp_(0),
    "slice_sigmoid": lambda b, c: b[1:].sigmoid_(),
    "select_exp": lambda b, c: b[0].exp_(),
    "select_div": lambda b, c: b[:, 0].div_(c[:, 0]),
    "masked_fill": lambda b, c: b[0].masked_fill_(c[0] > 0, 0.5),
    "diagonal_zero": lambda b, c: b.diagonal().zero_(),
    "select_fill_tensor": lambda b, c: b[1].fill_(c[0, 0]),
    "leading_one_slice": lambda b, c: b[0:1].mul_(c[0:1]),
}


def _write_view(lib, case):
    rng = np.random.default_rng(0)
    a, c = (lib.tensor(rng.standard_normal((3, 3)), requires_grad=True) for _ in range(2))
    b = a.clone()
    view = _VIEW_WRITES[case](b, c)
    loss = (b * lib.tensor(rng.standard_normal((3, 3)))).sum() + (view * view).sum()
    return b, view, lib.autograd.grad(loss, (a, c), allow_unused=True)


@pytest.mark.parametrize("case", sorted(_VIEW_WRITES))
def test_a_view_write_is_one_copy_slices_node_while_a_dead_wrapper_waits_for_the_collector(
        case, dead_wrapper_in_a_cycle):
    (b, view, grads), (tb, tview, tgrads) = _write_view(chainrule, case), _write_view(torch, case)
    assert _tree(b.grad_fn, 3) == _tree(tb.grad_fn, 3)
    assert _tree(view.grad_fn, 2) == _tree(tview.grad_fn, 2)
    assert b._version == tb._version
    for g, tg in zip(grads, tgrads):
        assert (g is None) == (tg is None)
        if g is not None:
            np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12, atol=1e-12)


def test_a_view_write_under_a_dispatch_mode_is_one_copy_slices_node_as_torchs():
    results = []
    for lib in (torch, chainrule):
        dispatch = importlib.import_module(f"{lib.__name__}.utils._python_dispatch")

        class Logging(dispatch.TorchDispatchMode):
            def __init__(self):
                super().__init__()
                self.seen = []

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                self.seen.append(str(func))
                return func(*args, **(kwargs or {}))

        a = lib.tensor(np.arange(9.0).reshape(3, 3), requires_grad=True)
        b = a.clone()
        with Logging() as mode:
            b[0].mul_(2)
        b.sum().backward()
        results.append((mode.seen, _tree(b.grad_fn, 3), a.grad.tolist()))
    assert results[1] == results[0]


# ------------------------------------------------------------ the reflected operators
def _raised(call):
    try:
        result = call()
    except TypeError as error:
        return "TypeError", str(error)
    return "NotImplemented" if result is NotImplemented else "returned"


REFLECTED_CALLS = {
    "Tensor.__rmul__()": lambda lib: lib.Tensor.__rmul__(),
    "Tensor.__radd__()": lambda lib: lib.Tensor.__radd__(),
    "Tensor.__rsub__()": lambda lib: lib.Tensor.__rsub__(),
    "Tensor.__rmul__(2, t)": lambda lib: lib.Tensor.__rmul__(2, lib.ones(2)),
    "Tensor.__radd__(None, t)": lambda lib: lib.Tensor.__radd__(None, lib.ones(2)),
    "Tensor.__rsub__(2, t)": lambda lib: lib.Tensor.__rsub__(2, lib.ones(2)),
    "Tensor.__rsub__(2.5, 2)": lambda lib: lib.Tensor.__rsub__(2.5, 2),
}


@pytest.mark.parametrize("call", REFLECTED_CALLS)
def test_reflected_operators_called_unbound_as_torchs_while_a_dead_wrapper_waits(call, dead_wrapper_in_a_cycle):
    expected = _raised(lambda: REFLECTED_CALLS[call](torch))
    assert _raised(lambda: REFLECTED_CALLS[call](chainrule)) == expected


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_number_minus_tensor_has_the_tensors_edge_only_while_a_dead_wrapper_waits(dtype, dead_wrapper_in_a_cycle):
    graphs = []
    for lib in (torch, chainrule):
        x = lib.tensor([1.5, -2.0], dtype=getattr(lib, dtype), requires_grad=True)
        product, total, difference = 3 * x, 2.5 + x, 2 - x
        graphs.append([(_tree(r.grad_fn, 1), r.tolist()) for r in (product, total, difference)])
    assert graphs[1] == graphs[0]


_OTHERS = {
    "int": lambda x: 2, "float": lambda x: 2.5, "negative zero": lambda x: -0.0, "bool": lambda x: True,
    "past uint64": lambda x: 2 ** 70, "numpy float": lambda x: np.float64(2.0),
    "same dtype": lambda x: chainrule.tensor([[0.5, 4.0], [1.0, 2.0]], dtype=x.dtype),
    "float64 row": lambda x: chainrule.tensor([0.5, 4.0], dtype=chainrule.float64),
    "transposed": lambda x: chainrule.tensor([[0.5, 4.0], [1.0, 2.0]], dtype=x.dtype).t(),
}


def _operator_outcome(operator, dtype, other, requires_grad):
    x = chainrule.tensor([[1.5, -2.0], [3.0, 0.5]], dtype=getattr(chainrule, dtype))
    if requires_grad and (x.dtype.is_floating_point or x.dtype.is_complex):
        x.requires_grad_()
    try:
        out = operator(x, _OTHERS[other](x))
    except Exception as error:  # noqa: BLE001  (the class and message are what is compared)
        return type(error).__name__, str(error)
    if not isinstance(out, chainrule.Tensor):
        return repr(out)
    node = out.grad_fn
    return (repr(out.detach()), out.is_contiguous(),
            None if node is None else (_tree(node, 1), {name: repr(getattr(node, name)) for name in dir(node)
                                                       if name.startswith("_saved_")}))


@pytest.mark.parametrize("name", sorted(_methods._GENERAL_OPERATORS))
def test_the_general_operator_answers_as_the_fast_one(name):
    # the general operators stand in for the fast ones while a wrapper instance or a dispatch mode,
    # a profiler or inference_mode is active: which runs must not show
    fast, general = _methods._FAST_OPERATORS[name], _methods._GENERAL_OPERATORS[name]
    for dtype in ("float32", "float16", "bfloat16", "float64", "int64", "complex64", "bool"):
        for other in _OTHERS:
            for requires_grad in (True, False):
                assert _operator_outcome(general, dtype, other, requires_grad) == \
                    _operator_outcome(fast, dtype, other, requires_grad), (dtype, other, requires_grad)


# ------------------------------------------------------------ saved-tensor hooks: one unpack per use
def _hook_calls(lib):
    calls = []

    def pack(t):
        calls.append(("pack", tuple(t.shape)))
        return t

    def unpack(t):
        calls.append(("unpack", tuple(t.shape)))
        return t

    x = lib.tensor(np.linspace(-1.0, 1.0, 12).reshape(3, 4), requires_grad=True)
    w = lib.tensor(np.linspace(0.5, 1.5, 20).reshape(4, 5), requires_grad=True)
    with lib.autograd.graph.saved_tensors_hooks(pack, unpack):
        loss = (x.tanh() @ w).sin().sum()
    loss.backward()
    return calls, x.grad.numpy().copy()


def test_saved_tensor_hooks_unpack_once_per_use_while_a_dead_wrapper_waits(dead_wrapper_in_a_cycle):
    (calls, grad), (tcalls, tgrad) = _hook_calls(chainrule), _hook_calls(torch)
    assert calls == tcalls
    np.testing.assert_allclose(grad, tgrad, rtol=1e-12)


def test_number_minus_tensor_reaches_a_dispatch_mode_as_torchs_rsub_scalar():
    results = []
    for lib in (torch, chainrule):
        dispatch = importlib.import_module(f"{lib.__name__}.utils._python_dispatch")

        class Logging(dispatch.TorchDispatchMode):
            def __init__(self):
                super().__init__()
                self.seen = []

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                self.seen.append((str(func), [a if isinstance(a, float) else tuple(a.shape) for a in args]))
                return func(*args, **(kwargs or {}))

        x = lib.tensor([1.5, -2.0], requires_grad=True)
        with Logging() as mode:
            difference = 2.5 - x
        difference.sum().backward()
        results.append((mode.seen[0], _tree(difference.grad_fn, 1), difference.tolist(), x.grad.tolist()))
    assert results[1] == results[0]


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_number_minus_a_complex_tensor_has_the_tensors_edge_only_as_torchs(dtype):
    outcomes = []
    for lib in (torch, chainrule):
        x = lib.tensor([1.5 + 1j, -2.0], dtype=getattr(lib, dtype), requires_grad=True)
        difference = 2.5 - x
        (difference * difference.conj()).real.sum().backward()
        outcomes.append((_tree(difference.grad_fn, 1), difference.tolist(), str(difference.dtype).split(".")[1],
                         x.grad.tolist()))
    assert outcomes[1] == outcomes[0]


def test_number_minus_a_complex_tensor_passes_gradcheck():
    x = chainrule.tensor([1.5 + 1j, -2.0 - 0.5j], dtype=chainrule.complex128, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: 2 - t, (x,))
    assert chainrule.autograd.gradgradcheck(lambda t: (2.5 - t) * t, (x,))
