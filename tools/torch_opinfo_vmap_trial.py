"""Run torch's own OpInfo samples (``op_db``) under ``torch.func.vmap`` on torch and on chainrule.

Users batch with ``vmap``: per-sample gradients (``vmap(grad(loss))``), model ensembles, Jacobians.
torch checks every OpInfo under vmap by batching its sample inputs; this trial does the same from
the outside. For the first float32 samples of each OpInfo it stacks B=3 seeded variants of every
tensor argument along a new dim (the sample itself, then copies scaled by seeded factors in
[0.5, 1): scaling keeps signs, order, ties and positive-definiteness, so the variants stay inside
the op's domain; integer and bool tensors are repeated, as they are often indices) and runs

* ``dim0``: every tensor argument batched along dim 0;
* ``last``: the first tensor argument batched along its last dim, and, where there are several,
  the others passed unbatched (``in_dims`` None);
* ``inplace``: the OpInfo's in-place variant (``x.add_``), every argument batched along dim 0;
  the batched input it writes is compared too;
* ``grad`` (float64 samples of differentiable ops): per-sample gradients,
  ``vmap(grad(lambda *xs: sum((op(*xs) * cotangent).sum())))`` with one seeded cotangent.

Each case runs ``func.vmap`` on both libraries and a Python loop over the batch on torch. chainrule
is compared with torch's vmap (values, dtypes, shapes with ``assert_close``'s tolerances); where
torch's vmap and its own loop disagree the case is skipped with that reason. Random ops (torch's
vmap refuses them in the default ``randomness="error"``) are checked for the same refusal, then
run with ``randomness="same"`` (every slice draws the same numbers) and ``"different"``.

    python tools/torch_opinfo_vmap_trial.py run --out /tmp/vmapdb               # every OpInfo
    python tools/torch_opinfo_vmap_trial.py run --out /tmp/vmapdb --filter conv
    python tools/torch_opinfo_vmap_trial.py ledger --out /tmp/vmapdb            # write the CI ledger

Kinds per case: ``same``; ``differ``; ``vmap_raised`` (chainrule raised, torch did not);
``torch_raised`` (torch's vmap raised; chainrule, which runs the function per slice, may not);
``skipped`` with a reason. How a sample is drawn, converted and its op found is
tools/torch_opinfo_trial.py's (imported, not repeated here).
"""

from __future__ import annotations

import argparse
import collections
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
    UNINITIALISED,
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
    replay_ledger,
)
from torch_oracle import time_limit  # noqa: E402

LEDGER = os.path.join(ROOT, "tests", "compat", "data", "torch_op_db_vmap_ledger.json")
SAMPLES = 6  # float32 samples per OpInfo (the first ones cover the shapes); as many float64 for ``grad``
BATCH = 3
SAMPLE_TIMEOUT_S = 10
KINDS = ("same", "differ", "vmap_raised", "torch_raised", "skipped")
CASES = ("dim0", "last", "grad", "random", "inplace")
FAILING = ("differ", "vmap_raised")
RANDOMNESS_ERROR = "vmap: called random operation while in randomness error mode"
NOT_RANDOM = "not a random op"

# OpInfos deliberately not run under vmap (beyond the op_db trial's SKIPPED_OPS), each with why
SKIPPED = {
    "allclose": "returns a Python bool: torch's vmap refuses the op (RuntimeError, no batching rule), "
                "chainrule's refuses the non-Tensor result (torch's ValueError for a function returning one)",
    "equal": "returns a Python bool (as allclose)",
    "item": "returns a Python number: torch's vmap refuses .item() on a batched tensor (RuntimeError); "
            "chainrule runs each slice as a plain tensor and refuses the non-Tensor result (ValueError)",
    "to_sparse": "sparse layouts: torch's vmap does not batch them (NotImplementedError)",
}


# in-place variants not run under vmap, each with why
_RESHAPES_IN_PLACE = ("changes the shape of the tensor it is given in place: under torch's vmap the batched input's "
                      "own shape changes, under chainrule's per-slice run the slice's (the values agree)")
INPLACE_SKIPPED = {
    **{name: _RESHAPES_IN_PLACE for name in ("squeeze", "squeeze.multiple", "unsqueeze", "transpose", "t",
                                             "swapdims", "swapaxes", "resize_", "resize_as_")},
    "as_strided": "as_strided_ under torch's vmap returns a shape other than the sizes asked for (torch's own "
                  "loop gives them)",
    "as_strided.partial_views": "as as_strided",
}


