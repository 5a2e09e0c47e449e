"""Session 25, fixes lane 2: small behaviours left from session 24, each compared with torch.

In-place random fills of tensors in the graph (torch's UniformBackward0, BernoulliBackward1...),
"""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    try:
        return call(lib)
    except Exception as error:  # noqa: BLE001  (the class and message are what is compared)
        return type(error).__name__, str(error).split("\nException raised from")[0]


# ---- 1. random fills of tensors that require grad (or from probabilities that do)
def _graph_of(lib, make):
    """The fill's node, its edges, and the gradients a weighted sum gives the leaf and the probabilities."""
    leaf = lib.zeros(3, requires_grad=True)
    p = lib.full((3,), 0.5, requires_grad=True)
    y = make(lib, leaf, p)
    node = y.grad_fn
    edges = [None if n is None else n.name() for n, _ in node.next_functions]
    (y * lib.arange(3.0)).sum().backward()
    grads = [None if g is None else g.tolist() for g in (leaf.grad, p.grad)]
    return node.name(), type(node).__name__, y.requires_grad, y._version, edges, grads


RANDOM_FILLS = {
    "uniform_": lambda L, w, p: w.clone().uniform_(),
    "normal_": lambda L, w, p: w.clone().normal_(),
    "random_": lambda L, w, p: w.clone().random_(),
    "random_to": lambda L, w, p: w.clone().random_(3),
    "random_from_to": lambda L, w, p: w.clone().random_(1, 3),
    "exponential_": lambda L, w, p: w.clone().exponential_(),
    "cauchy_": lambda L, w, p: w.clone().cauchy_(),
    "log_normal_": lambda L, w, p: w.clone().log_normal_(),
    "geometric_": lambda L, w, p: w.clone().geometric_(0.5),
    "bernoulli_float": lambda L, w, p: w.clone().bernoulli_(0.5),
    "bernoulli_tensor": lambda L, w, p: w.clone().bernoulli_(p),
    "bernoulli_tensor_detached_p": lambda L, w, p: w.clone().bernoulli_(p.detach()),
    "bernoulli_into_plain_tensor": lambda L, w, p: L.zeros(2, 3).bernoulli_(p),
    "bernoulli_out_of_place": lambda L, w, p: L.bernoulli(p),
    "bernoulli_method": lambda L, w, p: p.bernoulli(),
}


@pytest.mark.parametrize("case", RANDOM_FILLS)
def test_random_fill_in_the_graph_is_recorded_as_torch_records_it(case):
    make = RANDOM_FILLS[case]
    assert _graph_of(chainrule, make) == _graph_of(torch, make)


def test_random_fill_through_a_view_is_recorded_on_its_base():
    def run(lib):
        leaf = lib.zeros(3, requires_grad=True)
        p = lib.full((3,), 0.5, requires_grad=True)
        base = leaf.clone()
        base[:2].bernoulli_(p[:2])
        (base * lib.arange(3.0)).sum().backward()
        return base.grad_fn.name(), leaf.grad.tolist(), p.grad.tolist()

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("fill", ["uniform_", "bernoulli_"])
def test_random_fill_of_a_leaf_that_requires_grad_is_refused_before_drawing(fill):
    def run(lib):
        lib.manual_seed(0)
        outcome = _outcome(lib, lambda L: getattr(L.zeros(3, requires_grad=True), fill)())
        return outcome, lib.rand(2).tolist()  # the stream did not move

    assert run(chainrule) == run(torch)


def test_bernoulli_with_a_float_p_records_a_node_without_a_derivative():
    def run(lib):
        p = lib.full((3,), 0.5, requires_grad=True)
        y = lib.bernoulli(p, 0.3)
        return type(y.grad_fn).__name__, y.requires_grad, _outcome(lib, lambda L: y.sum().backward())

    assert run(chainrule) == run(torch)


def test_random_fill_under_no_grad_records_nothing():
    def run(lib):
        p = lib.full((3,), 0.5, requires_grad=True)
        with lib.no_grad():
            y = lib.zeros(3).bernoulli_(p)
        return y.requires_grad, y.grad_fn, y._version

    assert run(chainrule) == run(torch)


