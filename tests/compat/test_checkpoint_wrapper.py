"""torch.distributed.algorithms._checkpoint.checkpoint_wrapper against torch 2.13: outputs, gradients,
state_dict keys, loading both ways and the module tree."""

import importlib

import numpy as np
import pytest
import torch

import chainrule

WRAPPER = "distributed.algorithms._checkpoint.checkpoint_wrapper"


def _wrappers(lib):
    return importlib.import_module(f"{lib.__name__}.{WRAPPER}")


def _mlp(lib):
    lib.manual_seed(0)
    nn = lib.nn
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 8), nn.Tanh()), nn.Linear(8, 2))


def _twins(build):
    """The same model from both libraries, chainrule's holding torch's weights."""
    theirs, ours = build(torch), build(chainrule)
    ours.load_state_dict({k: chainrule.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return {torch: theirs, chainrule: ours}


class _Block:
    """A pre-norm transformer block, built the same way from either library."""

    @staticmethod
    def build(lib):
        class Block(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.norm = lib.nn.LayerNorm(8)
                self.attn = lib.nn.MultiheadAttention(8, 2, batch_first=True)
                self.mlp = lib.nn.Sequential(lib.nn.Linear(8, 16), lib.nn.GELU(), lib.nn.Linear(16, 8))

            def forward(self, x, scale=1.0):
                h = self.norm(x)
                x = x + self.attn(h, h, h, need_weights=False)[0]
                return x + scale * self.mlp(x)

        lib.manual_seed(0)
        return lib.nn.Sequential(Block(), Block())


def _run(lib, model, x, **kwargs):
    inputs = lib.tensor(x, requires_grad=True)
    out = model(inputs, **kwargs)
    out.square().sum().backward()
    grads = {name: p.grad.numpy().copy() for name, p in model.named_parameters()}
    return out.detach().numpy(), inputs.grad.numpy(), grads


def _assert_same_run(ours, theirs):
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)
    assert list(ours[2]) == list(theirs[2])
    for name in theirs[2]:
        np.testing.assert_allclose(ours[2][name], theirs[2][name], rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("impl", ["REENTRANT", "NO_REENTRANT"])
def test_checkpointed_mlp_matches_torch_in_outputs_gradients_keys_and_tree(impl):
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    runs, keys, trees = [], [], []
    for lib, model in _twins(_mlp).items():
        wrappers = _wrappers(lib)
        impl_value = getattr(wrappers.CheckpointImpl, impl)
        wrappers.apply_activation_checkpointing(
            model, checkpoint_wrapper_fn=lambda m, w=wrappers, i=impl_value: w.checkpoint_wrapper(m, checkpoint_impl=i),
            check_fn=lambda m, lib=lib: isinstance(m, lib.nn.Linear))
        runs.append(_run(lib, model, x))
        keys.append(list(model.state_dict()))
        trees.append(repr(model))
    _assert_same_run(runs[1], runs[0])
    assert keys[1] == keys[0] == ["0.weight", "0.bias", "2.0.weight", "2.0.bias", "3.weight", "3.bias"]
    assert trees[1] == trees[0]
    assert "(_checkpoint_wrapped_module): Linear(in_features=4" in trees[0]


@pytest.mark.parametrize("impl", ["REENTRANT", "NO_REENTRANT"])
def test_checkpointed_transformer_blocks_with_a_keyword_argument_match_torch(impl):
    # keyword arguments under the reentrant checkpoint go through the wrapper's positional packing
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    runs, keys = [], []
    for lib, model in _twins(_Block.build).items():
        wrappers = _wrappers(lib)
        impl_value = getattr(wrappers.CheckpointImpl, impl)
        for index in range(len(model)):
            model[index] = wrappers.checkpoint_wrapper(model[index], checkpoint_impl=impl_value)
        runs.append(_run(lib, model[0], x, scale=0.5))
        keys.append(list(model.state_dict()))
    _assert_same_run(runs[1], runs[0])
    assert keys[1] == keys[0]
    assert not any("_checkpoint_wrapped_module" in key for key in keys[0])


def test_wrapped_and_plain_models_load_each_others_state_dicts():
    wrappers = _wrappers(chainrule)
    plain, wrapped = _mlp(chainrule), _mlp(chainrule)
    with chainrule.no_grad():
        for p in plain.parameters():
            p.add_(1.0)
    wrappers.apply_activation_checkpointing(wrapped)
    result = wrapped.load_state_dict(plain.state_dict())
    assert (result.missing_keys, result.unexpected_keys) == ([], [])
    for (name, a), b in zip(plain.named_parameters(), wrapped.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy()), name
    fresh = _mlp(chainrule)
    fresh.load_state_dict(wrapped.state_dict())
    assert np.array_equal(fresh[0].weight.detach().numpy(), plain[0].weight.detach().numpy())


def test_apply_wraps_children_only_and_nested_matches_first_inside_out():
    trees = []
    for lib in (torch, chainrule):
        wrappers = _wrappers(lib)
        model = _mlp(lib)
        # the root is never wrapped; a matching Sequential is wrapped around its already wrapped Linear
        wrappers.apply_activation_checkpointing(
            model, check_fn=lambda m, lib=lib: isinstance(m, (lib.nn.Sequential, lib.nn.Tanh)))
        trees.append((repr(model), list(model.state_dict())))
    assert trees[1] == trees[0]
    assert trees[0][0].startswith("Sequential(\n  (0): Linear")


def test_auto_wrap_policy_takes_precedence_over_check_fn():
    trees = []
    for lib in (torch, chainrule):
        wrappers = _wrappers(lib)
        model = _mlp(lib)
        calls = []

        def policy(module, recurse, nonwrapped_numel, lib=lib, calls=calls):
            calls.append((type(module).__name__, recurse, nonwrapped_numel))
            return recurse or isinstance(module, lib.nn.ReLU)

        wrappers.apply_activation_checkpointing(model, check_fn=lambda m: False, auto_wrap_policy=policy)
        trees.append((repr(model), calls))
    assert trees[1] == trees[0]
    with pytest.raises(ValueError, match="to be callable or be a pre-defined wrap policy"):
        _wrappers(chainrule).apply_activation_checkpointing(_mlp(chainrule), auto_wrap_policy=3)


def test_custom_checkpoint_fn_receives_the_module_inputs_and_kwargs():
    wrappers = _wrappers(chainrule)
    seen = []

    def run_plainly(function, *args, tag):
        seen.append((type(function).__name__, len(args), tag))
        return function(*args)

    wrapped = wrappers.checkpoint_wrapper(chainrule.nn.Linear(2, 2), checkpoint_fn=run_plainly, tag="t")
    out = wrapped(chainrule.ones(1, 2))
    assert seen == [("Linear", 1, "t")]
    assert out.shape == (1, 2)


def test_wrapper_forwards_attributes_and_indexing_to_the_wrapped_module():
    for lib in (torch, chainrule):
        wrappers = _wrappers(lib)
        inner = _mlp(lib)
        wrapped = wrappers.checkpoint_wrapper(inner)
        assert wrapped[0] is inner[0]
        assert wrapped.training is True  # its own attribute wins
        assert [n for n, _ in wrapped.named_parameters()][:2] == ["0.weight", "0.bias"]
        assert isinstance(wrapped, wrappers.ActivationWrapper)
        with pytest.raises(AttributeError):
            _ = wrapped.no_such_attribute


def test_offload_wrapper_gives_the_same_values_and_gradients():
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    plain = _mlp(chainrule)
    reference = _run(chainrule, plain, x)
    plain.zero_grad()
    wrapped = _wrappers(chainrule).offload_wrapper(plain)
    assert type(wrapped).__name__ == "OffloadWrapper"
    _assert_same_run(_run(chainrule, wrapped, x), reference)


def test_wrapped_model_keeps_its_unprefixed_keys_through_pickle_and_deepcopy():
    import copy
    import pickle

    wrappers = _wrappers(chainrule)
    model = chainrule.nn.Sequential(wrappers.checkpoint_wrapper(chainrule.nn.Linear(2, 2)))
    assert list(copy.deepcopy(model).state_dict()) == ["0.weight", "0.bias"]
    assert list(pickle.loads(pickle.dumps(model)).state_dict()) == ["0.weight", "0.bias"]
