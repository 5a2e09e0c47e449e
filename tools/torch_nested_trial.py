"""Run torch's nested-tensor OpInfo samples (``njt_op_db``) on torch and on chainrule, and compare.

torch 2.13 translates its operator database for jagged nested tensors in
``torch.testing._internal.opinfo.definitions.nested``: 702 OpInfos, of which those with
``supports_njt`` draw NJT samples (contiguous, with and without a cached min/max sequence length,
transposed so that the ragged dim is the last one, and with holes: ``lengths`` shorter than the
offsets' gaps) in 2, 3 and 4 dims, for unary and binary elementwise ops (NJT with NJT, with a
``(B, 1, ...)`` tensor, with all-1 and last-dims tensors and with 0-d tensors), reductions (over a
normal dim, the ragged dim, batch + ragged and all dims, keepdim or not), and op-specific
generators (linear, matmul, bmm, chunk, split, squeeze, unflatten, where, masked_select, ...).

This trial draws those float32 samples (nothing of torch's is stored here) and rebuilds each one
on both libraries from the same numbers: every NJT as ``nested_tensor_from_jagged(values,
offsets, lengths, jagged_dim)`` over a fresh leaf ``values`` (torch's seqlen cache copied), every
dense tensor converted as tools/torch_opinfo_trial.py converts it. It runs the op on both and
compares the outputs (a nested output by its ragged dim, its length and each ``unbind``
component; dense ones as they are). Where the OpInfo supports autograd it backpropagates one seeded
cotangent per output component on both and compares the gradients of every values leaf and
dense input. Where chainrule disagrees with torch's NJT but agrees with torch's own per-component
reference (the OpInfo's ``ref``: the op run on each dense component), the sample is skipped with
that reason: the NJT kernel, not chainrule, is off.

    python tools/torch_nested_trial.py run --out /tmp/njt                 # every OpInfo
    python tools/torch_nested_trial.py run --out /tmp/njt --filter sum    # names containing "sum"

Kinds per sample: ``same``; ``differ`` (values, dtype, shape or nesting of an output, or both
raised with different exception types); ``grad_differ``; ``chainrule_raised`` (torch ran, forward
or gradient); ``torch_raised`` (chainrule ran); ``both_raised`` (the same exception type);
``skipped`` with a reason (the OpInfo has no NJT samples in torch's database, the op is missing
from chainrule, a closure reached torch, ...).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
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
    _short,
    _without_test_function_lookup,
    compare_outputs,
    entry_name,
)
from torch_oracle import time_limit  # noqa: E402

SAMPLES = 0  # float32 samples per OpInfo, 0 for all of them (torch draws 2 to ~100 per OpInfo)
SAMPLE_TIMEOUT_S = 10
KINDS = ("same", "differ", "grad_differ", "chainrule_raised", "torch_raised", "both_raised", "skipped")
FAILING = ("differ", "grad_differ", "chainrule_raised")
# OpInfos whose gradient torch's NJT is not asked for (the per-component reference judges chainrule's)
TORCH_GRADIENT_NOT_RUN = {
    "split_with_sizes": "torch 2.13's backward through split_with_sizes of an NJT crashes the process "
                        "(segmentation fault)",
}
NO_NJT_SAMPLES = "no NJT samples in torch's njt_op_db (supports_njt False)"


class Nested:
    """A nested output seen through ``unbind``: its ragged dim, dims and components, for comparing."""

    def __init__(self, ragged_idx, dims, components):
        self.ragged_idx, self.dims, self.components = ragged_idx, dims, components

    def description(self):
        return f"nested(ragged dim {self.ragged_idx}, {self.dims} dims, {len(self.components)} components)"


# ---- rebuilding a sample ----------------------------------------------------------------------
class Rebuilt:
    """One sample rebuilt on torch and on chainrule from the same numbers; ``leaves`` pairs each
    differentiable leaf of torch's with chainrule's (an NJT's values, or a dense tensor)."""

    def __init__(self, trial, sample, requires_grad: bool):
        self.trial, self.requires_grad = trial, requires_grad
        self.leaves = []
        self._done = {}
        self._offsets = {}  # torch's offsets -> chainrule's: NJTs sharing offsets share their ragged size
        self.torch_args = self._both(((sample.input, *sample.args), dict(sample.kwargs)), side=0)
        self.chainrule_args = self._both(((sample.input, *sample.args), dict(sample.kwargs)), side=1)

    def _both(self, value, side):
        torch = self.trial.torch
        if isinstance(value, torch.Tensor):
            if id(value) not in self._done:
                self._done[id(value)] = self._tensor(value)
            return self._done[id(value)][side]
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*(self._both(v, side) for v in value))
        if isinstance(value, (list, tuple)):
            return type(value)(self._both(v, side) for v in value)
        if isinstance(value, dict):
            return {k: self._both(v, side) for k, v in value.items()}
        return self.trial.value(value, {}) if side else value

    def _leaf(self, t):
        """A fresh leaf of ``t``'s values on both libraries (requires_grad as ``t`` where floating)."""
        wants_grad = self.requires_grad and t.requires_grad and t.is_floating_point()
        torch_leaf = t.detach().clone().requires_grad_(wants_grad)
        if hasattr(t, "_batch_dim"):  # how torch's per-component reference slices a dense operand
            torch_leaf._batch_dim = t._batch_dim
        chainrule_leaf = self.trial.tensor(t.detach(), {})
        chainrule_leaf = chainrule_leaf.detach().requires_grad_(wants_grad)
        if wants_grad:
            self.leaves.append((torch_leaf, chainrule_leaf))
        return torch_leaf, chainrule_leaf

    def _tensor(self, t):
        if not t.is_nested:
            return self._leaf(t)
        torch, chainrule = self.trial.torch, self.trial.chainrule
        if t.layout != torch.jagged:
            raise Unconvertible("a strided-layout nested tensor")
        values = t._values.detach().requires_grad_(t.requires_grad)
        torch_values, chainrule_values = self._leaf(values)
        offsets, lengths = t._offsets, t._lengths
        cached = {}
        if t._max_seqlen_tensor is not None:
            cached = {"min_seqlen": t._min_seqlen, "max_seqlen": t._max_seqlen}
        torch_nested = torch.nested.nested_tensor_from_jagged(torch_values, offsets, lengths,
                                                              jagged_dim=t._ragged_idx, **cached)
        if id(offsets) not in self._offsets:
            self._offsets[id(offsets)] = self.trial.tensor(offsets, {})
        chainrule_nested = chainrule.nested.nested_tensor_from_jagged(
            chainrule_values, self._offsets[id(offsets)], None if lengths is None else self.trial.tensor(lengths, {}),
            jagged_dim=t._ragged_idx)
        return torch_nested, chainrule_nested


