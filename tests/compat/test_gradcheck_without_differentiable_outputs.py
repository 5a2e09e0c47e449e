"""gradcheck of a function whose outputs do not require grad (torchdiffeq's test suite runs it on
its ``scipy_solver``, which leaves autograd through NumPy).

torch then checks that finite differences of the outputs are zero: a result that moves with the
input while autograd sees no dependence is a lost gradient, raised as GradcheckError (or False with
``raise_exception=False``); a constant or integer result passes. chainrule used to return True.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

FUNCTIONS = {
    "detached_and_scaled": lambda lib, x: x.detach() * 2,
    "through_numpy": lambda lib, x: lib.from_numpy(x.detach().numpy() ** 2),
    "two_detached_outputs": lambda lib, x: (x.detach() * 2, x.detach().sum()),
    "constant": lambda lib, x: lib.ones(3, dtype=lib.float64),
    "integer_result": lambda lib, x: x.argmax(),
}


def _outcome(lib, name, **options):
    x = lib.tensor(np.array([0.3, -1.2, 2.5]), requires_grad=True)
    try:
        return lib.autograd.gradcheck(lambda t: FUNCTIONS[name](lib, t), (x,), **options)
    except RuntimeError as error:  # GradcheckError is a RuntimeError in both
        return (type(error).__name__, str(error))


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("options", [{}, {"fast_mode": True}, {"check_forward_ad": True},
                                     {"raise_exception": False}, {"fast_mode": True, "raise_exception": False}],
                         ids=["slow", "fast", "forward_ad", "no_raise", "fast_no_raise"])
def test_outputs_outside_autograd_are_checked_to_stay_still(name, options):
    assert _outcome(chainrule, name, **options) == _outcome(torch, name, **options)


def test_a_moving_output_is_refused_in_torchs_words():
    outcome = _outcome(chainrule, "through_numpy")
    assert outcome == ("GradcheckError", "Numerical gradient for function expected to be zero")
