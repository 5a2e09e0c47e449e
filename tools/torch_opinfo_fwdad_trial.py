"""Forward-mode AD of torch's own OpInfo samples (``op_db``) on torch and on chainrule, compared.

For every OpInfo torch marks ``supports_forward_ad``, the first float64 samples (drawn as
tools/torch_opinfo_trial.py draws them, with ``requires_grad=True``) run on both libraries inside
``autograd.forward_ad.dual_level()``: each differentiable input (a floating or complex tensor that
requires grad) is made a dual tensor with a seeded random tangent, the same on both, the op runs,
and ``unpack_dual`` of every output gives its primal and tangent, compared with
``torch.testing.assert_close``'s default tolerances. A None tangent and a zero one count alike; no
tangent where torch's is not zero is a difference. The first sample of each OpInfo also runs
through ``func.jvp`` on both (the same tangents, the op's floating outputs as a tuple). With
``--dtype complex128`` the same runs on the OpInfos' complex128 samples, drawn requiring grad too.

    python tools/torch_opinfo_fwdad_trial.py run --out /tmp/fwdad                  # every OpInfo
    python tools/torch_opinfo_fwdad_trial.py run --out /tmp/fwdad --filter conv    # names containing "conv"
    python tools/torch_opinfo_fwdad_trial.py run --out /tmp/fwdad_c --dtype complex128
    python tools/torch_opinfo_fwdad_trial.py ledger --out /tmp/fwdad               # write the CI ledger

Kinds per sample and variant (``dual``, ``func.jvp``): ``same``; ``differ`` (a primal's value,
dtype or shape); ``tangent_differ``; ``fwd_raised`` (chainrule raised, torch ran);
``torch_raised``; ``skipped`` with a reason (an op chainrule lacks, a dtype or layout it does not
have, no differentiable input, a deliberate difference in SKIPPED).

How chainrule's callable is found, how samples convert and how values compare is
tools/torch_opinfo_trial.py's own machinery, imported from it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import os
import sys
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_opinfo_trial as opinfo_trial  # noqa: E402
from torch_opinfo_trial import (  # noqa: E402
    SAMPLE_TIMEOUT_S,
    ReachedTorch,
    SampleTimeout,
    Trial,
    Unconvertible,
    _cotangent,
    _leaves,
    _short,
    _without_test_function_lookup,
    compare_outputs,
    entry_name,
    load_op_db,
    summarise,
)
from torch_oracle import time_limit  # noqa: E402

LEDGER = os.path.join(ROOT, "tests", "compat", "data", "torch_op_db_fwdad_ledger.json")

SAMPLES_PER_OP = 8       # float64 samples per OpInfo, the generator's first
JVP_SAMPLES = 1          # of those, how many also run through func.jvp
KINDS = ("same", "differ", "tangent_differ", "fwd_raised", "torch_raised", "skipped")
FAILING = ("differ", "tangent_differ", "fwd_raised")

# OpInfos (names as entry_name gives them) whose tangents differ on purpose, each with why
SKIPPED = {}
# float64 samples (OpInfo -> their indices) whose tangents differ on purpose, each with why;
# checked against central differences (chainrule's the closer)
SKIPPED_SAMPLES = {
    "logcumsumexp": ({1, 3, 4}, "torch's tangent is off from central differences by up to 5e-6 on these wide-range "
                                "inputs; chainrule's agrees to 1e-8"),
    "cholesky_inverse": (set(range(6, 12)), "torch's tangent is off from central differences by 8e-6 to 8e-5 on "
                                            "every non-empty sample; chainrule's agrees to 1e-9"),
}


# ---- one sample -------------------------------------------------------------------------------
def _differentiable_inputs(sample, torch):
    """The sample's distinct floating or complex tensors that require grad, in argument order."""
    found = {}
    for _, leaf in _leaves((sample.input, tuple(sample.args), tuple(sample.kwargs.values())), torch):
        if (isinstance(leaf, torch.Tensor) and leaf.requires_grad
                and (leaf.is_floating_point() or leaf.is_complex())):
            found.setdefault(id(leaf), leaf)
    return list(found.values())