def _seen(value, library):
    """``value`` with each nested tensor replaced by a ``Nested`` of its components."""
    if isinstance(value, library.Tensor) and value.is_nested:
        return Nested(value._ragged_idx, value.dim(), list(value.unbind()))
    if isinstance(value, (list, tuple)) and type(value).__name__ != "Size":
        return [_seen(v, library) for v in value]
    return value


def compare(expected, actual, torch):
    """None when chainrule's output agrees with torch's, else why not."""
    if isinstance(expected, Nested) or isinstance(actual, Nested):
        if not (isinstance(expected, Nested) and isinstance(actual, Nested)):
            described = [v.description() if isinstance(v, Nested) else type(v).__name__ for v in (expected, actual)]
            return f"torch gave {described[0]}, chainrule {described[1]}"
        if (expected.ragged_idx, expected.dims, len(expected.components)) != \
                (actual.ragged_idx, actual.dims, len(actual.components)):
            return f"torch gave {expected.description()}, chainrule {actual.description()}"
        return compare_outputs(expected.components, actual.components, torch)
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for e, a in zip(expected, actual):
            mismatch = compare(e, a, torch)
            if mismatch is not None:
                return mismatch
        return None
    return compare_outputs(expected, actual, torch)


def _floating_parts(seen, library):
    """The differentiable tensors of an output: nested components and dense tensors."""
    if isinstance(seen, Nested):
        return [c for c in seen.components if c.is_floating_point() and c.requires_grad]
    if isinstance(seen, list):
        return [part for item in seen for part in _floating_parts(item, library)]
    if isinstance(seen, library.Tensor) and seen.is_floating_point() and seen.requires_grad:
        return [seen]
    return []


