"""chainrule.onnx: ``export`` of standard layer stacks to ONNX through the ``onnx`` package
(``pip install "chainrule[onnx]"``).

chainrule has no tracer, so ``export`` reads the model's structure instead of recording its
forward: a model is exportable when it is one of the layers below or an ``nn.Sequential`` of
them (nested Sequentials too), or a recurrent layer (RNN, LSTM, GRU) called with its initial
state, ``export(lstm, (x, (h0, c0)), ...)``, whose graph has one input per tensor given and one
output per tensor returned (output, h_n, c_n). Anything else raises NotImplementedError naming
the layer.

Layers: Embedding, Linear, Conv1d/2d/3d (zeros padding), MaxPool1d/2d/3d, AvgPool1d/2d/3d, BatchNorm1d/2d/3d
(running statistics, as in eval mode), Flatten, ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softmax,
LogSoftmax, Dropout and Identity (both the identity at inference).
"""

from __future__ import annotations

import numpy as np

__all__ = ["export", "is_in_onnx_export", "register_custom_op_symbolic", "unregister_custom_op_symbolic"]

DEFAULT_OPSET = 17
_exporting = False
# "namespace::op" -> opset version -> symbolic function, as libraries register them at import
# (torchvision's nms, roi_align, roi_pool). torch's TorchScript exporter calls them for the graph
# it traced; chainrule's exporter translates layers, not traced ops, so it keeps them unused.
_custom_symbolics: dict[str, dict[int, object]] = {}


def register_custom_op_symbolic(symbolic_name: str, symbolic_fn, opset_version: int) -> None:
    """torch.onnx.register_custom_op_symbolic: how ``symbolic_name`` ("ns::op") exports from
    ``opset_version`` on. Recorded only (see ``_custom_symbolics``)."""
    namespace, _, op_name = symbolic_name.partition("::")
    if not namespace or not op_name:
        raise ValueError(f"Failed to register operator {symbolic_name}. The symbolic name must match the format "
                         "domain::name, and should start with a letter and contain only alphanumerical characters")
    _custom_symbolics.setdefault(symbolic_name, {})[opset_version] = symbolic_fn


def unregister_custom_op_symbolic(symbolic_name: str, opset_version: int) -> None:
    """torch.onnx.unregister_custom_op_symbolic: forget what ``register_custom_op_symbolic`` recorded."""
    _custom_symbolics.get(symbolic_name, {}).pop(opset_version, None)


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
    if isinstance(layer, nn.Embedding):
        if layer.max_norm is not None:
            raise NotImplementedError("onnx.export: Embedding with max_norm is not supported")
        return graph.node("Gather", [graph.constant("weight", _array(layer.weight)), x], "embedding"), rank + 1
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


# ONNX's gate order from torch's: LSTM i f g o -> i o f c, GRU r z n -> z r h
_GATE_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN_TANH": [0], "RNN_RELU": [0]}


def _gates(array: np.ndarray, mode: str) -> np.ndarray:
    """A torch recurrent weight or bias (gates stacked along dim 0) in ONNX's gate order."""
    order = _GATE_ORDER[mode]
    gates = np.split(array, len(order))
    return np.concatenate([gates[i] for i in order])


def _translate_recurrent(layer, names: list, graph: _GraphBuilder) -> list:
    """The ONNX nodes of an RNN/LSTM/GRU layer reading ``names`` (input, then h0 and c0 when given);
    returns its outputs' names in torch's order, flattened: output, h_n (, c_n)."""
    mode = layer.mode
    if getattr(layer, "proj_size", 0):
        raise NotImplementedError(f"onnx.export: cannot export LSTM with proj_size={layer.proj_size}: ONNX's LSTM "
                                  "operator has no output projection (weight_hr)")
    if len(names) not in (1, 3 if mode == "LSTM" else 2):
        raise NotImplementedError(f"onnx.export: {type(layer).__name__} takes the input and its whole initial state "
                                  f"({'(h0, c0)' if mode == 'LSTM' else 'h0'}), got {len(names) - 1} state tensors")
    op = {"LSTM": "LSTM", "GRU": "GRU"}.get(mode, "RNN")
    directions = 2 if layer.bidirectional else 1
    hidden = layer.hidden_size
    x = graph.node("Transpose", [names[0]], "batch_first", perm=[1, 0, 2]) if layer.batch_first else names[0]
    final = {"h": [], "c": []}
    for index in range(layer.num_layers):
        weights = [layer._layer_weights(index, d) for d in range(directions)]
        w_ih = np.stack([_gates(_array(w[0]), mode) for w in weights])
        w_hh = np.stack([_gates(_array(w[1]), mode) for w in weights])
        biases = [np.concatenate([_gates(_array(b), mode) for b in w[2:]]) if w[2] is not None
                  else np.zeros(2 * w_ih.shape[1], w_ih.dtype) for w in weights]
        inputs = [x, graph.constant("W", w_ih), graph.constant("R", w_hh), graph.constant("B", np.stack(biases)), ""]
        # this layer's rows of the initial state (layers × directions along dim 0, as torch stacks them)
        rows = [graph.constant("starts", np.array([index * directions])),
                graph.constant("ends", np.array([(index + 1) * directions])), graph.constant("axes", np.array([0]))]
        for state in names[1:]:
            inputs.append(graph.node("Slice", [state, *rows], "initial_state"))
        attributes = dict(hidden_size=hidden, direction="bidirectional" if directions == 2 else "forward")
        if op == "GRU":
            attributes["linear_before_reset"] = 1  # torch applies the reset gate after the matmul
        if op == "RNN":
            attributes["activations"] = ["Tanh" if mode == "RNN_TANH" else "Relu"] * directions
        count = 3 if op == "LSTM" else 2
        outputs = [graph.name(f"{op.lower()}_{part}") for part in ("y", "h", "c")[:count]]
        graph.nodes.append(graph.onnx.helper.make_node(op, inputs, outputs, **attributes))
        final["h"].append(outputs[1])
        if op == "LSTM":
            final["c"].append(outputs[2])
        # Y is (seq, directions, batch, hidden): the next layer reads (seq, batch, directions·hidden)
        y = graph.node("Transpose", [outputs[0]], "sequence", perm=[0, 2, 1, 3])
        x = graph.node("Reshape", [y, graph.constant("shape", np.array([0, 0, directions * hidden]))], "sequence")
    output = graph.node("Transpose", [x], "batch_first", perm=[1, 0, 2]) if layer.batch_first else x
    states = [graph.node("Concat", final[part], f"{part}_n", axis=0) for part in ("h", "c") if final[part]]
    return [output, *states]


