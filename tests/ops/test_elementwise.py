"""Elementwise ops: forward and gradient vs torch, gradcheck and gradgradcheck in float64.

The sample-table cases (torch agreement, gradcheck, gradgradcheck) are registry entries in
``chainrule/testing/opinfo/elementwise.py``, run by ``test_op_db.py``; the tests here are the hand-written ones.
"""

import numpy as np
import pytest


def test_maximum_ties_split_the_gradient():
    import chainrule as cr

    a = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = cr.tensor([1.0, 1.0, 4.0], requires_grad=True)
    cr.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 1.0, 0.0]
    assert b.grad.tolist() == [0.5, 0.0, 1.0]


@pytest.mark.parametrize("op", ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"])
def test_comparisons_give_bool_without_grad(op):
    import chainrule as cr

    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    out = getattr(x, op)(2.0)
    assert out.dtype is cr.bool and not out.requires_grad
    expected = getattr(np.array([1.0, 2.0, 3.0]), op)(2.0)
    assert out.tolist() == expected.tolist()


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("op", ["__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
                                "__truediv__", "__rtruediv__"])
@pytest.mark.parametrize("scalar", [0.5, -3, 0.0, -0.0])
def test_operator_fast_path_matches_torch(op, scalar, grad):
    """Python-number operands take a fast path (cached constants, no promotion): same values,
    same dtype and the same gradient as torch, including the sign of a zero operand."""
    import chainrule as cr

    torch = pytest.importorskip("torch")
    data = np.array([1.5, -2.0, 0.25], dtype=np.float32)
    ours = cr.tensor(data, requires_grad=grad)
    theirs = torch.tensor(data, requires_grad=grad)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = getattr(ours, op)(scalar)
    b = getattr(theirs, op)(scalar)
    assert a.dtype is cr.float32 and a.requires_grad == b.requires_grad
    np.testing.assert_array_equal(np.signbit(a.detach().numpy()), np.signbit(b.detach().numpy()))
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy())
    if grad:
        with np.errstate(divide="ignore", invalid="ignore"):
            a.sum().backward()
        b.sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy())


def test_same_dtype_tensor_fast_path_broadcasts_and_records():
    import chainrule as cr

    a = cr.ones(2, 3)
    b = cr.arange(3.0)
    assert (a * b).tolist() == [[0.0, 1.0, 2.0]] * 2
    w = cr.ones(3, requires_grad=True)
    (a * w).sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]
    assert (a * w).grad_fn.name() == "MulBackward0"


def test_where_with_two_numbers_takes_their_promoted_dtype_like_torch():
    """``torch.where(mask, 1.0, 0.0)``: the numbers' promoted dtype, the mask's shape; anything
    else than numbers and tensors is a TypeError, as in torch."""
    import chainrule as cr

    torch = pytest.importorskip("torch")
    mask = [[True, False, True], [False, False, True]]
    for a, b in [(1.0, 0.0), (1, 0), (1, 0.5), (True, False), (np.float32(2.5), -1)]:
        ours, theirs = cr.where(cr.tensor(mask), a, b), torch.where(torch.tensor(mask), a, b)
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1], (a, b)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for a, b in [("1", 0), (None, 1.0), ([1.0], 0.0)]:
        for lib in (cr, torch):
            with pytest.raises(TypeError):
                lib.where(lib.tensor(mask), a, b)


_ARITHMETIC_UNARY = ["exp", "exp2", "expm1", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "square",
                     "reciprocal", "tan", "atan", "tanh", "sigmoid"]


