"""What the progAQ programs (residual flows, P4 group convolutions, Reformer's LSH attention) found
differing from torch 2.13, each compared with torch on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _spectral_linear(lib, seed=0):
    lib.manual_seed(seed)
    return lib.nn.utils.parametrizations.spectral_norm(lib.nn.Linear(3, 4), n_power_iterations=3)


def _with_torch_weights(ours, theirs):
    ours.load_state_dict({k: chainrule.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return ours


@pytest.mark.parametrize("transform", ["jacrev", "grad", "vjp"])
def test_spectral_norm_in_training_mode_runs_under_a_grad_transform(transform):
    # The power iteration writes the captured _u/_v buffers with out= (as torch's _SpectralNorm does),
    # which torch's grad transforms allow; a copy_ into them is refused as a mutated capture.
    theirs = _spectral_linear(torch)
    ours = _with_torch_weights(_spectral_linear(chainrule), theirs)
    point = np.array([0.3, -1.2, 0.7], dtype=np.float32)
    results = {}
    for lib, module in ((torch, theirs), (chainrule, ours)):
        x = lib.tensor(point)
        if transform == "jacrev":
            value = lib.func.jacrev(module)(x)
        elif transform == "grad":
            value = lib.func.grad(lambda inp, m=module: m(inp).square().sum())(x)
        else:
            _, pullback = lib.func.vjp(module, x)
            value = pullback(lib.ones(4))[0]
        results[lib] = (value.detach().numpy(), module.parametrizations.weight[0]._u.numpy().copy(),
                        module.parametrizations.weight[0]._v.numpy().copy())
    for theirs_array, ours_array in zip(results[torch], results[chainrule]):
        np.testing.assert_allclose(ours_array, theirs_array, rtol=1e-5, atol=1e-6)


def test_spectral_norm_power_iteration_keeps_its_buffers_and_versions():
    # the buffers stay the same tensors, updated in place once per training-mode forward
    theirs = _spectral_linear(torch)
    ours = _with_torch_weights(_spectral_linear(chainrule), theirs)
    for lib, module in ((torch, theirs), (chainrule, ours)):
        buffers = (module.parametrizations.weight[0]._u, module.parametrizations.weight[0]._v)
        module(lib.ones(2, 3))
        assert module.parametrizations.weight[0]._u is buffers[0]
        assert module.parametrizations.weight[0]._v is buffers[1]
    np.testing.assert_allclose(ours.parametrizations.weight[0]._u.numpy(),
                               theirs.parametrizations.weight[0]._u.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("grad_on", ["input", "out"])
def test_normalize_out_refusal_names_div_as_torch(grad_on):
    # torch's F.normalize writes out= through torch.div, so its autograd refusal names div()
    messages = {}
    for lib in (torch, chainrule):
        x = lib.ones(2, 3, requires_grad=grad_on == "input")
        out = lib.empty(2, 3, requires_grad=grad_on == "out")
        with pytest.raises(RuntimeError) as caught:
            lib.nn.functional.normalize(x, out=out)
        messages[lib] = str(caught.value)
    assert messages[chainrule] == messages[torch]


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd", "hessian"])
def test_hook_spectral_norm_in_training_mode_runs_under_a_grad_transform(transform):
    # torch.nn.utils.spectral_norm (the forward pre-hook edition) also updates weight_u/weight_v
    # with out=, which torch's grad transforms accept
    def build(lib):
        lib.manual_seed(0)
        return lib.nn.utils.spectral_norm(lib.nn.Linear(3, 4))

    theirs = build(torch)
    ours = build(chainrule)
    ours.load_state_dict({k: chainrule.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    point = np.array([[0.3, -1.2, 0.7], [1.0, 0.5, -0.2]], dtype=np.float32)
    results = {}
    for lib, module in ((torch, theirs), (chainrule, ours)):
        x = lib.tensor(point)
        if transform == "hessian":
            value = lib.func.hessian(lambda inp, m=module: m(inp).square().sum())(x)
        else:
            value = getattr(lib.func, transform)(module)(x)
        results[lib] = (value.detach().numpy(), module.weight_u.numpy().copy(), module.weight_v.numpy().copy())
    for theirs_array, ours_array in zip(results[torch], results[chainrule]):
        np.testing.assert_allclose(ours_array, theirs_array, rtol=1e-5, atol=1e-6)
