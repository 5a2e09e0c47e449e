"""The operators chainrule.library defines: one ``Operator`` per overload, holding its schema, its
kernels by device, its fake kernel and its autograd formula, and the call path torch's dispatcher
takes through them (bind the arguments, pick the kernel by the inputs' device, record a node when
an input requires grad)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from .. import _vmap_frames, amp
from .._backend import device
from .._dtype import float64 as _float64
from ..autograd import Function
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..ops import namespaces
from ..tensor import Tensor
from .schema import FunctionSchema, bind

__all__ = ["Operator", "lookup", "operator_named", "define_operator", "get_ctx"]

# dispatch keys torch's Library.impl and library.impl accept, by what chainrule does with each
BACKEND_KEYS = {"CPU": "cpu", "CUDA": "cuda", "Meta": "meta", "MPS": "mps", "XPU": "xpu", "XLA": "xla",
                "HIP": "hip", "PrivateUse1": "privateuseone"}
ALL_DEVICES_KEYS = {"CompositeExplicitAutograd", "default"}
AUTOGRAD_KEYS = {"Autograd", "AutogradCPU", "AutogradCUDA"}
IGNORED_KEYS = {"Python", "Functionalize", "ADInplaceOrView", "BackendSelect", "Autocast", "AutocastCPU",
                "AutocastCUDA", "AutocastXPU", "AutocastMPS", "AutocastHPU", "AutocastPrivateUse1", "FuncTorchBatched", "FuncTorchDynamicLayerBackMode", "Conjugate", "Negative",
                "ZeroTensor", "SparseCPU", "SparseCUDA"}
_BACKEND_NAMES = {"cpu": "CPU", "cuda": "CUDA", "meta": "Meta", "mps": "MPS", "xpu": "XPU"}

_operators: dict[tuple[str, str, str], Operator] = {}

# the get_ctx() of each fake kernel now running, innermost last (opcheck's and the meta calls')
fake_kernel_contexts: list = []


def get_ctx():
    """torch.library.get_ctx: the context of the fake kernel now running (None outside one)."""
    return fake_kernel_contexts[-1] if fake_kernel_contexts else None


class MetaKernelCtx:
    """get_ctx() of a fake kernel run on meta tensors: a meta tensor has no data to size an
    output by, so asking for a data-dependent size raises torch's error."""

    def __init__(self, op: Operator) -> None:
        self._op = op

    def new_dynamic_size(self, *, min: int = 0, max: int | None = None):
        # torch names where the operator was defined (the custom op's function), else the fake kernel
        definition = self._op.custom_op_def
        code = getattr(definition._init_fn if definition is not None else self._op.fake, "__code__", None)
        where = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
        raise RuntimeError(
            f"{self._op.qualname}{where}: You're trying to run this operator with meta Tensors (as opposed to "
            "FakeTensors), but this operator may return an output Tensor with data-dependent shape. Meta Tensors "
            "don't support operators with outputs that have data-dependent shapes but FakeTensors do. If your "
            "operator does not return an output with data-dependent shape, make sure the FakeTensor and/or meta "
            "kernel does not call torch.library.get_ctx(). Otherwise, please use FakeTensors.")

    create_unbacked_symint = new_dynamic_size


def fallthrough_kernel():
    """torch.library.fallthrough_kernel: registered to a dispatch key, it lets calls go on to the
    next key; never called itself."""
    raise NotImplementedError("fallthrough_kernel() should never be called.")


