"""Session 35, lane progAT: what the SAGAN, spiking-network and EWC programs (and the edges of their
idioms) found different from torch 2.13, each checked against torch on the same inputs."""

import importlib
import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- the old hook-based reparameterisations
# GAN code finds the hook of nn.utils.spectral_norm by its class (BigGAN-PyTorch, mimicry:
# ``isinstance(hook, SpectralNorm) and hook.name == name``) and imports it from
# torch.nn.utils.spectral_norm; weight_norm's hook likewise is WeightNorm. chainrule's hooks were
# private classes (_SpectralNormHook, _WeightNorm), so the import failed and the names differed.

HOOKED = {
    "spectral_norm": ("torch.nn.utils.spectral_norm", "SpectralNorm",
                      lambda lib: lib.nn.utils.spectral_norm(lib.nn.Linear(3, 4))),
    "spectral_norm of ConvTranspose2d": ("torch.nn.utils.spectral_norm", "SpectralNorm",
                                         lambda lib: lib.nn.utils.spectral_norm(lib.nn.ConvTranspose2d(2, 3, 3))),
    "weight_norm": ("torch.nn.utils.weight_norm", "WeightNorm",
                    lambda lib: lib.nn.utils.weight_norm(lib.nn.Linear(3, 4), dim=1)),
}


def hook_of(lib, case):
    module_name, _, build = HOOKED[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # weight_norm's deprecation, in both
        layer = build(lib)
    (hook,) = layer._forward_pre_hooks.values()
    return layer, hook


@pytest.mark.parametrize("case", sorted(HOOKED))
def test_the_old_reparameterisations_hook_is_torchs_public_class(case):
    module_name, class_name, _ = HOOKED[case]
    _, expected = hook_of(torch, case)
    _, got = hook_of(chainrule, case)
    ours = importlib.import_module(module_name.replace("torch", "chainrule", 1))
    assert type(expected).__name__ == type(got).__name__ == class_name
    assert isinstance(got, getattr(ours, class_name))
    assert class_name in ours.__all__
    assert vars(got) == vars(expected)


def test_spectral_norms_hook_reshapes_and_removes_as_torchs():
    torch.manual_seed(0)
    expected_layer, expected = hook_of(torch, "spectral_norm of ConvTranspose2d")
    got_layer, got = hook_of(chainrule, "spectral_norm of ConvTranspose2d")
    got_layer.load_state_dict({k: chainrule.tensor(v.numpy()) for k, v in expected_layer.state_dict().items()})
    assert tuple(got.reshape_weight_to_matrix(got_layer.weight_orig).shape) == tuple(
        expected.reshape_weight_to_matrix(expected_layer.weight_orig).shape) == (3, 18)
    expected.remove(expected_layer)
    got.remove(got_layer)
    assert isinstance(got_layer.weight, chainrule.nn.Parameter)
    assert sorted(dict(got_layer.named_parameters())) == sorted(dict(expected_layer.named_parameters()))
    assert (got_layer.weight.detach().numpy() - expected_layer.weight.detach().numpy()).__abs__().max() < 1e-6


# torch's spectral_norm also registers a state-dict hook that records the format's version in the
# state dict's _metadata ({'spectral_norm': {'weight.version': 1}}, read back by its load hook);
# chainrule's metadata had only the module's own version. remove_spectral_norm drops the hook.

def spectral_metadata(lib):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        net = lib.nn.Sequential(lib.nn.utils.spectral_norm(lib.nn.Linear(3, 4)),
                                lib.nn.utils.spectral_norm(lib.nn.Conv2d(1, 2, 3), name="weight"))
        before = dict(net.state_dict()._metadata)
        lib.nn.utils.remove_spectral_norm(net[1])
        after = dict(net.state_dict()._metadata)
    return before, after


def test_spectral_norm_records_its_version_in_the_state_dict_metadata():
    assert spectral_metadata(chainrule) == spectral_metadata(torch)
