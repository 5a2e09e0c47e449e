"""What opacus 1.6, captum 0.9, thop and fvcore reach for in torch, without the libraries.

opacus's import names ``torch.utils.data._utils.collate.default_collate``, the DataLoader's
``_collate_fn_t``, ``torch.distributed._tensor.experimental.implicit_replication`` and
``torch.distributed._composable.fsdp.FSDPModule``; its GroupNorm per-sample rule sums the spatial
dims with ``einsum("ni...->ni")``. captum imports ``torch.nn.parallel.scatter_gather.scatter`` and
annotates with ``torch.utils.hooks.RemovableHandle``; thop reads ``nn.modules.batchnorm._BatchNorm``
as an attribute; fvcore imports ``torch.jit._get_trace_graph`` and annotates with
``torch._C.Graph`` (docs/compatibility-trials.md, session 15, inspection and privacy).
"""

import dataclasses
import importlib

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])


@pytest.mark.parametrize("equation, shapes", [
    ("ni...->ni", [(3, 4, 2, 5)]),  # opacus's GroupNorm weight rule
    ("ni...->i", [(3, 4, 2)]),
    ("i...->", [(3, 2, 2)]),
    ("ni...->ni", [(3, 4)]),  # an empty ellipsis
    ("ab...,b...->a", [(2, 3, 4), (3, 4)]),
])
def test_einsum_sums_an_ellipsis_the_output_drops_as_torch_does(equation, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape) for shape in shapes]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours = [chainrule.tensor(a, requires_grad=True) for a in arrays]
    expected, result = torch.einsum(equation, *theirs), chainrule.einsum(equation, *ours)
    assert tuple(result.shape) == tuple(expected.shape)
    np.testing.assert_allclose(result.detach().numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    grad_output = rng.standard_normal(tuple(expected.shape))
    expected.backward(torch.tensor(grad_output))
    result.backward(chainrule.tensor(grad_output))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.numpy(), reference.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert chainrule.autograd.gradcheck(lambda *xs: chainrule.einsum(equation, *xs), ours)


def test_einsum_drops_the_ellipsis_in_float32_without_upcasting():
    x = chainrule.ones(2, 3, 4)
    assert chainrule.einsum("ni...->ni", x).dtype == chainrule.float32


@LIBS
def test_submodules_torch_binds_on_import_are_attributes(lib):
    assert lib.utils.hooks.RemovableHandle is not None
    assert issubclass(lib.nn.modules.batchnorm._BatchNorm, lib.nn.Module)
    assert issubclass(lib.nn.modules.instancenorm.InstanceNorm2d, lib.nn.Module)
    assert callable(lib.nn.parallel.scatter_gather.scatter)
    handle = lib.nn.Linear(2, 2).register_forward_hook(lambda *args: None)
    assert isinstance(handle, lib.utils.hooks.RemovableHandle)


@LIBS
def test_default_collate_under_the_private_data_utils_path(lib):
    collate = importlib.import_module(f"{lib.__name__}.utils.data._utils.collate")
    assert collate.default_collate is lib.utils.data.default_collate
    batch = collate.default_collate([(np.float32(1.5), 2), (np.float32(3.0), 4)])
    assert batch[0].tolist() == [1.5, 3.0] and batch[1].tolist() == [2, 4]
    dataloader = importlib.import_module(f"{lib.__name__}.utils.data.dataloader")
    assert dataloader._collate_fn_t is not None and dataloader._worker_init_fn_t is not None


@LIBS
def test_dtensor_and_fsdp_names_under_their_old_paths(lib):
    experimental = importlib.import_module(f"{lib.__name__}.distributed._tensor.experimental")
    assert experimental is importlib.import_module(f"{lib.__name__}.distributed.tensor.experimental")
    with experimental.implicit_replication():
        assert (lib.ones(2) + 1).tolist() == [2.0, 2.0]
    old_fsdp = importlib.import_module(f"{lib.__name__}.distributed._composable.fsdp")
    fsdp = importlib.import_module(f"{lib.__name__}.distributed.fsdp")
    assert old_fsdp.FSDPModule is fsdp.FSDPModule
    assert not isinstance(lib.nn.Linear(2, 2), old_fsdp.FSDPModule)
    module = lib.nn.Linear(2, 2)
    assert old_fsdp.register_fsdp_forward_method(module, "forward") is None  # a no-op on a plain module


def test_fsdp_policies_have_torchs_fields_and_defaults():
    from torch.distributed import fsdp as theirs

    from chainrule.distributed import fsdp as ours
    for name in ("MixedPrecisionPolicy", "OffloadPolicy", "CPUOffloadPolicy"):
        expected = [(f.name, f.default) for f in dataclasses.fields(getattr(theirs, name))]
        assert [(f.name, f.default) for f in dataclasses.fields(getattr(ours, name))] == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        ours.MixedPrecisionPolicy().param_dtype = chainrule.float16
    assert issubclass(ours.CPUOffloadPolicy, ours.OffloadPolicy)


@LIBS
def test_scatter_repeats_objects_that_are_not_tensors(lib):
    scatter_gather = lib.nn.parallel.scatter_gather
    assert scatter_gather.scatter((1, "x"), [0, 1]) == [(1, "x"), (1, "x")]
    assert scatter_gather.scatter({"a": 1}, [0, 1]) == [{"a": 1}, {"a": 1}]
    assert scatter_gather.scatter([3], [0, 1]) == [[3], [3]]
    assert scatter_gather.scatter_kwargs((1,), {"k": 2}, [0, 1]) == (((1,), (1,)), ({"k": 2}, {"k": 2}))


@LIBS
def test_gather_refuses_cpu_tensors(lib):
    pieces = [lib.zeros(2, 2), lib.ones(2, 2)]
    with pytest.raises(AssertionError, match="Gather function not implemented for CPU tensors"):
        lib.nn.parallel.scatter_gather.gather(pieces, "cpu", dim=1)


def test_scatter_and_gather_over_devices_on_the_standin():
    from chainrule._backend import use_standin_cuda
    from chainrule.nn.parallel.scatter_gather import gather, scatter

    with use_standin_cuda():
        x = chainrule.arange(8.0).reshape(4, 2).requires_grad_()
        pieces = scatter(x, [0], dim=0)
        assert len(pieces) == 1 and pieces[0].device.type == "cuda"
        (piece,) = pieces
        gathered = gather([piece * 2], "cpu", dim=0)
        assert gathered.device.type == "cpu"
        np.testing.assert_array_equal(gathered.detach().numpy(), 2 * np.arange(8.0).reshape(4, 2))
        gathered.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.full((4, 2), 2.0))


