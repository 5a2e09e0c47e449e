"""Session 60, lane mendEF: nn odds and ends, each against torch 2.13."""

import pickle
from collections import OrderedDict

import pytest

import chainrule
from chainrule.utils.hooks import RemovableHandle


def _handles(lib):
    m = lib.nn.Linear(2, 2)
    t = lib.ones(2, requires_grad=True)
    y = t * 2
    optimizer = lib.optim.SGD(m.parameters(), lr=0.1)
    return (m, y, optimizer), {
        "forward": m.register_forward_hook(lambda *a: None),
        "forward_kwargs": m.register_forward_hook(lambda *a: None, with_kwargs=True, always_call=True),
        "full_backward": m.register_full_backward_hook(lambda *a: None),
        "state_dict_pre": m.register_state_dict_pre_hook(lambda *a: None),
        "leaf": t.register_hook(lambda g: g),
        "non_leaf": y.register_hook(lambda g: g),
        "node": y.grad_fn.register_hook(lambda *a: None),
        "node_pre": y.grad_fn.register_prehook(lambda *a: None),
        "post_accumulate": t.register_post_accumulate_grad_hook(lambda *a: None),
        "optimizer": optimizer.register_step_pre_hook(lambda *a: None),
    }


def test_every_hook_handle_is_the_one_utils_hooks_class_as_torch():
    torch = pytest.importorskip("torch")
    owned = _handles(torch), _handles(chainrule)  # (held: the owners keep the handles' tables alive)
    theirs, ours = owned[0][1], owned[1][1]
    for name, handle in ours.items():
        assert type(handle) is RemovableHandle, name
        assert type(theirs[name]).__module__ == "torch.utils.hooks"
        assert RemovableHandle.__module__ == "chainrule.utils.hooks"
        assert type(handle.hooks_dict_ref()) is type(theirs[name].hooks_dict_ref()), name
        assert len(handle.extra_dict_ref) == len(theirs[name].extra_dict_ref), name
        assert handle.id in handle.hooks_dict_ref(), name


def test_tensor_and_node_hooks_remove_by_handle_and_context():
    seen = []
    t = chainrule.ones(3, requires_grad=True)
    y = t * 2
    with y.register_hook(lambda g: seen.append("tensor")):
        with y.grad_fn.register_prehook(lambda g: seen.append("node")):
            y.sum().backward(retain_graph=True)
    y.sum().backward(retain_graph=True)
    handle = t.register_hook(lambda g: seen.append("leaf"))
    handle.remove()
    handle.remove()  # a second remove does nothing, as torch's
    y.sum().backward()
    assert seen == ["tensor", "node"]


def test_handle_pickles_its_table_and_id_and_bumps_next_id():
    table = OrderedDict()
    flags = OrderedDict()
    handle = RemovableHandle(table, extra_dict=flags)
    table[handle.id] = "hook"
    flags[handle.id] = True
    copy_table, copy_handle = pickle.loads(pickle.dumps((table, handle)))
    assert copy_handle.id == handle.id and copy_handle.hooks_dict_ref() is copy_table
    assert RemovableHandle.next_id > handle.id
    copy_handle.remove()
    assert not copy_table and table  # the copy's table only
    lone = pickle.loads(pickle.dumps(handle))  # its table dies with the load: a dead reference
    lone.remove()
    assert lone.hooks_dict_ref() is None and lone.extra_dict_ref[0]() is None


_MOVED = ["LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
          "LazyConvTranspose3d", "LazyLinear", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "MultiheadAttention",
          "ChannelShuffle", "LinearCrossEntropyOptions"]


@pytest.mark.parametrize("name", _MOVED)
def test_nn_class_module_is_torchs_and_pickles_by_it(name):
    torch = pytest.importorskip("torch")
    ours = getattr(chainrule.nn, name)
    assert ours.__module__ == getattr(torch.nn, name).__module__.replace("torch", "chainrule", 1)
    assert pickle.loads(pickle.dumps(ours)) is ours  # found again under the module it names


def test_multihead_attention_pickles_as_torchs_module_path():
    module = pickle.loads(pickle.dumps(chainrule.nn.MultiheadAttention(4, 2)))
    assert type(module) is chainrule.nn.MultiheadAttention
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        chainrule.nn.modules.conv.Nothing  # noqa: B018 - the lookup hands out only the lazy classes


_CONSTRUCTOR_ERRORS = {
    "ParameterList": lambda lib: lib.nn.ParameterList([lib.ones(2), lib.tensor([1])]),
    "ParameterDict": lambda lib: lib.nn.ParameterDict({"a": lib.tensor([1, 2])}),
    "ParameterDict_int": lambda lib: lib.nn.ParameterDict(5),
    "ModuleDict_pair": lambda lib: lib.nn.ModuleDict([("a",)]),
    "ModuleDict_noniterable": lambda lib: lib.nn.ModuleDict([1]),
    "Linear_int": lambda lib: lib.nn.Linear(2, 2, dtype=lib.int64),
}


@pytest.mark.parametrize("case", sorted(_CONSTRUCTOR_ERRORS))
def test_container_constructor_errors_in_torchs_bare_words(case):
    torch = pytest.importorskip("torch")
    build = _CONSTRUCTOR_ERRORS[case]
    with pytest.raises(Exception) as theirs:
        build(torch)
    with pytest.raises(Exception) as ours:
        build(chainrule)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def _mixed(lib):
    import numpy as np

    return {
        "str_then_bytes": [[1, "a"], [2, b"x"]],
        "none_before_bytes": [np.float32(1.5), [[np.int64(3), None], 1j, b"x"]],
        "bytes_before_object": [b"x", [2.5, True, object]],
        "str_before_none_nested": [[[True, "a"]], [None]],
        "tensor_then_str": [lib.tensor(1.0), ["a", None]],
    }


@pytest.mark.parametrize("case", ["str_then_bytes", "none_before_bytes", "bytes_before_object",
                                  "str_before_none_nested", "tensor_then_str"])
def test_tensor_names_the_first_bad_item_as_torch(case):
    torch = pytest.importorskip("torch")
    with pytest.raises(Exception) as theirs:
        torch.tensor(_mixed(torch)[case])
    with pytest.raises(Exception) as ours:
        chainrule.tensor(_mixed(chainrule)[case])
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("tail", ["a", [None], b"x"])
def test_tensor_inference_stops_at_complex128_as_torch(tail):
    torch = pytest.importorskip("torch")
    # a complex128 item decides the dtype: torch reads no further, so what follows is refused by
    # the conversion ("must be real number"), not by the inference
    with pytest.raises(Exception) as theirs:
        torch.tensor([torch.tensor(1j, dtype=torch.complex128), tail])
    with pytest.raises(Exception) as ours:
        chainrule.tensor([chainrule.tensor(1j, dtype=chainrule.complex128), tail])
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)
