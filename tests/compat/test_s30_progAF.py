"""Python ints past int64 and uint64 in tensor arithmetic, against torch 2.13.

Found writing the instant_ngp_hash_grid program (int64 spatial hashes whose products wrap):
torch's argument parser unpacks a Python int Scalar as an int64 or, above that, a uint64, and
refuses anything past both with CPython's OverflowError ("int too big to convert", "can't
convert negative int to unsigned") before the op runs, whatever the tensor's dtype; chainrule
wrapped such a number silently (``int64 * 2**64`` was 0, ``float32 + 2**70`` a float).
Numbers inside the two ranges still wrap as torch's do.
"""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")

OPS = {
    "mul": lambda t, v: t * v,
    "rmul": lambda t, v: v * t,
    "add": lambda t, v: t + v,
    "radd": lambda t, v: v + t,
    "sub": lambda t, v: t - v,
    "rsub": lambda t, v: v - t,
    "div": lambda t, v: t / v,
    "floordiv": lambda t, v: t // v,
    "mod": lambda t, v: t % v,
    "pow": lambda t, v: t ** v,
    "rpow": lambda t, v: v ** t,
    "imul": lambda t, v: t.clone().__imul__(v),
    "add_": lambda t, v: t.clone().add_(v),
    "torch.mul": lambda t, v: t.mul(v),
    "xor": lambda t, v: t ^ v,
    "and": lambda t, v: t & v,
    "eq": lambda t, v: t == v,
    "bitwise_xor": lambda t, v: t.bitwise_xor(v),
    "remainder": lambda t, v: t.remainder(v),
    "sub alpha": lambda t, v: t.sub(1, alpha=v),
}
DTYPES = ["int64", "int32", "uint8", "float32", "float64", "float16", "bool"]
PAST_BOTH = [2**64, 2**70, -2**63 - 1, -2**80]
# the edges that fit: int64's least and uint64's greatest, wrapped as torch wraps them
INSIDE = [-2**63, 2**64 - 1, 2**63 - 1]


def _outcome(lib, op, dtype_name, value):
    x = lib.tensor([3, 5], dtype=getattr(lib, dtype_name))
    try:
        result = OPS[op](x, value)
    except Exception as error:  # noqa: BLE001 - the class and text are what is compared
        return type(error).__name__, str(error)
    return str(result.dtype).split(".")[-1], result.tolist()


