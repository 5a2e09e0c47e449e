"""The batched backward walk (autograd/batched_walk.py; rules in ops/batched_rules*.py): one reverse
pass whose cotangents carry a leading batch dim, behind jacrev, functional.jacobian and
is_grads_batched.

Each batched rule is checked against the ordinary per-row backward on the same graph (float64,
broadcasting, 0-d, non-contiguous inputs and cotangents), with the row-by-row fallback forbidden
so the rule itself is what ran; graphs with unruled nodes must take the fallback and agree too;
the public Jacobian paths are compared with torch on whole programs (an MLP, the jacobians
tutorial's predict).
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as F
from chainrule.autograd import batched_grad, batched_walk, functional
from chainrule.autograd.engine import grad as unbatched_grad
from chainrule.ops import linalg, second_order

torch = pytest.importorskip("torch")

BATCH = 3


def _leaf(shape, low=-2.0, high=2.0, seed=0):
    data = np.random.default_rng(seed).uniform(low, high, shape)
    return chainrule.from_numpy(data).requires_grad_()


def _batched_vs_rows(f, shapes, low=-2.0, high=2.0, transpose_cotangent=False):
    """The batched walk's gradients of ``f(*leaves)`` against one ordinary backward per row."""
    xs = [_leaf(shape, low, high, seed=i) for i, shape in enumerate(shapes)]
    out = f(*xs)
    rng = np.random.default_rng(7)
    seeds = rng.standard_normal((BATCH,) + tuple(out.shape))
    if transpose_cotangent and out.dim() >= 2:  # the same values, in a non-contiguous layout
        seeds = np.ascontiguousarray(np.swapaxes(seeds, -1, -2)).swapaxes(-1, -2)
    seeds = chainrule.from_numpy(seeds).to(out.dtype)
    batched = batched_walk.batched_backward((out,), tuple(xs), (seeds,), retain_graph=True)
    assert batched is not None, "the batched walk declined a plain graph"
    for b in range(BATCH):
        rows = unbatched_grad(out, xs, seeds[b], retain_graph=True, allow_unused=True)
        for j, (got, row) in enumerate(zip(batched, rows)):
            if row is None:
                assert got is None
                continue
            assert tuple(got.shape) == (BATCH,) + tuple(xs[j].shape)
            assert got.dtype == row.dtype
            np.testing.assert_allclose(got[b].numpy(), row.numpy(), rtol=1e-12, atol=1e-12)
    return batched


class _RowsForbidden:
    """Counts (and with ``forbid``, refuses) the walk's row-by-row fallback."""

    def __init__(self, monkeypatch, forbid: bool) -> None:
        self.classes = []
        original = batched_walk._row_by_row

        def row_by_row(node, grads, batch):
            self.classes.append(type(node).__name__)
            assert not forbid, f"{type(node).__name__} ran row by row"
            return original(node, grads, batch)

        monkeypatch.setattr(batched_walk, "_row_by_row", row_by_row)


def _flat_grads(out, inputs):
    """The gradients of ``out`` with their graph (create_graph), flattened into one tensor."""
    return chainrule.cat([g.reshape(-1) for g in chainrule.autograd.grad(out, inputs, create_graph=True)])


def _assigned(a, v):
    # index_put_ by a slice, a mask and a list of rows (the value broadcast into its slots)
    y = a * 2
    y[:, 0] = v
    y[y > 1.5] = 0.0
    y[[0, 2]] = v[:2, None] * 3
    return y


def _rows_mixed(rows):
    # (the middle row unused: its gradient never arrives)
    return rows[0].sin() * rows[2]


def _relu6(x):
    return F.relu6(x)


# (name, f, input shapes, (low, high)): every graph here is built of ruled nodes only
_UNARY = ["exp", "exp2", "expm1", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "square", "reciprocal", "sin",
          "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "erf", "sigmoid", "sign", "floor", "ceil",
          "trunc", "frac", "round", "abs", "neg"]
