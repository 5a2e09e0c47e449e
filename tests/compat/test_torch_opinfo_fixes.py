"""What running torch 2.13's own OpInfo sample inputs on chainrule found (tools/torch_opinfo_trial.py),
each case rewritten in our own words and compared with torch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import chainrule  # noqa: E402


def _both(values, dtype="float64", requires_grad=False):
    array = np.asarray(values, dtype=dtype)
    return (torch.tensor(array, requires_grad=requires_grad),
            chainrule.tensor(array, requires_grad=requires_grad))


def _same(expected, actual):
    assert str(actual.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
    assert tuple(actual.shape) == tuple(expected.shape)
    np.testing.assert_allclose(actual.detach().numpy(), expected.detach().numpy(), rtol=1e-12, atol=0)


def test_to_takes_non_blocking_and_copy_positionally():
    t, c = _both([[1.5, 2.5], [3.5, 4.5]], "float32")
    _same(t.to("cpu", torch.float64, True, True), c.to("cpu", chainrule.float64, True, True))
    copied = c.to(chainrule.float32, False, True)
    assert copied is not c and copied.dtype is chainrule.float32
    assert c.to(chainrule.float32, False, False) is c


@pytest.mark.parametrize("method", ["float", "double", "half", "long", "int", "short", "bool", "byte", "char",
                                    "cfloat", "cdouble"])
def test_dtype_conversion_methods_take_memory_format(method):
    t, c = _both(np.arange(24.0).reshape(2, 3, 4) - 10, "float32")
    t, c = t.transpose(0, 2), c.transpose(0, 2)
    expected = getattr(t, method)(memory_format=torch.preserve_format)
    actual = getattr(c, method)(memory_format=chainrule.preserve_format)
    _same(expected, actual)


@pytest.mark.parametrize("rounding_mode", ["floor", "trunc"])
def test_rounded_div_gives_zero_gradients_like_torch(rounding_mode):
    t_a, c_a = _both([1.5, -2.5, 7.0], requires_grad=True)
    t_b, c_b = _both([[0.5], [-2.0]], requires_grad=True)
    expected = torch.div(t_a, t_b, rounding_mode=rounding_mode)
    actual = chainrule.div(c_a, c_b, rounding_mode=rounding_mode)
    _same(expected, actual)
    assert actual.requires_grad and type(actual.grad_fn).__name__ == type(expected.grad_fn).__name__
    expected_grads = torch.autograd.grad(expected.sum(), [t_a, t_b])
    actual_grads = chainrule.autograd.grad(actual.sum(), [c_a, c_b])
    for e, a in zip(expected_grads, actual_grads):
        _same(e, a)


def test_round_with_decimals_gives_a_zero_gradient_like_torch():
    t, c = _both([1.23456, -9.87654, 0.5], requires_grad=True)
    expected, actual = torch.round(t, decimals=3), chainrule.round(c, decimals=3)
    _same(expected, actual)
    assert type(actual.grad_fn).__name__ == "RoundBackward1"
    _same(torch.autograd.grad(expected.sum(), t)[0], chainrule.autograd.grad(actual.sum(), c)[0])


@pytest.mark.parametrize("bounds", [(0.0, -8.000001, -4.0), (0.5, 3.7, 1.0), (0.9, 5.5, 1.5), (10, 1, -3)])
def test_integer_arange_truncates_its_bounds_first(bounds):
    expected = torch.arange(*bounds, dtype=torch.int64)
    _same(expected, chainrule.arange(*bounds, dtype=chainrule.int64))


def test_integer_arange_whose_step_truncates_to_zero_raises():
    with pytest.raises(ValueError, match="step must be nonzero"):
        torch.arange(-2.5, 3.2, 0.7, dtype=torch.int64)
    with pytest.raises(ValueError, match="step must be nonzero"):
        chainrule.arange(-2.5, 3.2, 0.7, dtype=chainrule.int64)


@pytest.mark.parametrize("beta, alpha", [(0.2, 0.6), (1.7, 2.6), (-1.7, 2), (0, 3)])
def test_integer_scaled_products_keep_their_dtype(beta, alpha):
    t_in, c_in = _both([5, 7], "int64")
    t_m, c_m = _both([[1, 2], [3, 4]], "int64")
    t_v, c_v = _both([1, -1], "int64")
    _same(torch.addmv(t_in, t_m, t_v, beta=beta, alpha=alpha), chainrule.addmv(c_in, c_m, c_v, beta=beta, alpha=alpha))
    _same(torch.addmm(t_m, t_m, t_m, beta=beta, alpha=alpha), chainrule.addmm(c_m, c_m, c_m, beta=beta, alpha=alpha))
    t_b, c_b = t_m.expand(3, 2, 2), c_m.expand(3, 2, 2)
    _same(torch.baddbmm(t_b, t_b, t_b, beta=beta, alpha=alpha),
          chainrule.baddbmm(c_b, c_b, c_b, beta=beta, alpha=alpha))
    _same(torch.addbmm(t_m, t_b, t_b, beta=beta, alpha=alpha), chainrule.addbmm(c_m, c_b, c_b, beta=beta, alpha=alpha))


@pytest.mark.parametrize("beta", [0, 3])
def test_bool_addr_stays_bool(beta):
    t_in, c_in = _both([[True, False], [False, False]], "bool")
    t_u, c_u = _both([True, False], "bool")
    t_v, c_v = _both([True, True], "bool")
    _same(torch.addr(t_in, t_u, t_v, beta=beta, alpha=2), chainrule.addr(c_in, c_u, c_v, beta=beta, alpha=2))


@pytest.mark.parametrize("reduce, dtype", [("sum", "int64"), ("mean", "int64"), ("amax", "int64"),
                                           ("amin", "int64"), ("prod", "int64"), ("amax", "bool"),
                                           ("amin", "bool")])
def test_scatter_reduce_without_self_keeps_integer_and_bool_dtypes(reduce, dtype):
    t_in, c_in = _both([[3, 0, 5], [1, 1, 0]], dtype)
    t_src, c_src = _both([[1, 0, 1], [0, 1, 1]], dtype)
    t_index, c_index = _both([[0, 0, 2], [2, 1, 0]], "int64")
    expected = torch.scatter_reduce(t_in, 1, t_index, t_src, reduce, include_self=False)
    _same(expected, chainrule.scatter_reduce(c_in, 1, c_index, c_src, reduce, include_self=False))


@pytest.mark.parametrize("ord", [0.5, -1, -2.5, 1.5, 3])
def test_vector_norm_gradient_at_the_zero_vector_is_torch_subgradient(ord):
    t, c = _both([0.0, 0.0, 0.0], requires_grad=True)
    expected = torch.linalg.vector_norm(t, ord)
    actual = chainrule.linalg.vector_norm(c, ord)
    _same(expected, actual)
    _same(torch.autograd.grad(expected, t)[0], chainrule.autograd.grad(actual, c)[0])


@pytest.mark.parametrize("ord", [0.5, -1, 1.5, 3])
def test_vector_norm_gradient_with_some_zero_entries(ord):
    t, c = _both([[0.0, 2.0, -1.5], [0.0, 0.0, 0.0]], requires_grad=True)
    expected = torch.linalg.vector_norm(t, ord, dim=1)
    actual = chainrule.linalg.vector_norm(c, ord, dim=1)
    _same(expected, actual)
    weights = np.array([0.7, -1.3])
    _same(torch.autograd.grad(expected, t, torch.tensor(weights))[0],
          chainrule.autograd.grad(actual, c, chainrule.tensor(weights))[0])
    assert chainrule.autograd.gradcheck(lambda x: chainrule.linalg.vector_norm(x, ord, dim=1),
                                        chainrule.tensor([[0.3, 2.0, -1.5]], dtype=chainrule.float64,
                                                         requires_grad=True))


def test_take_along_dim_takes_indices_modulo_the_dim_size():
    t, c = _both(np.arange(10.0).reshape(2, 5) + 10)
    t_index, c_index = _both([[-1, 7], [-5, 12]], "int64")
    _same(torch.take_along_dim(t, t_index, 1), chainrule.take_along_dim(c, c_index, 1))
    t_rows, c_rows = _both([[-1], [-2]], "int64")
    _same(torch.take_along_dim(t, t_rows, 0), chainrule.take_along_dim(c, c_rows, 0))


@pytest.mark.parametrize("batch", [(), (0,), (3,)])
def test_linear_algebra_of_empty_matrices(batch):
    t_a, c_a = _both(np.zeros(batch + (0, 0)), "float32")
    t_b, c_b = _both(np.zeros(batch + (0, 2)), "float32")
    for name in ("inv_ex", "solve_ex", "lu_factor", "ldl_factor"):
        args_t, args_c = ((t_a, t_b), (c_a, c_b)) if name == "solve_ex" else ((t_a,), (c_a,))
        for e, a in zip(getattr(torch.linalg, name)(*args_t), getattr(chainrule.linalg, name)(*args_c)):
            _same(e, a)
    t_lu, t_piv = torch.linalg.lu_factor(t_a)
    c_lu, c_piv = chainrule.linalg.lu_factor(c_a)
    _same(torch.linalg.lu_solve(t_lu, t_piv, t_b), chainrule.linalg.lu_solve(c_lu, c_piv, c_b))
    t_ld, t_ldpiv = torch.linalg.ldl_factor(t_a)
    c_ld, c_ldpiv = chainrule.linalg.ldl_factor(c_a)
    _same(torch.linalg.ldl_solve(t_ld, t_ldpiv, t_b), chainrule.linalg.ldl_solve(c_ld, c_ldpiv, c_b))


def test_group_norm_of_an_empty_batch():
    t, c = _both(np.zeros((0, 4, 3)), "float32")
    t_w, c_w = _both([1.0, 2.0, 3.0, 4.0], "float32")
    _same(torch.nn.functional.group_norm(t, 2, t_w, t_w), chainrule.nn.functional.group_norm(c, 2, c_w, c_w))


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
def test_integer_convolution(dtype):
    rng = np.random.default_rng(0)
    t_x, c_x = _both(rng.integers(0, 5, (2, 4, 5, 6)), dtype)
    t_w, c_w = _both(rng.integers(0, 3, (6, 2, 3, 2)), dtype)
    _same(torch.nn.functional.conv2d(t_x, t_w, stride=(2, 1), padding=1, groups=2),
          chainrule.nn.functional.conv2d(c_x, c_w, stride=(2, 1), padding=1, groups=2))
    _same(torch.nn.functional.conv1d(t_x[:, :, 0], t_w[:, :, 0], groups=2),
          chainrule.nn.functional.conv1d(c_x[:, :, 0], c_w[:, :, 0], groups=2))


def test_int64_transposed_convolution_and_other_integers_refused():
    rng = np.random.default_rng(1)
    t_x, c_x = _both(rng.integers(-4, 5, (1, 2, 3, 3)), "int64")
    t_w, c_w = _both(rng.integers(-2, 3, (2, 3, 2, 2)), "int64")
    _same(torch.nn.functional.conv_transpose2d(t_x, t_w, stride=2), chainrule.nn.functional.conv_transpose2d(c_x, c_w, stride=2))
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv_transpose2d(t_x.int(), t_w.int())
    with pytest.raises(RuntimeError, match="slow_conv_transpose2d_out_cpu"):
        chainrule.nn.functional.conv_transpose2d(c_x.int(), c_w.int())


@pytest.mark.parametrize("kwargs", [{}, {"padding": 1, "stride": 1}, {"padding": 1, "stride": 1, "count_include_pad": False},
                                    {"ceil_mode": True}])
def test_int64_average_pooling_truncates_toward_zero(kwargs):
    t, c = _both([[[1, 2, 4, 7, -3, -4, 5]], [[-9, 8, 0, 3, -1, -1, 2]]], "int64")
    _same(torch.nn.functional.avg_pool1d(t, 3, **kwargs), chainrule.nn.functional.avg_pool1d(c, 3, **kwargs))
    t2, c2 = t.reshape(1, 2, 7, 1).expand(1, 2, 7, 2), c.reshape(1, 2, 7, 1).expand(1, 2, 7, 2)
    _same(torch.nn.functional.avg_pool2d(t2, (3, 2), divisor_override=4),
          chainrule.nn.functional.avg_pool2d(c2, (3, 2), divisor_override=4))


def test_integer_pow_with_negative_exponent_tensors():
    t_base, c_base = _both([-3, -1, 0, 1, 2, -1, 1], "int64")
    t_exp, c_exp = _both([-2, -3, -1, -5, 3, -2, 0], "int64")
    _same(t_base ** t_exp, c_base ** c_exp)
    _same(torch.tensor(2) ** t_exp, chainrule.tensor(2) ** c_exp)
    _same(t_exp.__rpow__(torch.tensor(-1)), c_exp.__rpow__(chainrule.tensor(-1)))


def test_norm_nuclear():
    t, c = _both(np.arange(18.0).reshape(2, 3, 3) ** 1.5, requires_grad=True)
    expected, actual = torch.norm(t, "nuc", dim=(1, 2)), chainrule.norm(c, "nuc", dim=(1, 2))
    _same(expected, actual)
    weights = np.array([0.5, -2.0])
    np.testing.assert_allclose(chainrule.autograd.grad(actual, c, chainrule.tensor(weights))[0].numpy(),
                               torch.autograd.grad(expected, t, torch.tensor(weights))[0].numpy(), rtol=1e-9)
    _same(torch.norm(t[0], "nuc"), chainrule.norm(c[0], "nuc"))


def test_small_signature_gaps():
    t, c = _both([1.0, 4.0, 9.0, 16.0])
    for e, a in zip(torch.gradient(t, spacing=None, dim=None), chainrule.gradient(c, spacing=None, dim=None)):
        _same(e, a)
    t0, c0 = _both(2.5)
    _same(torch.linalg.vander(t0, N=3), chainrule.linalg.vander(c0, N=3))
    torch.manual_seed(3)
    chainrule.manual_seed(3)
    _same(torch.normal(0.5, 2.0, (2, 3), layout=torch.strided), chainrule.normal(0.5, 2.0, (2, 3), layout=chainrule.strided))


@pytest.mark.parametrize("which", ["alpha_dropout", "feature_alpha_dropout"])
def test_alpha_dropout_of_everything_is_a_signed_zero(which):
    t, c = _both(np.linspace(-2, 2, 12).reshape(2, 3, 2), requires_grad=True)
    expected = getattr(torch.nn.functional, which)(t, 1.0, True)
    actual = getattr(chainrule.nn.functional, which)(c, 1.0, True)
    _same(expected, actual)
    assert np.array_equal(np.signbit(actual.detach().numpy()), np.signbit(expected.detach().numpy()))
    _same(torch.autograd.grad(expected.sum(), t)[0], chainrule.autograd.grad(actual.sum(), c)[0])


@pytest.mark.parametrize("equation", ["...ik, ...j -> ij", "...ik,...j->...ij"])
@pytest.mark.parametrize("shapes", [((1, 2, 3), (3,)), ((4, 2, 3), (3,)), ((5, 4, 2, 3), (4, 3))])
def test_einsum_gradient_when_ellipses_have_different_ranks(equation, shapes):
    rng = np.random.default_rng(2)
    t_a, c_a = _both(rng.standard_normal(shapes[0]), requires_grad=True)
    t_b, c_b = _both(rng.standard_normal(shapes[1]), requires_grad=True)
    expected, actual = torch.einsum(equation, t_a, t_b), chainrule.einsum(equation, c_a, c_b)
    _same(expected, actual)
    for e, a in zip(torch.autograd.grad((expected ** 2).sum(), [t_a, t_b]),
                    chainrule.autograd.grad((actual ** 2).sum(), [c_a, c_b])):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 3), (4, 2), (3, 5, 2)])
@pytest.mark.parametrize("driver", ["gels", "gelsd", "gelsy"])
def test_lstsq_residuals_require_grad_and_differentiate_like_torch(shape, driver):
    rng = np.random.default_rng(4)
    t_a, c_a = _both(rng.standard_normal(shape), requires_grad=True)
    t_b, c_b = _both(rng.standard_normal(shape[:-1] + (2,)), requires_grad=True)
    expected, actual = torch.linalg.lstsq(t_a, t_b, driver=driver), chainrule.linalg.lstsq(c_a, c_b, driver=driver)
    for e, a in zip(expected[:2], actual[:2]):
        assert a.requires_grad == e.requires_grad
        np.testing.assert_allclose(a.detach().numpy(), e.detach().numpy(), rtol=1e-10, atol=1e-12)
    expected_grads = torch.autograd.grad(expected[0].sum() + 1.7 * expected[1].sum(), [t_a, t_b])
    actual_grads = chainrule.autograd.grad(actual[0].sum() + 1.7 * actual[1].sum(), [c_a, c_b])
    for e, a in zip(expected_grads, actual_grads):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-9, atol=1e-11)


def test_bernoulli_of_probabilities_that_require_grad():
    t, c = _both([[0.1, 0.9, 0.5], [0.0, 1.0, 0.3]], requires_grad=True)
    torch.manual_seed(7)
    chainrule.manual_seed(7)
    expected, actual = torch.bernoulli(t), chainrule.bernoulli(c)
    _same(expected, actual)
    assert type(actual.grad_fn).__name__ == "BernoulliBackward0"
    _same(torch.autograd.grad(expected.sum(), t)[0], chainrule.autograd.grad(actual.sum(), c)[0])


@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_prod_gradient_with_zero_factors(include_self):
    # slot 0 holds one zero factor, slot 1 two, slot 2 none; input zeros too
    t_in, c_in = _both([[0.0, 2.0, -1.5, 3.0]], requires_grad=True)
    t_src, c_src = _both([[0.0, 4.0, 0.0, 0.0, -2.0, 0.5]], requires_grad=True)
    t_index, c_index = _both([[0, 0, 1, 1, 2, 3]], "int64")
    expected = torch.scatter_reduce(t_in, 1, t_index, t_src, "prod", include_self=include_self)
    actual = chainrule.scatter_reduce(c_in, 1, c_index, c_src, "prod", include_self=include_self)
    _same(expected, actual)
    weights = np.array([[1.5, -0.5, 2.0, 0.25]])
    for e, a in zip(torch.autograd.grad(expected, [t_in, t_src], torch.tensor(weights)),
                    chainrule.autograd.grad(actual, [c_in, c_src], chainrule.tensor(weights))):
        _same(e, a)
    t_index_reduce, c_index_reduce = _both([0, 0, 1, 2], "int64")
    t_rows, c_rows = _both([[0.0, 1.0], [2.0, 0.0], [3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    t_base, c_base = _both([[1.0, 0.0], [2.0, 3.0], [0.0, 5.0]], requires_grad=True)
    expected = t_base.index_reduce(0, t_index_reduce, t_rows, "prod", include_self=include_self)
    actual = c_base.index_reduce(0, c_index_reduce, c_rows, "prod", include_self=include_self)
    _same(expected, actual)
    for e, a in zip(torch.autograd.grad(expected.sum(), [t_base, t_rows]),
                    chainrule.autograd.grad(actual.sum(), [c_base, c_rows])):
        _same(e, a)


def test_nextafter_passes_the_gradient_to_input_and_zero_to_other():
    # torch 2.13 ignores the one-ulp step: NextafterBackward0 returns grad for input, zeros for other
    t_a, c_a = _both([[0.5, -1.25, 3.0]], requires_grad=True)
    t_b, c_b = _both([[1.0], [-4.0]], requires_grad=True)
    expected, actual = torch.nextafter(t_a, t_b), chainrule.nextafter(c_a, c_b)
    _same(expected, actual)
    assert type(actual.grad_fn).__name__ == type(expected.grad_fn).__name__
    weights = np.array([[2.0, -1.0, 0.5], [3.0, 1.5, -2.0]])
    for e, a in zip(torch.autograd.grad(expected, [t_a, t_b], torch.tensor(weights)),
                    chainrule.autograd.grad(actual, [c_a, c_b], chainrule.tensor(weights))):
        _same(e, a)


@pytest.mark.parametrize("first_edges", [[0.0, 0.6, 0.4, 1.0], [1.0, 0.0], [0.1, 0.9, 0.3, 0.8, 0.2]],
                         ids=["one-step-back", "reversed", "zigzag"])
@pytest.mark.parametrize("density", [False, True])
def test_histogramdd_bins_with_edges_that_are_not_sorted(first_edges, density):
    # torch bins each point by its own bisection of the edges as given (NumPy refuses them)
    points = np.random.default_rng(3).uniform(-0.1, 1.1, (40, 2)).astype(np.float32)
    weights = np.random.default_rng(4).uniform(0.5, 2.0, 40).astype(np.float32)
    t_points, c_points = torch.tensor(points), chainrule.tensor(points)
    second_edges = np.array([0.0, 0.5, 1.0], dtype=np.float32)
    expected = torch.histogramdd(t_points, [torch.tensor(first_edges), torch.tensor(second_edges)],
                                 weight=torch.tensor(weights), density=density)
    actual = chainrule.histogramdd(c_points, [chainrule.tensor(first_edges), chainrule.tensor(second_edges)],
                                   weight=chainrule.tensor(weights), density=density)
    assert actual.hist.dtype is chainrule.float32
    np.testing.assert_allclose(actual.hist.numpy(), expected.hist.numpy(), rtol=1e-6, atol=1e-7, equal_nan=True)


@pytest.mark.parametrize("index_dtype", ["uint8", "int16", "float32"])
def test_gather_and_scatter_take_an_empty_index_of_any_dtype(index_dtype):
    # torch checks the index dtype only when the index has elements
    t_x, c_x = _both([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    t_index, c_index = _both(np.zeros((0, 3)), index_dtype)
    expected, actual = torch.gather(t_x, 0, t_index), chainrule.gather(c_x, 0, c_index)
    _same(expected, actual)
    _same(torch.autograd.grad(expected.sum(), t_x)[0], chainrule.autograd.grad(actual.sum(), c_x)[0])
    _same(t_x.detach().scatter(0, t_index, 7.0), c_x.detach().scatter(0, c_index, 7.0))
    _same(t_x.detach().scatter_add(0, t_index, t_x.detach()), c_x.detach().scatter_add(0, c_index, c_x.detach()))


@pytest.mark.parametrize("dtype", ["int64", "bool", "float64"])
def test_zeta_below_one_is_nan_even_at_a_pole_of_q(dtype):
    # Cephes decides x's cases (x = 1: inf, x < 1: NaN) before q's poles 0, -1, ...
    x = np.array([[-3, -1, 0, 1, 2, 3]]).T
    q = np.array([[-2, -1, 0, 1, 2]])
    if dtype == "bool":
        x, q = x[2:4] > 0, q[:, 2:4] > 0
    t_x, c_x = _both(x, dtype)
    t_q, c_q = _both(q, dtype)
    _same(torch.special.zeta(t_x, t_q), chainrule.special.zeta(c_x, c_q))


@pytest.mark.parametrize("values, dtype", [(True, "bool"), ([3, 4], "int8"), (2.5, "float64"), ([1.5, 2.0], "float32")])
def test_sum_to_an_empty_size_is_a_plain_sum(values, dtype):
    t, c = _both(values, dtype, requires_grad=dtype.startswith("float"))
    expected, actual = t.sum_to_size(()), c.sum_to_size(())
    _same(expected, actual)
    if t.requires_grad:
        assert type(actual.grad_fn).__name__ == type(expected.grad_fn).__name__ == "SumBackward0"


@pytest.mark.parametrize("dims", [([0, 1], [2, 0]), ([1], [0]), ([0], [1])])
def test_tensordot_contracts_a_size_one_dim_with_a_longer_one(dims):
    # torch sums the other operand over its dim first, as broadcasting the size-1 dim would
    t_a, c_a = _both(np.random.default_rng(0).normal(size=(1, 1, 3)), requires_grad=True)
    t_b, c_b = _both(np.random.default_rng(1).normal(size=(2, 1, 2)), requires_grad=True)
    expected, actual = torch.tensordot(t_a, t_b, dims=dims), chainrule.tensordot(c_a, c_b, dims=dims)
    _same(expected, actual)
    weights = np.random.default_rng(2).normal(size=tuple(expected.shape))
    for e, a in zip(torch.autograd.grad(expected, [t_a, t_b], torch.tensor(weights)),
                    chainrule.autograd.grad(actual, [c_a, c_b], chainrule.tensor(weights))):
        _same(e, a)


def _tied_scores(shape, seed=0, levels=4, dtype="int64"):
    return np.random.default_rng(seed).integers(0, levels, shape).astype(dtype)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dtype, length", [("int64", 40), ("bool", 300), ("float32", 17)])
def test_unstable_sort_leaves_ties_in_torch_cpu_order(descending, dtype, length):
    # torch's sort(stable=False) is std::sort of (value, index) pairs: tied indices come out in
    # introsort's order, which users of argsort on integer scores or masks see
    t, c = _both(_tied_scores((3, length), dtype=dtype), dtype)
    assert c.sort(1, descending).indices.tolist() == t.sort(1, descending).indices.tolist()
    assert chainrule.argsort(c, 0, descending).tolist() == torch.argsort(t, 0, descending).tolist()
    # a stable sort keeps ties in index order in both
    stable_kwargs = {"dim": 1, "descending": descending, "stable": True}
    assert c.sort(**stable_kwargs).indices.tolist() == t.sort(**stable_kwargs).indices.tolist()


@pytest.mark.parametrize("k, sorted", [(1, True), (5, True), (5, False), (12, True), (12, False)])
@pytest.mark.parametrize("largest", [True, False])
def test_topk_of_tied_integers_returns_torch_indices(k, sorted, largest):
    t, c = _both(_tied_scores((4, 20), seed=1), "int64")
    expected, actual = torch.topk(t, k, 1, largest, sorted), chainrule.topk(c, k, 1, largest, sorted)
    assert actual.indices.tolist() == expected.indices.tolist()
    _same(expected.values, actual.values)


def test_kthvalue_and_mode_of_tied_integers_return_torch_indices():
    t, c = _both(_tied_scores((5, 30), seed=2), "int64")
    for k in (1, 7, 15, 30):
        assert chainrule.kthvalue(c, k, 1).indices.tolist() == torch.kthvalue(t, k, 1).indices.tolist()
    assert chainrule.mode(c, 1).indices.tolist() == torch.mode(t, 1).indices.tolist()
    t_bool, c_bool = _both(_tied_scores(3000, seed=3, levels=2), "bool")
    assert chainrule.mode(c_bool).indices.item() == torch.mode(t_bool).indices.item()


@pytest.mark.parametrize("dtype, shape", [("int64", (1, 6, 3)), ("int64", (2, 5, 2, 3)), ("float64", (2, 5, 4))])
def test_local_response_norm_averages_the_squares_as_torch_pool_does(dtype, shape):
    # torch averages the window with avg_pool (integer division for integer input), then scales by alpha
    t, c = _both(np.random.default_rng(4).integers(-9, 10, shape), dtype)
    expected = torch.nn.functional.local_response_norm(t, 3, alpha=0.5, beta=0.75, k=1.25)
    actual = chainrule.nn.functional.local_response_norm(c, 3, alpha=0.5, beta=0.75, k=1.25)
    assert str(actual.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=2e-7, atol=0)


@pytest.mark.parametrize("shape", [(0, 0), (5, 5), (2, 4, 3)])
def test_householder_product_without_reflectors_still_depends_on_its_inputs(shape):
    # tau empty: Q is the identity's columns; torch's result still requires grad, and its backward
    # leaves A and tau without a gradient
    t_a, c_a = _both(np.random.default_rng(5).normal(size=shape), requires_grad=True)
    t_tau, c_tau = _both(np.zeros(shape[:-2] + (0,)), requires_grad=True)
    expected = torch.linalg.householder_product(t_a, t_tau)
    actual = chainrule.linalg.householder_product(c_a, c_tau)
    _same(expected, actual)
    assert actual.requires_grad and type(actual.grad_fn).__name__ == type(expected.grad_fn).__name__
    assert torch.autograd.grad(expected.sum(), [t_a, t_tau], allow_unused=True) == (None, None)
    assert chainrule.autograd.grad(actual.sum(), [c_a, c_tau], allow_unused=True) == (None, None)


@pytest.mark.parametrize("input_shape, size, stride, offset", [
    ((3, 3), (2, 2), (1, 2), 1), ((16,), (2, 1, 1, 2), (1, 2, 4, 8), 0), ((1,), (), (), 0), ((3, 4), (0, 2), (1, 1), 0)])
def test_as_strided_scatter_writes_src_through_a_strided_view_of_a_copy(input_shape, size, stride, offset):
    t_x, c_x = _both(np.random.default_rng(7).normal(size=input_shape), requires_grad=True)
    t_src, c_src = _both(np.random.default_rng(8).normal(size=size), requires_grad=True)
    expected = torch.as_strided_scatter(t_x, t_src, size, stride, storage_offset=offset)
    actual = chainrule.as_strided_scatter(c_x, c_src, size, stride, storage_offset=offset)
    _same(expected, actual)
    assert type(actual.grad_fn).__name__ == type(expected.grad_fn).__name__ == "AsStridedScatterBackward0"
    weights = np.random.default_rng(9).normal(size=input_shape)
    _same(torch.autograd.grad(expected, t_src, torch.tensor(weights))[0],
          chainrule.autograd.grad(actual, c_src, chainrule.tensor(weights))[0])
    # the input's gradient deliberately differs from torch 2.13's, whose backward keeps the overwritten
    # positions (torch's own OpInfo expects its gradcheck to fail); chainrule's zeroes them
    assert chainrule.autograd.gradcheck(
        lambda x, src: chainrule.as_strided_scatter(x, src, size, stride, storage_offset=offset), (c_x, c_src))


def test_as_strided_scatter_keeps_a_transposed_input_layout_and_refuses_out_of_bounds():
    t_x, c_x = _both(np.arange(6.0).reshape(2, 3))
    expected = torch.as_strided_scatter(t_x.t(), torch.tensor([10.0, 20.0], dtype=torch.float64), (2,), (1,))
    actual = chainrule.as_strided_scatter(c_x.t(), chainrule.tensor([10.0, 20.0], dtype=chainrule.float64), (2,), (1,))
    _same(expected, actual)
    assert actual.stride() == expected.stride()
    with pytest.raises(RuntimeError, match="requiring a storage size of 1604 are out of bounds for storage of size 64"):
        torch.as_strided_scatter(torch.ones(4, 4), torch.ones(2, 2), [2, 2], [200, 200], storage_offset=0)
    with pytest.raises(RuntimeError, match="requiring a storage size of 1604 are out of bounds for storage of size 64"):
        chainrule.as_strided_scatter(chainrule.ones(4, 4), chainrule.ones(2, 2), [2, 2], [200, 200], storage_offset=0)


@pytest.mark.parametrize("name", ["hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
                                  "legendre_polynomial_p", "chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u"])
def test_float32_polynomial_recurrences_round_as_torch_fused_multiply_add(name):
    # torch's CPU kernels compile each step a·q - b·p to one fused multiply-add: float32 results agree
    # bit for bit only when the step rounds once (|x| >= 1 here: the Chebyshev closed forms inside
    # (-1, 1) are computed in float64 on purpose)
    rng = np.random.default_rng(10)
    x = rng.uniform(1.0, 3.0, 400).astype(np.float32) * rng.choice([-1, 1], 400).astype(np.float32)
    n = rng.integers(0, 12, 400).astype(np.float32)
    expected = getattr(torch.special, name)(torch.tensor(x), torch.tensor(n))
    actual = getattr(chainrule.special, name)(chainrule.tensor(x), chainrule.tensor(n))
    assert actual.dtype is chainrule.float32
    np.testing.assert_array_equal(actual.numpy(), expected.numpy())
