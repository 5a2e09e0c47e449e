"""Device tests run on the NumPy-backed stand-in for CuPy (``chainrule.testing.standin``) as the
'cuda' device: no GPU needed, and a host/device mix-up fails here as it would on a GPU."""

from __future__ import annotations

import pytest

import chainrule
from chainrule._backend import use_standin_cuda
from chainrule.testing import standin


@pytest.fixture
def cuda():
    """The stand-in as 'cuda', with its transfer counter at zero; the default device restored after."""
    with use_standin_cuda():
        standin.reset_transfers()
        try:
            yield standin
        finally:
            chainrule.set_default_device(None)
