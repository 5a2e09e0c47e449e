"""Build the autograd graph of common expressions on torch and on chainrule, and compare its shape.

Users and tools read the recorded graph: ``type(y.grad_fn).__name__``, ``grad_fn.next_functions``,
torchviz-style walkers, hooks on nodes. This trial builds the same expression on both libraries and
compares the node-name tree under the output's ``grad_fn`` to depth 3: each node's class name, how
many edges it has, which are None, which lead to a leaf's ``AccumulateGrad``, and each edge's output
number. Values and gradients are the other trials' business (tools/torch_opinfo_trial.py).

Two sources of expressions:

* ``user``: a hand-written list of what torch programs write (indexing, where/masked_fill, losses,
  matmul of every rank, attention, the ops of tests/programs/*.py);
* ``op_db``: torch 2.13's OpInfo database, the first float32 sample of each OpInfo drawn with
  ``requires_grad=True`` (converted by tools/torch_oracle.py, strides and storage kept).

    python tools/torch_graph_shape_trial.py run --out /tmp/graph               # both sources
    python tools/torch_graph_shape_trial.py run --out /tmp/graph --filter where
    python tools/torch_graph_shape_trial.py ledger --out /tmp/graph            # write the CI ledger

Kinds per entry: ``same``; ``differ`` (the trees, both written out); ``chainrule_raised`` (torch
built its graph); ``torch_raised``; ``skipped`` with a reason (no differentiable output in torch,
an op chainrule lacks, a dtype it does not have, or a deliberate difference in SKIPPED).
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import sys
import time
import types
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import time_limit  # noqa: E402

LEDGER = os.path.join(ROOT, "tests", "compat", "data", "torch_graph_shape_ledger.json")
DEPTH = 3
SAMPLE_TIMEOUT_S = 10
KINDS = ("same", "differ", "chainrule_raised", "torch_raised", "skipped")

# entries whose graphs differ on purpose or out of this trial's scope, each with why
SKIPPED = {}


def _opinfo_trial():
    spec = importlib.util.spec_from_file_location("torch_opinfo_trial",
                                                  os.path.join(ROOT, "tools", "torch_opinfo_trial.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- the tree ---------------------------------------------------------------------------------
def node_tree(fn, depth: int = DEPTH):
    """``fn``'s class name and, ``depth`` levels down, its edges as (subtree, output number);
    None for a missing edge; nodes at the depth limit by name alone."""
    if fn is None:
        return None
    name = type(fn).__name__
    if depth == 0:
        return name
    return [name, [[node_tree(child, depth - 1), nr] for child, nr in fn.next_functions]]


def render(tree) -> str:
    """A tree on one line: ``Name(child, child:1, None)`` (``:n`` an output number other than 0)."""
    if tree is None:
        return "None"
    if isinstance(tree, str):
        return tree
    name, edges = tree
    parts = [render(child) + (f":{nr}" if nr else "") for child, nr in edges]
    return f"{name}({', '.join(parts)})"


def _differentiable_tensors(value, lib):
    """The tensors in an op's output (nested tuples, lists, named tuples) that require grad."""
    if isinstance(value, lib.Tensor):
        return [value] if value.requires_grad else []
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _differentiable_tensors(item, lib)]
    return []


def graph_of(output, lib):
    """The trees of every output that requires grad, in order."""
    return [node_tree(t.grad_fn) for t in _differentiable_tensors(output, lib)]


