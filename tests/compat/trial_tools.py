"""What the ledger tests of torch's test databases share: loading a trial tool from tools/ (a
script, not a package) and the fixed CI budget of the slower ledgers."""

from __future__ import annotations

import importlib.util
import os

from tests import _profile

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tools")


def load_tool(name: str):
    """tools/<name>.py, executed as a fresh module of that name."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def within_budget(ledger, seed: int = 23):
    """About half the entries of a ledger, the same each run, with at least one entry of every op
    (tests/_profile.py's ``in_ci``); the long profile (``CHAINRULE_LONG_TESTS=1``) replays all of it.

    A list ledger holds one entry per op, so all of it is kept. A dict ledger maps an op to its
    entries: a list of sample indices, or a dict from a variant (dtype, kind) to an index or a list
    of them; the half it keeps has the same shape."""
    if _profile.LONG:
        return ledger
    if isinstance(ledger, list):
        return _profile.in_ci(ledger, (len(ledger) + 1) // 2, seed)
    entries = [(name, variant, index) for name in sorted(ledger) for variant, index in _entries(ledger[name])]
    kept: dict = {}
    for name, variant, index in _profile.in_ci(entries, (len(entries) + 1) // 2, seed, key=lambda entry: entry[0]):
        if variant is None:
            kept.setdefault(name, []).append(index)
        elif isinstance(ledger[name][variant], list):
            kept.setdefault(name, {}).setdefault(variant, []).append(index)
        else:
            kept.setdefault(name, {})[variant] = index
    return kept


def _entries(value):
    """(variant, index) of one op's ledger value; variant None for a plain list of indices."""
    if isinstance(value, list):
        return [(None, index) for index in value]
    return [(variant, index) for variant, indices in value.items()
            for index in (indices if isinstance(indices, list) else [indices])]
