"""Session 44's integration fixes."""

import os
import signal

import pytest

import chainrule as torch
from chainrule.ops import mt19937_stream


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_draws_normals_while_the_parent_held_the_lookahead_lock():
    """A DataLoader worker forked while another thread is inside a small normal draw gets a
    lock of its own: its draws neither hang nor differ from a fresh process's."""
    torch.manual_seed(0)
    torch.randn(64)  # makes the shared lookahead engine and its lock
    ahead = mt19937_stream._ahead()
    if ahead is None:
        pytest.skip("NumPy's MT19937 state memory is laid out otherwise: no lookahead engine")
    torch.manual_seed(3)
    expected = torch.randn(64)
    lock = ahead[2]
    read, write = os.pipe()
    with lock:  # held at the fork, as by a thread mid-draw
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(read)
            signal.alarm(30)  # a child stuck on the inherited lock dies, failing the test
            torch.manual_seed(3)
            same = torch.equal(torch.randn(64), expected)
            os.write(write, b"1" if same else b"0")
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as answer:
        assert answer.read() == b"1"
    assert os.waitstatus_to_exitcode(status) == 0
