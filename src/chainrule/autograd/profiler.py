"""Op-by-op timing: torch's ``torch.autograd.profiler`` (``profile``, ``record_function``,
``emit_nvtx``), and the recorder ``torch.profiler.profile`` drives.

While a recorder is active, ``function.active_profiler`` names it, and three places hand it their
work so that it becomes a timed ``FunctionEvent``: every built-in op's ``apply`` (named like
torch's dispatcher op, ``aten::mul`` for the op whose node is ``MulBackward0``), every user
``Function``'s ``apply`` (named after its class, as torch does), and each node the backward engine
evaluates (``autograd::engine::evaluate_function: MulBackward0``; the ops its rule runs nest
inside it). ``record_function`` adds the user's own named ranges. When no recorder is active, each
of those places costs one check of a module global.

Events nest per thread: a range that starts while another is open on the same thread is its
child, and a parent's self time is its total less its children's. Ops called from other Python
threads are recorded on their own thread's row; the NumPy work ``_parallel.over_rows`` hands to
its pool is part of the op that waits for it, so it is counted in that op's time, on its thread.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import threading
import time

from . import function as _function
from .profiler_util import EventList, FunctionEvent

__all__ = ["profile", "record_function", "emit_nvtx", "EventList", "FunctionEvent"]

# callables(recording: bool) run when a recorder starts (True) and stops (False): the layers above
# register here what they switch for profiling (the Tensor operators' unrecorded fast paths)
recording_switches: list = []

_ndarray_type = None  # numpy.ndarray, bound at the first recorder (keeps this module import light)


def _op_name(cls) -> str:
    """torch's dispatcher name for a built-in op: its node's name less ``Backward<N>``, in
    snake case (``AddmmBackward0`` -> ``aten::addmm``, ``MaxPool2DWithIndicesBackward0`` ->
    ``aten::max_pool2d_with_indices``)."""
    name = _OP_NAMES.get(cls)
    if name is None:
        # an op whose node torch names after a kernel beneath the op says which op it is
        name = getattr(cls, "dispatcher_name", None)
        if name is None:
            stem = re.sub(r"Backward\d*$", "", cls._node_cls.__name__) or cls.__name__
            # an underscore before a capital that starts a word: after a lower-case letter, or
            # after a capital when a lower-case letter follows (never after a digit: Log1P, Pool2D)
            snake = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", stem).lower()
            name = "aten::" + snake
        _OP_NAMES[cls] = name
    return name


_OP_NAMES: dict = {}


def _buffer_of(array):
    """The object that owns ``array``'s memory: the end of its chain of ``base``s."""
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


def _node_range_name(node) -> str:
    return "autograd::engine::evaluate_function: " + node.name()


def _shapes(inputs) -> list:
    """``Input Dims`` as torch lists them: a tensor's shape, ``[]`` for anything else."""
    shapes = []
    for value in inputs:
        data = getattr(value, "_data", None)
        shapes.append(list(data.shape) if data is not None and hasattr(data, "shape") else [])
    return shapes


def _user_frames(limit: int = 16) -> list:
    """The calling Python stack as ``file(line): function`` entries, innermost first, without
    chainrule's own frames (torch's ``with_stack`` ``stack``)."""
    package = _PACKAGE_DIR
    frames = []
    frame = sys._getframe(2)
    while frame is not None and len(frames) < limit:
        filename = frame.f_code.co_filename
        if not filename.startswith(package):
            frames.append(f"{filename}({frame.f_lineno}): {frame.f_code.co_name}")
        frame = frame.f_back
    return frames


_PACKAGE_DIR = __file__.rsplit("autograd", 1)[0]


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.open = []  # this thread's open ranges, innermost last
        self.rerun = False  # the next apply on this thread is the recorder's own call: run it plainly


