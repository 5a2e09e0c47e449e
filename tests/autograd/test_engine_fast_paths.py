"""The per-op fast paths of node construction and the backward walk (issue 15) keep torch's
behaviour: hooks still run on nodes the walk treats as hook-free by default, shared metadata and
version tuples do not leak between nodes, and long single-input runs are walked in order."""

import numpy as np
import pytest
import torch

import chainrule as cr


def _both(fn):
    """Run ``fn(lib)`` with chainrule and torch; it returns a list of arrays-like results."""
    return fn(cr), fn(torch)


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a.detach().numpy() if hasattr(a, "detach") else a),
                               np.asarray(b.detach().numpy() if hasattr(b, "detach") else b),
                               rtol=1e-5, atol=1e-6)


def test_tensor_hook_retain_grad_and_prehook_still_run_in_a_chain():
    calls = {cr: [], torch: []}

    def run(lib):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        a = x * 3.0
        b = a.tanh()
        b.retain_grad()
        a.register_hook(lambda g: g * 2)  # doubles what reaches x
        b.grad_fn.register_prehook(lambda grads: calls[lib].append("pre") or None)
        b.grad_fn.register_hook(lambda gi, go: calls[lib].append("post"))
        (b * b).sum().backward()
        return x.grad, b.grad

    (cx, cb), (tx, tb) = _both(run)
    _close(cx, tx)
    _close(cb, tb)
    assert calls[cr] == calls[torch] == ["pre", "post"]


def test_a_hook_on_one_node_is_not_seen_by_another_of_the_same_class():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    first, second = x * 2.0, x * 3.0
    assert type(first.grad_fn) is type(second.grad_fn)
    seen = []
    first.grad_fn.register_prehook(lambda grads: seen.append(1))
    assert second.grad_fn._pre_hooks is None
    second.sum().backward()
    assert seen == []
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_a_long_single_input_chain_and_a_diamond_match_torch():
    def run(lib):
        x = lib.tensor([0.3, -0.2], requires_grad=True)
        y = x
        for _ in range(3000):  # deep enough that a recursive walk would overflow
            y = y.sin()
        a = y.exp()
        out = (a.sin() * a.cos() + a).sum()  # a fans out to three consumers
        out.backward()
        return x.grad

    chainrule_grad, torch_grad = _both(run)
    _close(chainrule_grad, torch_grad)


def test_in_place_change_of_a_saved_tensor_is_still_detected():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1.0
    b = a * a  # saves a at version 0 (shared all-zero version tuple)
    c = a * 2.0
    a.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()
    # a node recorded after the change saved the new version and still runs
    d = a * a
    (d.sum() + c.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([2.0, 3.0]) + 2.0)


def test_input_metadata_is_per_input_and_matches_the_inputs():
    x = cr.ones(2, 3, requires_grad=True)
    y = cr.ones(3)
    out = x * y
    assert out.grad_fn._input_meta == (((2, 3), np.dtype(np.float32)), ((3,), np.dtype(np.float32)))
    other = cr.ones(2, 3, requires_grad=True) + 1.0
    # equal metadata is one shared tuple: no new object per recorded input
    assert out.grad_fn._input_meta[0] is other.grad_fn._input_meta[0]
    out.sum().backward()
    assert x.grad.dtype == cr.float32 and tuple(x.grad.shape) == (2, 3)


def test_several_outputs_and_anomaly_traceback_on_the_binary_path():
    def run(lib):
        x = lib.tensor([[1.0, 5.0], [3.0, 2.0]], requires_grad=True)
        values, _ = x.max(dim=0)
        (values * 2.0).sum().backward()
        return x.grad

    chainrule_grad, torch_grad = _both(run)
    _close(chainrule_grad, torch_grad)
    with cr.autograd.set_detect_anomaly(True):
        x = cr.tensor([1.0], requires_grad=True)
        y = x * x
    assert y.grad_fn._traceback and "test_engine_fast_paths" in "".join(y.grad_fn._traceback)
    assert (x * x).grad_fn._traceback is None


