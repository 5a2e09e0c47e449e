"""gradcheck / gradgradcheck: compare autograd's gradients with central finite differences.

The numerical Jacobian perturbs one input element at a time by ±eps (so use float64); the
analytical one comes from one vector-Jacobian product per output element. ``fast_mode=True``
instead compares ⟨u, J v⟩ (finite differences along a random v) with ⟨Jᵀu, v⟩ (one backward)
for random u, v: O(1) evaluations, for large inputs. ``check_forward_ad=True`` also compares
forward mode (one jvp through dual tensors per input element) with the same finite differences.

Complex tensors are checked as torch checks them, as maps between real spaces: each complex
element is its (real, imaginary) pair, perturbed separately; a complex output's real and imaginary
parts are rows of their own. The analytical row for Re w (Im w) comes from a backward seeded with
1 (i): by torch's convention the gradient is ∂L/∂x + i·∂L/∂y, whose parts are that row's entries.
"""

from __future__ import annotations

import numpy as np

from .._backend import CPU, array_module, device_of, to_device
from .engine import grad as _grad
from .grad_mode import enable_grad, no_grad

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Raised by gradcheck when analytical and numerical gradients disagree."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _differentiable_outputs(func, inputs):
    from .function import _Tensor as Tensor

    return [o for o in _as_tuple(func(*inputs)) if isinstance(o, Tensor) and o._requires_grad]


def _evaluate(func, inputs):
    from .function import _Tensor as Tensor

    with no_grad():
        outs = _as_tuple(func(*inputs))
    # aligned with the tensor outputs; None for the ones that cannot be differentiated
    return [_real_view(o._data) if o._data.dtype.kind in "fVc" else None for o in outs if isinstance(o, Tensor)]


def _real_view(array) -> np.ndarray:
    """An array as float64 real numbers, a complex element as its (real, imaginary) pair, flattened,
    on the host (a device array is copied back: the comparison is NumPy's, as torch's reads back)."""
    array = to_device(array, CPU)
    if array.dtype.kind == "c":
        return np.stack([array.real, array.imag], axis=-1).astype(np.float64).ravel()
    return array.astype(np.float64).ravel()


def _real_size(array) -> int:
    return array.size * (2 if array.dtype.kind == "c" else 1)


def _numerical_jacobians(func, inputs, index, eps):
    """d(every float output)/d(inputs[index]) by central differences: one (n_out, n_in) per output."""
    x = inputs[index]._data
    flat_positions = list(np.ndindex(x.shape)) if x.ndim else [()]
    steps = (eps, 1j * eps) if x.dtype.kind == "c" else (eps,)  # a complex element: its two real directions
    columns = []
    for position in flat_positions:
        for step in steps:
            original = x[position].copy()
            x[position] = original + step
            plus = _evaluate(func, inputs)
            x[position] = original - step
            minus = _evaluate(func, inputs)
            x[position] = original
            columns.append([(p - m) / (2 * eps) if p is not None else None for p, m in zip(plus, minus)])
    # (the perturbed runs already counted the outputs: a run more only for an empty input)
    n_outputs = len(columns[0]) if columns else len(_evaluate(func, inputs))
    jacobians = []
    for o in range(n_outputs):
        if columns and columns[0][o] is not None:
            jacobians.append(np.stack([c[o] for c in columns], axis=1))
        else:
            jacobians.append(None)
    return jacobians


def _analytical_jacobian(out, x):
    """d(out)/d(x) by one backward pass per real element of ``out`` through its (retained) graph."""
    from .function import _Tensor as Tensor

    # a complex output's element k gives two rows: seeded with 1 (its real part) and i (its imaginary part)
    units = (1.0, 1j) if out._data.dtype.kind == "c" else (1.0,)
    rows = []
    for k in range(out._data.size):
        for unit in units:
            seed = np.zeros(out._data.size, dtype=out._data.dtype)
            seed[k] = unit
            seed = _on_device_of(seed.reshape(out._data.shape), out._data)
            (g,) = _grad(out, x, grad_outputs=Tensor._make(seed),
                         retain_graph=True, allow_unused=True)
            rows.append(np.zeros(_real_size(x._data)) if g is None else _real_view(g._data))
    return np.stack(rows, axis=0) if rows else np.zeros((0, _real_size(x._data)))


