"""torch's argument-parser checks for the typed arguments of functional ops, in one place.

torch's C++ ops parse each Python argument against its declared type before running (``int[2]
kernel_size``, ``bool ceil_mode``, ``float p``) and raise a TypeError naming the op and the argument
when the value has the wrong type: a float kernel size is refused, not truncated; ``ceil_mode=2``
is refused, not taken as true. A module passes its constructor's arguments on to such an op, so a
hostile value typed into ``nn.MaxPool2d(2.5)`` fails at the first forward, as in torch. Sizes and
lengths are each op's own check (its RuntimeError), after these.
"""

from __future__ import annotations

import functools
import inspect
import operator

import numpy as np

from .. import _dtype, _layout, _vmap_frames
from .._backend import has_expanded_dims, write_refusal
from ..autograd import function as _function

__all__: list[str] = []


def _as_int(value, bool_is_int: bool = False):
    """``value`` as an int where torch's parser takes it as one (an int, a NumPy integer, a
    one-element integer tensor), else None; a bool is not an int to torch's parser, except after the
    first element of a list (it checks only the first element's type)."""
    if isinstance(value, (bool, np.bool_)) and not bool_is_int:
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _argument(name: str, position: int | None) -> str:
    """How torch's parser names an argument: ``'dim'``, or ``'dim' (position 2)`` where it was given
    positionally (``position``, counted from 1 with the tensor first)."""
    return f"'{name}'" if position is None else f"'{name}' (position {position})"


def int_list(value, op: str, name: str, sized: bool = True, int64: bool = True, position: int | None = None) -> tuple:
    """``value`` of an ``int[N]`` argument (an int, or a tuple/list of ints) as a tuple of ints, not
    yet expanded to the op's dims; torch's TypeError for a float, a string, None or a non-int element,
    or (``int64``: the value goes through torch's C++ parser) one beyond int64 (ValueError for a
    single int beyond it). An unsized ``int[]``
    (``sized=False``: pad's ``pad``) takes no single int."""
    if isinstance(value, (tuple, list)):
        items = []
        for i, item in enumerate(value):
            as_int = _as_int(item, bool_is_int=i > 0)
            if as_int is None:
                raise TypeError(f"{op}(): argument {_argument(name, position)} must be tuple of ints, but found "
                                f"element of type {_dtype.parser_type_name(item)} at pos {i}")
            if int64 and not _fits_int64(as_int):
                raise TypeError(f"{op}(): argument '{name}' failed to unpack the object at pos {i + 1} with error "
                                '"Overflow when unpacking long long"')
            items.append(as_int)
        return tuple(items)
    as_int = _as_int(value) if sized else None
    if as_int is None:
        raise TypeError(f"{op}(): argument {_argument(name, position)} must be tuple of ints, not {_dtype.parser_type_name(value)}")
    if int64 and not _fits_int64(as_int):
        # (a single int is unpacked as an int64_t is: Python's ValueError, not the list's TypeError)
        raise ValueError("Overflow when unpacking long long")
    return (as_int,)


def _fits_int64(value: int) -> bool:
    """Whether torch's parser can unpack ``value`` into its int64_t (2**63 cannot)."""
    return -2**63 <= value < 2**63


def check_int(value, op: str, name: str, position: int | None = None) -> int:
    """``value`` of an ``int`` argument; torch's TypeError for a float, a bool, a string or None."""
    as_int = _as_int(value)
    if as_int is None:
        raise TypeError(f"{op}(): argument {_argument(name, position)} must be int, not {type(value).__name__}")
    if not _fits_int64(as_int):
        raise ValueError("Overflow when unpacking long long")
    return as_int


def check_str(value, op: str, name: str) -> str:
    """``value`` of a ``str`` argument (a reduction's name, meshgrid's indexing); torch's TypeError
    for anything else, before the op checks which strings it takes."""
    if not isinstance(value, str):
        raise TypeError(f"{op}(): argument '{name}' must be str, not {type(value).__name__}")
    return value


def check_bool(value, op: str, name: str) -> bool:
    """``value`` of a ``bool`` argument: only a bool is one (``ceil_mode=1`` is refused, as by torch)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}(): argument '{name}' must be bool, not {type(value).__name__}")
    return bool(value)


def check_number(value, op: str, name: str, position: int | None = None):
    """``value`` of a ``Scalar`` argument: a Python or NumPy number as it is, a 0-d tensor as its
    value; torch's TypeError for a string, None, a sequence, an array or a tensor with dimensions."""
    if isinstance(value, (bool, int, float, complex, np.number, np.bool_)):
        return value
    if not isinstance(value, np.ndarray) and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    raise TypeError(f"{op}(): argument {_argument(name, position)} must be Number, not {type(value).__name__}")


_C10_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16"}


def fill_value(value, np_dtype, op: str = "fill_", name: str = "value"):
    """``value`` of a Scalar written into a tensor of ``np_dtype`` (fill_, init.constant_): torch's
    TypeError for a non-number, and its RuntimeError for a finite value beyond a floating dtype's
    range (NumPy would store an infinity)."""
    value = check_number(value, op, name)
    if np_dtype.name in _C10_NAMES and isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        as_float = float(value)
        if np.isfinite(as_float) and abs(as_float) > float(_dtype.finfo_of(np_dtype).max):  # finfo_of knows bfloat16
            raise RuntimeError(f"value cannot be converted to type {_C10_NAMES[np_dtype.name]} without overflow")
    return value


def check_float(value, op: str, name: str, position: int | None = None) -> float:
    """``value`` of a ``float`` argument, read as torch's parser reads a double: a Python or NumPy
    real number (a bool too), or a 0-d tensor that does not require grad, as its value; torch's
    TypeError for anything else (a string, None, a sequence, an array, a tensor with dimensions even
    of one element, a tensor that requires grad)."""
    if type(value) is float:  # (the common case: eps, momentum, a scale; returned before the import below)
        return value
    from ..tensor import Tensor

    if isinstance(value, Tensor):
        if value.ndim == 0 and not value.requires_grad:
            item = value.item()
            return float(item.real if isinstance(item, complex) else item)
    elif isinstance(value, (bool, int, float, np.integer, np.floating, np.bool_)):
        return float(value)
    raise TypeError(f"{op}(): argument {_argument(name, position)} must be float, not {_dtype.parser_type_name(value)}")


# ---------------------------------------------------------------- out=
def namespace_with_out(modules) -> dict:
    """The public functions each op module names in ``__out_functions__`` given torch's ``out=``,
    for the torch-like namespace (``chainrule.sum(x, 0, out=y)``). Tensor methods and operators,
    which take no ``out=`` in torch, keep the plain functions: nothing is added to their path.

    ``__out_functions__`` maps each name to torch's rule for the out's dtype, which differs by op:
    ``"cast"`` the result is cast into any dtype that can hold it (else "result type Float can't be
    cast ..."); ``"variance"`` (std, var) computed in a real floating out's dtype, a real input's refusing a complex out; ``"computes_in"`` the out's dtype is the dtype the op computes in (sum, cumsum: as
    ``dtype=``); ``"same_as_input"`` (amax), ``"same"`` (norm, argmax: their C++ type names),
    ``"same_elementwise"`` (neg, round), ``"same_or_cast_if_complex"`` (abs: a complex input's real
    result is cast into any real out that can hold it, or written into a complex out of the input's dtype), ``"same_where"``, ``"same_scalar_type"`` (index_select),
    ``"same_scalar_object"`` (complex), ``"same_norm"``, ``"same_vecdot"``, ``"same_multi_dot"``, ``"castable_eigenvalues"``
    (torch.linalg's functions that word it their own way), ``"same_as_self_asserted"`` (narrow_copy),
    ``"histogram"`` (its (hist, bin_edges) in the input's dtype), ``"values_and_long_indices"`` (kthvalue's tuple out),
    ``"long"`` (nonzero), ``"long_samples"`` (multinomial), ``"searchsorted_index"`` (searchsorted, bucketize): each torch's own refusal of any other; ``"cat"`` (cat, stack) a cast
    torch allows, else its TypeError;
    ``"floating"`` any floating dtype (logsumexp); ``"castable"`` torch's canCast check (max());
    ``"same_as_self"`` (take); ``"scan_same_scalar_type"`` (logcumsumexp: the input's dtype, checked on
    entry). Every rule first refuses an ``out`` that aliases itself (an expanded
    tensor), as torch's kernels do."""
    wrapped = {}
    for module in modules:
        composite = getattr(module, "__composite_out__", {})  # name -> when torch's call is composite
        for name, rule in getattr(module, "__out_functions__", {}).items():
            function = getattr(module, name)
            wrapped[name] = _with_out_rule(function, name, rule, composite.get(name))
    return wrapped


def _always(args, kwargs) -> bool:
    return True


def out_rule(rule: str, composite: bool = False):
    """Decorator: give a function torch's ``out=`` under one of ``namespace_with_out``'s dtype rules
    (for functions that take ``out=`` wherever they are called, not only on the namespace).
    ``composite``: torch's op is composite, its out= a differentiable copy (``write_composite_out``)."""
    return lambda function: _with_out_rule(function, function.__name__, rule, _always if composite else None)


def write_out_same_dtype(result, out, op: str):
    """``write_out`` for the ops whose ``out`` must have the result's own dtype (floor, sign,
    frac...: torch's "Found dtype Long but expected Float"), not any dtype it can be cast to."""
    from ..tensor import Tensor, write_out

    if isinstance(out, Tensor):
        refusal = _out_dtype_refusal(op, "same_elementwise", None, result, out)
        if refusal is not None:
            raise refusal
    return write_out(result, out, op)


def _with_out_rule(function, name: str, rule: str, composite=None):
    """``function`` with ``out=`` under ``rule``; ``composite``: None, or a test of a call's
    (args, kwargs) for whether torch's op is composite there (its out= a differentiable copy)."""
    from ..tensor import (
        Tensor,
        _write_outs,
        call_noting_out,
        out_keyword_front,
        refuse_out_under_autograd,
        refuse_partial_overlap,
        write_composite_out,
        write_out,
    )

    # torch's elementwise kernels (TensorIterator) refuse an out partly overlapping an input
    elementwise = getattr(function, "__module__", None) == "chainrule.ops.elementwise"

    def with_out(*args, out, **kwargs):
        if not isinstance(out, (Tensor, tuple, list)):  # (a tuple out is a tuple result's, checked when written)
            raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
        for each_out in out if isinstance(out, (tuple, list)) else (out,):  # (values, indices) outs too
            if isinstance(each_out, Tensor):
                _check_out_overlap(name, each_out, (*args, *kwargs.values()))
                if elementwise:
                    operands = (*args, *kwargs.values()) if kwargs else args
                    # (torch refuses out= under autograd first)
                    refuse_out_under_autograd(name, each_out, *(a for a in operands if isinstance(a, Tensor)))
                    refuse_partial_overlap(each_out, operands)
        if _vmap_frames._frames:  # (here, where the operands name pow's overload; write_out checks the rest)
            _vmap_frames.refuse_out(name, (*args, *kwargs.values(), out))
        dtype_given = kwargs.get("dtype") is not None
        if rule == "computes_in" and isinstance(out, Tensor):
            if dtype_given:
                _refuse_other_dtype_out(name, args, kwargs, out)
            else:
                kwargs["dtype"] = out.dtype
        if rule == "mean" and isinstance(out, Tensor):
            kwargs = _mean_out_arguments(args, kwargs, out, Tensor)
        if name == "nanmean" and isinstance(out, Tensor) and not dtype_given and _function.active_dispatch is None:
            kwargs = _nanmean_out_arguments(args, kwargs, out, Tensor)
        if rule == "scan_same_scalar_type" and isinstance(out, Tensor):
            # torch's logcumsumexp_out: autograd's refusal, then its kernel's dtype check, before the
            # dim or the input's dtype is looked at
            source = args[0] if args else kwargs.get("input")
            if isinstance(source, Tensor):
                refuse_out_under_autograd(name, out, source)
                if out.dtype != source.dtype:
                    raise RuntimeError(f"expected scalar_type {_dtype.scalar_name(source.dtype)} but found "
                                       f"{_dtype.scalar_name(out.dtype)}")
        if rule in _OUT_DTYPE_FIXED and isinstance(out, Tensor):
            # the out's dtype is refused before the values are looked at: multinomial's check of
            # its weights would otherwise answer an int64-out error with one about the weights
            refusal = _out_dtype_refusal(name, rule, None, None, out)
            if refusal is not None:
                raise refusal
        copied = composite is not None and composite(args, kwargs)
        if _function.active_dispatch is not None and not copied:  # (a composite's ops are its plain ones)
            result = call_noting_out(function, args, kwargs, out, name, not dtype_given)
        else:
            result = function(*args, **kwargs)
        if rule == "clamp":  # torch's clamp.Tensor_out casts into its out; clamp.out wants the result's dtype
            return _write_clamp_out(name, args, kwargs, result, out)
        if rule == "variance" and isinstance(out, Tensor):
            result = _variance_in_out_dtype(function, args, kwargs, result, out)
        if isinstance(result, tuple):  # max(dim)'s (values, indices): each written as it can be cast
            if rule in _TUPLE_OUT_RULES and isinstance(out, (tuple, list)) and all(isinstance(o, Tensor) for o in out):
                refusal = _tuple_out_refusal(name, rule, args[0] if args else kwargs.get("input"), result, out)
                if refusal is not None:
                    raise refusal
            return _write_outs(result, out, name)
        if rule == "same_scalar_object" and isinstance(out, Tensor):
            refuse_out_under_autograd(name, out, result)  # (complex/polar: torch's autograd layer comes first)
        if rule not in _OUT_DTYPE_FIXED:  # (a fixed dtype was checked on entry)
            refusal = _out_dtype_refusal(name, rule, args[0] if args else kwargs.get("input"), result, out)
            if refusal is not None:
                raise refusal
        if copied:
            return write_composite_out(result, out, name)
        return write_out(result, out, name)

    return out_keyword_front(function, with_out)


def mixed_number_bounds(bounds) -> bool:
    """clamp's two bounds, one a number and one a 0-d tensor that does not require grad: torch's
    parser reads the tensor as a Number, so the call takes the (Scalar, Scalar) overload."""
    from ..tensor import Tensor

    return (len(bounds) == 2 and None not in bounds and isinstance(bounds[0], Tensor) != isinstance(bounds[1], Tensor)
            and all(not isinstance(b, Tensor) or (b.ndim == 0 and not b.requires_grad) for b in bounds))


def _write_clamp_out(name: str, args: tuple, kwargs: dict, result, out):
    """clamp's ``out``: with a tensor bound (clamp.Tensor_out, a TensorIterator op) the result is
    cast into any out that can hold it; with number bounds, a 0-d tensor beside a number among them
    (the Scalar overload, as torch's parser reads it), the out must have the result's dtype."""
    from ..tensor import Tensor, write_out

    bounds = (*args[1:], *(kwargs[k] for k in ("min", "max") if k in kwargs))
    by_tensors = any(isinstance(bound, Tensor) for bound in bounds) and not mixed_number_bounds(bounds)
    refusal = _out_dtype_refusal(name, "cast" if by_tensors else "same_elementwise", None, result, out)
    if refusal is not None:
        raise refusal
    return write_out(result, out, name)


def _nanmean_out_arguments(args: tuple, kwargs: dict, out, tensor_type) -> dict:
    """nanmean's keywords for a floating ``out`` wider than its floating input (bfloat16 into float32): torch's
    nanmean.out sums into the out (nansum.out, accumulating in the out's dtype) and divides it there, so the mean
    is the one computed in the out's dtype, not the input's mean cast (1.3574, not 1.3594)."""
    source = args[0] if args else kwargs.get("input")
    if (isinstance(source, tensor_type) and source.dtype.is_floating_point and out.dtype.is_floating_point
            and out.dtype.itemsize > source.dtype.itemsize):
        return {**kwargs, "dtype": out.dtype}
    return kwargs