def _flatten(value, what: str) -> list:
    """The tensors of a (nested) tuple of tensors, in order, as torch.onnx flattens inputs and outputs."""
    from ..tensor import Tensor

    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _flatten(item, what)]
    raise TypeError(f"onnx.export: {what} must be Tensors or (nested) tuples of Tensors, got {type(value).__name__}")


def export(model, args, f=None, *, input_names=None, output_names=None, opset_version=None,
           dynamic_axes=None, do_constant_folding: bool = True, export_params: bool = True,
           verbose: bool = False, **unused_options):
    """torch.onnx.export for layer stacks (see the module doc): writes the model to ``f`` (a path
    or binary file) and returns the ``onnx.ModelProto``. ``args`` is the example input: a Tensor,
    or a tuple of the forward's positional arguments (tuples of Tensors inside, as an LSTM's
    ``(h0, c0)``, give one graph input per Tensor, named in order by ``input_names``; the outputs
    likewise by ``output_names``). The example shapes fix the graph's shapes except the dims named
    in ``dynamic_axes``."""
    global _exporting
    onnx = _onnx()
    from ..nn.modules.rnn import RNNBase
    from ..tensor import Tensor

    call_args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
    if call_args and isinstance(call_args[-1], dict):
        raise NotImplementedError("onnx.export: keyword arguments in args (a trailing dict) are not supported")
    examples = _flatten(call_args, "args")
    if not examples or not isinstance(call_args[0], Tensor):
        raise TypeError(f"onnx.export: args must be a Tensor or a tuple of Tensors, got {type(args).__name__}")
    if len(call_args) > 1 and not isinstance(model, RNNBase):
        raise NotImplementedError(f"onnx.export: models with several inputs are supported for RNN, LSTM and GRU "
                                  f"layers only, got {type(model).__name__} with {len(call_args)} inputs")
    if not export_params:
        raise NotImplementedError("onnx.export: export_params=False is not supported (weights are always stored)")
    dynamic_axes = dynamic_axes or {}

    was_training = model.training
    model.eval()  # torch exports in inference mode: Dropout off, BatchNorm on running statistics
    _exporting = True
    try:
        graph = _GraphBuilder(onnx)
        given_names = list(input_names or [])
        names = given_names[:len(examples)] + [f"input_{i}" if i else "input" for i in range(len(given_names),
                                                                                           len(examples))]
        if isinstance(model, RNNBase):
            results = _translate_recurrent(model, names, graph)
        else:
            results = [_translate(model, names[0], examples[0].dim(), graph)[0]]
        expected = _flatten(model(*call_args), "the model's outputs")
    finally:
        _exporting = False
        model.train(was_training)
    given_outputs = list(output_names or [])
    outputs = given_outputs[:len(expected)] + [f"output_{i}" if i else "output" for i in range(len(given_outputs),
                                                                                          len(expected))]
    for result, name in zip(results, outputs):
        graph.nodes.append(onnx.helper.make_node("Identity", [result], [name]))

    def value_info(name: str, tensor):
        axes = dynamic_axes.get(name, {})
        names = axes if isinstance(axes, dict) else {axis: f"{name}_dim{axis}" for axis in axes}
        dims = [names.get(i, size) for i, size in enumerate(tensor.shape)]
        element = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(tensor.dtype.np))
        return onnx.helper.make_tensor_value_info(name, element, dims)

    proto = onnx.helper.make_model(
        onnx.helper.make_graph(graph.nodes, type(model).__name__,
                               [value_info(name, t) for name, t in zip(names, examples)],
                               [value_info(name, t) for name, t in zip(outputs, expected)], graph.initializers),
        opset_imports=[onnx.helper.make_opsetid("", opset_version or DEFAULT_OPSET)],
        producer_name="chainrule")
    onnx.checker.check_model(proto)
    if f is not None:
        onnx.save(proto, f)
    return proto
