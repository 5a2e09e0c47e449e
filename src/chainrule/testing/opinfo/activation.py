"""Activations (chainrule/ops/activation.py), through the public nn.functional names; inputs kept off the kinks."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, cached, noncontig, randn, select


@cached
def _cases() -> list[OpCase]:
    X = randn(3, 5, seed=1, low_gap=0.1) * 2  # no sample near the kinks at 0
    WIDE = randn(4, 6, seed=2) * 4
    SHRINK = randn(3, 5, seed=3, low_gap=0.6)  # away from +-0.5
    SHIFTED = randn(3, 5, seed=4, low_gap=0.2) * 4 + 0.05  # hard* kinks at +-3
    HT = randn(3, 5, seed=5, low_gap=0.1) * 0.8  # hardtanh bounds at +-1

    ACTIVATIONS = [
        ("relu", lambda lib, x: lib.nn.functional.relu(x), X),
        ("relu_top", lambda lib, x: lib.relu(x), X),
        ("relu_method", lambda lib, x: x.relu(), noncontig(X)),
        ("relu6", lambda lib, x: lib.nn.functional.relu6(x * 3), X),
        ("leaky_relu", lambda lib, x: lib.nn.functional.leaky_relu(x), X),
        ("leaky_relu_slope", lambda lib, x: lib.nn.functional.leaky_relu(x, 0.2), X),
        ("elu", lambda lib, x: lib.nn.functional.elu(x), X),
        ("elu_alpha", lambda lib, x: lib.nn.functional.elu(x, alpha=0.5), X),
        ("selu", lambda lib, x: lib.selu(x), X),
        ("celu", lambda lib, x: lib.celu(x, alpha=1.5), X),
        ("gelu", lambda lib, x: lib.nn.functional.gelu(x), WIDE),
        ("gelu_tanh", lambda lib, x: lib.nn.functional.gelu(x, approximate="tanh"), WIDE),
        ("silu", lambda lib, x: lib.nn.functional.silu(x), WIDE),
        ("mish", lambda lib, x: lib.nn.functional.mish(x), WIDE),
        ("softplus", lambda lib, x: lib.nn.functional.softplus(x), WIDE),
        ("softplus_beta", lambda lib, x: lib.nn.functional.softplus(x, beta=2.0, threshold=5.0), X),
        ("softsign", lambda lib, x: lib.nn.functional.softsign(x), X),
        ("hardtanh", lambda lib, x: lib.nn.functional.hardtanh(x), HT),
        ("hardtanh_bounds", lambda lib, x: lib.nn.functional.hardtanh(x, -0.5, 2.0), X * 0.7 + 0.03),
        ("hardsigmoid", lambda lib, x: lib.nn.functional.hardsigmoid(x), SHIFTED),
        ("hardswish", lambda lib, x: lib.nn.functional.hardswish(x), SHIFTED),
        ("logsigmoid", lambda lib, x: lib.nn.functional.logsigmoid(x), WIDE),
        ("tanhshrink", lambda lib, x: lib.nn.functional.tanhshrink(x), X),
        ("softshrink", lambda lib, x: lib.nn.functional.softshrink(x), SHRINK),
        ("softshrink_lambd", lambda lib, x: lib.nn.functional.softshrink(x, 1.0), SHRINK * 2),
        ("hardshrink", lambda lib, x: lib.hardshrink(x), SHRINK),
        ("hardshrink_method", lambda lib, x: x.hardshrink(0.3), SHRINK),
        ("threshold", lambda lib, x: lib.threshold(x, 0.1, -2.0), X),
        ("glu", lambda lib, x: lib.nn.functional.glu(x, 0), randn(4, 3)),
        ("glu_last", lambda lib, x: lib.nn.functional.glu(x), randn(3, 6)),
        ("relu_0d", lambda lib, x: lib.nn.functional.relu(x), np.array(1.3)),
        ("gelu_0d", lambda lib, x: lib.nn.functional.gelu(x), np.array(-0.7)),
        ("silu_empty", lambda lib, x: lib.nn.functional.silu(x), randn(0, 3)),
        ("elu_empty", lambda lib, x: lib.nn.functional.elu(x), randn(2, 0)),
        ("rrelu_eval", lambda lib, x: lib.rrelu(x), X),
        ("rrelu_functional_eval", lambda lib, x: lib.nn.functional.rrelu(x, 0.1, 0.4), X),
    ]

    CASES = [OpCase(name, fn, [x]) for name, fn, x in ACTIVATIONS]
    CASES += [
        OpCase("prelu_shared", lambda lib, x, w: lib.prelu(x, w), [X, np.array([0.25])]),
        OpCase("prelu_channels", lambda lib, x, w: lib.prelu(x, w), [randn(2, 3, 4, low_gap=0.1), np.array([0.1, -0.3, 0.5])]),
        OpCase("prelu_1d", lambda lib, x, w: lib.nn.functional.prelu(x, w), [randn(5, low_gap=0.1), np.array([0.2])]),
    ]

    return CASES


def _entry(name: str, *patterns: str, **kwargs) -> OpInfo:
    return OpInfo(name, "activation", select(_cases, *(patterns or (name,))), **kwargs)


op_db: list[OpInfo] = [
    _entry("relu", "relu", "relu_*", methods=("relu", "relu_")),
    _entry("nn.functional.relu6", "relu6"),
    _entry("nn.functional.leaky_relu", "leaky_relu", "leaky_relu_slope"),
    _entry("nn.functional.elu", "elu", "elu_alpha", "elu_empty"),
    _entry("selu"),
    _entry("celu"),
    _entry("nn.functional.gelu", "gelu", "gelu_tanh", "gelu_0d"),
    _entry("nn.functional.silu", "silu", "silu_empty"),
    _entry("nn.functional.mish", "mish"),
    _entry("nn.functional.softplus", "softplus", "softplus_beta"),
    _entry("nn.functional.softsign", "softsign"),
    _entry("nn.functional.hardtanh", "hardtanh", "hardtanh_bounds"),
    _entry("nn.functional.hardsigmoid", "hardsigmoid"),
    _entry("nn.functional.hardswish", "hardswish"),
    _entry("nn.functional.logsigmoid", "logsigmoid"),
    _entry("nn.functional.tanhshrink", "tanhshrink"),
    _entry("nn.functional.softshrink", "softshrink", "softshrink_lambd"),
    _entry("hardshrink", "hardshrink", "hardshrink_method", methods=("hardshrink",)),
    _entry("threshold"),
    _entry("nn.functional.glu", "glu", "glu_last"),
    _entry("rrelu", "rrelu_eval"),
    _entry("nn.functional.rrelu", "rrelu_functional_eval"),
    _entry("prelu", "prelu_shared", "prelu_channels", "prelu_1d", methods=("prelu",)),
]


def _inplace(name: str, *args) -> OpInfo:
    """nn.functional.<name>_: the activation written into a copy of the input."""

    def samples() -> list[OpCase]:
        x = randn(3, 5, seed=6, low_gap=0.1) * 2
        return [OpCase(f"{name}_", lambda lib, x: getattr(lib.nn.functional, f"{name}_")(x * 1.0, *args), [x])]

    return OpInfo(f"nn.functional.{name}_", "activation", samples)


op_db += [
    _inplace("relu"),
    _inplace("elu", 0.7),
    _inplace("celu", 1.3),
    _inplace("selu"),
    _inplace("leaky_relu", 0.2),
    _inplace("hardtanh", -0.5, 0.5),
    _inplace("threshold", 0.1, -2.0),
]
