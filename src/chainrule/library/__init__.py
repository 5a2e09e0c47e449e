"""chainrule.library: torch.library, defining new operators in Python.

``custom_op("mylib::foo", mutates_args=())`` turns an annotated function into an operator: its schema
is inferred from the annotations, it is callable directly and as ``torch.ops.mylib.foo`` (and
``.default``), it differentiates through ``register_autograd(backward, setup_context=)`` exactly as
torch's (one node per call, named ``GeneratedBackwardFor_mylib_foo_defaultBackward``), and it takes
per-device kernels (``register_kernel``) and a fake kernel (``register_fake``). The older interface
is here too: ``Library(ns, kind).define(schema)`` / ``.impl(name, fn, dispatch_key)``, ``define``,
``impl``. ``opcheck`` tests an operator (see opcheck.py for what it checks and skips).

What chainrule does not do: no FakeTensor (a fake kernel runs inside opcheck on real tensors, and
as the operator's Meta kernel on meta tensors), no torch.compile, no ``register_torch_dispatch``. ``register_vmap``'s rule runs
when vmap maps the op's inputs directly (see chainrule/_vmap_frames.py); an op called on a tensor
the vmapped function computed runs slice by slice instead.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Sequence

from ..amp import get_autocast_dtype
from ..ops import namespaces
from ..ops.namespaces import OpOverload
from .opcheck import OpCheckError, opcheck
from .operators import (
    ALL_DEVICES_KEYS,
    AUTOGRAD_KEYS,
    BACKEND_KEYS,
    IGNORED_KEYS,
    Operator,
    define_operator,
    device_type_of,
    fallthrough_kernel,
    get_ctx,
    operator_named,
)
from .schema import infer_schema, parse_schema

__all__ = ["CustomOpDef", "Library", "OpCheckError", "OpOverload", "custom_op", "define", "fallthrough_kernel", "get_ctx", "impl",
           "impl_abstract", "infer_schema", "opcheck", "register_autograd", "register_fake", "register_kernel", "register_vmap",
           "register_autocast"]

_LIBRARY_KINDS = ("DEF", "IMPL", "FRAGMENT")
_defining_libraries: dict[str, weakref.ref] = {}  # namespace -> its live "DEF" Library


class CustomOpDef:
    """What ``custom_op`` returns: the operator, callable, with the ``register_*`` methods."""

    def __init__(self, namespace: str, name: str, schema_text: str, fn: Callable) -> None:
        self._namespace, self._name = namespace, name
        self._qualname = f"{namespace}::{name}"
        self._op = operator_named(self._qualname)
        define_operator(self._op, parse_schema(schema_text, name), replace=True)
        self._op.is_custom_op = True
        self._op.custom_op_def = self
        self._op.kernel_module = sys.modules.get(fn.__module__, fn.__module__)
        self._op.kernel_module_name = fn.__module__
        self._init_fn = fn

    @property
    def _schema(self):
        return self._op.schema

    @property
    def _opoverload(self) -> namespaces.OpOverload:
        return self._op.overload_handle

    def __call__(self, *args, **kwargs):
        return self._op(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<CustomOpDef({self._qualname})>"

    def register_kernel(self, device_types, fn: Callable | None = None, /):
        """A kernel for ``device_types`` ("cpu", "cuda", or a list), used for inputs on those devices."""
        return _register_kernel(self._op, device_types, fn)

    def register_fake(self, fn: Callable, /) -> Callable:
        """The fake kernel: says the outputs' shapes and dtypes without computing (opcheck checks it)."""
        self._op.fake = fn
        return fn

    def register_autograd(self, backward: Callable, /, *, setup_context: Callable | None = None) -> None:
        """``backward(ctx, *grads)`` returns one gradient per input (None for non-Tensor inputs);
        ``setup_context(ctx, inputs, output)`` saves what it needs on ``ctx`` after forward."""
        if not _is_functional(self._schema):
            raise RuntimeError(f"Cannot register autograd formula for non-functional operator {self} with schema "
                               f"{self._schema}. Please create a functional operator and register an autograd "
                               "formula for that.")
        _register_autograd(self._op, backward, setup_context)

    def register_autocast(self, device_type: str, cast_inputs) -> None:
        """Inside an autocast region for ``device_type``, the op's floating inputs on that device
        (float64 excepted) are cast to ``cast_inputs`` and the op runs with that autocast off."""
        register_autocast(self, device_type, cast_inputs)

    def register_vmap(self, func: Callable | None = None, /):
        """``func(info, in_dims, *args, **kwargs)`` computes the op on a whole vmap batch and returns
        ``(output, out_dims)``; ``info.batch_size`` and ``info.randomness`` describe the vmap."""
        return register_vmap(self, func)