_ACTIVATIONS = {
    "relu": F.relu, "leaky_relu": lambda x: F.leaky_relu(x, 0.1), "hardtanh": F.hardtanh, "relu6": _relu6,
    "threshold": lambda x: F.threshold(x, 0.5, -1.0), "hardshrink": F.hardshrink, "softshrink": F.softshrink,
    "elu": F.elu, "celu": lambda x: F.celu(x, 0.7), "selu": F.selu, "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "silu": F.silu, "mish": F.mish, "softplus": F.softplus,
    "logsigmoid": F.logsigmoid, "hardsigmoid": F.hardsigmoid, "hardswish": F.hardswish,
}
_CASES = (
    [(name, getattr(chainrule, name), [(3, 4)], (0.1, 0.9)) for name in _UNARY]
    + [(name, fn, [(3, 4)], (-4.0, 4.0)) for name, fn in _ACTIVATIONS.items()]
    + [
        ("tanh_0d", lambda x: x.tanh() * 3, [()], (-2, 2)),
        ("add_broadcast", lambda a, b: a + b, [(3, 1), (4,)], (-2, 2)),
        ("sub_0d", lambda a, b: a - b, [(), (2, 3)], (-2, 2)),
        ("add_alpha_broadcast", lambda a, b: chainrule.add(a, b, alpha=0.5), [(3, 1), (4,)], (-2, 2)),
        ("sub_alpha", lambda a, b: chainrule.sub(a, b, alpha=3), [(2, 3), (2, 3)], (-2, 2)),
        ("rsub", lambda a: 1.5 - a, [(2, 3)], (-2, 2)),
        ("rsub_tensors_alpha", lambda a, b: chainrule.rsub(a, b, alpha=0.5), [(3, 1), (4,)], (-2, 2)),
        ("mul_broadcast", lambda a, b: a * b, [(2, 1, 4), (3, 1)], (-2, 2)),
        ("div_broadcast", lambda a, b: a / b, [(3, 4), (1, 4)], (0.5, 2)),
        ("pow_tensor", lambda a, b: a ** b, [(3, 4), (4,)], (0.5, 2)),
        ("pow_scalar", lambda a: a ** 2.5, [(3, 4)], (0.5, 2)),
        ("pow_square", lambda a: a ** 2, [(3, 4)], (-2, 2)),
        ("rpow", lambda a: 2.0 ** a, [(3, 4)], (-2, 2)),
        ("maximum", lambda a, b: chainrule.maximum(a, b), [(3, 4), (4,)], (-2, 2)),
        ("minimum", lambda a, b: chainrule.minimum(a, b), [(3, 4), (3, 1)], (-2, 2)),
        ("where", lambda a, b: chainrule.where(a > 0, a, b), [(3, 4), (4,)], (-2, 2)),
        ("clamp", lambda a: a.clamp(-0.5, 0.7), [(3, 4)], (-2, 2)),
        ("to_float32", lambda a: a.float().tanh(), [(3, 4)], (-2, 2)),
        ("clone_transposed", lambda a: a.t().clone() * 2, [(4, 3)], (-2, 2)),
        # matrix products, vectors and batches included
        ("mm", lambda a, b: a @ b, [(3, 4), (4, 5)], (-2, 2)),
        ("mm_transposed", lambda a, b: a.t() @ b.t(), [(4, 3), (5, 4)], (-2, 2)),
        ("vec_mat", lambda a, b: a @ b, [(4,), (4, 5)], (-2, 2)),
        ("mat_vec", lambda a, b: a @ b, [(3, 4), (4,)], (-2, 2)),
        ("mv", lambda a, b: chainrule.mv(a, b), [(3, 4), (4,)], (-2, 2)),
        ("dot", lambda a, b: chainrule.dot(a, b), [(4,), (4,)], (-2, 2)),
        ("batch_mat", lambda a, b: a @ b, [(2, 3, 4), (4, 5)], (-2, 2)),
        ("mat_batch", lambda a, b: a @ b, [(3, 4), (2, 4, 5)], (-2, 2)),
        ("bmm", lambda a, b: chainrule.bmm(a, b), [(2, 3, 4), (2, 4, 5)], (-2, 2)),
        # the add-a-product ops with alpha (AlphaMm/AlphaMv/AlphaBmm/AlphaOuter) and beta = 0 (ProductIgnoringInput)
        ("addmm_alpha_beta0", lambda c, a, b: chainrule.addmm(c, a, b, beta=0, alpha=2.0), [(3, 5), (3, 4), (4, 5)],
         (-2, 2)),
        ("addmv_alpha", lambda c, a, b: chainrule.addmv(c, a, b, alpha=0.5), [(3,), (3, 4), (4,)], (-2, 2)),
        ("baddbmm_alpha", lambda c, a, b: chainrule.baddbmm(c, a, b, alpha=0.5), [(2, 3, 5), (2, 3, 4), (2, 4, 5)],
         (-2, 2)),
        ("addr_alpha", lambda c, a, b: chainrule.addr(c, a, b, alpha=0.5), [(3, 4), (3,), (4,)], (-2, 2)),
        ("matmul_broadcast", lambda a, b: a @ b, [(1, 3, 4), (2, 4, 5)], (-2, 2)),
        ("vec_batch", lambda a, b: a @ b, [(4,), (2, 4, 5)], (-2, 2)),
        ("batch_vec", lambda a, b: a @ b, [(2, 3, 4), (4,)], (-2, 2)),
        # the broadcasting product node that rules (decompositions' backward) record under create_graph
        ("matmul_node", lambda a, b: linalg._mat(a, b), [(2, 1, 3, 4), (3, 4, 5)], (-2, 2)),
        ("linear_vector", lambda x, w, b: F.linear(x, w, b), [(4,), (5, 4), (5,)], (-2, 2)),
        ("linear_rows", lambda x, w, b: F.linear(x, w, b), [(3, 4), (5, 4), (5,)], (-2, 2)),
        ("linear_3d", lambda x, w, b: F.linear(x, w, b), [(2, 3, 4), (5, 4), (5,)], (-2, 2)),
        ("linear_no_bias", lambda x, w: F.linear(x, w), [(3, 4), (5, 4)], (-2, 2)),
        # reductions
        ("sum", lambda a: a.sum(), [(3, 4)], (-2, 2)),
        ("sum_0d", lambda a: a.sum(), [()], (-2, 2)),
        ("sum_dim", lambda a: a.sum(1), [(2, 3, 4)], (-2, 2)),
        ("sum_dims_keepdim", lambda a: a.sum((0, 2), keepdim=True), [(2, 3, 4)], (-2, 2)),
        ("mean", lambda a: a.mean(), [(3, 4)], (-2, 2)),
        ("mean_dim", lambda a: a.mean(-1), [(2, 3, 4)], (-2, 2)),
        ("mean_keepdim", lambda a: a.mean(0, keepdim=True), [(3, 4)], (-2, 2)),
        ("softmax_last", lambda a: a.softmax(-1), [(3, 4)], (-2, 2)),
        ("softmax_first", lambda a: F.softmax(a, 0), [(3, 4)], (-2, 2)),
        ("softmax_0d", lambda a: a.softmax(0), [()], (-2, 2)),
        ("log_softmax_last", lambda a: a.log_softmax(-1), [(2, 3, 4)], (-2, 2)),
        ("log_softmax_middle", lambda a: F.log_softmax(a, 1), [(2, 3, 4)], (-2, 2)),
        # shapes
        ("reshape", lambda a: a.reshape(4, 3), [(3, 4)], (-2, 2)),
        ("reshape_copy", lambda a: a.t().reshape(-1), [(3, 4)], (-2, 2)),
        ("view", lambda a: a.view(2, 6), [(3, 4)], (-2, 2)),
        ("flatten", lambda a: a.flatten(), [(2, 3, 4)], (-2, 2)),
        ("squeeze_unsqueeze", lambda a: a.squeeze(1).unsqueeze(0), [(3, 1, 4)], (-2, 2)),
        ("expand", lambda a: a.expand(2, 3, 4), [(3, 1)], (-2, 2)),
        ("expand_0d", lambda a: a.expand(2, 3), [()], (-2, 2)),
        ("permute", lambda a: a.permute(2, 0, 1), [(2, 3, 4)], (-2, 2)),
        ("transpose", lambda a: a.transpose(0, -1), [(2, 3, 4)], (-2, 2)),
        ("t_1d", lambda a: a.t() * 2, [(4,)], (-2, 2)),
        ("mT", lambda a: a.mT, [(2, 3, 4)], (-2, 2)),
        ("cat", lambda a, b: chainrule.cat([a, b, a], 1), [(2, 3), (2, 2)], (-2, 2)),
        ("cat_legacy_empty", lambda a, b: chainrule.cat([a, b], 0), [(0,), (2, 3)], (-2, 2)),
        ("stack", lambda a, b: chainrule.stack([a, b], -1), [(2, 3), (2, 3)], (-2, 2)),
        # indexing
        ("slice", lambda a: a[1:, ::2], [(3, 4)], (-2, 2)),
        ("select", lambda a: a[1], [(3, 4)], (-2, 2)),
        ("select_last", lambda a: a[..., 2], [(2, 3, 4)], (-2, 2)),
        ("newaxis", lambda a: a[:, None], [(3, 4)], (-2, 2)),
        ("alias", lambda a: a[...], [(3, 4)], (-2, 2)),
        ("index_rows_repeated", lambda a: a[[0, 2, 2, 1]], [(3, 4)], (-2, 2)),
        ("index_tensor_2d", lambda a: a[chainrule.tensor([[0, 1], [1, 1]])], [(3, 4)], (-2, 2)),
        ("index_columns", lambda a: a[:, [3, 0, 3]], [(3, 4)], (-2, 2)),
        ("index_adjacent_pair", lambda a: a[:, [0, 1], [2, 2]], [(2, 3, 4)], (-2, 2)),
        ("index_mask", lambda a: a[a > 0], [(3, 4)], (-2, 2)),
        ("narrow_split_unbind", lambda a: a.narrow(1, 1, 2).split(1, 0)[1] * a.unbind(1)[0][1], [(3, 4)],
         (-2, 2)),
        ("split_with_sizes", lambda a: a.split([1, 3], 1)[1] * 2, [(3, 4)], (-2, 2)),
        # second order: a gradient's recorded graph (what a Hessian's outer Jacobian walks)
        ("grad_of_linear", lambda x, w, b: _flat_grads(F.linear(x, w, b).tanh().sum() * 2, (x, w, b)),
         [(3, 4), (5, 4), (5,)], (-2, 2)),
        ("grad_of_linear_u_b_only", lambda x, w, b: _flat_grads((F.linear(x.detach(), w.detach(), b) ** 2).sum(), (b,)),
         [(2, 3, 4), (5, 4), (5,)], (-2, 2)),
        ("grad_of_linear_vector", lambda x, w: _flat_grads(F.linear(x, w).sin().sum(), (x, w)),
         [(4,), (5, 4)], (-2, 2)),
        ("grad_of_gelu_silu", lambda x: _flat_grads((F.gelu(x) * F.silu(x)).sum(), (x,)), [(3, 4)], (-3, 3)),
        ("grad_of_softmax", lambda x: _flat_grads((x.softmax(1) ** 2).sum(), (x,)), [(3, 4)], (-2, 2)),
        ("jacobian_rows_of_a_gradient", lambda x: chainrule.autograd.functional.jacobian(
            lambda y: (y.sin() * y).exp(), x, create_graph=True), [(3,)], (-2, 2)),
        ("grad_of_log_softmax", lambda x: _flat_grads((F.log_softmax(x, 0) * x).sum(), (x,)), [(3, 4)], (-2, 2)),
        # mean's backward under create_graph divides by the count as a number (DivBackward1)
        ("grad_of_mean", lambda x: _flat_grads(x.mean(1).exp().sum(), (x,)), [(3, 4)], (-2, 2)),
        # mse_loss's recorded gradient is torch's one mse_loss_backward node on (grad, input, target)
        ("grad_of_mse_losses", lambda a, b: _flat_grads(F.mse_loss(a, b).exp() + F.mse_loss(a * b, b, reduction="sum")
                                                        + F.mse_loss(a, b * b, reduction="none").sin().sum(), (a, b)),
         [(3, 4), (3, 4)], (-1, 1)),
        # smooth_l1/huber/soft_margin_loss's recorded gradients are torch's one *_loss_backward node
        ("grad_of_pointwise_losses", lambda a, b: _flat_grads(
            F.smooth_l1_loss(a, b, beta=0.7).exp() + F.huber_loss(a * b, b, reduction="sum", delta=0.8)
            + F.soft_margin_loss(a, b.detach(), reduction="none").sin().sum(), (a, b)), [(3, 4), (3, 4)], (-1, 1)),
        # tanh's and sigmoid's recorded gradients are torch's one tanh_backward / sigmoid_backward node
        ("grad_of_tanh_sigmoid", lambda x: _flat_grads((x.tanh() * x.sigmoid()).sum(), (x,)), [(3, 4)], (-2, 2)),
        ("grad_of_broadcast_mul", lambda a, b: _flat_grads((a * b).sin().sum(), (a, b)), [(3, 1), (4,)], (-2, 2)),
        # a 0-d operand's gradient summed back under create_graph: torch's at::sum_to takes sum() there
        ("grad_of_0d_broadcast_mul", lambda a, b: _flat_grads((a * b).sin().sum(), (a, b)), [(), (3, 4)], (-2, 2)),
        ("grad_of_index", lambda a: _flat_grads((a[[0, 2, 2]] ** 2).sum() + (a[:, 1] ** 3).sum(), (a,)), [(3, 4)],
         (-2, 2)),
        # more elementwise rules: two operands, the special functions at the saved values
        ("atan2", lambda a, b: chainrule.atan2(a, b), [(3, 4), (4,)], (-2, 2)),
        ("hypot", lambda a, b: chainrule.hypot(a, b), [(3, 1), (4,)], (0.5, 2)),
        ("xlogy", lambda a, b: chainrule.xlogy(a, b), [(3, 4), (3, 4)], (0.5, 2)),
        ("masked_fill", lambda a, v: a.masked_fill(a > 0.5, v), [(3, 4), ()], (-2, 2)),
        ("masked_fill number", lambda a: a.masked_fill(a > 0.5, -1.5), [(3, 4)], (-2, 2)),
        ("deg2rad and frexp", lambda a: chainrule.deg2rad(a) * chainrule.frexp(a).mantissa, [(3, 4)], (-2, 2)),
        ("logsigmoid_loss", lambda a: F.binary_cross_entropy_with_logits(a, a.detach().sigmoid(), reduction="none"),
         [(3, 4)], (-2, 2)),
        ("logsigmoid_loss multilabel_soft_margin", lambda a: F.multilabel_soft_margin_loss(
            a, (a.detach() > 0).to(a.dtype), reduction="none"), [(3, 4)], (-2, 2)),
        ("tril_triu", lambda a: a.tril(-1) * 2 + a.triu(1), [(2, 3, 4)], (-2, 2)),
        *[(name, fn, [(3, 4)], bounds) for name, fn, bounds in (
            ("acosh", chainrule.acosh, (1.5, 3)), ("asinh", chainrule.asinh, (-2, 2)),
            ("atanh", chainrule.atanh, (-0.8, 0.8)), ("digamma", chainrule.digamma, (0.5, 3)),
            ("erfc", chainrule.erfc, (-2, 2)), ("erfinv", chainrule.erfinv, (-0.8, 0.8)),
            ("i0", chainrule.i0, (-2, 2)), ("lgamma", chainrule.lgamma, (0.5, 3)),
            ("logit", chainrule.logit, (0.1, 0.9)), ("sinc", chainrule.sinc, (0.1, 2)),
            ("erfcx", chainrule.special.erfcx, (-2, 2)), ("i0e", chainrule.special.i0e, (-2, 2)),
            ("i1", chainrule.special.i1, (-2, 2)), ("i1e", chainrule.special.i1e, (-2, 2)),
            ("log_ndtr", chainrule.special.log_ndtr, (-2, 2)), ("ndtri", chainrule.special.ndtri, (0.1, 0.9)),
            ("polygamma", lambda a: chainrule.polygamma(1, a), (0.5, 3)),
            ("mvlgamma", lambda a: chainrule.mvlgamma(a, 2), (1.5, 3)),
            ("copysign", lambda a: chainrule.copysign(a, a.detach() - 0.5), (-2, 2)))],
        # more reductions
        ("cumprod", lambda a: a.cumprod(1).tanh(), [(3, 4)], (0.5, 1.5)),
        ("cumsum", lambda a: a.cumsum(-1).sin(), [(3, 4)], (-2, 2)),
        ("grad_of_cumsum", lambda a: _flat_grads((a.cumsum(0) ** 2).sum(), (a,)), [(3, 4)], (-2, 2)),
        ("prod", lambda a: a.prod(), [(3, 4)], (0.5, 1.5)),
        ("prod_dim_with_a_zero", lambda a: (a * chainrule.tensor([1.0, 0.0, 1.0, 1.0], dtype=a.dtype)).prod(1),
         [(3, 4)], (0.5, 1.5)),
        ("grad_of_prod_with_zeros", lambda a: _flat_grads((a * chainrule.tensor([[1.0], [0.0], [1.0]], dtype=a.dtype))
                                                          .prod(0).sum() * a.sum(), (a,)), [(3, 2)], (0.5, 1.5)),
        ("prod_dim_keepdim", lambda a: a.prod(0, keepdim=True), [(3, 4)], (0.5, 1.5)),
        ("var_std", lambda a: a.var(1) * a.std(0).sum() + a.std(), [(3, 4)], (-2, 2)),
        ("logsumexp", lambda a: a.logsumexp(-1), [(2, 3, 4)], (-2, 2)),
        ("norms", lambda a: chainrule.linalg.vector_norm(a, 2, 1) + a.norm(1, 1) + a.norm(3, 1)
         + chainrule.linalg.vector_norm(a, 0, 1), [(3, 4)], (-2, 2)),
        ("amax_amin", lambda a: a.amax(1) * a.amin(0).sum() + a.amax((0, 1), keepdim=True), [(3, 4)], (-2, 2)),
        ("max_min_all_with_ties", lambda a: (a.round() + 0.0).max() * a + a.round().min(), [(3, 4)], (-2, 2)),
        ("max_min_dim", lambda a: a.max(1).values * a.min(0, keepdim=True).values.sum(), [(3, 4)], (-2, 2)),
        ("sort_topk_kthvalue", lambda a: a.sort(-1).values[:, :2] * a.topk(2, 0).values.sum()
         + a.kthvalue(2, 1).values.sum() + a.median(0).values.sum() + a.sort(dim=0, stable=True).values.sum()
         + a.round().mode(1).values.sum(), [(3, 4)], (-2, 2)),
        ("cummax_cummin", lambda a: a.cummax(1).values * a.cummin(0).values, [(3, 4)], (-2, 2)),
        ("grad_of_max_and_cummax", lambda a: _flat_grads((a.max(0).values ** 3).sum() + (a.cummax(1).values ** 2)
                                                         .sum(), (a,)), [(3, 4)], (-2, 2)),
        # more shapes
        ("repeat", lambda a: a.repeat(2, 1, 3), [(3, 4)], (-2, 2)),
        ("flip", lambda a: a.flip(0, -1) * a, [(3, 4)], (-2, 2)),
        ("roll", lambda a: a.roll((1, -2), (0, 1)) * a + a.roll(5), [(3, 4)], (-2, 2)),
        ("constant_pad", lambda a: F.pad(a, (1, 2, 0, 1)) * 2 + F.pad(a, (-1, 0))[:, :1].sum(), [(3, 4)], (-2, 2)),
        # more indexing
        ("index_select", lambda a: a.index_select(1, chainrule.tensor([3, 0, 3])), [(3, 4)], (-2, 2)),
        ("grad_of_index_select", lambda a: _flat_grads((a.index_select(0, chainrule.tensor([2, 2, 0])) ** 2).sum(),
                                                       (a,)), [(3, 4)], (-2, 2)),
        ("gather", lambda a: a.gather(-1, chainrule.tensor([[0, 3], [1, 1], [2, 0]])), [(3, 4)], (-2, 2)),
        ("grad_of_gather", lambda a: _flat_grads((a.gather(0, chainrule.tensor([[0, 2, 2, 1]])) ** 3).sum(), (a,)),
         [(3, 4)], (-2, 2)),
        ("embedding", lambda w: F.embedding(chainrule.tensor([[0, 2], [2, 3]]), w, padding_idx=3), [(4, 3)],
         (-2, 2)),
        ("grad_of_embedding", lambda w: _flat_grads((F.embedding(chainrule.tensor([1, 1, 0]), w) ** 2).sum(), (w,)),
         [(4, 3)], (-2, 2)),
        ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1), [(2, 3, 5, 4), (4, 3, 3, 2), (4,)],
         (-2, 2)),
        ("conv1d_groups_no_bias", lambda x, w: F.conv1d(x, w, groups=2, dilation=2), [(2, 4, 7), (6, 2, 2)], (-2, 2)),
        ("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2), [(2, 3, 3, 2), (3, 2, 2, 2), (2,)],
         (-2, 2)),
        ("grad_of_conv2d", lambda x, w: _flat_grads((F.conv2d(x, w, padding=1) ** 2).sum(), (x, w)),
         [(2, 2, 4, 3), (3, 2, 2, 2)], (-2, 2)),
        ("max_pool2d", lambda x: F.max_pool2d(x, 2, stride=1, padding=1), [(2, 3, 4, 3)], (-2, 2)),
        ("max_pool_with_indices", lambda x: F.max_pool1d(x, 3, stride=2, return_indices=True)[0]
         + F.max_pool3d(x.unsqueeze(-1).expand(2, 3, 7, 2), (2, 1, 1), return_indices=True)[0].mean(), [(2, 3, 7)], (-2, 2)),
        # (a batched avg_pool1d runs as avg_pool2d, as torch's does; an unbatched one as its own 1-d node)
        ("avg_pools", lambda x: F.avg_pool2d(x, 2, padding=1, count_include_pad=False).sum() * F.avg_pool1d(x[0], 3)
         + F.avg_pool3d(x.unsqueeze(0), 2, ceil_mode=True).sum() + F.avg_pool1d(x[0, 0], 2).mean(), [(2, 3, 5, 4)],
         (-2, 2)),
        ("grad_of_pools", lambda x: _flat_grads((F.max_pool2d(x, 2) ** 2).sum() + (F.avg_pool2d(x, 2) ** 2).sum()
                                                + (F.max_pool1d(x[0], 2, return_indices=True)[0] ** 2).sum(), (x,)),
         [(2, 3, 4, 4)], (-2, 2)),
        ("grad_of_grad_of_max_pool", lambda x: _flat_grads((_flat_grads(
            (F.max_pool1d(x, 2, return_indices=True)[0] ** 3).sum(), (x,)) ** 2).sum(), (x,)), [(2, 6)], (-2, 2)),
        ("diagonal", lambda a: a.diagonal(1) * 2 + a.diagonal(0, -1, 0), [(3, 4)], (-2, 2)),
        ("grad_of_diagonal", lambda a: _flat_grads((chainrule.diag(a) ** 3).sum(), (a,)), [(3, 3)], (-2, 2)),
        ("einsum", lambda a, b: chainrule.einsum("ij,jk->ik", a, b) + chainrule.einsum("ii,kj->ik", a[:, :3], b)[:, :1],
         [(3, 4), (4, 3)], (-2, 2)),
        ("einsum_spread_and_diagonal", lambda a, b: chainrule.einsum("ii,j->ij", a, b), [(3, 3), (2,)], (-2, 2)),
        # with "...": broadcast batch dims (summed back to each operand's own), a diagonal under them,
        # the ellipsis reduced away, a size-1 ellipsis dim broadcast
        ("einsum_ellipsis", lambda a, b, c: chainrule.einsum("...ij,jk->...ik", a, b)
         * chainrule.einsum("...ii->...i", a[..., :3]).sum() + chainrule.einsum("...j,...j->...", a, c).unsqueeze(-1)
         .unsqueeze(-1).sum() + chainrule.einsum("i...->...", a).sum(), [(2, 3, 4), (4, 5), (1, 3, 4)], (-2, 2)),
        ("grad_of_einsum", lambda a, b: _flat_grads((chainrule.einsum("ij,kj->ik", a, b) ** 2).sum(), (a, b)),
         [(2, 3), (4, 3)], (-2, 2)),
        ("fmod_remainder", lambda a, b: chainrule.fmod(a, b) * chainrule.remainder(a, b), [(3, 4), (4,)], (0.5, 2)),
        ("binary_cross_entropy", lambda p, t: F.binary_cross_entropy(p, t, reduction="none"), [(3, 4), (3, 4)],
         (0.1, 0.9)),
        ("embedding_scaled_by_frequency", lambda w: F.embedding(chainrule.tensor([0, 2, 2, 1]), w,
                                                                 scale_grad_by_freq=True), [(3, 2)], (-2, 2)),
        ("inverse_det_slogdet", lambda a: chainrule.linalg.inv(a) * chainrule.linalg.det(a)[:, None, None]
         + chainrule.linalg.slogdet(a)[1][:, None, None], [(2, 3, 3)], (0.5, 2)),
        ("adaptive_avg_pool", lambda x: F.adaptive_avg_pool2d(x, (2, 3)), [(2, 3, 5, 4)], (-2, 2)),
        ("scatter_add_index_add", lambda x, s: x.scatter_add(1, chainrule.tensor([[0, 2, 0]]), s[:1, :3])
         + x.index_add(0, chainrule.tensor([2, 0]), s[:2, :4], alpha=2.0), [(3, 4), (3, 5)], (-2, 2)),
        ("grad_of_nll_loss_squared", lambda x: _flat_grads(F.nll_loss(x.log_softmax(1), chainrule.tensor([2, 0, 3])) ** 2,
                                                           (x,)), [(3, 4)], (-2, 2)),
        ("solve", lambda a, b: chainrule.linalg.solve(a + 3 * chainrule.eye(3, dtype=a.dtype), b), [(3, 3), (2, 3, 2)],
         (-1, 1)),
        ("prelu", lambda x, w: F.prelu(x, w), [(2, 3, 4), (3,)], (-2, 2)),
        ("rrelu_training", lambda x: F.rrelu(x, training=True), [(2, 3, 4)], (-2, 2)),
        ("setitem", lambda a, v: _assigned(a, v), [(3, 4), (3,)], (-2, 2)),
        ("adaptive_max_pool_and_unpool", lambda x: F.adaptive_max_pool2d(x, (2, 1)) * 2
         + F.max_unpool1d(*F.max_pool1d(x[:, :, 0], 2, return_indices=True), 2)[..., :2, None].sum(),
         [(2, 3, 4, 3)], (-2, 2)),
        ("grad_of_adaptive_max_pool", lambda x: _flat_grads((F.adaptive_max_pool1d(x, 2) ** 2).sum(), (x,)),
         [(2, 3, 5)], (-2, 2)),
        ("adaptive_max_pool3d", lambda x: F.adaptive_max_pool3d(x, (2, 1, 2)) * 2, [(2, 2, 3, 4, 3)], (-2, 2)),
        ("fractional_max_pool2d", lambda x: F.fractional_max_pool2d(
            x, 2, output_size=2, _random_samples=chainrule.full((2, 3, 2), 0.4, dtype=x.dtype)) * 2,
         [(2, 3, 5, 4)], (-2, 2)),
        ("fractional_max_pool3d", lambda x: F.fractional_max_pool3d(
            x, 2, output_size=(2, 1, 2), _random_samples=chainrule.full((2, 2, 3), 0.6, dtype=x.dtype)) * 2,
         [(2, 2, 4, 3, 4)], (-2, 2)),
        ("grad_of_max_unpool", lambda x: _flat_grads((F.max_unpool1d(
            x, chainrule.tensor([[[1, 2], [0, 3]]]).expand(2, 2, 2), 2) ** 2).sum(), (x,)), [(2, 2, 2)], (-2, 2)),
        ("tensor_unfold", lambda a: a.unfold(1, 2, 1) * 2, [(3, 4)], (-2, 2)),
        ("grad_of_tensor_unfold", lambda a: _flat_grads((a.unfold(0, 2, 1) ** 2).sum(), (a,)), [(3, 4)], (-2, 2)),
        ("diag_embed", lambda a: chainrule.diag_embed(a, 1, 0, -1), [(2, 3)], (-2, 2)),
        ("slice_and_select_scatter", lambda a, s: chainrule.slice_scatter(a, s[:, :2], 1, 1, 3)
         * chainrule.select_scatter(a, s[:, 2], 1, 0), [(3, 4), (3, 3)], (-2, 2)),
        ("im2col_col2im", lambda x: F.fold(F.unfold(x, 2, padding=1) * 2, (3, 4), 2, padding=1), [(2, 3, 3, 4)], (-2, 2)),
        ("index_fill_copy", lambda x, s: x.index_fill(1, chainrule.tensor([0, 2]), -1.0) * x.index_copy(
            0, chainrule.tensor([2, 0]), s), [(3, 4), (2, 4)], (-2, 2)),
        # (src as large as the index: torch's backward refuses a larger src, as chainrule's now does)
        ("scatter", lambda x, s: x.scatter(1, chainrule.tensor([[0, 3], [2, 1]]), s[:, :2]) * x.scatter(0, chainrule.tensor(
            [[1, 0, 2, 2]]), 0.5), [(3, 4), (2, 3)], (-2, 2)),
        ("median_all", lambda a: a.median() * a, [(3, 4)], (-2, 2)),
        ("reflect_and_circular_pad", lambda x: F.pad(x, (1, 2), mode="reflect") * 2
         + F.pad(x, (2, 1), mode="circular").sum(), [(2, 3, 4)], (-2, 2)),
        ("grad_of_replicate_pad", lambda x: _flat_grads((F.pad(x, (1, 1), mode="replicate") ** 2).sum(), (x,)),
         [(2, 3, 4)], (-2, 2)),
        ("igamma", lambda a, x: chainrule.igamma(a.detach(), x) * chainrule.igammac(a.detach(), x), [(3, 4), (3, 4)],
         (0.5, 2)),
        ("cholesky", lambda a: chainrule.linalg.cholesky(a @ a.mT + chainrule.eye(3, dtype=a.dtype)), [(3, 3)],
         (-1, 1)),
        ("eigh_values_only", lambda a: chainrule.linalg.eigvalsh(a + a.mT), [(2, 3, 3)], (-1, 1)),
        ("eigh_both", lambda a: chainrule.linalg.eigh(a + a.mT)[1] * chainrule.linalg.eigh(a + a.mT)[0].sum(), [(3, 3)],
         (-1, 1)),
        ("solve_triangular", lambda a, b: chainrule.linalg.solve_triangular(a.triu() + 3 * chainrule.eye(3, dtype=a.dtype),
                                                                            b, upper=True), [(3, 3), (3, 2)], (-1, 1)),
        ("trace", lambda a: a.trace() * a, [(3, 4)], (-2, 2)),
        # decompositions whose rules are products of the saved factors (svd/qr tall, wide and square)
        ("svd_tall_and_values", lambda a: chainrule.linalg.svd(a, full_matrices=False)[0] * chainrule.linalg.svdvals(
            a).sum() + chainrule.linalg.svd(a.mT)[2][:2, :].sum(), [(4, 3)], (-1, 1)),
        ("svd_square_batched", lambda a: chainrule.linalg.svd(a)[2] * chainrule.linalg.svd(a)[1].unsqueeze(-1),
         [(2, 3, 3)], (-1, 1)),
        ("qr_tall_and_wide", lambda a: chainrule.linalg.qr(a)[0].sum() * chainrule.linalg.qr(a.mT)[1]
         + chainrule.linalg.qr(a)[1].sum(), [(4, 3)], (-1, 1)),
        ("pinv_tall_and_wide", lambda a: chainrule.linalg.pinv(a) * 2 + chainrule.linalg.pinv(a.mT).mT,
         [(4, 3)], (-1, 1)),
        ("lstsq", lambda a, b: chainrule.linalg.lstsq(a, b).solution, [(4, 3), (4, 2)], (-1, 1)),
        # inputs broadcast against the other's batch dims (their gradients summed over them)
        ("solves_broadcast", lambda a, b: chainrule.linalg.solve(a + 3 * chainrule.eye(3, dtype=a.dtype), b)
         + chainrule.linalg.solve(a[0] + 3 * chainrule.eye(3, dtype=a.dtype), b.expand(2, 3, 2) * 2)
         + chainrule.linalg.solve(a + 3 * chainrule.eye(3, dtype=a.dtype), b[:, 0])[..., None]
         + chainrule.linalg.solve_triangular(a.triu() + 3 * chainrule.eye(3, dtype=a.dtype), b, upper=True)
         + chainrule.cholesky_solve(b, a.tril() + 3 * chainrule.eye(3, dtype=a.dtype))
         + chainrule.linalg.lstsq(a + 3 * chainrule.eye(3, dtype=a.dtype), b[None]).solution,
         [(2, 3, 3), (3, 2)], (-1, 1)),
        ("lstsq_batch_of_one_rhs", lambda a, b: chainrule.linalg.lstsq(a, b).solution, [(2, 4, 3), (1, 4, 2)], (-1, 1)),
        ("cholesky_solve_and_inverse", lambda a, b: chainrule.cholesky_solve(b, a.tril() + 3 * chainrule.eye(
            3, dtype=a.dtype)) * chainrule.cholesky_inverse(a.triu() + 3 * chainrule.eye(3, dtype=a.dtype), upper=True)
         .sum(), [(3, 3), (3, 2)], (-1, 1)),
        ("lu_square_tall_wide", lambda a: chainrule.linalg.lu(a)[1] * chainrule.linalg.lu(a.mT)[2].sum()
         + chainrule.linalg.lu(a[:3])[2].sum(), [(4, 3)], (-1, 1)),
        ("lu_factor_and_solve", lambda a, b: chainrule.linalg.lu_solve(*chainrule.linalg.lu_factor(a), b)
         + chainrule.linalg.lu_factor(a)[0].sum(), [(3, 3), (3, 2)], (-1, 1)),
        ("matrix_exp", lambda a: chainrule.linalg.matrix_exp(a) + chainrule.matrix_exp(a[None] * 0.5)[0], [(3, 3)],
         (-1, 1)),
        # the last ops given rules: log-space cumulative sums, NaN-skipping median, diagonal/strided/masked
        # writes, block diagonals, scatter reductions
        # spectra: real to complex and back, complex to complex, parts and views of complex numbers
        ("rfft_irfft", lambda x: chainrule.view_as_real(chainrule.fft.rfft(x, norm="ortho")).sin()
         * chainrule.fft.irfft(chainrule.fft.rfft(x, dim=0) * 2, n=3, dim=0)[:, :3, None],
         [(3, 4)], (-2, 2)),
        ("fftn_and_complex_parts", lambda x, y: chainrule.fft.ifft2(chainrule.fft.fftn(chainrule.complex(x, y))
                                                                     .conj()).real * chainrule.fft.fft(x).imag
         + chainrule.fft.rfft2(x).abs().sum() + chainrule.fft.ihfft(y).angle().sum()
         + chainrule.view_as_complex(chainrule.stack([x, y], -1)).real, [(3, 4), (3, 4)], (-2, 2)),
        # chainrule's own conj (vdot's: no conj bit), hfft2's conj node and conj_physical's node
        ("internal_conj_and_conj_physical", lambda x, y: chainrule.fft.hfft2(chainrule.complex(x, y)).sum(-1)[:, None]
         + chainrule.vdot(chainrule.complex(x, y).flatten(), chainrule.complex(y, x).flatten()).real
         + chainrule.conj_physical(chainrule.complex(x, y)).imag, [(3, 4), (3, 4)], (-2, 2)),
        ("cumprod_with_zeros", lambda x: (x * chainrule.tensor([1.0, 0.0, 1.0, 1.0], dtype=x.dtype)).cumprod(1).tanh()
         + (x * chainrule.tensor([[1.0], [0.0], [0.0]], dtype=x.dtype)).cumprod(-2), [(3, 4)], (-2, 2)),
        ("logcumsumexp", lambda a: chainrule.logcumsumexp(a, 1) * a + chainrule.logcumsumexp(a[0, 0], 0), [(3, 4)],
         (-2, 2)),
        ("inf_norms", lambda x: x.tanh().norm(float("inf"), 0) * x + chainrule.linalg.vector_norm(x, -float("inf"))
         + chainrule.cat([x, -x], 1).norm(float("inf"), 1, keepdim=True)  # (ties, shared)
         + chainrule.linalg.vector_norm(chainrule.stack([x, x]), float("inf")),
         [(3, 4)], (-2, 2)),
        ("nanmedian_all", lambda a: a.nanmedian() * a, [(3, 4)], (-2, 2)),
        ("nanmedian_dim", lambda a: a.nanmedian(1).values.exp() + a.nanmedian(0, keepdim=True).values.sum(), [(3, 4)],
         (-2, 2)),
        ("diagonal_scatter", lambda a, s, t: chainrule.diagonal_scatter(a[0], s, 1) * chainrule.diagonal_scatter(
            a, t, 0, 2, 0).sum(0), [(2, 3, 4), (3,), (3, 2)], (-2, 2)),
        ("as_strided_overlapping", lambda a: a.t().as_strided((3, 3), (1, 2), 1) * 2, [(3, 4)], (-2, 2)),
        ("block_diag", lambda a, b, c: chainrule.block_diag(a, b, c).exp(), [(2, 3), (3,), ()], (-2, 2)),
        ("masked_scatter", lambda x, s: x.masked_scatter(x > 0, s) * x, [(3, 4), (14,)], (-2, 2)),
        ("scatter_reduce_prod_amax_amin", lambda x, s: x.scatter_reduce(1, chainrule.tensor([[0, 0, 2], [1, 3, 1]]),
                                                                        s, "prod")
         * x.scatter_reduce(0, chainrule.tensor([[2, 0, 2]]), s, "amax", include_self=False)[:, :3].sum()
         + x.scatter_reduce(1, chainrule.tensor([[3, 3], [0, 0]]), s[:, 1:], "amin"), [(3, 4), (2, 3)], (-2, 2)),
        # losses
        ("mse_losses", lambda a, b: F.mse_loss(a, b) + F.mse_loss(a, b, reduction="sum")
         + F.mse_loss(a, b, reduction="none")[0, 0], [(3, 4), (3, 4)], (-2, 2)),
        ("pointwise_losses", lambda a, b: F.smooth_l1_loss(a, b, beta=0.7) + F.huber_loss(a, b, reduction="sum")
         + F.soft_margin_loss(a, b.detach(), reduction="none")[0, 0], [(3, 4), (3, 4)], (-2, 2)),
        ("cross_entropy", lambda x: F.cross_entropy(x, chainrule.tensor([1, 0, 3])), [(3, 4)], (-2, 2)),
        ("cross_entropy_weighted_smoothed_ignored", lambda x: F.cross_entropy(
            x, chainrule.tensor([[1, 2], [0, -100]]), weight=chainrule.tensor([0.5, 2.0, 1.0, 1.5], dtype=x.dtype),
            label_smoothing=0.2), [(2, 4, 2)], (-2, 2)),
        ("cross_entropy_unreduced", lambda x: F.cross_entropy(x, chainrule.tensor([[1, 2], [0, 3]]), reduction="none"),
         [(2, 4, 2)], (-2, 2)),
        ("nll_loss_one_sample", lambda x: F.nll_loss(x.log_softmax(0), chainrule.tensor(2), reduction="sum")
         + F.nll_loss(x, chainrule.tensor(1), reduction="none"), [(4,)], (-2, 2)),
        ("grad_of_cross_entropy", lambda x: _flat_grads(F.cross_entropy(x, chainrule.tensor([1, 0, 3])), (x,)),
         [(3, 4)], (-2, 2)),
        # normalisation: fused with the affine map, x̂ alone, by groups, batch statistics
        ("layer_norm", lambda x, w, b: F.layer_norm(x, (4,), w, b), [(2, 3, 4), (4,), (4,)], (-2, 2)),
        ("layer_norm_2d_shape", lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [(2, 3, 4), (3, 4), (3, 4)], (-2, 2)),
        ("layer_norm_no_affine", lambda x: F.layer_norm(x, (4,)), [(3, 4)], (-2, 2)),
        ("instance_norm", lambda x: F.instance_norm(x), [(2, 3, 5)], (-2, 2)),
        ("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), [(2, 4, 3), (4,), (4,)], (-2, 2)),
        ("batch_norm_training", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
         [(3, 2, 4), (2,), (2,)], (-2, 2)),
        ("batch_norm_training_no_affine", lambda x: F.batch_norm(x, None, None, training=True), [(4, 3)], (-2, 2)),
        ("batch_norm_eval", lambda x, w, b: F.batch_norm(x, chainrule.zeros(2, dtype=x.dtype) + 0.1,
                                                          chainrule.ones(2, dtype=x.dtype) * 1.5, w, b),
         [(3, 2, 4), (2,), (2,)], (-2, 2)),
        # the norms' gradients, recorded (what functional.hessian's outer Jacobian walks)
        ("grad_of_layer_norm", lambda x, w, b: _flat_grads((F.layer_norm(x, (4,), w, b) ** 3).sum(), (x, w, b)),
         [(3, 4), (4,), (4,)], (-2, 2)),
        ("grad_of_layer_norm_no_affine", lambda x: _flat_grads((F.layer_norm(x, (4,)) ** 3).sum(), (x,)), [(3, 4)],
         (-2, 2)),
        ("grad_of_instance_norm", lambda x: _flat_grads((F.instance_norm(x) ** 3).sum(), (x,)), [(2, 3, 4)], (-2, 2)),
        ("grad_of_group_norm", lambda x: _flat_grads((F.group_norm(x, 2) ** 3).sum(), (x,)), [(2, 4, 3)], (-2, 2)),
        ("grad_of_batch_norm", lambda x, w, b: _flat_grads((F.batch_norm(x, None, None, w, b, training=True) ** 3)
                                                           .sum(), (x, w)), [(3, 2, 4), (2,), (2,)], (-2, 2)),
        ("layer_norm_mlp", lambda x, w1, g, b: F.linear(F.gelu(F.layer_norm(F.linear(x, w1), (5,), g, b)), w1.t()),
         [(3, 4), (5, 4), (5,), (5,)], (-2, 2)),
        # the walk's own nodes: a Jacobian's stacked rows, its chunks of rows joined
        ("stack_rows", lambda a: batched_grad.StackRows.apply(a.sin(), a * 2), [(3, 4)], (-2, 2)),
        ("unstack_rows", lambda a: _rows_mixed(batched_grad.UnstackRows.apply(a)), [(3, 4)], (-2, 2)),
        ("jacobian_rows_in_chunks", lambda x: functional._jacobian(lambda y: (y.sin() * y).exp(), x, True, chunk_size=2),
         [(3,)], (-2, 2)),
        # a chain: the tutorial's predict, and a two-layer net with a loss-like tail
        ("predict", lambda x, w, b: F.linear(x, w, b).tanh(), [(6,), (5, 6), (5,)], (-2, 2)),
        ("mlp", lambda x, w1, b1, w2: (F.linear(F.gelu(F.linear(x, w1, b1)), w2).log_softmax(-1) * x.sum()).mean(0),
         [(3, 4), (5, 4), (5,), (2, 5)], (-2, 2)),
    ]
)


