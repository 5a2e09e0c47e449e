"""Differentiate torch's own OpInfo samples (``op_db``) twice on torch and on chainrule, and compare.

Double backward is what gradient penalties (WGAN-GP), MAML, Hessian-vector products and every
``create_graph=True`` rely on. torch marks the OpInfos whose second derivatives it tests
``supports_gradgrad``; for the first few float64 and complex128 samples of each, through the function
and (as torch's test_inplace_gradgrad, on a clone of the input) its in-place variant, on both libraries:

    outputs -> a seeded cotangent v per differentiable output (v requires grad)
    g = autograd.grad(outputs, inputs, v, create_graph=True)
    a second seeded cotangent w per g that requires grad
    autograd.grad(g, inputs + v, w, allow_unused=True)      # every second-order gradient compared

as torch's ``gradgradcheck`` does (it differentiates with respect to the cotangents too). A gradient
that is None on one side and zeros on the other counts as the same, as in the first-order trial.
The machinery (finding chainrule's callable, converting samples faithfully, comparing outputs,
seeding cotangents) is tools/torch_opinfo_trial.py's, imported.

    python tools/torch_opinfo_gradgrad_trial.py run --out /tmp/gradgrad                 # every OpInfo
    python tools/torch_opinfo_gradgrad_trial.py run --out /tmp/gradgrad --filter softmax
    python tools/torch_opinfo_gradgrad_trial.py ledger --out /tmp/gradgrad              # write the CI ledger

Kinds per sample: ``same``; ``gradgrad_differ`` (a second-order gradient's values, dtype or shape);
``gradgrad_raised`` (chainrule's double backward raised, torch's did not); ``not_differentiable``
(chainrule's first-order gradient has no graph where torch's has: a rule computed outside autograd);
``torch_raised``; ``skipped`` with a reason (the forward or first-order gradient already differs,
which is the first-order trial's business; an OpInfo left out on purpose; an unconvertible sample).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import sys
import time
import types
import warnings
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_opinfo_trial import (  # noqa: E402
    SKIPPED_OPS,
    ReachedTorch,
    SampleTimeout,
    Trial,
    Unconvertible,
    _cotangent,
    _differentiable_leaves,
    _leaves,
    _short,
    _without_test_function_lookup,
    compare_outputs,
    entry_name,
    load_op_db,
    replay_ledger,
)
from torch_oracle import time_limit  # noqa: E402

LEDGER = os.path.join(ROOT, "tests", "compat", "data", "torch_op_db_gradgrad_ledger.json")
SAMPLES = 6            # samples per OpInfo and dtype; torch's generators put the plain shapes first
DTYPES = ("float64", "complex128")
SAMPLE_TIMEOUT_S = 10
KINDS = ("same", "gradgrad_differ", "gradgrad_raised", "not_differentiable", "torch_raised", "skipped")
FAILING = ("gradgrad_differ", "gradgrad_raised", "not_differentiable")

def _requires_graph(value) -> bool:
    return value is not None and bool(getattr(value, "requires_grad", False))


def _zeros_for(chainrule, like):
    return chainrule.zeros(tuple(like.shape), dtype=like.dtype)


def _compare_gradients(expected, actual, torch_likes, chainrule_likes, torch, chainrule, names):
    """None when every gradient agrees (None and zeros alike), else which one differs and how."""
    for i, (e, a) in enumerate(zip(expected, actual)):
        if e is None and a is None:
            continue
        if e is None:
            e = torch.zeros_like(torch_likes[i])
        if a is None:
            a = _zeros_for(chainrule, chainrule_likes[i])
        mismatch = compare_outputs(e, a, torch)
        if mismatch is not None:
            return f"{names[i]}: {mismatch}"
    return None


def run_gradgrad_sample(trial, torch_callable, function, sample, seed, process_output):
    """One sample's double backward on both; returns (kind, detail)."""
    torch, chainrule = trial.torch, trial.chainrule
    memo = {}
    try:
        chainrule_input = trial.value(sample.input, memo)
        chainrule_args = trial.value(tuple(sample.args), memo)
        chainrule_kwargs = trial.value(dict(sample.kwargs), memo)
    except Unconvertible as error:
        return "skipped", f"unconvertible: {error}"
    torch_inputs = [v for _, v in _leaves((sample.input, tuple(sample.args), tuple(sample.kwargs.values())), torch)
                    if isinstance(v, torch.Tensor) and v.requires_grad]
    if not torch_inputs:
        return "skipped", "no input requires grad"

    # torch: forward, first order with a graph, second order
    torch.manual_seed(seed)
    try:
        with time_limit(SAMPLE_TIMEOUT_S, SampleTimeout):
            expected = sample.output_process_fn_grad(torch_callable(sample.input, *sample.args, **sample.kwargs))
            torch_outputs = _differentiable_leaves(expected, torch)
            if not torch_outputs:
                return "skipped", "no differentiable output in torch"
            torch_v = [_cotangent(seed + i, out, torch).requires_grad_() for i, out in enumerate(torch_outputs)]
            # with a constant cotangent (a gradient penalty's ones) as well: which gradients have a graph
            torch_constant_g = torch.autograd.grad(torch_outputs, torch_inputs, [v.detach() for v in torch_v],
                                                   create_graph=True, allow_unused=True)
            torch_g = torch.autograd.grad(torch_outputs, torch_inputs, torch_v, create_graph=True,
                                          allow_unused=True)
            second_of = [i for i, g in enumerate(torch_g) if _requires_graph(g)]
            if not second_of:
                return "skipped", "torch's first-order gradient has no graph (a constant derivative)"
            torch_w = [_cotangent(seed + 1000 + i, torch_g[i], torch) for i in second_of]
            expected_second = torch.autograd.grad([torch_g[i] for i in second_of], torch_inputs + torch_v,
                                                  torch_w, allow_unused=True)
    except SampleTimeout:
        return "skipped", "torch took too long"
    except Exception as error:
        return "torch_raised", _short(error)

    # chainrule: the same steps, with the same cotangents
    positions = [i for i, (_, leaf) in enumerate(_leaves(expected, torch))
                 if any(leaf is out for out in torch_outputs)]
    chainrule_inputs = [memo[id(t)] for t in torch_inputs]
    try:
        chainrule_v = [trial.value(v.detach(), {}).requires_grad_() for v in torch_v]
        chainrule_w = [trial.value(w, {}) for w in torch_w]
    except Unconvertible as error:
        return "skipped", f"unconvertible cotangent: {error}"
    chainrule.manual_seed(seed)

    def chainrule_step(stage, step):
        """``step()`` run on chainrule alone; (result, None) or (None, the record of how it failed)."""
        try:
            with time_limit(SAMPLE_TIMEOUT_S, SampleTimeout), trial.chainrule_only():
                return step(), None
        except ReachedTorch as error:
            return None, ("skipped", f"closure: reached torch.{error}")
        except Exception as error:
            if stage == "second-order backward":
                return None, ("gradgrad_raised", _short(error))
            return None, ("skipped", f"first order: chainrule's {stage} raised {_short(error)}")

    actual, failed = chainrule_step(
        "forward", lambda: process_output(function(chainrule_input, *chainrule_args, **chainrule_kwargs)))
    if failed:
        return failed
    mismatch = compare_outputs(expected, actual, torch)
    if mismatch is not None:
        return "skipped", f"first order: forward differs ({mismatch})"
    chainrule_leaves = [leaf for _, leaf in _leaves(actual, chainrule)]
    chainrule_outputs = [chainrule_leaves[i] for i in positions]
    if not all(_requires_graph(out) for out in chainrule_outputs):
        return "skipped", "first order: an output that requires grad in torch does not in chainrule"
    chainrule_constant_g, failed = chainrule_step("first-order backward", lambda: chainrule.autograd.grad(
        chainrule_outputs, chainrule_inputs, [v.detach() for v in chainrule_v], create_graph=True,
        allow_unused=True))
    if failed:
        return failed
    chainrule_g, failed = chainrule_step("first-order backward", lambda: chainrule.autograd.grad(
        chainrule_outputs, chainrule_inputs, chainrule_v, create_graph=True, allow_unused=True))
    if failed:
        return failed
    mismatch = _compare_gradients(torch_g, chainrule_g, torch_inputs, chainrule_inputs, torch, chainrule,
                                  [f"input {i}" for i in range(len(torch_inputs))])
    if mismatch is not None:
        return "skipped", f"first order: gradient differs ({mismatch})"
    lacking = [i for i in second_of if chainrule_g[i] is not None and not _requires_graph(chainrule_g[i])]
    if lacking:
        return "not_differentiable", (f"the gradient of input {lacking[0]} has no grad_fn "
                                      f"(torch's has {type(torch_g[lacking[0]].grad_fn).__name__})")
    lacking = [i for i, g in enumerate(torch_constant_g)
               if _requires_graph(g) and not _requires_graph(chainrule_constant_g[i])]
    if lacking:
        i = lacking[0]
        return "not_differentiable", (f"with a constant cotangent, the gradient of input {i} is "
                                      f"{'None' if chainrule_constant_g[i] is None else 'without grad_fn'} "
                                      f"(torch's has {type(torch_constant_g[i].grad_fn).__name__})")
    # a None first-order gradient is torch's zeros (compared above): it adds nothing to the second order
    kept = [k for k, i in enumerate(second_of) if chainrule_g[i] is not None]
    actual_second, failed = chainrule_step("second-order backward", lambda: chainrule.autograd.grad(
        [chainrule_g[second_of[k]] for k in kept], chainrule_inputs + chainrule_v,
        [chainrule_w[k] for k in kept], allow_unused=True))
    if failed:
        return failed
    names = [f"d/d input {i}" for i in range(len(torch_inputs))] + [f"d/d v{i}" for i in range(len(torch_v))]
    mismatch = _compare_gradients(expected_second, actual_second, torch_inputs + torch_v,
                                  chainrule_inputs + chainrule_v, torch, chainrule, names)
    if mismatch is not None:
        return "gradgrad_differ", mismatch
    return "same", ""


