"""vmap runs the mapped function once, as torch's vmap does (session 48, mendBF): slice 0's record is
replayed on the whole batch without running the function again on the last slice, so its Python
side effects (a counter, a print, a list it appends to) happen once. A batched value that
chainrule's own code reads as a Python number (an index key's integer, an op's 0-d operand) marks
the vmap, which then runs slice by slice, so the numbers stay each slice's own."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as F
from tests._profile import DIRECTIONAL_GRADCHECK

torch = pytest.importorskip("torch")

from ._vmap_checks import Counting  # noqa: E402

TF = torch.nn.functional


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    return {"w1": rng.standard_normal((24, 12)).astype(np.float32), "b1": rng.standard_normal(24).astype(np.float32),
            "w2": rng.standard_normal((5, 24)).astype(np.float32), "b2": rng.standard_normal(5).astype(np.float32),
            "x": rng.standard_normal((9, 12)).astype(np.float32), "y": rng.integers(0, 5, 9),
            "t": rng.standard_normal((9, 5)).astype(np.float32)}


def _arrays(out):
    leaves = chainrule.utils._pytree.tree_flatten(out)[0] if not hasattr(out, "numpy") else [out]
    return [leaf.detach().numpy() for leaf in leaves]


def _close(ours, theirs, rtol=1e-5, atol=1e-6):
    ours, theirs = _arrays(ours), _arrays(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _mlp_loss(lib, F, loss: str, **options):
    def compute_loss(params, x, y):
        h = F.relu(F.linear(x.unsqueeze(0), params["w1"], params["b1"]))
        out = F.linear(h, params["w2"], params["b2"])
        if loss == "mse":
            return F.mse_loss(out, y.unsqueeze(0), **options)
        return getattr(F, loss)(out if loss == "cross_entropy" else F.log_softmax(out, dim=1), y.unsqueeze(0),
                                **options)

    return compute_loss


@pytest.mark.parametrize("case", ["elementwise", "linear", "index", "per-sample grads"])
def test_the_mapped_function_runs_once_as_torchs(case):
    p = _data()
    calls = {}

    def build(lib, F):
        w, b, x = lib.tensor(p["w1"]), lib.tensor(p["b1"]), lib.tensor(p["x"])
        if case == "per-sample grads":
            params = {k: lib.tensor(p[k]) for k in ("w1", "b1", "w2", "b2")}
            counted = Counting(_mlp_loss(lib, F, "cross_entropy"))
            out = lib.func.vmap(lib.func.grad(counted), in_dims=(None, 0, 0))(params, x, lib.tensor(p["y"]))
        else:
            counted = Counting({"elementwise": lambda x: (x.sin() * x.exp() - x / 3).sigmoid(),
                                 "linear": lambda x: F.linear(x, w, b).tanh(),
                                 "index": lambda x: x[2:7] * x[0]}[case])
            out = lib.func.vmap(counted)(x)
        calls[lib.__name__] = counted.calls
        return out

    _close(build(chainrule, F), build(torch, TF), rtol=1e-4, atol=1e-5)
    assert calls == {"chainrule": 1, "torch": 1}


def test_a_side_effect_of_the_mapped_function_happens_once():
    seen = []

    def f(x):
        seen.append(x.shape)
        return x * 2

    chainrule.func.vmap(f)(chainrule.ones(4, 3))
    assert seen == [chainrule.Size([3])]


@pytest.mark.parametrize("case", ["a batched index", "a batched count as index", "a batched clamp bound"])
def test_a_batched_value_read_as_a_number_inside_chainrule_gives_each_slice_its_own(case):
    """The replay would use slice 0's number for every slice (torch's batched index picks each
    slice's own): vmap runs these slice by slice."""
    # (slice 0's and the last slice's maxima at the same place, the middle ones' elsewhere)
    x = np.random.default_rng(3).uniform(0.1, 1.0, (6, 4)).astype(np.float32)
    x[np.arange(6), [1, 2, 0, 3, 2, 1]] = 2.0
    f = {"a batched index": lambda lib, a: a[a.argmax()],
         "a batched count as index": lambda lib, a: a[(a > 0).long().sum() % 4],
         "a batched clamp bound": lambda lib, a: lib.clamp(a, min=a.mean())}[case]
    ours = chainrule.func.vmap(lambda a: f(chainrule, a))(chainrule.tensor(x))
    theirs = torch.func.vmap(lambda a: f(torch, a))(torch.tensor(x))
    _close(ours, theirs)