@pytest.mark.parametrize("name, f, shapes, bounds", _CASES, ids=[case[0] for case in _CASES])
def test_batched_rule_equals_the_per_row_backward(monkeypatch, name, f, shapes, bounds):
    _RowsForbidden(monkeypatch, forbid=True)
    _batched_vs_rows(f, shapes, *bounds, transpose_cotangent=True)


@pytest.mark.parametrize("name, f, shapes, bounds", _CASES, ids=[case[0] for case in _CASES])
def test_recorded_batched_walk_differentiates_as_the_per_row_backward(monkeypatch, name, f, shapes, bounds):
    # create_graph: every rule records Tensor ops, so the batched gradients have the per-row
    # ones' values and their derivatives (the inner Jacobian of a Hessian)
    _RowsForbidden(monkeypatch, forbid=True)
    xs = [_leaf(shape, *bounds, seed=i) for i, shape in enumerate(shapes)]
    out = f(*xs)
    rng = np.random.default_rng(9)
    seeds = chainrule.from_numpy(rng.standard_normal((BATCH,) + tuple(out.shape))).to(out.dtype)
    batched = batched_walk.batched_backward((out,), tuple(xs), (seeds,), retain_graph=True, create_graph=True)
    assert batched is not None
    rows = [unbatched_grad(out, xs, seeds[b], retain_graph=True, create_graph=True, allow_unused=True)
            for b in range(BATCH)]
    weights = [None if g is None else chainrule.from_numpy(rng.standard_normal(tuple(g.shape))).to(g.dtype)
               for g in batched]
    batched_total = per_row_total = None
    for j, (g, w) in enumerate(zip(batched, weights)):
        if g is None:
            assert all(row[j] is None for row in rows)
            continue
        np.testing.assert_allclose(g.detach().numpy(), np.stack([row[j].detach().numpy() for row in rows]),
                                   rtol=1e-12, atol=1e-12)
        term = (g * w).sum()
        batched_total = term if batched_total is None else batched_total + term
        for b, row in enumerate(rows):
            term = (row[j] * w[b]).sum()
            per_row_total = term if per_row_total is None else per_row_total + term
    if batched_total is None or not (batched_total.requires_grad or per_row_total.requires_grad):
        return
    assert batched_total.requires_grad and per_row_total.requires_grad
    # (a float32 graph sums the batch's rows in another order than the rows one by one)
    rtol = 1e-5 if out.dtype == chainrule.float32 else 1e-10
    for got, want in zip(unbatched_grad(batched_total, xs, retain_graph=True, allow_unused=True, materialize_grads=True),
                         unbatched_grad(per_row_total, xs, allow_unused=True, materialize_grads=True)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=rtol, atol=1e-12)