def _gradients(library, parts, cotangents, leaves):
    loss = sum(((part * cotangent).sum() for part, cotangent in zip(parts, cotangents)), library.zeros(()))
    grads = library.autograd.grad(loss, leaves, allow_unused=True)
    return [library.zeros_like(leaf) if g is None else g for g, leaf in zip(grads, leaves)]


# ---- running ----------------------------------------------------------------------------------
def _run(trial, call, on_chainrule):
    try:
        with time_limit(SAMPLE_TIMEOUT_S, SampleTimeout):
            if on_chainrule:
                with trial.chainrule_only():
                    return call(), None
            return call(), None
    except (ReachedTorch, SampleTimeout):
        raise
    except Exception as error:
        return None, error


def _reference_agrees(op, rebuilt, actual, actual_grads, parts_of, cotangents, torch):
    """Whether chainrule agrees with torch's per-component reference (the OpInfo's ``ref``) on the
    same rebuilt sample, values and (where given) gradients; None where the reference cannot judge
    (it raised, or its values differ from chainrule's: some of torch's references convert a
    negative dim wrongly for a component)."""
    from torch.testing._internal.opinfo.core import SampleInput

    (first, *rest), kwargs = rebuilt.torch_args
    reference, error = _run(None, lambda: op.ref(op, SampleInput(first, args=tuple(rest), kwargs=kwargs)), False)
    if error is not None or compare(_seen(reference, torch), actual, torch) is not None:
        return None
    if actual_grads is None:
        return True
    parts = parts_of(_seen(reference, torch))
    if len(parts) != len(cotangents):
        return None
    grads, error = _run(None, lambda: _gradients(torch, parts, cotangents, [t for t, _ in rebuilt.leaves]), False)
    if error is not None:
        return None
    return all(compare_outputs(e, a, torch) is None for e, a in zip(grads, actual_grads))


