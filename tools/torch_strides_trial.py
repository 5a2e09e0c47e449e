"""Run view, shape and memory-format expressions on torch and on chainrule and compare the layouts.

Users read more than values off a tensor: ``stride()``, ``storage_offset()``, ``is_contiguous()``
(and ``is_contiguous(memory_format=torch.channels_last)``), and whether writing into a result
writes into its input. This trial evaluates the same expression text with ``torch`` bound to
each library, over a few input layouts (contiguous, channels-last, transposed, sliced, 0-d,
size-1 dims), and compares, for every tensor result:

* ``values`` (and dtype; to float32 rounding), ``shape``, ``stride``, ``offset`` (storage_offset), ``contig``
  (is_contiguous for the default and, at rank 4/5, the channels-last format);
* ``alias``: whether ``x.add_(1)`` on the input afterwards changes the result (torch shares memory
  between a view and its base, a copy shares none);
* ``error``: the exception class when either library raises.

    python tools/torch_strides_trial.py            # the tally, then each difference
    python tools/torch_strides_trial.py --quiet    # the tally alone
    python tools/torch_strides_trial.py --filter clone

A case is ``same`` when every field agrees. The tally counts the cases, and how many differ in each field.
"""

from __future__ import annotations

import argparse
import collections
import sys
import warnings

import numpy as np

FIELDS = ("error", "values", "shape", "stride", "offset", "contig", "alias")

# input layouts, each an expression of ``torch`` (either library) giving a fresh tensor whose
# memory is its own (the alias probe writes into it)
INPUTS = {
    "c4": "torch.arange(120.).reshape(2, 3, 4, 5)",
    "cl4": "torch.arange(120.).reshape(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)",
    "t2": "torch.arange(12.).reshape(3, 4).t()",
    "sl2": "torch.arange(30.).reshape(5, 6)[1:4, ::2]",
    "one4": "torch.arange(6.).reshape(1, 3, 1, 2)",
    "cl5": "torch.arange(48.).reshape(1, 2, 3, 4, 2).contiguous(memory_format=torch.channels_last_3d)",
    "d1": "torch.arange(6.)",
    "s0": "torch.tensor(3.)",
    "perm3": "torch.arange(24.).reshape(2, 3, 4).permute(2, 0, 1)",
    "clsl4": "torch.arange(240.).reshape(2, 3, 8, 5).contiguous(memory_format=torch.channels_last)[:, :, ::2]",
    "i32": "torch.arange(24, dtype=torch.int32).reshape(2, 3, 4)",
    "odd": "torch.arange(15.).reshape(3, 5)[:, :3]",
}