class Unbatchable(Exception):
    """A sample this trial does not batch (no tensor argument, a tensor only in kwargs)."""


# ---- batching a sample ------------------------------------------------------------------------
def _tensor_slots(value, torch, path=()):
    """Paths to the tensors of a positional argument (itself, or inside lists and tuples)."""
    if isinstance(value, torch.Tensor):
        return [path]
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return [slot for i, item in enumerate(value) for slot in _tensor_slots(item, torch, path + (i,))]
    return []


def _get(value, path):
    for i in path:
        value = value[i]
    return value


def _put(value, path, new):
    if not path:
        return new
    items = list(value)
    items[path[0]] = _put(items[path[0]], path[1:], new)
    return type(value)(items)


def batched_variants(t, seed: int, torch):
    """``BATCH`` variants of ``t``: ``t`` itself and seeded scalings of it (repeats for integer and
    bool tensors)."""
    if not (t.is_floating_point() or t.is_complex()):
        return [t.detach().clone() for _ in range(BATCH)]
    generator = torch.Generator().manual_seed(seed)
    factors = [1.0] + (0.5 + 0.5 * torch.rand(BATCH - 1, generator=generator, dtype=torch.float64)).tolist()
    return [(t.detach() * factor).to(t.dtype) for factor in factors]


class BatchedCase:
    """One sample batched for one case: where its positional tensors sit (``slots``), their batched
    stacks (``batched``), their ``in_dims``, and the per-slice arguments of torch's loop."""

    def __init__(self, sample, case: str, seed: int, torch):
        positional = (sample.input, *sample.args)
        self.slots = [(i,) + slot for i, arg in enumerate(positional) for slot in _tensor_slots(arg, torch)]
        tensors = [_get(positional, slot) for slot in self.slots]
        self.in_dims, self.batched = [], []
        if not self.slots:
            if case != "random":
                raise Unbatchable("no tensor among the positional arguments")
            # a factory (randn, ...): mapped over a batched argument it ignores, to draw under vmap
            self.in_dims, self.batched = [0], [torch.zeros(BATCH)]
        for n, t in enumerate(tensors):
            if case == "last" and n > 0:
                dim = None
            else:
                dim = t.dim() if case == "last" else 0
            self.in_dims.append(dim)
            if dim is None:
                self.batched.append(t.detach())
            else:
                self.batched.append(torch.stack(batched_variants(t, seed + n, torch), dim=dim))

    def slice(self, index: int):
        return [t if dim is None else t.select(dim, index) for t, dim in zip(self.batched, self.in_dims)]


def _of_tensors(op_callable, positional: tuple, slots: list, kwargs, process):
    """``op`` as a function of the tensors at ``slots`` of its positional arguments alone."""
    def function(*tensors):
        arguments = positional
        for slot, t in zip(slots, tensors):
            arguments = _put(arguments, slot, t)
        return process(op_callable(*arguments, **kwargs))

    return function


