"""Session 24, errors lane 2: a wrong argument gets torch's exception class and message.

torch's argument parser refuses a value of the wrong type before the op runs, naming the function,
what it got and (for an overloaded function) every signature it takes; chainrule's public functions
and methods with signatures in ops/_arg_parser.SIGNATURES do the same (compared here with torch).
"""

from __future__ import annotations

import math

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    try:
        call(lib)
    except Exception as error:  # noqa: BLE001  (the class is what is compared)
        # (torch sometimes puts its C++ stack inside an unpacking error's quoted reason: not compared)
        return type(error).__name__, str(error).split("\nException raised from")[0].rstrip('"')
    return "returned", ""


def _x(lib):
    return lib.arange(6.0).reshape(2, 3)


def _index(lib):
    return lib.tensor([[0, 1, 0], [1, 0, 1]])


# (the calls each library refuses: a str for a dim, a float for a size, a list for a tensor, an
# unknown keyword, an int for a bool, a missing or an extra argument)
REFUSED = {
    "sum_str_dim": lambda L: L.sum(_x(L), "a"),
    "sum_float_dim": lambda L: L.sum(_x(L), 1.5),
    "sum_keepdim_str": lambda L: L.sum(_x(L), dim=None, keepdim="x"),
    "sum_unknown_keyword": lambda L: L.sum(_x(L), foo=1),
    "sum_list_input": lambda L: L.sum([1, 2]),
    "sum_str_dtype": lambda L: L.sum(_x(L), dtype="float"),
    "sum_axis_beside_dim": lambda L: L.sum(_x(L), dim=0, axis=1),
    "sum_later_dim_float": lambda L: L.sum(_x(L), (0, 1.5)),
    "sum_keepdim_int": lambda L: L.sum(_x(L), 0, keepdim=1),
    "method_sum_str": lambda L: _x(L).sum("a"),
    "mean_float_dim": lambda L: L.mean(_x(L), 1.5),
    "max_str_dim": lambda L: L.max(_x(L), "a"),
    "max_unknown_keyword": lambda L: L.max(_x(L), foo=1),
    "min_keepdim_alone": lambda L: L.min(_x(L), keepdim=1),
    "argmax_str": lambda L: L.argmax(_x(L), "a"),
    "cat_tensor_not_list": lambda L: L.cat(_x(L)),
    "cat_float_element": lambda L: L.cat([_x(L), 1.0]),
    "cat_str_dim": lambda L: L.cat([_x(L)], "a"),
    "cat_float_dim_keyword": lambda L: L.cat([_x(L)], dim=1.5),
    "cat_dim_twice": lambda L: L.cat([_x(L)], 0, dim=0),
    "cat_nothing": lambda L: L.cat(),
    "cat_too_many": lambda L: L.cat([_x(L)], 0, 1),
    "stack_float_dim": lambda L: L.stack([_x(L)], 1.5),
    "concat_str_dim": lambda L: L.concat([_x(L)], "a"),
    "concatenate_float_dim": lambda L: L.concatenate([_x(L)], 1.5),
    "clip_str": lambda L: L.clip(_x(L), "a"),
    "method_clip_str": lambda L: _x(L).clip("a"),
    "reshape_str": lambda L: L.reshape(_x(L), "a"),
    "reshape_float_size": lambda L: L.reshape(_x(L), 6.0),
    "method_reshape_floats": lambda L: _x(L).reshape(2.0, 3),
    "method_reshape_later_str": lambda L: _x(L).reshape(2, "a"),
    "method_view_floats": lambda L: _x(L).view(2.0, 3),
    "method_view_float_tuple": lambda L: _x(L).view((2.0, 3)),
    "method_view_float": lambda L: _x(L).view(2.0),
    "permute_extra": lambda L: L.permute(_x(L), 1, 0),
    "permute_float": lambda L: L.permute(_x(L), (1.0, 0)),
    "method_permute_float": lambda L: _x(L).permute(1.0, 0),
    "transpose_missing": lambda L: L.transpose(_x(L), 0),
    "transpose_float": lambda L: L.transpose(_x(L), 1.0, 0),
    "index_select_list": lambda L: L.index_select(_x(L), 0, [0]),
    "index_select_missing": lambda L: L.index_select(_x(L), 0),
    "gather_float_dim": lambda L: L.gather(_x(L), 1.0, _index(L)),
    "gather_missing_two": lambda L: L.gather(_x(L)),
    "gather_sparse_grad_int": lambda L: L.gather(_x(L), 0, index=_index(L), sparse_grad=1),
    "scatter_str_value": lambda L: L.scatter(_x(L), 0, _index(L), "a"),
    "scatter_missing": lambda L: L.scatter(_x(L), 0, _index(L)),
    "clamp_str": lambda L: L.clamp(_x(L), "a"),
    "clamp_list": lambda L: L.clamp(_x(L), [0.0]),
    "clamp_str_keyword": lambda L: L.clamp(_x(L), min="0"),
    "topk_float_k": lambda L: L.topk(_x(L), 1.5),
    "topk_largest_int": lambda L: L.topk(_x(L), 1, largest=1),
    "topk_k_beyond_int64": lambda L: L.topk(_x(L), 2**63),
    "sort_str_dim": lambda L: L.sort(_x(L), "a"),
    "sort_descending_int": lambda L: L.sort(_x(L), descending=1),
    "chunk_float": lambda L: L.chunk(_x(L), 1.5),
    "chunk_missing": lambda L: L.chunk(_x(L)),
    "narrow_float_start": lambda L: L.narrow(_x(L), 0, 0.5, 1),
    "narrow_missing": lambda L: L.narrow(_x(L), 0, 0),
    "full_str_value": lambda L: L.full((2,), "a"),
    "full_float_size": lambda L: L.full(2.5, 1.0),
    "full_missing_value": lambda L: L.full((2,)),
    "zeros_float_then_int": lambda L: L.zeros(2.0, 3),
    "zeros_later_float": lambda L: L.zeros(2, 2.5),
    "zeros_unknown_keyword": lambda L: L.zeros(2, foo=1),
    "zeros_str_dtype": lambda L: L.zeros(2, dtype="float"),
    "zeros_list_out": lambda L: L.zeros(2, 3, out=[1.0]),
    "arange_str": lambda L: L.arange("a"),
    "arange_none_end": lambda L: L.arange(0, None),
    "linspace_float_steps": lambda L: L.linspace(0, 1, 2.5),
    "linspace_missing_steps": lambda L: L.linspace(0, 1),
    "randn_float_then_int": lambda L: L.randn(2.0, 3),
    "randn_none": lambda L: L.randn(None),
    "randint_no_size": lambda L: L.randint(5),
    "randint_str_size": lambda L: L.randint(0, 5, "a"),
    "randint_float_high": lambda L: L.randint(0.5, (2,)),
    "ones_later_float": lambda L: L.ones(2, 2.5),
    "rand_str": lambda L: L.rand("a"),
    "randperm_float": lambda L: L.randperm(2.5),
    "logspace_str_base": lambda L: L.logspace(0, 1, 3, "a"),
    "split_float": lambda L: L.split(_x(L), 1.5),
    "method_split_float": lambda L: _x(L).split(1.5),
    "split_float_section": lambda L: L.split(_x(L), [1.0, 1]),
    "split_later_str_section": lambda L: L.split(_x(L), [1, "a"]),
    "split_str_dim": lambda L: L.split(_x(L), 1, "a"),
    "method_split_str_dim_keyword": lambda L: _x(L).split(1, dim="a"),
    "split_sections_str_dim": lambda L: _x(L).split([1, 1], "a"),
    "split_none": lambda L: L.split(_x(L), None),
    "randperm_negative": lambda L: L.randperm(-1),
    "randint_negative_size": lambda L: L.randint(0, 5, (-1, 3)),
    "randint_negative_size_and_empty_range": lambda L: L.randint(5, 0, (-1,)),
    # ints beyond int64: torch's unpacking errors
    "chunk_2_63": lambda L: L.chunk(_x(L), 2**63),
    "sum_dim_2_63": lambda L: L.sum(_x(L), 2**63),
    "zeros_2_63": lambda L: L.zeros(2**63),
    "method_view_2_63": lambda L: _x(L).view(2**63),
    "method_reshape_later_2_63": lambda L: _x(L).reshape(2, 2**63),
    "linspace_end_below_int64": lambda L: L.linspace(0, -2**63 - 1, 3),
    "arange_end_below_int64": lambda L: L.arange(-2**63 - 1),
    "full_value_below_int64": lambda L: L.full((2,), -2**63 - 1),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_wrong_argument_gets_torchs_class_and_message(name):
    expected, got = _outcome(torch, REFUSED[name]), _outcome(chainrule, REFUSED[name])
    assert expected[0] != "returned"
    assert got == expected


def test_an_overloaded_function_lists_torchs_signatures_as_torch_prints_them():
    # a call no signature can take (twelve arguments) lists every signature torch shows
    factories = ("arange", "linspace", "logspace", "randn", "rand", "randint", "randperm")
    for name in ("sum", "mean", "max", "min", "scatter", "clamp", "sort", "narrow", *factories):
        for owner in ("function", "method"):
            if owner == "method" and name in factories:
                continue

            def call(lib, name=name, owner=owner):
                function = getattr(lib, name) if owner == "function" else getattr(lib.zeros(2), name)
                function(*[object()] * 12)

            expected, got = _outcome(torch, call), _outcome(chainrule, call)
            assert "expected one of" in expected[1]
            assert got == expected, (name, owner)


def test_a_refused_in_place_call_leaves_its_tensor_unchanged():
    x = chainrule.zeros(2, 3)
    with pytest.raises(TypeError, match=r"^scatter_\(\) received an invalid combination of arguments - got \(int, "
                                        r"Tensor, str\)"):
        x.scatter_(0, chainrule.tensor([[0, 1, 0]]), "a")
    assert x._version == 0 and x.tolist() == [[0.0] * 3] * 2


def test_valid_calls_still_run_with_numpy_keywords_and_varargs_sizes():
    x = chainrule.arange(6.0).reshape(2, 3)
    assert chainrule.sum(x, axis=0, keepdims=True).tolist() == [[3.0, 5.0, 7.0]]
    assert x.view(3, 2).shape == (3, 2) and x.reshape((6,)).shape == (6,)
    assert chainrule.zeros(2, 3, dtype=chainrule.float64).dtype == chainrule.float64
    assert chainrule.clamp(x, min=chainrule.tensor(1.0)).tolist() == [[1.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert x.max(1).values.tolist() == [2.0, 5.0]


def _lu(lib, *shape):
    # sin(k) obeys sin(k + 2) = 2 cos(1) sin(k + 1) - sin(k), so the plain sine matrix has rank 2 and
    # its last pivot is rounding noise (exactly 0 with one BLAS kernel, 1.6e-17 with another); the
    # added diagonal keeps the factorisation regular on every machine
    a = lib.arange(float(math.prod(shape)), dtype=lib.float64).reshape(shape).sin()
    return lib.linalg.lu_factor(a + 2 * lib.eye(shape[-2], shape[-1], dtype=lib.float64))


def _ldl(lib, *shape):
    a = lib.arange(float(math.prod(shape)), dtype=lib.float64).reshape(shape).sin()
    return lib.linalg.ldl_factor(a + a.mT + 3 * lib.eye(shape[-1], dtype=lib.float64))


def _f64(lib, *shape):
    return lib.ones(shape, dtype=lib.float64)


def _int32(lib, values):
    return lib.tensor(values, dtype=lib.int32)


SMALL = {
    "histc_str_min": lambda L: L.histc(L.tensor([1.0, 2.0, 3.0]), bins=4, min="0"),
    "histc_str_max": lambda L: L.histc(L.tensor([1.0, 2.0, 3.0]), bins=4, max="3"),
    "histc_str_bins": lambda L: L.histc(L.tensor([1.0, 2.0, 3.0]), bins="4"),
    "histc_none_min": lambda L: L.histc(L.tensor([1.0, 2.0, 3.0]), bins=4, min=None),
    "method_histc_str_min": lambda L: L.tensor([1.0, 2.0, 3.0]).histc(4, "0"),
    "abs_complex_out_int": lambda L: L.abs(L.tensor([3 + 4j]), out=L.empty(1, dtype=L.int64)),
    "abs_complex64_out_complex128": lambda L: L.abs(L.tensor([3 + 4j]), out=L.empty(1, dtype=L.complex128)),
    "abs_float_out_complex": lambda L: L.abs(L.tensor([3.0]), out=L.empty(1, dtype=L.complex64)),
    "lu_unpack_1d_data": lambda L: L.lu_unpack(L.ones(3), _int32(L, [1, 2, 3])),
    "lu_unpack_float_pivots": lambda L: L.lu_unpack(_lu(L, 3, 3)[0], L.tensor([1.0, 2.0, 3.0])),
    "lu_unpack_int64_pivots": lambda L: L.lu_unpack(_lu(L, 3, 3)[0], L.tensor([1, 2, 3])),
    "lu_unpack_short_pivots": lambda L: L.lu_unpack(_lu(L, 3, 3)[0], _int32(L, [1, 2])),
    "lu_unpack_0d_pivots": lambda L: L.lu_unpack(_lu(L, 3, 3)[0], _int32(L, 1)),
    "lu_unpack_pivot_beyond_rows": lambda L: L.lu_unpack(_lu(L, 3, 3)[0], _int32(L, [1, 2, 7])),
    "ldl_solve_1d_B": lambda L: L.linalg.ldl_solve(*_ldl(L, 3, 3), _f64(L, 3)),
    "ldl_solve_1d_LD": lambda L: L.linalg.ldl_solve(_f64(L, 3), _int32(L, [1, 2, 3]), _f64(L, 3, 2)),
    "ldl_solve_rectangular_LD": lambda L: L.linalg.ldl_solve(_f64(L, 3, 4), _int32(L, [1, 2, 3]), _f64(L, 3, 2)),
    "ldl_solve_short_pivots": lambda L: L.linalg.ldl_solve(_ldl(L, 3, 3)[0], _int32(L, [1, 2]), _f64(L, 3, 2)),
    "ldl_solve_float_pivots": lambda L: L.linalg.ldl_solve(_ldl(L, 3, 3)[0], L.tensor([1.0, 2.0, 3.0]), _f64(L, 3, 2)),
    "ldl_solve_dtypes_differ": lambda L: L.linalg.ldl_solve(*_ldl(L, 3, 3), L.ones(3, 2)),
    "ldl_solve_unbatched_pivots": lambda L: L.linalg.ldl_solve(_ldl(L, 2, 3, 3)[0], _int32(L, [1, 2, 3]),
                                                                _f64(L, 2, 3, 2)),
    "ldl_solve_batches_differ": lambda L: L.linalg.ldl_solve(*_ldl(L, 2, 3, 3), _f64(L, 4, 3, 2)),
    "ldl_solve_integer_LD": lambda L: L.linalg.ldl_solve(L.ones(3, 3, dtype=L.int64), _int32(L, [1, 2, 3]),
                                                         _f64(L, 3, 2)),
}


@pytest.mark.parametrize("name", SMALL)
def test_histc_abs_out_lu_unpack_and_ldl_solve_refuse_as_torch(name):
    expected, got = _outcome(torch, SMALL[name]), _outcome(chainrule, SMALL[name])
    assert expected[0] != "returned"
    assert got == expected


@pytest.mark.parametrize("input_dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("out_dtype", ["float16", "float32", "float64", "complex64", "complex128", "int32", "bool"])
def test_abs_of_complex_writes_a_real_out_or_one_of_its_own_dtype(input_dtype, out_dtype):
    def call(lib):
        out = lib.empty(1, dtype=getattr(lib, out_dtype))
        result = lib.abs(lib.tensor([3 + 4j], dtype=getattr(lib, input_dtype)), out=out)
        assert result is out
        return str(out.dtype).split(".")[-1], out.tolist()

    expected, got = _outcome(torch, call), _outcome(chainrule, call)
    assert got == expected
    if expected[0] == "returned":
        assert call(chainrule) == call(torch)


def test_lu_unpack_and_ldl_solve_still_solve():
    P, L, U = chainrule.lu_unpack(*_lu(chainrule, 3, 4))
    tP, tL, tU = torch.lu_unpack(*_lu(torch, 3, 4))
    for ours, theirs in ((P, tP), (L, tL), (U, tU)):
        assert ours.flatten().tolist() == pytest.approx(theirs.flatten().tolist())
    X = chainrule.linalg.ldl_solve(*_ldl(chainrule, 2, 3, 3), _f64(chainrule, 3, 2))
    tX = torch.linalg.ldl_solve(*_ldl(torch, 2, 3, 3), _f64(torch, 3, 2))
    assert X.flatten().tolist() == pytest.approx(tX.flatten().tolist())


@pytest.mark.parametrize("exponent_dtype", ["bool", "uint8", "int32", "int64", "float32"])
@pytest.mark.parametrize("input_dtype", ["complex64", "complex128"])
def test_ldexp_of_a_0d_complex_input_takes_torchs_result_type(input_dtype, exponent_dtype):
    def call(lib):
        z = lib.tensor(1 + 2j, dtype=getattr(lib, input_dtype))
        result = lib.ldexp(z, lib.tensor([1, 0, 2]).to(getattr(lib, exponent_dtype)))
        return str(result.dtype).split(".")[-1], result.tolist()

    assert call(chainrule) == call(torch)


@pytest.mark.parametrize("call", [
    lambda lib, m: lib.topk(m, 2),
    lambda lib, m: lib.topk(m, 2, dim=0, largest=False),
    lambda lib, m: lib.sort(m, descending=True),
    lambda lib, m: m.argsort(dim=0, descending=True),
])
def test_sorting_a_meta_tensor_gives_meta_results_as_torch(call):
    # (the op's own NaN check reads no values on the meta device: a whole-array any() finds nothing)
    def shapes(lib):
        result = call(lib, lib.ones(5, 4).to("meta"))
        results = result if isinstance(result, tuple) else (result,)
        return [(tuple(r.shape), str(r.dtype).split(".")[-1], r.device.type) for r in results]

    assert shapes(chainrule) == shapes(torch)


def _mask(lib):
    return lib.tensor([[True, False, True], [False, True, False]])


_ANYTHING = object()
# the shape, reduction and product functions parsed alike: torch's word for no arguments, twelve, an
# object, a str and an unknown keyword; the methods' for twelve, an object and a float
MORE = {}
for _name in ("unsqueeze", "squeeze", "flatten", "cumsum", "prod", "amax", "amin", "logsumexp", "masked_fill",
              "matmul", "mm", "bmm"):
    MORE.update({
        f"{_name}_twelve": lambda L, n=_name: getattr(L, n)(*[_ANYTHING] * 12),
        f"{_name}_nothing": lambda L, n=_name: getattr(L, n)(),
        f"{_name}_object": lambda L, n=_name: getattr(L, n)(_x(L), _ANYTHING),
        f"{_name}_str": lambda L, n=_name: getattr(L, n)(_x(L), "a"),
        f"{_name}_unknown_keyword": lambda L, n=_name: getattr(L, n)(_x(L), foo=1),
        f"method_{_name}_twelve": lambda L, n=_name: getattr(_x(L), n)(*[_ANYTHING] * 12),
        f"method_{_name}_object": lambda L, n=_name: getattr(_x(L), n)(_ANYTHING),
        f"method_{_name}_float": lambda L, n=_name: getattr(_x(L), n)(1.5),
    })
for _name in ("expand", "repeat", "masked_fill_"):
    MORE.update({
        f"method_{_name}_twelve": lambda L, n=_name: getattr(_x(L), n)(*[_ANYTHING] * 12),
        f"method_{_name}_object": lambda L, n=_name: getattr(_x(L), n)(_ANYTHING),
        f"method_{_name}_float_first": lambda L, n=_name: getattr(_x(L), n)(1.5, 2),
    })


@pytest.mark.parametrize("name", MORE)
def test_shape_reduction_and_product_functions_refuse_as_torch(name):
    expected, got = _outcome(torch, MORE[name]), _outcome(chainrule, MORE[name])
    assert expected[0] != "returned"
    assert got == expected


@pytest.mark.parametrize("call", [
    lambda L: L.squeeze(_x(L), (0,)), lambda L: L.cumsum(_x(L), 0, dtype=L.float64), lambda L: L.prod(_x(L), 1, True),
    lambda L: L.amin(_x(L), (0, 1)), lambda L: L.amax(_x(L), axis=0), lambda L: L.logsumexp(_x(L), 1),
    lambda L: L.masked_fill(_x(L), _mask(L), L.tensor(0.5)), lambda L: L.bmm(_x(L)[None], _x(L).T[None]),
    lambda L: _x(L).expand(2, 2, 3), lambda L: _x(L).expand(L.Size([2, 3])), lambda L: _x(L).expand(-1, 3),
    lambda L: _x(L).repeat(2, 1), lambda L: _x(L).masked_fill_(_mask(L), 1), lambda L: _x(L).mm(_x(L).T),
    lambda L: _x(L).flatten(), lambda L: _x(L).unsqueeze(dim=-1),
])
def test_their_valid_calls_run_as_torchs(call):
    ours, theirs = call(chainrule), call(torch)
    assert ours.shape == theirs.shape
    assert ours.flatten().tolist() == pytest.approx(theirs.flatten().tolist(), rel=1e-6)  # (logsumexp's rounding)
