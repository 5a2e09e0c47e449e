"""Learning to learn by gradient descent by gradient descent (Andrychowicz et al., NeurIPS 2016) in the
layout of the PyTorch ports (chenwydj/learning-to-learn-by-pytorch, AdrienLE's notebook), on random
quadratics ``f(theta) = ||W theta - y||^2``.

The optimizer is a coordinatewise two-layer LSTM (``nn.LSTMCell`` stacked, ``nn.Linear`` head) shared over
every coordinate of every parameter: gradients enter as ``grads.view(-1, 1)`` rows, so the batch of the LSTM
is the number of coordinates. Gradients are preprocessed as in the paper's Appendix A: ``torch.log(g.abs() +
1e-8) / p`` clamped to [-1, 1] with ``torch.sign(g)`` where ``|g| >= exp(-p)``, else ``-1`` and ``exp(p) * g``;
once with ``torch.where`` + ``torch.clamp`` (chenwydj's ``LogAndSign_Preprocess_Gradient``) and once by
AdrienLE's boolean-mask assignments into ``inp2[:, 0][keep_grads]`` (the two must agree). The optimizee is
unrolled with ``torch.autograd.grad(loss, params, create_graph=True)`` so the meta-loss (the sum of the
optimizee's losses over the unroll) is differentiated through every update; every ``UNROLL`` steps the
parameters and the LSTM states are truncated by ``.detach().requires_grad_()``. The LSTM is meta-trained
by Adam on freshly drawn quadratics.

Checked: the two preprocessing routes agree; a hand-written SGD through ``autograd.grad`` equals
``torch.optim.SGD`` on the same quadratic; the meta-gradient of the first unroll equals finite differences
of the meta-loss along a random direction in the LSTM's weights (float64 copy); and on held-out quadratics
the learned optimizer ends below its untrained self and is compared with tuned SGD and Adam.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

DIM = 10
HIDDEN = 20
UNROLL = 5
OPTIM_STEPS = 40
META_EPISODES = 36
OUT_MUL = 0.1


def w(v):
    """The notebook's ``w``: moves to the GPU when there is one."""
    return v.cuda() if torch.cuda.is_available() else v


# ------------------------------------------------------------------------------ the optimizee
class QuadraticLoss:
    def __init__(self, rng, dim=DIM):
        self.W = torch.from_numpy(rng.randn(dim, dim).astype(np.float32))
        self.y = torch.from_numpy(rng.randn(dim).astype(np.float32))

    def get_loss(self, theta):
        return torch.sum((self.W.matmul(theta) - self.y) ** 2)


class QuadOptimizee(nn.Module):
    def __init__(self, theta=None):
        super().__init__()
        if theta is None:
            self.theta = nn.Parameter(torch.zeros(DIM).requires_grad_())
        else:
            self.theta = theta

    def forward(self, target):
        return target.get_loss(self.theta)

    def all_named_parameters(self):
        return [("theta", self.theta)]


# ------------------------------------------------------------------------------ the LSTM optimizer
class LSTMOptimizer(nn.Module):
    def __init__(self, preproc=True, hidden_sz=HIDDEN, preproc_factor=10.0):
        super().__init__()
        self.hidden_sz = hidden_sz
        self.recurs = nn.LSTMCell(2 if preproc else 1, hidden_sz)
        self.recurs2 = nn.LSTMCell(hidden_sz, hidden_sz)
        self.output = nn.Linear(hidden_sz, 1)
        self.preproc = preproc
        self.preproc_factor = preproc_factor
        self.preproc_threshold = np.exp(-preproc_factor)

    def log_and_sign(self, gradients):
        """chenwydj's LogAndSign_Preprocess_Gradient, with the paper's small-gradient branch."""
        p = self.preproc_factor
        keep = gradients.abs() >= self.preproc_threshold
        log = torch.clamp(torch.log(gradients.abs() + 1e-8) / p, min=-1.0, max=1.0)
        sign = torch.clamp(torch.exp(torch.tensor(p)) * gradients, min=-1.0, max=1.0)
        first = torch.where(keep, log, torch.full_like(log, -1.0))
        second = torch.where(keep, torch.sign(gradients), sign)
        return torch.cat((first, second), dim=-1)

    def masked_preproc(self, inp):
        """AdrienLE's Appendix A by boolean masks (works on ``.data``, no gradient)."""
        inp = inp.data
        inp2 = w(torch.zeros(inp.size()[0], 2))
        keep_grads = (torch.abs(inp) >= self.preproc_threshold).squeeze()
        inp2[:, 0][keep_grads] = (torch.log(torch.abs(inp[keep_grads]) + 1e-8) / self.preproc_factor).squeeze()
        inp2[:, 1][keep_grads] = torch.sign(inp[keep_grads]).squeeze()
        inp2[:, 0][~keep_grads] = -1
        inp2[:, 1][~keep_grads] = (float(np.exp(self.preproc_factor)) * inp[~keep_grads]).squeeze()
        return inp2.clamp(-1, 1)

    def forward(self, inp, hidden, cell):
        if self.preproc:
            inp = self.log_and_sign(inp)
        hidden0, cell0 = self.recurs(inp, (hidden[0], cell[0]))
        hidden1, cell1 = self.recurs2(hidden0, (hidden[1], cell[1]))
        return self.output(hidden1), (hidden0, hidden1), (cell0, cell1)


