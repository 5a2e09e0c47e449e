"""What a profiler recorded, and its summaries: torch's ``torch.autograd.profiler_util``.

A ``FunctionEvent`` is one timed range on one thread (an op, a backward node's evaluation, a
``record_function`` block); its ``cpu_children`` are the ranges that ran inside it on the same
thread, so its self time is its total time less theirs. An ``EventList`` holds the events of one
profiling run and makes the summaries users read: ``key_averages()`` (one ``FunctionEventAvg``
per name, optionally per input shapes or call site), ``table()`` (torch's columns and number
formats) and ``export_chrome_trace()`` (the JSON that chrome://tracing and Perfetto open).

Times are in microseconds, as torch's. Memory is the bytes of the arrays an op allocated for its
outputs (``profile_memory=True``); frees are not seen, so, unlike torch's, the numbers are never
negative.
"""

from __future__ import annotations

import os

__all__ = ["FunctionEvent", "FunctionEventAvg", "EventList"]

# the sort keys ``table`` accepts (torch's names; its "cuda_*" spellings mean "device_*")
SORT_KEYS = ("cpu_time", "cpu_time_total", "self_cpu_time_total", "device_time", "device_time_total",
             "self_device_time_total", "cpu_memory_usage", "self_cpu_memory_usage",
             "device_memory_usage", "self_device_memory_usage", "count")

# key_averages groups every ``ProfilerStep#N`` range under one row, as torch does
_STEP_PREFIX = "ProfilerStep#"


class FunctionEvent:
    """One recorded range: ``name``, thread, start and end (µs), and what ran inside it."""

    __slots__ = ("id", "name", "thread", "start_us", "end_us", "input_shapes", "stack",
                 "cpu_parent", "cpu_children", "cpu_memory_usage", "self_cpu_memory_usage",
                 "device_memory_usage", "self_device_memory_usage", "device_time_total",
                 "self_device_time_total", "is_user_annotation")

    count = 1
    sequence_nr = -1  # torch's forward/backward pairing number; chainrule's events carry none
    is_async = False
    is_remote = False
    is_legacy = False
    node_id = -1
    overload_name = ""
    flops = 0
    scope = 0

    def __init__(self, id: int, name: str, thread: int, start_us: float, end_us: float = 0.0, *,
                 input_shapes: list | None = None, stack: list | None = None,
                 is_user_annotation: bool = False) -> None:
        self.id = id
        self.name = name
        self.thread = thread
        self.start_us = start_us
        self.end_us = end_us
        self.input_shapes = input_shapes if input_shapes is not None else []
        self.stack = stack if stack is not None else []
        self.cpu_parent = None
        self.cpu_children = []
        self.cpu_memory_usage = 0
        self.self_cpu_memory_usage = 0
        self.device_memory_usage = 0
        self.self_device_memory_usage = 0
        self.device_time_total = 0.0
        self.self_device_time_total = 0.0
        self.is_user_annotation = is_user_annotation

    @property
    def key(self) -> str:
        return self.name

    @property
    def cpu_time_total(self) -> float:
        return self.end_us - self.start_us

    @property
    def self_cpu_time_total(self) -> float:
        return self.cpu_time_total - sum(child.cpu_time_total for child in self.cpu_children)

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total

    @property
    def device_time(self) -> float:
        return self.device_time_total

    # torch's older spellings of the device columns
    cuda_time_total = property(lambda self: self.device_time_total)
    self_cuda_time_total = property(lambda self: self.self_device_time_total)

    @property
    def device_type(self) -> str:
        return "CPU"

    def __repr__(self) -> str:
        return (f"<FunctionEvent id={self.id} name={self.name} thread={self.thread} "
                f"cpu_time_total={self.cpu_time_total:.3f}us self_cpu_time_total="
                f"{self.self_cpu_time_total:.3f}us input_shapes={self.input_shapes} "
                f"cpu_memory_usage={self.cpu_memory_usage}>")