# ---- 2. torch.fx prints the functional names bound to torch's C++ functions as torch does
FX_CALLS = {
    "gelu": lambda F, x: F.gelu(x),
    "linear": lambda F, x: F.linear(x, x),
    "softplus": lambda F, x: F.softplus(x),
    "softshrink": lambda F, x: F.softshrink(x),
    "logsigmoid": lambda F, x: F.logsigmoid(x),
    "one_hot": lambda F, x: F.one_hot(x.abs().long()),
    "avg_pool2d": lambda F, x: F.avg_pool2d(x.unsqueeze(0), 1),
    "elu_": lambda F, x: F.elu_(x.clone()),
    "leaky_relu_": lambda F, x: F.leaky_relu_(x.clone()),
    "hardtanh_": lambda F, x: F.hardtanh_(x.clone()),
    "hardshrink": lambda F, x: F.hardshrink(x),
    "relu_": lambda F, x: F.relu_(x.clone()),
    "pad": lambda F, x: F.pad(x, (1, 1)),
    "relu": lambda F, x: F.relu(x),
}


@pytest.mark.parametrize("case", FX_CALLS)
def test_fx_code_names_a_functional_as_torch_does_and_runs(case):
    def run(lib):
        call = FX_CALLS[case]

        class Model(lib.nn.Module):
            def forward(self, x):
                return call(lib.nn.functional, x)

        gm = lib.fx.symbolic_trace(Model())
        x = lib.arange(16.0).reshape(4, 4) / 8 - 1
        return gm.code, [node.name for node in gm.graph.nodes], gm(x).flatten().tolist()

    import torch.fx  # noqa: F401

    import chainrule.fx  # noqa: F401

    code, names, values = run(chainrule)
    assert (code, names) == run(torch)[:2]
    assert values == pytest.approx(run(torch)[2], rel=1e-6)


# ---- 3. a dim out of range: torch's IndexError names no op
DIM_CALLS = {
    "cumsum": lambda L, x, d: L.cumsum(x, dim=d),
    "cumsum_": lambda L, x, d: x.clone().cumsum_(d),
    "cumprod": lambda L, x, d: L.cumprod(x, d),
    "cummax": lambda L, x, d: L.cummax(x, d),
    "cummin": lambda L, x, d: L.cummin(x, d),
    "logcumsumexp": lambda L, x, d: L.logcumsumexp(x, d),
    "softmax": lambda L, x, d: L.softmax(x, d),
    "log_softmax": lambda L, x, d: L.nn.functional.log_softmax(x, d),
    "softmin": lambda L, x, d: L.nn.functional.softmin(x, d),
    "sum": lambda L, x, d: x.sum(d),
    "argmax": lambda L, x, d: x.argmax(d),
    "sort": lambda L, x, d: x.sort(d),
    "flip": lambda L, x, d: x.flip(d),
    "cumulative_trapezoid": lambda L, x, d: L.cumulative_trapezoid(x, dim=d),
}


@pytest.mark.parametrize("shape", [(2, 3), ()])
@pytest.mark.parametrize("dim", [5, -3, 2])
@pytest.mark.parametrize("case", DIM_CALLS)
def test_dim_out_of_range_message_is_torchs(case, dim, shape):
    def run(lib):
        return _outcome(lib, lambda L: DIM_CALLS[case](L, L.ones(shape), dim))

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("spacing", ["none", "dx", "x_0d", "x_1d"])
@pytest.mark.parametrize("dim", [0, -1, 5])
@pytest.mark.parametrize("op", ["trapezoid", "cumulative_trapezoid"])
def test_trapezoid_of_a_scalar_fails_as_torchs_kernels_do(op, dim, spacing):
    def run(lib):
        keywords = {"none": {}, "dx": {"dx": 2.0}, "x_0d": {"x": lib.ones(())}, "x_1d": {"x": lib.ones(2)}}[spacing]
        return _outcome(lib, lambda L: getattr(L, op)(L.ones(()), dim=dim, **keywords))

    assert run(chainrule) == run(torch)


