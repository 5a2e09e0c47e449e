"""What the ledger tests of torch's test databases share: loading a trial tool from tools/ (a
script, not a package) and the fixed CI budget of the slower ledgers."""

from __future__ import annotations

import importlib.util
import os

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tools")


def load_tool(name: str):
    """tools/<name>.py, executed as a fresh module of that name."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def within_budget(ledger):
    """Every second entry of a ledger (a dict's by name, a list's in order), the same half each run;
    the long profile (``CHAINRULE_LONG_TESTS=1``) replays all of it."""
    if os.environ.get("CHAINRULE_LONG_TESTS") == "1":
        return ledger
    if isinstance(ledger, list):
        return ledger[::2]
    return {name: ledger[name] for name in sorted(ledger)[::2]}