def _substitute(value, replacements):
    """``value`` (nested lists, tuples, named tuples, dicts) with the tensors keyed by id in
    ``replacements`` replaced."""
    if id(value) in replacements:
        return replacements[id(value)]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_substitute(v, replacements) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, replacements) for v in value)
    if isinstance(value, dict):
        return {k: _substitute(v, replacements) for k, v in value.items()}
    return value


def _call(function, process, arguments, replacements):
    sample_input, args, kwargs = _substitute(arguments, replacements)
    return process(function(sample_input, *args, **kwargs))


def _run_dual(lib, function, process, arguments, inputs, tangents):
    """Inside a dual level: the op on dual ``inputs``; its output leaves, primal and tangent apart."""
    forward_ad = lib.autograd.forward_ad
    with forward_ad.dual_level():
        duals = {id(x): forward_ad.make_dual(x.detach(), t) for x, t in zip(inputs, tangents)}
        out = _call(function, process, arguments, duals)
        primals, out_tangents = [], []
        for _, leaf in _leaves(out, lib):
            if isinstance(leaf, lib.Tensor):
                primal, tangent = forward_ad.unpack_dual(leaf)
                primals.append(primal)
                out_tangents.append(tangent)
            else:
                primals.append(leaf)
                out_tangents.append(None)
    return primals, out_tangents


def _run_jvp(lib, function, process, arguments, inputs, tangents):
    """``func.jvp`` of the op in its differentiable inputs: (outputs, their tangents)."""

    def of_inputs(*xs):
        out = _call(function, process, arguments, {id(x): new for x, new in zip(inputs, xs)})
        return tuple(leaf for _, leaf in _leaves(out, lib)
                     if isinstance(leaf, lib.Tensor) and (leaf.is_floating_point() or leaf.is_complex()))

    outputs, out_tangents = lib.func.jvp(of_inputs, tuple(x.detach() for x in inputs), tuple(tangents))
    return list(outputs), list(out_tangents)


def _compare_tangents(primals, expected, actual, torch, chainrule):
    """None when chainrule's output tangents agree with torch's, else why not."""
    for i, (primal, e, a) in enumerate(zip(primals, expected, actual)):
        if e is None and a is None:
            continue
        if not isinstance(primal, torch.Tensor) or not (primal.is_floating_point() or primal.is_complex()):
            return f"out[{i}]: torch gives a {type(primal).__name__} output no tangent, chainrule one"
        if e is None:
            e = torch.zeros_like(primal)
        if a is None:
            if bool((e != 0).any()):
                return f"out[{i}]: no tangent in chainrule; torch's is not zero"
            continue
        mismatch = compare_outputs(e, a, torch)
        if mismatch is not None:
            return f"tangent of out[{i}]: {mismatch[len('out: '):] if mismatch.startswith('out: ') else mismatch}"
    return None


