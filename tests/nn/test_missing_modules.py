"""The nn modules and functions that were missing (EmbeddingBag, the margin and Gaussian losses, CTC,
3-d adaptive pools, ...), each run on torch and on chainrule and compared: values, gradients, errors."""

import numpy as np
import pytest
import torch

import chainrule as cr
from tests._profile import DIRECTIONAL_GRADCHECK


def _run(lib, fn, arrays, grad):
    """fn(lib, *tensors) with float arrays made differentiable where ``grad`` says; (outputs, grads)."""
    tensors = [lib.tensor(a, requires_grad=g) for a, g in zip(arrays, grad)]
    out = fn(lib, *tensors)
    outs = out if isinstance(out, tuple) else (out,)
    wanted = [t for t, g in zip(tensors, grad) if g]
    grads = []
    if wanted and outs[0].requires_grad:
        weights = np.random.default_rng(7).standard_normal(tuple(outs[0].shape))
        loss = (outs[0] * lib.tensor(weights, dtype=outs[0].dtype)).sum()
        grads = lib.autograd.grad(loss, wanted, allow_unused=True)
    return [o.detach().numpy() for o in outs], [g.numpy() if g is not None else None for g in grads]


def compare(fn, arrays, grad=None, rtol=1e-5, atol=1e-6, gradcheck=True):
    """Forward and gradients on chainrule equal torch's; float64 gradcheck of chainrule's rule."""
    grad = grad if grad is not None else [a.dtype.kind == "f" for a in arrays]
    ours, our_grads = _run(cr, fn, arrays, grad)
    theirs, their_grads = _run(torch, fn, arrays, grad)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    assert len(our_grads) == len(their_grads)
    for a, b in zip(our_grads, their_grads):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    if gradcheck and any(grad):
        inputs = [cr.tensor(a.astype(np.float64) if a.dtype.kind == "f" else a, requires_grad=g)
                  for a, g in zip(arrays, grad)]
        # a big input along random directions in CI (the long profile element by element)
        fast = DIRECTIONAL_GRADCHECK and sum(a.size for a, g in zip(arrays, grad) if g) > 256
        assert cr.autograd.gradcheck(lambda *t: fn(cr, *t), inputs, eps=1e-6, atol=1e-5, fast_mode=fast)
    return ours


def raises_as_torch(fn, exc, match):
    """The same error type, and message, on both libraries."""
    for lib in (torch, cr):
        with pytest.raises(exc, match=match):
            fn(lib)


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------- EmbeddingBag
WEIGHT = _rng(0).standard_normal((10, 3))
BAG_CASES = {
    # name: (indices, offsets or None, keyword arguments)
    "2d_mean": (np.array([[1, 2, 4], [4, 3, 9]]), None, {}),
    "2d_sum_padding": (np.array([[1, 2, 2], [0, 2, 9]]), None, {"mode": "sum", "padding_idx": 2}),
    "offsets_sum_empty_bag": (np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 4, 4, 6]), {"mode": "sum"}),
    "offsets_mean_padding": (np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 3, 5]),
                             {"mode": "mean", "padding_idx": 4}),
    "all_padding_bag_mean": (np.array([4, 4, 1, 2]), np.array([0, 2]), {"padding_idx": -6}),
    "max": (np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 3, 3, 5]), {"mode": "max"}),
    "max_padding_2d": (np.array([[1, 2, 7], [7, 7, 7], [0, 9, 7]]), None, {"mode": "max", "padding_idx": 7}),
    "include_last_offset": (np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 2, 5, 8]),
                            {"mode": "sum", "include_last_offset": True}),
    "include_last_offset_mean": (np.array([1, 2, 4, 5, 4, 3]), np.array([0, 2, 2, 6]),
                                 {"include_last_offset": True}),
    "all_empty_max": (np.array([], dtype=np.int64), np.array([0, 0]), {"mode": "max"}),
    "empty_input_mean": (np.array([], dtype=np.int64), np.array([0, 0, 0]), {}),
    "int32": (np.array([1, 2, 4, 5], dtype=np.int32), np.array([0, 1], dtype=np.int32), {"mode": "sum"}),
}


