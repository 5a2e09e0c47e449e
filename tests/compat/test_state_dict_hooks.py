"""Module.state_dict's pre and post hooks, public and private, against torch 2.13."""

import pytest
import torch

import chainrule


def _model(lib):
    lib.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.Sequential(lib.nn.Linear(3, 1)))


def _record_calls(lib):
    """Register a pre and a post hook on every module; return the model and the (kind, name, prefix) log."""
    model, calls = _model(lib), []
    for name, module in model.named_modules():
        def pre(module, prefix, keep_vars, name=name):
            calls.append(("pre", name, prefix, keep_vars))

        def post(module, state_dict, prefix, local_metadata, name=name):
            calls.append(("post", name, prefix, sorted(state_dict), dict(local_metadata)))

        module.register_state_dict_pre_hook(pre)
        module.register_state_dict_post_hook(post)
    return model, calls


@pytest.mark.parametrize("keep_vars", [False, True])
def test_hooks_run_per_module_in_torchs_order_with_prefixes_and_metadata(keep_vars):
    torch_model, expected = _record_calls(torch)
    ours, calls = _record_calls(chainrule)
    torch_model.state_dict(prefix="top.", keep_vars=keep_vars)
    ours.state_dict(prefix="top.", keep_vars=keep_vars)
    assert calls == expected
    assert [c[:3] for c in calls][:2] == [("pre", "", "top."), ("pre", "0", "top.0.")]


def test_post_hook_edits_in_place_and_a_removed_handle_stops_it():
    def rename(module, state_dict, prefix, local_metadata):
        state_dict[prefix + "renamed"] = state_dict.pop(prefix + "weight")

    results = []
    for lib in (torch, chainrule):
        model = _model(lib)
        handle = model[0].register_state_dict_post_hook(rename)
        with_hook = list(model.state_dict())
        handle.remove()
        results.append((with_hook, list(model.state_dict())))
    assert results[1] == results[0]
    assert "0.renamed" in results[0][0] and "0.weight" in results[0][1]


def test_public_post_hook_that_returns_a_value_raises_torchs_error():
    for lib in (torch, chainrule):
        model = _model(lib)
        model.register_state_dict_post_hook(lambda module, state_dict, prefix, metadata: {})
        with pytest.raises(RuntimeError, match="^state_dict post-hook must return None$"):
            model.state_dict()


def test_private_hook_result_replaces_the_roots_dict_only():
    def only_keys(module, state_dict, prefix, local_metadata):
        return {key: None for key in state_dict}

    results = []
    for lib in (torch, chainrule):
        model = _model(lib)
        model._register_state_dict_hook(only_keys)
        root = model.state_dict()
        model2 = _model(lib)
        model2[1]._register_state_dict_hook(only_keys)  # a child's return value is dropped, as in torch
        child = model2.state_dict()
        results.append((type(root).__name__, list(root.values()), type(child).__name__, sorted(child)))
    assert results[1] == results[0]
    assert results[0][0] == "dict" and results[0][2] == "OrderedDict"


def test_one_function_cannot_be_both_a_public_and_a_private_hook():
    for lib in (torch, chainrule):
        def hook(module, state_dict, prefix, local_metadata):
            pass

        model = _model(lib)
        model.register_state_dict_post_hook(hook)
        with pytest.raises(RuntimeError, match="previously registered via register_state_dict_post_hook"):
            model._register_state_dict_hook(hook)


def test_pre_hook_sees_the_module_before_its_entries_are_written():
    # a pre hook may change what the module saves (a library materialising a lazy buffer)
    values = []
    for lib in (torch, chainrule):
        model = _model(lib)

        def fill(module, prefix, keep_vars, lib=lib):
            with lib.no_grad():
                module.bias.fill_(7.0)

        model[0].register_state_dict_pre_hook(fill)
        values.append(model.state_dict()["0.bias"].tolist())
    assert values[1] == values[0] == [7.0, 7.0, 7.0]


def test_a_module_pickled_before_the_hooks_existed_gets_empty_ones():
    old_state = dict(chainrule.nn.Linear(2, 3).__dict__)
    del old_state["_state_dict_hooks"], old_state["_state_dict_pre_hooks"]
    restored = chainrule.nn.Linear.__new__(chainrule.nn.Linear)
    restored.__setstate__(old_state)
    assert list(restored.state_dict()) == ["weight", "bias"]
    restored.register_state_dict_pre_hook(lambda module, prefix, keep_vars: None)
    assert len(restored._state_dict_pre_hooks) == 1
