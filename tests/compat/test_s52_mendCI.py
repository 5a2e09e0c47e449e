"""torch.einsum of several operands with grad recorded and nothing watching (the common training case):
torch's pairwise steps run on the arrays and are recorded as one node (EinsumSteps), whose rule runs
each step's rule in reverse. Values and gradients are those of the steps recorded one by one (what a
dispatch mode, forward AD or vmap still get) bit for bit, strides torch's; the node is named as torch's last
one; create_graph, batched gradients and a second backward go through the recorded steps."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.autograd import gradcheck, gradgradcheck
from chainrule.ops import linalg

torch = pytest.importorskip("torch")

# (equation, shapes): matmul-like, batched, attention, outer, dot, sums of labels one operand holds,
# broadcasting ellipsis and size-1 dims, three and four operands, repeated labels, a 0-d operand
CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bij,bjk->bik", [(8, 32, 32), (8, 32, 32)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("bqhd,bkhd->bhqk", [(2, 3, 2, 4), (2, 5, 2, 4)]),
    ("ij,j->i", [(3, 4), (4,)]),
    ("ij,j->i", [(64, 64), (64,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(5,), (5,)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("ji,jk->ik", [(4, 3), (4, 5)]),
    ("ij,jk->", [(3, 4), (4, 5)]),
    ("ij,jk->ki", [(3, 4), (4, 5)]),
    ("ij,k->i", [(3, 4), (5,)]),
    ("ijk,ik->j", [(3, 4, 5), (3, 5)]),
    ("...ij,...jk", [(2, 3, 4), (4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 4, 5), (3, 5, 6)]),
    ("...,...->...", [(2, 3), (3,)]),
    ("bij,jk->bik", [(1, 3, 4), (4, 1)]),
    ("bid,bjd->bij", [(2, 3, 4), (2, 1, 4)]),
    ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 2)]),
    ("nchw,kc->nkhw", [(2, 3, 4, 5), (6, 3)]),
    ("iij,jk->ik", [(3, 3, 4), (4, 5)]),
    ("ii,ij->j", [(4, 4), (4, 5)]),
    ("ab,cd->abcd", [(2, 3), (4, 5)]),
    ("i,->i", [(3,), ()]),
]
IDS = [f"{equation}-{shapes}" for equation, shapes in CASES]


def _arrays(shapes, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def _needs(count, which):
    """Every operand requires grad (which None), or only operand ``which``."""
    return [which is None or k == which for k in range(count)]


def _run(lib, equation, arrays, dtype, needs, recorded=False):
    tensors = [lib.tensor(a, dtype=dtype, requires_grad=need) for a, need in zip(arrays, needs)]
    if recorded:  # the steps recorded one by one, as a dispatch mode or forward AD gets them
        subs, output = linalg._parse_einsum(equation, [t._data.shape for t in tensors])
        out = linalg._pairwise_einsum(subs, output, tensors, linalg._ON_TENSORS)
    else:
        out = lib.einsum(equation, *tensors)
    seed = np.random.default_rng(1).standard_normal(tuple(out.shape))
    out.backward(lib.tensor(seed, dtype=dtype))
    return out, [t.grad for t in tensors]


def _fused(out) -> bool:
    return out.grad_fn._forward_cls in (linalg.EinsumSteps, linalg.EinsumProductSteps)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", [None, 0, 1])
@pytest.mark.parametrize("equation,shapes", CASES, ids=IDS)
@pytest.mark.pairwise_in_ci(seed=61)
def test_one_node_gives_the_recorded_steps_values_gradients_and_strides(equation, shapes, which, dtype):
    if which is not None and which >= len(shapes):
        pytest.skip("no such operand")
    arrays = _arrays(shapes, seed=len(equation) + (which or 0))
    needs = _needs(len(shapes), which)
    dt = getattr(chainrule, dtype)
    fused, fused_grads = _run(chainrule, equation, arrays, dt, needs)
    recorded, recorded_grads = _run(chainrule, equation, arrays, dt, needs, recorded=True)
    assert _fused(fused)
    assert not _fused(recorded)
    assert np.array_equal(fused.detach().numpy(), recorded.detach().numpy())
    assert fused.stride() == recorded.stride() and fused.grad_fn.name() == recorded.grad_fn.name()
    torch_grads = _run(torch, equation, arrays, getattr(torch, dtype), needs)[1]
    for g, h, t in zip(fused_grads, recorded_grads, torch_grads):
        assert (g is None) == (h is None)
        if g is not None:
            # (strides as torch's: on a size-1 dim the recorded steps' may differ, as s60's mendEC found)
            assert g.dtype == h.dtype and g.stride() == t.stride()
            assert np.array_equal(g.numpy(), h.numpy())  # bit for bit


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("equation,shapes", CASES, ids=IDS)
def test_gradients_and_node_name_are_torchs(equation, shapes, dtype):
    arrays = _arrays(shapes, seed=3)
    needs = _needs(len(shapes), None)
    ours, our_grads = _run(chainrule, equation, arrays, getattr(chainrule, dtype), needs)
    theirs, their_grads = _run(torch, equation, arrays, getattr(torch, dtype), needs)
    assert ours.grad_fn.name() == theirs.grad_fn.name()  # ViewBackward0 (a contraction) or MulBackward0
    assert ours.stride() == theirs.stride()
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    for g, h in zip(our_grads, their_grads):
        np.testing.assert_allclose(g.numpy(), h.numpy(), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("equation,shapes", [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ij,j->i", [(3, 4), (4,)]), ("i,j->ij", [(3,), (4,)]),
    ("iij,jk->ik", [(3, 3, 4), (4, 5)]), ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]), ("ij,k->i", [(3, 4), (5,)]),
    ("...ij,...jk->...ik", [(2, 1, 4, 5), (3, 5, 6)]),
])
def test_gradcheck_and_gradgradcheck_float64(equation, shapes):
    tensors = [chainrule.tensor(a, requires_grad=True) for a in _arrays(shapes, seed=5)]
    assert _fused(chainrule.einsum(equation, *tensors))
    assert gradcheck(lambda *t: chainrule.einsum(equation, *t), tensors)
    assert gradgradcheck(lambda *t: chainrule.einsum(equation, *t), tensors)


def test_double_backward_is_recorded_and_matches_torch():
    arrays = _arrays([(3, 4), (4, 5)], seed=6)
    results = []
    for lib in (chainrule, torch):
        x, y = (lib.tensor(a, requires_grad=True) for a in arrays)
        (gx,) = lib.autograd.grad((lib.einsum("ij,jk->ik", x, y) ** 2).sum(), x, create_graph=True)
        assert gx.grad_fn is not None
        (gx ** 2).sum().backward()
        results.append([gx.detach().numpy().copy(), x.grad.numpy().copy(), y.grad.numpy().copy()])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_a_tensor_passed_twice_gets_its_gradient_once_from_each_slot():
    a = _arrays([(5,)], seed=7)[0]
    grads = []
    for lib in (chainrule, torch):
        x = lib.tensor(a, requires_grad=True)
        lib.einsum("i,i->", x, x).backward()
        (gx,) = lib.autograd.grad(lib.einsum("i,i->", x, x), x, create_graph=True)
        grads.append((x.grad.numpy().copy(), gx.detach().numpy().copy()))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])


def test_batched_jacobian_and_hessian_match_torch():
    arrays = _arrays([(3, 4), (4, 5)], seed=8)
    results = []
    for lib in (chainrule, torch):
        x, y = (lib.tensor(a) for a in arrays)
        jacobians = lib.autograd.functional.jacobian(lambda p, q, lib=lib: lib.einsum("ij,jk->ik", p, q), (x, y),
                                                     vectorize=True)
        hessian = lib.autograd.functional.hessian(lambda p, lib=lib, y=y: (lib.einsum("ij,jk->ik", p, y) ** 3).sum(),
                                                  x)
        results.append([j.numpy() for j in jacobians] + [hessian.numpy()])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_second_backward_and_modified_operand_raise_as_torch():
    arrays = _arrays([(3, 4), (4, 5)], seed=9)
    for lib in (chainrule, torch):
        x, y = (lib.tensor(a, requires_grad=True) for a in arrays)
        out = lib.einsum("ij,jk->ik", x, y).sum()
        out.backward(retain_graph=True)
        out.backward()
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            out.backward()
        z = x * 1
        out = lib.einsum("ij,jk->ik", z, y).sum()
        with lib.no_grad():
            z.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.backward()


def test_explain_names_the_einsum_node_and_its_rule():
    x = chainrule.tensor(_arrays([(2, 3)], seed=10)[0], requires_grad=True)
    y = chainrule.tensor(_arrays([(3, 4)], seed=11)[0], requires_grad=True)
    x.name, y.name = "x", "y"
    trace = chainrule.autograd.explain(chainrule.einsum("ij,jk->ik", x, y).sum(), print_trace=False)
    step = next(s for s in trace if s.node_name == "ViewBackward0")
    assert step.rule.startswith("einsum: torch's pairwise steps")
    np.testing.assert_allclose(trace.grads["x"].numpy(), np.broadcast_to(y.detach().numpy().sum(1), (2, 3)))


def test_watched_or_unusual_operands_keep_the_recorded_steps():
    x = chainrule.randn(3, 4, requires_grad=True)
    y = chainrule.randn(4, 5, requires_grad=True)
    with chainrule.autograd.forward_ad.dual_level():  # a forward-AD level: each step's tangent rule
        assert not _fused(chainrule.einsum("ij,jk->ik", x, y))
    assert not _fused(chainrule.einsum("ij,jk->ik", x.to(chainrule.float16), y.to(chainrule.float16)))
    assert not _fused(chainrule.einsum("ij,jk->ik", chainrule.zeros(0, 4, requires_grad=True), y))
    assert _fused(chainrule.einsum("ij,jk->ik", x, y))


@pytest.mark.parametrize("equation,shapes,which", [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], None), ("ij,j->i", [(3, 4), (4,)], None),
    ("i,j->ij", [(3,), (4,)], None), ("i,j->ij", [(3,), (4,)], 0), ("ab,cd->abcd", [(2, 3), (4, 5)], 1),
])
def test_saved_attributes_are_torchs_last_nodes(equation, shapes, which):
    arrays = _arrays(shapes, seed=12)
    needs = _needs(len(shapes), which)
    nodes = []
    for lib in (chainrule, torch):
        tensors = [lib.tensor(a, requires_grad=need) for a, need in zip(arrays, needs)]
        nodes.append(lib.einsum(equation, *tensors).grad_fn)
    ours, theirs = nodes
    assert ours._forward_cls in (linalg.EinsumSteps, linalg.EinsumProductSteps)
    if theirs.name() == "ViewBackward0":
        assert tuple(ours._saved_self_sym_sizes) == tuple(theirs._saved_self_sym_sizes)
        return
    for name in ("_saved_self", "_saved_other"):
        mine, torchs = getattr(ours, name), getattr(theirs, name)
        assert (mine is None) == (torchs is None)
        if mine is not None:
            assert tuple(mine.shape) == tuple(torchs.shape)
            np.testing.assert_array_equal(mine.detach().numpy(), torchs.detach().numpy())


def test_parameters_take_the_one_node_with_and_without_grad():
    weight = chainrule.nn.Parameter(chainrule.tensor(_arrays([(4, 5)], seed=13)[0]))
    x = chainrule.tensor(_arrays([(2, 3, 4)], seed=14)[0])
    out = chainrule.einsum("bij,jk->bik", x, weight)
    assert _fused(out) and type(out) is chainrule.Tensor
    recorded = linalg._pairwise_einsum(*linalg._parse_einsum("bij,jk->bik", [(2, 3, 4), (4, 5)]), [x, weight],
                                       linalg._ON_TENSORS)
    out.sum().backward()
    (expected,) = chainrule.autograd.grad(recorded.sum(), weight)
    assert np.array_equal(weight.grad.numpy(), expected.numpy())
    with chainrule.no_grad():  # the steps on the arrays, no node
        assert chainrule.einsum("bij,jk->bik", x, weight).grad_fn is None