@pytest.mark.parametrize("case", sorted(BAG_CASES))
def test_embedding_bag_matches_torch(case):
    indices, offsets, kwargs = BAG_CASES[case]

    def fn(lib, weight):
        return lib.nn.functional.embedding_bag(lib.tensor(indices), weight,
                                               None if offsets is None else lib.tensor(offsets), **kwargs)

    compare(fn, [WEIGHT], gradcheck=kwargs.get("mode") != "max")


def test_embedding_bag_max_gradcheck_on_tie_free_rows():
    weight = (np.arange(30.0).reshape(10, 3) * 0.37) % 1.9  # no two looked-up rows tie in a column
    indices, offsets = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 3, 3, 5])
    compare(lambda lib, w: lib.nn.functional.embedding_bag(lib.tensor(indices), w, lib.tensor(offsets), mode="max"),
            [weight])


def test_embedding_bag_per_sample_weights():
    indices, offsets = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 3, 3, 5])
    psw = _rng(3).standard_normal(8)
    for padding_idx in (None, 4):
        compare(lambda lib, w, p, pad=padding_idx: lib.nn.functional.embedding_bag(
            lib.tensor(indices), w, lib.tensor(offsets), mode="sum", per_sample_weights=p, padding_idx=pad),
            [WEIGHT, psw])


def test_embedding_bag_scale_grad_by_freq_scales_as_torchs_cpu_kernel():
    # torch's embedding_bag CPU kernel divides the i-th distinct index by the count of the i-th sorted
    # lookup, not by its own (indices [1, 1, 1, 5, 4, 1] in bags [0, 2) give rows 4 and 5 a factor
    # 1/4); chainrule gives torch's numbers, so the oracle is torch's embedding_bag itself
    indices, offsets = np.array([1, 1, 1, 5, 4, 1, 3, 5]), np.array([0, 2, 7])

    def bags(lib, weight):
        return lib.nn.functional.embedding_bag(lib.tensor(indices), weight, lib.tensor(offsets), mode="sum",
                                               scale_grad_by_freq=True)

    expected = _run(torch, bags, [WEIGHT], [True])
    got = _run(cr, bags, [WEIGHT], [True])
    np.testing.assert_allclose(got[0][0], expected[0][0], rtol=1e-12)
    np.testing.assert_allclose(got[1][0], expected[1][0], rtol=1e-12)


def test_embedding_bag_max_norm_renormalises_the_looked_up_rows():
    indices, offsets = np.array([1, 2, 4, 5]), np.array([0, 2])
    results = []
    for lib in (torch, cr):
        weight = lib.tensor(WEIGHT * 3)
        out = lib.nn.functional.embedding_bag(lib.tensor(indices), weight, lib.tensor(offsets), max_norm=1.0)
        results.append((out.numpy(), weight.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-6)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6)


def test_embedding_bag_records_torchs_node():
    for lib in (torch, cr):
        weight = lib.tensor(WEIGHT, requires_grad=True)
        for mode in ("sum", "mean", "max"):
            out = lib.nn.functional.embedding_bag(lib.tensor([[1, 2]]), weight, mode=mode)
            assert type(out.grad_fn).__name__ == "EmbeddingBagBackward0"


