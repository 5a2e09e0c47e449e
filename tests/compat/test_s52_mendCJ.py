"""s52 mendCJ: what a TorchDispatchMode sees, continued from mendCB. The activations elu (selu), celu, hardtanh
(relu6), leaky_relu and logsigmoid reach a mode with torch's schema arguments (``log_sigmoid_forward``), and
their in-place forms as ``.default``. Each logged sequence is recorded live from torch."""

import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from tests.compat._dispatch_checks import assert_a_handler_edit_reaches, assert_a_passing_mode_keeps  # noqa: E402
from tests.compat.test_s45_mendAI import _logged  # noqa: E402


def _F(lib):
    return lib.nn.functional


def _backward(program):
    def run(lib, a):
        out = program(lib, a)
        (out.sum() if out.dim() else out).backward()
    return run


ACTIVATIONS = {
    "elu": lambda lib, a: _F(lib).elu(a["x"]),
    "elu_alpha": lambda lib, a: _F(lib).elu(a["x"], 0.5),
    "selu": lambda lib, a: lib.selu(a["x"]),
    "celu": lambda lib, a: _F(lib).celu(a["x"]),
    "celu_alpha": lambda lib, a: _F(lib).celu(a["x"], 2.0),
    "hardtanh": lambda lib, a: _F(lib).hardtanh(a["x"]),
    "hardtanh_bounds": lambda lib, a: _F(lib).hardtanh(a["x"], -0.5, 0.5),
    "relu6": lambda lib, a: _F(lib).relu6(a["x"]),
    "leaky_relu": lambda lib, a: _F(lib).leaky_relu(a["x"]),
    "leaky_relu_slope": lambda lib, a: _F(lib).leaky_relu(a["x"], 0.2),
    "logsigmoid": lambda lib, a: _F(lib).logsigmoid(a["x"]),
    "elu_inplace": lambda lib, a: _F(lib).elu(a["x"].clone(), 0.5, inplace=True),
    "hardtanh_inplace": lambda lib, a: _F(lib).hardtanh(a["x"].clone(), inplace=True),
    "leaky_relu_inplace": lambda lib, a: _F(lib).leaky_relu(a["x"].clone(), 0.2, inplace=True),
    "elu_backward": _backward(lambda lib, a: _F(lib).elu(a["x"].requires_grad_())),
    "hardtanh_backward": _backward(lambda lib, a: _F(lib).hardtanh(a["x"].requires_grad_())),
    "leaky_relu_backward": _backward(lambda lib, a: _F(lib).leaky_relu(a["x"].requires_grad_())),
    "logsigmoid_backward": _backward(lambda lib, a: _F(lib).logsigmoid(a["x"].requires_grad_())),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_an_activation_reaches_a_mode_with_torchs_schema_arguments(name):
    assert _logged(chainrule, ACTIVATIONS[name]) == _logged(real_torch, ACTIVATIONS[name])


@pytest.mark.parametrize("name", ["elu", "selu", "celu", "hardtanh", "relu6", "leaky_relu", "logsigmoid"])
def test_an_activation_under_a_passing_mode_keeps_its_value_and_gradient(name):
    assert_a_passing_mode_keeps(lambda lib, x: (getattr(_F(lib), name)(x) * lib.arange(6.0).reshape(2, 3)).sum(),
                                (2, 3), seed=2)


def _replace(position, value):
    def edit(args):
        args = list(args)
        args[position] = value
        return tuple(args)
    return edit


ACTIVATION_EDITS = {
    "elu": ("aten.elu.default", _replace(1, 0.25), lambda lib, x: _F(lib).elu(x)),
    "celu": ("aten.celu.default", lambda args: (*args, 3.0), lambda lib, x: _F(lib).celu(x)),
    "hardtanh": ("aten.hardtanh.default", _replace(2, 0.3), lambda lib, x: _F(lib).hardtanh(x)),
    "leaky_relu": ("aten.leaky_relu.default", lambda args: (*args, 0.5), lambda lib, x: _F(lib).leaky_relu(x)),
    "logsigmoid": ("aten.log_sigmoid_forward.default", lambda args: (args[0] * 2,),
                   lambda lib, x: _F(lib).logsigmoid(x)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATION_EDITS))
def test_a_handler_editing_an_activations_arguments_gets_what_it_asked_for(name):
    op, edit, program = ACTIVATION_EDITS[name]
    assert_a_handler_edit_reaches(op, edit, program, (2, 5))
