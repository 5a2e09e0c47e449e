"""torch's OpInfo samples (``op_db``) in the dtypes the op_db trial leaves out: float16, bfloat16,
complex64, complex128, int8, int16, int32 and uint8.

tools/torch_opinfo_trial.py compares float32, float64, int64 and bool. This trial reuses its
machinery (``Trial``, ``run_op``, ``run_sample``, ``compare_outputs``, the reports) for the
dtypes people train, quantise and transform in: the first 24 samples of every OpInfo in each of
these dtypes that the OpInfo supports on CPU, forward values and result dtypes compared with
``torch.testing.assert_close``'s per-dtype tolerances; for complex128 also the gradients (one
seeded cotangent) where torch's OpInfo supports complex autograd.

    python tools/torch_opinfo_dtypes_trial.py run --out /tmp/dtypes                 # every OpInfo
    python tools/torch_opinfo_dtypes_trial.py run --out /tmp/dtypes --filter add    # names containing "add"
    python tools/torch_opinfo_dtypes_trial.py run --out /tmp/dtypes --dtypes uint8,int8
    python tools/torch_opinfo_dtypes_trial.py ledger --out /tmp/dtypes              # write the CI ledger
    python tools/torch_opinfo_dtypes_trial.py run --out /tmp/dtypes --unsupported   # dtypes torch refuses

``--unsupported`` turns the trial round: each OpInfo runs its first samples in the dtypes (of
``ALL_DTYPES``) it does *not* list for CPU, where torch mostly refuses ("not implemented for
'Int'"). ``torch_raised`` then counts samples chainrule computes where torch refuses, and
``both_raised`` is split by whether the two errors agree in type and message.

bfloat16 tensors need ml_dtypes (chainrule's ``bf16`` extra); without it bfloat16 samples are
skipped with that reason.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_opinfo_trial as op_db_trial  # noqa: E402
from torch_opinfo_trial import (  # noqa: E402
    SAMPLES_PER_DTYPE,
    Trial,
    Unconvertible,
    _without_test_function_lookup,
    entry_name,
    load_op_db,
    run_op,
    write_reports,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEDGER = os.path.join(ROOT, "tests", "compat", "data", "torch_op_db_dtypes_ledger.json")

DTYPES = ("float16", "bfloat16", "complex64", "complex128", "int8", "int16", "int32", "uint8")
# the dtypes the --unsupported round draws from: these, and those the op_db trial compares
ALL_DTYPES = ("float16", "bfloat16", "float32", "float64", "complex64", "complex128", "int8", "int16", "int32",
              "int64", "uint8", "bool")
UNSUPPORTED_SAMPLES = 2
# the dtype whose gradients are compared (float64's are the op_db trial's)
GRADIENT_DTYPE = "complex128"

# (OpInfo, dtype) pairs deliberately not compared, each with why
SKIPPED = {}
# OpInfos that chainrule refuses in complex dtypes with an error naming the op and the dtype, where
# torch 2.13 computes them (none since session 19, which built complex linear algebra and
# convolution). Such a refusal counts as skipped, with this reason and the error; any other
# outcome is compared as usual.
COMPLEX_REFUSED = frozenset()
COMPLEX_REFUSED_REASON = "complex refused by chainrule"


class DtypesTrial(Trial):
    """The op_db trial's converter, with bfloat16 (which it leaves out) converted too."""

    def dtype(self, torch_dtype):
        if torch_dtype == self.torch.bfloat16:
            if not self.chainrule._dtype.has_bfloat16():
                raise Unconvertible("dtype bfloat16 without ml_dtypes")
            return self.chainrule.bfloat16
        return super().dtype(torch_dtype)


class _WithGradients:
    """An OpInfo whose samples are drawn requiring grad in every dtype (``run_op`` asks for that
    in float64 only)."""

    def __init__(self, op):
        self._op = op

    def __getattr__(self, name):
        return getattr(self._op, name)

    def sample_inputs(self, device, dtype, requires_grad=False, **kwargs):
        return self._op.sample_inputs(device, dtype, requires_grad=True, **kwargs)


@contextlib.contextmanager
def _gradients_compared():
    """Every sample ``run_op`` runs meanwhile has its gradients compared: ``run_op`` decides that
    by dtype (float64 only), so its ``run_sample`` is wrapped for the block."""
    original = op_db_trial.run_sample

    def run_sample(trial, op, function, sample, dtype_name, seed, want_grad, *rest):
        return original(trial, op, function, sample, dtype_name, seed, True, *rest)

    op_db_trial.run_sample = run_sample
    try:
        yield
    finally:
        op_db_trial.run_sample = original


class _EveryDtype:
    """An OpInfo that lists every dtype as supported, so ``run_op`` draws its samples in the
    dtypes torch leaves out (its sample generators mostly build them regardless)."""

    def __init__(self, op, torch):
        self._op, self._torch = op, torch

    def __getattr__(self, name):
        return getattr(self._op, name)

    def supported_dtypes(self, device):
        return {getattr(self._torch, name) for name in ALL_DTYPES}


def run_unsupported(trial, op):
    """The records of one OpInfo's first samples in the dtypes it does not support on CPU; a
    both_raised record whose two errors agree (type and message) is counted same."""
    supported = {str(d).split(".")[-1] for d in op.supported_dtypes("cpu")}
    missing = tuple(d for d in ALL_DTYPES if d not in supported)
    if not missing:
        return []
    records = run_op(trial, _EveryDtype(op, trial.torch), dtypes=missing, limit=UNSUPPORTED_SAMPLES)
    for record in records:
        if record["kind"] == "both_raised":
            theirs, _, ours = record["detail"].partition(" | chainrule ")
            if theirs.removeprefix("torch ") == ours:
                record["kind"] = "same"
    return records


