"""Shape ops (chainrule/ops/shape.py): views, joins, splits, copies (repeat, flip, roll, tril), unfold and pad."""

from __future__ import annotations

from .core import OpCase, OpInfo, cached, noncontig, randn, select


@cached
def _cases() -> list[OpCase]:
    A = randn(2, 3, 4)
    M = randn(4, 5, seed=1)
    V = randn(6, seed=2)
    S = randn(seed=3)
    E = randn(0, 3, seed=4)

    def _pad(lib, *args, **kwargs):
        return (lib.nn.functional.pad if lib.__name__ == "torch" else lib.pad)(*args, **kwargs)

    VIEWS = [
        ("reshape", lambda lib, x: x.reshape(4, -1), A),
        ("reshape_tuple", lambda lib, x: lib.reshape(x, (3, 8)), A),
        ("reshape_noncontig", lambda lib, x: x.reshape(-1), noncontig(A)),
        ("view", lambda lib, x: x.view(6, 4), A),
        ("view_0d", lambda lib, x: x.view(1, 1), S),
        ("view_as", lambda lib, x: x.view_as(x.reshape(4, 6)), A),
        ("expand", lambda lib, x: x.reshape(3, 1, 2).expand(3, 4, 2), V),
        ("expand_new_dims", lambda lib, x: x.expand(2, 3, -1), V),
        ("expand_0d", lambda lib, x: x.expand(3, 2), S),
        ("broadcast_to", lambda lib, x: lib.broadcast_to(x, (2, 6)), V),
        ("transpose", lambda lib, x: x.transpose(0, -1), A),
        ("swapaxes", lambda lib, x: lib.swapaxes(x, 1, 2), A),
        ("permute", lambda lib, x: x.permute(2, 0, 1), A),
        ("permute_neg", lambda lib, x: x.permute(-1, -3, -2), noncontig(A)),
        ("t", lambda lib, x: x.t(), M),
        ("T", lambda lib, x: x.T, M),
        ("mT", lambda lib, x: x.mT, A),
        ("squeeze", lambda lib, x: x.reshape(1, 6, 1).squeeze(), V),
        ("squeeze_dim", lambda lib, x: x.reshape(1, 6, 1).squeeze(-1), V),
        ("squeeze_tuple", lambda lib, x: x.reshape(1, 6, 1).squeeze((0, 2)), V),
        ("squeeze_nonone", lambda lib, x: x.squeeze(1), A),
        ("unsqueeze", lambda lib, x: x.unsqueeze(-1), A),
        ("unsqueeze_0d", lambda lib, x: x.unsqueeze(0), S),
        ("flatten", lambda lib, x: x.flatten(), A),
        ("flatten_range", lambda lib, x: x.flatten(1, -1), A),
        ("flatten_0d", lambda lib, x: x.flatten(), S),
        ("unflatten", lambda lib, x: x.unflatten(-1, (2, 2)), A),
        ("unflatten_infer", lambda lib, x: x.unflatten(1, (-1, 3)), randn(2, 6)),
        ("movedim", lambda lib, x: lib.movedim(x, 0, -1), A),
        ("movedim_multi", lambda lib, x: lib.movedim(x, (0, 1), (2, 0)), A),
        ("ravel", lambda lib, x: x.ravel(), noncontig(A)),
        ("atleast_2d", lambda lib, x: lib.atleast_2d(x), V),
        ("atleast_3d", lambda lib, x: lib.atleast_3d(x), M),
        ("atleast_3d_1d", lambda lib, x: lib.atleast_3d(x), V),
        ("narrow", lambda lib, x: x.narrow(1, 1, 2), A),
        ("narrow_neg_start", lambda lib, x: lib.narrow(x, -1, -3, 2), A),
        ("select", lambda lib, x: x.select(1, -1), A),
        ("select_fn", lambda lib, x: lib.select(x, 0, 1), A),
        ("unfold", lambda lib, x: x.unfold(0, 2, 1), V),
        ("unfold_step", lambda lib, x: x.unfold(-1, 2, 2), A),
        ("unfold_overlap", lambda lib, x: x.unfold(1, 3, 1), M),
        ("unfold_gap", lambda lib, x: x.unfold(1, 2, 3), M),
        ("unfold_noncontig", lambda lib, x: x.unfold(0, 2, 1), noncontig(M)),
        ("clone", lambda lib, x: x.clone(), A),
        ("contiguous", lambda lib, x: x.t().contiguous(), M),
    ]

    COPIES = [
        ("repeat", lambda lib, x: x.repeat(2, 1, 3), A),
        ("repeat_new_dims", lambda lib, x: x.repeat(2, 3, 1), M),
        ("repeat_0d", lambda lib, x: x.repeat(3), S),
        ("repeat_zero", lambda lib, x: x.repeat(0, 2), M),
        ("tile", lambda lib, x: lib.tile(x, (2,)), M),
        ("tile_more", lambda lib, x: x.tile((2, 1, 2)), M),
        ("flip", lambda lib, x: lib.flip(x, (0, 2)), A),
        ("flip_neg", lambda lib, x: x.flip(-1), noncontig(M)),
        ("flip_none", lambda lib, x: lib.flip(x, ()), M),
        ("fliplr", lambda lib, x: lib.fliplr(x), M),
        ("flipud", lambda lib, x: lib.flipud(x), V),
        ("roll", lambda lib, x: lib.roll(x, 2, 1), A),
        ("roll_multi", lambda lib, x: x.roll((1, -2), (0, -1)), A),
        ("roll_flat", lambda lib, x: lib.roll(x, 5), A),
        ("tril", lambda lib, x: lib.tril(x), M),
        ("tril_diag", lambda lib, x: x.tril(-1), A),
        ("triu", lambda lib, x: lib.triu(x, 1), M),
        ("triu_batched", lambda lib, x: x.triu(), A),
    ]

    JOINS = [
        ("cat", lambda lib, a, b: lib.cat([a, b], 0), [M, randn(2, 5, seed=5)]),
        ("cat_neg", lambda lib, a, b: lib.cat((a, b), -1), [M, randn(4, 2, seed=5)]),
        ("cat_empty", lambda lib, a, b: lib.cat([a, b]), [E, randn(2, 3, seed=5)]),
        ("concat", lambda lib, a, b: lib.concat([a, b], 1), [M, noncontig(randn(4, 3, seed=5))]),
        ("stack", lambda lib, a, b: lib.stack([a, b]), [M, randn(4, 5, seed=5)]),
        ("stack_neg", lambda lib, a, b: lib.stack([a, b], -1), [M, randn(4, 5, seed=5)]),
        ("stack_0d", lambda lib, a, b: lib.stack([a, b]), [S, randn(seed=6)]),
        ("hstack", lambda lib, a, b: lib.hstack([a, b]), [M, randn(4, 2, seed=5)]),
        ("hstack_1d", lambda lib, a, b: lib.hstack([a, b]), [V, randn(2, seed=5)]),
        ("vstack", lambda lib, a, b: lib.vstack([a, b]), [randn(5, seed=6), M]),
        ("dstack", lambda lib, a, b: lib.dstack([a, b]), [M, randn(4, 5, seed=5)]),
        ("column_stack", lambda lib, a, b: lib.column_stack([a, b]), [randn(4, seed=6), M]),
    ]

    SPLITS = [
        ("split", lambda lib, x: x.split(2, 1), A),
        ("split_uneven", lambda lib, x: lib.split(x, 4, -1), M),
        ("split_sizes", lambda lib, x: x.split([1, 3, 1], 1), M),
        ("chunk", lambda lib, x: x.chunk(3, -1), M),
        ("chunk_more", lambda lib, x: lib.chunk(x, 4), V),
        ("unbind", lambda lib, x: x.unbind(1), A),
        ("unbind_fn", lambda lib, x: lib.unbind(x), M),
        ("tensor_split", lambda lib, x: lib.tensor_split(x, 4, 1), M),
        ("tensor_split_idx", lambda lib, x: x.tensor_split([1, 4, 9], dim=1), M),
        ("hsplit", lambda lib, x: lib.hsplit(x, [1, 3]), M),
        ("vsplit", lambda lib, x: lib.vsplit(x, 2), M),
    ]

    IMG = randn(2, 3, 4, 5, seed=8)
    PADS = [
        ("pad_constant", lambda lib, x: _pad(lib, x, (1, 2)), A),
        ("pad_constant_2d", lambda lib, x: _pad(lib, x, (1, 0, 2, 1), value=1.5), A),
        ("pad_constant_all", lambda lib, x: _pad(lib, x, (1, 1, 0, 2, 3, 0)), A),
        ("pad_crop", lambda lib, x: _pad(lib, x, (-1, 2, 1, -1)), A),
        ("pad_crop_only", lambda lib, x: _pad(lib, x, (-1, -2)), A),
        ("pad_constant_0", lambda lib, x: _pad(lib, x, (0, 0)), M),
        ("pad_noncontig", lambda lib, x: _pad(lib, x, (2, 1)), noncontig(M)),
        ("pad_reflect_1d", lambda lib, x: _pad(lib, x, (2, 3), mode="reflect"), A),
        ("pad_reflect_2d", lambda lib, x: _pad(lib, x, (1, 2, 2, 1), mode="reflect"), IMG),
        ("pad_reflect_unbatched", lambda lib, x: _pad(lib, x, (1, 1, 2, 0), mode="reflect"), A),
        ("pad_reflect_crop", lambda lib, x: _pad(lib, x, (-1, 2), mode="reflect"), A),
        ("pad_replicate_1d", lambda lib, x: _pad(lib, x, (3, 1), mode="replicate"), A),
        ("pad_replicate_2d", lambda lib, x: _pad(lib, x, (2, 0, 1, 3), mode="replicate"), IMG),
        ("pad_replicate_3d", lambda lib, x: _pad(lib, x, (1, 1, 1, 0, 0, 2), mode="replicate"), IMG),
        ("pad_circular_1d", lambda lib, x: _pad(lib, x, (2, 4), mode="circular"), A),
        ("pad_circular_2d", lambda lib, x: _pad(lib, x, (1, 2, 3, 1), mode="circular"), IMG),
        ("pad_circular_3d", lambda lib, x: _pad(lib, x, (1, 0, 0, 1, 1, 1), mode="circular"), IMG),
    ]

    CASES = [OpCase(name, fn, [x]) for name, fn, x in VIEWS + COPIES + SPLITS + PADS]
    CASES += [OpCase(name, fn, inputs) for name, fn, inputs in JOINS]
    CASES += [
        OpCase("cat_dtypes", lambda lib, a, b: lib.cat([a, b.double()], 1), [M, randn(4, 1, seed=5)], check_dtype=True),
        OpCase("zero_size_flip", lambda lib, x: x.flip(0).repeat(2, 1), [E]),
        OpCase("zero_size_pad", lambda lib, x: _pad(lib, x, (1, 1)), [E]),
    ]
    return CASES + _inplace_cases()