# expressions of ``x`` (an input) and ``torch``; each is run on every input it names in ``on``
# (a tuple of input keys) or all of them
EXPRESSIONS = [
    # copies and layouts
    ("x.clone()", None),
    ("x.clone(memory_format=torch.preserve_format)", None),
    ("x.clone(memory_format=torch.contiguous_format)", None),
    ("x.clone(memory_format=torch.channels_last)", None),
    ("x.clone(memory_format=torch.channels_last_3d)", None),
    ("x.contiguous()", None),
    ("x.contiguous(memory_format=torch.channels_last)", None),
    ("x.contiguous(memory_format=torch.channels_last_3d)", None),
    ("x.to(memory_format=torch.channels_last)", None),
    ("x.to(memory_format=torch.contiguous_format)", None),
    ("x.to(memory_format=torch.preserve_format)", None),
    ("x.to(torch.float64)", None),
    ("x.to(torch.float32)", None),
    ("x.to(torch.float32, copy=True)", None),
    ("x.to(dtype=torch.float64, memory_format=torch.channels_last)", None),
    ("x.type(torch.float64)", None),
    ("x.double()", None),
    ("x.float()", None),
    ("x.detach()", None),
    ("x.data", None),
    # *_like
    ("torch.empty_like(x).zero_()", None),
    ("torch.zeros_like(x)", None),
    ("torch.ones_like(x)", None),
    ("torch.full_like(x, 2.)", None),
    ("torch.rand_like(x).zero_()", None),
    ("torch.randn_like(x).zero_()", None),
    ("torch.zeros_like(x, memory_format=torch.contiguous_format)", None),
    ("torch.zeros_like(x, memory_format=torch.channels_last)", None),
    ("torch.ones_like(x, dtype=torch.float64)", None),
    ("torch.empty_like(x, memory_format=torch.preserve_format).fill_(1.)", None),
    ("x.new_zeros(x.shape)", None),
    ("x.new_empty(x.shape).fill_(0.)", None),
    ("torch.empty_strided(x.shape, x.stride()).fill_(0.)", None),
    # views
    ("x.view(-1)", None),
    ("x.view(x.shape)", None),
    ("x.view(2, -1)", None),
    ("x.view(torch.int32)", None),
    ("x.view(torch.float16)", None),
    ("x.view(torch.float64)", None),
    ("x.view(torch.uint8)", None),
    ("x.view(torch.int64)", None),
    ("x.view(torch.int16)", None),
    ("x.view(torch.complex64)", None),
    ("x.view(torch.bool)", None),
    ("x.t().view(torch.float16) if x.dim() == 2 else x.view(torch.float16)", None),
    ("x.view(torch.float32)", None),
    ("x.contiguous().view(torch.float64)", None),
    ("x.reshape(-1)", None),
    ("x.reshape(x.shape)", None),
    ("x.reshape(1, -1)", None),
    ("x.flatten()", None),
    ("x.flatten(1)", None),
    ("x.ravel()", None),
    ("x.view_as(x)", None),
    ("x.reshape_as(x)", None),
    ("x.transpose(0, -1)", None),
    ("x.t()", None),
    ("x.T", None),
    ("x.mT", None),
    ("x.mH", None),
    ("x.H", None),
    ("x.adjoint()", None),
    ("x.permute(*reversed(range(x.dim())))", None),
    ("x.movedim(0, -1)", None),
    ("x.moveaxis(-1, 0)", None),
    ("x.swapaxes(0, -1)", None),
    ("x.unsqueeze(0)", None),
    ("x.unsqueeze(-1)", None),
    ("x.unsqueeze(1)", None),
    ("x.squeeze()", None),
    ("x.squeeze(0)", None),
    ("x.squeeze(-1)", None),
    ("x[None]", None),
    ("x[..., None]", None),
    ("x.expand(2, *x.shape)", None),
    ("x.expand_as(torch.empty(3, *x.shape))", None),
    ("x.broadcast_to((2, *x.shape))", None),
    ("x.narrow(0, 1, 1)", None),
    ("x.narrow(-1, 1, 1)", None),
    ("x.select(0, 1)", None),
    ("x.select(-1, 0)", None),
    ("x[1]", None),
    ("x[..., 1:]", None),
    ("x[::2]", None),
    ("x.unfold(0, 1, 1)", None),
    ("x.unfold(-1, 2, 1)", None),
    ("x.unfold(-1, 1, 2)", None),
    ("x.diagonal()", None),
    ("x.diagonal(1)", None),
    ("x.diagonal(0, -2, -1)", None),
    ("torch.diagonal(x, -1)", None),
    ("x.as_strided((2, 2), (1, 2))", None),
    ("x.as_strided((2,), (2,), 1)", None),
    ("x.as_strided((2, 2), (0, 1))", None),
    ("torch.as_strided(x, (3,), (1,), 2)", None),
    ("x[1:].as_strided((2,), (1,))", None),
    ("x[1:].as_strided((2,), (1,), 0)", None),
    ("torch.select_scatter(x, torch.zeros_like(x.select(0, 0)), 0, 0)", None),
    ("torch.slice_scatter(x, torch.zeros_like(x[:1]), 0, 0, 1)", None),
    ("torch.diagonal_scatter(x, torch.zeros_like(x.diagonal()))", None),
    ("torch.as_strided_scatter(x, torch.zeros(2), (2,), (1,))", None),
    ("x.diagonal().clone()", None),
    ("x.narrow(0, 0, 1).contiguous()", None),
    ("x.select(0, 0).unsqueeze(0).expand(2, *x.shape[1:])", None),
    ("torch.empty_like(x.expand(2, *x.shape)).zero_()", None),
    ("x.expand(2, *x.shape).clone()", None),
    ("x.expand(2, *x.shape).contiguous()", None),
    ("x.unbind(0)[-1]", None),
    ("x.split(1)[-1]", None),
    ("x.chunk(2)[-1]", None),
    ("x.tensor_split(2)[-1]", None),
    ("x.split(1, -1)[0]", None),
    ("x.real", None),
    ("x.squeeze(1)", None),
    ("x.unflatten(0, (1, -1))", None),
    ("x.unflatten(-1, (-1, 1))", None),
    ("torch.atleast_2d(x)", None),
    ("torch.atleast_3d(x)", None),
    ("torch.flatten(x, 0, -1)", None),
    # elementwise and reductions: layouts they hand back
    ("x + 1", None),
    ("x * x", None),
    ("x.abs()", None),
    ("x.exp()", None),
    ("-x", None),
    ("x + x.contiguous()", None),
    ("x.contiguous() + x", None),
    ("torch.where(x > 3, x, 0.)", None),
    ("x.sum(0)", None),
    ("x.sum(-1, keepdim=True)", None),
    ("x.mean(0, keepdim=True)", None),
    ("x.relu()", None),
    ("x.sigmoid()", None),
    ("x.to(torch.int64) + 1", None),
    ("x.clamp(1, 5)", None),
    ("x.add(x, alpha=2)", None),
    ("torch.nn.functional.relu(x)", None),
    ("x.masked_fill(x > 3, 0.)", None),
    ("x.cumsum(0)", None),
    ("x.flip(0)", None),
    ("x.roll(1, 0)", None),
    ("x.float().softmax(-1)", None),
    ("x * 2 + x", None),
    ("x.float().tanh() * x.float()", None),
    ("torch.nn.functional.gelu(x.float())", None),
    ("x.float().pow(2)", None),
    ("torch.maximum(x, x.flip(0))", None),
    ("x.to(torch.float16)", None),
    ("x.to(torch.int32)", None),
    ("x.float().sign()", None),
    ("x > 2", None),
    ("x.bool().logical_not()", None),
    # in place on views
    ("x.view(-1).fill_(1.)", None),
    ("x.t().zero_() if x.dim() <= 2 else x.transpose(0, 1).zero_()", None),
    ("x.select(0, 0).fill_(7.)", None),
    ("x[..., :1].add_(1)", None),
    ("x.diagonal().fill_(9.)", None),
    ("x.unsqueeze(0).mul_(2)", None),
    ("x.narrow(0, 0, 1).copy_(torch.ones_like(x.narrow(0, 0, 1)))", None),
    ("x.expand(2, *x.shape).add_(1)", None),
    ("x.expand(2, *x.shape).mul_(2)", None),
    ("x.expand(2, *x.shape).fill_(1.)", None),
    ("x.expand(2, *x.shape).zero_()", None),
    ("x.expand(2, *x.shape).copy_(torch.ones(2, *x.shape))", None),
    ("x.expand(2, *x.shape).clamp_(0, 1)", None),
    ("x.as_strided((2, 2), (0, 1)).add_(1)", None),
    ("x.unfold(-1, 2, 1).add_(1)", None),
    ("x.unfold(-1, 2, 1).zero_()", None),
    ("x.unfold(-1, 1, 2).add_(1)", None),
    ("x.as_strided((2,), (2,), 1).zero_()", None),
    ("x.view(-1)[::2].zero_()", None),
    ("x.view(-1)[1:3].fill_(5.)", None),
    ("x.clamp_(0, 3)", None),
    ("x.abs_()", None),
    ("x.t_() if x.dim() <= 2 else x.transpose_(0, 1)", None),
    ("x.unsqueeze_(0)", None),
    ("x.squeeze_()", None),
    ("x.resize_(x.numel())", None),
    ("x.requires_grad_()", None),
    ("x.set_(x.reshape(-1))", None),
    ("x.as_strided_((2,), (1,))", None),
]