def run_sample(trial, op, function, sample, seed, want_grad):
    """One sample on both; returns (kind, detail)."""
    torch, chainrule = trial.torch, trial.chainrule
    try:
        rebuilt = Rebuilt(trial, sample, want_grad)
    except Unconvertible as error:
        return "skipped", f"unconvertible: {error}"
    (torch_first, *torch_rest), torch_kwargs = rebuilt.torch_args
    (chainrule_first, *chainrule_rest), chainrule_kwargs = rebuilt.chainrule_args
    torch.manual_seed(seed)
    expected, torch_error = _run(trial, lambda: _seen(op.op(torch_first, *torch_rest, **torch_kwargs), torch), False)
    torch.manual_seed(seed)
    chainrule.manual_seed(seed)
    actual, chainrule_error = _run(trial, lambda: _seen(
        function(chainrule_first, *chainrule_rest, **chainrule_kwargs), chainrule), True)
    if torch_error is not None and chainrule_error is not None:
        if type(torch_error) is type(chainrule_error):
            return "both_raised", f"{type(torch_error).__name__}"
        return "differ", f"torch {_short(torch_error)} | chainrule {_short(chainrule_error)}"
    if torch_error is not None:
        return "torch_raised", _short(torch_error)
    if chainrule_error is not None:
        return "chainrule_raised", _short(chainrule_error)
    mismatch = compare(expected, actual, torch)
    if mismatch is not None:
        if _reference_agrees(op, rebuilt, actual, None, None, None, torch):
            return "skipped", f"torch's NJT differs from its per-component reference; chainrule agrees: {mismatch}"
        return "differ", mismatch
    if not (want_grad and rebuilt.leaves):
        return "same", ""

    torch_parts = _floating_parts(expected, torch)
    if not torch_parts:
        return "same", ""
    generator = torch.Generator().manual_seed(seed)
    cotangents = [torch.randn(part.shape, generator=generator, dtype=part.dtype) for part in torch_parts]
    if entry_name(op) in TORCH_GRADIENT_NOT_RUN:
        expected_grads, torch_error = None, RuntimeError(TORCH_GRADIENT_NOT_RUN[entry_name(op)])
    else:
        expected_grads, torch_error = _run(trial, lambda: _gradients(torch, torch_parts, cotangents,
                                                                     [t for t, _ in rebuilt.leaves]), False)
    chainrule_parts = _floating_parts(actual, chainrule)
    if len(chainrule_parts) != len(torch_parts):
        return "grad_differ", f"torch has {len(torch_parts)} differentiable outputs, chainrule {len(chainrule_parts)}"
    try:
        chainrule_cotangents = [trial.tensor(c, {}) for c in cotangents]
    except Unconvertible as error:
        return "same", f"gradient not compared: {error}"
    actual_grads, chainrule_error = _run(trial, lambda: _gradients(
        chainrule, chainrule_parts, chainrule_cotangents, [c for _, c in rebuilt.leaves]), True)
    if chainrule_error is not None:
        return "chainrule_raised", f"gradient: {_short(chainrule_error)}"
    if torch_error is not None:
        verdict = _reference_agrees(op, rebuilt, actual, actual_grads, lambda seen: _floating_parts(seen, torch),
                                    cotangents, torch)
        if verdict is False:
            return "grad_differ", f"torch's NJT gradient raised and chainrule's differs from its per-component " \
                                  f"reference's: {_short(torch_error)}"
        judged = "chainrule's agrees with torch's per-component reference" if verdict else \
            "not judged: torch's per-component reference cannot run this sample"
        return "torch_raised", f"gradient ({judged}): {_short(torch_error)}"
    for i, (e, a) in enumerate(zip(expected_grads, actual_grads)):
        mismatch = compare_outputs(e, a, torch)
        if mismatch is not None:
            if _reference_agrees(op, rebuilt, actual, actual_grads, lambda seen: _floating_parts(seen, torch),
                                 cotangents, torch):
                return "skipped", f"torch's NJT gradient differs from its per-component reference's; " \
                                  f"chainrule agrees: leaf {i}: {mismatch}"
            return "grad_differ", f"leaf {i}: {mismatch}"
    return "same", ""


