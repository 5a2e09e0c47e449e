"""A GFlowNet on a small hypergrid trained with trajectory balance (Malkin et al. 2022), as the
tutorials and torchgfn's examples write it.

States are points of an 8 x 8 grid, starting from the origin; a forward action increments one
coordinate or stops, a backward action decrements one coordinate. One MLP on the one-hot state
gives both policies' logits; invalid actions are masked by ``masked_fill(~mask, -float('inf'))``
before ``Categorical(logits=...)``. Training trajectories are rolled out in parallel with an
epsilon-uniform exploration policy sampled by ``torch.multinomial``; evaluation trajectories by
``Categorical.sample()``. Log-probabilities are summed along each trajectory (the backward ones by
``log_pb[moved] += ...`` on the rows that moved), the reward enters as ``torch.log(reward)``, and
the trajectory-balance loss ``(logZ + sum log P_F - log R - sum log P_B)^2`` trains the MLP and a
learned ``logZ = nn.Parameter(torch.zeros(()))`` through Adam with a separate learning rate for
``logZ`` (two param groups). The sampler is scored by the L1 distance between the empirical
distribution of terminal states (``torch.bincount(..., minlength=)``) and the true reward
distribution, and ``logZ`` against the true log partition function.
"""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

DIM = 2
HEIGHT = 8
NUM_ACTIONS = DIM + 1  # increment coordinate d, or stop (the last action)
STOP = DIM


def hypergrid_reward(x, r0=0.1, r1=0.5, r2=2.0):
    """The hypergrid reward of Bengio et al. 2021: high near the corners, higher on a ring inside them."""
    ax = (x.float() / (HEIGHT - 1) - 0.5).abs()
    return r0 + r1 * ((ax > 0.25) & (ax <= 0.5)).prod(-1) + r2 * ((ax > 0.3) & (ax < 0.4)).prod(-1)


def encode(states):
    return F.one_hot(states, HEIGHT).view(states.shape[0], -1).float()


class TBModel(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(DIM * HEIGHT, hidden), nn.LeakyReLU(),
            nn.Linear(hidden, hidden), nn.LeakyReLU(),
            nn.Linear(hidden, NUM_ACTIONS + DIM),
        )
        self.logZ = nn.Parameter(torch.zeros(()))

    def forward(self, states):
        logits = self.mlp(encode(states))
        return logits[:, :NUM_ACTIONS], logits[:, NUM_ACTIONS:]


def forward_mask(states):
    can_increment = states < HEIGHT - 1
    return torch.cat([can_increment, torch.ones(states.shape[0], 1, dtype=torch.bool)], dim=1)


def rollout(model, batch_size, epsilon=0.0):
    """Samples batch_size trajectories; returns terminal states and the summed log P_F and log P_B."""
    states = torch.zeros(batch_size, DIM, dtype=torch.long)
    done = torch.zeros(batch_size, dtype=torch.bool)
    log_pf = torch.zeros(batch_size)
    log_pb = torch.zeros(batch_size)
    lengths = torch.zeros(batch_size, dtype=torch.long)
    while not done.all():
        fwd_logits, _ = model(states)
        mask = forward_mask(states)
        fwd_logits = fwd_logits.masked_fill(~mask, -float("inf"))
        policy = Categorical(logits=fwd_logits)
        if epsilon > 0:
            uniform = mask.float() / mask.sum(dim=1, keepdim=True)
            explore = (1 - epsilon) * policy.probs.detach() + epsilon * uniform
            actions = torch.multinomial(explore, 1).squeeze(1)
        else:
            actions = policy.sample()
        actions = torch.where(done, torch.full_like(actions, STOP), actions)
        log_pf = log_pf + torch.where(done, torch.zeros(()), policy.log_prob(actions))
        moved = ~done & (actions != STOP)
        if moved.any():
            new_states = states.clone()
            new_states[moved] = new_states[moved].scatter_add(1, actions[moved].unsqueeze(1),
                                                              torch.ones_like(actions[moved]).unsqueeze(1))
            _, bwd_logits = model(new_states[moved])
            bwd_logits = bwd_logits.masked_fill(~(new_states[moved] > 0), -float("inf"))
            log_pb[moved] += Categorical(logits=bwd_logits).log_prob(actions[moved])
            states = new_states
        lengths += (~done).long()
        done = done | (actions == STOP)
    return states, log_pf, log_pb, lengths


all_states = torch.cartesian_prod(*[torch.arange(HEIGHT)] * DIM)
true_reward = hypergrid_reward(all_states)
true_distribution = true_reward / true_reward.sum()
true_logZ = torch.log(true_reward.sum()).item()
print(f"grid {HEIGHT}^{DIM} states={all_states.shape[0]} modes={(true_reward > 2).sum().item()} "
      f"true logZ={true_logZ:.4f}")


def l1_to_target(model, n=1000):
    with torch.no_grad():
        terminal, _, _, _ = rollout(model, n)
    flat = terminal[:, 0] * HEIGHT + terminal[:, 1]
    empirical = torch.bincount(flat, minlength=HEIGHT ** DIM).float() / n
    return (empirical - true_distribution).abs().sum().item(), empirical


model = TBModel()
optimizer = torch.optim.Adam([
    {"params": model.mlp.parameters(), "lr": 3e-3},
    {"params": [model.logZ], "lr": 5e-2},
])
print(f"param groups lr: {[g['lr'] for g in optimizer.param_groups]}")
start_l1, _ = l1_to_target(model)
print(f"untrained l1={start_l1:.4f}")

for step in range(150):
    terminal, log_pf, log_pb, lengths = rollout(model, 16, epsilon=0.1)
    log_reward = torch.log(hypergrid_reward(terminal))
    loss = (model.logZ + log_pf - log_reward - log_pb).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 30 == 0:
        print(f"step {step:3d} tb_loss={loss.item():.4f} logZ={model.logZ.item():.4f} "
              f"mean_len={lengths.float().mean().item():.2f}")

final_l1, empirical = l1_to_target(model)
mode_mass = empirical[true_reward > 2].sum().item()
print(f"trained l1={final_l1:.4f} mass on modes={mode_mass:.4f} (target {true_distribution[true_reward > 2].sum().item():.4f})")
print(f"logZ={model.logZ.item():.4f} true={true_logZ:.4f}")
print(f"FINAL l1={final_l1:.4f} start_l1={start_l1:.4f} logZ={model.logZ.item():.4f} mode_mass={mode_mass:.4f}")
