"""torch._C._profiler: the two traceback helpers torch's LoggingTensor imports.

``capture_logs(python_tb=True)`` stores ``gather_traceback()`` on each log record and turns the
list into frames with ``symbolize_tracebacks`` at the end. chainrule has no C++ or TorchScript
frames, so a traceback is the Python stack alone (empty when ``python`` is False).
"""

from __future__ import annotations

import traceback

__all__ = ["gather_traceback", "symbolize_tracebacks"]


def gather_traceback(python: bool = True, script: bool = True, cpp: bool = True) -> list:
    """The calling Python stack (outermost first) when ``python``; ``script`` and ``cpp`` add nothing."""
    return traceback.extract_stack()[:-1] if python else []


def symbolize_tracebacks(tracebacks: list) -> list:
    """Each gathered traceback as torch symbolizes it: a list of ``{"filename", "line", "name"}``."""
    return [[{"filename": frame.filename, "line": frame.lineno, "name": frame.name} for frame in captured]
            for captured in tracebacks]