def _forward_jacobians(func, inputs, index, diff_indices):
    """d(every output)/d(inputs[index]) by forward-mode AD, one jvp per real direction of each
    input element (as the numerical columns are laid out): one (n_out, n_in) per tensor output,
    None where the output is not floating point. As in torch's check, every input that requires
    grad carries a tangent, zeros but for ``inputs[index]``'s: a rule sees zeros, never None."""
    from . import forward_ad
    from .function import _Tensor as Tensor

    x = inputs[index]
    units = (1.0, 1j) if x._data.dtype.kind == "c" else (1.0,)
    columns = []
    for k in range(x._data.size):
        for unit in units:
            seed = np.zeros(x._data.size, dtype=x._data.dtype)
            seed[k] = unit
            with forward_ad.dual_level():
                duals = list(inputs)
                for j in diff_indices:
                    tangent = seed.reshape(x._data.shape) if j == index else np.zeros_like(inputs[j]._data)
                    duals[j] = forward_ad.make_dual(inputs[j], Tensor._make(_on_device_of(tangent, inputs[j]._data)))
                outs = [o for o in _as_tuple(func(*duals)) if isinstance(o, Tensor)]
                column = []
                for out in outs:
                    if out._data.dtype.kind not in "fVc":
                        column.append(None)
                        continue
                    tangent = forward_ad.unpack_dual(out).tangent
                    column.append(np.zeros(_real_size(out._data)) if tangent is None else _real_view(tangent._data))
            columns.append(column)
    if not columns:
        return []
    return [None if columns[0][o] is None else np.stack([c[o] for c in columns], axis=1) for o in range(len(columns[0]))]


def _worst(computed, expected, mismatched) -> tuple:
    """The mismatched position farthest from ``expected``, a NaN counting as the farthest."""
    with np.errstate(invalid="ignore"):
        distance = np.where(mismatched, np.nan_to_num(np.abs(computed - expected), nan=np.inf), -1.0)
    return np.unravel_index(np.argmax(distance), mismatched.shape)


def _forward_jacobians_match(func, inputs, diff_indices, eps, atol, rtol, raise_exception) -> bool:
    """check_forward_ad: forward-mode Jacobians against central differences, output by output."""
    from .function import _Tensor as Tensor

    any_complex_output = any(o.is_complex() for o in _as_tuple(func(*inputs)) if isinstance(o, Tensor))
    for k, i in enumerate(diff_indices):  # (torch's messages count the inputs that require grad: k)
        numerical = _numerical_jacobians(func, inputs, i, eps)
        for o, (forward, expected) in enumerate(zip(_forward_jacobians(func, inputs, i, diff_indices), numerical)):
            if forward is None or expected is None:
                continue
            if forward.shape != expected.shape:
                return _fail(f"Jacobian computed with forward mode shape mismatch for output {o} with respect to "
                             f"input {k}: forward {forward.shape}, numerical {expected.shape}", raise_exception)
            mismatched = ~np.isclose(forward, expected, rtol=rtol, atol=atol)  # NaN fails, as torch's allclose
            if mismatched.any():
                if inputs[i].is_complex() or any_complex_output:
                    worst = _worst(forward, expected, mismatched)
                    return _fail(f"Jacobian computed with forward mode mismatch for output {o} with respect to "
                                 f"input {k}: worst at row {int(worst[0])}, column {int(worst[1])}: forward "
                                 f"{forward[worst]:.10g} vs numerical {expected[worst]:.10g}.\nnumerical:{expected}\n"
                                 f"forward:{forward}", raise_exception)
                return _fail(_mismatch_in_torchs_words("computed with forward mode ", o, k, expected, forward,
                                                       inputs[i]._data.dtype), raise_exception)
    return True


def _mismatch_in_torchs_words(mode: str, o: int, i: int, numerical, analytical, dtype) -> str:
    """torch's GradcheckError text: both Jacobians as tensors of the input's dtype, laid out
    (input elements, output elements), where chainrule's arrays are (output, input)."""
    from .function import _Tensor as Tensor

    return (f"Jacobian {mode}mismatch for output {o} with respect to input {i},\n"
            f"numerical:{Tensor._make(numerical.T.astype(dtype))!r}\n"
            f"analytical:{Tensor._make(analytical.T.astype(dtype))!r}\n")


