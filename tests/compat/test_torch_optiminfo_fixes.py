"""What torch's optimizer database (common_optimizers.optim_db, driven by tools/torch_optiminfo_trial.py)
found chainrule doing differently, each checked against torch 2.13 in our own words."""

from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _values(dtype, shapes=((3, 2), (3,), ()), seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        value = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            value = value + 1j * rng.standard_normal(shape)
        out.append(np.asarray(value).astype(dtype))
    return out


def _grads(values, steps, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        step = []
        for value in values:
            grad = rng.standard_normal(value.shape)
            if value.dtype.kind == "c":
                grad = grad + 1j * rng.standard_normal(value.shape)
            step.append(np.asarray(grad).astype(value.dtype))
        out.append(step)
    return out


def _trajectory(lib, name, values, grads, kwargs, differentiable=False):
    params = [lib.nn.Parameter(lib.from_numpy(v.copy())) for v in values]
    if differentiable:
        params = [p.clone() for p in params]
    optimizer = getattr(lib.optim, name)(params, **kwargs)
    history = []
    for step in grads:
        for p, g in zip(params, step):
            p.grad = lib.from_numpy(g.copy())
        optimizer.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history, optimizer, params


def _assert_same_steps(name, dtype, kwargs, steps=6, differentiable=False, rtol=1e-5, atol=1e-6):
    values = _values(dtype)
    grads = _grads(values, steps)
    ours, _, _ = _trajectory(chainrule, name, values, grads, kwargs, differentiable)
    theirs, _, _ = _trajectory(torch, name, values, grads, kwargs, differentiable)
    for step, (mine, reference) in enumerate(zip(ours, theirs)):
        for a, b in zip(mine, reference):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{name} step {step + 1}")


# ------------------------------------------------------------------ complex parameters
@pytest.mark.parametrize("name", ["Adam", "AdamW", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adamax"])
def test_a_zero_dim_complex_parameter_steps_as_torch(name):
    # a 0-d complex parameter's real view used to fail (NumPy cannot change a 0-d array's itemsize)
    _assert_same_steps(name, np.complex64, {})


@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.01}, {"rho": 0.95, "weight_decay": 0.9}, {"maximize": True}])
def test_adadelta_keeps_separate_averages_for_real_and_imaginary_parts(kwargs):
    _assert_same_steps("Adadelta", np.complex128, kwargs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"etas": (0.4, 1.3)}, {"step_sizes": (2e-4, 1e-3)}, {"maximize": True}])
def test_rprop_of_a_complex_parameter_as_torch(kwargs):
    # torch starts a complex step size at complex(lr, lr) and moves each part by its own sign
    _assert_same_steps("Rprop", np.complex128, kwargs, rtol=1e-10, atol=1e-12)


def test_adagrad_complex_accumulator_starts_at_the_value_in_both_parts():
    _assert_same_steps("Adagrad", np.complex64, {"initial_accumulator_value": 0.1, "weight_decay": 0.1})


# ------------------------------------------------------------------ parameter lists and groups
@pytest.mark.parametrize("name", ["SGD", "Adam", "NAdam", "RMSprop", "Adagrad"])
def test_a_differentiable_optimizer_takes_non_leaf_parameters(name):
    kwargs = {"differentiable": True, "momentum": 0.9} if name == "SGD" else {"differentiable": True}
    # float64, but torch's differentiable Adam and NAdam fold float32 0-d scales in, whose last bit depends
    # on the CPU's vector kernels (AVX2 or AVX-512): 1e-9 admits that rounding and nothing coarser
    _assert_same_steps(name, np.float64, kwargs, differentiable=True, rtol=1e-9, atol=1e-12)


def test_a_plain_optimizer_still_refuses_a_non_leaf_parameter():
    leaf = chainrule.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        chainrule.optim.SGD([leaf * 2], lr=0.1)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        torch.optim.SGD([torch.ones(2, requires_grad=True) * 2], lr=0.1)


def test_a_group_with_duplicate_parameters_warns_as_torch():
    pattern = "a parameter group with duplicate parameters"
    for lib in (torch, chainrule):
        p = lib.nn.Parameter(lib.ones(2))
        with pytest.warns(UserWarning, match=pattern):
            lib.optim.SGD([p, p], lr=0.1)


def test_mixing_named_and_unnamed_groups_gives_torchs_message():
    pattern = ("all optimizer param groups should be with/without names. cannot add param group with names to "
               "the optimizer")
    for lib in (torch, chainrule):
        a, b = lib.nn.Parameter(lib.ones(2)), lib.nn.Parameter(lib.ones(2))
        with pytest.raises(ValueError, match=re.escape(pattern)):
            lib.optim.SGD([{"params": [a], "lr": 0.01}, {"params": [("weight", b)]}], lr=0.1)


