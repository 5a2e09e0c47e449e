"""Lane mendT (session 38): differences from torch left noted by earlier sessions — bad arguments
refused in torch's words — each proven against torch on the same call."""

import functools
import importlib
import itertools
import warnings

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as chainrule_functional
from tests.compat._refusals import assert_same_refusal, outcome

torch = pytest.importorskip("torch")
torch_functional = pytest.importorskip("torch.nn.functional")


# ---------------------------------------------------------------- boolean_dispatch's refusals
# torch builds unique, unique_consecutive, lu and the max pools' return_indices choice with
# boolean_dispatch: a flag picks one of two Python functions, and Python's refusal names the one picked
_DISPATCHED = [(False, "unique"), (False, "unique_consecutive"), (False, "lu"),
               *((True, f"{pool}{d}d") for pool in ("max_pool", "adaptive_max_pool") for d in (1, 2, 3)),
               (True, "fractional_max_pool2d"), (True, "fractional_max_pool3d")]


def _operand(lib, name):
    shape = {"1": (1, 2, 6), "2": (1, 2, 6, 6), "3": (1, 1, 4, 4, 4)}.get(name[-2], (3, 3))
    return lib.ones(shape)


def _dispatched(lib, functional, pooled, name):
    return getattr(functional if pooled else lib, name)


_BAD_DISPATCHED_CALLS = {
    "unknown_keyword": lambda f, x, lib: f(x, no_such_keyword=1),
    "unknown_keyword_flag_set": lambda f, x, lib: f(x, True, True, True, no_such_keyword=1),
    "foreign_keyword_flag_by_keyword": lambda f, x, lib: f(x, return_inverse=True, get_infos=True,
                                                          return_indices=True, return_counts=True, stray=1),
    "tensors_as_flags": lambda f, x, lib: f(*(x,) * 10),
    "true_tensor_flags": lambda f, x, lib: f(x, 2, *(lib.tensor([1.0]),) * 8),
    "false_tensor_flags": lambda f, x, lib: f(x, 2, *(lib.tensor([0.0]),) * 8),
    "too_many_true": lambda f, x, lib: f(x, 2, True, True, True, True, True, True, True, True),
    "too_many_false": lambda f, x, lib: f(x, 2, 0, 0, 1, False, False, 1, 1, 1, 1),
    "nothing": lambda f, x, lib: f(),
}


@pytest.mark.parametrize("pooled, name", _DISPATCHED)
@pytest.mark.parametrize("pattern", sorted(_BAD_DISPATCHED_CALLS))
def test_boolean_dispatch_refusals_name_the_branch_torch_picks(pooled, name, pattern):
    """"_return_output() got an unexpected keyword argument", "max_pool2d_with_indices() takes from 2
    to 7 positional arguments", and the RuntimeError of a several-element tensor read as the flag."""
    bad_call = _BAD_DISPATCHED_CALLS[pattern]
    assert_same_refusal(lambda lib, functional: bad_call(_dispatched(lib, functional, pooled, name),
                                                         _operand(lib, name), lib))


def test_boolean_dispatch_functions_still_compute_what_torch_does():
    """The renaming is only of refusals: the flags still pick torch's results."""
    values = [3.0, 1.0, 3.0, 2.0, 2.0, 2.0]
    ours, theirs = chainrule.tensor(values), torch.tensor(values)
    for args, kwargs in [((), {}), ((True, True, True), {}), ((), {"return_counts": True})]:
        got = chainrule.unique(ours, *args, **kwargs)
        expected = torch.unique(theirs, *args, **kwargs)
        got, expected = (got, expected) if isinstance(expected, tuple) else ((got,), (expected,))
        assert [g.tolist() for g in got] == [e.tolist() for e in expected]
    got = chainrule_functional.max_pool1d(chainrule.tensor([[[1.0, 5.0, 2.0, 4.0]]]), 2, return_indices=True)
    expected = torch_functional.max_pool1d(torch.tensor([[[1.0, 5.0, 2.0, 4.0]]]), 2, return_indices=True)
    assert [g.tolist() for g in got] == [e.tolist() for e in expected]
    assert str(got[1].dtype).split(".")[-1] == str(expected[1].dtype).split(".")[-1]


