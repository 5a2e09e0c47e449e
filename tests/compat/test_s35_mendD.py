"""torch's argument parser words for the methods and functions it overloads, compared with torch."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def assert_refused_alike(call) -> None:
    """``call(lib, x, y, index)`` raises the same exception type and message on torch and chainrule
    (or succeeds on both)."""
    outcomes = []
    for lib in (torch, chainrule):
        x, y = lib.ones(2, 3), lib.ones(2, 3)
        index = lib.zeros(2, 3, dtype=lib.int64)
        try:
            call(lib, x, y, index)
            outcomes.append(None)
        except Exception as error:  # noqa: BLE001 - any refusal is compared
            outcomes.append((type(error), str(error)))
    assert outcomes[1] == outcomes[0]


OVERLOADED_CALLS = {
    "x.div(y, 2)": lambda L, x, y, i: x.div(y, 2),
    "x.div(y, rounding_mode=1)": lambda L, x, y, i: x.div(y, rounding_mode=1),
    "x.div_(y, 2)": lambda L, x, y, i: x.div_(y, 2),
    "x.true_divide(y, 2)": lambda L, x, y, i: x.true_divide(y, 2),
    "x.pow(2, 3)": lambda L, x, y, i: x.pow(2, 3),
    "x.pow()": lambda L, x, y, i: x.pow(),
    "x.pow('a')": lambda L, x, y, i: x.pow("a"),
    "x.pow_()": lambda L, x, y, i: x.pow_(),
    "x.eq(y, y)": lambda L, x, y, i: x.eq(y, y),
    "x.eq()": lambda L, x, y, i: x.eq(),
    "x.eq(None)": lambda L, x, y, i: x.eq(None),
    "x.eq(np.array(1))": lambda L, x, y, i: x.eq(np.array(1)),
    "x.lt('a')": lambda L, x, y, i: x.lt("a"),
    "x.gt(y, 1)": lambda L, x, y, i: x.gt(y, 1),
    "x.add()": lambda L, x, y, i: x.add(),
    "x.add('a')": lambda L, x, y, i: x.add("a"),
    "x.add(y, alpha='x')": lambda L, x, y, i: x.add(y, alpha="x"),
    "x.add_()": lambda L, x, y, i: x.add_(),
    "x.sub(y, y, y)": lambda L, x, y, i: x.sub(y, y, y),
    "x.sub_('a')": lambda L, x, y, i: x.sub_("a"),
    "x.mul(np.array([1., 2.]))": lambda L, x, y, i: x.mul(np.array([1.0, 2.0])),
    "x.remainder()": lambda L, x, y, i: x.remainder(),
    "x.fmod(y, y)": lambda L, x, y, i: x.fmod(y, y),
    "x.lerp(y)": lambda L, x, y, i: x.lerp(y),
    "x.where(y)": lambda L, x, y, i: x.where(y),
    "x.atan2(1)": lambda L, x, y, i: x.atan2(1),
    "x.clamp(np.array(1.))": lambda L, x, y, i: x.clamp(np.array(1.0)),
    "torch.add(x)": lambda L, x, y, i: L.add(x),
    "torch.div(x, y, 2)": lambda L, x, y, i: L.div(x, y, 2),
    "torch.pow(x, 2, 3)": lambda L, x, y, i: L.pow(x, 2, 3),
    "torch.eq(x)": lambda L, x, y, i: L.eq(x),
    "torch.eq(x, y, y)": lambda L, x, y, i: L.eq(x, y, y),
    "torch.sub(x, 'a')": lambda L, x, y, i: L.sub(x, "a"),
    "torch.where(x > 0, 1)": lambda L, x, y, i: L.where(x > 0, 1),
    # taken by both: numbers where torch takes them, the deprecated alpha-first add
    "x.add(2, y)": lambda L, x, y, i: x.add(2, y),
    "x.add(np.int64(2))": lambda L, x, y, i: x.add(np.int64(2)),
    "x.div(2, rounding_mode='floor')": lambda L, x, y, i: x.div(2, rounding_mode="floor"),
    "x.pow(np.float32(2))": lambda L, x, y, i: x.pow(np.float32(2)),
    "torch.pow(2, x)": lambda L, x, y, i: L.pow(2, x),
    "torch.remainder(2, x)": lambda L, x, y, i: L.remainder(2, x),
    "x.where(x > 0, 1.0)": lambda L, x, y, i: x.where(x > 0, 1.0),
    # an alias names itself, as in torch
    "torch.greater(x)": lambda L, x, y, i: L.greater(x),
    "x.greater_()": lambda L, x, y, i: x.greater_(),
    "x.arctan2(1)": lambda L, x, y, i: x.arctan2(1),
    "torch.not_equal(x, 'a')": lambda L, x, y, i: L.not_equal(x, "a"),
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("call", OVERLOADED_CALLS.values(), ids=OVERLOADED_CALLS.keys())
def test_overloaded_methods_and_functions_refuse_in_torchs_words(call):
    assert_refused_alike(call)


CASTS = ("float", "double", "half", "bfloat16", "long", "int", "short", "bool", "byte", "char", "cfloat", "cdouble",
         "contiguous")
KEYWORD_ONLY_CALLS = {
    "(1)": lambda method, L: method(1),
    "(1, 2)": lambda method, L: method(1, 2),
    "(None)": lambda method, L: method(None),
    "(torch.float64)": lambda method, L: method(L.float64),
    "(memory_format=1)": lambda method, L: method(memory_format=1),
    "(memory_format=None)": lambda method, L: method(memory_format=None),
    "(foo=1)": lambda method, L: method(foo=1),
    "(memory_format=torch.contiguous_format)": lambda method, L: method(memory_format=L.contiguous_format),
}


@pytest.mark.parametrize("call", KEYWORD_ONLY_CALLS.values(), ids=KEYWORD_ONLY_CALLS.keys())
@pytest.mark.parametrize("name", CASTS)
def test_casting_methods_and_contiguous_take_only_a_memory_format_keyword(name, call):
    assert_refused_alike(lambda L, x, y, i: call(getattr(x, name), L))


@pytest.mark.parametrize("call", [lambda L, x: x.softmax(0, None, 3), lambda L, x: x.log_softmax(0, None, 3),
                                  lambda L, x: x.softmax(0, 1)])
def test_softmax_refuses_a_third_argument_as_torch(call):
    assert_refused_alike(lambda L, x, y, i: call(L, x))


def test_ger_warns_of_its_deprecation_as_torch_only_in_its_out_form():
    def warned(lib) -> list:
        a, b = lib.ones(2), lib.ones(3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lib.ger(a, b)
            a.ger(b)
            lib.ger(a, b, out=lib.empty(2, 3))
            with pytest.raises(RuntimeError, match="outer: Expected 1-D argument self, but got 2-D"):
                lib.ger(lib.ones(2, 2), b, out=lib.empty(2, 3))  # (warned before the check, as by torch)
        return [(w.category, str(w.message), w.filename) for w in caught]

    assert warned(chainrule) == warned(torch)
    assert len(warned(chainrule)) == 2 and warned(chainrule)[0][2] == __file__


SPECIAL_FUNCTIONS = ("erf", "digamma", "psi", "gammaln", "expit", "log1p", "i0", "logit", "polygamma", "multigammaln",
                     "xlogy", "xlog1py", "zeta", "gammainc", "chebyshev_polynomial_t", "airy_ai", "softmax",
                     "logsumexp", "round")
SPECIAL_CALLS = {
    "()": lambda f, x: f(),
    "(str)": lambda f, x: f("a"),
    "(1)": lambda f, x: f(1),
    "(x, str)": lambda f, x: f(x, "a"),
    "(str, x)": lambda f, x: f("a", x),
    "(x, x, x)": lambda f, x: f(x, x, x),
    "(x, [1])": lambda f, x: f(x, [1]),
    "(x, foo=1)": lambda f, x: f(x, foo=1),
    "(1, x)": lambda f, x: f(1, x),
}


@pytest.mark.parametrize("call", SPECIAL_CALLS.values(), ids=SPECIAL_CALLS.keys())
@pytest.mark.parametrize("name", SPECIAL_FUNCTIONS)
def test_special_functions_refuse_under_their_special_names(name, call):
    assert_refused_alike(lambda L, x, y, i: call(getattr(L.special, name), x))


# a C function's parser checks the types of the arguments given before it misses a later one
TYPED_BEFORE_MISSED = {
    "adaptive_avg_pool1d(1)": lambda L, x, y, i: L.adaptive_avg_pool1d(1),
    "allclose('a')": lambda L, x, y, i: L.allclose("a"),
    "as_strided(None, None)": lambda L, x, y, i: L.as_strided(None, None),
    "batch_norm(1.5)": lambda L, x, y, i: L.batch_norm(1.5),
    "adaptive_avg_pool1d(x)": lambda L, x, y, i: L.adaptive_avg_pool1d(x),
    "allclose(x, y, 1, 2, 3, 4)": lambda L, x, y, i: L.allclose(x, y, 1, 2, 3, 4),
}


@pytest.mark.parametrize("call", TYPED_BEFORE_MISSED.values(), ids=TYPED_BEFORE_MISSED.keys())
def test_c_functions_refuse_a_wrong_type_before_a_missing_argument(call):
    assert_refused_alike(call)


# torch's top-level in-place functions of one tensor count their arguments first
INPLACE_FUNCTION_CALLS = {
    "abs_(x, 'a')": lambda L, x, y, i: L.abs_(x, "a"),
    "sigmoid_('a', 1)": lambda L, x, y, i: L.sigmoid_("a", 1),
    "relu_(None, None)": lambda L, x, y, i: L.relu_(None, None),
    "exp_(x, input=x)": lambda L, x, y, i: L.exp_(x, input=x),
    "tanh_(1)": lambda L, x, y, i: L.tanh_(1),
    "clamp_(x, 0, 1)": lambda L, x, y, i: L.clamp_(x, 0, 1),
}


@pytest.mark.parametrize("call", INPLACE_FUNCTION_CALLS.values(), ids=INPLACE_FUNCTION_CALLS.keys())
def test_top_level_inplace_functions_count_their_arguments_as_torch(call):
    assert_refused_alike(call)


# an alias torch makes a function of its own names itself
ALIAS_CALLS = {
    "arccos('a')": lambda L, x, y, i: L.arccos("a"),
    "negative(x, 1)": lambda L, x, y, i: L.negative(x, 1),
    "moveaxis(1)": lambda L, x, y, i: L.moveaxis(1),
    "fix(None, None)": lambda L, x, y, i: L.fix(None, None),
    "absolute(1.5)": lambda L, x, y, i: L.absolute(1.5),
    "row_stack('a')": lambda L, x, y, i: L.row_stack("a"),
}


@pytest.mark.parametrize("call", ALIAS_CALLS.values(), ids=ALIAS_CALLS.keys())
def test_aliases_name_themselves_in_their_refusals(call):
    assert_refused_alike(call)


def test_aliases_carry_their_own_names():
    for name in ("arccos", "fix", "absolute", "negative", "moveaxis", "row_stack", "greater", "multiply", "clip"):
        assert getattr(chainrule, name).__name__ == getattr(torch, name).__name__ == name


# torch's top-level spellings of Tensor methods parse input first, and count it
METHOD_AS_FUNCTION_CALLS = {
    "adjoint(1)": lambda L, x, y, i: L.adjoint(1),
    "adjoint(x, 'a')": lambda L, x, y, i: L.adjoint(x, "a"),
    "detach(None, None)": lambda L, x, y, i: L.detach(None, None),
    "zero_(1.5)": lambda L, x, y, i: L.zero_(1.5),
    "put('a', 1)": lambda L, x, y, i: L.put("a", 1),
    "index_put(1)": lambda L, x, y, i: L.index_put(1),
}


@pytest.mark.parametrize("call", METHOD_AS_FUNCTION_CALLS.values(), ids=METHOD_AS_FUNCTION_CALLS.keys())
def test_top_level_spellings_of_methods_refuse_as_torch(call):
    assert_refused_alike(call)


# an op's own type check says where a positional argument was, as torch's parser does
POSITIONED_CALLS = {
    "median(x, 'a')": lambda L, x, y, i: L.median(x, "a"),
    "x.median('a')": lambda L, x, y, i: x.median("a"),
    "median(x, dim='a')": lambda L, x, y, i: L.median(x, dim="a"),
    "take(x, 'a')": lambda L, x, y, i: L.take(x, "a"),
    "layer_norm(x, 'a')": lambda L, x, y, i: L.layer_norm(x, "a"),
    "pixel_shuffle(x, 'a')": lambda L, x, y, i: L.pixel_shuffle(x, "a"),
}


@pytest.mark.parametrize("call", POSITIONED_CALLS.values(), ids=POSITIONED_CALLS.keys())
def test_type_refusals_say_where_a_positional_argument_was(call):
    assert_refused_alike(call)


# functions torch overloads list their signatures when none takes the call; valid calls still run
OVERLOADED_FUNCTION_CALLS = {
    "all(1)": lambda L, x, y, i: L.all(1),
    "any('a', 1)": lambda L, x, y, i: L.any("a", 1),
    "conv2d(None, None)": lambda L, x, y, i: L.conv2d(None, None),
    "conv2d(x, 'a')": lambda L, x, y, i: L.conv2d(x, "a"),
    "quantile(1.5)": lambda L, x, y, i: L.quantile(1.5),
    "tensor_split(x, 'a')": lambda L, x, y, i: L.tensor_split(x, "a"),
    "isin('a', 1)": lambda L, x, y, i: L.isin("a", 1),
    "conv2d(x[None], ones(3, 2, 1, 1), None, 1, 'same')":
        lambda L, x, y, i: L.conv2d(x[None, None], L.ones(3, 1, 1, 1), None, 1, "same"),
    "tensor_split(x, tensor(2))": lambda L, x, y, i: L.tensor_split(x, L.tensor(2)),
    "count_nonzero(x, (0, 1))": lambda L, x, y, i: L.count_nonzero(x, (0, 1)),
}


@pytest.mark.parametrize("call", OVERLOADED_FUNCTION_CALLS.values(), ids=OVERLOADED_FUNCTION_CALLS.keys())
def test_overloaded_functions_list_torchs_signatures(call):
    assert_refused_alike(call)


@pytest.mark.parametrize("call", [lambda L, x: L.celu(x, "a"), lambda L, x: L.celu_(x, "a"), lambda L, x: L.logit(x, "a"),
                                  lambda L, x: x.logit("a"), lambda L, x: L.combinations(x, "a"),
                                  lambda L, x: L.celu(x, alpha="a"), lambda L, x: L.logit(x, 1, 2)])
def test_celu_logit_and_combinations_check_their_typed_arguments_first(call):
    assert_refused_alike(lambda L, x, y, i: call(L, x))
