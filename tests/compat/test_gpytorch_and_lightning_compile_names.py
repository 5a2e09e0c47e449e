"""What GPyTorch 1.15 and Lightning 2.6's compiled-module path reach for in torch, without the libraries.

GPyTorch's import names ``torch.autograd.function.FunctionCtx`` (an annotation of its custom
Functions' ``ctx``) and ``torch.distributions.utils._standard_normal`` (``MultivariateNormal.rsample``
draws its base samples with it); Lightning's ``from_compiled`` wraps a compiled module's ``forward``
and ``*_step`` methods with ``OptimizedModule.dynamo_ctx`` (docs/compatibility-trials.md, session 14,
Lightning unshimmed and GPyTorch).
"""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])


@LIBS
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_standard_normal_draws_of_the_asked_shape_and_dtype(lib, dtype_name):
    from importlib import import_module

    standard_normal = import_module(f"{lib.__name__}.distributions.utils")._standard_normal
    lib.manual_seed(0)
    draws = standard_normal((200, 50), dtype=getattr(lib, dtype_name), device=lib.device("cpu"))
    assert tuple(draws.shape) == (200, 50)
    assert draws.dtype == getattr(lib, dtype_name)
    assert not draws.requires_grad
    values = draws.numpy()
    # 10 000 standard-normal draws: mean within 5 standard errors of 0, variance near 1
    assert abs(values.mean()) < 5 / np.sqrt(values.size)
    assert abs(values.var() - 1) < 0.1


@LIBS
def test_every_ctx_a_function_sees_is_a_function_ctx(lib):
    from importlib import import_module

    function_ctx = import_module(f"{lib.__name__}.autograd.function").FunctionCtx
    seen = []

    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            seen.append(isinstance(ctx, function_ctx))
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            seen.append(isinstance(ctx, function_ctx))
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * grad

    x = lib.tensor([1.0, -2.0, 0.5], requires_grad=True)
    Cube.apply(x).sum().backward()
    with lib.no_grad():
        Cube.apply(x)  # nothing recorded: the forward still gets a FunctionCtx
    Cube.apply(x.detach())
    assert seen == [True, True, True, True]
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0, 0.75])


@LIBS
def test_a_compiled_module_has_a_callable_dynamo_ctx(lib):
    compiled = lib.compile(lib.nn.Linear(3, 2))
    assert callable(compiled.dynamo_ctx)


def test_lightning_style_from_compiled_keeps_the_numbers():
    """What Lightning's ``from_compiled`` does: the wrapped module's methods replaced by
    ``dynamo_ctx(method)``; here they run eagerly and give what they gave before."""
    chainrule.manual_seed(0)
    model = chainrule.nn.Sequential(chainrule.nn.Linear(4, 3), chainrule.nn.Tanh())
    x = chainrule.randn(5, 4)
    before = model(x).detach().numpy()
    compiled = chainrule.compile(model)
    original_forward = model.forward
    model.forward = compiled.dynamo_ctx(model.forward)
    np.testing.assert_array_equal(model(x).detach().numpy(), before)
    with compiled.dynamo_ctx:
        np.testing.assert_array_equal(compiled(x).detach().numpy(), before)
    model.forward = original_forward  # Lightning's to_uncompiled puts the original back
    np.testing.assert_array_equal(model(x).detach().numpy(), before)


def _lazily_loaded(lib, path, name, offset, size, stride, dtype):
    """What Lightning Fabric's ``_lazy_load`` does for one tensor of a ``torch.save`` file: a meta
    tensor first (shape and dtype, no data), then the record's bytes wrapped as a typed storage."""
    import warnings
    from importlib import import_module

    utils = import_module(f"{lib.__name__}._utils")
    storage_module = import_module(f"{lib.__name__}.storage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that TypedStorage is deprecated
        meta_storage = storage_module.TypedStorage(dtype=dtype, device="meta")
        meta = utils._rebuild_tensor_v2(meta_storage, offset, size, stride, False, {})
        reader = lib.PyTorchFileReader(path)
        record = reader.get_storage_from_record(f"data/{name}", 10 * utils._element_size(dtype),
                                                storage_module.UntypedStorage)
        untyped = record._typed_storage()._untyped_storage
        typed = storage_module.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)
    return meta, utils._rebuild_tensor_v2(typed, offset, size, stride, True, {})


@LIBS
def test_a_checkpoint_read_lazily_as_lightning_does(lib, tmp_path):
    path = str(tmp_path / "weights.pt")
    lib.save(lib.arange(10.0, dtype=lib.float64), path)
    meta, tensor = _lazily_loaded(lib, path, "0", 2, (2, 3), (1, 2), lib.float64)
    assert meta.device.type == "meta" and tuple(meta.shape) == (2, 3) and meta.dtype == lib.float64
    assert tensor.requires_grad and tensor.dtype == lib.float64
    np.testing.assert_array_equal(tensor.detach().numpy(), [[2.0, 4.0, 6.0], [3.0, 5.0, 7.0]])
    assert tensor.stride() == (1, 2)


@LIBS
def test_legacy_storage_classes_build_empty_of_their_dtype(lib):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert lib.FloatStorage().dtype == lib.float32
        assert lib.LongStorage().dtype == lib.int64
        assert len(lib.DoubleStorage()) == 0
        assert lib.storage.TypedStorage(dtype=lib.float16, device="meta").device.type == "meta"
