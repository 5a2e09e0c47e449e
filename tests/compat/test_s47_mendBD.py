"""Lane mendBD (session 47): small value gaps against torch, each proven on the same call."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _pair(name):
    """(torch's, chainrule's) function named name in torch.nn.functional / torch."""
    if name in ("erf",):
        return getattr(torch, name), getattr(chainrule, name)
    return getattr(torch.nn.functional, name), getattr(chainrule.nn.functional, name)


# ---------------------------------------------------------------- signed zeros
# torch's elu family takes x <= 0 to alpha·expm1(x), and expm1(-0.0) = -0.0, expm1(+0.0) = +0.0; its
# erf keeps the sign of zero too
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["elu", "selu", "celu", "erf"])
def test_signed_zero_kept_as_torch(name, dtype):
    values = [-0.0, 0.0, -1.5, 2.0]
    torch_fn, fn = _pair(name)
    expected = torch_fn(torch.tensor(values, dtype=getattr(torch, dtype))).numpy()
    got = fn(chainrule.tensor(values, dtype=getattr(chainrule, dtype))).numpy()
    assert np.signbit(expected[:2]).tolist() == [True, False]
    assert np.signbit(got).tolist() == np.signbit(expected).tolist()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["elu", "selu", "celu"])
def test_elu_family_gradient_at_signed_zero(name, dtype):
    values = [-0.0, 0.0]
    tx = torch.tensor(values, dtype=getattr(torch, dtype), requires_grad=True)
    cx = chainrule.tensor(values, dtype=getattr(chainrule, dtype), requires_grad=True)
    torch_fn, fn = _pair(name)
    torch_fn(tx).sum().backward()
    fn(cx).sum().backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


# ---------------------------------------------------------------- conj()'s result as torch's conj bit
_CONJ_MESSAGE = ("view_as_real doesn't work on unresolved conjugated tensors.  To resolve the conjugate tensor "
                 "so you can view it as real, use self.resolve_conj(); however, be warned that the resulting "
                 "tensor will NOT alias the original.")


def _conj_outcome(lib, make):
    z = lib.tensor([1 + 2j, 3 - 4j, -0.5j])
    try:
        return ("value", lib.view_as_real(make(z)).tolist())
    except RuntimeError as error:
        return ("RuntimeError", str(error))


_CONJ_CALLS = {
    "conj": lambda z: z.conj(),
    "function conj": lambda z: z.conj().conj().conj(),
    "conj of a grad-requiring tensor": lambda z: z.clone().requires_grad_().conj(),
    "conj resolved": lambda z: z.conj().resolve_conj(),
    "conj twice": lambda z: z.conj().conj(),
    "conj_physical": lambda z: z.conj_physical(),
    "conj cloned": lambda z: z.conj().clone(),
    "conj times one": lambda z: z.conj() * 1,
}


@pytest.mark.parametrize("call", list(_CONJ_CALLS))
def test_view_as_real_of_conj_as_torch(call):
    expected = _conj_outcome(torch, _CONJ_CALLS[call])
    assert _conj_outcome(chainrule, _CONJ_CALLS[call]) == expected
    if "resolved" in call or "twice" in call:
        assert expected[0] == "value"


@pytest.mark.parametrize("call", list(_CONJ_CALLS))
def test_is_conj_as_torch(call):
    tz = torch.tensor([1 + 2j, 3 - 4j])
    cz = chainrule.tensor([1 + 2j, 3 - 4j])
    expected = _CONJ_CALLS[call](tz).is_conj()
    assert _CONJ_CALLS[call](cz).is_conj() == expected
    assert chainrule.is_conj(_CONJ_CALLS[call](cz)) == expected


def test_conj_message_and_resolve_conj_copy():
    z = chainrule.tensor([1 + 2j, 3 - 4j], requires_grad=True)
    c = z.conj()
    with pytest.raises(RuntimeError) as error:
        chainrule.view_as_real(c)
    assert str(error.value) == _CONJ_MESSAGE
    resolved = c.resolve_conj()
    assert resolved is not c and not resolved.is_conj() and type(resolved.grad_fn).__name__ == "CloneBackward0"
    assert z.resolve_conj() is z
    # chainrule's own uses of the pairs (gradients, .real/.imag) still take conj()'s result
    (chainrule.view_as_real(resolved) * chainrule.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    tz = torch.tensor([1 + 2j, 3 - 4j], requires_grad=True)
    (torch.view_as_real(tz.conj().resolve_conj()) * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    np.testing.assert_allclose(z.grad.resolve_conj().numpy(), tz.grad.resolve_conj().numpy())
    assert c.real.tolist() == tz.conj().real.tolist() and c.imag.tolist() == tz.conj().imag.tolist()


@pytest.mark.parametrize("read", ["numpy", "numpy force", "asarray", "ufunc", "tolist", "resolved numpy"])
def test_numpy_of_conj_as_torch(read):
    reads = {"numpy": lambda t: t.numpy(), "numpy force": lambda t: t.numpy(force=True),
             "asarray": np.asarray, "ufunc": lambda t: np.exp(t), "tolist": lambda t: t.tolist(),
             "resolved numpy": lambda t: t.resolve_conj().numpy()}

    def outcome(lib):
        try:
            return ("value", np.asarray(reads[read](lib.tensor([1 + 2j, -3j]).conj())).tolist())
        except RuntimeError as error:
            return ("RuntimeError", str(error))

    assert outcome(chainrule) == outcome(torch)


def test_view_as_complex_gradient_through_conj():
    x = chainrule.tensor([[1.0, 2.0], [3.0, -4.0]], requires_grad=True)
    tx = torch.tensor([[1.0, 2.0], [3.0, -4.0]], requires_grad=True)
    w = chainrule.tensor([1 + 1j, 2 - 3j])
    tw = torch.tensor([1 + 1j, 2 - 3j])
    (chainrule.view_as_complex(x).conj() * w).real.sum().backward()
    (torch.view_as_complex(tx).conj() * tw).real.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


# ---------------------------------------------------------------- index_add's rounding with alpha
# torch adds source's slices in index order; an n-d self takes add_(slice, alpha=a) (one fused
# multiply-add per element), a 1-d self self[i] += source[j] * alpha (the product rounded first)
_INDEX_ADD_CASES = [((40,), 0), ((8, 5), 0), ((8, 5), 1), ((3, 4, 5), 1), ((3, 4, 5), 2), ((6, 1), 0)]


@pytest.mark.parametrize("repeats", [False, True])
@pytest.mark.parametrize("alpha", [0.3, -1.7, 1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, dim", _INDEX_ADD_CASES)
def test_index_add_alpha_bits_as_torch(shape, dim, dtype, alpha, repeats):
    rng = np.random.default_rng(47)
    x = rng.standard_normal(shape).astype(dtype)
    count = 3 * shape[dim] if repeats else shape[dim]
    index = rng.integers(0, shape[dim], count) if repeats else rng.permutation(shape[dim])
    source_shape = list(shape)
    source_shape[dim] = count
    source = (rng.standard_normal(source_shape) * 7).astype(dtype)
    expected = torch.from_numpy(x.copy()).index_add_(dim, torch.from_numpy(index), torch.from_numpy(source),
                                                     alpha=alpha).numpy()
    got = chainrule.tensor(x.copy()).index_add_(dim, chainrule.tensor(index), chainrule.tensor(source),
                                                alpha=alpha).numpy()
    assert np.array_equal(got, expected)
    got = chainrule.index_add(chainrule.tensor(x), dim, chainrule.tensor(index), chainrule.tensor(source),
                              alpha=alpha).numpy()
    assert np.array_equal(got, expected)


def test_index_add_alpha_non_finite_and_gradient():
    x = np.array([[np.inf, 1.0], [2.0, -3.0]])
    source = np.array([[1.0, np.nan], [-np.inf, 1e308]])
    index = np.array([1, 0])
    expected = torch.from_numpy(x.copy()).index_add_(0, torch.from_numpy(index), torch.from_numpy(source),
                                                     alpha=3.0).numpy()
    got = chainrule.tensor(x).index_add(0, chainrule.tensor(index), chainrule.tensor(source), alpha=3.0).numpy()
    np.testing.assert_array_equal(got, expected)
    a = chainrule.randn(3, 4, dtype=chainrule.float64, requires_grad=True)
    s = chainrule.randn(5, 4, dtype=chainrule.float64, requires_grad=True)
    i = chainrule.tensor([2, 0, 2, 1, 0])
    assert chainrule.autograd.gradcheck(lambda a, s: a.index_add(0, i, s, alpha=-0.7), (a, s))
