"""chainrule.onnx: ``export`` of standard layer stacks to ONNX through the ``onnx`` package
(``pip install "chainrule[onnx]"``).

chainrule has no tracer, so ``export`` reads the model's structure instead of recording its
forward: a model is exportable when it is one of the layers below or an ``nn.Sequential`` of
them (nested Sequentials too). Anything else raises NotImplementedError naming the layer.

Layers: Linear, Conv1d/2d/3d (zeros padding), MaxPool1d/2d/3d, AvgPool1d/2d/3d, BatchNorm1d/2d/3d
(running statistics, as in eval mode), Flatten, ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softmax,
LogSoftmax, Dropout and Identity (both the identity at inference).
"""

from __future__ import annotations

import numpy as np

__all__ = ["export", "is_in_onnx_export"]

DEFAULT_OPSET = 17
_exporting = False


def is_in_onnx_export() -> bool:
    return _exporting


def _onnx():
    try:
        import onnx
    except ImportError as error:
        raise ImportError('chainrule.onnx.export needs the onnx package: pip install "chainrule[onnx]"') from error
    return onnx


def _ntuple(value, n: int) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value] * n


class _GraphBuilder:
    """Collects nodes and weight initializers while the layers are translated in order."""

    def __init__(self, onnx) -> None:
        self.onnx = onnx
        self.nodes = []
        self.initializers = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def constant(self, hint: str, array: np.ndarray) -> str:
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list, hint: str, **attributes) -> str:
        output = self.name(hint)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], **attributes))
        return output