def test_every_batched_rule_is_exercised(monkeypatch):
    # the cases above reach every class in the table (a rule added without a case fails here)
    # second_order.depending_on registers a class per torch node name on first use, unwrapped if it
    # first appears during the cases: the two modules that look rules up read the table through a
    # recorder, which sees classes registered meanwhile, so one pass does not depend on the tests before it
    reached = set()

    class Recording(dict):
        def get(self, cls, default=None):
            rule = batched_grad.BATCHED_RULES.get(cls, default)
            if rule is not None:
                reached.add(cls)  # (both callers run the rule they get)
            return rule

        def __contains__(self, cls):
            return cls in batched_grad.BATCHED_RULES

    for module in (batched_walk, second_order):
        assert module.BATCHED_RULES is batched_grad.BATCHED_RULES
        monkeypatch.setattr(module, "BATCHED_RULES", Recording())
    for _, f, shapes, bounds in _CASES:
        _batched_vs_rows(f, shapes, *bounds)
    # second_order.depending_on and recorded_against make one class per torch node name on first use,
    # each family sharing one rule: a family counts as exercised when any member is reached
    families = {base.__name__: [cls for cls in batched_grad.BATCHED_RULES if issubclass(cls, base)]
                for base in (second_order.DependsOn, second_order.OpAgainst)}
    in_families = {cls for family in families.values() for cls in family}
    missing = {cls.__name__ for cls in batched_grad.BATCHED_RULES if cls not in in_families} - \
        {cls.__name__ for cls in reached}
    for name, family in families.items():
        if family and not any(cls in reached for cls in family):
            missing.add(name)
    assert not missing, f"batched rules no case exercises: {sorted(missing)}"