# ---------------------------------------------------------------- in-place ops: the cast check first
# torch's TensorIterator casts the operands' promoted dtype into self before it picks a kernel, so an
# in-place op with no kernel for that dtype says "can't be cast" first, and leaves self unchanged
_CAST_FIRST_OPS = ["atan2_", "arctan2_", "bitwise_and_", "bitwise_or_", "bitwise_xor_", "bitwise_left_shift_",
                   "bitwise_right_shift_", "clamp_", "clip_", "clamp_min_", "clamp_max_", "copysign_",
                   "floor_divide_", "fmod_", "gcd_", "hypot_", "igamma_", "igammac_", "lcm_", "ldexp_",
                   "nextafter_", "remainder_", "xlogy_"]
_CAST_FIRST_OPERANDS = {
    "complex128_tensor": lambda lib: lib.full((2, 3), 1 + 2j, dtype=lib.complex128),
    "complex64_0d": lambda lib: lib.tensor(1 + 2j, dtype=lib.complex64),
    "python_complex": lambda lib: 1 + 2j,
    "float64_tensor": lambda lib: lib.full((2, 3), 0.5, dtype=lib.float64),
    "int64_tensor": lambda lib: lib.full((2, 3), 3, dtype=lib.int64),
    "python_int": lambda lib: 3,
    "unbroadcastable_complex": lambda lib: lib.ones(5, dtype=lib.complex64),
    "complex_broadcast_past_self": lambda lib: lib.ones(4, 2, 3, dtype=lib.complex64),
    "int_broadcast_past_self": lambda lib: lib.ones(4, 2, 3, dtype=lib.int64),
}


def _in_place_outcome(lib, op, self_dtype, operand, keyword):
    x = (lib.arange(6).reshape(2, 3) % 3).to(getattr(lib, self_dtype))
    before = x.tolist()
    value = _CAST_FIRST_OPERANDS[operand](lib)
    seen = outcome(lambda: getattr(x, op)(**{keyword: value}) if keyword else getattr(x, op)(value))
    return seen, x.tolist() == before


@pytest.mark.parametrize("self_dtype", ["float32", "int64", "bool"])
@pytest.mark.parametrize("operand", sorted(_CAST_FIRST_OPERANDS))
@pytest.mark.parametrize("op", _CAST_FIRST_OPS)
@pytest.mark.pairwise_in_ci(seed=61)
def test_in_place_op_refuses_an_uncastable_promotion_before_its_kernel(op, operand, self_dtype):
    """x.clamp_(complex) on a float32 x: torch's "result type ComplexDouble can't be cast to the desired
    output type Float" (RuntimeError), not the kernel's NotImplementedError; a float tensor into an
    int64 x.bitwise_and_, an int into a bool x.xlogy_ (computed in float), likewise; an operand that
    does not broadcast still gets torch's shape error first, and self is never written."""
    expected, torch_unchanged = _in_place_outcome(torch, op, self_dtype, operand, None)
    got, unchanged = _in_place_outcome(chainrule, op, self_dtype, operand, None)
    assert got == expected
    assert unchanged or not torch_unchanged


@pytest.mark.parametrize("self_dtype", ["float32", "int64"])
@pytest.mark.parametrize("op, keyword", [("clamp_", "min"), ("clamp_", "max"), ("clip_", "min"), ("clip_", "max"),
                                         ("clamp_min_", "min"), ("clamp_max_", "max")])
def test_clamp_in_place_by_a_complex_keyword_bound_is_torch_cast_refusal(op, keyword, self_dtype):
    expected, _ = _in_place_outcome(torch, op, self_dtype, "complex128_tensor", keyword)
    assert expected[0] == "RuntimeError" and "can't be cast to the desired output type" in expected[1]
    got, unchanged = _in_place_outcome(chainrule, op, self_dtype, "complex128_tensor", keyword)
    assert got == expected
    assert unchanged