def torch_expects_gradgrad_failure(op, dtype) -> bool:
    """Whether the OpInfo itself marks torch's double-backward test on CPU in ``dtype`` an expected
    failure (torch's second derivative fails its own gradgradcheck there)."""
    import unittest

    for info in op.decorators:
        if getattr(info, "test_name", None) != "test_fn_gradgrad":
            continue
        if getattr(info, "device_type", None) not in (None, "cpu"):
            continue
        if info.dtypes is not None and dtype not in info.dtypes:
            continue
        if any(getattr(d, "__name__", "") == unittest.expectedFailure.__name__ for d in info.decorators):
            return True
    return False


def _variants(trial, op):
    """(variant, torch callable, chainrule callable or why missing) for the function and, as torch's
    test_inplace_gradgrad does, the in-place variant applied to a clone of the input."""
    function, how = trial.resolve(op.op)
    variants = [("function", op.op, function if function is not None else f"missing: {how}")]
    inplace = op.inplace_variant
    if inplace is not None and op.supports_inplace_autograd:
        chainrule_inplace, how = trial.resolve(inplace)
        if chainrule_inplace is None:
            chainrule_on_clone = f"missing: {how}"
        else:
            def chainrule_on_clone(t, *args, **kwargs):
                return chainrule_inplace(t.clone(), *args, **kwargs)

        def torch_on_clone(t, *args, **kwargs):
            return inplace(t.clone(), *args, **kwargs)

        variants.append(("inplace", torch_on_clone, chainrule_on_clone))
    return variants