def test_complex_matmul_conjugates_like_the_ordinary_rule(monkeypatch):
    _RowsForbidden(monkeypatch, forbid=True)
    rng = np.random.default_rng(3)
    a = chainrule.from_numpy(rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).requires_grad_()
    b = chainrule.from_numpy(rng.standard_normal((4, 2)) + 1j * rng.standard_normal((4, 2))).requires_grad_()
    out = a @ b
    seeds = chainrule.from_numpy(rng.standard_normal((BATCH, 3, 2)) + 1j * rng.standard_normal((BATCH, 3, 2)))
    got = batched_walk.batched_backward((out,), (a, b), (seeds,), retain_graph=True)
    for k in range(BATCH):
        rows = unbatched_grad(out, (a, b), seeds[k], retain_graph=True)
        for g, row in zip(got, rows):
            np.testing.assert_allclose(g[k].numpy(), row.numpy(), rtol=1e-12, atol=1e-12)


class _Cube(chainrule.autograd.Function):
    """A user Function: no batched rule, so the walk runs its backward row by row."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x ** 2


@pytest.mark.parametrize("name, f, shapes", [
    ("user_function", lambda x, w: _Cube.apply(x @ w).sum(0), [(3, 4), (4, 2)]),
    ("index_separated", lambda x: x[[0, 1], :, [2, 3]].exp(), [(2, 3, 4)]),
])
def test_unruled_nodes_run_row_by_row_inside_the_walk(monkeypatch, name, f, shapes):
    rows = _RowsForbidden(monkeypatch, forbid=False)
    _batched_vs_rows(f, shapes)
    assert rows.classes, "the fallback was expected to run"


def test_no_grad_is_accumulated_and_results_are_fresh():
    x = _leaf((3,))
    y = _leaf((3,), seed=1)
    out = x + y  # add hands one gradient array to both inputs
    seeds = chainrule.eye(3)
    gx, gy = batched_walk.batched_backward((out,), (x, y), (seeds,), retain_graph=False)
    assert x.grad is None and y.grad is None
    gx.add_(1)  # writeable, and shares memory with neither the other result nor the cotangents
    np.testing.assert_array_equal(gy.numpy(), np.eye(3))
    np.testing.assert_array_equal(seeds.numpy(), np.eye(3))
    s = _leaf((2, 3))
    (gs,) = batched_walk.batched_backward((s.sum(),), (s,), (chainrule.ones(4),), retain_graph=False)
    gs.mul_(2)  # sum's rule broadcasts a view; the result is a real array
    np.testing.assert_array_equal(gs.numpy(), np.full((4, 2, 3), 2.0))


def test_freed_graph_raises_torch_error():
    x = _leaf((3,))
    out = x.exp()
    chainrule.autograd.grad(out, x, chainrule.eye(3), is_grads_batched=True)  # retain_graph defaults to False
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        chainrule.autograd.grad(out, x, chainrule.eye(3), is_grads_batched=True)


def test_hooks_take_the_per_row_path(monkeypatch):
    calls = []
    walked = []
    original = batched_walk._run_node
    monkeypatch.setattr(batched_walk, "_run_node", lambda *args: walked.append(1) or original(*args))

    def program(lib):
        x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        h = x.sin()
        h.register_hook(lambda g: calls.append(1) or g * 2)
        return lib.autograd.grad(h * x, x, lib.eye(3, dtype=lib.float64), is_grads_batched=True)[0]

    ours = program(chainrule)
    assert not walked and calls
    np.testing.assert_allclose(ours.numpy(), program(torch).numpy(), rtol=1e-12)


# ---------------------------------------------------------------- the public paths against torch
def _tutorial(lib, d_in, d_out):
    rng = np.random.default_rng(0)
    weight = lib.from_numpy(rng.standard_normal((d_out, d_in)))
    bias = lib.from_numpy(rng.standard_normal(d_out))
    x = lib.from_numpy(rng.standard_normal(d_in))

    def predict(weight, bias, x):
        return lib.nn.functional.linear(x, weight, bias).tanh()

    return predict, weight, bias, x


# torch's Jacobians come from torch.autograd.functional.jacobian: the same numbers as torch.func.jacrev,
# without the seconds torch.func's first call takes to set itself up
@pytest.mark.parametrize("argnums", [2, (0, 1)])
def test_jacrev_of_the_tutorials_predict_matches_torch(monkeypatch, argnums):
    _RowsForbidden(monkeypatch, forbid=True)  # every node of predict has a batched rule
    predict, weight, bias, x = _tutorial(chainrule, 16, 32)
    ours = chainrule.func.jacrev(predict, argnums=argnums)(weight, bias, x)
    predict, weight, bias, x = _tutorial(torch, 16, 32)
    args = [weight, bias, x]
    numbers = argnums if isinstance(argnums, tuple) else (argnums,)

    def of_differentiated(*chosen):
        call = list(args)
        for number, value in zip(numbers, chosen):
            call[number] = value
        return predict(*call)

    theirs = torch.autograd.functional.jacobian(of_differentiated, tuple(args[n] for n in numbers))
    for o, t in zip(ours if isinstance(argnums, tuple) else [ours], theirs):
        assert tuple(o.shape) == tuple(t.shape)
        np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-10, atol=1e-12)


def _mlp_params(lib):
    rng = np.random.default_rng(1)
    return {"w1": lib.from_numpy(rng.standard_normal((8, 5))), "b1": lib.from_numpy(rng.standard_normal(8)),
            "w2": lib.from_numpy(rng.standard_normal((3, 8))), "b2": lib.from_numpy(rng.standard_normal(3))}


def _mlp(lib):
    def forward(params, x):
        h = lib.nn.functional.silu(lib.nn.functional.linear(x, params["w1"], params["b1"]))
        return lib.nn.functional.linear(h, params["w2"], params["b2"]).softmax(-1)

    return forward


@pytest.mark.parametrize("chunk_size", [None, 1, 4, 100])
def test_jacrev_of_an_mlp_over_its_parameters_matches_torch(chunk_size):
    x = np.random.default_rng(2).standard_normal((2, 5))
    ours = chainrule.func.jacrev(_mlp(chainrule), chunk_size=chunk_size)(_mlp_params(chainrule), chainrule.from_numpy(x))
    params = _mlp_params(torch)
    keys = list(params)
    theirs = torch.autograd.functional.jacobian(
        lambda *values: _mlp(torch)(dict(zip(keys, values)), torch.from_numpy(x)), tuple(params.values()))
    assert list(ours) == keys
    for key, t in zip(keys, theirs):
        assert tuple(ours[key].shape) == tuple(t.shape)
        np.testing.assert_allclose(ours[key].numpy(), t.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk_size, error", [(0, ValueError), (-3, ValueError), (1.5, TypeError)])
def test_jacrev_refuses_a_bad_chunk_size_as_torch(chunk_size, error):
    # (torch raises these too: ValueError "should be greater than 0", TypeError from its arithmetic)
    with pytest.raises(error, match="chunk_size"):
        chainrule.func.jacrev(chainrule.sin, chunk_size=chunk_size)(chainrule.ones(3))


@pytest.mark.parametrize("vectorize", [False, True])
def test_functional_jacobian_matches_torch(vectorize):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(4)
    results = []
    for lib in (torch, chainrule):
        def f(x, y, lib=lib):
            # two outputs, one of which does not depend on y; a constant output too
            return (x * y).tanh() @ y, x.exp().sum(0), lib.ones(2)

        results.append(lib.autograd.functional.jacobian(f, (lib.from_numpy(a), lib.from_numpy(b)),
                                                        vectorize=vectorize))
    theirs, ours = results
    for out_o, out_t in zip(ours, theirs):
        for o, t in zip(out_o, out_t):
            assert tuple(o.shape) == tuple(t.shape)
            np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-10, atol=1e-12)


def test_is_grads_batched_matches_torch_on_an_mlp(monkeypatch):
    _RowsForbidden(monkeypatch, forbid=True)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 5))
    cotangents = rng.standard_normal((6, 4, 3))
    results = []
    for lib in (torch, chainrule):
        params = _mlp_params(lib)
        for p in params.values():
            p.requires_grad_()
        xs = lib.from_numpy(x).requires_grad_()
        out = _mlp(lib)(params, xs)
        grads = lib.autograd.grad(out, [xs, *params.values()], lib.from_numpy(cotangents), is_grads_batched=True)
        results.append([g.numpy() for g in grads])
    for o, t in zip(*reversed(results)):
        assert o.shape == t.shape
        np.testing.assert_allclose(o, t, rtol=1e-10, atol=1e-12)


def test_is_grads_batched_unused_input_as_torch():
    for lib in (torch, chainrule):
        x = lib.ones(3, requires_grad=True)
        unused = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match="appears to not have been used"):
            lib.autograd.grad(x * 2, (x, unused), lib.eye(3), is_grads_batched=True, retain_graph=True)
        gx, gu = lib.autograd.grad(x * 2, (x, unused), lib.eye(3), is_grads_batched=True, materialize_grads=True)
        assert tuple(gu.shape) == (2,) and not gu.any()
        np.testing.assert_array_equal(gx.numpy(), 2 * np.eye(3))


def test_jacrev_on_the_cuda_standin_matches_the_cpu():
    from chainrule._backend import use_standin_cuda

    predict, weight, bias, x = _tutorial(chainrule, 4, 6)
    expected = chainrule.func.jacrev(predict, argnums=(0, 2))(weight, bias, x)
    with use_standin_cuda():
        got = chainrule.func.jacrev(predict, argnums=(0, 2))(weight.cuda(), bias.cuda(), x.cuda())
        assert all(g.device.type == "cuda" for g in got)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g.cpu().numpy(), e.numpy(), rtol=1e-12, atol=1e-12)


def test_jacobian_without_chunk_size_keeps_batched_gradients_under_the_budget(monkeypatch):
    walks = []
    original = batched_walk.batched_backward
    monkeypatch.setattr(batched_walk, "batched_backward", lambda *args, **kwargs: walks.append(
        args[2][0].shape[0]) or original(*args, **kwargs))
    # the widest gradient a row needs is w's 5 x 4 = 20 elements (b, a constant, gets none): 3 rows a walk
    monkeypatch.setattr(batched_walk, "_AUTO_CHUNK_ELEMENTS", 60)
    rng = np.random.default_rng(6)
    w, b, x = rng.standard_normal((5, 4)), rng.standard_normal((7, 5)), rng.standard_normal(4)
    ours = chainrule.autograd.functional.jacobian(
        lambda w: chainrule.from_numpy(b) @ (w @ chainrule.from_numpy(x)).sigmoid(), chainrule.from_numpy(w))
    assert walks == [3, 3, 1]
    theirs = torch.autograd.functional.jacobian(lambda w: torch.from_numpy(b) @ (w @ torch.from_numpy(x)).sigmoid(),
                                                torch.from_numpy(w))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("path", ["jacrev", "functional.jacobian"])
def test_a_complex_output_is_refused_as_torch(path):
    """The batched walk seeds real rows; a complex output must not come back as its real part."""
    caught = []
    for lib in (chainrule, torch):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64)
        def f(x):
            return x * (1 + 2j)
        with pytest.raises(RuntimeError) as info:
            if path == "jacrev":
                lib.func.jacrev(f)(x)
            else:
                lib.autograd.functional.jacobian(f, x)
        caught.append(str(info.value).replace("torch.", "chainrule."))
    assert caught[0] == caught[1]


# ---------------------------------------------------------------- jacfwd by reverse rows
def _predict(lib):
    def predict(weight, bias, x):
        return lib.nn.functional.linear(x, weight, bias).tanh()
    return predict


def _predict_args(lib, din, dout):
    rng = np.random.default_rng(3)
    return tuple(lib.tensor(rng.standard_normal(shape)) for shape in ((dout, din), (dout,), (din,)))


@pytest.mark.parametrize("din, dout", [(12, 3), (3, 12)])
def test_jacfwd_takes_the_batched_walk_and_matches_torch(monkeypatch, din, dout):
    """jacfwd's columns are the reverse walk's rows (forward mode derives J·t from the reverse
    rules): one batched walk, no per-element forward run, torch's numbers."""
    ours = chainrule.func.jacfwd(_predict(chainrule), argnums=(0, 2))(*_predict_args(chainrule, din, dout))
    theirs = torch.func.jacfwd(_predict(torch), argnums=(0, 2))(*_predict_args(torch, din, dout))
    from chainrule import func as cfunc
    monkeypatch.setattr(cfunc, "_jvp_with_aux", lambda *a: pytest.fail("a per-element forward run"))
    again = chainrule.func.jacfwd(_predict(chainrule), argnums=(0, 2))(*_predict_args(chainrule, din, dout))
    for o, a, t in zip(ours, again, theirs):
        np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(o.numpy(), a.numpy())
        assert not o.requires_grad


