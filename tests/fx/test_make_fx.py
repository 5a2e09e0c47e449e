"""make_fx (torch.fx.experimental.proxy_tensor) against torch 2.13: the generated code of small
functions (the same text where chainrule's dispatch layer names the ops as torch), the traced
GraphModule giving the eager values, functionalize's out-of-place graph, the backward recorded
when tracing torch.func.grad, and the symbolic_shapes helpers on plain ints.

Accepted differences (docs/fx.md lists them): chainrule writes dims as non-negative
(``_softmax(cat, 1, False)`` where torch writes ``-1``), ``x.view(-1)`` with its resolved size,
``unsqueeze`` as a view, a constant made by ``torch.tensor`` without torch's ``lift_fresh_copy``,
no ``aten.detach`` for saved tensors, and a functionalized graph without torch's extra view
of a written base before the write through its view."""

import numpy as np
import pytest
import torch as real_torch
from torch.fx.experimental import proxy_tensor as torch_proxy_tensor

import chainrule
from chainrule.fx.experimental import proxy_tensor, symbolic_shapes
from chainrule.utils._pytree import tree_flatten

VALUES = np.array([0.3, -1.2, 0.8, 2.0, -0.4, 1.1], dtype=np.float32)


def _inputs(lib, *shapes):
    return [lib.tensor(VALUES[: int(np.prod(shape))].reshape(shape)) for shape in shapes]


def _code(lib, make_fx, f, *shapes):
    return make_fx(f(lib))(*_inputs(lib, *shapes)).code.strip()


def _both_codes(f, *shapes):
    return (_code(real_torch, torch_proxy_tensor.make_fx, f, *shapes),
            _code(chainrule, proxy_tensor.make_fx, f, *shapes))


def _sin_plus_cos(lib):
    return lambda x: x.sin() + x.cos()


def _mm_relu_sum(lib):
    return lambda a, b: lib.relu(a @ b).sum()


def _in_place_on_clone(lib):
    def f(x):
        y = x.clone()
        y.add_(1)
        y.mul_(2)
        return y
    return f


def _factories(lib):
    return lambda x: x + lib.ones(3) + lib.zeros(3)


def _arithmetic_with_numbers(lib):
    return lambda x, y: (x * y - y) * 2 + 1


def _two_outputs(lib):
    return lambda x: (x.sin(), x.cos())


def _index_and_reduce(lib):
    return lambda x: x[1] + x.transpose(0, 1).sum(1, keepdim=True).sum() + x.max()


def _slices_and_powers(lib):
    return lambda x: x[1:] - x[:-1] + x[1:].pow(2)


def _where_positive(lib):
    return lambda x: lib.where(x > 0, x, x * 0.5)


def _comparisons(lib):
    return lambda x, y: (x == y, x.ne(1.5), lib.logical_and(x > 0, y < 0), 0 < x)


def _max_along_dims(lib):
    return lambda x: (x.max(0), x.min(1, keepdim=True).values * 2, x.max(1)[1] + 1)


def _number_minus_tensor(lib):
    return lambda x: 1 - x + (2.5 - x.exp())


def _casts_permute_clamp(lib):
    return lambda x: (x.long(), x.to(lib.float64), x.permute(1, 0), x.clamp(-0.5, 0.5))


SAME_TEXT = [
    (_sin_plus_cos, [(3,)]),
    (_mm_relu_sum, [(2, 3), (3, 2)]),
    (_in_place_on_clone, [(3,)]),
    (_factories, [(3,)]),
    (_arithmetic_with_numbers, [(3,), (3,)]),
    (_two_outputs, [(3,)]),
    (_index_and_reduce, [(2, 3)]),
    (_slices_and_powers, [(4,)]),
    (_where_positive, [(4,)]),
    (_comparisons, [(3,), (3,)]),
    (_max_along_dims, [(2, 3)]),
    (_casts_permute_clamp, [(2, 3)]),
    (_number_minus_tensor, [(3,)]),
]


