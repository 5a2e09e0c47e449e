"""The checks the TorchDispatchMode test files (s46 mendAO/mendAS/mendAV, s47 mendAX) share: a mode that
passes every call through changes no value or gradient, and a handler that rewrites one op's arguments
gets what it asked for, on chainrule as on torch; and torch's test LoggingTensor, which the wrapper-subclass
files (s47 mendBB, s48 mendBH) build against either library. Imported after each file's
``importorskip("torch")``."""

import contextlib
import warnings

import numpy as np
import torch as real_torch

import chainrule
from chainrule.utils import _python_dispatch


def logging_tensor(lib):
    """torch's test LoggingTensor, written against ``lib`` (torch or chainrule), with the log of the ops
    it saw: a wrapper subclass holding one inner tensor that unwraps, runs the op and rewraps."""
    tree_map = lib.utils._pytree.tree_map
    log = []

    class LoggingTensor(lib.Tensor):
        @staticmethod
        def __new__(cls, elem):
            made = lib.Tensor._make_wrapper_subclass(cls, elem.size(), strides=elem.stride(), dtype=elem.dtype,
                                                     device=elem.device, requires_grad=elem.requires_grad)
            made.elem = elem
            return made

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            def unwrap(t):
                return t.elem if isinstance(t, LoggingTensor) else t

            log.append(str(func))
            out = func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs or {}))
            return tree_map(lambda t: LoggingTensor(t) if isinstance(t, lib.Tensor) else t, out)

    return LoggingTensor, log



def unwrapped_values(t) -> np.ndarray:
    """The values of ``t``, or of the tensor a LoggingTensor wraps, as a NumPy array."""
    return np.asarray(getattr(t, "elem", t).detach().tolist())


def run_wrapped_case(lib, case, wrap: bool):
    """Run ``case`` = (program(lib, *inputs), arrays, the indices of the inputs a LoggingTensor wraps where
    ``wrap``, the indices of those that require grad): (its values, the inputs' gradients of its sum against
    fixed random weights, the ops the handler saw but detach, the result's class name)."""
    program, arrays, wrapped, grads = case
    wrapper, log = logging_tensor(lib)
    inputs = []
    for k, array in enumerate(arrays):
        t = lib.tensor(array, requires_grad=k in grads)
        inputs.append(wrapper(t) if wrap and k in wrapped else t)
    out = program(lib, *inputs)
    seen = [op for op in log if op != "aten.detach.default"]
    gradients = []
    if grads:
        weight = lib.tensor(np.random.default_rng(1).standard_normal(tuple(out.shape)))
        gradients = [unwrapped_values(g) for g in lib.autograd.grad((out * weight).sum(), [inputs[k] for k in grads])]
    return unwrapped_values(out), gradients, seen, type(out).__name__


def assert_wrapped_gives_plain_and_torch(case, torch_wrapped: bool = True) -> tuple:
    """``case`` (as ``run_wrapped_case``'s) with its inputs wrapped gives chainrule's plain values and gradients,
    and torch's — torch run with its own LoggingTensor where ``torch_wrapped``, else on the plain values.
    Returns the result's class names (chainrule's, torch's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, grads, _, kind = run_wrapped_case(chainrule, case, True)
        plain_value, plain_grads, _, _ = run_wrapped_case(chainrule, case, False)
        torch_value, torch_grads, _, torch_kind = run_wrapped_case(real_torch, case, torch_wrapped)
    np.testing.assert_allclose(value, plain_value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(value, torch_value, rtol=1e-10, atol=1e-12)
    assert len(grads) == len(plain_grads) == len(torch_grads)
    for ours, plain, theirs in zip(grads, plain_grads, torch_grads):
        np.testing.assert_allclose(ours, plain, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    return kind, torch_kind

class PassingMode(_python_dispatch.TorchDispatchMode):
    """chainrule's mode that calls every func with what it got."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def assert_a_passing_mode_keeps(program, shape, seed: int, grad_atol: float = 1e-6) -> None:
    """``program(lib, x)``'s value and x's gradient (x float32 of ``shape``, drawn from ``seed``): under
    PassingMode the same bits as without it, and torch's within float32 rounding."""
    def run(lib, mode):
        x = lib.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=lib.float32, requires_grad=True)
        with mode:
            out = program(lib, x)
        out.backward()
        return out.item(), x.grad.numpy()

    (ours, our_grad), (plain, plain_grad) = run(chainrule, PassingMode()), run(chainrule, contextlib.nullcontext())
    theirs, their_grad = run(real_torch, contextlib.nullcontext())
    assert ours == plain
    np.testing.assert_array_equal(our_grad, plain_grad)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-5, atol=grad_atol)


def assert_a_handler_edit_reaches(op: str, edit, program, shape, seed: int = 4) -> None:
    """A mode whose handler replaces ``op``'s args by ``edit(args)`` sees ``op`` once in ``program(lib, x)``
    and gets torch's output for the edited call."""
    def run(lib):
        class Edit(real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch
                   else _python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if str(func) == op:
                    seen.append(op)
                    args = edit(args)
                return func(*args, **(kwargs or {}))

        seen = []
        x = lib.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=lib.float32)
        with Edit():
            out = program(lib, x)
        assert seen == [op]
        return out.numpy()

    ours, theirs = run(chainrule), run(real_torch)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
