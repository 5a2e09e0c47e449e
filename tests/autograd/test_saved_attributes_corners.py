"""torch's ``grad_fn._saved_*`` of the nodes the first tables left out: var/std, vector_norm,
prod, repeat, unfold, diagonal, as_strided, scatter_add, atan2, add/sub with alpha, dot, outer,
conv_transpose, the losses chainrule composes (bce with logits, smooth L1, Huber), padding,
index_put and assignment, adaptive average pools, dims kept as given (sum, mean, softmax), norms
without an affine map, the special functions and the add-a-product ops (addmm, addmv, addr, baddbmm,
addbmm).
The same names, value types and values as torch 2.13's on the same inputs (tensors compared by
shape, dtype and values)."""

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _other(lib, *shape):
    return lib.tensor(np.linspace(-1.5, 2.0, int(np.prod(shape)), dtype=np.float32).reshape(shape))


_OPS = [
    ("var", lambda lib, h: h.var()),
    ("var dim, correction", lambda lib, h: h.var(-1, correction=0, keepdim=True)),
    ("std dim", lambda lib, h: h.std(2)),
    ("std unbiased=False", lambda lib, h: h.std((0, 2), unbiased=False)),
    # torch keeps a correction only where the call names a dim, unbiased or correction
    ("var unbiased", lambda lib, h: h.var(unbiased=False)),
    ("var correction, no dim", lambda lib, h: h.var(correction=2)),
    ("var legacy unbiased", lambda lib, h: lib.var(h, True)),
    ("var empty dims", lambda lib, h: h.var(dim=[])),
    ("std", lambda lib, h: h.std()),
    ("vector_norm", lambda lib, h: lib.linalg.vector_norm(h)),
    ("vector_norm ord dim", lambda lib, h: lib.linalg.vector_norm(h, 3, dim=-1, keepdim=True)),
    ("vector_norm float ord, dims", lambda lib, h: lib.linalg.vector_norm(h, 2.5, dim=(0, -1))),
    ("prod", lambda lib, h: h.prod()),
    ("prod dim", lambda lib, h: h.prod(-1)),
    ("repeat", lambda lib, h: h.repeat(1, 2, 1, 2)),
    ("unfold", lambda lib, h: h.unfold(-1, 2, 1)),
    ("diagonal", lambda lib, h: h.diagonal(1, 2, 3)),
    ("diagonal default", lambda lib, h: h.diagonal()),
    ("as_strided", lambda lib, h: h.as_strided((2, 2), (3, 1), 1)),
    ("scatter_add", lambda lib, h: h.scatter_add(3, lib.tensor([[[[0, 1, 0, 2]]]] * 2), _other(lib, 2, 1, 1, 4))),
    ("scatter_add, src needs grad", lambda lib, h: h.scatter_add(2, lib.tensor([[[[0, 2, 1, 0]]]] * 2), h[:, :, :1])),
    ("atan2", lambda lib, h: lib.atan2(h, _other(lib, 2, 1, 3, 4))),
    ("add alpha", lambda lib, h: lib.add(h, _other(lib, 3, 4), alpha=2)),
    ("sub alpha", lambda lib, h: lib.sub(h, _other(lib, 3, 4), alpha=0.5)),
    ("sub", lambda lib, h: h - _other(lib, 3, 4)),
    ("conv_transpose2d", lambda lib, h: lib.nn.functional.conv_transpose2d(
        h, _other(lib, 1, 2, 3, 3).requires_grad_(), _other(lib, 2), stride=2, padding=1, output_padding=1)),
    ("conv_transpose1d dilated", lambda lib, h: lib.nn.functional.conv_transpose1d(
        h.flatten(0, 1), _other(lib, 3, 2, 2).requires_grad_(), stride=3, dilation=2, output_padding=2)),
    ("conv_transpose2d weight needs grad", lambda lib, h: lib.nn.functional.conv_transpose2d(
        h, h[:1, :, :2, :2].expand(1, 2, 2, 2).contiguous(), groups=1)),
    ("dot", lambda lib, h: lib.dot(h.flatten(), _other(lib, 24))),
    ("outer", lambda lib, h: lib.outer(h.flatten()[:5], _other(lib, 3))),
    # losses chainrule composes, whose one node answers for torch's fused one
    ("binary_cross_entropy_with_logits", lambda lib, h: lib.nn.functional.binary_cross_entropy_with_logits(
        h, _other(lib, 2, 1, 3, 4).sigmoid())),
    ("binary_cross_entropy_with_logits weights", lambda lib, h: lib.nn.functional.binary_cross_entropy_with_logits(
        h, _other(lib, 2, 1, 3, 4).sigmoid(), weight=_other(lib, 4), pos_weight=_other(lib, 4).exp(),
        reduction="sum")),
    ("binary_cross_entropy", lambda lib, h: lib.nn.functional.binary_cross_entropy(
        h.sigmoid(), _other(lib, 2, 1, 3, 4).sigmoid())),
    ("binary_cross_entropy weight, none", lambda lib, h: lib.nn.functional.binary_cross_entropy(
        h.sigmoid(), _other(lib, 2, 1, 3, 4).sigmoid(), weight=_other(lib, 4).abs(), reduction="none")),
    ("smooth_l1_loss", lambda lib, h: lib.nn.functional.smooth_l1_loss(h, _other(lib, 2, 1, 3, 4))),
    ("smooth_l1_loss beta, none", lambda lib, h: lib.nn.functional.smooth_l1_loss(
        h, _other(lib, 2, 1, 3, 4), reduction="none", beta=0.25)),
    ("huber_loss", lambda lib, h: lib.nn.functional.huber_loss(h, _other(lib, 2, 1, 3, 4), reduction="sum")),
    ("huber_loss int delta", lambda lib, h: lib.nn.functional.huber_loss(h, _other(lib, 2, 1, 3, 4), delta=2)),
    # padding: the pad as given
    ("pad constant", lambda lib, h: lib.nn.functional.pad(h, (1, 2))),
    ("pad constant, trailing zeros and a value", lambda lib, h: lib.nn.functional.pad(h, (1, 0, 0, 0), value=2.0)),
    ("pad constant cropping", lambda lib, h: lib.nn.functional.pad(h, (-1, 1, 0, -1))),
    ("pad reflect", lambda lib, h: lib.nn.functional.pad(h, (1, 2, 2, 0), mode="reflect")),
    ("pad reflect 1-d", lambda lib, h: lib.nn.functional.pad(h[0], (3, 1), mode="reflect")),
    ("pad replicate", lambda lib, h: lib.nn.functional.pad(h, (0, 2, 1, 1), mode="replicate")),
    ("pad replicate 3-d", lambda lib, h: lib.nn.functional.pad(h[None], (1, 1, 0, 2, 1, 0), mode="replicate")),
    # index_put, functional and by assignment: the indices as torch reads the key
    ("index_put", lambda lib, h: h.index_put((lib.tensor([1, 0]),), lib.tensor(5.0))),
    ("index_put accumulate", lambda lib, h: lib.index_put(
        h, (lib.tensor([1]), lib.tensor([0]), lib.tensor([2, 0])), lib.tensor(5.0), accumulate=True)),
    ("setitem tensor", lambda lib, h: _assigned(h, lib.tensor([1]), 3.0)),
    ("setitem later dim", lambda lib, h: _assigned(h, (slice(None), slice(None), lib.tensor([2, 0])), 3.0)),
    ("setitem ellipsis and list", lambda lib, h: _assigned(h, (Ellipsis, [3, 1]), 3.0)),
    ("setitem mask", lambda lib, h: _assigned(h, h > 0, 0.0)),
    ("setitem two tensors", lambda lib, h: _assigned(h, (lib.tensor([0, 1]), lib.tensor([0]), lib.tensor([1, 2])), 0.0)),
    # adaptive average pools keep their input; 1-d is torch's unsqueeze, 2-d pool, squeeze
    ("adaptive_avg_pool1d", lambda lib, h: lib.nn.functional.adaptive_avg_pool1d(h[0], 3)),
    ("adaptive_avg_pool1d's pool", lambda lib, h: _pool_of(lib.nn.functional.adaptive_avg_pool1d(h[0], 3))),
    ("adaptive_avg_pool1d global", lambda lib, h: _pool_of(lib.nn.functional.adaptive_avg_pool1d(h[0], 1))),
    ("adaptive_avg_pool2d", lambda lib, h: lib.nn.functional.adaptive_avg_pool2d(h, (2, 3))),
    ("adaptive_avg_pool2d global", lambda lib, h: lib.nn.functional.adaptive_avg_pool2d(h, 1)),
    ("adaptive_avg_pool3d", lambda lib, h: lib.nn.functional.adaptive_avg_pool3d(h, (1, 2, 3))),
    ("adaptive_avg_pool3d global", lambda lib, h: lib.nn.functional.adaptive_avg_pool3d(h, 1)),
    # dims as given: negative (the C++ node's unsigned), unsorted, empty
    ("unsqueeze negative dim", lambda lib, h: h.unsqueeze(-2)),
    ("unsqueeze dim", lambda lib, h: h.unsqueeze(4)),
    ("sum negative dim", lambda lib, h: h.sum(-1)),
    ("sum dims unsorted", lambda lib, h: h.sum((3, 0), keepdim=True)),
    ("sum empty dims", lambda lib, h: h.sum([])),
    ("mean negative dims", lambda lib, h: h.mean((-2, 1))),
    ("sum NumPy integer dim", lambda lib, h: h.sum(np.int64(-1))),
    ("mean NumPy integer dims", lambda lib, h: h.mean((np.int32(-1), np.int64(0)))),
    ("softmax NumPy integer dim", lambda lib, h: h.softmax(np.int64(-2))),
    ("softmax negative dim", lambda lib, h: h.softmax(-1)),
    ("log_softmax negative dim", lambda lib, h: lib.log_softmax(h, -3)),
    ("softmax dim", lambda lib, h: h.softmax(2)),
    # norms without an affine map: torch's one node keeps the input, the mean and 1/σ
    ("layer_norm without affine", lambda lib, h: lib.nn.functional.layer_norm(h, (3, 4))),
    ("batch_norm training without affine", lambda lib, h: lib.nn.functional.batch_norm(
        h.transpose(1, 2), lib.zeros(3), lib.ones(3), training=True, eps=0.1)),
    ("batch_norm training, no running stats", lambda lib, h: lib.nn.functional.batch_norm(h, None, None, training=True)),
    # add-a-product ops: alpha and beta as given, each factor kept only for the other's gradient
    ("addmm", lambda lib, h: lib.addmm(_other(lib, 3, 2), h[0, 0], _other(lib, 4, 2), beta=2, alpha=0.5)),
    ("addmm transposed factor needs grad", lambda lib, h: lib.addmm(_other(lib, 3), _other(lib, 2, 4), h[1, 0].T)),
    ("addmm both need grad", lambda lib, h: lib.addmm(h[0, 0, 0, :3], h[1, 0], h[0, 0].T, alpha=3)),
    ("baddbmm", lambda lib, h: lib.baddbmm(_other(lib, 2, 3, 3), h[:, 0], _other(lib, 2, 4, 3), beta=0.5)),
    ("addmv", lambda lib, h: lib.addmv(_other(lib, 3), h[0, 0], _other(lib, 4), alpha=2)),
    ("addr", lambda lib, h: lib.addr(h[0, 0], _other(lib, 3), h[1, 0, 0], alpha=2)),
    ("addbmm", lambda lib, h: lib.addbmm(_other(lib, 3, 2), h[:, 0], _other(lib, 2, 4, 2))),
    # interpolate's upsample nodes: sizes, scales (None where a size was given or recomputed)
    ("interpolate nearest", lambda lib, h: lib.nn.functional.interpolate(h, scale_factor=2)),
    ("interpolate nearest to a size", lambda lib, h: lib.nn.functional.interpolate(h, size=(5, 7))),
    ("interpolate bilinear, align_corners", lambda lib, h: lib.nn.functional.interpolate(
        h, scale_factor=(2, 1.5), mode="bilinear", align_corners=True)),
    ("interpolate bicubic recomputed", lambda lib, h: lib.nn.functional.interpolate(
        h, scale_factor=2, mode="bicubic", recompute_scale_factor=True)),
    ("interpolate linear", lambda lib, h: lib.nn.functional.interpolate(h[0], scale_factor=2.5, mode="linear")),
    ("interpolate nearest-exact 1-d", lambda lib, h: lib.nn.functional.interpolate(h[0], size=6, mode="nearest-exact")),
    ("interpolate trilinear", lambda lib, h: lib.nn.functional.interpolate(h[None], scale_factor=2, mode="trilinear")),
    ("interpolate nearest 3-d", lambda lib, h: lib.nn.functional.interpolate(h[None], size=(2, 3, 5))),
    ("scatter", lambda lib, h: h.scatter(3, lib.tensor([[[[0, 1, 0, 2]]]] * 2), _other(lib, 2, 1, 1, 4))),
    ("scatter src needs grad", lambda lib, h: _other(lib, 2, 1, 3, 4).scatter(-1, lib.tensor([[[[3, 0]]]] * 2), h)),
    ("scatter value, negative dim", lambda lib, h: h.scatter(-2, lib.tensor([[[[2, 0, 1, 1]]]] * 2), 0.5)),
    # binary math: the operands torch keeps for the gradients asked for
    ("xlogy", lambda lib, h: lib.xlogy(h, _other(lib, 3, 4).exp())),
    ("hypot", lambda lib, h: lib.hypot(h, _other(lib, 3, 4))),
    ("hypot, other needs grad", lambda lib, h: lib.hypot(_other(lib, 3, 4), h)),
    ("remainder by a tensor", lambda lib, h: lib.remainder(h, _other(lib, 3, 4).abs() + 0.5)),
    ("remainder by a tensor needing grad", lambda lib, h: lib.remainder(_other(lib, 3, 4), h.abs() + 0.5)),
    ("remainder by a number", lambda lib, h: lib.remainder(h, 0.3)),
    ("addcmul", lambda lib, h: lib.addcmul(_other(lib, 3, 4), h, _other(lib, 4), value=0.5)),
    ("addcmul both need grad", lambda lib, h: lib.addcmul(h, h[0], h[1])),
    ("addcdiv", lambda lib, h: lib.addcdiv(_other(lib, 3, 4), h, _other(lib, 4).exp(), value=2)),
    ("addcdiv divisor needs grad", lambda lib, h: lib.addcdiv(_other(lib, 3, 4), _other(lib, 4), h.exp())),
    ("logaddexp2", lambda lib, h: lib.logaddexp2(h, _other(lib, 3, 4))),
    # activations: their input, their parameter
    ("threshold", lambda lib, h: lib.nn.functional.threshold(h, 0.25, 2.0)),
    ("threshold int", lambda lib, h: lib.threshold(h, 0, -1)),
    ("mish", lambda lib, h: lib.nn.functional.mish(h)),
    ("hardshrink", lambda lib, h: lib.nn.functional.hardshrink(h)),
    ("hardshrink int lambd", lambda lib, h: lib.nn.functional.hardshrink(h * 3, 1)),
    ("softshrink", lambda lib, h: lib.nn.functional.softshrink(h, 0.25)),
    ("hardsigmoid", lambda lib, h: lib.nn.functional.hardsigmoid(h * 4)),
    ("hardswish", lambda lib, h: lib.nn.functional.hardswish(h * 4)),
    ("logsigmoid", lambda lib, h: lib.nn.functional.logsigmoid(h * 3)),
    ("glu", lambda lib, h: lib.nn.functional.glu(h)),
    ("glu dim", lambda lib, h: lib.nn.functional.glu(h, -4)),
    # special functions: their input, their output, their parameter
    ("lgamma", lambda lib, h: lib.lgamma(h)),
    ("digamma", lambda lib, h: lib.digamma(h.exp())),
    ("special.i1", lambda lib, h: lib.special.i1(h)),
    ("special.ndtri", lambda lib, h: lib.special.ndtri(h.sigmoid())),
    ("special.log_ndtr", lambda lib, h: lib.special.log_ndtr(h)),
    ("polygamma", lambda lib, h: lib.polygamma(2, h.exp())),
    ("mvlgamma", lambda lib, h: lib.mvlgamma(h.exp() + 1, 2)),
    ("logit", lambda lib, h: lib.logit(h.sigmoid())),
    ("logit eps", lambda lib, h: lib.logit(h, eps=0.25)),
    ("igamma", lambda lib, h: lib.igamma(h.exp(), _other(lib, 2, 1, 3, 4).exp())),
    ("igammac, x needs grad", lambda lib, h: lib.igammac(_other(lib, 3, 4).exp(), h.exp())),
    ("copysign", lambda lib, h: lib.copysign(h, _other(lib, 3, 4))),
    ("asinh", lambda lib, h: lib.asinh(h)),
]


