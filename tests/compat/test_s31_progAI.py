"""Found writing the generative-model programs (flow_matching_rectified, score_matching_ncsn,
beta_vae_tc, consistency_model_toy), against torch 2.13.

The consistency model's EMA (``torch._foreach_lerp_(target_params, online_params, 1 - mu)``) given
a target of the wrong shape named the clash the other way round ("tensor a (2) ... tensor b (3)"
where torch says "a (3) ... b (2)"): lerp, addcmul and addcdiv are composed of steps whose first
one meets two operands in another order than torch's TensorIterator, which broadcasts self, then
each operand in turn. ``where`` and tensor-bounded ``clamp`` with three operands named another
clash than torch's for shapes that clash in two dims.

beta_vae_tc's Bernoulli likelihoods led to ``kl_divergence`` between Bernoullis at the edges: where
q gives probability 0 to an outcome p allows, torch's divergence is inf, chainrule's was finite
(its clamped logits, e.g. 10.55 for p = 0.3 against q = 1), and its gradient took those terms in.

Probing the losses and distributions beside them: ``soft_margin_loss`` broadcast the input up to a
larger target where torch, which multiplies the target into a tensor of the input's shape, refuses
("output with shape [1, 5] doesn't match the broadcast shape [2, 5]"); and the entropy of a
``Categorical``/``OneHotCategorical`` with a class masked by a ``-inf`` logit was nan, torch's the
entropy of the classes left (it clamps the logits at the dtype's lowest finite value).

The programs' MMDs take ``torch.cdist`` of hundreds of points: past 25 rows (or with
``compute_mode='use_mm_for_euclid_dist'``) torch's p=2 cdist is one matrix product of padded rows
(``_euclidean_dist``, its graph EuclideanDistBackward0 under a ViewBackward0), whose cancellation
leaves small nonzero distances where points nearly coincide; chainrule always took the exact
differences.
"""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")

# shape triples whose first clash depends on the order the operands are broadcast in
CLASHING_TRIPLES = [((3, 4), (2, 4), (3, 4)), ((2, 4), (3, 4), (3, 4)), ((3, 4), (2, 1), (1, 5)),
                    ((2, 1), (3, 4), (1, 5)), ((1, 5), (2, 1), (3, 4)), ((3, 1), (1, 2), (4, 5)),
                    ((4,), (3, 1), (2, 5)), ((), (3, 4), (2, 4))]

TERNARY = {
    "lerp": lambda lib, a, b, c: lib.lerp(a, b, c),
    "lerp scalar weight": lambda lib, a, b, c: a.lerp(b, 0.3),
    "lerp_": lambda lib, a, b, c: a.lerp_(b, c),
    "lerp out": lambda lib, a, b, c: lib.lerp(a, b, c, out=lib.empty(0)),
    "addcmul": lambda lib, a, b, c: lib.addcmul(a, b, c),
    "addcmul value": lambda lib, a, b, c: lib.addcmul(a, b, c, value=0.5),
    "addcmul_": lambda lib, a, b, c: a.addcmul_(b, c),
    "addcdiv": lambda lib, a, b, c: lib.addcdiv(a, b, c),
    "addcdiv_": lambda lib, a, b, c: a.addcdiv_(b, c, value=2.0),
    "where": lambda lib, a, b, c: lib.where(a > 0, b, c),
    "clamp": lambda lib, a, b, c: lib.clamp(a, b, c),
    "clamp min": lambda lib, a, b, c: lib.clamp(a, min=b),
    "clamp max": lambda lib, a, b, c: lib.clamp(a, max=c),
    "_foreach_lerp_": lambda lib, a, b, c: lib._foreach_lerp_([a], [b], 0.3),
    "_foreach_lerp tensors": lambda lib, a, b, c: lib._foreach_lerp([a], [b], [c]),
    "_foreach_addcmul_": lambda lib, a, b, c: lib._foreach_addcmul_([a], [b], [c], value=0.1),
    "_foreach_addcdiv": lambda lib, a, b, c: lib._foreach_addcdiv([a], [b], [c]),
}