def _outputs_either_side(func, inputs, x, v, eps) -> tuple:
    """``func``'s outputs with the input array ``x`` moved by +eps·v and by -eps·v (in place,
    then restored): the two sides of a central difference along ``v``."""
    original = x.copy()
    x += eps * v
    plus = _evaluate(func, inputs)
    x[...] = original - eps * v
    minus = _evaluate(func, inputs)
    x[...] = original
    return plus, minus


def _numerical_gradient_is_zero(func, inputs, diff_indices, eps, fast_mode, nondet_tol, raise_exception) -> bool:
    """gradcheck of a function none of whose outputs require grad (a solver leaving autograd through
    NumPy, a detached result): any finite-difference change of its float outputs is a gradient that
    autograd lost. Slow mode wants exact zeros, fast mode tolerates ``nondet_tol`` along one random
    direction, as torch's checks do."""
    rng = np.random.default_rng(0)
    for i in diff_indices:
        if fast_mode:
            x = inputs[i]._data
            plus, minus = _outputs_either_side(func, inputs, x, _random_like(rng, x), eps)
            moved = any(p is not None and p.size and np.abs((p - m) / (2 * eps)).max() > nondet_tol
                        for p, m in zip(plus, minus))
        else:
            moved = any(j is not None and np.count_nonzero(j) for j in _numerical_jacobians(func, inputs, i, eps))
        if moved:
            return _fail("Numerical gradient for function expected to be zero", raise_exception)
    return True


def _fail(message: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(message)
    return False


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, check_forward_ad: bool = False,
              check_backward_ad: bool = True, fast_mode: bool = False, masked=None) -> bool:
    """torch.autograd.gradcheck: True if autograd's gradients match finite differences.

    On a mismatch raises GradcheckError (or returns False with ``raise_exception=False``) in
    torch's words, naming the output and input and printing both Jacobians.
    """
    from .function import _Tensor as Tensor

    if not (check_forward_ad or check_backward_ad):
        raise AssertionError("Expected at least one of check_forward_ad or check_backward_ad to be True")
    if check_batched_grad and not check_backward_ad:
        raise AssertionError("Setting check_batched_grad=True requires check_backward_ad to be True")
    if check_batched_forward_grad and not check_forward_ad:
        raise AssertionError("Setting check_batched_forward_grad=True requires check_forward_ad to be True")
    if check_batched_forward_grad or check_batched_grad:
        raise NotImplementedError("gradcheck: chainrule has no batched gradients; "
                                  "use check_batched_grad=False, check_batched_forward_grad=False")
    inputs = _as_tuple(inputs)
    diff_indices = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t._requires_grad]
    if not diff_indices:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of them have requires_grad=True.")
    for i in diff_indices:
        if inputs[i]._data.dtype not in (np.float64, np.complex128):
            import warnings

            warnings.warn(
                f"Input #{i} requires gradient and is not a double precision floating point or complex. "
                "This check will likely fail if all the inputs are not of double precision floating point or complex. ",
                UserWarning, stacklevel=2,
            )
    tensor_outputs = []
    if check_forward_ad or check_backward_ad:
        # one run whose graph serves every backward pass, as torch's one func_out
        tensor_outputs = [o for o in _as_tuple(func(*inputs)) if isinstance(o, Tensor)]
        if not any(o._requires_grad for o in tensor_outputs):
            # nothing to differentiate: torch then only asks that the outputs really do not move
            return _numerical_gradient_is_zero(func, inputs, diff_indices, eps, fast_mode, nondet_tol, raise_exception)
    # backward mode first, then forward mode, as torch checks them
    if check_backward_ad and not (
            _fast_gradcheck(func, inputs, diff_indices, eps, atol, rtol, raise_exception) if fast_mode
            else _backward_jacobians_match(func, inputs, tensor_outputs, diff_indices, eps, atol, rtol,
                                           raise_exception)):
        return False
    if check_forward_ad and not (
            _forward_jacobians_match(func, inputs, diff_indices, eps, atol, rtol, raise_exception)
            and (not check_undefined_grad or _undefined_tangents_handled(func, inputs, diff_indices,
                                                                         raise_exception))):
        return False
    if not check_backward_ad:
        return True
    differentiable = [o for o in tensor_outputs if o._requires_grad]
    if not _backward_multiplied_by_grad_output(differentiable, inputs, diff_indices, masked, raise_exception):
        return False
    if check_undefined_grad:
        return _undefined_output_grads_handled(func, inputs, diff_indices, raise_exception)
    return True


