"""FFJORD (Grathwohl, Chen et al., ICLR 2019) in the layout of rtqichen/ffjord's toy script, at tiny sizes.

A continuous normalizing flow ``dz/dt = f(z, t)`` on two moons. The vector field is ffjord's ``ODEnet``
of ``ConcatSquashLinear`` layers (``self._layer(x) * torch.sigmoid(self._hyper_gate(t.view(1, 1))) +
self._hyper_bias(t.view(1, 1))``) with tanh between them, wrapped in ``ODEfunc``, which integrates the
augmented state ``(z, -div f)``: the divergence by Hutchinson's estimator ``divergence_approx``
(``torch.autograd.grad(f, y, e, create_graph=True)[0]`` times ``e``, summed) with Rademacher noise from
``sample_rademacher_like`` (``torch.randint(low=0, high=2, size=y.shape).to(y) * 2 - 1``), drawn on the
first evaluation after ``before_odeint()`` and fixed for the whole solve, and in ``eval()`` the brute-force
trace ``divergence_bf`` (one ``autograd.grad(dx[:, i].sum(), y, create_graph=True)`` per dimension), as
ffjord switches to it for 2-d data. ``states`` are made differentiable inside ``torch.set_grad_enabled(True)``
with ``requires_grad_(True)``, the time by ``torch.tensor(t).type_as(y)`` (torch's copy-construct warning),
evaluations counted in a ``_num_evals`` buffer. ``RegularizedODEfunc`` (cnf_regularization.py) adds the
RNODE penalties as extra 0-d states (``torch.tensor(0).to(z)``): the kinetic energy
``_batch_root_mean_squared(dx)`` and the Jacobian Frobenius norm from ``_get_minibatch_jacobian`` (one
``autograd.grad(y[:, j], x, torch.ones_like(y[:, j]), retain_graph=True, create_graph=True)`` per row,
``torch.unsqueeze`` + ``torch.cat``), collected by ``get_regularization`` into the loss. ``CNF`` keeps
``sqrt_end_time`` as a buffer, flips ``integration_times`` by ``_flip`` (an ``arange(n - 1, -1, -1)``
index) for the reverse solve, and a fixed-grid RK4 (torchdiffeq's 3/8 rule) integrates tuples of states;
``SequentialFlow`` chains blocks, ``standard_normal_logprob`` and ``compute_loss`` as in train_toy.py, Adam
with ffjord's ``RunningAverageMeter`` and ``count_nfe``.

Checked: at fixed ``(t, z)`` the mean of the Hutchinson estimate over 512 Rademacher draws (the batch
``repeat``-ed, one grad call) agrees with the exact trace, which equals the trace of
``_get_minibatch_jacobian`` (``torch.diagonal(dim1=1, dim2=2)``) and of ``torch.autograd.functional.jacobian``
(``einsum("bibi->b")``); every draw differs from the trace by exactly ``e_0 e_1 (J_01 + J_10)``; the
log-density change of whole Hutchinson solves, averaged over draws, agrees with the exact-trace solve;
reversing the solve recovers the input (max abs error) and returns the log-density change to zero; the
test NLL falls and samples pulled back through the flow land near the moons more often than the base
Gaussian's.
"""

# ruff: noqa: UP004, UP008  (ffjord's own spelling: class X(object), super(Class, self))

import math
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

HIDDEN_DIMS = (32, 32)
TIME_LENGTH = 0.5
NUM_BLOCKS = 1
STEPS = 4
BATCH_SIZE = 200
NITERS = 100
LR = 1e-2


# ----------------------------------------------------------------------------------- toy data
def make_moons(n_samples, noise, rng):
    n_out = n_samples // 2
    n_in = n_samples - n_out
    outer = np.stack([np.cos(np.linspace(0, np.pi, n_out)), np.sin(np.linspace(0, np.pi, n_out))], 1)
    inner = np.stack([1 - np.cos(np.linspace(0, np.pi, n_in)), 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5], 1)
    data = np.concatenate([outer, inner], 0)
    data = data[rng.permutation(n_samples)]
    return data + rng.randn(*data.shape) * noise


