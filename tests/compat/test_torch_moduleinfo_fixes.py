"""What driving torch 2.13's ModuleInfo database (tools/torch_moduleinfo_trial.py) found, each case in
our own words and compared with torch: values, gradients, buffers and errors."""

# ruff: noqa: B023  (the lambdas built in loops are called at once, inside their own iteration)

import numpy as np
import pytest
import torch

import chainrule


def _raised(call):
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the exception itself is compared
        return type(error), str(error)
    return None, ""


# ---------------------------------------------------------------- batch norm of an empty batch
@pytest.mark.parametrize("shape", [(0, 5, 9), (0, 5, 2, 2), (0, 3)])
def test_batch_norm_trains_on_an_empty_batch_like_torch(shape):
    rng = np.random.default_rng(0)
    weight, bias = rng.uniform(size=shape[1]), rng.uniform(size=shape[1])
    cls = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d"}[len(shape)]
    results = []
    for lib in (torch, chainrule):
        norm = getattr(lib.nn, cls)(shape[1], dtype=lib.float64)
        with lib.no_grad():
            norm.weight.copy_(lib.tensor(weight))
            norm.bias.copy_(lib.tensor(bias))
            norm.running_mean.fill_(0.25)
        x = lib.zeros(shape, dtype=lib.float64, requires_grad=True)
        out = norm(x)
        out.sum().backward()
        results.append((tuple(out.shape), norm.running_mean.numpy().copy(), int(norm.num_batches_tracked),
                        norm.weight.grad.numpy().copy(), norm.bias.grad.numpy().copy(), tuple(x.grad.shape)))
    (mine, theirs) = results
    assert mine[0] == theirs[0] == shape
    np.testing.assert_array_equal(mine[1], theirs[1])  # the running statistics are left alone
    assert mine[2] == theirs[2] == 1
    np.testing.assert_array_equal(mine[3], theirs[3])  # zeros: the weight stays in the graph
    np.testing.assert_array_equal(mine[4], theirs[4])
    assert mine[5] == theirs[5]


@pytest.mark.parametrize("shape", [(1, 5), (1, 5, 1)])
def test_batch_norm_still_refuses_one_value_per_channel_when_training(shape):
    outcomes = [_raised(lambda lib=lib: lib.nn.BatchNorm1d(5)(lib.zeros(shape))) for lib in (torch, chainrule)]
    assert outcomes[0][0] is outcomes[1][0] is ValueError
    assert "Expected more than 1 value per channel when training" in outcomes[1][1]


