"""Session 58, lane mendDM: the optimizer fuzzer's open kinds (tests/fuzz/test_optim_configs.py).

* float32 Adam's moments are torch's bits; float64's within a few ulps (``lerp`` and ``addcmul`` of two
  float64 arrays keep NumPy's two roundings, for speed: see ``_opmath.fused_lerp``/``fused_addcmul``;
  an ``addcmul`` with a 0-d factor, ASGD's, is one fused multiply-add as torch's). (torch's own float64 and float32 ``sqrt`` is an ulp off the correctly rounded root for
  some inputs on some CPUs, MKL's on this AMD EPYC: the parameter, divided by ``sqrt(v)``, is compared
  to a few ulps; the moments, which take no root, bit for bit.)
* a group that sets ``differentiable=True`` in an optimizer whose default is False: its moments take
  the same fused kernels (only the last step of torch's differentiable Adam differs); Adadelta's,
  Adagrad's and Adamax's foreach steps refuse it even when the group has no gradient.
* a group's own 0-d tensor lr with foreach=True: Adam's foreach step refuses it (RuntimeError), Adamax's
  and NAdam's read it with ``.item()`` into step sizes computed in double.
* ASGD's eta in float32 tensor ops (a tensor lr, a foreach step), its pow as torch's.
* LBFGS: |g|_1 in torch's summation order, its adds with alpha one fused multiply-add each.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _adam_run(lib, name, options, starts, grads, group_options=None):
    params = [lib.from_numpy(s.copy()).requires_grad_(True) for s in starts]
    groups = [{"params": params, **(group_options or {})}]
    optimizer = getattr(lib.optim, name)(groups, **options)
    for row in grads:
        for p, g in zip(params, row):
            p.grad = lib.from_numpy(g.copy())
        optimizer.step()
    state = [optimizer.state[p] for p in params]
    moments = [s[k].detach().numpy().copy() for s in state for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
               if k in s]
    return [p.detach().numpy().copy() for p in params], moments


def _ulps(mine, theirs):
    scale = max(float(np.abs(theirs).max()), np.finfo(theirs.dtype).tiny)
    return float(np.abs(mine - theirs).max()) / float(np.spacing(theirs.dtype.type(scale)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, options", [
    ("Adam", dict(lr=0.1, betas=(0.9, 0.999), eps=1e-3)),
    ("Adam", dict(lr=0.3, betas=(0.3, 0.5), amsgrad=True, maximize=True, foreach=True)),
    ("Adam", dict(lr=0.01, betas=(0.99, 0.9), weight_decay=0.3, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.1, betas=(0.6, 0.99), weight_decay=0.1, foreach=False)),
    ("AdamW", dict(lr=0.3, betas=(0.0, 0.5), amsgrad=True, foreach=True)),
])
def test_adam_moments_are_torchs_bits(name, options, dtype):
    # (no coupled weight decay: the moments then depend on the gradients alone.) Before: float64
    # moments rounded NumPy's product and sum (v + (1-b2)·g², m + (1-b1)·(g - m)): 181 of 200 random
    # float64 Adam/AdamW cases of a probe off in the last bits
    rng = np.random.default_rng(5)
    shapes = [(5, 4), (), (3,)]
    starts = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(6)]
    theirs = _adam_run(torch, name, options, starts, grads)
    mine = _adam_run(chainrule, name, options, starts, grads)
    for a, b in zip(mine[1], theirs[1]):
        if dtype == "float64":  # lerp and addcmul of arrays round twice in float64 (see _opmath)
            assert _ulps(a, b) <= 4
        else:
            np.testing.assert_array_equal(a, b)
    for a, b in zip(mine[0], theirs[0]):
        # (the parameter divides by torch's sqrt, see the docstring: an ulp there, a few more at a
        # parameter that a large step cancelled)
        assert _ulps(a, b) <= 64


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_a_groups_own_differentiable_steps_moments_with_torchs_kernels(name, amsgrad):
    # before: a differentiable group's moments took NumPy's roundings (6 of 20 float32 cases of a
    # probe differed in exp_avg_sq from the first step)
    rng = np.random.default_rng(3)
    starts = [rng.standard_normal((3, 2)).astype(np.float32)]
    grads = [[rng.standard_normal((3, 2)).astype(np.float32)] for _ in range(5)]
    options = dict(lr=0.1, weight_decay=0.1, amsgrad=amsgrad)
    theirs = _adam_run(torch, name, options, starts, grads, {"differentiable": True})
    mine = _adam_run(chainrule, name, options, starts, grads, {"differentiable": True})
    for a, b in zip(mine[1][:2], theirs[1][:2]):  # (the parameter: torch's float32 sqrt of 1 - beta2^t)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["Adadelta", "Adagrad", "Adamax", "Adam", "RMSprop", "ASGD"])
def test_foreach_differentiable_group_without_gradients(name):
    """torch's Adadelta, Adagrad and Adamax foreach steps assert no autograd before they return on a
    group with no gradient; the others return first (before: chainrule refused only groups with one)."""
    outcomes = []
    for lib in (torch, chainrule):
        stepped, idle = lib.zeros(2, requires_grad=True), lib.zeros(2, requires_grad=True)
        stepped.grad = lib.ones(2)
        optimizer = getattr(lib.optim, name)([{"params": [stepped]},
                                             {"params": [idle], "foreach": True, "differentiable": True}], lr=0.1)
        try:
            optimizer.step()
            outcomes.append(("stepped",))
        except AssertionError as error:
            outcomes.append(("AssertionError", str(error)))
    assert outcomes[1] == outcomes[0]


def _tensor_lr_in_foreach_group(lib, name, dtype, options):
    """Two groups, the second's own 0-d tensor lr and foreach=True (the constructor's check sees a
    float lr): its parameters after five steps, or the error's class and words."""
    rng = np.random.default_rng(4)
    starts = [rng.standard_normal(s).astype(dtype) for s in ((3,), (2, 3), ())]
    params = [lib.from_numpy(s.copy()).requires_grad_(True) for s in starts]
    optimizer = getattr(lib.optim, name)([{"params": params[:1]},
                                          {"params": params[1:], "lr": lib.tensor(0.37), "foreach": True}],
                                         lr=0.1, **options)
    try:
        for _ in range(5):
            for p in params:
                p.grad = lib.from_numpy(rng.standard_normal(tuple(p.shape)).astype(dtype))
            optimizer.step()
    except RuntimeError as error:
        return type(error).__name__, str(error)
    return [p.detach().numpy().copy() for p in params]


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_foreach_group_refuses_a_tensor_lr_at_the_step(name):
    # before: chainrule stepped the group (its constructor's ValueError sees the defaults only)
    expected = _tensor_lr_in_foreach_group(torch, name, "float32", {})
    assert expected == ("RuntimeError", "lr as a Tensor is not supported for capturable=False and foreach=True")
    assert _tensor_lr_in_foreach_group(chainrule, name, "float32", {}) == expected


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, options, ulps", [
    ("Adamax", dict(weight_decay=0.1, maximize=True), 0),  # (no square root: bit for bit)
    ("NAdam", dict(weight_decay=0.1), 64),
    ("NAdam", dict(weight_decay=0.1, decoupled_weight_decay=True), 64),
])
def test_foreach_step_sizes_read_a_tensor_lr_in_double(name, options, ulps, dtype):
    # torch's foreach Adamax and NAdam take lr.item() into step sizes computed in double, their
    # for-loops compute them in the tensor's float32. Before: float64 parameters 1e8 ulps off
    theirs = _tensor_lr_in_foreach_group(torch, name, dtype, options)
    mine = _tensor_lr_in_foreach_group(chainrule, name, dtype, options)
    for a, b in zip(mine, theirs):
        # (float64's exp_avg: lerp rounds twice, a few ulps; the step size is read in double alike)
        assert _ulps(a, b) <= (ulps if dtype == "float32" else max(ulps, 4))