def test_in_place_ops_that_can_hold_the_promotion_still_compute_torch_values():
    """The check refuses only what torch refuses: a float32 x.clamp_ by a float64 tensor bound, an
    int64 x.gcd_ by an int tensor and a float32 x.copysign_ by an int still write torch's values."""
    for op, self_dtype, operand in [("clamp_", "float32", "float64_tensor"), ("gcd_", "int64", "int64_tensor"),
                                    ("copysign_", "float32", "python_int"), ("fmod_", "int64", "python_int")]:
        results = []
        for lib in (torch, chainrule):
            x = lib.arange(6, dtype=getattr(lib, self_dtype)).reshape(2, 3) - 2
            getattr(x, op)(_CAST_FIRST_OPERANDS[operand](lib))
            results.append((x.tolist(), str(x.dtype).split(".")[-1]))
        assert results[0] == results[1], op


# ---------------------------------------------------------------- smaller refusals of the bad-arguments trial
@pytest.mark.parametrize("value", ["a", None, [1, 2], 3, 1.5])
def test_from_dlpack_refuses_what_is_no_capsule_as_torch(value):
    """torch reads anything without __dlpack__ as a DLPack capsule and refuses it as an invalid one."""
    assert_same_refusal(lambda lib, functional: lib.from_dlpack(value))


_CHAINS = {
    "inner_sizes_clash": [(2, 3), (2, 3)],
    "third_clashes": [(2, 3), (3, 4), (5, 2)],
    "row_vector_clashes": [(3,), (2, 3)],
    "column_vector_clashes": [(2, 3), (2,)],
    "middle_clash_of_four": [(2, 3), (3, 4), (4, 5), (6, 2)],
    "vector_chained": [(2, 3), (3,)],
    "three_d_last": [(2, 3), (3, 2), (1, 2, 2)],
}


@pytest.mark.parametrize("chain", sorted(_CHAINS))
@pytest.mark.parametrize("function", ["linalg.multi_dot", "chain_matmul"])
def test_matrix_chain_refuses_shapes_that_do_not_chain_in_torch_words(function, chain):
    """'multi_dot(): tensors 0 and 1 with shapes [2, 3] and [2, 3] cannot be multiplied' (the shapes
    as given), chain_matmul's 'Tensor dimension is 1, expected 2 instead.' for a vector."""
    shapes = _CHAINS[chain]

    def call(lib, functional):
        matrices = [lib.ones(shape) for shape in shapes]
        return lib.linalg.multi_dot(matrices) if function == "linalg.multi_dot" else lib.chain_matmul(*matrices)

    expected = outcome(lambda: call(torch, None))
    assert outcome(lambda: call(chainrule, None)) == expected


@pytest.mark.parametrize("other", ["float64", "float16", "int64", "complex64"])
def test_multi_dot_refuses_mixed_dtypes_naming_torch_cpp_types(other):
    assert_same_refusal(lambda lib, functional: lib.linalg.multi_dot(
        [lib.ones(2, 3), lib.ones(3, 2, dtype=getattr(lib, other))]))


