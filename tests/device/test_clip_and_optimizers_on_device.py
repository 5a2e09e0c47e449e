"""A training step with gradient clipping and each optimizer on 'cuda' (the stand-in): no
host<->device copy (torch's clip_grad_norm_ and optimizers don't sync either, except where torch's
own algorithm reads a value: Adafactor's two norms per parameter, LBFGS's line-search tests), and
the same parameters as chainrule on the CPU and torch 2.13 on the CPU."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

# (name, constructor keywords, host reads per parameter per step in torch's algorithm)
OPTIMIZERS = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), 0),
    ("Adam", dict(lr=0.01, amsgrad=True), 0),
    ("Adam", dict(lr=0.01, foreach=True), 0),
    ("Adam", dict(lr=0.01, capturable=True), 0),
    ("AdamW", dict(lr=0.01), 0),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True), 0),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01), 0),
    ("Adadelta", dict(lr=1.0), 0),
    ("Adamax", dict(lr=0.01), 0),
    ("NAdam", dict(lr=0.01), 0),
    ("RAdam", dict(lr=0.01), 0),
    ("ASGD", dict(lr=0.01), 0),
    ("Rprop", dict(lr=0.01), 0),
    ("Adafactor", dict(lr=0.01), 2),  # torch's too: param.norm().item() and update.norm().item()
]


def _arrays():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32),
            rng.standard_normal((6, 5)).astype(np.float32))


def _train(lib, name, kwargs, device, counter=None, steps=3):
    """``steps`` steps of a linear model with clip_grad_norm_; the host copies of each step (or None)."""
    w0, b0, x0 = _arrays()
    weight = lib.tensor(w0, device=device, requires_grad=True)
    bias = lib.tensor(b0, device=device, requires_grad=True)
    x = lib.tensor(x0, device=device)
    if device == "cpu":  # torch allows a capturable step only on the GPU; its numbers are the plain step's
        kwargs = {key: value for key, value in kwargs.items() if key != "capturable"}
    optimizer = getattr(lib.optim, name)([weight, bias], **kwargs)
    copies = []
    for _ in range(steps):
        if counter is not None:
            counter.reset_transfers()
        optimizer.zero_grad()
        loss = ((x @ weight + bias).tanh() ** 2).mean()
        loss.backward()
        lib.nn.utils.clip_grad_norm_([weight, bias], max_norm=0.05)
        optimizer.step()
        if counter is not None:
            copies.append(counter.transfers())
    return [weight.detach().cpu().numpy(), bias.detach().cpu().numpy()], copies


@pytest.mark.parametrize("name, kwargs, reads", OPTIMIZERS,
                         ids=[f"{n}-{'-'.join(k for k in kw if k != 'lr') or 'default'}" for n, kw, _ in OPTIMIZERS])
def test_clipped_training_step_makes_no_host_copy(cuda, name, kwargs, reads):
    on_device, copies = _train(chainrule, name, kwargs, "cuda", counter=cuda)
    assert copies == [2 * reads] * 3, f"host<->device copies per step: {copies}"
    on_cpu, _ = _train(chainrule, name, kwargs, "cpu")
    in_torch, _ = _train(torch, name, kwargs, "cpu")
    for ours, cpu, theirs in zip(on_device, on_cpu, in_torch):
        np.testing.assert_allclose(ours, cpu, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_lbfgs_reads_the_host_only_as_torchs_line_search_does(cuda, monkeypatch):
    # torch's LBFGS reads the loss (float(closure())) and tests the gradient, curvature and step
    # on the host each iteration; float64, as float32 rounding grows through the quasi-Newton updates
    w0, b0, x0 = (a.astype(np.float64) for a in _arrays())
    params = [chainrule.tensor(a, device="cuda", requires_grad=True) for a in (w0, b0)]
    x = chainrule.tensor(x0, device="cuda")
    optimizer = chainrule.optim.LBFGS(params, lr=0.5, max_iter=4)

    def closure():
        optimizer.zero_grad()
        loss = ((x @ params[0] + params[1]).tanh() ** 2).mean()
        loss.backward()
        return loss

    # torch reads the loss outside grad mode, so its once-per-process warning about float() of a
    # tensor that requires grad never fires in LBFGS
    monkeypatch.setattr(chainrule._config, "_warned_once", set())
    cuda.reset_transfers()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizer.step(closure)
    copies = cuda.transfers()
    assert 0 < copies <= 2 + 6 * 4  # the first loss and gradient test, then at most six per iteration
    tparams = [torch.tensor(a, requires_grad=True) for a in (w0, b0)]
    tx = torch.tensor(x0)
    toptimizer = torch.optim.LBFGS(tparams, lr=0.5, max_iter=4)

    def tclosure():
        toptimizer.zero_grad()
        loss = ((tx @ tparams[0] + tparams[1]).tanh() ** 2).mean()
        loss.backward()
        return loss

    toptimizer.step(tclosure)
    for ours, theirs in zip(params, tparams):
        np.testing.assert_allclose(ours.detach().cpu().numpy(), theirs.detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 0.0])
@pytest.mark.parametrize("foreach", [None, True, False])
def test_clip_grad_norm_stays_on_the_device(cuda, norm_type, foreach):
    w0, b0, _ = _arrays()

    def clip(lib, device):
        params = [lib.tensor(a, device=device, requires_grad=True) for a in (w0, b0)]
        for p, a in zip(params, (w0, b0)):
            p.grad = lib.tensor(3 * a, device=device)
        if lib is chainrule and device == "cuda":
            cuda.reset_transfers()
        total = lib.nn.utils.clip_grad_norm_(params, 0.5, norm_type=norm_type, foreach=foreach)
        return total, params

    total, params = clip(chainrule, "cuda")
    assert cuda.transfers() == 0
    assert total.device == chainrule.device("cuda:0") and total.dtype == chainrule.float32
    assert all(p.grad.device == chainrule.device("cuda:0") for p in params)
    ttotal, tparams = clip(torch, "cpu")
    assert total.item() == pytest.approx(ttotal.item(), rel=1e-6)
    for ours, theirs in zip(params, tparams):
        np.testing.assert_allclose(ours.grad.cpu().numpy(), theirs.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_clip_grad_value_and_the_split_halves_stay_on_the_device(cuda):
    w0, b0, _ = _arrays()
    ours = [chainrule.tensor(a, device="cuda", requires_grad=True) for a in (w0, b0)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (w0, b0)]
    for p, q, a in zip(ours, theirs, (w0, b0)):
        p.grad, q.grad = chainrule.tensor(a, device="cuda"), torch.tensor(a)
    cuda.reset_transfers()
    chainrule.nn.utils.clip_grad_value_(ours, 0.4)
    total = chainrule.nn.utils.get_total_norm([p.grad for p in ours])
    chainrule.nn.utils.clip_grads_with_norm_(ours, 0.3, total)
    assert cuda.transfers() == 0
    torch.nn.utils.clip_grad_value_(theirs, 0.4)
    torch.nn.utils.clip_grads_with_norm_(theirs, 0.3, torch.nn.utils.get_total_norm([q.grad for q in theirs]))
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_nonfinite_check_reads_the_host_once_and_raises_torchs_error(cuda):
    grad = np.array([1.0, np.inf], dtype=np.float32)
    p = chainrule.tensor(np.zeros(2, np.float32), device="cuda", requires_grad=True)
    p.grad = chainrule.tensor(grad, device="cuda")
    q = torch.zeros(2, requires_grad=True)
    q.grad = torch.tensor(grad)
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.utils.clip_grad_norm_(q, 1.0, error_if_nonfinite=True)
    cuda.reset_transfers()
    with pytest.raises(RuntimeError) as ours:
        chainrule.nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert cuda.transfers() == 1 and str(ours.value) == str(theirs.value)


def test_foreach_ops_on_the_device_make_no_host_copy(cuda):
    rng = np.random.default_rng(1)
    arrays = [rng.uniform(0.5, 2.0, shape).astype(np.float32) for shape in [(3,), (2, 4), ()]]
    others = [rng.uniform(0.5, 2.0, a.shape).astype(np.float32) for a in arrays]

    def run(lib, device):
        ts = [lib.tensor(a, device=device) for a in arrays]
        os_ = [lib.tensor(a, device=device) for a in others]
        scale = lib.tensor(0.5, device=device)
        if device == "cuda":
            cuda.reset_transfers()
        lib._foreach_mul_(ts, scale)
        lib._foreach_add_(ts, os_, alpha=0.3)
        lib._foreach_addcdiv_(ts, os_, lib._foreach_sqrt(os_), [0.1, 0.2, 0.3])
        lib._foreach_lerp_(ts, os_, 0.25)
        lib._foreach_maximum_(ts, 0.9)
        results = list(ts) + list(lib._foreach_norm(ts)) + list(lib._foreach_max(lib._foreach_exp(ts)))
        if device == "cuda":
            assert cuda.transfers() == 0
            assert all(r.device.type == "cuda" for r in results)
        return [r.cpu().numpy() for r in results]

    for ours, theirs in zip(run(chainrule, "cuda"), run(torch, "cpu")):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_foreach_refuses_a_device_mix_as_torch_does(cuda):
    on_device = [chainrule.ones(2, device="cuda"), chainrule.ones(3, device="cuda")]
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device, but found at least two "
                                           "devices, cuda:0 and cpu!"):
        chainrule._foreach_add_(on_device, [chainrule.ones(2), chainrule.ones(3)])
    # addcdiv's packed scalars are read on the host: torch takes them only from the CPU
    with pytest.raises(RuntimeError, match=r"^Expected scalars to be on CPU, got cuda:0 instead\.$"):
        chainrule._foreach_addcdiv_(on_device, on_device, on_device, chainrule.tensor([0.5, 0.2], device="cuda"))


def _scaled_steps(lib, device, counter=None):
    """Three GradScaler steps (unscale_, clip, step, update); the second overflows and is skipped."""
    w0, b0, x0 = _arrays()
    params = [lib.tensor(a, device=device, requires_grad=True) for a in (w0, b0)]
    x = lib.tensor(x0, device=device)
    optimizer = lib.optim.AdamW(params, lr=0.01)
    scaler = lib.amp.GradScaler(device, init_scale=1024.0)
    copies = []
    for step in range(3):
        if counter is not None:
            counter.reset_transfers()
        optimizer.zero_grad()
        loss = ((x @ params[0] + params[1]).tanh() ** 2).mean() * (math.inf if step == 1 else 1.0)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        lib.nn.utils.clip_grad_norm_(params, 0.05)
        scaler.step(optimizer)
        scaler.update()
        if counter is not None:
            copies.append(counter.transfers())
    return [p.detach().cpu().numpy() for p in params], scaler.get_scale(), copies


def test_grad_scaler_reads_the_host_once_per_step_as_torchs(cuda):
    # torch's GradScaler.step reads found_inf once per device (.item()); unscale_ and update don't
    ours, scale, copies = _scaled_steps(chainrule, "cuda", counter=cuda)
    assert copies == [1, 1, 1]
    theirs, their_scale, _ = _scaled_steps(torch, "cpu")
    assert scale == their_scale == 512.0
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_clip_grad_norm_over_two_gpus_stays_on_them():
    # torch's: each device's norms where its gradients are, the total on the first gradient's
    # device, the coefficient copied to each device (a peer copy, not through the host)
    from chainrule._backend import use_standin_cuda
    from chainrule.testing import standin

    w0, b0, _ = _arrays()
    theirs = [torch.zeros(a.shape, requires_grad=True) for a in (w0, b0)]
    for q, a in zip(theirs, (w0, b0)):
        q.grad = torch.tensor(a)
    their_total = torch.nn.utils.clip_grad_norm_(theirs, 0.5)
    with use_standin_cuda(devices=2):
        try:
            ours = [chainrule.zeros(a.shape, device=d, requires_grad=True) for a, d in ((w0, "cuda:1"), (b0, "cuda:0"))]
            for p, a in zip(ours, (w0, b0)):
                p.grad = chainrule.tensor(a, device=p.device)
            standin.reset_transfers()
            total = chainrule.nn.utils.clip_grad_norm_(ours, 0.5)
            assert standin.transfers() == 0 and total.device == chainrule.device("cuda:1")
            assert [p.grad.device.index for p in ours] == [1, 0]
            assert total.item() == pytest.approx(their_total.item(), rel=1e-6)
            for p, q in zip(ours, theirs):
                np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.numpy(), rtol=1e-6, atol=1e-7)
        finally:
            chainrule.set_default_device(None)
