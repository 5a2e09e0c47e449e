"""Errors that torch's OpInfo error inputs expect, raised by chainrule with torch's type and wording.

Found by tools/torch_opinfo_errors_trial.py (op_db's ``error_inputs``). Each test builds its own
small case, runs it on torch 2.13 and on chainrule, and checks that both raise the same exception
type with a message matching the phrase users search for.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _raised(call) -> BaseException:
    with pytest.raises(Exception) as info:
        call()
    return info.value


def assert_raises_like_torch(torch_call, chainrule_call, phrase: str) -> None:
    """Both calls raise; chainrule's exception is torch's type and both messages match ``phrase``."""
    expected, got = _raised(torch_call), _raised(chainrule_call)
    assert isinstance(got, type(expected)), f"torch raised {expected!r}, chainrule raised {got!r}"
    assert re.search(phrase, str(expected)), f"the phrase no longer matches torch's message: {expected}"
    assert re.search(phrase, str(got).replace("chainrule.", "torch.")), f"chainrule's message: {got}"


def both(name: str):
    """The function ``name`` (dotted) in torch and in chainrule."""
    torch_fn, chainrule_fn = torch, chainrule
    for part in name.split("."):
        torch_fn, chainrule_fn = getattr(torch_fn, part), getattr(chainrule_fn, part)
    return torch_fn, chainrule_fn


# ---- a Python number where the signature says Tensor is refused, not broadcast
@pytest.mark.parametrize("name", ["eq", "ne", "lt", "le", "gt", "ge", "fmod", "copysign", "rsub", "clamp_min",
                                  "clamp_max"])
def test_number_as_input_of_tensor_first_op_is_a_type_error(name):
    torch_fn, chainrule_fn = both(name)
    assert_raises_like_torch(lambda: torch_fn(2, torch.arange(3)), lambda: chainrule_fn(2, chainrule.arange(3)),
                             r"\(int, Tensor\)|must be Tensor, not int")


@pytest.mark.parametrize("name", ["fmax", "fmin", "logical_and", "logical_or", "logical_xor", "gcd", "lcm",
                                  "isclose", "maximum", "minimum"])
@pytest.mark.parametrize("number_first", [True, False])
def test_tensor_only_binary_ops_refuse_a_number_on_either_side(name, number_first):
    torch_fn, chainrule_fn = both(name)
    position = "input" if number_first else "other"

    def call(fn, module):
        operands = (5, module.arange(3)) if number_first else (module.arange(3), 5)
        return fn(*operands)

    assert_raises_like_torch(lambda: call(torch_fn, torch), lambda: call(chainrule_fn, chainrule),
                             rf"argument '{position}' \(position \d\) must be Tensor, not int")


def test_numbers_with_tensors_still_compare():
    # the check is on the first operand only: comparisons and fmod with a number other stay allowed
    x = chainrule.tensor([1.0, 2.0, 3.0])
    assert chainrule.eq(x, 2).tolist() == torch.eq(torch.tensor([1.0, 2.0, 3.0]), 2).tolist()
    assert chainrule.fmod(x, 2).tolist() == torch.fmod(torch.tensor([1.0, 2.0, 3.0]), 2).tolist()
    assert (x == 2).tolist() == [False, True, False]


@pytest.mark.parametrize("which", ["rtol", "atol"])
def test_isclose_refuses_negative_tolerance(which):
    def call(module):
        return module.isclose(module.tensor([1.0]), module.tensor([1.0]), **{which: -0.4})

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             rf"{which} must be greater than or equal to zero, but got -0.4")


# ---- out= that aliases itself or an input: the result would depend on the order of writes
_ALIASING_MESSAGE = r"unsupported operation: .* refers? to a single memory location\. Please clone\(\)"


def _index_op_calls(module, out_of):
    """gather / index_select / masked_select / cat / take with ``out`` chosen by ``out_of(source)``."""
    source = module.arange(6.0)
    return {
        "gather": lambda: module.gather(source, 0, module.tensor([2, 1, 0]), out=out_of(source)),
        "index_select": lambda: module.index_select(source, 0, module.tensor([0, 1, 2]), out=out_of(source)),
        "masked_select": lambda: module.masked_select(source, source > 2, out=out_of(source)),
        "cat": lambda: module.cat([source[:1], source[4:]], out=out_of(source)),
        "take": lambda: module.take(source, module.tensor([0, 1, 2]), out=out_of(source)),
    }


@pytest.mark.parametrize("name", ["gather", "index_select", "masked_select", "cat"])
def test_out_expanded_from_one_element_is_refused(name):
    def expanded(module):
        return lambda source: module.zeros(1).expand(3)

    assert_raises_like_torch(_index_op_calls(torch, expanded(torch))[name],
                             _index_op_calls(chainrule, expanded(chainrule))[name], _ALIASING_MESSAGE)


@pytest.mark.parametrize("name", ["gather", "index_select", "masked_select", "cat"])
def test_out_sharing_memory_with_the_input_is_refused(name):
    def input_itself(source):
        return source[:3]

    assert_raises_like_torch(_index_op_calls(torch, input_itself)[name],
                             _index_op_calls(chainrule, input_itself)[name], _ALIASING_MESSAGE)


def test_refused_out_is_left_unchanged_and_a_separate_out_still_works():
    source = chainrule.arange(6.0)
    with pytest.raises(RuntimeError):
        chainrule.index_select(source, 0, chainrule.tensor([5, 4, 3]), out=source[:3])
    assert source.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    out = chainrule.empty(3)
    chainrule.index_select(source, 0, chainrule.tensor([5, 4, 3]), out=out)
    assert out.tolist() == torch.index_select(torch.arange(6.0), 0, torch.tensor([5, 4, 3])).tolist()


# ---- pooling: torch's checks, in torch's order, with each kernel's own wording
def _pool(name):
    return getattr(torch.nn.functional, name), getattr(chainrule.nn.functional, name)


_POOL_CASES = [
    # (function, input shape, keyword arguments, the phrase torch's message has)
    ("max_pool1d", (2, 3, 8), dict(kernel_size=2, stride=0), r"max_pool1d\(\) stride must be greater than zero, but got 0"),
    ("max_pool1d", (2, 3, 8), dict(kernel_size=2, dilation=0), r"dilation must be greater than zero, but got 0"),
    ("max_pool1d", (1, 2, 2), dict(kernel_size=3, stride=1, dilation=2), r"Invalid computed output size: -2"),
    ("max_pool1d", (0, 10), dict(kernel_size=1), r"max_pool1d: Expected 2D or 3D \(batch mode\) tensor with optional 0"),
    ("max_pool1d", (1, 10, 0), dict(kernel_size=1), r"Expected 2D or 3D \(batch mode\) tensor with optional 0 dim"),
    ("max_pool2d", (1, 0, 10), dict(kernel_size=1), r"Expected 3D or 4D \(batch mode\) tensor with optional 0 dim"),
    ("max_pool2d", (2, 1, 10, 0), dict(kernel_size=1), r"Expected 3D or 4D \(batch mode\) tensor with optional 0 dim"),
    ("max_pool3d", (0, 1, 2, 10), dict(kernel_size=1), r"Expected input's non-batch dimensions to have positive length"),
    ("avg_pool3d", (0, 1, 49), dict(kernel_size=1), r"non-empty 4D or 5D \(batch mode\) tensor expected for input"),
    ("max_pool2d", (0, 1, 49), dict(kernel_size=2, padding=-1), r"pad must be non-negative, but got pad: -1"),
    ("avg_pool2d", (0, 1, 49), dict(kernel_size=2, padding=4), r"pad should be at most half of effective kernel size"),
    ("max_pool3d", (0, 1, 49, 2), dict(kernel_size=2, padding=-1), r"pad must be non-negative, but got pad: -1"),
    ("adaptive_avg_pool1d", (1, 2, 4), dict(output_size=()), r"'output_size' should contain one int \(got 0\)"),
    ("adaptive_avg_pool2d", (1, 2, 4, 4), dict(output_size=()), r"output_size must be 2"),
    ("adaptive_max_pool3d", (1, 2, 4, 4, 4), dict(output_size=()), r"internal error: output_size.size\(\) must be 3"),
    ("adaptive_max_pool2d", (1, 1, 4, 4), dict(output_size=(-1, 0)), r"Trying to create tensor with negative dimension -1"),
    ("adaptive_avg_pool2d", (2, 2), dict(output_size=(1, 1)), r"Input dimension should be at least 3"),
    ("adaptive_max_pool3d", (2, 2, 2), dict(output_size=(1, 1, 1)), r"Input dimension should be at least 4"),
]


@pytest.mark.parametrize("name, shape, kwargs, phrase", _POOL_CASES, ids=[f"{c[0]}-{c[3][:24]}" for c in _POOL_CASES])
def test_pool_argument_and_shape_errors_match_torch(name, shape, kwargs, phrase):
    torch_fn, chainrule_fn = _pool(name)
    assert_raises_like_torch(lambda: torch_fn(torch.zeros(shape), **kwargs),
                             lambda: chainrule_fn(chainrule.zeros(shape), **kwargs), phrase)


# ---- checks that were missing: chainrule computed something torch refuses
def test_gradient_refuses_a_repeated_dim():
    assert_raises_like_torch(lambda: torch.gradient(torch.ones(3, 3), dim=(1, 1)),
                             lambda: chainrule.gradient(chainrule.ones(3, 3), dim=(1, 1)),
                             r"dim 1 appears multiple times in the list of dims")


@pytest.mark.parametrize("name", ["triplet_margin_loss", "triplet_margin_with_distance_loss"])
def test_triplet_losses_refuse_a_margin_that_is_not_positive(name):
    def call(module):
        a, p, n = (module.ones(2, 3) for _ in range(3))
        return getattr(module.nn.functional, name)(a, p, n, margin=-1.0)

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule), r"margin must be greater than 0, got -1.0")


@pytest.mark.parametrize("weight_shape", [(), (1, 1, 1)])
def test_embedding_weight_must_be_a_matrix(weight_shape):
    def call(module):
        return module.nn.functional.embedding(module.zeros(2, 2, dtype=module.long), module.ones(weight_shape))

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule), r"'weight' must be 2-D")


@pytest.mark.parametrize("dtype_name, value_is_tensor", [("float32", False), ("int64", True), ("float64", True),
                                                         ("float16", False)])
def test_masked_fill_refuses_a_complex_value_for_a_real_tensor(dtype_name, value_is_tensor):
    def call(module):
        value = module.tensor(1j) if value_is_tensor else 1j
        return module.ones(2, dtype=getattr(module, dtype_name)).masked_fill(module.tensor(True), value)

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule), r"value cannot be converted to type .* without overflow")


@pytest.mark.parametrize("start", [1.0, [1, 2], [1]])
def test_narrow_start_tensor_must_be_0d_integral(start):
    assert_raises_like_torch(lambda: torch.narrow(torch.ones(3, 10, 5), 1, torch.tensor(start), 2),
                             lambda: chainrule.narrow(chainrule.ones(3, 10, 5), 1, chainrule.tensor(start), 2),
                             r"start must be an 0-dim integral Tensor\.")


@pytest.mark.parametrize("name", ["linspace", "logspace"])
def test_space_functions_check_steps_and_the_rank_of_start_and_end(name):
    torch_fn, chainrule_fn = both(name)
    assert_raises_like_torch(lambda: torch_fn(0, 3, 1.0), lambda: chainrule_fn(0, 3, 1.0),
                             r"received an invalid combination of arguments - got \(int, int, float")
    assert_raises_like_torch(lambda: torch_fn(0, 3, -1), lambda: chainrule_fn(0, 3, -1),
                             r"number of steps must be non-negative")
    assert_raises_like_torch(lambda: torch_fn(torch.tensor([1, 1]), torch.tensor([3, 3]), 1),
                             lambda: chainrule_fn(chainrule.tensor([1, 1]), chainrule.tensor([3, 3]), 1),
                             r"only supports 0-dimensional start and end tensors, but got start with 1 dimension")
    same = chainrule_fn(chainrule.tensor(0.0), 1, 5)
    assert same.tolist() == pytest.approx(torch_fn(torch.tensor(0.0), 1, 5).tolist())


# ---- the exception type torch raises, where chainrule raised another
@pytest.mark.parametrize("name", ["hsplit", "vsplit", "dsplit"])
def test_even_splits_refuse_zero_sections_and_a_string(name):
    torch_fn, chainrule_fn = both(name)
    assert_raises_like_torch(lambda: torch_fn(torch.ones(5, 5, 5), 0), lambda: chainrule_fn(chainrule.ones(5, 5, 5), 0),
                             rf"torch.{name} attempted to split along dimension \d, but the size of the dimension 5 is "
                             r"not divisible by the split_size 0!")
    assert_raises_like_torch(lambda: torch_fn(torch.ones(5, 5, 5), "abc"),
                             lambda: chainrule_fn(chainrule.ones(5, 5, 5), "abc"),
                             r"received an invalid combination of arguments - got \(Tensor, str\)")


@pytest.mark.parametrize("name", ["cat", "stack"])
@pytest.mark.parametrize("bad", [None, 3])
def test_joining_a_list_with_a_non_tensor_names_its_position(name, bad):
    torch_fn, chainrule_fn = both(name)
    assert_raises_like_torch(lambda: torch_fn([torch.ones(2), bad]), lambda: chainrule_fn([chainrule.ones(2), bad]),
                             rf"expected Tensor as element 1 in argument 0, but got {type(bad).__name__}")


@pytest.mark.parametrize("bounds", [(0, float("inf")), (float("-inf"), 1), (0, float("nan"))])
def test_arange_refuses_an_infinite_or_nan_bound(bounds):
    assert_raises_like_torch(lambda: torch.arange(*bounds), lambda: chainrule.arange(*bounds), r"unsupported range: ")


def test_take_and_bernoulli_take_out_with_torch_checks():
    assert_raises_like_torch(lambda: torch.take(torch.rand(4), torch.tensor([0, 1]), out=torch.empty(2, dtype=torch.float64)),
                             lambda: chainrule.take(chainrule.rand(4), chainrule.tensor([0, 1]),
                                                    out=chainrule.empty(2, dtype=chainrule.float64)),
                             r"take\(\): self and out expected to have the same dtype, but got self.dtype = Float and "
                             r"out.dtype = Double")
    assert_raises_like_torch(lambda: torch.bernoulli(torch.rand(4), out=torch.empty(1).expand(4)),
                             lambda: chainrule.bernoulli(chainrule.rand(4), out=chainrule.empty(1).expand(4)),
                             _ALIASING_MESSAGE)
    chainrule.manual_seed(0)
    torch.manual_seed(0)
    out, torch_out = chainrule.empty(4), torch.empty(4)
    chainrule.bernoulli(chainrule.full((4,), 0.5), out=out)
    torch.bernoulli(torch.full((4,), 0.5), out=torch_out)
    assert out.tolist() == torch_out.tolist()
    taken = chainrule.empty(2)
    chainrule.take(chainrule.arange(4.0), chainrule.tensor([3, 1]), out=taken)
    assert taken.tolist() == [3.0, 1.0]


def test_elementwise_out_expanded_from_one_element_is_refused():
    assert_raises_like_torch(lambda: torch.maximum(torch.ones(3), torch.zeros(3), out=torch.empty(1).expand(3)),
                             lambda: chainrule.maximum(chainrule.ones(3), chainrule.zeros(3),
                                                       out=chainrule.empty(1).expand(3)), _ALIASING_MESSAGE)


# ---- torch's wording, where chainrule raised the right type with other words
@pytest.mark.parametrize("name", ["fft.fft", "fft.rfft", "fft.ihfft", "fft.fft2", "fft.hfft2", "unbind"])
def test_a_0d_tensor_has_no_dim_to_transform_or_unbind(name):
    torch_fn, chainrule_fn = both(name)
    assert_raises_like_torch(lambda: torch_fn(torch.tensor(1.0)), lambda: chainrule_fn(chainrule.tensor(1.0)),
                             r"Dimension specified as -?\d but tensor has no dimensions")
    expected, got = _raised(lambda: torch_fn(torch.tensor(1.0))), _raised(lambda: chainrule_fn(chainrule.tensor(1.0)))
    assert str(got) == str(expected)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_weight_with_fewer_filters_than_groups(d):
    def call(module):
        return getattr(module.nn.functional, f"conv{d}d")(module.ones(1, 6, *[4] * d), module.ones(2, 2, *[1] * d),
                                                          groups=3)

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             r"Given groups=3, expected weight to be at least 3 at dimension 0")


def test_conv_checks_the_bias_dtype_before_the_input_dtype():
    def call(module):
        return module.nn.functional.conv2d(module.ones(1, 1, 4, 3, dtype=module.long),
                                           module.ones(1, 1, 2, 2, dtype=module.long), module.ones(1, dtype=module.double))

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             r"Input type \(long int\) and bias type \(double\) should be the same")


def test_conv_weight_of_another_rank_names_the_input_rank_it_wants():
    def call(module):
        return module.nn.functional.conv3d(module.ones(1, 1, 4, 3, 2), module.ones(1, 2, 2, 2), padding="same")

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             r"Expected 4-dimensional input for 4-dimensional weight\[1, 2, 2, 2\], but got "
                             r"5-dimensional input of size \[1, 1, 4, 3, 2\] instead")


@pytest.mark.parametrize("name", ["reshape", "view"])
def test_inferring_a_dim_of_an_empty_tensor_is_ambiguous(name):
    assert_raises_like_torch(lambda: getattr(torch.zeros(0, 3), name)(0, -1),
                             lambda: getattr(chainrule.zeros(0, 3), name)(0, -1),
                             r"cannot reshape tensor of 0 elements into shape \[0, -1\] because the unspecified "
                             r"dimension size -1 can be any value and is ambiguous")
    assert chainrule.zeros(0, 3).reshape(-1, 3).shape == torch.zeros(0, 3).reshape(-1, 3).shape


@pytest.mark.parametrize("name", ["scatter", "scatter_add"])
def test_scatter_index_rank_message_names_self(name):
    torch_fn, chainrule_fn = both(name)
    assert_raises_like_torch(lambda: torch_fn(torch.ones(2, 2), 0, torch.tensor([0]), torch.ones(1, 1)),
                             lambda: chainrule_fn(chainrule.ones(2, 2), 0, chainrule.tensor([0]), chainrule.ones(1, 1)),
                             r"Index tensor must have the same number of dimensions as self tensor")


def test_roll_without_shifts_and_masked_scatter_with_a_float_mask():
    assert_raises_like_torch(lambda: torch.roll(torch.ones(3), ()), lambda: chainrule.roll(chainrule.ones(3), ()),
                             r"`shifts` required")
    assert_raises_like_torch(lambda: torch.ones(3).masked_scatter(torch.ones(3), torch.ones(3)),
                             lambda: chainrule.ones(3).masked_scatter(chainrule.ones(3), chainrule.ones(3)),
                             r"masked_scatter_ only supports boolean masks, but got mask with dtype Float")


@pytest.mark.parametrize("normalized_shape, weight_shape, bias_shape, phrase", [
    ([], None, None, r"Expected normalized_shape to be at least 1-dimensional"),
    ([1, 2, 3], (1, 2), None, r"Expected weight to be of same shape as normalized_shape, but got weight of shape \[1, 2\]"),
    ([1, 2, 3], None, (1, 2), r"Expected bias to be of same shape as normalized_shape, but got bias of shape \[1, 2\]"),
])
def test_layer_norm_checks_normalized_shape_weight_and_bias(normalized_shape, weight_shape, bias_shape, phrase):
    def call(module):
        weight = None if weight_shape is None else module.ones(weight_shape)
        bias = None if bias_shape is None else module.ones(bias_shape)
        return module.nn.functional.layer_norm(module.ones(1, 2, 3), normalized_shape, weight, bias)

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule), phrase)


@pytest.mark.parametrize("name, shape", [("multi_margin_loss", (5, 0)), ("multi_margin_loss", (0,)),
                                         ("multilabel_margin_loss", (5, 0)), ("multilabel_margin_loss", (0,))])
def test_margin_losses_refuse_empty_rows(name, shape):
    def call(module):
        return getattr(module.nn.functional, name)(module.ones(shape), module.zeros(5, 4, dtype=module.long))

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             r"Expected non-empty vector or matrix with optional 0-dim batch size, but got: ")


def test_margin_ranking_loss_wants_inputs_of_one_rank_and_prelu_a_dim():
    assert_raises_like_torch(lambda: torch.nn.functional.margin_ranking_loss(torch.ones(5, 4), torch.ones(5, 4), torch.ones(5)),
                             lambda: chainrule.nn.functional.margin_ranking_loss(chainrule.ones(5, 4), chainrule.ones(5, 4),
                                                                                 chainrule.ones(5)),
                             r"margin_ranking_loss : All input tensors should have same dimension but got sizes: ")
    assert_raises_like_torch(lambda: torch.nn.functional.prelu(torch.tensor(1.0), torch.ones(2)),
                             lambda: chainrule.nn.functional.prelu(chainrule.tensor(1.0), chainrule.ones(2)),
                             r"Not allow zero-dim input tensor\.")


@pytest.mark.parametrize("given_dtype", [False, True])
def test_mean_of_integers_names_which_dtype_could_not_be_used(given_dtype):
    def call(module):
        return module.mean(module.ones(3, dtype=module.int64), **({"dtype": module.int64} if given_dtype else {}))

    word = "Optional" if given_dtype else "Input"
    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             rf"mean\(\): could not infer output dtype\. {word} dtype must be either a floating point")


def test_soft_margin_loss_shape_error_names_the_input_as_tensor_a():
    assert_raises_like_torch(lambda: torch.nn.functional.soft_margin_loss(torch.ones(5, 4), torch.ones(5, 5)),
                             lambda: chainrule.nn.functional.soft_margin_loss(chainrule.ones(5, 4), chainrule.ones(5, 5)),
                             r"The size of tensor a \(4\) must match the size of tensor b \(5\) at non-singleton dimension 1")


def test_ormqr_names_the_argument_and_bound_it_checks():
    zero_d = (torch.tensor(1.0), chainrule.tensor(1.0))
    assert_raises_like_torch(lambda: torch.ormqr(zero_d[0], zero_d[0], zero_d[0]),
                             lambda: chainrule.ormqr(zero_d[1], zero_d[1], zero_d[1]),
                             r"torch.ormqr: input must have at least 2 dimensions\.")

    def call(module):
        return module.ormqr(module.ones(5, 0), module.ones(5), module.ones(5, 5), True, True)

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             r"tau.shape\[-1\] must be equal to min\(other.shape\[-2\], input.shape\[-1\]\)")


def test_prelu_of_a_0d_input_runs_with_one_shared_weight_and_refuses_per_channel_weights():
    # torch refuses a 0-d input only when the weight has several channels (module_db's PReLU runs a 0-d one)
    for weight in ([0.25], 0.25):
        ours = chainrule.nn.functional.prelu(chainrule.tensor(-2.0), chainrule.tensor(weight))
        theirs = torch.nn.functional.prelu(torch.tensor(-2.0), torch.tensor(weight))
        assert ours.item() == theirs.item() == -0.5
    with pytest.raises(RuntimeError, match="Not allow zero-dim input tensor"):
        chainrule.nn.functional.prelu(chainrule.tensor(-2.0), chainrule.tensor([0.25, 0.5]))


@pytest.mark.parametrize("weights", [[[-1.0, 0.5]], [[float("nan"), 0.5]], [[0.0, 0.0]]], ids=["negative", "nan", "zero"])
def test_multinomial_refuses_a_non_long_out_before_it_reads_the_weights(weights):
    # op_db's error input passes torch.empty weights (whatever memory holds): the out's dtype must
    # be what is refused, whatever the weights are (a flaky CI failure otherwise)
    assert_raises_like_torch(
        lambda: torch.multinomial(torch.tensor(weights, dtype=torch.float64), 2, out=torch.empty(1, 2, dtype=torch.float64)),
        lambda: chainrule.multinomial(chainrule.tensor(weights, dtype=chainrule.float64), 2,
                                      out=chainrule.empty(1, 2, dtype=chainrule.float64)),
        "multinomial expects Long tensor out, got: Double")


def test_multinomial_checks_the_weights_rank_before_their_dtype():
    assert_raises_like_torch(lambda: torch.multinomial(torch.zeros(1, 2, 3, dtype=torch.long), 2),
                             lambda: chainrule.multinomial(chainrule.zeros(1, 2, 3, dtype=chainrule.long), 2),
                             "prob_dist must be 1 or 2 dim")


def test_nonzero_refuses_a_non_long_out():
    assert_raises_like_torch(lambda: torch.nonzero(torch.tensor([1, 0, 2]), out=torch.empty(0)),
                             lambda: chainrule.nonzero(chainrule.tensor([1, 0, 2]), out=chainrule.empty(0)),
                             "nonzero: Expected out tensor to have scalar type Long but got scalar typeFloat")


def test_multinomial_refuses_more_than_two_to_the_24_categories_before_reading_them():
    # torch.empty-like weights, as op_db's error input: the size is refused, not the values
    categories = 2 ** 24 + 1
    assert_raises_like_torch(lambda: torch.multinomial(torch.zeros(categories), 3),
                             lambda: chainrule.multinomial(chainrule.zeros(categories), 3),
                             r"number of categories cannot exceed 2\^24")


@pytest.mark.parametrize("bins, phrase", [
    (lambda module: [3] * 5, "histogramdd: The size of bins must be equal to the innermost dimension of the input"),
    (lambda module: [module.tensor([0.0, 1.0])] * 5,
     "expected 6 sequences of bin edges for a 6-dimensional histogram but got 5")], ids=["bin-counts", "edge-tensors"])
def test_histogramdd_names_a_wrong_count_of_bins(bins, phrase):
    points = np.random.default_rng(0).random((5, 6), dtype=np.float32)
    assert_raises_like_torch(lambda: torch.histogramdd(torch.tensor(points), bins(torch)),
                             lambda: chainrule.histogramdd(chainrule.tensor(points), bins(chainrule)), phrase)


@pytest.mark.parametrize("op", ["gather", "scatter_add"])
def test_gather_and_scatter_refuse_a_nonempty_byte_index_in_torch_words(op):
    def call(module):
        x = module.ones(2, 3)
        index = module.zeros(1, 3, dtype=module.uint8)
        return x.gather(0, index) if op == "gather" else x.scatter_add(0, index, x)
    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule), r"^(gather|scatter)\(\): Expected dtype int32/int64 for index$")


@pytest.mark.parametrize("name", ["__rand__", "__ror__", "__rxor__", "__and__", "__iand__", "__add__", "__rmul__",
                                  "__truediv__"])
@pytest.mark.parametrize("other", ["tensor", "number"])
def test_operators_called_unbound_on_a_number_refuse_it(name, other):
    # torch defines these on its C TensorBase: a non-tensor receiver is a TypeError, not a result
    def call(module):
        operand = module.arange(3) if other == "tensor" else 3
        return getattr(module.Tensor, name)(2, operand)
    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             r"^descriptor '__\w+__' for '[\w.]+' objects doesn't apply to a 'int' object$")


def _tuple_out(module, values_dtype, indices_dtype):
    return module.empty(0, dtype=getattr(module, values_dtype)), module.empty(0, dtype=getattr(module, indices_dtype))


@pytest.mark.parametrize("values_dtype, indices_dtype, phrase", [
    ("float64", "int64", "output values must be of same type as input"),
    ("float32", "int32", "output indices must be of scalar type Long"),
    ("float32", "float32", "output indices must be of scalar type Long")])
def test_kthvalue_out_dtypes(values_dtype, indices_dtype, phrase):
    data = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    assert_raises_like_torch(
        lambda: torch.kthvalue(torch.tensor(data), 2, out=_tuple_out(torch, values_dtype, indices_dtype)),
        lambda: chainrule.kthvalue(chainrule.tensor(data), 2, out=_tuple_out(chainrule, values_dtype, indices_dtype)),
        phrase)


@pytest.mark.parametrize("op", ["kthvalue", "aminmax"])
def test_tuple_out_overlapping_the_input_is_refused(op):
    def call(module):
        x = module.tensor(np.arange(12.0, dtype=np.float32).reshape(3, 4))
        indices = module.empty(0, dtype=module.int64 if op == "kthvalue" else module.float32)
        if op == "kthvalue":
            return module.kthvalue(x, 2, 0, out=(x[0], indices))
        return module.aminmax(x, dim=0, out=(x[0], indices))
    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             "unsupported operation: some elements of the input tensor and the written-to tensor")


def test_tuple_out_results_land_in_the_given_tensors():
    data = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    outs = _tuple_out(chainrule, "float32", "int64")
    result = chainrule.kthvalue(chainrule.tensor(data), 2, out=outs)
    expected = torch.kthvalue(torch.tensor(data), 2)
    assert result.values is outs[0] and result.indices is outs[1]
    np.testing.assert_array_equal(outs[0].numpy(), expected.values.numpy())
    np.testing.assert_array_equal(outs[1].numpy(), expected.indices.numpy())
    minmax = _tuple_out(chainrule, "float32", "float32")
    chainrule.aminmax(chainrule.tensor(data), dim=1, out=minmax)
    np.testing.assert_array_equal(minmax[0].numpy(), data.min(1))
    np.testing.assert_array_equal(minmax[1].numpy(), data.max(1))


@pytest.mark.parametrize("kwargs, phrase", [
    ({"dim": 0, "out_dtypes": ("float32", "float64")}, "Expected out tensor to have dtype float, but got double instead"),
    ({}, "aminmax\\(\\): cannot compute aminmax over an empty dimension as the operation has no identity"),
    ({"dim": 1}, "aminmax: Expected reduction dim 1 to have non-zero size")], ids=["out-dtype", "empty-all", "empty-dim"])
def test_aminmax_refusals(kwargs, phrase):
    kwargs = dict(kwargs)
    out_dtypes = kwargs.pop("out_dtypes", None)
    shape = (4, 3) if out_dtypes else (5, 0, 5)

    def call(module):
        extra = {"out": _tuple_out(module, *out_dtypes)} if out_dtypes else {}
        return module.aminmax(module.ones(shape), **kwargs, **extra)
    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule), phrase)


@pytest.mark.parametrize("out_dtype, phrase", [
    ("complex64", "Expected object of scalar type ComplexDouble but got scalar type ComplexFloat for argument 'out'"),
    ("float64", "Expected object of scalar type ComplexDouble but got scalar type Double for argument 'out'")])
def test_complex_out_must_have_the_complex_dtype(out_dtype, phrase):
    def call(module):
        part = module.ones(2, 3, dtype=module.float64)
        return module.complex(part, part, out=module.empty(2, 3, dtype=getattr(module, out_dtype)))
    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule), phrase)


def test_arange_takes_out_and_computes_in_its_dtype():
    # an int64 out makes the fractional step truncate to zero: torch's ValueError
    assert_raises_like_torch(lambda: torch.arange(0, 64, 0.5, out=torch.empty(0, dtype=torch.int64)),
                             lambda: chainrule.arange(0, 64, 0.5, out=chainrule.empty(0, dtype=chainrule.int64)),
                             "step must be nonzero")
    assert_raises_like_torch(lambda: torch.arange(3, dtype=torch.float64, out=torch.empty(3)),
                             lambda: chainrule.arange(3, dtype=chainrule.float64, out=chainrule.empty(3)),
                             r"dtype Double does not match dtype of out parameter \(Float\)")
    for shape in [(0,), (3, 1)]:
        expected, actual = torch.empty(shape, dtype=torch.int64), chainrule.empty(shape, dtype=chainrule.int64)
        assert chainrule.arange(0, 6, 2, out=actual) is actual
        torch.arange(0, 6, 2, out=expected)
        assert tuple(actual.shape) == tuple(expected.shape)
        np.testing.assert_array_equal(actual.numpy(), expected.numpy())
    with pytest.warns(UserWarning, match="The number of elements in the out tensor of shape \\[7\\] is 7"):
        chainrule.arange(0.5, 3, out=chainrule.empty(7))


@pytest.mark.parametrize("size, physical_layout, phrase", [
    ((2,), (3,), r"Dimension out of range \(expected to be between 0 and 0, but got 3 at index 0\)"),
    ((2, 3), (0, -1), r"Dimension out of range \(expected to be between 0 and 1, but got -1 at index 1\)"),
    ((2, 3, 4), (1, 1, 7), "Duplicate dim not allowed")])
def test_empty_permuted_checks_each_layout_entry_in_order(size, physical_layout, phrase):
    assert_raises_like_torch(lambda: torch.empty_permuted(size, physical_layout),
                             lambda: chainrule.empty_permuted(size, physical_layout), phrase)


@pytest.mark.parametrize("arguments, phrase", [
    ((3, 0, 1), r"Expected dim < static_cast<int64_t>\(self_sizes.size\(\)\) to be true"),
    ((-4, 0, 1), r"Dimension out of range \(expected to be in range of \[-3, 2\], but got -4\)"),
    ((0, 0, -1), r"start \(0\) \+ length \(-1\) exceeds dimension size \(10\)"),
    ((1, -2, -3), r"start \(8\) \+ length \(-3\) exceeds dimension size \(10\)")])
def test_narrow_copy_refusals_in_its_own_words(arguments, phrase):
    assert_raises_like_torch(lambda: torch.narrow_copy(torch.ones(10, 10, 10), *arguments),
                             lambda: chainrule.narrow_copy(chainrule.ones(10, 10, 10), *arguments), phrase)


def test_gradient_refuses_coordinates_on_another_device():
    def call(module):
        values = module.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
        coordinates = [module.tensor([1.0, 2.0, 4.0]), module.tensor([1.0, 2.0, 4.0], device="meta")]
        return module.gradient(values, spacing=coordinates, dim=(0, 1))
    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             "torch.gradient expected each tensor to be on the same device, but got devices cpu and meta!")


@pytest.mark.parametrize("name", ["nonzero", "argmax", "multinomial"])
def test_a_non_tensor_out_is_torchs_type_error(name):
    def call(lib):
        data = lib.tensor([1.0, 0.0])
        return getattr(lib, name)(data, *((1,) if name == "multinomial" else ()), out=5)

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             rf"{name}\(\): argument 'out' must be Tensor, not int")
