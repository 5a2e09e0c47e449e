"""DeepSurv (Katzman et al.) and pycox's Cox partial likelihood on synthetic censored survival data,
with a Weibull accelerated-failure-time baseline, as survival-analysis notebooks write them.

pycox's ``cox_ph_loss_sorted`` (``log_h.sub(gamma).exp().cumsum(0).add(eps).log().add(gamma)``) after
``durations.sort(descending=True)[1]`` against the same loss by ``torch.argsort(durations,
descending=True)`` and ``torch.logcumsumexp(risk, dim=0)``; Breslow's handling of tied times, by a
broadcast risk-set mask ``durations[None, :] >= durations[:, None]`` into ``torch.logsumexp`` of
``masked_fill(~at_risk, -inf)`` and by ``torch.unique_consecutive(return_counts=True)`` +
``torch.repeat_interleave`` of each tie group's last cumulative value (the two must agree); events as
float masks; Harrell's concordance by broadcasting comparisons; the Breslow baseline cumulative hazard
and Kaplan-Meier curves by ``torch.cumprod``; a Weibull AFT model (``torch.distributions.Weibull(scale,
concentration)``: ``log_prob`` for events, the survival ``1 - cdf`` for censored rows with
``torch.nan_to_num`` guarding the log of a survival that rounds to 0) fitted by LBFGS, its median
``scale * log(2) ** (1 / k)`` ranking the test set; DeepSurv's SELU MLP with ``AlphaDropout``,
mini-batches from a ``DataLoader`` and Adam with weight decay.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
from torch.distributions import Weibull
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ----------------------------------------------------------------- data: Weibull event times, censoring
rng = np.random.RandomState(0)
n, d = 600, 6
x_np = rng.randn(n, d).astype(np.float32)
true_risk = 0.8 * x_np[:, 0] - 0.6 * x_np[:, 1] + 0.5 * x_np[:, 2] * x_np[:, 3] + 0.4 * np.sin(2 * x_np[:, 4])
k_true = 1.5
event_time = (rng.weibull(k_true, n) * np.exp(-true_risk / k_true) * 10.0).astype(np.float32)
censor_time = rng.uniform(0.0, 25.0, n).astype(np.float32)
# integer-ish days: many tied times, so the ties rule matters
durations_np = np.ceil(np.minimum(event_time, censor_time) * 4.0) / 4.0
events_np = (event_time <= censor_time).astype(np.float32)

x_all = torch.from_numpy(x_np)
durations_all = torch.from_numpy(durations_np.astype(np.float32))
events_all = torch.from_numpy(events_np)
x_train, x_test = x_all[:450], x_all[450:]
t_train, t_test = durations_all[:450], durations_all[450:]
e_train, e_test = events_all[:450], events_all[450:]
print(f"data: {n} rows, {int(events_all.sum().item())} events, "
      f"{len(torch.unique(durations_all))} distinct times of {n}")


# ----------------------------------------------------------------- pycox's loss and two rewritings of it
def cox_ph_loss_sorted(log_h, events, eps=1e-7):
    if events.dtype is torch.bool:
        events = events.float()
    events = events.view(-1)
    log_h = log_h.view(-1)
    gamma = log_h.max()
    log_cumsum_h = log_h.sub(gamma).exp().cumsum(0).add(eps).log().add(gamma)
    return - log_h.sub(log_cumsum_h).mul(events).sum().div(events.sum())


def cox_ph_loss(log_h, durations, events, eps=1e-7):
    idx = durations.sort(descending=True)[1]
    events = events[idx]
    log_h = log_h[idx]
    return cox_ph_loss_sorted(log_h, events, eps)


def cox_loss_logcumsumexp(risk, durations, events):
    order = torch.argsort(durations, descending=True, stable=True)
    risk, events = risk.view(-1)[order], events[order]
    log_risk_set = torch.logcumsumexp(risk, dim=0)
    return -((risk - log_risk_set) * events).sum() / events.sum()


def cox_loss_breslow_mask(risk, durations, events):
    risk = risk.view(-1)
    at_risk = durations[None, :] >= durations[:, None]
    log_risk_set = torch.logsumexp(risk[None, :].masked_fill(~at_risk, float("-inf")), dim=1)
    return -((risk - log_risk_set) * events).sum() / events.sum()


def cox_loss_breslow_groups(risk, durations, events):
    order = torch.argsort(durations, descending=True, stable=True)
    t_sorted, risk, events = durations[order], risk.view(-1)[order], events[order]
    log_risk_set = torch.logcumsumexp(risk, dim=0)
    _, counts = torch.unique_consecutive(t_sorted, return_counts=True)
    ends = torch.cumsum(counts, dim=0) - 1
    log_risk_set = torch.repeat_interleave(log_risk_set[ends], counts)
    return -((risk - log_risk_set) * events).sum() / events.sum()


def concordance_index(risk, durations, events):
    """Harrell's C: among pairs whose earlier time is an event, the share ranked by risk the right way."""
    risk = risk.view(-1)
    comparable = (durations[:, None] < durations[None, :]) & (events[:, None] == 1)
    concordant = (risk[:, None] > risk[None, :]).float() + 0.5 * (risk[:, None] == risk[None, :]).float()
    return ((concordant * comparable).sum() / comparable.sum()).item()


probe = torch.randn(450)
losses = [f(probe, t_train, e_train) for f in
          (cox_ph_loss, cox_loss_logcumsumexp, cox_loss_breslow_mask, cox_loss_breslow_groups)]
print(f"losses at random risks: pycox {losses[0].item():.4f} logcumsumexp {losses[1].item():.4f} "
      f"breslow mask {losses[2].item():.4f} breslow groups {losses[3].item():.4f}")
