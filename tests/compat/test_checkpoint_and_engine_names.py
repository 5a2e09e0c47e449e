"""torch.utils.checkpoint's helpers (CheckpointFunction, detach_variable, the early-stop and debug
switches, ...) and torch.autograd's engine switches, each against torch 2.13."""

import warnings

import numpy as np
import pytest
import torch
import torch.utils.checkpoint as torch_checkpoint

import chainrule
import chainrule.utils.checkpoint as checkpoint

PAIRS = ((chainrule, checkpoint), (torch, torch_checkpoint))
X = np.random.default_rng(0).standard_normal((3, 4))
W = np.random.default_rng(1).standard_normal((4, 2))


def _checkpointed(lib, module, scale):
    x = lib.tensor(X, requires_grad=True)
    w = lib.tensor(W, requires_grad=True)
    out = module.CheckpointFunction.apply(lambda a, k: (a.sin() * k) @ w, True, x, scale)
    (out * out).sum().backward()
    return out, x.grad, w.grad


def test_checkpoint_function_matches_torch_in_values_gradients_and_node_name():
    ours, theirs = (_checkpointed(lib, module, 2.5) for lib, module in PAIRS)
    assert type(ours[0].grad_fn).__name__ == type(theirs[0].grad_fn).__name__ == "CheckpointFunctionBackward"
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.detach().numpy(), reference.detach().numpy(), rtol=1e-12)


def test_checkpoint_function_forward_records_nothing_inside_the_segment():
    x = chainrule.tensor(X, requires_grad=True)
    seen = []
    out = checkpoint.CheckpointFunction.apply(lambda a: seen.append(chainrule.is_grad_enabled()) or a * 2, False, x)
    assert seen == [False] and out.requires_grad


def test_checkpoint_function_reruns_random_ops_with_the_forward_draws():
    # the rerun in backward restores the generator: the gradient uses the forward's dropout mask
    x = chainrule.tensor(np.ones((50,)), requires_grad=True)
    out = checkpoint.CheckpointFunction.apply(lambda a: chainrule.nn.functional.dropout(a, 0.5), True, x)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), out.detach().numpy())


def test_checkpoint_function_warns_as_torch_when_no_input_requires_grad():
    for lib, module in PAIRS:
        with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True. Gradients will be None"):
            module.CheckpointFunction.apply(lambda a: a + 1, False, lib.ones(2))


def test_detach_variable_keeps_requires_grad_and_refuses_a_list():
    for lib, module in PAIRS:
        a = lib.ones(2, requires_grad=True) * 2
        b = lib.ones(2)
        out = module.detach_variable((a, b, 3))
        assert [x.requires_grad for x in out[:2]] == [True, False] and out[0].grad_fn is None and out[2] == 3
        with pytest.raises(RuntimeError, match="Only tuple of tensors is supported. Got Unsupported input type: list"):
            module.detach_variable([a])


def test_device_states_of_cpu_tensors_are_empty():
    for lib, module in PAIRS:
        assert module.get_device_states(lib.ones(2), [lib.zeros(1)], 3) == ([], [])
        module.set_device_states([], [])


def test_checkpoint_error_and_the_switches_behave_as_torch():
    assert issubclass(checkpoint.CheckpointError, RuntimeError)
    for _, module in PAIRS:
        forward_context, recompute_context = module.noop_context_fn()
        with forward_context, recompute_context:
            pass
        with module.set_checkpoint_early_stop(False):
            assert module._enable_checkpoint_early_stop is False
        assert module._enable_checkpoint_early_stop is None
        with module.set_checkpoint_debug_enabled(True):
            assert module._checkpoint_debug_enabled is True
        assert module._checkpoint_debug_enabled is None


@pytest.mark.parametrize("lib", [chainrule, torch])
def test_multithreading_switch_sets_at_once_and_restores_on_exit(lib):
    assert lib.autograd.is_multithreading_enabled() is True
    with lib.autograd.set_multithreading_enabled(False):
        assert lib.autograd.is_multithreading_enabled() is False
    assert lib.autograd.is_multithreading_enabled() is True
    switch = lib.autograd.set_multithreading_enabled(False)
    assert lib.autograd.is_multithreading_enabled() is False
    with switch:
        pass
    assert lib.autograd.is_multithreading_enabled() is True
    assert lib.autograd.is_view_replay_enabled() is False


@pytest.mark.parametrize("lib", [chainrule, torch])
def test_autograd_variable_is_the_deprecated_function_and_the_legacy_module(lib):
    with pytest.raises(RuntimeError, match=r"torch.autograd.variable\(...\) is deprecated, use torch.tensor\(...\) instead"):
        lib.autograd.variable(1.0)
    module = __import__(lib.__name__ + ".autograd.variable", fromlist=["Variable"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert isinstance(module.Variable(lib.ones(2)), lib.Tensor)
