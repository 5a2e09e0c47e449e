"""optim.LBFGS against torch's on the same deterministic problems, from the same start."""

import warnings

import numpy as np
import pytest
import torch

import chainrule


def _rosenbrock_run(lib, line_search_fn, dtype, steps, max_iter):
    x = lib.tensor([-1.5, 2.0], dtype=getattr(lib, dtype), requires_grad=True)
    optimizer = lib.optim.LBFGS([x], lr=1, max_iter=max_iter, history_size=10, line_search_fn=line_search_fn)

    def closure():
        optimizer.zero_grad()
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return loss

    losses = [optimizer.step(closure).item() for _ in range(steps)]
    state = optimizer.state[x]
    return x.detach().numpy(), losses, state["func_evals"], state["n_iter"]


def test_rosenbrock_strong_wolfe_matches_torch_step_for_step():
    mine = _rosenbrock_run(chainrule, "strong_wolfe", "float64", steps=3, max_iter=50)
    theirs = _rosenbrock_run(torch, "strong_wolfe", "float64", steps=3, max_iter=50)
    np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-10)
    np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-6)
    assert mine[2:] == theirs[2:]  # the same number of evaluations and iterations
    np.testing.assert_allclose(mine[0], [1.0, 1.0], atol=1e-4)


def test_rosenbrock_fixed_step_matches_torch_over_the_first_iterations():
    # with a fixed step Rosenbrock amplifies rounding differences, so compare a short run
    mine = _rosenbrock_run(chainrule, None, "float64", steps=1, max_iter=8)
    theirs = _rosenbrock_run(torch, None, "float64", steps=1, max_iter=8)
    np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-9)
    assert mine[2:] == theirs[2:]


def _least_squares_run(lib, line_search_fn):
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((64, 5)).astype(np.float32)
    targets = (inputs @ rng.standard_normal((5, 2)) + 0.1 * rng.standard_normal((64, 2))).astype(np.float32)
    weight = (0.3 * rng.standard_normal((2, 5))).astype(np.float32)
    model = lib.nn.Linear(5, 2)
    with lib.no_grad():
        model.weight.copy_(lib.tensor(weight))
        model.bias.zero_()
    optimizer = lib.optim.LBFGS(model.parameters(), lr=0.5, max_iter=15, history_size=5,
                                line_search_fn=line_search_fn)
    x, y = lib.tensor(inputs), lib.tensor(targets)

    def closure():
        optimizer.zero_grad()
        loss = lib.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    losses = [optimizer.step(closure).item() for _ in range(4)]
    return model.weight.detach().numpy(), model.bias.detach().numpy(), losses


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_least_squares_model_matches_torch(line_search_fn):
    mine = _least_squares_run(chainrule, line_search_fn)
    theirs = _least_squares_run(torch, line_search_fn)
    np.testing.assert_allclose(mine[0], theirs[0], atol=1e-5)
    np.testing.assert_allclose(mine[1], theirs[1], atol=1e-5)
    np.testing.assert_allclose(mine[2], theirs[2], rtol=1e-5)
    assert mine[2][-1] < 0.01  # converged to the noise level


def test_lbfgs_errors():
    x = chainrule.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        chainrule.optim.LBFGS([x], lr=-1)
    with pytest.raises(RuntimeError, match="strong_wolfe"):
        chainrule.optim.LBFGS([x], line_search_fn="armijo")
    with pytest.raises(ValueError, match="parameter groups"):
        chainrule.optim.LBFGS([{"params": [x]}, {"params": [chainrule.zeros(1, requires_grad=True)]}])
    with pytest.raises(RuntimeError, match="needs a closure"):
        chainrule.optim.LBFGS([x]).step(None)


def test_lbfgs_stops_at_once_when_the_gradient_is_zero():
    x = chainrule.ones(3, requires_grad=True)
    optimizer = chainrule.optim.LBFGS([x])
    calls = []

    def closure():
        calls.append(1)
        optimizer.zero_grad()
        loss = ((x - 1) ** 2).sum()
        loss.backward()
        return loss

    assert optimizer.step(closure).item() == 0.0
    assert len(calls) == 1


def _huge_lr(lib, lr, line_search_fn):
    w = lib.tensor([1.5, -2.0], requires_grad=True)
    opt = lib.optim.LBFGS([w], lr=lr, max_iter=5, line_search_fn=line_search_fn)

    def closure():
        opt.zero_grad()
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        return loss

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            losses = [float(opt.step(closure)) for _ in range(2)]
        except RuntimeError as error:
            return str(error), w.tolist(), [str(c.message) for c in caught]
    return [repr(loss) for loss in losses], np.isnan(w.detach().numpy()).tolist(), [str(c.message) for c in caught]


@pytest.mark.parametrize("lr, line_search_fn", [(1e308, None), (1e308, "strong_wolfe"), (1e30, None),
                                                (float("inf"), None)])
def test_lbfgs_with_a_huge_lr_as_torch(lr, line_search_fn):
    # a step beyond float32 is torch's overflow error from its add_(alpha=step) (at the second
    # step, whose first iteration takes lr itself); a huge but representable one runs silently
    # into nan
    mine, theirs = _huge_lr(chainrule, lr, line_search_fn), _huge_lr(torch, lr, line_search_fn)
    if line_search_fn is None:
        assert mine == theirs
    else:  # (torch's line search leaves the parameters as they were after its nan steps; ours nan)
        assert mine[0] == theirs[0] == "value cannot be converted to type float without overflow"