# ---- the user's expressions ---------------------------------------------------------------------
def user_expressions(lib) -> dict:
    """Common user expressions, each a function of nothing building its output on ``lib``."""
    import numpy as np

    F = lib.nn.functional

    def leaf(*shape, seed=0):
        values = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        return lib.tensor(values, requires_grad=True)

    x, y = leaf(4, 6), leaf(4, 6, seed=1)
    a3, b3, m2, v6 = leaf(2, 4, 6, seed=2), leaf(2, 6, 3, seed=3), leaf(6, 3, seed=4), leaf(6, seed=5)
    img, w, bias = leaf(2, 3, 5, 5, seed=6), leaf(4, 3, 3, 3, seed=7), leaf(4, seed=8)
    lw, lb = leaf(5, 6, seed=9), leaf(5, seed=10)
    q, k, v = leaf(2, 2, 4, 8, seed=11), leaf(2, 2, 4, 8, seed=12), leaf(2, 2, 4, 8, seed=13)
    target = lib.tensor([0, 2, 1, 3])
    probs = lib.tensor(np.random.default_rng(14).uniform(0.1, 0.9, (4, 6)).astype(np.float32))
    tokens = lib.tensor([[0, 2, 1], [4, 3, 3]])
    mask = lib.tensor(np.random.default_rng(15).uniform(size=(4, 6)) > 0.5)
    causal = lib.tensor(np.tril(np.ones((4, 4), dtype=bool)))
    return {
        # indexing
        "x[1]": lambda: x[1],
        "x[-1]": lambda: x[-1],
        "x[1:3]": lambda: x[1:3],
        "x[:, 2]": lambda: x[:, 2],
        "x[:, 1:4]": lambda: x[:, 1:4],
        "x[1:3, ::2]": lambda: x[1:3, ::2],
        "x[0, 1:]": lambda: x[0, 1:],
        "x[1, 2]": lambda: x[1, 2],
        "x[..., 1]": lambda: x[..., 1],
        "x[..., :3]": lambda: x[..., :3],
        "x[None]": lambda: x[None],
        "x[:, None]": lambda: x[:, None],
        "x[None, 1:]": lambda: x[None, 1:],
        "x[:]": lambda: x[:],
        "x[::2]": lambda: x[::2],
        "img[:, :, 1:4, 1:4]": lambda: img[:, :, 1:4, 1:4],
        "img[0, :, 2]": lambda: img[0, :, 2],
        "a3[:, -1, :]": lambda: a3[:, -1, :],
        "x[index]": lambda: x[target],
        "x[index, index]": lambda: x[target, target],
        "x[1:, index]": lambda: x[1:, target[:2]],
        "x[mask]": lambda: x[mask],
        "x[x > 0]": lambda: x[x > 0],
        "x[[0, 2]]": lambda: x[[0, 2]],
        # where, masks, fills
        "where(c, x, y)": lambda: lib.where(x > 0, x, y),
        "where(c, x, 0.0)": lambda: lib.where(x > 0, x, 0.0),
        "where(c, 0.0, y)": lambda: lib.where(x > 0, 0.0, y),
        "where(c, x, y.detach())": lambda: lib.where(x > 0, x, y.detach()),
        "masked_fill(mask, 0)": lambda: x.masked_fill(mask, 0.0),
        "masked_fill(causal, -inf)": lambda: a3[0, :, :4].masked_fill(~causal, float("-inf")),
        "masked_fill(mask, tensor)": lambda: x.masked_fill(mask, lib.tensor(1.5)),
        "masked_select": lambda: x.masked_select(mask),
        "clamp": lambda: x.clamp(-0.5, 0.5),
        "relu": lambda: F.relu(x),
        # losses
        "nll_loss": lambda: F.nll_loss(F.log_softmax(x, 1), target),
        "nll_loss sum": lambda: F.nll_loss(F.log_softmax(x, 1), target, reduction="sum"),
        "nll_loss none": lambda: F.nll_loss(F.log_softmax(x, 1), target, reduction="none"),
        "cross_entropy": lambda: F.cross_entropy(x, target),
        "cross_entropy probs": lambda: F.cross_entropy(x, probs),
        "cross_entropy label_smoothing": lambda: F.cross_entropy(x, target, label_smoothing=0.1),
        "mse_loss": lambda: F.mse_loss(x, y),
        "l1_loss": lambda: F.l1_loss(x, y),
        "smooth_l1_loss": lambda: F.smooth_l1_loss(x, y),
        "binary_cross_entropy": lambda: F.binary_cross_entropy(x.sigmoid(), probs),
        "binary_cross_entropy_with_logits": lambda: F.binary_cross_entropy_with_logits(x, probs),
        "bce_with_logits pos_weight": lambda: F.binary_cross_entropy_with_logits(x, probs, pos_weight=v6.detach()),
        "kl_div": lambda: F.kl_div(F.log_softmax(x, 1), probs, reduction="batchmean"),
        # products
        "x @ y.t()": lambda: x @ y.t(),
        "a3 @ b3": lambda: a3 @ b3,
        "a3 @ m2": lambda: a3 @ m2,
        "x @ b3": lambda: x @ b3,
        "x @ v": lambda: x @ v6,
        "v @ v": lambda: v6 @ v6,
        "v @ m2": lambda: v6 @ m2,
        "v @ b3": lambda: v6 @ b3,
        "a3 @ v": lambda: a3 @ v6,
        "q @ k.transpose": lambda: q @ k.transpose(-2, -1),
        "bmm": lambda: lib.bmm(a3, b3),
        "mm": lambda: lib.mm(x, m2),
        "einsum ij,jk": lambda: lib.einsum("ij,jk->ik", x, m2),
        "linear": lambda: F.linear(x, lw, lb),
        "linear 3d": lambda: F.linear(a3, lw, lb),
        "linear no bias": lambda: F.linear(x, lw),
        # composites people call
        "scaled_dot_product_attention": lambda: F.scaled_dot_product_attention(q, k, v),
        "sdpa causal": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        "softmax": lambda: F.softmax(x, -1),
        "log_softmax": lambda: F.log_softmax(x, -1),
        "layer_norm": lambda: F.layer_norm(x, (6,), lw[0], lw[1]),
        "group_norm": lambda: F.group_norm(img, 3),
        "batch_norm": lambda: F.batch_norm(img, None, None, bias[:3], bias[1:], training=True),
        "dropout eval": lambda: F.dropout(x, 0.5, training=False),
        "gelu": lambda: F.gelu(x),
        "gelu tanh": lambda: F.gelu(x, approximate="tanh"),
        "silu": lambda: F.silu(x),
        "conv2d": lambda: F.conv2d(img, w, bias, padding=1),
        "max_pool2d": lambda: F.max_pool2d(img, 2),
        "avg_pool2d": lambda: F.avg_pool2d(img, 2),
        "adaptive_avg_pool2d": lambda: F.adaptive_avg_pool2d(img, 1),
        "embedding": lambda: F.embedding(tokens, lw),
        "normalize": lambda: F.normalize(x, dim=1),
        "cosine_similarity": lambda: F.cosine_similarity(x, y),
        "pad": lambda: F.pad(x, (1, 1)),
        "one_hot @ w": lambda: F.one_hot(target, 6).float() @ m2,
        # shapes and reductions
        "x.view(-1)": lambda: x.view(-1),
        "x.reshape(2, 12)": lambda: x.reshape(2, 12),
        "flatten": lambda: img.flatten(1),
        "x.t().contiguous()": lambda: x.t().contiguous(),
        "cat": lambda: lib.cat([x, y], 1),
        "stack": lambda: lib.stack([x, y]),
        "chunk": lambda: x.chunk(2, 1)[1],
        "split": lambda: lib.split(x, [2, 4], 1)[0],
        "expand": lambda: v6.expand(4, 6),
        "repeat": lambda: x.repeat(1, 2),
        "sum": lambda: x.sum(),
        "mean dim": lambda: x.mean(1, keepdim=True),
        "var": lambda: x.var(1),
        "std": lambda: x.std(),
        "max": lambda: x.max(),
        "max dim": lambda: x.max(1).values,
        "argmax gather": lambda: x.gather(1, x.argmax(1, keepdim=True)),
        "topk": lambda: x.topk(2).values,
        "sort": lambda: x.sort(1).values,
        "logsumexp": lambda: x.logsumexp(1),
        "norm": lambda: x.norm(dim=1),
        "cumsum": lambda: x.cumsum(1),
        "x * mask.float()": lambda: x * mask.float(),
        "x.float()": lambda: x.float(),
        "x.double()": lambda: x.double(),
        "x.to(float64)": lambda: x.to(lib.float64),
        "x ** 2": lambda: x ** 2,
        "2 ** x": lambda: 2 ** x,
        "x / 3": lambda: x / 3,
        "1 - x": lambda: 1 - x,
        "-x": lambda: -x,
        "abs": lambda: x.abs(),
        "sqrt abs": lambda: x.abs().sqrt(),
        "exp log": lambda: x.exp().log(),
        "tanh sigmoid": lambda: x.tanh() * x.sigmoid(),
        "addmm": lambda: lib.addmm(lb, x, lw.t()),
        "baddbmm": lambda: lib.baddbmm(a3[:, :, :3], a3, b3),
        "index_select": lambda: x.index_select(0, target),
        "scatter_add": lambda: lib.zeros(4, 6).scatter_add(1, target[:, None], x),
        "index_add": lambda: y.index_add(0, target, x),
        "take_along_dim": lambda: lib.take_along_dim(x, target[:, None], 1),
    }


