"""The suite's two profiles. CI runs the fixed budget; ``CHAINRULE_LONG_TESTS=1`` adds the tests
marked ``long``: the same checks over more cases, or oracle runs whose result is pinned another way
(torch's runs of the program corpus, whose calibration digests are checked in every profile)."""

from __future__ import annotations

import os

import pytest

LONG = os.environ.get("CHAINRULE_LONG_TESTS") == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "long: runs only with CHAINRULE_LONG_TESTS=1 (the long profile)")


def pytest_collection_modifyitems(config, items):
    if LONG:
        return
    skip = pytest.mark.skip(reason="long profile: set CHAINRULE_LONG_TESTS=1")
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(skip)
