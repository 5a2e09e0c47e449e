"""Run torch's foreach OpInfo samples (``foreach_*_op_db``) on torch and on chainrule, and compare.

torch 2.13 ships 48 ForeachFuncInfos in ``torch.testing._internal.common_methods_invocations``
(``foreach_unary_op_db``, ``_binary_``, ``_pointwise_``, ``_reduce_``, ``_other_``): ``torch._foreach_*``
over lists of 20 or 23 tensors of different shapes, with a number, a list of numbers, a 0-d tensor or
a list of tensors as the last operand. This trial draws those samples (nothing of torch's is stored
here), converts them with tools/torch_oracle.py, and runs each one through up to three variants:

* ``function``: the out-of-place op (``torch._foreach_add``); values, dtypes and shapes, and for
  float64 one seeded cotangent per output backpropagated to every input;
* ``inplace``: the in-place op (``torch._foreach_add_``) on clones of the sample's tensors; the
  mutated tensors and the return value are compared, and for float64 (where torch's info says the
  in-place op supports autograd) the gradients through the clones;
* ``higher_scalars``: the out-of-place op on the samples torch draws with
  ``allow_higher_dtype_scalars=True`` (float and complex numbers against integer and bool lists:
  type promotion), forward only.

Each run goes through tools/torch_opinfo_trial.py's ``run_sample``; a sample where both raise is
``error_differ`` when the exception types differ, ``message_differ`` when only the words do. A few error cases of our own (no ForeachFuncInfo
has ``error_inputs``) compare exception types and messages: ``errors``.

    python tools/torch_foreach_trial.py run --out /tmp/foreach                  # every ForeachFuncInfo
    python tools/torch_foreach_trial.py run --out /tmp/foreach --filter addc    # names containing "addc"
    python tools/torch_foreach_trial.py ledger --out /tmp/foreach               # write the CI ledger
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
    DTYPES,
    Trial,
    _short,
    _without_test_function_lookup,
    run_sample,
    write_reports,
)

LEDGER = os.path.join(ROOT, "tests", "compat", "data", "torch_foreach_db_ledger.json")
DATABASES = ("foreach_unary_op_db", "foreach_binary_op_db", "foreach_pointwise_op_db", "foreach_reduce_op_db",
             "foreach_other_op_db")
SAMPLES_PER_DTYPE = 40  # torch draws at most 26 per dtype for these infos: all of them
# where both raised: a different exception type, or the same type with different words
ERROR_KINDS = ("error_differ", "message_differ")
# ForeachFuncInfos (or variants) deliberately not run, each with why
SKIPPED = {}
# assert_close tolerances in place of its defaults, each with why
TOLERANCES = {
    # float32 sums of 32 products: torch's BLAS and NumPy's OpenBLAS add them in orders that depend on the
    # CPU (AVX2 or AVX-512 kernels), which moves a value near zero by a few 1e-5
    ("_foreach_mm", "float32"): {"atol": 1e-4, "rtol": 1.3e-6},
}


def _is_in_place_only(op) -> bool:
    """_foreach_zero_ and _foreach_copy_ have no out-of-place form: their info's op is the in-place one."""
    return op.inplace_variant is not None and op.op is op.inplace_variant


def _in_place_on_clones(in_place, clone):
    """``in_place`` run on clones of the list it is given; returns (its return value, the clones), so
    that the clones' new values, and gradients through them, are compared."""
    def run(tensors, *args, **kwargs):
        clones = [clone(t) for t in tensors]
        return in_place(clones, *args, **kwargs), clones
    return run


def _clone(t):
    return t.clone()


def _plain_sample(sample):
    """The sample's call, without the foreach-only attributes (``ref_args``, ``disable_fastpath``)
    run_sample does not know."""
    return types.SimpleNamespace(input=sample.input, args=tuple(sample.args), kwargs=dict(sample.kwargs),
                                 output_process_fn_grad=lambda out: out)


def _record(name, dtype_name, variant, index, kind, detail):
    if kind == "both_raised":
        torch_error, chainrule_error = detail[len("torch "):].split(" | chainrule ", 1)
        if torch_error.split(":", 1)[0] != chainrule_error.split(":", 1)[0]:
            kind = "error_differ"
        elif torch_error != chainrule_error:
            kind = "message_differ"
    return {"op": name, "dtype": dtype_name, "variant": variant, "index": index, "kind": kind, "detail": detail}