# ---- running ----------------------------------------------------------------------------------
def _short(error) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"


def compare(build_torch, build_chainrule, torch, chainrule):
    """Build both graphs; returns (kind, detail, tree) — the tree is torch's when they agree."""
    try:
        with warnings.catch_warnings(), time_limit(SAMPLE_TIMEOUT_S):
            warnings.simplefilter("ignore")
            expected = graph_of(build_torch(), torch)
    except Exception as error:
        return "torch_raised", _short(error), None
    if not expected:
        return "skipped", "no output requires grad in torch", None
    try:
        with warnings.catch_warnings(), time_limit(SAMPLE_TIMEOUT_S):
            warnings.simplefilter("ignore")
            actual = graph_of(build_chainrule(), chainrule)
    except Exception as error:
        return "chainrule_raised", _short(error), None
    if actual == expected:
        return "same", "", expected
    detail = ("torch: " + " ; ".join(render(t) for t in expected)
              + " | chainrule: " + " ; ".join(render(t) for t in actual))
    return "differ", detail, None


def run_user(trial_filter: str = "", only=None) -> list:
    import torch

    import chainrule

    torch_cases, chainrule_cases = user_expressions(torch), user_expressions(chainrule)
    records = []
    for name in torch_cases:
        entry = f"user/{name}"
        if (trial_filter and trial_filter not in entry) or (only is not None and entry not in only):
            continue
        if entry in SKIPPED:
            records.append({"entry": entry, "kind": "skipped", "detail": SKIPPED[entry]})
            continue
        kind, detail, _ = compare(torch_cases[name], chainrule_cases[name], torch, chainrule)
        records.append({"entry": entry, "kind": kind, "detail": detail})
    return records


