"""Loss functions and modules vs torch (forward and input gradients) and finite differences."""

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as CF
from tests._profile import DIRECTIONAL_GRADCHECK

from ..ops import harness
from ..ops.harness import OpCase, check_gradients, compare_with_torch, noncontig, parametrize, positive, randn

torch = pytest.importorskip("torch")

REDUCTIONS = ["mean", "sum", "none"]
LOGITS = randn(5, 4, seed=1)
LOGITS_3D = randn(3, 4, 2, 2, seed=2)
TARGET = np.array([0, 3, 1, 3, 2])
TARGET_IGN = np.array([0, -100, 1, 3, -100])
TARGET_3D = np.random.default_rng(3).integers(0, 4, (3, 2, 2))
TARGET_3D[0, 1, 0] = 1  # keep at least one of each class
TARGET_3D_IGN = TARGET_3D.copy()
TARGET_3D_IGN[1, 0, 1] = 7
WEIGHT = np.array([0.5, 2.0, 1.0, 1.5])
PROBS = np.random.default_rng(4).dirichlet(np.ones(4), 5)


def _w(lib, w):
    return lib.tensor(w, dtype=lib.float32)


def _ce(**kw):
    def fn(lib, x, t, *w):
        extra = {"weight": w[0]} if w else {}
        return lib.nn.functional.cross_entropy(x, t, **extra, **kw)
    return fn


def _nll(**kw):
    def fn(lib, x, t, *w):
        extra = {"weight": w[0]} if w else {}
        return lib.nn.functional.nll_loss(lib.nn.functional.log_softmax(x, 1) if x.dim() > 1 else x, t,
                                          **extra, **kw)
    return fn


CASES = []
for r in REDUCTIONS:
    CASES += [
        OpCase(f"ce_{r}", _ce(reduction=r), [LOGITS, TARGET]),
        OpCase(f"ce_weight_{r}", _ce(reduction=r), [LOGITS, TARGET, WEIGHT], grad=[True, False, False]),
        OpCase(f"ce_ignore_{r}", _ce(reduction=r), [LOGITS, TARGET_IGN, WEIGHT], grad=[True, False, False]),
        OpCase(f"ce_ignore7_{r}", _ce(reduction=r, ignore_index=7), [LOGITS_3D, TARGET_3D_IGN]),
        OpCase(f"ce_smooth_{r}", _ce(reduction=r, label_smoothing=0.2), [LOGITS, TARGET_IGN]),
        OpCase(f"ce_smooth_weight_{r}", _ce(reduction=r, label_smoothing=0.3), [LOGITS_3D, TARGET_3D, WEIGHT],
               grad=[True, False, False]),
        OpCase(f"ce_probs_{r}", _ce(reduction=r), [LOGITS, PROBS]),
        OpCase(f"ce_probs_smooth_weight_{r}", _ce(reduction=r, label_smoothing=0.1), [LOGITS_3D,
               np.random.default_rng(5).dirichlet(np.ones(4), (3, 2, 2)).transpose(0, 3, 1, 2).copy(), WEIGHT],
               grad=[True, True, False]),
        OpCase(f"nll_{r}", _nll(reduction=r), [LOGITS, TARGET_IGN, WEIGHT], grad=[True, False, False]),
        OpCase(f"nll_3d_{r}", _nll(reduction=r), [LOGITS_3D, TARGET_3D]),
        OpCase(f"mse_{r}", lambda lib, a, b, r=r: lib.nn.functional.mse_loss(a, b, reduction=r),
               [randn(3, 4), randn(3, 4, seed=1)]),
        OpCase(f"l1_{r}", lambda lib, a, b, r=r: lib.nn.functional.l1_loss(a, b, reduction=r),
               [randn(3, 4), randn(3, 4, seed=1)], gradgradcheck=False),
        OpCase(f"smooth_l1_{r}", lambda lib, a, b, r=r: lib.nn.functional.smooth_l1_loss(a, b, reduction=r,
               beta=0.7), [randn(3, 4) * 2, randn(3, 4, seed=1)], gradgradcheck=False),
        OpCase(f"huber_{r}", lambda lib, a, b, r=r: lib.nn.functional.huber_loss(a, b, reduction=r, delta=0.6),
               [randn(3, 4) * 2, randn(3, 4, seed=1)], gradgradcheck=False),
        OpCase(f"bce_{r}", lambda lib, a, b, w, r=r: lib.nn.functional.binary_cross_entropy(a, b, w, reduction=r),
               [positive(3, 4) / 2.1, positive(3, 4, seed=1) / 2.1, positive(4, seed=2)], grad=[True, True, False]),
        OpCase(f"bce_logits_{r}", lambda lib, a, b, w, p, r=r: lib.nn.functional.binary_cross_entropy_with_logits(
               a, b, w, reduction=r, pos_weight=p), [randn(3, 4) * 3, positive(3, 4, seed=1) / 2.1,
               positive(3, 1, seed=2), positive(4, seed=3)], grad=[True, True, False, False]),
        OpCase(f"kl_{r}", lambda lib, a, b, r=r: lib.nn.functional.kl_div(a, b, reduction=r),
               [randn(3, 4), positive(3, 4, seed=1)]),
        OpCase(f"poisson_{r}", lambda lib, a, b, r=r: lib.nn.functional.poisson_nll_loss(a, b, reduction=r, full=True),
               [randn(3, 4), positive(3, 4, seed=1) * 2], grad=[True, False]),
        OpCase(f"margin_ranking_{r}", lambda lib, a, b, t, r=r: lib.nn.functional.margin_ranking_loss(
               a, b, t, margin=0.1, reduction=r), [randn(6, seed=1), randn(6, seed=2),
               np.array([1.0, -1, 1, -1, 1, 1])], grad=[True, True, False], gradgradcheck=False),
        OpCase(f"cosine_embedding_{r}", lambda lib, a, b, t, r=r: lib.nn.functional.cosine_embedding_loss(
               a, b, t, margin=-0.5, reduction=r), [randn(4, 3, seed=1), randn(4, 3, seed=2),
               np.array([1, -1, 1, -1])], grad=[True, True, False]),
    ]