def detach_var(v):
    return v.detach().requires_grad_()


def do_fit(opt_net, meta_opt, target, unroll, optim_it, out_mul, should_train=True):
    if should_train:
        opt_net.train()
    else:
        opt_net.eval()
        unroll = 1
    optimizee = w(QuadOptimizee())
    n_params = 0
    for _name, p in optimizee.all_named_parameters():
        n_params += int(np.prod(p.size()))
    hidden_states = [w(torch.zeros(n_params, opt_net.hidden_sz)) for _ in range(2)]
    cell_states = [w(torch.zeros(n_params, opt_net.hidden_sz)) for _ in range(2)]
    all_losses_ever = []
    all_losses = None
    for iteration in range(1, optim_it + 1):
        loss = optimizee(target)
        all_losses = loss if all_losses is None else all_losses + loss
        all_losses_ever.append(loss.item())
        params = [p for _, p in optimizee.all_named_parameters()]
        grads = torch.autograd.grad(loss, params, create_graph=should_train)
        offset = 0
        result_params = {}
        hidden_states2, cell_states2 = [], []
        for (name, p), g in zip(optimizee.all_named_parameters(), grads):
            cur_sz = int(np.prod(p.size()))
            gradients = g.view(-1, 1)
            if not should_train:
                gradients = gradients.detach()
            updates, new_hidden, new_cell = opt_net(
                gradients,
                [h[offset:offset + cur_sz] for h in hidden_states],
                [c[offset:offset + cur_sz] for c in cell_states],
            )
            hidden_states2 = list(new_hidden)
            cell_states2 = list(new_cell)
            result_params[name] = p + updates.view(*p.size()) * out_mul
            offset += cur_sz
        if iteration % unroll == 0:
            if should_train:
                meta_opt.zero_grad()
                all_losses.backward()
                meta_opt.step()
            all_losses = None
            optimizee = w(QuadOptimizee(**{k: detach_var(v) for k, v in result_params.items()}))
            hidden_states = [detach_var(v) for v in hidden_states2]
            cell_states = [detach_var(v) for v in cell_states2]
        else:
            optimizee = w(QuadOptimizee(**result_params))
            hidden_states = hidden_states2
            cell_states = cell_states2
    return all_losses_ever


def unrolled_meta_loss(opt_net, target, steps):
    """The meta-loss of one unroll from theta = 0, differentiable in opt_net's weights."""
    theta = torch.zeros(DIM, dtype=target.W.dtype, requires_grad=True)
    h = [torch.zeros(DIM, opt_net.hidden_sz, dtype=target.W.dtype) for _ in range(2)]
    c = [torch.zeros(DIM, opt_net.hidden_sz, dtype=target.W.dtype) for _ in range(2)]
    total = 0
    for _ in range(steps):
        loss = target.get_loss(theta)
        total = total + loss
        (g,) = torch.autograd.grad(loss, [theta], create_graph=True)
        upd, h, c = opt_net(g.view(-1, 1), h, c)
        theta = theta + upd.view(-1) * OUT_MUL
    return total


# ------------------------------------------------------------------------------ checks
data_rng = np.random.RandomState(1000 + seed)
opt_net = w(LSTMOptimizer())
untrained = copy.deepcopy(opt_net)

