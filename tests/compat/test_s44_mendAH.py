"""Session 44, lane mendAH: addcmul, addcdiv and lerp under a dispatch mode, make_fx and second order,
each checked against torch on the same inputs."""

import importlib

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _inputs(lib, requires_grad, dtype="float64"):
    rng = np.random.default_rng(0)
    x, a, b = rng.standard_normal((3, 4))
    b = np.abs(b) + 0.5
    if dtype.startswith("complex"):
        x, a, b = x + 1j * a[::-1], a - 0.5j * x, b + 1j * x[::-1]
    return [lib.tensor(v, dtype=getattr(lib, dtype)).requires_grad_(requires_grad) for v in (x, a, b)]


# each op out of place and in place, as a function of (lib, x, a, b)
_CALLS = {
    "addcmul": lambda lib, x, a, b: lib.addcmul(x, a, b),
    "addcmul_value": lambda lib, x, a, b: lib.addcmul(x, a, b, value=2),
    "addcmul_value_float_one": lambda lib, x, a, b: x.addcmul(a, b, value=1.0),
    "addcdiv": lambda lib, x, a, b: lib.addcdiv(x, a, b),
    "addcdiv_value": lambda lib, x, a, b: lib.addcdiv(x, a, b, value=-0.5),
    "lerp_scalar": lambda lib, x, a, b: lib.lerp(x, a, 0.3),
    "lerp_scalar_far": lambda lib, x, a, b: x.lerp(a, 0.75),
    "lerp_tensor": lambda lib, x, a, b: lib.lerp(x, a, b),
    "addcmul_": lambda lib, x, a, b: x.clone().addcmul_(a, b, value=2),
    "addcdiv_": lambda lib, x, a, b: x.clone().addcdiv_(a, b),
    "lerp_scalar_": lambda lib, x, a, b: x.clone().lerp_(a, 0.25),
    "lerp_tensor_": lambda lib, x, a, b: x.clone().lerp_(a, b),
}