def _inplace_cases() -> list[OpCase]:
    """The in-place shape methods, on a copy of the input (autograd refuses them on a leaf)."""
    a, m = randn(2, 3, 4, seed=30), randn(4, 5, seed=31)
    return [
        OpCase("transpose_", lambda lib, x: (x * 1.0).transpose_(0, 2), [a]),
        OpCase("t_", lambda lib, x: (x * 1.0).t_(), [m]),
        OpCase("squeeze_", lambda lib, x: (x * 1.0).reshape(2, 1, 12).squeeze_(1), [a]),
        OpCase("unsqueeze_", lambda lib, x: (x * 1.0).unsqueeze_(-1), [m]),
        OpCase("tril_", lambda lib, x: (x * 1.0).tril_(1), [m]),
        OpCase("triu_", lambda lib, x: (x * 1.0).triu_(-1), [a]),
    ]


def _entry(name: str, *patterns: str, **kwargs) -> OpInfo:
    return OpInfo(name, "shape", select(_cases, *(patterns or (name,))), **kwargs)


op_db: list[OpInfo] = [
    _entry("reshape", "reshape", "reshape_tuple", "reshape_noncontig", methods=("reshape",)),
    _entry("view", "view", "view_0d", methods=("view",)),
    _entry("view_as", methods=("view_as",)),
    _entry("expand", "expand", "expand_new_dims", "expand_0d", methods=("expand",)),
    _entry("broadcast_to", methods=("broadcast_to",)),
    _entry("transpose", "transpose", "transpose_", methods=("transpose", "transpose_")),
    _entry("swapaxes", methods=("swapaxes", "swapdims"), aliases=("swapdims",)),
    _entry("permute", "permute", "permute_neg", methods=("permute",)),
    _entry("t", "t", "t_", methods=("t", "t_")),
    _entry("Tensor.T", "T", methods=("T",)),
    _entry("Tensor.mT", "mT", methods=("mT",)),
    _entry("squeeze", "squeeze", "squeeze_*", methods=("squeeze", "squeeze_")),
    _entry("unsqueeze", "unsqueeze", "unsqueeze_0d", "unsqueeze_", methods=("unsqueeze", "unsqueeze_")),
    _entry("flatten", "flatten", "flatten_range", "flatten_0d", methods=("flatten",)),
    _entry("unflatten", "unflatten", "unflatten_infer", methods=("unflatten",)),
    _entry("movedim", "movedim", "movedim_multi", methods=("movedim",)),
    _entry("ravel", methods=("ravel",)),
    _entry("atleast_2d"),
    _entry("atleast_3d", "atleast_3d", "atleast_3d_1d"),
    _entry("narrow", "narrow", "narrow_neg_start", methods=("narrow",)),
    _entry("select", "select", "select_fn", methods=("select",)),
    _entry("Tensor.unfold", "unfold", "unfold_step", "unfold_overlap", "unfold_gap", "unfold_noncontig", methods=("unfold",)),
    _entry("clone", methods=("clone",)),
    _entry("contiguous", methods=("contiguous",)),
    _entry("Tensor.repeat", "repeat", "repeat_*", methods=("repeat",)),
    _entry("tile", "tile", "tile_more", methods=("tile",)),
    _entry("flip", "flip", "flip_*", "zero_size_flip", methods=("flip",)),
    _entry("fliplr", methods=("fliplr",)),
    _entry("flipud", methods=("flipud",)),
    _entry("roll", "roll", "roll_multi", "roll_flat", methods=("roll",)),
    _entry("tril", "tril", "tril_diag", "tril_", methods=("tril", "tril_")),
    _entry("triu", "triu", "triu_batched", "triu_", methods=("triu", "triu_")),
    _entry("split", "split", "split_uneven", "split_sizes", methods=("split",)),
    _entry("chunk", "chunk", "chunk_more", methods=("chunk",)),
    _entry("unbind", "unbind", "unbind_fn", methods=("unbind",)),
    _entry("tensor_split", "tensor_split", "tensor_split_idx", methods=("tensor_split",)),
    _entry("hsplit", methods=("hsplit",)),
    _entry("vsplit", methods=("vsplit",)),
    _entry("pad", "pad_*", "zero_size_pad"),
    _entry("cat", "cat", "cat_*", aliases=("concatenate",)),
    _entry("concat"),
    _entry("stack", "stack", "stack_neg", "stack_0d"),
    _entry("hstack", "hstack", "hstack_1d"),
    _entry("vstack"),
    _entry("dstack"),
    _entry("column_stack"),
]

op_db += [
    OpInfo("broadcast_tensors", "shape", lambda: [
        OpCase("broadcast_tensors", lambda lib, a, b, c: tuple(lib.broadcast_tensors(a, b, c)),
               [randn(3, 1), randn(4, seed=1), randn(seed=2)])]),
    OpInfo("expand_as", "shape", lambda: [
        OpCase("expand_as", lambda lib, a, b: a.expand_as(b), [randn(3, 1), randn(2, 3, 4, seed=1)], grad=[True, False])],
        methods=("expand_as",)),
    OpInfo("reshape_as", "shape", lambda: [
        OpCase("reshape_as", lambda lib, a, b: a.reshape_as(b), [noncontig(randn(3, 4)), randn(2, 6, seed=1)],
               grad=[True, False])],
        methods=("reshape_as",)),
    OpInfo("atleast_1d", "shape", lambda: [
        OpCase("atleast_1d", lambda lib, x: lib.atleast_1d(x), [randn()]),
        OpCase("atleast_1d_2d", lambda lib, x: lib.atleast_1d(x), [randn(2, 3)])]),
    OpInfo("Tensor.H", "shape", lambda: [OpCase("H", lambda lib, x: x.H, [randn(3, 4)])], methods=("H",)),
]
