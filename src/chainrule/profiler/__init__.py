"""torch.profiler: where the time goes, op by op.

>>> from chainrule.profiler import profile, record_function, ProfilerActivity, schedule
>>> with profile(activities=[ProfilerActivity.CPU], record_shapes=True,
...              schedule=schedule(wait=1, warmup=1, active=2), on_trace_ready=handler) as prof:
...     for batch in loader:
...         with record_function("train_step"):
...             train_step(batch)
...         prof.step()
>>> print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))

Ops are named like torch's (``aten::mm``, ``aten::add``), backward nodes as torch's engine names
them (``autograd::engine::evaluate_function: MmBackward0``), user ``Function``s by their class
name and ``record_function`` ranges by theirs; ``prof.step()`` opens a ``ProfilerStep#N`` range
when a schedule is given. See docs/profiling.md for what is and is not recorded.
"""

from __future__ import annotations

import enum
import os
import warnings

from ..autograd.profiler import Recorder, record_function
from ..autograd.profiler_util import EventList

__all__ = ["profile", "kineto_available", "record_function", "ProfilerActivity", "ProfilerAction", "schedule",
           "tensorboard_trace_handler", "supported_activities", "EventList"]


class ProfilerActivity(enum.Enum):
    """What to record: ``CPU`` (every op's range) and ``CUDA`` (device ops synchronized, so their
    ranges cover their kernels, reported in the device columns too)."""

    CPU = 0
    XPU = 1
    MTIA = 2
    CUDA = 3
    HPU = 4
    PrivateUse1 = 5


def supported_activities() -> set:
    """The activities this build can record: CPU always, CUDA when a CUDA array module is there."""
    from .._backend import cuda_available

    return {ProfilerActivity.CPU, ProfilerActivity.CUDA} if cuda_available() else {ProfilerActivity.CPU}


def kineto_available() -> bool:
    """Whether torch was built with Kineto, its tracing library: chainrule's profiler records in Python and
    has no Kineto, so False (libraries then take their non-Kineto path)."""
    return False


