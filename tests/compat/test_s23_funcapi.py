"""torch.func and torch.autograd.functional against torch (the differences
tools/torch_func_api_trial.py found): results that depend on closed-over tensors requiring grad (a
model's weights) keep their graph to them, so a gradient penalty reaches the weights, second order;
aux without a graph; autograd.functional's argument checks and strict mode; vmap of an empty batch
and of an identity; the transforms' error messages in torch's words."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

W = (np.arange(6, dtype=np.float32).reshape(2, 3) - 2) / 5
X = np.array([0.3, -0.2, 0.5], dtype=np.float32)


def _vector(lib, w, x):
    return (w @ x).tanh()


def _scalar(lib, w, x):
    return ((w @ x).tanh() * x[:2]).sum()


TRANSFORMS = {
    "grad": lambda lib, w, x: lib.func.grad(lambda x: _scalar(lib, w, x))(x),
    "grad_and_value": lambda lib, w, x: lib.func.grad_and_value(lambda x: _scalar(lib, w, x))(x)[0],
    "grad_and_value.value": lambda lib, w, x: lib.func.grad_and_value(lambda x: _scalar(lib, w, x))(x)[1],
    "vjp": lambda lib, w, x: lib.func.vjp(lambda x: _vector(lib, w, x), x)[1](lib.ones(2))[0],
    "vjp.output": lambda lib, w, x: lib.func.vjp(lambda x: _vector(lib, w, x), x)[0],
    "jvp": lambda lib, w, x: lib.func.jvp(lambda x: _vector(lib, w, x), (x,), (lib.ones(3),))[1],
    "jacrev": lambda lib, w, x: lib.func.jacrev(lambda x: _vector(lib, w, x))(x),
    "jacfwd": lambda lib, w, x: lib.func.jacfwd(lambda x: _vector(lib, w, x))(x),
    "hessian": lambda lib, w, x: lib.func.hessian(lambda x: _scalar(lib, w, x))(x),
    "vmap_grad": lambda lib, w, x: lib.func.vmap(lib.func.grad(lambda x: _scalar(lib, w, x)))(
        lib.stack([x, 2 * x])),
}


def _run(lib, name):
    w = lib.nn.Parameter(lib.tensor(W))
    x = lib.tensor(X)
    result = TRANSFORMS[name](lib, w, x)
    requires = result.requires_grad
    if requires:
        result.pow(2).sum().backward()
    return result.detach().numpy(), requires, None if w.grad is None else w.grad.numpy()


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_gradient_penalty_reaches_closed_over_weights(name):
    value, requires, weight_grad = _run(chainrule, name)
    t_value, t_requires, t_weight_grad = _run(torch, name)
    np.testing.assert_allclose(value, t_value, rtol=1e-5, atol=1e-6)
    assert requires == t_requires
    assert (weight_grad is None) == (t_weight_grad is None)
    if t_weight_grad is not None:
        np.testing.assert_allclose(weight_grad, t_weight_grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_gradient_penalty_on_a_linear_model(lib):
    lib.manual_seed(0)
    model = lib.nn.Linear(3, 1)
    with lib.no_grad():
        model.weight.copy_(lib.tensor([[0.5, -1.0, 2.0]]))
        model.bias.fill_(0.1)
    x = lib.tensor(X)
    g = lib.func.grad(lambda x: model(x).tanh().sum())(x)
    g.pow(2).sum().backward()
    assert model.weight.grad is not None
    expected = _run_reference_linear()
    np.testing.assert_allclose(model.weight.grad.numpy(), expected, rtol=1e-4, atol=1e-6)


def _run_reference_linear():
    model = torch.nn.Linear(3, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -1.0, 2.0]]))
        model.bias.fill_(0.1)
    x = torch.tensor(X).requires_grad_()
    (g,) = torch.autograd.grad(model(x).tanh().sum(), x, create_graph=True)
    g.pow(2).sum().backward()
    return model.weight.grad.numpy()


def test_gradient_of_own_input_only_does_not_require_grad():
    # a result that depends only on the transform's own input is free of graph, as in torch
    w = chainrule.nn.Parameter(chainrule.tensor(W))
    x = chainrule.tensor(X)
    g = chainrule.func.grad(lambda x: x.sin().sum() + w.sum())(x)
    t_w = torch.nn.Parameter(torch.tensor(W))
    t_g = torch.func.grad(lambda x: x.sin().sum() + t_w.sum())(torch.tensor(X))
    assert g.requires_grad is t_g.requires_grad is False
    np.testing.assert_allclose(g.numpy(), t_g.numpy(), rtol=1e-6)


def test_no_graph_to_weights_under_no_grad():
    w = chainrule.nn.Parameter(chainrule.tensor(W))
    with chainrule.no_grad():
        g = chainrule.func.grad(lambda x: _scalar(chainrule, w, x))(chainrule.tensor(X))
    t_w = torch.nn.Parameter(torch.tensor(W))
    with torch.no_grad():
        t_g = torch.func.grad(lambda x: _scalar(torch, t_w, x))(torch.tensor(X))
    assert g.requires_grad is t_g.requires_grad is False
    np.testing.assert_allclose(g.numpy(), t_g.numpy(), rtol=1e-5)


def _outcome(lib, build):
    try:
        result = build(lib)
    except Exception as error:  # noqa: BLE001 - the class and message are compared
        return type(error).__name__, str(error).replace("torch.", "").replace("chainrule.", "")
    leaves = result if isinstance(result, (tuple, list)) else (result,)
    flat = []
    for leaf in leaves:
        flat.extend(leaf if isinstance(leaf, (tuple, list)) else (leaf,))
    return type(result).__name__, [(tuple(t.shape), t.requires_grad, t.detach().numpy().round(5).tolist())
                                   for t in flat]


def _x(lib):
    return lib.tensor(X)


AUTOGRAD_FUNCTIONAL = {
    "jvp v=None, several elements": lambda lib: lib.autograd.functional.jvp(lambda x: x.sin(), _x(lib)),
    "vjp v=None, several outputs": lambda lib: lib.autograd.functional.vjp(lambda x: x.sin(), _x(lib)),
    "hvp v=None, several elements": lambda lib: lib.autograd.functional.hvp(lambda x: x.pow(3).sum(), _x(lib)),
    "vhp v=None, several elements": lambda lib: lib.autograd.functional.vhp(lambda x: x.pow(3).sum(), _x(lib)),
    "vjp v wrong shape": lambda lib: lib.autograd.functional.vjp(lambda x: x * 2, _x(lib), lib.ones(4)),
    "jvp v wrong count": lambda lib: lib.autograd.functional.jvp(lambda x, y: x * y, (_x(lib), _x(lib)),
                                                                 (lib.ones(3),)),
    "jacobian inputs a list": lambda lib: lib.autograd.functional.jacobian(lambda x, y: x * y, [_x(lib), _x(lib)]),
    "jacobian returns a list": lambda lib: lib.autograd.functional.jacobian(lambda x: [x.sin()], _x(lib)),
    "jacobian returns a float": lambda lib: lib.autograd.functional.jacobian(lambda x: 3.0, _x(lib)),
    "jacobian input a float": lambda lib: lib.autograd.functional.jacobian(lambda x: x, 3.0),
    "jacobian strategy typo": lambda lib: lib.autograd.functional.jacobian(lambda x: x.sin(), _x(lib),
                                                                           strategy="sideways"),
    "jacobian forward-mode, no vectorize": lambda lib: lib.autograd.functional.jacobian(
        lambda x: x.sin(), _x(lib), strategy="forward-mode"),
    "jacobian forward-mode, tuple inputs": lambda lib: lib.autograd.functional.jacobian(
        lambda x, y: (x * y, x + y), (_x(lib), _x(lib)), strategy="forward-mode", vectorize=True),
    "jacobian forward-mode, create_graph": lambda lib: lib.autograd.functional.jacobian(
        lambda x: x.sin(), _x(lib), strategy="forward-mode", vectorize=True, create_graph=True),
    "jacobian strict, unused input": lambda lib: lib.autograd.functional.jacobian(
        lambda x, y: x * 2, (_x(lib), _x(lib)), strict=True),
    "jacobian strict, constant output": lambda lib: lib.autograd.functional.jacobian(
        lambda x: lib.ones(2), _x(lib), strict=True),
    "jacobian strict and vectorize": lambda lib: lib.autograd.functional.jacobian(
        lambda x: x.sin(), _x(lib), strict=True, vectorize=True),
    "vjp strict, unused input": lambda lib: lib.autograd.functional.vjp(
        lambda x, y: x * 2, (_x(lib), _x(lib)), lib.ones(3), strict=True),
    "jvp strict, unused input": lambda lib: lib.autograd.functional.jvp(
        lambda x, y: x * 2, (_x(lib), _x(lib)), (lib.ones(3), lib.ones(3)), strict=True),
    "vjp constant output": lambda lib: lib.autograd.functional.vjp(lambda x: lib.ones(2), _x(lib), lib.ones(2)),
    "jvp constant output": lambda lib: lib.autograd.functional.jvp(lambda x: lib.ones(2), _x(lib), lib.ones(3)),
    "hessian strict, linear": lambda lib: lib.autograd.functional.hessian(lambda x: (x * 2).sum(), _x(lib),
                                                                          strict=True),
    "hvp strict, linear": lambda lib: lib.autograd.functional.hvp(lambda x: (x * 2).sum(), _x(lib), lib.ones(3),
                                                                  strict=True),
    "hessian strict and vectorize": lambda lib: lib.autograd.functional.hessian(
        lambda x: x.pow(3).sum(), _x(lib), strict=True, vectorize=True),
    "hessian strict": lambda lib: lib.autograd.functional.hessian(lambda x: x.pow(3).sum(), _x(lib), strict=True),
    "hessian of a tuple": lambda lib: lib.autograd.functional.hessian(lambda x: (x.sum(), x.sum()), _x(lib)),
    "hessian of a vector": lambda lib: lib.autograd.functional.hessian(lambda x: x * x, _x(lib)),
    "hvp of a vector": lambda lib: lib.autograd.functional.hvp(lambda x: x * x, _x(lib), lib.ones(3)),
    "hessian outer strategy typo": lambda lib: lib.autograd.functional.hessian(
        lambda x: x.pow(3).sum(), _x(lib), outer_jacobian_strategy="sideways"),
}


@pytest.mark.parametrize("name", sorted(AUTOGRAD_FUNCTIONAL))
def test_autograd_functional_checks_as_torch(name):
    assert _outcome(chainrule, AUTOGRAD_FUNCTIONAL[name]) == _outcome(torch, AUTOGRAD_FUNCTIONAL[name])


FUNC = {
    "grad has_aux": lambda lib: lib.func.grad(lambda x: (x.sin().sum(), {"aux": x * 2}), has_aux=True)(_x(lib))[1]["aux"],
    "grad_and_value has_aux": lambda lib: lib.func.grad_and_value(
        lambda x: (x.sin().sum(), x * 2), has_aux=True)(_x(lib))[1],
    "vjp has_aux": lambda lib: lib.func.vjp(lambda x: (x.sin(), x + 1), _x(lib), has_aux=True)[2],
    "jacrev has_aux": lambda lib: lib.func.jacrev(lambda x: (x.sin(), x.cos()), has_aux=True)(_x(lib)),
    "jacfwd has_aux": lambda lib: lib.func.jacfwd(lambda x: (x.sin(), x.cos()), has_aux=True)(_x(lib)),
    "grad has_aux, input requires grad": lambda lib: lib.func.grad(
        lambda x: (x.sin().sum(), x * 2), has_aux=True)(_x(lib).requires_grad_())[1],
    "grad argnums=()": lambda lib: lib.func.grad(lambda x: x.sum(), argnums=())(_x(lib)),
    "grad_and_value argnums=()": lambda lib: lib.func.grad_and_value(lambda x: x.sum(), argnums=())(_x(lib)),
    "vmap chunk_size=0": lambda lib: lib.func.vmap(lambda x: x * 2, chunk_size=0)(lib.ones(2, 3)),
    "vmap chunk_size=-1": lambda lib: lib.func.vmap(lambda x: x * 2, chunk_size=-1)(lib.ones(2, 3)),
    "vmap chunk_size=1": lambda lib: lib.func.vmap(lambda x: x * 2, chunk_size=1)(lib.ones(2, 3)),
    "jacfwd integer input": lambda lib: lib.func.jacfwd(lambda x: x * 2)(lib.ones(2, dtype=lib.int64)),
    "jacfwd randomness invalid": lambda lib: lib.func.jacfwd(lambda x: x * 2, randomness="sometimes")(_x(lib)),
    "vjp non-tensor output": lambda lib: lib.func.vjp(lambda x: (x, 3.0), _x(lib)),
    "vjp float output": lambda lib: lib.func.vjp(lambda x: 3.0, _x(lib)),
}


@pytest.mark.parametrize("name", sorted(FUNC))
def test_func_transforms_as_torch(name):
    assert _outcome(chainrule, FUNC[name]) == _outcome(torch, FUNC[name])


def test_aux_closed_over_weights_keeps_graph():
    # aux computed from a closed-over parameter keeps its graph to it, as in torch
    outcomes = []
    for lib in (chainrule, torch):
        w = lib.nn.Parameter(lib.tensor(X))
        _, aux = lib.func.grad(lambda x, w=w: ((x * w).sum(), w * 3), has_aux=True)(lib.tensor(X))
        outcomes.append(aux.requires_grad)
    assert outcomes == [True, True]


VMAP = {
    "empty batch": lambda lib: lib.func.vmap(lambda x: x.sin())(lib.zeros(0, 3)),
    "empty batch, tuple out_dims": lambda lib: lib.func.vmap(lambda x: (x.sum(), x * 2), out_dims=(0, 1))(
        lib.zeros(0, 3)),
    "empty batch, in_dims=(1, None)": lambda lib: lib.func.vmap(lambda x, y: x * y, in_dims=(1, None))(
        lib.zeros(3, 0), lib.ones(3)),
}


@pytest.mark.parametrize("name", sorted(VMAP))
def test_vmap_as_torch(name):
    assert _outcome(chainrule, VMAP[name]) == _outcome(torch, VMAP[name])


def _error(lib, build):
    try:
        build(lib)
    except Exception as error:  # noqa: BLE001 - the class and message are compared
        return type(error).__name__, str(error).replace("torch.", "").replace("chainrule.", "")
    return None


def scaled(x):
    return x * 2


MESSAGES = {
    "vmap in_dim out of range": lambda lib: lib.func.vmap(scaled, in_dims=5)(lib.ones(3)),
    "vmap in_dim for a number": lambda lib: lib.func.vmap(lambda x, n: x * n, in_dims=(0, 0))(lib.ones(2), 3),
    "vmap in_dims a list": lambda lib: lib.func.vmap(scaled, in_dims=[0])(lib.ones(2)),
    "vmap out_dims out of range": lambda lib: lib.func.vmap(scaled, out_dims=3)(lib.ones(2, 3)),
    "grad argnum out of range": lambda lib: lib.func.grad(lambda x: x.sum(), argnums=2)(lib.ones(2)),
    "grad argnums repeated": lambda lib: lib.func.grad(lambda x, y: x.sum(), argnums=(0, 0))(lib.ones(2), lib.ones(2)),
    "grad argnum a float": lambda lib: lib.func.grad(lambda x: x.sum(), argnums=1.5)(lib.ones(2)),
    "jacrev argnum out of range": lambda lib: lib.func.jacrev(scaled, argnums=-3)(lib.ones(2)),
    "jvp primals a list": lambda lib: lib.func.jvp(scaled, [lib.ones(2)], (lib.ones(2),)),
    "jvp tangent shape": lambda lib: lib.func.jvp(scaled, (lib.ones(2),), (lib.ones(5),)),
    "jvp non-tensor output": lambda lib: lib.func.jvp(lambda x: 3.0, (lib.ones(2),), (lib.ones(2),)),
    "grad has_aux, not a tuple": lambda lib: lib.func.grad(lambda x: x.sum(), has_aux=True)(lib.ones(2)),
    "vjp has_aux, not a tuple": lambda lib: lib.func.vjp(scaled, lib.ones(2), has_aux=True),
    "jacrev has_aux, not a tuple": lambda lib: lib.func.jacrev(scaled, has_aux=True)(lib.ones(2)),
    "jacfwd has_aux, not a tuple": lambda lib: lib.func.jacfwd(scaled, has_aux=True)(lib.ones(2)),
    "jvp has_aux, not a tuple": lambda lib: lib.func.jvp(scaled, (lib.ones(2),), (lib.ones(2),), has_aux=True),
    "vjp cotangent shape": lambda lib: lib.func.vjp(scaled, lib.ones(3))[1](lib.ones(3, 2)),
    "functional_call keys in two dicts": lambda lib: lib.func.functional_call(
        lib.nn.Linear(2, 2), ({"weight": lib.ones(2, 2), "bias": lib.ones(2)}, {"weight": lib.ones(2, 2),
                                                                                 "bias": lib.ones(2)}), (lib.ones(2),)),
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_error_messages_as_torch(name):
    expected = _error(torch, MESSAGES[name])
    assert expected is not None
    assert _error(chainrule, MESSAGES[name]) == expected


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_vmap_identity_returns_the_input(lib):
    x = lib.arange(6.0).reshape(2, 3)
    assert lib.func.vmap(lambda r: r)(x) is x
    moved = lib.func.vmap(lambda r: r, in_dims=1)(x)
    assert tuple(moved.shape) == (3, 2) and moved.is_contiguous() is False
    assert moved.data_ptr() == x.data_ptr()
