"""Session 44, lane mendAF: differences from torch closed, each checked against torch on the same inputs."""

import itertools
import warnings

import numpy as np
import pytest

import chainrule
from tests._profile import DIRECTIONAL_GRADCHECK

torch = pytest.importorskip("torch")


def _tree(fn, depth):
    """A node's name with its next_functions' trees, ``depth`` levels down (None for a missing edge)."""
    if fn is None:
        return None
    if depth == 0:
        return fn.name()
    return fn.name(), [_tree(child, depth - 1) for child, _ in fn.next_functions]


def _saved(fn) -> dict:
    """The node's torch ``_saved_*`` attributes: a tensor as its shape, dtype and values, None, or a number."""
    found = {}
    for name in dir(fn):
        if name.startswith("_saved_"):
            value = getattr(fn, name)
            if hasattr(value, "detach"):
                value = (tuple(value.shape), str(value.dtype).rpartition(".")[2], value.detach().numpy().tolist())
            found[name] = value
    return found


# ---------------------------------------------------------------- 1. addcmul, addcdiv, lerp: one node with torch's edges
_OPS = {
    "addcmul": (lambda lib, x, a, b: lib.addcmul(x, a, b), lambda x, a, b: x.addcmul_(a, b)),
    "addcmul_value": (lambda lib, x, a, b: x.addcmul(a, b, value=0.5), lambda x, a, b: x.addcmul_(a, b, value=0.5)),
    "addcdiv": (lambda lib, x, a, b: lib.addcdiv(x, a, b), lambda x, a, b: x.addcdiv_(a, b)),
    "addcdiv_value": (lambda lib, x, a, b: lib.addcdiv(x, a, b, value=-2.0), lambda x, a, b: x.addcdiv_(a, b, value=-2.0)),
    "lerp_tensor": (lambda lib, x, a, b: lib.lerp(x, a, b), lambda x, a, b: x.lerp_(a, b)),
    "lerp_near": (lambda lib, x, a, b: x.lerp(a, 0.3), lambda x, a, b: x.lerp_(a, 0.3)),
    "lerp_far": (lambda lib, x, a, b: lib.lerp(x, a, 0.7), lambda x, a, b: x.lerp_(a, 0.7)),
}
# which of input, tensor1/end, tensor2/weight require grad
_NEEDS = [needs for n in (1, 2, 3) for needs in itertools.combinations(range(3), n)]


