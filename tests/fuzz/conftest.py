"""Hypothesis profiles for the differential fuzz test.

* ``ci`` (default): derandomized (the same cases on every run), no example database, a fixed
  number of cases per op: 12 in CI, 25 under ``CHAINRULE_LONG_TESTS=1`` (tests/_profile.py) —
  the same ops, layouts and dtypes drawn either way, the long profile drawing more shapes of each;
* ``long``: ``CHAINRULE_FUZZ=long pytest tests/fuzz`` — random, 60x the cases (1500 per op), for hunting.
"""

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.internal.conjecture import providers as _providers

from tests._profile import LONG

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

# CI draws 12 cases an op (25 took 44.4 s of CPU for the 130 tests on the shared 2-core machine):
# of the 1,150 (op, dtype | layout | 0-d | empty | torch raises) kinds 25 cases draw, 12 miss 2
# (tests/compat/test_s43_ciX.py checks it in the long profile, where drawing both budgets costs
# as much CPU as the cut saves)
CI_BUDGET, LONG_BUDGET = 12, 25
CI_EXAMPLES = LONG_BUDGET if LONG else CI_BUDGET
settings.register_profile("chainrule-fuzz-ci", max_examples=CI_EXAMPLES, derandomize=True, database=None,
                          deadline=None, suppress_health_check=_QUIET, print_blob=True)
settings.register_profile("chainrule-fuzz-long", max_examples=1500, derandomize=False, database=None,
                          deadline=None, suppress_health_check=_QUIET, print_blob=True)

# the profile these tests run under; chosen here, not with settings.load_profile, so the
# rest of the suite keeps its own hypothesis settings
FUZZ_PROFILE = "chainrule-fuzz-long" if os.environ.get("CHAINRULE_FUZZ") == "long" else "chainrule-fuzz-ci"

# Why derandomized runs used to draw different cases in the whole suite than in this directory
# alone: since 6.131 Hypothesis sometimes draws a constant found in the source of any local module
# in sys.modules (chainrule's, the examples'), and which of those are loaded depends on what ran
# before. The fixture below empties that pool while these tests run, so a case depends only on
# the test and the seed. It patches a Hypothesis internal; test_ci_draws_ignore_loaded_modules
# fails if a Hypothesis upgrade moves it.
_NO_CONSTANTS = _providers.Constants()


@pytest.fixture(autouse=True, scope="package")
def _draws_ignore_loaded_modules():
    if not hasattr(_providers, "_get_local_constants"):
        yield  # a Hypothesis without local constants: nothing to pin
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_providers, "_get_local_constants", lambda: _NO_CONSTANTS)
        _providers.CONSTANTS_CACHE.cache.clear()  # pools cached from earlier tests' constants
        yield
    _providers.CONSTANTS_CACHE.cache.clear()
