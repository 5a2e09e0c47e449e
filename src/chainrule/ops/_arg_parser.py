"""torch's argument-parser checks for the typed arguments of functional ops, in one place.

torch's C++ ops parse each Python argument against its declared type before running (``int[2]
kernel_size``, ``bool ceil_mode``, ``float p``) and raise a TypeError naming the op and the argument
when the value has the wrong type: a float kernel size is refused, not truncated; ``ceil_mode=2``
is refused, not taken as true. A module passes its constructor's arguments on to such an op, so a
hostile value typed into ``nn.MaxPool2d(2.5)`` fails at the first forward, as in torch. Sizes and
lengths are each op's own check (its RuntimeError), after these.
"""

from __future__ import annotations

import operator

import numpy as np

from .. import _dtype
from .._backend import has_expanded_dims, write_refusal

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


def int_list(value, op: str, name: str, sized: bool = True, int64: bool = True) -> tuple:
    """``value`` of an ``int[N]`` argument (an int, or a tuple/list of ints) as a tuple of ints, not
    yet expanded to the op's dims; torch's TypeError for a float, a string, None or a non-int element,
    or (``int64``: the value goes through torch's C++ parser) one beyond int64. An unsized ``int[]``
    (``sized=False``: pad's ``pad``) takes no single int."""
    if isinstance(value, (tuple, list)):
        items = []
        for i, item in enumerate(value):
            as_int = _as_int(item, bool_is_int=i > 0)
            if as_int is None:
                raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, but found element of type "
                                f"{type(item).__name__} at pos {i}")
            if int64 and not _fits_int64(as_int):
                raise TypeError(f"{op}(): argument '{name}' failed to unpack the object at pos {i + 1} with error "
                                '"Overflow when unpacking long long"')
            items.append(as_int)
        return tuple(items)
    as_int = _as_int(value) if sized else None
    if as_int is None:
        raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, not {type(value).__name__}")
    if int64 and not _fits_int64(as_int):
        raise TypeError(f"{op}(): argument '{name}' failed to unpack the object at pos 1 with error "
                        '"Overflow when unpacking long long"')
    return (as_int,)


def _fits_int64(value: int) -> bool:
    """Whether torch's parser can unpack ``value`` into its int64_t (2**63 cannot)."""
    return -2**63 <= value < 2**63


def check_int(value, op: str, name: str) -> int:
    """``value`` of an ``int`` argument; torch's TypeError for a float, a bool, a string or None."""
    as_int = _as_int(value)
    if as_int is None:
        raise TypeError(f"{op}(): argument '{name}' must be int, not {type(value).__name__}")
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


def check_number(value, op: str, name: str):
    """``value`` of a ``Scalar`` argument: a Python or NumPy number as it is, a 0-d tensor as its
    value; torch's TypeError for a string, None, a sequence, an array or a tensor with dimensions."""
    if isinstance(value, (bool, int, float, complex, np.number, np.bool_)):
        return value
    if not isinstance(value, np.ndarray) and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    raise TypeError(f"{op}(): argument '{name}' must be Number, not {type(value).__name__}")


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


def check_float(value, op: str, name: str) -> float:
    """``value`` of a ``float`` argument (a real number; a one-element tensor is torch's Scalar too);
    torch's TypeError for a string, None or a sequence."""
    if isinstance(value, (str, bytes)) or value is None or isinstance(value, (tuple, list)):
        raise TypeError(f"{op}(): argument '{name}' must be float, not {type(value).__name__}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{op}(): argument '{name}' must be float, not {type(value).__name__}") from None