@pytest.mark.parametrize("value", PAST_BOTH)
def test_an_int_past_int64_and_uint64_is_refused_as_torch_refuses_it(value):
    mismatches = []
    for dtype_name in DTYPES:
        for op in OPS:
            expected = _outcome(torch, op, dtype_name, value)
            got = _outcome(chainrule, op, dtype_name, value)
            if got != expected:
                mismatches.append(f"{op} {dtype_name} {value}: torch {expected}, chainrule {got}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("value", INSIDE)
def test_ints_at_the_edges_of_the_parsed_range_still_wrap_as_torch(value):
    mismatches = []
    for dtype_name in ["int64", "int32", "float32", "float64"]:
        for op in ["mul", "rmul", "add", "sub", "xor", "bitwise_xor", "remainder", "eq", "floordiv"]:
            expected = _outcome(torch, op, dtype_name, value)
            got = _outcome(chainrule, op, dtype_name, value)
            if got != expected:
                mismatches.append(f"{op} {dtype_name} {value}: torch {expected}, chainrule {got}")
    assert not mismatches, "\n".join(mismatches)


def test_the_refusal_comes_before_the_tensor_is_written():
    x = chainrule.tensor([3, 5])
    with pytest.raises(OverflowError, match="int too big to convert"):
        x.mul_(2**64)
    with pytest.raises(OverflowError, match="can't convert negative int to unsigned"):
        x.add_(-2**63 - 1)
    assert x.tolist() == [3, 5] and x._version == 0


def test_fill_names_a_too_negative_int_as_torch_does():
    for lib in (torch, chainrule):
        with pytest.raises(OverflowError, match="can't convert negative int to unsigned"):
            lib.zeros(2, dtype=lib.int64).fill_(-2**63 - 1)


def test_the_hash_grids_int64_products_wrap_as_torchs():
    # instant_ngp_hash_grid: corners times a 64-bit odd multiplier overflow int64, then % T
    corners = [[0, 0], [47, 48], [-3, 1 << 40]]
    results = []
    for lib in (torch, chainrule):
        c = lib.tensor(corners)
        mixed = lib.bitwise_xor(c[:, 0] * -7046029254386353131, c[:, 1] * 0x5851F42D4C957F2D)
        results.append(((mixed % 512).tolist(), mixed.tolist()))
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype_name", ["float32", "float64", "float16", "bfloat16", "complex64"])
@pytest.mark.parametrize("op", ["__lshift__", "__rshift__", "bitwise_left_shift", "bitwise_right_shift"])
def test_a_shift_of_a_floating_tensor_names_torchs_scalar_type(op, dtype_name):
    # (checked while probing the hash's integer ops: the refusal printed NumPy's name, 'float32')
    messages = []
    for lib in (torch, chainrule):
        with pytest.raises(NotImplementedError) as caught:
            getattr(lib.ones(2, dtype=getattr(lib, dtype_name)), op)(1)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("value", [1e40, 70000, 2**63, 1e300])
def test_a_number_past_a_float_dtype_becomes_inf_without_a_numpy_warning(dtype_name, value):
    # float16 // 70000, float32 == 1e40: the number is cast to the tensor's dtype (inf) silently
    import warnings

    ops = {"floordiv": lambda t: t // value, "mod": lambda t: t % value, "eq": lambda t: t == value,
           "lt": lambda t: t < value, "rdiv": lambda t: value / t}
    results = []
    for lib in (torch, chainrule):
        t = lib.tensor([3.0, -2.0], dtype=getattr(lib, dtype_name))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            results.append({name: op(t).tolist() for name, op in ops.items()})
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("exponent", [3, 3.0, -2, -0.5])
def test_pow_by_the_special_cased_exponents_rounds_as_torchs_kernel(exponent, dtype_name):
    # torch's pow_tensor_scalar multiplies (x * x * x) or divides (1 / (x * x), 1 / sqrt(x)) for
    # these exponents: GELU's tanh form (0.044715 * torch.pow(x, 3.0)) rounds as torch's does
    import numpy as np

    rng = np.random.default_rng(0)
    base = np.concatenate([rng.uniform(0.1, 100, 2000), rng.normal(0, 3, 2000),
                           [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, 1e30]]).astype(dtype_name)
    expected = (torch.from_numpy(base) ** exponent).numpy()
    got = (chainrule.from_numpy(base) ** exponent).numpy()
    np.testing.assert_array_equal(got, expected)
    x = chainrule.from_numpy(base[:50].copy()).requires_grad_()
    tx = torch.from_numpy(base[:50].copy()).requires_grad_()
    x.pow(exponent).sum().backward()
    tx.pow(exponent).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("exponent", [3, 3.0, -2])
def test_bfloat16_pow_rounds_each_step_as_torchs_kernel(exponent):
    import numpy as np

    rng = np.random.default_rng(1)
    base = np.concatenate([rng.uniform(0.1, 100, 4000), rng.normal(0, 3, 4000), [0.0, -0.0, np.inf, np.nan]])
    base = base.astype(np.float32)
    expected = (torch.from_numpy(base).bfloat16() ** exponent).float().numpy()
    got = chainrule.from_numpy(base).bfloat16() ** exponent
    assert got.dtype == chainrule.bfloat16
    np.testing.assert_array_equal(got.float().numpy(), expected)


@pytest.mark.parametrize("value", [2**63, 2**64 - 1])
def test_an_int_read_as_uint64_does_not_promote_with_a_bool_tensor(value):
    # torch's Scalar holds it as a uint64, and Bool with UInt64 is a promotion torch refuses;
    # integer and floating tensors keep their own dtype (checked above), bool ** it is refused as int64
    mismatches = []
    for op in [name for name in OPS if name != "sub alpha"]:
        expected = _outcome(torch, op, "bool", value)
        got = _outcome(chainrule, op, "bool", value)
        if got != expected:
            mismatches.append(f"{op} bool {value}: torch {expected}, chainrule {got}")
    assert not mismatches, "\n".join(mismatches)
    for lib in (torch, chainrule):
        assert lib.result_type(lib.tensor([1, 2]), value) == lib.int64
        assert lib.result_type(lib.tensor(1, dtype=lib.int8), value) == lib.int8
