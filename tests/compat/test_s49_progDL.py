"""Session 49, lane progDL: what the MaskGIT, D3PM and FSQ corpus programs found, against torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_MM_CASES = [((), 30, 60, 8), ((), 576, 60, 8), ((3,), 5, 30, 3), ((2, 2), 40, 40, 33),
             ((), 3000, 30, 16), ((), 64, 64, 2)]


def _torch_sqrt_is_correctly_rounded(squared):
    """Where torch's sqrt of these float32 values is NumPy's (the correctly rounded one): torch's
    CPU sqrt is off by an ulp for about 0.7% of inputs, those within ~0.05 ulp of a rounding tie."""
    return torch.from_numpy(squared).sqrt().numpy() == np.sqrt(squared)


@pytest.mark.parametrize("batch, rows1, rows2, cols", _MM_CASES)
@pytest.mark.parametrize("mode", ["use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist"])
def test_cdist_matrix_product_path_rounds_the_norms_as_torch(batch, rows1, rows2, cols, mode):
    # torch's _euclidean_dist takes |x|² by x.pow(2).sum(-1, True) in its float32 order; NumPy's
    # pairwise sum rounded 4 in 10 of those norms differently, and 16-22% of the distances with them
    rng = np.random.RandomState(rows1 * 7 + cols)
    a = rng.randn(*batch, rows1, cols).astype(np.float32)
    b = rng.randn(*batch, rows2, cols).astype(np.float32)
    expected = torch.cdist(torch.from_numpy(a), torch.from_numpy(b), compute_mode=mode).numpy()
    got = chainrule.cdist(chainrule.from_numpy(a), chainrule.from_numpy(b), compute_mode=mode).numpy()
    # torch's own squared distances (its formula, one batched product), to tell where its sqrt rounds
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    x1 = torch.cat([ta.mul(-2), ta.pow(2).sum(-1, True), torch.ones_like(ta[..., :1])], -1)
    x2 = torch.cat([tb, torch.ones_like(tb[..., :1]), tb.pow(2).sum(-1, True)], -1)
    squared = x1.reshape(-1, rows1, cols + 2).matmul(x2.reshape(-1, rows2, cols + 2).mT).clamp_min(0)
    exact_sqrt = _torch_sqrt_is_correctly_rounded(squared.numpy()).reshape(expected.shape)
    if not chainrule.ops.cpu_features.AVX512_CORE:
        # on an AVX2 CPU (AMD EPYC, no AVX-512) torch's product is MKL's AVX2 sgemm, rounded otherwise
        # than NumPy's in 5-11% of these squared distances, and its float32 sqrt is off the correctly
        # rounded root in 15-20%: chainrule's distances differ in 15-23% of elements there. Replaying
        # the sgemm as an FMA chain per output gave its bits at 5x cdist's cost and was not kept. What
        # holds: each squared distance within 8 float32 eps of the operands' squared norms (measured:
        # at most 3.92)
        scale = (a.astype(np.float64) ** 2).sum(-1)[..., :, None] + (b.astype(np.float64) ** 2).sum(-1)[..., None, :]
        error = np.abs(got.astype(np.float64) ** 2 - expected.astype(np.float64) ** 2)
        assert np.all(error <= 8 * np.finfo(np.float32).eps * scale)
        return
    assert exact_sqrt.mean() > 0.95
    np.testing.assert_array_equal(got[exact_sqrt], expected[exact_sqrt])
    # elsewhere torch's sqrt is an ulp off the correctly rounded root chainrule takes
    np.testing.assert_array_max_ulp(got, expected, maxulp=1)


def test_cdist_matrix_product_path_gradient_matches_torch():
    rng = np.random.RandomState(3)
    a = rng.randn(2, 40, 6).astype(np.float32)
    b = rng.randn(2, 30, 6).astype(np.float32)
    g = rng.randn(2, 40, 30).astype(np.float32)
    ta, tb = torch.from_numpy(a).requires_grad_(), torch.from_numpy(b).requires_grad_()
    ca, cb = chainrule.from_numpy(a).requires_grad_(), chainrule.from_numpy(b).requires_grad_()
    torch.cdist(ta, tb).backward(torch.from_numpy(g))
    out = chainrule.cdist(ca, cb)
    assert type(out.grad_fn).__name__ == type(torch.cdist(ta, tb).grad_fn).__name__
    out.backward(chainrule.from_numpy(g))
    np.testing.assert_allclose(ca.grad.numpy(), ta.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cb.grad.numpy(), tb.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_cdist_matrix_product_path_gradcheck_float64():
    rng = np.random.RandomState(4)
    a = chainrule.from_numpy(rng.randn(27, 3)).requires_grad_()
    b = chainrule.from_numpy(rng.randn(5, 3)).requires_grad_()
    assert chainrule.autograd.gradcheck(lambda x, y: chainrule.cdist(x, y), (a, b))
    expected = torch.cdist(torch.from_numpy(a.detach().numpy()), torch.from_numpy(b.detach().numpy()))
    np.testing.assert_allclose(chainrule.cdist(a, b).detach().numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("low, high", [(-0.999, 0.999), (-0.1, 0.1), (0.9, 0.99999)])
def test_atanh_float32_rounds_as_torch(low, high):
    # NumPy's float32 arctanh loop was an ulp off torch's (SLEEF's) atanh in 1.35% of uniform
    # inputs on (-0.999, 0.999); float64's value rounded once to float32 is torch's but for ~0.1%
    x = np.random.RandomState(5).uniform(low, high, 20000).astype(np.float32)
    expected = torch.from_numpy(x).atanh().numpy()
    for got in (chainrule.atanh(chainrule.from_numpy(x)), chainrule.from_numpy(x).clone().atanh_(),
                chainrule.from_numpy(x).atanh()):
        assert got.dtype == chainrule.float32
        np.testing.assert_array_max_ulp(got.numpy(), expected, maxulp=1)
        assert (got.numpy() != expected).mean() < 0.005


def test_atanh_specials_and_gradient_match_torch():
    values = np.array([0.0, -0.0, 0.25, -0.75, 1.0, -1.0, 1.5, np.nan], np.float32)
    x = chainrule.from_numpy(values).requires_grad_()
    t = torch.from_numpy(values).requires_grad_()
    got, expected = chainrule.atanh(x).detach().numpy(), torch.atanh(t).detach().numpy()
    special = ~np.isin(values, [0.25, -0.75])
    np.testing.assert_array_equal(got[special], expected[special])
    # (torch's atanh(-0.75) is an ulp off the correctly rounded -0.97295507452765...: within one ulp)
    np.testing.assert_array_max_ulp(got[~special], expected[~special], maxulp=1)
    chainrule.atanh(x).sum().backward()
    torch.atanh(t).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    x64 = chainrule.from_numpy(np.array([0.1, -0.5, 0.9])).requires_grad_()
    assert chainrule.autograd.gradcheck(chainrule.atanh, (x64,))