def test_jacfwd_has_aux_and_nested_structures_as_torch():
    def f(lib):
        def g(inputs):
            a, b = inputs["a"], inputs["b"]
            return {"s": (a * b).sin(), "t": a.sum() * b}, (a * 2).cos()
        return g
    results = []
    for lib in (chainrule, torch):
        a = lib.tensor([0.3, -1.2, 2.0], dtype=lib.float64)
        b = lib.tensor([1.5, 0.25, -0.5], dtype=lib.float64)
        jac, aux = lib.func.jacfwd(f(lib), has_aux=True)({"a": a, "b": b})
        results.append((jac, aux))
    (ours, our_aux), (theirs, their_aux) = results
    np.testing.assert_allclose(our_aux.numpy(), their_aux.numpy())
    assert not our_aux.requires_grad
    for out in ("s", "t"):
        for arg in ("a", "b"):
            np.testing.assert_allclose(ours[out][arg].numpy(), theirs[out][arg].numpy(), rtol=1e-12)


@pytest.mark.parametrize("compose", ["hessian", "jacfwd(jacfwd)", "jacrev(jacrev)", "jacrev(jacfwd)"])
def test_hessians_of_the_tutorials_predict_match_torch(compose):
    found = []
    for lib in (chainrule, torch):
        predict = _predict(lib)
        inner_name, outer_name = ("jacrev", "jacfwd") if compose == "hessian" else compose[:-1].split("(")[::-1]
        inner = getattr(lib.func, inner_name)(predict, argnums=2)
        found.append(getattr(lib.func, outer_name)(inner, argnums=2)(*_predict_args(lib, 24, 5)))
    np.testing.assert_allclose(found[0].numpy(), found[1].numpy(), rtol=1e-9, atol=1e-12)


