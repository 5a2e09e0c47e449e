"""The model graph ``SummaryWriter.add_graph`` writes: one forward run recorded op by op, turned
into TensorBoard's GraphDef.

torch builds it from ``torch.jit.trace``; chainrule has no TorchScript, so the forward runs once
(in eval mode, under no_grad) while an op recorder sits where the profiler does
(``autograd.function.active_profiler``): every built-in op and user ``Function`` hands it its
inputs and outputs. Forward pre/post hooks on every submodule tell which module an op ran in, so
nodes are grouped as torch's are: ``Net/Sequential[features]/Conv2d[0]/...``.

The GraphDef has torch's layout: ``input/<arg>`` and ``output/output.<i>`` IO nodes, parameter
and buffer nodes (``prim::GetAttr``) in their module's scope, op nodes named by torch's dispatcher
names (``aten::convolution``), tensors made inside forward as ``prim::Constant``, and an
``_output_shapes`` attr on every node that carries a tensor. Ops whose result never reaches an
output are dropped, as the tracer's dead-code pass drops them. An in-place op runs out of place
and writes its result into its first argument, so a tensor whose version counter moved is read
as that op's result (named with torch's ``_``, ``aten::relu_``); a write through a view of a
tensor is not drawn. Differences from torch: ops are
chainrule's (Linear is ``aten::t`` + ``aten::addmm``, eval BatchNorm is its arithmetic), each
output tensor gets its own ``output/`` node (torch gives a tuple one), and a second result of an
op is referenced as ``name:1``.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from dataclasses import dataclass, field

from tensorboard.compat.proto.attr_value_pb2 import AttrValue
from tensorboard.compat.proto.config_pb2 import RunMetadata
from tensorboard.compat.proto.graph_pb2 import GraphDef
from tensorboard.compat.proto.node_def_pb2 import NodeDef
from tensorboard.compat.proto.step_stats_pb2 import DeviceStepStats, StepStats
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.compat.proto.types_pb2 import DataType
from tensorboard.compat.proto.versions_pb2 import VersionDef

from ...autograd import function as _function
from ...autograd import grad_mode
from ...autograd.profiler import _op_name, recording_switches
from ...tensor import Tensor

__all__ = ["graph"]

# TensorBoard reads graphs of this GraphDef producer version; torch's writer uses the same
_PRODUCER_VERSION = 22

_DATA_TYPES = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "float16": "DT_HALF", "bfloat16": "DT_BFLOAT16",
               "int64": "DT_INT64", "int32": "DT_INT32", "int16": "DT_INT16", "int8": "DT_INT8",
               "uint8": "DT_UINT8", "bool": "DT_BOOL", "complex64": "DT_COMPLEX64",
               "complex128": "DT_COMPLEX128"}


@dataclass
class TracedOp:
    """One op of the recorded forward: its dispatcher name, the tensors it read (non-tensor
    arguments left out), the tensors it returned, and the module scope it ran in."""

    kind: str
    inputs: list
    outputs: list
    scope: str
    name: str = ""  # the node name, given when the graph is built
    used: bool = False  # its result reaches an output
    # per input: (the op that last wrote it, which of its results), or None for a tensor no op made
    sources: list = field(default_factory=list)


def _tensors_in(value) -> list:
    """The tensors of a result or argument: itself, or those of a (nested) tuple, list or dict."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors_in(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors_in(item)]
    return []


