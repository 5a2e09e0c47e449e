"""Session 60, lane fuzzCE: the nn.Module API mismatches the module-API fuzzer (tests/fuzz/test_module_api.py)
found, each pinned against torch."""

from __future__ import annotations

from collections import OrderedDict

import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = [chainrule, torch]


def _error(thunk):
    try:
        thunk()
    except Exception as error:  # noqa: BLE001 - the error is what we compare
        return type(error).__name__, str(error).replace("torch", "LIB").replace("chainrule", "LIB")
    return None


def _both(make):
    """``make(lib)`` on chainrule and on torch."""
    return make(chainrule), make(torch)


@pytest.mark.parametrize("kind", ["ParameterList", "ParameterDict"])
def test_calling_a_parameter_container_raises_torchs_runtime_error(kind):
    ours, torchs = _both(lambda lib: _error(lambda: getattr(lib.nn, kind)()(lib.ones(1))))
    assert ours == torchs == ("RuntimeError", f"{kind} should not be called.")


def test_named_modules_memo_holds_modules_as_torchs():
    def walk(lib):
        root = lib.nn.Module()
        root.sub = lib.nn.Linear(2, 2)
        root.seq = lib.nn.Sequential(lib.nn.ReLU())
        memo = {root.sub}
        names = [name for name, _ in root.named_modules(memo, "p")]
        return names, sorted(type(m).__name__ for m in memo)

    ours, torchs = _both(walk)
    assert ours == torchs == (["p", "p.seq", "p.seq.0"], ["Linear", "Module", "ReLU", "Sequential"])


@pytest.mark.parametrize("requires_grad", [True, False])
def test_module_type_to_an_integer_dtype_refuses_parameters_that_require_grad(requires_grad):
    def convert(lib):
        model = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Linear(2, 1))
        model[0].requires_grad_(False)
        model[1].requires_grad_(requires_grad)
        error = _error(lambda: model.type(lib.int64))
        # torch converts the parameters it reaches before the one it refuses (children first)
        return error, [str(p.dtype).split(".")[-1] for p in model.parameters()]

    ours, torchs = _both(convert)
    assert ours == torchs
    assert (ours[0] is not None) == requires_grad


@pytest.mark.parametrize("named", [False, True])
@pytest.mark.parametrize("index", [0, 1, -1, 2])
def test_sequential_insert_shifts_entries_by_their_keys(named, index):
    def insert(lib):
        nn = lib.nn
        layers = [nn.Linear(2, 2), nn.ReLU()]
        model = nn.Sequential(OrderedDict(zip(["a", "b"], layers))) if named else nn.Sequential(*layers)
        error = _error(lambda: model.insert(index, nn.Tanh()))
        return error, [(name, type(m).__name__) for name, m in model._modules.items()]

    ours, torchs = _both(insert)
    assert ours == torchs


@pytest.mark.parametrize("name", ["plain", "training"])
def test_buffer_assigned_over_a_plain_attribute_is_refused(name):
    def assign(lib):
        module = lib.nn.Module()
        module.plain = 3
        error = _error(lambda: setattr(module, name, lib.nn.Buffer(lib.ones(2))))
        return error, getattr(module, name), list(module._buffers)

    ours, torchs = _both(assign)
    assert ours == torchs
    assert ours[0] == ("KeyError", f"\"attribute '{name}' already exists\"")


@pytest.mark.parametrize("requires_grad", [True, False])
def test_load_state_dict_assign_gives_a_parameter_the_replaced_ones_requires_grad(requires_grad):
    def load(lib):
        model = lib.nn.Linear(2, 2)
        model.weight.requires_grad_(False)
        state = {"weight": lib.nn.Parameter(lib.ones(2, 2), requires_grad=requires_grad), "bias": lib.zeros(2)}
        model.load_state_dict(state, assign=True)
        return [(type(p).__name__, p.requires_grad, p is state[n]) for n, p in model.named_parameters()]

    ours, torchs = _both(load)
    assert ours == torchs == [("Parameter", False, True), ("Parameter", True, False)]


@pytest.mark.parametrize("cut", [slice(-2, None), slice(0, 1), slice(None, None, 2)])
def test_module_list_del_slice_deletes_by_position_strings(cut):
    def delete(lib):
        nn = lib.nn
        modules = nn.ModuleList([nn.ReLU(), nn.Tanh()])
        modules.named = nn.Linear(2, 2)  # a key that is no position
        error = _error(lambda: modules.__delitem__(cut))
        return error, [(name, type(m).__name__) for name, m in modules._modules.items()]

    ours, torchs = _both(delete)
    assert ours == torchs


