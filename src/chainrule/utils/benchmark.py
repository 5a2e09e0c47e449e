"""chainrule.utils.benchmark: ``Timer``, ``Measurement`` and ``Compare``, as torch.utils.benchmark.

Tutorials and scripts time their code with ``Timer(stmt="f(x)", globals=globals()).timeit(100)``
or ``.blocked_autorange()`` and print the ``Measurement``, or lay several out side by side with
``Compare(measurements).print()`` (torch's table); the timing loop is ``timeit.Timer``'s,
as in torch, with torch's warm-up, block sizing, statistics and printed form. ``num_threads``
limits NumPy's BLAS pool while timing when threadpoolctl is installed (``chainrule[threads]``);
without it the pool is left as it is. On a GPU each reading waits for the device first, so it
times the work and not only its launch.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import enum
import math
import statistics
import textwrap
import timeit as _timeit
from typing import Any

__all__ = ["Timer", "Measurement", "TaskSpec", "Language", "Compare", "Colorize", "select_unit"]

# torch's thresholds for the warning a Measurement prints when its spread is large
_IQR_WARN_THRESHOLD = 0.1
_IQR_GROSS_WARN_THRESHOLD = 0.25
# torch's bounds for the precision a Compare table shows: at most 4 figures, and no confidence
# interval narrower than 25 ns (the timer's own resolution)
_MAX_SIGNIFICANT_FIGURES = 4
_MIN_CONFIDENCE_INTERVAL = 25e-9


class Language(enum.Enum):
    """What a Timer's statement is written in; chainrule has no C++ frontend, so only PYTHON runs."""

    PYTHON = 0
    CPP = 1


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What a Timer times (everything but its globals), shown in a Measurement's heading."""

    stmt: str
    setup: str
    global_setup: str = ""
    label: str | None = None
    sub_label: str | None = None
    description: str | None = None
    env: str | None = None
    num_threads: int = 1

    @property
    def title(self) -> str:
        suffix = f": {self.sub_label}" if self.sub_label else ""
        if self.label is not None:
            return self.label + suffix
        if "\n" not in self.stmt:
            return self.stmt + suffix
        return f"stmt:{f' ({self.sub_label})' if self.sub_label else ''}\n{textwrap.indent(self.stmt, '  ')}"

    def setup_str(self) -> str:
        if self.setup in ("", "pass"):
            return ""
        return f"setup:\n{textwrap.indent(self.setup, '  ')}" if "\n" in self.setup else f"setup: {self.setup}"

    def summarize(self) -> str:
        sections = [self.title, self.description or "", self.setup_str()]
        return "\n".join(f"{section}\n" if "\n" in section else section for section in sections if section)


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation quantile of sorted values (torch.quantile's default)."""
    position = q * (len(sorted_values) - 1)
    below = int(position)
    above = min(below + 1, len(sorted_values) - 1)
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * (position - below)


def select_unit(t: float) -> tuple[str, float]:
    """The unit that shows ``t`` seconds with an O(1) number, and its scale."""
    unit = {-3: "ns", -2: "us", -1: "ms"}.get(int(math.log10(t) // 3), "s")
    return unit, {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


@dataclasses.dataclass(repr=False)
class Measurement:
    """The result of timing: ``raw_times`` are seconds per block of ``number_per_run`` runs."""

    number_per_run: int
    raw_times: list[float]
    task_spec: TaskSpec
    metadata: dict[Any, Any] | None = None

    @property
    def times(self) -> list[float]:
        """Seconds per single run, one per block."""
        return [t / self.number_per_run for t in self.raw_times]

    def _sorted(self) -> list[float]:
        return sorted(self.times)

    @property
    def median(self) -> float:
        return _quantile(self._sorted(), 0.5)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)

    @property
    def iqr(self) -> float:
        values = self._sorted()
        return _quantile(values, 0.75) - _quantile(values, 0.25)

    def meets_confidence(self, threshold: float = _IQR_WARN_THRESHOLD) -> bool:
        return self.iqr / self.median < threshold

    @property
    def has_warnings(self) -> bool:
        return bool(self._warnings())

    def _warnings(self) -> list[str]:
        if self.meets_confidence(_IQR_WARN_THRESHOLD):
            return []
        reason = ("This suggests significant environmental influence."
                  if not self.meets_confidence(_IQR_GROSS_WARN_THRESHOLD) else "This could indicate system fluctuation.")
        return [f"  WARNING: Interquartile range is {self.iqr / self.median * 100:.1f}% "
                f"of the median measurement.\n           {reason}"]

    @property
    def title(self) -> str:
        return self.task_spec.title

    @property
    def as_row_name(self) -> str:
        """The name of this measurement's row in a Compare table."""
        return self.task_spec.sub_label or self.task_spec.stmt or "[Unknown]"

    @property
    def significant_figures(self) -> int:
        """How many figures of the median the spread supports (torch's rough estimate, for Compare):
        the 90% confidence interval of the middle half of the times, as a power of ten below the
        median, between 1 and 4."""
        values = self._sorted()
        middle = values[len(values) // 4:math.ceil(3 * len(values) / 4)]
        spread = statistics.pstdev(middle) if len(middle) > 1 else 0.0
        interval = max(1.645 * spread / math.sqrt(len(middle)), _MIN_CONFIDENCE_INTERVAL)
        figures = math.floor(math.log10(self.median / interval))
        return min(max(figures, 1), _MAX_SIGNIFICANT_FIGURES)

    @staticmethod
    def merge(measurements) -> list[Measurement]:
        """One Measurement per TaskSpec, pooling the per-run times of repeats (``number_per_run`` 1)."""
        pooled: dict[TaskSpec, list[float]] = collections.defaultdict(list)
        for measurement in measurements:
            pooled[measurement.task_spec].extend(measurement.times)
        return [Measurement(number_per_run=1, raw_times=times, task_spec=spec) for spec, times in pooled.items()]

    def __getattr__(self, name: str):
        # torch's Measurement answers the TaskSpec's fields (m.stmt, m.label, m.num_threads, ...)
        if name in _TASK_SPEC_FIELDS:
            return getattr(self.task_spec, name)
        raise AttributeError(f"'Measurement' object has no attribute '{name}'")

    def __repr__(self) -> str:
        values = self._sorted()
        n = len(values)
        median = _quantile(values, 0.5)
        unit, scale = select_unit(median)
        lines = [object.__repr__(self), self.task_spec.summarize(),
                 f"  {'Median: ' if n > 1 else ''}{median / scale:.2f} {unit}"]
        if n >= 4:
            p25, p75 = _quantile(values, 0.25), _quantile(values, 0.75)
            lines.append(f"  IQR:    {(p75 - p25) / scale:.2f} {unit} ({p25 / scale:.2f} to {p75 / scale:.2f})")
        lines.append(f"  {n} measurement{'s' if n > 1 else ''}, {self.number_per_run} runs "
                     f"{'per measurement,' if n > 1 else ','} {self.num_threads} thread{'s' if self.num_threads > 1 else ''}")
        lines.extend(self._warnings())
        return "\n".join(lines)


_TASK_SPEC_FIELDS = frozenset(field.name for field in dataclasses.fields(TaskSpec))


@contextlib.contextmanager
def _threads(num_threads: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=num_threads, user_api="blas"):
        yield


def _default_timer():
    """timeit's clock, after waiting for the GPU when there is one (its work is asynchronous)."""
    from .. import cuda

    if cuda.is_available():
        cuda.synchronize()
    return _timeit.default_timer()


def _clean(code: str) -> str:
    code = textwrap.dedent(code)
    return (code[1:] if code.startswith("\n") else code).rstrip()


class Timer:
    """torch.utils.benchmark.Timer: times Python ``stmt`` (a string) run in ``globals``."""

    def __init__(self, stmt: str = "pass", setup: str = "pass", global_setup: str = "", timer=_default_timer,
                 globals: dict[str, Any] | None = None, label: str | None = None, sub_label: str | None = None,
                 description: str | None = None, env: str | None = None, num_threads: int = 1,
                 language: Language | str = Language.PYTHON) -> None:
        if not isinstance(stmt, str):
            raise ValueError("Currently only a `str` stmt is supported.")
        if language in (Language.CPP, "cpp", "c++"):
            raise NotImplementedError("Timer(language=Language.CPP): chainrule has no C++ frontend to time; "
                                      "time the Python statement instead")
        if language not in (Language.PYTHON, "py", "python"):
            raise ValueError(f"Invalid language `{language}`.")
        if global_setup:
            raise ValueError(f"global_setup is C++ only, got `{global_setup}`. Most likely this code can "
                             "simply be moved to `setup`.")
        import chainrule

        namespace = dict(globals or {})
        namespace.setdefault("torch", chainrule)
        stmt, setup = _clean(stmt), _clean(setup)
        self._timer = _timeit.Timer(stmt=stmt, setup=setup, timer=timer, globals=namespace)
        self._task_spec = TaskSpec(stmt=stmt, setup=setup, label=label, sub_label=sub_label,
                                   description=description, env=env, num_threads=num_threads)

    def _time(self, number: int) -> float:
        return max(self._timer.timeit(number), 1e-9)

    def timeit(self, number: int = 1000000) -> Measurement:
        """Run ``stmt`` ``number`` times (after a warm-up of a hundredth of that) as one block."""
        with _threads(self._task_spec.num_threads):
            self._time(max(number // 100, 2))
            return Measurement(number_per_run=number, raw_times=[self._time(number)], task_spec=self._task_spec)

    def repeat(self, repeat: int = -1, number: int = -1):
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def autorange(self, callback=None):
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def _block_size(self, min_run_time: float) -> int:
        """Runs per block: grown tenfold until the timer's own overhead is negligible."""
        overhead = statistics.median(self._time(0) for _ in range(5))
        number = 1
        while True:
            taken = self._time(number)
            if (overhead / taken <= 1e-4 and taken >= min_run_time / 1000) or taken > min_run_time:
                return number
            if number * 10 > 2147483647:
                return number
            number *= 10

    def _loop(self, number: int, min_run_time: float, max_run_time: float | None, callback, enough) -> list[float]:
        times: list[float] = []
        total = 0.0
        while total < min_run_time or not enough(times):
            spent = self._time(number)
            times.append(spent)
            total += spent
            if callback:
                callback(number, spent)
            if max_run_time and total > max_run_time:
                break
        return times

    def blocked_autorange(self, callback=None, min_run_time: float = 0.2) -> Measurement:
        """Blocks of a size that hides the timer's overhead, until ``min_run_time`` seconds are spent."""
        with _threads(self._task_spec.num_threads):
            number = self._block_size(min_run_time)
            times = self._loop(number, min_run_time, None, callback, lambda times: True)
        return Measurement(number_per_run=number, raw_times=times, task_spec=self._task_spec)

    def adaptive_autorange(self, threshold: float = 0.1, *, min_run_time: float = 0.01, max_run_time: float = 10.0,
                           callback=None) -> Measurement:
        """Blocks until their spread (IQR / median) is under ``threshold`` or ``max_run_time`` is spent."""
        with _threads(self._task_spec.num_threads):
            number = self._block_size(min_run_time=0.05)

            def enough(times: list[float]) -> bool:
                if len(times) <= 3:
                    return False
                return Measurement(number, times, self._task_spec).meets_confidence(threshold)

            times = self._loop(number, min_run_time, max_run_time, callback, enough)
        return Measurement(number_per_run=number, raw_times=times, task_spec=self._task_spec)


# ---- Compare: many Measurements in one table per label, as torch prints it ----

_UNIT_NAMES = {"ns": "nanosecond", "us": "microsecond", "ms": "millisecond", "s": "second"}
_BEST, _GOOD, _BAD, _VERY_BAD = "\033[92m", "\033[34m", "\033[2m\033[91m", "\033[31m"
_BOLD, _END = "\033[1m", "\033[0m"


class Colorize(enum.Enum):
    NONE = "none"
    COLUMNWISE = "columnwise"
    ROWWISE = "rowwise"


def _trim_sigfig(x: float, figures: int) -> float:
    """``x`` rounded to ``figures`` significant figures (half to even, as torch.round)."""
    scale = 10.0 ** (math.ceil(math.log10(abs(x))) - figures)
    return round(x / scale) * scale


def _colored(text: str, value: float, best: float) -> str:
    # torch's bands: within 1% (or 100 ns) of the best, within 10%, twice and five times slower
    if value <= best * 1.01 or value <= best + 100e-9:
        return _BEST + _BOLD + text + _END * 2
    if value <= best * 1.1:
        return _GOOD + _BOLD + text + _END * 2
    if value >= best * 5:
        return _VERY_BAD + _BOLD + text + _END * 2
    if value >= best * 2:
        return _BAD + text + _END * 2
    return text


class _NumberColumn:
    """One description's column: a fixed-width number format shared by every row."""

    def __init__(self, cells: list[Measurement | None], scale: float, trim: bool, highlight: bool) -> None:
        present = [m for m in cells if m is not None]
        self.trim = trim
        self.highlight = highlight and any(m.has_warnings for m in present)
        leading = [math.ceil(math.log10(m.median / scale)) for m in present]
        integer_digits = max(leading)
        decimals = min(max(m.significant_figures - digits, 0) for m, digits in zip(present, leading)) if trim else 1
        width = integer_digits + decimals + (1 if decimals else 0)
        self.template = f"{{:>{width}.{decimals}f}}{{:>{7 if self.highlight else 0}}}"

    def cell(self, m: Measurement | None, scale: float) -> str:
        if m is None:
            return " " * len(self.template.format(1.0, ""))
        value = m.median / scale
        if self.trim:
            value = _trim_sigfig(value, m.significant_figures)
        spread = f" (! {m.iqr / m.median * 100:.0f}%)" if self.highlight and m.has_warnings else ""
        return self.template.format(value, spread)


def _render_table(results: list[Measurement], colorize: Colorize, trim: bool, highlight: bool) -> str:
    """One label's table: a row per (threads, env, sub_label or stmt), a column per description."""
    unit, scale = select_unit(min(m.median for m in results))
    row_keys = list(dict.fromkeys((m.num_threads, m.env, m.as_row_name) for m in results))
    row_keys.sort(key=lambda key: key[:2])  # grouped by threads and env, statements in first-seen order
    column_keys = list(dict.fromkeys(m.description for m in results))
    grid: list[list[Measurement | None]] = [[None] * len(column_keys) for _ in row_keys]
    for m in results:
        grid[row_keys.index((m.num_threads, m.env, m.as_row_name))][column_keys.index(m.description)] = m

    envs = {m.env for m in results}
    show_env = len(envs) > 1
    env_width = max(len(env) for env in envs) if show_env else 0
    # a thread count starts a group of rows, under its own separator line
    group_of_row, separator_of_row, env_shown = [], [], []
    group, prior_threads, prior_env = -1, None, ""
    for threads, env, _ in row_keys:
        starts = threads != prior_threads
        if starts:
            group, prior_threads, prior_env = group + 1, threads, ""
        group_of_row.append(group)
        separator_of_row.append(threads if starts else None)
        env_shown.append(show_env and env != prior_env)
        prior_env = env
    columns = [_NumberColumn([row[j] for row in grid], scale, trim, highlight) for j in range(len(column_keys))]

    text_rows = [[""] + column_keys]
    for row, (_, env, name), with_env in zip(grid, row_keys, env_shown):
        label = (f"({env})" if with_env else "").ljust(env_width + 4)
        text_rows.append(["  " + label + name] + [column.cell(m, scale) for column, m in zip(columns, row)])
    widths = [max(len(cell) for cell in column) for column in zip(*text_rows)]
    header = "  |  ".join(cell.center(width) for cell, width in zip(text_rows[0], widths))
    lines = [header]
    for i, (row, cells) in enumerate(zip(grid, text_rows[1:])):
        if separator_of_row[i] is not None:
            lines.append(f"{separator_of_row[i]} threads: ".ljust(len(header), "-"))
        best = [None] * len(row)
        if colorize == Colorize.ROWWISE:
            best = [min(m.median for m in row if m is not None)] * len(row)
        elif colorize == Colorize.COLUMNWISE:
            same_group = [r for r, g in zip(grid, group_of_row) if g == group_of_row[i]]
            best = [min((r[j].median for r in same_group if r[j] is not None), default=None) for j in range(len(row))]
        rendered = [cells[0].ljust(widths[0])]
        for cell, width, m, best_value in zip(cells[1:], widths[1:], row, best):
            cell = cell.center(width)
            if colorize != Colorize.NONE and m is not None and best_value is not None:
                cell = _colored(cell, m.median, best_value)
            rendered.append(cell)
        lines.append("  |  ".join(rendered))

    label = results[0].label
    title = f"[{(' ' + (label or '') + ' ').center(len(header) - 2, '-')}]"
    note = ("(! XX%) Measurement has high variance, where XX is the IQR / median * 100.\n"
            if highlight and any(m.has_warnings for m in results) else "")
    return f"{title}\n" + "\n".join(lines) + f"\n\nTimes are in {_UNIT_NAMES[unit]}s ({unit}).\n{note}"


class Compare:
    """torch.utils.benchmark.Compare: Measurements laid out in one table per label, a row per
    ``sub_label`` (or statement) and thread count, a column per ``description``; repeats of one
    TaskSpec are pooled first."""

    def __init__(self, results: list[Measurement]) -> None:
        self._results: list[Measurement] = []
        self.extend_results(results)
        self._trim_significant_figures = False
        self._colorize = Colorize.NONE
        self._highlight_warnings = False

    def extend_results(self, results) -> None:
        for r in results:
            if not isinstance(r, Measurement):
                raise ValueError(f"Expected an instance of `Measurement`, got {type(r)} instead.")
        self._results.extend(results)

    def trim_significant_figures(self) -> None:
        self._trim_significant_figures = True

    def colorize(self, rowwise: bool = False) -> None:
        self._colorize = Colorize.ROWWISE if rowwise else Colorize.COLUMNWISE

    def highlight_warnings(self) -> None:
        self._highlight_warnings = True

    def __str__(self) -> str:
        by_label: dict[str | None, list[Measurement]] = collections.defaultdict(list)
        for m in Measurement.merge(self._results):
            by_label[m.label].append(m)
        return "\n".join(_render_table(group, self._colorize, self._trim_significant_figures,
                                       self._highlight_warnings) for group in by_label.values())

    def print(self) -> None:
        print(str(self))
