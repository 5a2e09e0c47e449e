"""Run the error inputs of torch's OpInfo database (``op_db``) on torch and on chainrule, and compare.

Each OpInfo in ``torch.testing._internal.common_methods_invocations.op_db`` may list error inputs:
a sample (input, args, kwargs) with the exception type and message regex torch's own ``test_errors``
expects. This trial builds them from the installed torch 2.13 (nothing of torch's is stored here),
checks torch still raises them, converts each sample faithfully to chainrule (dtype, values, strides,
requires_grad), calls chainrule's counterpart of the op, and classifies what chainrule did:

    same                  same exception type (or a subclass) and torch's regex matches the message
                          (with "chainrule." read as "torch.", as chainrule prints its dtypes)
    other_message         same exception type, message does not match torch's regex
    other_type            chainrule raised another exception type
    did_not_raise         chainrule computed something torch refuses (the worst kind)
    torch_did_not_raise   torch 2.13 no longer raises this error input (chainrule's outcome noted)
    skipped               not comparable (reason given: a layout or dtype chainrule lacks, a CUDA-only op)

    python tools/torch_opinfo_errors_trial.py run --out /tmp/operr          # all ops, ~1 minute
    python tools/torch_opinfo_errors_trial.py run --out /tmp/operr --filter conv
    python tools/torch_opinfo_errors_trial.py run --out /tmp/operr --ledger tests/compat/torch_op_db_errors.json

``--filter`` is a regular expression searched in the OpInfo's full name (``name.variant``). The run
writes ``errors.json`` (one record per error input) and ``summary.md`` (counts per op) under ``--out``
and prints a count table. Seeded: each OpInfo's error inputs are built after ``manual_seed(0)``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import types
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import NotComparable, chainrule_dtype, time_limit, torch_tensor_to_chainrule  # noqa: E402


class _SampleTimeout(Exception):
    pass


KINDS = ("same", "other_message", "other_type", "did_not_raise", "torch_did_not_raise", "skipped")

# OpInfos whose error inputs cannot be compared, and why (checked before anything is run)
SKIPPED_OPS = {
    "jiterator_binary": "torch.cuda.jiterator compiles CUDA kernels; chainrule has no jiterator",
    "jiterator_binary_return_by_ref": "torch.cuda.jiterator compiles CUDA kernels; chainrule has no jiterator",
}

SECONDS_PER_SAMPLE = 10


def load_op_db():
    """torch's op_db, or None when torch or expecttest (which it imports) is missing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.testing._internal.common_methods_invocations import op_db
    except ImportError:
        return None
    return op_db


def full_name(opinfo) -> str:
    return f"{opinfo.name}.{opinfo.variant_test_name}" if opinfo.variant_test_name else opinfo.name


# ----------------------------------------------------------------------------------------------
# converting torch values to chainrule values
# ----------------------------------------------------------------------------------------------

def torch_value_to_chainrule(value, storages: dict | None = None):
    """Convert a sample's argument (tensors, dtypes, devices, containers of them) to chainrule's;
    ``storages``: the storage copies shared by one sample's tensors (see torch_tensor_to_chainrule)."""
    import torch

    import chainrule

    if isinstance(value, torch.Tensor):
        return torch_tensor_to_chainrule(value, storages)
    if isinstance(value, torch.Size):
        return chainrule.Size(value)
    if isinstance(value, torch.dtype):
        return chainrule_dtype(value)
    if isinstance(value, torch.device):
        return chainrule.device(str(value))
    if isinstance(value, (torch.memory_format, torch.layout)):
        return getattr(chainrule, str(value).rpartition(".")[2])
    if isinstance(value, torch.Generator):
        generator = chainrule.Generator()
        generator.manual_seed(value.initial_seed())
        return generator
    if isinstance(value, (list, tuple)):
        converted = [torch_value_to_chainrule(item, storages) for item in value]
        return converted if isinstance(value, list) else tuple(converted)
    if isinstance(value, dict):
        return {key: torch_value_to_chainrule(item, storages) for key, item in value.items()}
    if type(value).__module__.startswith("torch"):
        raise NotComparable(f"argument of type {type(value).__qualname__} is not converted")
    return value


# ----------------------------------------------------------------------------------------------
# finding chainrule's counterpart of an OpInfo's op
# ----------------------------------------------------------------------------------------------

def _walk(root, path):
    for part in path:
        root = getattr(root, part, None)
        if root is None:
            return None
    return root


def _is_testing_wrapper(function) -> bool:
    """A lambda or helper written in torch's testing modules (its globals name torch's functions)."""
    return isinstance(function, types.FunctionType) and (function.__module__ or "").startswith("torch.testing")


