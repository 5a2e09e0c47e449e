"""torch.func's transforms (grad, vjp, jvp, jacrev/jacfwd, hessian, vmap) and functional_call,
each against torch.func on the same inputs, plus the two tutorials people copy: per-sample
gradients and model ensembling."""

import numpy as np
import pytest

import chainrule
import chainrule.func as cfunc

torch = pytest.importorskip("torch")
tfunc = torch.func


def _pair(*shape, seed=0, dtype=np.float64):
    value = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return chainrule.tensor(value), torch.tensor(value)


def _close(ours, theirs, rtol=1e-10, atol=1e-12):
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs)
        for key in theirs:
            _close(ours[key], theirs[key], rtol, atol)
    elif isinstance(theirs, (tuple, list)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _close(a, b, rtol, atol)
    else:
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol)


SCALAR_FUNCTIONS = {
    "sin_x_sum": lambda lib, x, y: (lib.sin(x) * x).sum(),
    "two_args": lambda lib, x, y: (x * y.exp()).sum() + (x ** 2).mean(),
    "matmul_tanh": lambda lib, x, y: lib.tanh(x @ y.t()).sum(),
    "unused_second": lambda lib, x, y: (x ** 3).sum(),
}


@pytest.mark.parametrize("name", list(SCALAR_FUNCTIONS))
@pytest.mark.parametrize("argnums", [0, 1, (0, 1)], ids=str)
def test_grad_and_value_match_torch(name, argnums):
    x, tx = _pair(3, 4, seed=1)
    y, ty = _pair(3, 4, seed=2)
    fn = SCALAR_FUNCTIONS[name]
    ours = cfunc.grad_and_value(lambda a, b: fn(chainrule, a, b), argnums=argnums)(x, y)
    theirs = tfunc.grad_and_value(lambda a, b: fn(torch, a, b), argnums=argnums)(tx, ty)
    _close(ours, theirs)
    assert not ours[0][0].requires_grad if isinstance(argnums, tuple) else not ours[0].requires_grad


def test_grad_of_grad_is_the_second_derivative_as_torch():
    x, tx = _pair(5, seed=3)

    def inner(lib):
        return lambda v: (lib.sin(v) * v ** 2).sum()

    ours = cfunc.grad(lambda v: cfunc.grad(inner(chainrule))(v).sum())(x)
    theirs = tfunc.grad(lambda v: tfunc.grad(inner(torch))(v).sum())(tx)
    _close(ours, theirs)


def test_grad_takes_pytrees_and_has_aux_as_torch():
    w, tw = _pair(4, 3, seed=4)
    b, tb = _pair(3, seed=5)
    x, tx = _pair(6, 4, seed=6)

    def loss(lib):
        def fn(params, inputs):
            out = inputs @ params["w"] + params["b"]
            return (out ** 2).mean(), out.detach()
        return fn

    ours, aux = cfunc.grad(loss(chainrule), has_aux=True)({"w": w, "b": b}, x)
    theirs, taux = tfunc.grad(loss(torch), has_aux=True)({"w": tw, "b": tb}, tx)
    _close(ours, theirs)
    _close(aux, taux)


