"""chainrule.cuda's device context, streams, seeds and peak-memory counter: without a GPU as torch's
CPU build answers, and through a stand-in for CuPy's runtime, streams and memory pool."""

import types

import pytest
import torch

import chainrule
from chainrule.cuda.memory import PeakTracker

NO_GPU = not chainrule.cuda.is_available()


@pytest.mark.skipif(not NO_GPU, reason="compares with torch's CPU-only answers")
def test_without_a_gpu_the_new_names_answer_like_cpu_torch():
    assert chainrule.cuda.memory_stats() == dict(torch.cuda.memory_stats()) == {}
    with chainrule.cuda.device(-1), torch.cuda.device(-1):  # a negative index does nothing
        pass
    with pytest.raises(ValueError, match="Expected a cuda device, but got: cpu"):
        chainrule.cuda.device("cpu")
    with pytest.raises(RuntimeError):
        torch.cuda.device(0).__enter__()
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        chainrule.cuda.device(0).__enter__()
    for call in ("initial_seed()", "current_stream()", "default_stream()", "mem_get_info()"):
        with pytest.raises(AssertionError):
            eval("torch.cuda." + call)
        with pytest.raises(AssertionError, match="no CUDA GPU is available"):
            eval("chainrule.cuda." + call)
    with pytest.raises(RuntimeError):
        torch.cuda.Stream()
    with pytest.raises(RuntimeError, match="Stream needs a CUDA GPU"):
        chainrule.cuda.Stream()
    with chainrule.cuda.stream(None):
        pass


class _Pool:
    """CuPy's MemoryPool as the tracker sees it: malloc, used_bytes, total_bytes."""

    def __init__(self) -> None:
        self.used = self.held = 0

    def malloc(self, size):
        self.used += size
        self.held = max(self.held, self.used)
        return ("pointer", size)

    def free(self, size):
        self.used -= size

    def used_bytes(self):
        return self.used

    def total_bytes(self):
        return self.held

    def free_all_blocks(self):
        self.held = self.used


class _FakeCupy:
    def __init__(self) -> None:
        self.pool = _Pool()
        self.allocator = None
        self.current = 0
        self.entered = []
        runtime = types.SimpleNamespace(getDeviceCount=lambda: 2, getDevice=lambda: self.current,
                                        setDevice=self._set_device, memGetInfo=lambda: (3, 8))
        null = self._stream(ptr=0)

        def new_stream(non_blocking=False):
            return self._stream(ptr=7)

        new_stream.null = null
        self.cuda = types.SimpleNamespace(runtime=runtime, set_allocator=self._set_allocator, Device=_Device,
                                          Stream=new_stream, get_current_stream=lambda: null)
        self.get_default_memory_pool = lambda: self.pool

    def _set_device(self, index):
        self.current = index

    def _set_allocator(self, allocator):
        self.allocator = allocator

    def _stream(self, ptr):
        fake = self

        class _Stream:
            done = True

            def __init__(self):
                self.ptr = ptr

            def __enter__(self):
                fake.entered.append(self.ptr)
                return self

            def __exit__(self, *exc_info):
                fake.entered.append(-self.ptr)

            def synchronize(self):
                fake.entered.append("synchronize")

        return _Stream()


class _Device:
    def __init__(self, index):
        self.index = index

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass


@pytest.fixture
def fake_cupy(monkeypatch):
    fake = _FakeCupy()
    fresh_tracker = PeakTracker()
    monkeypatch.setattr(chainrule.cuda, "_cupy", lambda: fake)
    monkeypatch.setattr(chainrule.cuda, "cuda_available", lambda: True)
    monkeypatch.setattr(chainrule.cuda, "_peak", fresh_tracker)
    return fake


def test_the_tracking_allocator_records_the_exact_peak(fake_cupy):
    cuda = chainrule.cuda
    assert cuda.is_available() and fake_cupy.allocator is not None  # installed by the first call
    alloc, pool = fake_cupy.allocator, fake_cupy.pool
    alloc(1000)
    alloc(500)
    pool.free(1500)
    alloc(200)
    assert cuda.memory_allocated() == 200
    assert cuda.max_memory_allocated() == 1500 and cuda.max_memory_reserved() == 1500
    cuda.empty_cache()
    cuda.reset_peak_memory_stats()
    assert cuda.max_memory_allocated() == 200 and cuda.max_memory_reserved() == 200
    alloc(300)
    stats = cuda.memory_stats()
    assert stats["allocated_bytes.all.current"] == stats["allocated_bytes.all.peak"] == 500
    assert cuda.mem_get_info() == (3, 8)


def test_device_context_switches_and_restores(fake_cupy):
    cuda = chainrule.cuda
    with cuda.device("cuda:1"):
        assert cuda.current_device() == 1
        with cuda.device(0):
            assert cuda.current_device() == 0
        assert cuda.current_device() == 1
    assert cuda.current_device() == 0
    with cuda.device(None):
        assert cuda.current_device() == 0


def test_streams_enter_and_compare(fake_cupy):
    cuda = chainrule.cuda
    s = cuda.Stream()
    with cuda.stream(s) as entered:
        assert entered is s
    assert fake_cupy.entered == [7, -7]
    s.synchronize()
    assert s.query() and s != cuda.default_stream() and cuda.current_stream() == cuda.default_stream()


def test_initial_seed_with_a_gpu_is_the_current_devices_generators():
    # the stand-in is the GPU: the CUDA generators live in ops/random, past the fake runtime above
    from chainrule._backend import use_standin_cuda

    chainrule.manual_seed(77)
    with use_standin_cuda():
        chainrule.cuda.manual_seed(1234)
        assert chainrule.cuda.initial_seed() == 1234
    assert chainrule.initial_seed() == 77  # torch.cuda.manual_seed leaves the CPU generator alone
