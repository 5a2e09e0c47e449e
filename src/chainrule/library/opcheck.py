"""torch.library.opcheck: test that a library-defined operator is registered correctly.

Each test torch names is run here, as chainrule can:

* ``test_schema``: the op runs on copies of the arguments; an argument it changes must be declared
  mutable in the schema, and (custom ops) no output may alias an input.
* ``test_autograd_registration``: where a floating-point Tensor argument requires grad and the op
  mutates nothing, the registered backward is compared with central finite differences in float64
  (``gradcheck`` on float64 copies of those arguments). torch checks only that a formula is
  registered; this catches a wrong formula too, and a missing one fails here with torch's message.
* ``test_faketensor``: a fake kernel must be registered, and the shapes, dtypes and devices of its
  outputs must match the real kernel's (chainrule has no FakeTensor: the fake kernel runs on real
  tensors). A fake kernel that asks ``get_ctx().new_dynamic_size()`` for a data-dependent size is
  reported "SKIPPED": without symbolic sizes there is nothing to compare.
* ``test_aot_dispatch_dynamic`` / ``test_aot_dispatch_static``: "SKIPPED", as chainrule has no
  ahead-of-time compiler to trace the op through.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from .._subclasses.fake_tensor import MetadataMismatchError
from ..autograd import gradcheck
from ..ops import namespaces
from ..tensor import Tensor
from .operators import Operator, fake_kernel_contexts, get_ctx, operator_named

__all__ = ["OpCheckError", "get_ctx", "opcheck"]

DEFAULT_TEST_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
ALL_TEST_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_static",
                  "test_aot_dispatch_dynamic")


class OpCheckError(Exception):
    """What opcheck raises when a test fails (torch.testing._internal.optests.OpCheckError)."""


class _DataDependentSize(Exception):
    """A fake kernel asked for a size only the data decides: the fake test cannot compare."""


class FakeImplCtx:
    """What ``get_ctx()`` returns inside a fake kernel run by opcheck."""

    def new_dynamic_size(self, *, min: int = 0, max: int | None = None):
        raise _DataDependentSize("the fake kernel asked for a data-dependent size (new_dynamic_size)")

    create_unbacked_symint = new_dynamic_size


def _operator(op) -> Operator:
    definition_op = getattr(op, "_op", None)
    if isinstance(definition_op, Operator):
        return definition_op
    if isinstance(op, namespaces.OpOverloadPacket):
        op = op.default
    if isinstance(op, namespaces.OpOverload) and op.namespace != "aten":
        label = "" if op._overloadname == "default" else f".{op._overloadname}"
        return operator_named(f"{op.namespace}::{op._op_name}{label}")
    raise ValueError(f"opcheck(op, ...): op must be instance of torch._ops.OpOverload, e.g. torch.ops.aten.sin.default, "
                     f"got {type(op)}")


def _copy(value):
    if isinstance(value, Tensor):
        copied = value.detach().clone()
        return copied.requires_grad_(value.requires_grad) if value.is_floating_point() else copied
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    return value


def _outputs(out) -> list:
    return [o for o in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(o, Tensor)]


def _check_schema(op: Operator, args: tuple, kwargs: dict, atol, rtol) -> str:
    copies = [_copy(a) for a in args]
    keyword_copies = {k: _copy(v) for k, v in kwargs.items()}
    before = {a.name: v.detach().numpy().copy() for a, v in _named(op, copies, keyword_copies)}
    op(*copies, **keyword_copies)
    mutable = op.schema.mutated_arguments
    for argument, value in _named(op, copies, keyword_copies):
        changed = not np.array_equal(before[argument.name], value.detach().numpy(), equal_nan=True)
        if changed and argument.name not in mutable:
            raise RuntimeError(f"Argument {argument.name} is not defined as mutable but was mutated")
    return "SUCCESS"


def _named(op: Operator, args: list, kwargs: dict):
    """(schema argument, tensor) for each Tensor argument given."""
    for position, argument in enumerate(op.schema.arguments):
        value = args[position] if position < len(args) else kwargs.get(argument.name)
        if isinstance(value, Tensor):
            yield argument, value


def _check_autograd(op: Operator, args: tuple, kwargs: dict, atol, rtol) -> str:
    differentiable = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad
                      and a.is_floating_point()]
    if not differentiable or op.schema.mutated_arguments:
        return "SUCCESS"

    def run(*inputs):
        full = list(args)
        for index, value in zip(differentiable, inputs):
            full[index] = value
        return tuple(o for o in _outputs(op(*full, **kwargs)) if o.is_floating_point())

    inputs = tuple(args[i].detach().to(_dtype.float64).requires_grad_(True) for i in differentiable)
    gradcheck(run, inputs, atol=1e-5 if atol is None else atol, rtol=1e-3 if rtol is None else rtol)
    return "SUCCESS"


def _check_fake(op: Operator, args: tuple, kwargs: dict, atol, rtol) -> str:
    if op.fake is None:
        shown = op.custom_op_def if op.custom_op_def is not None else op.dotted
        raise RuntimeError(f"There was no fake impl registered for {shown}. This is necessary for "
                           f"torch.compile/export/fx tracing to work. Please use `{op.name}.register_fake` to add an "
                           "fake impl.")
    real = _outputs(op(*[_copy(a) for a in args], **{k: _copy(v) for k, v in kwargs.items()}))
    fake_kernel_contexts.append(FakeImplCtx())
    try:
        fake = _outputs(op._run(op.fake, _bound(op, args, kwargs)))
    except _DataDependentSize:
        return "SKIPPED"
    finally:
        fake_kernel_contexts.pop()
    prefix = f"When comparing the output of {op.dotted} on FakeTensor and concrete Tensors, found mismatched tensor "
    if len(real) != len(fake):
        raise MetadataMismatchError(prefix + f"metadata: {len(real)} real outputs and {len(fake)} fake outputs!")
    for concrete, faked in zip(real, fake):
        for what, a, b in (("Shapes", concrete.shape, faked.shape), ("Dtypes", concrete.dtype, faked.dtype),
                           ("Devices", concrete.device, faked.device)):
            if a != b:
                raise MetadataMismatchError(prefix + f"metadata: {what} {a} and {b} are not equal!")
    return "SUCCESS"


def _bound(op: Operator, args: tuple, kwargs: dict) -> list:
    from .schema import bind

    return bind(op.schema, tuple(_copy(a) for a in args), {k: _copy(v) for k, v in kwargs.items()})


def _skipped(op: Operator, args: tuple, kwargs: dict, atol, rtol) -> str:
    return "SKIPPED"


_CHECKS = {"test_schema": _check_schema, "test_autograd_registration": _check_autograd,
           "test_faketensor": _check_fake, "test_aot_dispatch_static": _skipped, "test_aot_dispatch_dynamic": _skipped}


def opcheck(op, args: tuple, kwargs: dict | None = None, *, test_utils=DEFAULT_TEST_UTILS,
            raise_exception: bool = True, atol=None, rtol=None) -> dict:
    """Run ``test_utils`` on ``op`` (a CustomOpDef or a library op's OpOverload) called with
    ``args``/``kwargs``; returns {test: "SUCCESS" | "SKIPPED" | the exception}, or raises OpCheckError
    at the first failure when ``raise_exception``. The module doc says what each test checks."""
    operator = _operator(op)
    tests = (test_utils,) if isinstance(test_utils, str) else tuple(test_utils)
    if not set(tests) <= set(ALL_TEST_UTILS):
        raise ValueError(f"opcheck(op, ..., test_utils={tests}), expected test_utils to be subset of "
                         f"{ALL_TEST_UTILS} but it was not")
    kwargs = {} if kwargs is None else kwargs
    results: dict = {}
    for test in tests:
        try:
            results[test] = _CHECKS[test](operator, tuple(args), kwargs, atol, rtol)
        except Exception as error:
            if raise_exception:
                raise OpCheckError(f"opcheck(op, ...): {test} failed with {error} (scroll up for stack trace)") \
                    from error
            results[test] = error
    return results
