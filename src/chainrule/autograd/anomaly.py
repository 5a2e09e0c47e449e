"""Anomaly detection, as torch's: record where each node was created, name it when its backward
fails, and (``check_nan``) fail fast on a backward rule that returns NaN."""

from __future__ import annotations

import warnings

from .function import _anomaly

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "is_anomaly_check_nan_enabled"]


def is_anomaly_enabled() -> bool:
    return _anomaly.enabled


def is_anomaly_check_nan_enabled() -> bool:
    """Whether anomaly mode checks backward results for NaN (True, torch's default, when the mode is off)."""
    return _anomaly.check_nan


class detect_anomaly:
    """Context manager: nodes remember their forward stack; a backward rule that fails is named
    with the user's forward line in a warning before its error goes on, and (``check_nan``) one
    that returns NaN raises a RuntimeError naming the node (e.g. ``DivBackward0``) and that line.
    """

    def __init__(self, check_nan: bool = True) -> None:
        self._check_nan = check_nan
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime and should only be "
                      "enabled for debugging.", stacklevel=2)

    def __enter__(self):
        self._previous = (_anomaly.enabled, _anomaly.check_nan)
        _anomaly.enabled, _anomaly.check_nan = True, bool(self._check_nan)
        return self

    def __exit__(self, *exc) -> None:
        _anomaly.enabled, _anomaly.check_nan = self._previous


class set_detect_anomaly:
    """Turn anomaly detection on or off; works as a plain call or a context manager."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self._previous = (_anomaly.enabled, _anomaly.check_nan)
        _anomaly.enabled, _anomaly.check_nan = bool(mode), bool(check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        _anomaly.enabled, _anomaly.check_nan = self._previous