def run_op_db(trial_filter: str = "", only=None) -> list:
    """The first float32 sample (requires_grad=True) of each differentiable OpInfo."""
    import torch

    opinfo = _opinfo_trial()
    trial = opinfo.Trial()
    records = []
    with opinfo._without_test_function_lookup():
        for op in opinfo.load_op_db():
            entry = "op_db/" + opinfo.entry_name(op)
            if (trial_filter and trial_filter not in entry) or (only is not None and entry not in only):
                continue
            record = {"entry": entry}
            records.append(record)
            reason = _op_skip_reason(op, opinfo, entry)
            function, how = (None, None) if reason else trial.resolve(op.op)
            if reason is None and function is None:
                reason = f"missing: {how}"
            if reason is not None:
                record.update(kind="skipped", detail=reason)
                continue
            torch.manual_seed(0)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    generator = op.sample_inputs("cpu", torch.float32, requires_grad=True)
                    sample = next(iter(generator), None)
                    if hasattr(generator, "close"):
                        generator.close()
            except Exception as error:
                record.update(kind="skipped", detail=f"sample_inputs raised {_short(error)}")
                continue
            if sample is None:
                record.update(kind="skipped", detail="no sample")
                continue
            memo = {}
            try:
                inputs = trial.value((sample.input, tuple(sample.args), dict(sample.kwargs)), memo)
            except opinfo.Unconvertible as error:
                record.update(kind="skipped", detail=f"unconvertible: {error}")
                continue
            process = sample.output_process_fn_grad
            if isinstance(process, types.FunctionType) and process.__module__.startswith("torch.testing"):
                process = trial.rebind(process)

            def build_torch(op=op, sample=sample):
                torch.manual_seed(0)
                return sample.output_process_fn_grad(op.op(sample.input, *sample.args, **sample.kwargs))

            def build_chainrule(function=function, inputs=inputs, process=process):
                trial.chainrule.manual_seed(0)
                with trial.chainrule_only():
                    return process(function(inputs[0], *inputs[1], **inputs[2]))

            kind, detail, _ = compare(build_torch, build_chainrule, torch, trial.chainrule)
            if detail.startswith("ReachedTorch"):
                kind, detail = "skipped", f"closure: reached torch.{detail.split(': ', 1)[1]}"
            record.update(kind=kind, detail=detail)
    return records