# ---------------------------------------------------------------- round two (issue 15): the
# inline node building, the lazy version counter, the walk's inline rule call


def test_a_fresh_output_has_no_version_counter_object_until_one_is_needed():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert (x * 2.0)._vbox is None and (x * 2.0)._version == 0  # no list per op output
    y = cr.tensor([1.0, 2.0]) * 2.0
    assert y._vbox is None
    v = y.view(2)  # a view shares the counter, which is made for it now
    assert v._version_box is y._version_box and y._version == 0
    v.add_(1.0)
    assert y._version == v._version == 1
    d = y.detach()  # so does detach
    d.mul_(2.0)
    assert y._version == 2 and d._version == 2
    t = torch.tensor([1.0, 2.0]) * 2.0
    t.view(2).add_(1.0)
    assert t._version == 1  # torch counts the same way


def test_saving_a_tensor_without_a_counter_then_changing_it_in_place_is_detected():
    def run(lib):
        x = lib.tensor([0.5, 1.5], requires_grad=True)
        a = x * 1.0  # fresh: no counter object yet
        b = a.exp() * a  # a saved at version 0 by mul
        a.mul_(3.0)  # in place on a non-leaf: the counter is made and bumped
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            b.sum().backward()
        y = a.tanh()  # tanh saves its output, which has no counter
        y.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
        return True

    assert _both(run) == (True, True)


def test_two_inputs_sharing_one_array_resolve_saved_tensors_like_the_general_path():
    def run(lib):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        d = x.detach()  # the same memory, no gradient: mul saves d's array, found as x's first
        y = x * d
        y.sum().backward()
        grad = x.grad.clone()
        z = x * x.detach()
        x.detach().add_(1.0)  # shares x's version counter, as in torch
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()
        return grad

    chainrule_grad, torch_grad = _both(run)
    _close(chainrule_grad, torch_grad)


def test_the_inline_walk_sums_broadcast_gradients_and_casts_dtypes_like_torch():
    def run(lib):
        a = lib.ones(3, 1, requires_grad=True)
        b = lib.ones(1, 4, dtype=lib.float64, requires_grad=True)
        c = lib.ones(4, requires_grad=True)
        out = ((a + b) * c).tanh()  # a + b broadcasts and promotes to float64
        out.sum().backward()
        return a.grad, b.grad, c.grad

    for ours, theirs in zip(*_both(run)):
        assert ours.dtype == getattr(cr, str(theirs.dtype).split(".")[1])
        assert tuple(ours.shape) == tuple(theirs.shape)
        _close(ours, theirs)


def test_a_long_chain_through_constants_walks_and_double_backwards_like_torch():
    def run(lib):
        x = lib.tensor(0.7, requires_grad=True)
        y = x
        for _ in range(2000):  # x * constant nodes are descended into without an iterator
            y = 0.999 * y + 0.001
            y = y * 1.0001 - 0.0001
        (g,) = lib.autograd.grad(y * y, x, create_graph=True)
        g.backward()
        return g, x.grad

    for ours, theirs in zip(*_both(run)):
        np.testing.assert_allclose(float(ours.detach()), float(theirs.detach()), rtol=1e-4)


@pytest.mark.parametrize("op", ["sin", "exp", "sign", "frac", "sqrt", "floor"])
def test_unary_saves_modes_give_torch_gradients_twice(op):
    def run(lib):
        x = lib.tensor([0.3, 1.7, 2.2], requires_grad=True)
        y = getattr(x, op)()
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        second = lib.autograd.grad(g.sum(), x, allow_unused=True)[0] if g.requires_grad else None
        return g, second

    (g, second), (tg, tsecond) = _both(run)
    _close(g, tg)
    assert (second is None) == (tsecond is None)
    if second is not None:
        _close(second, tsecond)