class Operator:
    """One overload of a library-defined operator and everything registered for it."""

    def __init__(self, namespace: str, name: str, overload: str) -> None:
        self.namespace, self.name, self.overload = namespace, name, overload
        self.schema: FunctionSchema | None = None
        self.kernels: dict[str | None, Callable] = {}  # device type, None for every device
        self.composite_implicit: Callable | None = None  # differentiable by itself: runs recorded
        self.autograd_kernel: Callable | None = None  # handles autograd itself (the Autograd key)
        self.fake: Callable | None = None
        self.backward: Callable | None = None
        self.setup_context: Callable | None = None
        self.vmap_rule: Callable | None = None  # register_vmap's rule(info, in_dims, *args, **kwargs)
        self.autocast_dtypes: dict[str, object] = {}  # register_autocast: device type -> the dtype inputs take
        self.is_custom_op = False  # custom_op's ops: autograd through register_autograd only
        self.custom_op_def = None  # the CustomOpDef, for torch's messages that name it
        self.kernel_module = None  # the module of the custom op's function (torch's alias error names it)
        self.kernel_module_name: str | None = None
        self._function_cls: type | None = None
        label = "default" if overload in ("", "default") else overload
        self.overload_handle = namespaces.OpOverload(namespace, name, label, self.__call__)

    @property
    def qualname(self) -> str:
        return f"{self.namespace}::{self.name}"

    @property
    def dotted(self) -> str:
        return f"{self.namespace}.{self.name}.{self.overload_handle._overloadname}"

    # ---- the call
    def __call__(self, *args, **kwargs):
        if self.schema is None:
            raise RuntimeError(f"{self.qualname}: no schema was defined for this operator")
        values = bind(self.schema, args, kwargs)
        if self.autocast_dtypes:
            autocast_device = self._autocast_device(values)
            if autocast_device is not None:
                return self._run_autocast(autocast_device, values)
        if self.vmap_rule is not None and _vmap_frames.current() is not None:
            batched = _run_vmap_rule(self, _vmap_frames.current(), values)
            if batched is not _NOT_BATCHED:
                return batched
        if self.composite_implicit is not None:
            return self._run(self.composite_implicit, values)
        if self.autograd_kernel is not None and self.autograd_kernel is not fallthrough_kernel:
            return self._run(self.autograd_kernel, values)
        kernel = self._backend_kernel(values)
        wants_grad = is_grad_enabled() and any(t.requires_grad for t in _tensors_in(values))
        if wants_grad and (self.backward is not None or self.is_custom_op):
            out = self._apply_recorded(values)
        elif wants_grad and self.autograd_kernel is None:
            # torch runs the kernel with autograd on and warns (at backward) that nothing was registered
            warnings.warn(f"{self.qualname}: an autograd kernel was not registered to the Autograd key(s) but we "
                          "are trying to backprop through it. This may lead to silently incorrect behavior. This "
                          "behavior is deprecated and will be removed in a future version of PyTorch. If your "
                          "operator is differentiable, please ensure you have registered an autograd kernel to the "
                          "correct Autograd key (e.g. DispatchKey::Autograd, "
                          "DispatchKey::CompositeImplicitAutograd).", UserWarning, stacklevel=2)
            out = self._run(kernel, values)
        elif self.is_custom_op:
            with no_grad():  # a custom op's kernel runs below autograd: it records nothing itself
                out = self._run(kernel, values)
        else:
            out = self._run(kernel, values)
        if self.is_custom_op:
            self._check_no_alias(values, out)
        return out

    def _run(self, kernel: Callable, values: list):
        arguments = self.schema.arguments
        positional = [v for v, a in zip(values, arguments) if not a.kwarg_only]
        keywords = {a.name: v for v, a in zip(values, arguments) if a.kwarg_only}
        if not self.is_custom_op:
            # as torch's dispatcher calls a Python kernel: trailing arguments equal to their defaults
            # and keyword arguments left at their defaults are not passed
            defaults = [a for a in arguments if not a.kwarg_only]
            while positional and _is_default(positional[-1], defaults[len(positional) - 1]):
                positional.pop()
            keywords = {k: v for k, v in keywords.items()
                        if not _is_default(v, next(a for a in arguments if a.name == k))}
        if _vmap_frames._frames:  # a kernel runs below vmap, as torch's: it may read its tensors' values
            with _vmap_frames.reads_allowed():
                return kernel(*positional, **keywords)
        return kernel(*positional, **keywords)

    def _backend_kernel(self, values: list) -> Callable:
        tensors = _tensors_in(values)
        kind = tensors[0].device.type if tensors else "cpu"
        if kind == "meta" and "meta" not in self.kernels and self.fake is not None:
            # as torch's register_fake: the fake kernel is the operator's Meta kernel too
            return self._meta_kernel
        kernel = self.kernels.get(kind, self.kernels.get(None))
        if kernel is None or kernel is fallthrough_kernel:
            available = sorted(_BACKEND_NAMES.get(k, k) for k in self.kernels if k is not None)
            raise NotImplementedError(
                f"Could not run '{self.qualname}' with arguments from the '{_BACKEND_NAMES.get(kind, kind)}' "
                "backend. This could be because the operator doesn't exist for this backend, or was omitted during "
                "the selective/custom build process (if using custom build). If you are a Facebook employee using "
                "PyTorch on mobile, please visit https://fburl.com/ptmfixes for possible resolutions. "
                f"'{self.qualname}' is only available "
                f"for these backends: [{', '.join(available)}].")
        return kernel

    def _check_no_alias(self, values: list, out) -> None:
        inputs = _tensors_in(values)
        outputs = _tensors_in(out if isinstance(out, (tuple, list)) else [out])
        for i, result in enumerate(outputs):
            others = inputs + outputs[:i]
            if any(result is other or _share_memory(result, other) for other in others):
                raise RuntimeError(
                    f"{self.name} (with implementation in {self.kernel_module}): The output of this custom operator "
                    "(1) must not also be an input to this custom operator and (2) may not alias any inputs to this "
                    "custom operator or other returns. The most common way to trigger this error is if we have y = "
                    "custom_op(x) and y and x are the same Tensor. Please instead return a clone of the offending "
                    "output tensor(s) (e.g. return x.clone()) or refactor the custom operator to not return y.")

    # ---- register_autocast: inputs cast, then the op runs with that device's autocast off
    def _autocast_device(self, values: list) -> str | None:
        tensors = _tensors_in(values)
        kind = tensors[0].device.type if tensors else "cpu"
        return kind if kind in self.autocast_dtypes and amp.is_autocast_enabled(kind) else None

    def _run_autocast(self, device_type: str, values: list):
        keywords = [a.name for a in self.schema.arguments if a.kwarg_only]
        if keywords:  # torch's dispatcher hands keyword-only arguments to its autocast kernel as kwargs
            raise AssertionError(f"Custom ops do not support kwargs yet, got {keywords}")
        dtype = self.autocast_dtypes[device_type]
        with amp.autocast(device_type, enabled=False):
            return self(*(_cast_for_autocast(v, device_type, dtype) for v in values))

    # ---- the fake kernel on meta tensors
    def _meta_kernel(self, *args, **kwargs):
        fake_kernel_contexts.append(MetaKernelCtx(self))
        try:
            return self.fake(*args, **kwargs)
        finally:
            fake_kernel_contexts.pop()

    # ---- autograd: one Function per operator, its node named as torch's
    def _autograd_function(self) -> type:
        if self._function_cls is None:
            self._function_cls = _make_function(self)
        return self._function_cls

    def _apply_recorded(self, values: list):
        """The call recorded as one node. A Tensor[] argument's tensors are inputs of the node each
        (each gets its gradient edge) and a Tensor[] output's tensors its outputs, as torch's
        ``supports_tensorlist``; the user's setup_context and backward see the lists."""
        layout = _CallLayout(values)
        flat = self._autograd_function().apply(*layout.flatten(values), layout)  # last, as torch's metadata
        return _unflatten_output(list(flat) if layout.output_spec is not None else [flat], layout.output_spec)