def test_jacfwd_refuses_a_complex_output_as_torch():
    caught = []
    for lib in (chainrule, torch):
        x = lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64)
        with pytest.raises(RuntimeError) as info:
            lib.func.jacfwd(lambda x: (x * (1 + 2j)).exp())(x)
        caught.append(str(info.value))
    assert caught[0] == caught[1]


def test_jacfwd_under_an_outer_jvp_keeps_forward_mode():
    """Tangents on the inputs: the columns must carry them, so forward mode runs."""
    found = []
    for lib in (chainrule, torch):
        x = lib.tensor([0.2, 0.7, -1.1], dtype=lib.float64)
        t = lib.tensor([1.0, 0.5, -2.0], dtype=lib.float64)
        found.append(lib.func.jvp(lib.func.jacfwd(lambda x: (x.sin() * x.sum())), (x,), (t,))[1].detach())
    np.testing.assert_allclose(found[0].numpy(), found[1].numpy(), rtol=1e-12)


def test_jacfwd_runs_a_users_jvp_where_the_function_has_no_backward():
    def cube(lib):
        class Cube(lib.autograd.Function):
            generate_vmap_rule = True  # written for torch.func, as torch's jacfwd requires

            @staticmethod
            def forward(x):
                return x ** 3

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.save_for_forward(inputs[0])

            @staticmethod
            def jvp(ctx, t):
                x, = ctx.saved_tensors
                return 3 * x ** 2 * t

        return Cube

    found = [lib.func.jacfwd(lambda x, c=cube(lib): c.apply(x.sin()))(lib.tensor([1.0, 2.0], dtype=lib.float64))
             for lib in (chainrule, torch)]
    np.testing.assert_allclose(found[0].numpy(), found[1].numpy(), rtol=1e-12)
    np.testing.assert_allclose(found[0].numpy(), np.diag(3 * np.sin([1.0, 2.0]) ** 2 * np.cos([1.0, 2.0])))
