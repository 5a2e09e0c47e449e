"""Session 48, lane progDG: the pieces of the corpus programs ddim_inversion_guidance and
muzero_unrolled_dynamics that chainrule had not been checked on, compared with torch (both
programs ran unchanged; these lock in what they rely on)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _scalar_to_support(t, x, support_size):
    # muzero-general's encoding: two neighbouring bins by scatter_ on a 3-d tensor
    x = t.sign(x) * (t.sqrt(t.abs(x) + 1) - 1) + 0.001 * x
    x = t.clamp(x, -support_size, support_size)
    floor = x.floor()
    prob = x - floor
    logits = t.zeros(x.shape[0], x.shape[1], 2 * support_size + 1, dtype=x.dtype)
    logits.scatter_(2, (floor + support_size).long().unsqueeze(-1), (1 - prob).unsqueeze(-1))
    indexes = floor + support_size + 1
    prob = prob.masked_fill_(2 * support_size < indexes, 0.0)
    indexes = indexes.masked_fill_(2 * support_size < indexes, 0.0)
    logits.scatter_(2, indexes.long().unsqueeze(-1), prob.unsqueeze(-1))
    return logits


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_support_encoding_forward_and_gradient_match_torch(dtype):
    values = np.array([[-200.0, -3.5, 0.0], [0.25, 7.0, 150.0]], dtype=dtype)  # both clamp ends, zero
    upstream = np.random.RandomState(0).randn(2, 3, 11).astype(dtype)
    results = []
    for t in (torch, chainrule):
        x = t.tensor(values, requires_grad=True)
        out = _scalar_to_support(t, x * 1, 5)
        (grad,) = t.autograd.grad(out, x, t.tensor(upstream))
        results.append((out.detach().numpy(), grad.numpy(), str(out.dtype).split(".")[-1]))
    (t_out, t_grad, t_dtype), (c_out, c_grad, c_dtype) = results
    assert c_dtype == t_dtype
    np.testing.assert_allclose(c_out, t_out, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(c_grad, t_grad, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(c_out.sum(-1), np.ones((2, 3)), rtol=1e-6)


def _normalize(t, encoded):
    low = encoded.min(1, keepdim=True)[0]
    high = encoded.max(1, keepdim=True)[0]
    scale = high - low
    scale[scale < 1e-5] += 1e-5
    return (encoded - low) / scale


def test_min_max_normalisation_with_masked_increment_matches_torch_on_ties():
    # a constant row (scale 0, bumped by the masked +=) and rows with tied extremes
    values = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [5.0, -1.0, 5.0, -1.0]], dtype=np.float32)
    upstream = np.random.RandomState(1).randn(3, 4).astype(np.float32)
    grads, outs = [], []
    for t in (torch, chainrule):
        x = t.tensor(values, requires_grad=True)
        out = _normalize(t, x * 1)
        outs.append(out.detach().numpy())
        grads.append(t.autograd.grad(out, x, t.tensor(upstream))[0].numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)


def test_scale_gradient_equals_a_halving_hook_on_a_clone():
    w = chainrule.tensor(np.random.RandomState(2).randn(3, 3))
    grads = []
    for route in ("scale_gradient", "hook"):
        h = chainrule.tensor([[0.5, -1.0, 2.0]], dtype=chainrule.float64, requires_grad=True)
        state, loss = h, 0
        for _ in range(3):
            state = chainrule.tanh(state @ w)
            loss = loss + state.square().sum()  # read before scaling, as the prediction heads are
            if route == "scale_gradient":
                state = state * 0.5 + state.detach() * 0.5
            else:
                state = state.clone()
                state.register_hook(lambda grad: grad * 0.5)
        grads.append(chainrule.autograd.grad(loss, h)[0].numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    assert np.abs(grads[0]).sum() > 0


def _ddim_tables(t):
    betas = t.linspace(0.0001, 0.02, 1000, dtype=t.float64)
    return t.cumprod(1.0 - betas, dim=0)


def _ddim_step(t, alphas_cumprod, eps, timestep, next_timestep, sample):
    alpha_prod_t = alphas_cumprod[timestep] if timestep >= 0 else t.tensor(1.0, dtype=t.float64)
    alpha_prod_next = alphas_cumprod[next_timestep] if next_timestep >= 0 else t.tensor(1.0, dtype=t.float64)
    pred_original = (sample - (1 - alpha_prod_t) ** 0.5 * eps) / alpha_prod_t ** 0.5
    return alpha_prod_next ** 0.5 * pred_original + (1 - alpha_prod_next) ** 0.5 * eps


def test_ddim_inversion_then_sampling_matches_torch_and_round_trips():
    x0 = np.random.RandomState(3).randn(6, 2)
    timesteps = (np.arange(0, 10) * 100).round()[::-1].copy().astype(np.int64)
    finals = []
    for t in (torch, chainrule):
        alphas_cumprod = _ddim_tables(t)
        steps = t.from_numpy(timesteps)
        x = t.tensor(x0)
        # a "denoiser" that ignores the sample, so the eta=0 round trip is exact up to rounding
        eps_fn = lambda s, step, t=t: t.full_like(s, 0.5) + step.double() / 1000  # noqa: E731
        trajectory = [x]
        for i in range(len(steps)):  # inversion: timesteps upwards
            step = steps[len(steps) - i - 1]
            x = _ddim_step(t, alphas_cumprod, eps_fn(x, step), int(step) - 100, int(step), x)
            trajectory.append(x)
        for step in steps:  # sampling back down
            x = _ddim_step(t, alphas_cumprod, eps_fn(x, step), int(step), int(step) - 100, x)
        finals.append((trajectory[-1].numpy(), x.numpy()))
    np.testing.assert_allclose(finals[1][0], finals[0][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(finals[1][1], finals[0][1], rtol=1e-12, atol=1e-12)
    assert np.abs(finals[1][0] - x0).min() > 0.1  # the inverted latent is far from the data
    assert np.abs(finals[1][1] - x0).max() < 1e-9  # inversion then sampling returns x0