class FunctionEventAvg:
    """The events sharing one key, summed: torch's row of ``key_averages()``."""

    is_async = False
    is_remote = False
    is_legacy = False
    node_id = -1
    overload_name = ""
    flops = 0
    scope = 0
    device_type = "CPU"

    def __init__(self) -> None:
        self.key = None
        self.count = 0
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0
        self.device_time_total = 0.0
        self.self_device_time_total = 0.0
        self.cpu_memory_usage = 0
        self.self_cpu_memory_usage = 0
        self.device_memory_usage = 0
        self.self_device_memory_usage = 0
        self.input_shapes = None
        self.stack = None
        self.cpu_parent = None
        self.is_user_annotation = False

    def add(self, other) -> FunctionEventAvg:
        """Sum ``other`` (an event or an average) into this row; the first one names it."""
        if self.key is None:
            self.key = other.key
            self.input_shapes = other.input_shapes
            self.stack = other.stack
            self.cpu_parent = other.cpu_parent
            self.is_user_annotation = other.is_user_annotation
        self.count += other.count
        self.cpu_time_total += other.cpu_time_total
        self.self_cpu_time_total += other.self_cpu_time_total
        self.device_time_total += other.device_time_total
        self.self_device_time_total += other.self_device_time_total
        self.cpu_memory_usage += other.cpu_memory_usage
        self.self_cpu_memory_usage += other.self_cpu_memory_usage
        self.device_memory_usage += other.device_memory_usage
        self.self_device_memory_usage += other.self_device_memory_usage
        return self

    __iadd__ = add

    @property
    def cpu_time(self) -> float:
        return 0.0 if self.count == 0 else self.cpu_time_total / self.count

    @property
    def device_time(self) -> float:
        return 0.0 if self.count == 0 else self.device_time_total / self.count

    cuda_time_total = property(lambda self: self.device_time_total)
    self_cuda_time_total = property(lambda self: self.self_device_time_total)
    cuda_time = property(lambda self: self.device_time)

    def __repr__(self) -> str:
        return (f"<FunctionEventAvg key={self.key} count={self.count} self_cpu_time="
                f"{format_time(self.self_cpu_time_total)} cpu_time={format_time(self.cpu_time)} "
                f"input_shapes={self.input_shapes} cpu_memory_usage={self.cpu_memory_usage}>")


class EventList(list):
    """A profiling run's events (or averages), with torch's summary methods."""

    def __init__(self, events=(), *, use_device: str | None = None, profile_memory: bool = False,
                 with_flops: bool = False) -> None:
        super().__init__(events)
        self._use_device = use_device
        self._profile_memory = profile_memory
        self._with_flops = with_flops

    @property
    def self_cpu_time_total(self) -> float:
        """The summed self time of every event: the profiled CPU time, each µs counted once."""
        return sum(event.self_cpu_time_total for event in self)

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0,
                     group_by_overload_name: bool = False) -> EventList:
        """One ``FunctionEventAvg`` per name (and per input shapes / the ``group_by_stack_n``
        innermost call-site frames when asked), in order of first appearance.
        ``group_by_overload_name`` is accepted: chainrule's ops have no overloads."""
        rows: dict = {}
        for event in self:
            name = event.key
            if name.startswith(_STEP_PREFIX):
                name = "ProfilerStep*"
            key = (name,
                   str(event.input_shapes) if group_by_input_shape else None,
                   tuple(event.stack[:group_by_stack_n]) if group_by_stack_n > 0 else None)
            row = rows.get(key)
            if row is None:
                row = rows[key] = FunctionEventAvg()
                row.key = name
                # a row shows shapes and call sites only when they are part of its key (as torch's)
                row.input_shapes = event.input_shapes if group_by_input_shape else ""
                row.stack = event.stack[:group_by_stack_n]
                row.cpu_parent = event.cpu_parent
                row.is_user_annotation = event.is_user_annotation
            row.add(event)
        return EventList(rows.values(), use_device=self._use_device,
                         profile_memory=self._profile_memory, with_flops=self._with_flops)

    def total_average(self) -> FunctionEventAvg:
        """Every event summed into one row, keyed "Total"."""
        total = FunctionEventAvg()
        for event in self:
            total.add(event)
        total.key = "Total"
        return total

    def table(self, sort_by: str | None = None, row_limit: int = 100, max_src_column_width: int = 75,
              max_name_column_width: int = 55, max_shapes_column_width: int = 80, header: str | None = None,
              top_level_events_only: bool = False, time_unit: str | None = None) -> str:
        """The summary torch prints: a row per event (sorted descending by ``sort_by``), torch's
        columns, and the total self CPU time under it."""
        return build_table(self, sort_by=sort_by, row_limit=row_limit, header=header,
                           max_src_column_width=max_src_column_width,
                           max_name_column_width=max_name_column_width,
                           max_shapes_column_width=max_shapes_column_width,
                           profile_memory=self._profile_memory, use_device=self._use_device,
                           top_level_events_only=top_level_events_only, time_unit=time_unit)

    def __str__(self) -> str:
        return self.table()

    def export_chrome_trace(self, path) -> None:
        """Write the events as a Chrome trace (chrome://tracing, Perfetto): one complete ("X")
        event per range, on its thread's row. Written to a temporary file in the same folder and
        renamed over ``path``, so a reader never sees half a trace; gzip-compressed when ``path``
        ends in ``.gz``."""
        import json  # (imported here, on the first export: not on import chainrule)

        data = json.dumps(chrome_trace(self)).encode()
        if os.fspath(path).endswith(".gz"):
            import gzip

            data = gzip.compress(data)
        write_atomically(path, data)

    def export_stacks(self, path, metric: str = "self_cpu_time_total") -> None:
        """Write ``frame;frame;...;op value`` lines (flamegraph.pl's input), one per event that
        has a recorded call site (``with_stack=True``); the value is ``metric`` in µs."""
        if metric not in ("self_cpu_time_total", "self_device_time_total", "self_cuda_time_total"):
            raise ValueError(f"export_stacks: metric must be 'self_cpu_time_total' or "
                             f"'self_device_time_total', got {metric!r}")
        lines = []
        for event in self:
            if event.stack:
                frames = ";".join(reversed(event.stack))
                lines.append(f"{frames};{event.name} {int(getattr(event, metric))}\n")
        write_atomically(path, "".join(lines).encode())


