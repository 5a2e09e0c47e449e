"""What torchmetrics 1.9 and PyTorch Lightning 2.6 reach for in torch, reproduced without the libraries.

torchmetrics' ``Metric.__init__`` calls ``torch._C._log_api_usage_once`` and its
``_load_from_state_dict`` takes torch's seven arguments; Lightning's import names
``ReduceOp.RedOpType``, ``torch.distributed.constants``, ``torch._C._TensorMeta``,
``torch.ScriptModule``, ``torch._dynamo.OptimizedModule``, ``_BaseDataLoaderIter``,
``torch.nn.modules.batchnorm._BatchNorm``, ``torch.utils.hooks.RemovableHandle`` and
``torch.profiler.kineto_available``, and its ``Module.to`` parses its arguments with
``torch._C._nn._parse_to`` (docs/compatibility-trials.md, session 13, torchmetrics and Lightning).
"""

import datetime

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])


@LIBS
def test_log_api_usage_once_is_a_silent_no_op(lib):
    assert lib._C._log_api_usage_once("torchmetrics.metric.MulticlassAccuracy") is None


def _described(parsed):
    device, dtype, non_blocking, memory_format = parsed
    return (None if device is None else str(device), None if dtype is None else str(dtype).split(".")[-1],
            non_blocking, None if memory_format is None else str(memory_format).split(".")[-1])


@pytest.mark.parametrize("make_args", [
    lambda lib: (("cpu",), {}),
    lambda lib: ((lib.float64,), {}),
    lambda lib: ((lib.ones(2, dtype=lib.float16),), {}),
    lambda lib: (("cpu", lib.int64), {"non_blocking": True}),
    lambda lib: ((lib.device("cpu"),), {}),
    lambda lib: ((), {"device": "cpu", "dtype": lib.float32, "memory_format": lib.channels_last}),
    lambda lib: ((), {}),
    lambda lib: ((lib.ones(1), True), {}),
    lambda lib: ((lib.float16, True), {}),
    lambda lib: (("cpu", None, True), {}),
    lambda lib: ((None,), {}),
    lambda lib: ((), {"device": "cpu", "non_blocking": True}),
], ids=["device-string", "dtype", "tensor", "device-dtype-non-blocking", "device", "keywords", "nothing",
        "tensor-non-blocking", "dtype-non-blocking", "no-dtype", "none", "device-keyword-non-blocking"])
def test_parse_to_splits_module_to_arguments_as_torch(make_args):
    expected = _described(torch._C._nn._parse_to(*make_args(torch)[0], **make_args(torch)[1]))
    got = _described(chainrule._C._nn._parse_to(*make_args(chainrule)[0], **make_args(chainrule)[1]))
    assert got == expected


@pytest.mark.parametrize("make_args", [
    lambda lib: (("nope",), {}),
    lambda lib: ((), {"copy": False}),
    lambda lib: (("cpu", True), {}),
    lambda lib: ((), {"foo": 1}),
    lambda lib: ((lib.float32, "cpu"), {}),
    lambda lib: (("cpu", "cuda"), {}),
], ids=["unknown-device", "copy", "bool-as-dtype", "unknown-keyword", "device-after-dtype", "two-devices"])
def test_parse_to_refuses_as_torch(make_args):
    with pytest.raises((RuntimeError, TypeError)) as theirs:
        torch._C._nn._parse_to(*make_args(torch)[0], **make_args(torch)[1])
    with pytest.raises(theirs.type) as ours:
        chainrule._C._nn._parse_to(*make_args(chainrule)[0], **make_args(chainrule)[1])
    assert str(ours.value) == str(theirs.value)


@LIBS
def test_tensor_meta_is_the_type_of_tensor_and_script_module_is_no_nn_module(lib):
    assert lib._C._TensorMeta is type(lib.Tensor)
    assert not issubclass(lib.ScriptModule, lib.nn.Module)
    assert not isinstance(lib.nn.Linear(2, 2), lib.ScriptModule)