def _outcome(lib, op, shapes):
    operands = [lib.ones(shape) for shape in shapes]
    try:
        result = TERNARY[op](lib, *operands)
    except Exception as error:  # noqa: BLE001 - the class and text are what is compared
        return type(error).__name__, str(error)
    return "ok", [tuple(t.shape) for t in result] if isinstance(result, (list, tuple)) else tuple(result.shape)


@pytest.mark.parametrize("op", TERNARY)
def test_a_broadcast_clash_of_three_operands_is_named_as_torch_names_it(op):
    mismatches = []
    for shapes in CLASHING_TRIPLES:
        expected, got = _outcome(torch, op, shapes), _outcome(chainrule, op, shapes)
        if got != expected:
            mismatches.append(f"{op} {shapes}: torch {expected}, chainrule {got}")
    assert not mismatches, "\n".join(mismatches)


def test_the_consistency_models_ema_of_a_wrong_shape_names_torchs_sizes():
    # the program's EMA step with a target parameter of another shape than the online one
    messages = []
    for lib in (torch, chainrule):
        target, online = [lib.zeros(3, 4), lib.zeros(8)], [lib.ones(2, 4), lib.ones(8)]
        with pytest.raises(RuntimeError) as caught:
            lib._foreach_lerp_(target, online, 1 - 0.99)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] == (
        "The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 0")


def test_operands_that_broadcast_still_give_torchs_values_and_gradients():
    # the early check must refuse nothing torch accepts: broadcasting in every position
    shapes = [(3, 1), (1, 4), (3, 4)]
    values = {}
    for lib in (torch, chainrule):
        gen = torch.Generator().manual_seed(0)
        arrays = [torch.rand(shape, generator=gen).numpy() for shape in shapes]
        a, b, c = (lib.tensor(x, requires_grad=True) for x in arrays)
        out = lib.lerp(a, b, c) + lib.addcmul(a, b, c, value=0.5) + lib.addcdiv(c, a, b + 1) \
            + lib.clamp(c, a, b) + lib.where(c > 0.5, a, b)
        out.sum().backward()
        values[lib.__name__] = [out.detach().numpy(), a.grad.numpy(), b.grad.numpy(), c.grad.numpy()]
    for want, got in zip(values["torch"], values["chainrule"]):
        assert got.shape == want.shape
        assert abs(got - want).max() <= 1e-6


# (p, q) probabilities at and off the edges: where q gives probability 0 to an outcome p allows,
# the divergence is infinite; where p gives an outcome probability 0, its term is 0
BERNOULLI_P = [0.0, 1.0, 0.3, 0.0, 1.0, 0.3, 0.0, 1.0, 0.3]
BERNOULLI_Q = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]


def test_bernoulli_kl_is_infinite_where_q_rules_out_what_p_allows_as_torchs():
    # beta_vae_tc's binarised pixels: a decoder saturated at 0 or 1 against a data Bernoulli
    results = []
    for lib in (torch, chainrule):
        p = lib.distributions.Bernoulli(probs=lib.tensor(BERNOULLI_P))
        q = lib.distributions.Bernoulli(probs=lib.tensor(BERNOULLI_Q))
        results.append(lib.distributions.kl_divergence(p, q).tolist())
    assert results[1] == pytest.approx(results[0], abs=1e-6)
    assert results[1][:6] == [0.0, float("inf"), float("inf"), float("inf"), 0.0, float("inf")]


def test_bernoulli_kl_gradient_past_the_infinite_terms_is_torchs():
    grads = []
    for lib in (torch, chainrule):
        logits = lib.tensor([-1.0, 2.0, 0.3, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0], requires_grad=True)
        p = lib.distributions.Bernoulli(logits=logits)
        q = lib.distributions.Bernoulli(probs=lib.tensor(BERNOULLI_Q))
        lib.distributions.kl_divergence(p, q).sum().backward()
        grads.append(logits.grad.tolist())
    assert grads[1] == pytest.approx(grads[0], abs=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shapes", [((1, 5), (2, 5)), ((5,), (2, 5)), ((2, 1), (2, 5)), ((), (3,)),
                                    ((2, 5), (1, 5)), ((2, 5), (5,)), ((2, 5), (2, 5)), ((2, 5), (3, 5))])