# ------------------------------------------------------------------ argument errors
def test_rprop_names_both_etas_as_torch():
    for lib in (torch, chainrule):
        p = lib.nn.Parameter(lib.ones(2))
        with pytest.raises(ValueError, match="Invalid eta values: 1.0, 0.5"):
            lib.optim.Rprop([p], lr=1e-2, etas=(1.0, 0.5))


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_tensor_lr_and_betas_are_refused_with_foreach_when_not_capturable(name):
    for lib in (torch, chainrule):
        p = lib.nn.Parameter(lib.ones(2))
        cls = getattr(lib.optim, name)
        with pytest.raises(ValueError, match="lr as a Tensor is not supported for capturable=False and foreach=True"):
            cls([p], lr=lib.tensor(0.001), foreach=True)
        with pytest.raises(ValueError, match=r"betas\[0\] as a Tensor is not supported for capturable=False and "
                                             "foreach=True"):
            cls([p], lr=1e-2, betas=(lib.tensor(0.9), lib.tensor(0.99)), foreach=True)
        cls([p], lr=lib.tensor(0.001), foreach=False)  # the for-loop step takes them


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad"])
def test_fused_refuses_a_complex_parameter_at_the_step_before_changing_it(name):
    pattern = re.escape("`fused=True` requires all the params to be floating point Tensors of supported devices")
    for lib in (torch, chainrule):
        p = lib.nn.Parameter(lib.ones(2, dtype=lib.complex64))
        optimizer = getattr(lib.optim, name)([p], lr=0.1, fused=True)
        p.grad = lib.ones_like(p)
        with pytest.raises(RuntimeError, match=pattern):
            optimizer.step()
        assert p.detach().numpy().tolist() == [1, 1]


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_fused_steps_ignore_capturable_on_the_cpu(name):
    # torch's fused kernels do not check capturable's devices: the CPU fused step runs
    _assert_same_steps(name, np.float32, {"capturable": True, "fused": True, "amsgrad": True})


# ------------------------------------------------------------------ state dicts
def test_a_complex_parameters_real_state_stays_real_when_loaded():
    # NAdam's mu_product and ASGD's eta/mu are float32 tensors beside a complex parameter; loading
    # casts floating state to a floating parameter's dtype only, as torch
    values = _values(np.complex64)
    grads = _grads(values, 6)
    for name in ("NAdam", "ASGD"):
        _, reference, _ = _trajectory(torch, name, values, grads[:3], {})
        params = [chainrule.nn.Parameter(chainrule.from_numpy(v.copy())) for v in values]
        optimizer = getattr(chainrule.optim, name)(params)
        optimizer.load_state_dict(reference.state_dict())
        params_t = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
        optimizer_t = getattr(torch.optim, name)(params_t)
        optimizer_t.load_state_dict(reference.state_dict())
        for step in grads[3:]:
            for lib, ps, opt in ((chainrule, params, optimizer), (torch, params_t, optimizer_t)):
                for p, g in zip(ps, step):
                    p.grad = lib.from_numpy(g.copy())
                opt.step()
        for ours, theirs in zip(params, params_t):
            np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
        key = "mu_product" if name == "NAdam" else "eta"
        assert optimizer.state[params[0]][key].dtype == chainrule.float32


def _lbfgs(lib, values, lr=1, steps=3, optimizer=None, params=None):
    target = [np.asarray(v * 0.5 + 1) for v in values]
    if params is None:
        params = [lib.nn.Parameter(lib.from_numpy(v.copy())) for v in values]
    optimizer = optimizer or lib.optim.LBFGS(params, lr=lr, max_iter=5)

    def closure():
        optimizer.zero_grad()
        loss = sum(((p - lib.from_numpy(t.copy())) ** 2).sum() + (p.sum() * 0.1) ** 2 for p, t in zip(params, target))
        loss.backward()
        return loss

    for _ in range(steps):
        optimizer.step(closure)
    return optimizer, params


def test_lbfgs_state_holds_tensors_as_torch():
    values = _values(np.float64)
    ours, _ = _lbfgs(chainrule, values)
    theirs, _ = _lbfgs(torch, values)
    mine, reference = ours.state_dict()["state"][0], theirs.state_dict()["state"][0]
    assert sorted(mine) == sorted(reference)
    for key, value in reference.items():
        if isinstance(value, torch.Tensor):
            assert isinstance(mine[key], chainrule.Tensor), key
            np.testing.assert_allclose(mine[key].numpy(), value.numpy(), rtol=1e-8, atol=1e-10)
        elif isinstance(value, list):
            assert [type(v).__name__ for v in mine[key]] == [type(v).__name__ for v in value], key
        else:
            assert type(mine[key]) is type(value) and mine[key] == pytest.approx(value), key