class _OpRecorder:
    """Stands where the profiler does while the forward runs: runs each op and records it.

    Only the outermost op of the tracing thread is recorded (the ops a user Function's forward
    runs are part of it), as a torch trace records a Function as one node."""

    _recording = False  # record_function ranges are the profiler's business, not the graph's

    def __init__(self) -> None:
        self.ops: list[TracedOp] = []
        self.scopes: list[str] = []  # the modules whose forward is running, innermost last
        # id(tensor) -> (the op that last wrote it or None, which of its results, the tensor's
        # version then); the recorded tensors stay referenced by the ops, so ids are not reused
        self._writers: dict = {}
        self._thread = threading.get_ident()
        self._depth = 0
        self._rerun = False

    def source_of(self, tensor) -> tuple | None:
        """(op, result number) that made ``tensor``'s current value, or None for a tensor no
        recorded op made (an input, a parameter, a constant)."""
        entry = self._writers.get(id(tensor))
        version = tensor._version
        if entry is None:
            entry = self._writers[id(tensor)] = (None, 0, version)
        elif entry[2] != version:
            entry = self._writers[id(tensor)] = self._in_place_writer(tensor, entry[0], version)
        return None if entry[0] is None else entry[:2]

    def _in_place_writer(self, tensor, writer, version: int) -> tuple:
        """An in-place op runs out of place on its first argument, then writes the result into
        it: the latest such op since the tensor's last writer is its writer now (torch's
        ``aten::relu_``)."""
        for op in reversed(self.ops):
            if op is writer:
                break
            if op.inputs and op.inputs[0] is tensor and op.outputs and op.outputs[0].shape == tensor.shape:
                if not op.kind.endswith("_"):
                    op.kind += "_"
                return op, 0, version
        return writer, 0, version  # written through a view, or by nothing recorded: left as it was

    def record_op(self, cls, inputs, params, user_function: bool = False):
        if self._rerun:  # this recorder's own call of the op: run it plainly
            self._rerun = False
            return _function.RUN_UNRECORDED
        if self._depth or threading.get_ident() != self._thread:
            return _function.RUN_UNRECORDED
        sources = [self.source_of(t) for t in _tensors_in(list(inputs))]
        self._depth += 1
        self._rerun = True
        try:
            out = _function.run_intercepted(cls, inputs, params, user_function)
        finally:
            self._rerun = False
            self._depth -= 1
        kind = cls.__name__ if user_function else _op_name(cls)
        op = TracedOp(kind, _tensors_in(list(inputs)), _tensors_in(out), self.scopes[-1] if self.scopes else "",
                      sources=sources)
        self.ops.append(op)
        for slot, tensor in enumerate(op.outputs):
            self._writers[id(tensor)] = (op, slot, tensor._version)
        return out

    # the backward engine reports its nodes to a profiler; a graph trace has no use for them
    def evaluate_function(self, node, previous):
        return None

    def end(self, event) -> None:
        pass


def _scope_names(model) -> dict:
    """Each submodule's scope as torch names it: the model's class, then ``Class[attribute]`` per level."""
    root = type(model).__name__
    names = {}
    for path, module in model.named_modules():
        parts = [root]
        prefix = ""
        for attribute in path.split(".") if path else []:
            prefix = f"{prefix}.{attribute}" if prefix else attribute
            parts.append(f"{type(model.get_submodule(prefix)).__name__}[{attribute}]")
        names.setdefault(id(module), "/".join(parts))
    return names


def _record_forward(model, args: tuple) -> tuple[_OpRecorder, object]:
    """Run ``model(*args)`` once in eval mode under no_grad, recording its ops and their scopes."""
    recorder = _OpRecorder()
    scopes = _scope_names(model)

    # (a forward hook's return value would replace the module's output: these return None)
    def enter(module, _args) -> None:
        recorder.scopes.append(scopes[id(module)])

    def leave(_module, _args, _output) -> None:
        recorder.scopes.pop()

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    was_training = model.training
    previous = _function.active_profiler
    model.train(False)
    _function.active_profiler = recorder
    for switch in recording_switches:  # + - * / take the recorded path, as while profiling
        switch(True)
    try:
        with grad_mode.no_grad():
            output = model(*args)
    finally:
        _function.active_profiler = previous
        if previous is None:
            for switch in recording_switches:
                switch(False)
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return recorder, output