def _asgd_run(lib, dtype, tensor_lr, foreach, alpha):
    rng = np.random.default_rng(6)
    params = [lib.from_numpy(rng.standard_normal(s).astype(dtype)).requires_grad_(True) for s in ((3,), ())]
    lr = lib.tensor(0.2159586101770401) if tensor_lr else 0.2159586101770401
    optimizer = lib.optim.ASGD([{"params": params, "lr": lr, "foreach": foreach}], lambd=0.01, alpha=alpha,
                               t0=2.0, weight_decay=0.01)
    seen = []
    for _ in range(8):
        for p in params:
            p.grad = lib.from_numpy(rng.standard_normal(tuple(p.shape)).astype(dtype))
        optimizer.step()
        seen += [p.detach().numpy().copy() for p in params]
        seen += [optimizer.state[p][key].numpy().copy() for p in params for key in ("eta", "ax")]
    return seen


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("tensor_lr, foreach", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("alpha", [0.75, 0.7, 1.3, 2.0, -2.0])
def test_asgd_eta_rounds_as_torchs_float32_tensor_ops(alpha, tensor_lr, foreach, dtype):
    """torch's eta = lr / (1 + lambd·lr·step)^alpha in float32 0-d tensor ops (a tensor lr, or its
    foreach step's float32 step): its pow the double power of the float32 base rounded once (not
    powf), a tensor lr divided (not the reciprocal's product). Before: 7, 19 and 47 of 60 probe cases
    differed (for-loop tensor lr, foreach float lr, foreach tensor lr). (alpha=0.5 is torch's float32
    sqrt kernel: an ulp off the correctly rounded root on some CPUs, not compared.)"""
    theirs = _asgd_run(torch, dtype, tensor_lr, foreach, alpha)
    mine = _asgd_run(chainrule, dtype, tensor_lr, foreach, alpha)
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a, b)