def chrome_trace(events) -> dict:
    """The Chrome trace JSON object of ``events`` (``FunctionEvent``s)."""
    pid = os.getpid()
    trace = []
    for thread in sorted({event.thread for event in events}):
        trace.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": thread,
                      "args": {"name": f"thread {thread}"}})
    for event in events:
        args = {"External id": event.id}
        if event.input_shapes:
            args["Input Dims"] = event.input_shapes
        if event.cpu_memory_usage:
            args["Allocated bytes"] = event.cpu_memory_usage
        if event.stack:
            args["Call stack"] = ";".join(event.stack)
        trace.append({"ph": "X", "cat": "user_annotation" if event.is_user_annotation else "cpu_op",
                      "name": event.name, "pid": pid, "tid": event.thread,
                      "ts": round(event.start_us, 3), "dur": round(event.cpu_time_total, 3),
                      "args": args})
    return {"schemaVersion": 1, "displayTimeUnit": "ms", "traceEvents": trace}


def write_atomically(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in its folder and a rename."""
    import tempfile

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def format_time(time_us: float) -> str:
    """µs as torch prints them: ``12.345us``, ``1.234ms``, ``1.234s``."""
    if time_us >= 1e6:
        return f"{time_us / 1e6:.3f}s"
    if time_us >= 1e3:
        return f"{time_us / 1e3:.3f}ms"
    return f"{time_us:.3f}us"


def _format_time_in(time_us: float, time_unit: str | None) -> str:
    if time_unit == "s":
        return f"{time_us / 1e6:.3f}s"
    if time_unit == "ms":
        return f"{time_us / 1e3:.3f}ms"
    if time_unit == "us":
        return f"{time_us:.3f}us"
    return format_time(time_us)


def format_share(time_us: float, total_us: float) -> str:
    return "NaN" if total_us == 0 else f"{time_us * 100.0 / total_us:.2f}%"


def format_memory(nbytes: int) -> str:
    """Bytes as torch prints them: ``512 B``, ``1.50 KB``, ``2.00 MB``, ``1.00 GB``."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if abs(nbytes) >= size:
            return f"{nbytes / size:.2f} {unit}"
    return f"{nbytes} B"


_COLUMN = 12  # torch's width of every numeric column
_GAP = 2


def build_table(events, *, sort_by=None, row_limit=100, header=None, max_src_column_width=75,
                max_name_column_width=55, max_shapes_column_width=80, profile_memory=False,
                use_device=None, top_level_events_only=False, time_unit=None) -> str:
    """torch's profiler table: the same columns, widths, number formats and footer."""
    if not events:
        return ""
    if sort_by is not None:
        attribute = sort_by.replace("cuda", "device")
        if attribute not in SORT_KEYS:
            raise AttributeError(f"table: cannot sort by {sort_by!r}; the sort keys are "
                                 f"{', '.join(SORT_KEYS)}")
        events = sorted(events, key=lambda event: getattr(event, attribute), reverse=True)
    has_device_time = use_device is not None and any(e.self_device_time_total > 0 for e in events)
    has_shapes = any(e.input_shapes for e in events)
    has_stack = any(e.stack for e in events)
    has_device_memory = (profile_memory and use_device is not None
                         and any(e.self_device_memory_usage > 0 for e in events))
    device = (use_device or "").upper()

    name_width = max(len(e.key) for e in events) + 4
    if max_name_column_width is not None:
        name_width = min(name_width, max_name_column_width)
    columns = [("Name", name_width, ">")]
    numeric = ["Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
    if has_device_time:
        numeric += [f"Self {device}", f"Self {device} %", f"{device} total", f"{device} time avg"]
    if profile_memory:
        numeric += ["CPU Mem", "Self CPU Mem"]
        if has_device_memory:
            numeric += [f"{device} Mem", f"Self {device} Mem"]
    numeric.append("# of Calls")
    columns += [(title, _COLUMN, ">") for title in numeric]
    if has_shapes:
        shapes_width = max(len(str(e.input_shapes)) for e in events) + 4
        if max_shapes_column_width is not None:
            shapes_width = min(shapes_width, max_shapes_column_width)
        columns.append(("Input Shapes", shapes_width, ">"))
    if has_stack:
        src_width = max(len(frame) for e in events for frame in e.stack) + 4
        if max_src_column_width is not None:
            src_width = min(src_width, max_src_column_width)
        columns.append(("Source Location", src_width, "<"))

    row_format = "".join("{: " + align + str(width) + "}" + " " * _GAP for _, width, align in columns)
    separator = "".join("-" * width + " " * _GAP for _, width, _ in columns)
    line_length = sum(width + _GAP for _, width, _ in columns) - _GAP

    self_cpu_total = sum(e.self_cpu_time_total for e in events)
    self_device_total = sum(e.self_device_time_total for e in events)
    lines = []
    if header is not None:
        lines += ["=" * line_length, header]
    if top_level_events_only:
        lines += ["=" * line_length, "This report only display top-level ops statistics"]
    lines += [separator, row_format.format(*(title for title, _, _ in columns)), separator]

    def trim_source(frame: str) -> str:
        if len(frame) > src_width:
            frame = "..." + frame[len(frame) - src_width + 3:]
        return frame

    shown = 0
    for event in events:
        if shown == row_limit:
            break
        if top_level_events_only and event.cpu_parent is not None:
            continue
        shown += 1
        name = event.key
        if max_name_column_width is not None and len(name) >= max_name_column_width - 3:
            name = name[:max_name_column_width - 3] + "..."
        row = [name, format_share(event.self_cpu_time_total, self_cpu_total),
               _format_time_in(event.self_cpu_time_total, time_unit),
               format_share(event.cpu_time_total, self_cpu_total),
               _format_time_in(event.cpu_time_total, time_unit),
               _format_time_in(event.cpu_time, time_unit)]
        if has_device_time:
            row += [_format_time_in(event.self_device_time_total, time_unit),
                    format_share(event.self_device_time_total, self_device_total),
                    _format_time_in(event.device_time_total, time_unit),
                    _format_time_in(event.device_time, time_unit)]
        if profile_memory:
            row += [format_memory(event.cpu_memory_usage), format_memory(event.self_cpu_memory_usage)]
            if has_device_memory:
                row += [format_memory(event.device_memory_usage),
                        format_memory(event.self_device_memory_usage)]
        row.append(event.count)
        if has_shapes:
            row.append(str(event.input_shapes)[:shapes_width])
        if has_stack:
            row.append(trim_source(event.stack[0]) if event.stack else "")
        lines.append(row_format.format(*row))
        if has_stack:
            blanks = [""] * (len(columns) - 1)
            lines += [row_format.format(*blanks, trim_source(frame)) for frame in event.stack[1:]]
            lines.append(row_format.format(*blanks, ""))
    lines += [separator, f"Self CPU time total: {_format_time_in(self_cpu_total, time_unit)}"]
    if has_device_time:
        lines.append(f"Self {device} time total: {_format_time_in(self_device_total, time_unit)}")
    return "".join(line + "\n" for line in lines)