g_probe = torch.cat([torch.randn(30) * 10.0 ** torch.randint(-7, 2, (30,)).float(), torch.tensor([0.0, 1e-5, -1e-5])])
route_a = opt_net.log_and_sign(g_probe.view(-1, 1))
route_b = opt_net.masked_preproc(g_probe.view(-1, 1))
small = int((g_probe.abs() < opt_net.preproc_threshold).sum())
print(f"preprocessing: {g_probe.numel()} gradients, routes agree {torch.allclose(route_a, route_b, atol=1e-6)}, "
      f"small-branch {small > 0}")

# hand-written SGD by autograd.grad against torch.optim.SGD
target = QuadraticLoss(data_rng)
theta_hand = torch.zeros(DIM, requires_grad=True)
model = QuadOptimizee()
sgd = optim.SGD(model.parameters(), lr=0.01)
for _ in range(10):
    (g,) = torch.autograd.grad(target.get_loss(theta_hand), [theta_hand])
    theta_hand = (theta_hand - 0.01 * g).detach().requires_grad_()
    sgd.zero_grad()
    model(target).backward()
    sgd.step()
sgd_gap = (theta_hand - model.theta).abs().max().item()
print(f"hand SGD vs optim.SGD: allclose {torch.allclose(theta_hand, model.theta, atol=1e-5)}")

# meta-gradient against finite differences, in float64
net64 = copy.deepcopy(opt_net).double()
target64 = QuadraticLoss(data_rng)
target64.W, target64.y = target64.W.double() / 3, target64.y.double()
meta = unrolled_meta_loss(net64, target64, 3)
grads64 = torch.autograd.grad(meta, list(net64.parameters()))
direction = [torch.randn_like(p) for p in net64.parameters()]
analytic = sum((g * d).sum() for g, d in zip(grads64, direction)).item()
eps = 1e-6
with torch.no_grad():
    for p, d in zip(net64.parameters(), direction):
        p.add_(d, alpha=eps)
plus = unrolled_meta_loss(net64, target64, 3).item()
with torch.no_grad():
    for p, d in zip(net64.parameters(), direction):
        p.add_(d, alpha=-2 * eps)
minus = unrolled_meta_loss(net64, target64, 3).item()
numeric = (plus - minus) / (2 * eps)
fd_rel = abs(analytic - numeric) / max(abs(numeric), 1e-12)
print(f"meta-gradient vs finite differences: close {fd_rel < 1e-4}")

# meta-training
meta_opt = optim.Adam(opt_net.parameters(), lr=0.01)
history = []
for episode in range(1, META_EPISODES + 1):
    losses = do_fit(opt_net, meta_opt, QuadraticLoss(data_rng), UNROLL, 20, OUT_MUL, should_train=True)
    history.append(sum(losses))
    if episode % 12 == 0:
        print(f"meta episode {episode:3d}  mean sum of losses {np.mean(history[-12:]):.4f}")


# ------------------------------------------------------------------------------ held-out quadratics
def fit_baseline(opt_cls, target, lr, steps):
    model = QuadOptimizee()
    opt = opt_cls(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = model(target)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


test_targets = [QuadraticLoss(np.random.RandomState(5000 + i)) for i in range(6)]
final = {}
for label, fn in [
    ("lstm", lambda t: do_fit(opt_net, None, t, 1, OPTIM_STEPS, OUT_MUL, should_train=False)),
    ("untrained", lambda t: do_fit(untrained, None, t, 1, OPTIM_STEPS, OUT_MUL, should_train=False)),
    ("sgd", lambda t: fit_baseline(optim.SGD, t, 0.01, OPTIM_STEPS)),
    ("adam", lambda t: fit_baseline(optim.Adam, t, 0.1, OPTIM_STEPS)),
]:
    runs = [fn(t) for t in test_targets]
    final[label] = float(np.mean([math.log10(r[-1]) for r in runs]))
    print(f"{label:9s} held-out mean log10 final loss {final[label]:.3f}")

print(f"FINAL lstm={final['lstm']:.4f} gain={final['untrained'] - final['lstm']:.4f} untrained={final['untrained']:.4f} sgd={final['sgd']:.4f} "
      f"adam={final['adam']:.4f} fd_rel={fd_rel:.6f} sgd_gap={sgd_gap:.6f} "
      f"routes={int(torch.allclose(route_a, route_b, atol=1e-6))}")