class Recorder:
    """Collects the events of one profiling run, from every thread, until ``stop``."""

    def __init__(self, *, record_shapes: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, use_device: str | None = None) -> None:
        global _ndarray_type
        if _ndarray_type is None:
            import numpy
            _ndarray_type = numpy.ndarray
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.use_device = use_device
        self.events = []
        # each op event's output array ids: a parent op returning a nested op's array did not allocate it
        self._output_ids = {}
        self._threads = _ThreadState()
        self._lock = threading.Lock()
        # perf_counter_ns for durations; the offset turns its readings into wall-clock µs for the trace
        self._epoch_offset_ns = time.time_ns() - time.perf_counter_ns()
        self._recording = False

    # -- switching on and off ---------------------------------------------------------
    def start(self) -> None:
        active = _function.active_profiler
        if getattr(active, "observes_under", False) and active.previous is None:
            # a running vmap's watcher (func._BatchWatcher) stays in place and hands its ops on to this one
            self._recording = True
            active.previous = self
            return
        if active is not None:
            raise RuntimeError("profiler: another profiler is already recording; stop it before "
                               "starting a new one (profilers do not nest)")
        self._recording = True
        _function.active_profiler = self
        for switch in recording_switches:
            switch(True)

    def stop(self) -> EventList:
        """Stop recording (ranges still open end now) and return the events, parents first."""
        active = _function.active_profiler
        if getattr(active, "observes_under", False) and active.previous is self:
            active.previous = None
        elif active is self:
            _function.active_profiler = None
            for switch in recording_switches:
                switch(False)
        self._recording = False
        now = self._now_us()
        for event in self.events:
            if event.end_us == 0.0:  # left open by an exception that no range of ours caught
                event.end_us = now
        self._threads = _ThreadState()
        self._output_ids = {}
        events = sorted(self.events, key=lambda event: (event.start_us, -event.end_us))
        if self.profile_memory:
            # a range's memory is its own allocations and everything allocated inside it; a
            # child starts after its parent, so walking backwards sums the children first
            for event in reversed(events):
                event.cpu_memory_usage = event.self_cpu_memory_usage + sum(
                    child.cpu_memory_usage for child in event.cpu_children)
                event.device_memory_usage = event.self_device_memory_usage + sum(
                    child.device_memory_usage for child in event.cpu_children)
        return EventList(events, use_device=self.use_device, profile_memory=self.profile_memory)

    # -- ranges ---------------------------------------------------------------------------
    def _now_us(self) -> float:
        return (time.perf_counter_ns() + self._epoch_offset_ns) / 1000.0

    def begin(self, name: str, inputs=(), *, user_annotation: bool = False) -> FunctionEvent:
        """Open a range on this thread, nested in the innermost open one."""
        open_ranges = self._threads.open
        with self._lock:
            event = FunctionEvent(len(self.events), name, threading.get_native_id(), 0.0,
                                  input_shapes=_shapes(inputs) if self.record_shapes and inputs else None,
                                  stack=_user_frames() if self.with_stack else None,
                                  is_user_annotation=user_annotation)
            self.events.append(event)
        if open_ranges:
            parent = open_ranges[-1]
            event.cpu_parent = parent
            parent.cpu_children.append(event)
        open_ranges.append(event)
        event.start_us = self._now_us()
        return event

    def end(self, event: FunctionEvent) -> None:
        """Close ``event``, and any range inside it that an exception left open."""
        now = self._now_us()
        open_ranges = self._threads.open
        if event not in open_ranges:
            return  # already closed (an outer range's end closed it), or from before a restart
        while open_ranges:
            inner = open_ranges.pop()
            inner.end_us = now
            if inner is event:
                break

    # -- what the hot paths hand over -----------------------------------------------------
    def record_op(self, cls, inputs, params, user_function: bool = False):
        """Run ``cls.apply(*inputs, **params)`` as a timed event and return its result; or,
        for the call this method itself makes, ``function.RUN_UNRECORDED``: run it plainly."""
        threads = self._threads
        if threads.rerun:
            threads.rerun = False
            return _function.RUN_UNRECORDED
        if not self._recording:
            return _function.RUN_UNRECORDED
        name = cls.__name__ if user_function else _op_name(cls)
        synchronize = self._device_synchronizer(inputs)
        if synchronize is not None:
            synchronize()  # earlier queued work is not this op's
        event = self.begin(name, inputs)
        threads.rerun = True
        try:
            out = _function.run_intercepted(cls, inputs, params, user_function)
            if synchronize is not None:
                synchronize()  # the op's kernels ran within its range
        finally:
            threads.rerun = False
            self.end(event)
        if synchronize is not None:
            event.device_time_total = event.self_device_time_total = event.cpu_time_total
        if self.profile_memory:
            self._count_allocations(event, inputs, out)
        return out

    def evaluate_function(self, node, previous: FunctionEvent | None) -> FunctionEvent:
        """The backward walk moves on to ``node``: end the previous node's range, open this one's."""
        if previous is not None:
            self.end(previous)
        return self.begin(_node_range_name(node))

    # -- devices and memory -------------------------------------------------------------------
    def _device_synchronizer(self, inputs):
        """With ``use_device="cuda"``, the synchronize of the device an op's inputs live on (so
        its range covers its kernels, not just their launch); None for a CPU op."""
        if self.use_device is None:
            return None
        for value in inputs:
            data = getattr(value, "_data", None)
            if data is not None and type(data) is not _ndarray_type and hasattr(data, "device"):
                device = data.device
                return getattr(device, "synchronize", None)
        return None

    def _count_allocations(self, event: FunctionEvent, inputs, out) -> None:
        """The bytes of the buffers ``out``'s arrays live in that this op allocated: not an
        input's buffer (a view of an input is free), not one a nested op already counted."""
        outputs = out if isinstance(out, tuple) else (out,)
        seen = {id(_buffer_of(getattr(value, "_data", None))) for value in inputs}
        for child in event.cpu_children:
            seen.update(self._output_ids.get(child, ()))
        on_host = on_device = 0
        ids = []
        for value in outputs:
            data = getattr(value, "_data", None)
            if data is None or not hasattr(data, "nbytes"):
                continue
            buffer = _buffer_of(data)
            ids.append(id(buffer))
            if id(buffer) in seen:
                continue
            seen.add(id(buffer))
            nbytes = getattr(buffer, "nbytes", data.nbytes)
            if type(data) is _ndarray_type:
                on_host += nbytes
            else:
                on_device += nbytes
        event.self_cpu_memory_usage = on_host
        event.self_device_memory_usage = on_device
        self._output_ids[event] = ids