def run_fwdad_sample(trial, torch_function, function, sample, seed, process, run=_run_dual):
    """One sample on both, through ``run`` (_run_dual or _run_jvp); returns (kind, detail)."""
    torch, chainrule = trial.torch, trial.chainrule
    torch_inputs = _differentiable_inputs(sample, torch)
    if not torch_inputs:
        return "skipped", "no differentiable input"
    memo = {}
    try:
        chainrule_arguments = (trial.value(sample.input, memo), trial.value(tuple(sample.args), memo),
                               trial.value(dict(sample.kwargs), memo))
        torch_tangents = [_cotangent(seed + i, x, torch) for i, x in enumerate(torch_inputs)]
        chainrule_tangents = [trial.value(t, {}) for t in torch_tangents]
    except Unconvertible as error:
        return "skipped", f"unconvertible: {error}"
    chainrule_inputs = [memo[id(x)] for x in torch_inputs]
    torch_arguments = (sample.input, tuple(sample.args), dict(sample.kwargs))

    # (the CPU generator alone: torch.manual_seed also queues lazy CUDA, MTIA and XPU seeding, each
    # recording its caller's stack, 4 ms a call)
    torch.default_generator.manual_seed(seed)
    try:
        with time_limit(SAMPLE_TIMEOUT_S, SampleTimeout):
            expected, expected_tangents = run(torch, torch_function, sample.output_process_fn_grad, torch_arguments,
                                              torch_inputs, torch_tangents)
    except SampleTimeout:
        return "skipped", "torch took too long"
    except Exception as error:
        return "torch_raised", _short(error)
    chainrule.manual_seed(seed)
    try:
        with time_limit(SAMPLE_TIMEOUT_S, SampleTimeout), trial.chainrule_only():
            actual, actual_tangents = run(chainrule, function, process, chainrule_arguments, chainrule_inputs,
                                          chainrule_tangents)
    except ReachedTorch as error:
        return "skipped", f"closure: reached torch.{error}"
    except Exception as error:
        return "fwd_raised", _short(error)
    mismatch = compare_outputs(expected, actual, torch)
    if mismatch is not None:
        return "differ", mismatch
    mismatch = _compare_tangents(expected, expected_tangents, actual_tangents, torch, chainrule)
    if mismatch is not None:
        return "tangent_differ", mismatch
    return "same", ""


def torch_disowns_forward_ad(op, dtype_name="float64"):
    """Why torch's own test_forward_mode_AD does not hold this OpInfo to its tangents in
    ``dtype_name`` on the CPU (a skip or an expected failure in its decorators), or None."""
    for decorator in op.decorators:
        if (getattr(decorator, "cls_name", None), getattr(decorator, "test_name", None)) != \
                ("TestFwdGradients", "test_forward_mode_AD"):
            continue
        if not decorator.active_if or decorator.device_type not in (None, "cpu"):
            continue
        if decorator.dtypes is not None and not any(str(d) == f"torch.{dtype_name}" for d in decorator.dtypes):
            continue
        for marker in decorator.decorators:
            name = getattr(marker, "__qualname__", "")
            if name == "expectedFailure" or name.startswith("skip."):
                kind = "an expected failure" if name == "expectedFailure" else "skipped"
                return f"torch's own OpInfo marks its test_forward_mode_AD {kind}"
    return None


# ---- one OpInfo -------------------------------------------------------------------------------
class _DrawnRequiringGrad:
    """An OpInfo whose samples are drawn requiring grad in every dtype (torch_opinfo_trial.run_op
    asks so for float64 only)."""

    def __init__(self, op):
        self._op = op

    def __getattr__(self, name):
        return getattr(self._op, name)

    def sample_inputs(self, device, dtype, requires_grad=False, **kwargs):
        return self._op.sample_inputs(device, dtype, requires_grad=True, **kwargs)