@pytest.mark.parametrize("f, shapes", SAME_TEXT, ids=[f.__name__ for f, _ in SAME_TEXT])
def test_generated_code_is_torchs(f, shapes):
    expected, got = _both_codes(f, *shapes)
    assert got == expected


@pytest.mark.parametrize("f, shapes", SAME_TEXT, ids=[f.__name__ for f, _ in SAME_TEXT])
def test_traced_module_gives_the_eager_values_on_new_inputs(f, shapes):
    gm = proxy_tensor.make_fx(f(chainrule))(*_inputs(chainrule, *shapes))
    fresh = [chainrule.tensor(np.random.default_rng(1).standard_normal(shape).astype(np.float32)) for shape in shapes]
    got, expected = gm(*[t.clone() for t in fresh]), f(chainrule)(*[t.clone() for t in fresh])
    got, expected = tree_flatten(got)[0], tree_flatten(expected)[0]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-6)


def test_graph_prints_torchs_targets():
    x = chainrule.tensor(VALUES[:3])
    text = str(proxy_tensor.make_fx(_sin_plus_cos(chainrule))(x).graph)
    expected = str(torch_proxy_tensor.make_fx(_sin_plus_cos(real_torch))(real_torch.tensor(VALUES[:3])).graph)
    assert text == expected


def test_dims_are_written_as_given():
    def f(lib):
        return lambda x: lib.cat([x, x], 1).softmax(-1)

    expected, got = _both_codes(f, (2, 3))
    assert got == expected  # (as given: s45 mendAK)


def test_tensor_made_inside_is_a_constant_attribute():
    def f(lib):
        return lambda x: x + lib.tensor([1.0, 2.0, 3.0])

    expected, got = _both_codes(f, (3,))
    assert got == expected  # torch copies a torch.tensor literal with aten.lift_fresh_copy, and so does chainrule
    gm = proxy_tensor.make_fx(f(chainrule))(chainrule.zeros(3))
    np.testing.assert_array_equal(gm._tensor_constant0.numpy(), [1.0, 2.0, 3.0])


def test_module_parameters_are_param_constants():
    chainrule.manual_seed(0)
    layer = chainrule.nn.Linear(3, 2)
    x = chainrule.tensor(VALUES.reshape(2, 3))
    gm = proxy_tensor.make_fx(lambda x: layer(x).relu())(x)
    assert gm._param_constant0 is layer.weight and gm._param_constant1 is layer.bias
    assert "torch.ops.aten.addmm.default(_param_constant1, x_1, t)" in gm.code
    np.testing.assert_allclose(gm(x).detach().numpy(), layer(x).relu().detach().numpy())


def test_in_place_write_on_an_input_happens_while_tracing_as_in_torch():
    def f(lib):
        def add_one(x):
            x.add_(1)
            return x
        return add_one

    torch_x, x = real_torch.zeros(2), chainrule.zeros(2)
    expected = torch_proxy_tensor.make_fx(f(real_torch))(torch_x).code
    got = proxy_tensor.make_fx(f(chainrule))(x).code
    assert got == expected
    np.testing.assert_array_equal(x.numpy(), torch_x.numpy())


def _write_through_a_view(x):
    x.add_(1)
    y = x.view(-1)
    y.mul_(2)
    return x.sin()