class _CallLayout:
    """How one call's arguments and outputs were laid flat for the autograd Function."""

    def __init__(self, values: list) -> None:
        self.lengths = [len(v) if _is_tensor_list(v) else None for v in values]
        self.output_spec = None  # set by forward: None for a single output, else _flatten_output's spec

    def flatten(self, values: list) -> list:
        flat = []
        for value, length in zip(values, self.lengths):
            flat.extend(value) if length is not None else flat.append(value)
        return flat

    def unflatten(self, flat) -> list:
        values, at = [], 0
        for length in self.lengths:
            if length is None:
                values.append(flat[at])
                at += 1
            else:
                values.append(list(flat[at:at + length]))
                at += length
        return values


def _cast_for_autocast(value, device_type: str, dtype):
    """torch's register_autocast cast: floating tensors on the device, float64 excepted, to ``dtype``."""
    if isinstance(value, Tensor):
        eligible = value.is_floating_point() and value.device.type == device_type and value.dtype != _float64
        return value.to(dtype) if eligible else value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_for_autocast(v, device_type, dtype) for v in value)
    return value


def _is_tensor_list(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, Tensor) for v in value)


def _flatten_output(out) -> tuple[list, object]:
    """A kernel's result as flat items and the spec to rebuild it (None: the result is one item)."""
    if isinstance(out, (tuple, list)):
        flat, specs = [], []
        for item in out:
            items, spec = _flatten_output(item)
            flat.extend(items)
            specs.append(spec)
        return flat, (type(out), specs)
    return [out], None


def _unflatten_output(flat: list, spec):
    items = iter(flat)

    def build(spec):
        if spec is None:
            return next(items)
        kind, parts = spec
        return kind(build(part) for part in parts)

    return build(spec)


