"""Lane mendW (session 40): differences from torch left noted by earlier sessions, each proven
against torch on the same call."""

import pytest

import chainrule
from tests.compat._refusals import outcome

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- instance_norm's parameter checks
# torch's instance_norm is batch norm over the N·C instances with each given tensor repeated N times
# (tensor.repeat(N)): a tensor of more than one dim is refused by the repeat, before any count
_INSTANCE_NORM_CALLS = {
    "2-d running_mean": lambda lib: ((lib.zeros(1, 3), lib.ones(3)), {}),
    "2-d running_mean, running statistics used": lambda lib: ((lib.zeros(1, 3), lib.ones(3)),
                                                              {"use_input_stats": False}),
    "2-d running_var": lambda lib: ((lib.zeros(3), lib.ones(3, 1)), {}),
    "2-d running_var, running statistics used": lambda lib: ((lib.zeros(3), lib.ones(3, 1)),
                                                             {"use_input_stats": False}),
    "2-d weight": lambda lib: ((), {"weight": lib.ones(1, 3)}),
    "2-d weight of the wrong size": lambda lib: ((), {"weight": lib.ones(2, 3)}),
    "2-d bias after a wrong running_mean": lambda lib: ((lib.zeros(4), lib.ones(4)), {"bias": lib.ones(3, 1)}),
    "running_mean of the wrong length": lambda lib: ((lib.zeros(4), lib.ones(3)), {}),
    "running_var of the wrong length": lambda lib: ((lib.zeros(3), lib.ones(4)), {}),
    "weight of the wrong length": lambda lib: ((), {"weight": lib.ones(4)}),
    "bias of the wrong length": lambda lib: ((), {"bias": lib.ones(5)}),
    "all of the wrong length": lambda lib: ((lib.zeros(4), lib.ones(5)), {"weight": lib.ones(6)}),
    "wrong weight, running statistics used": lambda lib: ((lib.zeros(3), lib.ones(3)),
                                                          {"weight": lib.ones(2), "use_input_stats": False}),
    "running_mean alone": lambda lib: ((lib.zeros(3), None), {}),
    "running_mean alone, of the wrong length": lambda lib: ((lib.zeros(4), None), {}),
}


def _instance_norm_outcome(lib, case):
    args, kwargs = _INSTANCE_NORM_CALLS[case](lib)
    return outcome(lambda: lib.nn.functional.instance_norm(lib.ones(2, 3, 4), *args, **kwargs))


@pytest.mark.parametrize("case", list(_INSTANCE_NORM_CALLS))
def test_instance_norm_refuses_its_parameters_in_torchs_order_and_words(case):
    expected = _instance_norm_outcome(torch, case)
    assert expected[0] != "ok"
    assert _instance_norm_outcome(chainrule, case) == expected


def _zero_dim_affine(lib):
    x = lib.arange(8.0).reshape(2, 1, 4)
    out = lib.nn.functional.instance_norm(x, weight=lib.tensor(2.0), bias=lib.tensor(1.0))
    refused = outcome(lambda: lib.nn.functional.instance_norm(x.reshape(1, 2, 4), weight=lib.tensor(2.0)))
    return out.flatten().tolist(), refused


def test_instance_norm_takes_a_zero_dim_affine_parameter_as_torch():
    # a 0-d weight or bias repeats to N values: right for one channel, counted so for two
    expected, got = _zero_dim_affine(torch), _zero_dim_affine(chainrule)
    assert expected[1][0] == "RuntimeError"
    assert got[1] == expected[1]
    assert got[0] == pytest.approx(expected[0], rel=1e-6, abs=1e-6)