def _draw(op, torch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        generator = op.sample_inputs("cpu", torch.float32, requires_grad=op.supports_autograd)
        samples = []
        for sample in generator:
            samples.append(sample)
            if len(samples) == SAMPLES > 0:
                break
        if hasattr(generator, "close"):
            generator.close()
    return samples


def run_op(trial, op):
    """Every drawn sample of one OpInfo; a list of records."""
    torch = trial.torch
    name = entry_name(op)

    def skipped(detail):
        return [{"op": name, "index": -1, "sample": "", "kind": "skipped", "detail": detail}]

    if not op.supports_njt:
        return skipped(NO_NJT_SAMPLES)
    for prefix, reason in SKIPPED_OPS.items():
        if name.startswith(prefix):
            return skipped(reason)
    function, how = trial.resolve(op.op)
    public = how.replace("._", ".") if "._" in how else ""
    if public and trial.resolve_path(public) is not None and torch.nn.functional.__dict__.get(
            public.rsplit(".", 1)[-1]) is op.op:
        # torch's F.threshold is its F._threshold; chainrule's F._threshold is the op before dispatch
        function, how = trial.resolve_path(public), public
    if function is None:
        return skipped(f"missing: {how}")
    seed = zlib.crc32(name.encode())
    torch.manual_seed(seed)
    try:
        samples = _draw(op, torch)
    except Exception as error:
        return skipped(f"sample_inputs raised {_short(error)}")
    records = []
    for index, sample in enumerate(samples):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                kind, detail = run_sample(trial, op, function, sample, seed + index, op.supports_autograd)
            except ReachedTorch as error:
                kind, detail = "skipped", f"closure: reached torch.{error}"
            except SampleTimeout:
                kind, detail = "skipped", f"took longer than {SAMPLE_TIMEOUT_S} s (torch or chainrule)"
            except Exception as error:
                kind, detail = "differ", f"comparison failed: {_short(error)}"
        records.append({"op": name, "index": index, "sample": sample.name, "kind": kind, "detail": detail})
    return records


# ---- reports ----------------------------------------------------------------------------------
def write_reports(records, out, elapsed):
    per_op = collections.defaultdict(collections.Counter)
    for record in records:
        per_op[record["op"]][record["kind"]] += 1
    totals = collections.Counter(record["kind"] for record in records)
    run_ops = [op for op, counts in per_op.items() if set(counts) != {"skipped"} or counts["skipped"] > 1]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "records.json"), "w") as handle:
        json.dump(records, handle, indent=0)
    first = {}
    for record in records:
        if record["kind"] in FAILING:
            first.setdefault(record["op"], f"#{record['index']} {record['sample']} {record['kind']}: {record['detail']}")
    ranked = sorted(first, key=lambda op: -sum(per_op[op][k] for k in FAILING))
    lines = ["# torch's njt_op_db samples on chainrule.nested", "",
             f"{len(per_op)} OpInfos ({len(run_ops)} with NJT samples run), {len(records)} records, {elapsed:.0f} s",
             "", "| " + " | ".join(KINDS) + " |", "|---" * len(KINDS) + "|",
             "| " + " | ".join(str(totals[k]) for k in KINDS) + " |",
             "", "## Failing OpInfos (most failing samples first)", "",
             "| op | " + " | ".join(KINDS) + " | first failure |", "|---" * (len(KINDS) + 2) + "|"]
    for op in ranked:
        lines.append(f"| {op} | " + " | ".join(str(per_op[op][k]) for k in KINDS)
                     + f" | {first[op].replace('|', '/')[:240]} |")
    reasons = collections.Counter(record["detail"].split(":")[0] for record in records if record["kind"] == "skipped")
    lines += ["", "## Skipped by reason", "", "| reason | records |", "|---|---|"]
    lines += [f"| {reason.replace('|', '/')[:120]} | {count} |" for reason, count in reasons.most_common()]
    with open(os.path.join(out, "summary.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "summary.json"), "w") as handle:
        json.dump({"elapsed_s": round(elapsed, 1), "totals": dict(totals),
                   "per_op": {op: dict(counts) for op, counts in sorted(per_op.items())}}, handle, indent=1,
                  sort_keys=True)
    print(f"{len(per_op)} OpInfos ({len(run_ops)} with NJT samples run), {len(records)} records, {elapsed:.0f} s")
    print("".join(f"{k:>17s}" for k in KINDS))
    print("".join(f"{totals[k]:17d}" for k in KINDS))
    print("top failing OpInfos:")
    for op in ranked[:25]:
        print(f"  {op:40s} " + " ".join(f"{k}={per_op[op][k]}" for k in FAILING if per_op[op][k])
              + f"  | {first[op][:150]}")


def command_run(args):
    import numpy as np
    import torch
    from torch.testing._internal.opinfo.definitions.nested import njt_op_db

    torch.set_num_threads(1)
    np.random.seed(0)
    trial = Trial()
    start = time.time()
    records = []
    with _without_test_function_lookup():
        for op in njt_op_db:
            name = entry_name(op)
            if (args.filter and args.filter not in name) or (args.only and name not in args.only.split(",")):
                continue
            records += run_op(trial, op)
    write_reports(records, args.out, time.time() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default="")
    run.add_argument("--only", default="", help="comma-separated exact OpInfo names")
    run.set_defaults(handler=command_run)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