# ---- 5. in-place writes into overlapping unfold windows: torch writes (MemOverlap::TooHard),
# element by element, each reading the memory as the writes before it left it
OVERLAPPING_WRITES = [
    "u.add_(1)", "u.mul_(2)", "u.add_(u.clone())", "u.clamp_(0, 2)", "u.sigmoid_()", "u.masked_fill_(u > 2, 0)",
    "u.exp_()", "u.copy_(torch.arange(12.).reshape(4, 3))", "u.add_(torch.arange(12.).reshape(4, 3))",
    "u.fill_(3)", "u.div_(2)", "u.pow_(2)", "u.lerp_(u, 0.5)", "u.addcmul_(u, u)", "u.add_(torch.arange(3.))",
    "u.add_(1, alpha=3)", "u.t().add_(1)", "u[1:].add_(1)", "u.unfold(1, 2, 1).add_(1)", "x.unfold(0, 2, 2).add_(1)",
    "x.expand(2, 6).add_(1)", "u.neg_()", "u.remainder_(4)",
]


@pytest.mark.parametrize("op", OVERLAPPING_WRITES)
def test_elementwise_write_into_overlapping_windows_is_torchs(op):
    def run(lib):
        x = lib.arange(6.0)
        scope = {"torch": lib, "x": x, "u": x.unfold(0, 3, 1)}
        outcome = _outcome(lib, lambda L: eval(op, scope))  # noqa: S307 - the table's text
        return outcome if isinstance(outcome, tuple) else [round(v, 4) for v in x.tolist()]

    assert run(chainrule) == run(torch)


def test_inplace_operator_into_overlapping_windows_is_torchs():
    def run(lib):
        x = lib.arange(40.0)
        u = x.unfold(0, 3, 1)
        u += 1
        u *= u
        return x.tolist()

    assert run(chainrule) == run(torch)


def test_overlapping_write_from_other_elements_of_the_same_memory_is_refused():
    # torch writes it in an order chainrule does not reproduce: refused with torch's overlap words
    x = chainrule.arange(6.0)
    with pytest.raises(RuntimeError, match="some elements of the input tensor and the written-to tensor refer to a "
                                           "single memory location"):
        x.unfold(0, 3, 1).add_(x[1:5, None])
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


# ---- 4. meta and CPU tensors in one matrix product or convolution: torch's kernels check no
# devices and give the result one argument's device (a CPU result of uninitialised memory)
META_MIXES = {
    "mm": (lambda L: L.mm, [(2, 3), (3, 4)]),
    "matmul": (lambda L: L.matmul, [(2, 3), (3, 4)]),
    "matmul_batched_left": (lambda L: L.matmul, [(5, 2, 3), (3, 4)]),
    "matmul_batched": (lambda L: L.matmul, [(2, 2, 3), (2, 3, 4)]),
    "matmul_broadcast_right": (lambda L: L.matmul, [(2, 3), (5, 3, 4)]),
    "matmul_vector_left": (lambda L: L.matmul, [(3,), (3, 4)]),
    "matmul_vector_right": (lambda L: L.matmul, [(2, 3), (3,)]),
    "matmul_vectors": (lambda L: L.matmul, [(3,), (3,)]),
    "bmm": (lambda L: L.bmm, [(2, 2, 3), (2, 3, 4)]),
    "linear": (lambda L: L.nn.functional.linear, [(2, 3), (4, 3)]),
    "linear_3d": (lambda L: L.nn.functional.linear, [(5, 2, 3), (4, 3)]),
    "linear_bias": (lambda L: L.nn.functional.linear, [(2, 3), (4, 3), (4,)]),
    "linear_3d_bias": (lambda L: L.nn.functional.linear, [(5, 2, 3), (4, 3), (4,)]),
    "linear_scalar_bias": (lambda L: L.nn.functional.linear, [(2, 3), (4, 3), ()]),
    "conv2d": (lambda L: L.nn.functional.conv2d, [(1, 2, 5, 5), (3, 2, 3, 3)]),
    "conv2d_bias": (lambda L: L.nn.functional.conv2d, [(1, 2, 5, 5), (3, 2, 3, 3), (3,)]),
    "conv1d": (lambda L: L.nn.functional.conv1d, [(1, 2, 5), (3, 2, 3)]),
    "conv_transpose2d": (lambda L: L.nn.functional.conv_transpose2d, [(1, 2, 5, 5), (2, 3, 3, 3)]),
    "mul": (lambda L: L.mul, [(2, 3), (2, 3)]),
    "mul_cpu_scalar": (lambda L: L.mul, [(2, 3), ()]),
}