def test_functionalize_records_out_of_place_ops_and_copies_back():
    x = chainrule.tensor(VALUES[:3])
    gm = proxy_tensor.make_fx(chainrule.func.functionalize(_write_through_a_view))(x.clone())
    ops = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    aten = chainrule.ops.aten
    # the write through y is mul, then a view back to x's shape, then y made again from the new x;
    # torch also views the new x once before the write (add, view, view, mul, view, view, sin, copy_)
    assert ops == [aten.add.Tensor, aten.view.default, aten.mul.Tensor, aten.view.default, aten.view.default,
                   aten.sin.default, aten.copy_.default]
    torch_gm = torch_proxy_tensor.make_fx(real_torch.func.functionalize(_write_through_a_view))(
        real_torch.tensor(VALUES[:3]))
    torch_ops = [str(n.target) for n in torch_gm.graph.nodes if n.op == "call_function"]
    assert [op for op in torch_ops if op != "aten.view.default"] == \
        [str(op) for op in ops if op != aten.view.default]
    # the graph computes the result and writes the input as the function does
    fresh = chainrule.tensor(VALUES[3:6])
    traced_input, eager_input = fresh.clone(), fresh.clone()
    np.testing.assert_allclose(gm(traced_input).numpy(), _write_through_a_view(eager_input).numpy())
    np.testing.assert_allclose(traced_input.numpy(), eager_input.numpy())


def test_functionalize_rejects_a_write_through_a_strided_view():
    def f(x):
        x.t()[0].add_(1)
        return x

    with pytest.raises(NotImplementedError, match="write through a view made by"):
        proxy_tensor.make_fx(chainrule.func.functionalize(f))(chainrule.zeros(2, 2))


def test_grad_records_the_backward():
    def f(lib):
        return lib.func.grad(lambda x: x.sin().sum())

    expected, got = _both_codes(f, (3,))
    # (the seed with torch's keyword arguments, expanded as it is: torch's text)
    assert got == expected
    gm = proxy_tensor.make_fx(f(chainrule))(chainrule.tensor(VALUES[:3]))
    fresh = chainrule.tensor(VALUES[3:6])
    np.testing.assert_allclose(gm(fresh).numpy(), np.cos(VALUES[3:6]), rtol=1e-6)


def test_decomposition_table_replaces_an_op_by_its_recorded_decomposition():
    def f(lib):
        return lambda x: x.sin() * 3

    table = {real_torch.ops.aten.mul.Tensor: lambda a, b: a + a + a}
    expected = torch_proxy_tensor.make_fx(f(real_torch), table)(real_torch.tensor(VALUES[:3])).code
    gm = proxy_tensor.make_fx(f(chainrule), {chainrule.ops.aten.mul.Tensor: lambda a, b: a + a + a})(
        chainrule.tensor(VALUES[:3]))
    assert gm.code == expected
    np.testing.assert_allclose(gm(chainrule.tensor(VALUES[:3])).numpy(), np.sin(VALUES[:3]) * 3, rtol=1e-6)


def test_placeholders_follow_the_signature():
    gm = proxy_tensor.make_fx(lambda *args: args[0] + args[1])(chainrule.ones(2), chainrule.ones(2))
    expected = torch_proxy_tensor.make_fx(lambda *args: args[0] + args[1])(real_torch.ones(2), real_torch.ones(2))
    assert gm.code == expected.code
    gm = proxy_tensor.make_fx(lambda x, n: x * n)(chainrule.ones(2), 3)
    assert gm.code == torch_proxy_tensor.make_fx(lambda x, n: x * n)(real_torch.ones(2), 3).code


def test_fake_and_symbolic_tracing_are_not_built():
    for mode in ("fake", "symbolic"):
        with pytest.raises(NotImplementedError, match=f"tracing_mode='{mode}'"):
            proxy_tensor.make_fx(lambda x: x, tracing_mode=mode)
    with pytest.raises(AssertionError, match="Unexpected tracing type: eager"):
        proxy_tensor.make_fx(lambda x: x, tracing_mode="eager")


def test_tensors_inside_a_container_argument_are_refused():
    with pytest.raises(NotImplementedError, match="one by one"):
        proxy_tensor.make_fx(lambda xs: xs[0] + xs[1])([chainrule.ones(2), chainrule.ones(2)])


