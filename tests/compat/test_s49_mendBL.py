"""vmap replays on the batch what session 48 left running slice by slice (session 49, mendBL): layer
norm's forward and backward (per-sample gradients of a transformer block), with the mapped function
called once as torch's vmap calls it and each op run once on the batch, values torch's."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as F
from tests._profile import DIRECTIONAL_GRADCHECK

torch = pytest.importorskip("torch")

from ._vmap_checks import Counting  # noqa: E402

TF = torch.nn.functional


def _arrays(out):
    leaves = chainrule.utils._pytree.tree_flatten(out)[0] if not hasattr(out, "numpy") else [out]
    return [leaf.detach().numpy() for leaf in leaves]


def _close(ours, theirs, rtol=1e-5, atol=1e-6):
    ours, theirs = _arrays(ours), _arrays(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ---------------------------------------------------------------- layer norm


def _block(lib, D: int = 16, heads: int = 2):
    """A pre-norm transformer block (LayerNorm, self-attention, LayerNorm, GELU MLP) of one (T, D) sequence."""
    nn = lib.nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
            self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
            self.fc1, self.fc2 = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

        def forward(self, x):
            T = x.shape[-2]
            q, k, v = (t.reshape(T, heads, D // heads).transpose(0, 1) for t in self.qkv(self.ln1(x)).split(D, dim=-1))
            a = (q @ k.transpose(-2, -1) / (D // heads) ** 0.5).softmax(-1) @ v
            x = x + self.proj(a.transpose(0, 1).reshape(T, D))
            return x + self.fc2(lib.nn.functional.gelu(self.fc1(self.ln2(x))))

    block = Block()
    rng = np.random.default_rng(0)
    with lib.no_grad():
        for p in block.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32) * 0.3))
    return block


def _per_sample_grads(lib, module, xs, ys):
    params = {k: v.detach() for k, v in module.named_parameters()}
    counted = Counting(lambda p, x, y: ((lib.func.functional_call(module, p, (x,)) - y) ** 2).mean())
    out = lib.func.vmap(lib.func.grad(counted), in_dims=(None, 0, 0))(params, xs, ys)
    return out, counted.calls


def test_transformer_block_per_sample_grads_replay_layer_norm_on_the_batch(per_slice_ops):
    rng = np.random.default_rng(1)
    xs, ys = (rng.standard_normal((6, 5, 16)).astype(np.float32) for _ in range(2))
    ours, our_calls = _per_sample_grads(chainrule, _block(chainrule), chainrule.tensor(xs), chainrule.tensor(ys))
    theirs, their_calls = _per_sample_grads(torch, _block(torch), torch.tensor(xs), torch.tensor(ys))
    assert our_calls == their_calls == 1
    assert per_slice_ops == []  # (layer norm, split, transpose, bmm, clone and cat by rules)
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        _close(ours[name], theirs[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape,normalized", [((4, 3, 8), (8,)), ((4, 2, 3, 5), (3, 5)), ((4, 6), (6,))])
def test_layer_norm_mlp_per_sample_grads_run_no_op_per_slice(shape, normalized, per_slice_ops):
    rng = np.random.default_rng(2)
    arrays = {"w1": rng.standard_normal((7, shape[-1])), "b1": rng.standard_normal(7),
              "g": rng.standard_normal(normalized), "beta": rng.standard_normal(normalized)}
    x, y = rng.standard_normal(shape), rng.standard_normal(shape[:-1] + (7,))

    def build(lib, F):
        params = {k: lib.tensor(v.astype(np.float32)) for k, v in arrays.items()}

        def loss(p, x, y):
            return (F.linear(F.layer_norm(x, normalized, p["g"], p["beta"]), p["w1"], p["b1"]) - y).square().sum()

        counted = Counting(loss)
        out = lib.func.vmap(lib.func.grad(counted), in_dims=(None, 0, 0))(
            params, lib.tensor(x.astype(np.float32)), lib.tensor(y.astype(np.float32)))
        return out, counted.calls

    (ours, our_calls), (theirs, their_calls) = build(chainrule, F), build(torch, TF)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    for name in theirs:
        _close(ours[name], theirs[name], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("affine", ["weight and bias", "batched weight", "none"])
def test_vmap_of_layer_norm_differentiates_through_the_batch(affine):
    """The replay's result is differentiated outside the vmap: its gradient is torch's."""
    rng = np.random.default_rng(3)
    x, w, b, g = (rng.standard_normal(s).astype(np.float32) for s in ((5, 3, 6), (6,), (6,), (5, 3, 6)))
    if affine == "batched weight":
        w = rng.standard_normal((5, 6)).astype(np.float32)

    def build(lib, F):
        leaves = [lib.tensor(a, requires_grad=True) for a in (x, w, b)]
        xt, wt, bt = leaves
        if affine == "weight and bias":
            out = lib.func.vmap(lambda r: F.layer_norm(r, (6,), wt, bt).tanh())(xt)
        elif affine == "batched weight":
            out = lib.func.vmap(lambda r, v: F.layer_norm(r, (6,), v, bt).tanh())(xt, wt)
        else:
            out = lib.func.vmap(lambda r: F.layer_norm(r, (6,)).tanh())(xt)
        (out * lib.tensor(g)).sum().backward()
        return [out] + [t.grad for t in leaves if t.grad is not None]

    _close(build(chainrule, F), build(torch, TF), rtol=1e-4, atol=1e-5)


def test_vmap_of_per_sample_grads_through_layer_norm_passes_gradcheck():
    """float64 finite differences of vmap(grad) through layer norm's batched rules, with respect to
    the input, the normalised weights and the layer before the norm (whose gradient the backward's
    x-dependence carries)."""
    rng = np.random.default_rng(4)
    xs = chainrule.tensor(rng.standard_normal((3, 2, 4)), requires_grad=True)
    w1, g, beta = (chainrule.tensor(rng.standard_normal(s), requires_grad=True) for s in ((4, 4), (4,), (4,)))

    def loss(p, x):
        return (F.layer_norm(F.linear(x, p["w1"]), (4,), p["g"], p["beta"]) ** 3).sum()

    def f(xs, w1, g, beta):
        out = chainrule.func.vmap(chainrule.func.grad(loss), in_dims=(None, 0))({"w1": w1, "g": g, "beta": beta}, xs)
        return out["w1"], out["g"], out["beta"]

    # along random directions in CI (29 s element by element on the loaded CI machine), every element in the long profile
    assert chainrule.autograd.gradcheck(f, (xs, w1, g, beta), fast_mode=DIRECTIONAL_GRADCHECK)


def test_vmap_of_hessian_through_layer_norm_is_torchs():
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((4, 5), (5,), (5,)))

    def build(lib, F):
        wt, bt = lib.tensor(w), lib.tensor(b)
        counted = Counting(lambda r: F.layer_norm(r, (5,), wt, bt).sin().sum())
        return lib.func.vmap(lib.func.hessian(counted))(lib.tensor(x)), counted.calls

    (ours, our_calls), (theirs, their_calls) = build(chainrule, F), build(torch, TF)
    assert our_calls == their_calls
    _close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", ["transpose", "split", "chunk sizes", "cat", "clone", "bmm", "attention"])
def test_attention_shape_ops_replay_on_the_batch(case, per_slice_ops):
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((4, 3, 6)).astype(np.float32), rng.standard_normal((3, 6)).astype(np.float32)
    f = {"transpose": lambda lib, a, b: a.transpose(-1, 0) * 2,
         "split": lambda lib, a, b: [p.sum(0) for p in a.split(2, dim=-1)],
         "chunk sizes": lambda lib, a, b: [p.exp() for p in a.split([1, 5], dim=1)],
         "cat": lambda lib, a, b: lib.cat([a, b, a * 2], dim=1),
         "clone": lambda lib, a, b: a.transpose(0, 1).clone().reshape(-1),
         "bmm": lambda lib, a, b: lib.bmm(a.reshape(3, 2, 3), b.reshape(3, 3, 2)),
         "attention": lambda lib, a, b: (a @ b.transpose(0, 1)).softmax(-1) @ a}[case]

    def build(lib):
        xt, yt = lib.tensor(x, requires_grad=True), lib.tensor(y, requires_grad=True)
        counted = Counting(lambda a: f(lib, a, yt))
        out = lib.func.vmap(counted)(xt)
        total = sum((o * o).sum() for o in (out if isinstance(out, (list, tuple)) else [out]))
        total.backward()
        return [out, xt.grad] + [g for g in (yt.grad,) if g is not None], counted.calls

    (ours, our_calls), (theirs, their_calls) = build(chainrule), build(torch)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    _close(ours, theirs, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- what a transform's function closes over


@pytest.mark.parametrize("transform", ["hessian", "jacrev of jacrev", "jacfwd of grad"])
def test_vmap_of_second_derivatives_over_closed_over_dict_of_weights_replays(transform, per_slice_ops):
    """vmap(hessian(f)) where f reads its weights from a dict it closes over: the weights are
    known unbatched (found through the transforms' wrappers), so the record replays, f runs once."""
    rng = np.random.default_rng(6)
    arrays = {"a": rng.standard_normal((6, 6)), "b": rng.standard_normal(6)}
    x = rng.standard_normal((5, 6)).astype(np.float32)

    def build(lib):
        weights = {k: lib.tensor(v.astype(np.float32)) for k, v in arrays.items()}
        counted = Counting(lambda r: (lib.tanh(weights["a"] @ r + weights["b"]) ** 2).sum())
        second = {"hessian": lambda f: lib.func.hessian(f),
                  "jacrev of jacrev": lambda f: lib.func.jacrev(lib.func.jacrev(f)),
                  "jacfwd of grad": lambda f: lib.func.jacfwd(lib.func.grad(f))}[transform]
        return lib.func.vmap(second(counted))(lib.tensor(x)), counted.calls

    (ours, our_calls), (theirs, their_calls) = build(chainrule), build(torch)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    _close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_closed_over_finds_the_users_tensors_through_nested_transforms():
    from chainrule._vmap_frames import closed_over

    weights = {"a": chainrule.ones(3)}
    f = chainrule.func.hessian(chainrule.func.hessian(lambda r: (r * weights["a"]).sum()))
    assert [t for t in closed_over(f, modules=True)] == [weights["a"]]


# ---------------------------------------------------------------- dropout under randomness="same" / "different"


def _dropout_cases(lib):
    F = lib.nn.functional
    return {"dropout": lambda x: F.dropout(x * 2, 0.5),
            "two dropouts": lambda x: F.dropout(F.dropout(x, 0.3).sin() * 3, 0.6),
            "module": lambda x: lib.nn.Dropout(0.4)(x.tanh()),
            "feature dropout": lambda x: F.dropout1d(x.reshape(3, 4), 0.5),
            "grad through dropout": lambda x: lib.func.grad(lambda y: (F.dropout(y, 0.5) ** 2).sum())(x)}


@pytest.mark.parametrize("randomness", ["different", "same"])
@pytest.mark.parametrize("case", list(_dropout_cases(torch)))
def test_dropout_under_vmap_draws_as_torch_and_runs_f_once(randomness, case, per_slice_ops):
    """torch's vmap draws one mask for the batched tensor ("different": each sample its own row;
    "same": one mask shared): the same numbers, the generator left where torch's is, f run once."""
    x = np.random.default_rng(8).standard_normal((5, 12)).astype(np.float32)

    def build(lib):
        counted = Counting(_dropout_cases(lib)[case])
        lib.manual_seed(3)
        out = lib.func.vmap(counted, randomness=randomness)(lib.tensor(x))
        return [out, lib.rand(4)], counted.calls

    (ours, our_calls), (theirs, their_calls) = build(chainrule), build(torch)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    _close(ours, theirs)


@pytest.mark.parametrize("randomness", ["different", "same"])
def test_dropout_slice_by_slice_takes_its_row_of_the_batch_draw(randomness):
    """A function the replay cannot stand for (a batched value read as a number) runs slice by slice:
    each slice's mask is still its row of the batch's draw, torch's numbers."""
    x = np.random.default_rng(9).uniform(0.5, 1.5, (4, 6)).astype(np.float32)

    def build(lib):
        lib.manual_seed(4)
        out = lib.func.vmap(lambda a: lib.nn.functional.dropout(a, 0.5)[:2] * a[a.argmax()], randomness=randomness)(
            lib.tensor(x))
        return [out, lib.rand(4)]

    _close(build(chainrule), build(torch))


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_dropout_in_randomness_error_mode_raises_torchs_error(lib):
    with pytest.raises(RuntimeError, match="^vmap: called random operation while in randomness error mode"):
        lib.func.vmap(lambda a: lib.nn.functional.dropout(a, 0.5))(lib.ones(3, 4))


# ---------------------------------------------------------------- batch norm in eval mode


def _bn_model(lib, affine: bool = True):
    lib.manual_seed(0)
    model = lib.nn.Sequential(lib.nn.Conv2d(2, 3, 3, padding=1), lib.nn.BatchNorm2d(3, affine=affine), lib.nn.ReLU(),
                              lib.nn.Flatten(), lib.nn.Linear(3 * 4 * 4, 5))
    rng = np.random.default_rng(10)
    with lib.no_grad():
        for p in list(model.parameters()) + [model[1].running_mean, model[1].running_var]:
            p.copy_(lib.tensor(rng.uniform(0.5, 1.5, tuple(p.shape)).astype(np.float32)))
    return model.eval()


@pytest.mark.parametrize("affine", [True, False])
def test_eval_batch_norm_per_sample_grads_replay_on_the_batch(affine, per_slice_ops):
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((4, 2, 4, 4)).astype(np.float32), rng.integers(0, 5, 4)

    def build(lib):
        model = _bn_model(lib, affine)
        params = {k: v.detach() for k, v in model.named_parameters()}
        buffers = dict(model.named_buffers())
        counted = Counting(lambda p, b, x, y: lib.nn.functional.cross_entropy(
            lib.func.functional_call(model, (p, b), (x.unsqueeze(0),)), y.unsqueeze(0)))
        out = lib.func.vmap(lib.func.grad(counted), in_dims=(None, None, 0, 0))(params, buffers, lib.tensor(x),
                                                                               lib.tensor(y))
        return out, counted.calls

    (ours, our_calls), (theirs, their_calls) = build(chainrule), build(torch)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    for name in theirs:
        _close(ours[name], theirs[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["closed-over module", "batched running statistics"])
def test_eval_batch_norm_under_vmap_is_torchs(case, per_slice_ops):
    """Running statistics closed over are the same for every slice (one replay); batched ones (an
    ensemble's) are each slice's own (run per slice): torch's numbers either way."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)
    mean, var = rng.standard_normal((3, 6)).astype(np.float32), rng.uniform(0.5, 2, (3, 6)).astype(np.float32)

    def build(lib):
        lib.manual_seed(1)
        bn = lib.nn.BatchNorm1d(6).eval()
        with lib.no_grad():
            bn.running_mean.copy_(lib.tensor(mean[0]))
            bn.running_var.copy_(lib.tensor(var[0]))
        if case == "closed-over module":
            counted = Counting(lambda a: bn(a).tanh())
            return lib.func.vmap(counted)(lib.tensor(x)), counted.calls
        counted = Counting(lambda a, m, v: lib.nn.functional.batch_norm(a, m, v, bn.weight, bn.bias).tanh())
        return lib.func.vmap(counted)(lib.tensor(x), lib.tensor(mean), lib.tensor(var)), counted.calls

    (ours, our_calls), (theirs, _) = build(chainrule), build(torch)
    _close(ours, theirs, rtol=1e-5, atol=1e-6)
    if case == "closed-over module":
        assert our_calls == 1 and per_slice_ops == []


# ---------------------------------------------------------------- results no Function made, read as numbers


_INTEGER_OPS = {"bitwise_not": lambda lib, x: ~x, "left shift": lambda lib, x: x << 1,
                "right shift": lambda lib, x: x >> 1, "floor_divide": lambda lib, x: x // 2,
                "remainder": lambda lib, x: x % 3, "fmod": lambda lib, x: lib.fmod(x, 3),
                "trunc div": lambda lib, x: lib.div(x, 2, rounding_mode="trunc"),
                "signbit": lambda lib, x: lib.signbit(x.float() - 1), "gcd": lambda lib, x: lib.gcd(x, lib.tensor(6)),
                "lcm": lambda lib, x: lib.lcm(x, lib.tensor(4))}


@pytest.mark.parametrize("op", list(_INTEGER_OPS))
def test_a_batched_integer_result_read_as_a_number_is_refused_as_torch(op):
    """These ops' results are made by NumPy directly (no Function): inside vmap they are batched
    where an operand is, so int() of one raises torch's .item() error, and their values are torch's."""
    def run(lib):
        with pytest.raises(RuntimeError) as caught:
            lib.func.vmap(lambda x: lib.tensor(int(_INTEGER_OPS[op](lib, x))))(lib.arange(1, 5))
        out = lib.func.vmap(lambda x: _INTEGER_OPS[op](lib, x) * 2)(lib.arange(1, 5))
        return str(caught.value), out.tolist(), str(out.dtype).split(".")[-1]

    assert run(chainrule) == run(torch)