def _input_names(model, count: int) -> list[str]:
    """forward's parameter names for the positional inputs (torch's ``input/x``), else ``input.<i>``."""
    try:
        parameters = [p for p in inspect.signature(model.forward).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        parameters = []
    names = [p.name for p in parameters[:count]]
    if len(names) < count or len(set(names)) < count:
        names = [f"input.{i + 1}" for i in range(count)]
    return names


def _attrs(tensors: list, description: str | None) -> dict:
    attr = {}
    if description is not None:
        attr["attr"] = AttrValue(s=description.encode("utf-8"))
    if tensors:
        attr["_output_shapes"] = AttrValue(list=AttrValue.ListValue(shape=[
            TensorShapeProto(dim=[TensorShapeProto.Dim(size=size) for size in t.shape]) for t in tensors]))
        data_type = _DATA_TYPES.get(str(tensors[0].dtype).rsplit(".", 1)[-1])
        if data_type is not None:
            attr["dtype"] = AttrValue(type=DataType.Value(data_type))
    return attr


def _constant_text(tensor) -> str:
    """torch's attr text of a constant: ``{ value : 2}`` for a number, ``{}`` for a tensor."""
    if tensor.dim() == 0:
        value = tensor.item()
        return "{ value : " + (repr(value) if isinstance(value, float) else str(value)) + "}"
    return "{}"


def _parameter_owners(model, scopes: dict) -> dict:
    """id(parameter or buffer) -> (scope of the module holding it, its attribute name)."""
    owners = {}
    for module in model.modules():
        named = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
        for attribute, tensor in named:
            if tensor is not None:
                owners.setdefault(id(tensor), (scopes[id(module)], attribute))
    return owners


def _mark_used(output_sources: list) -> None:
    """Mark the ops the outputs depend on, walking from the outputs back."""
    pending = [source[0] for source in output_sources if source is not None]
    while pending:
        op = pending.pop()
        if op.used:
            continue
        op.used = True
        pending.extend(source[0] for source in op.sources if source is not None)


def _graph_nodes(model, args: tuple, recorder: _OpRecorder, output) -> tuple[list[NodeDef], list[str]]:
    """The GraphDef nodes of a recorded forward, and its text form (for ``verbose``)."""
    scopes = _scope_names(model)
    root = scopes[id(model)]
    owners = _parameter_owners(model, scopes)
    nodes: list[NodeDef] = []
    text: list[str] = []
    named: dict = {}  # id(tensor) -> the node name of an input, parameter or constant

    inputs = []
    input_nodes = {}
    for name, value in zip(_input_names(model, len(args)), args):
        # an argument holding several tensors (an LSTM's (h, c)) gives each its own node
        tensors = _tensors_in(value)
        names = [name] if isinstance(value, Tensor) else [f"{name}.{k}" for k in range(1, len(tensors) + 1)]
        for tensor, tensor_name in zip(tensors, names):
            if id(tensor) not in input_nodes:
                inputs.append(tensor)
                named[id(tensor)] = f"input/{tensor_name}"
                input_nodes[id(tensor)] = NodeDef(name=f"input/{tensor_name}", op="IO Node",
                                                  attr=_attrs([tensor], ""))

    outputs = _tensors_in(output)
    output_sources = [recorder.source_of(t) for t in outputs]
    _mark_used(output_sources)

    used_ops = [op for op in recorder.ops if op.used]
    for number, op in enumerate(used_ops, 1):
        op.name = f"{op.scope or root}/{op.kind.rsplit('::', 1)[-1]}.{number}"
    referenced_inputs = set()
    constants = 0

    def edge(tensor, source, scope: str) -> str:
        nonlocal constants
        if source is not None:
            op, slot = source
            return op.name if slot == 0 else f"{op.name}:{slot}"
        key = id(tensor)
        if key in input_nodes:
            referenced_inputs.add(key)
            return named[key]
        if key not in named:
            if key in owners:
                owner_scope, attribute = owners[key]
                name = f"{owner_scope}/{attribute}/{attribute}"
                nodes.append(NodeDef(name=name, op="prim::GetAttr",
                                     attr=_attrs([tensor], "{ name :  " + attribute + " }")))
            else:  # made inside forward (zeros, a number turned tensor): a constant of the op's scope
                constants += 1
                name = f"{scope}/constant.{constants}"
                nodes.append(NodeDef(name=name, op="prim::Constant", attr=_attrs([tensor], _constant_text(tensor))))
            named[key] = name
            text.append(f"  %{name} = {nodes[-1].op}()")
        return named[key]

    op_nodes = []
    for op in used_ops:
        scope = op.scope or root
        edges = [edge(t, source, scope) for t, source in zip(op.inputs, op.sources)]
        op_nodes.append(NodeDef(name=op.name, op=op.kind, input=edges, attr=_attrs(op.outputs, "{}")))
        shapes = ", ".join(f"{str(t.dtype).rsplit('.', 1)[-1]}{list(t.shape)}" for t in op.outputs)
        text.append(f"  %{op.name} : {shapes} = {op.kind}({', '.join('%' + e for e in edges)})")
    output_nodes = []
    for number, (tensor, source) in enumerate(zip(outputs, output_sources), 1):
        name = f"output/output.{number}"
        output_nodes.append(NodeDef(name=name, op="IO Node", input=[edge(tensor, source, root)],
                                    attr=_attrs([tensor], "")))
        text.append(f"  return %{output_nodes[-1].input[0]}")
    # an input that nothing reads is left out, as torch's writer leaves it out
    io_inputs = [input_nodes[id(t)] for t in inputs if id(t) in referenced_inputs]
    header = [f"graph({', '.join('%' + n.name for n in io_inputs)}):"]
    return io_inputs + output_nodes + nodes + op_nodes, header + text


_CONTAINER_OUTPUT = (
    "Encountering a {} at the output of the tracer might cause the trace to be incorrect, this is only "
    "valid if the container structure does not change based on the module's inputs. Consider using a "
    "constant container instead (e.g. for `list`, use a `tuple` instead. for `dict`, use a `NamedTuple` "
    "instead). If you absolutely need this and know the side effects, pass strict=False to trace() to "
    "allow this behavior.")


def _trace_error(message: str) -> RuntimeError:
    """The error a failed trace raises; torch's writer prints it and a notice first."""
    print(message)
    print("Error occurs, No graph saved")
    return RuntimeError(message)


def graph(model, input_to_model, verbose: bool = False, use_strict_trace: bool = True):
    """(GraphDef, RunMetadata) of ``model`` run on ``input_to_model`` (a tensor, or a tuple or
    list of the forward's positional arguments), as torch's ``_pytorch_graph.graph`` returns.
    With ``use_strict_trace`` a dict output is refused and a list one warned of, as a strict
    ``torch.jit.trace`` does."""
    if input_to_model is None:
        # torch.jit.trace reads a missing input as missing keyword inputs
        raise _trace_error("example_kwarg_inputs should be a dict")
    args = tuple(input_to_model) if isinstance(input_to_model, (tuple, list)) else (input_to_model,)
    recorder, output = _record_forward(model, args)
    if isinstance(output, (list, dict)) and use_strict_trace:
        container = "list" if isinstance(output, list) else "dict"
        message = _CONTAINER_OUTPUT.format(container)
        if container == "dict":  # a strict trace refuses a dict output and only warns of a list
            raise _trace_error(message)
        warnings.warn(message, stacklevel=3)
    nodes, text = _graph_nodes(model, args, recorder, output)
    if verbose:
        print("\n".join(text))
    run_metadata = RunMetadata(step_stats=StepStats(dev_stats=[DeviceStepStats(device="/device:CPU:0")]))
    return GraphDef(node=nodes, versions=VersionDef(producer=_PRODUCER_VERSION)), run_metadata