ties_agree = int(torch.allclose(losses[2], losses[3], atol=1e-5))
print(f"Breslow mask and tie groups agree: {bool(ties_agree)}")
untied = torch.arange(450, dtype=torch.float32).flip(0)
sorted_agree = int(torch.allclose(cox_ph_loss(probe, untied, e_train), cox_loss_logcumsumexp(probe, untied, e_train),
                                  atol=1e-5))
print(f"without ties pycox and logcumsumexp agree: {bool(sorted_agree)}")
print(f"concordance of the true risk: {concordance_index(torch.from_numpy(true_risk[450:]), t_test, e_test):.4f}")


# ----------------------------------------------------------------- DeepSurv
class DeepSurv(nn.Module):
    def __init__(self, in_features, hidden=32, dropout=0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.SELU(), nn.AlphaDropout(dropout),
            nn.Linear(hidden, hidden), nn.SELU(), nn.AlphaDropout(dropout),
            nn.Linear(hidden, 1, bias=False),
        )
        for module in self.net:
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x):
        return self.net(x)


model = DeepSurv(d)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
loader = DataLoader(TensorDataset(x_train, t_train, e_train), batch_size=150, shuffle=True, drop_last=True)
for epoch in range(1, 61):
    model.train()
    total = 0.0
    for xb, tb, eb in loader:
        if eb.sum() == 0:
            continue
        loss = cox_loss_breslow_groups(model(xb), tb, eb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    if epoch % 20 == 0:
        model.eval()
        with torch.no_grad():
            test_loss = cox_loss_breslow_mask(model(x_test), t_test, e_test).item()
            c_test = concordance_index(model(x_test), t_test, e_test)
        print(f"epoch {epoch:3d} train loss {total / len(loader):.4f} test loss {test_loss:.4f} C {c_test:.4f}")

model.eval()
with torch.no_grad():
    risk_train = model(x_train).view(-1)
    risk_test = model(x_test).view(-1)
cindex_cox = concordance_index(risk_test, t_test, e_test)
cox_test_loss = cox_loss_breslow_mask(risk_test, t_test, e_test).item()

# ----------------------------------------------------------------- Breslow baseline hazard, Kaplan-Meier
times = torch.unique(t_train[e_train == 1])
deaths = ((t_train[None, :] == times[:, None]) & (e_train[None, :] == 1)).float().sum(1)
at_risk_sum = ((t_train[None, :] >= times[:, None]).float() * risk_train.exp()[None, :]).sum(1)
baseline_cum_hazard = torch.cumsum(deaths / at_risk_sum, dim=0)
survival_test = torch.exp(-baseline_cum_hazard[None, :] * risk_test.exp()[:, None])  # (n_test, n_times)

at_risk_count = (t_test[None, :] >= times[:, None]).float().sum(1)
deaths_test = ((t_test[None, :] == times[:, None]) & (e_test[None, :] == 1)).float().sum(1)
km = torch.cumprod(1 - torch.where(at_risk_count > 0, deaths_test / at_risk_count.clamp(min=1), 0.0), dim=0)
median_idx = int(torch.searchsorted(times, t_test.median()).clamp(max=len(times) - 1))
km_gap = (survival_test.mean(0) - km).abs().max().item()
print(f"Breslow: {len(times)} event times, mean S(t_median) {survival_test[:, median_idx].mean().item():.4f} "
      f"KM {km[median_idx].item():.4f}, largest gap {km_gap:.4f}")


# ----------------------------------------------------------------- Weibull AFT baseline
class WeibullAFT(nn.Module):
    def __init__(self, in_features):
        super().__init__()
        self.linear = nn.Linear(in_features, 1)
        self.log_k = nn.Parameter(torch.zeros(()))
        nn.init.zeros_(self.linear.weight)
        nn.init.constant_(self.linear.bias, math.log(8.0))

    def distribution(self, x):
        scale = torch.exp(self.linear(x).squeeze(-1))
        return Weibull(scale, torch.exp(self.log_k).expand_as(scale))

    def neg_log_likelihood(self, x, durations, events):
        dist = self.distribution(x)
        log_pdf = dist.log_prob(durations)
        log_survival = torch.nan_to_num(torch.log(1 - dist.cdf(durations)), neginf=-50.0)
        return -(events * log_pdf + (1 - events) * log_survival).mean()


aft = WeibullAFT(d)
lbfgs = torch.optim.LBFGS(aft.parameters(), lr=1, max_iter=100, line_search_fn="strong_wolfe")


def closure():
    lbfgs.zero_grad()
    loss = aft.neg_log_likelihood(x_train, t_train, e_train)
    loss.backward()
    return loss


lbfgs.step(closure)
with torch.no_grad():
    aft_nll = aft.neg_log_likelihood(x_test, t_test, e_test).item()
    dist = aft.distribution(x_test)
    k = torch.exp(aft.log_k)
    median = dist.scale * math.log(2) ** (1 / k)
    cindex_aft = concordance_index(-median, t_test, e_test)
    half = (1 - dist.cdf(median)).mean().item()
print(f"Weibull AFT: k {k.item():.3f} (true {k_true}) test nll {aft_nll:.4f} C {cindex_aft:.4f} "
      f"S(median) {half:.4f}")
print(f"Weibull log_prob near 0: {Weibull(torch.tensor(2.0), torch.tensor(0.5)).log_prob(torch.tensor(1e-3)).item():.4f}")

print(f"FINAL cindex_cox={cindex_cox:.4f} cindex_aft={cindex_aft:.4f} cox_test_loss={cox_test_loss:.4f} "
      f"aft_nll={aft_nll:.4f} km_gap={km_gap:.4f} ties_agree={ties_agree} sorted_agree={sorted_agree}")
