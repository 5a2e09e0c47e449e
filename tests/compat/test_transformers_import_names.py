"""The torch internals ``import transformers`` (4.57) reaches for, compared with torch 2.13: the
DTensor placements and their refusals without a process group, FSDP's names, the float8/float4
dtype objects, fx.Proxy, the indexing mode of flex-attention mask builders and the transformer
module's ``_get_activation_fn`` (docs/compatibility-trials.md, session 13)."""

import os

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_NO_RANK = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}


def _both(path):
    import importlib
    return importlib.import_module("torch." + path), importlib.import_module("chainrule." + path)


def test_placements_print_compare_and_answer_as_torchs():
    theirs, ours = _both("distributed.tensor")
    for make in (lambda m: m.Shard(1), lambda m: m.Shard(-1), lambda m: m.Replicate(), lambda m: m.Partial(),
                 lambda m: m.Partial("avg")):
        a, b = make(theirs), make(ours)
        assert (str(a), repr(a)) == (str(b), repr(b))
        assert (a.is_shard(), a.is_replicate(), a.is_partial()) == (b.is_shard(), b.is_replicate(), b.is_partial())
        assert isinstance(b, ours.Placement)
    assert ours.Shard(0) == ours.Shard(0) and ours.Shard(0) != ours.Shard(1) and ours.Shard(0) != ours.Replicate()
    assert hash(ours.Shard(2)) == hash(ours.Shard(2)) and ours.Partial() == ours.Partial("sum")
    assert ours.Shard(0).is_shard(0) and not ours.Shard(0).is_shard(1) and not ours.Partial().is_partial("avg")
    for lib in (theirs, ours):
        with pytest.raises(TypeError, match=r"^__init__\(\): incompatible constructor arguments"):
            lib.Shard("a")


def test_dtensor_needs_a_mesh_and_a_mesh_needs_a_process_group(monkeypatch):
    monkeypatch.setattr(os, "environ", _NO_RANK)
    theirs, ours = _both("distributed.tensor")
    assert not isinstance(chainrule.ones(2), ours.DTensor) and issubclass(ours.DTensor, chainrule.Tensor)
    for lib, tensor_lib in ((theirs, torch), (ours, chainrule)):
        with pytest.raises(ValueError, match="^Error initializing torch.distributed using env:// rendezvous: "
                                             "environment variable RANK expected, but not set$"):
            lib.DeviceMesh("cpu", [0])
        for call, args in ((lib.DTensor.from_local, (tensor_lib.ones(2),)),
                           (lib.distribute_tensor, (tensor_lib.ones(2),)), (lib.zeros, (2,))):
            with pytest.raises(RuntimeError, match="^No device mesh is currently active!$"):
                call(*args)
        with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'tensor_meta'"):
            lib.DTensor(tensor_lib.ones(2), None, requires_grad=False)
    mesh_theirs, mesh_ours = _both("distributed.device_mesh")
    assert mesh_ours.init_device_mesh.__name__ == "init_device_mesh" and mesh_ours.DeviceMesh is ours.DeviceMesh
    del mesh_theirs


def test_fsdp_wrappers_refuse_without_an_accelerator_and_nothing_is_wrapped(monkeypatch):
    monkeypatch.setattr(os, "environ", _NO_RANK)
    theirs, ours = _both("distributed.fsdp")
    for lib, nn in ((theirs, torch.nn), (ours, chainrule.nn)):
        # torch puts the call's arguments before the message
        with pytest.raises(RuntimeError, match="FSDP needs a non-CPU accelerator device, but no accelerator device "
                                               "is detected.$"):
            lib.FullyShardedDataParallel(nn.Linear(2, 2))
        with pytest.raises(ValueError, match="environment variable RANK expected, but not set$"):
            lib.fully_shard(nn.Linear(2, 2))
    assert not isinstance(chainrule.nn.Linear(2, 2), (ours.FullyShardedDataParallel, ours.FSDPModule))
    for enum_name in ("ShardingStrategy", "BackwardPrefetch", "StateDictType"):
        assert ({m.name: m.value for m in getattr(ours, enum_name)}
                == {m.name: m.value for m in getattr(theirs, enum_name)})


_LOW_PRECISION = ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
                  "float4_e2m1fn_x2")
_FLOAT8 = _LOW_PRECISION[:5]


