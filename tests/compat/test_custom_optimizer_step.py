"""An optimizer written outside torch, in the form timm 1.0's NAdamW and Adopt take: a subclass
of ``optim.Optimizer`` whose ``step`` begins with ``self._cuda_graph_capture_health_check()`` and
updates the parameters with in-place Tensor ops under ``no_grad``. It must run on chainrule and
give torch 2.13's numbers (docs/compatibility-trials.md, session 13)."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _decoupled_nadam(lib):
    class DecoupledNadam(lib.optim.Optimizer):
        def __init__(self, params, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05, capturable=False):
            defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, capturable=capturable)
            super().__init__(params, defaults)

        @lib.no_grad()
        def step(self, closure=None):
            self._cuda_graph_capture_health_check()
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = lib.tensor(0.0)
                        state["exp_avg"] = lib.zeros_like(p)
                        state["exp_avg_sq"] = lib.zeros_like(p)
                    state["step"] += 1
                    step = state["step"].item()
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    state["exp_avg"].lerp_(p.grad, 1 - beta1)
                    state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                    denom = (state["exp_avg_sq"] / (1 - beta2 ** step)).sqrt_().add_(group["eps"])
                    nesterov = state["exp_avg"].mul(beta1).add(p.grad, alpha=1 - beta1)
                    p.addcdiv_(nesterov, denom, value=-group["lr"] / (1 - beta1 ** step))
            return None

    return DecoupledNadam


def _train(lib, weights, x, y):
    model = lib.nn.Linear(4, 3)
    model.load_state_dict({k: lib.from_numpy(v.copy()) for k, v in weights.items()})
    optimizer = _decoupled_nadam(lib)(model.parameters())
    for _ in range(3):
        loss = lib.nn.functional.cross_entropy(model(lib.from_numpy(x)), lib.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def test_optimizer_written_outside_torch_steps_like_torch():
    rng = np.random.default_rng(0)
    weights = {"weight": rng.standard_normal((3, 4)).astype(np.float32),
               "bias": rng.standard_normal(3).astype(np.float32)}
    x, y = rng.standard_normal((5, 4)).astype(np.float32), rng.integers(0, 3, 5)
    caught = {}
    for lib in (chainrule, torch):
        with warnings.catch_warnings(record=True) as caught[lib]:
            warnings.simplefilter("always")
            trained = _train(lib, weights, x, y)
        if lib is chainrule:
            ours = trained
        else:
            theirs = trained
    # on a CPU machine the check says only that its old name is deprecated, at each of the 3 steps
    for lib in (chainrule, torch):
        assert [(w.category, str(w.message), w.filename) for w in caught[lib]] == 3 * [
            (DeprecationWarning, "Use _accelerator_graph_capture_health_check instead", __file__)]
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, atol=1e-6)


def test_capture_health_check_warns_once_when_every_group_is_capturable_on_a_gpu_machine(monkeypatch):
    # chainrule never captures CUDA graphs, so with a GPU the check's one outcome is torch's warning
    from chainrule.optim import optimizer as optimizer_module

    monkeypatch.setattr(optimizer_module, "current_accelerator", lambda check_available=False: chainrule.device("cuda"))
    weight = chainrule.zeros(2, requires_grad=True)
    capturable = _decoupled_nadam(chainrule)([weight], capturable=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        capturable._accelerator_graph_capture_health_check()
        capturable._accelerator_graph_capture_health_check()
    assert [str(w.message) for w in caught] == [
        "This instance was constructed with capturable=True or some of all the param_groups came with capturable=True, "
        "but step() is running without CUDA graph capture. If you never intend to graph-capture this instance, "
        "capturable=True can impair performance, and you should set capturable=False."]
    assert caught[0].filename == __file__
    uncapturable = _decoupled_nadam(chainrule)([weight])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        uncapturable._accelerator_graph_capture_health_check()