def _lbfgs_run(lib, shape, dtype, steps, **options):
    rng = np.random.default_rng(7)
    param = lib.from_numpy(rng.standard_normal(shape).astype(dtype)).requires_grad_(True)
    weights = lib.from_numpy(rng.uniform(0.5, 2.0, shape).astype(dtype))
    slopes = lib.from_numpy(rng.standard_normal(shape).astype(dtype))
    optimizer = lib.optim.LBFGS([param], **options)

    def closure():
        optimizer.zero_grad()
        loss = (weights * (param - 0.5) ** 2).sum() + (slopes * param).sum()
        loss.backward()
        return loss

    seen = []
    for _ in range(steps):
        optimizer.step(closure)
        state = optimizer.state[param]
        seen += [param.detach().numpy().copy()] + [state[key].numpy().copy() for key in ("d", "prev_flat_grad")
                                                   if key in state]
        if "H_diag" in state and hasattr(state["H_diag"], "numpy"):
            seen.append(state["H_diag"].numpy().copy())
    return seen


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lbfgs_first_step_sums_and_adds_as_torch(dtype):
    """The first step's length min(1, 1/|g|_1)·lr sums |g| in torch's order (``_sum_order``) and
    ``p.add_(d, alpha=t)`` is one fused multiply-add. Before: 1/|g|_1 in NumPy's order, p + t·d rounded
    twice."""
    theirs = _lbfgs_run(torch, (5, 4), dtype, 1, lr=1.0, max_iter=1)
    mine = _lbfgs_run(chainrule, (5, 4), dtype, 1, lr=1.0, max_iter=1)
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_two_loop_recursion_adds_as_torch(line_search_fn, dtype):
    """The two-loop recursion's q.add_(y, alpha=-al) and r.add_(s, alpha=al - be) are fused
    multiply-adds. One element: the dot products have no order to differ in (torch's dot of longer
    vectors is MKL's, whose summation order is not NumPy's: the fuzzer's open LBFGS kind). Before:
    the search direction an ulp off from the fifth step."""
    theirs = _lbfgs_run(torch, (), dtype, 7, lr=0.1, max_iter=3, history_size=2, line_search_fn=line_search_fn)
    mine = _lbfgs_run(chainrule, (), dtype, 7, lr=0.1, max_iter=3, history_size=2, line_search_fn=line_search_fn)
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a, b)