def test_trace_graph_refuses_and_names_the_flop_counter():
    with pytest.raises(NotImplementedError, match="FlopCounterMode"):
        chainrule.jit._get_trace_graph(chainrule.nn.Linear(2, 2), (chainrule.ones(1, 2),))
    for name in ("Graph", "Value"):
        assert isinstance(getattr(chainrule._C, name), type)
        with pytest.raises(RuntimeError, match="TorchScript tracer"):
            getattr(chainrule._C, name)()


@pytest.mark.parametrize("key, value_shape", [
    (0, (1,)),  # thop: ``total_params[0] = DoubleTensor([n])``
    (0, (1, 3)), (0, (1, 1, 3)), ((0, 1), (1,)), (slice(0, 2), (1, 3)), (slice(0, 2), (1, 2, 3)),
    ([0, 1], (1, 1, 3)),
])
def test_setitem_drops_the_values_leading_size_one_dims(key, value_shape):
    def write(lib):
        target = lib.zeros(2, 3, dtype=lib.float64, requires_grad=True).clone()
        value = lib.arange(1.0, 1.0 + int(np.prod(value_shape)), dtype=lib.float64).reshape(value_shape)
        value.requires_grad_()
        target[key] = value
        (target * lib.arange(6.0, dtype=lib.float64).reshape(2, 3)).sum().backward()
        return target.detach().numpy(), value.grad.numpy()

    for ours, theirs in zip(write(chainrule), write(torch)):
        np.testing.assert_array_equal(ours, theirs)


def test_setitem_names_the_value_as_given_when_it_cannot_broadcast():
    # torch's copy_to words: the value with its leading 1s dropped, as torch expands it
    words = r"The expanded size of the tensor \(3\) must match the existing size \(2\) .* Tensor sizes: \[2\]"
    with pytest.raises(RuntimeError, match=words):
        chainrule.zeros(2, 3)[0] = chainrule.ones(1, 2)
    with pytest.raises(RuntimeError, match=words):
        torch.zeros(2, 3)[0] = torch.ones(1, 2)


@LIBS
def test_getsizeof_a_storage_grows_by_its_bytes(lib):
    import sys

    empty = sys.getsizeof(lib.zeros(0).untyped_storage())
    for tensor in (lib.zeros(2, 7, dtype=lib.int64), lib.zeros(4, 10), lib.zeros(4, 10)[1:]):
        assert sys.getsizeof(tensor.untyped_storage()) - empty == tensor.untyped_storage().nbytes()


@LIBS
def test_future_at_the_top_level_is_the_futures_class(lib):
    assert issubclass(lib.futures.Future, lib.Future)
    future = lib.futures.Future()
    future.set_result(3)
    assert isinstance(future, lib.Future) and future.wait() == 3
    assert not isinstance(lib.ones(2), lib.Future)