def _logged(lib, call, requires_grad):
    """The (func, kwargs) a logging TorchDispatchMode sees, less clone (whose kwargs are not this lane's), and the result."""
    seen = []

    class Log(lib.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if str(func) != "aten.clone.default":
                seen.append((str(func), len(args), sorted(kwargs.items()), [type(a).__name__ for a in args[3:]]))
            return func(*args, **kwargs)

    x, a, b = _inputs(lib, requires_grad)
    with Log():
        out = call(lib, x, a, b)
    return seen, out


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("name", list(_CALLS))
def test_a_dispatch_mode_sees_torchs_one_aten_op(name, requires_grad):
    call = _CALLS[name]
    seen, out = _logged(chainrule, call, requires_grad)
    expected, expected_out = _logged(torch, call, requires_grad)
    assert seen == expected
    np.testing.assert_array_equal(out.detach().numpy(), expected_out.detach().numpy())
    if requires_grad:
        assert out.grad_fn.name() == expected_out.grad_fn.name()


@pytest.mark.parametrize("name", [n for n in _CALLS if not n.endswith("_")])
def test_under_a_mode_the_node_and_gradients_are_the_ones_without_it(name):
    call = _CALLS[name]
    inputs = _inputs(chainrule, True)
    plain = call(chainrule, *inputs)
    plain_grads = chainrule.autograd.grad(plain.sum(), inputs, allow_unused=True)

    class PassThrough(chainrule.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    with PassThrough():
        traced = call(chainrule, *inputs)
    grads = chainrule.autograd.grad(traced.sum(), inputs, allow_unused=True)
    assert type(traced.grad_fn).__name__ == type(plain.grad_fn).__name__
    assert [f is None for f, _ in traced.grad_fn.next_functions] == [f is None for f, _ in plain.grad_fn.next_functions]
    np.testing.assert_array_equal(traced.detach().numpy(), plain.detach().numpy())
    for got, want in zip(grads, plain_grads):
        assert (got is None) == (want is None)
        if got is not None:
            np.testing.assert_array_equal(got.numpy(), want.numpy())


def _graph_lines(lib, call):
    make_fx = importlib.import_module(lib.__name__ + ".fx.experimental.proxy_tensor").make_fx
    x, a, b = _inputs(lib, False, "float32")
    graph_module = make_fx(lambda x, a, b: call(lib, x, a, b))(x, a, b)
    return [line.strip() for line in graph_module.code.strip().splitlines()[1:]], graph_module(x, a, b)


@pytest.mark.parametrize("name", list(_CALLS))
def test_make_fx_graph_is_torchs(name):
    lines, out = _graph_lines(chainrule, _CALLS[name])
    expected, expected_out = _graph_lines(torch, _CALLS[name])
    assert lines == expected
    np.testing.assert_array_equal(out.numpy(), expected_out.numpy())


def _nested_log(lib) -> list:
    seen = []

    class Log(lib.utils._python_dispatch.TorchDispatchMode):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append((self.tag, str(func)))
            return func(*args, **(kwargs or {}))

    x, a, b = _inputs(lib, False)
    with Log("inner"), Log("outer"):
        lib.addcdiv(x, a, b, value=3)
        lib.lerp(x, a, b)
    return seen


def test_nested_modes_each_see_the_one_op():
    # the composite's parts stay below the dispatch layer: the inner mode sees the op the outer one ran
    assert _nested_log(chainrule) == _nested_log(torch)


# ---------------------------------------------------------------- 2. their double-backward graphs
_SECOND_ORDER = {
    "addcmul": lambda lib, x, a, b: lib.addcmul(x, a, b),
    "addcmul_value": lambda lib, x, a, b: lib.addcmul(x, a, b, value=0.5),
    "addcdiv": lambda lib, x, a, b: lib.addcdiv(x, a, b),
    "addcdiv_value": lambda lib, x, a, b: lib.addcdiv(x, a, b, value=-2),
    "lerp_scalar": lambda lib, x, a, b: lib.lerp(x, a, 0.3),
    "lerp_scalar_far": lambda lib, x, a, b: lib.lerp(x, a, 0.8),
    "lerp_tensor": lambda lib, x, a, b: lib.lerp(x, a, b),
}


def _walk(fn) -> list:
    """The names of the nodes reachable from ``fn``, breadth first (each once)."""
    names, seen, queue = [], set(), [fn]
    while queue:
        node = queue.pop(0)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.append(node.name())
        queue.extend(child for child, _ in node.next_functions)
    return names


def _gradient_graphs(lib, call, dtype):
    inputs = _inputs(lib, True, dtype)
    out = call(lib, *inputs)
    seed = lib.ones_like(out).requires_grad_()
    grads = lib.autograd.grad(out, inputs, seed, create_graph=True, allow_unused=True)
    return [None if g is None else _walk(g.grad_fn) for g in grads], grads, inputs, seed


@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128"])
@pytest.mark.parametrize("name", list(_SECOND_ORDER))
def test_double_backward_graph_is_torchs(name, dtype):
    call = _SECOND_ORDER[name]
    graphs, grads, inputs, seed = _gradient_graphs(chainrule, call, dtype)
    expected, expected_grads, expected_inputs, expected_seed = _gradient_graphs(torch, call, dtype)
    assert graphs == expected
    # and the second derivatives through them are torch's
    total = sum((g * g.conj()).sum().real for g in grads if g is not None)
    expected_total = sum((g * g.conj()).sum().real for g in expected_grads if g is not None)
    second = chainrule.autograd.grad(total, [*inputs, seed], allow_unused=True)
    expected_second = torch.autograd.grad(expected_total, [*expected_inputs, expected_seed], allow_unused=True)
    for got, want in zip(second, expected_second):
        assert (got is None) == (want is None)
        if got is not None:
            np.testing.assert_allclose(got.resolve_conj().numpy(), want.resolve_conj().numpy(),
                                       rtol=1e-5 if dtype == "float32" else 1e-12)


_COMPLEX_NUMBERS = {
    "addcmul_complex_value": lambda lib, x, a, b: lib.addcmul(x, a, b, value=1 - 2j),
    "addcdiv_complex_value": lambda lib, x, a, b: lib.addcdiv(x, a, b, value=0.5 + 1j),
    "lerp_complex_weight": lambda lib, x, a, b: lib.lerp(x, a, 0.3 + 0.2j),
}


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
@pytest.mark.parametrize("name", list(_SECOND_ORDER))
def test_second_order_matches_finite_differences(name, dtype):
    call = _SECOND_ORDER[name]
    inputs = tuple(_inputs(chainrule, True, dtype))
    assert chainrule.autograd.gradgradcheck(lambda *t: call(chainrule, *t), inputs)


@pytest.mark.parametrize("name", list(_COMPLEX_NUMBERS))
def test_a_complex_number_is_conjugated_at_every_order(name):
    # the number's node (MulBackward1) conjugates it in its own backward too
    call = _COMPLEX_NUMBERS[name]
    inputs = tuple(_inputs(chainrule, True, "complex128"))
    assert chainrule.autograd.gradgradcheck(lambda *t: call(chainrule, *t), inputs)
    graphs = _gradient_graphs(chainrule, call, "complex128")[0]
    assert graphs == _gradient_graphs(torch, call, "complex128")[0]


# ---------------------------------------------------------------- 3. complex values rounded as torch's kernels
def _complex(n, dtype, shift=0.0):
    rng = np.random.default_rng(n)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n) + shift).astype(dtype)