def _make_function(op: Operator) -> type:
    node_label = f"GeneratedBackwardFor_{op.namespace}_{op.name}_{op.overload_handle._overloadname}"
    keyword_only = [a.kwarg_only for a in op.schema.arguments]
    positional_count = keyword_only.count(False)

    def forward(*flat_and_layout):
        *flat, layout = flat_and_layout
        values = layout.unflatten(flat)
        out = op._run(op._backend_kernel(values), values)
        items, layout.output_spec = _flatten_output(out)
        return out if layout.output_spec is None else tuple(items)

    def setup_context(ctx, inputs, output):
        layout = inputs[-1]
        ctx._call_layout = layout
        ctx._tensor_inputs = tuple(isinstance(v, Tensor) for v in inputs)
        if op.setup_context is None:
            return
        values = layout.unflatten(inputs[:-1])
        result = _unflatten_output(list(output) if layout.output_spec is not None else [output], layout.output_spec)
        positional = tuple(v for v, k in zip(values, keyword_only) if not k)
        if any(keyword_only):  # torch passes the keyword-only arguments apart, by keyword
            keywords = {a.name: v for v, a in zip(values, op.schema.arguments) if a.kwarg_only}
            op.setup_context(ctx=ctx, inputs=positional, keyword_only_inputs=keywords, output=result)
        else:
            op.setup_context(ctx=ctx, inputs=positional, output=result)

    def backward(ctx, *grads):
        if op.backward is None:
            raise RuntimeError(f"Trying to backward through {op.dotted} but no autograd formula was registered. "
                               "Please use register_autograd to add one.")
        layout = ctx._call_layout
        grad_outputs = _unflatten_output(list(grads), layout.output_spec)
        if layout.output_spec is not None and layout.output_spec[0] is tuple:
            grad_outputs = tuple(grad_outputs)
        else:
            grad_outputs = (grad_outputs,)
        flat_needs = ctx.needs_input_grad
        needs = layout.unflatten(flat_needs[:-1])
        ctx.needs_input_grad = tuple(n for n, k in zip(needs, keyword_only) if not k)
        try:
            result = op.backward(ctx, *grad_outputs)
        finally:
            ctx.needs_input_grad = flat_needs
        # as torch's: a tuple is one gradient per argument (anything else the one gradient), the
        # metadata input torch adds takes a None, and trailing Nones beyond the inputs are dropped
        result = (*result, None) if isinstance(result, tuple) else (result, None)
        expected = positional_count + 1
        if len(result) > expected and all(grad is None for grad in result[expected:]):
            result = result[:expected]
        if len(result) != expected:
            raise RuntimeError(f"function {node_label}Backward returned an incorrect number of gradients (expected "
                               f"{expected}, got {len(result)})")
        if result[-1] is not None:
            raise RuntimeError(f"function {node_label}Backward returned a gradient different than None at position "
                               f"{expected}, but the corresponding forward input was not a Variable")
        given = iter(result[:-1])
        flat_result = []
        for length, is_keyword in zip(layout.lengths, keyword_only):
            grad = None if is_keyword else next(given)
            if length is None:
                flat_result.append(grad)
            elif grad is None:
                flat_result.extend([None] * length)
            elif not isinstance(grad, (list, tuple)) or len(grad) != length:
                raise RuntimeError(f"Expected the return from backward to be of the same structure as the inputs: "
                                   f"a list of {length} gradients for a Tensor[] input, got {grad!r}")
            else:
                flat_result.extend(grad)
        for position, (grad, is_tensor) in enumerate(zip(flat_result, ctx._tensor_inputs), start=1):
            if grad is not None and not is_tensor:
                raise RuntimeError(f"function {node_label}Backward returned a gradient different than None at "
                                   f"position {position}, but the corresponding forward input was not a Variable")
        return (*flat_result, None)  # none for the layout

    # the backward that runs is the user's: the node class lives in the user's module, as a custom
    # Function's does (its ctx then offers saved_tensors, and the explainer says whose rule it is)
    # generate_vmap_rule: under torch.func.vmap the operator answers for itself (its register_vmap
    # rule, else per slice), so the Function's own "no vmap support" refusal must not fire; answers_vmap_itself
    # keeps vmap's record from replaying it (its kernels may leave chainrule for NumPy, and the operators its
    # backward calls run their kernels unrecorded: a replay would reuse slice 0's results for every slice)
    namespace = {"forward": staticmethod(forward), "setup_context": staticmethod(setup_context),
                 "backward": staticmethod(backward), "__module__": op.kernel_module_name or "__main__",
                 "generate_vmap_rule": True, "answers_vmap_itself": True}
    return type(node_label, (Function,), namespace)


# ---- vmap through the operator's own rule (register_vmap)
_NOT_BATCHED = object()


class VmapInfo:
    """The ``info`` a vmap rule is given: the batch size and vmap's randomness."""

    def __init__(self, batch_size: int, randomness: str) -> None:
        self.batch_size, self.randomness = batch_size, randomness


