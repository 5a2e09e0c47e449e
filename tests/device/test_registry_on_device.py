"""Op cases of the test registry on 'cuda' (the stand-in) against the CPU path: forward values,
dtypes, shapes and input gradients equal, and every output on the device."""

from __future__ import annotations

import pytest

from chainrule.testing.opinfo import op_db

from ._registry_run import run_on_both

# tests/device/ has a CI budget of about a minute. Every case of the conv family runs (ops/conv.py
# was the last to move onto the seam, and its strided windows have the most ways to fall off it)
# and of nn.functional (whose composed bodies build index arrays and masks of their own);
# of every other op, every STRIDE-th case starting with the first, so each op runs on the device
# and the subset is the same on every run.
ALL_CASES = ("conv", "nn_functional")
STRIDE = 2
CASES = [case for entry in op_db
         for case in entry.samples()[:: 1 if entry.family in ALL_CASES else STRIDE]]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_on_device_matches_cpu(case):
    run_on_both(case)