def test_lbfgs_continues_from_torchs_state_dict():
    values = _values(np.float64)
    theirs, torch_params = _lbfgs(torch, values)
    params = [chainrule.nn.Parameter(chainrule.from_numpy(p.detach().numpy().copy())) for p in torch_params]
    ours = chainrule.optim.LBFGS(params, lr=1, max_iter=5)
    ours.load_state_dict(theirs.state_dict())
    _lbfgs(chainrule, values, steps=2, optimizer=ours, params=params)
    _lbfgs(torch, values, steps=2, optimizer=theirs, params=torch_params)
    for mine, reference in zip(params, torch_params):
        np.testing.assert_allclose(mine.detach().numpy(), reference.detach().numpy(), rtol=1e-8, atol=1e-10)


def test_lbfgs_keeps_a_tensor_lr_and_its_step_length_as_tensors():
    values = _values(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, _ = _lbfgs(chainrule, values, lr=chainrule.tensor(0.5))
        theirs, _ = _lbfgs(torch, values, lr=torch.tensor(0.5))
    assert isinstance(ours.param_groups[0]["lr"], chainrule.Tensor)
    for optimizer, kind in ((ours, chainrule.Tensor), (theirs, torch.Tensor)):
        assert isinstance(optimizer.state_dict()["state"][0]["t"], kind)


# ------------------------------------------------------------------ SparseAdam, Adafactor, ASGD
def test_sparse_adam_refuses_sparse_and_complex_parameters_naming_them():
    for lib in (torch, chainrule):
        dense = lib.nn.Parameter(lib.ones(3))
        with pytest.raises(ValueError, match=re.escape("Sparse params at indices [[0, 1]]: SparseAdam requires "
                                                       "dense parameter tensors")):
            lib.optim.SparseAdam([dense, lib.zeros(3).to_sparse()])
        with pytest.raises(ValueError, match=re.escape("Complex params at indices [[1, 0]]: SparseAdam does not "
                                                       "support complex parameters")):
            lib.optim.SparseAdam([{"params": [dense]}, {"params": [lib.ones(2, dtype=lib.complex64)]}])


def test_sparse_adam_counts_steps_in_an_int_and_loads_torchs_state():
    rng = np.random.default_rng(3)
    table = rng.standard_normal((5, 2)).astype(np.float32)
    grads = [rng.standard_normal((5, 2)).astype(np.float32) * np.array([[1], [0], [1], [0], [1]], np.float32)
             for _ in range(4)]

    def run(lib, steps, optimizer=None, weight=None):
        weight = weight if weight is not None else lib.nn.Parameter(lib.from_numpy(table.copy()))
        optimizer = optimizer or lib.optim.SparseAdam([weight], lr=0.05)
        for grad in steps:
            weight.grad = lib.from_numpy(grad.copy()).to_sparse()
            optimizer.step()
        return optimizer, weight

    theirs, torch_weight = run(torch, grads[:2])
    ours, weight = run(chainrule, grads[:2])
    assert ours.state_dict()["state"][0]["step"] == theirs.state_dict()["state"][0]["step"] == 2
    assert type(ours.state_dict()["state"][0]["step"]) is int
    resumed = chainrule.optim.SparseAdam([weight], lr=0.05)
    resumed.load_state_dict(theirs.state_dict())
    run(chainrule, grads[2:], resumed, weight)
    run(torch, grads[2:], theirs, torch_weight)
    np.testing.assert_allclose(weight.detach().numpy(), torch_weight.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_adafactor_refuses_a_complex_parameter_at_the_step():
    for lib in (torch, chainrule):
        p = lib.nn.Parameter(lib.ones(2, 3, dtype=lib.complex64))
        optimizer = lib.optim.Adafactor([p])
        p.grad = lib.ones_like(p)
        with pytest.raises(RuntimeError, match="Adafactor does not support complex parameters"):
            optimizer.step()
        assert p.detach().numpy().tolist() == [[1] * 3] * 2


@pytest.mark.parametrize("foreach", [False, True])
def test_asgd_eta_takes_torchs_float32_rounding(foreach):
    # torch writes eta through a default-dtype tensor (and computes the foreach step's on the float32
    # step tensor): float64 parameters see eta rounded to float32 however it is stored
    _assert_same_steps("ASGD", np.float64, {"foreach": foreach, "lr": 0.1, "lambd": 0.9}, steps=8,
                       rtol=1e-13, atol=1e-15)


def test_asgd_continues_a_float64_state_loaded_from_torch():
    values = _values(np.float64)
    grads = _grads(values, 6)
    _, reference, _ = _trajectory(torch, "ASGD", values, grads[:3], {"lr": 0.1})
    start = [p.detach().numpy().copy() for group in reference.param_groups for p in group["params"]]
    results = []
    for lib in (torch, chainrule):
        params = [lib.nn.Parameter(lib.from_numpy(v.copy())) for v in start]
        optimizer = lib.optim.ASGD(params, lr=0.1)
        # a copy: torch's load keeps a same-dtype tensor (ax) shared with the dict it was given
        optimizer.load_state_dict(copy.deepcopy(reference.state_dict()))
        for step in grads[3:]:
            for p, g in zip(params, step):
                p.grad = lib.from_numpy(g.copy())
            optimizer.step()
        results.append([p.detach().numpy() for p in params])
    for theirs, ours in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------ learning-rate schedulers
def _sgd(lib, groups=1):
    params = [lib.nn.Parameter(lib.ones(2)) for _ in range(groups)]
    return lib.optim.SGD([{"params": [p]} for p in params], lr=0.1)


def test_reduce_lr_on_plateau_keeps_its_default_min_lr_for_groups_added_later():
    states = []
    for lib in (torch, chainrule):
        optimizer = _sgd(lib)
        scheduler = lib.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, min_lr=0.02)
        scheduler.step(1.0)
        optimizer.add_param_group({"params": [lib.nn.Parameter(lib.ones(2))], "lr": 0.5})
        for _ in range(4):
            scheduler.step(1.0)
        states.append(({k: v for k, v in scheduler.state_dict().items()}, [g["lr"] for g in optimizer.param_groups]))
    (theirs, their_lrs), (ours, our_lrs) = states
    assert ours["default_min_lr"] == theirs["default_min_lr"] == 0.02
    assert ours["min_lrs"] == theirs["min_lrs"] == [0.02, 0.02]
    assert our_lrs == pytest.approx(their_lrs)


def test_reduce_lr_on_plateau_with_per_group_min_lrs_refuses_a_new_group():
    for lib in (torch, chainrule):
        optimizer = _sgd(lib)
        scheduler = lib.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, min_lr=[0.01])
        assert scheduler.state_dict()["default_min_lr"] is None
        optimizer.add_param_group({"params": [lib.nn.Parameter(lib.ones(2))]})
        scheduler.step(1.0)
        with pytest.raises(RuntimeError, match=re.escape("The number of param groups in the `optimizer` (2) differs "
                                                         "from when `ReduceLROnPlateau` was initialized (1)")):
            scheduler.step(1.0)


