"""torch idioms that must run unchanged: layouts, argument order, mixed indexing, error classes,
named result tuples, node names, silent IEEE arithmetic and ``out=``. Each case runs on torch too."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as CF

from .harness import randn, requires_torch, torch

pytestmark = requires_torch


def _both(fn, *arrays, grad=True):
    """fn run on chainrule and on torch with the same float32 inputs; returns (ours, theirs, inputs)."""
    ours_in = [chainrule.tensor(a.astype(np.float32), requires_grad=grad) for a in arrays]
    theirs_in = [torch.tensor(a.astype(np.float32), requires_grad=grad) for a in arrays]
    return fn(chainrule, *ours_in), fn(torch, *theirs_in), ours_in, theirs_in


# ---------------------------------------------------------------- layouts never leak
@pytest.mark.parametrize("name,fn", [
    ("conv1d", lambda lib, x, w: lib.nn.functional.conv1d(x[:, :, 0], w[:, :, 0], padding=1)),
    ("conv2d", lambda lib, x, w: lib.nn.functional.conv2d(x, w, stride=2)),
    ("max_pool2d", lambda lib, x, w: lib.nn.functional.max_pool2d(x, 2)),
    ("avg_pool2d", lambda lib, x, w: lib.nn.functional.avg_pool2d(x.transpose(2, 3), 2)),
])
def test_flatten_with_view_after_conv_and_pool(name, fn):
    ours, theirs, _, _ = _both(fn, randn(2, 3, 6, 6), randn(4, 3, 3, 3, seed=1))
    assert ours.is_contiguous() and theirs.is_contiguous()
    flat = ours.view(ours.size(0), -1)
    np.testing.assert_allclose(flat.detach().numpy(), theirs.view(theirs.size(0), -1).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- argument order
def test_where_method_takes_condition_then_other():
    x, y = randn(3, 4), randn(3, 4, seed=1)
    ours, theirs, (a, _), (ta, _) = _both(lambda lib, a, b: a.where(a > 0, b), x, y)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy())
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())


# ---------------------------------------------------------------- indexing
def _index(lib, values):
    return lib.tensor(values, dtype=lib.int64)


MIXED_KEYS = [
    ("ellipsis_none_int_slice_idx", lambda lib, x: x[..., None, -1, 1:3, _index(lib, [0, 2, 1])]),
    ("slice_int_slice_idx", lambda lib, x: x[:, 0, :, _index(lib, [2, 0])]),
    ("idx_slice_int", lambda lib, x: x[_index(lib, [1, 0]), :, 0]),
    ("int_slice_idx", lambda lib, x: x[0, :, _index(lib, [0, 2, 1])]),
    ("none_int_idx_none_int", lambda lib, x: x[None, 1, _index(lib, [1, 0]), None, 2]),
    ("int_mask", lambda lib, x: x[1, :, lib.tensor([True, False, True, True])]),
    ("zero_d_tensor_int", lambda lib, x: x[_index(lib, 1), 1:]),
]


@pytest.mark.parametrize("name,fn", MIXED_KEYS, ids=[k[0] for k in MIXED_KEYS])
def test_integers_index_before_index_tensors(name, fn):
    ours, theirs, (x,), (tx,) = _both(fn, randn(2, 3, 4, 5, 6))
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy())
    assert ours.is_contiguous() == theirs.is_contiguous()
    assert ours.grad_fn.name() == theirs.grad_fn.name()
    cotangent = randn(*theirs.shape, seed=3).astype(np.float32)
    ours.backward(chainrule.tensor(cotangent))
    theirs.backward(torch.tensor(cotangent))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_mixed_key_writes_in_torchs_order():
    value = randn(2, 1, 3, seed=2).astype(np.float32)  # broadcast over torch's (2, 4, 3) target
    results = []
    for lib in (chainrule, torch):
        base = lib.tensor(np.zeros((2, 3, 4, 5), np.float32), requires_grad=True)
        x, v = base.clone(), lib.tensor(value, requires_grad=True)
        x[:, 0, :, _index(lib, [0, 2, 1])] = v
        (x * x).sum().backward()
        results.append((x.detach().numpy(), v.grad.numpy(), base.grad.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs)


# ---------------------------------------------------------------- cat with empty inputs
@pytest.mark.parametrize("empty_shape", [(0,), (0, 3)])
def test_cat_sets_the_gradient_of_empty_inputs(empty_shape):
    ours, theirs, (a, e), (ta, te) = _both(lambda lib, a, e: lib.cat([e, a, e]), randn(2, 3), randn(*empty_shape))
    ours.sum().backward()
    theirs.sum().backward()
    assert te.grad is not None and e.grad is not None
    assert tuple(e.grad.shape) == tuple(te.grad.shape)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())


# ---------------------------------------------------------------- error classes and messages
def _error(fn):
    try:
        fn()
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return type(error), str(error).splitlines()[0]
    return None, None


@pytest.mark.parametrize("name,fn", [
    ("add", lambda lib, a, b: a + b),
    ("add_grad", lambda lib, a, b: a.requires_grad_() + b),
    ("mul_fn", lambda lib, a, b: lib.mul(a, b)),
    ("where", lambda lib, a, b: lib.where(a > 0, a, b)),
    ("eq", lambda lib, a, b: a == b),
    ("maximum", lambda lib, a, b: lib.maximum(a, b)),
])
def test_broadcast_mismatch_is_torchs_runtime_error(name, fn):
    a, b = randn(4, 6).astype(np.float32), randn(4, 5).astype(np.float32)
    ours = _error(lambda: fn(chainrule, chainrule.tensor(a), chainrule.tensor(b)))
    theirs = _error(lambda: fn(torch, torch.tensor(a), torch.tensor(b)))
    assert ours == theirs
    assert ours[1] == "The size of tensor a (6) must match the size of tensor b (5) at non-singleton dimension 1"


TYPE_ERRORS = [
    ("view_float", lambda lib, x: x.view(2.0, -1)),
    ("view_tuple_float", lambda lib, x: x.view((x.size(0), 6.0))),
    ("reshape_float", lambda lib, x: x.reshape(2.5, -1)),
    ("expand_float", lambda lib, x: x.expand(2.0, 4, 6)),
    ("permute_float", lambda lib, x: x.permute(1.0, 0)),
    ("zeros_float", lambda lib, x: lib.zeros(2.0, 3)),
    ("linear_weight_list", lambda lib, x: lib.nn.functional.linear(x, [[1.0] * 6] * 3)),
    ("linear_input_list", lambda lib, x: lib.nn.functional.linear([[1.0] * 6], x[:3])),
    ("conv2d_weight_list", lambda lib, x: lib.nn.functional.conv2d(x.view(1, 1, 4, 6), [[[[1.0]]]])),
    ("sum_dim_float", lambda lib, x: x.sum(dim=1.0)),
    ("softmax_dim_float", lambda lib, x: x.softmax(1.0)),
    ("transpose_dim_float", lambda lib, x: x.transpose(0.0, 1)),
    ("unsqueeze_dim_float", lambda lib, x: x.unsqueeze(1.0)),
    ("squeeze_dim_float", lambda lib, x: x.squeeze(0.0)),
    ("max_dim_float", lambda lib, x: x.max(dim=1.0)),
]


# chainrule names the one wrong argument where torch lists conv2d's signatures
WORDED_OTHERWISE = {"conv2d_weight_list"}


@pytest.mark.parametrize("name,fn", TYPE_ERRORS, ids=[e[0] for e in TYPE_ERRORS])
def test_wrong_argument_types_raise_type_error(name, fn):
    x = randn(4, 6).astype(np.float32)
    ours_class, ours_message = _error(lambda: fn(chainrule, chainrule.tensor(x)))
    theirs_class, theirs_message = _error(lambda: fn(torch, torch.tensor(x)))
    assert theirs_class is TypeError
    assert ours_class is TypeError, ours_message
    if name in WORDED_OTHERWISE:
        assert ("Tensor" in ours_message) or ("int" in ours_message)
    else:  # torch's parser's own words (tensor methods, creation functions, F.linear)
        assert ours_message == theirs_message


@pytest.mark.parametrize("convert", [float, int])
def test_python_scalar_of_many_elements_is_value_error(convert):
    ours = _error(lambda: convert(chainrule.ones(3)))
    theirs = _error(lambda: convert(torch.ones(3)))
    assert ours == theirs == (ValueError, "only one element tensors can be converted to Python scalars")


def test_integer_tensor_sizes_and_dims_are_accepted():
    x = chainrule.ones(4, 6)
    assert tuple(x.view(chainrule.tensor(4), 6).shape) == (4, 6)
    assert tuple(x.sum(np.int64(1)).shape) == (4,)
    assert tuple(chainrule.zeros(chainrule.Size([2, 3])).shape) == (2, 3)


# ---------------------------------------------------------------- node names
GRAD_FN_CASES = [
    ("mse_loss", lambda lib, x, y: lib.nn.functional.mse_loss(x, y)),
    ("mse_loss_none", lambda lib, x, y: lib.nn.functional.mse_loss(x, y, reduction="none")),
    ("smooth_l1", lambda lib, x, y: lib.nn.functional.smooth_l1_loss(x, y)),
    ("huber", lambda lib, x, y: lib.nn.functional.huber_loss(x, y)),
    ("bce", lambda lib, x, y: lib.nn.functional.binary_cross_entropy(x.sigmoid(), y.sigmoid().detach())),
    ("bce_logits", lambda lib, x, y: lib.nn.functional.binary_cross_entropy_with_logits(x, y.sigmoid().detach())),
    ("soft_margin", lambda lib, x, y: lib.nn.functional.soft_margin_loss(x, y.sign().detach())),
    ("l1", lambda lib, x, y: lib.nn.functional.l1_loss(x, y)),
    ("t", lambda lib, x, y: x.t()),
    ("linear_no_bias", lambda lib, x, y: lib.nn.functional.linear(x, y)),
    ("linear_bias", lambda lib, x, y: lib.nn.functional.linear(x, y, y[0])),
    ("linear_3d", lambda lib, x, y: lib.nn.functional.linear(x.unsqueeze(0), y)),
    ("linear_3d_bias", lambda lib, x, y: lib.nn.functional.linear(x.unsqueeze(0), y, y[0])),
    ("linear_1d", lambda lib, x, y: lib.nn.functional.linear(x[0], y)),
    ("sum_dim", lambda lib, x, y: x.sum(1)),
    ("mean_dim", lambda lib, x, y: x.mean(0)),
    ("std", lambda lib, x, y: x.std()),
    ("rsub", lambda lib, x, y: 1.0 - x),
    ("log1p", lambda lib, x, y: (x * x).log1p()),
    ("stack", lambda lib, x, y: lib.stack([x, y])),
    ("squeeze", lambda lib, x, y: x.unsqueeze(0).squeeze(0)),
]


@pytest.mark.parametrize("name,fn", GRAD_FN_CASES, ids=[c[0] for c in GRAD_FN_CASES])
def test_grad_fn_names_match_torch(name, fn):
    ours, theirs, _, _ = _both(fn, randn(4, 4), randn(4, 4, seed=1))
    assert ours.grad_fn.name() == theirs.grad_fn.name()


def _edges(node):
    """A node's edges as (child's name or None, input number), in order."""
    return [(None if child is None else child.name(), nr) for child, nr in node.next_functions]


@pytest.mark.parametrize("expression", ["x * 0.5", "0.5 * x", "x + 0.5", "0.5 + x", "x - 0.5", "0.5 - x",
                                        "x / 2.0", "2.0 / x", "x * y", "y - x"])
def test_operators_with_numbers_record_torch_edges(expression):
    # the tensor's edge first, and `number - x` (rsub of a scalar) has the tensor's edge only
    ours, theirs, (x, y), (tx, ty) = _both(lambda lib, x, y: eval(expression), randn(4, 4), randn(4, 4, seed=1))
    assert ours.grad_fn.name() == theirs.grad_fn.name()
    assert _edges(ours.grad_fn) == _edges(theirs.grad_fn)
    ours.sum().backward()
    theirs.sum().backward()
    for a, b in ((x, tx), (y, ty)):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_number_divided_by_a_tensor_gives_torchs_bits(dtype):
    # torch computes number / tensor as reciprocal(tensor) * number, which rounds differently
    # from the quotient in about a third of the elements
    x = np.random.default_rng(0).uniform(0.1, 10, 10_000).astype(dtype)
    np.testing.assert_array_equal((3.0 / chainrule.tensor(x)).numpy(), (3.0 / torch.tensor(x)).numpy())


def test_cross_entropy_is_nll_over_log_softmax():
    target = np.array([0, 2, 1])
    ours, theirs, (x,), (tx,) = _both(lambda lib, x: lib.nn.functional.cross_entropy(
        x, lib.tensor(target)), randn(3, 4))
    for o, t in ((ours.grad_fn, theirs.grad_fn), (ours.grad_fn.next_functions[0][0],
                                                  theirs.grad_fn.next_functions[0][0])):
        assert o.name() == t.name()
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_renamed_node_keeps_its_rule():
    # name_node changes only the name: the gradient of addmm is still right
    ours, theirs, inputs, torch_inputs = _both(lambda lib, b, m1, m2: lib.addmm(b, m1, m2, beta=0.5),
                                               randn(2, 4), randn(2, 3, seed=1), randn(3, 4, seed=2))
    assert ours.grad_fn.name() == theirs.grad_fn.name() == "AddmmBackward0"
    ours.sum().backward()
    theirs.sum().backward()
    for a, b in zip(inputs, torch_inputs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- named result tuples
RETURN_TYPES = [
    ("max", lambda lib, x: x.max(dim=1)),
    ("min", lambda lib, x: lib.min(x, 0, keepdim=True)),
    ("sort", lambda lib, x: x.sort(dim=1)),
    ("topk", lambda lib, x: x.topk(2)),
    ("kthvalue", lambda lib, x: x.kthvalue(2, 1)),
    ("mode", lambda lib, x: x.mode(1)),
    ("median", lambda lib, x: x.median(1)),
    ("cummax", lambda lib, x: x.cummax(1)),
    ("cummin", lambda lib, x: x.cummin(0)),
    ("aminmax", lambda lib, x: lib.aminmax(x, dim=1)),
]


@pytest.mark.parametrize("name,fn", RETURN_TYPES, ids=[c[0] for c in RETURN_TYPES])
def test_named_result_tuples(name, fn):
    ours, theirs, _, _ = _both(fn, randn(3, 4), grad=False)
    assert type(ours).__name__ == type(theirs).__name__ == name
    assert type(ours) is getattr(chainrule.return_types, name)
    assert isinstance(ours, tuple) and len(ours) == len(theirs) == 2
    fields = ("min", "max") if name == "aminmax" else ("values", "indices")
    first, second = ours  # unpacks
    assert first is ours[0] is getattr(ours, fields[0])
    assert second is ours[1] is getattr(ours, fields[1])
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.numpy(), t.numpy())
    assert repr(ours).startswith(f"chainrule.return_types.{name}(\n{fields[0]}=tensor(")
    assert repr(theirs).startswith(f"torch.return_types.{name}(\n{fields[0]}=tensor(")


# ---------------------------------------------------------------- IEEE arithmetic is silent
SILENT = [
    ("divide_by_zero", lambda lib, x: 1.0 / x),
    ("tensor_divide_by_zero", lambda lib, x: x / (x * 0)),
    ("log_zero", lambda lib, x: (x * 0).log()),
    ("log_negative", lambda lib, x: (-x * x - 1).log()),
    ("exp_overflow", lambda lib, x: (x * 0 + 1000).exp()),
    ("mul_overflow", lambda lib, x: (x * 0 + 3e38) * 10.0),
    ("pow_overflow", lambda lib, x: (x * 0 + 1e30) ** 3),
    ("sqrt_negative", lambda lib, x: (-x * x - 1).sqrt()),
    ("rsqrt_zero", lambda lib, x: (x * 0).rsqrt()),
    ("inf_minus_inf", lambda lib, x: (x * 0 + 1000).exp() - (x * 0 + 1000).exp()),
    ("floor_divide_by_zero", lambda lib, x: lib.div(x, x * 0, rounding_mode="floor")),
]


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("name,fn", SILENT, ids=[c[0] for c in SILENT])
def test_no_runtime_warning_escapes(name, fn, grad):
    x = chainrule.tensor([0.0, 1.0, -2.0], requires_grad=grad)
    theirs = fn(torch, torch.tensor([0.0, 1.0, -2.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = fn(chainrule, x)
        if ours.requires_grad:  # the backward rules meet the same infinities
            (ours * 0 + ours).sum().backward()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.numpy(), rtol=1e-5)


def test_users_numpy_error_state_is_untouched():
    before = np.geterr()
    with np.errstate(divide="raise"):
        x = chainrule.tensor([0.0, 1.0], requires_grad=True)
        (1.0 / x).sum().backward()  # silent inside chainrule ...
        assert np.geterr()["divide"] == "raise"
        with pytest.raises(FloatingPointError):  # ... while the user's own setting still holds
            np.array([1.0]) / np.array([0.0])
    assert np.geterr() == before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning):
            np.log(np.zeros(1))


def test_user_function_backward_keeps_the_callers_numpy_state():
    class Reciprocal(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            np.array([1.0]) / np.array([0.0])  # user NumPy code: the user's error state applies
            return grad

    x = chainrule.ones(2, requires_grad=True)
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        Reciprocal.apply(x * 2).sum().backward()


# ---------------------------------------------------------------- out=
OUT_CASES = [
    ("add", lambda lib, x, out: lib.add(x, 1.0, out=out)),
    ("sub", lambda lib, x, out: lib.sub(x, x, alpha=2, out=out)),
    ("mul", lambda lib, x, out: lib.mul(x, x, out=out)),
    ("div", lambda lib, x, out: lib.div(x, 2.0, out=out)),
    ("exp", lambda lib, x, out: lib.exp(x, out=out)),
    ("abs", lambda lib, x, out: lib.abs(x, out=out)),
    ("clamp", lambda lib, x, out: lib.clamp(x, -0.5, 0.5, out=out)),
    ("cat", lambda lib, x, out: lib.cat([x, x], out=out)),
    ("stack", lambda lib, x, out: lib.stack([x, x], out=out)),
    ("zeros", lambda lib, x, out: lib.zeros(2, 3, out=out)),
    ("ones", lambda lib, x, out: lib.ones(3, out=out)),
    ("normalize", lambda lib, x, out: lib.nn.functional.normalize(x, out=out)),
]


@pytest.mark.parametrize("name,fn", OUT_CASES, ids=[c[0] for c in OUT_CASES])
@pytest.mark.parametrize("out_shape", [(0,), (2, 3)])
def test_out_is_written_resized_and_returned(name, fn, out_shape):
    x = randn(2, 3).astype(np.float32)
    ours_out, theirs_out = chainrule.zeros(*out_shape), torch.zeros(*out_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's (and our) resize warning
        ours = fn(chainrule, chainrule.tensor(x), ours_out)
        theirs = fn(torch, torch.tensor(x), theirs_out)
    assert ours is ours_out and theirs is theirs_out
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_out_refuses_autograd_and_narrowing_before_writing():
    out = chainrule.zeros(2)
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        chainrule.mul(chainrule.ones(2, requires_grad=True), 2.0, out=out)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        chainrule.mul(chainrule.ones(2), 2.5, out=chainrule.zeros(2, dtype=chainrule.int64))
    assert out.tolist() == [0.0, 0.0]


def _public_functions():
    seen = {}
    for module, prefix in ((chainrule, "chainrule"), (CF, "chainrule.nn.functional")):
        for name in dir(module):
            fn = getattr(module, name)
            if callable(fn) and not isinstance(fn, type) and not name.startswith("_"):
                seen.setdefault(id(fn), (f"{prefix}.{name}", fn))
    return sorted(seen.values(), key=lambda item: item[0])


def test_every_out_parameter_is_honoured():
    """No public function may accept ``out=`` and ignore it: each one is marked as honouring it."""
    for name, fn in _public_functions():
        try:
            parameters = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            continue
        if "out" not in parameters:
            continue
        assert getattr(fn, "honours_out", False), f"{name} accepts out= without honouring it"