def _sync(lib):
    """The expression's names bound to library ``lib`` (``torch`` or ``chainrule``)."""
    return {"torch": lib}


def probe(lib, input_expr: str, expr: str) -> dict:
    """What ``expr`` gives on ``lib``: the error class, or the result's fields."""
    names = _sync(lib)
    x = eval(input_expr, names)  # noqa: S307 - the trial's own expression text
    names["x"] = x
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = eval(expr, names)  # noqa: S307
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return {"error": type(error).__name__, "message": str(error).splitlines()[0][:160] if str(error) else ""}
    if not isinstance(result, lib.Tensor):
        return {"error": None, "values": repr(result)}
    fields = {"error": None}
    fields.update(_layout(lib, result))
    before = _values(result)
    try:
        with lib.no_grad():
            x.add_(1)
        fields["alias"] = repr(before) != repr(_values(result))
    except Exception as error:  # noqa: BLE001
        fields["alias"] = f"probe raised {type(error).__name__}"
    return fields


def _values(t):
    return np.array(t.detach().cpu().tolist(), dtype=object) if t.dim() else np.array(t.item(), dtype=object)


def _layout(lib, t) -> dict:
    contig = [t.is_contiguous()]
    if t.dim() == 4:
        contig.append(t.is_contiguous(memory_format=lib.channels_last))
    if t.dim() == 5:
        contig.append(t.is_contiguous(memory_format=lib.channels_last_3d))
    return {"values": (str(t.dtype).rpartition(".")[2], _values(t).tolist()), "shape": tuple(t.shape),
            "stride": tuple(t.stride()), "offset": t.storage_offset(), "contig": tuple(contig)}