CASES += [
    OpCase("ce_unbatched", _ce(), [randn(4), np.array(2)]),
    OpCase("ce_unbatched_probs", _ce(label_smoothing=0.2), [randn(4), PROBS[0]]),
    OpCase("ce_noncontig", _ce(), [noncontig(randn(4, 5)), np.array([0, 1, 4, 2])]),
    OpCase("ce_all_ignored_sum", _ce(reduction="sum"), [LOGITS, np.full(5, -100)]),
    OpCase("ce_zero_batch", _ce(reduction="sum"), [randn(0, 4), np.zeros(0, dtype=np.int64)]),
    OpCase("nll_unbatched", _nll(), [randn(4), np.array(1)]),
    OpCase("kl_batchmean_logtarget", lambda lib, a, b: lib.nn.functional.kl_div(a, b, reduction="batchmean",
           log_target=True), [randn(3, 4), randn(3, 4, seed=1)]),
    OpCase("kl_zero_target", lambda lib, a, b: lib.nn.functional.kl_div(a, b, reduction="batchmean"),
           [randn(3, 4), np.array([[0.0, 0.5, 0.5, 0.0]] * 3)], grad=[True, False]),
    OpCase("mse_0d", lambda lib, a, b: lib.nn.functional.mse_loss(a, b), [randn(), randn(seed=1)]),
    OpCase("mse_empty", lambda lib, a, b: lib.nn.functional.mse_loss(a, b, reduction="sum"),
           [randn(0, 3), randn(0, 3)]),
    OpCase("bce_logits_noncontig", lambda lib, a, b: lib.nn.functional.binary_cross_entropy_with_logits(a, b),
           [noncontig(randn(4, 3)), positive(4, 3) / 2.1]),
    OpCase("soft_margin", lambda lib, a, t: lib.nn.functional.soft_margin_loss(a, t),
           [randn(5), np.array([1.0, -1, 1, 1, -1])], grad=[True, False]),
    OpCase("hinge_embedding", lambda lib, a, t: lib.nn.functional.hinge_embedding_loss(a, t, margin=0.5),
           [randn(5), np.array([1.0, -1, 1, 1, -1])], grad=[True, False], gradgradcheck=False),
]