def test_embedding_bag_module_trains_as_torch():
    results = []
    for lib in (torch, cr):
        bag = lib.nn.EmbeddingBag.from_pretrained(lib.tensor(WEIGHT, dtype=lib.float32), freeze=False,
                                                  mode="sum", padding_idx=0)
        model = lib.nn.Sequential()
        head = lib.nn.Linear(3, 2)
        with lib.no_grad():
            head.weight.copy_(lib.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]))
            head.bias.zero_()
        opt = lib.optim.SGD(list(bag.parameters()) + list(head.parameters()), lr=0.1)
        for step in range(3):
            text = lib.tensor(np.array([1, 2, 0, 4, 5, 6, 7, 0, 9]) if step % 2 else np.array([3, 3, 8, 0]))
            offsets = lib.tensor(np.array([0, 2, 5]) if step % 2 else np.array([0, 1]))
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(head(bag(text, offsets)), lib.tensor([1, 0, 1][:len(offsets)]))
            loss.backward()
            opt.step()
        results.append((bag.weight.detach().numpy(), head.weight.detach().numpy(), repr(bag), len(model)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-5, atol=1e-6)
    assert results[1][2] == results[0][2]
    assert repr(cr.nn.EmbeddingBag(10, 3, max_norm=1.0, scale_grad_by_freq=True, padding_idx=-2)) == \
        repr(torch.nn.EmbeddingBag(10, 3, max_norm=1.0, scale_grad_by_freq=True, padding_idx=-2))
    module = cr.nn.EmbeddingBag(10, 3, padding_idx=2)
    assert module.weight.shape == (10, 3) and (module.weight.detach().numpy()[2] == 0).all()


def test_embedding_bag_errors_as_torch():
    def bag(lib, indices, offsets=None, **kwargs):
        return lib.nn.functional.embedding_bag(lib.tensor(indices), lib.tensor(WEIGHT),
                                               None if offsets is None else lib.tensor(offsets), **kwargs)

    raises_as_torch(lambda lib: bag(lib, [[1, 2]], [0]), ValueError, "if input is 2D, then offsets has to be None")
    raises_as_torch(lambda lib: bag(lib, [1, 2]), ValueError, "offsets has to be a 1D Tensor but got None")
    raises_as_torch(lambda lib: bag(lib, [1, 2], [[0]]), ValueError, "offsets has to be a 1D Tensor")
    raises_as_torch(lambda lib: bag(lib, [1, 2, 3], [0, 1], mode="mean", per_sample_weights=lib.ones(3)),
                    NotImplementedError, "per_sample_weights is only supported for mode='sum'")
    raises_as_torch(lambda lib: bag(lib, [1, 2, 3], [0, 1], mode="sum", per_sample_weights=lib.ones(2)),
                    ValueError, "must have the same shape as the input")
    raises_as_torch(lambda lib: bag(lib, [1, 2, 3], [1, 2]), RuntimeError, "offsets\\[0\\] has to be 0")
    raises_as_torch(lambda lib: bag(lib, [1, 2, 3], [0, 2, 5]), RuntimeError,
                    "offsets\\[-1\\] can not be greater than input's length 3")
    raises_as_torch(lambda lib: bag(lib, [1, 2, 3], [0, 1], mode="foo"), ValueError,
                    "mode has to be one of sum, mean or max")
    # torch's wording depends on the kernel it picks (float32 or float64); both name the bad value
    raises_as_torch(lambda lib: bag(lib, [1, 2, 13], [0, 1]), RuntimeError, "takes value 13|found idx to be 13")
    raises_as_torch(lambda lib: bag(lib, [1.0, 2.0], [0]), RuntimeError, "'indices' to have one of the following")
    raises_as_torch(lambda lib: bag(lib, [1, 2], [0], padding_idx=12), RuntimeError,
                    "padding_idx must be within the number of embeddings, -10 through 9, but got 12")


# ---------------------------------------------------------------------------------------------- losses
X = _rng(1).standard_normal((4, 5))
LABELS = np.array([0, 3, 4, 3])
MULTILABEL = np.array([[3, 0, -1, 1, 2], [0, 1, 2, 3, 4], [-1, 2, 0, 0, 0], [4, 4, 1, -1, 0]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_loss(reduction, full):
    target, var = _rng(2).standard_normal((4, 5)), _rng(3).uniform(0.1, 2.0, (4, 5))
    compare(lambda lib, x, t, v: lib.nn.functional.gaussian_nll_loss(x, t, v, full=full, reduction=reduction),
            [X, target, var])
    # homoscedastic: one variance per sample, given as (N,) or (N, 1); a shared dim of size 1
    compare(lambda lib, x, t, v: lib.nn.functional.gaussian_nll_loss(x, t, v, reduction=reduction),
            [X, target, var[:, 0]])
    compare(lambda lib, x, t, v: lib.nn.GaussianNLLLoss(full=full, reduction=reduction)(x, t, v),
            [X, target, var[:1, :]])


def test_gaussian_nll_loss_clamps_the_variance_but_passes_its_gradient():
    target = _rng(2).standard_normal((4, 5))
    var = _rng(3).uniform(0.1, 2.0, (4, 5))
    var[0, :3] = [0.0, 1e-9, 1e-7]  # below eps
    compare(lambda lib, x, t, v: lib.nn.functional.gaussian_nll_loss(x, t, v, eps=1e-6), [X, target, var],
            rtol=1e-5, gradcheck=False)
    compare(lambda lib, x, t: lib.nn.functional.gaussian_nll_loss(x, t, 0.5), [X, target])


def test_gaussian_nll_loss_errors_as_torch():
    def loss(lib, var, **kwargs):
        return lib.nn.functional.gaussian_nll_loss(lib.tensor(X), lib.tensor(X), var(lib), **kwargs)

    raises_as_torch(lambda lib: loss(lib, lambda lib: -lib.ones(4, 5)), ValueError, "var has negative entry")
    raises_as_torch(lambda lib: loss(lib, lambda lib: -1.0), ValueError, "var has negative entry")
    raises_as_torch(lambda lib: loss(lib, lambda lib: lib.ones(2, 5)), ValueError, "var is of incorrect size")
    raises_as_torch(lambda lib: loss(lib, lambda lib: lib.ones(4, 5), reduction="foo"), ValueError,
                    "foo is not valid")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multi_margin_loss(reduction):
    weight = _rng(4).uniform(0.5, 2.0, 5)
    for p, margin in ((1, 1.0), (2, 0.7)):
        compare(lambda lib, x, p=p, margin=margin: lib.nn.functional.multi_margin_loss(
            x, lib.tensor(LABELS), p=p, margin=margin, reduction=reduction), [X])
        compare(lambda lib, x, w, p=p, margin=margin: lib.nn.MultiMarginLoss(p, margin, w, reduction=reduction)(
            x, lib.tensor(LABELS)), [X, weight], grad=[True, False])
    for target in (np.array(2), np.array([2])):  # one sample: the loss has the target's shape
        compare(lambda lib, x, t=target: lib.nn.functional.multi_margin_loss(x, lib.tensor(t), reduction=reduction),
                [X[0]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multilabel_margin_losses(reduction):
    compare(lambda lib, x: lib.nn.MultiLabelMarginLoss(reduction=reduction)(x, lib.tensor(MULTILABEL)), [X])
    compare(lambda lib, x: lib.nn.functional.multilabel_margin_loss(x, lib.tensor(MULTILABEL[0]),
                                                                    reduction=reduction), [X[0]])
    soft_target = (_rng(5).random((4, 5)) > 0.5).astype(np.float64)
    weight = _rng(6).uniform(0.5, 2.0, 5)
    compare(lambda lib, x, t: lib.nn.functional.multilabel_soft_margin_loss(x, t, reduction=reduction),
            [X, soft_target])
    compare(lambda lib, x, w: lib.nn.MultiLabelSoftMarginLoss(w, reduction=reduction)(x, lib.tensor(soft_target)),
            [X, weight])


def test_margin_loss_errors_as_torch():
    F = lambda lib: lib.nn.functional  # noqa: E731
    raises_as_torch(lambda lib: F(lib).multi_margin_loss(lib.tensor(X), lib.tensor([1, 2])), RuntimeError,
                    r"multi_margin_loss: target tensor should be 1-D with size equal to the number of input "
                    r"samples \(batch size\). Expected target size \[4\], but got \[2\]")
    raises_as_torch(lambda lib: F(lib).multi_margin_loss(lib.tensor(X), lib.tensor([1, 2, 3, 7])), RuntimeError,
                    "target out of range")
    raises_as_torch(lambda lib: F(lib).multi_margin_loss(lib.tensor(X), lib.tensor(LABELS), p=3), ValueError,
                    "only p == 1 and p == 2 supported")
    raises_as_torch(lambda lib: lib.nn.MultiMarginLoss(weight=lib.ones(2, 2)), ValueError,
                    "MultiMarginLoss: expected weight to be None or 1D tensor, got 2D instead")
    raises_as_torch(lambda lib: F(lib).multi_margin_loss(lib.tensor(X), lib.tensor(LABELS), reduction="foo"),
                    ValueError, "foo is not a valid value for reduction")
    raises_as_torch(lambda lib: F(lib).multilabel_margin_loss(lib.tensor(X), lib.tensor([1, 2, 3])), RuntimeError,
                    r"inconsistent target size: \[3\] for input of size: \[4, 5\]")
    raises_as_torch(lambda lib: F(lib).multilabel_margin_loss(lib.tensor(X), lib.tensor(MULTILABEL + 5)),
                    RuntimeError, "argument #2 'target' is out of range")
    with pytest.warns(FutureWarning, match="`NLLLoss2d` has been deprecated"):
        module = cr.nn.NLLLoss2d()
    assert isinstance(module, cr.nn.NLLLoss)


# ---------------------------------------------------------------------------------------------- CTC
LOGITS = _rng(8).standard_normal((7, 3, 5))
CTC_CASES = {
    # name: (padded or concatenated targets, input lengths, target lengths, keyword arguments)
    "padded_repeats": (np.array([[1, 2, 2], [3, 1, 9], [4, 0, 0]]), [7, 6, 5], [3, 2, 1], {}),
    "concatenated": (np.array([1, 2, 2, 3, 1, 4]), [7, 6, 5], [3, 2, 1], {}),
    "blank_last_sum": (np.array([[1, 0, 0], [3, 3, 3], [2, 1, -1]]), [7, 7, 4], [3, 3, 2],
                       {"blank": 4, "reduction": "sum"}),
    "empty_target_none": (np.array([[1, 2], [0, 0], [3, 3]]), [7, 3, 6], [2, 0, 2], {"reduction": "none"}),
    "tensor_lengths": (np.array([[1, 2, 2], [3, 1, 1], [4, 4, 4]]), np.array([7, 6, 7]), np.array([3, 3, 2]),
                       {"reduction": "none"}),
}


def _ctc(targets, input_lengths, target_lengths, kwargs, module=False):
    def fn(lib, logits):
        lengths = [lib.tensor(v) if isinstance(v, np.ndarray) else v for v in (input_lengths, target_lengths)]
        log_probs = logits.log_softmax(-1)
        if module:
            return lib.nn.CTCLoss(**kwargs)(log_probs, lib.tensor(targets), *lengths)
        return lib.nn.functional.ctc_loss(log_probs, lib.tensor(targets), *lengths, **kwargs)
    return fn


@pytest.mark.parametrize("case", sorted(CTC_CASES))
def test_ctc_loss_matches_torch(case):
    targets, input_lengths, target_lengths, kwargs = CTC_CASES[case]
    # through log_softmax, as CTC is used: torch's CTC gradient is the logits' one (see ops/ctc.py), and
    # this composition is what gradcheck can verify by finite differences
    compare(_ctc(targets, input_lengths, target_lengths, kwargs), [LOGITS], rtol=1e-6, atol=1e-9)
    compare(_ctc(targets, input_lengths, target_lengths, kwargs, module=True), [LOGITS[:, :, :].astype(np.float32)],
            rtol=1e-4, atol=1e-5, gradcheck=False)


def test_ctc_loss_gradient_with_respect_to_log_probs_is_torchs():
    targets, input_lengths, target_lengths, kwargs = CTC_CASES["padded_repeats"]
    log_probs = torch.tensor(LOGITS).log_softmax(-1).numpy()
    compare(lambda lib, lp: lib.nn.functional.ctc_loss(lp, lib.tensor(targets), input_lengths, target_lengths,
                                                       reduction="none"), [log_probs], gradcheck=False)


def test_ctc_loss_impossible_alignment_and_zero_infinity():
    # sample 0 needs 4 steps (labels 2, 2 need a blank between them) but has 3: its loss is infinite
    targets, input_lengths, target_lengths = np.array([[1, 2, 2], [3, 1, 0]]), [3, 6], [3, 2]
    logits = LOGITS[:, :2]
    for reduction in ("none", "mean"):
        ours = compare(_ctc(targets, input_lengths, target_lengths, {"reduction": reduction, "zero_infinity": True}),
                       [logits])
        assert np.isfinite(ours[0]).all()
    for lib in (torch, cr):
        loss = lib.nn.functional.ctc_loss(lib.tensor(logits).log_softmax(-1), lib.tensor(targets), input_lengths,
                                          target_lengths, reduction="none")
        assert np.isinf(loss.numpy()[0]) and np.isfinite(loss.numpy()[1])


def test_ctc_loss_unbatched_and_training_step():
    targets = np.array([1, 2, 2])
    compare(lambda lib, x: lib.nn.functional.ctc_loss(x.log_softmax(-1), lib.tensor(targets), lib.tensor(7),
                                                      lib.tensor(3), reduction="none"), [LOGITS[:, 0]])
    compare(lambda lib, x: lib.nn.functional.ctc_loss(x.log_softmax(-1), lib.tensor(targets), [7], [3]),
            [LOGITS[:, 0]])
    # a whole step: a linear head on features, CTC, SGD; weights equal after three steps
    features = _rng(9).standard_normal((7, 3, 4)).astype(np.float32)
    results = []
    for lib in (torch, cr):
        head = lib.nn.Linear(4, 5)
        with lib.no_grad():
            head.weight.copy_(lib.tensor(_rng(10).standard_normal((5, 4)).astype(np.float32)))
            head.bias.zero_()
        opt = lib.optim.SGD(head.parameters(), lr=0.1)
        criterion = lib.nn.CTCLoss(zero_infinity=True)
        for _ in range(3):
            opt.zero_grad()
            loss = criterion(head(lib.tensor(features)).log_softmax(2), lib.tensor([[1, 2, 2], [3, 1, 0], [4, 4, 0]]),
                             lib.tensor([7, 6, 2]), lib.tensor([3, 2, 2]))
            loss.backward()
            opt.step()
        results.append(head.weight.detach().numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-6)


def test_ctc_loss_errors_as_torch():
    def loss(lib, targets=((1, 2), (3, 3)), input_lengths=(6, 6), target_lengths=(2, 2), **kwargs):
        log_probs = lib.tensor(LOGITS[:6, :2]).log_softmax(2)
        return lib.nn.functional.ctc_loss(log_probs, lib.tensor(np.array(targets)), list(input_lengths),
                                          list(target_lengths), **kwargs)

    raises_as_torch(lambda lib: loss(lib, input_lengths=(7, 6)), RuntimeError,
                    "Expected input_lengths to have value at most 6, but got value 7")
    raises_as_torch(lambda lib: loss(lib, input_lengths=(-1, 6)), RuntimeError,
                    "Expected input_lengths to have value at least 0, but got value -1")
    raises_as_torch(lambda lib: loss(lib, target_lengths=(-1, 2)), RuntimeError,
                    "Expected target_lengths to have value at least 0, but got value -1")
    raises_as_torch(lambda lib: loss(lib, target_lengths=(2, 3)), RuntimeError,
                    "Expected tensor to have size at least 3 at dimension 1, but got size 2 for argument #2 'targets'")
    raises_as_torch(lambda lib: loss(lib, targets=(1, 2, 3)), RuntimeError,
                    "Expected tensor to have size 4 at dimension 0, but got size 3 for argument #2 'targets'")
    raises_as_torch(lambda lib: loss(lib, target_lengths=(2,)), RuntimeError,
                    "target_lengths must be of size batch_size")
    raises_as_torch(lambda lib: loss(lib, input_lengths=(6, 6, 6)), RuntimeError,
                    "input_lengths must be of size batch_size")
    raises_as_torch(lambda lib: loss(lib, blank=5), RuntimeError, "blank must be in label range")
    raises_as_torch(lambda lib: loss(lib, reduction="foo"), ValueError, "foo is not a valid value for reduction")


# ---------------------------------------------------------------------------------------------- pools and the rest
VOLUME = _rng(11).permutation(2 * 2 * 5 * 7 * 6).reshape(2, 2, 5, 7, 6) * 0.1  # tie-free


@pytest.mark.parametrize("output_size", [2, (3, None, 4)] + [  # uneven and identity windows: long profile
    pytest.param(size, marks=pytest.mark.long) for size in (1, (5, 7, 6), (1, 3, 2))])
def test_adaptive_pools_3d(output_size):
    compare(lambda lib, x: lib.nn.functional.adaptive_avg_pool3d(x, output_size), [VOLUME])
    compare(lambda lib, x: lib.nn.AdaptiveMaxPool3d(output_size, return_indices=True)(x), [VOLUME])
    compare(lambda lib, x: lib.nn.AdaptiveAvgPool3d(output_size)(x), [VOLUME[0]])  # unbatched
    compare(lambda lib, x: lib.nn.functional.adaptive_max_pool3d_with_indices(x, output_size), [VOLUME[0]])
    for lib in (torch, cr):
        x = lib.tensor(VOLUME, requires_grad=True)
        names = [type(lib.nn.functional.adaptive_avg_pool3d(x, output_size).grad_fn).__name__,
                 type(lib.nn.functional.adaptive_max_pool3d(x, output_size).grad_fn).__name__]
        if lib is torch:
            torch_names = names
    assert names == torch_names


def test_adaptive_pool_3d_errors_as_torch():
    raises_as_torch(lambda lib: lib.nn.functional.adaptive_avg_pool3d(lib.ones(2, 3, 4), 2), RuntimeError,
                    "Expected 4D or 5D tensor|adaptive_avg_pool3d")
    raises_as_torch(lambda lib: lib.nn.functional.adaptive_max_pool3d(lib.ones(1, 2, 0, 3, 3), 2), RuntimeError,
                    "non-zero size for non-batch dimensions")


def test_with_indices_aliases_return_the_indices():
    image = VOLUME[:, :, 0]
    for name, args, x in (("max_pool1d_with_indices", (3, 2), image[:, :, 0]),
                          ("max_pool2d_with_indices", (3, 2, 1), image),
                          ("max_pool3d_with_indices", (2,), VOLUME),
                          ("adaptive_max_pool1d_with_indices", (4,), image[:, :, 0]),
                          ("adaptive_max_pool2d_with_indices", ((3, 2),), image)):
        outs = compare(lambda lib, t, name=name, args=args: getattr(lib.nn.functional, name)(t, *args), [x])
        assert len(outs) == 2 and outs[1].dtype == np.int64


def test_rrelu_in_place():
    x = _rng(12).standard_normal(6)
    results = []
    for lib in (torch, cr):
        t = lib.tensor(x)
        out = lib.nn.functional.rrelu_(t)
        assert out is t
        results.append(t.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-7)
    t = cr.tensor(x)
    cr.nn.functional.rrelu_(t, 0.1, 0.3, training=True)
    slopes = t.numpy()[x < 0] / x[x < 0]
    assert ((slopes >= 0.1) & (slopes <= 0.3)).all() and (t.numpy()[x >= 0] == x[x >= 0]).all()


def test_feature_alpha_dropout():
    x = _rng(13).standard_normal((8, 6, 3, 3))
    for lib in (torch, cr):
        module = lib.nn.FeatureAlphaDropout(0.3)
        assert repr(module) == "FeatureAlphaDropout(p=0.3, inplace=False)"
        module.eval()
        np.testing.assert_array_equal(module(lib.tensor(x)).numpy(), x)
        np.testing.assert_array_equal(lib.nn.functional.feature_alpha_dropout(lib.tensor(x), 0.3).numpy(), x)
    # training: each channel is either kept, a·x + α·a·p, or dropped to the constant -α·a + α·a·p (torch's map)
    p, alpha = 0.3, 1.7580993408473766
    a = ((1 - p) * (1 + p * alpha ** 2)) ** -0.5
    cr.manual_seed(0)
    x_t = cr.tensor(x, requires_grad=True)
    out = cr.nn.functional.feature_alpha_dropout(x_t, p, training=True)
    kept = np.isclose(out.detach().numpy(), a * x + alpha * a * p).all(axis=(2, 3))
    dropped = np.isclose(out.detach().numpy(), -alpha * a + alpha * a * p).all(axis=(2, 3))
    assert (kept | dropped).all() and kept.any() and dropped.any()
    out.sum().backward()
    np.testing.assert_allclose(x_t.grad.numpy(), np.broadcast_to((kept * a)[:, :, None, None], x.shape))