def inf_train_gen(data, rng=None, batch_size=200):
    if rng is None:
        rng = np.random.RandomState()
    if data == "moons":
        data = make_moons(n_samples=batch_size, noise=0.1, rng=rng)
        data = data.astype("float32")
        data = data * 2 + np.array([-1, -0.2])
        return data
    raise ValueError(data)


# ----------------------------------------------------------------------------------- diffeq layers
class ConcatSquashLinear(nn.Module):
    def __init__(self, dim_in, dim_out):
        super(ConcatSquashLinear, self).__init__()
        self._layer = nn.Linear(dim_in, dim_out)
        self._hyper_bias = nn.Linear(1, dim_out, bias=False)
        self._hyper_gate = nn.Linear(1, dim_out)

    def forward(self, t, x):
        return self._layer(x) * torch.sigmoid(self._hyper_gate(t.view(1, 1))) \
            + self._hyper_bias(t.view(1, 1))


class ODEnet(nn.Module):
    def __init__(self, hidden_dims, input_shape, layer_type="concatsquash", nonlinearity="tanh"):
        super(ODEnet, self).__init__()
        base_layer = {"concatsquash": ConcatSquashLinear}[layer_type]
        layers = []
        activation_fns = []
        hidden_shape = input_shape
        for dim_out in hidden_dims + (input_shape[0],):
            layers.append(base_layer(hidden_shape[0], dim_out))
            activation_fns.append({"tanh": nn.Tanh(), "softplus": nn.Softplus()}[nonlinearity])
            hidden_shape = list(hidden_shape)
            hidden_shape[0] = dim_out
        self.layers = nn.ModuleList(layers)
        self.activation_fns = nn.ModuleList(activation_fns[:-1])

    def forward(self, t, y):
        dx = y
        for l, layer in enumerate(self.layers):
            dx = layer(t, dx)
            if l < len(self.layers) - 1:
                dx = self.activation_fns[l](dx)
        return dx


# ----------------------------------------------------------------------------------- odefunc
def divergence_bf(dx, y, **unused_kwargs):
    sum_diag = 0.
    for i in range(y.shape[1]):
        sum_diag += torch.autograd.grad(dx[:, i].sum(), y, create_graph=True)[0].contiguous()[:, i].contiguous()
    return sum_diag.contiguous()


def divergence_approx(f, y, e=None):
    e_dzdx = torch.autograd.grad(f, y, e, create_graph=True)[0]
    e_dzdx_e = e_dzdx * e
    approx_tr_dzdx = e_dzdx_e.view(y.shape[0], -1).sum(dim=1)
    return approx_tr_dzdx


def sample_rademacher_like(y):
    return torch.randint(low=0, high=2, size=y.shape).to(y) * 2 - 1


class ODEfunc(nn.Module):
    def __init__(self, diffeq, divergence_fn="approximate", rademacher=True):
        super(ODEfunc, self).__init__()
        assert divergence_fn in ("brute_force", "approximate")
        self.diffeq = diffeq
        self.rademacher = rademacher
        self.divergence_fn = divergence_bf if divergence_fn == "brute_force" else divergence_approx
        self.register_buffer("_num_evals", torch.tensor(0.))
        self._e = None

    def before_odeint(self, e=None):
        self._e = e
        self._num_evals.fill_(0)

    def num_evals(self):
        return self._num_evals.item()

    def forward(self, t, states):
        assert len(states) >= 2
        y = states[0]
        self._num_evals += 1
        t = torch.tensor(t).type_as(y)
        batchsize = y.shape[0]
        # Sample and fix the noise.
        if self._e is None:
            self._e = sample_rademacher_like(y) if self.rademacher else torch.randn_like(y)
        with torch.set_grad_enabled(True):
            y.requires_grad_(True)
            t.requires_grad_(True)
            dy = self.diffeq(t, y)
            # Hack for 2D data to use brute force divergence computation.
            if not self.training and dy.view(dy.shape[0], -1).shape[1] == 2:
                divergence = divergence_bf(dy, y).view(batchsize, 1)
            else:
                divergence = self.divergence_fn(dy, y, e=self._e).view(batchsize, 1)
        return tuple([dy, -divergence])


