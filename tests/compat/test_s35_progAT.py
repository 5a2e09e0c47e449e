"""Session 35, lane progAT: what the SAGAN, spiking-network and EWC programs (and the edges of their
idioms) found different from torch 2.13, each checked against torch on the same inputs."""

import importlib
import warnings

import numpy as np
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


# ---------------------------------------------------------------- gradcheck's mismatch in torch's words
# A surrogate gradient (a Heaviside forward with a fast-sigmoid backward) fails gradcheck by design;
# snnTorch users print the GradcheckError. torch says "Jacobian mismatch for output 0 with respect to
# input 0," then both Jacobians as tensors of the input's dtype, laid out (input elements, output
# elements); chainrule named the worst element first and printed NumPy arrays, output-major.

def surrogate_spike(lib):
    class Spike(lib.autograd.Function):
        @staticmethod
        def forward(ctx, mem):
            ctx.save_for_backward(mem)
            return (mem[:2] > 0).type(mem.dtype) * mem[2]

        @staticmethod
        def backward(ctx, grad_output):
            (mem,) = ctx.saved_tensors
            grad = lib.zeros_like(mem)
            grad[:2] = grad_output / (25.0 * mem[:2].abs() + 1.0) ** 2
            return grad

    return Spike.apply


GRADCHECK_CASES = {
    "float64, one output": (lambda lib: lib.float64, lambda spike: spike),
    "float32": (lambda lib: lib.float32, lambda spike: spike),
    "second output": (lambda lib: lib.float64, lambda spike: lambda mem: (mem * 2, spike(mem))),
}


def gradcheck_message(lib, case):
    dtype, wrap = GRADCHECK_CASES[case]
    mem = lib.tensor([0.5, -0.3, 0.2], dtype=dtype(lib), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # float32: the "not double precision" warning, in both
        with pytest.raises(RuntimeError) as raised:
            lib.autograd.gradcheck(wrap(surrogate_spike(lib)), (mem,))
        assert not lib.autograd.gradcheck(wrap(surrogate_spike(lib)), (mem,), raise_exception=False)
    assert type(raised.value).__name__ == "GradcheckError"
    return str(raised.value)


@pytest.mark.parametrize("case", sorted(GRADCHECK_CASES))
def test_gradchecks_jacobian_mismatch_reads_as_torchs(case):
    expected = gradcheck_message(torch, case)
    got = gradcheck_message(chainrule, case).replace("chainrule.", "torch.")
    assert got == expected


# ---------------------------------------------------------------- nll_loss's summation order
# The spiking network's loss at a step where no output neuron fired is cross_entropy of all-zero
# counts: torch prints 1.3862946 for 32 rows, chainrule printed log(4) = 1.3862944. torch's CPU
# nll_loss adds the picked losses in a cascade of running float sums (16 rows a level), not
# pairwise as NumPy's sum; the mean, the sum and the weighted mean's total weight all follow it.

def nll_case(lib, rows, reduction, ignore, weighted, dims):
    rng = np.random.default_rng(rows)
    shape = (rows, 5) if dims == 2 else (2, 5, rows // 8, 4)
    log_probs = (rng.normal(size=shape) * 3).astype(np.float32)
    target = rng.integers(0, 5, size=(shape[0],) + shape[2:])
    if ignore:
        flat = target.reshape(-1)
        flat[::7] = -100
        flat[::16] = -100  # rows where torch's cascade would move a level up
    weight = lib.tensor(np.linspace(0.3, 2.0, 5, dtype=np.float32)) if weighted else None
    out = lib.nn.functional.nll_loss(lib.tensor(log_probs), lib.tensor(target), weight=weight, reduction=reduction)
    return out.numpy().tobytes()


@pytest.mark.parametrize("rows", [17, 32, 257, 4104])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("ignore,weighted", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("dims", [2, 4])
def test_nll_loss_reduces_in_torchs_order(rows, reduction, ignore, weighted, dims):
    args = (rows, reduction, ignore, weighted, dims)
    assert nll_case(chainrule, *args) == nll_case(torch, *args)


def test_cross_entropy_of_silent_spike_counts_is_torchs_number():
    counts = np.zeros((32, 4), np.float32)
    target = np.arange(32) % 4
    expected = torch.nn.functional.cross_entropy(torch.tensor(counts), torch.tensor(target))
    got = chainrule.nn.functional.cross_entropy(chainrule.tensor(counts), chainrule.tensor(target))
    assert got.item() == expected.item() == np.float32(1.3862946)


# Older GAN and vocoder code calls the hooks' own constructor, SpectralNorm.apply(module, name,
# n_power_iterations, dim, eps) and WeightNorm.apply(module, name, dim), which return the hook.

def apply_directly(lib, kind):
    lib.manual_seed(0)
    layer = lib.nn.Conv2d(2, 3, 3)
    if kind == "spectral":
        hook = importlib.import_module(lib.__name__ + ".nn.utils.spectral_norm").SpectralNorm.apply(
            layer, "weight", 2, 0, 1e-12)
    else:
        hook = importlib.import_module(lib.__name__ + ".nn.utils.weight_norm").WeightNorm.apply(layer, "weight", None)
    x = lib.ones(1, 2, 5, 5)
    return type(hook).__name__, vars(hook), sorted(dict(layer.named_parameters())), layer(x).detach().numpy()


@pytest.mark.parametrize("kind", ["spectral", "weight"])
def test_the_hooks_apply_builds_them_as_torchs(kind):
    name, attributes, parameters, out = apply_directly(chainrule, kind)
    expected_name, expected_attributes, expected_parameters, expected_out = apply_directly(torch, kind)
    assert (name, attributes, parameters) == (expected_name, expected_attributes, expected_parameters)
    np.testing.assert_allclose(out, expected_out, rtol=1e-5, atol=1e-6)


# With check_forward_ad=True torch checks the backward Jacobians first, then the forward ones, and
# says "Jacobian computed with forward mode mismatch ..." in the same layout; chainrule checked
# forward mode first (so a float32 function wrong in both named the wrong mode) and named the worst
# element in its own words.

def forward_mode_message(lib, dtype_name):
    class TwiceWithWrongJvp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * 2

        @staticmethod
        def jvp(ctx, tangent):
            return tangent * 3

    x = lib.tensor([0.5, -0.3, 0.2], dtype=getattr(lib, dtype_name), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(RuntimeError) as raised:
            lib.autograd.gradcheck(lambda a: TwiceWithWrongJvp.apply(a)[:2], (x,), check_forward_ad=True)
    return str(raised.value)


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
def test_gradcheck_checks_backward_then_forward_mode_in_torchs_words(dtype_name):
    expected = forward_mode_message(torch, dtype_name)
    assert forward_mode_message(chainrule, dtype_name).replace("chainrule.", "torch.") == expected
