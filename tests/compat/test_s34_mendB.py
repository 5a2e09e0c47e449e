"""Autograd corner cases, each checked against torch.

1. set_ on a non-leaf that requires grad: torch records its NotImplemented node (backward raises
   "derivative for set_ is not implemented") and bumps the version once; chainrule refused it as a
   leaf. On a view of a leaf torch says "a view of a leaf Variable"; chainrule said "a leaf Variable".
2. Saved-tensor hooks: torch's unpacked tensor takes the original's place in the graph (its grad_fn,
   or a leaf's accumulator) whatever the unpack hook returns, so a hook returning ``t.detach()`` or a
   NumPy copy brought back still differentiates twice; chainrule used the hook's tensor as it came.
3. checkpoint(use_reentrant=False): the rerun restores the inputs' GPU generators as torch's does, and
   runs a line after the segment's last saving op as often as torch's (see the section's note).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _plain(value):
    """A result both libraries can compare: tensors and sizes as lists, nodes by type name."""
    if isinstance(value, (torch.Tensor, chainrule.Tensor)):
        return ("tensor", str(value.dtype).rsplit(".", 1)[-1], value.detach().tolist())
    if isinstance(value, (torch.Size, chainrule.Size)):
        return tuple(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    if hasattr(value, "next_functions") and hasattr(value, "name"):
        return ("node", type(value).__name__, value.name())
    return value


def outcome(case, library):
    """``case(library)``'s result in comparable form, or the exception's type and message."""
    try:
        return _plain(case(library))
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return (type(error).__name__, str(error).split("\n")[0])


def _same(ours, theirs) -> bool:
    """Equal structure and text; floats within float32 rounding of each other."""
    if isinstance(ours, float) and isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=1e-5, abs_tol=1e-6)
    if isinstance(ours, (tuple, list)) and type(ours) is type(theirs):
        return len(ours) == len(theirs) and all(_same(a, b) for a, b in zip(ours, theirs))
    return ours == theirs


def assert_same_as_torch(case):
    ours, theirs = outcome(case, chainrule), outcome(case, torch)
    assert _same(ours, theirs), (ours, theirs)


# ---- 1. Tensor.set_ ----------------------------------------------------------------------------


def _set_nonleaf(lib):
    a = lib.ones(3, requires_grad=True)
    b = a * 2
    before = b._version
    b.set_(lib.zeros(2))
    return b.grad_fn, b._version - before, b.requires_grad, b.is_leaf, b.shape, repr(b.grad_fn).split(" ")[0]


def _set_nonleaf_backward(lib):
    a = lib.ones(3, requires_grad=True)
    b = a * 2
    b.set_(lib.zeros(3))
    (b * 3).sum().backward()


def _set_nonleaf_edges(lib):
    a = lib.ones(3, requires_grad=True)
    b = a * 2
    b.set_(lib.zeros(3))
    return [type(node).__name__ if node is not None else None for node, _ in b.grad_fn.next_functions]


def _set_source_requires_grad(lib):
    x = lib.zeros(3)
    x.set_(lib.ones(3, requires_grad=True))
    return x.requires_grad, x.grad_fn, [type(node).__name__ if node is not None else None
                                        for node, _ in x.grad_fn.next_functions]


def _set_nothing_nonleaf(lib):
    b = lib.ones(3, requires_grad=True) * 2
    b.set_()
    return b.shape, b.grad_fn, b._version


def _set_strided_nonleaf(lib):
    b = lib.ones(3, requires_grad=True) * 2
    b.set_(lib.arange(4.0), 1, (2,), (1,))
    return b, b.grad_fn


def _set_leaf(lib):
    lib.ones(3, requires_grad=True).set_(lib.zeros(3))


def _set_view_of_leaf(lib):
    lib.ones(3, requires_grad=True)[:2].set_(lib.zeros(2))


def _set_reshaped_view_of_leaf(lib):
    lib.ones(2, 3, requires_grad=True).view(6).set_(lib.zeros(2))


def _set_view_of_nonleaf(lib):
    b = lib.ones(3, requires_grad=True) * 2
    view = b[:2]
    view.set_(lib.zeros(2))
    return b, view, b.grad_fn, view.grad_fn, b._version, view._version


def _set_view_of_nonleaf_backward(lib):
    b = lib.ones(3, requires_grad=True) * 2
    b[:2].set_(lib.zeros(2))
    b.sum().backward()


def _set_base_of_view(lib):
    b = lib.ones(3, requires_grad=True) * 2
    view = b[:2]
    b.set_(lib.zeros(3))
    return view.grad_fn, view._version


def _set_saved_input(lib):
    b = lib.ones(3, requires_grad=True) * 2
    square = b * b
    b.set_(lib.zeros(3))
    square.sum().backward()


def _set_retained(lib):
    b = lib.ones(3, requires_grad=True) * 2
    b.retain_grad()
    b.set_(lib.zeros(3))
    return b.retains_grad, b._version


def _set_leaf_under_no_grad(lib):
    a = lib.ones(3, requires_grad=True)
    with lib.no_grad():
        a.set_(lib.zeros(2))
    return a.shape, a.requires_grad, a.is_leaf, a.grad_fn


def _set_wrong_dtype_changes_nothing(lib):
    b = lib.ones(3, requires_grad=True) * 2
    before = b._version
    with pytest.raises(RuntimeError):
        b.set_(lib.zeros(2, dtype=lib.float64))
    return b._version - before, b.grad_fn, b.shape


@pytest.mark.parametrize("case", [
    _set_nonleaf, _set_nonleaf_backward, _set_nonleaf_edges, _set_source_requires_grad, _set_nothing_nonleaf,
    _set_strided_nonleaf, _set_leaf, _set_view_of_leaf, _set_reshaped_view_of_leaf, _set_view_of_nonleaf,
    _set_view_of_nonleaf_backward, _set_base_of_view, _set_saved_input, _set_retained, _set_leaf_under_no_grad,
    _set_wrong_dtype_changes_nothing,
], ids=lambda case: case.__name__.lstrip("_"))
def test_set_in_the_graph_as_torch(case):
    assert_same_as_torch(case)


def test_set_nonleaf_values_shared_with_source():
    source = chainrule.tensor(np.arange(3, dtype=np.float32))
    b = chainrule.ones(3, requires_grad=True) * 2
    b.set_(source)
    with chainrule.no_grad():
        source.add_(1)
    assert b.tolist() == [1.0, 2.0, 3.0]


# ---- 2. saved-tensor hooks: the unpacked tensor takes the original's place in the graph ---------

_HOOKED_OPS = {
    "mul": lambda lib, x, w: x * w,
    "mul_self": lambda lib, x, w: x * x,
    "matmul": lambda lib, x, w: x @ w,
    "exp": lambda lib, x, w: lib.exp(x * w),
    "tanh": lambda lib, x, w: lib.tanh(x @ w),
    "softmax": lambda lib, x, w: lib.softmax(x * w, dim=1),
}

_HOOKS = {
    "detach": lambda lib: (lambda t: t.detach(), lambda t: t),
    "numpy": lambda lib: (lambda t: t.detach().numpy().copy(), lambda a: lib.from_numpy(a)),
    "identity": lambda lib: (lambda t: t, lambda t: t),
}


def _two_orders_through_hooks(op, hooks):
    def case(lib):
        rng = np.random.default_rng(0)
        x = lib.tensor(rng.standard_normal((3, 3)), requires_grad=True)
        w = lib.tensor(rng.standard_normal((3, 3)), requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(*_HOOKS[hooks](lib)):
            y = _HOOKED_OPS[op](lib, x, w)
        first = lib.autograd.grad((y * y).sum(), (x, w), create_graph=True)
        second = lib.autograd.grad(first[0].sum() + (first[1] * first[1]).sum(), (x, w), allow_unused=True)
        return first, second
    return case


@pytest.mark.parametrize("hooks", sorted(_HOOKS))
@pytest.mark.parametrize("op", sorted(_HOOKED_OPS))
def test_saved_tensor_hooks_first_and_second_order_as_torch(op, hooks):
    assert_same_as_torch(_two_orders_through_hooks(op, hooks))


def _hooked_leaf_backward_twice(lib):
    x = lib.tensor([1.0, -2.0, 0.5], requires_grad=True)
    with lib.autograd.graph.saved_tensors_hooks(lambda t: t.detach().clone(), lambda t: t):
        y = lib.tanh(x) * x
    y.sum().backward(create_graph=True)
    first = x.grad.clone()
    x.grad.sum().backward()
    return first, x.grad


def _hooked_custom_function(lib):
    seen = []

    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            seen.append((x.requires_grad, x.is_leaf, x.grad_fn))
            return grad * 3 * x * x

    x = lib.tensor([1.0, 2.0], requires_grad=True)
    with lib.autograd.graph.saved_tensors_hooks(lambda t: t.detach(), lambda t: t):
        y = Cube.apply(x * 1.5)
    (first,) = lib.autograd.grad(y.sum(), x, create_graph=True)
    (second,) = lib.autograd.grad(first.sum(), x)
    return first, second, seen


def _raw_saved_register_hooks(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp() * x
    y.grad_fn._raw_saved_self.register_hooks(lambda t: t.detach(), lambda t: t)
    (first,) = lib.autograd.grad(y.sum(), x, create_graph=True)
    return first, lib.autograd.grad(first.sum(), x)


def _unpacked_saved_attributes(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    with lib.autograd.graph.saved_tensors_hooks(lambda t: t.detach(), lambda t: t):
        y = (x * 2) * x
    made, leaf = y.grad_fn._saved_self, y.grad_fn._saved_other
    return made.requires_grad, made.grad_fn, leaf.requires_grad, leaf.is_leaf, leaf.grad_fn


def _save_on_cpu_twice(lib):
    x = lib.tensor([[1.0, 2.0], [0.5, -1.0]], requires_grad=True)
    with lib.autograd.graph.save_on_cpu():
        y = lib.softmax(x @ x, dim=1)
    (first,) = lib.autograd.grad((y * y).sum(), x, create_graph=True)
    return first, lib.autograd.grad(first.sum(), x)


@pytest.mark.parametrize("case", [_hooked_leaf_backward_twice, _hooked_custom_function, _raw_saved_register_hooks,
                                  _unpacked_saved_attributes, _save_on_cpu_twice],
                         ids=lambda case: case.__name__.lstrip("_"))
@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")  # both libraries warn, as meant
def test_saved_tensor_hooks_graph_place_as_torch(case):
    assert_same_as_torch(case)


# ---- 3. checkpoint: the rerun restores the inputs' GPU generators too ----------------------------


def _dropout_gradients(checkpointed, use_reentrant=False):
    """Gradients of a dropout on 'cuda' (the stand-in) with draws between forward and backward."""
    from chainrule.utils.checkpoint import checkpoint

    chainrule.manual_seed(0)
    x = chainrule.randn(4, 8, device="cuda", requires_grad=True)
    w = chainrule.randn(8, 8, device="cuda", requires_grad=True)
    masks = []

    def segment(x):
        out = chainrule.nn.functional.dropout(x @ w, p=0.5, training=True)
        masks.append((out == 0).cpu().numpy())
        return out.tanh()

    chainrule.cuda.manual_seed(1)
    y = checkpoint(segment, x, use_reentrant=use_reentrant) if checkpointed else segment(x)
    chainrule.rand(5, device="cuda")  # moves the device stream between forward and backward
    y.sum().backward()
    return masks, x.grad.cpu().numpy(), w.grad.cpu().numpy()


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_rerun_restores_the_cuda_generator(use_reentrant):
    from chainrule._backend import use_standin_cuda

    with use_standin_cuda():
        (plain_mask,), plain_x, plain_w = _dropout_gradients(False)
        (forward_mask, rerun_mask), x_grad, w_grad = _dropout_gradients(True, use_reentrant)
        after_rerun = chainrule.rand(3, device="cuda").cpu().numpy()
        _dropout_gradients(False)
        after_plain = chainrule.rand(3, device="cuda").cpu().numpy()
    np.testing.assert_array_equal(forward_mask, plain_mask)
    np.testing.assert_array_equal(rerun_mask, forward_mask)
    np.testing.assert_array_equal(x_grad, plain_x)
    np.testing.assert_array_equal(w_grad, plain_w)
    np.testing.assert_array_equal(after_rerun, after_plain)  # the rerun's draws leave the stream as it was


def test_get_device_states_names_each_device_once():
    from chainrule._backend import use_standin_cuda
    from chainrule.utils.checkpoint import get_device_states

    assert get_device_states(chainrule.ones(2), [chainrule.ones(1)]) == ([], [])
    with use_standin_cuda(devices=2):
        a, b = chainrule.ones(2, device="cuda:1"), chainrule.ones(2, device="cuda:0")
        devices, states = get_device_states(a, [b, a], {"c": b})
    assert devices == [0, 1] and len(states) == 2


# ---- 3. checkpoint: how often a line after the last saving op runs (the rerun's early stop) ------
# torch's rerun stops once every saved tensor is back, so a line after the segment's last saving
# op runs once (the forward) and not in the rerun. torch saves no Python number (a wrapped number
# is never handed to saved-tensor hooks); nor does chainrule: the 0-d tensor ops/elementwise.py's
# _as_operand makes of one is marked, and _pack_outputs leaves it out (mul and div by a number ran
# the line twice before).

_SEGMENT_TAILS = {
    "v * 2": lambda lib, v: v * 2,
    "2 * v": lambda lib, v: 2 * v,
    "v.mul(2.5)": lambda lib, v: v.mul(2.5),
    "torch.mul(v, 2)": lambda lib, v: lib.mul(v, 2),
    "v / 2": lambda lib, v: v / 2,
    "v.div(2)": lambda lib, v: v.div(2),
    "(v * 2 + 1) / 3 - 4": lambda lib, v: (v * 2 + 1) / 3 - 4,
    "v + 1": lambda lib, v: v + 1,
    "1 + v": lambda lib, v: 1 + v,
    "v - 1": lambda lib, v: v - 1,
    "1 - v": lambda lib, v: 1 - v,
    "v.sub(1, alpha=2)": lambda lib, v: v.sub(1, alpha=2),
    "v.add(2)": lambda lib, v: v.add(2),
    "-v": lambda lib, v: -v,
    "2 / v": lambda lib, v: 2 / v,
    "v ** 2": lambda lib, v: v ** 2,
    "v ** 0.5": lambda lib, v: v.exp() ** 0.5,
    "2 ** v": lambda lib, v: 2 ** v,
    "v.pow(3)": lambda lib, v: v.pow(3),
    "torch.pow(v, 2)": lambda lib, v: lib.pow(v, 2),
    "v * tensor(2.)": lambda lib, v: v * lib.tensor(2.0),
}


def _side_effect_count(tail):
    def case(lib):
        runs = []

        def segment(x):
            value = x.sin()  # saves x
            runs.append(1)  # the line after the last op torch saves for
            return tail(lib, value)

        x = lib.tensor([0.5, 1.0, 2.0], requires_grad=True)
        lib.utils.checkpoint.checkpoint(segment, x, use_reentrant=False).sum().backward()
        return len(runs), x.grad
    return case


@pytest.mark.parametrize("tail", _SEGMENT_TAILS)
def test_checkpoint_rerun_side_effects_as_torch(tail):
    assert_same_as_torch(_side_effect_count(_SEGMENT_TAILS[tail]))


def test_a_number_operand_is_never_handed_to_the_pack_hook():
    def case(lib):
        shapes = []
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(lambda t: shapes.append(tuple(t.shape)) or t, lambda t: t):
            y = (x * 2) / 3 * x + 2.5 * x.exp()
        y.sum().backward()
        return shapes, x.grad
    assert_same_as_torch(case)