@LIBS
def test_reduce_op_members_are_red_op_type_values_with_torchs_numbers(lib):
    ReduceOp = lib.distributed.ReduceOp
    names = ["SUM", "AVG", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR"]
    for name in names:
        member = getattr(ReduceOp, name)
        assert getattr(ReduceOp.RedOpType, name) == member
        assert isinstance(member, ReduceOp.RedOpType)
    assert [int(getattr(ReduceOp, n).value) for n in names] == list(range(8))


@LIBS
def test_distributed_constants_default_timeout(lib):
    import importlib

    constants = importlib.import_module(f"{lib.__name__}.distributed.constants")
    assert constants.default_pg_timeout == datetime.timedelta(minutes=30)
    assert constants.default_pg_nccl_timeout is None  # a CPU build: no NCCL


def _seven_argument_override(lib):
    # torchmetrics' Metric overrides the hook with torch's seven arguments and calls super() with them
    class Counter(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("total", lib.zeros(2))
            self.seen_prefixes = []

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                                  unexpected_keys, error_msgs):
            self.seen_prefixes.append((prefix, bool(local_metadata.get("assign_to_params_buffers", False))))
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                          unexpected_keys, error_msgs)

    class Model(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.counter = Counter()
            self.linear = lib.nn.Linear(2, 2)

    return Model()


@pytest.mark.parametrize("assign", [False, True])
def test_a_seven_argument_load_from_state_dict_override_loads_as_torch(assign):
    results = []
    for lib in (torch, chainrule):
        model = _seven_argument_override(lib)
        state = {"counter.total": lib.tensor([3.0, 4.0]), "linear.weight": lib.ones(2, 2),
                 "linear.bias": lib.zeros(2)}
        keys = model.load_state_dict(state, assign=assign)
        results.append((model.counter.seen_prefixes, list(keys.missing_keys), list(keys.unexpected_keys),
                        model.counter.total.numpy().tolist(), model.linear.weight.detach().numpy().tolist(),
                        isinstance(model.linear.weight, lib.nn.Parameter)))
    assert results[1] == results[0]


@LIBS
def test_hooks_module_names_the_handle_hooks_return(lib):
    import importlib

    hooks = importlib.import_module(f"{lib.__name__}.utils.hooks")
    handle = lib.nn.Linear(2, 2).register_forward_hook(lambda *args: None)
    assert isinstance(handle, hooks.RemovableHandle)
    handle.remove()


@LIBS
def test_batchnorm_module_path_holds_the_batch_norm_classes(lib):
    import importlib

    batchnorm = importlib.import_module(f"{lib.__name__}.nn.modules.batchnorm")
    for cls in (lib.nn.BatchNorm1d, lib.nn.BatchNorm2d, lib.nn.BatchNorm3d, lib.nn.SyncBatchNorm,
                lib.nn.LazyBatchNorm2d):
        assert issubclass(cls, batchnorm._BatchNorm) and issubclass(cls, batchnorm._NormBase)
    assert not issubclass(lib.nn.InstanceNorm2d, batchnorm._BatchNorm)
    assert batchnorm.BatchNorm2d is lib.nn.BatchNorm2d


@LIBS
def test_data_loader_iterators_share_the_base_class(lib):
    from importlib import import_module

    dataloader = import_module(f"{lib.__name__}.utils.data.dataloader")
    data = lib.utils.data.TensorDataset(lib.tensor(np.arange(6, dtype=np.float32)))
    iterator = iter(lib.utils.data.DataLoader(data, batch_size=4))
    assert isinstance(iterator, dataloader._BaseDataLoaderIter)
    assert not isinstance(iterator, dataloader._MultiProcessingDataLoaderIter)
    assert issubclass(dataloader._MultiProcessingDataLoaderIter, dataloader._BaseDataLoaderIter)
    assert iter(iterator) is iterator
    assert [b[0].numpy().tolist() for b in iterator] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]]


@LIBS
def test_dynamo_names_the_wrapper_compile_returns(lib):
    from importlib import import_module

    dynamo = import_module(f"{lib.__name__}._dynamo")
    model = lib.nn.Linear(2, 2)
    # torch.compile turns torch.distributions' argument validation off for the whole process:
    # put it back, or later tests in this worker see torch skip its checks
    validate = torch.distributions.Distribution._validate_args
    try:
        compiled = lib.compile(model)
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)
    # Lightning unwraps a compiled module by this check and reads _orig_mod
    assert isinstance(compiled, dynamo.OptimizedModule) and compiled._orig_mod is model
    assert not isinstance(model, dynamo.OptimizedModule)


def test_kineto_available_answers_a_bool():
    assert isinstance(torch.profiler.kineto_available(), bool)
    # chainrule's profiler records in Python, without torch's Kineto library
    assert chainrule.profiler.kineto_available() is False
