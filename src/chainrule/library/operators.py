"""The operators chainrule.library defines: one ``Operator`` per overload, holding its schema, its
kernels by device, its fake kernel and its autograd formula, and the call path torch's dispatcher
takes through them (bind the arguments, pick the kernel by the inputs' device, record a node when
an input requires grad)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from .._backend import device
from ..autograd import Function
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..ops import namespaces
from ..tensor import Tensor
from .schema import FunctionSchema, bind

__all__ = ["Operator", "lookup", "operator_named", "define_operator"]

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
        if self.composite_implicit is not None:
            return self._run(self.composite_implicit, values)
        if self.autograd_kernel is not None and self.autograd_kernel is not fallthrough_kernel:
            return self._run(self.autograd_kernel, values)
        kernel = self._backend_kernel(values)
        wants_grad = is_grad_enabled() and any(t.requires_grad for t in _tensors_in(values))
        if wants_grad and (self.backward is not None or self.is_custom_op):
            out = self._autograd_function().apply(*values)
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
        return kernel(*positional, **keywords)

    def _backend_kernel(self, values: list) -> Callable:
        tensors = _tensors_in(values)
        kind = tensors[0].device.type if tensors else "cpu"
        kernel = self.kernels.get(kind, self.kernels.get(None))
        if kernel is None or kernel is fallthrough_kernel:
            available = sorted(_BACKEND_NAMES.get(k, k) for k in self.kernels if k is not None)
            raise NotImplementedError(
                f"Could not run '{self.qualname}' with arguments from the '{_BACKEND_NAMES.get(kind, kind)}' "
                "backend. This could be because the operator doesn't exist for this backend, or was omitted during "
                f"the selective/custom build process (if using custom build). '{self.qualname}' is only available "
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

    # ---- autograd: one Function per operator, its node named as torch's
    def _autograd_function(self) -> type:
        if self._function_cls is None:
            self._function_cls = _make_function(self)
        return self._function_cls


def _make_function(op: Operator) -> type:
    node_label = f"GeneratedBackwardFor_{op.namespace}_{op.name}_{op.overload_handle._overloadname}"
    input_count = len(op.schema.arguments)

    def forward(*values):
        return op._run(op._backend_kernel(list(values)), list(values))

    def setup_context(ctx, inputs, output):
        ctx._tensor_inputs = tuple(isinstance(v, Tensor) for v in inputs)
        if op.setup_context is not None:
            op.setup_context(ctx, inputs, output)

    def backward(ctx, *grads):
        if op.backward is None:
            raise RuntimeError(f"Trying to backward through {op.dotted} but no autograd formula was registered. "
                               "Please use register_autograd to add one.")
        result = op.backward(ctx, *grads)
        result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
        if len(result) != input_count:
            raise RuntimeError(f"function {node_label}Backward returned an incorrect number of gradients (expected "
                               f"{input_count}, got {len(result)})")
        for position, (grad, is_tensor) in enumerate(zip(result, ctx._tensor_inputs), start=1):
            if grad is not None and not is_tensor:
                raise RuntimeError(f"function {node_label}Backward returned a gradient different than None at "
                                   f"position {position}, but the corresponding forward input was not a Variable")
        return result

    # the backward that runs is the user's: the node class lives in the user's module, as a custom
    # Function's does (its ctx then offers saved_tensors, and the explainer says whose rule it is)
    namespace = {"forward": staticmethod(forward), "setup_context": staticmethod(setup_context),
                 "backward": staticmethod(backward), "__module__": op.kernel_module_name or "__main__"}
    return type(node_label, (Function,), namespace)


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