@parametrize(CASES)
def test_loss_vs_torch(case):
    compare_with_torch(case)


# As the op registry's gradchecks (tests/ops/test_op_db.py): first order element by element, second
# order along random directions in CI above 12 perturbed elements (the double backward per element took
# most of the 114 s these 72 cases cost in a loaded pytest -n 2 run), element by element in the long profile.
@parametrize([c for c in CASES if not c.name.startswith("ce_zero")])
def test_loss_gradcheck(case):
    check_gradients(case, gradgrad_fast_mode=DIRECTIONAL_GRADCHECK and harness.perturbed_elements(case) > 12)


def test_cross_entropy_grad_fn_and_fused_gradient():
    x = chainrule.tensor(LOGITS.astype(np.float32), requires_grad=True)
    loss = CF.cross_entropy(x, chainrule.tensor(TARGET))
    # torch's graph: NllLossBackward0 over LogSoftmaxBackward0
    assert type(loss.grad_fn).__name__ == "NllLossBackward0"
    assert loss.grad_fn.next_functions[0][0].name() == "LogSoftmaxBackward0"
    loss.backward()
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    probs[np.arange(5), TARGET] -= 1
    np.testing.assert_allclose(x.grad.numpy(), probs / 5, rtol=1e-5, atol=1e-7)


def test_mse_loss_is_one_node_over_the_layer_as_in_torch():
    # the blitz tutorial walks loss.grad_fn.next_functions[0][0] expecting the Linear's node; its
    # target is an int64 arange, promoted to the output's float dtype as in torch
    import torch

    results = []
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        layer = lib.nn.Linear(3, 4)
        out = layer(lib.ones(2, 3))
        loss = lib.nn.MSELoss()(out, lib.arange(1, 9).view(2, 4))
        results.append((loss.grad_fn.name(), loss.grad_fn.next_functions[0][0].name(), loss.dtype))
    assert results[1] == (results[0][0], results[0][1], chainrule.float32) == ("MseLossBackward0", "AddmmBackward0",
                                                                            chainrule.float32)
    # the one node's gradients, both sides and to second order, as torch's
    check_gradients(OpCase("mse_one_node", lambda lib, a, b: lib.nn.functional.mse_loss(a, b, reduction="sum"),
                           [randn(4, 3), randn(4, 3, seed=1)]))


@pytest.mark.parametrize("fn", [
    lambda lib, x, t: lib.nn.functional.cross_entropy(x, t),
    lambda lib, x, t: lib.nn.functional.cross_entropy(x, t, label_smoothing=0.1, reduction="none"),
    lambda lib, x, t: lib.nn.functional.binary_cross_entropy_with_logits(x[:, 0], (t == 1).float()),
    lambda lib, x, t: lib.nn.functional.cross_entropy(x, lib.nn.functional.one_hot(t, 3).float()),
])
def test_large_logits_are_stable(fn):
    data = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3e4], [5e3, 5e3, -1e4]], dtype=np.float32)
    target = np.array([1, 1, 0])
    results = []
    for lib in (chainrule, torch):
        x = lib.tensor(data, requires_grad=True)
        out = fn(lib, x, lib.tensor(target))
        out.sum().backward()
        results.append((out.detach().numpy(), x.grad.numpy()))
    assert np.all(np.isfinite(results[0][0])) and np.all(np.isfinite(results[0][1]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-6)


def test_bce_clamps_log_at_minus_100():
    for lib in (chainrule, torch):
        x = lib.tensor([0.0, 1.0, 0.5])
        t = lib.tensor([1.0, 0.0, 1.0])
        out = lib.nn.functional.binary_cross_entropy(x, t, reduction="none")
        np.testing.assert_allclose(out.numpy(), [100.0, 100.0, np.log(2)], rtol=1e-6)


def test_double_backward_of_cross_entropy_matches_torch():
    grads = []
    for lib in (chainrule, torch):
        x = lib.tensor(LOGITS.astype(np.float32), requires_grad=True)
        loss = lib.nn.functional.cross_entropy(x, lib.tensor(TARGET_IGN), label_smoothing=0.1)
        (g,) = lib.autograd.grad(loss, x, create_graph=True)
        (g * g).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)