def run_op(trial, op, plan=None, samples_per_op=SAMPLES):
    """The first ``samples_per_op`` samples of one OpInfo in each of DTYPES, function and in-place
    variants (or ``plan``: "dtype/variant" -> the sample indices to run); per-sample records."""
    torch = trial.torch
    name = entry_name(op)

    def single(kind, detail, variant="float64/function"):
        return [{"op": name, "variant": variant, "index": -1, "kind": kind, "detail": detail}]

    for prefix, reason in SKIPPED_OPS.items():
        if name.startswith(prefix):
            return single("skipped", reason)
    if not (op.supports_autograd and op.supports_gradgrad):
        return single("skipped", "not supports_gradgrad in torch")
    differentiable = {str(d).split(".")[-1] for d in op.supported_backward_dtypes("cpu")}
    if "float64" not in differentiable:
        return single("skipped", "no float64 gradients on CPU")
    variants = _variants(trial, op)
    records = []
    for dtype_name in DTYPES:
        if dtype_name not in differentiable:
            continue
        wanted = [(f"{dtype_name}/{variant}", *rest) for variant, *rest in variants
                  if plan is None or plan.get(f"{dtype_name}/{variant}")]
        if not wanted:
            continue
        dtype = getattr(torch, dtype_name)
        seed = zlib.crc32(f"{name}/{dtype_name}/gradgrad".encode())
        limit = samples_per_op if plan is None else max(max(plan[key]) for key, *_ in wanted) + 1
        torch.manual_seed(seed)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                generator = op.sample_inputs("cpu", dtype, requires_grad=True)
                samples = list(itertools.islice(generator, limit))
                if hasattr(generator, "close"):
                    generator.close()
        except Exception as error:
            records += single("skipped", f"sample_inputs raised {_short(error)}", f"{dtype_name}/function")
            continue
        expected_failure = torch_expects_gradgrad_failure(op, dtype)
        for variant, torch_callable, chainrule_callable in wanted:
            if isinstance(chainrule_callable, str):
                records += single("skipped", chainrule_callable, variant)
                continue
            for index, sample in enumerate(samples):
                if plan is not None and index not in plan[variant]:
                    continue
                if variant.endswith("inplace") and sample.broadcasts_input:
                    continue  # torch's in-place gradient tests leave these out: the input cannot take the result
                process = sample.output_process_fn_grad
                if isinstance(process, types.FunctionType) and process.__module__.startswith("torch.testing"):
                    process = trial.rebind(process)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        kind, detail = run_gradgrad_sample(trial, torch_callable, chainrule_callable, sample,
                                                           seed + index, process)
                    except Exception as error:
                        kind, detail = "gradgrad_differ", f"comparison failed: {_short(error)}"
                if kind == "gradgrad_differ" and expected_failure:
                    kind, detail = "skipped", f"torch's OpInfo expects its test_fn_gradgrad to fail ({detail})"
                records.append({"op": name, "variant": variant, "index": index, "kind": kind, "detail": detail})
    return records