def run_op(trial, op, limit=SAMPLES_PER_OP, plan=None, dtype_name="float64"):
    """The first ``limit`` samples in ``dtype_name`` of one OpInfo through dual tensors, the first
    JVP_SAMPLES also through func.jvp; ``plan``, when given, is the ledger's selection
    ``{"dual": [indices], "func.jvp": [indices]}``. Drawing samples, finding chainrule's callable
    and the OpInfo-level skips are torch_opinfo_trial.run_op's, which calls this trial's sample
    runner in place of its own."""
    name = entry_name(op)
    if name in SKIPPED:
        return [{"op": name, "dtype": dtype_name, "variant": "dual", "index": -1, "kind": "skipped",
                 "detail": SKIPPED[name]}]
    wanted = None
    if plan is not None:
        wanted = {variant: set(plan.get(variant, ())) for variant in ("dual", "func.jvp")}
    base_seed = zlib.crc32(f"{name}/{dtype_name}".encode())
    jvp_records = []
    # as torch's own forward-AD test: through the OpInfo's gradcheck_wrapper (a Hermitian or
    # triangular input made so, dropout's seed set), which its formulas assume
    torch_function = functools.partial(op.gradcheck_wrapper, op.op)
    wrapper = trial.value(op.gradcheck_wrapper, {})

    disowned = torch_disowns_forward_ad(op, dtype_name)
    skipped_indices, skipped_reason = SKIPPED_SAMPLES.get(name, ((), "")) if dtype_name == "float64" else ((), "")

    def compared(kind, detail):
        if disowned and kind in FAILING:
            return "skipped", f"{disowned}; here {kind}: {detail}"
        return kind, detail

    def run_sample(trial, op_or_method, function, sample, dtype_name, seed, want_grad, process, uninitialised):
        index = seed - base_seed
        if index in skipped_indices:
            return "skipped", skipped_reason
        chainrule_function = functools.partial(wrapper, function)
        if wanted is None or index in wanted["func.jvp"]:
            if wanted is not None or index < JVP_SAMPLES:
                kind, detail = compared(*run_fwdad_sample(trial, torch_function, chainrule_function, sample, seed,
                                                          process, _run_jvp))
                jvp_records.append({"op": name, "dtype": dtype_name, "variant": "func.jvp", "index": index,
                                    "kind": kind, "detail": detail})
        if wanted is not None and index not in wanted["dual"]:
            return "skipped", "not in the ledger's selection"
        return compared(*run_fwdad_sample(trial, torch_function, chainrule_function, sample, seed, process))

    if wanted is not None:
        limit = max(wanted["dual"] | wanted["func.jvp"], default=-1) + 1
    with _module_globals(opinfo_trial, run_sample=run_sample):
        records = _values_run_op(trial, _DrawnRequiringGrad(op), dtypes=(dtype_name,), limit=limit)
    for record in records:
        if record["variant"] == "function":
            record["variant"] = "dual"
    if wanted is not None:
        records = [r for r in records if r["index"] in wanted["dual"] or r["index"] < 0]
    return records + jvp_records


@contextlib.contextmanager
def _module_globals(module, **values):
    """``module``'s globals set to ``values`` meanwhile: torch_opinfo_trial has no hook for another
    sample runner or ledger file, so this trial swaps its globals while it calls it."""
    original = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in original.items():
            setattr(module, name, value)


_values_run_op = opinfo_trial.run_op  # (run_ledger swaps the module's for this trial's)


def forward_ad_ops(op_db):
    return [op for op in op_db if op.supports_forward_ad]