@pytest.mark.parametrize("name", _ARITHMETIC_UNARY)
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "0-d"])
def test_unary_rule_on_arrays_equals_its_recorded_form(name, dtype, layout):
    # backward() evaluates these rules on the arrays; with create_graph the same expression runs
    # as Tensor ops: both must give the same bits
    import chainrule as cr

    rng = np.random.default_rng(0)
    data = rng.uniform(0.2, 1.5, (4, 6))
    if dtype == "complex64":
        if name in ("exp2", "log2", "log10", "expm1", "log1p", "rsqrt", "atan", "sigmoid"):
            pytest.skip("checked for real dtypes; complex support differs per op")
        data = data + 1j * rng.uniform(-0.5, 0.5, (4, 6))
    data = data.astype(dtype)
    data = {"contiguous": data, "strided": data[:, ::2], "0-d": data[0, 0]}[layout]
    grad_out = np.asarray(rng.uniform(-1, 1, np.shape(data))).astype(dtype)
    fn = getattr(cr, name)

    x = cr.tensor(data, requires_grad=True)
    fn(x).backward(cr.tensor(grad_out))
    x2 = cr.tensor(data, requires_grad=True)
    (recorded,) = cr.autograd.grad(fn(x2), x2, cr.tensor(grad_out), create_graph=True)
    assert recorded.requires_grad and x.grad.dtype == recorded.dtype
    np.testing.assert_array_equal(x.grad.numpy(), recorded.detach().numpy())


# torch 2.x still takes the pre-1.5 overloads that put the scalar first: old scripts'
# ``p.data.add_(-lr, p.grad.data)``, hand-written Adam's ``exp_avg_sq.addcmul_(1 - beta2, grad, grad)``
_SCALAR_FIRST_CALLS = {
    "add": lambda m, a, b: m.add(a, 2.5, b),
    "Tensor.add": lambda m, a, b: a.add(2.5, b),
    "Tensor.add_": lambda m, a, b: (a * 1).add_(-2, b),
    "sub": lambda m, a, b: m.sub(a, 2, b),
    "Tensor.sub_": lambda m, a, b: (a * 1).sub_(0.5, b),
    "addcmul": lambda m, a, b: m.addcmul(a, 0.5, b, b),
    "Tensor.addcmul_": lambda m, a, b: (a * 1).addcmul_(-1.5, a, b),
    "addcdiv": lambda m, a, b: m.addcdiv(a, 0.5, b, b * b + 1),
    "Tensor.addcdiv_": lambda m, a, b: (a * 1).addcdiv_(2, a, b * b + 1),
}