def test_vjp_and_jvp_match_torch():
    x, tx = _pair(3, 2, seed=7)
    v, tv = _pair(3, 2, seed=8)

    def fn(lib):
        return lambda a: (lib.exp(a) * a.sum(0), a.tanh())

    out, vjp_fn = cfunc.vjp(fn(chainrule), x)
    tout, tvjp_fn = tfunc.vjp(fn(torch), tx)
    _close(out, tout)
    _close(vjp_fn((v, v * 2)), tvjp_fn((tv, tv * 2)))
    _close(cfunc.jvp(fn(chainrule), (x,), (v,)), tfunc.jvp(fn(torch), (tx,), (tv,)))


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)], ids=str)
def test_jacobians_and_hessian_match_torch(argnums):
    x, tx = _pair(3, seed=9)
    y, ty = _pair(2, seed=10)

    def fn(lib):
        return lambda a, b: lib.outer(a.sin(), b.exp()).reshape(-1) * a.sum()

    for ours_t, theirs_t in ((cfunc.jacrev, tfunc.jacrev), (cfunc.jacfwd, tfunc.jacfwd)):
        _close(ours_t(fn(chainrule), argnums)(x, y), theirs_t(fn(torch), argnums)(tx, ty))
    scalar = lambda lib: (lambda a, b: (lib.outer(a, b) ** 3).sum())  # noqa: E731
    _close(cfunc.hessian(scalar(chainrule), argnums)(x, y), tfunc.hessian(scalar(torch), argnums)(tx, ty))


VMAP_CASES = {
    "default": (dict(), lambda lib, a, b: (a * b).sum()),
    "in_dims_none": (dict(in_dims=(0, None)), lambda lib, a, b: a @ b),
    "in_dims_1": (dict(in_dims=(1, 0)), lambda lib, a, b: a * b[0]),
    "out_dims_1": (dict(out_dims=1), lambda lib, a, b: lib.stack([a, b])),
    "tuple_out": (dict(out_dims=(0, 1)), lambda lib, a, b: (a.sum(), lib.outer(a, b))),
}


@pytest.mark.parametrize("name", list(VMAP_CASES))
def test_vmap_matches_torch(name):
    kwargs, fn = VMAP_CASES[name]
    shapes = {"in_dims_none": ((5, 3), (3, 2)), "in_dims_1": ((3, 5), (5, 3))}.get(name, ((5, 3), (5, 3)))
    a, ta = _pair(*shapes[0], seed=11)
    b, tb = _pair(*shapes[1], seed=12)
    _close(cfunc.vmap(lambda x, y: fn(chainrule, x, y), **kwargs)(a, b),
           tfunc.vmap(lambda x, y: fn(torch, x, y), **kwargs)(ta, tb))


def test_nested_vmap_and_gradients_through_vmap_match_torch():
    a, ta = _pair(4, 3, 2, seed=13)
    a.requires_grad_(True)
    ta.requires_grad_(True)
    ours = cfunc.vmap(cfunc.vmap(lambda v: (v.sin() * v).sum()))(a)
    theirs = tfunc.vmap(tfunc.vmap(lambda v: (v.sin() * v).sum()))(ta)
    _close(ours, theirs)
    ours.pow(2).sum().backward()
    theirs.pow(2).sum().backward()
    _close(a.grad, ta.grad)


def _mlp(lib):
    return lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.Tanh(), lib.nn.Linear(8, 3))


