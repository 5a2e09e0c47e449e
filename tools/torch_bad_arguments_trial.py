"""Call every public function of ``torch`` and every Tensor method that torch and chainrule both have
with six bad argument patterns, and compare the exception each library raises (type and message).

A user's slip (a string where a tensor goes, a float for an int, a misspelt keyword, one argument
too many, a list for a dim, None for a required argument) must get torch's refusal, word for word
where torch's parser words it. The patterns, on a float32 tensor ``x`` of shape (2, 3):

    str_for_tensor      f("a")                  x.m("a")
    float_for_int       f(x, 1.5)               x.m(1.5)
    unknown_keyword     f(x, no_such_keyword=1) x.m(no_such_keyword=1)
    too_many            f(x, x, ... 10 times)   x.m(x, ... 9 times)
    list_for_dim        f(x, [0, 1])            x.m([0, 1])
    none_for_required   f(None)                 x.m(None)

Kinds per call: ``same`` (both returned, or both raised the same class and message),
``differs`` (another class, another message, or one of them raised and the other did not), and
``torch_leaks`` (torch's Python wrapper leaked an AttributeError where chainrule raises a clear
TypeError: torch is the unreasonable one, chainrule keeps its error). Functions with effects outside
the call (seeds, defaults, files, threads, compilation) are not called.

    python tools/torch_bad_arguments_trial.py                      # counts and the biggest groups
    python tools/torch_bad_arguments_trial.py --filter sum --show  # every differing call of names with "sum"
    python tools/torch_bad_arguments_trial.py --json /tmp/bad.json # every case, for grouping elsewhere

A trial, not a test: it runs torch and is never collected by the test suite.
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import os
import re
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import time_limit  # noqa: E402

SECONDS_PER_CALL = 3

# names whose call changes the process (seeds, defaults, threads, files) or compiles: not called
_NOT_CALLED = re.compile(r"^(set_|use_|manual_seed|seed|initial_seed|save|load|compile|jit|export|"
                         r"cond$|vmap$|while_loop|autocast|no_grad|enable_grad|inference_mode|"
                         r"from_file|empty_cache|sym_|typename|chunk_cat$|fork|wait$|library|"
                         r"unravel_index$|can_cast$|result_type$|promote_types$)")
_NOT_CALLED_METHODS = re.compile(r"^(backward|register_|share_memory_|storage|untyped_storage|pin_memory|"
                                 r"set_|resize|numpy|tolist|item|cuda|cpu|to|type|apply_|map_|map2_|"
                                 r"record_stream|data_ptr|__)")


def _patterns(x, method: bool):
    """The six bad calls as (name, args, kwargs); a method's args follow its tensor. A method is
    called through its class, ``Tensor.abs(x, 1)``: that is how CPython calls ``x.abs(1)`` written out,
    and torch's C methods word a refusal by the class that defines them (``TensorBase.abs()``), where
    a bound method called with ``*args`` (``getattr(x, "abs")(*args)``) names the tensor's own class."""
    extra = 9 if method else 10
    lead = () if method else (x,)
    return [
        ("str_for_tensor", ("a",), {}),
        ("float_for_int", (*lead, 1.5), {}),
        ("unknown_keyword", lead, {"no_such_keyword": 1}),
        ("too_many", (x,) * extra if method else (x,) * extra, {}),
        ("list_for_dim", (*lead, [0, 1]), {}),
        ("none_for_required", (None,), {}),
    ]