ERRORS = [
    ("ce_target_out_of_range", lambda lib: lib.nn.functional.cross_entropy(lib.zeros(3, 5), lib.tensor([0, 1, 7]))),
    ("ce_negative_target", lambda lib: lib.nn.functional.cross_entropy(lib.zeros(3, 5), lib.tensor([0, -3, 1]))),
    ("nll_out_of_range", lambda lib: lib.nn.functional.nll_loss(lib.zeros(3, 5), lib.tensor([0, 1, 5]))),
    ("ce_batch_mismatch", lambda lib: lib.nn.functional.cross_entropy(lib.zeros(3, 5), lib.tensor([0, 1, 2, 3]))),
    ("ce_spatial_mismatch", lambda lib: lib.nn.functional.cross_entropy(
        lib.zeros(2, 5, 4), lib.zeros(2, 3, dtype=lib.long))),
    ("ce_float_target", lambda lib: lib.nn.functional.cross_entropy(lib.zeros(3, 5), lib.tensor([0.0, 1, 2]))),
    ("ce_2d_target", lambda lib: lib.nn.functional.cross_entropy(lib.zeros(3, 5), lib.zeros(3, 4, dtype=lib.long))),
    ("ce_bad_reduction", lambda lib: lib.nn.functional.cross_entropy(lib.zeros(3, 5), lib.tensor([0, 1, 2]),
                                                                     reduction="foo")),
    ("ce_bad_weight", lambda lib: lib.nn.functional.cross_entropy(lib.zeros(3, 5), lib.tensor([0, 1, 2]),
                                                                  weight=lib.ones(4))),
    ("ce_bad_smoothing", lambda lib: lib.nn.functional.cross_entropy(lib.zeros(3, 5), lib.tensor([0, 1, 2]),
                                                                     label_smoothing=1.5)),
    ("bce_size", lambda lib: lib.nn.functional.binary_cross_entropy(lib.ones(3) / 2, lib.ones(4))),
    ("bce_range", lambda lib: lib.nn.functional.binary_cross_entropy(lib.ones(3) * 2, lib.ones(3))),
    ("bce_logits_size", lambda lib: lib.nn.functional.binary_cross_entropy_with_logits(lib.ones(3), lib.ones(4))),
    ("kl_bad_reduction", lambda lib: lib.nn.functional.kl_div(lib.ones(3), lib.ones(3), reduction="bad")),
    ("nll_spatial_dims", lambda lib: lib.nn.functional.nll_loss(lib.zeros(2, 3, 4, 5), lib.zeros(2, 4, dtype=lib.long))),
]


@pytest.mark.parametrize("name,fn", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_match_torch(name, fn):
    with pytest.raises(Exception) as theirs:
        fn(torch)
    with pytest.raises(type(theirs.value)) as ours:
        fn(chainrule)
    assert str(ours.value) == str(theirs.value)


MODULES = [
    ("CrossEntropyLoss", dict(label_smoothing=0.1, ignore_index=3), [LOGITS, TARGET]),
    ("CrossEntropyLoss", dict(weight="w", reduction="sum"), [LOGITS, TARGET]),
    ("NLLLoss", dict(weight="w", reduction="none"), [LOGITS, TARGET]),
    ("MSELoss", dict(reduction="sum"), [randn(3, 4), randn(3, 4, seed=1)]),
    ("L1Loss", dict(), [randn(3, 4), randn(3, 4, seed=1)]),
    ("SmoothL1Loss", dict(beta=0.5), [randn(3, 4), randn(3, 4, seed=1)]),
    ("HuberLoss", dict(delta=0.5, reduction="none"), [randn(3, 4), randn(3, 4, seed=1)]),
    ("BCELoss", dict(), [positive(3, 4) / 2.1, positive(3, 4, seed=1) / 2.1]),
    ("BCEWithLogitsLoss", dict(pos_weight="w"), [randn(5, 4), positive(5, 4, seed=1) / 2.1]),
    ("KLDivLoss", dict(reduction="batchmean", log_target=True), [randn(3, 4), randn(3, 4, seed=1)]),
    ("PoissonNLLLoss", dict(log_input=False), [positive(3, 4), positive(3, 4, seed=1)]),
    ("SoftMarginLoss", dict(), [randn(4), np.array([1.0, -1, 1, -1])]),
    ("MSELoss", dict(size_average=False), [randn(3, 4), randn(3, 4, seed=1)]),
]


@pytest.mark.parametrize("name,kw,inputs", MODULES, ids=[m[0] + str(i) for i, m in enumerate(MODULES)])
def test_loss_modules_match_torch(name, kw, inputs):
    outs = []
    for lib in (chainrule, torch):
        args = {k: (_w(lib, WEIGHT) if v == "w" else v) for k, v in kw.items()}
        module = getattr(lib.nn, name)(**args)
        assert repr(module) == f"{name}()"
        x = lib.tensor(inputs[0].astype(np.float32), requires_grad=True)
        t = lib.tensor(inputs[1].astype(np.float32) if inputs[1].dtype.kind == "f" else inputs[1])
        out = module(x, t)
        out.sum().backward()
        outs.append((out.detach().numpy(), x.grad.numpy(), module.reduction,
                     sorted(name for name, _ in module.named_buffers())))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-5, atol=1e-6)
    assert outs[0][2:] == outs[1][2:]