def _run_all(trial, args):
    records = []
    for op in load_op_db():
        name = entry_name(op)
        if (args.filter and args.filter not in name) or (args.only and name not in args.only.split(",")):
            continue
        start = time.time()
        op_records = run_op(trial, op, samples_per_op=args.samples)
        for record in op_records:
            record["seconds"] = round((time.time() - start) / len(op_records), 4)
        records += op_records
    return records


def write_reports(records, out, elapsed):
    per_op = collections.defaultdict(collections.Counter)
    for record in records:
        per_op[record["op"]][record["kind"]] += 1
    totals = collections.Counter(record["kind"] for record in records)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "records.json"), "w") as handle:
        json.dump(records, handle, indent=0)
    first = {}
    for record in records:
        if record["kind"] in FAILING:
            first.setdefault(record["op"], f"{record['variant']} #{record['index']} {record['kind']}: "
                                           f"{record['detail']}")
    ranked = sorted(first, key=lambda op: -sum(per_op[op][k] for k in FAILING))
    lines = ["# torch OpInfo double-backward trial", "", f"{len(per_op)} OpInfos, {len(records)} records, "
             f"{elapsed:.0f} s", ""]
    by_variant = collections.Counter((record["variant"], record["kind"]) for record in records)
    variants = sorted({record["variant"] for record in records})
    lines += ["| kind | " + " | ".join(variants) + " | all |", "|---" * (len(variants) + 2) + "|"]
    lines += [f"| {kind} | " + " | ".join(str(by_variant[variant, kind]) for variant in variants)
              + f" | {totals[kind]} |" for kind in KINDS]
    lines += ["", "## Failing OpInfos (most failing samples first)", "",
              "| op | " + " | ".join(KINDS) + " | first failure |", "|---" * (len(KINDS) + 2) + "|"]
    for op in ranked:
        cell = first[op].replace("|", "/")[:300]
        lines.append(f"| {op} | " + " | ".join(str(per_op[op][k]) for k in KINDS) + f" | {cell} |")
    skipped = collections.Counter(record["detail"].split("(")[0].split(":")[0] + (
        ": " + record["detail"].split(":")[1].split("(")[0].strip()[:60] if ":" in record["detail"] else "")
        for record in records if record["kind"] == "skipped")
    lines += ["", "## Skipped by reason", "", "| reason | records |", "|---|---|"]
    lines += [f"| {reason.replace('|', '/')} | {count} |" for reason, count in skipped.most_common()]
    with open(os.path.join(out, "summary.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "summary.json"), "w") as handle:
        json.dump({"elapsed_s": round(elapsed, 1), "totals": dict(totals),
                   "per_op": {op: dict(counts) for op, counts in sorted(per_op.items())}},
                  handle, indent=1, sort_keys=True)
    print(f"{len(per_op)} OpInfos, {len(records)} records, {elapsed:.0f} s")
    for kind in KINDS:
        print(f"  {kind:18s} {totals[kind]:6d}")
    agreeing = sum(1 for counts in per_op.values() if counts["same"] and not any(counts[k] for k in FAILING))
    print(f"  OpInfos whose every compared sample agrees: {agreeing}")


def command_run(args):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    np.random.seed(0)
    trial = Trial()
    start = time.time()
    with _without_test_function_lookup():
        records = _run_all(trial, args)
    write_reports(records, args.out, time.time() - start)


# the CI ledger's budget: per OpInfo and variant, its first agreeing samples; none slower than this
LEDGER_BUDGET = {"float64/function": 1, "float64/inplace": 1, "complex128/function": 1, "complex128/inplace": 0}
LEDGER_SLOW_SAMPLE_S = 0.05


def command_ledger(args):
    """From the run at ``--out``: per OpInfo and variant, its first agreeing sample(s), for
    tests/compat/test_torch_op_db_gradgrad.py to keep agreeing."""
    with open(os.path.join(args.out, "records.json")) as handle:
        records = json.load(handle)
    ledger = collections.defaultdict(dict)
    for record in records:
        chosen = ledger[record["op"]].setdefault(record["variant"], [])
        if (record["kind"] == "same" and record.get("seconds", 0.0) <= LEDGER_SLOW_SAMPLE_S
                and len(chosen) < LEDGER_BUDGET[record["variant"]]):
            chosen.append(record["index"])
    ledger = {op: {variant: indices for variant, indices in entry.items() if indices}
              for op, entry in sorted(ledger.items())}
    ledger = {op: entry for op, entry in ledger.items() if entry}
    with open(LEDGER, "w") as handle:
        json.dump(ledger, handle, indent=0, sort_keys=True)
        handle.write("\n")
    total = sum(len(indices) for entry in ledger.values() for indices in entry.values())
    print(f"{total} agreeing samples of {len(ledger)} OpInfos -> {os.path.relpath(LEDGER, ROOT)}")


def run_ledger(ledger: dict) -> list:
    """Run the ledger's samples; the records of those that no longer agree (or are no longer drawn)."""
    def run(trial, op, entry):
        plan = {variant: set(indices) for variant, indices in entry.items()}
        records = run_op(trial, op, plan=plan)
        drawn = {(record["variant"], record["index"]) for record in records}
        return records + [{"op": entry_name(op), "variant": variant, "index": i, "kind": "missing",
                           "detail": "sample not drawn"}
                          for variant, indices in plan.items() for i in indices if (variant, i) not in drawn]

    return replay_ledger(ledger, Trial(), run)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default="")
    run.add_argument("--only", default="", help="comma-separated exact OpInfo names")
    run.add_argument("--samples", type=int, default=SAMPLES, help="samples per OpInfo and dtype")
    run.set_defaults(handler=command_run)
    ledger = sub.add_parser("ledger")
    ledger.add_argument("--out", required=True)
    ledger.set_defaults(handler=command_ledger)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
