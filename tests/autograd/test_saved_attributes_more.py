"""torch's ``grad_fn._saved_*`` attributes of squeeze, expand, split, gather, clamp, max/min(dim),
avg_pool2d, cumsum/cumprod, amax/amin, logsumexp, flip, roll, tril/triu, sort, topk, index_select,
hardtanh, elu/selu/celu, softplus and indexing (SliceBackward0, UnsqueezeBackward0,
IndexBackward0): the same names, values and types as torch 2.13's on the same inputs (a negative
dim as the C++ node's unsigned, tensors by shape, dtype and values), read lazily from the node."""

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

_OPS = [
    ("squeeze()", lambda lib, h: h.squeeze()),
    ("squeeze(dim)", lambda lib, h: h.squeeze(1)),
    ("squeeze(negative dim)", lambda lib, h: h.squeeze(-3)),
    ("squeeze(dims)", lambda lib, h: h.squeeze((1, 2))),
    ("squeeze(dim of size 2)", lambda lib, h: h.squeeze(0)),
    ("expand", lambda lib, h: h.expand(3, 2, 1, 3, 4)),
    ("expand a size-1 dim", lambda lib, h: h[:, :, :1].expand(2, 1, 3, 4)),
    ("split", lambda lib, h: h.split(2, -1)[1]),
    ("split with sizes", lambda lib, h: h.split([1, 2], 2)[0]),
    ("gather", lambda lib, h: h.gather(2, lib.tensor([[[[0, 1, 0, 2]]]] * 2))),
    ("gather negative dim", lambda lib, h: h.gather(-1, lib.tensor([[[[3, 0]]]] * 2))),
    ("gather sparse_grad", lambda lib, h: lib.gather(h, 3, lib.tensor([[[[1]]]] * 2), sparse_grad=True)),
    ("clamp", lambda lib, h: h.clamp(-0.5, 0.5)),
    ("clamp min", lambda lib, h: h.clamp(min=-0.5)),
    ("clamp max", lambda lib, h: h.clamp(max=0.5)),
    ("clamp_min", lambda lib, h: h.clamp_min(0.1)),
    ("clamp_max", lambda lib, h: lib.clamp_max(h, -0.2)),
    ("max(dim)", lambda lib, h: h.max(3)[0]),
    ("max(negative dim, keepdim)", lambda lib, h: h.max(-1, keepdim=True)[0]),
    ("min(dim)", lambda lib, h: h.min(2).values),
    ("avg_pool2d", lambda lib, h: lib.nn.functional.avg_pool2d(h, 2)),
    ("avg_pool2d all options", lambda lib, h: lib.nn.functional.avg_pool2d(
        h, (2, 3), stride=1, padding=1, ceil_mode=True, count_include_pad=False, divisor_override=3)),
    # dims as given (a negative one as the C++ node's unsigned)
    ("cumsum", lambda lib, h: h.cumsum(-1)),
    ("cumprod", lambda lib, h: h.cumprod(2)),
    ("amax", lambda lib, h: h.amax(-1)),
    ("amax of dims, keepdim", lambda lib, h: h.amax((0, -2), keepdim=True)),
    ("amin of all", lambda lib, h: h.amin()),
    ("flip", lambda lib, h: h.flip(-1)),
    ("flip dims", lambda lib, h: h.flip(0, 2)),
    ("roll", lambda lib, h: h.roll(1)),
    ("roll dims", lambda lib, h: h.roll((1, -2), (-1, 0))),
    ("logsumexp", lambda lib, h: h.logsumexp(-1)),
    ("logsumexp of dims, keepdim", lambda lib, h: h.logsumexp((1, -2), keepdim=True)),
    ("index_select", lambda lib, h: h.index_select(-1, lib.tensor([3, 0, 3]))),
    ("tril", lambda lib, h: h.tril(-1)),
    ("triu", lambda lib, h: h.triu(2)),
    ("sort", lambda lib, h: h.sort()[0]),
    # activations' parameters, of the type the call gave (ints where torch's defaults are ints)
    ("hardtanh", lambda lib, h: lib.nn.functional.hardtanh(h)),
    ("hardtanh of ints", lambda lib, h: lib.nn.functional.hardtanh(h, -2, 3)),
    ("relu6", lambda lib, h: lib.nn.functional.relu6(h)),
    ("elu", lambda lib, h: lib.nn.functional.elu(h, 0.5)),
    ("selu", lambda lib, h: lib.nn.functional.selu(h)),
    ("celu", lambda lib, h: lib.nn.functional.celu(h, 2.0)),
    ("softplus", lambda lib, h: lib.nn.functional.softplus(h)),
    ("softplus with arguments", lambda lib, h: lib.nn.functional.softplus(h, 2, 10)),
    ("sort dim, descending", lambda lib, h: h.sort(2, descending=True).values),
    ("sort stable", lambda lib, h: h.sort(stable=True, dim=-2)[0]),
    ("topk", lambda lib, h: h.topk(2)[0]),
    ("topk smallest along a dim", lambda lib, h: h.topk(2, 2, largest=False).values),
    # basic reads: the values of torch's last step (a slice keeping a whole dim is no step)
    ("slice", lambda lib, h: h[1:]),
    ("slice with step, open end", lambda lib, h: h[:, :, ::2]),
    ("slice negative start", lambda lib, h: h[:, :, -2:]),
    ("slice negative end", lambda lib, h: h[..., :-1]),
    ("slice out of range", lambda lib, h: h[..., -10:10]),
    ("slice empty", lambda lib, h: h[:, :, 2:1]),
    ("slice twice", lambda lib, h: h[0:1, :, 1:3]),
    ("slice after select and new axis", lambda lib, h: h[None, 1, :, 0:2]),
    ("slice then whole dims", lambda lib, h: h[:, :, 1:, :]),
    ("narrow", lambda lib, h: h.narrow(3, 1, 2)),
    ("new axis", lambda lib, h: h[None]),
    ("new axis later", lambda lib, h: h[:, None, :, 1:2, None]),
    ("whole dims", lambda lib, h: h[:, :, 0:7]),
    # advanced reads
    ("index", lambda lib, h: h[lib.tensor([1, 0, 1])]),
    ("index a later dim", lambda lib, h: h[:, :, lib.tensor([2, 0])]),
    ("index after ellipsis", lambda lib, h: h[..., lib.tensor([[3], [0]])]),
    ("index two dims", lambda lib, h: h[:, 0, lib.tensor([1, 2]), lib.tensor([0, 3])]),
    ("mask", lambda lib, h: h[h > 0]),
    ("mask of later dims", lambda lib, h: h[:, :, lib.tensor([True, False, True])]),
]