def rebind_to_chainrule(function):
    """The same code with ``torch``, ``F`` and friends in its globals bound to chainrule's."""
    import chainrule
    import chainrule.nn.functional

    namespace = dict(function.__globals__)
    namespace.update(torch=chainrule, F=chainrule.nn.functional)
    for name, value in function.__globals__.items():
        if isinstance(value, types.ModuleType) and value.__name__.startswith("torch."):
            counterpart = _walk(chainrule, value.__name__.split(".")[1:])
            if counterpart is not None:
                namespace[name] = counterpart
    return types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__,
                              function.__closure__)


def resolve_chainrule_callable(opinfo):
    """chainrule's counterpart of ``opinfo.op``: by the OpInfo's name, else a Tensor method, else rebound."""
    import torch

    import chainrule

    op = opinfo.op
    if _is_testing_wrapper(op):
        return rebind_to_chainrule(op)
    path = opinfo.name.split(".")
    torch_object = _walk(torch, path)
    counterpart = _walk(chainrule, path)
    if counterpart is not None and (torch_object is op or torch_object is None
                                    or getattr(torch_object, "__name__", None) == getattr(op, "__name__", "")):
        return counterpart
    if _walk(torch.Tensor, path) is op:
        method = _walk(chainrule.Tensor, path)
        if method is not None:
            return method
    if counterpart is not None:
        return counterpart
    raise NotComparable(f"chainrule has no {opinfo.name}")


# ----------------------------------------------------------------------------------------------
# running and classifying
# ----------------------------------------------------------------------------------------------

def _call(function, sample):
    """(exception or None, short description of the result)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with time_limit(SECONDS_PER_SAMPLE, _SampleTimeout):
                result = function(sample.input, *sample.args, **sample.kwargs)
        except _SampleTimeout:
            raise
        except Exception as exc:  # an error input is meant to raise; any exception is an outcome
            return exc, ""
    return None, _describe(result)


def _describe(result) -> str:
    shape = getattr(result, "shape", None)
    if shape is not None:
        return f"{type(result).__name__} of shape {tuple(shape)} and dtype {getattr(result, 'dtype', '?')}"
    if isinstance(result, (list, tuple)):
        return f"{type(result).__name__} of {len(result)}"
    return type(result).__name__


def _message(exc) -> str:
    return str(exc)[:400]


def _read_as_torch(message: str) -> str:
    """chainrule's names read as torch's: ``chainrule.int64`` is what torch prints as ``torch.int64``."""
    return message.replace("chainrule.", "torch.")


def classify(error_input, chainrule_function, torch_function):
    """One record: what torch and chainrule did with one ErrorInput."""
    sample = error_input.sample_input
    record = {"expected_type": error_input.error_type.__name__, "regex": error_input.error_regex}
    torch_exc, torch_result = _call(torch_function, sample)
    torch_ok = (torch_exc is not None and isinstance(torch_exc, error_input.error_type)
                and re.search(error_input.error_regex, str(torch_exc)) is not None)
    if torch_exc is not None:
        record["torch"] = f"{type(torch_exc).__name__}: {_message(torch_exc)}"
    try:
        storages: dict = {}
        chainrule_sample = types.SimpleNamespace(
            input=torch_value_to_chainrule(sample.input, storages),
            args=torch_value_to_chainrule(tuple(sample.args), storages),
            kwargs=torch_value_to_chainrule(dict(sample.kwargs), storages))
    except NotComparable as reason:
        return {**record, "kind": "skipped", "reason": str(reason)}
    try:
        chainrule_exc, chainrule_result = _call(chainrule_function, chainrule_sample)
    except _SampleTimeout as exc:
        chainrule_exc, chainrule_result = exc, ""
    if chainrule_exc is not None:
        record["chainrule"] = f"{type(chainrule_exc).__name__}: {_message(chainrule_exc)}"
    else:
        record["chainrule"] = f"returned {chainrule_result}"
    if not torch_ok:
        if torch_exc is None:
            record["torch"] = f"returned {torch_result}"
        return {**record, "kind": "torch_did_not_raise"}
    if chainrule_exc is None:
        kind = "did_not_raise"
    elif not isinstance(chainrule_exc, error_input.error_type):
        kind = "other_type"
    elif re.search(error_input.error_regex, _read_as_torch(str(chainrule_exc))) is None:
        kind = "other_message"
    else:
        kind = "same"
    return {**record, "kind": kind}


def error_inputs_of(opinfo):
    """The OpInfo's error inputs built on CPU after manual_seed(0), or a skip reason."""
    import torch

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return list(opinfo.error_inputs("cpu")), None
        except Exception as exc:
            return [], f"building the error inputs raised {type(exc).__name__}: {exc}"