def _same_models():
    chainrule.manual_seed(0)
    ours = _mlp(chainrule).double()
    theirs = _mlp(torch).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def test_per_sample_gradients_tutorial_matches_torch():
    """vmap(grad(loss over functional_call)) — the per-sample-gradient recipe — against torch,
    and against one backward per sample."""
    model, tmodel = _same_models()
    x, tx = _pair(6, 4, seed=14)
    y = np.array([0, 2, 1, 1, 0, 2])

    def per_sample(lib, func, net, data, targets):
        params = {k: v.detach() for k, v in net.named_parameters()}

        def loss(p, sample, target):
            out = func.functional_call(net, p, (sample.unsqueeze(0),))
            return lib.nn.functional.cross_entropy(out, target.unsqueeze(0))

        return func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, data, targets)

    ours = per_sample(chainrule, cfunc, model, x, chainrule.tensor(y))
    theirs = per_sample(torch, tfunc, tmodel, tx, torch.tensor(y))
    _close(ours, theirs, rtol=1e-9)
    for i in range(6):  # the slow way: one backward per sample
        model.zero_grad()
        chainrule.nn.functional.cross_entropy(model(x[i:i + 1]), chainrule.tensor(y[i:i + 1])).backward()
        for name, p in model.named_parameters():
            np.testing.assert_allclose(ours[name][i].numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_model_ensembling_tutorial_matches_torch():
    chainrule.manual_seed(1)
    models = [_mlp(chainrule) for _ in range(3)]
    tmodels = [_mlp(torch) for _ in range(3)]
    for m, tm in zip(models, tmodels):
        tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in m.state_dict().items()})
    params, buffers = cfunc.stack_module_state(models)
    tparams, tbuffers = tfunc.stack_module_state(tmodels)
    assert params["0.weight"].shape == (3, 8, 4) and params["0.weight"].requires_grad and params["0.weight"].is_leaf
    x, tx = _pair(5, 4, seed=15, dtype=np.float32)

    def run(func, base, p, b, data):
        return func.vmap(lambda pp, bb, d: func.functional_call(base, (pp, bb), (d,)), in_dims=(0, 0, None))(p, b, data)

    ours = run(cfunc, models[0], params, buffers, x)
    theirs = run(tfunc, tmodels[0], tparams, tbuffers, tx)
    _close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_functional_call_leaves_the_module_alone_and_ties_weights():
    model, _ = _same_models()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    zeros = {k: chainrule.zeros_like(v) for k, v in model.named_parameters()}
    x, _ = _pair(2, 4, seed=16)
    out = cfunc.functional_call(model, zeros, x)
    assert (out.numpy() == 0).all()
    for key, value in model.state_dict().items():
        assert (value.numpy() == before[key].numpy()).all()

    class Tied(chainrule.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = chainrule.nn.Linear(2, 2, bias=False)
            self.b = chainrule.nn.Linear(2, 2, bias=False)
            self.b.weight = self.a.weight

        def forward(self, v):
            return self.b(self.a(v))

    tied = Tied()
    eye = chainrule.eye(2)
    np.testing.assert_allclose(cfunc.functional_call(tied, {"a.weight": eye}, chainrule.ones(1, 2)).numpy(),
                               [[1.0, 1.0]])


def test_errors_match_torch():
    x, tx = _pair(3, seed=17)
    for func, value in ((cfunc, x), (tfunc, tx)):
        with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a scalar Tensor, got tensor with 1 dims"):
            func.grad(lambda v: v * 2)(value)
        with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a Tensor, got"):
            func.grad(lambda v: 3.0)(value)
        with pytest.raises(ValueError, match="Expected at least one Tensor to vmap over"):
            func.vmap(lambda v: v, in_dims=(None,))(value)
        with pytest.raises(ValueError, match="same size in the mapped dimension, got sizes \\[3, 2\\]"):
            func.vmap(lambda a, b: a * b)(value, value[:2])
        with pytest.raises(ValueError, match="must only return Tensors"):
            func.vmap(lambda v: 2.0)(value)
    for func, lib in ((cfunc, chainrule), (tfunc, torch)):
        linear = lib.nn.Linear(3, 2)
        with pytest.raises(RuntimeError, match="Missing key\\(s\\): 'bias'"):
            func.functional_call(linear, {"weight": lib.zeros(2, 3)}, (lib.ones(1, 3),), strict=True)


def test_jacobian_of_an_output_that_ignores_the_input_is_zero_as_torch():
    x, tx = _pair(3, seed=18)
    ours = chainrule.autograd.functional.jacobian(lambda v: chainrule.ones(2, dtype=chainrule.float64), x)
    theirs = torch.autograd.functional.jacobian(lambda v: torch.ones(2, dtype=torch.float64), tx)
    _close(ours, theirs)
    both = cfunc.jacrev(lambda a, b: (a.sin(), b * 0 + 1), argnums=(0, 1))(x, x[:2].clone())
    tboth = tfunc.jacrev(lambda a, b: (a.sin(), b * 0 + 1), argnums=(0, 1))(tx, tx[:2].clone())
    _close(both, tboth)
