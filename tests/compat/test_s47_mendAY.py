"""vmap runs the function's ops once on the whole batch (chainrule/_vmap_batched.py): slice 0's ops
are recorded and replayed on the batched values, each by its batching rule (one GEMM for a linear,
as torch's batching rule makes it) or, for an op without one, once per slice. The numbers are the
batched kernels' (the tutorial's vmap(jacrev) equals jacrev of the summed output bit for bit), the
function's Python runs once for the batch (and once more on the last slice, a check), and whatever
the record cannot vouch for runs slice by slice as before."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as F

torch = pytest.importorskip("torch")

from ._vmap_checks import Counting  # noqa: E402

TF = torch.nn.functional


def _params(seed: int = 0):
    rng = np.random.default_rng(seed)
    return {"w1": rng.standard_normal((24, 12)).astype(np.float32), "b1": rng.standard_normal(24).astype(np.float32),
            "w2": rng.standard_normal((5, 24)).astype(np.float32), "b2": rng.standard_normal(5).astype(np.float32),
            "x": rng.standard_normal((9, 12)).astype(np.float32), "y": rng.integers(0, 5, 9)}


def _both(build):
    """build(lib, F) on chainrule and on torch, as numpy arrays (pytrees of tensors flattened)."""
    def arrays(out):
        leaves = chainrule.utils._pytree.tree_flatten(out)[0] if not hasattr(out, "numpy") else [out]
        return [leaf.detach().numpy() for leaf in leaves]

    return arrays(build(chainrule, F)), arrays(build(torch, TF))


def _close(ours, theirs, rtol=1e-5, atol=1e-6):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def test_the_tutorials_batched_jacobian_equals_jacrev_of_the_summed_output_bit_for_bit():
    p = _params()
    weight, bias, x = (chainrule.tensor(p[k]) for k in ("w1", "b1", "x"))

    def predict(weight, bias, x):
        return F.linear(x, weight, bias).tanh()

    batched = chainrule.func.vmap(chainrule.func.jacrev(predict, argnums=2), in_dims=(None, None, 0))(weight, bias, x)
    summed = chainrule.func.jacrev(lambda w, b, x: predict(w, b, x).sum(0), argnums=2)(weight, bias, x).movedim(1, 0)
    assert np.array_equal(batched.numpy(), summed.numpy())
    theirs = torch.func.vmap(torch.func.jacrev(lambda w, b, x: TF.linear(x, w, b).tanh(), argnums=2),
                             in_dims=(None, None, 0))(*(torch.tensor(p[k]) for k in ("w1", "b1", "x")))
    np.testing.assert_allclose(batched.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["linear", "matmul", "softmax", "log_softmax", "elementwise", "reshape", "index"])
def test_a_batched_rule_gives_the_whole_batch_ops_numbers_and_torchs(case):
    """vmap(f)(x) is f's ops on the whole batch, bit for bit (one kernel, as torch's rule runs it),
    and torch's vmap's values; f runs once for the batch and once on the last slice."""
    p = _params()

    def build(lib, F):
        w, b, x = lib.tensor(p["w1"]), lib.tensor(p["b1"]), lib.tensor(p["x"])
        f = {"linear": lambda x: F.linear(x, w, b).tanh(),
             "matmul": lambda x: (x @ w.t()).relu() + 1.5,
             "softmax": lambda x: F.softmax(x * 2, dim=-1),
             "log_softmax": lambda x: F.log_softmax(x.unsqueeze(0), dim=1).squeeze(0),
             "elementwise": lambda x: (x.sin() * x.exp() - x / 3).sigmoid(),
             "reshape": lambda x: x.reshape(3, 4).unsqueeze(0)[0, 1:],
             "index": lambda x: x[2:7] * x[0]}[case]
        counted = Counting(f)
        out = lib.func.vmap(counted)(x)
        if lib is chainrule:
            assert counted.calls <= 2  # (per slice, it would be 9)
            whole = {"linear": lambda: F.linear(x, w, b).tanh(), "matmul": lambda: (x @ w.t()).relu() + 1.5,
                     "softmax": lambda: F.softmax(x * 2, dim=-1),
                     "elementwise": lambda: (x.sin() * x.exp() - x / 3).sigmoid()}.get(case)
            if whole is not None:
                assert np.array_equal(out.numpy(), whole().numpy())
        return out

    _close(*_both(build))


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_per_sample_gradients_are_torchs(loss):
    p = _params(1)

    def build(lib, F):
        params = {k: lib.tensor(p[k]) for k in ("w1", "b1", "w2", "b2")}

        def compute_loss(params, x, y):
            h = F.relu(F.linear(x.unsqueeze(0), params["w1"], params["b1"]))
            out = F.linear(h, params["w2"], params["b2"])
            if loss == "cross_entropy":
                return F.cross_entropy(out, y.unsqueeze(0))
            return ((out - y.float()) ** 2).mean()

        counted = Counting(compute_loss)
        grads = lib.func.vmap(lib.func.grad(counted), in_dims=(None, 0, 0))(params, lib.tensor(p["x"]),
                                                                            lib.tensor(p["y"]))
        if lib is chainrule:
            assert counted.calls <= 2
        return grads

    _close(*_both(build), rtol=1e-4, atol=1e-5)


def test_an_op_without_a_rule_runs_per_slice_with_torchs_values():
    p = _params()

    def build(lib, F):
        w = lib.tensor(p["w1"])
        counted = Counting(lambda x: (x @ w.t()).cumsum(0).flip(0)[:3] * 2)
        out = lib.func.vmap(counted)(lib.tensor(p["x"]))
        if lib is chainrule:
            assert counted.calls <= 2
        return out

    _close(*_both(build))


def test_what_the_record_cannot_replay_runs_slice_by_slice_with_torchs_values():
    """sort's values op takes the order as an array computed outside it: not replayable, so every
    slice runs as before."""
    p = _params()

    def build(lib, F):
        w = lib.tensor(p["w1"])
        return lib.func.vmap(lambda x: (x @ w.t()).sort(descending=True).values[:3] * 2)(lib.tensor(p["x"]))

    _close(*_both(build))


@pytest.mark.parametrize("shapes", [((7,), (7, 4)), ((3, 7), (7, 4)), ((7,), (7,)), ((3, 7), (7,)),
                                    ((2, 3, 7), (7, 4)), ((7,), (2, 7, 4))])
@pytest.mark.parametrize("mapped", ["a", "b", "both"])
def test_matmul_under_vmap_is_torchs_for_every_rank_pairing(shapes, mapped):
    rng = np.random.default_rng(3)
    a_shape, b_shape = shapes
    a = rng.standard_normal(((5,) if mapped in ("a", "both") else ()) + a_shape).astype(np.float32)
    b = rng.standard_normal(((5,) if mapped in ("b", "both") else ()) + b_shape).astype(np.float32)
    in_dims = (0 if mapped in ("a", "both") else None, 0 if mapped in ("b", "both") else None)

    def build(lib, F):
        counted = Counting(lambda x, y: x @ y)
        out = lib.func.vmap(counted, in_dims=in_dims)(lib.tensor(a), lib.tensor(b))
        if lib is chainrule:
            assert counted.calls <= 2
        return out

    _close(*_both(build))


def test_nested_vmap_and_in_dims_out_dims_are_torchs():
    p = _params()

    def build(lib, F):
        x = lib.tensor(p["x"]).reshape(3, 3, 12)
        w = lib.tensor(p["w1"])
        inner = lib.func.vmap(lambda row, w: (F.linear(row, w).tanh(), row.sum()), in_dims=(0, None))
        outer = lib.func.vmap(inner, in_dims=(1, None), out_dims=(1, 0))
        swapped = lib.func.vmap(lambda a, b: a * b.unsqueeze(-1), in_dims=(1, 0), out_dims=2)(
            x.transpose(0, 1), lib.tensor(p["x"])[:3, :3])
        return outer(x, w), swapped

    _close(*_both(build))


def test_outputs_mapped_or_not_a_constant_output_and_a_tuple_are_torchs():
    p = _params()

    def build(lib, F):
        x = lib.tensor(p["x"])
        c = lib.ones(4)
        return lib.func.vmap(lambda x: (x.sum(), c * 2, x.mean(0)), out_dims=(0, None, 0))(x), \
            lib.func.vmap(lambda x: c + 1)(x)

    _close(*_both(build))


@pytest.mark.parametrize("randomness", ["different", "same"])
def test_randomness_modes_keep_their_meaning(randomness):
    x = chainrule.ones(6, 3)
    chainrule.manual_seed(0)
    out = chainrule.func.vmap(lambda t: t * chainrule.rand(3), randomness=randomness)(x)
    rows_equal = all(np.array_equal(out[0].numpy(), out[i].numpy()) for i in range(6))
    assert rows_equal is (randomness == "same")


def test_a_random_op_under_randomness_error_is_refused_as_torch():
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match="randomness error mode"):
            lib.func.vmap(lambda t, lib=lib: t * lib.rand(3))(lib.ones(4, 3))


def test_an_in_place_write_into_a_captured_tensor_is_refused_as_torch():
    def run(lib):
        y = lib.zeros(3)
        lib.func.vmap(lambda t: y.add_(t))(lib.ones(4, 3))

    with pytest.raises(RuntimeError) as ours:
        run(chainrule)
    with pytest.raises(RuntimeError) as theirs:
        run(torch)
    assert str(ours.value) == str(theirs.value)


def test_an_in_place_write_inside_falls_back_to_the_slices_with_torchs_values():
    p = _params()

    def build(lib, F):
        def f(x):
            y = x * 2
            y.add_(1)
            return y.tanh()

        return lib.func.vmap(f)(lib.tensor(p["x"]))

    _close(*_both(build))


def test_vmap_over_grad_keeps_the_graph_to_a_closed_over_parameter():
    """A gradient penalty through vmap(grad): the replayed backward is recorded, and an outer
    backward reaches the weight, as torch's does."""
    p = _params()

    def build(lib, F):
        w = lib.tensor(p["w1"]).requires_grad_()
        per_sample = lib.func.vmap(lib.func.grad(lambda x: F.linear(x, w).tanh().sum()))(lib.tensor(p["x"]))
        (per_sample ** 2).sum().backward()
        return per_sample, w.grad

    _close(*_both(build), rtol=1e-4, atol=1e-5)