def run_opinfo(opinfo, only=None):
    """Records for every error input of one OpInfo (``only``: for these indices), sparse ones
    skipped with the reason."""
    import torch

    import chainrule

    name = full_name(opinfo)
    if opinfo.error_inputs_func is None:
        return []
    error_inputs, failure = error_inputs_of(opinfo)
    base = {"op": name}
    if failure:
        return [{**base, "index": 0, "kind": "skipped", "reason": failure}]
    reason = SKIPPED_OPS.get(name)
    chainrule_function = None
    if reason is None:
        try:
            chainrule_function = resolve_chainrule_callable(opinfo)
        except NotComparable as exc:
            reason = str(exc)
    records = []
    for index, error_input in enumerate(error_inputs):
        if only is not None and index not in only:
            continue
        if reason is not None:
            records.append({**base, "index": index, "kind": "skipped", "reason": reason})
            continue
        torch.manual_seed(0)
        chainrule.manual_seed(0)
        records.append({**base, "index": index, **classify(error_input, chainrule_function, opinfo.op)})
    return records


def sparse_skip_records(opinfo):
    """error_inputs_sparse are not compared: chainrule's sparse layouts do not raise torch's errors here."""
    if getattr(opinfo, "error_inputs_sparse_func", None) is None:
        return []
    if opinfo.error_inputs_sparse_func.__name__ == "_error_inputs_sparse_func":
        return []  # OpInfo's default: no sparse error inputs
    return [{"op": f"{full_name(opinfo)} (sparse)", "index": 0, "kind": "skipped",
             "reason": "error_inputs_sparse: sparse layouts are outside this trial (chainrule's COO/CSR "
                       "tensors are a separate, smaller API)"}]


def write_ledger(records, path) -> None:
    """The error inputs that now agree (kind ``same``), per OpInfo, for tests/compat/test_torch_op_db_errors.py."""
    import torch

    agreeing = collections.defaultdict(list)
    for record in records:
        if record["kind"] == "same":
            agreeing[record["op"]].append(record["index"])
    lines = [f"  {json.dumps(op)}: {json.dumps(indices)}" for op, indices in sorted(agreeing.items())]
    with open(path, "w") as handle:  # one line per op, so a diff shows which op changed
        handle.write(f'{{"torch": {json.dumps(torch.__version__.split("+")[0])}, "same": {{\n')
        handle.write(",\n".join(lines) + "\n}}\n")


def run(out, pattern=None):
    op_db = load_op_db()
    if op_db is None:
        sys.exit("torch with expecttest is needed: pip install torch expecttest")
    records = []
    for opinfo in op_db:
        if pattern and not re.search(pattern, full_name(opinfo)):
            continue
        records.extend(run_opinfo(opinfo))
        records.extend(sparse_skip_records(opinfo))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "errors.json"), "w") as handle:
        json.dump(records, handle, indent=1)
    with open(os.path.join(out, "summary.md"), "w") as handle:
        handle.write(summary_markdown(records))
    print(count_table(records))
    return records


def count_table(records) -> str:
    counts = collections.Counter(record["kind"] for record in records)
    header = "| error inputs | " + " | ".join(KINDS) + " |"
    row = f"| {len(records)} | " + " | ".join(str(counts[kind]) for kind in KINDS) + " |"
    return "\n".join([header, "|" + "---|" * (len(KINDS) + 1), row])


def summary_markdown(records) -> str:
    per_op = collections.defaultdict(collections.Counter)
    for record in records:
        per_op[record["op"]][record["kind"]] += 1
    lines = ["# torch op_db error inputs on chainrule", "", count_table(records), "",
             "| op | " + " | ".join(KINDS) + " |", "|" + "---|" * (len(KINDS) + 1)]
    worst_first = sorted(per_op, key=lambda op: (-per_op[op]["did_not_raise"], -per_op[op]["other_type"],
                                                  -per_op[op]["other_message"], op))
    for op in worst_first:
        lines.append(f"| {op} | " + " | ".join(str(per_op[op][kind]) for kind in KINDS) + " |")
    lines += ["", "## Differences", ""]
    for record in records:
        if record["kind"] in ("same",):
            continue
        detail = record.get("reason") or f"torch: {record.get('torch')} / chainrule: {record.get('chainrule')}"
        lines.append(f"- `{record['op']}#{record['index']}` {record['kind']}: {detail}".replace("\n", " "))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run every error input on torch and chainrule")
    run_parser.add_argument("--out", required=True, help="folder for errors.json and summary.md")
    run_parser.add_argument("--filter", default=None, help="regex searched in the OpInfo's name.variant")
    run_parser.add_argument("--ledger", default=None,
                            help="also write the agreeing error inputs here (tests/compat/torch_op_db_errors.json)")
    arguments = parser.parse_args(argv)
    if arguments.command == "run":
        records = run(arguments.out, arguments.filter)
        if arguments.ledger:
            write_ledger(records, arguments.ledger)


if __name__ == "__main__":
    if not os.environ.get("PYTHONPATH"):  # this checkout's chainrule, unless another is asked for
        sys.path.insert(0, os.path.join(ROOT, "src"))
    main()