def _run_vmap_rule(op: Operator, frame, values: list):
    """Slice ``frame.index`` of the rule's result for the whole batch, when every tensor argument is
    a slice vmap cut (or an input it passes unmapped) and one at least is a slice; the rule runs
    once per vmap and call, its result kept in the frame. Else _NOT_BATCHED: the call runs on the
    slice as any other (what torch's vmap does for a tensor the function made itself)."""
    batched, in_dims, key, mapped = [], [], [id(op)], False
    for value in values:
        if isinstance(value, Tensor) or _is_tensor_list(value):
            is_list = not isinstance(value, Tensor)
            origins = [frame.origin(t) for t in (value if is_list else [value])]
            if any(o is None for o in origins):
                return _NOT_BATCHED
            mapped = mapped or any(dim is not None for _, dim in origins)
            sources, dims = [o[0] for o in origins], [o[1] for o in origins]
            batched.append(sources if is_list else sources[0])
            in_dims.append(dims if is_list else dims[0])
            key.append(tuple((id(s), d) for s, d in origins))
        else:
            batched.append(value)
            in_dims.append(None)
            key.append(repr(value))
    if not mapped:
        return _NOT_BATCHED
    key = tuple(key)
    if key not in frame.batched_results:
        arguments = op.schema.arguments
        positional = [v for v, a in zip(batched, arguments) if not a.kwarg_only]
        keywords = {a.name: v for v, a in zip(batched, arguments) if a.kwarg_only}
        dims = tuple(d for d, a in zip(in_dims, arguments) if not a.kwarg_only)
        with _vmap_frames.reads_allowed():  # the rule runs below vmap, on whole batches, as torch's
            frame.batched_results[key] = op.vmap_rule(VmapInfo(frame.batch_size, frame.randomness), dims,
                                                      *positional, **keywords)
    result, out_dims = frame.batched_results[key]
    return _slice_of(frame, result, out_dims)


def _slice_of(frame, result, out_dims):
    """This slice's part of a rule's batched result along its out_dims (one for all, or per output)."""
    if isinstance(result, (tuple, list)):
        dims = out_dims if isinstance(out_dims, (tuple, list)) else [out_dims] * len(result)
        if len(dims) != len(result):
            raise ValueError(f"vmap: the vmap rule returned {len(result)} outputs but out_dims {out_dims!r}")
        return type(result)(_slice_of(frame, r, d) for r, d in zip(result, dims))
    if isinstance(result, Tensor) and out_dims is not None:
        return frame.part(result, out_dims, frame.index)
    return result


def _is_default(value, argument) -> bool:
    default = argument.default_value
    return argument.has_default_value() and not isinstance(value, Tensor) and type(value) is type(default) \
        and value == default


def _tensors_in(values) -> list:
    found = []
    for value in values:
        if isinstance(value, Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, Tensor))
    return found


def _share_memory(a: Tensor, b: Tensor) -> bool:
    data_a, data_b = a._data, b._data
    if isinstance(data_a, np.ndarray) and isinstance(data_b, np.ndarray):
        return data_a.size > 0 and np.may_share_memory(data_a, data_b)
    return False


def lookup(namespace: str, name: str, overload: str = "") -> Operator:
    """The operator of that name, made (with no schema yet) if it is not there: torch lets an
    ``impl`` come before its ``define``."""
    key = (namespace, name, overload)
    if key not in _operators:
        _operators[key] = Operator(namespace, name, overload)
    return _operators[key]


def operator_named(qualname: str) -> Operator:
    """``"mylib::foo"`` or ``"mylib::foo.out"`` as its Operator (made when new)."""
    namespace, name = qualname.split("::")
    name, _, overload = name.partition(".")
    return lookup(namespace, name, overload)


def define_operator(op: Operator, schema: FunctionSchema, *, replace: bool = False) -> None:
    """Give ``op`` its schema and make it reachable as torch.ops.<namespace>.<name>.<overload>."""
    if op.schema is not None and not replace:
        raise RuntimeError(f"Tried to register an operator ({op.namespace}::{schema}) with the same name and "
                           "overload name multiple times. Each overload's schema should only be registered with a "
                           "single call to def().")
    op.schema = FunctionSchema(op.qualname, schema.overload_name, schema.arguments, schema.returns)
    op.overload_handle._schema = op.schema
    op._function_cls = None
    namespaces.register_overload(op.overload_handle)


def device_type_of(name: str) -> str:
    """A device type from torch.library's ``device_types`` ("cpu", "cuda"), with torch's error."""
    return device(name).type