def test_hooks_and_retained_grads_mark_the_node_for_the_general_walk():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    a, b, c = x * 2.0, x * 3.0, x * 4.0
    assert not a.grad_fn._hooked
    b.retain_grad()
    c.grad_fn.register_hook(lambda grads_in, grads_out: None)
    a.register_hook(lambda g: g * 10)
    assert a.grad_fn._hooked and b.grad_fn._hooked and c.grad_fn._hooked
    assert not (x * 5.0).grad_fn._hooked  # per node, not per class
    (a + b + c).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [27.0, 27.0])
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])


def test_backward_stays_silent_on_inf_and_restores_the_callers_numpy_error_state():
    x = cr.tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(all="raise"):
        y = (1.0 / x) * 2.0  # forward divides by zero: torch is silent
        y.sum().backward()  # backward's arithmetic (inside the walk's silent state) too
        assert np.geterr()["divide"] == "raise"
    assert np.isinf(x.grad.numpy()[0])
    assert np.geterr()["divide"] == "warn"


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_unrecorded_arithmetic_with_numbers_matches_numpy_and_torch_bit_for_bit(dtype):
    # the unrecorded path passes a number as its cached 0-d array of the tensor's dtype
    values = np.array([0.1, -2.5, 3.3, 1e4, 0.0], dtype=dtype)
    x, t = cr.from_numpy(values.copy()), torch.from_numpy(values.copy())
    for number in (0.9, 3, -1e-3, 1e300, 7):
        for fn in (lambda a, n: a * n, lambda a, n: n * a, lambda a, n: a + n, lambda a, n: n - a,
                   lambda a, n: a - n, lambda a, n: a / n, lambda a, n: n / a):
            with np.errstate(all="raise"):  # silent, as torch: 1e300 overflows the dtype, n / 0
                ours = fn(x, number).numpy()
            with np.errstate(all="ignore"):
                expected = fn(values, number)  # NumPy with the Python number itself (NEP 50)
                if fn(2.0, 1.0) == 0.5:  # number / tensor: torch's reciprocal(tensor) * number
                    expected = np.reciprocal(values) * number
            assert ours.dtype == expected.dtype == fn(t, number).numpy().dtype
            if dtype != "float16" or fn(2.0, 5.0) in (7.0, 3.0, -3.0):
                # (torch's float16 * and / keep the number in float32, where NumPy rounds it to float16)
                np.testing.assert_array_equal(ours, expected)
            np.testing.assert_array_equal(ours, fn(t, number).numpy())
    with cr.no_grad():
        w = cr.tensor([1.0, 2.0], requires_grad=True)
        np.testing.assert_array_equal((w * 0.9).numpy(), np.float32([1.0, 2.0]) * 0.9)


def test_rarely_set_tensor_state_is_per_tensor_and_users_may_set_attributes_as_in_torch():
    a, b = cr.tensor([1.0, 2.0], requires_grad=True), cr.tensor([3.0], requires_grad=True)
    assert vars(a) == {}
    out = a * 2.0
    assert vars(out) == {}  # an op's output stores slots only
    assert set(vars(a)) == {"_accumulator"}  # a leaf used in a recorded op keeps its sink
    calls = []
    a.register_hook(lambda g: calls.append("a"))
    a.register_post_accumulate_grad_hook(lambda t: calls.append("a post"))
    assert b._hooks is None and b._post_accumulate_grad_hooks is None  # class defaults
    h = a * 1.0
    h.retain_grad()
    assert h.retains_grad and not (a * 1.0).retains_grad
    (h.sum() + b.sum()).backward()
    assert calls == ["a", "a post"] and b.grad is not None and h.grad is not None
    for lib in (cr, torch):
        t = lib.ones(2)
        t.note = "mine"  # torch tensors take arbitrary attributes
        assert t.note == "mine"