def _stacked(results, torch):
    """The per-slice results of torch's loop stacked along dim 0, as vmap returns them."""
    first = results[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(results)
    if isinstance(first, (list, tuple)):
        columns = [_stacked([r[i] for r in results], torch) for i in range(len(first))]
        return type(first)(*columns) if hasattr(first, "_fields") else type(first)(columns)
    raise TypeError(f"the op returned {type(first).__name__}, not tensors")


def _loss_of(function, cotangents, torch):
    """``sum((output * cotangent).sum())`` over the floating outputs of ``function``."""
    def loss(*tensors):
        outputs = [leaf for _, leaf in _leaves(function(*tensors), torch) if hasattr(leaf, "is_floating_point")
                   and leaf.is_floating_point()]
        total = (outputs[0] * cotangents[0]).sum()
        for out, cotangent in zip(outputs[1:], cotangents[1:]):
            total = total + (out * cotangent).sum()
        return total

    return loss


# ---- running ----------------------------------------------------------------------------------
def _run_torch(call):
    try:
        with time_limit(SAMPLE_TIMEOUT_S, SampleTimeout):
            return call(), None
    except SampleTimeout:
        raise
    except Exception as error:
        return None, error


def _run_chainrule(trial, call):
    try:
        with time_limit(SAMPLE_TIMEOUT_S, SampleTimeout), trial.chainrule_only():
            return call(), None
    except (ReachedTorch, SampleTimeout):
        raise
    except Exception as error:
        return None, error


def _torch_disagreement(loop, vmapped, torch):
    """None when torch's vmap agrees with its own loop, else why not (conjugate, negative and
    zero tensors resolved first: the tensors of torch alone, not chainrule's)."""
    def plain(t):
        if t._is_zerotensor():
            return torch.zeros(t.shape, dtype=t.dtype)
        return t.detach().resolve_conj().resolve_neg()

    for (path, e), (_, a) in zip(_leaves(loop, torch), _leaves(vmapped, torch)):
        if isinstance(e, torch.Tensor) and isinstance(a, torch.Tensor):
            try:
                torch.testing.assert_close(plain(a), plain(e), equal_nan=True)
            except AssertionError as error:
                return f"{path}: " + " ".join(str(error).split("\n")[:4])
    return None


def _nearer_float64(op_callable, sample, batching, in_dims, expected, actual, torch) -> bool:
    """Whether chainrule's float32 result is at least as near as torch's to torch's own result in
    float64 (the same batched sample, its float32 tensors cast up): a rounding difference, not
    a vmap one."""
    def up(value):
        if isinstance(value, torch.Tensor):
            return value.double() if value.dtype == torch.float32 else value
        if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
            return type(value)(up(v) for v in value)
        if isinstance(value, dict):
            return {k: up(v) for k, v in value.items()}
        return value

    function = _of_tensors(op_callable, up((sample.input, *sample.args)), batching.slots, up(dict(sample.kwargs)),
                           sample.output_process_fn_grad)
    reference, error = _run_torch(lambda: torch.func.vmap(function, in_dims)(*up(batching.batched)))
    if error is not None:
        return False
    for (_, e), (_, a), (_, r) in zip(_leaves(expected, torch), _leaves(actual, torch), _leaves(reference, torch)):
        if not (isinstance(e, torch.Tensor) and e.is_floating_point() and isinstance(r, torch.Tensor)) or \
                e.numel() == 0:
            continue
        torch_error = (e.double() - r.double()).abs().nan_to_num(0.0).max()
        chainrule_error = (torch.from_numpy(a.numpy()).double() - r.double()).abs().nan_to_num(0.0).max()
        if chainrule_error > torch_error:
            return False
    return True


def _reseeds(op_callable) -> bool:
    """Whether op_db's function seeds torch's generator itself (through ``wrapper_set_seed``)."""
    code = getattr(op_callable, "__code__", None)
    return code is not None and "wrapper_set_seed" in code.co_names


def _slices_equal(result, torch) -> bool:
    tensors = [leaf for _, leaf in _leaves(result, torch) if hasattr(leaf, "shape") and leaf.dim() > 0]
    return all(bool((t == t[:1]).all()) for t in tensors)


def run_case(trial, op, function, sample, case: str, seed: int, process, uninitialised=False):
    """One sample under vmap for one case on both libraries; returns (kind, detail)."""
    torch, chainrule = trial.torch, trial.chainrule
    batching = BatchedCase(sample, "dim0" if case in ("grad", "inplace") else case, seed, torch)
    positional = (sample.input, *sample.args)
    torch_callable = op.inplace_variant if case == "inplace" else op.op
    torch_function = _of_tensors(torch_callable, positional, batching.slots, sample.kwargs,
                                 sample.output_process_fn_grad)
    memo = {}
    try:
        chainrule_batched = [trial.value(t, memo) for t in batching.batched]
        chainrule_kwargs = trial.value(dict(sample.kwargs), memo)
        chainrule_positional = trial.value(positional, memo)
    except Unconvertible as error:
        return "skipped", f"unconvertible: {error}"
    chainrule_function = _of_tensors(function, chainrule_positional, batching.slots, chainrule_kwargs, process)
    in_dims = tuple(batching.in_dims)

    if case == "grad":
        expected_single, error = _run_torch(lambda: torch_function(*batching.slice(0)))
        if error is not None:
            return "skipped", f"torch raised on one slice: {_short(error)}"
        outputs = [leaf for _, leaf in _leaves(expected_single, torch)
                   if isinstance(leaf, torch.Tensor) and leaf.is_floating_point()]
        argnums = tuple(i for i, t in enumerate(batching.batched) if t.is_floating_point())
        if not outputs or not argnums:
            return "skipped", "no floating output or input to differentiate"
        cotangents = [_cotangent(seed + i, out, torch) for i, out in enumerate(outputs)]
        try:
            chainrule_cotangents = [trial.value(c, {}) for c in cotangents]
        except Unconvertible as error:
            return "skipped", f"unconvertible: {error}"
        torch_function = torch.func.grad(_loss_of(torch_function, cotangents, torch), argnums=argnums)
        chainrule_function = chainrule.func.grad(_loss_of(chainrule_function, chainrule_cotangents, chainrule),
                                                 argnums=argnums)

    randomness = "error"
    # an in-place variant writes into its batched input: a copy, so that later loops read the sample
    torch_batched = [t.clone() for t in batching.batched] if case == "inplace" else batching.batched
    expected, torch_error = _run_torch(lambda: torch.func.vmap(torch_function, in_dims)(*torch_batched))
    if case == "random":
        if torch_error is None or RANDOMNESS_ERROR not in str(torch_error):
            return "skipped", NOT_RANDOM
        _, chainrule_error = _run_chainrule(trial, lambda: chainrule.func.vmap(chainrule_function, in_dims)(
            *chainrule_batched))
        if chainrule_error is None:
            return "differ", "randomness='error': torch refused the random op, chainrule ran it"
        if type(chainrule_error) is not type(torch_error) or RANDOMNESS_ERROR not in str(chainrule_error):
            return "differ", f"randomness='error': torch {_short(torch_error)} | chainrule {_short(chainrule_error)}"
        for randomness in ("same", "different"):
            expected, torch_error = _run_torch(lambda mode=randomness: torch.func.vmap(
                torch_function, in_dims, randomness=mode)(*batching.batched))
            actual, chainrule_error = _run_chainrule(trial, lambda mode=randomness: chainrule.func.vmap(
                chainrule_function, in_dims, randomness=mode)(*chainrule_batched))
            if torch_error is not None or chainrule_error is not None:
                break
            mismatch = compare_outputs(expected, actual, torch, values=False)
            # op_db's wrapper_set_seed seeds torch inside the function: once for torch's batched
            # draw, once per slice for chainrule's loop, whose 'different' slices then agree
            reseeded = randomness == "different" and _reseeds(op.op)
            if mismatch is None and not reseeded and \
                    _slices_equal(expected, torch) != _slices_equal(actual, chainrule):
                mismatch = f"slices equal: torch {_slices_equal(expected, torch)}, chainrule " \
                           f"{_slices_equal(actual, chainrule)}"
            if mismatch is not None:
                return "differ", f"randomness={randomness!r}: {mismatch}"
        else:
            return "same", ""
    else:
        actual, chainrule_error = _run_chainrule(trial, lambda: chainrule.func.vmap(
            chainrule_function, in_dims, randomness=randomness)(*chainrule_batched))
    prefix = f"randomness={randomness!r}: " if case == "random" else ""
    if torch_error is not None and chainrule_error is not None:
        if type(torch_error) is type(chainrule_error):
            return "same", f"{prefix}both raised {type(torch_error).__name__}"
        return "differ", f"{prefix}torch {_short(torch_error)} | chainrule {_short(chainrule_error)}"
    if torch_error is not None:
        return "torch_raised", prefix + _short(torch_error)
    if chainrule_error is not None:
        if case != "random":
            _, loop_error = _run_torch(lambda: [torch_function(*(t.clone() for t in batching.slice(b)))
                                                for b in range(BATCH)])
            if type(loop_error) is type(chainrule_error):
                return "skipped", f"torch's vmap ran what its own loop refuses, as chainrule does: {_short(loop_error)}"
        return "vmap_raised", prefix + _short(chainrule_error)
    if case == "inplace":  # the batched input written in place, as well as what the op returned
        expected, actual = (expected, torch_batched[0]), (actual, chainrule_batched[0])
    mismatch = compare_outputs(expected, actual, torch, values=not uninitialised)
    if mismatch is None:
        return "same", ""
    if case == "inplace":
        if compare_outputs(expected[0], actual[0], torch, values=False) is None and \
                _nearer_float64(op.op, sample, batching, in_dims, expected[0], actual[0], torch):
            return "skipped", f"float32 rounding: chainrule is nearer torch's float64 result than torch is: {mismatch}"
        return "differ", mismatch
    if case != "grad" and _nearer_float64(op.op, sample, batching, in_dims, expected, actual, torch):
        return "skipped", f"float32 rounding: chainrule is nearer torch's float64 result than torch is: {mismatch}"
    # torch's vmap and its own loop disagreeing (rounding of a batched kernel, or vmap semantics
    # of its own) is only torch's when chainrule agrees with the loop
    loop, loop_error = _run_torch(lambda: _stacked([torch_function(*batching.slice(b)) for b in range(BATCH)], torch))
    if loop_error is None and _torch_disagreement(loop, expected, torch) is not None and \
            compare_outputs(loop, actual, torch) is None:
        return "skipped", f"torch's vmap differs from its own loop; chainrule agrees with the loop: {mismatch}"
    return "differ", mismatch


def _draw(op, dtype, requires_grad: bool, torch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        generator = op.sample_inputs("cpu", dtype, requires_grad=requires_grad)
        samples = []
        for sample in generator:
            samples.append(sample)
            if len(samples) == SAMPLES:
                break
        if hasattr(generator, "close"):
            generator.close()
    return samples


def run_op(trial, op, plan=None):
    """Every case of one OpInfo's first samples; a list of records. ``plan``, when given, maps a
    case to the sample indices to run (the CI ledger's selection)."""
    torch = trial.torch
    name = entry_name(op)

    def skipped(detail):
        return [{"op": name, "case": "-", "index": -1, "kind": "skipped", "detail": detail}]

    for prefix, reason in {**SKIPPED_OPS, **SKIPPED}.items():
        if name.startswith(prefix) or name == prefix:
            return skipped(reason)
    function, how = trial.resolve(op.op)
    if function is None:
        return skipped(f"missing: {how}")
    supported = {str(d).split(".")[-1] for d in op.supported_dtypes("cpu")}
    records = []
    inplace, _ = trial.resolve(op.inplace_variant) if op.inplace_variant is not None else (None, None)
    for dtype_name, cases in (("float32", ("dim0", "last", "random", "inplace")), ("float64", ("grad",))):
        if inplace is None or name in INPLACE_SKIPPED:
            cases = tuple(c for c in cases if c != "inplace")
        if plan is not None:
            cases = tuple(c for c in cases if plan.get(c))
        if dtype_name not in supported or not cases or (dtype_name == "float64" and not op.supports_autograd):
            continue
        seed = zlib.crc32(f"{name}/{dtype_name}".encode())
        torch.manual_seed(seed)
        try:
            samples = _draw(op, getattr(torch, dtype_name), False, torch)
        except Exception as error:
            records += [{**record, "case": dtype_name} for record in skipped(f"sample_inputs raised {_short(error)}")]
            continue
        random_checked = False
        for index, sample in enumerate(samples):
            process = sample.output_process_fn_grad
            if isinstance(process, types.FunctionType) and process.__module__.startswith("torch.testing"):
                process = trial.rebind(process)
            for case in cases:
                if plan is not None and index not in plan[case]:
                    continue
                if case == "random" and random_checked:
                    continue  # one sample of a random op tells how vmap's randomness modes treat it
                torch.manual_seed(seed + index)
                trial.chainrule.manual_seed(seed + index)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        kind, detail = run_case(trial, op, inplace if case == "inplace" else function, sample, case,
                                                seed + index, process, op.name in UNINITIALISED)
                    except Unbatchable as error:
                        kind, detail = "skipped", f"unbatchable: {error}"
                    except ReachedTorch as error:
                        kind, detail = "skipped", f"closure: reached torch.{error}"
                    except SampleTimeout:
                        kind, detail = "skipped", f"took longer than {SAMPLE_TIMEOUT_S} s (torch or chainrule)"
                    except Exception as error:
                        kind, detail = "differ", f"comparison failed: {_short(error)}"
                if case == "random":
                    if detail.startswith(NOT_RANDOM):
                        continue
                    random_checked = True
                records.append({"op": name, "case": case, "index": index, "kind": kind, "detail": detail})
    return records


# ---- reports ----------------------------------------------------------------------------------
def write_reports(records, out, elapsed):
    per_op = collections.defaultdict(collections.Counter)
    for record in records:
        per_op[record["op"]][record["kind"]] += 1
    totals = collections.Counter(record["kind"] for record in records)
    per_case = collections.defaultdict(collections.Counter)
    for record in records:
        per_case[record["case"]][record["kind"]] += 1
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "records.json"), "w") as handle:
        json.dump(records, handle, indent=0)
    first = {}
    for record in records:
        if record["kind"] in FAILING:
            first.setdefault(record["op"], f"{record['case']} #{record['index']} {record['kind']}: {record['detail']}")
    ranked = sorted(first, key=lambda op: -sum(per_op[op][k] for k in FAILING))
    lines = ["# torch OpInfo samples under vmap", "", f"{len(per_op)} OpInfos, {len(records)} cases, {elapsed:.0f} s",
             "", "| case | " + " | ".join(KINDS) + " |", "|---" * (len(KINDS) + 1) + "|"]
    lines += [f"| {case} | " + " | ".join(str(per_case[case][k]) for k in KINDS) + " |"
              for case in (*CASES, "-") if case in per_case]
    lines += ["| all | " + " | ".join(str(totals[k]) for k in KINDS) + " |"]
    lines += ["", "## Failing OpInfos (most failing cases first)", "",
              "| op | " + " | ".join(KINDS) + " | first failure |", "|---" * (len(KINDS) + 2) + "|"]
    for op in ranked:
        lines.append(f"| {op} | " + " | ".join(str(per_op[op][k]) for k in KINDS)
                     + f" | {first[op].replace('|', '/')[:240]} |")
    reasons = collections.Counter(record["detail"].split(":")[0] for record in records if record["kind"] == "skipped")
    lines += ["", "## Skipped cases by reason", "", "| reason | cases |", "|---|---|"]
    lines += [f"| {reason.replace('|', '/')[:120]} | {count} |" for reason, count in reasons.most_common()]
    with open(os.path.join(out, "summary.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "summary.json"), "w") as handle:
        json.dump({"elapsed_s": round(elapsed, 1), "totals": dict(totals),
                   "per_case": {case: dict(counts) for case, counts in per_case.items()},
                   "per_op": {op: dict(counts) for op, counts in sorted(per_op.items())}}, handle, indent=1,
                  sort_keys=True)
    print(f"{len(per_op)} OpInfos, {len(records)} cases, {elapsed:.0f} s")
    print(f"  {'case':8s}" + "".join(f"{k:>14s}" for k in KINDS))
    for case in (*CASES, "-", "all"):
        counts = totals if case == "all" else per_case.get(case)
        if counts:
            print(f"  {case:8s}" + "".join(f"{counts[k]:14d}" for k in KINDS))


def command_run(args):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    np.random.seed(0)
    trial = Trial()
    start = time.time()
    records = []
    with _without_test_function_lookup():
        for op in load_op_db():
            name = entry_name(op)
            if (args.filter and args.filter not in name) or (args.only and name not in args.only.split(",")):
                continue
            op_start = time.time()
            op_records = run_op(trial, op)
            for record in op_records:
                record["seconds"] = round((time.time() - op_start) / len(op_records), 4)
            records += op_records
    write_reports(records, args.out, time.time() - start)


# the CI ledger's budget (about 12 s on one core, op_db's import included): how many OpInfos keep
# their first agreeing case of each kind ("last" runs as dim0 does, one batched argument moved)
LEDGER_CASES = {"dim0": 300, "random": 30, "grad": 40, "inplace": 30}
LEDGER_SLOW_CASE_S = 0.06  # OpInfos whose cases took longer than this each in the trial stay out of CI


def command_ledger(args):
    """From the run at ``--out``: the first agreeing case of each kind for as many OpInfos as
    LEDGER_CASES says, for tests/compat/test_torch_op_db_vmap.py to keep agreeing."""
    with open(os.path.join(args.out, "records.json")) as handle:
        records = json.load(handle)
    ledger = collections.defaultdict(dict)
    for case, budget in LEDGER_CASES.items():
        for record in records:
            if record["kind"] != "same" or record["case"] != case or record.get("seconds", 0.0) > LEDGER_SLOW_CASE_S \
                    or case in ledger.get(record["op"], {}) or budget == 0:
                continue
            ledger[record["op"]][case] = [record["index"]]
            budget -= 1
    total = sum(len(indices) for entry in ledger.values() for indices in entry.values())
    os.makedirs(os.path.dirname(LEDGER), exist_ok=True)
    with open(LEDGER, "w") as handle:
        json.dump(dict(sorted(ledger.items())), handle, indent=0, sort_keys=True)
        handle.write("\n")
    print(f"{total} agreeing cases of {len(ledger)} OpInfos -> {os.path.relpath(LEDGER, ROOT)}")


def run_ledger(ledger: dict) -> list:
    """Run the ledger's cases; the records of those that no longer agree."""
    return replay_ledger(ledger, Trial(), lambda trial, op, entry: run_op(
        trial, op, plan={case: set(entry.get(case, ())) for case in CASES}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default="")
    run.add_argument("--only", default="", help="comma-separated exact OpInfo names")
    run.set_defaults(handler=command_run)
    ledger = sub.add_parser("ledger")
    ledger.add_argument("--out", required=True)
    ledger.set_defaults(handler=command_ledger)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
