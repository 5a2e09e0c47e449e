"""Saved tensors of nodes (grad_fn._saved_* / _raw_saved_*) against torch 2.13: the names a node
lists, their values before and after backward (retain_graph both ways, torch's "freed" error),
and the node names of the batch norms composed of several nodes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _tensor(lib, *shape, seed=0, grad=True):
    return lib.tensor(np.random.RandomState(seed).randn(*shape).astype(np.float32), requires_grad=grad)


def _encoded(value):
    """A saved value as plain data: a tensor's shape, dtype and values (rounded), a number, a tuple."""
    if isinstance(value, (tuple, list)):
        return tuple(_encoded(v) for v in value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else round(value, 5)
    if hasattr(value, "unpack"):  # a _raw_saved_* SavedTensor: its type only (torch's refuses some unpacks)
        return "SavedTensor"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        values = value.detach().tolist()
        if value.dtype.is_floating_point:
            values = np.round(np.asarray(values, dtype=np.float64), 4).tolist()
        return tuple(value.shape), str(value.dtype).rpartition(".")[2], values
    return value


def _read(node, name):
    try:
        return _encoded(getattr(node, name))
    except RuntimeError as error:
        return "RuntimeError", str(error).split(".")[0]


def _saved(lib, build, retain):
    lib.manual_seed(0)
    out = build(lib)
    out = out[0] if isinstance(out, tuple) else out
    node = out.grad_fn
    names = sorted(n for n in dir(node) if n.startswith(("_saved_", "_raw_saved_")))
    before = {n: _read(node, n) for n in names}
    out.sum().backward(retain_graph=retain)
    return node.name(), names, before, {n: _read(node, n) for n in names}


def _put(lib, accumulate, source_grad=True):
    return _tensor(lib, 3, 4).put(lib.tensor([0, -5]), _tensor(lib, 2, seed=1, grad=source_grad), accumulate=accumulate)


# (name, build(lib) -> output): ops whose nodes declared none of torch's saved attributes
_OPS = [
    ("take", lambda lib: _tensor(lib, 3, 4).take(lib.tensor([0, 5, -1]))),
    ("masked_select", lambda lib: _tensor(lib, 3, 1).masked_select(lib.tensor([[True, False, True, False]]))),
    ("cummax", lambda lib: _tensor(lib, 3, 4).cummax(1)),
    ("cummin_negative_dim", lambda lib: _tensor(lib, 3, 4).cummin(-2)),
    ("kthvalue", lambda lib: _tensor(lib, 3, 4).kthvalue(2, -1, keepdim=True)),
    ("median_dim", lambda lib: _tensor(lib, 3, 4).median(1)),
    ("nanmedian_dim", lambda lib: _tensor(lib, 3, 4).nanmedian(-1)),
    ("mode", lambda lib: _tensor(lib, 3, 4).mode(-2)),
    ("index_add", lambda lib: _tensor(lib, 3, 4).index_add(-2, lib.tensor([0, 2]), _tensor(lib, 2, 4, seed=1),
                                                         alpha=2)),
    ("index_add_source_no_grad", lambda lib: _tensor(lib, 3, 4).index_add(0, lib.tensor([0, 2]),
                                                                         _tensor(lib, 2, 4, seed=1, grad=False))),
    ("index_copy", lambda lib: _tensor(lib, 3, 4).index_copy(-1, lib.tensor([0, 2]), _tensor(lib, 3, 2, seed=1))),
    ("index_fill", lambda lib: _tensor(lib, 3, 4).index_fill(-1, lib.tensor([0, 2]), 1.5)),
    ("index_fill_tensor", lambda lib: _tensor(lib, 3, 4).index_fill(0, lib.tensor([1]), lib.tensor(2.0))),
    ("index_fill_tensor_grad", lambda lib: _tensor(lib, 3, 4).index_fill(
        -2, lib.tensor([0, 2]), lib.tensor(1.5, requires_grad=True))),
    ("put", lambda lib: _put(lib, False)),
    ("put_accumulate_source_no_grad", lambda lib: _put(lib, True, source_grad=False)),
    ("rrelu_training", lambda lib: lib.nn.functional.rrelu(_tensor(lib, 3, 4), 0.1, 0.3, training=True)),
    ("multi_margin_loss", lambda lib: lib.nn.functional.multi_margin_loss(
        _tensor(lib, 3, 4), lib.tensor([0, 1, 3]), p=2, margin=0.5, weight=_tensor(lib, 4, seed=1, grad=False),
        reduction="sum")),
    ("multilabel_margin_loss", lambda lib: lib.nn.functional.multilabel_margin_loss(
        _tensor(lib, 3, 4), lib.tensor([[0, 1, -1, 0], [3, -1, 1, 1], [2, 1, 0, 3]]), reduction="none")),
    ("grid_sample", lambda lib: lib.nn.functional.grid_sample(
        _tensor(lib, 1, 2, 4, 4), _tensor(lib, 1, 3, 3, 2, seed=1) * 0.5, mode="bicubic", padding_mode="reflection",
        align_corners=False)),
    ("grid_sample_3d_nearest", lambda lib: lib.nn.functional.grid_sample(
        _tensor(lib, 1, 2, 3, 4, 4), _tensor(lib, 1, 2, 3, 3, 3, seed=1, grad=False), mode="nearest",
        padding_mode="border", align_corners=True)),
    ("embedding_bag_mean_2d", lambda lib: lib.nn.functional.embedding_bag(lib.tensor([[0, 2, 2], [1, 3, 4]]),
                                                                           _tensor(lib, 5, 3))),
    ("embedding_bag_sum_weights", lambda lib: lib.nn.functional.embedding_bag(
        lib.tensor([0, 2, 1, 3]), _tensor(lib, 5, 3), lib.tensor([0, 2, 2]), mode="sum",
        per_sample_weights=_tensor(lib, 4, seed=1))),
    ("embedding_bag_max_padding", lambda lib: lib.nn.functional.embedding_bag(
        lib.tensor([0, 2, 1, 3, 4]), _tensor(lib, 5, 3), lib.tensor([0, 2, 2]), mode="max", padding_idx=-4)),
    ("embedding_bag_float64_sum", lambda lib: lib.nn.functional.embedding_bag(
        lib.tensor([0, 2, 1, 3]), _tensor(lib, 5, 3).double(), lib.tensor([0, 2]), mode="sum",
        include_last_offset=True)),
    ("group_norm_weight", lambda lib: lib.nn.functional.group_norm(_tensor(lib, 2, 4, 3), 2, _tensor(lib, 4, seed=1))),
    ("group_norm", lambda lib: lib.nn.functional.group_norm(_tensor(lib, 2, 6, 2, 2).double(), 3, eps=1e-3)),
    ("batch_norm_eval", lambda lib: lib.nn.functional.batch_norm(
        _tensor(lib, 2, 3, 4), lib.zeros(3) + 0.5, lib.ones(3) * 2, _tensor(lib, 3, seed=1), None, training=False,
        eps=1e-3)),
    ("batch_norm_eval_float64", lambda lib: lib.nn.functional.batch_norm(
        _tensor(lib, 2, 3).double(), lib.zeros(3).double(), lib.ones(3).double(), None,
        _tensor(lib, 3, seed=1, grad=False).double(), training=False)),
]


@pytest.mark.parametrize("retain", [True, False])
@pytest.mark.parametrize("name, build", _OPS, ids=[case[0] for case in _OPS])
def test_saved_attributes_as_torchs(name, build, retain):
    assert _saved(chainrule, build, retain) == _saved(torch, build, retain)


def test_eval_rrelu_lists_torchs_names():
    # (its noise is torch's empty_like, never read in eval mode: compared by shape only)
    seen = {}
    for lib in (torch, chainrule):
        node = lib.nn.functional.rrelu(_tensor(lib, 3, 4), 0.1, 0.2).grad_fn
        seen[lib.__name__] = (node.name(), sorted(n for n in dir(node) if n.startswith(("_saved_", "_raw_saved_"))),
                              node._saved_lower, node._saved_upper, node._saved_training, tuple(node._saved_noise.shape))
    assert seen["chainrule"] == seen["torch"]


def _batch_norm(lib, dtype, training, weight, bias):
    rows = np.random.RandomState(3)
    x = lib.tensor(rows.randn(2, 3, 4), dtype=dtype, requires_grad=True)
    w = lib.tensor(rows.rand(3) + 0.5, dtype=dtype, requires_grad=True) if weight else None
    b = lib.tensor(rows.randn(3), dtype=dtype, requires_grad=True) if bias else None
    running = lib.tensor(rows.randn(3) * 0.1, dtype=dtype), lib.tensor(rows.rand(3) + 0.5, dtype=dtype)
    out = lib.nn.functional.batch_norm(x, *running, w, b, training=training, eps=1e-4)
    node = out.grad_fn
    names = sorted(n for n in dir(node) if n.startswith("_saved_"))
    values = {n: _read(node, n) for n in names}
    out.pow(2).sum().backward()
    grads = [None if t is None else np.round(t.grad.numpy(), 6).tolist() for t in (x, w, b)]
    return node.name(), values, grads


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("weight, bias", [(True, False), (False, True)])
def test_float64_batch_norm_with_one_affine_parameter_is_one_node(training, weight, bias):
    # torch's NativeBatchNormBackward0, where the float64 norm and its affine were MulBackward0/AddBackward0
    assert (_batch_norm(chainrule, chainrule.float64, training, weight, bias)
            == _batch_norm(torch, torch.float64, training, weight, bias))


def _indices_read(lib, key, retain):
    out = _tensor(lib, 3, 4, 2)[key(lib)]
    node = out.grad_fn

    def reads():
        raw = node._raw_saved_indices
        unpacked = [None if r.unpack() is None else tuple(r.unpack().shape) for r in raw]
        return type(raw).__name__, [type(r).__name__ for r in raw], unpacked, _encoded(node._saved_indices)

    before = reads()
    out.sum().backward(retain_graph=retain)
    try:
        after = reads()
    except RuntimeError as error:
        after = str(error).split(".")[0]
    return before, after


_INDEX_KEYS = [
    ("vector", lambda lib: lib.tensor([0, 2])),
    ("after_a_slice", lambda lib: (slice(None), lib.tensor([[0, 1]]))),
    ("around_a_slice", lambda lib: (lib.tensor([0, 2]), slice(None), lib.tensor([1, 0]))),
    ("after_an_ellipsis", lambda lib: (Ellipsis, lib.tensor([1, 0]))),
    ("after_none", lambda lib: (None, lib.tensor([0, 2]))),
    ("mask", lambda lib: lib.tensor([True, False, True])),
]


@pytest.mark.parametrize("retain", [True, False])
@pytest.mark.parametrize("name, key", _INDEX_KEYS, ids=[case[0] for case in _INDEX_KEYS])
def test_index_raw_saved_indices_is_a_tuple_of_saved_tensors(name, key, retain):
    # one SavedTensor per index, a slice's unpacking to None; torch's freed error for the whole list
    assert _indices_read(chainrule, key, retain) == _indices_read(torch, key, retain)


def test_index_put_raw_saved_indices_is_a_tuple():
    seen = {}
    for lib in (torch, chainrule):
        node = _tensor(lib, 3, 4).index_put((lib.tensor([0, 1]), lib.tensor([2, 3])), lib.tensor(1.0)).grad_fn
        seen[lib.__name__] = [tuple(r.unpack().tolist()) for r in node._raw_saved_indices]
    assert seen["chainrule"] == seen["torch"] == [(0, 1), (2, 3)]


# (name, build(lib) -> output): ops given a negative dim, which torch's node reports as given
_NEGATIVE_DIMS = [
    ("select", lambda lib: _tensor(lib, 3, 4).select(-1, 1)),
    ("narrow", lambda lib: _tensor(lib, 3, 4).narrow(-1, 1, 2)),
    ("cat", lambda lib: lib.cat([_tensor(lib, 3, 4), _tensor(lib, 3, 2, seed=1)], -1)),
    ("chunk", lambda lib: _tensor(lib, 3, 4).chunk(2, -1)[1]),
    ("permute", lambda lib: _tensor(lib, 3, 4, 2).permute(-1, 0, -2)),
    ("scatter_add", lambda lib: _tensor(lib, 3, 4).scatter_add(-1, lib.tensor([[0], [1], [2]]), _tensor(lib, 3, 1))),
    ("diagonal", lambda lib: _tensor(lib, 3, 4).diagonal(1, -1, -2)),
    ("cumulative_trapezoid", lambda lib: lib.cumulative_trapezoid(_tensor(lib, 3, 4))),
    ("cosine_similarity", lambda lib: lib.nn.functional.cosine_similarity(_tensor(lib, 3, 4), _tensor(lib, 3, 4, seed=1),
                                                                          dim=-1)),
    ("index_select_positive", lambda lib: _tensor(lib, 3, 4)[:, -1]),  # (an index key's dim: torch's is positive)
]


@pytest.mark.parametrize("name, build", _NEGATIVE_DIMS, ids=[case[0] for case in _NEGATIVE_DIMS])
def test_negative_dims_as_torchs_nodes_report_them(name, build):
    def dims(lib):
        node = build(lib).grad_fn
        return node.name(), {n: getattr(node, n) for n in dir(node) if n.startswith("_saved_") and "dim" in n}

    assert dims(chainrule) == dims(torch)


def _norm(lib, which, weight, bias, dtype):
    rows = np.random.RandomState(4)
    t = lambda *shape: lib.tensor(rows.randn(*shape), dtype=getattr(lib, dtype), requires_grad=True)  # noqa: E731
    if which == "layer_norm":
        return lib.nn.functional.layer_norm(t(2, 3, 4), (3, 4), t(3, 4) if weight else None, t(3, 4) if bias else None)
    if which == "group_norm":
        return lib.nn.functional.group_norm(t(2, 4, 3), 2, t(4) if weight else None, t(4) if bias else None)
    running = (lib.zeros(3, dtype=getattr(lib, dtype)), lib.ones(3, dtype=getattr(lib, dtype))) \
        if which == "batch_norm" else (None, None)
    return lib.nn.functional.batch_norm(t(2, 3, 4), *running, t(3) if weight else None, t(3) if bias else None,
                                        training=True)


def _packs(lib, which, weight, bias, dtype):
    calls = []

    def pack(tensor, calls=calls):
        calls.append(("pack", tuple(tensor.shape)))
        return tensor

    def unpack(tensor, calls=calls):
        calls.append(("unpack", tuple(tensor.shape)))
        return tensor

    with lib.autograd.graph.saved_tensors_hooks(pack, unpack):
        out = _norm(lib, which, weight, bias, dtype)
    packed = list(calls)
    calls.clear()
    out.sum().backward()
    return out.grad_fn.name(), packed, sorted(calls)


# (torch's group norm given a bias alone fails its backward through these hooks: "tensor does not have a device")
_NORM_CASES = [(which, weight, bias, dtype) for which in ("layer_norm", "batch_norm", "batch_norm_no_stats", "group_norm")
               for weight, bias in ((True, True), (True, False), (False, True), (False, False))
               for dtype in ("float32", "float64")
               if (dtype == "float32" or which == "layer_norm" or weight == bias)
               and not (which == "group_norm" and bias and not weight)]


@pytest.mark.parametrize("which, weight, bias, dtype", _NORM_CASES)
def test_norms_pack_their_saved_tensors_and_results_in_torchs_order(which, weight, bias, dtype):
    # torch's node saves its arguments then its results (mean, 1/σ): saved_tensors_hooks packs each,
    # in that order, and the backward unpacks each
    assert _packs(chainrule, which, weight, bias, dtype) == _packs(torch, which, weight, bias, dtype)