# ----------------------------------------------------------------------------------- regularization
class RegularizedODEfunc(nn.Module):
    def __init__(self, odefunc, regularization_fns):
        super(RegularizedODEfunc, self).__init__()
        self.odefunc = odefunc
        self.regularization_fns = regularization_fns

    def before_odeint(self, *args, **kwargs):
        self.odefunc.before_odeint(*args, **kwargs)

    def forward(self, t, state):
        class SharedContext(object):
            pass

        with torch.enable_grad():
            x, logp = state[:2]
            x.requires_grad_(True)
            logp.requires_grad_(True)
            dstate = self.odefunc(t, (x, logp))
            if len(state) > 2:
                dx, dlogp = dstate[:2]
                reg_states = tuple(reg_fn(x, logp, dx, dlogp, SharedContext) for reg_fn in self.regularization_fns)
                return dstate + reg_states
            else:
                return dstate

    @property
    def _num_evals(self):
        return self.odefunc._num_evals


def _batch_root_mean_squared(tensor):
    tensor = tensor.view(tensor.shape[0], -1)
    return torch.mean(torch.norm(tensor, p=2, dim=1) / tensor.shape[1]**0.5)


def l2_regularzation_fn(x, logp, dx, dlogp, unused_context):
    del x, logp, dlogp
    return _batch_root_mean_squared(dx)


def directional_l2_regularization_fn(x, logp, dx, dlogp, unused_context):
    del logp, dlogp
    directional_dx = torch.autograd.grad(dx, x, dx, create_graph=True)[0]
    return _batch_root_mean_squared(directional_dx)


def jacobian_frobenius_regularization_fn(x, logp, dx, dlogp, context):
    del logp, dlogp
    if hasattr(context, "jac"):
        jac = context.jac
    else:
        jac = _get_minibatch_jacobian(dx, x)
        context.jac = jac
    return _batch_root_mean_squared(jac)


def _get_minibatch_jacobian(y, x, create_graph=False):
    assert y.shape[0] == x.shape[0]
    y = y.view(y.shape[0], -1)
    # Compute Jacobian row by row.
    jac = []
    for j in range(y.shape[1]):
        dy_j_dx = torch.autograd.grad(y[:, j], x, torch.ones_like(y[:, j]), retain_graph=True,
                                      create_graph=True)[0].view(x.shape[0], -1)
        jac.append(torch.unsqueeze(dy_j_dx, 1))
    jac = torch.cat(jac, 1)
    return jac


REGULARIZATION_FNS = {
    "kinetic_energy": l2_regularzation_fn,
    "directional_penalty": directional_l2_regularization_fn,
    "jacobian_norm2": jacobian_frobenius_regularization_fn,
}


def create_regularization_fns(args):
    regularization_fns = []
    regularization_coeffs = []
    for arg_key, reg_fn in REGULARIZATION_FNS.items():
        if args[arg_key] is not None:
            regularization_fns.append(reg_fn)
            regularization_coeffs.append(args[arg_key])
    return tuple(regularization_fns), tuple(regularization_coeffs)


def get_regularization(model, regularization_coeffs):
    if len(regularization_coeffs) == 0:
        return None
    acc_reg_states = tuple([0.] * len(regularization_coeffs))
    for module in model.modules():
        if isinstance(module, CNF):
            acc_reg_states = tuple(acc + reg for acc, reg in zip(acc_reg_states, module.get_regularization_states()))
    return acc_reg_states