def _array(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _conv_pads(layer, spatial: int) -> list:
    """ONNX pads (all begins, then all ends) for a Conv layer's ``padding``."""
    if layer.padding == "valid":
        return [0] * (2 * spatial)
    if layer.padding == "same":
        # torch pads 'same' by dilation*(k-1) in total, the smaller half first
        totals = [d * (k - 1) for d, k in zip(_ntuple(layer.dilation, spatial), _ntuple(layer.kernel_size, spatial))]
        return [t // 2 for t in totals] + [t - t // 2 for t in totals]
    pads = _ntuple(layer.padding, spatial)
    return pads + pads


def _translate(layer, x: str, rank: int, graph: _GraphBuilder) -> tuple:
    """Emit the ONNX nodes of one layer reading ``x`` (of ``rank`` dims); return (output, rank)."""
    from .. import nn

    kind = type(layer).__name__
    if isinstance(layer, nn.Sequential):
        for child in layer:
            x, rank = _translate(child, x, rank, graph)
        return x, rank
    if isinstance(layer, nn.Linear):
        y = graph.node("MatMul", [x, graph.constant("weight", _array(layer.weight).T)], "linear")
        if layer.bias is not None:
            y = graph.node("Add", [y, graph.constant("bias", _array(layer.bias))], "linear")
        return y, rank
    if kind in ("Conv1d", "Conv2d", "Conv3d"):
        spatial = int(kind[-2])
        if layer.padding_mode != "zeros":
            raise NotImplementedError(f"onnx.export: {kind} with padding_mode={layer.padding_mode!r} "
                                      "is not supported (only 'zeros')")
        inputs = [x, graph.constant("weight", _array(layer.weight))]
        if layer.bias is not None:
            inputs.append(graph.constant("bias", _array(layer.bias)))
        return graph.node("Conv", inputs, "conv", kernel_shape=_ntuple(layer.kernel_size, spatial),
                          strides=_ntuple(layer.stride, spatial), dilations=_ntuple(layer.dilation, spatial),
                          pads=_conv_pads(layer, spatial), group=layer.groups), rank
    if kind in ("MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"):
        spatial = int(kind[-2])
        if getattr(layer, "return_indices", False) or getattr(layer, "divisor_override", None):
            raise NotImplementedError(f"onnx.export: {kind} with return_indices/divisor_override is not supported")
        pads = _ntuple(layer.padding, spatial)
        stride = layer.stride if layer.stride is not None else layer.kernel_size
        attributes = dict(kernel_shape=_ntuple(layer.kernel_size, spatial), strides=_ntuple(stride, spatial),
                          pads=pads + pads, ceil_mode=int(layer.ceil_mode))
        if kind.startswith("Max"):
            return graph.node("MaxPool", [x], "maxpool", dilations=_ntuple(layer.dilation, spatial),
                              **attributes), rank
        return graph.node("AveragePool", [x], "avgpool", count_include_pad=int(layer.count_include_pad),
                          **attributes), rank
    if kind in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"):
        if layer.running_mean is None:
            raise NotImplementedError(f"onnx.export: {kind} without running statistics is not supported")
        channels = layer.num_features
        scale = _array(layer.weight) if layer.affine else np.ones(channels, np.float32)
        shift = _array(layer.bias) if layer.affine else np.zeros(channels, np.float32)
        inputs = [x, graph.constant("scale", scale), graph.constant("shift", shift),
                  graph.constant("mean", _array(layer.running_mean)), graph.constant("var", _array(layer.running_var))]
        return graph.node("BatchNormalization", inputs, "batchnorm", epsilon=float(layer.eps)), rank
    if isinstance(layer, nn.Flatten):
        start = layer.start_dim % rank
        end = layer.end_dim % rank
        if end != rank - 1:
            raise NotImplementedError("onnx.export: Flatten is supported up to the last dim only (end_dim=-1)")
        return graph.node("Flatten", [x], "flatten", axis=start), start + 1
    simple = {"ReLU": ("Relu", {}), "Sigmoid": ("Sigmoid", {}), "Tanh": ("Tanh", {}),
              "Dropout": ("Identity", {}), "Identity": ("Identity", {})}
    if kind in simple:
        op, attributes = simple[kind]
        return graph.node(op, [x], op.lower(), **attributes), rank
    if kind == "LeakyReLU":
        return graph.node("LeakyRelu", [x], "leakyrelu", alpha=float(layer.negative_slope)), rank
    if kind == "ELU":
        return graph.node("Elu", [x], "elu", alpha=float(layer.alpha)), rank
    if kind in ("Softmax", "LogSoftmax"):
        dim = layer.dim if layer.dim is not None else 1
        return graph.node(kind, [x], kind.lower(), axis=dim), rank
    raise NotImplementedError(
        f"onnx.export: cannot export {kind}: chainrule exports nn.Sequential stacks of Linear, Conv, "
        "pooling, BatchNorm, Flatten, activation, Dropout and Identity layers only (it has no tracer "
        "to record an arbitrary forward)")


def export(model, args, f=None, *, input_names=None, output_names=None, opset_version=None,
           dynamic_axes=None, do_constant_folding: bool = True, export_params: bool = True,
           verbose: bool = False, **unused_options):
    """torch.onnx.export for layer stacks (see the module doc): writes the model to ``f`` (a path
    or binary file) and returns the ``onnx.ModelProto``. ``args`` is the example input (a Tensor
    or a 1-tuple); its shape fixes the graph's input shape except the dims named in
    ``dynamic_axes``."""
    global _exporting
    onnx = _onnx()
    from ..tensor import Tensor

    example = args[0] if isinstance(args, (tuple, list)) else args
    if isinstance(args, (tuple, list)) and len(args) != 1:
        raise NotImplementedError(f"onnx.export: models with one input only, got {len(args)} inputs")
    if not isinstance(example, Tensor):
        raise TypeError(f"onnx.export: args must be a Tensor or a tuple holding one, got {type(example).__name__}")
    if not export_params:
        raise NotImplementedError("onnx.export: export_params=False is not supported (weights are always stored)")
    input_name = (input_names or ["input"])[0]
    output_name = (output_names or ["output"])[0]
    dynamic_axes = dynamic_axes or {}

    was_training = model.training
    model.eval()  # torch exports in inference mode: Dropout off, BatchNorm on running statistics
    _exporting = True
    try:
        graph = _GraphBuilder(onnx)
        result, _ = _translate(model, input_name, example.dim(), graph)
        expected = model(example)
    finally:
        _exporting = False
        model.train(was_training)
    graph.nodes.append(onnx.helper.make_node("Identity", [result], [output_name]))

    def value_info(name: str, shape: tuple):
        axes = dynamic_axes.get(name, {})
        names = axes if isinstance(axes, dict) else {axis: f"{name}_dim{axis}" for axis in axes}
        dims = [names.get(i, size) for i, size in enumerate(shape)]
        element = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(example.dtype.np))
        return onnx.helper.make_tensor_value_info(name, element, dims)

    proto = onnx.helper.make_model(
        onnx.helper.make_graph(graph.nodes, type(model).__name__, [value_info(input_name, tuple(example.shape))],
                               [value_info(output_name, tuple(expected.shape))], graph.initializers),
        opset_imports=[onnx.helper.make_opsetid("", opset_version or DEFAULT_OPSET)],
        producer_name="chainrule")
    onnx.checker.check_model(proto)
    if f is not None:
        onnx.save(proto, f)
    return proto
