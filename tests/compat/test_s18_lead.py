"""Session 18, lead: expand's views and autograd.grad's refusals, each against torch 2.13."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("call", [
    lambda lib, x: x.expand(2, 3),
    lambda lib, x: x.expand(-1, -1),
    lambda lib, x: x.expand(x.shape),
    lambda lib, x: x.expand_as(x),
    lambda lib, x: lib.broadcast_to(x, (2, 3)),
    lambda lib, x: x.expand(1, 2, 3),
])
def test_expand_to_the_same_elements_is_a_new_view_with_its_own_node(call):
    for lib in (torch, chainrule):
        x = lib.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], requires_grad=True)
        y = call(lib, x)
        assert y is not x
        assert type(y.grad_fn).__name__ == "ExpandBackward0"
        assert y._base is x
        (y * lib.arange(6.0).reshape(y.shape)).sum().backward()
        if lib is torch:
            expected = x.grad.numpy()
        else:
            assert (x.grad.numpy() == expected).all()


def test_broadcast_tensors_hands_back_a_tensor_already_of_the_shape():
    for lib in (torch, chainrule):
        x = lib.ones(2, 3, requires_grad=True)
        first, second = lib.broadcast_tensors(x, lib.ones(1, 3))
        assert first is x
        assert type(second.grad_fn).__name__ != "ExpandBackward0"  # a constant: no node at all
        assert second.grad_fn is None


def test_writes_through_an_expand_that_repeats_nothing_reach_the_base():
    # a leading size-1 dim repeats no element: torch writes through it; NumPy's broadcast_to view
    # was read-only, so chainrule refused
    for lib in (torch, chainrule):
        x = lib.zeros(2, 3)
        x.expand(1, 2, 3).add_(1)
        x.expand(2, 3)[0, 1] = 5.0
        assert x.tolist() == [[1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]


def test_writes_through_a_repeating_expand_are_refused_as_torch_refuses():
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
            lib.zeros(1, 3).expand(2, 3).add_(1)


def test_unused_and_non_differentiable_inputs_are_refused_in_torch_words():
    for lib in (torch, chainrule):
        x = lib.ones(2, requires_grad=True)
        unused = lib.ones(1, requires_grad=True)
        with pytest.raises(RuntimeError) as caught:
            lib.autograd.grad((x * 2).sum(), [x, unused])
        assert str(caught.value) == ("The differentiated Tensor at index 1 appears to not have been used in the "
                                     "graph. Set allow_unused=True if this is the desired behavior.")
        with pytest.raises(RuntimeError) as caught:
            lib.autograd.grad((x * 2).sum(), [x, lib.ones(1)])
        assert str(caught.value) == "One of the differentiated Tensors does not require grad"


def _add_one_in_place(lib):
    class AddOne(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    return AddOne


def _facts(lib, tensor, other):
    return (tensor is other, tensor.requires_grad, tensor.grad_fn is None, tensor._version,
            tensor._base is other)


def test_a_dirty_input_under_no_grad_comes_back_as_a_detached_alias():
    seen = []
    for lib in (torch, chainrule):
        leaf = lib.ones(3, requires_grad=True)
        middle = leaf * 2
        with lib.no_grad():
            out = _add_one_in_place(lib).apply(middle)
        assert type(middle.grad_fn).__name__ == "MulBackward0"  # the input keeps its history
        assert out.tolist() == middle.tolist() == [3.0, 3.0, 3.0]
        seen.append(_facts(lib, out, middle))
    assert seen[0] == seen[1] == (False, False, True, 2, False)


def test_outputs_without_history_as_torch_hands_them_back():
    def run(lib):
        class Pair(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, y):
                ctx.mark_non_differentiable(y)
                return x, y

            @staticmethod
            def backward(ctx, grad_x, grad_y):
                return grad_x, None

        a, b, c = lib.ones(3, requires_grad=True), lib.ones(3, requires_grad=True), lib.ones(3)
        facts = []
        p, q = Pair.apply(a, b)  # q: marked non-differentiable, an input that requires grad
        facts.append(_facts(lib, q, b))
        with lib.no_grad():
            p, q = Pair.apply(a, b)  # nothing recorded: inputs that require grad come back detached
        facts += [_facts(lib, p, a), _facts(lib, q, b)]
        p, q = Pair.apply(c, c)  # nothing requires grad: an unchanged input comes back as a fresh view
        facts.append(_facts(lib, p, c))
        return facts

    assert run(chainrule) == run(torch)


# ---------------------------------------------------------------- torch.nn.grad
@pytest.mark.parametrize("dims, kwargs", [
    (1, dict(stride=2, padding=1, dilation=1, groups=2)),
    (2, dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1), groups=1)),
    (3, dict(stride=1, padding=1, dilation=1, groups=2)),
])
def test_nn_grad_convolution_gradients_match_torch(dims, kwargs):
    rng = np.random.default_rng(dims)
    input_shape, weight_shape = (2, 4) + (7,) * dims, (6, 4 // kwargs["groups"]) + (3,) * dims
    x, w = rng.standard_normal(input_shape), rng.standard_normal(weight_shape)
    conv = f"conv{dims}d"
    out_shape = tuple(getattr(torch.nn.functional, conv)(torch.tensor(x), torch.tensor(w), **kwargs).shape)
    g = rng.standard_normal(out_shape)
    results = {}
    for lib in (torch, chainrule):
        grad_input = getattr(lib.nn.grad, conv + "_input")(input_shape, lib.tensor(w), lib.tensor(g), **kwargs)
        grad_weight = getattr(lib.nn.functional.grad, conv + "_weight")(lib.tensor(x), weight_shape, lib.tensor(g),
                                                                        **kwargs)
        results[lib] = (grad_input.numpy(), grad_weight.numpy(), grad_input.dtype, grad_input.requires_grad)
    np.testing.assert_allclose(results[chainrule][0], results[torch][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[chainrule][1], results[torch][1], rtol=1e-12, atol=1e-12)
    assert results[chainrule][2] == chainrule.float64 and results[chainrule][3] is results[torch][3] is False


def test_nn_grad_is_differentiable_where_its_operands_require_grad():
    rng = np.random.default_rng(5)
    w = chainrule.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    g = chainrule.tensor(rng.standard_normal((1, 3, 4, 4)), requires_grad=True)
    assert chainrule.autograd.gradcheck(
        lambda w, g: chainrule.nn.grad.conv2d_input((1, 2, 6, 6), w, g, padding=0), (w, g))
    x = chainrule.tensor(rng.standard_normal((1, 2, 6, 6)), requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda x, g: chainrule.nn.grad.conv2d_weight(x, (3, 2, 3, 3), g), (x, g))
    with chainrule.no_grad():
        assert not chainrule.nn.grad.conv2d_input((1, 2, 6, 6), w, g).requires_grad


# ---------------------------------------------------------------- names torch has and chainrule lacked
def test_replace_all_batch_norm_modules_as_torch():
    def run(lib):
        nn = lib.nn
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Sequential(nn.BatchNorm1d(4)))
        returned = lib.func.replace_all_batch_norm_modules_(model)
        norm = model[1]
        return (returned is model, norm.running_mean, norm.running_var, norm.num_batches_tracked,
                norm.track_running_stats, model[2][0].track_running_stats, list(model.state_dict()))

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("call", [
    lambda lib: lib.sym_max(2, 3), lambda lib: lib.sym_max(2, 3.0), lambda lib: lib.sym_min(True, 3),
    lambda lib: lib.sym_min(np.int64(4), 3), lambda lib: lib.sym_max(np.float32(1.5), 1),
    lambda lib: lib.sym_int(3.9), lambda lib: lib.sym_int(-3.9), lambda lib: lib.sym_int(True),
    lambda lib: lib.sym_float(3), lambda lib: lib.sym_not(1.5), lambda lib: lib.sym_not(0),
    lambda lib: lib.sym_sqrt(2), lambda lib: lib.sym_sum([1, 2, 3]), lambda lib: lib.sym_sum(1.5, 2),
    lambda lib: lib.sym_ite(True, 1, 2), lambda lib: lib.sym_ite(False, "a", "b"),
    lambda lib: lib.sym_max("a", 1), lambda lib: lib.sym_ite(1, 2, 3), lambda lib: lib.sym_ite(True, 1, 2.0),
    lambda lib: lib.sym_int("x"),
])
def test_sym_helpers_on_python_numbers_as_torch(call):
    def outcome(lib):
        try:
            value = call(lib)
        except Exception as error:
            return type(error), str(error)
        return type(value), value

    assert outcome(chainrule) == outcome(torch)


def test_max_pool1d_with_indices_and_the_new_copy_and_split_spellings():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9))
    cases = [
        lambda lib, t: lib.max_pool1d_with_indices(t, 3, 2, 1),
        lambda lib, t: lib.max_pool1d_with_indices(t, 2, []),
        lambda lib, t: lib.alias_copy(t),
        lambda lib, t: lib.view_as_real_copy(lib.complex(t, t * 2)),
        lambda lib, t: lib.view_as_complex_copy(t.detach()[..., :2].contiguous()),
        lambda lib, t: lib.unsafe_split_with_sizes(t, [4, 5], -1),
        lambda lib, t: t.unsafe_split_with_sizes([1, 2], 1),
    ]
    for number, case in enumerate(cases):
        results = {}
        for lib in (torch, chainrule):
            t = lib.tensor(x, requires_grad=True)
            out = case(lib, t)
            pieces = out if isinstance(out, tuple) else (out,)
            results[lib] = [(p.detach().numpy(), type(p.grad_fn).__name__) for p in pieces]
        assert len(results[chainrule]) == len(results[torch])
        for (expected, expected_node), (actual, actual_node) in zip(results[torch], results[chainrule]):
            np.testing.assert_array_equal(actual, expected)
            # (torch's 1-d pool runs its 2-d kernel: a SqueezeBackward1 on top, a known graph-shape difference)
            assert actual_node == expected_node or number < 2


def test_view_as_complex_copy_refuses_a_recorded_input_as_torch():
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError, match="^view_as_complex_copy does not support automatic differentiation "
                                               "for outputs with complex dtype.$"):
            lib.view_as_complex_copy(lib.ones(3, 2, requires_grad=True))
        with lib.no_grad():
            assert lib.view_as_complex_copy(lib.ones(3, 2, requires_grad=True)).tolist() == [1 + 1j] * 3


def test_conj_physical_in_place_as_torch():
    for lib in (torch, chainrule):
        z = lib.tensor([1 + 2j, -3j])
        assert z.conj_physical_() is z and z.tolist() == [1 - 2j, 3j]
        assert lib.conj_physical_(z) is z and z.tolist() == [1 + 2j, -3j]
        r = lib.tensor([1.0, -2.0])
        assert r.conj_physical_() is r and r.tolist() == [1.0, -2.0]