def custom_op(name: str, fn: Callable | None = None, /, *, mutates_args, device_types=None, schema: str | None = None,
              tags=None):
    """torch.library.custom_op: ``fn`` (annotated) as the operator ``name`` ("namespace::op");
    as a decorator without ``fn``. ``mutates_args`` names the Tensor arguments ``fn`` writes to
    ("unknown" for all); ``device_types`` limits the kernel to those devices; ``schema`` replaces
    the inferred one and must agree with ``mutates_args``."""

    def make(function: Callable) -> CustomOpDef:
        namespace, op_name = name.split("::")
        if schema is None:
            schema_text = infer_schema(function, mutates_args=mutates_args)
        else:
            schema_text = schema
            declared = parse_schema(schema_text, op_name).mutated_arguments
            expected = set() if mutates_args == "unknown" else set(mutates_args)
            if mutates_args != "unknown" and declared != expected:
                raise ValueError(f"Attempted to create a custom op with `mutates_args={mutates_args}` and "
                                 f"`schema={schema_text}. The schema suggests that the op mutates {declared}"
                                 "which is different from what was provided to us in `mutates_args`. Please make "
                                 "these consistent.")
        _check_identifier(namespace, name)
        _check_identifier(op_name.partition(".")[0], name)
        definition = CustomOpDef(namespace, op_name, schema_text, function)
        definition._op.kernels.clear()
        _register_kernel(definition._op, device_types, function)
        return definition

    return make if fn is None else make(fn)


def _check_identifier(part: str, qualname: str) -> None:
    """torch's schema lexer's error for a name part that is no identifier: it reads the name as far
    as it can and names the first token it did not expect."""
    if part.isidentifier():
        return
    start = qualname.find(part)
    if not part or part[0].isdigit():
        raise RuntimeError(f"expected ident but found '{'number' if part else 'eof'}' here:\n{qualname}\n"
                           f"{' ' * start}~ <--- HERE")
    bad = next(i for i, c in enumerate(part) if not (c.isalnum() or c == "_"))
    while bad < len(part) and part[bad].isspace():
        bad += 1
    found = "eof" if bad == len(part) else "ident" if part[bad].isalpha() or part[bad] == "_" else part[bad]
    raise RuntimeError(f"expected eof but found '{found}' here:\n{qualname}\n{' ' * (start + bad)}~ <--- HERE")


def _register_kernel(op: Operator, device_types, fn: Callable | None):
    kinds = [None] if device_types is None else [
        device_type_of(d) for d in ([device_types] if isinstance(device_types, str) else device_types)]

    def register(function: Callable) -> Callable:
        for kind in kinds:
            op.kernels[kind] = function
        return function

    return register if fn is None else register(fn)


def _is_functional(schema) -> bool:
    """torch's test before an autograd formula is taken: the op writes no argument, returns
    something, and returns no view of an argument."""
    return not schema.mutated_arguments and bool(schema.returns) and all(r.alias is None for r in schema.returns)


def _register_autograd(op: Operator, backward: Callable, setup_context: Callable | None) -> None:
    op.backward = backward
    op.setup_context = setup_context
    op._function_cls = None


def _operator_of(op) -> Operator:
    """The Operator behind a qualified name, a CustomOpDef, or an OpOverload (packet)."""
    if isinstance(op, CustomOpDef):
        return op._op
    if isinstance(op, namespaces.OpOverloadPacket):
        op = op.default
    if isinstance(op, namespaces.OpOverload):
        label = "" if op._overloadname == "default" else op._overloadname
        return operator_named(f"{op.namespace}::{op._op_name}" + (f".{label}" if label else ""))
    if not isinstance(op, str):
        raise ValueError(f"register_*(op): expected op to be a string, OpOverload or CustomOpDef, got {type(op)}")
    found = operator_named(op)
    if found.schema is None:
        namespace, name = op.split("::")
        raise AttributeError(f"'_OpNamespace' '{namespace}' object has no attribute '{name.partition('.')[0]}'")
    return found


def register_fake(op, func: Callable | None = None, /, *, lib=None, _stacklevel: int = 1, allow_override: bool = True):
    """torch.library.register_fake: the fake kernel of ``op`` (a name, OpOverload or CustomOpDef)."""
    if isinstance(op, str) and operator_named(op).schema is None:
        raise RuntimeError(f"operator {op} does not exist")
    operator = _operator_of(op)

    def register(function: Callable) -> Callable:
        operator.fake = function
        return function

    return register if func is None else register(func)