def _tensor(value):
    return ("tensor", tuple(value.shape), str(value.dtype).split(".")[-1], value.tolist())


def _saved(lib, make):
    x = lib.tensor(np.arange(24.0).reshape(2, 1, 3, 4) / 7 - 1, requires_grad=True)
    node = make(lib, x * 1).grad_fn
    found = {}
    for name in dir(node):
        if name.startswith("_saved_"):
            value = getattr(node, name)
            if isinstance(value, lib.Tensor):
                value = _tensor(value)
            elif isinstance(value, tuple):  # index's tensors
                value = tuple(_tensor(v) if isinstance(v, lib.Tensor) else v for v in value)
            found[name] = (type(value).__name__, value)
    return type(node).__name__, found


@pytest.mark.parametrize("name, make", _OPS, ids=[op[0] for op in _OPS])
def test_saved_attributes_as_torch(name, make):
    assert _saved(cr, make) == _saved(torch, make)


def test_saved_inputs_are_version_checked_as_torch():
    # gather and avg_pool2d keep their input, as torch's: changing it in place breaks backward
    for lib in (cr, torch):
        for op in ("gather", "avg_pool2d"):
            h = lib.ones(1, 2, requires_grad=True) * 1
            y = h.gather(1, lib.tensor([[0, 1]])) if op == "gather" else lib.nn.functional.avg_pool2d(h[None], 1)
            h.add_(1)
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                y.sum().backward()
