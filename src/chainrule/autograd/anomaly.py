"""Anomaly detection: record where each node was created and fail fast on NaN/Inf gradients."""

from __future__ import annotations

from .function import _anomaly

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled"]


def is_anomaly_enabled() -> bool:
    return _anomaly.enabled


class detect_anomaly:
    """Context manager: nodes remember their forward stack; a backward producing NaN/Inf raises
    a RuntimeError naming the node (e.g. ``DivBackward0``) and the line of user code that made it.
    """

    def __init__(self, check_nan: bool = True) -> None:
        self._check_nan = check_nan

    def __enter__(self):
        self._previous = _anomaly.enabled
        _anomaly.enabled = self._check_nan
        return self

    def __exit__(self, *exc) -> None:
        _anomaly.enabled = self._previous


class set_detect_anomaly:
    """Turn anomaly detection on or off; works as a plain call or a context manager."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self._previous = _anomaly.enabled
        _anomaly.enabled = bool(mode) and check_nan

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        _anomaly.enabled = self._previous
