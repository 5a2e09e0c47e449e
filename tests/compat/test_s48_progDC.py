"""Found by probing around the ops of the corpus programs carlini_wagner_attack,
lottery_ticket_rewind and matching_networks_fce, each case checked against torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, fn):
    try:
        return "ok", fn(lib)
    except Exception as error:  # noqa: BLE001  (the type and text are what is compared)
        return type(error).__name__, str(error)


def _assert_same_refusal(fn):
    want, got = _outcome(torch, fn), _outcome(chainrule, fn)
    assert want[0] != "ok", "torch accepts this: the case is not a refusal"
    assert got == want


@pytest.mark.parametrize("op", ["quantile", "nanquantile"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int64", "complex64"])
def test_quantile_refuses_what_torch_refuses(op, dtype):
    # torch's kernel takes float32 and float64 alone; chainrule computed float16/bfloat16 quantiles
    _assert_same_refusal(lambda lib: getattr(lib, op)(lib.tensor([1.0, 2.0, 4.0]).to(getattr(lib, dtype)), 0.5))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_quantile_method_and_tensor_q_refuse_half_inputs(dtype):
    _assert_same_refusal(lambda lib: lib.tensor([1.0, 2.0], dtype=getattr(lib, dtype)).quantile(
        lib.tensor([0.5], dtype=getattr(lib, dtype)), dim=0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile_still_matches_torch_for_float_inputs(dtype, interpolation):
    x = np.random.default_rng(0).standard_normal((4, 7)).astype(dtype)
    q = np.array([0.1, 0.37, 0.5, 0.9], dtype=dtype)
    want = torch.quantile(torch.from_numpy(x), torch.from_numpy(q), dim=1, interpolation=interpolation)
    got = chainrule.quantile(chainrule.from_numpy(x), chainrule.from_numpy(q), dim=1, interpolation=interpolation)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    assert str(got.dtype) == str(want.dtype).replace("torch", "chainrule")


def test_quantile_of_bfloat16_under_cpu_autocast_runs_in_float32_like_torch():
    x = [1.0, 2.0, 4.0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = torch.quantile(torch.tensor(x, dtype=torch.bfloat16), 0.5)
    with chainrule.autocast("cpu", dtype=chainrule.bfloat16):
        got = chainrule.quantile(chainrule.tensor(x, dtype=chainrule.bfloat16), 0.5)
    assert got.item() == want.item() and str(got.dtype) == str(want.dtype).replace("torch", "chainrule")


def test_one_hot_takes_input_by_keyword_as_torch_and_not_tensor():
    want = torch.nn.functional.one_hot(input=torch.tensor([1, 0]), num_classes=3)
    got = chainrule.nn.functional.one_hot(input=chainrule.tensor([1, 0]), num_classes=3)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert _outcome(chainrule, lambda lib: lib.nn.functional.one_hot(tensor=lib.tensor([1])))[0] == "TypeError"
    assert _outcome(torch, lambda lib: lib.nn.functional.one_hot(tensor=lib.tensor([1])))[0] == "TypeError"


@pytest.mark.parametrize("case", [
    lambda lib: lib.nn.functional.one_hot([1, 0], 3),
    lambda lib: lib.nn.functional.one_hot(None, 3),
    lambda lib: lib.nn.functional.one_hot(2, 3),
    lambda lib: lib.nn.functional.one_hot(lib.tensor([1]), 3.0),
    lambda lib: lib.nn.functional.one_hot(lib.tensor([1]), True),
    lambda lib: lib.nn.functional.one_hot(lib.tensor([1]), "3"),
    lambda lib: lib.nn.functional.one_hot(lib.tensor([1.0]), 3),
    lambda lib: lib.nn.functional.one_hot(lib.tensor([-1]), 3),
    lambda lib: lib.nn.functional.one_hot(lib.tensor([3]), 3),
], ids=["list", "none", "int", "float_classes", "bool_classes", "str_classes", "float_input", "negative", "too_big"])
def test_one_hot_refusals_match_torch(case):
    _assert_same_refusal(case)


def test_one_hot_with_numpy_integer_classes_matches_torch():
    want = torch.nn.functional.one_hot(torch.tensor([[0, 2], [1, 1]]), np.int64(4))
    got = chainrule.nn.functional.one_hot(chainrule.tensor([[0, 2], [1, 1]]), np.int64(4))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert got.dtype == chainrule.int64
