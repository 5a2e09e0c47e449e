"""Last bits, session 35 (lane mendE): where torch 2.13's CPU kernels round float32 in an order of
their own, chainrule adds up in that order, checked against torch element for element."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def ulp_distance(a, b) -> np.ndarray:
    """How many float32 steps apart each pair of elements is (0: the same bits)."""
    a = np.ascontiguousarray(a, np.float32).ravel().view(np.int32).astype(np.int64)
    b = np.ascontiguousarray(b, np.float32).ravel().view(np.int32).astype(np.int64)
    return np.abs(np.where(a < 0, -(a & 0x7FFFFFFF), a) - np.where(b < 0, -(b & 0x7FFFFFFF), b))


def both(array: np.ndarray, layout=None):
    """The same float32 values as a torch and a chainrule tensor, in the same memory layout."""
    pair = (torch.from_numpy(array.copy()), chainrule.from_numpy(array.copy()))
    return pair if layout is None else tuple(layout(t) for t in pair)


# --- 1 and 5. float32 vector norms: torch's eight-lane 2-norm and its in-order generic sum ----------
NORM_CASES = [((600, 5), 1, None), ((40, 6, 7), (1, 2), None), ((30, 50), 1, None), ((8, 9, 10), (0, 2), None),
              ((3000,), 0, None), ((6, 7, 8), (0, 1), None), ((5, 6, 7), None, None), ((64, 3, 3, 3), (1, 2, 3), None),
              ((20, 30), 0, None), ((7, 100), -1, None), ((50, 40), 1, lambda t: t.t()),
              ((9, 10, 11), (0, 1), lambda t: t.permute(2, 0, 1)), ((12, 1, 33), (1, 2), None),
              ((300, 1027), 1, None), ((2, 16), 1, None)]


@pytest.mark.parametrize("shape, dim, layout", NORM_CASES)
@pytest.mark.parametrize("ord", [2, 1])
def test_vector_norm_float32_has_torchs_bits(shape, dim, layout, ord):
    x = np.random.default_rng(len(shape) * 31 + shape[0]).standard_normal(shape).astype(np.float32) * 3
    t, c = both(x, layout)
    # fewer outputs than cpu_norm_order.FEW_OUTPUTS keep NumPy's pairwise sum (the replay's fixed
    # cost would slow clip_grad_norm_ by 40 %): not torch's bits, but within the drift of torch's
    # in-order float32 sum from a pairwise one (9 ulps for the 1-norm of 3,000 terms)
    outputs = torch.linalg.vector_norm(t, ord, dim).numel()
    allowed = 0 if outputs >= chainrule.ops.cpu_norm_order.FEW_OUTPUTS else 16
    for keepdim in (False, True):
        expected = torch.linalg.vector_norm(t, ord, dim, keepdim)
        got = chainrule.linalg.vector_norm(c, ord, dim, keepdim)
        assert tuple(got.shape) == tuple(expected.shape)
        assert ulp_distance(got.numpy(), expected.numpy()).max() <= allowed
    assert ulp_distance(chainrule.norm(c, ord, dim).numpy(), torch.norm(t, ord, dim).numpy()).max() <= allowed


@pytest.mark.parametrize("ord", [3, 1.5, 0.5, -1])
def test_vector_norm_float32_other_orders_within_an_ulp(ord):
    # powf(|x|, p) summed in order: the float64 power rounded once leaves 8 of 11,904 elements an ulp
    # apart over a wider sweep (glibc's powf is not always correctly rounded)
    x = np.abs(np.random.default_rng(7).standard_normal((600, 5)).astype(np.float32)) + 0.01
    t, c = both(x)
    distance = ulp_distance(chainrule.linalg.vector_norm(c, ord, 1).numpy(), torch.linalg.vector_norm(t, ord, 1).numpy())
    assert distance.max() <= 1 and (distance > 0).sum() <= 3


def test_vector_norm_row_lengths_each_match():
    # every tail length past the eight lanes: four added unfused, up to three as an FMA
    rng = np.random.default_rng(11)
    for length in range(1, 41):
        x = (rng.standard_normal((200, length)) * rng.uniform(0.01, 100, (200, 1))).astype(np.float32)
        t, c = both(x)
        assert ulp_distance(chainrule.linalg.vector_norm(c, 2, 1).numpy(),
                            torch.linalg.vector_norm(t, 2, 1).numpy()).max() == 0, length


def test_vector_norm_leaves_its_input_alone_and_keeps_gradients():
    x = np.random.default_rng(3).standard_normal((1, 24)).astype(np.float32)
    t, c = both(x)
    t.requires_grad_(True)
    c.requires_grad_(True)
    torch.linalg.vector_norm(t, 2, 1).sum().backward()
    chainrule.linalg.vector_norm(c, 2, 1).sum().backward()
    assert np.array_equal(c.detach().numpy(), x)
    assert ulp_distance(c.grad.numpy(), t.grad.numpy()).max() <= 1


def test_renorm_and_embedding_max_norm_decide_on_torchs_norms():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 5)).astype(np.float32)
    t, c = both(x)
    assert ulp_distance(chainrule.renorm(c, 2, 0, 1.0).numpy(), torch.renorm(t, 2, 0, 1.0).numpy()).max() == 0
    weight = rng.standard_normal((1000, 5)).astype(np.float32)
    indices = rng.integers(0, 1000, 500)
    results = []
    for lib in (torch, chainrule):
        embedding = lib.nn.Embedding(1000, 5, max_norm=1.0)
        with lib.no_grad():
            embedding.weight.copy_(lib.from_numpy(weight.copy()))
        results.append((embedding(lib.from_numpy(indices)).detach().numpy(), embedding.weight.detach().numpy()))
    assert ulp_distance(results[1][0], results[0][0]).max() == 0
    assert ulp_distance(results[1][1], results[0][1]).max() == 0


# --- 3. batch norm's running statistics on an input neither contiguous nor channels-last ----------
NONCONTIGUOUS_BATCHES = [("BatchNorm2d", {}, (8, 6, 5, 7), lambda t: t.transpose(2, 3)),
                         ("BatchNorm2d", {}, (8, 6, 5, 10), lambda t: t[..., ::2]),
                         ("BatchNorm1d", {}, (8, 9, 6), lambda t: t.permute(0, 2, 1)),
                         ("BatchNorm2d", {"momentum": None}, (8, 6, 5, 7), lambda t: t.transpose(2, 3)),
                         ("BatchNorm1d", {"momentum": 0.3}, (6, 16), lambda t: t.t())]


@pytest.mark.parametrize("module, options, shape, layout", NONCONTIGUOUS_BATCHES)
def test_noncontiguous_batch_running_var_has_torchs_bits(module, options, shape, layout):
    # torch's non-contiguous path keeps var_sum and the momentum step in float64; its mean is
    # at::mean's float32 sum, whose order over a strided input chainrule does not replay: the running
    # mean is compared within 2 ulps
    rng = np.random.default_rng(sum(shape))
    batches = [(rng.standard_normal(shape) * 2 + 1).astype(np.float32) for _ in range(3)]
    stats = []
    for lib in (torch, chainrule):
        norm = getattr(lib.nn, module)(6, **options)
        for batch in batches:
            norm(layout(lib.from_numpy(batch.copy())))
        stats.append((norm.running_mean.numpy(), norm.running_var.numpy()))
    assert ulp_distance(stats[1][1], stats[0][1]).max() == 0
    assert ulp_distance(stats[1][0], stats[0][0]).max() <= 2


def test_noncontiguous_batch_running_var_far_from_zero_mean():
    # |mean| ~ 10^5 σ: Σx² - N·mean² would cancel, the centred sum is taken instead
    x = (np.random.default_rng(3).standard_normal((8, 9, 6)) * 0.01 + 1000).astype(np.float32)
    variances = []
    for lib in (torch, chainrule):
        norm = lib.nn.BatchNorm1d(6)
        norm(lib.from_numpy(x.copy()).permute(0, 2, 1))
        variances.append(norm.running_var.numpy())
    assert ulp_distance(variances[1], variances[0]).max() == 0


def test_batch_norm_without_affine_has_torchs_output_bits():
    # torch's kernel takes the missing weight as 1 and bias as 0 in its fused x·α + β
    rng = np.random.default_rng(4)
    outputs = []
    for lib in (torch, chainrule):
        norm = lib.nn.BatchNorm2d(6, affine=False)
        outputs.append([norm(lib.from_numpy((rng.standard_normal((8, 6, 5, 5)) * 2 + 1).astype(np.float32))).numpy()
                        for _ in range(3)])
        rng = np.random.default_rng(4)
    for got, expected in zip(outputs[1], outputs[0]):
        assert ulp_distance(got, expected).max() == 0
    x = chainrule.randn(4, 3, 5, requires_grad=True)
    node = chainrule.nn.functional.batch_norm(x, None, None, training=True).grad_fn
    assert node._saved_weight is None


# --- 4. a half-precision uniform_ takes its bounds in float32, as torch's kernel -------------------
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("shape", [(3, 3), (8, 5), (16, 4, 3, 3)])
def test_kaiming_uniform_draws_torchs_values(dtype, shape):
    values = []
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        tensor = lib.empty(shape, dtype=getattr(lib, dtype))
        lib.nn.init.kaiming_uniform_(tensor)
        values.append(tensor.float().numpy())
    assert np.array_equal(values[1], values[0])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("bound", [0.7745966692414834, 0.3, 1 / 3, 0.1])
def test_half_uniform_matches_torch_near_the_upper_bound(dtype, bound):
    values = []
    for lib in (torch, chainrule):
        lib.manual_seed(1)
        values.append(lib.empty(5000, dtype=getattr(lib, dtype)).uniform_(-bound, bound).float().numpy())
    assert np.array_equal(values[1], values[0])


# --- 5. renorm's gradient: torch's renorm_backward in float64 -------------------------------------
@pytest.mark.parametrize("shape, dim, maxnorm", [((600, 5), 0, 1.0), ((8, 20, 3), 1, 2.0), ((40, 7), 1, 0.5)])
def test_renorm_gradient_has_torchs_bits(shape, dim, maxnorm):
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    grads = []
    for lib in (torch, chainrule):
        leaf = lib.from_numpy(x.copy()).requires_grad_(True)
        out = lib.renorm(leaf, 2, dim, maxnorm)
        assert type(out.grad_fn).__name__ == "RenormBackward0"
        out.backward(lib.from_numpy(g.copy()))
        grads.append((out.detach().numpy(), leaf.grad.numpy()))
    assert ulp_distance(grads[1][0], grads[0][0]).max() == 0
    assert ulp_distance(grads[1][1], grads[0][1]).max() == 0


def test_renorm_gradient_twice_differentiable():
    x = chainrule.randn(6, 4, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: chainrule.renorm(t, 2, 0, 1.0), (x,))
    assert chainrule.autograd.gradgradcheck(lambda t: chainrule.renorm(t, 2, 0, 1.0), (x,))
