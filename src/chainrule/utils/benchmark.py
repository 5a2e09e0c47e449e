"""chainrule.utils.benchmark: ``Timer`` and ``Measurement``, as torch.utils.benchmark.

Tutorials and scripts time their code with ``Timer(stmt="f(x)", globals=globals()).timeit(100)``
or ``.blocked_autorange()`` and print the ``Measurement``; the timing loop is ``timeit.Timer``'s,
as in torch, with torch's warm-up, block sizing, statistics and printed form. ``num_threads``
limits NumPy's BLAS pool while timing when threadpoolctl is installed (``chainrule[threads]``);
without it the pool is left as it is. On a GPU each reading waits for the device first, so it
times the work and not only its launch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import statistics
import textwrap
import timeit as _timeit
from typing import Any

__all__ = ["Timer", "Measurement", "TaskSpec", "Language", "select_unit"]

# torch's thresholds for the warning a Measurement prints when its spread is large
_IQR_WARN_THRESHOLD = 0.1
_IQR_GROSS_WARN_THRESHOLD = 0.25


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
    import math

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