# sizes torch's vectorised loop covers whole (AVX2 and AVX-512 widths): its scalar loop for the last
# few elements is compiled with contracted multiply-adds that this does not follow
@pytest.mark.parametrize("n", [64, 1024])
@pytest.mark.parametrize("value", [1, 0.37, 1 - 2j])
def test_complex64_addcmul_rounds_as_torchs_unfused_products(value, n):
    x, a, b = (_complex(n + k, np.complex64)[:n] for k in range(3))
    expected = torch.addcmul(*(torch.from_numpy(v) for v in (x, a, b)), value=value).numpy()
    np.testing.assert_array_equal(chainrule.addcmul(*(chainrule.from_numpy(v) for v in (x, a, b)), value=value).numpy(),
                                  expected)
    written = chainrule.from_numpy(x.copy()).addcmul_(chainrule.from_numpy(a), chainrule.from_numpy(b), value=value)
    np.testing.assert_array_equal(written.numpy(), expected)
    recorded = chainrule.addcmul(chainrule.from_numpy(x).requires_grad_(), chainrule.from_numpy(a),
                                 chainrule.from_numpy(b), value=value)
    np.testing.assert_array_equal(recorded.detach().numpy(), expected)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("n", [64, 1024])
@pytest.mark.parametrize("weight", [0.3, 0.8])
def test_complex_lerp_by_a_number_rounds_as_torchs(weight, n, dtype):
    x, end = _complex(n, dtype), _complex(n + 1, dtype)[:n]
    expected = torch.lerp(torch.from_numpy(x), torch.from_numpy(end), weight).numpy()
    np.testing.assert_array_equal(chainrule.lerp(chainrule.from_numpy(x), chainrule.from_numpy(end), weight).numpy(),
                                  expected)
    recorded = chainrule.from_numpy(x).requires_grad_().lerp(chainrule.from_numpy(end), weight)
    np.testing.assert_array_equal(recorded.detach().numpy(), expected)


def test_complex_fused_values_keep_their_gradients_under_forward_ad():
    # forward AD runs the composite part by part: the exact values ride on it as a constant correction
    fwAD = chainrule.autograd.forward_ad
    x, a, b = (_complex(64 + k, np.complex64)[:64] for k in range(3))
    tangent = _complex(70, np.complex64)[:64]
    with fwAD.dual_level():
        dual = fwAD.make_dual(chainrule.from_numpy(x), chainrule.from_numpy(tangent))
        out = chainrule.addcmul(dual, chainrule.from_numpy(a), chainrule.from_numpy(b), value=0.5)
        primal, out_tangent = fwAD.unpack_dual(out)
    expected = torch.addcmul(*(torch.from_numpy(v) for v in (x, a, b)), value=0.5).numpy()
    np.testing.assert_array_equal(primal.numpy(), expected)
    np.testing.assert_array_equal(out_tangent.numpy(), tangent)