@pytest.mark.parametrize("index", [-1, -2, 0, 5])
@pytest.mark.parametrize("none", [False, True])
def test_module_list_insert_shifts_as_torchs(index, none):
    def insert(lib):
        nn = lib.nn
        modules = nn.ModuleList([nn.ReLU(), nn.Tanh()])
        error = _error(lambda: modules.insert(index, None if none else nn.Linear(2, 2)))
        return error, [(name, type(m).__name__) for name, m in modules._modules.items()]

    ours, torchs = _both(insert)
    assert ours == torchs


@pytest.mark.parametrize("name", ["BatchNorm1d", "SyncBatchNorm", "LazyBatchNorm2d", "InstanceNorm3d",
                                  "LazyInstanceNorm1d"])
def test_norm_layers_name_torchs_module(name):
    ours, torchs = _both(lambda lib: getattr(lib.nn, name).__module__.replace(lib.__name__, "LIB"))
    assert ours == torchs


def test_a_refused_assignment_names_the_batch_norm_class_as_torch():
    def assign(lib):
        module = lib.nn.Linear(2, 2)
        return _error(lambda: setattr(module, "weight", lib.nn.BatchNorm1d(2)))

    ours, torchs = _both(assign)
    assert ours == torchs


def test_parameter_dict_merges_and_reverses_as_torchs():
    def merge(lib):
        nn = lib.nn
        left = nn.ParameterDict({"a": nn.Parameter(lib.ones(1)), "b": nn.Parameter(lib.zeros(1))})
        right = nn.ParameterDict({"b": nn.Parameter(lib.ones(2)), "c": nn.Parameter(lib.ones(3))})
        merged, swapped = left | right, right | left
        shapes = [tuple(p.shape) for p in merged.values()]
        same = merged["a"] is left["a"]
        left |= right
        return (list(merged.keys()), list(swapped.keys()), shapes, same, list(reversed(left)),
                type(merged).__name__)

    ours, torchs = _both(merge)
    assert ours == torchs == (["a", "b", "c"], ["b", "c", "a"], [(1,), (2,), (3,)], True, ["c", "b", "a"],
                              "ParameterDict")


@pytest.mark.parametrize("other", ["sequential", "list"])
def test_sequential_iadd_appends_in_place(other):
    def extend(lib):
        nn = lib.nn
        model = nn.Sequential(nn.ReLU())
        more = nn.Sequential(nn.Tanh()) if other == "sequential" else [nn.Tanh()]
        box = [model]

        def iadd():
            box[0] += more

        error = _error(iadd)
        if error is not None:
            error = (error[0], error[1].replace("LIB", "torch"))  # (chainrule's class reprs spell torch's name)
        return error, box[0] is model, [type(m).__name__ for m in model]

    ours, torchs = _both(extend)
    assert ours == torchs


def test_module_type_takes_a_type_name_and_extra_state_refusals_read_as_torchs():
    def convert(lib):
        model = lib.nn.Linear(2, 2)
        dtype = str(model.type("torch.DoubleTensor").weight.dtype).split(".")[-1]
        return dtype, _error(model.get_extra_state), _error(lambda: model.set_extra_state({}))

    ours, torchs = _both(convert)
    assert ours == torchs


@pytest.mark.parametrize("target", [".", ".x", "a.", "a.x", "zz.x", "a..x"])
def test_set_submodule_finds_the_parent_as_torch(target):
    def put(lib):
        nn = lib.nn
        model = nn.Module()
        model.a = nn.Sequential()
        error = _error(lambda: model.set_submodule(target, nn.ReLU()))
        return error, [(name, type(m).__name__) for name, m in model.named_modules()]

    ours, torchs = _both(put)
    assert ours == torchs


def test_converting_a_buffer_that_requires_grad_keeps_it_requiring_grad():
    def convert(lib):
        module = lib.nn.Module()
        module.register_buffer("b", lib.nn.Parameter(lib.ones(2)))
        module.register_buffer("c", lib.ones(2))
        module.to(lib.float16)
        return [(n, type(b).__name__, b.requires_grad, b.is_leaf, str(b.dtype).split(".")[-1])
                for n, b in module.named_buffers()]

    ours, torchs = _both(convert)
    assert ours == torchs
