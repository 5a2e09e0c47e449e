"""The wrapper-subclass sweep over the op registry: each op_db sample run with every tensor input wrapped in
torch's test LoggingTensor (tests/compat/_dispatch_checks.py) against plain chainrule, in float64; prints
agree/differ/raise counts and each sample that differs or raises.

    PYTHONPATH=src python scripts/wrapper_sweep.py [--all] [--back]

``--all``: every sample of each entry (default: the first); ``--back``: also the inputs' gradients, from a
backward with wrapped grad_outputs. Run from the repository root (it imports the tests' helpers)."""
import collections
import sys
import warnings

import numpy as np

sys.path.insert(0, ".")

from tests.compat._dispatch_checks import logging_tensor  # noqa: E402
from tests.ops.harness import _make  # noqa: E402

import chainrule  # noqa: E402
from chainrule.testing import opinfo  # noqa: E402

ALL = "--all" in sys.argv
BACK = "--back" in sys.argv
LT, LOG = logging_tensor(chainrule)

def vals(outs):
    res = []
    for o in outs:
        if isinstance(o, chainrule.Tensor):
            o = getattr(o, "elem", o)
            res.append(np.asarray(o.detach().resolve_conj().tolist()) if o.numel() else np.zeros(tuple(o.shape)))
        elif isinstance(o, (tuple, list)):
            res.extend(vals(o))
        else:
            res.append(o)
    return res

def run(case, wrap):
    ts = _make(chainrule, case, "float64")
    ins = [LT(t) if wrap and isinstance(t, chainrule.Tensor) else t for t in ts]
    out = case.fn(chainrule, *ins)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    v = vals(outs)
    g = []
    if BACK:
        diff = [i for i, t in enumerate(ins) if isinstance(t, chainrule.Tensor) and t.requires_grad]
        fo = [o for o in outs if isinstance(o, chainrule.Tensor) and o.requires_grad]
        if diff and fo:
            gos = []
            for k, o in enumerate(fo):
                go = chainrule.tensor(np.random.default_rng(k).standard_normal(tuple(o.shape)), dtype=o.dtype)
                gos.append(LT(go) if wrap else go)
            gr = chainrule.autograd.grad(fo, [ins[i] for i in diff], gos, allow_unused=True)
            g = vals([x if x is not None else chainrule.tensor(0.) for x in gr])
    return v, g

def same(a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            x, y = np.asarray(x), np.asarray(y)
            if x.shape != y.shape:
                return False
            try:
                if not np.allclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True):
                    return False
            except TypeError:
                if not np.array_equal(x, y):
                    return False
        elif x != y and not (x != x and y != y):
            return False
    return True

res = collections.Counter()
detail = {}
for entry in opinfo.op_db:
    cases = entry.sample_cases()
    if not ALL:
        cases = cases[:1]
    for ci, case in enumerate(cases):
        key = f"{entry.name}#{ci}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                plain = run(case, False)
            except Exception:
                res["plain_raise"] += 1
                continue
            try:
                LOG.clear()
                wrapped = run(case, True)
            except Exception as e:
                res["raise"] += 1
                detail[key] = ("raise", f"{type(e).__name__}: {str(e)[:150]}")
                continue
        if same(plain[0], wrapped[0]) and same(plain[1], wrapped[1]):
            res["agree"] += 1
        else:
            res["differ"] += 1
            detail[key] = ("differ", "fwd" if not same(plain[0], wrapped[0]) else "grad")
print(dict(res))
for k, v in sorted(detail.items()):
    print(k, *v)
