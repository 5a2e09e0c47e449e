"""What driving torch 2.13's ModuleInfo database (tools/torch_moduleinfo_trial.py) found, each case in
our own words and compared with torch: values, gradients, buffers and errors."""

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
