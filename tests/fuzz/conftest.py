"""Hypothesis profiles for the differential fuzz test.

* ``ci`` (default): derandomized (the same cases on every run), no example database, a fixed
  number of cases per op — a few thousand in all, about a minute on one core;
* ``long``: ``CHAINRULE_FUZZ=long pytest tests/fuzz`` — random, 60x the cases (1500 per op), for hunting.
"""

import os

from hypothesis import HealthCheck, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("chainrule-fuzz-ci", max_examples=25, derandomize=True, database=None,
                          deadline=None, suppress_health_check=_QUIET, print_blob=True)
settings.register_profile("chainrule-fuzz-long", max_examples=1500, derandomize=False, database=None,
                          deadline=None, suppress_health_check=_QUIET, print_blob=True)

# the profile these tests run under; chosen here, not with settings.load_profile, so the
# rest of the suite keeps its own hypothesis settings
FUZZ_PROFILE = "chainrule-fuzz-long" if os.environ.get("CHAINRULE_FUZZ") == "long" else "chainrule-fuzz-ci"