# ---------------------------------------------------------------- batching rules of the losses


def _loss_case(lib, loss: str, reduction: str, ignore_index: int, weighted: bool, rank: int):
    """f(x_slice, y_slice) and the batch: slices of logits (C,), (N, C) or (N, C, 3)."""
    rng = np.random.default_rng(rank)
    B, N, C = 5, 4, 6
    x = rng.standard_normal({1: (B, C), 2: (B, N, C), 3: (B, N, C, 3)}[rank])
    y = rng.integers(0, C, {1: (B,), 2: (B, N), 3: (B, N, 3)}[rank])
    y.reshape(-1)[::3] = 2  # (ignored where ignore_index is 2)
    kw = {"reduction": reduction, "ignore_index": ignore_index}
    if weighted:
        kw["weight"] = lib.tensor(rng.uniform(0.5, 2.0, C))
    F = lib.nn.functional

    def f(xi, yi):
        inp = xi if loss == "cross_entropy" else F.log_softmax(xi, dim=1 if xi.dim() > 1 else 0)
        return getattr(F, loss)(inp, yi, **kw)

    return f, x, y


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_nll_and_cross_entropy_batch_by_rules_with_torchs_values(loss, reduction, ignore_index, weighted, rank,
                                                                  per_slice_ops):
    """The loss and its input gradient per slice (vmap of grad) are each slice's own, as torch's
    eager loss gives them (torch's vmap differs from its eager loss by a zero's sign and, for a
    (C,) slice whose one target is ignored, 0 for NaN), and no op runs per slice."""
    f, x, y = _loss_case(chainrule, loss, reduction, ignore_index, weighted, rank)
    theirs_f = _loss_case(torch, loss, reduction, ignore_index, weighted, rank)[0]

    def summed(lib, f):
        return lambda xi, yi: f(xi, yi).sum()

    ours = [chainrule.func.vmap(f)(chainrule.tensor(x), chainrule.tensor(y)),
            chainrule.func.vmap(chainrule.func.grad(summed(chainrule, f)))(chainrule.tensor(x), chainrule.tensor(y))]
    assert per_slice_ops == []
    theirs = [torch.stack([theirs_f(torch.tensor(a), torch.tensor(b)) for a, b in zip(x, y)]),
              torch.stack([torch.func.grad(summed(torch, theirs_f))(torch.tensor(a), torch.tensor(b))
                           for a, b in zip(x, y)])]
    for a, b in zip(_arrays(ours), _arrays(theirs)):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        assert np.array_equal(np.signbit(a), np.signbit(b))  # (an ignored element's +0.0)


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss", "mse_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_the_losses_batched_rules_pass_gradcheck(loss, reduction):
    """float64 finite differences through the replayed forward and the replayed backward (the
    gradient of the per-sample gradients)."""
    rng = np.random.default_rng(7)
    x = chainrule.tensor(rng.standard_normal((4, 3, 5)), requires_grad=True)
    y = chainrule.tensor(rng.integers(0, 5, (4, 3))) if loss != "mse_loss" else chainrule.tensor(
        rng.standard_normal((4, 3, 5)))
    kw = {"reduction": reduction}
    if loss == "cross_entropy":
        kw["weight"] = chainrule.tensor(rng.uniform(0.5, 2.0, 5))

    def f(xi, yi):
        return getattr(F, loss)(xi * xi if loss == "nll_loss" else xi, yi, **kw)

    def g(xi, yi):
        return f(xi, yi).sum()

    assert chainrule.autograd.gradcheck(lambda x: chainrule.func.vmap(f)(x, y), (x,), fast_mode=DIRECTIONAL_GRADCHECK)
    assert chainrule.autograd.gradcheck(lambda x: chainrule.func.vmap(chainrule.func.grad(g))(x, y), (x,), fast_mode=DIRECTIONAL_GRADCHECK)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_per_sample_gradients_batch_by_rules(reduction, per_slice_ops):
    p = _data(2)

    def build(lib, F):
        params = {k: lib.tensor(p[k]) for k in ("w1", "b1", "w2", "b2")}
        counted = Counting(_mlp_loss(lib, F, "mse", reduction=reduction))
        summed = (lambda *a: counted(*a).sum()) if reduction == "none" else counted
        grads = lib.func.vmap(lib.func.grad(summed), in_dims=(None, 0, 0))(params, lib.tensor(p["x"]),
                                                                           lib.tensor(p["t"]))
        assert counted.calls == 1
        return grads

    ours = build(chainrule, F)
    assert per_slice_ops == []
    _close(ours, build(torch, TF), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- conv and max pool

_CONVS = {
    "3x3 pad 1": dict(d=2, conv=dict(padding=1), pool=dict(kernel_size=2)),
    "stride 2 dilation 2 no bias": dict(d=2, conv=dict(stride=2, dilation=2, bias=False), pool=dict(kernel_size=2)),
    "groups 2, pool stride 1 padding 1": dict(d=2, conv=dict(groups=2, padding=(1, 0)),
                                              pool=dict(kernel_size=3, stride=1, padding=1)),
    "pool ceil_mode": dict(d=2, conv=dict(), pool=dict(kernel_size=3, stride=2, ceil_mode=True)),
    "1-d": dict(d=1, conv=dict(padding=2), pool=dict(kernel_size=2)),
    "pool with indices": dict(d=2, conv=dict(padding=1), pool=dict(kernel_size=2, return_indices=True)),
}


def _cnn_loss(lib, case: str, unbatched_slice: bool):
    spec = _CONVS[case]
    d = spec["d"]
    F = lib.nn.functional
    conv, pool = getattr(F, f"conv{d}d"), getattr(F, f"max_pool{d}d")
    conv_options = dict(spec["conv"])
    conv_options.pop("bias", None)

    def loss(params, x, y):
        x = x if unbatched_slice else x.unsqueeze(0)
        h = pool(conv(x, params["w"], params.get("b"), **conv_options).relu(), **spec["pool"])
        h = h[0] if isinstance(h, tuple) else h
        logits = F.linear(h.flatten(0 if unbatched_slice else 1), params["v"])
        return F.cross_entropy(logits, y if unbatched_slice else y.unsqueeze(0))

    return loss


@pytest.mark.parametrize("unbatched_slice", [False, True])
@pytest.mark.parametrize("case", list(_CONVS))
def test_cnn_per_sample_gradients_batch_conv_and_max_pool_by_rules(case, unbatched_slice, per_slice_ops):
    spec = _CONVS[case]
    d = spec["d"]
    rng = np.random.default_rng(11)
    groups = spec["conv"].get("groups", 1)
    spatial = (9,) * d
    x = rng.standard_normal((5, 4) + spatial)
    w = rng.standard_normal((6, 4 // groups) + (3,) * d) * 0.3
    y = rng.integers(0, 3, 5)
    b = rng.standard_normal(6) * 0.1

    def build(lib):
        loss = _cnn_loss(lib, case, unbatched_slice)

        def shape_probe():  # (the linear's width: one slice's features)
            F = lib.nn.functional
            conv, pool = getattr(F, f"conv{d}d"), getattr(F, f"max_pool{d}d")
            options = dict(spec["conv"])
            options.pop("bias", None)
            h = pool(conv(lib.tensor(x[:1]), lib.tensor(w), **options), **spec["pool"])
            return (h[0] if isinstance(h, tuple) else h)[0].numel()

        features = shape_probe()
        params = {"w": lib.tensor(w), "v": lib.tensor(np.random.default_rng(12).standard_normal((3, features)) * 0.1)}
        if spec["conv"].get("bias", True):
            params["b"] = lib.tensor(b)
        counted = Counting(loss)
        out = lib.func.vmap(lib.func.grad(counted), in_dims=(None, 0, 0))(params, lib.tensor(x), lib.tensor(y))
        assert counted.calls == 1
        return out

    ours = build(chainrule)
    assert per_slice_ops == []
    _close(ours, build(torch), rtol=1e-9, atol=1e-11)


def test_the_conv_and_pool_rules_pass_gradcheck():
    """float64 finite differences of the per-sample gradients (the replayed conv, its filter
    gradient by groups, max pool and its scatter) with respect to the batch and the filter."""
    rng = np.random.default_rng(5)
    x = chainrule.tensor(rng.standard_normal((3, 2, 6, 6)), requires_grad=True)
    w = chainrule.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)

    def per_sample(x, w):
        def loss(w, xi):
            return (F.max_pool2d(F.conv2d(xi.unsqueeze(0), w, padding=1), 2) ** 2).sum()

        return chainrule.func.vmap(chainrule.func.grad(loss), in_dims=(None, 0))(w, x)

    assert chainrule.autograd.gradcheck(per_sample, (x, w), fast_mode=DIRECTIONAL_GRADCHECK)


# ---------------------------------------------------------------- vmap of hessian (jacfwd inside vmap)


@pytest.mark.parametrize("transform", ["hessian", "jacfwd(jacfwd)", "jacrev(jacrev)"])
@pytest.mark.parametrize("case", ["sin and cube", "log of summed exp"])
def test_vmap_of_second_derivatives_replays_on_the_batch(transform, case, per_slice_ops):
    """jacfwd's reverse-mode columns inside vmap (its zero cotangents and identity seeds, the
    same for every slice) are replayed on the batch, with expand and sum_to_size by rules."""
    x = np.random.default_rng(4).standard_normal((6, 4))

    def build(lib):
        f = {"sin and cube": lambda v: (v.sin() * v).sum() + (v ** 3).sum(),
             "log of summed exp": lambda v: lib.log(lib.exp(v).sum())}[case]
        counted = Counting(f)
        F = lib.func
        inner = {"hessian": F.hessian, "jacfwd(jacfwd)": lambda g: F.jacfwd(F.jacfwd(g)),
                 "jacrev(jacrev)": lambda g: F.jacrev(F.jacrev(g))}[transform](counted)
        out = F.vmap(inner)(lib.tensor(x))
        calls = counted.calls
        return out, calls

    (ours, our_calls), (theirs, their_calls) = build(chainrule), build(torch)
    assert per_slice_ops == []
    assert our_calls == their_calls
    _close(ours, theirs, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- a user Function's vmap staticmethod


def _cube_function(lib, calls: dict, out_dim):
    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(x):
            return x ** 3

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * g

        @staticmethod
        def vmap(info, in_dims, x):
            calls["vmap"] += 1
            calls["batch_size"] = info.batch_size
            return Cube.apply(x).movedim(in_dims[0], out_dim), out_dim

    return Cube


@pytest.mark.parametrize("out_dim", [0, 1])
def test_a_user_functions_vmap_staticmethod_runs_once_on_the_batch(out_dim):
    """torch's vmap calls the Function's vmap staticmethod once with the batch (and the mapped
    function once); its out_dims say where the batch dim is."""
    x = np.arange(12.0).reshape(4, 3) / 10

    def build(lib):
        calls = {"vmap": 0, "f": 0}
        Cube = _cube_function(lib, calls, out_dim)

        def f(v):
            calls["f"] += 1
            return Cube.apply(v).sin() * 2

        values = lib.func.vmap(f)(lib.tensor(x))
        grads = lib.func.vmap(lib.func.grad(lambda v: f(v).sum()))(lib.tensor(x))
        return (values, grads), calls

    (ours, our_calls), (theirs, their_calls) = build(chainrule), build(torch)
    assert our_calls == their_calls
    _close(ours, theirs, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- randomness


_RANDOM = {
    "rand": lambda lib, a: a + lib.rand(6),
    "randn_like": lambda lib, a: a * lib.randn_like(a),
    "dropout": lambda lib, a: lib.nn.functional.dropout(a, 0.5),
    "in-place uniform_ of a factory's": lambda lib, a: a + lib.empty(6).uniform_(),
}


@pytest.mark.parametrize("randomness", ["same", "different"])
@pytest.mark.parametrize("case", list(_RANDOM))
def test_randomness_modes_draw_as_torchs(case, randomness):
    """'same': every slice sees one draw; 'different': each its own (the numbers are not torch's
    stream, its semantics are); with 'same' a draw by a factory is one constant of the replayed
    record, so the function runs once as torch's; torch's refusal of a 'different' in-place fill of
    an unbatched tensor is raised in its words."""
    def run(lib):
        calls = [0]

        def f(a):
            calls[0] += 1
            return _RANDOM[case](lib, a)

        state = lib.random.get_rng_state()
        try:
            out = lib.func.vmap(f, randomness=randomness)(lib.ones(4, 6)).numpy()
        except RuntimeError as error:
            return ("raises", str(error)), calls[0]
        finally:
            lib.random.set_rng_state(state)
        return ("rows equal" if all(np.array_equal(out[0], row) for row in out) else "rows differ"), calls[0]

    (ours, our_calls), (theirs, their_calls) = run(chainrule), run(torch)
    assert ours == theirs
    if randomness == "same" and case != "dropout":  # (dropout's mask op still runs slice by slice)
        assert our_calls == their_calls == 1


# ---------------------------------------------------------------- embedding and gelu


@pytest.mark.parametrize("case", ["embedding", "gelu", "gelu tanh"])
def test_embedding_and_gelu_per_sample_gradients_batch_by_rules(case, per_slice_ops):
    """embedding's lookup at the batch's indices and its weight gradient per slice (indices offset
    by slice), gelu and its backward (with the Φ(x) its node keeps) replay on the batch."""
    rng = np.random.default_rng(9)
    table, w1, w2 = rng.standard_normal((20, 4)), rng.standard_normal((6, 4)), rng.standard_normal((3, 6))
    tokens, x, y = rng.integers(0, 20, (5, 3)), rng.standard_normal((5, 4)), rng.integers(0, 3, 5)

    def build(lib):
        F = lib.nn.functional
        params = {"table": lib.tensor(table), "w1": lib.tensor(w1), "w2": lib.tensor(w2)}

        def loss(p, xi, ti, yi):
            h = F.embedding(ti, p["table"]).sum(0) + xi if case == "embedding" else xi
            h = F.linear(h.unsqueeze(0), p["w1"])
            h = F.gelu(h, approximate="tanh" if case == "gelu tanh" else "none") if case != "embedding" else h.tanh()
            return F.cross_entropy(F.linear(h, p["w2"]), yi.unsqueeze(0))

        return lib.func.vmap(lib.func.grad(loss), in_dims=(None, 0, 0, 0))(params, lib.tensor(x), lib.tensor(tokens),
                                                                           lib.tensor(y))

    ours = build(chainrule)
    assert per_slice_ops == []
    _close(ours, build(torch), rtol=1e-10, atol=1e-12)