def test_isolated_graph_is_not_recorded_by_the_outer_trace():
    inner_codes = []

    def outer(x):
        inner = proxy_tensor.get_isolated_graphmodule(lambda a, b: a * b, (x, x), {})
        inner_codes.append(inner.code)
        return x.cos()

    gm = proxy_tensor.make_fx(outer)(chainrule.tensor(VALUES[:3]))
    assert [str(n.target) for n in gm.graph.nodes if n.op == "call_function"] == ["aten.cos.default"]
    # one tensor passed twice is read as the last input holding it, as torch does
    assert "mul = torch.ops.aten.mul.Tensor(arg1_1, arg1_1)" in inner_codes[0]
    assert "copy_" not in inner_codes[0]


def test_symbolic_shape_helpers_on_plain_ints():
    from torch.fx.experimental import symbolic_shapes as torch_shapes

    for name in ("guard_or_false", "guard_or_true", "statically_known_true", "expect_true"):
        for value in (True, False, 3 == 3, 2 > 3):
            assert getattr(symbolic_shapes, name)(value) == getattr(torch_shapes, name)(value)
    for value in (3, True):
        assert symbolic_shapes.is_concrete_int(value) == torch_shapes.is_concrete_int(value)
    with pytest.raises(AssertionError, match="Expected SymInt or int, got <class 'float'>"):
        symbolic_shapes.is_concrete_int(2.0)
    assert symbolic_shapes.has_free_symbols(4) == torch_shapes.has_free_symbols(4)
    assert symbolic_shapes.sym_eq((2, 3), (2, 3)) == torch_shapes.sym_eq((2, 3), (2, 3))
    assert symbolic_shapes.sym_eq((2, 3), (2, 4)) == torch_shapes.sym_eq((2, 3), (2, 4))


def test_library_code_can_ask_whether_it_is_traced():
    seen = []

    def f(x):
        seen.append(proxy_tensor.get_proxy_mode())
        with proxy_tensor.disable_proxy_modes_tracing():
            hidden = x.exp()  # computed, not recorded: read by the traced code as a constant
        return x.sin() + hidden

    assert proxy_tensor.get_proxy_mode() is None
    gm = proxy_tensor.make_fx(f)(chainrule.tensor(VALUES[:3]))
    assert isinstance(seen[0], proxy_tensor.ProxyTorchDispatchMode)
    assert [str(n.target) for n in gm.graph.nodes if n.op == "call_function"] == ["aten.sin.default",
                                                                                  "aten.add.Tensor"]
    assert real_torch.fx.experimental.proxy_tensor.get_proxy_mode() is None


def test_writes_by_fill_zero_and_copy_are_read_from_the_op_they_run():
    def copy_into_empty(x):
        y = chainrule.empty(3)
        y.copy_(x.sin())
        return y * 2

    def zero_input(x):
        x.zero_()
        return x + 1

    cases = [(lambda x: x.clone().fill_(2.0) + x, False), (copy_into_empty, False),
             (chainrule.func.functionalize(zero_input), True)]
    for f, copies_back in cases:
        gm = proxy_tensor.make_fx(f)(chainrule.tensor(VALUES[:3]))
        traced_input, eager_input = chainrule.tensor(VALUES[3:6]), chainrule.tensor(VALUES[3:6])
        np.testing.assert_allclose(gm(traced_input).numpy(), f(eager_input).numpy(), rtol=1e-6)
        np.testing.assert_array_equal(traced_input.numpy(), eager_input.numpy())
        assert ("copy_ = torch.ops.aten.copy_.default(x_1, zero)" in gm.code) == copies_back


def test_module_class_is_named_after_the_function():
    def f(x):
        return x.sin()

    for lib, make_fx in ((real_torch, torch_proxy_tensor.make_fx), (chainrule, proxy_tensor.make_fx)):
        assert type(make_fx(f)(lib.ones(2))).__name__ == "f"
    layer = chainrule.nn.ReLU()
    assert type(proxy_tensor.make_fx(layer)(chainrule.ones(2))).__name__ == "ReLU"