def _samples(op, dtype, want_grad, limit, **extra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        generator = op.sample_inputs("cpu", dtype, requires_grad=want_grad, **extra)
        return list(itertools.islice(generator, limit))


def run_op(trial, op, dtypes=DTYPES, limit=SAMPLES_PER_DTYPE, plan=None):
    """Every (dtype, variant) of one ForeachFuncInfo; a list of per-sample records. ``plan``, when
    given, maps ``(dtype, variant)`` to the sample indices to run (the CI ledger's selection)."""
    torch, chainrule = trial.torch, trial.chainrule
    name = op.name
    if name in SKIPPED:
        return [_record(name, "-", "function", -1, "skipped", SKIPPED[name])]
    function = getattr(chainrule, getattr(op.op, "__name__", ""), None)
    in_place = getattr(chainrule, getattr(op.inplace_variant, "__name__", ""), None)
    if function is None:
        return [_record(name, "-", "function", -1, "skipped", f"missing: chainrule.{op.op.__name__}")]
    variants = []  # (variant, torch callable, chainrule callable, gradients compared?)
    if not _is_in_place_only(op):
        variants.append(("function", op.op, function, op.supports_autograd))
    if op.inplace_variant is not None:
        if in_place is None:
            return [_record(name, "-", "inplace", -1, "skipped", f"missing: chainrule.{op.inplace_variant.__name__}")]
        variants.append(("inplace", _in_place_on_clones(op.inplace_variant, _clone),
                         _in_place_on_clones(in_place, _clone), op.supports_inplace_autograd))
    if not _is_in_place_only(op) and getattr(op.sample_inputs_func, "arity", 1) > 1:
        variants.append(("higher_scalars", op.op, function, False))
    supported = {str(d).split(".")[-1] for d in op.supported_dtypes("cpu")}
    records = []
    for dtype_name, (variant, torch_callable, chainrule_callable, differentiable) in itertools.product(
            dtypes, variants):
        if dtype_name not in supported:
            continue
        wanted = None if plan is None else plan.get((dtype_name, variant), set())
        if wanted is not None and not wanted:
            continue
        count = limit if wanted is None else max(wanted) + 1
        want_grad = dtype_name == "float64" and differentiable
        seed = zlib.crc32(f"{name}/{dtype_name}/{variant}".encode())
        torch.manual_seed(seed)
        extra = {"allow_higher_dtype_scalars": True} if variant == "higher_scalars" else {}
        try:
            samples = _samples(op, getattr(torch, dtype_name), want_grad, count, **extra)
        except Exception as error:
            records.append(_record(name, dtype_name, variant, -1, "skipped", f"sample_inputs raised {_short(error)}"))
            continue
        if variant == "higher_scalars":
            # only the samples whose numbers are of a higher kind than the tensors' dtype are new
            plain = _samples(op, getattr(torch, dtype_name), False, count)
            if len(plain) == len(samples):
                continue
        info = types.SimpleNamespace(op=torch_callable, name=name)
        for index, sample in enumerate(samples):
            if wanted is not None and index not in wanted:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    kind, detail = run_sample(trial, info, chainrule_callable, _plain_sample(sample), dtype_name,
                                              seed + index, want_grad, lambda out: out,
                                              tolerance=TOLERANCES.get((name, dtype_name)))
                except Exception as error:
                    kind, detail = "differ", f"comparison failed: {_short(error)}"
            records.append(_record(name, dtype_name, variant, index, kind, detail))
    return records


# ---- error cases of our own: torch's infos have no error_inputs ---------------------------------
def _error_cases(lib):
    """(case name, op name, call) triples: each call raises on torch; chainrule must raise the same
    exception type with the same message."""
    def two(dtype=None):
        return [lib.ones(2, dtype=dtype), lib.ones(3, dtype=dtype)]

    return [
        ("empty list", "_foreach_add", lambda: lib._foreach_add([], 1.0)),
        ("empty list unary", "_foreach_exp", lambda: lib._foreach_exp([])),
        ("list lengths", "_foreach_add", lambda: lib._foreach_add(two(), [lib.ones(2)])),
        ("scalar list length", "_foreach_mul", lambda: lib._foreach_mul(two(), [1.0, 2.0, 3.0])),
        ("alpha with a number", "_foreach_add", lambda: lib._foreach_add(two(), 1.0, alpha=2.0)),
        ("shape mismatch", "_foreach_add", lambda: lib._foreach_add(two(), [lib.ones(3), lib.ones(3)])),
        ("pointwise list lengths", "_foreach_addcmul", lambda: lib._foreach_addcmul(two(), two(), [lib.ones(2)])),
        ("scalars tensor length", "_foreach_addcdiv",
         lambda: lib._foreach_addcdiv(two(), two(), two(), lib.ones(3))),
        ("integer in-place division", "_foreach_div_", lambda: lib._foreach_div_(two(lib.int64), 2.5)),
        ("max of an empty tensor", "_foreach_max", lambda: lib._foreach_max([lib.ones(0)])),
        ("copy_ list lengths", "_foreach_copy_", lambda: lib._foreach_copy_(two(), [lib.ones(2)])),
        ("mm shapes", "_foreach_mm", lambda: lib._foreach_mm([lib.ones(2, 3)], [lib.ones(2, 3)])),
        ("lerp weight list length", "_foreach_lerp", lambda: lib._foreach_lerp(two(), two(), [0.5])),
    ]


def run_errors(trial, filter_text=""):
    torch, chainrule = trial.torch, trial.chainrule
    records = []
    for (case, op_name, torch_call), (_, _, chainrule_call) in zip(_error_cases(torch), _error_cases(chainrule)):
        if filter_text and filter_text not in op_name:
            continue
        outcomes = []
        for call in (torch_call, chainrule_call):
            try:
                call()
                outcomes.append(None)
            except Exception as error:
                outcomes.append(error)
        expected, actual = outcomes
        if expected is None:
            kind, detail = "skipped", "torch did not raise"
        elif actual is None:
            kind, detail = "differ", f"torch raised {_short(expected)}; chainrule did not"
        elif type(expected).__name__ != type(actual).__name__:
            kind, detail = "error_differ", f"torch {_short(expected)} | chainrule {_short(actual)}"
        elif str(expected) != str(actual):
            kind, detail = "message_differ", f"torch {_short(expected)} | chainrule {_short(actual)}"
        else:
            kind, detail = "same", ""
        records.append({"op": op_name, "dtype": "-", "variant": "errors", "index": case, "kind": kind,
                        "detail": detail})
    return records


def load_foreach_db():
    from torch.testing._internal import common_methods_invocations

    return [op for database in DATABASES for op in getattr(common_methods_invocations, database)]


def command_run(args):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    np.random.seed(0)
    trial = Trial()
    start = time.time()
    records = []
    with _without_test_function_lookup():
        for op in load_foreach_db():
            if args.filter and args.filter not in op.name:
                continue
            op_start = time.time()
            op_records = run_op(trial, op, limit=args.limit)
            for record in op_records:
                record["seconds"] = round((time.time() - op_start) / len(op_records), 4)
            records += op_records
            if args.verbose:
                print(f"{op.name}: {time.time() - op_start:.2f} s", file=sys.stderr)
    records += run_errors(trial, args.filter)
    write_reports(records, args.out, time.time() - start)
    kinds = collections.Counter(record["kind"] for record in records)
    for kind in ERROR_KINDS:  # beyond the op_db trial's table
        print(f"  {kind:18s} {kinds[kind]:6d}")


# the CI ledger's budget: per ForeachFuncInfo, how many agreeing samples of each (dtype, variant),
# spread over the agreeing ones (torch orders them by the last operand's kind: tensors, number,
# numbers, 0-d tensor), so that each kind of operand is kept
LEDGER_BUDGET = {("float64", "function"): 2, ("float64", "inplace"): 1, ("float32", "function"): 1,
                 ("float32", "inplace"): 1, ("int64", "function"): 1, ("bool", "function"): 1,
                 ("int64", "higher_scalars"): 2, ("bool", "inplace"): 1}


def _spread(indices: list, count: int) -> list:
    """``count`` of ``indices`` evenly spaced, the first and the last included."""
    if len(indices) <= count:
        return indices
    if count == 1:
        return indices[:1]
    return sorted({indices[round(k * (len(indices) - 1) / (count - 1))] for k in range(count)})


def command_ledger(args):
    """From the run at ``--out``: per ForeachFuncInfo, the first samples of each (dtype, variant)
    that agreed, within LEDGER_BUDGET, and the error cases that agreed, for
    tests/compat/test_torch_foreach_db.py to keep agreeing."""
    with open(os.path.join(args.out, "records.json")) as handle:
        records = json.load(handle)
    agreeing = collections.defaultdict(list)
    for record in records:
        if record["kind"] == "same":
            agreeing[record["op"], record["dtype"], record["variant"]].append(record["index"])
    ledger = collections.defaultdict(dict)
    for (op, dtype_name, variant), indices in agreeing.items():
        if variant == "errors":
            ledger["errors"].setdefault("cases", []).extend(indices)
        elif (dtype_name, variant) in LEDGER_BUDGET:
            ledger[op][f"{dtype_name}/{variant}"] = _spread(indices, LEDGER_BUDGET[dtype_name, variant])
    os.makedirs(os.path.dirname(LEDGER), exist_ok=True)
    with open(LEDGER, "w") as handle:
        json.dump(dict(sorted(ledger.items())), handle, indent=0, sort_keys=True)
        handle.write("\n")
    total = sum(len(indices) for entry in ledger.values() for indices in entry.values())
    print(f"{total} agreeing samples and error cases of {len(ledger)} entries -> {os.path.relpath(LEDGER, ROOT)}")


def run_ledger(ledger: dict) -> list:
    """Run the ledger's samples and error cases; the records of those that no longer agree."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # (restored: a test process's later torch comparisons would run single-threaded, with other roundings)
        trial = Trial()
        failures = []
        with _without_test_function_lookup():
            for op in load_foreach_db():
                entry = ledger.get(op.name)
                if not entry:
                    continue
                plan = {tuple(key.split("/")): set(indices) for key, indices in entry.items()}
                failures += [record for record in run_op(trial, op, plan=plan) if record["kind"] != "same"]
        cases = set(ledger.get("errors", {}).get("cases", []))
        failures += [record for record in run_errors(trial) if record["index"] in cases and record["kind"] != "same"]
    finally:
        torch.set_num_threads(threads)
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default="")
    run.add_argument("--limit", type=int, default=SAMPLES_PER_DTYPE)
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(handler=command_run)
    ledger = sub.add_parser("ledger")
    ledger.add_argument("--out", required=True)
    ledger.set_defaults(handler=command_ledger)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