def _mean_out_arguments(args: tuple, kwargs: dict, out, tensor_type) -> dict:
    """mean's keywords for an ``out`` as torch's kernels take it, or torch's refusal. Without a dim
    (mean.dtype_out) an out the input cannot be cast to is refused first; then a ``dtype`` must be the
    out's. Without a dtype a floating input's mean is computed in a floating or complex out's dtype (a
    float32 input's mean into a float64 out is the float64 one); over a dim (mean.out: a sum into the
    out, divided in place) an integral out is refused as that division's default-dtype result."""
    source = args[0] if args else kwargs.get("input")
    if not isinstance(source, tensor_type):
        return kwargs
    scalar = _dtype.scalar_name
    over_all = (args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis"))) is None
    if over_all and source.dtype._category > out.dtype._category:
        raise RuntimeError(f"mean.dtype_out(): input types can't be cast to the desired output type {scalar(out.dtype)}")
    dtype = kwargs.get("dtype")
    if dtype is not None:
        if getattr(dtype, "_category", 2) >= 2:  # (else mean's own refusal of the dtype, as torch's comes first)
            _refuse_other_dtype_out("mean", args, kwargs, out)
        return kwargs
    if source.dtype._category < 2:  # (mean's own "could not infer output dtype")
        return kwargs
    if out.dtype._category < 2:
        raise RuntimeError(f"result type {scalar(_dtype.get_default_dtype())} can't be cast to the desired output "
                           f"type {scalar(out.dtype)}")
    return {**kwargs, "dtype": out.dtype}


def _refuse_other_dtype_out(name: str, args: tuple, kwargs: dict, out) -> None:
    """torch's reductions and scans given an explicit ``dtype`` (sum, nansum, prod, mean, cumsum, cumprod)
    write only into an out of that dtype: refused after autograd's refusal, before anything is computed or
    resized (torch's kernels check it on entry)."""
    from ..tensor import Tensor, refuse_out_under_autograd

    source = args[0] if args else kwargs.get("input")
    if isinstance(source, Tensor):
        refuse_out_under_autograd(name, out, source)
    dtype = kwargs["dtype"]
    if dtype == out.dtype:
        return
    if name == "nansum" and isinstance(source, Tensor) and source.dtype._category >= 2 and dtype._category >= 2:
        # (an integral input or dtype takes sum's kernel, and its words)
        raise RuntimeError(f"nansum: provided dtype must match dtype of result. Got {_dtype.scalar_name(out.dtype)} "
                           f"and {_dtype.scalar_name(dtype)}.")
    raise RuntimeError(f"Expected out tensor to have dtype {_dtype.cpp_type_name(dtype)}, but got "
                       f"{_dtype.cpp_type_name(out.dtype)} instead")


# rules checked on each tensor of a tuple out (the others cast each result as it can)
_TUPLE_OUT_RULES = {"same", "values_and_long_indices", "histogram"}

# rules whose out dtype is fixed whatever the inputs are (torch's kernels check it on entry)
_OUT_DTYPE_FIXED = {"long", "long_samples"}

# ops whose kernels refuse an out= sharing any memory with an input, even the same tensor (torch's
# assert_no_overlap); elementwise ops allow an out that is exactly an input, so they are not here
_REFUSES_OUT_OVERLAPPING_INPUT = {"gather", "index_select", "masked_select", "cat", "take", "kthvalue", "aminmax"}


def _check_out_overlap(name: str, out, arguments) -> None:
    """torch's refusal of an ``out=`` whose elements alias each other (an expanded tensor) or, for the
    ops above, alias an input: the result would depend on the order elements are written."""
    from ..tensor import Tensor

    data = out._data
    if type(data) is not np.ndarray:
        return
    if has_expanded_dims(data):
        raise write_refusal(data)  # torch's "more than one element of the written-to tensor" error
    if name not in _REFUSES_OUT_OVERLAPPING_INPUT or not data.size:
        return
    inputs = [a for argument in arguments
              for a in (argument if isinstance(argument, (list, tuple)) else (argument,)) if isinstance(a, Tensor)]
    if any(type(a._data) is np.ndarray and np.may_share_memory(a._data, data) for a in inputs):
        raise RuntimeError("unsupported operation: some elements of the input tensor and the written-to tensor refer "
                           "to a single memory location. Please clone() the tensor before performing the operation.")


def _tuple_out_refusal(name: str, rule: str, input, results: tuple, outs) -> Exception | None:
    """torch's error where a tensor of a tuple ``out`` has the wrong dtype, else None: "same" asks
    each for its result's dtype (aminmax); kthvalue's values must have the input's, its indices int64."""
    if rule == "histogram":  # (hist, bin_edges): each the input's dtype
        for out, what in zip(outs, ("hist", "bin_edges")):
            if out.dtype != input.dtype:
                from .linear import cpp_type_name

                return RuntimeError(f"torch.histogram: input tensor and {what} tensor should have the same dtype, but "
                                    f"got input {cpp_type_name(input.dtype)} and {what} {cpp_type_name(out.dtype)}")
        return None
    if rule == "values_and_long_indices":
        if outs[0].dtype != input.dtype:
            return RuntimeError("output values must be of same type as input")
        if outs[1].dtype.name != "int64":
            return RuntimeError("output indices must be of scalar type Long")
        return None
    for result, out in zip(results, outs):
        refusal = _out_dtype_refusal(name, rule, input, result, out)
        if refusal is not None:
            return refusal
    return None


def _variance_in_out_dtype(function, args: tuple, kwargs: dict, result, out):
    """std/var's result for a real floating ``out`` of another dtype, as torch's kernels give it: over
    a dim (a result of more than one element) computed in the out's dtype (a float32 input's std into
    a float64 out is the float64 one); over everything (one element, torch's std_var_all) in the
    input's dtype and cast, which that kernel refuses for a Half or BFloat16 input into float32/64."""
    from ..tensor import Tensor

    source = args[0] if args else kwargs.get("input")
    if not (isinstance(source, Tensor) and source.dtype.is_floating_point and out.dtype.is_floating_point
            and source.dtype != out.dtype and source.numel() > 0):
        return result
    if result.numel() > 1:
        if args:
            return function(source.to(out.dtype), *args[1:], **kwargs)
        return function(**{**kwargs, "input": source.to(out.dtype)})
    if source.dtype.itemsize == 2 and out.dtype.itemsize > 2:
        raise RuntimeError(f"std_var_all: Unsupported dtype {_dtype.scalar_name(source.dtype)}")
    return result


def _out_dtype_refusal(name: str, rule: str, input, result, out) -> Exception | None:
    """torch's error where ``out``'s dtype does not suit ``name``'s ``rule``, else None."""
    from .linear import cpp_type_name

    scalar = _dtype.scalar_name
    expected, got = (None if result is None else result.dtype), out.dtype  # None: a rule needing no result
    if rule == "variance":  # (else as "cast")
        from ..tensor import Tensor

        # torch's std/var kernel over a dim is picked by the out's dtype, and a complex one has none for
        # a real input; a one-element result (a full reduction) or an empty input takes no kernel
        if (got.is_complex and isinstance(input, Tensor) and not input.dtype.is_complex
                and input.numel() > 0 and result.numel() > 1):
            return NotImplementedError(f"\"std_cpu\" not implemented for '{scalar(got)}'")
        return None
    if rule == "same_as_input" and got != input.dtype:
        return RuntimeError(f"Expected the dtype for input and out to match, but got {scalar(input.dtype)} for "
                            f"input's dtype and {scalar(got)} for out's dtype.")
    if rule == "same" and got != expected:
        return RuntimeError(f"Expected out tensor to have dtype {cpp_type_name(expected)}, but got "
                            f"{cpp_type_name(got)} instead")
    if rule == "same_norm" and got != expected:  # linalg.norm, linalg.matrix_norm
        return RuntimeError(f"linalg.{name} expected out tensor dtype {scalar(expected)} but got: {scalar(got)}")
    if rule == "same_vecdot" and got != expected:
        return RuntimeError(f"linalg.vecdot: Expected out of dtype{scalar(expected)} but found {scalar(got)}")
    if rule == "same_multi_dot" and got != expected:  # multi_dot, chain_matmul
        return RuntimeError(f"multi_dot(): expected out tensor to have dtype {cpp_type_name(expected).lower()} but "
                            f"got {cpp_type_name(got).lower()}")
    if rule == "same_as_self_asserted" and got != input.dtype:  # narrow_copy's TORCH_CHECK
        return RuntimeError("Expected self.dtype() == output.dtype() to be true, but got false.  (Could this error "
                            "message be improved?  If so, please report an enhancement request to PyTorch.)")
    if rule == "castable_eigenvalues" and expected._category > got._category:  # linalg.eigvals
        return RuntimeError(f"torch.linalg.{name}: Expected eigenvalues to be safely castable from {scalar(expected)} "
                            f"dtype, but got eigenvalues with dtype {scalar(got)}")
    if rule == "same_elementwise" and got != expected:
        return RuntimeError(f"Found dtype {scalar(got)} but expected {scalar(expected)}")
    if rule == "same_or_cast_if_complex" and got != expected:  # abs: a complex input's real result is cast
        if not input.dtype.is_complex or got.is_complex:  # (into a complex out: the input's own dtype)
            wanted = input.dtype if got.is_complex else expected
            return None if got == wanted else RuntimeError(f"Found dtype {scalar(got)} but expected {scalar(wanted)}")
        if expected._category > got._category:
            return RuntimeError(f"result type {scalar(expected)} can't be cast to the desired output type "
                                f"{scalar(got)}")
    if rule == "same_where" and got != expected:
        return RuntimeError(f"Expected out type to be {scalar(expected)} but got {scalar(got)}")
    if rule == "same_as_self" and got != input.dtype:
        return RuntimeError(f"{name}(): self and out expected to have the same dtype, but got self.dtype = "
                            f"{scalar(input.dtype)} and out.dtype = {scalar(got)}")
    if rule == "same_scalar_type" and got != expected:
        return RuntimeError(f"{name}(): self and result must have the same scalar type")
    if rule == "same_scalar_object" and got != expected:
        return RuntimeError(f"Expected object of scalar type {scalar(expected)} but got scalar type {scalar(got)} for "
                            "argument 'out'")
    if rule == "searchsorted_index" and got != expected:  # searchsorted, bucketize: int64, or int32 by out_int32
        return RuntimeError("torch.searchsorted(): output tensor's dtype is wrong, it can only be Int(int32) or "
                            "Long(int64) depending on whether out_int32 flag is True, but we got output tensor's "
                            f"dtype {scalar(got)} and out_int32 flag is {expected.name == 'int32'}")
    if rule == "long" and got.name != "int64":
        return RuntimeError(f"{name}: Expected out tensor to have scalar type Long but got scalar type{scalar(got)}")
    if rule == "long_samples" and got.name != "int64":
        return RuntimeError(f"{name} expects Long tensor out, got: {scalar(got)}")
    if rule == "floating" and not got.is_floating_point:
        return RuntimeError(f"{name}(): Expected floating point type for result tensor, but got: {scalar(got)}")
    if rule == "cat" and expected._category > got._category:  # stack's message names cat too
        return TypeError(f"torch.cat(): input types can't be cast to the desired output type {scalar(got)}")
    if rule == "castable" and expected._category > got._category:
        return RuntimeError("Expected canCast( typeMetaToScalarType(self.dtype()), typeMetaToScalarType(out.dtype())) "
                            "to be true, but got false.  (Could this error message be improved?  If so, please "
                            "report an enhancement request to PyTorch.)")
    return None


# ---------------------------------------------------------------- torch's overload parser
# torch's C++ functions parse their Python arguments against a list of signatures (python_arg_parser.cpp):
# the first that takes them runs. When none does, one whose argument count fits ("plausible") explains
# its own refusal ("argument 'dim' (position 2) must be int, not str"; "missing 1 required positional
# arguments"), and several plausible ones (or none) list every signature torch shows: "received an
# invalid combination of arguments - got (Tensor, str), but expected one of: ...". The public
# functions named in SIGNATURES check their arguments here before running, so a wrong type gets
# torch's class and message instead of whatever NumPy says later, and never half-runs.
#
# A signature is written in torch's own schema words: a type (``Tensor``, ``Scalar``, ``int64_t``,
# ``double``, ``bool``, ``str``, ``TensorList``, ``IntArrayRef``, ``ScalarType``, ``Layout``,
# ``Device``, ``Generator``), ``?`` where None is taken, ``[N]`` where a single int stands for a list
# of N; ``*`` starts the keyword-only ones. Each prints as torch prints it. A deprecated overload
# (``|deprecated`` after it, as torch writes it) takes its calls but, as in torch, is left out of
# the messages and of the plausible signatures that explain a refusal. (torch's named-tensor
# overloads, hidden from its messages, take no str dim here either: torch 2.13 refuses one.)

_SHOWN_TYPES = {"Tensor": "Tensor", "Scalar": "Number", "int64_t": "int", "double": "float", "bool": "bool",
                "str": "str", "TensorList": "tuple of Tensors", "IntArrayRef": "tuple of ints",
                "ScalarType": "torch.dtype", "Layout": "torch.layout", "Device": "torch.device",
                "Generator": "torch.Generator", "MemoryFormat": "torch.memory_format", "PyObject*": "object",
                "FloatArrayRef": "tuple of floats", "ScalarList": "tuple of Scalars"}

# NumPy's spellings torch's parser takes for these keywords
_NUMPY_KEYWORDS = {"dim": ("axis",), "keepdim": ("keepdims",), "input": ("x", "a", "x1"), "other": ("x2",)}


# the ops whose Tensor arguments torch's parser also takes as Python or NumPy numbers (its
# should_allow_numbers_as_tensors): ``x.add(2)`` binds ``(Tensor other)``, ``x.atan2(2)`` is refused
_NUMBERS_AS_TENSORS = frozenset({"add", "add_", "div", "div_", "divide", "divide_", "mul", "mul_", "multiply",
                                 "multiply_", "sub", "sub_", "subtract", "subtract_", "true_divide", "true_divide_",
                                 "floor_divide", "floor_divide_", "copy_"})


# the int parameters torch's schemas type SymInt (from the overloads in its stubs, torch/_C/*.pyi): its
# parser takes any object with __index__ for them (is_int_or_symint), where a plain int takes only an
# int or a NumPy integer (THPUtils_checkLong): x.tril(index_like) runs, x.unsqueeze(index_like) is refused
_SYMINT_PARAMETERS = {
    **dict.fromkeys(("as_strided", "as_strided_", "as_strided_copy", "as_strided_scatter"), {"storage_offset"}),
    "bincount": {"minlength"}, **dict.fromkeys(("conv1d", "conv2d", "conv3d"), {"groups"}), "eye": {"n", "m"},
    **dict.fromkeys(("kthvalue", "topk"), {"k"}), "multinomial": {"num_samples"},
    **dict.fromkeys(("narrow", "narrow_copy"), {"start", "length"}), **dict.fromkeys(("randint", "randint_like"), {"low", "high"}),
    "randperm": {"n"}, "repeat_interleave": {"repeats", "output_size"},
    **dict.fromkeys(("select", "select_copy", "select_scatter"), {"index"}), "slice_copy": {"start", "end", "step"},
    **dict.fromkeys(("split_copy", "unsafe_split"), {"split_size"}), "tensor_split": {"sections"},
    **dict.fromkeys(("tril", "tril_", "triu", "triu_"), {"diagonal"}),
}


class _Parameter:
    __slots__ = ("kind", "name", "allow_none", "size", "optional", "default", "keyword_only", "names",
                 "takes_numbers", "symint")

    def __init__(self, text: str, keyword_only: bool, takes_numbers: bool = False, symint: bool = False) -> None:
        kind, _, rest = text.partition(" ")
        self.allow_none = kind.endswith("?")
        kind = kind.rstrip("?")
        self.size = int(kind[kind.index("[") + 1:-1]) if "[" in kind else 0
        self.kind = kind.split("[")[0]
        self.name, has_default, self.default = rest.partition("=")
        self.optional = bool(has_default)
        # (torch's parser takes None for an int list whose default is empty: amax(x, None), max_pool2d's stride)
        self.allow_none = self.allow_none or self.default in ("None", "[]")
        self.keyword_only = keyword_only
        self.names = (self.name, *_NUMPY_KEYWORDS.get(self.name, ()))
        self.takes_numbers = takes_numbers and self.kind == "Tensor"
        self.symint = symint and self.kind == "int64_t"

    def __str__(self) -> str:
        shown = f"{_SHOWN_TYPES[self.kind]} {self.name}"
        return f"{shown} = {self.default}" if self.optional else shown


class _Signature:
    def __init__(self, name: str, text: str) -> None:
        self.name = name
        text, _, flag = text.partition("|")
        self.hidden = flag == "deprecated"
        # where torch binds the callable METH_NOARGS, the owner CPython names in its refusal
        # ("TensorBase" for a method, "torch" for a function of its module; set by _signatures)
        self.bound_without_arguments: str | None = None
        self.bound_with_one_argument: str | None = None  # (the same, for torch's METH_O functions)
        self.params: list[_Parameter] = []
        keyword_only = False
        for item in filter(None, text.strip("()").split(", ")):
            if item == "*":
                keyword_only = True
            else:
                self.params.append(_Parameter(item, keyword_only, name in _NUMBERS_AS_TENSORS,
                                              item.partition(" ")[2].partition("=")[0] in _SYMINT_PARAMETERS.get(name, ())))
        self.min_args = sum(not p.optional for p in self.params)
        self.max_args = len(self.params)
        self.max_pos_args = sum(not p.keyword_only for p in self.params)
        # expand(5, 3) is expand((5, 3)): a lone positional int list takes the positionals as varargs.
        # Not a sized one (var's ``int[1]? dim``): its first int is the whole list, so var(0, 1) is refused
        self.varargs = self.max_pos_args == 1 and self.params[0].kind == "IntArrayRef" and not self.params[0].size
        self.fast = [_fast_types(p) for p in self.params]
        self.by_name = {p.name: (index, fast) for index, (p, fast) in enumerate(zip(self.params, self.fast))}
        # the required parameters after the first n, for each n
        self.required = [[p.name for p in self.params[n:] if not p.optional] for n in range(len(self.params) + 1)]

    def takes(self, args: tuple, kwargs: dict) -> bool:
        """Whether the arguments are of the exact types this signature takes as they are (a Tensor,
        an int, a tuple of ints...): the common call's check, a few set lookups. False does not
        mean refused, only that ``parse`` must decide."""
        nargs = len(args)
        if self.varargs and nargs and args[0].__class__ is int:
            for value in args:
                if value.__class__ is not int or not _INT64_MIN <= value <= _INT64_MAX:
                    return False
            nargs = 1
        elif nargs > self.max_pos_args:
            return False
        else:
            for value, types in zip(args, self.fast):
                if value.__class__ not in types and not _fast_match(types, value) or (
                        value.__class__ is int and not _INT64_MIN <= value <= _INT64_MAX):
                    return False
        if kwargs:
            if self.bound_with_one_argument:  # (takes no keyword at all)
                return False
            by_name = self.by_name
            for key, value in kwargs.items():
                entry = by_name.get(key)
                if entry is None or entry[0] < nargs or not _fast_match(entry[1], value) or (
                        value.__class__ is int and not _INT64_MIN <= value <= _INT64_MAX):
                    return False
        for name in self.required[nargs]:
            if name not in kwargs:
                return False
        return True

    def __str__(self) -> str:
        parts, starred = [], False
        for p in self.params:
            if p.keyword_only and not starred:
                parts.append("*")
                starred = True
            parts.append(str(p))
        return f"({', '.join(parts)})"

    def parse(self, args: tuple, kwargs: dict, raise_error: bool) -> bool:
        """Whether this signature takes ``args``/``kwargs`` (torch's FunctionSignature::parse); with
        ``raise_error``, torch's TypeError for the first argument it refuses instead of False."""
        nargs = len(args)
        if self.bound_without_arguments and (args or kwargs):
            if raise_error:  # CPython's words: torch's callable takes no arguments at all (x.log2(1))
                owner = self.bound_without_arguments
                raise TypeError(f"{owner}.{self.name}() takes no keyword arguments" if kwargs
                                else f"{owner}.{self.name}() takes no arguments ({nargs} given)")
            return False
        owner = self.bound_with_one_argument
        if owner and (kwargs or nargs != 1):
            if raise_error:
                raise TypeError(f"{owner}.{self.name}() takes no keyword arguments" if kwargs
                                else f"{owner}.{self.name}() takes exactly one argument ({nargs} given)")
            return False
        if nargs > self.max_pos_args and not self.varargs:
            if raise_error:
                raise self._extra_args(nargs)
            return False
        position, remaining = 0, len(kwargs)
        for index, param in enumerate(self.params):
            is_keyword = position >= nargs
            if not is_keyword:
                if param.keyword_only:
                    if raise_error:
                        raise self._extra_args(nargs)
                    return False
                value, given = args[position], True
            else:
                given = False
                for key in param.names:
                    if key in kwargs:
                        value, given = kwargs[key], True
                        break
            if (not given and param.optional) or (given and value is None and param.allow_none):
                pass
            elif not given:
                if raise_error:
                    missing = [f'"{p.name}"' for p in self.params[index:] if not p.optional]
                    # (torch's plural is the other way round: "missing 1 required positional arguments")
                    raise TypeError(f"{self.name}() missing {len(missing)} required positional argument"
                                    f"{'s' if len(missing) == 1 else ''}: {', '.join(missing)}")
                return False
            else:
                failed = _check(param, value, index)
                if failed is None:
                    pass
                elif self.varargs and position == 0 and not is_keyword and _is_int_list(args, 0) is None:
                    position = nargs  # permute(1, 0), zeros(2): the positionals are the one list
                    continue
                elif self.varargs and position == 0 and nargs > 1:
                    if raise_error:
                        raise self._extra_args(nargs)
                    return False
                elif raise_error:
                    raise self._refusal(param, value, position, is_keyword, failed, args)
                else:
                    return False
            if not is_keyword:
                position += 1
            elif given:
                remaining -= 1
        if remaining > 0:
            if raise_error:
                raise self._extra_kwargs(kwargs, nargs)
            return False
        return True

    def _extra_args(self, nargs: int) -> TypeError:
        most, least = self.max_pos_args, self.min_args
        if least != most:
            return TypeError(f"{self.name}() takes from {least} to {most} positional arguments but {nargs} were given")
        return TypeError(f"{self.name}() takes {most} positional argument{'' if most == 1 else 's'} but {nargs} "
                         f"{'was' if nargs == 1 else 'were'} given")

    def _extra_kwargs(self, kwargs: dict, nargs: int) -> TypeError:
        for key in kwargs:
            index = next((i for i, p in enumerate(self.params) if key == p.name), -1)  # (NumPy's names not)
            if index < 0:
                return TypeError(f"{self.name}() got an unexpected keyword argument '{key}'")
            if index < nargs:
                return TypeError(f"{self.name}() got multiple values for argument '{key}'")
        return TypeError("invalid keyword arguments")

    def _refusal(self, param: _Parameter, value, position: int, is_keyword: bool, failed, args) -> TypeError:
        expected = _SHOWN_TYPES[param.kind]
        if is_keyword:
            return TypeError(f"{self.name}(): argument '{param.name}' must be {expected}, not {_type_name(value)}")
        if failed is not True:  # the element of a list that is not an int
            listed = value if isinstance(value, (tuple, list)) else args
            return TypeError(f"{self.name}(): argument '{param.name}' (position {position + 1}) must be {expected}, "
                             f"but found element of type {_type_name(listed[failed])} at pos {failed}")
        return TypeError(f"{self.name}(): argument '{param.name}' (position {position + 1}) must be {expected}, "
                         f"not {_type_name(value)}")


def _type_name(value) -> str:
    """The name torch's parser prints for ``value``'s type (torch.dtype for a dtype...)."""
    from ..tensor import Tensor

    if isinstance(value, Tensor):
        return type(value).__name__
    return _dtype.c_type_name(value)


def _is_index(value) -> bool:
    """torch's THPUtils_checkIndex: an int or anything with __index__, never a bool."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, int):
        return True
    try:
        operator.index(value)
    except (TypeError, ValueError, RuntimeError):
        return False
    return True


def _is_int_list(value, size: int):
    """None where torch's parser takes ``value`` as an int list (it checks only the first element: the
    rest fail later, on unpacking), else True, or the position of the element it refused."""
    if isinstance(value, (tuple, list)):
        return None if not value or _is_index(value[0]) else 0
    return None if size and _is_index(value) else True


def _check(param: _Parameter, value, index: int):
    """None where ``value`` has ``param``'s type as torch's parser checks it; True where not; the
    position of the refused element of a list. (Where this module cannot tell, it takes the value.)"""
    from ..tensor import Tensor

    kind = param.kind
    if kind == "Tensor":
        return None if isinstance(value, Tensor) or param.takes_numbers and isinstance(
            value, (bool, int, float, complex, np.number, np.bool_)) else True
    if kind == "int64_t":
        if isinstance(value, Tensor):
            if param.symint:  # torch's is_int_or_symint: one element of an integral type (its bool
                # passes the check, then fails an internal assert: refused here)
                return None if value.numel() == 1 and not value.dtype.is_floating_point \
                    and not value.dtype.is_complex and value.dtype.name != "bool" else True
            return None if value.ndim == 0 and not value.dtype.is_floating_point and not value.dtype.is_complex \
                and value.dtype.name != "bool" else True
        # torch's THPUtils_checkLong: a Python int (not a bool) or a NumPy integer; unlike an int list's
        # elements or a SymInt, any other object with __index__ is refused (x.random_(0, index_like))
        if param.symint:
            return None if _is_index(value) else True
        return None if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else True
    if kind == "IntArrayRef":
        return _is_int_list(value, param.size)
    if kind in ("Scalar", "double"):
        if isinstance(value, Tensor):  # (one that requires grad is no number to torch's parser)
            return None if value.ndim == 0 and not value.requires_grad else True
        if kind == "double" and isinstance(value, complex):
            return True
        # (a NumPy array, even a 0-d one, is no number to torch's parser)
        return None if isinstance(value, (bool, int, float, complex, np.number, np.bool_)) or (
            not isinstance(value, (str, bytes, tuple, list, dict, np.ndarray)) and hasattr(value, "__float__")) else True
    if kind == "bool":
        return None if isinstance(value, bool) else True  # (a NumPy bool is no Python bool to torch's parser)
    if kind == "str":
        return None if isinstance(value, str) else True
    if kind == "TensorList":
        if not isinstance(value, (tuple, list)):
            return True
        for position, item in enumerate(value):
            if not isinstance(item, Tensor):  # torch refuses the list at once, whatever signature comes next
                raise TypeError(f"expected Tensor as element {position} in argument {index}, but got "
                                f"{_type_name(item)}")
        return None
    if kind == "ScalarType":
        return None if isinstance(value, _dtype.dtype) or value in (int, float, bool, complex) else True
    if kind == "FloatArrayRef":
        return None if isinstance(value, (tuple, list)) else True
    if kind == "ScalarList":  # (a bool is a number to torch's check of each)
        return None if isinstance(value, (tuple, list)) and all(
            isinstance(item, (bool, int, float, complex, np.number)) for item in value) else True
    if kind == "MemoryFormat":
        from .. import memory_format

        return None if isinstance(value, memory_format) else True
    if kind == "Generator":
        from .. import Generator

        return None if isinstance(value, Generator) else True
    if kind == "Layout":
        return None if isinstance(value, _layout.layout) else True
    if kind == "Device":  # (a device, its string or an index: what each names is checked later)
        from .. import device

        return None if isinstance(value, (device, str)) or isinstance(value, int) and not isinstance(value, bool) \
            else True
    return None  # PyObject*: anything


def _unpack_refusal(name: str, signature: _Signature, args: tuple, kwargs: dict) -> Exception | None:
    """The error torch raises unpacking the arguments of the signature that took them: an int list's
    later element that is no int (its parser checked only the first), an int beyond int64."""
    position = 0
    for param in signature.params:
        if position < len(args) and not param.keyword_only:
            varargs = signature.varargs and position == 0 and not isinstance(args[0], (tuple, list))
            value = args if varargs else args[position]  # (zeros(2, 3): the positionals are the list)
            position += 1
        else:
            value = next((kwargs[key] for key in param.names if key in kwargs), None)
        if value is None or isinstance(value, (bool, np.bool_)) and param.kind != "IntArrayRef":
            continue
        if param.kind == "IntArrayRef" and isinstance(value, (tuple, list)):
            for at, item in enumerate(value):
                if at and not _is_index(item) and not isinstance(item, (bool, np.bool_)):
                    return TypeError(f"{name}(): argument '{param.name}' failed to unpack the object at pos {at + 1} "
                                     f'with error "type must be tuple of ints,but got {_type_name(item)}"')
                if _is_index(item) and not _fits_int64(operator.index(item)):
                    return TypeError(f"{name}(): argument '{param.name}' failed to unpack the object at pos {at + 1} "
                                     'with error "Overflow when unpacking long long"')
        elif param.kind in ("int64_t", "IntArrayRef") and _is_index(value) and not _fits_int64(operator.index(value)):
            return ValueError("Overflow when unpacking long long")
        elif param.kind == "Scalar" and isinstance(value, int) and value < -2**63:
            # (torch's Scalar takes an int below int64 as an unsigned one, and cannot)
            return OverflowError("can't convert negative int to unsigned")
    return None


def signature_refusal(name: str, signatures: list, args: tuple, kwargs: dict) -> Exception | None:
    """torch's TypeError where no signature of ``name`` takes these arguments (or its unpacking error
    where one does but a value cannot be unpacked), else None (torch's PythonArgParser::raw_parse)."""
    try:
        if len(signatures) == 1:
            signatures[0].parse(args, kwargs, True)
            return _unpack_refusal(name, signatures[0], args, kwargs)
        for signature in signatures:
            if signature.parse(args, kwargs, False):
                return _unpack_refusal(name, signature, args, kwargs)
        count = len(args) + len(kwargs)
        plausible = [s for s in signatures if s.min_args <= count <= s.max_args and not s.hidden]
        if len(plausible) == 1:
            plausible[0].parse(args, kwargs, True)
    except TypeError as refusal:
        return refusal
    return TypeError(_invalid_combination(name, [s for s in signatures if not s.hidden], args, kwargs))


_MASK64 = (1 << 64) - 1
_MURMUR_MUL = 0xc6a4a7935bd1e995
# libstdc++'s _Prime_rehash_policy: __fast_bkt for small counts, then the first primes of __prime_list
_FAST_BUCKETS = (2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13)
_PRIME_BUCKETS = (17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 103, 109, 113, 127,
                  137, 139, 149, 157, 167, 179, 193, 199, 211, 227, 241, 257, 277, 293, 313, 337, 359, 383, 409,
                  439, 467, 503, 541)


def _std_string_hash(text: str) -> int:
    """libstdc++'s std::hash<std::string> on 64-bit: _Hash_bytes(data, len, 0xc70f6907)."""
    data = text.encode()
    mix = lambda v: v ^ (v >> 47)  # noqa: E731 - libstdc++'s shift_mix
    aligned = len(data) & ~7
    value = (0xc70f6907 ^ (len(data) * _MURMUR_MUL)) & _MASK64
    for i in range(0, aligned, 8):
        value ^= (mix((int.from_bytes(data[i:i + 8], "little") * _MURMUR_MUL) & _MASK64) * _MURMUR_MUL) & _MASK64
        value = (value * _MURMUR_MUL) & _MASK64
    if len(data) & 7:
        value = ((value ^ int.from_bytes(data[aligned:], "little")) * _MURMUR_MUL) & _MASK64
    return mix((mix(value) * _MURMUR_MUL) & _MASK64)


def _torch_keyword_order(names) -> list:
    """The order torch's format_invalid_args lists keywords in. It copies them into a
    std::unordered_map<std::string, PyObject*> and iterates that, so the order is libstdc++'s: 13
    buckets from the first insertion (more past 13 keys, relinking the list), each new key put at
    the front of its bucket's run, or of the whole list when its bucket was empty. For keys in
    distinct buckets that is the reverse of the call's order. (Checked against torch 2.13 on 363
    random sets of 2 to 20 keywords.)"""
    names = list(names)
    order: list = []
    buckets, next_resize = 1, 0
    hashes = {name: _std_string_hash(name) for name in names}

    def link(name):
        bucket = hashes[name] % buckets
        at = next((i for i, other in enumerate(order) if hashes[other] % buckets == bucket), 0)
        order.insert(at, name)

    for count, name in enumerate(names, start=1):
        if count > next_resize:
            wanted = max(count, 0 if next_resize else 11)
            if wanted >= buckets:
                grown = max(wanted + 1, buckets * 2)
                buckets = (_FAST_BUCKETS[grown] if grown < len(_FAST_BUCKETS)
                           else next((p for p in _PRIME_BUCKETS if p >= grown), grown))
                next_resize = buckets
                relinked, order[:] = list(order), []
                for other in relinked:
                    link(other)
            else:
                next_resize = buckets
        link(name)
    return order


def _invalid_combination(name: str, shown: list, args: tuple, kwargs: dict) -> str:
    """torch's format_invalid_args: what was got, then each signature; one whose number of words
    matches the call says which arguments (marked !...!) or keywords it did not take. A lone
    signature says it inline: the keywords it does not know, or the arguments marked."""
    keywords = _torch_keyword_order(kwargs)
    got = ", ".join([_type_name(a) for a in args] + [f"{k}={_type_name(kwargs[k])}" for k in keywords])
    if kwargs and not args:
        got += ", "  # (torch trims the last separator only after a positional argument)
    texts = [str(s) for s in shown]
    if len(texts) == 1:  # (its keywords are looked at whatever the count: torch.addmv(x, no_such_keyword=1))
        unmatched, marked = _mismatch(texts[0], args, kwargs, keywords, any_count=True)
        if unmatched:
            return (f"{name}() received an invalid combination of arguments - got unrecognized keyword arguments: "
                    f"{', '.join(unmatched)}")
        return (f"{name}() received an invalid combination of arguments - got ({marked or got}), "
                f"but expected {texts[0]}")
    lines = [f"{name}() received an invalid combination of arguments - got ({got}), but expected one of:"]
    for text in texts:
        lines.append(f" * {text}")
        unmatched, marked = _mismatch(text, args, kwargs, keywords)
        if unmatched:
            lines.append(f"      didn't match because some of the keywords were incorrect: {', '.join(unmatched)}")
        elif marked:
            lines.append(f"      didn't match because some of the arguments have invalid types: ({marked})")
    return "\n".join(lines) + "\n"


def _mismatch(text: str, args: tuple, kwargs: dict, keywords: list, any_count: bool = False) -> tuple:
    """Where one printed signature has as many words as the call has arguments (or, ``any_count``,
    whatever their number: a lone signature's keywords): the keywords it does not take (torch's
    _tryMatchKwargs, looking only at its last words), else, for the same count, the call's arguments
    with those it refuses marked !...! (_formattedArgDesc); ([], "") for another count."""
    words = text[1:-1].split(", ") if text != "()" else [""]
    same_count = len(args) + len(kwargs) == len(words)
    if not (same_count or any_count and kwargs):
        return [], ""
    start = max(len(words) - len(kwargs), 0)
    unmatched = [k for k in keywords if not any(_word_name(w) == k for w in words[start:])]
    if unmatched or not same_count:
        return unmatched, ""
    marked = []
    for i, word in enumerate(words):
        value = args[i] if i < len(args) else kwargs[_word_name(word)]  # (torch: kwargs.at(its name))
        shown_type = _described(value)
        text_value = f"{_word_name(word)}={shown_type}" if i >= len(args) else shown_type
        marked.append(text_value if _word_matches(word, value) else f"!{text_value}!")
    return [], ", ".join(marked) + (", " if kwargs and not args else "")  # (trimmed as ``got`` is)


def _word_name(word: str) -> str:
    return word[word.rfind(" ") + 1:]


def _word_matches(word: str, value) -> bool:
    """torch's invalid_arguments.cpp match of a value against one printed word of a signature: by the
    printed type name alone (``int`` takes an int, ``float`` an int or a float, ``Tensor`` a Tensor;
    a word with a default, ``tuple of ints`` and ``*`` match nothing)."""
    kind = word[:word.rfind(" ")] if " " in word else word
    typename = _type_name(value)
    if kind == "float":
        return typename in ("float", "int")
    return typename == kind


def _described(value) -> str:
    if isinstance(value, (tuple, list)):
        items = ", ".join(_type_name(item) for item in value)
        if isinstance(value, tuple):
            return f"{_type_name(value)} of ({items}{',' if len(value) == 1 else ''})"
        return f"{_type_name(value)} of [{items}]"
    return _type_name(value)


_CREATION = ("ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=False, "
             "bool? requires_grad=False")
_REDUCTION_BY_DIMS = "(Tensor input, IntArrayRef[1]? dim, bool keepdim=False, *, ScalarType? dtype=None, Tensor out=None)"
_MAX_MIN = ("(Tensor input, *, Tensor out=None)", "(Tensor input, Tensor other, *, Tensor out=None)",
            "(Tensor input, int64_t dim, bool keepdim=False, *, TensorList[2] out=None)")
_CLAMP = ("(Tensor input, Tensor? min=None, Tensor? max=None, *, Tensor out=None)",
          "(Tensor input, Scalar? min=None, Scalar? max=None, *, Tensor out=None)")
_SCATTER = ("(Tensor input, int64_t dim, Tensor index, Tensor src, *, Tensor out=None)",
            "(Tensor input, int64_t dim, Tensor index, Tensor src, *, str reduce, Tensor out=None)",
            "(Tensor input, int64_t dim, Tensor index, Scalar value, *, Tensor out=None)",
            "(Tensor input, int64_t dim, Tensor index, Scalar value, *, str reduce, Tensor out=None)")
_SORT = ("(Tensor input, *, bool? stable, int64_t dim=-1, bool descending=False, TensorList[2] out=None)",
         "(Tensor input, int64_t dim=-1, bool descending=False, *, TensorList[2] out=None)")
_LINSPACE = tuple(f"({start} start, {end} end, int64_t steps, *, Tensor out=None, {_CREATION})"
                  for start, end in (("Tensor", "Tensor"), ("Scalar", "Tensor"), ("Tensor", "Scalar"),
                                     ("Scalar", "Scalar")))
# torch takes samples ``x`` or a spacing ``dx``, never both, and no None for either
_TRAPEZOID = ("(Tensor y, Tensor x, *, int64_t dim=-1)", "(Tensor y, *, Scalar dx=1, int64_t dim=-1)")
# addcmul and addcdiv, with the overload that puts the value first (old optimizers' addcmul_(1 - beta, g, g))
_ADD_PRODUCT = ("(Tensor input, Tensor tensor1, Tensor tensor2, *, Scalar value=1, Tensor out=None)",
                "(Tensor input, Scalar value, Tensor tensor1, Tensor tensor2, *, Tensor out=None)|deprecated")
# the BLAS products that add a scaled input, with the overloads that put beta (and alpha) first
# (torch.addmm(beta, M, m1, m2), old code's ``M.addmm_(0, 1, a, b)``): deprecated in torch, still taken
_ADDED_PRODUCT_SCALARS = "*, Scalar beta=1, Scalar alpha=1"


def _added_product(first: str, second: str, out_dtype: bool = False, out: bool = True) -> tuple:
    tensors, out_keyword = f"Tensor {first}, Tensor {second}", ", *, Tensor out=None" if out else ""
    return (f"(Tensor input, {tensors}, {_ADDED_PRODUCT_SCALARS}{', Tensor out=None' if out else ''})",
            *((f"(Tensor input, {tensors}, ScalarType out_dtype, {_ADDED_PRODUCT_SCALARS}, Tensor out=None)",)
              if out_dtype else ()),
            f"(Scalar beta, Tensor input, Scalar alpha, {tensors}{out_keyword})|deprecated",
            f"(Scalar beta, Tensor input, {tensors}{out_keyword})|deprecated")


_ADDED_PRODUCTS = {"addmm": ("mat1", "mat2"), "addbmm": ("batch1", "batch2"), "baddbmm": ("batch1", "batch2"),
                   "addmv": ("mat", "vec"), "addr": ("vec1", "vec2")}
_VARIANCE = ("(Tensor input, IntArrayRef[1]? dim, bool unbiased=True, bool keepdim=False, *, Tensor out=None)",
             "(Tensor input, IntArrayRef[1]? dim=None, *, Scalar? correction=None, bool keepdim=False, Tensor out=None)",
             "(Tensor input, bool unbiased=True)")
_VARIANCE_AND_MEAN = tuple(text.replace(", *, Tensor out=None)", ")").replace(", Tensor out=None)", ")")
                           for text in _VARIANCE)
_RANDOM_SIZED = (f"(IntArrayRef size, *, Generator? generator, Tensor out=None, {_CREATION})",
                 f"(IntArrayRef size, *, Tensor out=None, {_CREATION})")

# the binary ops torch overloads for a Tensor or a Number other (the comparisons, fmod...)
_TENSOR_OR_NUMBER = ("(Tensor input, Tensor other, *, Tensor out=None)", "(Tensor input, Scalar other, *, Tensor out=None)")
# ... and those that also take a Number first (torch.remainder(2, x))
_EITHER_A_NUMBER = ("(Tensor input, Tensor other, *, Tensor out=None)", "(Scalar self, Tensor other)",
                    "(Tensor input, Scalar other, *, Tensor out=None)")
_TENSORS_ONLY = ("(Tensor input, Tensor other, *, Tensor out=None)",)
# add and sub, with the overload that puts alpha first (x.add(2, y), deprecated in torch)
_ADD = ("(Tensor input, Tensor other, *, Scalar alpha=1, Tensor out=None)",
        "(Tensor input, Scalar alpha, Tensor other, *, Tensor out=None)|deprecated")
_DIV = ("(Tensor input, Tensor other, *, Tensor out=None)",
        "(Tensor input, Tensor other, *, str? rounding_mode, Tensor out=None)",
        "(Tensor input, Scalar other, *, str? rounding_mode)")
_TRUE_DIVIDE = ("(Tensor input, Tensor other, *, Tensor out=None)", "(Tensor input, Scalar other)")
_POW_METHOD = ("(Tensor input, Tensor exponent)", "(Tensor input, Scalar exponent)")
_LERP = ("(Tensor input, Tensor end, Tensor weight, *, Tensor out=None)",
         "(Tensor input, Tensor end, Scalar weight, *, Tensor out=None)")
_COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")
# torch's functions of one argument bound METH_O (no parser: CPython counts their arguments)
_BOUND_WITH_ONE_ARGUMENT = frozenset({"from_numpy"})
# torch's functions whose parser names another (torch.spmm is mm's binding; torch.to_dlpack, in
# Python, hands its tensor to _to_dlpack)
_PARSER_NAMES = {"spmm": "mm", "to_dlpack": "_to_dlpack"}
# torch's aliases parsed with their base op's signatures, each naming itself in its refusals
_ALIAS_OF = {"greater": "gt", "greater_equal": "ge", "less": "lt", "less_equal": "le", "not_equal": "ne",
             "arctan2": "atan2"}

# torch's signatures (python_torch_functions) of the functions whose arguments are checked here first
SIGNATURES: dict[str, tuple] = {
    **{name: _TENSOR_OR_NUMBER for name in (*_COMPARISONS, "fmod", "copysign")},
    **{name: _EITHER_A_NUMBER for name in ("remainder", "bitwise_and", "bitwise_or", "bitwise_xor")},
    "xlogy": ("(Tensor input, Tensor other, *, Tensor out=None)", "(Scalar self, Tensor other, *, Tensor out=None)",
              "(Tensor input, Scalar other, *, Tensor out=None)"),
    **{name: _TENSORS_ONLY for name in ("atan2", "maximum", "minimum", "fmax", "fmin", "hypot",
                                        "nextafter", "logical_and", "logical_or", "logical_xor", "mul")},
    "multiply": (*_TENSORS_ONLY, "(Tensor input, Scalar other)"),
    "add": _ADD,
    "sub": _ADD,
    "subtract": ("(Tensor input, Tensor other, *, Scalar alpha=1, Tensor out=None)",
                 "(Tensor input, Scalar other, Scalar alpha=1)"),
    "div": _DIV,
    "divide": (*_DIV[:2], "(Tensor input, Scalar other)", _DIV[2]),
    "true_divide": _TRUE_DIVIDE,
    "floor_divide": _TRUE_DIVIDE,
    "pow": ("(Tensor input, Tensor exponent, *, Tensor out=None)", "(Scalar self, Tensor exponent, *, Tensor out=None)",
            "(Tensor input, Scalar exponent, *, Tensor out=None)"),
    "lerp": _LERP,
    **{name: ("(Tensor input, int64_t source, int64_t destination)",
              "(Tensor input, IntArrayRef source, IntArrayRef destination)") for name in ("movedim", "moveaxis")},
    **{name: ("(TensorList tensors, *, Tensor out=None)",) for name in ("vstack", "row_stack")},
    "celu": ("(Tensor input, Scalar alpha=1.0)",),
    "celu_": ("(Tensor input, Scalar alpha=1.0)",),
    "logit": ("(Tensor input, double? eps=None, *, Tensor out=None)",),
    "logit_": ("(Tensor input, double? eps=None)",),
    "combinations": ("(Tensor input, int64_t r=2, bool with_replacement=False)",),
    # (copied from torch 2.13's listings of these overloaded functions)
    "all": ("(Tensor input, *, Tensor out=None)", "(Tensor input, IntArrayRef? dim=None, bool keepdim=False, *, Tensor out=None)", "(Tensor input, int64_t dim, bool keepdim=False, *, Tensor out=None)"),
    "any": ("(Tensor input, *, Tensor out=None)", "(Tensor input, IntArrayRef? dim=None, bool keepdim=False, *, Tensor out=None)", "(Tensor input, int64_t dim, bool keepdim=False, *, Tensor out=None)"),
    "conv1d": ("(Tensor input, Tensor weight, Tensor? bias=None, IntArrayRef[1] stride=1, IntArrayRef[1] padding=0, IntArrayRef[1] dilation=1, int64_t groups=1)", "(Tensor input, Tensor weight, Tensor? bias=None, IntArrayRef[1] stride=1, str padding=\"valid\", IntArrayRef[1] dilation=1, int64_t groups=1)"),
    "conv2d": ("(Tensor input, Tensor weight, Tensor? bias=None, IntArrayRef[2] stride=1, IntArrayRef[2] padding=0, IntArrayRef[2] dilation=1, int64_t groups=1)", "(Tensor input, Tensor weight, Tensor? bias=None, IntArrayRef[2] stride=1, str padding=\"valid\", IntArrayRef[2] dilation=1, int64_t groups=1)"),
    "conv3d": ("(Tensor input, Tensor weight, Tensor? bias=None, IntArrayRef[3] stride=1, IntArrayRef[3] padding=0, IntArrayRef[3] dilation=1, int64_t groups=1)", "(Tensor input, Tensor weight, Tensor? bias=None, IntArrayRef[3] stride=1, str padding=\"valid\", IntArrayRef[3] dilation=1, int64_t groups=1)"),
    "bucketize": ("(Tensor input, Tensor boundaries, *, bool out_int32=False, bool right=False, Tensor out=None)", "(Scalar self, Tensor boundaries, *, bool out_int32=False, bool right=False)"),
    "bitwise_left_shift": ("(Tensor input, Tensor other, *, Tensor out=None)", "(Scalar self, Tensor other)", "(Tensor input, Scalar other, *, Tensor out=None)"),
    "bitwise_right_shift": ("(Tensor input, Tensor other, *, Tensor out=None)", "(Scalar self, Tensor other)", "(Tensor input, Scalar other, *, Tensor out=None)"),
    "float_power": ("(Tensor input, Tensor exponent, *, Tensor out=None)", "(Scalar self, Tensor exponent, *, Tensor out=None)", "(Tensor input, Scalar exponent, *, Tensor out=None)"),
    "isin": ("(Tensor elements, Tensor test_elements, *, bool assume_unique=False, bool invert=False, Tensor out=None)", "(Scalar element, Tensor test_elements, *, bool assume_unique=False, bool invert=False, Tensor out=None)", "(Tensor elements, Scalar test_element, *, bool assume_unique=False, bool invert=False, Tensor out=None)"),
    "index_fill": ("(Tensor input, int64_t dim, Tensor index, Tensor value)", "(Tensor input, int64_t dim, Tensor index, Scalar value)"),
    "count_nonzero": ("(Tensor input, int64_t? dim=None)", "(Tensor input, IntArrayRef dim)"),
    "dsplit": ("(Tensor input, int64_t sections)", "(Tensor input, IntArrayRef indices)"),
    "hsplit": ("(Tensor input, int64_t sections)", "(Tensor input, IntArrayRef indices)"),
    "vsplit": ("(Tensor input, int64_t sections)", "(Tensor input, IntArrayRef indices)"),
    "tensor_split": ("(Tensor input, IntArrayRef indices, int64_t dim=0)", "(Tensor input, Tensor tensor_indices_or_sections, int64_t dim=0)", "(Tensor input, int64_t sections, int64_t dim=0)"),
    "fill": ("(Tensor input, Tensor value)", "(Tensor input, Scalar value)"),
    "fill_": ("(Tensor input, Tensor value)", "(Tensor input, Scalar value)"),
    "nanquantile": ("(Tensor input, Tensor q, int64_t? dim=None, bool keepdim=False, *, str interpolation=\"linear\", Tensor out=None)", "(Tensor input, double q, int64_t? dim=None, bool keepdim=False, *, str interpolation=\"linear\", Tensor out=None)"),
    "quantile": ("(Tensor input, Tensor q, int64_t? dim=None, bool keepdim=False, *, str interpolation=\"linear\", Tensor out=None)", "(Tensor input, double q, int64_t? dim=None, bool keepdim=False, *, str interpolation=\"linear\", Tensor out=None)"),
    "where": ("(Tensor condition)", "(Tensor condition, Tensor input, Tensor other, *, Tensor out=None)",
              "(Tensor condition, Scalar self, Tensor other)", "(Tensor condition, Tensor input, Scalar other)",
              "(Tensor condition, Scalar self, Scalar other)"),
    "sum": ("(Tensor input, *, ScalarType? dtype=None)", _REDUCTION_BY_DIMS),
    "mean": ("(Tensor input, *, ScalarType? dtype=None, Tensor out=None)", _REDUCTION_BY_DIMS),
    "max": _MAX_MIN,
    "min": _MAX_MIN,
    "argmax": ("(Tensor input, int64_t? dim=None, bool keepdim=False, *, Tensor out=None)",),
    "argmin": ("(Tensor input, int64_t? dim=None, bool keepdim=False, *, Tensor out=None)",),
    "cat": ("(TensorList tensors, int64_t dim=0, *, Tensor out=None)",),
    "concat": ("(TensorList tensors, int64_t dim=0, *, Tensor out=None)",),
    "concatenate": ("(TensorList tensors, int64_t dim=0, *, Tensor out=None)",),
    "stack": ("(TensorList tensors, int64_t dim=0, *, Tensor out=None)",),
    "reshape": ("(Tensor input, IntArrayRef shape)",),
    "permute": ("(Tensor input, IntArrayRef dims)",),
    "transpose": ("(Tensor input, int64_t dim0, int64_t dim1)",),
    "index_select": ("(Tensor input, int64_t dim, Tensor index, *, Tensor out=None)",),
    "gather": ("(Tensor input, int64_t dim, Tensor index, *, bool sparse_grad=False, Tensor out=None)",),
    "scatter": _SCATTER,
    "clamp": _CLAMP,
    "clip": _CLAMP,
    "clamp_min": ("(Tensor input, Tensor min, *, Tensor out=None)", "(Tensor input, Scalar min, *, Tensor out=None)"),
    "clamp_max": ("(Tensor input, Tensor max, *, Tensor out=None)", "(Tensor input, Scalar max, *, Tensor out=None)"),
    "clamp_min_": ("(Tensor input, Tensor min)", "(Tensor input, Scalar min)"),
    "clamp_max_": ("(Tensor input, Tensor max)", "(Tensor input, Scalar max)"),
    "clamp_": ("(Tensor input, Tensor? min=None, Tensor? max=None)", "(Tensor input, Scalar? min=None, Scalar? max=None)"),
    "clip_": ("(Tensor input, Tensor? min=None, Tensor? max=None)", "(Tensor input, Scalar? min=None, Scalar? max=None)"),
    "topk": ("(Tensor input, int64_t k, int64_t dim=-1, bool largest=True, bool sorted=True, *, "
             "TensorList[2] out=None)",),
    "sort": _SORT,
    "chunk": ("(Tensor input, int64_t chunks, int64_t dim=0)",),
    "histc": ("(Tensor input, int64_t bins=100, Scalar min=0, Scalar max=0, *, Tensor out=None)",),
    "unsqueeze": ("(Tensor input, int64_t dim)",),
    "squeeze": ("(Tensor input)", "(Tensor input, int64_t dim)", "(Tensor input, IntArrayRef dim)"),
    "flatten": ("(Tensor input, int64_t start_dim=0, int64_t end_dim=-1)",),
    "cumsum": ("(Tensor input, int64_t dim, *, ScalarType? dtype=None, Tensor out=None)",),
    "logcumsumexp": ("(Tensor input, int64_t dim, *, Tensor out=None)",),
    "cumprod": ("(Tensor input, int64_t dim, *, ScalarType? dtype=None, Tensor out=None)",),
    "cummax": ("(Tensor input, int64_t dim, *, TensorList[2] out=None)",),
    "cummin": ("(Tensor input, int64_t dim, *, TensorList[2] out=None)",),
    "kron": ("(Tensor input, Tensor other, *, Tensor out=None)",),
    "outer": ("(Tensor input, Tensor vec2, *, Tensor out=None)",),
    "take_along_dim": ("(Tensor input, Tensor indices, int64_t? dim=None, *, Tensor out=None)",),
    "addcmul": _ADD_PRODUCT,
    "addcdiv": _ADD_PRODUCT,
    "argsort": ("(Tensor input, *, bool stable, int64_t dim=-1, bool descending=False, Tensor out=None)",
                "(Tensor input, int64_t dim=-1, bool descending=False)"),
    "roll": ("(Tensor input, IntArrayRef[1] shifts, IntArrayRef[1] dims=None)",),
    "diff": ("(Tensor input, int64_t n=1, int64_t dim=-1, Tensor? prepend=None, Tensor? append=None, *, "
             "Tensor out=None)",),
    "log2": ("(Tensor input, *, Tensor out=None)",),
    "relu": ("(Tensor input)",),  # (F.relu's inplace is nn.functional's own: torch.relu(x, True) is refused)
    "ger": ("(Tensor input, Tensor vec2, *, Tensor out=None)",),  # (outer's old name: its messages name ger)
    "embedding_bag": ("(Tensor weight, Tensor indices, Tensor offsets, bool scale_grad_by_freq, int64_t mode, "
                      "bool sparse, Tensor? per_sample_weights, bool include_last_offset, int64_t? padding_idx)",
                      "(Tensor weight, Tensor indices, Tensor offsets, bool scale_grad_by_freq=False, "
                      "int64_t mode=0, bool sparse=False, Tensor? per_sample_weights=None, "
                      "bool include_last_offset=False)"),
    "trapezoid": _TRAPEZOID,
    "cumulative_trapezoid": _TRAPEZOID,
    "trapz": ("(Tensor y, *, double dx=1, int64_t dim=-1)", "(Tensor y, Tensor x, *, int64_t dim=-1)"),
    "softmax": ("(Tensor input, int64_t dim, ScalarType? dtype=None, *, Tensor out=None)",),
    "log_softmax": ("(Tensor input, int64_t dim, ScalarType? dtype=None, *, Tensor out=None)",),
    "var": _VARIANCE,
    "std": _VARIANCE,
    "var_mean": _VARIANCE_AND_MEAN,
    "std_mean": _VARIANCE_AND_MEAN,
    "prod": ("(Tensor input, *, ScalarType? dtype=None)",
             "(Tensor input, int64_t dim, bool keepdim=False, *, ScalarType? dtype=None, Tensor out=None)"),
    "amax": ("(Tensor input, IntArrayRef[1] dim=[], bool keepdim=False, *, Tensor out=None)",),
    "amin": ("(Tensor input, IntArrayRef[1] dim=[], bool keepdim=False, *, Tensor out=None)",),
    "logsumexp": ("(Tensor input, IntArrayRef[1] dim, bool keepdim=False, *, Tensor out=None)",),
    "masked_fill": ("(Tensor input, Tensor mask, Tensor value)", "(Tensor input, Tensor mask, Scalar value)"),
    "repeat_interleave": ("(Tensor input, Tensor repeats, int64_t? dim=None, *, int64_t? output_size=None)",
                          "(Tensor repeats, *, int64_t? output_size=None)",
                          "(Tensor input, int64_t repeats, int64_t? dim=None, *, int64_t? output_size=None)"),
    "matmul": ("(Tensor input, Tensor other, *, Tensor out=None)",),
    "mm": ("(Tensor input, Tensor mat2, *, Tensor out=None)",
           "(Tensor input, Tensor mat2, ScalarType out_dtype, *, Tensor out=None)"),
    "bmm": ("(Tensor input, Tensor mat2, *, Tensor out=None)",
            "(Tensor input, Tensor mat2, ScalarType out_dtype, *, Tensor out=None)"),
    "narrow": ("(Tensor input, int64_t dim, Tensor start, int64_t length)",
               "(Tensor input, int64_t dim, int64_t start, int64_t length)"),
    **{name: _added_product(*tensors, out_dtype=name in ("addmm", "baddbmm"))
       for name, tensors in _ADDED_PRODUCTS.items()},
    "addmv_": _added_product("mat", "vec", out=False),
    # the top-level norms and losses nn.functional calls positionally: its refusals give positions,
    # these (called with keywords) do not
    **{name: (f"(Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean, Tensor? running_var, bool {flag}, "
              "double momentum, double eps, bool cudnn_enabled)",)
       for name, flag in (("batch_norm", "training"), ("instance_norm", "use_input_stats"))},
    "native_batch_norm": ("(Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean, Tensor? running_var, "
                          "bool training, double momentum, double eps)",),
    "layer_norm": ("(Tensor input, IntArrayRef normalized_shape, Tensor? weight=None, Tensor? bias=None, "
                   "double eps=1e-05, bool cudnn_enable=True)",),
    "group_norm": ("(Tensor input, int64_t num_groups, Tensor? weight=None, Tensor? bias=None, double eps=1e-05, "
                   "bool cudnn_enabled=True)",),
    "hinge_embedding_loss": ("(Tensor input, Tensor target, double margin=1.0, int64_t reduction=Mean)",),
    **{name: ("(Tensor input1, Tensor input2, Tensor target, double margin=0.0, int64_t reduction=Mean)",)
       for name in ("cosine_embedding_loss", "margin_ranking_loss")},
    "poisson_nll_loss": ("(Tensor input, Tensor target, bool log_input, bool full, double eps, int64_t reduction)",),
    # torch's top-level max pools take no return_indices (nn.functional's option: *_with_indices)
    **{f"max_pool{d}d": (f"(Tensor input, IntArrayRef[{d}] kernel_size, IntArrayRef[{d}] stride=[], "
                         f"IntArrayRef[{d}] padding=0, IntArrayRef[{d}] dilation=1, bool ceil_mode=False)",)
       for d in (1, 2, 3)},
    # the creation functions, with torch's full signatures (dtype, layout, device, pin_memory, requires_grad)
    **{name: (f"(int64_t window_length, *, {_CREATION})", f"(int64_t window_length, bool periodic, *, {_CREATION})")
       for name in ("bartlett_window", "blackman_window", "hann_window")},
    "hamming_window": (f"(int64_t window_length, *, {_CREATION})", f"(int64_t window_length, bool periodic, *, {_CREATION})",
                       f"(int64_t window_length, bool periodic, double alpha, *, {_CREATION})",
                       f"(int64_t window_length, bool periodic, double alpha, double beta, *, {_CREATION})"),
    "kaiser_window": (f"(int64_t window_length, *, {_CREATION})", f"(int64_t window_length, bool periodic, *, {_CREATION})",
                      f"(int64_t window_length, bool periodic, double beta, *, {_CREATION})"),
    "eye": (f"(int64_t n, *, Tensor out=None, {_CREATION})", f"(int64_t n, int64_t m, *, Tensor out=None, {_CREATION})"),
    **{name: (f"(int64_t row, int64_t col, int64_t offset=0, *, {_CREATION})",)
       for name in ("tril_indices", "triu_indices")},
    "range": (f"(Scalar start, Scalar end, Scalar step=1, *, Tensor out=None, {_CREATION})",),
    "scalar_tensor": (f"(Scalar s, *, {_CREATION})",),
    "empty_strided": (f"(IntArrayRef size, IntArrayRef stride, *, {_CREATION})",),
    "empty_permuted": (f"(IntArrayRef size, IntArrayRef physical_layout, *, {_CREATION})",),
    "full_like": (f"(Tensor input, Scalar fill_value, *, MemoryFormat? memory_format=None, {_CREATION})",),
    **{name: (f"(Tensor input, *, Generator? generator, MemoryFormat? memory_format=None, {_CREATION})",
              f"(Tensor input, *, MemoryFormat? memory_format=None, {_CREATION})") for name in ("rand_like", "randn_like")},
    "randint_like": tuple(f"(Tensor input, {bounds}, *, {generator}MemoryFormat? memory_format=None, {_CREATION})"
                          for bounds in ("int64_t low, int64_t high", "Tensor high", "int64_t high")
                          for generator in ("Generator? generator, ", "")),
    "normal": ("(Tensor mean, Tensor std, *, Generator? generator=None, Tensor out=None)",
               "(Tensor mean, double std=1, *, Generator? generator=None, Tensor out=None)",
               "(double mean, Tensor std, *, Generator? generator=None, Tensor out=None)",
               f"(double mean, double std, IntArrayRef size, *, Generator? generator=None, Tensor out=None, {_CREATION})"),
    "as_tensor": ("(PyObject* data, *, ScalarType? dtype=None, Device? device=None)",),
    "frombuffer": ("(PyObject* buffer, *, ScalarType dtype, int64_t count=-1, int64_t offset=0, bool requires_grad=False)",),
    # the view ops' copying twins (aten's ``*_copy`` schemas), each named in its own refusals
    **{f"{name}_copy": ("(Tensor input, *, Tensor out=None)",)
       for name in ("alias", "detach", "t", "view_as_complex", "view_as_real")},
    "as_strided_copy": ("(Tensor input, IntArrayRef size, IntArrayRef stride, int64_t? storage_offset=None, *, "
                        "Tensor out=None)",),
    "diagonal_copy": ("(Tensor input, int64_t offset=0, int64_t dim1=0, int64_t dim2=1, *, Tensor out=None)",),
    "expand_copy": ("(Tensor input, IntArrayRef size, *, bool implicit=False, Tensor out=None)",),
    "index_copy": ("(Tensor input, int64_t dim, Tensor index, Tensor source, *, Tensor out=None)",),
    "narrow_copy": ("(Tensor input, int64_t dim, int64_t start, int64_t length, *, Tensor out=None)",),
    "permute_copy": ("(Tensor input, IntArrayRef dims, *, Tensor out=None)",),
    "select_copy": ("(Tensor input, int64_t dim, int64_t index, *, Tensor out=None)",),
    "slice_copy": ("(Tensor input, int64_t dim=0, int64_t? start=None, int64_t? end=None, int64_t step=1, *, "
                   "Tensor out=None)",),
    "split_copy": ("(Tensor input, int64_t split_size, int64_t dim=0, *, TensorList out=None)",),
    "split_with_sizes_copy": ("(Tensor input, IntArrayRef split_sizes, int64_t dim=0, *, TensorList out=None)",),
    "squeeze_copy": ("(Tensor input, *, Tensor out=None)", "(Tensor input, int64_t dim, *, Tensor out=None)",
                     "(Tensor input, IntArrayRef dim, *, Tensor out=None)"),
    "transpose_copy": ("(Tensor input, int64_t dim0, int64_t dim1, *, Tensor out=None)",),
    "unbind_copy": ("(Tensor input, int64_t dim=0, *, TensorList out=None)",),
    "unfold_copy": ("(Tensor input, int64_t dimension, int64_t size, int64_t step, *, Tensor out=None)",),
    "unsqueeze_copy": ("(Tensor input, int64_t dim, *, Tensor out=None)",),
    "view_copy": ("(Tensor input, ScalarType dtype, *, Tensor out=None)",
                  "(Tensor input, IntArrayRef size, *, Tensor out=None)"),
    # (written from aten's schemas, or copied from torch 2.13's listings where there are several)
    "bernoulli": ("(Tensor input, *, Generator? generator=None, Tensor out=None)",
                  "(Tensor input, double p, *, Generator? generator=None)"),
    "bincount": ("(Tensor input, Tensor? weights=None, int64_t minlength=0)",),
    "dequantize": ("(Tensor input)", "(TensorList tensors)"),
    "histogramdd": tuple(f"(Tensor input, {bins}, FloatArrayRef? range=None, Tensor? weight=None, bool density=False)"
                         for bins in ("int64_t bins", "IntArrayRef bins", "TensorList bins")),
    "istft": ("(Tensor input, int64_t n_fft, int64_t? hop_length=None, int64_t? win_length=None, Tensor? window=None, "
              "bool center=True, bool normalized=False, bool? onesided=None, int64_t? length=None, "
              "bool return_complex=False)",),
    "matrix_power": ("(Tensor input, int64_t n, *, Tensor out=None)",),
    "pdist": ("(Tensor input, double p=2)",),
    "promote_types": ("(ScalarType type1, ScalarType type2)",),
    **{name: ("(Tensor input)",) for name in ("resolve_conj", "resolve_neg", "selu", "selu_")},
    **{name: ("(Tensor input, Scalar lower=0.125, Scalar upper=0.3333333333333333, bool training=False, "
              "Generator? generator=None)",) for name in ("rrelu", "rrelu_")},
    "segment_reduce": ("(Tensor data, str reduce, *, Tensor? lengths=None, Tensor? indices=None, Tensor? offsets=None, "
                       "int64_t axis=0, bool unsafe=False, Scalar? initial=None)",),
    "tile": ("(Tensor input, IntArrayRef dims)",),
    "vander": ("(Tensor x, int64_t? N=None, bool increasing=False)",),
    "full": (f"(IntArrayRef size, Scalar fill_value, *, Tensor out=None, {_CREATION})",),
    "zeros": (f"(IntArrayRef size, *, Tensor out=None, {_CREATION})",),
    "empty": (f"(IntArrayRef size, *, MemoryFormat? memory_format=None, Tensor out=None, {_CREATION})",),
    "arange": (f"(Scalar end, *, Tensor out=None, {_CREATION})",
               f"(Scalar start, Scalar end, *, {_CREATION})",
               f"(Scalar start, Scalar end, Scalar step=1, *, Tensor out=None, {_CREATION})"),
    "linspace": _LINSPACE,
    "logspace": tuple(t.replace("int64_t steps, *", "int64_t steps, double base=10.0, *") for t in _LINSPACE),
    "randn": _RANDOM_SIZED,
    "rand": _RANDOM_SIZED,
    "randperm": (f"(int64_t n, *, Generator? generator, Tensor out=None, {_CREATION})",
                 f"(int64_t n, *, Tensor out=None, {_CREATION})"),
    "ones": (f"(IntArrayRef size, *, Tensor out=None, {_CREATION})",),
    "randint": (f"(int64_t high, IntArrayRef size, *, Generator? generator, Tensor out=None, {_CREATION})",
                f"(int64_t high, IntArrayRef size, *, Tensor out=None, {_CREATION})",
                f"(int64_t low, int64_t high, IntArrayRef size, *, Generator? generator, Tensor out=None, {_CREATION})",
                f"(int64_t low, int64_t high, IntArrayRef size, *, Tensor out=None, {_CREATION})"),
    # (copied from torch 2.13's listings where it has several, else written from the overload in its stubs,
    # torch/_C/_VariableFunctions.pyi: the functions tools/torch_bad_arguments_trial.py found refusing otherwise)
    "adaptive_max_pool1d": ("(Tensor input, IntArrayRef[1] output_size)",),
    "allclose": ("(Tensor input, Tensor other, double rtol=1e-05, double atol=1e-08, bool equal_nan=False)",),
    "alpha_dropout": ("(Tensor input, double p, bool train)",),
    "alpha_dropout_": ("(Tensor input, double p, bool train)",),
    "as_strided": ("(Tensor input, IntArrayRef size, IntArrayRef stride, int64_t? storage_offset=None)",),
    "as_strided_": ("(Tensor input, IntArrayRef size, IntArrayRef stride, int64_t? storage_offset=None)",),
    "avg_pool1d": ("(Tensor input, IntArrayRef[1] kernel_size, IntArrayRef[1] stride=[], IntArrayRef[1] padding=0, bool ceil_mode=False, bool count_include_pad=True)",),
    "broadcast_to": ("(Tensor input, IntArrayRef size)",),
    "column_stack": ("(TensorList tensors, *, Tensor out=None)",),
    "constant_pad_nd": ("(Tensor input, IntArrayRef pad, Scalar value=0)",),
    "cosine_similarity": ("(Tensor x1, Tensor x2, int64_t dim=1, double eps=1e-08)",),
    "ctc_loss": ("(Tensor log_probs, Tensor targets, IntArrayRef input_lengths, IntArrayRef target_lengths, int64_t blank=0, int64_t reduction=at::Reduction::Mean, bool zero_infinity=False)", "(Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, int64_t blank=0, int64_t reduction=at::Reduction::Mean, bool zero_infinity=False)"),
    "diag": ("(Tensor input, int64_t diagonal=0, *, Tensor out=None)",),
    "diag_embed": ("(Tensor input, int64_t offset=0, int64_t dim1=-2, int64_t dim2=-1)",),
    "diagflat": ("(Tensor input, int64_t offset=0)",),
    "diagonal": ("(Tensor input, int64_t offset=0, int64_t dim1=0, int64_t dim2=1)",),
    "dropout": ("(Tensor input, double p, bool train)",),
    "dropout_": ("(Tensor input, double p, bool train)",),
    "dstack": ("(TensorList tensors, *, Tensor out=None)",),
    "fake_quantize_per_tensor_affine": ("(Tensor input, Tensor scale, Tensor zero_point, int64_t quant_min, int64_t quant_max)", "(Tensor input, double scale, int64_t zero_point, int64_t quant_min, int64_t quant_max)"),
    "feature_alpha_dropout": ("(Tensor input, double p, bool train)",),
    "feature_alpha_dropout_": ("(Tensor input, double p, bool train)",),
    "feature_dropout": ("(Tensor input, double p, bool train)",),
    "feature_dropout_": ("(Tensor input, double p, bool train)",),
    "flip": ("(Tensor input, IntArrayRef dims)",),
    "frobenius_norm": ("(Tensor input, IntArrayRef[1] dim, bool keepdim=False, *, Tensor out=None)",),
    "gcd_": ("(Tensor input, Tensor other)",),
    "get_default_dtype": ("()",),
    **{name: ("()",) for name in ("clear_autocast_cache", "get_autocast_cpu_dtype", "get_autocast_gpu_dtype",
                                  "is_anomaly_check_nan_enabled", "is_anomaly_enabled", "is_autocast_cache_enabled",
                                  "is_autocast_cpu_enabled")},
    "is_autocast_enabled": ("(str device_type)", "()"),
    "get_autocast_dtype": ("(str device_type)",),
    "qr": ("(Tensor input, bool some=True, *, TensorList[2] out=None)",),
    "svd": ("(Tensor input, bool some=True, bool compute_uv=True, *, TensorList[3] out=None)",),
    "get_num_interop_threads": ("()",),
    "get_num_threads": ("()",),
    "gru": ("(Tensor data, Tensor batch_sizes, Tensor hx, TensorList params, bool has_biases, int64_t num_layers, double dropout, bool train, bool bidirectional)", "(Tensor input, Tensor hx, TensorList params, bool has_biases, int64_t num_layers, double dropout, bool train, bool bidirectional, bool batch_first)"),
    "heaviside": ("(Tensor input, Tensor values, *, Tensor out=None)",),
    "histogram": ("(Tensor input, Tensor bins, *, Tensor weight=None, bool density=False, TensorList out=None)", "(Tensor input, int64_t bins=100, *, FloatArrayRef range=None, Tensor weight=None, bool density=False, TensorList out=None)"),
    "hstack": ("(TensorList tensors, *, Tensor out=None)",),
    "index_add": ("(Tensor input, int64_t dim, Tensor index, Tensor source, *, Scalar alpha=1, Tensor out=None)",),
    "index_reduce": ("(Tensor input, int64_t dim, Tensor index, Tensor source, str reduce, *, bool include_self=True, Tensor out=None)",),
    "is_conj": ("(Tensor input)",),
    "is_grad_enabled": ("()",),
    "is_inference_mode_enabled": ("()",),
    "is_neg": ("(Tensor input)",),
    "is_same_size": ("(Tensor input, Tensor other)",),
    "lcm_": ("(Tensor input, Tensor other)",),
    "ldexp_": ("(Tensor input, Tensor other)",),
    "lstm": ("(Tensor data, Tensor batch_sizes, TensorList hx, TensorList params, bool has_biases, int64_t num_layers, double dropout, bool train, bool bidirectional)", "(Tensor input, TensorList hx, TensorList params, bool has_biases, int64_t num_layers, double dropout, bool train, bool bidirectional, bool batch_first)"),
    "lstm_cell": ("(Tensor input, TensorList hx, Tensor w_ih, Tensor w_hh, Tensor? b_ih=None, Tensor? b_hh=None)",),
    "max_pool1d_with_indices": ("(Tensor input, IntArrayRef[1] kernel_size, IntArrayRef[1] stride=[], IntArrayRef[1] padding=0, IntArrayRef[1] dilation=1, bool ceil_mode=False)",),
    "median": ("(Tensor input)", "(Tensor input, int64_t dim, bool keepdim=False, *, TensorList out=None)"),
    "multinomial": ("(Tensor input, int64_t num_samples, bool replacement=False, *, Generator? generator=None, Tensor out=None)",),
    "nan_to_num": ("(Tensor input, double? nan=None, double? posinf=None, double? neginf=None, *, Tensor out=None)",),
    "nan_to_num_": ("(Tensor input, double? nan=None, double? posinf=None, double? neginf=None)",),
    "nanmean": ("(Tensor input, IntArrayRef[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None, Tensor out=None)",),
    "nanmedian": ("(Tensor input)", "(Tensor input, int64_t dim, bool keepdim=False, *, TensorList out=None)"),
    "nansum": ("(Tensor input, IntArrayRef[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None, Tensor out=None)",),
    "native_dropout": ("(Tensor input, double p, bool? train)",),
    "native_layer_norm": ("(Tensor input, IntArrayRef normalized_shape, Tensor? weight, Tensor? bias, double eps)",),
    "nuclear_norm": ("(Tensor input, IntArrayRef[2] dim, bool keepdim=False, *, Tensor out=None)", "(Tensor input, bool keepdim=False, *, Tensor out=None)"),
    "pairwise_distance": ("(Tensor x1, Tensor x2, double p=2, double eps=1e-06, bool keepdim=False)",),
    "pinverse": ("(Tensor input, double rcond=1e-15)",),
    "poisson": ("(Tensor input, Generator? generator=None)",),
    "polygamma": ("(int64_t n, Tensor input, *, Tensor out=None)",),
    "quantize_per_tensor": ("(Tensor input, Tensor scale, Tensor zero_point, ScalarType dtype)", "(Tensor input, double scale, int64_t zero_point, ScalarType dtype)", "(TensorList tensors, Tensor scales, Tensor zero_points, ScalarType dtype)"),
    "renorm": ("(Tensor input, Scalar p, int64_t dim, Scalar maxnorm, *, Tensor out=None)",),
    "resize_as_": ("(Tensor input, Tensor the_template, *, MemoryFormat? memory_format=None)",),
    "rms_norm": ("(Tensor input, IntArrayRef normalized_shape, Tensor? weight=None, double? eps=None)",),
    "rnn_relu": ("(Tensor data, Tensor batch_sizes, Tensor hx, TensorList params, bool has_biases, int64_t num_layers, double dropout, bool train, bool bidirectional)", "(Tensor input, Tensor hx, TensorList params, bool has_biases, int64_t num_layers, double dropout, bool train, bool bidirectional, bool batch_first)"),
    "rnn_tanh": ("(Tensor data, Tensor batch_sizes, Tensor hx, TensorList params, bool has_biases, int64_t num_layers, double dropout, bool train, bool bidirectional)", "(Tensor input, Tensor hx, TensorList params, bool has_biases, int64_t num_layers, double dropout, bool train, bool bidirectional, bool batch_first)"),
    "round": ("(Tensor input, *, Tensor out=None)", "(Tensor input, *, int64_t decimals, Tensor out=None)"),
    "round_": ("(Tensor input)", "(Tensor input, *, int64_t decimals)"),
    "rsub": ("(Tensor input, Tensor other, *, Scalar alpha=1)", "(Tensor input, Scalar other, Scalar alpha=1)"),
    "scatter_add": ("(Tensor input, int64_t dim, Tensor index, Tensor src, *, Tensor out=None)",),
    "scatter_reduce": ("(Tensor input, int64_t dim, Tensor index, Tensor src, str reduce, *, bool include_self=True, Tensor out=None)",),
    "searchsorted": ("(Tensor sorted_sequence, Tensor input, *, bool out_int32=False, bool right=False, str side=None, Tensor sorter=None, Tensor out=None)", "(Tensor sorted_sequence, Scalar self, *, bool out_int32=False, bool right=False, str side=None, Tensor sorter=None, Tensor out=None)"),
    "select": ("(Tensor input, int64_t dim, int64_t index)",),
    "sparse_coo_tensor": ("(PyObject* indices, PyObject* values, *, ScalarType dtype=None, Device device=None, bool pin_memory=False, bool requires_grad=False, bool check_invariants=None, bool is_coalesced=None)", "(PyObject* indices, PyObject* values, IntArrayRef size, *, ScalarType dtype=None, Device device=None, bool pin_memory=False, bool requires_grad=False, bool check_invariants=None, bool is_coalesced=None)", "(IntArrayRef size, *, ScalarType dtype=None, Device device=None, bool requires_grad=False, bool check_invariants=None)"),
    "sparse_csr_tensor": ("(PyObject* crow_indices, PyObject* col_indices, PyObject* values, IntArrayRef size, *, ScalarType dtype=None, Layout layout=None, Device device=None, bool pin_memory=False, bool requires_grad=False, bool check_invariants=None)", "(PyObject* crow_indices, PyObject* col_indices, PyObject* values, *, ScalarType dtype=None, Layout layout=None, Device device=None, bool pin_memory=False, bool requires_grad=False, bool check_invariants=None)"),
    "spmm": ("(Tensor input, Tensor mat2, *, Tensor out=None)", "(Tensor input, Tensor mat2, ScalarType out_dtype, *, Tensor out=None)"),
    "swapaxes": ("(Tensor input, int64_t axis0, int64_t axis1)",),
    "swapdims": ("(Tensor input, int64_t dim0, int64_t dim1)",),
    "threshold": ("(Tensor input, Scalar threshold, Scalar value, *, Tensor out=None)",),
    "threshold_": ("(Tensor input, Scalar threshold, Scalar value)",),
    "unflatten": ("(Tensor input, int64_t dim, IntArrayRef sizes)",),
    "unsafe_chunk": ("(Tensor input, int64_t chunks, int64_t dim=0)",),
    "unsafe_split": ("(Tensor input, int64_t split_size, int64_t dim=0)",),
    "unsafe_split_with_sizes": ("(Tensor input, IntArrayRef split_sizes, int64_t dim=0)",),
    "to_dlpack": ("(Tensor data)",),
    **{name: ("(Tensor input, TensorList indices, Tensor values, bool accumulate=False)",)
       for name in ("index_put", "index_put_")},
    "from_numpy": ("(PyObject* array)",),
    "gradient": ("(Tensor input, *, IntArrayRef dim, int64_t edge_order=1)",
                 "(Tensor input, *, Scalar spacing, IntArrayRef dim, int64_t edge_order=1)",
                 "(Tensor input, *, Scalar spacing=None, int64_t dim=None, int64_t edge_order=1)",
                 "(Tensor input, *, ScalarList spacing, int64_t dim=None, int64_t edge_order=1)",
                 "(Tensor input, *, ScalarList spacing, IntArrayRef dim, int64_t edge_order=1)",
                 "(Tensor input, *, TensorList spacing, int64_t dim=None, int64_t edge_order=1)",
                 "(Tensor input, *, TensorList spacing, IntArrayRef dim, int64_t edge_order=1)"),
    "vdot": ("(Tensor input, Tensor other, *, Tensor out=None)",),
    "xlogy_": ("(Tensor input, Tensor other)", "(Tensor input, Scalar other)"),
}

# torch.linalg's signatures (python_linalg_functions), by name in torch.linalg; torch names each
# ``linalg_<name>`` in its messages. Written from aten's schemas (torch.ops.aten.linalg_*), an out=
# overload adding ``out``, and, where there are several, copied from torch 2.13's own listing.
LINALG_SIGNATURES: dict[str, tuple] = {
    "cholesky": ('(Tensor input, *, bool upper=False, Tensor out=None)',),
    "cholesky_ex": ('(Tensor input, *, bool upper=False, bool check_errors=False, TensorList[2] out=None)',),
    "cond": ('(Tensor input, Scalar? p=None, *, Tensor? out=None)', '(Tensor input, str p, *, Tensor? out=None)'),
    "cross": ('(Tensor input, Tensor other, *, int64_t dim=-1, Tensor out=None)',),
    "det": ('(Tensor A, *, Tensor out=None)',),
    "diagonal": ('(Tensor A, *, int64_t offset=0, int64_t dim1=-2, int64_t dim2=-1)',),
    "eig": ('(Tensor input, *, TensorList[2] out=None)',),
    "eigh": ('(Tensor input, str UPLO="L", *, TensorList[2] out=None)',),
    "eigvals": ('(Tensor input, *, Tensor out=None)',),
    "eigvalsh": ('(Tensor input, str UPLO="L", *, Tensor out=None)',),
    "householder_product": ('(Tensor input, Tensor tau, *, Tensor out=None)',),
    "inv": ('(Tensor A, *, Tensor out=None)',),
    "inv_ex": ('(Tensor A, *, bool check_errors=False, TensorList[2] out=None)',),
    "ldl_factor": ('(Tensor input, *, bool hermitian=False, TensorList[2] out=None)',),
    "ldl_factor_ex": ('(Tensor input, *, bool hermitian=False, bool check_errors=False, TensorList[3] out=None)',),
    "ldl_solve": ('(Tensor LD, Tensor pivots, Tensor B, *, bool hermitian=False, Tensor out=None)',),
    "lstsq": ('(Tensor input, Tensor b, double? rcond=None, *, str? driver=None, TensorList[4] out=None)',),
    "lu": ('(Tensor A, *, bool pivot=True, TensorList[3] out=None)',),
    "lu_factor": ('(Tensor A, *, bool pivot=True, TensorList[2] out=None)',),
    "lu_factor_ex": ('(Tensor A, *, bool pivot=True, bool check_errors=False, TensorList[3] out=None)',),
    "lu_solve": ('(Tensor LU, Tensor pivots, Tensor B, *, bool left=True, bool adjoint=False, Tensor out=None)',),
    "matmul": ('(Tensor input, Tensor other, *, Tensor out=None)',),
    "matrix_exp": ('(Tensor input, *, Tensor out=None)',),
    "matrix_norm": ('(Tensor input, Scalar ord, IntArrayRef dim={-2,-1}, bool keepdim=False, *, ScalarType? dtype=None, Tensor? out=None)', '(Tensor input, str ord="fro", IntArrayRef dim={-2,-1}, bool keepdim=False, *, ScalarType? dtype=None, Tensor? out=None)'),
    "matrix_power": ('(Tensor input, int64_t n, *, Tensor out=None)',),
    "matrix_rank": ('(Tensor input, *, Tensor? atol=None, Tensor? rtol=None, bool hermitian=False, Tensor? out=None)', '(Tensor input, *, double? atol=None, double? rtol=None, bool hermitian=False, Tensor? out=None)', '(Tensor input, Tensor tol, bool hermitian=False, *, Tensor? out=None)', '(Tensor input, double tol, bool hermitian=False, *, Tensor? out=None)'),
    "multi_dot": ('(TensorList tensors, *, Tensor out=None)',),
    "norm": ('(Tensor input, Scalar? ord=None, IntArrayRef[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None, Tensor? out=None)', '(Tensor input, str ord, IntArrayRef[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None, Tensor? out=None)'),
    "pinv": ('(Tensor input, *, Tensor? atol=None, Tensor? rtol=None, bool hermitian=False, Tensor? out=None)', '(Tensor input, *, double? atol=None, double? rtol=None, bool hermitian=False, Tensor? out=None)', '(Tensor input, Tensor rcond, bool hermitian=False, *, Tensor? out=None)', '(Tensor input, double rcond, bool hermitian=False, *, Tensor? out=None)'),
    "qr": ('(Tensor A, str mode="reduced", *, TensorList[2] out=None)',),
    "slogdet": ('(Tensor A, *, TensorList[2] out=None)',),
    "solve": ('(Tensor A, Tensor B, *, bool left=True, Tensor out=None)',),
    "solve_ex": ('(Tensor A, Tensor B, *, bool left=True, bool check_errors=False, TensorList[2] out=None)',),
    "solve_triangular": ('(Tensor input, Tensor B, *, bool upper, bool left=True, bool unitriangular=False, Tensor out=None)',),
    "svd": ('(Tensor A, bool full_matrices=True, *, str? driver=None, TensorList[3] out=None)',),
    "svdvals": ('(Tensor A, *, str? driver=None, Tensor out=None)',),
    "tensorinv": ('(Tensor input, int64_t ind=2, *, Tensor out=None)',),
    "tensorsolve": ('(Tensor input, Tensor other, IntArrayRef? dims=None, *, Tensor out=None)',),
    "vander": ('(Tensor x, *, int64_t? N=None)',),
    "vecdot": ('(Tensor x, Tensor y, *, int64_t dim=-1, Tensor out=None)',),
    "vector_norm": ('(Tensor input, Scalar ord=2, IntArrayRef[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None, Tensor out=None)',),
}

# torch.special's signatures (python_special_functions), by name in torch.special; torch names each
# ``special_<name>`` in its messages. Copied from torch 2.13's own listings where it has several,
# else written from aten's schemas (torch.ops.aten.special_*), the out= overload adding ``out``.
SPECIAL_SIGNATURES: dict[str, tuple] = {
    "airy_ai": ("(Tensor x, *, Tensor out=None)",),
    "bessel_j0": ("(Tensor input, *, Tensor out=None)",),
    "bessel_j1": ("(Tensor input, *, Tensor out=None)",),
    "bessel_y0": ("(Tensor input, *, Tensor out=None)",),
    "bessel_y1": ("(Tensor input, *, Tensor out=None)",),
    "chebyshev_polynomial_t": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "chebyshev_polynomial_u": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "chebyshev_polynomial_v": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "chebyshev_polynomial_w": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "digamma": ("(Tensor input, *, Tensor out=None)",),
    "entr": ("(Tensor input, *, Tensor out=None)",),
    "erf": ("(Tensor input, *, Tensor out=None)",),
    "erfc": ("(Tensor input, *, Tensor out=None)",),
    "erfcx": ("(Tensor input, *, Tensor out=None)",),
    "erfinv": ("(Tensor input, *, Tensor out=None)",),
    "exp2": ("(Tensor input, *, Tensor out=None)",),
    "expit": ("(Tensor input, *, Tensor out=None)",),
    "expm1": ("(Tensor input, *, Tensor out=None)",),
    "gammainc": ("(Tensor input, Tensor other, *, Tensor out=None)",),
    "gammaincc": ("(Tensor input, Tensor other, *, Tensor out=None)",),
    "gammaln": ("(Tensor input, *, Tensor out=None)",),
    "hermite_polynomial_h": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "hermite_polynomial_he": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "i0": ("(Tensor input, *, Tensor out=None)",),
    "i0e": ("(Tensor input, *, Tensor out=None)",),
    "i1": ("(Tensor input, *, Tensor out=None)",),
    "i1e": ("(Tensor input, *, Tensor out=None)",),
    "laguerre_polynomial_l": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "legendre_polynomial_p": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "log1p": ("(Tensor input, *, Tensor out=None)",),
    "log_ndtr": ("(Tensor input, *, Tensor out=None)",),
    "log_softmax": ("(Tensor input, int64_t dim, *, ScalarType? dtype=None)",),
    "logit": ("(Tensor input, double? eps=None, *, Tensor out=None)",),
    "logsumexp": ("(Tensor input, IntArrayRef[1] dim, bool keepdim=False, *, Tensor out=None)",),
    "modified_bessel_i0": ("(Tensor input, *, Tensor out=None)",),
    "modified_bessel_i1": ("(Tensor input, *, Tensor out=None)",),
    "modified_bessel_k0": ("(Tensor input, *, Tensor out=None)",),
    "modified_bessel_k1": ("(Tensor input, *, Tensor out=None)",),
    "multigammaln": ("(Tensor input, int64_t p, *, Tensor out=None)",),
    "ndtr": ("(Tensor input, *, Tensor out=None)",),
    "ndtri": ("(Tensor input, *, Tensor out=None)",),
    "polygamma": ("(int64_t n, Tensor input, *, Tensor out=None)",),
    "psi": ("(Tensor input, *, Tensor out=None)",),
    "round": ("(Tensor input, *, int64_t decimals=0, Tensor out=None)",),
    "scaled_modified_bessel_k0": ("(Tensor x, *, Tensor out=None)",),
    "scaled_modified_bessel_k1": ("(Tensor x, *, Tensor out=None)",),
    "shifted_chebyshev_polynomial_t": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "shifted_chebyshev_polynomial_u": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "shifted_chebyshev_polynomial_v": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "shifted_chebyshev_polynomial_w": ("(Tensor x, Tensor n, *, Tensor out=None)", "(Scalar x, Tensor n, *, Tensor out=None)", "(Tensor x, Scalar n, *, Tensor out=None)"),
    "sinc": ("(Tensor input, *, Tensor out=None)",),
    "softmax": ("(Tensor input, int64_t dim, ScalarType? dtype=None)",),
    "spherical_bessel_j0": ("(Tensor x, *, Tensor out=None)",),
    "xlog1py": ("(Tensor input, Tensor other, *, Tensor out=None)", "(Scalar self, Tensor other, *, Tensor out=None)", "(Tensor input, Scalar other, *, Tensor out=None)"),
    "xlogy": ("(Tensor input, Tensor other, *, Tensor out=None)", "(Scalar self, Tensor other, *, Tensor out=None)", "(Tensor input, Scalar other, *, Tensor out=None)"),
    "zeta": ("(Tensor input, Tensor other, *, Tensor out=None)", "(Scalar self, Tensor other, *, Tensor out=None)", "(Tensor input, Scalar other, *, Tensor out=None)"),
}

# torch's internal functions that its Python ones call with positional arguments (torch.split calls
# _VF.split for an int size, _VF.split_with_sizes for anything else): checked by ``check_as``
# torch.nn.functional's C++ built-ins whose arguments are checked here (torch._C._nn's), by name; torch
# names each by its own name in its messages
FUNCTIONAL_SIGNATURES: dict[str, tuple] = {
    "scaled_dot_product_attention": ("(Tensor query, Tensor key, Tensor value, Tensor? attn_mask=None, "
                                     "double dropout_p=0.0, bool is_causal=False, *, double? scale=None, "
                                     "bool enable_gqa=False)",),
}


INTERNAL_SIGNATURES: dict[str, tuple] = {
    "split": ("(Tensor input, int64_t split_size, int64_t dim=0)", "(Tensor input, IntArrayRef split_size, int64_t dim=0)"),
    "split_with_sizes": ("(Tensor input, IntArrayRef split_sizes, int64_t dim=0)",),
    # torch.chain_matmul (Python) calls _VF.chain_matmul(matrices), torch.unique_consecutive its _VF twin by keyword
    "chain_matmul": ("(TensorList matrices, *, Tensor out=None)",),
    "unique_consecutive": ("(Tensor input, bool return_inverse=False, bool return_counts=False, int64_t? dim=None)",),
    # torch.unique (Python) calls _unique2(input, sorted=..., ...) or unique_dim(input, dim, sorted=..., ...)
    "_unique2": ("(Tensor input, bool sorted=True, bool return_inverse=False, bool return_counts=False)",),
    "unique_dim": ("(Tensor input, int64_t dim, bool sorted=True, bool return_inverse=False, "
                   "bool return_counts=False)",),
    # torch.stft (Python) pads a centred signal, then hands everything but center and pad_mode to _VF.stft
    "stft": ('(Tensor input, int64_t n_fft, int64_t? hop_length=None, int64_t? win_length=None, Tensor? window=None, '
             'bool center=True, str pad_mode="reflect", bool normalized=False, bool? onesided=None, '
             'bool? return_complex=None, bool? align_to_window=None)',
             "(Tensor input, int64_t n_fft, int64_t? hop_length=None, int64_t? win_length=None, Tensor? window=None, "
             "bool normalized=False, bool? onesided=None, bool? return_complex=None, bool? align_to_window=None)"),
    # torch.lu and Tensor.lu (Python) hand their tensor on positionally, their flags by keyword
    "_lu_with_info": ("(Tensor input, bool pivot=True, bool check_errors=True)",),
    # torch.atleast_Nd (Python) hands a lone argument to its C twin
    **{f"atleast_{n}d": ("(Tensor input)", "(TensorList tensors)") for n in (1, 2, 3)},
}


def check_as(name: str, *args, **kwargs) -> None:
    """torch's refusal of ``args``/``kwargs`` by its internal function ``name`` (INTERNAL_SIGNATURES), or by
    the public one a Python method of torch's hands them to (SIGNATURES: Tensor.istft's torch.istft), if any."""
    key = (name, "internal")
    if key not in _PARSED:
        texts = INTERNAL_SIGNATURES.get(name) or SIGNATURES[name]
        _PARSED[key] = [_Signature(name, text) for text in texts]
    if not _takes(_PARSED[key], args, kwargs):
        refusal = signature_refusal(name, _PARSED[key], args, kwargs)
        if refusal is not None:
            raise refusal


def check_as_method(name: str, *args, **kwargs) -> None:
    """torch's refusal of ``args``/``kwargs`` (those after self) by its C Tensor method ``name``, which
    the Python method of torch's being run hands them to (Tensor.unflatten's TensorBase.unflatten), if any."""
    key = (name, "C method")
    if key not in _PARSED:
        _PARSED[key] = [_Signature(name, _method_form(text)) for text in METHOD_SIGNATURES.get(name) or SIGNATURES[name]]
    if not _takes(_PARSED[key], args, kwargs):
        refusal = signature_refusal(name, _PARSED[key], args, kwargs)
        if refusal is not None:
            raise refusal


# Tensor methods: the function's signatures without input and out=, but where torch's differ
METHOD_SIGNATURES: dict[str, tuple] = {
    "random_": ("(*, Generator? generator=None)", "(int64_t from, int64_t? to, *, Generator? generator=None)",
                "(int64_t to, *, Generator? generator=None)"),
    "repeat_interleave": ("(Tensor input, Tensor repeats, int64_t? dim=None, *, int64_t? output_size=None)",
                          "(Tensor input, int64_t repeats, int64_t? dim=None, *, int64_t? output_size=None)"),
    "view": ("(ScalarType dtype)", "(IntArrayRef size)"),
    "resize_": ("(IntArrayRef size, *, MemoryFormat? memory_format=None)",),
    "expand": ("(IntArrayRef size, *, bool implicit=False)",),
    "repeat": ("(IntArrayRef repeats)",),
    "masked_fill_": ("(Tensor input, Tensor mask, Tensor value)", "(Tensor input, Tensor mask, Scalar value)"),
    "mm": ("(Tensor input, Tensor mat2)",),
    "bmm": ("(Tensor input, Tensor mat2)",),
    "scatter_": _SCATTER,
    "clamp_": _CLAMP,
    "clip_": _CLAMP,
    "transpose_": ("(Tensor input, int64_t dim0, int64_t dim1)",),
    "addcmul_": _ADD_PRODUCT,
    "addcdiv_": _ADD_PRODUCT,
    "relu_": ("(Tensor input)",),
    # (the methods take no out_dtype)
    **{f"{name}{suffix}": _added_product(*tensors, out=False) for name, tensors in _ADDED_PRODUCTS.items()
       for suffix in ("", "_")},
    # the dtype-casting methods and contiguous take only a keyword (x.float(1) is refused)
    **{name: ("(Tensor input, *, MemoryFormat? memory_format=torch.preserve_format)",)
       for name in ("float", "double", "half", "bfloat16", "long", "int", "short", "bool", "byte", "char", "cfloat",
                    "cdouble", "chalf")},
    # (written from aten's method schemas: the probe of Tensor methods with bad arguments)
    "index_add": ("(Tensor input, int64_t dim, Tensor index, Tensor source, *, Scalar alpha=1)",),
    "index_add_": ("(Tensor input, int64_t dim, Tensor index, Tensor source, *, Scalar alpha=1)",),
    "index_copy_": ("(Tensor input, int64_t dim, Tensor index, Tensor source)",),
    "index_reduce": ("(Tensor input, int64_t dim, Tensor index, Tensor source, str reduce, *, bool include_self=True)",),
    "index_reduce_": ("(Tensor input, int64_t dim, Tensor index, Tensor source, str reduce, *, bool include_self=True)",),
    "scatter_add": ("(Tensor input, int64_t dim, Tensor index, Tensor src)",),
    "scatter_add_": ("(Tensor input, int64_t dim, Tensor index, Tensor src)",),
    "scatter_reduce": ("(Tensor input, int64_t dim, Tensor index, Tensor src, str reduce, *, bool include_self=True)",),
    "scatter_reduce_": ("(Tensor input, int64_t dim, Tensor index, Tensor src, str reduce, *, bool include_self=True)",),
    "swapaxes": ("(Tensor input, int64_t axis0, int64_t axis1)",),
    "swapaxes_": ("(Tensor input, int64_t axis0, int64_t axis1)",),
    "swapdims": ("(Tensor input, int64_t dim0, int64_t dim1)",),
    "swapdims_": ("(Tensor input, int64_t dim0, int64_t dim1)",),
    "unfold": ("(Tensor input, int64_t dimension, int64_t size, int64_t step)",),
    "diag_embed": ("(Tensor input, int64_t offset=0, int64_t dim1=-2, int64_t dim2=-1)",),
    "kthvalue": ("(Tensor input, int64_t k, int64_t dim=-1, bool keepdim=False)",),
    "isclose": ("(Tensor input, Tensor other, double rtol=1e-05, double atol=1e-08, bool equal_nan=False)",),
    "allclose": ("(Tensor input, Tensor other, double rtol=1e-05, double atol=1e-08, bool equal_nan=False)",),
    "dist": ("(Tensor input, Tensor other, Scalar p=2)",),
    "renorm": ("(Tensor input, Scalar p, int64_t dim, Scalar maxnorm)",),
    "renorm_": ("(Tensor input, Scalar p, int64_t dim, Scalar maxnorm)",),
    "sum_to_size": ("(Tensor input, IntArrayRef size)",),
    "unsafe_chunk": ("(Tensor input, int64_t chunks, int64_t dim=0)",),
    "unsafe_split": ("(Tensor input, int64_t split_size, int64_t dim=0)",),
    "as_strided_scatter": ("(Tensor input, Tensor src, IntArrayRef size, IntArrayRef stride, int64_t? storage_offset=None)",),
    "select_scatter": ("(Tensor input, Tensor src, int64_t dim, int64_t index)",),
    "masked_scatter": ("(Tensor input, Tensor mask, Tensor source)",),
    "masked_scatter_": ("(Tensor input, Tensor mask, Tensor source)",),
    "put_": ("(Tensor input, Tensor index, Tensor source, bool accumulate=False)",),
    "index_fill_": ("(Tensor input, int64_t dim, Tensor index, Tensor value)", "(Tensor input, int64_t dim, Tensor index, Scalar value)"),
    "squeeze_": ("(Tensor input)", "(Tensor input, int64_t dim)", "(Tensor input, IntArrayRef dim)"),
    **{name: ("(Tensor input, int64_t dim, *, ScalarType? dtype=None)",) for name in ("cumsum_", "cumprod_")},
    "to": ("(Device? device=None, ScalarType? dtype=None, bool non_blocking=False, bool copy=False, *, "
           "MemoryFormat? memory_format=None)",
           "(ScalarType dtype, bool non_blocking=False, bool copy=False, *, MemoryFormat? memory_format=None)",
           "(Tensor tensor, bool non_blocking=False, bool copy=False, *, MemoryFormat? memory_format=None)"),
    "contiguous": ("(Tensor input, *, MemoryFormat memory_format=torch.contiguous_format)",),
    **{name: ("(Tensor input, Tensor other)", "(Tensor input, Scalar other)")
       for name in ("remainder", "bitwise_and", "bitwise_or", "bitwise_xor", "xlogy")},
    "pow": _POW_METHOD,
    "pow_": _POW_METHOD,
    "where": ("(Tensor condition, Tensor other)", "(Tensor condition, Scalar other)"),
    # the in-place methods take what their out-of-place ones take
    **{f"{name}_": signatures for name, signatures in (
        *((name, _TENSOR_OR_NUMBER) for name in (*_COMPARISONS, "fmod", "copysign")),
        *((name, ("(Tensor input, Tensor other)", "(Tensor input, Scalar other)"))
          for name in ("remainder", "bitwise_and", "bitwise_or", "bitwise_xor", "xlogy")),
        *((name, _TENSORS_ONLY) for name in ("atan2", "fmax", "fmin", "hypot", "nextafter",
                                             "logical_and", "logical_or", "logical_xor", "mul")),
        ("multiply", (*_TENSORS_ONLY, "(Tensor input, Scalar other)")), ("add", _ADD), ("sub", _ADD),
        ("subtract", ("(Tensor input, Tensor other, *, Scalar alpha=1)", "(Tensor input, Scalar other, Scalar alpha=1)")),
        ("div", _DIV), ("divide", (*_DIV[:2], "(Tensor input, Scalar other)", _DIV[2])),
        ("true_divide", _TRUE_DIVIDE), ("floor_divide", _TRUE_DIVIDE), ("lerp", _LERP))},
    # (copied from torch 2.13's listings where it has several, else written from TensorBase's overload in its
    # stubs, torch/_C/__init__.pyi: the methods tools/torch_bad_arguments_trial.py found refusing otherwise)
    "bernoulli_": ("(Tensor p, *, Generator generator=None)", "(double p=0.5, *, Generator generator=None)"),
    "bitwise_left_shift": ("(Tensor other)", "(Scalar other)"),
    "bitwise_left_shift_": ("(Tensor other)", "(Scalar other)"),
    "bitwise_right_shift": ("(Tensor other)", "(Scalar other)"),
    "bitwise_right_shift_": ("(Tensor other)", "(Scalar other)"),
    "cauchy_": ("(double median=0, double sigma=1, *, Generator? generator=None)",),
    "copy_": ("(Tensor other, bool non_blocking=False)", "(Tensor other, bool async=False)|deprecated"),
    "is_contiguous": ("(*, MemoryFormat memory_format=torch.contiguous_format)",),
    "as_subclass": ("(PyObject* cls)",),
    "stride": ("(int64_t? dim=None)",),
    "is_pinned": ("(Device? device=None)",),
    "xpu": ("(Device? device=None, bool non_blocking=False, *, MemoryFormat? memory_format=None)",
            "(Device? device=None, bool async=False, *, MemoryFormat? memory_format=None)|deprecated"),
    "nonzero": ("()", "(*, bool as_tuple)"),
    "new_ones": ("(IntArrayRef size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, "
                 "bool? pin_memory=False, bool? requires_grad=False)",),
    "dequantize": ("()",),
    "dot": ("(Tensor tensor)",),
    "exponential_": ("(double lambd=1, *, Generator? generator=None)",),
    "float_power": ("(Tensor exponent)", "(Scalar exponent)"),
    "float_power_": ("(Tensor exponent)", "(Scalar exponent)"),
    "gcd": ("(Tensor other)",),
    "geometric_": ("(double p, *, Generator? generator=None)",),
    "heaviside_": ("(Tensor values)",),
    "igamma": ("(Tensor other)",),
    "igamma_": ("(Tensor other)",),
    "igammac": ("(Tensor other)",),
    "igammac_": ("(Tensor other)",),
    "lcm": ("(Tensor other)",),
    "log_normal_": ("(double mean=1, double std=2, *, Generator? generator=None)",),
    "logaddexp": ("(Tensor other)",),
    "logaddexp2": ("(Tensor other)",),
    "lu_solve": ("(Tensor LU_data, Tensor LU_pivots)",),
    "mv": ("(Tensor vec)",),
    "mvlgamma_": ("(int64_t p)",),
    "new_empty": ("(IntArrayRef size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=False, bool? requires_grad=False)",),
    "new_empty_strided": ("(IntArrayRef size, IntArrayRef stride, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=False, bool? requires_grad=False)",),
    "new_full": ("(IntArrayRef size, Scalar fill_value, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=False, bool? requires_grad=False)",),
    "new_zeros": ("(IntArrayRef size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=False, bool? requires_grad=False)",),
    "normal_": ("(double mean=0, double std=1, *, Generator? generator=None)",),
    "ormqr": ("(Tensor input2, Tensor input3, bool left=True, bool transpose=False)",),
    "polygamma_": ("(int64_t n)",),
    "put": ("(Tensor index, Tensor source, bool accumulate=False)",),
    "requires_grad_": ("(bool requires_grad=True)",),
    "tril": ("(int64_t diagonal=0)",),
    "tril_": ("(int64_t diagonal=0)",),
    "triu": ("(int64_t diagonal=0)",),
    "triu_": ("(int64_t diagonal=0)",),
    "uniform_": ("(double from=0, double to=1, *, Generator? generator=None)",),
    "unsqueeze_": ("(int64_t dim)",),
}
_NO_METHOD = {"cat", "concat", "concatenate", "stack", "full", "zeros", "empty", "ones", "arange", "linspace", "logspace", "randn", "rand", "randint",
              "randperm"}


def _method_form(text: str) -> str:
    text, bar, flag = text.partition("|")
    # (a method takes no out=, whatever its type: Tensor, Tensor?, TensorList[N])
    params = [p for p in text.strip("()").split(", ")
              if p != "Tensor input" and not p.partition("=")[0].endswith(" out")]
    if params and params[-1] == "*":
        params.pop()
    return f"({', '.join(params)}){bar}{flag}"


_PARSED: dict = {}


def _alias_base(name: str) -> str:
    """The op whose signatures torch's alias ``name`` has (``greater_`` -> ``gt_``), else ``name``."""
    plain = name.removesuffix("_")
    return name if plain not in _ALIAS_OF else _ALIAS_OF[plain] + name[len(plain):]


# the namespaces whose functions torch's parser names ``<namespace>_<name>``, and their signatures
_NAMESPACE_SIGNATURES = {"chainrule.linalg": ("linalg", LINALG_SIGNATURES),
                         "chainrule.special": ("special", SPECIAL_SIGNATURES),
                         "chainrule.nn.functional": ("", FUNCTIONAL_SIGNATURES)}


def _signatures(name: str, method: bool, module: str = "chainrule") -> list | None:
    key = (name, method, module)
    if key not in _PARSED:
        if module in _NAMESPACE_SIGNATURES:
            prefix, table = _NAMESPACE_SIGNATURES[module]
            texts = table.get(name)
            name = f"{prefix}_{name}" if prefix else name
        else:
            base = _alias_base(name)
            if method:  # (a method torch writes in Python binds as Python does: not parsed here)
                texts = METHOD_SIGNATURES.get(base) or (
                    SIGNATURES.get(base) if base not in _NO_METHOD and base not in _PYTHON_METHODS else None)
                texts = texts and [_method_form(t) for t in texts]
            else:
                texts = SIGNATURES.get(base)
                name = _PARSER_NAMES.get(name, name)
        _PARSED[key] = texts and [_Signature(name, t) for t in texts]
        if not method and module == "chainrule" and name in _BOUND_WITH_ONE_ARGUMENT:
            # torch binds it METH_O on its functions' class: CPython's words, naming that class
            _PARSED[key][0].bound_with_one_argument = "torch._VariableFunctionsClass"
        if texts and list(texts) == ["()"] and (method or module == "chainrule"):
            # torch's generated method is METH_NOARGS, and so are its module's functions of no arguments
            # (torch.get_default_dtype, torch.is_grad_enabled)
            _PARSED[key][0].bound_without_arguments = "TensorBase" if method else "torch"
    return _PARSED[key]


def checked_signature(impl, home: tuple):
    """``impl`` checking its arguments against torch's signatures first, where SIGNATURES or
    METHOD_SIGNATURES name it (else ``impl`` itself): the dispatching wrappers ask for it."""
    module, qualified = home
    method = qualified.startswith("Tensor.")
    name = qualified.rpartition(".")[2]
    if module not in ("chainrule", "chainrule.tensor", *_NAMESPACE_SIGNATURES) or _signatures(name, method, module) is None:
        return impl
    signatures = _signatures(name, method, module)
    name = signatures[0].name

    # a call of the exact types a signature takes runs at once; any other is parsed as torch would
    # first. A value of the right type that torch cannot unpack (an int beyond int64) gets torch's
    # error where the op itself refuses it.
    # A bare method call (``y.sum()``, the hot one) needs no look when a signature takes no argument:
    # it runs as a plain call, which CPython makes without another C frame (``impl(self, *args)`` not).
    bare = any(not signature.required[0] for signature in signatures)
    if name in _REWRITTEN_DEPRECATED:
        return _taking_deprecated(impl, name, signatures, method)
    if method:
        def checked(self, *args, **kwargs):
            if (args or kwargs or not bare) and not _takes(signatures, args, kwargs):
                refusal = signature_refusal(name, signatures, args, kwargs)
                if refusal is not None:
                    raise refusal
            try:
                return impl(self, *args, **kwargs) if args or kwargs else impl(self)
            except Exception:
                refusal = signature_refusal(name, signatures, args, kwargs)
                if refusal is not None:
                    raise refusal from None
                raise
    else:
        def checked(*args, **kwargs):
            if not _takes(signatures, args, kwargs):
                refusal = signature_refusal(name, signatures, args, kwargs)
                if refusal is not None:
                    raise refusal
            try:
                return impl(*args, **kwargs)
            except Exception:
                refusal = signature_refusal(name, signatures, args, kwargs)
                if refusal is not None:
                    raise refusal from None
                raise

    functools.update_wrapper(checked, impl)
    return checked


# the ops whose deprecated overloads (``|deprecated``) the parser takes here, rewritten into their
# first signature's form (add's and addcmul's are their ops' own: elementwise.accepts_scalar_first)
_REWRITTEN_DEPRECATED = frozenset({*_ADDED_PRODUCTS, *(f"{name}_" for name in _ADDED_PRODUCTS)})
_deprecated_overload_warned = False  # (torch warns once per process, for all deprecated overloads)
# where torch's one TORCH_WARN_ONCE for them sits: its warning ends by naming it
DEPRECATED_OVERLOAD_SOURCE = " (Triggered internally at /__w/pytorch/pytorch/torch/csrc/utils/python_arg_parser.cpp:1841.)"


def _taking_deprecated(impl, name: str, signatures: list, method: bool):
    """``impl`` checking its arguments against torch's signatures first, a call that only a deprecated
    one takes warned about (as torch's parser warns) and passed on in the first signature's form:
    ``addmm(2, M, m1, m2)`` runs as ``addmm(M, m1, m2, beta=2)``. Only the calls the visible
    signatures refuse are looked at twice, so the common call pays nothing more."""
    visible = [signature for signature in signatures if not signature.hidden]

    def rewritten(args: tuple, kwargs: dict) -> tuple:
        if _takes(visible, args, kwargs):
            return args, kwargs
        deprecated = _deprecated_taking(signatures, args, kwargs)
        if deprecated is None:
            refusal = signature_refusal(name, signatures, args, kwargs)
            if refusal is not None:
                raise refusal
            return args, kwargs
        _warn_deprecated_overload(name, deprecated, visible)
        return _in_form_of(visible[0], deprecated, args, kwargs)

    if method:
        def checked(self, *args, **kwargs):
            args, kwargs = rewritten(args, kwargs)
            return impl(self, *args, **kwargs)
    else:
        def checked(*args, **kwargs):
            args, kwargs = rewritten(args, kwargs)
            return impl(*args, **kwargs)

    functools.update_wrapper(checked, impl)
    return checked


def _deprecated_taking(signatures: list, args: tuple, kwargs: dict):
    """The deprecated signature that takes the call, where none before it does (torch's parser
    tries them in order), else None."""
    for signature in signatures:
        try:
            if signature.parse(args, kwargs, False):
                return signature if signature.hidden else None
        except TypeError:
            return None
    return None


def _in_form_of(target: _Signature, deprecated: _Signature, args: tuple, kwargs: dict) -> tuple:
    """A call of ``deprecated`` as a call of ``target``: its required positional parameters in order,
    the rest by keyword; a 0-d tensor given for a Number as its value, as torch's parser takes it."""
    from ..tensor import Tensor

    values = dict(zip((p.name for p in deprecated.params if not p.keyword_only), args))
    values.update(kwargs)
    for p in deprecated.params:
        if p.kind == "Scalar" and isinstance(values.get(p.name), Tensor):
            values[p.name] = values[p.name].item()
    positional = tuple(values.pop(p.name) for p in target.params if not p.keyword_only and not p.optional)
    return positional, values


def _warn_deprecated_overload(name: str, deprecated: _Signature, visible: list) -> None:
    """torch's words, once per process: the deprecated signature, then those to use instead."""
    global _deprecated_overload_warned
    if _deprecated_overload_warned:
        return
    _deprecated_overload_warned = True
    import warnings

    from .._torch_function import user_stacklevel

    instead = "\n\t".join(f"{name}{signature}" for signature in visible)
    warnings.warn(f"This overload of {name} is deprecated:\n\t{name}{deprecated}\n"
                  f"Consider using one of the following signatures instead:\n\t{instead}{DEPRECATED_OVERLOAD_SOURCE}",
                  UserWarning, stacklevel=user_stacklevel())


# torch's Tensor methods written in Python (torch/_tensor.py): Python words their refusals there too
_PYTHON_METHODS = frozenset({"backward", "dim_order", "eig", "index", "is_shared", "istft", "lstsq", "lu",
                             "module_load", "norm", "register_hook", "register_post_accumulate_grad_hook",
                             "reinforce", "resize", "resize_as", "share_memory_", "solve", "split", "stft",
                             "storage", "storage_type", "symeig", "to_sparse_coo", "unflatten", "unique",
                             "unique_consecutive"})


def method_binding_refusal(name: str, impl, args: tuple, kwargs: dict, error: TypeError | None = None) -> TypeError | None:
    """torch's TypeError for a call of the Tensor method ``name`` whose arguments Python refused to
    bind to ``impl`` (``args[0]`` is self), or None where they bind: the parser's count of the
    arguments after self, its "missing ... arguments" (see ``_Signature.parse``), and CPython's
    METH_NOARGS words for a method of no arguments at all. A method torch writes in Python gets
    Python's words (``error``'s), naming it as Python names a function of torch.Tensor's class body:
    "Tensor.unique() got an unexpected keyword argument 'x'"."""
    if name in _PYTHON_METHODS:
        text, python_name = str(error), f"{impl.__name__}() "
        if not text.startswith(python_name):
            return None
        first = next(iter(inspect.signature(impl).parameters), "self")
        if first != "self" and " missing " in text:  # (an impl shared with the function names self 'input';
            # torch's method names it 'self', first of the missing ones where it is missing)
            text = text.replace(f"'{first}'", "'self'", 1)
        return TypeError(f"Tensor.{name}() {text[len(python_name):]}")
    try:
        parameters = list(inspect.signature(impl).parameters.values())[1:]  # (after self)
    except (TypeError, ValueError):
        return None
    # (a method takes no out=: the function's keyword, where the method shares its impl, is not one of its words)
    parameters = [p for p in parameters if not (p.name == "out" and p.kind is p.KEYWORD_ONLY)]
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        return None
    words, starred = [], False
    for p in parameters:  # a parameter of any type: only the counts and names are in question
        if p.kind is p.KEYWORD_ONLY and not starred:
            words.append("*")
            starred = True
        words.append(_parameter_word(p) if p.annotation == "int" else
                     f"object {p.name}" if p.default is p.empty else f"object {p.name}=None")
    signature = _Signature(name, f"({', '.join(words)})")
    signature.bound_without_arguments = None if words else "TensorBase"
    try:
        signature.parse(args[1:], kwargs, True)
    except TypeError as refusal:
        return refusal
    return None


# torch's Python functions built by boolean_dispatch (torch/_jit_internal.py): a flag, read by keyword
# or else at its position and taken as a truth value, picks one of two functions, whose names Python's
# refusals to bind then carry. (module, name) -> (flag, position, if_true, if_false), a branch itself
# such a dispatch where it is a tuple; every flag's default is False.
_POOL_DISPATCH_POSITIONS = {"max_pool": 6, "adaptive_max_pool": 2, "fractional_max_pool": 4}
BOOLEAN_DISPATCH = {
    ("chainrule", "unique"): ("return_inverse", 2,
                              ("return_counts", 3, "_return_inverse_and_counts", "_return_inverse"),
                              ("return_counts", 3, "_return_counts", "_return_output")),
    # (torch reads unique_consecutive's return_inverse at position 2 and its return_counts at 1, as here)
    ("chainrule", "unique_consecutive"): (
        "return_inverse", 2,
        ("return_counts", 1, "_consecutive_return_inverse_and_counts", "_consecutive_return_inverse"),
        ("return_counts", 1, "_consecutive_return_counts", "_consecutive_return_output")),
    ("chainrule", "lu"): ("get_infos", 2, "_lu_with_infos", "_lu_no_infos"),
    **{("chainrule.nn.functional", f"{pool}{d}d"): ("return_indices", position, f"{pool}{d}d_with_indices",
                                                    f"_{pool}{d}d")
       for pool, position in _POOL_DISPATCH_POSITIONS.items() for d in (1, 2, 3)
       if not (pool == "fractional_max_pool" and d == 1)},
}


def dispatched_binding_refusal(public, args: tuple, kwargs: dict, error: TypeError) -> Exception | None:
    """torch's refusal of a call of a boolean_dispatch function (``BOOLEAN_DISPATCH``) whose arguments
    Python refused to bind (``error``, naming ``public``), or None for any other function: Python's
    words naming the branch the flags pick, or the RuntimeError of a flag with no truth value (a
    tensor of several elements where ten tensors were passed positionally)."""
    branch = BOOLEAN_DISPATCH.get((getattr(public, "__module__", None), public.__name__))
    python_name = f"{public.__name__}() "
    if branch is None or not str(error).startswith(python_name):
        return None
    while isinstance(branch, tuple):
        flag, position, if_true, if_false = branch
        value = kwargs[flag] if flag in kwargs else args[position] if position < len(args) else False
        try:
            branch = if_true if value else if_false
        except RuntimeError as ambiguous:
            return ambiguous
    return TypeError(f"{branch}() {str(error)[len(python_name):]}")


# the namespaces whose C functions torch's parser names ``<prefix><name>``
_PARSER_PREFIXES = {"chainrule.special": "special_", "chainrule.linalg": "linalg_", "chainrule.fft": "fft_"}


def _parameter_word(p: inspect.Parameter) -> str:
    """A Python parameter as a word of a parser signature: typed where its annotation says a Tensor,
    or an int with an int default (torch's int64_t ``dim=0``: unbind(axis=(0, 2), keepdims=True) is
    refused for the tuple before the unknown keyword), else taking anything."""
    annotation = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
    kind = {"Tensor": "Tensor", "Tensor | None": "Tensor?"}.get(annotation, "object")
    if annotation == "int" and type(p.default) is int:
        return f"int64_t {p.name}={p.default}"
    return f"{kind} {p.name}" if p.default is p.empty else f"{kind} {p.name}=None"


def function_binding_refusal(public, impl, args: tuple, kwargs: dict) -> TypeError | None:
    """torch's TypeError for a call of the C function ``public`` whose arguments Python refused to
    bind to ``impl``, or None where they bind. torch's parser counts the positional arguments
    first, then goes through the parameters in order, so a Tensor parameter given a number is
    refused before a later one is missed (torch.adaptive_avg_pool1d(1) names ``input``, not the
    missing ``output_size``). Which parameters are Tensors (or ints) ``impl``'s annotations say; the rest
    take anything here, as only the counts and names are known of them."""
    try:
        parameters = list(inspect.signature(impl).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        return None
    words, starred = [], False
    for p in parameters:
        if p.kind is p.KEYWORD_ONLY and not starred:
            words.append("*")
            starred = True
        words.append(_parameter_word(p))
    module = getattr(public, "__module__", None)
    name = public.__name__
    prefix = _PARSER_PREFIXES.get(module, "")
    signature = _Signature(name if name.startswith(prefix) else prefix + name, f"({', '.join(words)})")
    try:
        signature.parse(args, kwargs, True)
    except TypeError as refusal:
        return refusal
    return None


def _fast_types(param: _Parameter) -> frozenset:
    """The classes ``param`` takes without a closer look (``_ANY``: any; a list or tuple of ints is
    looked into by ``_fast_match``)."""
    from .. import device, memory_format
    from ..tensor import Size, Tensor

    global _SIZE, _TENSOR
    _SIZE, _TENSOR = Size, Tensor
    none = {type(None)} if param.allow_none else set()
    numbers = {int, float, bool, complex} if param.takes_numbers else set()
    kinds = {"Tensor": {Tensor, _SUBCLASS, *numbers}, "int64_t": {int}, "double": {int, float, bool}, "Scalar": {int, float, bool, complex},
             "bool": {bool}, "str": {str}, "ScalarType": {_dtype.dtype}, "MemoryFormat": {memory_format},
             "Layout": {_layout.layout}, "Device": {device, str, int},
             "IntArrayRef": {_INTS, *({int} if param.size else ())}, "TensorList": {_TENSORS}}
    return frozenset(none | kinds.get(param.kind, {_ANY}))


_ANY, _INTS, _TENSORS, _SUBCLASS = object(), object(), object(), object()
_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1  # (an int beyond them is parsed: torch refuses some)
_SIZE = _TENSOR = None  # (set by the first _fast_types: tensor.py is above this module's import)


def _fast_match(types: frozenset, value) -> bool:
    cls = value.__class__
    if cls in types or _ANY in types:
        return True
    if cls is tuple or cls is list or cls is _SIZE:
        if _INTS in types:
            return all(item.__class__ is int and _INT64_MIN <= item <= _INT64_MAX for item in value)
        if _TENSORS in types:
            return all(item.__class__ is _TENSOR for item in value)
    return _SUBCLASS in types and isinstance(value, _TENSOR)  # (a Parameter)


def _takes(signatures: list, args: tuple, kwargs: dict) -> bool:
    """Whether one of ``signatures`` takes the arguments as they are (the common call)."""
    for signature in signatures:
        if signature.takes(args, kwargs):
            return True
    return False


def _install() -> None:
    from .. import _torch_function

    _torch_function.signature_check = checked_signature
    _torch_function.method_binding_refusal = method_binding_refusal
    _torch_function.function_binding_refusal = function_binding_refusal
    _torch_function.dispatched_binding_refusal = dispatched_binding_refusal
    _torch_function.python_methods = _PYTHON_METHODS


_install()