def supports_complex_gradients(op, torch) -> bool:
    return bool(op.supports_autograd) and torch.complex128 in op.supported_backward_dtypes("cpu")


def run_dtypes(trial, op, dtypes=DTYPES, limit=SAMPLES_PER_DTYPE, plan=None):
    """The records of one OpInfo in ``dtypes``; complex128 with gradients where torch has them."""
    torch = trial.torch
    name = entry_name(op)
    records = []
    forward_only = tuple(d for d in dtypes if d != GRADIENT_DTYPE or not supports_complex_gradients(op, torch))
    skipped = {d for d in forward_only if (name, d) in SKIPPED}
    for dtype_name in sorted(skipped):
        records.append({"op": name, "dtype": dtype_name, "variant": "function", "index": -1, "kind": "skipped",
                        "detail": SKIPPED[(name, dtype_name)]})
    forward_only = tuple(d for d in forward_only if d not in skipped)
    if forward_only:
        records += run_op(trial, op, dtypes=forward_only, limit=limit, plan=plan)
    if GRADIENT_DTYPE in dtypes and GRADIENT_DTYPE not in forward_only and (name, GRADIENT_DTYPE) not in SKIPPED:
        with _gradients_compared():
            records += run_op(trial, _WithGradients(op), dtypes=(GRADIENT_DTYPE,), limit=limit, plan=plan)
    # run_op's op-level skips (missing op, ...) come once per call: keep one
    seen, unique = set(), []
    for record in records:
        if (record["kind"] == "chainrule_raised" and name in COMPLEX_REFUSED
                and record["dtype"].startswith("complex")):
            record["kind"], record["detail"] = "skipped", f"{COMPLEX_REFUSED_REASON}: {record['detail']}"
        key = (record["op"], record["dtype"], record["variant"], record["index"], record["kind"])
        if record["index"] == -1 and key in seen:
            continue
        seen.add(key)
        unique.append(record)
    return unique


def command_run(args):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    np.random.seed(0)
    trial = DtypesTrial()
    dtypes = tuple(args.dtypes.split(",")) if args.dtypes else DTYPES
    start = time.time()
    records = []
    with _without_test_function_lookup():
        for op in load_op_db():
            name = entry_name(op)
            if (args.filter and args.filter not in name) or (args.only and name not in args.only.split(",")):
                continue
            op_start = time.time()
            op_records = run_unsupported(trial, op) if args.unsupported else run_dtypes(trial, op, dtypes,
                                                                                        limit=args.limit)
            for record in op_records:
                record["seconds"] = round((time.time() - op_start) / len(op_records), 4)
            records += op_records
            if args.verbose:
                print(f"{name}: {time.time() - op_start:.2f} s", file=sys.stderr)
    write_reports(records, args.out, time.time() - start)
    print_dtype_table(records)


def print_dtype_table(records):
    """Counts per dtype (the summary's table is per kind only)."""
    counts = collections.defaultdict(collections.Counter)
    for record in records:
        counts[record["dtype"]][record["kind"]] += 1
    kinds = op_db_trial.KINDS
    print("dtype".ljust(11) + "".join(kind[:16].rjust(17) for kind in kinds))
    for dtype in [*ALL_DTYPES, "-"]:
        if dtype in counts:
            print(dtype.ljust(11) + "".join(str(counts[dtype][kind]).rjust(17) for kind in kinds))


# the CI ledger: per OpInfo, one agreeing sample, in dtypes taken in turn from one OpInfo to the
# next so that every dtype is covered; OpInfos slower than this in the trial stay out of CI
LEDGER_SLOW_OP_S = 0.5


def command_ledger(args):
    with open(os.path.join(args.out, "records.json")) as handle:
        records = json.load(handle)
    seconds = collections.Counter()
    agreeing = collections.defaultdict(dict)
    for record in records:
        seconds[record["op"]] += record.get("seconds", 0.0)
        if record["kind"] == "same" and record["variant"] == "function":
            agreeing[record["op"]].setdefault(record["dtype"], record["index"])
    ledger = {}
    turn = 0
    for op in sorted(agreeing):
        if seconds[op] > LEDGER_SLOW_OP_S:
            continue
        dtypes = [d for d in DTYPES if d in agreeing[op]]
        dtype = dtypes[turn % len(dtypes)]
        turn += 1
        ledger[op] = {dtype: agreeing[op][dtype]}
    with open(LEDGER, "w") as handle:
        json.dump(ledger, handle, indent=0, sort_keys=True)
        handle.write("\n")
    print(f"{len(ledger)} agreeing samples -> {os.path.relpath(LEDGER, ROOT)}")


def run_ledger(ledger: dict) -> list:
    """Run the ledger's samples; the records of those that no longer agree."""
    return op_db_trial.replay_ledger(ledger, DtypesTrial(), lambda trial, op, entry: run_dtypes(
        trial, op, tuple(entry), plan={(dtype, "function"): {index} for dtype, index in entry.items()}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default="")
    run.add_argument("--only", default="", help="comma-separated exact OpInfo names")
    run.add_argument("--dtypes", default="", help="comma-separated dtype names (default: all eight)")
    run.add_argument("--limit", type=int, default=SAMPLES_PER_DTYPE)
    run.add_argument("--verbose", action="store_true")
    run.add_argument("--unsupported", action="store_true",
                     help="run the dtypes each OpInfo does not support (where torch refuses) instead")
    run.set_defaults(handler=command_run)
    ledger = sub.add_parser("ledger")
    ledger.add_argument("--out", required=True)
    ledger.set_defaults(handler=command_ledger)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
