"""Lane mendAZ (session 47): checks torch makes that chainrule skipped, one broadcast message, and
dispatch state that outlived what set it."""
import gc
import pathlib
import weakref

import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from chainrule.autograd import function  # noqa: E402
from chainrule.utils import _pytree  # noqa: E402
from chainrule.utils._python_dispatch import TorchDispatchMode  # noqa: E402


class _Wrapper(chainrule.Tensor):
    """A __torch_dispatch__ wrapper subclass, written as torch's tests write one."""

    @staticmethod
    def __new__(cls, elem):
        return chainrule.Tensor._make_wrapper_subclass(cls, elem.shape, dtype=elem.dtype,
                                                       requires_grad=elem.requires_grad)

    def __init__(self, elem):
        self.elem = elem

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        def unwrap(x):
            return x.elem if isinstance(x, _Wrapper) else x

        out = func(*_pytree.tree_map(unwrap, args), **_pytree.tree_map(unwrap, kwargs or {}))
        return _pytree.tree_map(lambda x: _Wrapper(x) if isinstance(x, chainrule.Tensor) else x, out)


@pytest.fixture
def no_collection():
    """The automatic garbage collector off for the test (what it would find is the bug), back after.
    An earlier test's wrapper that only a reference cycle keeps would hold the dispatcher on: the young
    generations are collected first, the whole heap only while one is still alive (a full collection of
    a pytest-xdist worker's heap, half a million objects late in the run, took seconds of CI each)."""
    was = gc.isenabled()
    gc.collect(1)
    if function.active_dispatch is not None:
        gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@pytest.mark.parametrize("backward", [False, True])
def test_a_wrapper_instance_dropped_by_its_function_switches_dispatch_off_without_a_collection(
        no_collection, backward):
    """A wrapper subclass leaf through ``(p * 2).sum()`` inside a function: once the function returns
    nothing holds the wrapper, so the dispatcher goes at once. tree_flatten's walk was a closure that
    called itself (a reference cycle holding the leaves), so each handler's tree_map kept its wrappers,
    and active_dispatch stayed set until a garbage collection."""
    assert function.active_dispatch is None

    def step():
        p = _Wrapper(chainrule.randn(3, requires_grad=True))
        loss = (p * 2).sum()
        if backward:
            loss.backward()
        return weakref.ref(p)

    gone = step()
    assert gone() is None
    assert function.active_dispatch is None


@pytest.mark.parametrize("op", ["tanh", "exp", "sigmoid", "relu"])
def test_a_wrapper_output_its_node_saves_makes_no_cycle(no_collection, op):
    """A node whose rule reads its output (tanh's, exp's) kept the handler's wrapper output itself, whose
    grad_fn is that node: a cycle that kept both, and active_dispatch, until a garbage collection when
    no backward ran to free the saved tensors (a forward under grad mode, an evaluation)."""
    def forward():
        p = _Wrapper(chainrule.randn(3, requires_grad=True))
        out = getattr(p, op)()
        return weakref.ref(out)

    gone = forward()
    assert gone() is None
    assert function.active_dispatch is None


def test_a_saved_wrapper_output_still_gives_torchs_gradient(no_collection):
    def grad_of(lib, wrap):
        leaf = wrap(lib.tensor([0.3, -0.7, 1.1], dtype=lib.float64, requires_grad=True))
        y = leaf.tanh()
        loss = (y * y).sum()
        del y  # (the node's saved output is all that keeps its values)
        loss.backward()
        grad = leaf.grad
        return (grad.elem if isinstance(grad, _Wrapper) else grad).tolist()

    assert grad_of(chainrule, _Wrapper) == pytest.approx(grad_of(real_torch, lambda p: p), rel=1e-12)
    assert function.active_dispatch is None


def test_tree_flatten_leaves_no_reference_cycle(no_collection):
    leaf = chainrule.ones(2)
    seen = weakref.ref(leaf)
    leaves, spec = _pytree.tree_flatten({"a": [leaf, (1, leaf)]})
    assert len(leaves) == 3 and leaves[0] is leaf and leaves[2] is leaf
    assert _pytree.tree_unflatten(leaves, spec)["a"][0] is leaf
    del leaf, leaves, spec
    assert seen() is None