# ----------------------------------------------------------------------------------- fixed-grid solver
def rk4_alt_step_func(func, t0, dt, y0):
    """torchdiffeq's 'rk4' method: the 3/8 rule, on tuples of states."""
    k1 = func(t0, y0)
    k2 = func(t0 + dt / 3, tuple(y_ + dt * k1_ / 3 for y_, k1_ in zip(y0, k1)))
    k3 = func(t0 + dt * 2 / 3, tuple(y_ + dt * (k1_ / -3 + k2_) for y_, k1_, k2_ in zip(y0, k1, k2)))
    k4 = func(t0 + dt, tuple(y_ + dt * (k1_ - k2_ + k3_) for y_, k1_, k2_, k3_ in zip(y0, k1, k2, k3)))
    return tuple((k1_ + 3 * (k2_ + k3_) + k4_) * (dt * 0.125) for k1_, k2_, k3_, k4_ in zip(k1, k2, k3, k4))


def odeint(func, y0, t, method="rk4", options=None):
    assert method == "rk4"
    step_size = options["step_size"]
    solution = [y0]
    y = y0
    for t0, t1 in zip(t[:-1], t[1:]):
        n_steps = max(1, int(round(abs((t1 - t0).item()) / step_size)))
        dt = (t1 - t0) / n_steps
        for k in range(n_steps):
            dy = rk4_alt_step_func(func, t0 + k * dt, dt, y)
            y = tuple(y_ + dy_ for y_, dy_ in zip(y, dy))
        solution.append(y)
    return tuple(torch.stack([s[i] for s in solution]) for i in range(len(y0)))


def _flip(x, dim):
    indices = [slice(None)] * x.dim()
    indices[dim] = torch.arange(x.size(dim) - 1, -1, -1, dtype=torch.long, device=x.device)
    return x[tuple(indices)]


class CNF(nn.Module):
    def __init__(self, odefunc, T=1.0, train_T=False, regularization_fns=None, solver="rk4", step_size=0.125):
        super(CNF, self).__init__()
        if train_T:
            self.register_parameter("sqrt_end_time", nn.Parameter(torch.sqrt(torch.tensor(T))))
        else:
            self.register_buffer("sqrt_end_time", torch.sqrt(torch.tensor(T)))
        nreg = 0
        if regularization_fns is not None:
            odefunc = RegularizedODEfunc(odefunc, regularization_fns)
            nreg = len(regularization_fns)
        self.odefunc = odefunc
        self.nreg = nreg
        self.regularization_states = None
        self.solver = solver
        self.solver_options = {"step_size": step_size}

    def forward(self, z, logpz=None, integration_times=None, reverse=False, e=None):
        if logpz is None:
            _logpz = torch.zeros(z.shape[0], 1).to(z)
        else:
            _logpz = logpz
        if integration_times is None:
            integration_times = torch.tensor([0.0, self.sqrt_end_time * self.sqrt_end_time]).to(z)
        if reverse:
            integration_times = _flip(integration_times, 0)
        # Add regularization states.
        reg_states = tuple(torch.tensor(0).to(z) for _ in range(self.nreg))
        # Refresh the odefunc statistics.
        self.odefunc.before_odeint(e=e)
        if self.training:
            state_t = odeint(self.odefunc, (z, _logpz) + reg_states, integration_times.to(z), method=self.solver,
                             options=self.solver_options)
        else:
            state_t = odeint(self.odefunc, (z, _logpz), integration_times.to(z), method=self.solver,
                             options=self.solver_options)
        if len(integration_times) == 2:
            state_t = tuple(s[1] for s in state_t)
        z_t, logpz_t = state_t[:2]
        self.regularization_states = state_t[2:]
        if logpz is not None:
            return z_t, logpz_t
        return z_t

    def get_regularization_states(self):
        reg_states = self.regularization_states
        self.regularization_states = None
        return reg_states

    def num_evals(self):
        return self.odefunc._num_evals.item()


