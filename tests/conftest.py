"""The suite's two profiles. CI runs the fixed budget; ``CHAINRULE_LONG_TESTS=1`` adds the tests
marked ``long``: the same checks over more cases, or oracle runs whose result is pinned another way
(torch's runs of the program corpus, whose calibration digests are checked in every profile). Big
case lists choose their CI subset with tests/_profile.py's ``in_ci``."""

from __future__ import annotations

import pytest

from tests._profile import LONG


def pytest_configure(config):
    config.addinivalue_line("markers", "long: runs only with CHAINRULE_LONG_TESTS=1 (the long profile)")


def pytest_collection_modifyitems(config, items):
    if LONG:
        return
    skip = pytest.mark.skip(reason="long profile: set CHAINRULE_LONG_TESTS=1")
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _torch_distributions_validation_restored():
    """Real ``torch.compile`` turns torch.distributions' argument validation off for the whole
    process; tests that compare with torch after one that compiled (in the same worker) would see
    torch skip its checks. Put the setting back after every test that may have changed it."""
    import sys

    torch = sys.modules.get("torch")
    distributions = getattr(torch, "distributions", None) if torch is not None else None
    saved = getattr(getattr(distributions, "Distribution", None), "_validate_args", None)
    yield
    if saved is not None and distributions.Distribution._validate_args is not saved:
        distributions.Distribution.set_default_validate_args(saved)