# ---------------------------------------------------------------- fractional max pooling's samples
@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_fractional_max_pool_reads_the_leading_samples_it_needs(d, batch):
    """torch accepts more sample rows than the batch has (an unbatched input reads the first row)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(batch + (4,) + (5,) * d)
    samples = rng.uniform(size=(3, 4, d))
    results = []
    for lib in (torch, chainrule):
        input = lib.tensor(x, requires_grad=True)
        pool = getattr(lib.nn, f"FractionalMaxPool{d}d")(2, output_ratio=0.5,
                                                         _random_samples=lib.tensor(samples))
        out = pool(input)
        out.backward(lib.ones_like(out))
        results.append((out.detach().numpy(), input.grad.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=0, atol=0)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=0, atol=0)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("sample_shape", [(1, 4, None), (2, 3, None), (2, 4, 1), (4, None), (1, 1, 4, None)])
def test_fractional_max_pool_checks_its_samples_with_torchs_messages(d, sample_shape):
    x = np.zeros((2, 4) + (5,) * d)
    shape = tuple(d if n is None else n for n in sample_shape)
    outcomes = []
    for lib in (torch, chainrule):
        pool = getattr(lib.nn.functional, f"fractional_max_pool{d}d")
        outcomes.append(_raised(lambda lib=lib, pool=pool: pool(
            lib.tensor(x), 2, output_ratio=(0.5,) * d, _random_samples=lib.rand(shape, dtype=lib.float64))))
    (their_type, their_message), (my_type, my_message) = outcomes
    assert my_type is their_type is RuntimeError
    assert my_message.endswith(their_message)


def test_fractional_max_pool_samples_gradcheck():
    samples = chainrule.tensor([[[0.3, 0.7, 0.1]], [[0.9, 0.2, 0.5]]], dtype=chainrule.float64)
    x = chainrule.tensor(np.random.default_rng(2).permutation(125).reshape(1, 5, 5, 5) / 7.0,
                         requires_grad=True)
    assert chainrule.autograd.gradcheck(
        lambda t: chainrule.nn.functional.fractional_max_pool3d(t, 2, output_ratio=0.5, _random_samples=samples),
        (x,))


# ---------------------------------------------------------------- errors torch's error inputs expect
def _same_error(call):
    """Run ``call(lib)`` on torch and chainrule: both raise the same type, chainrule's message ends with torch's."""
    (their_type, their_message), (my_type, my_message) = [_raised(lambda lib=lib: call(lib))
                                                          for lib in (torch, chainrule)]
    assert their_type is not None, "torch raised nothing"
    assert my_type is their_type, (my_type, my_message, their_type, their_message)
    assert my_message.endswith(their_message), (my_message, their_message)


@pytest.mark.parametrize("name,shape", [
    ("max_pool1d", (1, 2, 3, 4, 5)), ("max_pool2d", (3, 4)), ("max_pool2d", (1, 2, 3, 4, 5)),
    ("max_pool3d", (3, 4)), ("avg_pool3d", (3,)), ("avg_pool1d", (3,)), ("avg_pool2d", (1, 2, 3, 4, 5, 6))])
def test_pooling_names_a_wrong_rank_in_torchs_words(name, shape):
    _same_error(lambda lib: getattr(lib.nn.functional, name)(lib.zeros(shape), 1))


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("rank_offset", [-1, 2])
def test_circular_pad_layers_check_the_input_rank(d, rank_offset):
    shape = (2,) * (d + 1 + rank_offset) if d + 1 + rank_offset > 0 else ()
    _same_error(lambda lib: getattr(lib.nn, f"CircularPad{d}d")(1)(lib.zeros(shape)))


def test_circular_pad_still_pads_unbatched_and_batched_inputs():
    x = np.arange(24.0).reshape(2, 3, 4)
    for shape in ((3, 4), (2, 3, 4)):
        mine = chainrule.nn.CircularPad1d((1, 2))(chainrule.tensor(x.reshape(-1)[:np.prod(shape)].reshape(shape)))
        theirs = torch.nn.CircularPad1d((1, 2))(torch.tensor(x.reshape(-1)[:np.prod(shape)].reshape(shape)))
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


@pytest.mark.parametrize("delta", [1 + 0j, "1.0", None])
def test_huber_loss_refuses_a_delta_that_is_not_a_real_number(delta):
    _same_error(lambda lib: lib.nn.HuberLoss(delta=delta))


def test_huber_loss_takes_an_int_delta():
    a, b = np.linspace(-3, 3, 7), np.zeros(7)
    mine = chainrule.nn.HuberLoss(delta=2)(chainrule.tensor(a), chainrule.tensor(b))
    theirs = torch.nn.HuberLoss(delta=2)(torch.tensor(a), torch.tensor(b))
    assert float(mine) == pytest.approx(float(theirs), rel=1e-12)


@pytest.mark.parametrize("dtype", ["int64", "uint8", "bool", "int32"])
def test_cross_entropy_reads_a_target_of_the_inputs_shape_as_probabilities(dtype):
    """torch takes the shapes alone to decide, then refuses a non-float probability target."""
    for input_shape in ((2, 3), (3,)):
        _same_error(lambda lib, s=input_shape: lib.nn.functional.cross_entropy(
            lib.zeros(s), lib.zeros(s, dtype=getattr(lib, dtype))))


def test_cross_entropy_probabilities_accept_a_negative_ignore_index():
    rng = np.random.default_rng(3)
    logits, probabilities = rng.standard_normal((4, 5)), rng.dirichlet(np.ones(5), size=4)
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(logits, requires_grad=True)
        loss = lib.nn.functional.cross_entropy(x, lib.tensor(probabilities), ignore_index=-5)
        loss.backward()
        results.append((loss.item(), x.grad.numpy()))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12)
    _same_error(lambda lib: lib.nn.functional.cross_entropy(
        lib.tensor(logits), lib.tensor(probabilities), ignore_index=0))


# every input rank against targets of several shapes and dtypes: torch checks the batch size, the
# target's rank, its dtype and the rest of its shape in an order that decides which message you see
_LAYOUT_CASES = [(input_shape, target_shape, dtype)
                 for input_shape in [(3,), (2, 3), (2, 3, 4), (2, 3, 4, 5), (2, 3, 4, 5, 6)]
                 for target_shape in [(), (1,), (2,), (3,), (2, 2), (2, 4), (2, 5), (2, 4, 5), (2, 4, 6),
                                      (2, 4, 5, 6), (2, 3, 4)]
                 for dtype in ["int64", "float32", "int32", "uint8"]]


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_class_index_losses_check_the_target_in_torchs_order(name):
    differing = []
    for input_shape, target_shape, dtype in _LAYOUT_CASES:
        outcomes = [_raised(lambda lib=lib: getattr(lib.nn.functional, name)(
            lib.zeros(input_shape), lib.zeros(target_shape, dtype=getattr(lib, dtype))))
            for lib in (torch, chainrule)]
        if outcomes[0] != outcomes[1]:
            differing.append((input_shape, target_shape, dtype, outcomes))
    assert not differing, differing[:3]


def test_linear_cross_entropy_reports_a_batch_size_mismatch_first():
    _same_error(lambda lib: lib.nn.LinearCrossEntropyLoss(3, 2)(lib.zeros(4, 3), lib.zeros(5, 2)))
    _same_error(lambda lib: lib.nn.LinearCrossEntropyLoss(3, 2)(lib.zeros(4, 3), lib.zeros(4, 2, dtype=lib.int64)))


# ---------------------------------------------------------------- convolution keeps a channels-last layout
@pytest.mark.parametrize("d,dtype", [(2, "float32"), (2, "float64"), (3, "float32"), (3, "float64")])
@pytest.mark.parametrize("layout_on", ["input", "weight", "both", "neither"])
def test_convolution_output_follows_a_channels_last_input_or_weight(d, dtype, layout_on):
    """torch: channels-last out of a channels-last input or weight (3-d float64 runs slow_conv3d: contiguous)."""
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 3) + (5,) * d), rng.standard_normal((4, 3) + (2,) * d), rng.standard_normal(4)
    results = []
    for lib in (torch, chainrule):
        layout = lib.channels_last if d == 2 else lib.channels_last_3d
        input = lib.tensor(x, dtype=getattr(lib, dtype))
        weight = lib.tensor(w, dtype=getattr(lib, dtype))
        if layout_on in ("input", "both"):
            input = input.contiguous(memory_format=layout)
        if layout_on in ("weight", "both"):
            weight = weight.contiguous(memory_format=layout)
        input.requires_grad_(True)
        weight.requires_grad_(True)
        out = getattr(lib.nn.functional, f"conv{d}d")(input, weight, lib.tensor(b, dtype=getattr(lib, dtype)))
        out.backward(lib.ones_like(out))
        results.append((tuple(out.stride()), out.detach().numpy(), input.grad.numpy(), weight.grad.numpy()))
    assert results[1][0] == results[0][0]
    for mine, theirs in zip(results[1][1:], results[0][1:]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5)


@pytest.mark.parametrize("d", [2, 3])
def test_affine_batch_norm_training_keeps_a_channels_last_layout(d):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3) + (4,) * d)
    results = []
    for lib in (torch, chainrule):
        layout = lib.channels_last if d == 2 else lib.channels_last_3d
        input = lib.tensor(x).contiguous(memory_format=layout).requires_grad_(True)
        norm = getattr(lib.nn, f"BatchNorm{d}d")(3, dtype=lib.float64)
        out = norm(input)
        out.backward(lib.tensor(np.cos(x)))
        results.append((tuple(out.stride()), out.detach().numpy(), input.grad.numpy(), norm.weight.grad.numpy(),
                        norm.running_var.numpy()))
    assert results[1][0] == results[0][0]
    for mine, theirs in zip(results[1][1:], results[0][1:]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