def test_chain_matmul_of_one_matrix_is_a_copy_as_torch():
    """torch returns a clone of a single matrix: writing to the result leaves the argument alone."""
    results = []
    for lib in (torch, chainrule):
        x = lib.ones(2, 2, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = lib.chain_matmul(x)
        results.append((y is x, y.grad_fn.name(), y.tolist()))
        with lib.no_grad():
            y.mul_(3)
        results.append(x.tolist())
    assert results[:2] == results[2:]
    assert results[0][0] is False


# ---------------------------------------------------------------- the max pools' argument checks
_MAX_POOLS = {
    "torch.max_pool1d": lambda lib, functional: lib.max_pool1d,
    "torch.max_pool1d_with_indices": lambda lib, functional: lib.max_pool1d_with_indices,
    "F.max_pool1d": lambda lib, functional: functional.max_pool1d,
    "F.max_pool1d(return_indices=True)": lambda lib, functional: functools.partial(functional.max_pool1d,
                                                                                   return_indices=True),
    "torch.max_pool2d": lambda lib, functional: lib.max_pool2d,
    "F.max_pool2d(return_indices=True)": lambda lib, functional: functools.partial(functional.max_pool2d,
                                                                                   return_indices=True),
    "torch.max_pool3d": lambda lib, functional: lib.max_pool3d,
    "F.max_pool3d(return_indices=True)": lambda lib, functional: functools.partial(functional.max_pool3d,
                                                                                   return_indices=True),
}


@pytest.mark.parametrize("pool", sorted(_MAX_POOLS))
def test_max_pool_argument_refusals_in_torch_order_and_words(pool):
    """Each argument of a wrong length, zero or negative, on inputs of rank 2 to 6: torch's 1-d max
    pool without indices words them as its own kernel ('max_pool1d() kernel_size must be an int, list
    of ints or tuple of ints of size 1 but got size 2', its padding at most half the kernel), with
    indices as check1d and then the 2-d kernel ('kernel size should be greater than zero, but got kH:
    1 kW: -1'); the 2-d and 3-d pools check the lengths before the input's rank."""
    differing = []
    for rank, name, bad in itertools.product((2, 3, 4, 5, 6), ("kernel_size", "stride", "padding", "dilation"),
                                             ([0, 1], [1, 1], [2, 2, 2, 2], [], [2], 0, -1, 3)):
        def call(lib, functional, rank=rank, name=name, bad=bad):
            return _MAX_POOLS[pool](lib, functional)(lib.ones((1, 2, 6, 6, 6, 6)[:rank]),
                                                     **{"kernel_size": 2, name: bad})
        expected = outcome(lambda: call(torch, torch_functional))
        if outcome(lambda: call(chainrule, chainrule_functional)) != expected:
            differing.append((rank, name, bad))
    assert differing == []


@pytest.mark.parametrize("shape", [(1, 0, 6), (2, 0), (1, 2, 0), (0, 2, 6)])
@pytest.mark.parametrize("pool", ["torch.max_pool1d", "torch.max_pool1d_with_indices"])
def test_max_pool1d_of_empty_planes_as_torch(pool, shape):
    """With indices torch pools the input as 2-d and names its shape with the unit height inserted."""
    def call(lib, functional):
        return _MAX_POOLS[pool](lib, functional)(lib.ones(shape), 2)
    expected = outcome(lambda: call(torch, torch_functional))
    got = outcome(lambda: call(chainrule, chainrule_functional))
    assert got == expected


def test_max_pool1d_padding_bound_when_recording_is_the_plain_kernel_words():
    """torch checks max_pool1d's arguments in its own words before it takes the with-indices path
    that recording needs."""
    assert_same_refusal(lambda lib, functional: lib.max_pool1d(lib.ones(1, 2, 6, requires_grad=True), 2,
                                                               padding=2))


# ---------------------------------------------------------------- torch.signal.windows' dtype check
_WINDOW_DTYPES = {"name": lambda lib: "float32", "str": lambda lib: "hostile", "dict": lambda lib: {"a": 1},
                  "list_of_str": lambda lib: ["a", "b"], "ragged_list": lambda lib: [[1.0, 2.0], [3.0]],
                  "bool": lambda lib: True, "numpy_type": lambda lib: np.float32,
                  "numpy_dtype": lambda lib: np.dtype("float64"), "python_type": lambda lib: float,
                  "float16": lambda lib: lib.float16, "int64": lambda lib: lib.int64,
                  "float64": lambda lib: lib.float64, "none": lambda lib: None}


@pytest.mark.parametrize("dtype", sorted(_WINDOW_DTYPES))
@pytest.mark.parametrize("window", ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine",
                                    "general_hamming", "hamming", "hann", "kaiser", "nuttall"])