class SequentialFlow(nn.Module):
    def __init__(self, layersList):
        super(SequentialFlow, self).__init__()
        self.chain = nn.ModuleList(layersList)

    def forward(self, x, logpx=None, reverse=False, inds=None):
        if inds is None:
            inds = range(len(self.chain) - 1, -1, -1) if reverse else range(len(self.chain))
        if logpx is None:
            for i in inds:
                x = self.chain[i](x, reverse=reverse)
            return x
        for i in inds:
            x, logpx = self.chain[i](x, logpx, reverse=reverse)
        return x, logpx


def build_model(dims, regularization_fns):
    chain = [CNF(ODEfunc(ODEnet(HIDDEN_DIMS, (dims,)), rademacher=True), T=TIME_LENGTH,
                 regularization_fns=regularization_fns, step_size=TIME_LENGTH / STEPS)
             for _ in range(NUM_BLOCKS)]
    return SequentialFlow(chain)


def count_nfe(model):
    return sum(m.num_evals() for m in model.modules() if isinstance(m, CNF))


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class RunningAverageMeter(object):
    def __init__(self, momentum=0.99):
        self.momentum = momentum
        self.reset()

    def reset(self):
        self.val = None
        self.avg = 0

    def update(self, val):
        if self.val is None:
            self.avg = val
        else:
            self.avg = self.avg * self.momentum + val * (1 - self.momentum)
        self.val = val


def standard_normal_logprob(z):
    logZ = -0.5 * math.log(2 * math.pi)
    return logZ - z.pow(2) / 2


def compute_loss(model, x):
    zero = torch.zeros(x.shape[0], 1).to(x)
    z, delta_logp = model(x, zero)
    logpz = standard_normal_logprob(z).sum(1, keepdim=True)
    logpx = logpz - delta_logp
    return -torch.mean(logpx)


# ----------------------------------------------------------------------------------- run
args = {"kinetic_energy": 0.01, "directional_penalty": None, "jacobian_norm2": 0.01}
rng = np.random.RandomState(seed)
regularization_fns, regularization_coeffs = create_regularization_fns(args)
model = build_model(2, regularization_fns)
odefunc = model.chain[0].odefunc.odefunc
print(f"Number of trainable parameters: {count_parameters(model)}")
optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=1e-5)

test_x = torch.from_numpy(inf_train_gen("moons", rng=rng, batch_size=400)).type(torch.float32)
check_x = test_x[:64].clone()


def hutchinson_vs_exact(num_draws=512):
    """At one fixed (t, z): the Rademacher estimate against the exact trace, three ways."""
    t = torch.tensor(0.3 * TIME_LENGTH)
    n = check_x.shape[0]
    y = check_x.clone().requires_grad_(True)
    dy = odefunc.diffeq(t, y)
    exact = divergence_bf(dy, y).detach()
    jac = _get_minibatch_jacobian(dy, y).detach()
    jac_func = torch.autograd.functional.jacobian(lambda z: odefunc.diffeq(t, z), check_x)
    jac_trace = torch.einsum("bibi->b", jac_func.view(n, 2, n, 2))
    jac_err = max((torch.diagonal(jac, dim1=1, dim2=2).sum(-1) - exact).abs().max().item(),
                  (jac_trace - exact).abs().max().item())
    y_rep = check_x.repeat(num_draws, 1).requires_grad_(True)
    e = sample_rademacher_like(y_rep)
    approx = divergence_approx(odefunc.diffeq(t, y_rep), y_rep, e=e).detach().view(num_draws, n)
    # in 2-d, e^T J e - tr J = e_0 e_1 (J_01 + J_10) for every Rademacher draw
    off_diag = (jac[:, 0, 1] + jac[:, 1, 0]).repeat(num_draws).view(num_draws, n)
    identity_err = (approx - exact - (e[:, 0] * e[:, 1]).view(num_draws, n) * off_diag).abs().max().item()
    return (approx.mean(0) - exact).abs().max().item(), jac_err, identity_err


