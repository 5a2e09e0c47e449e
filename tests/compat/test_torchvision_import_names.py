"""The torch names torchvision 0.28 reaches for at import and first use, against torch 2.13."""

import pytest
import torch

import chainrule

LIBS = [pytest.param(chainrule, id="chainrule"), pytest.param(torch, id="torch")]


@pytest.mark.parametrize("lib", LIBS)
def test_dispatch_key_sets_and_the_exclude_guard(lib):
    keys = lib._C.DispatchKeySet(lib._C.DispatchKey.AutocastCPU) | lib._C.DispatchKeySet(
        lib._C.DispatchKey.AutocastCUDA)
    assert keys.has(lib._C.DispatchKey.AutocastCPU) and not keys.has(lib._C.DispatchKey.CPU)
    assert keys.add(lib._C.DispatchKey.CPU).has(lib._C.DispatchKey.CPU)
    assert int(lib._C.DispatchKey.AutocastCPU) == 24 and lib._C.DispatchKey.CPU.name == "CPU"
    with lib._C._ExcludeDispatchKeyGuard(keys):
        assert (lib.ones(2) + 1).tolist() == [2.0, 2.0]


@pytest.mark.parametrize("lib", LIBS)
def test_small_names(lib):
    import importlib
    from importlib import import_module

    assert lib.ones(1).is_quantized is False
    lib._assert(True, "fine")
    with pytest.raises(AssertionError, match="^boxes$"):
        lib._assert(False, "boxes")
    assert importlib.import_module(f"{lib.__name__}._dynamo.utils").is_compile_supported("cpu") is True
    assert importlib.import_module(f"{lib.__name__}.utils.model_zoo").load_url is lib.hub.load_state_dict_from_url
    instancenorm = importlib.import_module(f"{lib.__name__}.nn.modules.instancenorm")
    assert instancenorm.InstanceNorm2d is lib.nn.InstanceNorm2d
    assert import_module(f"{lib.__name__}._custom_ops").get_ctx() is None  # outside a fake kernel

    def box_area(boxes):
        return boxes[:, 2] * boxes[:, 3]

    assert lib.jit._script_if_tracing(box_area)(lib.ones(1, 4)).tolist() == [1.0]
    class Images(lib.utils.data.Dataset[int]):  # torchvision's VisionDataset(data.Dataset[T_co])
        def __getitem__(self, index):
            return index

    assert Images()[3] == 3 and isinstance(Images(), lib.utils.data.Dataset)
    assert lib.utils.data.Sampler[int].__origin__ is lib.utils.data.Sampler


@pytest.mark.parametrize("lib", LIBS)
def test_quant_stubs_pass_a_float_model_through(lib):
    from importlib import import_module

    quantization = import_module(f"{lib.__name__}.ao.quantization")
    x = lib.arange(4.0)
    assert quantization.QuantStub()(x) is x and quantization.DeQuantStub()(x) is x
    assert isinstance(quantization.QuantStub(), lib.nn.Module)


@pytest.mark.parametrize("lib", LIBS)
def test_onnx_custom_symbolics_register_and_unregister(lib):
    from importlib import import_module

    helper = import_module(f"{lib.__name__}.onnx.symbolic_helper")
    import_module(f"{lib.__name__}.onnx.symbolic_opset11")

    @helper.parse_args("v", "v", "f")
    def symbolic(g, boxes, scores, threshold):
        return None

    lib.onnx.register_custom_op_symbolic("trialv_ns::nms", symbolic, 11)
    lib.onnx.unregister_custom_op_symbolic("trialv_ns::nms", 11)