class _Warmup:
    """A callable object: its attributes are state, saved by the scheduler's state_dict."""

    def __init__(self, length):
        self.length = length

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.length)


@pytest.mark.parametrize("name", ["LambdaLR", "MultiplicativeLR"])
def test_lambda_schedulers_save_callable_objects_and_none_for_functions(name):
    saved = []
    for lib in (torch, chainrule):
        optimizer = _sgd(lib, groups=2)
        cls = getattr(lib.optim.lr_scheduler, name)
        scheduler = cls(optimizer, lr_lambda=[_Warmup(4), lambda epoch: 0.9])
        state = scheduler.state_dict()
        saved.append(state["lr_lambdas"])
        state["lr_lambdas"][0]["length"] = 8
        fresh = cls(optimizer, lr_lambda=[_Warmup(4), lambda epoch: 0.9])
        fresh.load_state_dict(state)
        assert fresh.lr_lambdas[0].length == 8 and "lr_lambdas" in state
    assert saved[0] == saved[1] == [{"length": 8}, None]


def test_cyclic_lr_saves_its_custom_scale_function_as_torch():
    for lib in (torch, chainrule):
        optimizer = _sgd(lib)
        plain = lib.optim.lr_scheduler.CyclicLR(optimizer, base_lr=0.01, max_lr=0.1, cycle_momentum=False)
        assert plain.state_dict()["_scale_fn_custom"] is None
        custom = lib.optim.lr_scheduler.CyclicLR(optimizer, base_lr=0.01, max_lr=0.1, cycle_momentum=False,
                                                 scale_fn=_Warmup(3))
        state = custom.state_dict()
        assert state["_scale_fn_custom"] == {"length": 3}
        state["_scale_fn_custom"] = {"length": 6}
        custom.load_state_dict(state)
        assert custom._scale_fn_custom.length == 6


