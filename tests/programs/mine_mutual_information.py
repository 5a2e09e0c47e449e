"""MINE: Mutual Information Neural Estimation (Belghazi et al. 2018), as the PyTorch ports write it
(MasanoriYamada/Mine_pytorch), with the NWJ and InfoNCE bounds beside it.

The data: pairs (x, z) of correlated Gaussians, ``z = rho * x + sqrt(1 - rho ** 2) * noise`` in each of
``DIM`` dimensions, whose mutual information is known in closed form, ``-0.5 * log(1 - rho ** 2)``
per dimension. A statistics network ``Mine`` (``nn.init.normal_(..., std=0.02)``,
``nn.init.constant_(bias, 0)``, ``F.elu``) scores joint samples and marginal ones, the latter made
by shuffling z with ``torch.randperm``. Joint batches are drawn as the port draws them
(``np.random.choice(..., replace=False)`` into ``torch.autograd.Variable(torch.FloatTensor(batch))``).

MINE trains on the Donsker-Varadhan bound ``mean(T_joint) - log(mean(exp(T_marginal)))`` with the
port's bias-corrected gradient: a moving average ``ma_et = (1 - ma_rate) * ma_et + ma_rate *
torch.mean(et).item()`` divides ``mean(et)`` in the loss, and ``torch.autograd.backward(loss)``. The
bound is evaluated with ``torch.logsumexp(t_marginal, 0) - math.log(n)`` and with the mean of
``torch.exp`` (must agree), smoothed as the port plots it (moving averages of the history).

NWJ (the f-divergence bound ``mean(T_joint) - mean(exp(T_marginal - 1))``) trains a second network;
InfoNCE a third, scoring every x against every z of a batch through ``unsqueeze``/``expand`` and
``torch.cat`` into a (K, K) matrix: ``log K - F.cross_entropy(scores, torch.arange(K))``, checked
against the mean of ``torch.diagonal(F.log_softmax(scores, dim=1))``; InfoNCE can never exceed
``log K``.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

DIM, RHO, N = 2, 0.8, 4096
true_mi = -0.5 * DIM * math.log(1 - RHO ** 2)

x = np.random.normal(size=(N, DIM))
z = RHO * x + math.sqrt(1 - RHO ** 2) * np.random.normal(size=(N, DIM))
data = np.concatenate([x, z], axis=1).astype(np.float32)
print(f"data {data.shape} rho {RHO} true MI {true_mi:.4f} nats, sample corr "
      f"{np.corrcoef(data[:, 0], data[:, DIM])[0, 1]:.3f}")


class Mine(nn.Module):
    def __init__(self, input_size=2, hidden_size=100):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, 1)
        nn.init.normal_(self.fc1.weight, std=0.02)
        nn.init.constant_(self.fc1.bias, 0)
        nn.init.normal_(self.fc2.weight, std=0.02)
        nn.init.constant_(self.fc2.bias, 0)
        nn.init.normal_(self.fc3.weight, std=0.02)
        nn.init.constant_(self.fc3.bias, 0)

    def forward(self, input):
        output = F.elu(self.fc1(input))
        output = F.elu(self.fc2(output))
        output = self.fc3(output)
        return output


def mutual_information(joint, marginal, mine_net):
    t = mine_net(joint)
    et = torch.exp(mine_net(marginal))
    mi_lb = torch.mean(t) - torch.log(torch.mean(et))
    return mi_lb, t, et


def sample_batch(data, batch_size=100):
    index = np.random.choice(range(data.shape[0]), size=batch_size, replace=False)
    return data[index]


def marginal_of(joint):
    """Break the pairing: the z half of the batch shuffled by torch.randperm."""
    return torch.cat([joint[:, :DIM], joint[torch.randperm(joint.size(0)), DIM:]], dim=1)


def learn_mine(batch, mine_net, mine_net_optim, ma_et, ma_rate=0.01):
    joint = torch.autograd.Variable(torch.FloatTensor(batch))
    marginal = marginal_of(joint)
    mi_lb, t, et = mutual_information(joint, marginal, mine_net)
    ma_et = (1 - ma_rate) * ma_et + ma_rate * torch.mean(et).item()
    # unbiasing use moving average
    loss = -(torch.mean(t) - (1 / ma_et) * torch.mean(et))
    mine_net_optim.zero_grad()
    torch.autograd.backward(loss)
    mine_net_optim.step()
    return mi_lb, ma_et


def ma(a, window_size=100):
    return [np.mean(a[i:i + window_size]) for i in range(0, len(a) - window_size)]


joint_all = torch.from_numpy(data)
torch.manual_seed(seed + 1)
marginal_all = marginal_of(joint_all)


def donsker_varadhan(net):
    with torch.no_grad():
        t_joint, t_marginal = net(joint_all).squeeze(1), net(marginal_all).squeeze(1)
        dv = t_joint.mean() - (torch.logsumexp(t_marginal, 0) - math.log(t_marginal.numel()))
        dv_mean_exp = t_joint.mean() - torch.log(torch.mean(torch.exp(t_marginal)))
    return dv, dv_mean_exp, t_joint, t_marginal


# --- MINE with the bias-corrected gradient ---
torch.manual_seed(seed)
mine_net = Mine(input_size=2 * DIM)
mine_net_optim = torch.optim.Adam(mine_net.parameters(), lr=2e-3)
ITERS, BATCH = 800, 256
ma_et = 1.0
result = []
for i in range(ITERS):
    batch = sample_batch(data, batch_size=BATCH)
    mi_lb, ma_et = learn_mine(batch, mine_net, mine_net_optim, ma_et)
    result.append(mi_lb.detach().cpu().numpy())
    if (i + 1) % 400 == 0:
        print(f"MINE iteration {i + 1} batch bound {np.mean(result[-100:]):.4f} ma_et {ma_et:.4f}")
smoothed = ma(result)
dv, dv_mean_exp, t_joint, t_marginal = donsker_varadhan(mine_net)
print(f"MINE: DV bound on all {N} pairs {dv.item():.4f} (logsumexp and mean-exp agree "
      f"{torch.allclose(dv, dv_mean_exp, atol=1e-5)}), smoothed history {smoothed[-1]:.4f}, "
      f"{len(smoothed)} averages")
print(f"MINE: mean T joint {t_joint.mean().item():.3f} marginal {t_marginal.mean().item():.3f}, "
      f"gap to the true MI {true_mi - dv.item():.4f}")


# --- NWJ ---
torch.manual_seed(seed)
nwj_net = Mine(input_size=2 * DIM)
optimizer = torch.optim.Adam(nwj_net.parameters(), lr=2e-3)
for i in range(500):
    joint = torch.from_numpy(sample_batch(data, batch_size=BATCH))
    marginal = marginal_of(joint)
    nwj = nwj_net(joint).mean() - torch.exp(nwj_net(marginal) - 1).mean()
    optimizer.zero_grad()
    (-nwj).backward()
    optimizer.step()
    if (i + 1) % 250 == 0:
        print(f"NWJ iteration {i + 1} batch bound {nwj.item():.4f}")
with torch.no_grad():
    nwj_estimate = (nwj_net(joint_all).mean() - torch.exp(nwj_net(marginal_all) - 1).mean()).item()
    nwj_dv = donsker_varadhan(nwj_net)[0].item()
print(f"NWJ: bound {nwj_estimate:.4f}, its critic under DV {nwj_dv:.4f}; DV >= NWJ {nwj_dv >= nwj_estimate - 1e-6}")


# --- InfoNCE ---
class ConcatCritic(nn.Module):
    def __init__(self, dim, hidden_size=64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * dim, hidden_size), nn.ReLU(), nn.Linear(hidden_size, hidden_size),
                                 nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x, z):
        k = x.size(0)
        pairs = torch.cat([x.unsqueeze(1).expand(-1, k, -1), z.unsqueeze(0).expand(k, -1, -1)], dim=2)
        return self.net(pairs.reshape(k * k, -1)).view(k, k)  # scores[i, j] = f(x_i, z_j)


torch.manual_seed(seed)
critic = ConcatCritic(DIM)
optimizer = torch.optim.Adam(critic.parameters(), lr=1e-3)
K = 64
labels = torch.arange(K)
for i in range(250):
    batch = torch.from_numpy(sample_batch(data, batch_size=K))
    scores = critic(batch[:, :DIM], batch[:, DIM:])
    loss = F.cross_entropy(scores, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if (i + 1) % 125 == 0:
        print(f"InfoNCE iteration {i + 1} batch bound {math.log(K) - loss.item():.4f}")
with torch.no_grad():
    estimates, agree = [], True
    for chunk in joint_all.split(K):
        scores = critic(chunk[:, :DIM], chunk[:, DIM:])
        nce = math.log(K) - F.cross_entropy(scores, labels)
        agree &= torch.allclose(nce, torch.diagonal(F.log_softmax(scores, dim=1)).mean() + math.log(K), atol=1e-5)
        estimates.append(nce)
    infonce = torch.stack(estimates).mean().item()
print(f"InfoNCE: bound {infonce:.4f} over {len(estimates)} batches of {K}, cross_entropy and "
      f"log_softmax agree {agree}, below log K = {math.log(K):.4f} {infonce <= math.log(K)}")
print(f"FINAL mine_dv={dv.item():.4f} mine_smoothed={smoothed[-1]:.4f} nwj={nwj_estimate:.4f} infonce={infonce:.4f}")
