"""Optimizers: parameter trajectories vs torch over 25 steps from identical weights; state dicts."""

import itertools

import numpy as np
import pytest

import chainrule
import chainrule.optim as optim

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((8, 5)).astype(np.float32)
Y = RNG.standard_normal(8).astype(np.float32)
P1 = RNG.standard_normal(5).astype(np.float32)
P2 = RNG.standard_normal((2, 3)).astype(np.float32)
STEPS = 25


def _loss(lib, p1, p2):
    x, y = lib.tensor(X), lib.tensor(Y)
    fit = ((p1 * x).sum(1) - y) ** 2
    return fit.mean() + (p2 * p2 * 0.3).sum() + p2.sin().sum()


def _trajectory(lib, make_opt, steps=STEPS, groups=False):
    p1 = lib.tensor(P1.copy(), requires_grad=True)
    p2 = lib.tensor(P2.copy(), requires_grad=True)
    opt_mod = optim if lib is chainrule else torch.optim
    params = [{"params": [p1]}, {"params": [p2], "lr": 0.05}] if groups else [p1, p2]
    opt = make_opt(opt_mod, params)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        _loss(lib, p1, p2).backward()
        opt.step()
        history.append(np.concatenate([p1.detach().numpy().ravel(), p2.detach().numpy().ravel()]))
    return np.array(history), opt


def _compare(make_opt, groups=False, rtol=2e-5, atol=2e-6):
    ours, _ = _trajectory(chainrule, make_opt, groups=groups)
    theirs, _ = _trajectory(torch, make_opt, groups=groups)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


SGD_OPTIONS = [dict(momentum=m, dampening=d, weight_decay=w, nesterov=n, maximize=mx)
               for m, d, w, n, mx in itertools.product([0.0, 0.9], [0.0, 0.3], [0.0, 0.05], [False, True],
                                                       [False, True])
               if not (n and (m == 0 or d != 0))]


@pytest.mark.parametrize("kw", SGD_OPTIONS, ids=str)
def test_sgd(kw):
    _compare(lambda o, p: o.SGD(p, lr=0.03, **kw))


ADAM_OPTIONS = [dict(amsgrad=a, weight_decay=w, maximize=m, betas=b)
                for a, w, m, b in itertools.product([False, True], [0.0, 0.1], [False, True],
                                                    [(0.9, 0.999), (0.5, 0.9)])]


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("kw", ADAM_OPTIONS, ids=str)
def test_adam(name, kw):
    _compare(lambda o, p: getattr(o, name)(p, lr=0.05, eps=1e-6, **kw), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw", [dict(alpha=a, weight_decay=w, momentum=m, centered=c)
                                for a, w, m, c in itertools.product([0.99, 0.8], [0.0, 0.1], [0.0, 0.5],
                                                                    [False, True])], ids=str)
def test_rmsprop(kw):
    _compare(lambda o, p: o.RMSprop(p, lr=0.01, **kw), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw", [dict(), dict(lr_decay=0.1), dict(weight_decay=0.1),
                                dict(initial_accumulator_value=0.5, eps=1e-6), dict(maximize=True)], ids=str)
def test_adagrad(kw):
    _compare(lambda o, p: o.Adagrad(p, lr=0.1, **kw), rtol=1e-4, atol=1e-5)


def test_param_groups_with_own_options():
    _compare(lambda o, p: o.SGD(p, lr=0.02, momentum=0.9), groups=True)
    _compare(lambda o, p: o.Adam(p, lr=0.01), groups=True, rtol=1e-4, atol=1e-5)


def test_closure_and_zero_grad():
    p = chainrule.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == pytest.approx(5.0)
    np.testing.assert_allclose(p.detach().numpy(), [0.8, 1.6], rtol=1e-6)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def _state_numpy(sd):
    return {k: {n: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v) for n, v in s.items()}
            for k, s in sd["state"].items()}


@pytest.mark.parametrize("make", [lambda o, p: o.SGD(p, lr=0.03, momentum=0.9),
                                  lambda o, p: o.Adam(p, lr=0.05, amsgrad=True),
                                  lambda o, p: o.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
                                  lambda o, p: o.Adagrad(p, lr=0.1)], ids=["sgd", "adam", "rmsprop", "adagrad"])