def test_warm_restarts_step_count_stays_as_torchs():
    counts = []
    for lib in (torch, chainrule):
        optimizer = _sgd(lib)
        scheduler = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=3, T_mult=2)
        lrs = []
        for _ in range(10):
            optimizer.step()
            scheduler.step()
            lrs.append(scheduler.get_last_lr()[0])
        counts.append((scheduler.state_dict()["_step_count"], scheduler.state_dict()["T_cur"], lrs))
    assert counts[0][:2] == counts[1][:2]
    np.testing.assert_allclose(counts[1][2], counts[0][2], rtol=1e-12)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_one_element_tensor_betas_are_kept_zero_dimensional(name):
    shapes = []
    for lib in (torch, chainrule):
        p = lib.nn.Parameter(lib.ones(2))
        optimizer = getattr(lib.optim, name)([p], lr=lib.tensor(0.01), betas=(lib.tensor([[[0.9]]]), lib.tensor([[0.99]])))
        shapes.append([tuple(beta.shape) for beta in optimizer.param_groups[0]["betas"]])
    assert shapes[0] == shapes[1] == [(), ()]


def test_a_differentiable_step_over_gradients_with_a_graph_says_it_is_not_recorded():
    leaf = chainrule.ones(2, requires_grad=True)
    p = leaf.clone()
    optimizer = chainrule.optim.SGD([p], lr=0.1, differentiable=True)
    p.grad = (leaf * leaf).detach().requires_grad_()
    with pytest.warns(UserWarning, match="not recorded by autograd"):
        optimizer.step()
    plain = leaf.clone()
    plain.grad = chainrule.ones(2)  # a plain gradient: nothing is lost, nothing said
    optimizer = chainrule.optim.SGD([plain], lr=0.1, differentiable=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimizer.step()
    assert not [w for w in caught if "not recorded" in str(w.message)]


@pytest.mark.parametrize("betas", [(0, 0.5), (0.9, 0), (np.float32(0.9), 0.99)])
def test_adam_betas_must_be_floats_or_tensors_as_torch(betas):
    for lib in (torch, chainrule):
        p = lib.nn.Parameter(lib.ones(2))
        with pytest.raises(ValueError, match="betas must be either both floats or both Tensors"):
            lib.optim.Adam([p], betas=betas)


@pytest.mark.parametrize("name, kwargs", [("Adam", {"amsgrad": True}), ("AdamW", {}), ("SGD", {"momentum": 0.9}),
                                          ("RMSprop", {"centered": True}), ("NAdam", {}), ("Adagrad", {})])
def test_a_state_dict_from_an_older_torch_loads_and_continues(name, kwargs):
    # older torch wrote step as a number and had no maximize/foreach/capturable/differentiable/fused
    # in its groups: torch's setstate fills them in with the behaviour from before the flag
    values = _values(np.float32, shapes=((3, 2), (3,)))
    grads = _grads(values, 6)

    def set_grads(lib, params, step):
        for p, g in zip(params, step):
            p.grad = lib.from_numpy(g.copy())

    params_t = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    reference = getattr(torch.optim, name)(params_t, **kwargs)
    for step in grads[:3]:
        set_grads(torch, params_t, step)
        reference.step()
    older = copy.deepcopy(reference.state_dict())
    for state in older["state"].values():
        if "step" in state:
            state["step"] = int(state["step"])
    for group in older["param_groups"]:
        for flag in ("maximize", "foreach", "capturable", "differentiable", "fused"):
            group.pop(flag, None)
    results = []
    for lib in (torch, chainrule):
        params = [lib.nn.Parameter(lib.from_numpy(p.detach().numpy().copy())) for p in params_t]
        optimizer = getattr(lib.optim, name)(params, **kwargs)
        optimizer.load_state_dict(copy.deepcopy(older))
        assert optimizer.param_groups[0]["maximize"] is False
        for step in grads[3:]:
            set_grads(lib, params, step)
            optimizer.step()
        results.append(([p.detach().numpy() for p in params], optimizer.state_dict()["state"][0].get("step")))
    (theirs, their_step), (ours, our_step) = results
    for mine, reference_value in zip(ours, theirs):
        np.testing.assert_allclose(mine, reference_value, rtol=1e-6, atol=1e-7)
    if their_step is not None:
        assert float(our_step) == float(their_step) == 6 and isinstance(our_step, chainrule.Tensor)