class ProfilerAction(enum.Enum):
    """What the profiler does during a step, as a ``schedule`` returns it."""

    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0,
             skip_first_wait: int = 0):
    """torch.profiler.schedule: skip ``skip_first`` steps, then cycle through ``wait`` idle
    steps, ``warmup`` steps and ``active`` recorded steps, ``repeat`` times (0: until the
    profiler stops). The last active step of a cycle returns ``RECORD_AND_SAVE``: the profiler
    then hands the cycle's events to ``on_trace_ready``. ``skip_first_wait`` skips the first
    cycle's ``wait``."""
    for name, value, least in (("wait", wait, 0), ("warmup", warmup, 0), ("active", active, 1),
                               ("repeat", repeat, 0), ("skip_first", skip_first, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            # torch raises AssertionError for these, and scripts may catch that type
            raise AssertionError(f"schedule: {name} must be an int >= {least}, got {value!r} "
                             f"(wait={wait}, warmup={warmup}, active={active}, repeat={repeat}, "
                             f"skip_first={skip_first})")
    if warmup == 0:
        warnings.warn("Profiler won't be using warmup, this can skew profiler results", stacklevel=2)
    cycle = wait + warmup + active

    def action_at(step: int) -> ProfilerAction:
        if step < 0:
            raise AssertionError(f"schedule: step must be non-negative, got {step}")
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait:
            step += wait
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        position = step % cycle
        if position < wait:
            return ProfilerAction.NONE
        if position < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if position < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return action_at


def _always_record(step: int) -> ProfilerAction:
    return ProfilerAction.RECORD


_RECORDING = (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)


def tensorboard_trace_handler(dir_name, worker_name: str | None = None, use_gzip: bool = False,
                              use_python_export: bool = False):
    """An ``on_trace_ready`` that writes each cycle's Chrome trace into ``dir_name`` as
    ``{worker_name}.{time_ns}.pt.trace.json`` (``.gz`` with ``use_gzip``), the files TensorBoard's
    profiler plugin reads. ``worker_name`` defaults to ``{hostname}_{pid}``."""
    import socket
    import time

    def handler(prof) -> None:
        try:
            os.makedirs(dir_name, exist_ok=True)
        except OSError as error:
            raise RuntimeError(f"tensorboard_trace_handler: can't create directory {dir_name!r}: "
                               f"{error}") from error
        name = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        file_name = f"{name}.{time.time_ns()}.pt.trace.json" + (".gz" if use_gzip else "")
        prof.export_chrome_trace(os.path.join(dir_name, file_name))

    return handler


class profile:
    """torch.profiler.profile: records ops, backward nodes and ``record_function`` ranges.

    Without ``schedule`` it records from ``start()`` (or ``__enter__``) to ``stop()``; with one,
    ``prof.step()`` marks each training step's end and the schedule says which steps are recorded;
    each finished cycle is handed to ``on_trace_ready``, and ``key_averages()``/``events()`` are
    the last finished cycle's. Profiling stops cleanly when the block raises.
    ``with_flops``, ``with_modules`` and ``experimental_config`` are accepted and add nothing.
    """

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None, record_shapes: bool = False,
                 profile_memory: bool = False, with_stack: bool = False, with_flops: bool = False,
                 with_modules: bool = False, experimental_config=None, execution_trace_observer=None,
                 acc_events: bool = False, use_cuda: bool | None = None, custom_trace_id_callback=None) -> None:
        activities = set(activities) if activities is not None else supported_activities()
        for activity in activities:
            if not isinstance(activity, ProfilerActivity):
                raise TypeError(f"profile: activities must be ProfilerActivity values, got "
                                f"{type(activity).__name__} {activity!r}")
        if use_cuda:
            warnings.warn("The use_cuda parameter is deprecated; use activities=[ProfilerActivity.CUDA]",
                          FutureWarning, stacklevel=2)
            activities.add(ProfilerActivity.CUDA)
        if schedule is not None and not callable(schedule):
            raise TypeError(f"profile: schedule must be callable (step -> ProfilerAction), got "
                            f"{type(schedule).__name__}")
        if on_trace_ready is not None and not callable(on_trace_ready):
            raise TypeError(f"profile: on_trace_ready must be callable, got {type(on_trace_ready).__name__}")
        self.activities = activities
        self.schedule = schedule if schedule is not None else _always_record
        self.record_steps = schedule is not None
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.with_flops = with_flops
        self.with_modules = with_modules
        self.acc_events = acc_events
        self.use_device = "cuda" if ProfilerActivity.CUDA in activities else None
        self.step_num = 0
        self.current_action = self.schedule(0)
        self._recorder = None
        self._events = None
        self._step_range = None

    # -- the context manager and the step protocol ----------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if self.current_action in _RECORDING:
            self._start_recording()
        self._open_step_range()

    def stop(self) -> None:
        """End profiling: a cycle being recorded is finished and handed to ``on_trace_ready``."""
        self._close_step_range()
        if self._recorder is not None:
            self._stop_recording()
            self._trace_ready()

    def step(self) -> None:
        """The current step ended: the schedule decides whether the next one is recorded."""
        self._close_step_range()
        previous = self.current_action
        self.step_num += 1
        self.current_action = self.schedule(self.step_num)
        if not isinstance(self.current_action, ProfilerAction):
            raise TypeError(f"profile.step: the schedule returned {self.current_action!r} for step "
                            f"{self.step_num}; expected a ProfilerAction")
        if previous is ProfilerAction.RECORD_AND_SAVE:  # a cycle ended: hand it over
            self._stop_recording()
            self._trace_ready()
        elif previous is ProfilerAction.RECORD and self.current_action not in _RECORDING:
            # a schedule that stops mid-cycle: the events are kept but no cycle ended (as torch)
            warnings.warn(f"Incorrect schedule: RECORD followed by {self.current_action.name}", stacklevel=2)
            self._stop_recording()
        if self.current_action in _RECORDING and self._recorder is None:
            self._start_recording()
        self._open_step_range()

    # -- results ------------------------------------------------------------------------
    def events(self) -> EventList:
        """The events of the last finished recording."""
        if self._events is None:
            raise RuntimeError("profiler: no events yet; results are ready after stop() or at the "
                               "end of a recorded schedule cycle")
        return self._events

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0,
                     group_by_overload_name: bool = False) -> EventList:
        return self.events().key_averages(group_by_input_shape, group_by_stack_n)

    key_averages.__doc__ = EventList.key_averages.__doc__

    def export_chrome_trace(self, path) -> None:
        self.events().export_chrome_trace(path)

    export_chrome_trace.__doc__ = EventList.export_chrome_trace.__doc__

    def export_stacks(self, path, metric: str = "self_cpu_time_total") -> None:
        if not self.with_stack:
            raise RuntimeError("export_stacks() requires with_stack=True")
        self.events().export_stacks(path, metric)

    export_stacks.__doc__ = EventList.export_stacks.__doc__

    # -- internals ------------------------------------------------------------------------
    def _start_recording(self) -> None:
        self._recorder = Recorder(record_shapes=self.record_shapes, profile_memory=self.profile_memory,
                                  with_stack=self.with_stack, use_device=self.use_device)
        self._recorder.start()

    def _stop_recording(self) -> None:
        recorder, self._recorder = self._recorder, None
        events = recorder.stop()
        if self.acc_events and self._events is not None:
            events = EventList(list(self._events) + list(events), use_device=self.use_device,
                               profile_memory=self.profile_memory)
        self._events = events

    def _trace_ready(self) -> None:
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def _open_step_range(self) -> None:
        if self.record_steps and self._recorder is not None:
            self._step_range = record_function(f"ProfilerStep#{self.step_num}")
            self._step_range.__enter__()

    def _close_step_range(self) -> None:
        if self._step_range is not None:
            self._step_range.__exit__(None, None, None)
            self._step_range = None
