"""nn.utils.parametrize, nn.utils.parametrizations (weight_norm, spectral_norm) and the
hook-based nn.utils.spectral_norm, against torch on the same weights."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _load(ours, theirs):
    """torch's state (weights and power-iteration vectors) into chainrule's module."""
    ours.load_state_dict({k: chainrule.tensor(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})


def _close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=atol)


def _symmetric(lib):
    class Symmetric(lib.nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(-1, -2)

        def right_inverse(self, a):
            return a.triu()

    return Symmetric()


def _scale(lib):
    class Scale(lib.nn.Module):
        def forward(self, x):
            return 2 * x

        def right_inverse(self, a):
            return a / 2

    return Scale()


def test_register_parametrization_matches_torch():
    modules = []
    for lib in (chainrule, torch):
        lib.manual_seed(0)
        layer = lib.nn.Linear(3, 3)
        lib.nn.utils.parametrize.register_parametrization(layer, "weight", _symmetric(lib))
        lib.nn.utils.parametrize.register_parametrization(layer, "weight", _scale(lib))
        modules.append(layer)
    ours, theirs = modules
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert type(ours).__name__ == type(theirs).__name__ == "ParametrizedLinear"
    _load(ours, theirs)
    _close(ours.weight, theirs.weight)
    w = ours.weight.detach().numpy()
    np.testing.assert_allclose(w, w.T)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    out, tout = ours(chainrule.tensor(x)), theirs(torch.tensor(x))
    _close(out, tout)
    out.square().sum().backward()
    tout.square().sum().backward()
    _close(ours.parametrizations.weight.original.grad, theirs.parametrizations.weight.original.grad)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_assignment_runs_the_right_inverse_and_keeps_the_parameter_object():
    layer = chainrule.nn.Linear(3, 3)
    chainrule.nn.utils.parametrize.register_parametrization(layer, "weight", _symmetric(chainrule))
    original = layer.parametrizations.weight.original
    optimizer = chainrule.optim.SGD(layer.parameters(), lr=0.1)
    target = chainrule.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 5.0], [3.0, 5.0, 6.0]])
    layer.weight = target
    assert layer.parametrizations.weight.original is original
    _close(layer.weight, target)
    layer(chainrule.ones(1, 3)).sum().backward()
    optimizer.step()  # the optimizer still trains the original
    assert not np.allclose(layer.weight.detach().numpy(), target.numpy())


def test_cached_computes_the_weight_once():
    calls = []

    class Counting(chainrule.nn.Module):
        def forward(self, x):
            calls.append(1)
            return x * 1.0

    layer = chainrule.nn.Linear(2, 2)
    chainrule.nn.utils.parametrize.register_parametrization(layer, "weight", Counting())
    calls.clear()
    with chainrule.nn.utils.parametrize.cached():
        for _ in range(3):
            layer(chainrule.ones(1, 2))
    assert len(calls) == 1
    layer(chainrule.ones(1, 2))
    assert len(calls) == 2


@pytest.mark.parametrize("leave_parametrized", [True, False])
def test_remove_parametrizations_as_torch(leave_parametrized):
    results = []
    for lib in (chainrule, torch):
        lib.manual_seed(0)
        layer = lib.nn.Linear(3, 3)
        with lib.no_grad():
            layer.weight.copy_(lib.arange(9.0).reshape(3, 3))
        lib.nn.utils.parametrize.register_parametrization(layer, "weight", _scale(lib))
        assert lib.nn.utils.parametrize.is_parametrized(layer, "weight")
        lib.nn.utils.parametrize.remove_parametrizations(layer, "weight", leave_parametrized=leave_parametrized)
        assert not lib.nn.utils.parametrize.is_parametrized(layer)
        assert type(layer).__name__ == "Linear" and isinstance(layer.weight, lib.nn.Parameter)
        results.append((layer.weight.detach().numpy().copy(), list(layer.state_dict())))
    np.testing.assert_allclose(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_parametrization_errors_match_torch():
    for lib in (chainrule, torch):
        layer = lib.nn.Linear(3, 2)

        class Shrink(lib.nn.Module):
            def forward(self, x):
                return x[:1]

        with pytest.raises(ValueError, match="may not change the shape"):
            lib.nn.utils.parametrize.register_parametrization(layer, "weight", Shrink())
        with pytest.raises(ValueError, match="does not have a parametrization on weight"):
            lib.nn.utils.parametrize.remove_parametrizations(layer, "weight")
        with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a parametrized element"):
            lib.nn.utils.parametrize.register_parametrization(layer, "nope", _scale(lib))


def test_weight_norm_parametrization_matches_torch():
    pair = []
    for lib in (chainrule, torch):
        lib.manual_seed(0)
        pair.append(lib.nn.utils.parametrizations.weight_norm(lib.nn.Conv1d(2, 4, 3)))
    ours, theirs = pair
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _load(ours, theirs)
    x = np.random.default_rng(1).standard_normal((2, 2, 7)).astype(np.float32)
    out, tout = ours(chainrule.tensor(x)), theirs(torch.tensor(x))
    _close(out, tout)
    out.sum().backward()
    tout.sum().backward()
    for name in ("original0", "original1"):
        _close(getattr(ours.parametrizations.weight, name).grad, getattr(theirs.parametrizations.weight, name).grad)


@pytest.mark.parametrize("make", ["linear", "conv_transpose"])
def test_spectral_norm_parametrization_matches_torch(make):
    pair = []
    for lib in (chainrule, torch):
        lib.manual_seed(0)
        module = lib.nn.Linear(5, 4) if make == "linear" else lib.nn.ConvTranspose2d(3, 2, 3)
        pair.append(lib.nn.utils.parametrizations.spectral_norm(module))
    ours, theirs = pair
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _load(ours, theirs)
    x = np.random.default_rng(2).standard_normal((2, 5) if make == "linear" else (1, 3, 4, 4)).astype(np.float32)
    for training in (True, True, False):
        ours.train(training)
        theirs.train(training)
        out, tout = ours(chainrule.tensor(x)), theirs(torch.tensor(x))
        _close(out, tout)
    out.sum().backward()
    tout.sum().backward()
    _close(ours.parametrizations.weight.original.grad, theirs.parametrizations.weight.original.grad, rtol=1e-4)
    ours.eval()
    weight = ours.weight.detach().numpy()
    matrix = weight if make == "linear" else weight.transpose(1, 0, 2, 3).reshape(weight.shape[1], -1)
    assert abs(np.linalg.svd(matrix, compute_uv=False)[0] - 1.0) < 2e-2  # σ from a few power iterations


def test_hook_based_spectral_norm_matches_torch():
    pair = []
    for lib in (chainrule, torch):
        lib.manual_seed(0)
        pair.append(lib.nn.utils.spectral_norm(lib.nn.Conv2d(2, 3, 3)))
    ours, theirs = pair
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    _load(ours, theirs)
    x = np.random.default_rng(3).standard_normal((2, 2, 5, 5)).astype(np.float32)
    for _ in range(3):
        out, tout = ours(chainrule.tensor(x)), theirs(torch.tensor(x))
        _close(out, tout)
    out.sum().backward()
    tout.sum().backward()
    _close(ours.weight_orig.grad, theirs.weight_orig.grad, rtol=1e-4)
    _close(ours.weight_u, theirs.weight_u)
    for lib, module in ((chainrule, ours), (torch, theirs)):
        lib.nn.utils.remove_spectral_norm(module)
        with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
            lib.nn.utils.remove_spectral_norm(module)
    _close(ours.weight, theirs.weight)
    assert sorted(ours.state_dict()) == ["bias", "weight"]


def test_spectral_norm_stays_the_function_after_its_module_is_imported():
    import importlib

    import chainrule

    importlib.import_module("chainrule.nn.utils.spectral_norm")
    layer = chainrule.nn.utils.spectral_norm(chainrule.nn.Linear(2, 2))
    assert hasattr(layer, "weight_orig")