def _same(field: str, expected, got) -> bool:
    """Whether a field agrees: values to float32 rounding (NumPy's exp is not torch's to the last bit)."""
    if field != "values" or not isinstance(expected, tuple) or not isinstance(got, tuple):
        return expected == got
    if expected[0] != got[0]:
        return False
    a, b = np.asarray(expected[1]), np.asarray(got[1])
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=0, equal_nan=True))


def run(filter_text: str | None = None):
    import torch

    import chainrule

    cases = []
    for expr, on in EXPRESSIONS:
        if filter_text and filter_text not in expr:
            continue
        for key in (on or INPUTS):
            expected = probe(torch, INPUTS[key], expr)
            got = probe(chainrule, INPUTS[key], expr)
            if expected["error"] or got["error"]:
                differing = ["error"] if expected["error"] != got["error"] else []
            else:
                differing = [f for f in FIELDS[1:] if not _same(f, expected.get(f), got.get(f))]
            cases.append((key, expr, differing, expected, got))
    return cases


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    cases = run(args.filter)
    tally = collections.Counter()
    for _, _, differing, _, _ in cases:
        tally["same" if not differing else "differ"] += 1
        tally.update(differing)
    if not args.quiet:
        for key, expr, differing, expected, got in cases:
            if differing:
                print(f"[{key}] {expr}: {', '.join(differing)}")
                for f in differing:
                    print(f"    torch     {f}: {expected.get(f)!s:.200} {expected.get('message', '')}")
                    print(f"    chainrule {f}: {got.get(f)!s:.200} {got.get('message', '')}")
    print(f"cases {len(cases)}: same {tally['same']}, differ {tally['differ']}; "
          + ", ".join(f"{f} {tally[f]}" for f in FIELDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