def _assigned(h, key, value):
    h = h.clone()
    h[key] = value
    return h


class _PoolOf:
    """The node under a squeeze (a stand-in output whose grad_fn is it)."""

    def __init__(self, node):
        self.grad_fn = node


def _pool_of(output):
    return _PoolOf(output.grad_fn.next_functions[0][0])


def _tensor(value):
    return ("tensor", tuple(value.shape), str(value.dtype).split(".")[-1], np.asarray(value.tolist()))


def _saved(lib, make):
    x = lib.tensor(np.arange(24.0, dtype=np.float32).reshape(2, 1, 3, 4) / 7 - 1, requires_grad=True)
    node = make(lib, x * 1).grad_fn
    found = {}
    for name in dir(node):
        if name.startswith("_saved_"):
            value = getattr(node, name)
            if isinstance(value, lib.Tensor):
                value = _tensor(value)
            elif isinstance(value, tuple):
                value = tuple(_tensor(v) if isinstance(v, lib.Tensor) else v for v in value)
            found[name] = (type(value).__name__, value)
    return type(node).__name__, found


@pytest.mark.parametrize("name, make", _OPS, ids=[op[0] for op in _OPS])
def test_saved_attributes_as_torch(name, make):
    (ours_node, ours), (their_node, theirs) = _saved(cr, make), _saved(torch, make)
    assert ours_node == their_node and sorted(ours) == sorted(theirs)
    for attribute, (their_type, their_value) in theirs.items():
        our_type, our_value = ours[attribute]
        assert our_type == their_type, attribute
        _assert_same(our_value, their_value)