def _backward_multiplied_by_grad_output(outputs, inputs, diff_indices, masked, raise_exception) -> bool:
    """torch's _test_backward_mul_by_grad_output: zero output gradients must give zero input
    gradients (a backward that ignores grad_output passes the Jacobian check of a scalar output,
    seeded with 1, but not this one), each of its input's dtype, device and size."""
    from .function import _Tensor as Tensor

    diff_inputs = [inputs[i] for i in diff_indices]
    zeros = [Tensor._make(array_module(o._data).zeros_like(o._data)) for o in outputs]
    for g, x in zip(_grad(outputs, diff_inputs, grad_outputs=zeros, allow_unused=True), diff_inputs):
        if g is None:
            continue
        if g.is_sparse != x.is_sparse:
            return _fail(f"grad is incorrect layout ({g.layout} is not {x.layout})", raise_exception)
        values = (g.to_dense() if g.is_sparse else g)._data
        # masked: torch's allclose to zero, else exact zeros
        nonzero = (not np.allclose(to_device(values, CPU), 0, rtol=1e-5, atol=1e-8) if masked
                   else bool(values.any()))
        if nonzero:
            return _fail("backward not multiplied by grad_output", raise_exception)
        if g.dtype != x.dtype:
            return _fail("grad is incorrect type", raise_exception)
        if g.device != x.device:
            return _fail("grad is incorrect device", raise_exception)
        if g.shape != x.shape:
            return _fail("grad is incorrect size", raise_exception)
    return True


def _undefined_tangents_handled(func, inputs, diff_indices, raise_exception) -> bool:
    """torch's _test_undefined_forward_mode: with the other inputs carrying random tangents, an
    input given a zero tangent and the same input given none (a plain tensor) must yield the
    same output tangents wherever both are defined."""
    from . import forward_ad
    from .function import _Tensor as Tensor

    rng = np.random.default_rng(0)
    with forward_ad.dual_level():
        duals = list(inputs)
        for j in diff_indices:
            duals[j] = forward_ad.make_dual(inputs[j].detach(), Tensor._make(_random_like(rng, inputs[j]._data)))
        for i in diff_indices:
            given = duals[i]
            plain = inputs[i].detach()
            duals[i] = forward_ad.make_dual(plain, Tensor._make(array_module(plain._data).zeros_like(plain._data)))
            with_zeros = _float_tensor_outputs(func(*duals))
            duals[i] = plain
            without = _float_tensor_outputs(func(*duals))
            duals[i] = given
            for o, (zero_tangent, no_tangent) in enumerate(zip(with_zeros, without)):
                got = forward_ad.unpack_dual(zero_tangent).tangent
                expected = forward_ad.unpack_dual(no_tangent).tangent
                if got is not None and expected is not None and not _allclose(got, expected):
                    if not raise_exception:
                        return False
                    # torch raises it with these pieces as separate arguments: its text is their tuple
                    raise GradcheckError("Mismatch in tangent values for output with index: ", o, " when input: ",
                                         inputs[i], " has an undefined tangent value. ", " Got: ", got,
                                         " but expected: ", expected)
    return True


def _float_tensor_outputs(outputs) -> list:
    from .function import _Tensor as Tensor

    return [o for o in _as_tuple(outputs) if isinstance(o, Tensor) and o._data.dtype.kind in "fVc"]


def _allclose(a, b) -> bool:
    """torch.allclose's defaults (rtol 1e-5, atol 1e-8), NaNs unequal, compared on the host."""
    return bool(np.allclose(to_device(a._data, CPU), to_device(b._data, CPU), rtol=1e-5, atol=1e-8))


_UNDEFINED_GRAD_NOTE = 'Please look at "Notes about undefined output gradients" in "tools/autograd/derivatives.yaml"'


