"""The trials' oracle answers torch's unittest-method lookup at once in every module that holds it
(tools/torch_oracle.py)."""

from __future__ import annotations

import pytest

from tests.compat import trial_tools


def test_oracle_answers_the_unittest_lookup_in_opinfo_core_too():
    pytest.importorskip("torch")
    pytest.importorskip("expecttest")
    # in a CI worker opinfo.core is imported at collection (hop_db), before any trial loads the oracle
    from torch.testing._internal import common_utils
    from torch.testing._internal.opinfo import core

    trial_tools.load_tool("torch_oracle")
    assert core.extract_test_fn is common_utils.extract_test_fn
    assert core.extract_test_fn() is None