impl_abstract = register_fake  # torch's name for it before 2.4, still exported


def register_autograd(op, backward: Callable, /, *, setup_context: Callable | None = None, lib=None) -> None:
    """torch.library.register_autograd: ``op``'s backward formula (see CustomOpDef.register_autograd)."""
    if not callable(backward):
        raise TypeError(f"register_autograd: expected backward to be callable, got {type(backward).__name__}")
    operator = _operator_of(op)
    if operator.custom_op_def is not None:
        operator.custom_op_def.register_autograd(backward, setup_context=setup_context)
        return
    if not _is_functional(operator.schema):
        raise RuntimeError(f"Cannot register autograd formula for non-functional operator {operator.dotted} with "
                           f"schema {operator.schema}. Please create a functional operator and register an autograd "
                           "formula for that.")
    _register_autograd(operator, backward, setup_context)


def register_vmap(op, func: Callable | None = None, /, *, lib=None):
    """torch.library.register_vmap: ``op``'s batching rule under vmap (see CustomOpDef.register_vmap)."""
    operator = _operator_of(op)

    def register(function: Callable) -> Callable:
        operator.vmap_rule = function
        return function

    return register if func is None else register(func)


def register_autocast(op, device_type: str, cast_inputs, /, *, lib=None) -> None:
    """torch.library.register_autocast: ``op``'s autocast rule for ``device_type`` (see
    CustomOpDef.register_autocast); the first registration for a device stays, as torch's."""
    operator = _operator_of(op)
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    device_type_of(device_type)  # torch's RuntimeError for a name that is no device type
    if not _has_autocast(device_type):
        raise ValueError(f"Device type '{device_type}' does not support autocast.")
    operator.autocast_dtypes.setdefault(device_type, cast_inputs)


def _has_autocast(device_type: str) -> bool:
    """Whether torch has an autocast for ``device_type`` (cpu, cuda, and devices chainrule does not
    run on, such as mps or hpu: a rule registered for those never fires here)."""
    try:
        get_autocast_dtype(device_type)
    except (RuntimeError, ValueError):
        return False
    return True


def register_kernel(op, device_types, func: Callable | None = None, /, *, lib=None):
    """torch.library.register_kernel: ``op``'s kernel for ``device_types`` (an operator not yet
    defined takes it too, as torch's)."""
    return _register_kernel(operator_named(op) if isinstance(op, str) else _operator_of(op), device_types, func)


def define(qualname: str, schema: str, *, lib=None, tags=()) -> None:
    """torch.library.define: a new operator ``qualname`` ("mylib::foo") with the nameless ``schema``
    ("(Tensor x) -> Tensor"); kernels come from ``impl``."""
    namespace, name = qualname.split("::")
    define_operator(operator_named(qualname), parse_schema(schema, name))


def _install(op: Operator, dispatch_key: str, fn: Callable) -> None:
    if dispatch_key in ("", "CompositeImplicitAutograd"):
        op.composite_implicit = fn
    elif dispatch_key in ALL_DEVICES_KEYS:
        op.kernels[None] = fn
    elif dispatch_key in AUTOGRAD_KEYS:
        op.autograd_kernel = fn
    elif dispatch_key == "Meta":
        op.fake = fn
    elif dispatch_key in BACKEND_KEYS:
        op.kernels[BACKEND_KEYS[dispatch_key]] = fn
    elif dispatch_key not in IGNORED_KEYS:
        raise RuntimeError(f"could not parse dispatch key: {dispatch_key}")


def _uninstall(op: Operator, dispatch_key: str, fn: Callable) -> None:
    """Take back what ``_install`` put there, unless something else has replaced it since."""
    slots = {"": "composite_implicit", "CompositeImplicitAutograd": "composite_implicit", "Meta": "fake",
             **dict.fromkeys(AUTOGRAD_KEYS, "autograd_kernel")}
    if dispatch_key in slots:
        if getattr(op, slots[dispatch_key]) is fn:
            setattr(op, slots[dispatch_key], None)
        return
    device_kind = None if dispatch_key in ALL_DEVICES_KEYS else BACKEND_KEYS.get(dispatch_key)
    if op.kernels.get(device_kind) is fn:
        del op.kernels[device_kind]