# ---- reports ----------------------------------------------------------------------------------
def write_reports(records, out, elapsed):
    per_op, totals = summarise(records)
    by_variant = collections.defaultdict(collections.Counter)
    for record in records:
        by_variant[record["variant"]][record["kind"]] += 1
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "records.json"), "w") as handle:
        json.dump(records, handle, indent=0)
    first = {}
    for record in records:
        if record["kind"] in FAILING:
            first.setdefault(record["op"], f"{record['variant']} #{record['index']} {record['kind']}: "
                                           f"{record['detail']}")
    ranked = sorted(first, key=lambda op: -sum(per_op[op][k] for k in FAILING))
    lines = ["# torch OpInfo forward-AD trial", "",
             f"{len(per_op)} OpInfos, {len(records)} samples, {elapsed:.0f} s", "",
             "| variant | " + " | ".join(KINDS) + " |", "|---" * (len(KINDS) + 1) + "|"]
    lines += [f"| {variant} | " + " | ".join(str(counts[k]) for k in KINDS) + " |"
              for variant, counts in sorted(by_variant.items())]
    lines += ["", "## Failing OpInfos (most failing samples first)", "",
              "| op | " + " | ".join(KINDS) + " | first failure |", "|---" * (len(KINDS) + 2) + "|"]
    for op in ranked:
        cell = first[op].replace("|", "/")[:240]
        lines.append(f"| {op} | " + " | ".join(str(per_op[op][k]) for k in KINDS) + f" | {cell} |")
    raised = collections.Counter(r["detail"][:120] for r in records if r["kind"] == "torch_raised")
    skipped = collections.Counter(r["detail"][:80] for r in records if r["kind"] == "skipped")
    for title, counter in (("torch raised", raised), ("Skipped", skipped)):
        lines += ["", f"## {title}, by reason", "", "| reason | samples |", "|---|---|"]
        lines += [f"| {reason.replace('|', '/')} | {count} |" for reason, count in counter.most_common()]
    with open(os.path.join(out, "summary.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    summary = {"elapsed_s": round(elapsed, 1), "totals": dict(totals),
               "by_variant": {variant: dict(counts) for variant, counts in sorted(by_variant.items())},
               "per_op": {op: dict(counts) for op, counts in sorted(per_op.items())}}
    with open(os.path.join(out, "summary.json"), "w") as handle:
        json.dump(summary, handle, indent=1, sort_keys=True)
    print(f"{len(per_op)} OpInfos, {len(records)} samples, {elapsed:.0f} s")
    print(f"  {'kind':16s}" + "".join(f"{variant:>10s}" for variant in sorted(by_variant)))
    for kind in KINDS:
        print(f"  {kind:16s}" + "".join(f"{by_variant[variant][kind]:10d}" for variant in sorted(by_variant)))
    agreeing = sum(1 for counts in per_op.values() if counts["same"] and not any(counts[k] for k in FAILING))
    print(f"  OpInfos whose every run sample agrees: {agreeing}")


# ---- commands ---------------------------------------------------------------------------------
def command_run(args):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    np.random.seed(0)
    trial = Trial()
    start = time.time()
    records = []
    with _without_test_function_lookup():
        for op in forward_ad_ops(load_op_db()):
            name = entry_name(op)
            if (args.filter and args.filter not in name) or (args.only and name not in args.only.split(",")):
                continue
            op_start = time.time()
            op_records = run_op(trial, op, limit=args.limit, dtype_name=args.dtype)
            for record in op_records:
                record["seconds"] = round((time.time() - op_start) / len(op_records), 4)
            records += op_records
            if args.verbose:
                print(f"{name}: {time.time() - op_start:.2f} s", file=sys.stderr)
    write_reports(records, args.out, time.time() - start)


# the CI ledger's budget: per OpInfo, the first agreeing dual sample (func.jvp runs the same dual
# tensors through one more wrapper, tested in tests/autograd/test_forward_ad.py; here it would add
# 2 s of CPU to the test)
LEDGER_BUDGET = {("float64", "dual"): 1}
LEDGER_SLOW_OP_S = 0.5  # OpInfos whose samples took longer than this in the trial stay out of CI


def command_ledger(args):
    """From the run at ``--out``: per OpInfo, the first samples of each variant that agreed, within
    LEDGER_BUDGET, for tests/compat/test_torch_op_db_fwdad.py to keep agreeing (the values trial's
    ledger command, with this trial's file, budget and time limit)."""
    with _module_globals(opinfo_trial, LEDGER=LEDGER, LEDGER_BUDGET=LEDGER_BUDGET, LEDGER_SLOW_OP_S=LEDGER_SLOW_OP_S):
        opinfo_trial.command_ledger(args)


def run_ledger(ledger: dict) -> list:
    """Run the ledger's samples; the records of those that no longer agree (the values trial's
    run_ledger, its run_op answered by this trial's)."""
    def planned(trial, op, plan, **_drawn_as):  # (the ledger's samples are always drawn by sample_inputs)
        return run_op(trial, op, plan={variant: indices for (_, variant), indices in plan.items()})

    with _module_globals(opinfo_trial, run_op=planned):
        return opinfo_trial.run_ledger(ledger)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default="")
    run.add_argument("--only", default="", help="comma-separated exact OpInfo names")
    run.add_argument("--limit", type=int, default=SAMPLES_PER_OP)
    run.add_argument("--dtype", default="float64", help="the samples' dtype: float64 or complex128")
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(handler=command_run)
    ledger = sub.add_parser("ledger")
    ledger.add_argument("--out", required=True)
    ledger.set_defaults(handler=command_ledger)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