def _device_mixes(count: int) -> list:
    mixes = [("meta", "cpu"), ("cpu", "meta")] if count == 2 else [
        (a, b, c) for a in ("meta", "cpu") for b in ("meta", "cpu") for c in ("meta", "cpu") if len({a, b, c}) == 2]
    return mixes


@pytest.mark.parametrize("case", META_MIXES)
def test_meta_and_cpu_in_one_product_as_torch(case):
    op, shapes = META_MIXES[case]

    def run(lib, devices):
        args = [lib.ones(shape, device=device) for shape, device in zip(shapes, devices)]
        outcome = _outcome(lib, lambda L: op(L)(*args))
        if isinstance(outcome, tuple):
            return outcome
        return str(outcome.device), tuple(outcome.shape), str(outcome.dtype).split(".")[-1]

    for devices in _device_mixes(len(shapes)):
        assert run(chainrule, devices) == run(torch, devices), devices


def test_meta_module_on_a_cpu_input_as_torch():
    def run(lib):
        results = []
        for make in (lambda: lib.nn.Linear(3, 4, bias=False, device="meta")(lib.ones(2, 3)),
                     lambda: lib.nn.Conv2d(2, 3, 3, device="meta")(lib.ones(1, 2, 5, 5)),
                     lambda: lib.nn.Linear(3, 4, bias=False)(lib.ones(2, 3, device="meta"))):
            y = make()
            results.append((str(y.device), tuple(y.shape), y.requires_grad, type(y.grad_fn).__name__))
        results.append(_outcome(lib, lambda L: L.nn.Linear(3, 4, device="meta")(L.ones(2, 3))))
        return results

    assert run(chainrule) == run(torch)


# ---- 7. size-1 dims' strides in an elementwise result: a row-major operand's size-1 dim may
# carry any stride, and TensorIterator's sort of the dims reads it (its fast set-up, operands of
# one shape all contiguous, gives a contiguous result)
SIZE_ONE_OPERANDS = {
    "permuted_131": "torch.arange(3.).reshape(1, 3, 1).permute(2, 0, 1)",
    "permuted_1113": "torch.arange(3.).reshape(3, 1, 1, 1).permute(1, 2, 3, 0)",
    "permuted_132": "torch.arange(6.).reshape(3, 2, 1).permute(2, 0, 1)",
    "permuted_331": "torch.arange(9.).reshape(1, 3, 3).permute(1, 2, 0)",
    "permuted_13": "torch.arange(3.).reshape(3, 1).permute(1, 0)",
}
# (+, -, *, / keep NumPy's row-major layout of row-major operands on their fast paths, where a
# check of every size-1 dim's stride would cost each op more than this layout is worth)
SIZE_ONE_OPS = ["a + torch.zeros(a.shape)", "a.exp()", "torch.addcmul(a, torch.tensor(2.), a)",
                "a.lerp(torch.tensor(1.), 0.5)", "a.clamp(torch.tensor(0.), torch.tensor(2.))",
                "torch.where(a > 1, a, torch.tensor(0.))", "torch.maximum(a, torch.tensor(1.))",
                "torch.atan2(a, torch.tensor(1.))", "torch.fmod(a, torch.tensor(2.))"]


@pytest.mark.parametrize("operand", SIZE_ONE_OPERANDS)
def test_size_one_dims_strides_of_elementwise_results_are_torchs(operand):
    def run(lib):
        scope = {"torch": lib}
        scope["a"] = eval(SIZE_ONE_OPERANDS[operand], scope)  # noqa: S307 - the table's text
        results = [eval(op, scope) for op in SIZE_ONE_OPS]  # noqa: S307
        return [(tuple(r.shape), r.stride()) for r in results], [r.flatten().tolist() for r in results]

    layouts, values = run(chainrule)
    expected_layouts, expected_values = run(torch)
    assert layouts == expected_layouts
    for got, expected in zip(values, expected_values):
        assert got == pytest.approx(expected, rel=1e-6)