def test_soft_margin_loss_refuses_a_target_that_grows_the_input_as_torch(shapes, reduction):
    # probing the losses beside beta_vae_tc's: torch multiplies the target into the input's shape
    outcomes = []
    for lib in (torch, chainrule):
        gen = torch.Generator().manual_seed(1)
        x = lib.tensor(torch.randn(shapes[0], generator=gen).numpy(), requires_grad=True)
        y = lib.tensor(torch.randn(shapes[1], generator=gen).sign().numpy())
        try:
            loss = lib.nn.functional.soft_margin_loss(x, y, reduction=reduction)
            loss.sum().backward()
            outcomes.append(("ok", loss.detach().numpy(), x.grad.numpy()))
        except RuntimeError as error:
            outcomes.append(("RuntimeError", str(error)))
    if outcomes[0][0] == "ok":
        assert outcomes[1][0] == "ok", outcomes[1]
        for want, got in zip(outcomes[0][1:], outcomes[1][1:]):
            assert got.shape == want.shape and abs(got - want).max() <= 1e-5
    else:
        assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("dtype_name", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("family", ["Categorical", "OneHotCategorical"])
def test_entropy_with_a_class_masked_by_a_minus_inf_logit_is_torchs(family, dtype_name):
    # an action mask by -inf logits (the policy's Categorical): the masked class adds 0, not nan
    results = []
    for lib in (torch, chainrule):
        logits = lib.tensor([[-float("inf"), 1.0, 0.0], [0.0, 0.0, 2.0], [-float("inf"), -float("inf"), 3.0]],
                            dtype=getattr(lib, dtype_name), requires_grad=True)
        entropy = getattr(lib.distributions, family)(logits=logits).entropy()
        entropy.sum().backward()
        results.append(entropy.detach().float().tolist() + logits.grad.float().flatten().tolist())
    # (bfloat16's unmasked row differs from torch's by up to 4 of its units in the last place, a
    # rounding order this test is not about)
    tolerance = {"float16": 1e-2, "bfloat16": 2e-2}.get(dtype_name, 1e-6)
    assert results[1] == pytest.approx(results[0], abs=tolerance, nan_ok=True)


def _cdist_run(lib, a1, a2, **kwargs):
    x1, x2 = lib.tensor(a1, requires_grad=True), lib.tensor(a2, requires_grad=True)
    distances = lib.cdist(x1, x2, **kwargs)
    weights = lib.tensor(torch.rand(distances.shape, generator=torch.Generator().manual_seed(2),
                                    dtype=getattr(torch, str(a1.dtype))).numpy())
    distances.backward(weights)
    names = [type(distances.grad_fn).__name__, type(distances.grad_fn.next_functions[0][0]).__name__]
    return distances.detach().numpy(), x1.grad.numpy(), x2.grad.numpy(), names, distances.is_contiguous()


@pytest.mark.parametrize("shapes, kwargs", [
    (((300, 2), (300, 2)), {}),  # the MMD of the flow-matching and consistency programs: x against itself
    (((300, 2), (40, 2)), {}),
    (((30, 5), (10, 5)), {}),
    (((5, 3), (7, 3)), {"compute_mode": "use_mm_for_euclid_dist"}),
    (((3, 100, 2), (3, 40, 2)), {}),
    (((3, 100, 2), (40, 2)), {}),
    (((2, 1, 30, 4), (3, 8, 4)), {}),
])
def test_cdist_past_25_rows_takes_torchs_matrix_product_path(shapes, kwargs):
    import numpy as np

    gen = np.random.default_rng(0)
    a1 = (gen.standard_normal(shapes[0]) * 3).astype(np.float32)
    a2 = a1 if shapes[0] == shapes[1] else (gen.standard_normal(shapes[1]) * 3).astype(np.float32)
    want, got = _cdist_run(torch, a1, a2, **kwargs), _cdist_run(chainrule, a1, a2, **kwargs)
    assert got[3] == want[3] == ["ViewBackward0", "EuclideanDistBackward0"]
    assert got[4] == want[4]
    # the product form's rounding: where two points nearly coincide it leaves ~1e-3, as torch's
    # (the exact form gave 0 there; 34,595 of 90,000 distances of x against itself differed, by
    # up to 0.0039); now they differ only where the GEMM's summation order rounds another way
    assert got[0].shape == want[0].shape
    assert np.abs(got[0] - want[0]).max() <= 2e-6
    for want_grad, got_grad in zip(want[1:3], got[1:3]):
        scale = np.abs(want_grad).max()
        assert np.abs(got_grad - want_grad).max() <= 1e-5 * scale


def test_cdist_matrix_product_path_is_twice_differentiable_in_float64():
    x1 = chainrule.randn(30, 3, dtype=chainrule.float64, requires_grad=True)
    x2 = chainrule.randn(4, 3, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(chainrule.cdist, (x1, x2))
    assert chainrule.autograd.gradgradcheck(chainrule.cdist, (x1, x2))


def test_cdist_of_a_point_against_itself_is_torchs_small_nonzero_number():
    # torch's product path cancels |a|² - 2 a·a + |a|² to a rounding error, not 0
    import numpy as np

    points = (np.random.RandomState(0).randn(300, 2) * 3).astype(np.float32)
    want = torch.cdist(torch.tensor(points), torch.tensor(points)).diagonal().numpy()
    got = chainrule.cdist(chainrule.tensor(points), chainrule.tensor(points)).diagonal().numpy()
    assert (want > 0).sum() >= 10  # (point 12's distance to itself is 0.0039 on torch)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype_name", ["bfloat16", "float16", "float64"])
def test_cdist_matrix_product_path_rounds_each_step_in_the_dtype_as_torch(dtype_name):
    # bfloat16: torch's sums and product accumulate in float32 and round to bfloat16 (51 of these
    # 150 distances differed, by up to 0.15, when every difference was summed in bfloat16)
    import numpy as np

    points = np.random.RandomState(0).randn(30, 3).astype(np.float32)
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(points).to(getattr(lib, dtype_name))
        results.append(lib.cdist(x, x[:5]).double().numpy())
    if dtype_name == "float64" and not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        # two kernels follow the CPU there. torch's float64 sqrt_ is MKL's vdSqrt (ATen's vml), not
        # correctly rounded on MKL's non-Intel path (an AMD EPYC with AVX2: 1260 of 100,000 roots an
        # ulp off NumPy's; 5 of these 150 distances); and its padded product is MKL's dgemm (MKL_CBWR
        # changes it), whose path here adds terms 0, 2 and 1, 3 in two chains, then the chains, then
        # term 4, where OpenBLAS's Haswell kernel adds all 5 in one (1 of the 150 squared distances
        # an ulp apart)
        squared = []
        for lib in (torch, chainrule):
            x = lib.tensor(points).double()
            y = x[:5]
            x_norm, y_norm = x.pow(2).sum(-1, True), y.pow(2).sum(-1, True)
            squared.append(lib.cat([x.mul(-2), x_norm, lib.ones_like(x_norm)], -1).matmul(
                lib.cat([y, lib.ones_like(y_norm), y_norm], -1).mT).clamp_min_(0))
        np.testing.assert_array_equal(results[0], squared[0].sqrt().numpy())
        np.testing.assert_array_equal(results[1], np.sqrt(squared[1].numpy()))
        products_apart = np.abs(squared[1].numpy().view(np.int64) - squared[0].numpy().view(np.int64))
        assert products_apart.max() <= 1 and np.count_nonzero(products_apart) <= 1
        assert np.abs(results[1].view(np.int64) - results[0].view(np.int64)).max() <= 1
        return
    np.testing.assert_array_equal(results[1], results[0])


@pytest.mark.parametrize("shapes", [((0, 2), (30, 2)), ((30, 0), (26, 0)), ((0, 30, 2), (30, 2)), ((2, 0, 3), (2, 30, 3))])
def test_cdist_of_an_empty_operand_keeps_torchs_direct_path(shapes):
    outcomes = []
    for lib in (torch, chainrule):
        x1, x2 = lib.ones(shapes[0], requires_grad=True), lib.ones(shapes[1])
        distances = lib.cdist(x1, x2)
        distances.sum().backward()
        outcomes.append((tuple(distances.shape), type(distances.grad_fn).__name__, tuple(x1.grad.shape)))
    assert outcomes[1] == outcomes[0]