def _op_skip_reason(op, opinfo, entry):
    import torch

    if entry in SKIPPED:
        return SKIPPED[entry]
    for prefix, reason in opinfo.SKIPPED_OPS.items():
        if op.name.startswith(prefix):
            return reason
    if not op.supports_autograd:
        return "not differentiable (supports_autograd=False)"
    if torch.float32 not in op.supported_dtypes("cpu"):
        return "no float32 on CPU"
    return None


# ---- reports ----------------------------------------------------------------------------------
def write_reports(records, out, elapsed):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "records.json"), "w") as handle:
        json.dump(records, handle, indent=0)
    totals = {source: collections.Counter(r["kind"] for r in records if r["entry"].startswith(source + "/"))
              for source in ("user", "op_db")}
    lines = ["# torch graph-shape trial", "", f"{len(records)} entries, {elapsed:.0f} s", "",
             "| kind | user | op_db |", "|---|---|---|"]
    lines += [f"| {kind} | {totals['user'][kind]} | {totals['op_db'][kind]} |" for kind in KINDS]
    # the most common differences first: the node where the trees part, counted over entries
    parting = collections.Counter(_first_difference(r["detail"]) for r in records if r["kind"] == "differ")
    lines += ["", "## Differences by the torch node name at the root", "", "| torch root | entries |", "|---|---|"]
    lines += [f"| {name} | {count} |" for name, count in parting.most_common()]
    lines += ["", "## Entries that differ or raise", "", "| entry | kind | detail |", "|---|---|---|"]
    for record in records:
        if record["kind"] in ("differ", "chainrule_raised"):
            lines.append(f"| {record['entry']} | {record['kind']} | {record['detail'].replace('|', '/')[:400]} |")
    skipped = collections.Counter(r["detail"].split(":")[0] for r in records if r["kind"] == "skipped")
    lines += ["", "## Skipped entries by reason", "", "| reason | entries |", "|---|---|"]
    lines += [f"| {reason} | {count} |" for reason, count in skipped.most_common()]
    with open(os.path.join(out, "summary.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "summary.json"), "w") as handle:
        json.dump({"elapsed_s": round(elapsed, 1), "totals": {k: dict(v) for k, v in totals.items()}}, handle,
                  indent=1, sort_keys=True)
    print(f"{len(records)} entries, {elapsed:.0f} s")
    print(f"  {'kind':18s} {'user':>6s} {'op_db':>6s}")
    for kind in KINDS:
        print(f"  {kind:18s} {totals['user'][kind]:6d} {totals['op_db'][kind]:6d}")


def _first_difference(detail: str) -> str:
    torch_side = detail.split(" | ")[0].removeprefix("torch: ")
    return torch_side.split("(")[0]


def command_run(args):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    np.random.seed(0)
    start = time.time()
    records = []
    if args.source in ("all", "user"):
        records += run_user(args.filter)
    if args.source in ("all", "op_db"):
        records += run_op_db(args.filter)
    write_reports(records, args.out, time.time() - start)


def command_ledger(args):
    """Write the entries that agreed in ``args.out``'s last full run as the CI ledger."""
    with open(os.path.join(args.out, "records.json")) as handle:
        records = json.load(handle)
    agreeing = sorted(r["entry"] for r in records if r["kind"] == "same")
    os.makedirs(os.path.dirname(LEDGER), exist_ok=True)
    with open(LEDGER, "w") as handle:
        json.dump(agreeing, handle, indent=0)
        handle.write("\n")
    print(f"{len(agreeing)} agreeing entries written to {os.path.relpath(LEDGER, ROOT)}")


def run_ledger(entries: list) -> list:
    """The ledger's entries built again; returns the records that no longer agree."""
    wanted = set(entries)
    records = run_user(only=wanted)
    if any(entry.startswith("op_db/") for entry in wanted):
        records += run_op_db(only=wanted)
    seen = {r["entry"] for r in records}
    missing = [{"entry": e, "kind": "missing", "detail": "no longer produced by the trial"} for e in wanted - seen]
    return [r for r in records if r["kind"] != "same"] + missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default="")
    run.add_argument("--source", choices=("all", "user", "op_db"), default="all")
    ledger = commands.add_parser("ledger")
    ledger.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    {"run": command_run, "ledger": command_ledger}[args.command](args)


if __name__ == "__main__":
    main()
