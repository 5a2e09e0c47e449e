"""Lane mendAJ (session 45): last-bit and graph differences from torch left by session 44."""

import numpy as np
import pytest
import torch

import chainrule
from chainrule import _opmath


def _same_bits(expected: np.ndarray, actual: np.ndarray) -> bool:
    """Equal values, signs of zero included, NaN where NaN."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.dtype != actual.dtype or expected.shape != actual.shape:
        return False
    both_nan = np.isnan(expected) & np.isnan(actual)
    return bool(np.all(both_nan | ((expected == actual) & (np.signbit(expected) == np.signbit(actual)))))


SCALED_SUMS = {
    "add": lambda m, a, b: m.add(a, b, alpha=0.3),
    "sub": lambda m, a, b: m.sub(a, b, alpha=0.3),
    "rsub": lambda m, a, b: m.rsub(a, b, alpha=0.3),
    "add_": lambda m, a, b: a.clone().add_(b, alpha=-0.1),
    "sub_": lambda m, a, b: a.clone().sub_(b, alpha=0.7),
    "Tensor.add": lambda m, a, b: a.add(b, alpha=1.3),
    "strided": lambda m, a, b: m.add(a[::3], b[::3], alpha=0.3),
    "broadcast": lambda m, a, b: m.add(a[:9900].reshape(99, 100), b[:100], alpha=0.3),
    "broadcast_other": lambda m, a, b: m.add(a[:100], b[:9900].reshape(99, 100), alpha=-2.1),
    "0-d other": lambda m, a, b: m.add(a, b[0], alpha=0.3),
    "0-d both": lambda m, a, b: m.stack([m.add(a[i], b[i], alpha=0.3) for i in range(40)]),
    "number other": lambda m, a, b: m.add(a, 2.7, alpha=0.3),
    "rsub number": lambda m, a, b: m.rsub(a, 2.7, alpha=0.3),
    "integer alpha": lambda m, a, b: m.add(a, b, alpha=3),
    "power of two alpha": lambda m, a, b: m.sub(a, b, alpha=0.25),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("form", sorted(SCALED_SUMS))
def test_add_with_alpha_rounds_once_as_torch(form, dtype):
    """torch's CPU add kernel computes a + alpha·b as one fused multiply-add: float64 too (1861 of
    10,000 elements differed), every layout."""
    rng = np.random.default_rng(45)
    a, b = rng.standard_normal(10_000).astype(dtype), rng.standard_normal(10_000).astype(dtype)
    expected = SCALED_SUMS[form](torch, torch.from_numpy(a), torch.from_numpy(b)).numpy()
    actual = SCALED_SUMS[form](chainrule, chainrule.tensor(a), chainrule.tensor(b)).numpy()
    assert _same_bits(expected, actual)


def test_float64_fused_multiply_add_over_magnitudes_and_special_values():
    """The emulation against torch's fma on sums that cancel, magnitudes 2^±60 apart, subnormal
    results, infinities, NaN and signed zeros."""
    rng = np.random.default_rng(7)
    n = 50_000
    for alpha in (-0.1264487352003825, 3.5e-6, 24.457218682958267, -7.0e5):
        a = rng.standard_normal(n) * np.exp2(rng.integers(-60, 60, n))
        b = rng.standard_normal(n) * np.exp2(rng.integers(-60, 60, n))
        cancel = slice(1000, 2000)  # a ≈ -alpha·b: the product's rounding error is most of the sum
        a[cancel] = -(b[cancel] * alpha) * (1 + rng.standard_normal(1000) * 1e-15)
        a[:5], b[5:10] = [np.inf, -np.inf, np.nan, 0.0, -0.0], [np.inf, -np.inf, np.nan, 0.0, -0.0]
        b[10:15], a[15:20] = 0.0, -0.0
        a[20:30], b[20:30] = 1e-300, rng.standard_normal(10) * 1e-290
        expected = torch.add(torch.from_numpy(a), torch.from_numpy(b), alpha=alpha).numpy()
        assert _same_bits(expected, chainrule.add(chainrule.tensor(a), chainrule.tensor(b), alpha=alpha).numpy())
        out = np.empty(n)
        assert _opmath.fused_multiply_add_float64(b, alpha, a, out=out) is out
        assert _same_bits(expected, out)


def test_float64_scaled_add_gradients_and_saved_alpha():
    a = chainrule.randn(5, dtype=chainrule.float64, requires_grad=True)
    b = chainrule.randn(5, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda x, y: chainrule.add(x, y, alpha=0.3), (a, b))
    assert chainrule.autograd.gradcheck(lambda x, y: chainrule.rsub(x, y, alpha=-1.7), (a, b))
    assert chainrule.sub(a, b, alpha=0.3).grad_fn._saved_alpha == 0.3


CONTAINER_WARNING = ("`nn.Container` is deprecated. All of its functionality is now implemented in `nn.Module`. "
                     "Subclass that instead.")


def _container_probe(module):
    """What torch.nn.Container does, as text: its modules, parameters, errors and warnings."""
    import warnings

    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        container = module.nn.Container(a=module.nn.Linear(2, 3), b=module.nn.ReLU(), n=None)
        seen += [repr(container), list(container._modules), sum(p.numel() for p in container.parameters()),
                 isinstance(container, module.nn.Module), module.nn.Container.__deprecated__]
        try:
            module.nn.Container(module.nn.ReLU())
        except TypeError as error:
            seen.append(str(error))

        class Subclass(module.nn.Container):
            pass

        Subclass(x=module.nn.Tanh())
        Subclass()
    seen.append([(w.category, str(w.message), w.filename) for w in caught])
    return seen


def test_nn_container_as_torchs():
    """torch.nn.Container (deprecated, still public): keywords become submodules; a FutureWarning
    naming the user's line on making one (before its arguments are checked) and on subclassing."""
    expected, actual = _container_probe(torch), _container_probe(chainrule)
    assert actual == expected
    assert [w[1] for w in actual[-1]] == [CONTAINER_WARNING] * 3
    assert "Container" in chainrule.nn.modules.container.__all__