def _assert_same(ours, theirs):
    if isinstance(theirs, tuple) and theirs and theirs[0] == "tensor":
        assert ours[:3] == theirs[:3]
        np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-6, atol=1e-6)  # float32 rounding may differ
    elif isinstance(theirs, tuple):
        assert len(ours) == len(theirs)
        for mine, their in zip(ours, theirs):
            _assert_same(mine, their)
    else:
        assert ours == theirs


_READ_KEYS = [(1,), (slice(None), -1), (Ellipsis, 2), (0, 1), (None, 0, slice(1, 3)), (slice(None), None),
              (0, slice(None, None, 2)), (-1, Ellipsis, slice(-3, None))]


@pytest.mark.parametrize("key", _READ_KEYS, ids=str)
def test_basic_read_nodes_keep_torchs_values_of_their_last_step(key):
    """x[key]'s one node (Select/Slice/Unsqueeze) reports the last step's dim, index or bounds and
    the sizes of the tensor that step read, as torch (a negative index as its unsigned C++ value)."""
    names = ("_saved_dim", "_saved_index", "_saved_start", "_saved_end", "_saved_step", "_saved_self_sym_sizes")
    nodes = [lib.zeros(3, 4, 5, requires_grad=True)[key].grad_fn for lib in (cr, torch)]
    ours, theirs = ({n: getattr(node, n, "absent") for n in names} for node in nodes)
    assert nodes[0].name() == nodes[1].name()
    assert ours == theirs