def impl(qualname: str, types, func: Callable | None = None, *, lib=None):
    """torch.library.impl: ``func`` as ``qualname``'s kernel for ``types``: device types ("cpu",
    "cuda"), "default" (every device), or a dispatch key ("CPU", "CompositeImplicitAutograd", ...)."""
    keys = [types] if isinstance(types, str) else list(types)
    operator = operator_named(qualname)

    def register(function: Callable) -> Callable:
        for key in keys:
            if key in BACKEND_KEYS.values() and key not in BACKEND_KEYS:
                operator.kernels[device_type_of(key)] = function
            else:
                _install(operator, key, function)
        return function

    return register if func is None else register(func)


class Library:
    """torch.library.Library(ns, kind): "DEF" defines the namespace's operators (one such library per
    namespace at a time), "IMPL" adds kernels, "FRAGMENT" both."""

    def __init__(self, ns: str, kind: str, dispatch_key: str = "") -> None:
        if kind not in _LIBRARY_KINDS:
            raise ValueError(f"Unsupported kind: {kind}")
        if kind == "DEF" and ns in _defining_libraries and _defining_libraries[ns]() is not None:
            raise RuntimeError(f"Only a single TORCH_LIBRARY can be used to register the namespace {ns}; please put "
                               "all of your definitions in a single TORCH_LIBRARY block.  If you were trying to "
                               "specify implementations, consider using TORCH_LIBRARY_IMPL (which can be "
                               "duplicated).  If you really intended to define operators for a single namespace in "
                               "a distributed way, you can use TORCH_LIBRARY_FRAGMENT to explicitly indicate this.")
        self.ns, self.kind, self.dispatch_key = ns, kind, dispatch_key
        self._defined: list[Operator] = []
        self._installed: list[tuple[Operator, str, Callable]] = []
        if kind == "DEF":
            _defining_libraries[ns] = weakref.ref(self)
        # as torch's: what a library defined goes away with it (a notebook cell run twice redefines)
        self._finalizer = weakref.finalize(self, _undefine, ns, self._defined, self._installed)

    def __repr__(self) -> str:
        return f"Library(kind={self.kind}, ns={self.ns}, dispatch_key={self.dispatch_key})>"

    def define(self, schema: str, alias_analysis: str = "", *, tags=()) -> str:
        """Define an operator of this namespace from its schema ("foo(Tensor x) -> Tensor"); returns
        its name."""
        parsed = parse_schema(schema)
        suffix = f".{parsed.overload_name}" if parsed.overload_name else ""
        operator = operator_named(f"{self.ns}::{parsed.name}{suffix}")
        define_operator(operator, parsed)
        self._defined.append(operator)
        return parsed.name

    def impl(self, op_name, fn: Callable, dispatch_key: str = "", *, with_keyset: bool = False,
             allow_override: bool = True) -> None:
        """``fn`` as the kernel of ``op_name`` (this namespace's "foo" or "foo.overload", or an
        OpOverload) under ``dispatch_key`` (the library's own when empty)."""
        if with_keyset:
            raise NotImplementedError("Library.impl(..., with_keyset=True): chainrule has no dispatch key sets to pass "
                                      "the kernel (nor a redispatch for it to call); register the kernel without it")
        if isinstance(op_name, namespaces.OpOverload):
            operator = _operator_of(op_name)
        else:
            operator = operator_named(f"{self.ns}::{op_name}")
        _install(operator, dispatch_key or self.dispatch_key, fn)
        self._installed.append((operator, dispatch_key or self.dispatch_key, fn))

    def _destroy(self) -> None:
        """Undo this library's definitions now (torch does it when the library is garbage collected)."""
        self._finalizer()


def _undefine(ns: str, defined: list[Operator], installed: list) -> None:
    for operator in defined:
        namespaces.unregister_overload(operator.namespace, operator.name, operator.overload_handle._overloadname)
        operator.schema = None
    for operator, dispatch_key, fn in installed:
        _uninstall(operator, dispatch_key, fn)
    claim = _defining_libraries.get(ns)
    library = None if claim is None else claim()
    if claim is not None and (library is None or library._defined is defined):
        del _defining_libraries[ns]


# torch's alias for the ``device_types`` argument's type, named in annotations
device_types_t = str | Sequence[str] | None


def _load_torchvision_ops() -> None:
    """torchvision's compiled ``_C``: its operators, defined in Python (torchvision_ops.py)."""
    from . import torchvision_ops  # noqa: F401  (defining the operators is what importing it does)


namespaces._python_stand_ins[("torchvision", "_C")] = _load_torchvision_ops