@pytest.mark.parametrize("call", _SCALAR_FIRST_CALLS, ids=list(_SCALAR_FIRST_CALLS))
def test_the_deprecated_scalar_first_overloads_compute_as_torch(call, monkeypatch):
    torch = pytest.importorskip("torch")
    import warnings

    import chainrule as cr
    from chainrule.ops import _arg_parser

    monkeypatch.setattr(_arg_parser, "_deprecated_overload_warned", False)
    values = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]])
    results = {}
    for module in (torch, cr):
        a = module.tensor(values, requires_grad=True)
        b = module.tensor(values[::-1].copy() * 0.5, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = _SCALAR_FIRST_CALLS[call](module, a, b)
        out.sum().backward()
        results[module.__name__] = [out.detach().numpy(), a.grad.numpy(), b.grad.numpy()]
    for ours, theirs in zip(results["chainrule"], results["torch"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_the_scalar_first_overload_warns_once_in_torchs_words_at_the_callers_line(monkeypatch):
    import warnings

    import chainrule as cr
    from chainrule.ops import _arg_parser

    monkeypatch.setattr(_arg_parser, "_deprecated_overload_warned", False)
    a, b = cr.ones(3), cr.arange(3.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a.add_(-2, b)
        cr.addcmul(a, 0.5, b, b)  # torch warns once per process for all these overloads
    assert a.tolist() == [1.0, -1.0, -3.0]
    assert [str(w.message) for w in caught] == [
        # the in-place method warns in its own name, as torch's add_ does
        "This overload of add_ is deprecated:\n\tadd_(Number alpha, Tensor other)\n"
        "Consider using one of the following signatures instead:\n\tadd_(Tensor other, *, Number alpha = 1)"
        " (Triggered internally at /__w/pytorch/pytorch/torch/csrc/utils/python_arg_parser.cpp:1841.)"]
    assert caught[0].category is UserWarning and caught[0].filename == __file__


def test_a_scalar_after_the_tensor_or_with_alpha_too_is_still_refused():
    import chainrule as cr

    a, b = cr.ones(3), cr.arange(3.0)
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3"):
        cr.add(a, b, 2)  # torch's words: add() takes 2 positional arguments but 3 were given
    with pytest.raises(TypeError, match="takes 2 positional arguments"):
        cr.add(a, 2, b, alpha=3)


_ALPHA_CALLS = {
    "bool alpha, float result": lambda m, f, i: m.add(f, f, alpha=True),
    "bool alpha, bool result": lambda m, f, i: m.add(i > 0, i > 1, alpha=True),
    "bool alpha, sub": lambda m, f, i: m.sub(f, f, alpha=True),
    "fractional alpha, integer result": lambda m, f, i: m.add(i, i, alpha=0.5),
    "float 1.0 alpha, integer result": lambda m, f, i: m.sub(i, i, alpha=1.0),
    "NumPy integer alpha": lambda m, f, i: m.add(i, i, alpha=np.int64(2)),
    "complex alpha, real result": lambda m, f, i: m.add(f, f, alpha=1 + 1j),
    "complex alpha, integer result": lambda m, f, i: m.add(i, i, alpha=1j),
    "complex alpha, complex result": lambda m, f, i: m.add(f.to(m.complex64), f, alpha=1j),
    "float scalar other, integer alpha": lambda m, f, i: m.add(i, 2.5, alpha=2),
    "in place": lambda m, f, i: f.clone().add_(f, alpha=0.5),
}


@pytest.mark.parametrize("call", _ALPHA_CALLS, ids=list(_ALPHA_CALLS))
def test_alpha_is_checked_against_the_result_dtype_as_torch(call):
    torch = pytest.importorskip("torch")
    import chainrule as cr

    outcomes = []
    for module in (torch, cr):
        try:
            outcomes.append(_ALPHA_CALLS[call](module, module.arange(1.0, 4.0), module.arange(3)).tolist())
        except RuntimeError as error:
            outcomes.append(str(error))
    assert outcomes[0] == outcomes[1]


_MIXED_ALPHA = [("float64", "float32"), ("float32", "float16"), ("float32", "bfloat16"), ("float64", "int64"),
                ("float16", "float32"), ("float32", "python float")]


@pytest.mark.parametrize("op", ["add", "sub"])
@pytest.mark.parametrize("dtypes", _MIXED_ALPHA, ids=["-".join(d) for d in _MIXED_ALPHA])
def test_alpha_scales_other_in_the_result_dtype_as_torch(op, dtypes):
    # torch casts other to the promoted dtype, then scales it: float32 + 0.1·float16 scales in
    # float32; scaling in other's own dtype first was off by up to 13 % near cancellations
    torch = pytest.importorskip("torch")
    import chainrule as cr

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(500) * 10, np.round(rng.standard_normal(500) * 10, 1)
    results = []
    for lib in (torch, cr):
        x = lib.tensor(a).to(getattr(lib, dtypes[0])).requires_grad_()
        y = 2.5 if dtypes[1] == "python float" else lib.tensor(b).to(getattr(lib, dtypes[1]))
        out = getattr(lib, op)(x, y, alpha=0.1)
        out.sum().backward()
        results.append((out.dtype, out.detach().double().numpy(), x.grad.double().numpy()))
    assert str(results[0][0]).split(".")[1] == str(results[1][0]).split(".")[1]
    # torch fuses the multiply-add (one rounding), so a last-place difference remains
    tolerance = {"float64": 1e-15, "float32": 1e-6, "float16": 1e-3}[dtypes[0]]
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=tolerance, atol=tolerance)
    np.testing.assert_array_equal(results[1][2], results[0][2])
