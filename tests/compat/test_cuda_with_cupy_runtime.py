"""The CuPy branch of chainrule.cuda, run against a recording stand-in for CuPy's runtime API
(this CI has no GPU): each torch.cuda call must reach the CuPy call that answers it."""

import types

import pytest

import chainrule


class _FakeCupy:
    """The slice of CuPy's API chainrule.cuda uses, recording the calls it receives."""

    def __init__(self) -> None:
        self.calls = []
        self.current = 0
        pool = types.SimpleNamespace(used_bytes=lambda: 1024, total_bytes=lambda: 4096,
                                     free_all_blocks=lambda: self.calls.append("free_all_blocks"))
        runtime = types.SimpleNamespace(
            getDeviceCount=lambda: 2, getDevice=lambda: self.current, setDevice=self._set_device,
            getDeviceProperties=lambda i: {"name": b"Fake GPU %d" % i, "totalGlobalMem": 80 * 2**30,
                                           "major": 9, "minor": 0, "multiProcessorCount": 132})
        self.cuda = types.SimpleNamespace(runtime=runtime, Device=self._device, Event=self._event,
                                          get_elapsed_time=lambda start, end: 2.5)
        self.get_default_memory_pool = lambda: pool

    def _set_device(self, index):
        self.calls.append(("setDevice", index))
        self.current = index

    def _device(self, index):
        return types.SimpleNamespace(synchronize=lambda: self.calls.append(("synchronize", index)))

    def _event(self, block, disable_timing, interprocess):
        self.calls.append(("Event", block, disable_timing, interprocess))
        return types.SimpleNamespace(record=lambda stream=None: self.calls.append("record"),
                                     synchronize=lambda: None, done=True)


@pytest.fixture
def fake_cupy(monkeypatch):
    fake = _FakeCupy()
    monkeypatch.setattr(chainrule.cuda, "_cupy", lambda: fake)
    monkeypatch.setattr(chainrule.cuda, "cuda_available", lambda: True)
    return fake


def test_device_queries_come_from_the_runtime(fake_cupy):
    cuda = chainrule.cuda
    assert cuda.is_available() and cuda.device_count() == 2 and cuda.current_device() == 0
    cuda.set_device("cuda:1")
    assert cuda.current_device() == 1 and ("setDevice", 1) in fake_cupy.calls
    cuda.set_device(-1)  # ignored, as in torch
    assert cuda.current_device() == 1
    cuda.synchronize()
    assert ("synchronize", 1) in fake_cupy.calls
    assert cuda.get_device_name(0) == "Fake GPU 0"
    props = cuda.get_device_properties(chainrule.device("cuda", 1))
    assert (props.name, props.total_memory, props.multi_processor_count) == ("Fake GPU 1", 80 * 2**30, 132)
    assert cuda.get_device_capability() == (9, 0)
    with pytest.raises(ValueError, match="Expected a cuda device"):
        cuda.get_device_name("cpu")


def test_memory_counters_come_from_the_pool(fake_cupy):
    cuda = chainrule.cuda
    assert cuda.memory_allocated() == 1024
    assert cuda.memory_reserved() == cuda.max_memory_allocated() == cuda.max_memory_reserved() == 4096
    cuda.reset_peak_memory_stats()
    cuda.empty_cache()
    assert "free_all_blocks" in fake_cupy.calls
    assert chainrule.accelerator.current_accelerator() == chainrule.device("cuda")
    assert chainrule.accelerator.current_device_index() == 0


def test_event_timing_and_seeding_with_a_gpu(fake_cupy):
    start, end = chainrule.cuda.Event(enable_timing=True), chainrule.cuda.Event(enable_timing=True)
    start.record()
    end.record()
    # Event.elapsed_time hands back what the (fake) CUDA runtime reports: a value, not a time measured here
    reported_ms = start.elapsed_time(end)
    assert end.query() and reported_ms == 2.5
    assert ("Event", False, False, False) in fake_cupy.calls
    # with a GPU, CUDA seeding seeds the devices' own generators and leaves the CPU stream alone, as
    # torch's does (the device generators: tests/device/test_cuda_generators.py, on the stand-in)
    chainrule.manual_seed(11)
    first = chainrule.rand(4)
    chainrule.manual_seed(11)
    chainrule.cuda.manual_seed_all(12)
    assert chainrule.equal(chainrule.rand(4), first)