def test_signal_window_takes_only_a_float_dtype_object_as_torch(window, dtype):
    """torch.signal.windows accept float32 and float64 dtype objects alone: a dtype's name, a NumPy
    dtype, a list get its ValueError ('hann expects float32 or float64 dtypes, got: float32'), not
    NumPy's TypeError; the windows it computes keep their values."""
    extra = {"a": [0.5, 0.5]} if window == "general_cosine" else {}

    def outcome(lib):
        windows = importlib.import_module(f"{lib.__name__}.signal.windows")
        try:
            result = getattr(windows, window)(5, dtype=_WINDOW_DTYPES[dtype](lib), **extra)
        except Exception as exc:  # the subject: what each library raises
            return type(exc).__name__, str(exc).replace("chainrule.", "torch.")
        return str(result.dtype).split(".")[-1], np.round(result.tolist(), 6).tolist()

    assert outcome(chainrule) == outcome(torch)


# ---------------------------------------------------------------- ints beyond int64, and fft's int dim
_BEYOND_INT64 = [2**63, -2**63 - 1, 2**64]


@pytest.mark.parametrize("value", _BEYOND_INT64)
@pytest.mark.parametrize("form", ["bare", "first", "second"])
@pytest.mark.parametrize("call", ["max_pool2d kernel", "max_pool1d kernel", "avg_pool2d kernel", "avg_pool1d kernel",
                                  "max_pool3d padding", "conv2d padding", "conv2d stride", "conv1d dilation",
                                  "conv_transpose2d padding", "adaptive_max_pool1d", "adaptive_avg_pool2d"])
def test_an_int_beyond_int64_is_refused_as_torch_unpacks_it(call, form, value):
    """A single int is unpacked as an int64_t (ValueError 'Overflow when unpacking long long'); one in
    a list fails that list's unpacking (TypeError naming the position)."""
    one_d = "1d" in call
    sized = value if form == "bare" else [value] if one_d else [value, 1] if form == "first" else [1, value]

    def bad_call(lib, functional):
        x = lib.ones((1, 2, 6, 6, 6)[:3 if one_d else 5 if "3d" in call else 4])
        weight = lib.ones((2, 2, 3) if one_d else (2, 2, 3, 3))
        name = call.split()[0]
        if name.startswith("conv"):
            return getattr(functional, name)(x, weight, **{call.split()[1]: sized})
        if name.startswith("adaptive"):
            return getattr(functional, name)(x, sized)
        return getattr(functional, name)(x, 2, **{call.split()[1]: sized}) if call.split()[1] == "padding" else \
            getattr(functional, name)(x, sized)

    expected = outcome(lambda: bad_call(torch, torch_functional))
    got = outcome(lambda: bad_call(chainrule, chainrule_functional))
    # (torch's TypeError carries its C++ traceback after the first line)
    assert (got[0], got[1].split("\n")[0][:100]) == (expected[0], expected[1].split("\n")[0][:100])


@pytest.mark.parametrize("value", [*_BEYOND_INT64, 1.5, "a", True, None, [0], (0,), 5])
@pytest.mark.parametrize("transform", ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"])
def test_one_dimensional_fft_dim_is_an_int_to_torch_parser(transform, value):
    """'fft_fft(): argument 'dim' must be int, not list' (it said 'must be tuple of ints'), an int
    beyond int64 the ValueError; a dim out of range still the transform's own IndexError."""
    assert_same_refusal(lambda lib, functional: getattr(lib.fft, transform)(lib.ones(4), dim=value))
    if isinstance(value, float):
        assert_same_refusal(lambda lib, functional: getattr(lib.fft, transform)(lib.ones(4), None, value))


@pytest.mark.parametrize("shape, dim", [((2, 3), None), ((2, 3), 1), ((4,), None), ((2, 3, 4), None),
                                        ((2, 3), (0, 1))])
@pytest.mark.parametrize("order", ["a", "inf", "fro2"])
def test_norm_of_an_unknown_order_name_is_matrix_norm_refusal(order, shape, dim):
    """torch.norm and Tensor.norm hand a string order other than 'fro' and 'nuc' to matrix_norm:
    'linalg.matrix_norm: Order a not supported.' whatever the input's rank."""
    assert_same_refusal(lambda lib, functional: lib.norm(lib.ones(shape), order, dim))
    assert_same_refusal(lambda lib, functional: lib.ones(shape).norm(order, dim))