def composite_range(name: str, arity: int, unless: str | None = None):
    """Decorate a composite op (one that runs other ops, like ``linear`` running ``t`` and
    ``addmm``) so that a profile shows it as torch's does: a range named ``name`` around the
    ops it runs, whose ``input_shapes`` list the op's first ``arity`` arguments in torch's
    schema order (defaults filled in, ``[]`` for anything not a tensor). ``unless`` names a flag
    argument that, when true, sends the call to another op of torch's with no such range
    (``max_pool2d(return_indices=True)`` is torch's ``max_pool2d_with_indices`` alone). Outside a
    profiler the call costs one check of a module global."""

    def decorate(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def recorded(*args, **kwargs):
            recorder = _function.active_profiler
            if type(recorder) is not Recorder or not recorder._recording:
                return fn(*args, **kwargs)
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return fn(*args, **kwargs)  # the op itself raises torch's error for bad arguments
            bound.apply_defaults()
            if unless is not None and bound.arguments[unless]:
                return fn(*args, **kwargs)
            inputs = tuple(bound.arguments.values())[:arity] if recorder.record_shapes else ()
            event = recorder.begin(name, inputs)
            try:
                return fn(*args, **kwargs)
            finally:
                recorder.end(event)

        return recorded

    return decorate


class record_function:
    """A named range in the profile (torch's ``record_function``): a context manager or a
    decorator; outside a profiler it records nothing. Ranges nest, and the ops inside are its
    children in the event tree."""

    def __init__(self, name: str, args: str | None = None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"record_function: name must be a str, got {type(name).__name__}")
        self.name = name
        self.args = args
        self._recorder = None
        self._event = None

    def __enter__(self):
        recorder = _function.active_profiler
        if recorder is not None and recorder._recording:
            self._recorder = recorder
            self._event = recorder.begin(self.name, user_annotation=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._event is not None:
            self._recorder.end(self._event)
            self._event = self._recorder = None

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with record_function(self.name, self.args):
                return fn(*args, **kwargs)
        return wrapper


class profile:
    """torch's legacy ``torch.autograd.profiler.profile``: record every op run inside the block.

    >>> with profile(record_shapes=True) as prof:
    ...     y = model(x)
    >>> print(prof.key_averages().table(sort_by="self_cpu_time_total"))

    ``use_cuda=True`` (or ``use_device="cuda"``) synchronizes the device around each op whose
    inputs are on it, so the op's range covers its kernels; its time is also reported in the
    device columns. ``with_flops`` and ``with_modules`` are accepted and add nothing.
    """

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False, use_device: str | None = None,
                 record_shapes: bool = False, with_flops: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_modules: bool = False, use_kineto: bool = False,
                 use_cpu: bool = True, experimental_config=None, acc_events: bool = False,
                 custom_trace_id_callback=None) -> None:
        if use_device is not None and use_device != "cuda":
            raise ValueError(f"profile: use_device must be None or 'cuda', got {use_device!r}")
        self.enabled = enabled
        self.use_device = "cuda" if use_cuda else use_device
        self.record_shapes = record_shapes
        self.with_flops = with_flops
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.with_modules = with_modules
        self.acc_events = acc_events
        self.function_events = None
        self._recorder = None
        self.entered = False

    def __enter__(self):
        if not self.enabled:
            return self
        if self.entered:
            raise RuntimeError("Profiler context manager is not reentrant")
        self.entered = True
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        self._stop()

    def _start(self) -> None:
        self._recorder = Recorder(record_shapes=self.record_shapes, profile_memory=self.profile_memory,
                                  with_stack=self.with_stack, use_device=self.use_device)
        self._recorder.start()

    def _stop(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        events = recorder.stop()
        if self.acc_events and self.function_events is not None:
            events = EventList(list(self.function_events) + list(events), use_device=self.use_device,
                               profile_memory=self.profile_memory)
        self.function_events = events

    def _check_finished(self) -> None:
        if self.function_events is None:
            raise RuntimeError("Profiler didn't finish running")

    def __repr__(self) -> str:
        if self.function_events is None:
            return "<unfinished torch.autograd.profile>"
        return repr(self.function_events)

    def __str__(self) -> str:
        if self.function_events is None:
            return "<unfinished torch.autograd.profile>"
        return str(self.function_events)

    def table(self, sort_by=None, row_limit=100, max_src_column_width=75, max_name_column_width=55,
              max_shapes_column_width=80, header=None, top_level_events_only=False, time_unit=None) -> str:
        self._check_finished()
        return self.function_events.table(
            sort_by=sort_by, row_limit=row_limit, max_src_column_width=max_src_column_width,
            max_name_column_width=max_name_column_width, max_shapes_column_width=max_shapes_column_width,
            header=header, top_level_events_only=top_level_events_only, time_unit=time_unit)

    table.__doc__ = EventList.table.__doc__

    def export_chrome_trace(self, path) -> None:
        self._check_finished()
        self.function_events.export_chrome_trace(path)

    export_chrome_trace.__doc__ = EventList.export_chrome_trace.__doc__

    def export_stacks(self, path, metric: str = "self_cpu_time_total") -> None:
        self._check_finished()
        if not self.with_stack:
            raise RuntimeError("export_stacks() requires with_stack=True")
        self.function_events.export_stacks(path, metric)

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0,
                     group_by_overload_name: bool = False) -> EventList:
        self._check_finished()
        return self.function_events.key_averages(group_by_input_shape, group_by_stack_n)

    key_averages.__doc__ = EventList.key_averages.__doc__

    def total_average(self):
        self._check_finished()
        return self.function_events.total_average()

    @property
    def self_cpu_time_total(self) -> float:
        """The profiled CPU time (µs): every event's self time, summed."""
        self._check_finished()
        return self.function_events.self_cpu_time_total


class emit_nvtx:
    """torch's ``emit_nvtx``: accepted so scripts run; chainrule has no NVTX ranges to emit, so it
    records nothing (use ``profile`` for chainrule's timings)."""

    def __init__(self, enabled: bool = True, record_shapes: bool = False) -> None:
        self.enabled = enabled
        self.record_shapes = record_shapes

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None