@pytest.mark.parametrize("name", _LOW_PRECISION)
def test_float8_and_float4_dtypes_carry_torchs_fields_and_refuse_promotion(name):
    ours, theirs = getattr(chainrule, name), getattr(torch, name)
    assert str(ours) == f"chainrule.{name}" and str(theirs) == f"torch.{name}"
    for field in ("itemsize", "is_floating_point", "is_signed", "is_complex"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert chainrule._dtype.to_dtype(name) is ours
    import pickle
    assert pickle.loads(pickle.dumps(ours)) is ours
    with pytest.raises(RuntimeError, match=r"^Promotion for Float8 Types is not supported, attempted to promote "
                                           rf"{chainrule._dtype.scalar_name(ours)} and Float$"):
        chainrule.promote_types(ours, chainrule.float32)
    # torch words its refusal so for the float8 types (float4's is an internal assert)
    with pytest.raises(RuntimeError, match=r"^Promotion for Float8 Types is not supported" if "8" in name else None):
        torch.promote_types(theirs, torch.float32)


def test_float4_has_no_storage_here():
    with pytest.raises(NotImplementedError, match=r"not implemented for 'Float4_e2m1fn_x2'"):
        chainrule.zeros(2, dtype=chainrule.float4_e2m1fn_x2)


def _float8_probe_values(name):
    """Every finite float8 value, the midpoints between neighbours (ties), the float32 numbers
    just beside them, out-of-range magnitudes, the specials and random values at several scales."""
    rng = np.random.default_rng(5)
    decoded = torch.arange(256, dtype=torch.uint8).view(getattr(torch, name)).float().numpy()
    finite = np.unique(decoded[np.isfinite(decoded)])
    middle = (finite[1:] + finite[:-1]) / 2
    top = np.float32(finite.max())
    return np.concatenate([
        finite, -finite, middle, -middle, np.nextafter(middle, np.float32(np.inf)),
        np.nextafter(middle, np.float32(-np.inf)), rng.standard_normal(4000).astype(np.float32) * (top / 3),
        rng.standard_normal(1000).astype(np.float32) * np.float32(1e-3), np.array([top * 1.1, -top * 1.1], dtype=np.float32),
        np.array([np.inf, -np.inf, np.nan, -np.nan, 0.0, -0.0, 1e38, -1e38, 1e-45], dtype=np.float32)]).astype(
            np.float32)


@pytest.mark.parametrize("name", _FLOAT8)
def test_float8_casts_round_saturate_and_decode_bit_for_bit_as_torch(name):
    pytest.importorskip("ml_dtypes")
    ours, theirs = getattr(chainrule, name), getattr(torch, name)
    # decoding: all 256 bit patterns, to float32 and float64
    bits = np.arange(256, dtype=np.uint8)
    for wide in ("float32", "float64"):
        expected = torch.from_numpy(bits.copy()).view(theirs).to(getattr(torch, wide)).numpy()
        got = chainrule.from_numpy(bits.copy()).view(ours).to(getattr(chainrule, wide)).numpy()
        np.testing.assert_array_equal(got, expected)
    # encoding from float32, float64 and float16 sources
    values = _float8_probe_values(name)
    for source in (np.float32, np.float64, np.float16):
        with np.errstate(over="ignore"):
            array = values.astype(source)
        expected = torch.from_numpy(array).to(theirs).view(torch.uint8).numpy()
        got = chainrule.from_numpy(array).to(ours).view(chainrule.uint8).numpy()
        mismatches = np.nonzero(got != expected)[0]
        assert mismatches.size == 0, [(float(array[i]), int(got[i]), int(expected[i])) for i in mismatches[:5]]
    # creation from Python numbers rounds the same way
    numbers = [1.0, 0.3, 500.0, -1e38, float("nan"), -0.0, 1e-9]
    np.testing.assert_array_equal(chainrule.tensor(numbers, dtype=ours).view(chainrule.uint8).numpy(),
                                  torch.tensor(numbers, dtype=theirs).view(torch.uint8).numpy())


def test_a_cast_to_float8_passes_the_gradient_back_in_the_source_dtype():
    pytest.importorskip("ml_dtypes")
    for lib in (torch, chainrule):
        x = lib.tensor([0.3, 1.7, -2.2], requires_grad=True)
        y = x.to(lib.float8_e4m3fn)
        assert y.dtype == lib.float8_e4m3fn and type(y.grad_fn).__name__ == "ToCopyBackward0"
        y.float().sum().backward()
        assert x.grad.dtype == lib.float32 and x.grad.tolist() == [1.0, 1.0, 1.0]


def test_fx_proxy_is_a_class_no_eager_value_belongs_to():
    for lib in (torch, chainrule):
        assert isinstance(lib.fx.Proxy, type)
        assert not isinstance(lib.ones(2), lib.fx.Proxy) and not isinstance(3, lib.fx.Proxy)


def test_get_item_to_index_mode_leaves_eager_indexing_values_unchanged():
    theirs, ours = _both("_dynamo._trace_wrapped_higher_order_op")
    table = np.arange(12.0).reshape(3, 4)
    for module, lib in ((theirs, torch), (ours, chainrule)):
        values = lib.tensor(table)
        with module.TransformGetItemToIndex():
            picked = values[lib.tensor(2), lib.tensor(1)]
            row = values[1]
        assert float(picked) == 9.0 and row.tolist() == [4.0, 5.0, 6.0, 7.0]


def test_get_activation_fn_gives_the_functional_or_torchs_error():
    from torch.nn.modules.transformer import _get_activation_fn as theirs

    from chainrule.nn.modules.transformer import _get_activation_fn as ours

    assert ours("relu") is chainrule.nn.functional.relu and ours("gelu") is chainrule.nn.functional.gelu
    assert theirs("relu") is torch.nn.functional.relu
    for fn in (ours, theirs):
        with pytest.raises(RuntimeError, match="^activation should be relu/gelu, not tanh$"):
            fn("tanh")


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2"])
def test_float8_tensors_print_as_torchs(name):
    pytest.importorskip("ml_dtypes")
    for values in ([1.0, 2.5, -0.0, 1e-3, 300.0, float("nan")], [[1.0, 2.5], [3.0, 4.0]], 1.5):
        expected = repr(torch.tensor(values).to(getattr(torch, name)))
        got = repr(chainrule.tensor(values).to(getattr(chainrule, name)))
        assert got == expected.replace("torch.", "chainrule.")