def _run(lib, op, needs, broadcast, mode, dtype):
    """The op's graph (names and edges), its _saved_* (out of place, in place on a tensor), its
    values and the inputs' gradients for a random cotangent."""
    rng = np.random.default_rng(0)
    shapes = [(4, 4), (2, 1) if broadcast else (2, 4), (4,) if broadcast else (2, 4)]
    if mode != "view":
        shapes = [(2, 4) if mode == "tensor" else (4,) if broadcast else (2, 4), (2, 1) if broadcast else (2, 4),
                  (2, 4)]
    leaves = [lib.tensor(rng.uniform(0.5, 2.0, shape), dtype=getattr(lib, dtype), requires_grad=i in needs)
              for i, shape in enumerate(shapes)]
    x, a, b = leaves
    function, inplace = _OPS[op]
    if mode == "out_of_place":
        root = function(lib, x, a, b)
        graph = [_tree(root.grad_fn, 2), _saved(root.grad_fn)]
    else:
        root = x.clone()
        if mode == "tensor":
            returned = inplace(root, a, b)
            graph = [_tree(root.grad_fn, 3), _saved(root.grad_fn), returned is root]
        else:
            view = root[1:3]
            returned = inplace(view, a, b)
            graph = [_tree(root.grad_fn, 4), _tree(view.grad_fn, 1), returned is view, root._version]
    values = [root.detach().numpy().copy()]
    if root.requires_grad:
        cotangent = lib.tensor(rng.standard_normal(tuple(root.shape)), dtype=getattr(lib, dtype))
        grads = lib.autograd.grad(root, [t for t in leaves if t.requires_grad], cotangent)
        values += [g.numpy() for g in grads]
    return graph, values


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["out_of_place", "tensor", "view"])
@pytest.mark.parametrize("broadcast", [False, True])
@pytest.mark.parametrize("op", sorted(_OPS))
def test_fused_op_records_one_node_with_torchs_edges_and_saved_values(op, broadcast, mode, dtype):
    for needs in _NEEDS:
        if op.startswith("lerp_") and op != "lerp_tensor" and 2 in needs:
            continue  # (a number weight: the third tensor is not an input)
        (graph, values), (torch_graph, torch_values) = (_run(lib, op, needs, broadcast, mode, dtype)
                                                        for lib in (chainrule, torch))
        assert graph == torch_graph, needs
        np.testing.assert_array_equal(values[0], torch_values[0])  # the forward, bitwise (fused as torch's kernel)
        tolerance = 1e-6 if dtype == "float32" else 1e-15
        for grad, torch_grad in zip(values[1:], torch_values[1:], strict=True):
            np.testing.assert_allclose(grad, torch_grad, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("op", ["addcmul", "addcdiv", "lerp_tensor", "lerp_near"])
def test_half_precision_fused_op_is_one_node_rounded_once(op, dtype):
    results = []
    for lib in (chainrule, torch):
        rng = np.random.default_rng(1)
        x, a, b = (lib.tensor(rng.uniform(0.5, 2, (3, 4)), dtype=getattr(lib, dtype), requires_grad=True)
                   for _ in range(3))
        out = _OPS[op][0](lib, x, a, b)
        grads = lib.autograd.grad(out.sum(), [x, a, b] if op != "lerp_near" else [x, a])
        results.append((_tree(out.grad_fn, 1), out.detach().float().numpy(), [g.float().numpy() for g in grads]))
    (graph, values, grads), (torch_graph, torch_values, torch_grads) = results
    assert graph == torch_graph
    np.testing.assert_array_equal(values, torch_values)
    for grad, torch_grad in zip(grads, torch_grads, strict=True):
        np.testing.assert_allclose(grad, torch_grad, rtol=1e-2)


def test_float64_addcmul_is_torchs_fused_multiply_add():
    # torch's float64 kernel: value·tensor1 rounded, then one fused multiply-add with tensor2 (as float32's)
    rng = np.random.default_rng(2)
    arrays = [rng.uniform(-2, 2, 1000) for _ in range(3)]
    for value in (1, 0.5, 3, 0.1):
        ours = chainrule.addcmul(*(chainrule.tensor(a) for a in arrays), value=value)
        theirs = torch.addcmul(*(torch.tensor(a) for a in arrays), value=value)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("op", sorted(_OPS))
@pytest.mark.parametrize("complex_inputs", [False, True])
def test_fused_ops_gradcheck_and_gradgradcheck_in_double(op, complex_inputs):
    function, inplace = _OPS[op]
    cases = {
        "out_of_place": lambda x, a, b: function(chainrule, x, a, b),
        "view": lambda x, a, b: (lambda y: (inplace(y[1:], a[1:], b[1:]), y)[1])(x.clone()),
    }
    for needs, (name, f) in itertools.product(_NEEDS, cases.items()):
        if op.startswith("lerp_") and op != "lerp_tensor" and 2 in needs:
            continue
        generator = chainrule.Generator().manual_seed(0)
        dtype = chainrule.complex128 if complex_inputs else chainrule.float64
        inputs = [(chainrule.rand(3, 4, generator=generator, dtype=chainrule.float64) + 0.5).to(dtype)
                  .requires_grad_(i in needs) for i in range(3)]
        assert chainrule.autograd.gradcheck(f, inputs, fast_mode=DIRECTIONAL_GRADCHECK), (needs, name)
        assert chainrule.autograd.gradgradcheck(f, inputs, fast_mode=DIRECTIONAL_GRADCHECK), (needs, name)


def test_inplace_fused_op_saves_the_old_self_and_refuses_a_changed_saved_tensor():
    for lib in (chainrule, torch):
        x = lib.rand(3, requires_grad=True)
        end = lib.rand(3, requires_grad=True)
        weight = lib.rand(3, requires_grad=True)
        y = x * 1
        y.lerp_(end, weight)  # weight's gradient reads the old y, which the write replaced
        (grad,) = lib.autograd.grad(y.sum(), [weight], retain_graph=True)
        np.testing.assert_allclose(grad.detach().numpy(), (end - x).detach().numpy(), rtol=1e-6)
        z = x * 1
        changed = weight * 1
        z.lerp_(end, changed)
        changed.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()


def test_lerp_names_bfloat16_as_torchs_cpp_type():
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match=r"^expected dtype float for `end` but got dtype c10::BFloat16$"):
            lib.lerp(lib.ones(2), lib.ones(2, dtype=lib.bfloat16), 0.5)


