"""Run the ``>>>`` examples of torch's own docstrings on torch and on chainrule, and compare.

torch documents most public functions, classes and methods with doctest examples. This trial
collects them from the installed torch (nothing of torch's is stored here), runs each docstring's
examples in order in a fresh namespace (``torch``, ``nn``, ``F``, ``np``, ``math``), once in a
process where ``import torch`` is torch and once where it is chainrule (``tests/programs/_alias``),
with the same ``manual_seed(0)`` before each docstring, and compares what each example printed or
raised. chainrule's CPU random streams are torch's, so examples that print random tensors can
agree exactly.

    python tools/torch_docstring_trial.py run --out /tmp/docex      # collect, run both, compare
    python tools/torch_docstring_trial.py compare --out /tmp/docex --kind chainrule_raised

Kinds of difference: ``chainrule_raised`` (torch ran, chainrule raised), ``torch_raised``,
``differ`` (both ran, different output), ``exception_type`` (both raised, different types).
Printed names are compared with "chainrule" read as "torch" and object addresses blanked.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALIAS = os.path.join(ROOT, "tests", "programs", "_alias")

# the namespaces whose public objects' docstrings are collected (classes: their public methods too)
MODULES = [
    "torch", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.fft", "torch.special", "torch.nn.init",
    "torch.autograd", "torch.optim", "torch.nn.utils", "torch.nn.utils.rnn", "torch.utils.data", "torch.func",
    "torch.sparse", "torch.signal.windows", "torch.distributions", "torch.optim.lr_scheduler",
    "torch.optim.swa_utils", "torch.autograd.functional", "torch.autograd.forward_ad", "torch.autograd.graph",
    "torch.nn.utils.parametrize", "torch.nn.utils.parametrizations", "torch.nn.utils.prune",
    "torch.utils.checkpoint", "torch.nn.attention", "torch.testing", "torch.distributions.kl",
    "torch.distributions.transforms", "torch.distributions.constraints", "torch.masked", "torch.nested",
    "torch.fx", "torch.overrides", "torch.library", "torch.random", "torch.serialization", "torch.hub",
    "torch.profiler", "torch.utils.benchmark", "torch.utils.data.sampler", "torch.nn.utils.stateless",
    "torch.nn.utils.clip_grad", "torch.amp", "torch.autograd.gradcheck", "torch.utils.hooks",
    "torch.nn.modules.module", "torch.nn.parameter", "torch.utils.data.dataset", "torch.nn.utils.fusion",
    "torch.nn.utils.memory_format", "torch.utils.flop_counter", "torch.cpu", "torch.backends",
    "torch.multiprocessing", "torch.distributed", "torch.quasirandom", "torch.storage", "torch.functional",
    "torch.autograd.function", "torch.autograd.anomaly_mode", "torch.autograd.grad_mode", "torch.jit",
]

COLLECT = r'''
import doctest, importlib, inspect, json, sys, warnings
warnings.simplefilter("ignore")
import torch
parser, seen, blocks = doctest.DocTestParser(), set(), []
def add(name, obj):
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or ">>>" not in doc or id(doc) in seen:
        return
    seen.add(id(doc))
    try:
        examples = parser.get_examples(doc)
    except ValueError:
        return
    if examples:
        blocks.append({"name": name, "examples": [{"source": e.source} for e in examples]})
for module_name in json.loads(sys.argv[2]):
    try:
        module = importlib.import_module(module_name)
    except Exception:
        continue
    for name in sorted(dir(module)):
        if name.startswith("_"):
            continue
        obj = getattr(module, name, None)
        add(f"{module_name}.{name}", obj)
        if inspect.isclass(obj) and obj.__module__.startswith("torch"):
            for attribute in sorted(vars(obj)):
                if not attribute.startswith("_") or attribute in ("__init__", "__call__"):
                    add(f"{module_name}.{name}.{attribute}", getattr(obj, attribute, None))
for name in sorted(dir(torch.Tensor)):
    if not name.startswith("_"):
        add(f"torch.Tensor.{name}", getattr(torch.Tensor, name, None))
json.dump(blocks, open(sys.argv[1], "w"))
'''

RUN = r'''
import contextlib, io, json, math, signal, sys, warnings
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
warnings.simplefilter("ignore")
class Timeout(Exception):
    pass
def on_alarm(*_):
    raise Timeout()
signal.signal(signal.SIGALRM, on_alarm)
results = []
for block in json.load(open(sys.argv[1])):
    try:
        torch.set_default_device(None)
    except Exception:
        pass
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    np.random.seed(0)
    namespace = {"torch": torch, "nn": nn, "F": F, "np": np, "numpy": np, "math": math}
    outputs = []
    for example in block["examples"]:
        printed = io.StringIO()
        try:
            code = compile(example["source"], "<doc>", "single")
            signal.alarm(20)
            with contextlib.redirect_stdout(printed):
                exec(code, namespace)
            signal.alarm(0)
            outputs.append(printed.getvalue())
        except BaseException as error:
            signal.alarm(0)
            if isinstance(error, KeyboardInterrupt):
                raise
            outputs.append(printed.getvalue() + f"!EXC {type(error).__name__}: {str(error)[:300]}")
    results.append({"name": block["name"], "outputs": outputs})
json.dump(results, open(sys.argv[2], "w"))
'''


def _normal(text: str) -> str:
    text = text.replace("chainrule.", "torch.").replace("chainrule", "torch")
    return re.sub(r"0x[0-9a-f]+", "0x?", text).strip()


def compare(out: str, kind: str | None = None) -> collections.Counter:
    blocks = {b["name"]: b["examples"] for b in json.load(open(os.path.join(out, "blocks.json")))}
    ran = {}
    for side in ("torch", "chainrule"):
        ran[side] = {b["name"]: b["outputs"] for b in json.load(open(os.path.join(out, f"{side}.json")))}
    counts: collections.Counter = collections.Counter()
    for name, torch_outputs in ran["torch"].items():
        for i, (theirs, ours) in enumerate(zip(torch_outputs, ran["chainrule"][name])):
            theirs, ours = _normal(theirs), _normal(ours)
            torch_raised, chainrule_raised = "!EXC" in theirs, "!EXC" in ours
            if theirs == ours:
                found = "same"
            elif chainrule_raised and not torch_raised:
                found = "chainrule_raised"
            elif torch_raised and not chainrule_raised:
                found = "torch_raised"
            elif torch_raised and chainrule_raised:
                found = "exception_type" if theirs.split(":")[0] != ours.split(":")[0] else "both_raised"
            else:
                found = "differ"
            counts[found] += 1
            if kind is not None and found == kind:
                print(f"== {name} [{i}]\n{blocks[name][i]['source'].rstrip()}\n-- torch:     {theirs[:400]}\n"
                      f"-- chainrule: {ours[:400]}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "compare"])
    parser.add_argument("--out", required=True, help="a scratch folder for the collected examples and outputs")
    parser.add_argument("--kind", help="print the examples of one kind of difference")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.command == "run":
        blocks = os.path.join(args.out, "blocks.json")
        subprocess.run([sys.executable, "-c", COLLECT, blocks, json.dumps(MODULES)], check=True)
        for side in ("torch", "chainrule"):
            env = dict(os.environ)
            if side == "chainrule":
                env["PYTHONPATH"] = os.pathsep.join([ALIAS, os.path.join(ROOT, "src"), env.get("PYTHONPATH", "")])
            subprocess.run([sys.executable, "-c", RUN, blocks, os.path.join(args.out, f"{side}.json")], env=env,
                           cwd=args.out, stderr=subprocess.DEVNULL, check=False)
    counts = compare(args.out, args.kind)
    print(dict(counts), "of", sum(counts.values()), "examples")


if __name__ == "__main__":
    main()
