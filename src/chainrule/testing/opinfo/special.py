"""chainrule.special (special.py): torch.special's functions composed from other ops; those with
their own kernels (logit, erfc, sinc, the gamma family, ...) are in ``special_functions.py``."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, positive, randn, rng


def _special(name: str, *cases: OpCase, **kwargs) -> OpInfo:
    return OpInfo(f"special.{name}", "special", lambda: list(cases), **kwargs)


def _call(name: str, *args, **kwargs):
    return lambda lib, *xs: getattr(lib.special, name)(*xs, *args, **kwargs)


def _probabilities(*shape, seed: int = 0) -> np.ndarray:
    return rng(seed).uniform(0.05, 0.95, shape)


op_db: list[OpInfo] = [
    _special("expit", OpCase("expit", _call("expit"), [randn(3, 4) * 3])),
    _special("xlog1py",
             OpCase("xlog1py", _call("xlog1py"), [randn(3, 4), positive(3, 4, seed=1)]),
             OpCase("xlog1py_zero_x", _call("xlog1py"), [np.array([0.0, 1.5, 0.0]), positive(3, seed=2)],
                    grad=[False, True])),
    _special("entr", OpCase("entr", _call("entr"), [positive(3, 4)])),
    _special("ndtr", OpCase("ndtr", _call("ndtr"), [randn(3, 4)])),
    # rounding is piecewise constant: x + round(x) has the derivative 1 away from the half-way points
    _special("round",
             OpCase("special_round", lambda lib, x: lib.special.round(x) + x, [randn(3, 4) * 3]),
             OpCase("special_round_decimals", lambda lib, x: lib.special.round(x, decimals=1) + x, [randn(3, 4)])),
]
