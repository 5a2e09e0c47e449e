"""Ops in the dtypes torch's op_db samples that the float32/float64/int64/bool trial left out
(float16, bfloat16, complex, int8/16/32, uint8), each against torch 2.13: the differences
tools/torch_opinfo_dtypes_trial.py found, in our own words."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _same(ours, theirs):
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.detach().float().numpy() if ours.dtype == chainrule.float16 else ours.numpy(),
                                  theirs.detach().float().numpy() if theirs.dtype == torch.float16 else theirs.numpy())


# ---- float16 accumulates in float32, as torch's CPU kernels do ------------------------------------
def test_float16_column_sums_accumulate_in_float32():
    # NumPy adds a float16 column row by row, rounding each partial sum: 0.1 a thousand times is 105.2
    values = np.full((1000, 3), 0.1, np.float16)
    _same(chainrule.from_numpy(values).sum(0), torch.from_numpy(values).sum(0))
    _same(chainrule.tensor(values).half().mean(0), torch.tensor(values).half().mean(0))


def test_float16_var_and_norm_accumulate_in_float32():
    values = np.random.default_rng(0).standard_normal((40, 7)).astype(np.float16) * 8
    ours, theirs = chainrule.tensor(values), torch.tensor(values)
    _same(ours.var(0), theirs.var(0))
    _same(chainrule.linalg.vector_norm(ours, dim=1), torch.linalg.vector_norm(theirs, dim=1))
    # a float16 sum of squares past 65504 overflows in float16, not in torch's float32 accumulation
    big = np.full(3000, 8.0, np.float16)
    _same(chainrule.linalg.vector_norm(chainrule.tensor(big)), torch.linalg.vector_norm(torch.tensor(big)))


def test_float16_gradient_of_a_sum_is_float16():
    x = chainrule.tensor(np.full((50, 2), 0.1, np.float16), requires_grad=True)
    x.sum().backward()
    assert x.grad.dtype == chainrule.float16
    assert float(x.grad[0, 0]) == 1.0


# ---- small integer types -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "uint8"])
def test_arange_of_narrow_integers_counts_in_double_then_truncates(dtype):
    # torch's int64 kernel truncates the bounds before counting, the narrower ones do not
    for start, end, step in [(0.0, 8.000001, 4.0), (0.5, 3.7, 1.2), (1, 9, 2.5), (1, 2, 0.25)]:
        _same(chainrule.arange(start, end, step, dtype=getattr(chainrule, dtype)),
              torch.arange(start, end, step, dtype=getattr(torch, dtype)))
    _same(chainrule.arange(0.0, 8.000001, 4.0, dtype=chainrule.int64), torch.arange(0.0, 8.000001, 4.0, dtype=torch.int64))


@pytest.mark.parametrize("name", ["all", "any"])
def test_all_and_any_of_uint8_stay_uint8(name):
    values = np.array([[0, 3], [1, 2]], np.uint8)
    ours, theirs = chainrule.tensor(values), torch.tensor(values)
    _same(getattr(chainrule, name)(ours), getattr(torch, name)(theirs))
    _same(getattr(ours, name)(1, keepdim=True), getattr(theirs, name)(1, keepdim=True))
    _same(getattr(chainrule, name)(ours.to(chainrule.int8)), getattr(torch, name)(theirs.to(torch.int8)))


@pytest.mark.parametrize("equation", ["ij->i", "ii->", "...->", "ii->i", "ij->ji"])
def test_einsum_summing_one_integer_operand_counts_in_int64(equation):
    values = np.array([[100, 27], [3, 120]], np.int8)
    _same(chainrule.einsum(equation, chainrule.tensor(values)), torch.einsum(equation, torch.tensor(values)))
    flags = np.array([[True, False], [True, True]])
    _same(chainrule.einsum(equation, chainrule.tensor(flags)), torch.einsum(equation, torch.tensor(flags)))
    _same(chainrule.einsum(equation, chainrule.tensor(values[:1, :1])), torch.einsum(equation, torch.tensor(values[:1, :1])))


@pytest.mark.parametrize("equation, shapes", [("ij,k->ik", [(2, 1), (3,)]), ("ij,k->i", [(2, 1), (3,)]),
                                              ("ij,k->k", [(2, 2), (3,)]), ("ij,j->i", [(2, 2), (2,)]),
                                              ("...ik,...j->ij", [(1, 2, 3), (3,)])])
def test_einsum_of_integer_operands_counts_in_int64_where_torch_sums_a_lone_label(equation, shapes):
    arrays = [np.arange(np.prod(shape), dtype=np.int8).reshape(shape) * 50 for shape in shapes]
    _same(chainrule.einsum(equation, *(chainrule.tensor(a) for a in arrays)),
          torch.einsum(equation, *(torch.tensor(a) for a in arrays)))


def test_scalar_tensor_wraps_a_negative_integer_into_uint8():
    _same(chainrule.scalar_tensor(-5, dtype=chainrule.uint8), torch.scalar_tensor(-5, dtype=torch.uint8))
    _same(chainrule.scalar_tensor(2.7, dtype=chainrule.int8), torch.scalar_tensor(2.7, dtype=torch.int8))
    _same(chainrule.scalar_tensor(3), torch.scalar_tensor(3))
    with pytest.raises(RuntimeError, match="value cannot be converted to type uint8_t without overflow"):
        chainrule.scalar_tensor(300, dtype=chainrule.uint8)
    with pytest.raises(RuntimeError, match="value cannot be converted to type uint8_t without overflow"):
        torch.scalar_tensor(300, dtype=torch.uint8)


def test_index_add_of_uint8_with_a_negative_alpha_wraps():
    def run(lib):
        return lib.index_add(lib.tensor([5, 7], dtype=lib.uint8), 0, lib.tensor([0, 0]),
                             lib.tensor([1, 2], dtype=lib.uint8), alpha=-1)

    _same(run(chainrule), run(torch))


# ---- complex -----------------------------------------------------------------------------------
def _complex_values(shape=(4, 3)):
    rng = np.random.default_rng(3)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


@pytest.mark.parametrize("name", ["var_mean", "std_mean"])
def test_var_mean_and_std_mean_of_complex_give_a_real_spread(name):
    values = _complex_values()
    ours = getattr(chainrule, name)(chainrule.tensor(values), 1)
    theirs = getattr(torch, name)(torch.tensor(values), 1)
    for a, b in zip(ours, theirs):
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)


def test_std_of_complex_with_unbiased_given():
    values = _complex_values()
    for kwargs in ({"unbiased": True}, {"unbiased": False}, {"correction": 2}):
        ours = chainrule.std(chainrule.tensor(values), 0, **kwargs)
        theirs = torch.std(torch.tensor(values), 0, **kwargs)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5)
    np.testing.assert_allclose(chainrule.tensor(values).std(True).numpy(), torch.tensor(values).std(True).numpy(),
                               rtol=1e-5)


def test_constant_pad_nd_takes_a_complex_scalar_and_pad_does_not():
    values = _complex_values((1, 2))
    _same(chainrule.constant_pad_nd(chainrule.tensor(values), (1, 2), 1 + 2j),
          torch.constant_pad_nd(torch.tensor(values), (1, 2), 1 + 2j))
    _same(chainrule.constant_pad_nd(chainrule.zeros(2), (1, 1), 3 + 0j), torch.constant_pad_nd(torch.zeros(2), (1, 1), 3 + 0j))
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError, match="value cannot be converted to type float without overflow"):
            lib.constant_pad_nd(lib.zeros(2), (1, 1), 1 + 2j)
        with pytest.raises(TypeError, match="argument 'value'.* must be float, not complex"):
            lib.nn.functional.pad(lib.tensor(values), (1, 1), value=1 + 2j)


def test_float_power_of_complex_is_complex128():
    values = _complex_values((3,))
    for args in [(values, values), (values, 2.0), (np.abs(values).astype(np.float32), 0.5j)]:
        ours = chainrule.float_power(*(chainrule.tensor(a) if isinstance(a, np.ndarray) else a for a in args))
        theirs = torch.float_power(*(torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args))
        assert ours.dtype == chainrule.complex128 and theirs.dtype == torch.complex128
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_ldexp_with_a_complex_exponent_keeps_its_imaginary_part():
    values = _complex_values((3,))
    ours = chainrule.ldexp(chainrule.tensor(values), chainrule.tensor(values[::-1].copy()))
    theirs = torch.ldexp(torch.tensor(values), torch.tensor(values[::-1].copy()))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5)


@pytest.mark.parametrize("name", ["acosh", "asinh", "atanh"])
def test_inverse_hyperbolic_gradients_of_complex_are_conjugated(name):
    values = np.array([2.85 + 1.63j, 0.3 - 0.2j, -1.5 + 0.7j])
    cotangent = np.array([1 + 0.5j, 0.3 - 1j, 2 + 0j])
    grads = []
    for lib in (chainrule, torch):
        x = lib.tensor(values, requires_grad=True)
        (grad,) = lib.autograd.grad(getattr(lib, name)(x), x, lib.tensor(cotangent))
        grads.append(grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    x = chainrule.tensor(values[:2], requires_grad=True)
    assert chainrule.autograd.gradcheck(getattr(chainrule, name), (x,))


@pytest.mark.parametrize("name", ["cov", "corrcoef"])
def test_cov_and_corrcoef_of_complex_variables_conjugate_and_stay_complex(name):
    values = _complex_values((3, 5))
    ours, theirs = getattr(chainrule, name)(chainrule.tensor(values)), getattr(torch, name)(torch.tensor(values))
    assert ours.dtype == chainrule.complex64 and theirs.dtype == torch.complex64
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_vecdot_of_complex_conjugates_its_first_argument():
    x, y = _complex_values((3, 4)).astype(np.complex128), _complex_values((4,)).astype(np.complex128)
    cotangent = np.array([1 + 2j, -0.5j, 3.0])
    grads = []
    for lib in (chainrule, torch):
        a, b = lib.tensor(x, requires_grad=True), lib.tensor(y, requires_grad=True)
        out = lib.linalg.vecdot(a, b)
        grads.append([out.detach().numpy(), *(g.resolve_conj().numpy() for g in lib.autograd.grad(out, (a, b), lib.tensor(cotangent)))])
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_cov_of_complex_variables_with_frequency_and_observation_weights():
    values = _complex_values((2, 5))
    frequencies, observations = np.array([1, 2, 1, 3, 1]), np.linspace(0.5, 1.5, 5, dtype=np.float32)
    results = [lib.cov(lib.tensor(values), fweights=lib.tensor(frequencies), aweights=lib.tensor(observations))
               for lib in (chainrule, torch)]
    assert results[0].dtype == chainrule.complex64 and results[1].dtype == torch.complex64
    np.testing.assert_allclose(results[0].numpy(), results[1].numpy(), rtol=1e-5)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_bilinear_of_small_integers_stays_in_their_dtype(dtype):
    rng = np.random.default_rng(5)
    x1, x2 = rng.integers(0, 9, (2, 3)), rng.integers(0, 9, (2, 4))
    weight, bias = rng.integers(0, 9, (5, 3, 4)), rng.integers(0, 9, (5,))
    _same(*(lib.nn.functional.bilinear(*(lib.tensor(v, dtype=getattr(lib, dtype)) for v in (x1, x2, weight, bias)))
            for lib in (chainrule, torch)))


def test_gradient_of_complex_values_is_complex():
    values = _complex_values((6,))
    for ours, theirs in zip(chainrule.gradient(chainrule.tensor(values)), torch.gradient(torch.tensor(values))):
        assert ours.dtype == chainrule.complex64 and theirs.dtype == torch.complex64
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5)


@pytest.mark.parametrize("input_shape", [(2, 3), (3,), (2, 2, 3)])
def test_linear_gradients_of_complex_are_conjugated(input_shape):
    rng = np.random.default_rng(7)
    values = {name: rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
              for name, shape in [("input", input_shape), ("weight", (4, 3)), ("bias", (4,)),
                                  ("cotangent", input_shape[:-1] + (4,))]}
    results = []
    for lib in (chainrule, torch):
        x, w, b = (lib.tensor(values[name], requires_grad=True) for name in ("input", "weight", "bias"))
        out = lib.nn.functional.linear(x, w, b)
        grads = lib.autograd.grad(out, (x, w, b), lib.tensor(values["cotangent"]))
        results.append([out.detach().numpy(), *(g.resolve_conj().numpy() for g in grads)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_complex_of_two_half_tensors_names_the_missing_complex32():
    assert torch.complex(torch.ones(2, dtype=torch.half), torch.ones(2, dtype=torch.half)).dtype == torch.complex32
    with pytest.raises(TypeError, match="ComplexHalf .complex32."):
        chainrule.complex(chainrule.ones(2, dtype=chainrule.half), chainrule.ones(2, dtype=chainrule.half))
