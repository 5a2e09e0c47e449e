"""The fixed CI budget of the slower op_db ledger tests: every second OpInfo of a ledger (by name),
the same half each run; the long profile (``CHAINRULE_LONG_TESTS=1``) replays all of it."""

from __future__ import annotations

import os


def within_budget(ledger: dict) -> dict:
    if os.environ.get("CHAINRULE_LONG_TESTS") == "1":
        return ledger
    return {name: ledger[name] for name in sorted(ledger)[::2]}