def test_a_note_no_op_took_does_not_keep_its_input_alive(no_collection):
    """note_given keeps the arguments of the next op as given; a note the op never took (the call was
    refused after it) held the input until the next op ran under the mode."""
    class Passthrough(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    x = chainrule.ones(2, 3).t()
    seen = weakref.ref(x)
    with Passthrough():
        with pytest.raises(RuntimeError):
            x.view(-1)  # noted, then refused (not viewable) before its op runs
        del x
        assert seen() is None
        chainrule.ones(2).softmax(0)  # the next op drops the stale note
    assert function.given_arguments is None


def test_a_note_is_still_shown_to_a_mode():
    lines = []

    class Log(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            lines.append((str(func), list(args[1:])))
            return func(*args, **(kwargs or {}))

    with Log():
        chainrule.ones(2, 3).softmax(-1)
    assert lines[-1] == ("aten._softmax.default", [-1, False])


# ---------------------------------------------------------------- item 2: one broadcast refusal

def _raised(lib, call) -> tuple:
    with pytest.raises(Exception) as caught:
        call(lib)
    return type(caught.value), str(caught.value)


# one call per place that raises torch's "output with shape ... doesn't match the broadcast shape ..."
_GROWN_OUTPUTS = {
    "logsumexp over no dims (reduce)": lambda L: L.logsumexp(L.ones(2, 3), dim=[]),
    "in-place add_ (_methods' shape refusal)": lambda L: L.ones(3).add_(L.ones(2, 3)),
    "in-place atan2_ (_methods' promotion precheck)": lambda L: L.ones(3).atan2_(L.ones(2, 3)),
    "in-place clamp_min_ (_methods' promotion precheck)": lambda L: L.ones(3).clamp_min_(L.ones(2, 3)),
    "binary_cross_entropy's weight (loss)": lambda L: L.nn.functional.binary_cross_entropy(
        L.full((3,), 0.5), L.full((3,), 0.5), weight=L.ones(2, 3)),
    "binary_cross_entropy_with_logits' pos_weight (loss)": lambda L: L.nn.functional.binary_cross_entropy_with_logits(
        L.ones(3), L.ones(3), pos_weight=L.ones(2, 3)),
    "binary_cross_entropy_with_logits' weight (loss)": lambda L: L.nn.functional.binary_cross_entropy_with_logits(
        L.ones(3), L.ones(3), weight=L.ones(2, 3)),
    "soft_margin_loss's target (loss)": lambda L: L.nn.functional.soft_margin_loss(L.ones(3), L.ones(2, 3)),
    "pad_sequence's slot (nn.utils.rnn)": lambda L: L.nn.utils.rnn.pad_sequence([L.ones(2, 1), L.ones(3, 4)]),
    "vmap's in-place into an unbatched tensor (_vmap_frames)": lambda L: L.vmap(lambda x: L.ones(3).add_(x))(
        L.ones(2, 3)),
    "circular pad's core copy (shape)": lambda L: L.nn.functional.pad(L.ones(1, 1, 3), (-4, 3), mode="circular"),
}


@pytest.mark.parametrize("call", _GROWN_OUTPUTS.values(), ids=_GROWN_OUTPUTS.keys())
def test_an_output_the_operands_would_grow_is_refused_in_torchs_words(call):
    expected = _raised(real_torch, call)
    assert expected[1].startswith("output with shape ")
    assert _raised(chainrule, call) == expected


def test_the_grown_output_message_is_built_in_one_place():
    src = pathlib.Path(chainrule.__file__).parent
    builders = [path.relative_to(src).as_posix() for path in sorted(src.rglob("*.py"))
                if "doesn't match the broadcast shape" in path.read_text()]
    assert builders == ["_backend.py"]


# ---------------------------------------------------------------- item 1: values and sources torch checks

def _outcome(lib, call):
    """What ``call(lib, self)`` does to a fresh [0, 0, 0] ``self``: its error (type and text) or its
    result, and ``self``'s values after (an error must leave them unchanged)."""
    def run(dtype):
        target = lib.zeros(3, dtype=getattr(lib, dtype))
        try:
            result = call(lib, target)
        except Exception as error:  # (the type is compared too)
            return ("raised", type(error).__name__, str(error), target.tolist())
        return ("ran", str(result.dtype).split(".")[-1], result.tolist(), target.tolist())
    return run


_MASK = [True, False, True]

# (self's dtype, the call): a 0-d tensor value read as a number (range-checked as a number is), and
# sources torch refuses in another dtype
_VALUE_CHECKS = {
    "masked_fill f64 1e300 into float32": ("float32", lambda L, x: x.masked_fill(L.tensor(_MASK), L.tensor(1e300, dtype=L.float64))),
    "masked_fill_ f64 1e300 into float32": ("float32", lambda L, x: x.masked_fill_(L.tensor(_MASK), L.tensor(1e300, dtype=L.float64))),
    "masked_fill_ int64 300 into uint8": ("uint8", lambda L, x: x.masked_fill_(L.tensor(_MASK), L.tensor(300))),
    "masked_fill int64 -1 into uint8 (wraps)": ("uint8", lambda L, x: x.masked_fill(L.tensor(_MASK), L.tensor(-1))),
    "masked_fill f32 inf into int8": ("int8", lambda L, x: x.masked_fill(L.tensor(_MASK), L.tensor(float("inf")))),
    "masked_fill f64 nan into int64": ("int64", lambda L, x: x.masked_fill(L.tensor(_MASK), L.tensor(float("nan"), dtype=L.float64))),
    "masked_fill f64 1e300 into complex64": ("complex64", lambda L, x: x.masked_fill(L.tensor(_MASK), L.tensor(1e300, dtype=L.float64))),
    "masked_fill f64 1e300 into float16": ("float16", lambda L, x: x.masked_fill(L.tensor(_MASK), L.tensor(1e300, dtype=L.float64))),
    "masked_fill f64 2.5 into float32": ("float32", lambda L, x: x.masked_fill(L.tensor(_MASK), L.tensor(2.5, dtype=L.float64))),
    "masked_fill requires grad 1e300": ("float32", lambda L, x: x.masked_fill(
        L.tensor(_MASK), L.tensor(1e300, dtype=L.float64, requires_grad=True))),
    "masked_scatter f64 source into float32": ("float32", lambda L, x: x.masked_scatter(L.tensor(_MASK), L.ones(3, dtype=L.float64))),
    "masked_scatter_ f64 source into float32": ("float32", lambda L, x: x.masked_scatter_(L.tensor(_MASK), L.ones(3, dtype=L.float64))),
    "masked_scatter_ int64 source into uint8": ("uint8", lambda L, x: x.masked_scatter_(L.tensor(_MASK), L.ones(3, dtype=L.int64))),
    "masked_scatter bool source into float32": ("float32", lambda L, x: x.masked_scatter(L.tensor(_MASK), L.tensor(_MASK))),
    "torch.masked_scatter f64 source": ("float32", lambda L, x: L.masked_scatter(x, L.tensor(_MASK), L.ones(3, dtype=L.float64))),
    "masked_scatter dtype before an int mask": ("float32", lambda L, x: x.masked_scatter(L.tensor([1, 0, 1]), L.ones(3, dtype=L.float64))),
    "masked_scatter_ dtype before an int mask": ("float32", lambda L, x: x.masked_scatter_(L.tensor([1, 0, 1]), L.ones(3, dtype=L.float64))),
    "masked_scatter broadcast before dtype": ("float32", lambda L, x: x.masked_scatter(L.tensor([True, False]), L.ones(3, dtype=L.float64))),
    "masked_scatter_ dtype before broadcast": ("float32", lambda L, x: x.masked_scatter_(L.tensor([True, False]), L.ones(3, dtype=L.float64))),
    "masked_scatter_ dtype before count": ("float32", lambda L, x: x.masked_scatter_(L.ones(3, dtype=L.bool), L.ones(1, dtype=L.float64))),
    "masked_scatter_ mask not expandable": ("float32", lambda L, x: x.masked_scatter_(L.tensor([True, False]), L.ones(3))),
    "masked_scatter_ mask of more dims": ("float32", lambda L, x: x.masked_scatter_(L.ones(2, 3, dtype=L.bool), L.ones(6))),
    "full_like f64 1e300 into float32": ("float32", lambda L, x: L.full_like(x, L.tensor(1e300, dtype=L.float64))),
    "full_like int64 300 into int8": ("int8", lambda L, x: L.full_like(x, L.tensor(300))),
    "full_like complex into int64": ("int64", lambda L, x: L.full_like(x, L.tensor(1 + 2j))),
    "full int64 300 as uint8": ("uint8", lambda L, x: L.full((2,), L.tensor(300), dtype=L.uint8)),
    "full f64 1e300, dtype inferred": ("float32", lambda L, x: L.full((2,), L.tensor(1e300, dtype=L.float64))),
    "x[mask] = 0-d int64 300 (int8)": ("int8", lambda L, x: x.__setitem__(L.tensor(_MASK), L.tensor(300)) or x),
    "x[mask] = 1-element int64 300 (int8)": ("int8", lambda L, x: x.__setitem__(L.tensor(_MASK), L.tensor([300])) or x),
    "x[mask] = 0-d f64 1e300 (float16)": ("float16", lambda L, x: x.__setitem__(L.tensor(_MASK), L.tensor(1e300, dtype=L.float64)) or x),
    "x[mask] = 0-d complex (float32)": ("float32", lambda L, x: x.__setitem__(L.tensor(_MASK), L.tensor(1 + 2j)) or x),
    "x[mask] = 0-d int64 3 (int8)": ("int8", lambda L, x: x.__setitem__(L.tensor(_MASK), L.tensor(3)) or x),
    "index_put mask, 0-d int64 300 (int8)": ("int8", lambda L, x: x.index_put((L.tensor(_MASK),), L.tensor(300))),
    "index_put_ accumulate, mask, 0-d int64 (int8)": ("int8", lambda L, x: x.index_put_((L.tensor(_MASK),), L.tensor(3), accumulate=True)),
    "index_fill complex number into float32": ("float32", lambda L, x: x.index_fill(0, L.tensor([0, 2]), 1 + 2j)),
    "index_fill_ complex 0-d into int8": ("int8", lambda L, x: x.index_fill_(0, L.tensor([0, 2]), L.tensor(1 + 2j))),
    "index_fill complex with a zero imaginary part": ("float32", lambda L, x: x.index_fill(0, L.tensor([0]), 1 + 0j)),
    "index_fill complex into bool": ("bool", lambda L, x: x.index_fill(0, L.tensor([0]), 1j)),
    "index_fill complex before the dim": ("float32", lambda L, x: x.index_fill(3, L.tensor([0]), 1j)),
    "index_fill complex before the index's bounds": ("float32", lambda L, x: x.index_fill(0, L.tensor([5]), 1j)),
    "index_fill the index's dtype before complex": ("float32", lambda L, x: x.index_fill(0, L.tensor([0.0]), 1j)),
    "index_fill complex into complex64": ("complex64", lambda L, x: x.index_fill(0, L.tensor([0]), 1j)),
    "index_reduce prod of bool": ("bool", lambda L, x: x.index_reduce(0, L.tensor([0]), L.tensor([True]), "prod")),
    "index_reduce amax of bool, include_self=False": ("bool", lambda L, x: x.index_reduce(
        0, L.tensor([0]), L.tensor([True]), "amax", include_self=False)),
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("dtype, call", _VALUE_CHECKS.values(), ids=_VALUE_CHECKS.keys())
def test_values_and_sources_are_checked_as_torch_checks_them(dtype, call):
    assert _outcome(chainrule, call)(dtype) == _outcome(real_torch, call)(dtype)


def test_a_0d_value_that_fits_still_receives_its_gradient():
    mask = chainrule.tensor([True, False, True])
    x = chainrule.randn(3, dtype=chainrule.float64, requires_grad=True)
    value = chainrule.tensor(0.5, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda a, v: a.masked_fill(mask, v), (x, value))
    source = chainrule.randn(3, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda a, s: a.masked_scatter(mask, s), (x, source))