def test_state_dict_matches_torch_and_round_trips(make):
    _, ours = _trajectory(chainrule, make, steps=5, groups=True)
    _, theirs = _trajectory(torch, make, steps=5, groups=True)
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert [{k: v for k, v in g.items() if k not in ("foreach", "fused", "differentiable", "capturable",
                                                        "decoupled_weight_decay")} for g in sd["param_groups"]] == \
        [{k: v for k, v in g.items() if k in sd["param_groups"][i]
          and k not in ("foreach", "fused", "differentiable", "capturable", "decoupled_weight_decay")}
         for i, g in enumerate(tsd["param_groups"])]
    mine, torchs = _state_numpy(sd), _state_numpy(tsd)
    assert mine.keys() == torchs.keys()
    for k in mine:
        assert mine[k].keys() == torchs[k].keys()
        for name in mine[k]:
            np.testing.assert_allclose(mine[k][name], torchs[k][name], rtol=1e-4, atol=1e-5)
    # a fresh optimizer loaded from our state dict (or torch's) continues the same trajectory
    p1 = chainrule.tensor(P1.copy(), requires_grad=True)
    p2 = chainrule.tensor(P2.copy(), requires_grad=True)
    fresh = make(optim, [{"params": [p1]}, {"params": [p2], "lr": 0.5}])
    fresh.load_state_dict(tsd)
    assert fresh.param_groups[1]["lr"] == sd["param_groups"][1]["lr"]
    for p_old, p_new in zip([q for g in ours.param_groups for q in g["params"]], [p1, p2]):
        p_new._data[...] = p_old._data
    for opt, (a, b) in [(ours, [q for g in ours.param_groups for q in g["params"]]), (fresh, (p1, p2))]:
        opt.zero_grad()
        _loss(chainrule, a, b).backward()
        opt.step()
    np.testing.assert_allclose(p1.detach().numpy(), ours.param_groups[0]["params"][0].detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p2.detach().numpy(), ours.param_groups[1]["params"][0].detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    sd_again = ours.state_dict()
    assert sd_again["param_groups"][0]["params"] == [0] and sd_again["param_groups"][1]["params"] == [1]


def test_load_state_dict_errors():
    p = chainrule.tensor([1.0], requires_grad=True)
    q = chainrule.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(optim.SGD([p, q], lr=0.1).state_dict())


def test_constructor_errors():
    p = chainrule.tensor([1.0], requires_grad=True)
    for lib in (optim, torch.optim):
        with pytest.raises(ValueError, match="empty parameter list"):
            lib.SGD([], lr=0.1)
        with pytest.raises(ValueError, match="Invalid learning rate"):
            lib.Adam([p if lib is optim else torch.ones(1, requires_grad=True)], lr=-1)
        with pytest.raises(ValueError, match="Nesterov momentum requires"):
            lib.SGD([p if lib is optim else torch.ones(1, requires_grad=True)], lr=0.1, nesterov=True)
        with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
            lib.AdamW([p if lib is optim else torch.ones(1, requires_grad=True)], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError, match="sets"):
        optim.SGD([p], lr=0.1).add_param_group({"params": {chainrule.tensor([1.0], requires_grad=True)}})


def test_add_param_group_and_repr():
    p = chainrule.tensor([1.0], requires_grad=True)
    q = chainrule.tensor([2.0], requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    opt.add_param_group({"params": q, "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    assert "Parameter Group 1" in repr(opt)


@pytest.mark.parametrize("kw", [dict(), dict(etas=(0.3, 1.5), step_sizes=(1e-4, 0.2)), dict(maximize=True),
                                dict(lr=0.1)], ids=str)
def test_rprop(kw):
    _compare(lambda o, p: o.Rprop(p, **kw), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw", [dict(), dict(t0=5, lambd=0.01), dict(weight_decay=0.1, alpha=0.5),
                                dict(maximize=True, t0=3)], ids=str)
def test_asgd(kw):
    _compare(lambda o, p: o.ASGD(p, lr=0.05, **kw), rtol=1e-4, atol=1e-5)


def test_asgd_keeps_the_average_of_the_iterates_in_its_state():
    _, ours = _trajectory(chainrule, lambda o, p: o.ASGD(p, lr=0.05, t0=5))
    _, theirs = _trajectory(torch, lambda o, p: o.ASGD(p, lr=0.05, t0=5))
    for p_ours, p_theirs in zip(ours.param_groups[0]["params"], theirs.param_groups[0]["params"]):
        for key in ("ax", "eta", "mu", "step"):
            np.testing.assert_allclose(np.asarray(ours.state[p_ours][key].numpy()),
                                       theirs.state[p_theirs][key].numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kw", [dict(), dict(weight_decay=0.1), dict(d=2.0, beta2_decay=-0.5),
                                dict(eps=(1e-8, 1e-2), maximize=True)], ids=str)
def test_adafactor(kw):
    _compare(lambda o, p: o.Adafactor(p, lr=0.05, **kw), rtol=1e-4, atol=1e-5)
