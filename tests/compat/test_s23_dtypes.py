"""Type promotion and dtype refusals as torch's (tools/torch_promotion_trial.py finds the differences)."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    try:
        result = call(lib)
    except Exception as exc:  # the raised class and message are what is compared
        return type(exc), str(exc).splitlines()[0]
    first = result[0] if isinstance(result, tuple) else result  # (a named tuple: its first tensor)
    return "ok", str(first.dtype).rpartition(".")[2]


def _assert_same(call):
    expected, got = _outcome(torch, call), _outcome(chainrule, call)
    if expected[0] == "ok":
        assert got == expected
    else:
        assert got[0] is not str and issubclass(got[0], expected[0]), (expected, got)
        assert got[1] == expected[1]


def _t(lib, dtype, values=(5, 2, 7)):
    return lib.tensor(list(values), dtype=getattr(lib, dtype))


@pytest.mark.parametrize("op", ["remainder", "fmod", "atan2", "copysign"])
@pytest.mark.parametrize("other", ["complex64", "complex128", "float32"])
def test_real_only_binary_ops_refuse_complex(op, other):
    _assert_same(lambda lib: getattr(lib, op)(_t(lib, "float64"), _t(lib, other, (2, 3, 1))))
    _assert_same(lambda lib: getattr(_t(lib, other), op + "_")(_t(lib, "float32", (2, 3, 1))))


def test_remainder_by_complex_scalar_refused():
    _assert_same(lambda lib: lib.remainder(_t(lib, "int64"), 1j))


@pytest.mark.parametrize("pair", [("float32", "float64"), ("int64", "int64"), ("complex64", "complex64"),
                                  ("bfloat16", "bfloat16"), ("float16", "float16"), ("float16", "float32"),
                                  ("float64", "float64")])
def test_polar_dtype_checks(pair):
    _assert_same(lambda lib: lib.polar(_t(lib, pair[0]), _t(lib, pair[1])))


@pytest.mark.parametrize("pair", [("float32", "float64"), ("int64", "int64"), ("bool", "bool"), ("float16", "float16")])
def test_isclose_requires_one_dtype(pair):
    _assert_same(lambda lib: lib.isclose(_t(lib, pair[0]), _t(lib, pair[1])))


@pytest.mark.parametrize("pair", [("float32", "float64"), ("int64", "int32"), ("bool", "bool"), ("int64", "bool"),
                                  ("float16", "float16")])
def test_cross_requires_one_dtype(pair):
    _assert_same(lambda lib: lib.cross(_t(lib, pair[0]), _t(lib, pair[1]), dim=0))
    _assert_same(lambda lib: lib.linalg.cross(_t(lib, pair[0]), _t(lib, pair[1])))


@pytest.mark.parametrize("dtype", ["int64", "bool", "float32", "complex64"])
@pytest.mark.parametrize("acc", [None, "int64", "float64", "complex64"])
def test_nanmean_input_and_dtype_checks(dtype, acc):
    def call(lib):
        x = _t(lib, dtype)
        return lib.nanmean(x) if acc is None else lib.nanmean(x, dtype=getattr(lib, acc))
    _assert_same(call)


def test_nansum_float_input_complex_dtype_refused():
    _assert_same(lambda lib: lib.nansum(_t(lib, "float32"), dtype=lib.complex64))
    _assert_same(lambda lib: lib.nansum(_t(lib, "int64"), dtype=lib.complex64))


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize("dtype", ["bool", "float32"])
def test_running_totals_refuse_bool_accumulator(op, dtype):
    _assert_same(lambda lib: getattr(lib, op)(_t(lib, dtype), 0, dtype=lib.bool))


@pytest.mark.parametrize("op", ["nextafter", "logaddexp2"])
@pytest.mark.parametrize("scalar", [True, 2, 2.5, 1j])
def test_tensor_only_binary_ops_refuse_python_numbers(op, scalar):
    for call in (lambda lib: getattr(lib, op)(_t(lib, "float32"), scalar),
                 lambda lib: getattr(lib, op)(scalar, _t(lib, "float32"))):
        expected, got = _outcome(torch, call), _outcome(chainrule, call)
        assert expected[0] is TypeError and got[0] is TypeError, (expected, got)


@pytest.mark.parametrize("base", ["complex128", "complex64", "float64", "float32"])
@pytest.mark.parametrize("exponent", ["float32", "complex128"])
def test_float_power_inplace_requires_the_wide_dtype(base, exponent):
    _assert_same(lambda lib: _t(lib, base).float_power_(_t(lib, exponent, (2, 3, 1))))
    _assert_same(lambda lib: _t(lib, base).float_power_(2j))


@pytest.mark.parametrize("op", ["deg2rad", "rad2deg", "signbit"])
@pytest.mark.parametrize("dtype", ["complex64", "int64", "float32"])
def test_real_only_unary_ops_refuse_complex(op, dtype):
    _assert_same(lambda lib: getattr(lib, op)(_t(lib, dtype)))


@pytest.mark.parametrize("op", ["remainder", "fmod"])
def test_remainder_of_bools_refused(op):
    _assert_same(lambda lib: getattr(lib, op)(_t(lib, "bool", (True, False, True)), _t(lib, "bool", (True,) * 3)))
    _assert_same(lambda lib: getattr(lib, op)(_t(lib, "bool", (True, False, True)), _t(lib, "int8", (2, 3, 1))))


@pytest.mark.parametrize("dtype", ["bool", "int64", "float16", "float32", "float64", "complex64"])
def test_ldexp_bool_exponent(dtype):
    _assert_same(lambda lib: lib.ldexp(_t(lib, dtype, (1, 0, 1)), _t(lib, "bool", (True, False, True))))


def test_pow_complex_scalar_base_float_exponent():
    x = chainrule.pow(1 + 1j, chainrule.tensor([1.0, 2.0]))
    assert x.dtype == chainrule.complex64
    expected = torch.pow(1 + 1j, torch.tensor([1.0, 2.0]))
    assert x.dtype.name == str(expected.dtype).rpartition(".")[2]
    assert all(abs(a - b) < 1e-6 for a, b in zip(x.tolist(), expected.tolist()))


def _m(lib, shape, dtype):
    return lib.ones(*shape, dtype=getattr(lib, dtype))


_ADD_PRODUCTS = {"addmm": ((2, 2), (2, 3), (3, 2)), "addbmm": ((2, 2), (1, 2, 3), (1, 3, 2)),
                 "baddbmm": ((1, 2, 2), (1, 2, 3), (1, 3, 2)), "addmv": ((2,), (2, 3), (3,))}


@pytest.mark.parametrize("op", sorted(_ADD_PRODUCTS))
@pytest.mark.parametrize("dtypes", [("float64", "float32", "float32"), ("float32", "float64", "float32"),
                                    ("float32", "float32", "float64"), ("int64", "int64", "int64"),
                                    ("bool", "bool", "bool"), ("bool", "float32", "float32"),
                                    ("float32", "float32", "float32")])
def test_add_a_product_ops_require_one_dtype(op, dtypes):
    _assert_same(lambda lib: getattr(lib, op)(*(_m(lib, s, d) for s, d in zip(_ADD_PRODUCTS[op], dtypes))))


@pytest.mark.parametrize("pair", [("bool", "bool"), ("bool", "float32"), ("float32", "float32")])
def test_bmm_of_bools_refused(pair):
    _assert_same(lambda lib: lib.bmm(_m(lib, (1, 2, 2), pair[0]), _m(lib, (1, 2, 2), pair[1])))


@pytest.mark.parametrize("pair", [("int64", "int64"), ("int64", "float32"), ("float32", "int64"),
                                  ("float32", "float64"), ("float16", "float16"), ("complex64", "complex64")])
def test_linalg_vecdot_dtype_checks(pair):
    _assert_same(lambda lib: lib.linalg.vecdot(_t(lib, pair[0]), _t(lib, pair[1])))


def test_linalg_vecdot_refuses_numbers():
    with pytest.raises(TypeError, match=r"linalg_vecdot\(\): argument 'y' \(position 2\) must be Tensor, not int"):
        chainrule.linalg.vecdot(chainrule.ones(3), 2)


@pytest.mark.parametrize("op", ["searchsorted", "bucketize"])
@pytest.mark.parametrize("pair", [("bool", "bool"), ("int64", "bool"), ("float32", "complex64"),
                                  ("complex128", "int16"), ("int64", "float32")])
def test_searchsorted_kernel_dtypes(op, pair):
    _assert_same(lambda lib: getattr(lib, op)(_t(lib, pair[0], (1, 2, 3)), _t(lib, pair[1], (1, 2, 3))))
    # no values to place: torch runs no kernel, so no dtype is refused
    values, sequence = (pair[0], pair[1]) if op == "bucketize" else (pair[1], pair[0])
    _assert_same(lambda lib: getattr(lib, op)(*((_t(lib, values, ()), _t(lib, sequence, (1, 2, 3))) if op == "bucketize"
                                                else (_t(lib, sequence, (1, 2, 3)), _t(lib, values, ())))))


@pytest.mark.parametrize("pair", [("float16", "float32"), ("int64", "bfloat16"), ("float32", "float64"),
                                  ("bfloat16", "bfloat16")])
def test_zeta_has_no_half_precision_kernel(pair):
    _assert_same(lambda lib: lib.special.zeta(_t(lib, pair[0]), _t(lib, pair[1])))


@pytest.mark.parametrize("pair", [("float32", "complex64"), ("complex128", "int8"), ("float32", "float64")])
def test_xlog1py_refuses_complex(pair):
    _assert_same(lambda lib: lib.special.xlog1py(_t(lib, pair[0]), _t(lib, pair[1])))


@pytest.mark.parametrize("out", ["bool", "int64", "float32"])
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_signbit_out_must_be_bool(dtype, out):
    _assert_same(lambda lib: lib.signbit(_t(lib, dtype), out=lib.empty(3, dtype=getattr(lib, out))))


@pytest.mark.parametrize("pair", [("int64", "int64"), ("int64", "int32"), ("bool", "int64"), ("uint8", "float64")])
def test_bitwise_not_out_keeps_the_input_dtype(pair):
    _assert_same(lambda lib: lib.bitwise_not(_t(lib, pair[0]), out=lib.empty(3, dtype=getattr(lib, pair[1]))))


_LINALG_FLAGS = [
    ("linalg.solve_triangular", lambda lib, v: lib.linalg.solve_triangular(lib.eye(2), lib.eye(2), upper=v)),
    ("linalg.cholesky", lambda lib, v: lib.linalg.cholesky(lib.eye(2), upper=v)),
    ("cholesky_solve", lambda lib, v: lib.cholesky_solve(lib.eye(2), lib.eye(2), upper=v)),
    ("linalg.svd", lambda lib, v: lib.linalg.svd(lib.eye(2), full_matrices=v)),
    ("svd", lambda lib, v: lib.svd(lib.eye(2), some=v)),
    ("linalg.pinv", lambda lib, v: lib.linalg.pinv(lib.eye(2), hermitian=v)),
    ("linalg.matrix_rank", lambda lib, v: lib.linalg.matrix_rank(lib.eye(2), hermitian=v)),
    ("linalg.solve", lambda lib, v: lib.linalg.solve(lib.eye(2), lib.eye(2), left=v)),
    ("linalg.solve_ex", lambda lib, v: lib.linalg.solve_ex(lib.eye(2), lib.eye(2), left=v)),
    ("triangular_solve", lambda lib, v: lib.triangular_solve(lib.eye(2), lib.eye(2), upper=v)),
]


@pytest.mark.parametrize("name,call", _LINALG_FLAGS, ids=[name for name, _ in _LINALG_FLAGS])
@pytest.mark.parametrize("value", [None, "yes", 1])
def test_linalg_bool_flags_refuse_other_types(name, call, value):
    expected, got = _outcome(torch, lambda lib: call(lib, value)), _outcome(chainrule, lambda lib: call(lib, value))
    assert expected[0] is TypeError and got[0] is TypeError, (expected, got)
    assert _outcome(chainrule, lambda lib: call(lib, True))[0] == "ok"


@pytest.mark.parametrize("call", [
    lambda lib: lib.clamp(2, lib.ones(3)),
    lambda lib: lib.lerp(2, lib.ones(3), 0.5),
    lambda lib: lib.lerp(lib.ones(3), 2, 0.5),
    lambda lib: lib.lerp(lib.ones(3), lib.ones(3), "half"),
    lambda lib: lib.dist(lib.ones(3), 2),
    lambda lib: lib.dist(2.5, lib.ones(3)),
    lambda lib: lib.masked_fill(2, lib.ones(3) > 0, 1.0),
])
def test_numbers_where_tensors_go_raise_type_error(call):
    expected, got = _outcome(torch, call), _outcome(chainrule, call)
    assert expected[0] is TypeError and got[0] is TypeError, (expected, got)
    if "must be Tensor" in expected[1]:
        assert got[1] == expected[1]


@pytest.mark.parametrize("call", [
    lambda lib: lib.cdist(lib.ones(2, 3), lib.ones(2, 3, dtype=lib.float64)),
    lambda lib: lib.cdist(lib.ones(2, 3, dtype=lib.float64), lib.ones(2, 3)),
    lambda lib: lib.cdist(lib.ones(2, 3), lib.ones(2, 3), p=float("nan")),
    lambda lib: lib.cdist(lib.ones(2, 3), lib.ones(2, 3), compute_mode=None),
    lambda lib: lib.cdist(lib.ones(2, 3), lib.ones(2, 3), compute_mode="use_mm_for_euclid_dist"),
    lambda lib: lib.logsumexp(lib.ones(2, 3), 0, None),
    lambda lib: lib.logsumexp(lib.ones(2, 3), 0, 1),
])
def test_cdist_and_logsumexp_argument_checks(call):
    _assert_same(call)


@pytest.mark.parametrize("call", [
    lambda lib: lib.round(lib.tensor([1.26, 2.5]), decimals=2**31),
    lambda lib: lib.round(lib.tensor([1.26, 2.5], dtype=lib.float64), decimals=-400),
    lambda lib: lib.round(lib.tensor([1.26, 2.5]), decimals=2**63),
    lambda lib: lib.round(lib.tensor([1.26, 2.5]), decimals=2.0),
    lambda lib: lib.tensordot(lib.ones(2, 3), lib.ones(3, 2), dims=None),
    lambda lib: lib.tensordot(lib.ones(2, 3), lib.ones(3, 2), dims=1.5),
    lambda lib: lib.addbmm(lib.ones(2, 2), lib.tensor(1.0), lib.ones(1, 3, 2)),
    lambda lib: lib.addbmm(lib.ones(2, 2), lib.ones(1, 2, 3), lib.tensor(1.0)),
])
def test_hostile_scalars_for_round_tensordot_addbmm(call):
    expected, got = _outcome(torch, call), _outcome(chainrule, call)
    assert got[0] == expected[0] if expected[0] == "ok" else issubclass(got[0], expected[0]), (expected, got)
    if expected[0] == "ok":
        assert chainrule.isnan(call(chainrule)).all()  # torch's infinite 10^decimals scale


@pytest.mark.parametrize("call", [
    lambda lib: lib.linalg.pinv(None),
    lambda lib: lib.linalg.pinv(lib.eye(3), rtol="tight"),
    lambda lib: lib.linalg.matrix_rank(lib.eye(3), atol="tight"),
    lambda lib: lib.linalg.lstsq(lib.eye(3), lib.eye(3), driver=True),
    lambda lib: lib.linalg.solve_triangular(lib.eye(3), None, upper=True),
    lambda lib: lib.linalg.tensorinv(lib.eye(4).reshape(4, 2, 2), ind=True),
    lambda lib: lib.linalg.vander(lib.ones(3), N=-2**63 - 1),
    lambda lib: lib.kthvalue(lib.ones(3), float("nan")),
    lambda lib: lib.kthvalue(lib.ones(3), 2**63),
    lambda lib: lib.linalg.lu_solve(lib.eye(3), lib.tensor([1, 2, 3]), lib.eye(3)),
    lambda lib: lib.linalg.lu_solve(lib.eye(3), lib.tensor([1, 2, 3], dtype=lib.int32), lib.eye(3)),
])
def test_linalg_and_kthvalue_hostile_arguments(call):
    expected, got = _outcome(torch, call), _outcome(chainrule, call)
    assert got == expected if expected[0] == "ok" else issubclass(got[0], expected[0]), (expected, got)


@pytest.mark.parametrize("call", [
    lambda lib: lib.linalg.matrix_norm(lib.eye(3), None),
    lambda lib: lib.linalg.matrix_norm(lib.eye(3), "fro", None),
    lambda lib: lib.linalg.matrix_norm(lib.eye(3), "fro", True),
    lambda lib: lib.linalg.matrix_norm(lib.eye(3), "nuc", [0, 1]),
    lambda lib: lib.linalg.vector_norm(lib.eye(3), "fro"),
    lambda lib: lib.linalg.vector_norm(lib.eye(3), float("inf")),
])
def test_norm_argument_types(call):
    expected, got = _outcome(torch, call), _outcome(chainrule, call)
    assert got == expected if expected[0] == "ok" else issubclass(got[0], expected[0]), (expected, got)


def test_clamp_without_bounds_says_what_torch_says():
    torch = pytest.importorskip("torch")
    for call in (lambda lib: lib.clamp(lib.ones(2)), lambda lib: lib.ones(2).clamp_(), lambda lib: lib.clip(lib.ones(2)),
                 lambda lib: lib.nn.GaussianNLLLoss(eps=None)(lib.ones(3), lib.ones(3), lib.ones(3))):
        messages = []
        for lib in (torch, chainrule):
            with pytest.raises(RuntimeError) as caught:
                call(lib)
            messages.append(str(caught.value))
        assert messages[0] == messages[1]
