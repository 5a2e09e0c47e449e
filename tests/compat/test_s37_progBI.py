"""What the session-37 programs adaptive_softmax_lm, tree_lstm_sentiment and multilabel_asymmetric_loss
found chainrule doing differently from torch 2.13, each case run on both libraries and compared."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.ops.cpu_features import AVX512_CORE

torch = pytest.importorskip("torch")


def seeded(shape, seed, scale=1.0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def raised(call):
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the class and words are what is compared
        return type(error).__name__, str(error).replace("torch.", "chainrule.")
    return None


# --- 1. AdaptiveLogSoftmaxWithLoss: log_prob's node, predict's and log_prob's unbatched errors ---

def adaptive(lib, head_bias=False, bias_shift=0.0):
    module = lib.nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 10], div_value=2.0, head_bias=head_bias)
    state = {name: lib.tensor(seeded(tuple(value.shape), seed=i)) for i, (name, value)
             in enumerate(module.state_dict().items())}
    if head_bias:
        # lift the cluster entries so some rows' head argmax is a cluster and some a shortlist word
        state["head.bias"][4:] += bias_shift
    module.load_state_dict(state)
    return module


def test_adaptive_log_prob_is_written_slice_by_slice_as_torchs_copy_slices():
    x = seeded((5, 8), seed=10)
    results = []
    for lib in (torch, chainrule):
        inputs = lib.tensor(x, requires_grad=True)
        module = adaptive(lib)
        log_prob = module.log_prob(inputs)
        (log_prob * lib.tensor(seeded((5, 20), seed=11))).sum().backward()
        results.append((log_prob.grad_fn.name(), log_prob.detach().numpy(), inputs.grad.numpy(),
                        module.tail[1][0].weight.grad.numpy()))
    (name_t, lp_t, gx_t, gw_t), (name_c, lp_c, gx_c, gw_c) = results
    assert name_c == name_t == "torch::autograd::CopySlices"
    np.testing.assert_allclose(lp_c, lp_t, rtol=1e-6, atol=1e-6)
    # the input's gradient adds three matmuls (head, both tails' projections): torch's are MKL's
    # sgemm, whose blocking depends on the CPU, chainrule's NumPy's; neither side is replayed. On the
    # AVX-512 CPUs this ran on before session 53 it held to atol 1e-6. On an AMD EPYC without
    # AVX-512 (AVX2), measured: 33 of 40 elements differ, by at most 1.0e-5 (2.5 float32 eps of the
    # sum of the terms' magnitudes |g| @ |W|, 1.97e-7 of the largest |gx|, 50.7); one, [2, 1], is
    # -0.1385 cancelled out of terms adding to 36.3 in magnitude, and so 1.9e-5 off in relative
    # terms (2.6e-6 absolute). There the absolute tolerance follows the size of the terms: 4 float32
    # eps of the largest element.
    atol = 1e-6 if AVX512_CORE else 4 * float(np.finfo(np.float32).eps) * float(np.abs(gx_t).max())
    np.testing.assert_allclose(gx_c, gx_t, rtol=1e-5, atol=atol)
    np.testing.assert_allclose(gw_c, gw_t, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shift", [-5.0, 0.6, 5.0])
def test_adaptive_predict_scores_the_tail_only_where_the_head_picks_a_cluster(shift):
    # shift -5: every head argmax in the shortlist; +5: every one a cluster; 0.6: a mix
    x = seeded((40, 8), seed=12)
    expected, got = (adaptive(lib, head_bias=True, bias_shift=shift).predict(lib.tensor(x)) for lib in (torch, chainrule))
    assert got.dtype == chainrule.int64 and not got.requires_grad
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    np.testing.assert_array_equal(got.numpy(), adaptive(chainrule, True, shift).log_prob(chainrule.tensor(x)).argmax(1).numpy())


@pytest.mark.parametrize("method", ["log_prob", "predict"])
def test_adaptive_log_prob_and_predict_refuse_one_dimensional_input_as_torch(method):
    x = seeded((8,), seed=13)
    expected = raised(lambda: getattr(adaptive(torch), method)(torch.tensor(x)))
    assert expected[0] == "IndexError"
    assert raised(lambda: getattr(adaptive(chainrule), method)(chainrule.tensor(x))) == expected


@pytest.mark.parametrize("input_shape, target", [((5, 8, 1), [0, 1, 2, 3, 4]), ((5, 8), 3)])
def test_adaptive_forward_shape_errors_print_the_size_as_torch(input_shape, target):
    x = seeded(input_shape, seed=14)
    expected = raised(lambda: adaptive(torch)(torch.tensor(x), torch.tensor(target)))
    got = raised(lambda: adaptive(chainrule)(chainrule.tensor(x), chainrule.tensor(target)))
    assert expected[0] == "RuntimeError" and "Size([" in expected[1]
    assert got == expected


# --- 2. multi_margin_loss / multilabel_margin_loss: no rows, and inputs of more than two dims -----

def margin_call(lib, loss, shape, target_shape, **kwargs):
    fn = getattr(lib.nn.functional, loss)
    x = lib.zeros(shape, requires_grad=True)
    return fn(x, lib.zeros(target_shape, dtype=lib.long), **kwargs), x


@pytest.mark.parametrize("loss, target_shape", [("multi_margin_loss", (0,)), ("multilabel_margin_loss", (0, 5))])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_margin_losses_take_no_rows_as_torch(loss, target_shape, reduction):
    # multi_margin_loss reshaped (0, 5) by -1 and failed. torch's kernels leave the reduced value of
    # no rows uninitialised (any number, run to run), so only its shape, node and gradient compare
    (expected, x_t), (got, x_c) = (margin_call(lib, loss, (0, 5), target_shape, reduction=reduction)
                                   for lib in (torch, chainrule))
    assert tuple(got.shape) == tuple(expected.shape)
    assert got.grad_fn.name() == expected.grad_fn.name()
    expected.sum().backward()
    got.sum().backward()
    assert tuple(x_c.grad.shape) == tuple(x_t.grad.shape) == (0, 5)


@pytest.mark.parametrize("loss, shape, target_shape", [
    ("multi_margin_loss", (2, 2, 5), (2, 2)),
    ("multilabel_margin_loss", (2, 2, 5), (2, 2, 5)),
    ("multilabel_margin_loss", (2, 2, 5), (2, 2, 4)),
    ("multilabel_margin_loss", (2, 0, 5), (2, 0, 5)),
])
def test_margin_losses_refuse_three_dimensional_input_with_torchs_words(loss, shape, target_shape):
    expected = raised(lambda: margin_call(torch, loss, shape, target_shape))
    assert expected[0] == "RuntimeError" and expected[1].startswith("Expected non-empty vector or matrix")
    assert raised(lambda: margin_call(chainrule, loss, shape, target_shape)) == expected


# --- 3. Tensor.new(*sizes, device=...): the legacy constructor's one keyword -----------------------

@pytest.mark.parametrize("call", [
    lambda lib, x: x.new(2, 3, device="cpu"),
    lambda lib, x: x.new([1, 2], device=lib.device("cpu")),
    lambda lib, x: x.new((2, 3), device="cpu"),
    lambda lib, x: x.new(lib.Size([2]), device=None),
    lambda lib, x: x.new(device="cpu"),
    lambda lib, x: x.new(1, 4, device="cpu").fill_(0.).requires_grad_(),
])
def test_legacy_new_takes_a_device_of_its_own_type(call):
    # a size gives torch's uninitialised memory: only shapes, dtypes and flags compare
    expected, got = (call(lib, lib.ones(2, dtype=lib.float64)) for lib in (torch, chainrule))
    assert tuple(got.shape) == tuple(expected.shape)
    assert str(got.dtype) == str(expected.dtype).replace("torch.", "chainrule.")
    assert got.requires_grad == expected.requires_grad


def test_legacy_new_of_data_with_a_device_copies_it_as_torch():
    expected, got = (lib.ones(2, dtype=lib.float64).new([1, 2], device="cpu") for lib in (torch, chainrule))
    assert got.dtype == chainrule.float64
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


@pytest.mark.parametrize("call", [
    lambda lib, x: x.new(2, device="meta"),
    lambda lib, x: x.new(x, device="cpu"),
    lambda lib, x: x.new(2, foo=1),
    lambda lib, x: x.new(2, dtype=lib.float64),
    lambda lib, x: x.new(2, dtype=lib.float64, device="cpu"),
])
def test_legacy_new_refuses_other_devices_and_keywords_as_torch(call):
    expected = raised(lambda: call(torch, torch.ones(2)))
    assert expected is not None
    assert raised(lambda: call(chainrule, chainrule.ones(2))) == expected