def _training_step(x, w):
    loss = (x @ w).tanh().sum()
    loss.backward()
    return w.grad


def test_backward_called_inside_is_recorded():
    def ops_of(lib, make_fx):
        x = lib.tensor(VALUES.reshape(2, 3))
        w = lib.full((3, 2), 0.1, requires_grad=True)
        gm = make_fx(_training_step)(x, w)
        return gm, [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]

    torch_gm, torch_ops = ops_of(real_torch, torch_proxy_tensor.make_fx)
    gm, ops = ops_of(chainrule, proxy_tensor.make_fx)
    # the same forward; the backward is tanh_backward after the detach of tanh's saved result, then mm's
    # gradient, which torch takes through t and chainrule through transpose
    assert torch_ops[:3] == ops[:3] == ["aten.mm.default", "aten.tanh.default", "aten.detach.default"]
    assert torch_ops[3:] == [op.replace("transpose.int", "t.default") for op in ops[3:]] == [
        "aten.sum.default", "aten.ones_like.default", "aten.expand.default", "aten.detach.default",
        "aten.tanh_backward.default", "aten.t.default", "aten.mm.default",
        "aten.detach.default"]  # (AccumulateGrad's detach of the gradient it steals, as torch's)
    x, w = VALUES.reshape(2, 3), np.full((3, 2), 0.2, dtype=np.float32)
    expected = torch_gm(real_torch.tensor(x), real_torch.tensor(w, requires_grad=True))
    got = gm(chainrule.tensor(x), chainrule.tensor(w, requires_grad=True))
    np.testing.assert_allclose(got.detach().numpy(), expected.numpy(), rtol=1e-6)


def _adds_through_a_view_of_a_temporary(a):
    b = a + 1
    c = b.view(-1)
    c.add_(1)
    return b


def _adds_through_a_view_of_the_input(a):
    b = a.view(-1)
    b.add_(1)
    return a


@pytest.mark.parametrize("f", [_adds_through_a_view_of_a_temporary, _adds_through_a_view_of_the_input])
@pytest.mark.parametrize("remove", ["mutations", "mutations_and_views"])
def test_functionalize_docstring_examples(f, remove):
    expected = torch_proxy_tensor.make_fx(real_torch.func.functionalize(f, remove=remove))(
        real_torch.tensor(VALUES[:2])).code
    gm = proxy_tensor.make_fx(chainrule.func.functionalize(f, remove=remove))(chainrule.tensor(VALUES[:2]))
    assert gm.code == expected  # (view(-1) written as given: s45 mendAK)
    traced_input, eager_input = chainrule.tensor(VALUES[2:4]), chainrule.tensor(VALUES[2:4])
    np.testing.assert_allclose(gm(traced_input).numpy(), f(eager_input).numpy())
    np.testing.assert_array_equal(traced_input.numpy(), eager_input.numpy())


def test_views_removed_are_recorded_as_copies():
    def f(lib):
        return lib.func.functionalize(lambda x: x.t()[0] * 2, remove="mutations_and_views")

    expected, got = _both_codes(f, (2, 3))
    assert got == expected  # (x.t() is aten.t: s45 mendAK)


def test_nodes_carry_their_value_and_print_readable_shows_it():
    def f(lib):
        return lambda x: (x.sin().sum(), x > 0)

    texts = []
    for lib, make_fx in ((real_torch, torch_proxy_tensor.make_fx), (chainrule, proxy_tensor.make_fx)):
        gm = make_fx(f(lib))(lib.ones(2, 3))
        texts.append(gm.print_readable(print_output=False))
    assert texts[1] == texts[0]
    node = next(n for n in gm.graph.nodes if n.name == "sin")
    assert tuple(node.meta["val"].shape) == (2, 3) and node.meta["tensor_meta"].dtype == chainrule.float32