# ---------------------------------------------------------------- 3. in-place writes from overlapping sources; out=
_OVERLAP = ("unsupported operation: some elements of the input tensor and the written-to tensor refer to a single "
            "memory location. Please clone() the tensor before performing the operation.")

# each writes x = arange(12).reshape(4, 3) in place from a source on x's memory
_SOURCE_WRITES = {
    "index_add_view": lambda lib, x: x.index_add_(0, lib.tensor([0, 1]), x[1:3]),
    "index_add_itself": lambda lib, x: x.index_add_(0, lib.tensor([0, 1, 2, 3]), x, alpha=2),
    "index_add_detached": lambda lib, x: x.index_add_(0, lib.tensor([0, 1, 2, 3]), x.detach()),
    "index_add_transposed": lambda lib, x: x[:3].index_add_(0, lib.tensor([0, 1, 2]), x[:3].t()),
    "index_add_disjoint": lambda lib, x: x[:2].index_add_(0, lib.tensor([0, 1]), x[2:]),
    "index_add_interleaved": lambda lib, x: x[::2].index_add_(0, lib.tensor([0]), x[1::2][:1]),
    "index_copy_view": lambda lib, x: x.index_copy_(0, lib.tensor([0, 1]), x[1:3]),
    "index_reduce_view": lambda lib, x: x.index_reduce_(0, lib.tensor([0, 1]), x[1:3], "prod"),
    "scatter_view": lambda lib, x: x.scatter_(0, lib.tensor([[0, 1, 2]]), x[1:2]),
    "scatter_add_view": lambda lib, x: x.scatter_add_(0, lib.tensor([[0, 1, 2]]), src=x[1:2]),
    "scatter_reduce_view": lambda lib, x: x.scatter_reduce_(0, lib.tensor([[0, 1, 2]]), x[1:2], "sum"),
    "put_view": lambda lib, x: x.put_(lib.tensor([0, 1]), x.view(-1)[1:3]),
    "put_accumulate_view": lambda lib, x: x.put_(lib.tensor([0, 1]), x.view(-1)[1:3], accumulate=True),
    "masked_fill_value_of_x": lambda lib, x: x.masked_fill_(x > 5, x[0, 1]),
    "index_add_recorded": lambda lib, x: (lambda y: y.index_add_(0, lib.tensor([0, 1]), y[1:3]))(
        x.requires_grad_().clone()),
}


def _source_write(lib, case):
    x = lib.arange(12.0).reshape(4, 3)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # (index_reduce_ is in beta, torch says once)
            result = _SOURCE_WRITES[case](lib, x)
    except RuntimeError as error:
        return "RuntimeError", str(error), x.detach().tolist()
    return "ok", result.tolist(), x.detach().tolist()


@pytest.mark.parametrize("case", sorted(_SOURCE_WRITES))
def test_inplace_write_from_a_source_on_self_memory_is_refused_as_torch(case):
    ours, theirs = _source_write(chainrule, case), _source_write(torch, case)
    assert ours == theirs  # refused before anything is written (x unchanged), or the same values
    if theirs[0] == "RuntimeError":
        assert theirs[1] == _OVERLAP


# in-place methods of no arguments, of one, and a composite one's
_OUT_CALLS = ["floor_", "abs_", "sqrt_", "acos_", "digamma_", "sigmoid_", "neg_", "exp_"]


@pytest.mark.parametrize("name", _OUT_CALLS)
def test_inplace_method_refuses_out_as_torch(name):
    outcomes = []
    for lib in (chainrule, torch):
        x = lib.rand(3) + 0.5
        before = x.clone()
        out = lib.zeros(3)
        with pytest.raises(TypeError) as refused:
            eval(f"x.{name}(out=out)")  # (the attribute call: CPython names TensorBase there)
        with pytest.raises(TypeError) as refused_with_argument:
            eval(f"x.{name}(x, out=out)")
        assert lib.equal(x, before) and not out.any()
        outcomes.append((str(refused.value), str(refused_with_argument.value)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][0] == f"TensorBase.{name}() takes no keyword arguments"