def _undefined_output_grads_handled(func, inputs, diff_indices, raise_exception) -> bool:
    """torch's _test_undefined_backward_mode: a backward must accept undefined (None, or zero
    where its Function materializes them) output gradients and then give zero or no input grads.

    First every output's gradient is undefined, then, with several outputs, one at a time. torch
    marks them with its UndefinedGrad op; here the backward is seeded with zeros, and a pre-hook on
    a node made under ``ctx.set_materialize_grads(False)`` turns an undefined output's zeros into
    None: each node sees what torch's sees.
    """
    from .function import _Tensor as Tensor

    diff_inputs = [inputs[i] for i in diff_indices]

    def backward_handles(outputs, undefined) -> bool:
        undefined_slots = {}  # node -> the output numbers whose gradient is undefined
        for k in undefined:
            node = outputs[k].grad_fn
            # a node that materializes gradients (every built-in one, a leaf's, a user Function's
            # by default) turns None into the same zeros, so only the others need the None
            if node is not None and not getattr(node, "_materialize", True):
                undefined_slots.setdefault(node, set()).add(outputs[k]._output_nr)

        def undefine(slots):
            return lambda grads: tuple(None if nr in slots else g for nr, g in enumerate(grads))

        handles = [node.register_prehook(undefine(slots)) for node, slots in undefined_slots.items()]
        zeros = [Tensor._make(array_module(o._data).zeros_like(o._data)) for o in outputs]
        try:
            grads = _grad(outputs, diff_inputs, grad_outputs=zeros, allow_unused=True)
        except RuntimeError as error:
            _warn_undefined_check_is_new()
            if raise_exception:
                raise GradcheckError(f"Expected backward function to handle undefined output grads. "
                                     f"{_UNDEFINED_GRAD_NOTE}") from error
            return False
        finally:
            for handle in handles:
                handle.remove()
        if any(g is not None and g._data.any() for g in grads):
            _warn_undefined_check_is_new()
            return _fail("Expected all input grads to be undefined or zero when all output grads are undefined "
                         f"or zero. {_UNDEFINED_GRAD_NOTE}", raise_exception)
        return True

    with enable_grad():
        outputs = _differentiable_outputs(func, inputs)
        if not backward_handles(outputs, set(range(len(outputs)))):
            return False
        for undefined_index in range(len(outputs) if len(outputs) > 1 else 0):
            if not backward_handles(_differentiable_outputs(func, inputs), {undefined_index}):
                return False
    return True


def _warn_undefined_check_is_new() -> None:
    import warnings

    from .. import _torch_function

    # torch warns before each undefined-gradient failure, in these words
    warnings.warn("Backwards compatibility: New undefined gradient support checking feature is enabled by "
                  "default, but it may break existing callers of this function. If this is true for you, you "
                  'can call this function with "check_undefined_grad=False" to disable the feature',
                  UserWarning, stacklevel=_torch_function.user_stacklevel())


def _backward_jacobians_match(func, inputs, tensor_outputs, diff_indices, eps, atol, rtol, raise_exception) -> bool:
    """Reverse-mode Jacobians, from one backward pass per output element through the graph of
    ``tensor_outputs`` (``func``'s tensor outputs at ``inputs``), against central differences
    (which restore every input element they move, so that graph's saved values stay right)."""
    outputs = [o for o in tensor_outputs if o._requires_grad]
    for k, i in enumerate(diff_indices):  # (torch's messages count the inputs that require grad: k)
        numerical = _numerical_jacobians(func, inputs, i, eps)
        numerical = [n for n, o in zip(numerical, tensor_outputs) if o._requires_grad]
        for o in range(len(outputs)):
            analytical = _analytical_jacobian(outputs[o], inputs[i])
            expected = numerical[o] if numerical[o] is not None else np.zeros_like(analytical)
            if analytical.shape != expected.shape:
                return _fail(f"Jacobian shape mismatch for output {o} with respect to input {k}: "
                             f"analytical {analytical.shape}, numerical {expected.shape}", raise_exception)
            # NaN anywhere fails, as torch's allclose without equal_nan: a Jacobian that is NaN on both sides
            # checks nothing
            mismatched = ~np.isclose(analytical, expected, rtol=rtol, atol=atol)
            if mismatched.any():
                if inputs[i].is_complex() or outputs[o].is_complex():
                    return _fail(_complex_mismatch_message(inputs, outputs, o, i, k, analytical, expected, mismatched),
                                 raise_exception)
                return _fail(_mismatch_in_torchs_words("", o, k, expected, analytical, inputs[i]._data.dtype),
                             raise_exception)
    return True


