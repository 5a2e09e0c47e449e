"""torch.optim.Muon: the Newton–Schulz orthogonalisation and whole steps beside torch's."""

import numpy as np
import pytest
import torch
from torch.optim._muon import _zeropower_via_newtonschulz as torch_newton_schulz

import chainrule
from chainrule.optim.muon import _zeropower_via_newtonschulz

COEFFICIENTS = (3.4445, -4.7750, 2.0315)


@pytest.mark.parametrize("shape", [(16, 8), (8, 16), (5, 5)])
def test_newton_schulz_matches_torch_bit_for_bit(shape):
    g = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    for steps in (0, 1, 5):
        ours = _zeropower_via_newtonschulz(chainrule.tensor(g), COEFFICIENTS, steps, 1e-7)
        theirs = torch_newton_schulz(torch.tensor(g), COEFFICIENTS, steps, 1e-7)
        assert ours.dtype == chainrule.bfloat16 and tuple(ours.shape) == shape
        np.testing.assert_array_equal(ours.float().numpy(), theirs.float().numpy())
    # five steps push the singular values into torch's band around 1, not to 1
    singular = np.linalg.svd(ours.float().numpy(), compute_uv=False)
    assert singular.min() > 0.5 and singular.max() < 1.5


def _same_gradient_steps(lib, gradients, **options):
    rng = np.random.default_rng(0)
    weights = [lib.nn.Parameter(lib.tensor(rng.standard_normal(g[0].shape).astype(np.float32))) for g in gradients]
    optimizer = lib.optim.Muon(weights, lr=0.02, **options)
    history = []
    for step in range(len(gradients[0])):
        for w, g in zip(weights, gradients):
            w.grad = lib.tensor(g[step])
        optimizer.step()
        history.append([w.detach().numpy().copy() for w in weights])
    return history, optimizer


OPTIONS = [{}, dict(nesterov=False), dict(adjust_lr_fn="match_rms_adamw", weight_decay=0.0),
           dict(momentum=0.0, ns_steps=3, adjust_lr_fn="original")]


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "no_nesterov", "match_rms_adamw", "no_momentum"])
def test_steps_on_the_same_gradients_match_torch(options):
    rng = np.random.default_rng(2)
    gradients = [rng.standard_normal((4, 12, 6)).astype(np.float32), rng.standard_normal((4, 3, 12)).astype(np.float32)]
    ours, optimizer = _same_gradient_steps(chainrule, gradients, **options)
    theirs, torch_optimizer = _same_gradient_steps(torch, gradients, **options)
    for ours_step, theirs_step in zip(ours, theirs):
        for a, b in zip(ours_step, theirs_step):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    state = optimizer.state_dict()
    torch_state = torch_optimizer.state_dict()
    assert state["param_groups"][0].keys() == torch_state["param_groups"][0].keys()
    np.testing.assert_allclose(state["state"][0]["momentum_buffer"].numpy(),
                               torch_state["state"][0]["momentum_buffer"].numpy(), rtol=1e-6, atol=1e-7)


def _train(lib, steps: int = 6):
    rng = np.random.default_rng(0)
    model = lib.nn.Sequential(lib.nn.Linear(8, 16, bias=False), lib.nn.Tanh(), lib.nn.Linear(16, 4))
    with lib.no_grad():
        for p in model.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32) * 0.3))
    x = lib.tensor(rng.standard_normal((32, 8)).astype(np.float32))
    y = lib.tensor(rng.standard_normal((32, 4)).astype(np.float32))
    hidden = [p for p in model.parameters() if p.ndim == 2]
    others = [p for p in model.parameters() if p.ndim != 2]
    muon, adamw = lib.optim.Muon(hidden, lr=0.02), lib.optim.AdamW(others, lr=1e-3)
    losses = []
    for _ in range(steps):
        muon.zero_grad()
        adamw.zero_grad()
        loss = lib.nn.functional.mse_loss(model(x), y)
        loss.backward()
        muon.step()
        adamw.step()
        losses.append(loss.item())
    return losses, [p.detach().numpy() for p in model.parameters()]


def test_a_training_loop_follows_torch():
    ours, theirs = _train(chainrule), _train(torch)
    # float32 gradients differ in the last bits, which can move a bfloat16 rounding of the update by one step
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-3)
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, atol=2e-3)
    assert ours[0][-1] < ours[0][0]


@pytest.mark.parametrize("arguments, message", [
    (dict(lr=-1.0), "Learning rate should be >= 0 but is: -1.0"),
    (dict(momentum=-0.1), "momentum should be >= 0 but is: -0.1"),
    (dict(weight_decay=-0.1), "weight decay should be >= 0 but is: -0.1"),
    (dict(adjust_lr_fn="sqrt"), "Adjust learning rate function sqrt is not supported"),
])
def test_argument_errors_match_torch(arguments, message):
    for lib in (torch, chainrule):
        with pytest.raises(ValueError, match=message):
            lib.optim.Muon([lib.nn.Parameter(lib.zeros(2, 2))], **arguments)


def test_only_two_dimensional_real_parameters():
    for lib in (torch, chainrule):
        with pytest.raises(ValueError, match="Muon only supports 2D parameters whereas we found a parameter with size"):
            lib.optim.Muon([lib.nn.Parameter(lib.zeros(3))])
        p = lib.nn.Parameter(lib.zeros(2, 2, dtype=lib.complex64))
        p.grad = lib.ones(2, 2, dtype=lib.complex64)
        with pytest.raises(RuntimeError, match="Muon does not support complex parameters"):
            lib.optim.Muon([p]).step()
