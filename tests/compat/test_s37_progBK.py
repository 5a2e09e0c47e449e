"""Lane progBK (session 37): fixes found by running the performer_favor_attention,
deit_distillation_token and cbam_attention_resnet programs on both libraries, each proven against torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _pair(array):
    return chainrule.tensor(array), torch.tensor(array)


# ---------------------------------------------------------------- running totals along a short axis
# (prefix sums over a chunk of a (batch, heads, n, d, e) tensor go slice by slice: the same numbers)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.complex64])
@pytest.mark.parametrize("shape, dim", [((6, 5, 4, 7, 3), 2), ((6, 5, 4, 7, 3), -1), ((6, 5, 4, 7, 3), 0),
                                        ((3, 50), 1), ((50, 3), 0), ((2, 0, 3), 2)])
@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
def test_running_total_matches_torch_bitwise(dtype, shape, dim, op):
    """Short axes (summed slice by slice) and long ones (NumPy's accumulate), empty too; complex64
    totals kept in complex128 as torch's acc_type keeps them."""
    rng = np.random.default_rng(0)
    array = rng.standard_normal(shape) * (3 if op == "cumsum" else 1.1)
    if dtype is np.complex64:
        array = array + 1j * rng.standard_normal(array.shape)
    ours, theirs = _pair(array.astype(dtype))
    expected = getattr(torch, op)(theirs, dim)
    got = getattr(chainrule, op)(ours, dim)
    assert str(got.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
    assert got.is_contiguous()
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
def test_running_total_gradient_on_a_short_axis_matches_torch(op):
    rng = np.random.default_rng(1)
    array = rng.uniform(0.5, 1.5, (8, 4, 3, 16)).astype(np.float32)
    weight = rng.standard_normal(array.shape).astype(np.float32)
    ours, theirs = _pair(array)
    ours.requires_grad_(True)
    theirs.requires_grad_(True)
    out_ours = getattr(ours, op)(dim=2)
    out_theirs = getattr(theirs, op)(dim=2)
    assert out_ours.grad_fn.name() == out_theirs.grad_fn.name()
    (out_ours * chainrule.tensor(weight)).sum().backward()
    (out_theirs * torch.tensor(weight)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_cumsum_with_dtype_on_a_short_axis_matches_torch():
    array = np.random.default_rng(2).standard_normal((64, 3, 40)).astype(np.float64)
    ours, theirs = _pair(array)
    np.testing.assert_array_equal(chainrule.cumsum(ours, 1, dtype=chainrule.float32).numpy(),
                                  torch.cumsum(theirs, 1, dtype=torch.float32).numpy())
    ints = (array * 10).astype(np.int32)
    ours, theirs = _pair(ints)
    got, expected = chainrule.cumsum(ours, 1), torch.cumsum(theirs, 1)
    assert got.dtype == chainrule.int64 and expected.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


# ---------------------------------------------------------------- pool argument errors in torch's words and order
def _pool_call(lib, op, d, kwargs):
    F = lib.nn.functional
    x = lib.zeros((2, 3) + (6,) * d)
    if op == "lp_pool":
        return getattr(F, f"lp_pool{d}d")(x, 2, **kwargs)
    return getattr(F, f"{op}{d}d")(x, **kwargs)


def _pool_error_cases():
    for d in (1, 2, 3):
        for op in ("avg_pool", "max_pool", "lp_pool"):
            if op == "max_pool" and d == 1:
                continue  # torch's own max_pool1d kernel: not yet in its words
            cases = [dict(kernel_size=0), dict(kernel_size=0, stride=1), dict(kernel_size=-1),
                     dict(kernel_size=2, stride=-1), dict(kernel_size=-2, stride=1),
                     dict(kernel_size=(2,) * d, stride=(0,) + (1,) * (d - 1)),
                     dict(kernel_size=(0,) + (2,) * (d - 1), stride=1), dict(kernel_size=(2,) * (d + 1)),
                     dict(kernel_size=2, stride=(1,) * (d + 1))]
            if op != "lp_pool":
                cases += [dict(kernel_size=2, padding=(0,) * (d + 1)), dict(kernel_size=2, padding=-1),
                          dict(kernel_size=2, padding=2), dict(kernel_size=0, padding=1, stride=1)]
            if op == "max_pool":
                cases += [dict(kernel_size=2, dilation=(1,) * (d + 1)), dict(kernel_size=2, dilation=0)]
            for kwargs in cases:
                yield op, d, kwargs


@pytest.mark.parametrize("op, d, kwargs", list(_pool_error_cases()))
def test_pool_argument_errors_match_torch(op, d, kwargs):
    """torch checks each dim's output size first (a zero stride, the padding), then the kernel and
    stride values (named kH/kW, dH/dW, with a unit height for 1-d), and says how many ints it wanted
    in words; lp_pool's kernel_size is unpacked in Python (its ValueError)."""
    with pytest.raises(Exception) as expected:
        _pool_call(torch, op, d, kwargs)
    with pytest.raises(type(expected.value)) as got:
        _pool_call(chainrule, op, d, kwargs)
    assert str(got.value) == str(expected.value).split("\n")[0]


def test_lp_pool_short_kernel_size_matches_torch():
    x = np.zeros((1, 1, 4, 4, 4), np.float32)
    with pytest.raises(ValueError) as expected:
        torch.nn.functional.lp_pool3d(torch.tensor(x), 2, (2, 2))
    with pytest.raises(ValueError) as got:
        chainrule.nn.functional.lp_pool3d(chainrule.tensor(x), 2, (2, 2))
    assert str(got.value) == str(expected.value)