# torch still obeys the deprecated size_average / reduce flags of the functional losses (old scripts'
# ``F.nll_loss(output, target, size_average=False)`` sums a test set's loss); they override reduction
_LEGACY_FLAG_CALLS = {
    "nll size_average=False": lambda F, x, p, t: F.nll_loss(x, t, size_average=False),
    "nll reduce=False": lambda F, x, p, t: F.nll_loss(x, t, reduce=False),
    "nll positional": lambda F, x, p, t: F.nll_loss(x, t, None, False),
    "cross_entropy overrides reduction": lambda F, x, p, t: F.cross_entropy(x, t, size_average=False,
                                                                            reduction="none"),
    "mse positional": lambda F, x, p, t: F.mse_loss(x, p, False),
    "l1 size_average=True reduce=True": lambda F, x, p, t: F.l1_loss(x, p, size_average=True, reduce=True),
    "bce": lambda F, x, p, t: F.binary_cross_entropy(p, p.detach() * 0.5, size_average=False),
    "bce with logits": lambda F, x, p, t: F.binary_cross_entropy_with_logits(x, p.detach(), reduce=False),
    "kl_div": lambda F, x, p, t: F.kl_div(x, p.detach(), size_average=False),
    "smooth_l1": lambda F, x, p, t: F.smooth_l1_loss(x, p, reduce=False, size_average=False),
    "multi_margin": lambda F, x, p, t: F.multi_margin_loss(x, t, size_average=False),
    "multilabel_soft_margin": lambda F, x, p, t: F.multilabel_soft_margin_loss(x, p.detach(), reduce=False),
}


@pytest.mark.parametrize("call", _LEGACY_FLAG_CALLS, ids=list(_LEGACY_FLAG_CALLS))
def test_functional_losses_obey_the_deprecated_flags_and_warn_as_torch(call):
    import warnings

    import chainrule

    logits = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0], [0.1, 0.2, 0.3], [-0.7, 0.9, 0.0]])
    target = np.array([0, 2, 1, 2])
    seen = {}
    for lib in (torch, chainrule):
        x = lib.tensor(logits, requires_grad=True)
        log_p = lib.log_softmax(x, 1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loss = _LEGACY_FLAG_CALLS[call](lib.nn.functional, log_p, log_p.exp(), lib.tensor(target))
        loss.sum().backward()
        seen[lib] = (loss.detach().numpy(), x.grad.numpy(), [str(w.message) for w in caught])
    np.testing.assert_allclose(seen[chainrule][0], seen[torch][0], rtol=1e-10)
    np.testing.assert_allclose(seen[chainrule][1], seen[torch][1], rtol=1e-10, atol=1e-12)
    assert seen[chainrule][2] == seen[torch][2]


def test_a_loss_module_built_with_the_deprecated_flags_warns_as_torch():
    import warnings

    import chainrule

    for lib in (torch, chainrule):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert lib.nn.NLLLoss(size_average=False).reduction == "sum"
        assert [str(w.message) for w in caught] == [
            "size_average and reduce args will be deprecated, please use reduction='sum' instead."]