def _complex_mismatch_message(inputs, outputs, o, i, k, analytical, expected, mismatched) -> str:
    """A mismatch of a complex input's or output's Jacobian, named by its worst element (torch
    compares real and imaginary parts in separate passes; chainrule's Jacobian is one real view).
    Input ``i`` is the ``k``-th that requires grad, the number torch's messages give it."""
    worst = _worst(analytical, expected, mismatched)
    # rows and columns count real numbers: a complex element spans two
    in_pos = (np.unravel_index(worst[1] // (2 if inputs[i].is_complex() else 1), inputs[i].shape)
              if inputs[i].ndim else ())
    out_pos = (np.unravel_index(worst[0] // (2 if outputs[o].is_complex() else 1), outputs[o].shape)
               if outputs[o].ndim else ())
    return (f"Jacobian mismatch for output {o} with respect to input {k} "
            f"(shape {tuple(inputs[i].shape)}): worst at output element {tuple(map(int, out_pos))}, "
            f"input element {tuple(map(int, in_pos))}: analytical {analytical[worst]:.10g} vs "
            f"numerical {expected[worst]:.10g}.\nnumerical:{expected}\nanalytical:{analytical}")


def _fast_gradcheck(func, inputs, diff_indices, eps, atol, rtol, raise_exception):
    from .function import _Tensor as Tensor

    rng = np.random.default_rng(0)
    tensor_outputs = [o for o in _as_tuple(func(*inputs)) if isinstance(o, Tensor)]
    outputs = [o for o in tensor_outputs if o._requires_grad]
    us = [_random_like(rng, o._data) for o in outputs]
    for k, i in enumerate(diff_indices):
        x = inputs[i]._data
        v = _random_like(rng, x)
        plus, minus = _outputs_either_side(func, inputs, x, v, eps)
        # the sides come for every tensor output: keep those of the outputs that require grad (a float
        # output outside the graph, such as copy_'s zero gradient for its destination under
        # gradgradcheck, would shift the pairing as in the slow check's filter)
        plus = [p for p, t in zip(plus, tensor_outputs) if t._requires_grad]
        minus = [m for m, t in zip(minus, tensor_outputs) if t._requires_grad]
        for o, u in enumerate(us):
            jv = (plus[o] - minus[o]) / (2 * eps)
            numerical = float(np.sum(_real_view(u) * jv))
            (g,) = _grad(outputs[o], inputs[i], grad_outputs=Tensor._make(u.astype(outputs[o]._data.dtype)),
                         retain_graph=True, allow_unused=True)
            analytical = 0.0 if g is None else float(np.sum(_real_view(g._data) * _real_view(v)))
            if not abs(analytical - numerical) <= atol + rtol * abs(numerical):
                return _fail(
                    f"fast gradcheck: <u, J v> mismatch for output {o} with respect to input {k}: "
                    f"analytical {analytical:.10g} vs numerical {numerical:.10g}", raise_exception)
    return True


def _random_like(rng, array):
    """Standard normal numbers of ``array``'s shape, on its device; complex ones for a complex array."""
    values = rng.standard_normal(array.shape)
    if array.dtype.kind == "c":
        values = values + 1j * rng.standard_normal(array.shape)
    return _on_device_of(values, array)


def _on_device_of(host_array: np.ndarray, array):
    """``host_array`` on ``array``'s device: gradcheck's seeds and directions meet the checked
    function's tensors where they are (a CUDA input gets CUDA seeds, as in torch's gradcheck)."""
    return host_array if type(array) is np.ndarray else to_device(host_array, device_of(array))


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False,
                  raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_fwd_over_rev: bool = False,
                  check_rev_over_rev: bool = True, fast_mode: bool = False, masked: bool = False) -> bool:
    """torch.autograd.gradgradcheck: gradcheck of the first gradient (second derivatives)."""
    from .function import _Tensor as Tensor

    inputs = _as_tuple(inputs)
    outputs = _differentiable_outputs(func, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = tuple(
            Tensor._make(_random_like(rng, o._data).astype(o._data.dtype)).requires_grad_()
            for o in outputs
        )
    grad_outputs = _as_tuple(grad_outputs)
    diff_indices = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t._requires_grad]
    n_inputs = len(inputs)

    def first_gradient(*args):
        xs, gs = args[:n_inputs], args[n_inputs:]
        # finite differences evaluate this under no_grad; the inner gradient still needs a graph
        with enable_grad():
            outs = _differentiable_outputs(func, xs)
            grads = _grad(outs, [xs[i] for i in diff_indices], grad_outputs=list(gs),
                          create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_gradient, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, fast_mode=fast_mode,
                     check_undefined_grad=check_undefined_grad)