# ---------------------------------------------------------------- out=
def namespace_with_out(modules) -> dict:
    """The public functions each op module names in ``__out_functions__`` given torch's ``out=``,
    for the torch-like namespace (``chainrule.sum(x, 0, out=y)``). Tensor methods and operators,
    which take no ``out=`` in torch, keep the plain functions: nothing is added to their path.

    ``__out_functions__`` maps each name to torch's rule for the out's dtype, which differs by op:
    ``"cast"`` the result is cast into any dtype that can hold it (else "result type Float can't be
    cast ..."); ``"computes_in"`` the out's dtype is the dtype the op computes in (sum, cumsum: as
    ``dtype=``); ``"same_as_input"`` (amax), ``"same"`` (norm, argmax: their C++ type names),
    ``"same_elementwise"`` (neg, round), ``"same_where"``, ``"same_scalar_type"`` (index_select),
    ``"same_scalar_object"`` (complex), ``"same_norm"``, ``"same_vecdot"``, ``"same_multi_dot"``, ``"castable_eigenvalues"``
    (torch.linalg's functions that word it their own way), ``"same_as_self_asserted"`` (narrow_copy),
    ``"histogram"`` (its (hist, bin_edges) in the input's dtype), ``"values_and_long_indices"`` (kthvalue's tuple out),
    ``"long"`` (nonzero), ``"long_samples"`` (multinomial): each torch's own refusal of any other; ``"cat"`` (cat, stack) a cast
    torch allows, else its TypeError;
    ``"floating"`` any floating dtype (logsumexp); ``"castable"`` torch's canCast check (max());
    ``"same_as_self"`` (take). Every rule first refuses an ``out`` that aliases itself (an expanded
    tensor), as torch's kernels do."""
    wrapped = {}
    for module in modules:
        for name, rule in getattr(module, "__out_functions__", {}).items():
            function = getattr(module, name)
            wrapped[name] = _with_out_rule(function, name, rule)
    return wrapped


def out_rule(rule: str):
    """Decorator: give a function torch's ``out=`` under one of ``namespace_with_out``'s dtype rules
    (for functions that take ``out=`` wherever they are called, not only on the namespace)."""
    return lambda function: _with_out_rule(function, function.__name__, rule)


def write_out_same_dtype(result, out, op: str):
    """``write_out`` for the ops whose ``out`` must have the result's own dtype (floor, sign,
    frac...: torch's "Found dtype Long but expected Float"), not any dtype it can be cast to."""
    from ..tensor import Tensor, write_out

    if isinstance(out, Tensor):
        refusal = _out_dtype_refusal(op, "same_elementwise", None, result, out)
        if refusal is not None:
            raise refusal
    return write_out(result, out, op)


def _with_out_rule(function, name: str, rule: str):
    from ..tensor import Tensor, _write_outs, out_keyword_front, write_out

    def with_out(*args, out, **kwargs):
        if not isinstance(out, (Tensor, tuple, list)):  # (a tuple out is a tuple result's, checked when written)
            raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
        for each_out in out if isinstance(out, (tuple, list)) else (out,):  # (values, indices) outs too
            if isinstance(each_out, Tensor):
                _check_out_overlap(name, each_out, (*args, *kwargs.values()))
        if rule == "computes_in" and isinstance(out, Tensor) and kwargs.get("dtype") is None:
            kwargs["dtype"] = out.dtype
        if rule in _OUT_DTYPE_FIXED and isinstance(out, Tensor):
            # the out's dtype is refused before the values are looked at: multinomial's check of
            # its weights would otherwise answer an int64-out error with one about the weights
            refusal = _out_dtype_refusal(name, rule, None, None, out)
            if refusal is not None:
                raise refusal
        result = function(*args, **kwargs)
        if isinstance(result, tuple):  # max(dim)'s (values, indices): each written as it can be cast
            if rule in _TUPLE_OUT_RULES and isinstance(out, (tuple, list)) and all(isinstance(o, Tensor) for o in out):
                refusal = _tuple_out_refusal(name, rule, args[0] if args else kwargs.get("input"), result, out)
                if refusal is not None:
                    raise refusal
            return _write_outs(result, out, name)
        if rule not in _OUT_DTYPE_FIXED:  # (a fixed dtype was checked on entry)
            refusal = _out_dtype_refusal(name, rule, args[0] if args else kwargs.get("input"), result, out)
            if refusal is not None:
                raise refusal
        return write_out(result, out, name)

    return out_keyword_front(function, with_out)


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


def _out_dtype_refusal(name: str, rule: str, input, result, out) -> Exception | None:
    """torch's error where ``out``'s dtype does not suit ``name``'s ``rule``, else None."""
    from .linear import cpp_type_name

    scalar = _dtype.scalar_name
    expected, got = (None if result is None else result.dtype), out.dtype  # None: a rule needing no result
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