def solve_check(num_solves=16):
    """The log-density change of whole solves: exact trace (eval) against the Hutchinson solves' mean."""
    zero = torch.zeros(check_x.shape[0], 1)
    model.eval()
    with torch.no_grad():
        _, delta_exact = model(check_x, zero)
    model.train()
    deltas = []
    for _ in range(num_solves):
        _, delta = model(check_x, zero)
        deltas.append(delta.detach())
    deltas = torch.stack(deltas)
    err = (deltas.mean(0) - delta_exact).abs().max().item()
    stderr = (deltas.std(0) / math.sqrt(num_solves)).max().item()
    return err, stderr


def test_nll():
    model.eval()
    with torch.no_grad():
        loss = compute_loss(model, test_x)
    model.train()
    return loss.item()


trace_err0, jac_err0, identity_err0 = hutchinson_vs_exact()
print(f"init: hutchinson mean vs exact trace max err {trace_err0:.4f}, jacobian traces {jac_err0:.2e}, "
      f"per-draw identity {identity_err0:.2e}")
nll_init = test_nll()
print(f"init test nll {nll_init:.4f}")

loss_meter = RunningAverageMeter(0.9)
nfe_meter = RunningAverageMeter(0.9)
reg_meter = RunningAverageMeter(0.9)
for itr in range(1, NITERS + 1):
    optimizer.zero_grad()
    x = torch.from_numpy(inf_train_gen("moons", rng=rng, batch_size=BATCH_SIZE)).type(torch.float32)
    loss = compute_loss(model, x)
    loss_meter.update(loss.item())
    if len(regularization_coeffs) > 0:
        reg_states = get_regularization(model, regularization_coeffs)
        reg_loss = sum(
            reg_state * coeff for reg_state, coeff in zip(reg_states, regularization_coeffs) if coeff != 0
        )
        loss = loss + reg_loss
        reg_meter.update(reg_loss.item())
    nfe_forward = count_nfe(model)
    loss.backward()
    optimizer.step()
    nfe_meter.update(nfe_forward)
    if itr % 25 == 0:
        print(f"Iter {itr:04d} | Loss {loss_meter.val:.4f}({loss_meter.avg:.4f}) | "
              f"Reg {reg_meter.val:.4f}({reg_meter.avg:.4f}) | NFE Forward {nfe_meter.val:.0f}")

nll_final = test_nll()
print(f"final test nll {nll_final:.4f}")

trace_err, jac_err, identity_err = hutchinson_vs_exact()
print(f"trained: hutchinson mean vs exact trace max err {trace_err:.4f}, "
      f"jacobian traces {jac_err:.2e}, per-draw identity {identity_err:.2e}")
solve_err, solve_stderr = solve_check()
print(f"solve: hutchinson mean delta logp vs exact max err {solve_err:.4f} (stderr {solve_stderr:.4f})")

model.eval()
with torch.no_grad():
    zero = torch.zeros(test_x.shape[0], 1)
    z, delta_logp = model(test_x, zero)
    x_rec, delta_back = model(z, delta_logp, reverse=True)
inverse_err = (x_rec - test_x).abs().max().item()
logp_back_err = delta_back.abs().max().item()
print(f"reverse solve: max abs err {inverse_err:.2e}, delta logp returned to {logp_back_err:.2e}")

with torch.no_grad():
    samples = model(torch.randn(400, 2), reverse=True)
    base = torch.randn(400, 2)
near = (torch.cdist(samples, test_x).min(dim=1).values < 0.15).float().mean().item()
near_base = (torch.cdist(base, test_x).min(dim=1).values < 0.15).float().mean().item()
print(f"samples near the moons {near:.3f} (base gaussian {near_base:.3f})")

print(f"FINAL nll_init={nll_init:.4f} nll_final={nll_final:.4f} trace_err={trace_err:.5f} "
      f"jac_err={jac_err:.6f} identity_err={identity_err:.6f} solve_err={solve_err:.5f} "
      f"inverse_err={inverse_err:.6f} logp_back_err={logp_back_err:.6f} near={near:.4f} near_base={near_base:.4f}")