# binary operators with a number or a tensor whose nodes differed from torch's: floor_divide has no
# derivative (a NotImplemented node, edges for its tensor operands only), remainder/fmod by a number
# are their Scalar overloads (one edge), number % tensor has no derivative, fmod of two tensors is
# FmodBackward1, div with a rounding mode keeps its operands, reciprocal's gradient is torch's -g·(y·y)
NODE_FORMS = {
    "x//2": lambda m, x, y: x // 2, "x//2.5": lambda m, x, y: x // 2.5, "2//x": lambda m, x, y: 2 // x,
    "x//y": lambda m, x, y: x // y, "floor_divide": lambda m, x, y: m.floor_divide(x, 2),
    "Tensor.floor_divide": lambda m, x, y: x.floor_divide(y),
    "floor_divide_": lambda m, x, y: x.clone().floor_divide_(2),
    "__ifloordiv__": lambda m, x, y: x.clone().__ifloordiv__(y),
    "div floor": lambda m, x, y: m.div(x, 2, rounding_mode="floor"),
    "div trunc tensors": lambda m, x, y: m.div(x, y, rounding_mode="trunc"),
    "x%2": lambda m, x, y: x % 2, "x%2.5": lambda m, x, y: x % 2.5, "2%x": lambda m, x, y: 2 % x,
    "x%y": lambda m, x, y: x % y, "remainder(2, x)": lambda m, x, y: m.remainder(2, x),
    "remainder_": lambda m, x, y: x.clone().remainder_(2), "__imod__": lambda m, x, y: x.clone().__imod__(2),
    "remainder 0-d tensor": lambda m, x, y: m.remainder(x, m.tensor(2.0)),
    "fmod": lambda m, x, y: m.fmod(x, 2), "fmod tensors": lambda m, x, y: m.fmod(x, y),
    "fmod_": lambda m, x, y: x.clone().fmod_(2.5), "fmod 0-d tensor": lambda m, x, y: m.fmod(x, m.tensor(2.0)),
    "2.5/x": lambda m, x, y: 2.5 / x, "reciprocal": lambda m, x, y: m.reciprocal(x),
    "heaviside_": lambda m, x, y: x.clone().heaviside_(y),
}


def _node_probe(module, form: str, dtype: str):
    x = module.tensor([3.5, -2.25, 7.0, 0.3, 1e-3], dtype=getattr(module, dtype), requires_grad=True)
    y = module.tensor([1.5, 2.0, -3.0, 0.7, 3.0], dtype=getattr(module, dtype), requires_grad=True)
    result = NODE_FORMS[form](module, x, y)
    node = result.grad_fn
    seen = [str(result.dtype).rpartition(".")[2], result.tolist(), node.name(),
            [(None if n is None else n.name(), i) for n, i in node.next_functions],
            sorted(name for name in dir(node) if name.startswith("_saved_"))]
    try:
        result.backward(module.ones_like(result))
        seen.append([None if t.grad is None else t.grad.tolist() for t in (x, y)])
    except RuntimeError as error:
        seen.append(str(error))
    return seen


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("form", sorted(NODE_FORMS))
def test_binary_operator_nodes_as_torchs(form, dtype):
    assert _node_probe(chainrule, form, dtype) == _node_probe(torch, form, dtype)


@pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")
def test_in_place_ops_without_a_derivative_name_the_in_place_op():
    """torch's NotImplemented node of an in-place method names it: aten::scatter_, not aten::scatter."""
    def errors(module):
        messages = []
        for write in (lambda y: y.scatter_(0, module.tensor([[1, 0, 1]]), module.full((1, 3), 3.0), reduce="multiply"),
                      lambda y: y.heaviside_(module.ones(2, 3)), lambda y: y.floor_divide_(2.0)):
            y = module.ones(2, 3, requires_grad=True) * 2
            write(y)
            with pytest.raises(RuntimeError) as info:
                y.sum().backward()
            messages.append(str(info.value))
        return messages

    assert errors(chainrule) == errors(torch)
    assert errors(chainrule)[0] == "derivative for aten::scatter_ is not implemented"


def test_rounded_div_keeps_torchs_saved_operands():
    for module in (torch, chainrule):
        x = module.tensor([1.0, -2.0], requires_grad=True)
        y = module.tensor([3.0, 4.0])
        node = module.div(x, y, rounding_mode="trunc").grad_fn
        assert node._saved_self is None and node._saved_other.tolist() == [3.0, 4.0]
        node = module.div(y, x, rounding_mode="floor").grad_fn
        assert node._saved_self.tolist() == [3.0, 4.0] and node._saved_other.tolist() == [1.0, -2.0]


def test_remainder_and_fmod_by_a_number_gradcheck():
    x = chainrule.tensor([3.5, -2.25, 7.0, 0.3], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: chainrule.remainder(t, 2.5), (x,))
    assert chainrule.autograd.gradcheck(lambda t: chainrule.fmod(t, -1.5), (x,))
    assert chainrule.autograd.gradcheck(lambda t: 1.5 / t, (x,))


_MEDIAN_INPUT = np.array([[3.0, 1.0, 2.0, np.nan], [0.5, -1.0, 4.0, 2.0]], dtype=np.float32)


def _outcome(call):
    try:
        results = call()
    except RuntimeError as error:
        return "RuntimeError", str(error)
    return [(str(t.dtype).rpartition(".")[2], repr(t.tolist())) for t in results]


@pytest.mark.parametrize("op", ["median", "nanmedian"])
@pytest.mark.parametrize("dtypes", [("float32", "int64"), ("float64", "int64"), ("float16", "int64"),
                                    ("int64", "int64"), ("float32", "int32"), ("float32", "float32"),
                                    ("float64", "int32")])
@pytest.mark.parametrize("keepdim", [False, True])
def test_median_over_a_dim_refuses_outs_as_torch(op, dtypes, keepdim):
    """(values, indices) outs: indices must be int64 (checked first), values the input's dtype, in
    torch's words naming median for nanmedian too; a float64 values out was written before."""
    def call(module):
        values, indices = (module.empty(0, dtype=getattr(module, name)) for name in dtypes)
        result = getattr(module, op)(module.tensor(_MEDIAN_INPUT), 1, keepdim, out=(values, indices))
        return [values, indices, *result]

    assert _outcome(lambda: call(chainrule)) == _outcome(lambda: call(torch))


@pytest.mark.parametrize("source", ["float32", "float64", "int64", "float16"])
@pytest.mark.parametrize("target", ["float64", "float32", "float16", "int64", "bool", "complex128"])
@pytest.mark.parametrize("dim", [None, 1, (0, 1)])
@pytest.mark.parametrize("dtype", [None, "float64", "float32"])
@pytest.mark.pairwise_in_ci(seed=61)
def test_mean_into_an_out_as_torch(source, target, dim, dtype):
    """mean(out=): computed in a floating out's dtype when no dtype is given (a float16 mean into a
    float64 out is the float64 one), a dtype other than the out's refused, an integral out refused
    in mean.dtype_out's words without a dim and as the division's default-dtype result with one."""
    def call(module):
        x = module.tensor([[1.0, 2.0, 4.0], [3.0, 5.0, 7.0]]).to(getattr(module, source))
        out = module.empty(0, dtype=getattr(module, target))
        keywords = {} if dtype is None else {"dtype": getattr(module, dtype)}
        result = module.mean(x, out=out, **keywords) if dim is None else module.mean(x, dim, out=out, **keywords)
        assert result is out
        return [out]

    assert _outcome(lambda: call(chainrule)) == _outcome(lambda: call(torch))
