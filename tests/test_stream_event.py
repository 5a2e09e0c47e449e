"""torch.Stream and torch.Event (torch 2.13's accelerator-generic classes) against torch on the CPU:
the same script on both libraries, its answers and exception types compared; on a CUDA device
(the stand-in) torch.Stream is chainrule.cuda.Stream."""

from __future__ import annotations

import pytest

import chainrule
from chainrule._backend import use_standin_cuda

torch = pytest.importorskip("torch")


def _script(lib):
    seen = []

    def attempt(call):
        try:
            seen.append(repr(call()))
        except Exception as error:  # the exception's type and text are what is compared
            seen.append(f"{type(error).__name__}: {error}")

    stream, event = lib.Stream(), lib.Event()
    seen += [repr(stream), stream.device_type, stream.device_index, stream.stream_id, str(stream.device),
             repr(event), str(event.device), repr(lib.Event(enable_timing=True)), repr(lib.Stream("cpu"))]
    for call in (stream.query, stream.synchronize, stream.record_event, lambda: stream.wait_event(event),
                 lambda: stream.wait_stream(lib.Stream()), lambda: stream == lib.Stream(),
                 event.query, event.synchronize, event.record, event.wait,
                 lambda: event.elapsed_time(lib.Event()),
                 lambda: lib.Event(enable_timing=True).elapsed_time(lib.Event(enable_timing=True))):
        attempt(call)
    with stream:
        seen.append("in the stream")
    return seen


def test_cpu_stream_and_event_as_torch():
    assert _script(chainrule) == _script(torch)


def test_a_cuda_stream_is_chainrules_cuda_stream():
    with use_standin_cuda():
        stream = chainrule.Stream("cuda")
        assert isinstance(stream, chainrule.cuda.Stream)
        assert isinstance(chainrule.Stream(), chainrule.cuda.Stream)  # the current accelerator by default
        stream.synchronize()  # (the stand-in's stream has no ``done``, so query is not tried here)