def _outcome(function, args: tuple, kwargs: dict):
    """("ok", "") where ``function(*args, **kwargs)`` returned, else its exception's class and message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with time_limit(SECONDS_PER_CALL):
                function(*args, **kwargs)
        except TimeoutError:
            return ("timeout", "")
        except Exception as exc:  # the subject of the trial: whatever each library raises
            return (type(exc).__name__, str(exc))
    return ("ok", "")


def _kind(torch_outcome, chainrule_outcome) -> str:
    if torch_outcome == chainrule_outcome or (torch_outcome[0] == chainrule_outcome[0] == "ok"):
        return "same"
    if torch_outcome[0] == "AttributeError" and chainrule_outcome[0] == "TypeError":
        return "torch_leaks"
    return "differs"


def _public_functions(torch, chainrule) -> list:
    names = []
    for name in dir(torch):
        value = getattr(torch, name, None)
        if (name.startswith("_") or not callable(value) or inspect.isclass(value) or inspect.ismodule(value)
                or not hasattr(chainrule, name) or _NOT_CALLED.match(name)):
            continue
        names.append(name)
    return names


def _methods(torch, chainrule) -> list:
    return [name for name in dir(torch.Tensor)
            if not name.startswith("_") and callable(getattr(torch.Tensor, name, None))
            and callable(getattr(chainrule.Tensor, name, None)) and not _NOT_CALLED_METHODS.match(name)]


def run(name_filter: str = "") -> list:
    """Every case as a dict: where (function/method), name, pattern, torch's and chainrule's outcomes, kind."""
    import torch

    import chainrule

    cases = []
    for where, names in (("function", _public_functions(torch, chainrule)), ("method", _methods(torch, chainrule))):
        for name in names:
            if name_filter and name_filter not in name:
                continue
            for library in (torch, chainrule):
                library.manual_seed(0)
            torch_x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
            chainrule_x = chainrule.arange(6, dtype=chainrule.float32).reshape(2, 3)
            for (pattern, torch_args, kwargs), (_, chainrule_args, _) in zip(
                    _patterns(torch_x, where == "method"), _patterns(chainrule_x, where == "method")):
                outcomes = []
                for library, x, args in ((torch, torch_x, torch_args), (chainrule, chainrule_x, chainrule_args)):
                    fresh = x.clone()  # (an in-place method must not change the next call's tensor)
                    args = tuple(fresh if a is x else a for a in args)
                    if where == "method":  # (through the class, as CPython calls ``x.abs(1)``: see _patterns)
                        outcomes.append(_outcome(getattr(type(fresh), name), (fresh, *args), kwargs))
                    else:
                        outcomes.append(_outcome(getattr(library, name), args, kwargs))
                cases.append({"where": where, "name": name, "pattern": pattern, "torch": outcomes[0],
                              "chainrule": outcomes[1], "kind": _kind(*outcomes)})
    return cases


def _cause(case) -> str:
    """A coarse grouping key for a difference: the two exception classes and what the messages say."""
    (torch_type, torch_text), (chainrule_type, chainrule_text) = case["torch"], case["chainrule"]

    def shape(text):
        for marker in ("invalid combination", "must be", "unexpected keyword", "positional argument",
                       "missing", "takes no", "unrecognized keyword", "multiple values"):
            if marker in text:
                return marker
        return "other"

    return f"{torch_type}[{shape(torch_text)}] vs {chainrule_type}[{shape(chainrule_text)}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", default="", help="only names containing this")
    parser.add_argument("--show", action="store_true", help="print every differing call")
    parser.add_argument("--json", help="write every case here")
    options = parser.parse_args()
    cases = run(options.filter)
    counts = collections.Counter((case["where"], case["kind"]) for case in cases)
    for (where, kind), count in sorted(counts.items()):
        print(f"{where:8} {kind:12} {count}")
    differing = [case for case in cases if case["kind"] == "differs"]
    groups = collections.Counter((case["where"], case["pattern"], _cause(case)) for case in differing)
    print("\nbiggest groups of differences:")
    for (where, pattern, cause), count in groups.most_common(30):
        print(f"{count:5}  {where:8} {pattern:18} {cause}")
    if options.show:
        for case in differing:
            print(f"\n{case['where']} {case['name']} {case['pattern']}\n  torch:     {case['torch']}\n"
                  f"  chainrule: {case['chainrule']}")
    if options.json:
        with open(options.json, "w") as file:
            json.dump(cases, file, indent=1)


if __name__ == "__main__":
    main()
